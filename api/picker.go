package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/dirgate/dirgate/internal/store"
	"github.com/dirgate/dirgate/unified"
)

// The workspace picker: a tenant creates a picker session for one of its accounts and opens its
// url in a popup (see ui/static/dirgate.js); the person picks workspaces and the page posts the
// choice to the session's return_origin only. The token in the url is the only credential of the
// page and of its data request, and it reaches only that account's organizations and workspaces.

// pickerTTL is how long a picker session lives.
const pickerTTL = 15 * time.Minute

// maxPickerOrgs bounds organization_ids.
const maxPickerOrgs = 100

type pickerSessionRequest struct {
	IntegratedAccountID string   `json:"integrated_account_id"`
	MultiSelect         bool     `json:"multi_select"`
	OrganizationIDs     []string `json:"organization_ids"`
	ReturnOrigin        string   `json:"return_origin"`
}

type pickerSessionResponse struct {
	URL       string    `json:"url"`
	ExpiresAt time.Time `json:"expires_at"`
}

// createPickerSession answers POST /picker-sessions.
func (s *Server) createPickerSession(c echo.Context) error {
	var req pickerSessionRequest
	if err := bindJSON(c, &req); err != nil {
		return err
	}
	if req.IntegratedAccountID == "" {
		return badRequest("integrated_account_id is required")
	}
	origin, err := checkOrigin(req.ReturnOrigin)
	if err != nil {
		return err
	}
	if len(req.OrganizationIDs) > maxPickerOrgs {
		return badRequest(fmt.Sprintf("organization_ids takes at most %d ids", maxPickerOrgs))
	}
	for _, id := range req.OrganizationIDs {
		if id == "" || len(id) > 64 {
			return badRequest("organization_ids must be non-empty ids")
		}
	}
	ctx := c.Request().Context()
	tenant := tenantOf(c)
	if _, err := s.store.GetAccount(ctx, tenant, req.IntegratedAccountID); err != nil {
		return err
	}
	token := randomToken(32)
	expires := s.now().Add(pickerTTL).UTC().Truncate(time.Second)
	if err := s.store.PutPickerSession(ctx, token, store.PickerSession{
		Tenant: tenant, AccountID: req.IntegratedAccountID, MultiSelect: req.MultiSelect,
		OrganizationIDs: req.OrganizationIDs, ReturnOrigin: origin, ExpiresAt: expires,
	}); err != nil {
		return limitError(err)
	}
	return c.JSON(http.StatusCreated, pickerSessionResponse{
		URL: s.publicURL.JoinPath("picker", token).String(), ExpiresAt: expires,
	})
}

// checkOrigin accepts a bare http(s) origin (scheme://host[:port], nothing else) and returns it
// in the form browsers report in MessageEvent.origin: lower case, no default port.
func checkOrigin(raw string) (string, error) {
	if raw == "" {
		return "", badRequest("return_origin is required")
	}
	bad := badRequest(`return_origin must be a bare http or https origin, like "https://app.example.com"`)
	if len(raw) > 300 {
		return "", bad
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil ||
		(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || strings.HasSuffix(raw, "#") ||
		u.Opaque != "" || strings.HasSuffix(u.Host, ":") {
		return "", bad
	}
	host, port := strings.ToLower(u.Hostname()), u.Port()
	if (u.Scheme == "https" && port == "443") || (u.Scheme == "http" && port == "80") {
		port = ""
	}
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	origin := u.Scheme + "://" + host
	if port != "" {
		origin += ":" + port
	}
	return origin, nil
}

var pickerPageTemplate = pageTemplate("picker.html")

// pickerPage answers GET /picker/{token}: the page, whose script reads the session's data. An
// unknown or expired token gets the message page.
func (s *Server) pickerPage(c echo.Context) error {
	token := c.Param("token")
	ps, err := s.store.GetPickerSession(c.Request().Context(), token)
	if errors.Is(err, unified.ErrNotFound) {
		return renderPage(c, http.StatusNotFound, messagePage, struct {
			Title, Detail string
			Error         bool
		}{"This picker has expired", "Close this window and open the workspace picker again.", true}, pageOptions{})
	}
	if err != nil {
		return err
	}
	return renderPage(c, http.StatusOK, pickerPageTemplate, struct {
		Title        string
		DataURL      string
		ReturnOrigin string
		Multi        bool
	}{"Choose workspaces", "/picker/" + url.PathEscape(token) + "/data", ps.ReturnOrigin, ps.MultiSelect}, pageOptions{})
}

// pickerWorkspace is a workspace as the picker shows it.
type pickerWorkspace struct {
	ID             string  `json:"id"`
	Name           string  `json:"name"`
	OrganizationID string  `json:"organization_id"`
	Role           *string `json:"role"`
	RoleName       *string `json:"role_name"`
	MemberCount    *int    `json:"member_count,omitempty"`
}

// pickerOrganization is an organization with the workspaces the picker shows in it.
type pickerOrganization struct {
	ID         string            `json:"id"`
	Name       string            `json:"name"`
	Role       *string           `json:"role"`
	RoleName   *string           `json:"role_name"`
	Workspaces []pickerWorkspace `json:"workspaces"`
}

type pickerData struct {
	MultiSelect   bool                 `json:"multi_select"`
	Organizations []pickerOrganization `json:"organizations"`
}

// pickerData answers GET /picker/{token}/data: the session's organizations and their workspaces,
// read through the directory cache like the unified routes.
func (s *Server) pickerData(c echo.Context) error {
	c.Response().Header().Set("Cache-Control", "no-store")
	ctx := c.Request().Context()
	ps, err := s.store.GetPickerSession(ctx, c.Param("token"))
	if errors.Is(err, unified.ErrNotFound) {
		return notFound("picker session")
	}
	if err != nil {
		return err
	}
	a, err := s.accountForRead(ctx, ps.Tenant, ps.AccountID)
	if err != nil {
		if errors.Is(err, unified.ErrNotFound) {
			return notFound("integrated account")
		}
		return err
	}
	s.spendAs(c, a)
	ctx = c.Request().Context()
	d := &dirReader{s: s, tenant: ps.Tenant, account: ps.AccountID}
	orgItems, _, err := d.readAll(ctx, d.organizationsSpec())
	if err != nil {
		return err
	}
	wsItems, _, err := d.readAll(ctx, d.workspacesSpec(""))
	if err != nil {
		return err
	}
	out := pickerData{MultiSelect: ps.MultiSelect, Organizations: []pickerOrganization{}}
	index := map[string]int{}
	for _, it := range orgItems {
		var o unified.Organization
		if err := json.Unmarshal(it, &o); err != nil {
			return fmt.Errorf("cached organization: %w", err)
		}
		if len(ps.OrganizationIDs) > 0 && !slices.Contains(ps.OrganizationIDs, o.ID) {
			continue
		}
		index[o.ID] = len(out.Organizations)
		out.Organizations = append(out.Organizations, pickerOrganization{
			ID: o.ID, Name: o.Name, Role: o.Role, RoleName: roleName(o.Role), Workspaces: []pickerWorkspace{},
		})
	}
	for _, it := range wsItems {
		var w unified.Workspace
		if err := json.Unmarshal(it, &w); err != nil {
			return fmt.Errorf("cached workspace: %w", err)
		}
		i, ok := index[w.Organization.ID]
		if !ok {
			continue
		}
		out.Organizations[i].Workspaces = append(out.Organizations[i].Workspaces, pickerWorkspace{
			ID: w.ID, Name: w.Name, OrganizationID: w.Organization.ID, Role: w.Role, RoleName: roleName(w.Role),
			MemberCount: w.MemberCount,
		})
	}
	for i := range out.Organizations {
		slices.SortStableFunc(out.Organizations[i].Workspaces, func(a, b pickerWorkspace) int {
			return strings.Compare(strings.ToLower(a.Name), strings.ToLower(b.Name))
		})
	}
	slices.SortStableFunc(out.Organizations, func(a, b pickerOrganization) int {
		return strings.Compare(strings.ToLower(a.Name), strings.ToLower(b.Name))
	})
	return c.JSON(http.StatusOK, out)
}

// roleName is the catalog name of a role id, for the badge.
func roleName(id *string) *string {
	if id == nil {
		return nil
	}
	r, ok := unified.RoleByID(*id)
	if !ok {
		return id
	}
	return &r.Name
}
