package podiosim

import (
	"cmp"
	"slices"
	"strings"
)

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
