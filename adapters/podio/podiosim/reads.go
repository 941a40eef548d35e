package podiosim

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
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
