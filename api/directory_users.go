package api

import (
	"context"
	"encoding/json"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/dirgate/dirgate/unified"
)

// ---- users ----

var userFilterParams = []string{"organization_id", "workspace_id", "email", "role", "status", "query", "inactive_since"}

// userFilter is the parsed filters of GET /users that are applied to the cached list.
type userFilter struct {
	org, email, role, status, query string
	inactiveSince                   *time.Time
}

func parseUserFilter(q url.Values) (userFilter, error) {
	f := userFilter{
		email:  strings.TrimSpace(q.Get("email")),
		role:   q.Get("role"),
		status: q.Get("status"),
		query:  strings.ToLower(strings.TrimSpace(q.Get("query"))),
	}
	if q.Has("email") && (f.email == "" || !plainText(q.Get("email"), 320)) {
		return f, badRequest("email must be a non-empty address")
	}
	if q.Has("query") && (f.query == "" || !plainText(q.Get("query"), 200)) {
		return f, badRequest("query must be 1 to 200 characters of text without control characters")
	}
	if f.role != "" {
		r, ok := unified.RoleByID(f.role)
		if !ok {
			var ids []string
			for _, r := range unified.Roles() {
				ids = append(ids, r.ID)
			}
			return f, badRequest("role must be one of: " + strings.Join(ids, ", "))
		}
		if r.ApplicableIn == unified.ScopeWorkspace && q.Get("workspace_id") == "" {
			return f, badRequest("a workspace role filter needs workspace_id: users listed by organization carry organization roles only")
		}
	}
	switch f.status {
	case "", unified.StatusActive, unified.StatusInactive, unified.StatusInvited, unified.StatusDeleted:
	default:
		return f, badRequest("status must be one of: active, inactive, invited, deleted")
	}
	if v := q.Get("inactive_since"); v != "" {
		t, err := parseDateOrTime(v)
		if err != nil {
			return f, badRequest("inactive_since must be a date (2006-01-02) or an RFC 3339 time")
		}
		f.inactiveSince = &t
	}
	if q.Get("workspace_id") != "" {
		// The workspace list is the base; an organization filter then keeps its members only if
		// the workspace belongs to that organization.
		f.org = q.Get("organization_id")
	}
	return f, nil
}

func parseDateOrTime(v string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return t.UTC(), nil
	}
	return time.Parse(time.DateOnly, v)
}

func (f userFilter) empty() bool {
	return f == userFilter{}
}

// matches applies the filter to a user.
func (f userFilter) matches(u *unified.User) bool {
	if f.status != "" && u.Status != f.status {
		return false
	}
	if f.email != "" && !slices.ContainsFunc(u.Emails, func(e unified.Email) bool { return strings.EqualFold(e.Email, f.email) }) {
		return false
	}
	if f.role != "" && !slices.ContainsFunc(u.Roles, func(r unified.UserRole) bool { return r.ID == f.role }) {
		return false
	}
	if f.org != "" && !slices.ContainsFunc(u.Roles, func(r unified.UserRole) bool { return r.OrganizationID != nil && *r.OrganizationID == f.org }) {
		return false
	}
	if f.query != "" && !strings.Contains(strings.ToLower(u.Name), f.query) &&
		!slices.ContainsFunc(u.Emails, func(e unified.Email) bool { return strings.Contains(strings.ToLower(e.Email), f.query) }) {
		return false
	}
	if f.inactiveSince != nil && u.LastActiveAt != nil && !u.LastActiveAt.Before(*f.inactiveSince) {
		return false
	}
	return true
}

// filterUser is the part of a User the filters read; decoding it skips remote_data.
type filterUser struct {
	Name         string             `json:"name"`
	Emails       []unified.Email    `json:"emails"`
	Status       string             `json:"status"`
	Roles        []unified.UserRole `json:"roles"`
	LastActiveAt *time.Time         `json:"last_active_at"`
}

func (s *Server) listUsers(c echo.Context) error {
	// The answer is JSON or CSV depending on Accept (see usersCSV).
	c.Response().Header().Add("Vary", "Accept")
	d, err := s.newDirCall(c, append(slices.Clone(userFilterParams), listParams...)...)
	if err != nil {
		return err
	}
	q := c.QueryParams()
	f, err := parseUserFilter(q)
	if err != nil {
		return err
	}
	spec := d.usersSpec(q.Get("organization_id"), q.Get("workspace_id"))
	for _, k := range userFilterParams {
		if v := q.Get(k); v != "" {
			spec.filters.Set(k, v)
		}
	}
	if !f.empty() {
		spec.keep = func(item []byte) bool {
			var u filterUser
			if json.Unmarshal(item, &u) != nil {
				return false
			}
			return f.matches(&unified.User{Name: u.Name, Emails: u.Emails, Status: u.Status, Roles: u.Roles, LastActiveAt: u.LastActiveAt})
		}
	}
	if prefersCSV(c.Request()) {
		return d.usersCSV(spec)
	}
	return d.list(spec)
}

// usersSpec is the unfiltered list of the workspace's users (when ws is given), else of the
// organization's (org), else of everyone in the linked person's organizations.
func (d *dirReader) usersSpec(org, ws string) listSpec {
	spec := listSpec{route: "users", ttl: d.s.ttl.Users, strip: stripUser, filters: url.Values{}}
	switch {
	case ws != "":
		spec.key = "users:ws:" + ws
		spec.fetch = d.userFetch(func(ctx context.Context, dir unified.Directory) (unified.UserList, error) {
			return dir.WorkspaceUsers(ctx, ws)
		})
	case org != "":
		spec.key = "users:org:" + org
		spec.fetch = d.userFetch(func(ctx context.Context, dir unified.Directory) (unified.UserList, error) {
			return dir.OrganizationUsers(ctx, org)
		})
	default:
		spec.key = "users"
		spec.fetch = d.userFetch(d.allUsers)
	}
	return spec
}

func (d *dirReader) userFetch(get func(context.Context, unified.Directory) (unified.UserList, error)) func(context.Context) ([][]byte, bool, error) {
	return func(ctx context.Context) ([][]byte, bool, error) {
		l, err := get(ctx, d.directory())
		if err != nil {
			return nil, false, err
		}
		b, err := encodeAll(l.Users, func(u *unified.User) string { return u.ID })
		return b, l.Partial, err
	}
}

// allUsers is every person in every organization of the linked person. The organization list
// comes through the cache, so a warm cache costs only the member pages.
func (d *dirReader) allUsers(ctx context.Context, dir unified.Directory) (unified.UserList, error) {
	items, _, err := d.readAll(ctx, d.organizationsSpec())
	if err != nil {
		return unified.UserList{}, err
	}
	var (
		lists   [][]unified.User
		partial bool
	)
	for _, it := range items {
		id, err := idOf(it)
		if err != nil {
			return unified.UserList{}, err
		}
		l, err := dir.OrganizationUsers(ctx, id)
		if err != nil {
			return unified.UserList{}, err
		}
		lists = append(lists, l.Users)
		partial = partial || l.Partial
	}
	return unified.UserList{Users: unified.MergeUsers(lists...), Partial: partial}, nil
}

func (s *Server) getUser(c echo.Context) error {
	d, err := s.newDirCall(c)
	if err != nil {
		return err
	}
	id := c.Param("id")
	return d.value("user:"+id, s.ttl.Users, func(ctx context.Context, dir unified.Directory) (any, error) {
		return dir.User(ctx, id)
	}, stripUser)
}
