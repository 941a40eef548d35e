package podiosim

import (
	"cmp"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// ---- helpers shared by the handlers (all called with s.mu held) ----

func (c *call) callerID() int64 { return c.tok.refID }

// last returns the last value of a query/form parameter: Podio uses the last of repeated values.
func (c *call) last(key string) (string, bool) {
	vs := c.form[key]
	if len(vs) == 0 {
		return "", false
	}
	return vs[len(vs)-1], true
}

func parseID(v string) (int64, bool) {
	id, err := strconv.ParseInt(v, 10, 64)
	return id, err == nil && id > 0
}

func (c *call) id(name string) (int64, reply, bool) {
	id, ok := parseID(c.params[name])
	if !ok {
		return 0, invalidValue(fmt.Sprintf("Invalid value for %s: %q is not an id", name, c.params[name])), false
	}
	return id, reply{}, true
}

// ids parses a comma-separated id list placeholder ({user_ids}, or {user_id} on contacts).
func (c *call) ids(name string) ([]int64, reply, bool) {
	var out []int64
	for _, part := range strings.Split(c.params[name], ",") {
		id, ok := parseID(strings.TrimSpace(part))
		if !ok {
			return nil, invalidValue(fmt.Sprintf("Invalid value for %s: %q is not an id", name, part)), false
		}
		out = append(out, id)
	}
	return out, reply{}, true
}

func (s *Server) loadOrg(c *call) (*org, reply, bool) {
	id, rep, ok := c.id("org_id")
	if !ok {
		return nil, rep, false
	}
	o := s.ds.orgs[id]
	if o == nil {
		return nil, notFound("Organization"), false
	}
	return o, reply{}, true
}

func (s *Server) loadSpace(c *call) (*space, reply, bool) {
	id, rep, ok := c.id("space_id")
	if !ok {
		return nil, rep, false
	}
	sp := s.ds.spaces[id]
	if sp == nil {
		return nil, notFound("Space"), false
	}
	return sp, reply{}, true
}

func activeOrgMember(o *org, uid int64) bool {
	m := o.members[uid]
	return m != nil && !m.invited
}

func orgAdmin(o *org, uid int64) bool {
	m := o.members[uid]
	return m != nil && !m.invited && m.role == "admin"
}

func activeSpaceMember(sp *space, uid int64) *spaceMember {
	if m := sp.members[uid]; m != nil && !m.invited {
		return m
	}
	return nil
}

// canSeeSpace: active members see a space; so do active org members when the space is open.
func (s *Server) canSeeSpace(sp *space, uid int64) bool {
	if activeSpaceMember(sp, uid) != nil {
		return true
	}
	return sp.privacy == "open" && activeOrgMember(s.ds.orgs[sp.orgID], uid)
}

func (s *Server) viewSpace(c *call) (*space, reply, bool) {
	sp, rep, ok := s.loadSpace(c)
	if !ok {
		return nil, rep, false
	}
	if !s.canSeeSpace(sp, c.callerID()) {
		return nil, forbidden("You are not a member of this space"), false
	}
	return sp, reply{}, true
}

func okJSON(body any) reply { return reply{status: http.StatusOK, body: body} }

// paging parses offset and limit; limit defaults to and is capped at the route's page size.
func (s *Server) paging(c *call) (offset, limit int, rep reply, ok bool) {
	limit = s.cfg.MaxPageSize
	if v, found := s.cfg.RouteMaxPageSize[c.route.name]; found && v > 0 {
		limit = v
	}
	maxLimit := limit
	if v, found := c.last("limit"); found {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return 0, 0, invalidValue("Invalid value for limit: must be a positive integer"), false
		}
		limit = min(n, maxLimit)
	}
	if v, found := c.last("offset"); found {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return 0, 0, invalidValue("Invalid value for offset: must be a non-negative integer"), false
		}
		offset = n
	}
	return offset, limit, reply{}, true
}

func page[T any](items []T, offset, limit int) []T {
	if offset >= len(items) {
		return []T{}
	}
	return items[offset:min(offset+limit, len(items))]
}

// getBool parses a GET boolean: "0"/"1" per Podio, "true"/"false" as some SDKs send them.
func (c *call) getBool(key string) (bool, reply, bool) {
	v, found := c.last(key)
	if !found {
		return false, reply{}, true
	}
	switch strings.ToLower(v) {
	case "1", "true":
		return true, reply{}, true
	case "0", "false", "":
		return false, reply{}, true
	}
	return false, invalidValue(fmt.Sprintf("Invalid value for %s: use 0 or 1", key)), false
}

func matchesQuery(p *person, q string) bool {
	if q == "" {
		return true
	}
	q = strings.ToLower(q)
	return strings.Contains(strings.ToLower(p.name), q) || strings.Contains(strings.ToLower(p.mail), q)
}

// ---- users ----

func (s *Server) caller(c *call) (*person, reply, bool) {
	p := s.ds.people[c.callerID()]
	if p == nil {
		return nil, notFound("User"), false
	}
	return p, reply{}, true
}

func (s *Server) getUser(c *call) reply {
	p, rep, ok := s.caller(c)
	if !ok {
		return rep
	}
	return okJSON(userJSON(p))
}

type statusUserOut struct {
	userOut
	Invites int `json:"invites"`
}

func (s *Server) getUserStatus(c *call) reply {
	p, rep, ok := s.caller(c)
	if !ok {
		return rep
	}
	return okJSON(map[string]any{
		"user":                 statusUserOut{userOut: userJSON(p)},
		"profile":              profileJSON(p),
		"properties":           map[string]any{},
		"referral":             map[string]any{"code": fmt.Sprintf("ref%d", p.userID), "status": "active"},
		"flags":                []string{},
		"betas":                []string{},
		"inbox_new":            0,
		"message_unread_count": 0,
		"calendar_code":        fmt.Sprintf("cal%d", p.userID),
		"mailbox":              fmt.Sprintf("user%d", p.userID),
		"task_mail":            fmt.Sprintf("tasks+%d@podio.example", p.userID),
		"push":                 pushOut{Channel: fmt.Sprintf("/user/%d", p.userID), Signature: "sim", Timestamp: c.now.Unix(), ExpiresIn: 21600},
		"presence":             map[string]any{"ref_type": "user", "ref_id": p.userID, "user_id": p.userID, "signature": "sim"},
	})
}

// sharesOrg reports whether two people meet in some org (invited memberships included).
func (s *Server) sharesOrg(a, b int64) bool {
	if a == b {
		return true
	}
	for _, id := range s.ds.orgIDs {
		o := s.ds.orgs[id]
		if o.members[a] != nil && o.members[b] != nil {
			return true
		}
	}
	return false
}

func (s *Server) getContactUser(c *call) reply {
	ids, rep, ok := c.ids("user_id")
	if !ok {
		return rep
	}
	out := make([]any, 0, len(ids))
	for _, id := range ids {
		p := s.ds.people[id]
		if p == nil {
			return notFound("User")
		}
		if !s.sharesOrg(c.callerID(), id) {
			return forbidden("You do not share an organization with this user")
		}
		out = append(out, profileJSON(p))
	}
	if strings.Contains(c.params["user_id"], ",") {
		return okJSON(out)
	}
	return okJSON(out[0])
}

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

// ---- spaces ----

func (s *Server) getOrgSpaces(c *call) reply {
	o, rep, ok := s.loadOrg(c)
	if !ok {
		return rep
	}
	uid := c.callerID()
	if !activeOrgMember(o, uid) {
		return forbidden("You are not a member of this organization")
	}
	out := []spaceOut{}
	for _, sp := range s.ds.orgSpaces(o.id) {
		if s.canSeeSpace(sp, uid) {
			out = append(out, s.spaceJSON(sp, uid, c.now))
		}
	}
	return okJSON(out)
}

func (s *Server) getOrgAllSpaces(c *call) reply {
	o, rep, ok := s.loadOrg(c)
	if !ok {
		return rep
	}
	uid := c.callerID()
	if !orgAdmin(o, uid) {
		return forbidden("Only organization administrators can list all spaces")
	}
	out := []spaceOut{}
	for _, sp := range s.ds.orgSpaces(o.id) {
		item := s.spaceJSON(sp, uid, c.now)
		if activeSpaceMember(sp, uid) == nil {
			item.Name = nil // hidden from admins who are not in the space
		}
		out = append(out, item)
	}
	return okJSON(out)
}

func (s *Server) getSpace(c *call) reply {
	sp, rep, ok := s.viewSpace(c)
	if !ok {
		return rep
	}
	return okJSON(s.spaceJSON(sp, c.callerID(), c.now))
}

// ---- space members ----

// sortedMembers lists a space's members by name (then user id), active ones unless withInvited.
func (s *Server) sortedMembers(sp *space, withInvited bool) []*spaceMember {
	type entry struct {
		m   *spaceMember
		key string
	}
	list := make([]entry, 0, len(sp.members))
	for _, m := range sp.members {
		if withInvited || !m.invited {
			list = append(list, entry{m, strings.ToLower(s.ds.people[m.userID].name)})
		}
	}
	slices.SortFunc(list, func(a, b entry) int {
		return cmp.Or(cmp.Compare(a.key, b.key), cmp.Compare(a.m.userID, b.m.userID))
	})
	out := make([]*spaceMember, len(list))
	for i, e := range list {
		out[i] = e.m
	}
	return out
}

type spaceMemberV1Out struct {
	User      memberUserFullOut `json:"user"`
	Profile   any               `json:"profile"`
	Role      string            `json:"role"`
	Employee  bool              `json:"employee"`
	Grants    int               `json:"grants"`
	InvitedOn dt                `json:"invited_on"`
	StartedOn dt                `json:"started_on"`
	EndedOn   dt                `json:"ended_on"`
}

type memberUserFullOut struct {
	UserID int64  `json:"user_id"`
	Mail   string `json:"mail"`
	Name   string `json:"name"`
	Avatar *int64 `json:"avatar"`
	Status string `json:"status"`
}

func (s *Server) getSpaceMembers(c *call) reply {
	sp, rep, ok := s.viewSpace(c)
	if !ok {
		return rep
	}
	members := s.sortedMembers(sp, false)
	out := make([]spaceMemberV1Out, 0, len(members))
	for _, m := range members {
		p := s.ds.people[m.userID]
		out = append(out, spaceMemberV1Out{
			User:    memberUserFullOut{UserID: p.userID, Mail: p.mail, Name: p.name, Avatar: avatarPtr(p.avatar), Status: p.status},
			Profile: profileJSON(p), Role: m.role, Employee: p.employee, Grants: m.grants,
			InvitedOn: dt(m.invitedOn), StartedOn: dt(m.startedOn),
		})
	}
	return okJSON(out)
}

type spaceMemberV2Out struct {
	Profile  any    `json:"profile"`
	Employee bool   `json:"employee"`
	Role     string `json:"role"`
	Grants   int    `json:"grants"`
}

var spaceMemberTypes = []string{"employee", "external", "admin", "regular", "light", "guest"}

func (s *Server) getSpaceMembersV2(c *call) reply {
	sp, rep, ok := s.viewSpace(c)
	if !ok {
		return rep
	}
	offset, limit, rep, ok := s.paging(c)
	if !ok {
		return rep
	}
	memberType, _ := c.last("member_type")
	if memberType != "" && !slices.Contains(spaceMemberTypes, memberType) {
		return invalidValue("Invalid value for member_type: use one of " + strings.Join(spaceMemberTypes, ", "))
	}
	query, _ := c.last("query")
	var list []*spaceMember
	for _, m := range s.sortedMembers(sp, s.cfg.InvitedInSpaceMembersV2) {
		p := s.ds.people[m.userID]
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
		case "admin", "regular", "light":
			if m.role != memberType {
				continue
			}
		case "guest": // the simulator models no item-level guests
			continue
		}
		list = append(list, m)
	}
	items := page(list, offset, limit)
	out := make([]spaceMemberV2Out, 0, len(items))
	for _, m := range items {
		p := s.ds.people[m.userID]
		out = append(out, spaceMemberV2Out{Profile: profileJSON(p), Employee: p.employee, Role: m.role, Grants: m.grants})
	}
	return okJSON(out)
}

type spaceMembershipOut struct {
	User      spaceMembershipUserOut `json:"user"`
	Role      string                 `json:"role"`
	InvitedOn dt                     `json:"invited_on"`
	StartedOn dt                     `json:"started_on"`
	EndedOn   dt                     `json:"ended_on"`
}

type spaceMembershipUserOut struct {
	UserID int64  `json:"user_id"`
	Avatar *int64 `json:"avatar"`
	Name   string `json:"name"`
}

func (s *Server) getSpaceMember(c *call) reply {
	sp, rep, ok := s.viewSpace(c)
	if !ok {
		return rep
	}
	uid, rep, ok := c.id("user_id")
	if !ok {
		return rep
	}
	m := activeSpaceMember(sp, uid)
	if m == nil {
		return notFound("Space membership")
	}
	p := s.ds.people[uid]
	return okJSON(spaceMembershipOut{
		User: spaceMembershipUserOut{UserID: p.userID, Avatar: avatarPtr(p.avatar), Name: p.name},
		Role: m.role, InvitedOn: dt(m.invitedOn), StartedOn: dt(m.startedOn),
	})
}
