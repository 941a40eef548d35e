package podiosim

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// The control API (/_sim/...) lets tests and operators inspect and change the simulated world as if
// through Podio's own UI: no token, no permission checks, no quota, never counted or faulted.

func ctlError(status int, code, desc string) reply {
	return reply{status: status, body: map[string]string{"error": code, "error_description": desc}}
}

func (s *Server) controlRoutes() []*route {
	r := func(name string, h func(*call) reply) *route { return newRoute(name, kindOAuth, h) }
	return []*route{
		r("GET /_sim/routes", s.ctlRoutes),
		r("GET /_sim/state", s.ctlState),
		r("GET /_sim/calls", s.ctlCalls),
		r("DELETE /_sim/calls", s.ctlResetCalls),
		r("GET /_sim/faults", s.ctlFaults),
		r("POST /_sim/faults", s.ctlAddFault),
		r("DELETE /_sim/faults", s.ctlClearFaults),
		r("POST /_sim/clock/advance", s.ctlAdvance),
		r("DELETE /_sim/quota", s.ctlResetQuota),
		r("POST /_sim/people", s.ctlAddPerson),
		r("PATCH /_sim/people/{user_id}", s.ctlPatchPerson),
		r("DELETE /_sim/people/{user_id}", s.ctlDeletePerson),
		r("POST /_sim/spaces/{space_id}/members", s.ctlAddSpaceMember),
		r("PUT /_sim/spaces/{space_id}/members/{user_id}", s.ctlSetSpaceRole),
		r("DELETE /_sim/spaces/{space_id}/members/{user_id}", s.ctlRemoveSpaceMember),
		r("PUT /_sim/orgs/{org_id}/members/{user_id}", s.ctlSetOrgRole),
		r("PATCH /_sim/spaces/{space_id}", s.ctlPatchSpace),
		r("PATCH /_sim/orgs/{org_id}", s.ctlPatchOrg),
	}
}

func (s *Server) serveControl(w http.ResponseWriter, r *http.Request, escPath string) {
	rt, params, allowed := match(s.control, r.Method, escPath)
	if rt == nil {
		if len(allowed) > 0 {
			w.Header().Set("Allow", strings.Join(allowed, ", "))
			writeJSON(w, http.StatusMethodNotAllowed, ctlError(0, "method_not_allowed", "Method "+r.Method+" is not allowed here").body)
			return
		}
		writeJSON(w, http.StatusNotFound, ctlError(0, "not_found", "No such control endpoint").body)
		return
	}
	c := &call{r: r, route: rt, params: params}
	c.body, _ = io.ReadAll(io.LimitReader(r.Body, maxBody))
	s.mu.Lock()
	c.now = s.now()
	rep := rt.h(c)
	s.forgetDerived(r.Method)
	s.mu.Unlock()
	if rep.body == nil {
		w.WriteHeader(rep.status)
		return
	}
	writeJSON(w, rep.status, rep.body)
}

// decodeCtl strictly decodes a control request body.
func decodeCtl(c *call, v any) (reply, bool) {
	dec := json.NewDecoder(bytes.NewReader(c.body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return ctlError(http.StatusBadRequest, "invalid_request", "Invalid JSON body: "+err.Error()), false
	}
	return reply{}, true
}

func ctlID(c *call, name string) (int64, reply, bool) {
	id, ok := parseID(c.params[name])
	if !ok {
		return 0, ctlError(http.StatusBadRequest, "invalid_request", name+" must be a positive integer"), false
	}
	return id, reply{}, true
}

func (s *Server) ctlRoutes(*call) reply { return okJSON(s.Routes()) }

type stateOut struct {
	Now    string           `json:"now"`
	Orgs   []stateOrgOut    `json:"orgs"`
	People []statePersonOut `json:"people"`
}

type stateOrgOut struct {
	OrgID   int64            `json:"org_id"`
	Name    string           `json:"name"`
	Members []stateMemberOut `json:"members"`
	Spaces  []stateSpaceOut  `json:"spaces"`
}

type stateMemberOut struct {
	UserID  int64  `json:"user_id"`
	Role    string `json:"role"`
	Invited bool   `json:"invited"`
}

type stateSpaceOut struct {
	SpaceID  int64            `json:"space_id"`
	Name     string           `json:"name"`
	Archived bool             `json:"archived"`
	Privacy  string           `json:"privacy"`
	Members  []stateMemberOut `json:"members"`
}

type statePersonOut struct {
	UserID    int64  `json:"user_id"`
	ProfileID int64  `json:"profile_id"`
	Name      string `json:"name"`
	Mail      string `json:"mail"`
	Title     string `json:"title"`
	Status    string `json:"status"`
	Employee  bool   `json:"employee"`
}

func personState(p *person) statePersonOut {
	return statePersonOut{UserID: p.userID, ProfileID: p.profileID, Name: p.name, Mail: p.mail, Title: strings.Join(p.title, ", "), Status: p.status, Employee: p.employee}
}

func (s *Server) spaceState(sp *space) stateSpaceOut {
	out := stateSpaceOut{SpaceID: sp.id, Name: sp.name, Archived: sp.archived, Privacy: sp.privacy, Members: []stateMemberOut{}}
	for _, id := range s.ds.personIDs {
		if m := sp.members[id]; m != nil {
			out.Members = append(out.Members, stateMemberOut{UserID: id, Role: m.role, Invited: m.invited})
		}
	}
	return out
}

func (s *Server) orgState(o *org) stateOrgOut {
	out := stateOrgOut{OrgID: o.id, Name: o.name, Members: []stateMemberOut{}, Spaces: []stateSpaceOut{}}
	for _, id := range s.ds.personIDs {
		if m := o.members[id]; m != nil {
			out.Members = append(out.Members, stateMemberOut{UserID: id, Role: m.role, Invited: m.invited})
		}
	}
	for _, sp := range s.ds.orgSpaces(o.id) {
		out.Spaces = append(out.Spaces, s.spaceState(sp))
	}
	return out
}

func (s *Server) ctlState(c *call) reply {
	out := stateOut{Now: c.now.Format(datetimeLayout), Orgs: []stateOrgOut{}, People: []statePersonOut{}}
	for _, id := range s.ds.orgIDs {
		out.Orgs = append(out.Orgs, s.orgState(s.ds.orgs[id]))
	}
	for _, id := range s.ds.personIDs {
		out.People = append(out.People, personState(s.ds.people[id]))
	}
	return okJSON(out)
}

func (s *Server) ctlCalls(*call) reply {
	out := make(map[string]int, len(s.calls))
	for k, v := range s.calls {
		out[k] = v
	}
	return okJSON(out)
}

func (s *Server) ctlResetCalls(*call) reply {
	clear(s.calls)
	clear(s.limited)
	return reply{status: http.StatusNoContent}
}

func (s *Server) ctlFaults(*call) reply {
	out := make([]Fault, 0, len(s.faults))
	for _, fs := range s.faults {
		f := fs.f
		f.Times = max(fs.left, 0)
		out = append(out, f)
	}
	return okJSON(out)
}

func (s *Server) ctlAddFault(c *call) reply {
	var f Fault
	if rep, ok := decodeCtl(c, &f); !ok {
		return rep
	}
	if err := s.addFaultLocked(f); err != nil {
		return ctlError(http.StatusBadRequest, "invalid_fault", err.Error())
	}
	return reply{status: http.StatusCreated, body: f}
}

func (s *Server) ctlClearFaults(*call) reply {
	s.faults = nil
	return reply{status: http.StatusNoContent}
}

func (s *Server) ctlAdvance(c *call) reply {
	var in struct {
		Seconds float64 `json:"seconds"`
	}
	if rep, ok := decodeCtl(c, &in); !ok {
		return rep
	}
	if in.Seconds < 0 {
		return ctlError(http.StatusBadRequest, "invalid_request", "seconds must not be negative")
	}
	s.offset += time.Duration(in.Seconds * float64(time.Second))
	return okJSON(map[string]string{"now": s.now().Format(datetimeLayout)})
}

func (s *Server) ctlResetQuota(*call) reply {
	clear(s.quota)
	return reply{status: http.StatusNoContent}
}

func (s *Server) ctlAddPerson(c *call) reply {
	var in struct {
		Name     string `json:"name"`
		Mail     string `json:"mail"`
		OrgID    int64  `json:"org_id"`
		Employee bool   `json:"employee"`
		OrgRole  string `json:"org_role"`
		Password string `json:"password"`
		Title    string `json:"title"`
	}
	if rep, ok := decodeCtl(c, &in); !ok {
		return rep
	}
	if in.Name == "" || !strings.Contains(in.Mail, "@") {
		return ctlError(http.StatusBadRequest, "invalid_request", "name and a valid mail are required")
	}
	if s.ds.personByMail(in.Mail) != nil {
		return ctlError(http.StatusBadRequest, "invalid_request", "a person with this mail already exists")
	}
	if in.OrgRole == "" {
		in.OrgRole = "regular"
	}
	if in.OrgRole != "regular" && in.OrgRole != "admin" {
		return ctlError(http.StatusBadRequest, "invalid_request", "org_role must be regular or admin")
	}
	o := s.ds.orgs[in.OrgID]
	if o == nil {
		return ctlError(http.StatusNotFound, "not_found", "no such org")
	}
	p := s.ds.addPerson(in.Name, in.Mail, in.Employee, c.now)
	p.lastSeenOn = time.Time{}
	p.title = arr(in.Title)
	if in.Password != "" {
		p.password = in.Password
	}
	s.ds.joinOrg(o, p, in.OrgRole, c.now)
	return reply{status: http.StatusCreated, body: map[string]int64{"user_id": p.userID, "profile_id": p.profileID}}
}

func (s *Server) ctlPerson(c *call) (*person, reply, bool) {
	id, rep, ok := ctlID(c, "user_id")
	if !ok {
		return nil, rep, false
	}
	p := s.ds.people[id]
	if p == nil {
		return nil, ctlError(http.StatusNotFound, "not_found", "no such person"), false
	}
	return p, reply{}, true
}

func (s *Server) ctlPatchPerson(c *call) reply {
	p, rep, ok := s.ctlPerson(c)
	if !ok {
		return rep
	}
	var in struct {
		Name   *string `json:"name"`
		Mail   *string `json:"mail"`
		Title  *string `json:"title"`
		Status *string `json:"status"`
	}
	if rep, ok := decodeCtl(c, &in); !ok {
		return rep
	}
	if in.Mail != nil {
		if other := s.ds.personByMail(*in.Mail); !strings.Contains(*in.Mail, "@") || (other != nil && other != p) {
			return ctlError(http.StatusBadRequest, "invalid_request", "mail is invalid or taken")
		}
	}
	if in.Status != nil && *in.Status != "active" && *in.Status != "inactive" {
		return ctlError(http.StatusBadRequest, "invalid_request", "status must be active or inactive")
	}
	if in.Name != nil {
		p.name = *in.Name
	}
	if in.Mail != nil {
		p.mail = *in.Mail
	}
	if in.Title != nil {
		p.title = arr(*in.Title)
	}
	if in.Status != nil {
		p.status = *in.Status
		if p.status == "active" && p.invitee() {
			p.activatedOn = c.now // the invitation was accepted
			if p.password == "" {
				p.password = "demo"
			}
		}
	}
	return okJSON(personState(p))
}

func (s *Server) ctlDeletePerson(c *call) reply {
	p, rep, ok := s.ctlPerson(c)
	if !ok {
		return rep
	}
	for _, id := range s.ds.spaceIDs {
		delete(s.ds.spaces[id].members, p.userID)
	}
	for _, id := range s.ds.orgIDs {
		delete(s.ds.orgs[id].members, p.userID)
	}
	p.status = "inactive"
	return reply{status: http.StatusNoContent}
}

func (s *Server) ctlSpace(c *call) (*space, reply, bool) {
	id, rep, ok := ctlID(c, "space_id")
	if !ok {
		return nil, rep, false
	}
	sp := s.ds.spaces[id]
	if sp == nil {
		return nil, ctlError(http.StatusNotFound, "not_found", "no such space"), false
	}
	return sp, reply{}, true
}

func (s *Server) ctlAddSpaceMember(c *call) reply {
	sp, rep, ok := s.ctlSpace(c)
	if !ok {
		return rep
	}
	var in struct {
		UserID int64  `json:"user_id"`
		Role   string `json:"role"`
	}
	if rep, ok := decodeCtl(c, &in); !ok {
		return rep
	}
	if !validRole(in.Role) {
		return ctlError(http.StatusBadRequest, "invalid_request", "role must be light, regular or admin")
	}
	p := s.ds.people[in.UserID]
	if p == nil {
		return ctlError(http.StatusNotFound, "not_found", "no such person")
	}
	s.ds.joinSpace(sp, p, in.Role, c.now).role = in.Role
	return reply{status: http.StatusCreated, body: map[string]any{}}
}

func (s *Server) ctlSetSpaceRole(c *call) reply {
	sp, rep, ok := s.ctlSpace(c)
	if !ok {
		return rep
	}
	uid, rep, ok := ctlID(c, "user_id")
	if !ok {
		return rep
	}
	var in struct {
		Role string `json:"role"`
	}
	if rep, ok := decodeCtl(c, &in); !ok {
		return rep
	}
	if !validRole(in.Role) {
		return ctlError(http.StatusBadRequest, "invalid_request", "role must be light, regular or admin")
	}
	m := sp.members[uid]
	if m == nil {
		return ctlError(http.StatusNotFound, "not_found", "not a member of this space")
	}
	m.role = in.Role
	return reply{status: http.StatusNoContent}
}

func (s *Server) ctlRemoveSpaceMember(c *call) reply {
	sp, rep, ok := s.ctlSpace(c)
	if !ok {
		return rep
	}
	uid, rep, ok := ctlID(c, "user_id")
	if !ok {
		return rep
	}
	if sp.members[uid] == nil {
		return ctlError(http.StatusNotFound, "not_found", "not a member of this space")
	}
	delete(sp.members, uid)
	return reply{status: http.StatusNoContent}
}

func (s *Server) ctlOrg(c *call) (*org, reply, bool) {
	id, rep, ok := ctlID(c, "org_id")
	if !ok {
		return nil, rep, false
	}
	o := s.ds.orgs[id]
	if o == nil {
		return nil, ctlError(http.StatusNotFound, "not_found", "no such org"), false
	}
	return o, reply{}, true
}

// ctlSetOrgRole sets a person's org role, making them an org member first if needed.
func (s *Server) ctlSetOrgRole(c *call) reply {
	o, rep, ok := s.ctlOrg(c)
	if !ok {
		return rep
	}
	uid, rep, ok := ctlID(c, "user_id")
	if !ok {
		return rep
	}
	var in struct {
		Role string `json:"role"`
	}
	if rep, ok := decodeCtl(c, &in); !ok {
		return rep
	}
	if in.Role != "regular" && in.Role != "admin" {
		return ctlError(http.StatusBadRequest, "invalid_request", "role must be regular or admin")
	}
	p := s.ds.people[uid]
	if p == nil {
		return ctlError(http.StatusNotFound, "not_found", "no such person")
	}
	s.ds.joinOrg(o, p, in.Role, c.now).role = in.Role
	return reply{status: http.StatusNoContent}
}

func (s *Server) ctlPatchSpace(c *call) reply {
	sp, rep, ok := s.ctlSpace(c)
	if !ok {
		return rep
	}
	var in struct {
		Name     *string `json:"name"`
		Archived *bool   `json:"archived"`
	}
	if rep, ok := decodeCtl(c, &in); !ok {
		return rep
	}
	if in.Name != nil {
		sp.name = *in.Name
	}
	if in.Archived != nil {
		sp.archived = *in.Archived
	}
	return okJSON(s.spaceState(sp))
}

func (s *Server) ctlPatchOrg(c *call) reply {
	o, rep, ok := s.ctlOrg(c)
	if !ok {
		return rep
	}
	var in struct {
		Name *string `json:"name"`
	}
	if rep, ok := decodeCtl(c, &in); !ok {
		return rep
	}
	if in.Name != nil {
		if *in.Name == "" {
			return ctlError(http.StatusBadRequest, "invalid_request", fmt.Sprintf("name of org %d must not be empty", o.id))
		}
		o.name = *in.Name
	}
	return okJSON(s.orgState(o))
}
