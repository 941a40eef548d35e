package podiosim

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
)

var spaceRoles = []string{"light", "regular", "admin"}

func validRole(r string) bool { return slices.Contains(spaceRoles, r) }

// successReply answers a write with the configured status: 204 (or an unset 0 meaning
// defaultStatus 204) has no body, any other status carries {}.
func successReply(configured, defaultStatus int) reply {
	status := configured
	if status == 0 {
		status = defaultStatus
	}
	if status == http.StatusNoContent {
		return reply{status: status}
	}
	return reply{status: status, body: map[string]any{}}
}

type addMembersIn struct {
	Role     string   `json:"role"`
	Message  string   `json:"message"`
	Users    []int64  `json:"users"`
	Profiles []int64  `json:"profiles"`
	Mails    []string `json:"mails"`
	// external_contacts, external_user_invite, context_ref_* and invite_context are accepted and ignored.
}

func decodeBody(c *call, v any) (reply, bool) {
	if len(strings.TrimSpace(string(c.body))) == 0 {
		return invalidValue("A JSON request body is required"), false
	}
	if err := json.Unmarshal(c.body, v); err != nil {
		return invalidValue("The request body is not valid JSON for this operation"), false
	}
	return reply{}, true
}

// addSpaceMembers implements POST /space/{space_id}/member/ (podio-api.md §7.2). Every target is
// resolved before anything changes, so a failing call leaves no partial effect.
func (s *Server) addSpaceMembers(c *call) reply {
	sp, rep, ok := s.loadSpace(c)
	if !ok {
		return rep
	}
	var in addMembersIn
	if rep, ok := decodeBody(c, &in); !ok {
		return rep
	}
	if !validRole(in.Role) {
		return invalidValue("Invalid value for role: use light, regular or admin")
	}
	m := activeSpaceMember(sp, c.callerID())
	if m == nil {
		return forbidden("You are not a member of this space")
	}
	if m.role == "light" {
		return forbidden("Light members cannot invite people to the space")
	}
	var targets []*person
	seen := map[int64]bool{}
	add := func(p *person) {
		if !seen[p.userID] {
			seen[p.userID] = true
			targets = append(targets, p)
		}
	}
	for _, id := range in.Users {
		p := s.ds.people[id]
		if p == nil {
			return notFound("User")
		}
		add(p)
	}
	for _, id := range in.Profiles {
		p := s.ds.personByProfile(id)
		if p == nil {
			return notFound("Profile")
		}
		add(p)
	}
	var newMails []string
	for _, mail := range in.Mails {
		mail = strings.TrimSpace(mail)
		if !strings.Contains(mail, "@") {
			return invalidValue("Invalid value for mails: not an e-mail address")
		}
		if p := s.ds.personByMail(mail); p != nil {
			add(p)
		} else if !slices.ContainsFunc(newMails, func(m string) bool { return strings.EqualFold(m, mail) }) {
			newMails = append(newMails, mail)
		}
	}
	o := s.ds.orgs[sp.orgID]
	newOrgMembers := len(newMails)
	for _, p := range targets {
		if o.members[p.userID] == nil {
			newOrgMembers++
		}
	}
	if newOrgMembers > 0 && len(o.members)+newOrgMembers > o.userLimit {
		return forbidden("The organization has reached its user limit")
	}
	for _, mail := range newMails {
		targets = append(targets, s.ds.addInvitee(mail, c.now))
	}
	for _, p := range targets {
		s.ds.joinSpace(sp, p, in.Role, c.now) // no-op for existing members
	}
	return successReply(s.cfg.AddMemberStatus, http.StatusOK)
}

type roleIn struct {
	Role string `json:"role"`
}

// updateSpaceMembers implements PUT /space/{space_id}/member/{user_ids} (§7.3): space admins only.
func (s *Server) updateSpaceMembers(c *call) reply {
	sp, rep, ok := s.loadSpace(c)
	if !ok {
		return rep
	}
	ids, rep, ok := c.ids("user_ids")
	if !ok {
		return rep
	}
	var in roleIn
	if rep, ok := decodeBody(c, &in); !ok {
		return rep
	}
	if !validRole(in.Role) {
		return invalidValue("Invalid value for role: use light, regular or admin")
	}
	if m := activeSpaceMember(sp, c.callerID()); m == nil || m.role != "admin" {
		return forbidden("Only space administrators can change member roles")
	}
	for _, id := range ids {
		if sp.members[id] == nil {
			return notFound("Space member")
		}
	}
	for _, id := range ids {
		sp.members[id].role = in.Role
	}
	return successReply(s.cfg.UpdateMemberStatus, http.StatusNoContent)
}

// endSpaceMembers implements DELETE /space/{space_id}/member/{user_ids} (§7.4): space admins, or a
// person removing only themself. Invited memberships can be ended too.
func (s *Server) endSpaceMembers(c *call) reply {
	sp, rep, ok := s.loadSpace(c)
	if !ok {
		return rep
	}
	ids, rep, ok := c.ids("user_ids")
	if !ok {
		return rep
	}
	self := len(ids) == 1 && ids[0] == c.callerID()
	if m := activeSpaceMember(sp, c.callerID()); !self && (m == nil || m.role != "admin") {
		return forbidden("Only space administrators can remove members")
	}
	for _, id := range ids {
		if sp.members[id] == nil {
			return notFound("Space member")
		}
	}
	for _, id := range ids {
		delete(sp.members, id)
	}
	return successReply(s.cfg.EndMemberStatus, http.StatusNoContent)
}

// endOrgMember implements DELETE /org/{org_id}/member/{user_id} (§5.4) by executing exactly the
// plan that end_member_info previews.
func (s *Server) endOrgMember(c *call) reply {
	o, uid, rep, ok := s.endOrgMemberTarget(c)
	if !ok {
		return rep
	}
	if o.members[uid].role == "admin" {
		admins := 0
		for _, m := range o.members {
			if m.role == "admin" && !m.invited {
				admins++
			}
		}
		if admins <= 1 {
			return forbidden("The last administrator of an organization cannot be removed")
		}
	}
	s.applyEndOrgMember(o, uid)
	return successReply(s.cfg.EndOrgMemberStatus, http.StatusNoContent)
}

func (s *Server) applyEndOrgMember(o *org, uid int64) {
	plan := s.planEndOrgMember(o, uid)
	for _, pr := range plan.promote {
		pr.member.role = "admin"
	}
	for _, sp := range plan.remove {
		delete(sp.members, uid)
	}
	for _, sp := range plan.delete {
		s.ds.deleteSpace(sp.id)
	}
	delete(o.members, uid)
}
