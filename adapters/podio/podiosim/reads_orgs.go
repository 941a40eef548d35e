package podiosim

import (
	"cmp"
	"slices"
	"strings"
	"time"
)

// ---- organizations ----

type orgWithSpacesOut struct {
	orgOut
	Spaces []spaceOut `json:"spaces"`
}

func (s *Server) getOrgs(c *call) reply {
	uid := c.callerID()
	out := []orgWithSpacesOut{}
	for _, id := range s.ds.orgIDs {
		o := s.ds.orgs[id]
		if !activeOrgMember(o, uid) {
			continue
		}
		item := orgWithSpacesOut{orgOut: s.orgJSON(o, uid), Spaces: []spaceOut{}}
		for _, sp := range s.ds.orgSpaces(o.id) {
			if activeSpaceMember(sp, uid) != nil {
				item.Spaces = append(item.Spaces, s.spaceJSON(sp, uid, c.now))
			}
		}
		out = append(out, item)
	}
	return okJSON(out)
}

func (s *Server) getOrg(c *call) reply {
	o, rep, ok := s.loadOrg(c)
	if !ok {
		return rep
	}
	if !activeOrgMember(o, c.callerID()) {
		return forbidden("You are not a member of this organization")
	}
	return okJSON(s.orgJSON(o, c.callerID()))
}

// ---- org members ----

type orgMemberItemOut struct {
	User             memberUserOut `json:"user"`
	Profile          any           `json:"profile"`
	Employee         bool          `json:"employee"`
	Role             *string       `json:"role"`
	SpaceMemberships int           `json:"space_memberships"`
	Admin            bool          `json:"admin"`
}

type orgMemberOut struct {
	User     memberUserOut  `json:"user"`
	Profile  any            `json:"profile"`
	Employee bool           `json:"employee"`
	Role     *string        `json:"role"`
	Tier     string         `json:"tier"`
	Spaces   spaceCountsOut `json:"spaces"`
}

type spaceCountsOut struct {
	Invited int `json:"invited"`
	Started int `json:"started"`
}

func (s *Server) spaceCounts(orgID, uid int64) (invited, started int) {
	for _, sp := range s.ds.orgSpaces(orgID) {
		if m := sp.members[uid]; m != nil {
			if m.invited {
				invited++
			} else {
				started++
			}
		}
	}
	return invited, started
}

func memberUser(p *person) memberUserOut {
	return memberUserOut{UserID: p.userID, Mail: p.mail, Status: p.status}
}

var orgMemberTypes = []string{"employee", "external", "admin", "regular", "guest", "premium"}

func (s *Server) getOrgMembers(c *call) reply {
	o, rep, ok := s.loadOrg(c)
	if !ok {
		return rep
	}
	if !orgAdmin(o, c.callerID()) {
		return forbidden("Only organization administrators can list the members of the organization")
	}
	offset, limit, rep, ok := s.paging(c)
	if !ok {
		return rep
	}
	sortBy, _ := c.last("sort_by")
	if sortBy == "" {
		sortBy = "name"
	}
	if sortBy != "name" && sortBy != "last_seen_on" {
		return invalidValue("Invalid value for sort_by: use name or last_seen_on")
	}
	desc, rep, ok := c.getBool("sort_desc")
	if !ok {
		return rep
	}
	memberType, _ := c.last("member_type")
	if memberType != "" && !slices.Contains(orgMemberTypes, memberType) {
		return invalidValue("Invalid value for member_type: use one of " + strings.Join(orgMemberTypes, ", "))
	}
	query, _ := c.last("query")

	var guestCounts map[int64]int
	if memberType == "guest" {
		guestCounts = s.startedCountsByUser(o.id)
	}
	sorted := s.sortedOrgMembers(o, sortBy)
	list := make([]orgEntry, 0, len(sorted))
	for i := range sorted {
		e := sorted[i]
		if desc {
			e = sorted[len(sorted)-1-i]
		}
		p, m := e.p, e.m
		if !matchesQuery(p, query) {
			continue
		}
		switch memberType {
		case "employee":
			if !p.employee {
				continue
			}
		case "external":
			if p.employee {
				continue
			}
		case "admin", "regular":
			if m.role != memberType {
				continue
			}
		case "premium":
			if !p.employee || m.invited {
				continue
			}
		case "guest": // externals with no workspace of their own: they only see shared items
			if p.employee || m.invited || guestCounts[p.userID] > 0 {
				continue
			}
		}
		list = append(list, e)
	}
	items := page(list, offset, limit)
	out := make([]orgMemberItemOut, 0, len(items))
	for _, e := range items {
		role := e.m.role
		_, started := s.spaceCounts(o.id, e.p.userID)
		out = append(out, orgMemberItemOut{
			User: memberUser(e.p), Profile: profileJSON(e.p), Employee: e.p.employee, Role: &role,
			SpaceMemberships: started, Admin: e.m.role == "admin",
		})
	}
	return okJSON(out)
}

// orgEntry is one org member in a sorted listing.
type orgEntry struct {
	p *person
	m *orgMember
}

type orgOrderKey struct {
	orgID  int64
	sortBy string
}

// sortedOrgMembers returns the org's members in ascending sort_by order (ties by user id), so a
// descending listing is the exact reverse. The order is cached until the next mutating request:
// re-sorting a 20,000-person org on every page made a paged walk quadratic. Caller holds s.mu.
func (s *Server) sortedOrgMembers(o *org, sortBy string) []orgEntry {
	key := orgOrderKey{orgID: o.id, sortBy: sortBy}
	if cached, ok := s.orgOrder[key]; ok {
		return cached
	}
	type keyed struct {
		orgEntry
		name string // lower-cased once rather than per comparison
	}
	all := make([]keyed, 0, len(o.members))
	for _, m := range o.members {
		if p := s.ds.people[m.userID]; p != nil {
			all = append(all, keyed{orgEntry{p: p, m: m}, strings.ToLower(p.name)})
		}
	}
	slices.SortFunc(all, func(a, b keyed) int {
		var r int
		if sortBy == "last_seen_on" {
			r = a.p.lastSeenOn.Compare(b.p.lastSeenOn)
		} else {
			r = cmp.Compare(a.name, b.name)
		}
		if r == 0 {
			r = cmp.Compare(a.p.userID, b.p.userID)
		}
		return r
	})
	out := make([]orgEntry, len(all))
	for i, k := range all {
		out[i] = k.orgEntry
	}
	s.orgOrder[key] = out
	return out
}

// startedCountsByUser counts each user's active space memberships in the org in one pass over its
// spaces. Caller holds s.mu.
func (s *Server) startedCountsByUser(orgID int64) map[int64]int {
	counts := map[int64]int{}
	for _, sp := range s.ds.orgSpaces(orgID) {
		for uid, m := range sp.members {
			if !m.invited {
				counts[uid]++
			}
		}
	}
	return counts
}

func (s *Server) orgMemberJSON(o *org, p *person) orgMemberOut {
	m := o.members[p.userID]
	role := m.role
	invited, started := s.spaceCounts(o.id, p.userID)
	tier := "gold"
	if !p.employee {
		tier = "external"
	}
	return orgMemberOut{
		User: memberUser(p), Profile: profileJSON(p), Employee: p.employee, Role: &role, Tier: tier,
		Spaces: spaceCountsOut{Invited: invited, Started: started},
	}
}

// canViewOrgMember: org admins see every member; anyone sees their own membership.
func canViewOrgMember(o *org, caller, target int64) bool {
	return orgAdmin(o, caller) || (caller == target && activeOrgMember(o, caller))
}

func (s *Server) getOrgMember(c *call) reply {
	o, rep, ok := s.loadOrg(c)
	if !ok {
		return rep
	}
	uid, rep, ok := c.id("user_id")
	if !ok {
		return rep
	}
	if !canViewOrgMember(o, c.callerID(), uid) {
		return forbidden("Only organization administrators can view organization members")
	}
	p := s.ds.people[uid]
	if p == nil || o.members[uid] == nil {
		return notFound("Organization member")
	}
	return okJSON(s.orgMemberJSON(o, p))
}

func (s *Server) getOrgMemberByMail(c *call) reply {
	o, rep, ok := s.loadOrg(c)
	if !ok {
		return rep
	}
	p := s.ds.personByMail(c.params["mail"])
	if p != nil && o.members[p.userID] == nil {
		p = nil
	}
	target := int64(0)
	if p != nil {
		target = p.userID
	}
	if !canViewOrgMember(o, c.callerID(), target) {
		return forbidden("Only organization administrators can view organization members")
	}
	if p == nil {
		return notFound("Organization member")
	}
	return okJSON(s.orgMemberJSON(o, p))
}

// ---- ending an org membership: one plan drives both the preview and the delete ----

type promotion struct {
	space  *space
	member *spaceMember // the member who becomes admin
}

type endPlan struct {
	promote []promotion
	remove  []*space // spaces that survive; the user's membership ends
	delete  []*space // spaces where the user is the only active member
}

// planEndOrgMember decides what DELETE /org/{org_id}/member/{user_id} will do. Other members are
// counted only when active: invitees cannot run a space. The promoted member is the earliest-started
// remaining active member, regular preferred over light (ties: lowest user id).
func (s *Server) planEndOrgMember(o *org, uid int64) endPlan {
	var plan endPlan
	for _, sp := range s.ds.orgSpaces(o.id) {
		m := sp.members[uid]
		if m == nil {
			continue
		}
		var others []*spaceMember
		otherAdmin := false
		for id, om := range sp.members {
			if id == uid || om.invited {
				continue
			}
			others = append(others, om)
			otherAdmin = otherAdmin || om.role == "admin"
		}
		if len(others) == 0 {
			plan.delete = append(plan.delete, sp)
			continue
		}
		plan.remove = append(plan.remove, sp)
		if m.role == "admin" && !m.invited && !otherAdmin {
			rank := map[string]int{"regular": 0, "light": 1}
			best := slices.MinFunc(others, func(a, b *spaceMember) int {
				return cmp.Or(cmp.Compare(rank[a.role], rank[b.role]), a.startedOn.Compare(b.startedOn), cmp.Compare(a.userID, b.userID))
			})
			plan.promote = append(plan.promote, promotion{space: sp, member: best})
		}
	}
	return plan
}

type spaceMemberUserOut struct {
	UserID int64  `json:"user_id"`
	Mail   string `json:"mail"`
	Name   string `json:"name"`
	Avatar *int64 `json:"avatar"`
}

// spaceMemberObjOut is the full space-member object (podio-api.md §7.1 union) embedding the space.
type spaceMemberObjOut struct {
	User      spaceMemberUserOut `json:"user"`
	Profile   any                `json:"profile"`
	Space     spaceOut           `json:"space"`
	Role      string             `json:"role"`
	Employee  bool               `json:"employee"`
	IsPartner bool               `json:"is_partner"`
	Grants    int                `json:"grants"`
	InvitedOn dt                 `json:"invited_on"`
	StartedOn dt                 `json:"started_on"`
	EndedOn   dt                 `json:"ended_on"`
}

func (s *Server) spaceMemberObj(sp *space, m *spaceMember, callerID int64, now time.Time) spaceMemberObjOut {
	p := s.ds.people[m.userID]
	return spaceMemberObjOut{
		User:    spaceMemberUserOut{UserID: p.userID, Mail: p.mail, Name: p.name, Avatar: avatarPtr(p.avatar)},
		Profile: profileJSON(p), Space: s.spaceJSON(sp, callerID, now), Role: m.role, Employee: p.employee,
		Grants: m.grants, InvitedOn: dt(m.invitedOn), StartedOn: dt(m.startedOn),
	}
}

func (s *Server) endOrgMemberTarget(c *call) (*org, int64, reply, bool) {
	o, rep, ok := s.loadOrg(c)
	if !ok {
		return nil, 0, rep, false
	}
	uid, rep, ok := c.id("user_id")
	if !ok {
		return nil, 0, rep, false
	}
	if !orgAdmin(o, c.callerID()) {
		return nil, 0, forbidden("Only organization administrators can end organization memberships"), false
	}
	if o.members[uid] == nil {
		return nil, 0, notFound("Organization member"), false
	}
	return o, uid, reply{}, true
}

func (s *Server) getEndMemberInfo(c *call) reply {
	o, uid, rep, ok := s.endOrgMemberTarget(c)
	if !ok {
		return rep
	}
	plan := s.planEndOrgMember(o, uid)
	out := map[string][]spaceMemberObjOut{"to_promote": {}, "to_remove": {}, "to_delete": {}}
	for _, pr := range plan.promote {
		out["to_promote"] = append(out["to_promote"], s.spaceMemberObj(pr.space, pr.member, c.callerID(), c.now))
	}
	for _, sp := range plan.remove {
		out["to_remove"] = append(out["to_remove"], s.spaceMemberObj(sp, sp.members[uid], c.callerID(), c.now))
	}
	for _, sp := range plan.delete {
		out["to_delete"] = append(out["to_delete"], s.spaceMemberObj(sp, sp.members[uid], c.callerID(), c.now))
	}
	return okJSON(out)
}
