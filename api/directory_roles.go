package api

import (
	"encoding/json"
	"net/http"
	"net/url"

	"github.com/labstack/echo/v4"

	"github.com/dirgate/dirgate/unified"
)

// ---- roles: a fixed catalog, served without Podio ----

func (s *Server) listRoles(c echo.Context) error {
	d, err := s.newDirCall(c, append([]string{"applicable_in"}, listParams...)...)
	if err != nil {
		return err
	}
	scope := c.QueryParam("applicable_in")
	if scope != "" && scope != unified.ScopeOrganization && scope != unified.ScopeWorkspace {
		return badRequest(`applicable_in must be "organization" or "workspace"`)
	}
	var items [][]byte
	for _, r := range unified.Roles() {
		if scope == "" || r.ApplicableIn == scope {
			b, err := json.Marshal(r)
			if err != nil {
				return err
			}
			items = append(items, b)
		}
	}
	limit, err := parseLimit(c)
	if err != nil {
		return err
	}
	filters := url.Values{}
	if scope != "" {
		filters.Set("applicable_in", scope)
	}
	bind := cursorBinding{tenant: d.tenant, account: d.account, route: "roles", filters: filters.Encode()}
	codec := cursorCodec{ring: s.ring, now: s.now}
	offset := 0
	if raw := c.QueryParam("next_cursor"); raw != "" {
		cur, err := codec.open(bind, raw)
		if err != nil {
			return err
		}
		offset = min(cur.Offset, len(items))
	}
	end := min(offset+limit, len(items))
	page := listPage{Result: make([]json.RawMessage, 0, end-offset)}
	for _, it := range items[offset:end] {
		page.Result = append(page.Result, it)
	}
	page.ResultCount = len(page.Result)
	if end < len(items) {
		next, err := codec.seal(bind, cursor{Snapshot: "roles", Offset: end, Expires: s.now().Add(s.cursorTTL).Unix()})
		if err != nil {
			return err
		}
		page.NextCursor = &next
	}
	return c.JSON(http.StatusOK, page)
}

func (s *Server) getRole(c echo.Context) error {
	if _, err := s.newDirCall(c); err != nil {
		return err
	}
	r, ok := unified.RoleByID(c.Param("id"))
	if !ok {
		return notFound("role")
	}
	return c.JSON(http.StatusOK, r)
}
