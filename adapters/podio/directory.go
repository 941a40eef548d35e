package podio

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/dirgate/dirgate/unified"
)

// DirectoryOptions tunes a Directory.
type DirectoryOptions struct {
	// PageSize is the limit of each page request on the two paged member lists (GET
	// /org/{org_id}/member/ and GET /space/{space_id}/member/v2/); 0 means DefaultPageSize. A value
	// above what Podio serves per page would end the walks early (see DefaultPageSize).
	PageSize int
}

// Directory is the unified.Directory of one linked Podio account: it reads the account's
// organizations, spaces and members through a Client bound to the account's TokenSource and maps
// them to the unified model. Every mapped item carries the Podio object it came from as
// remote_data, with the Podio path it was read from.
//
// Ids are Podio's decimal ids; an id that is not a positive decimal number in canonical form
// answers unified.ErrNotFound without calling Podio. A Podio 404 matches both unified.ErrNotFound
// and *Error; every other failure (403, 420 *RateLimitError, 5xx, network, context) is returned
// wrapped, unchanged in kind. Lists are sorted by unified.CompareIDs and have unique ids.
//
// A Directory holds no state of its own and is safe for concurrent use.
type Directory struct {
	c        *Client
	pageSize int
}

var (
	_ unified.Directory = (*Directory)(nil)
	_ unified.MeUpdater = (*Directory)(nil)
)

// NewDirectory returns the Directory of the account c acts for; c must already be bound to the
// account's TokenSource.
func NewDirectory(c *Client, opts DirectoryOptions) *Directory {
	return &Directory{c: c, pageSize: pageSize(opts.PageSize)}
}

// Me calls GET /user/status (the account and its profile) and GET /org/ (the organizations with
// the spaces the person belongs to). Roles hold the person's role in every organization and every
// such space.
func (d *Directory) Me(ctx context.Context) (*unified.Me, error) {
	st, _, err := d.c.Users.Status(ctx)
	if err != nil {
		return nil, wrap(err, "reading the current user")
	}
	orgs, _, err := d.c.Orgs.List(ctx)
	if err != nil {
		return nil, wrap(err, "listing the current user's organizations")
	}
	return meFromStatus(st, orgs), nil
}

// UpdateMe calls PUT /user/profile/ for title and location (each replaces the list Podio keeps
// with one value) and PUT /user/ for locale and time zone, each only when one of its fields is
// given. A 400 from Podio wraps unified.ErrInvalidInput.
func (d *Directory) UpdateMe(ctx context.Context, u unified.MeUpdate) error {
	if u.Title != nil || u.Location != nil {
		var p ProfileUpdate
		if u.Title != nil {
			p.Title = []string{*u.Title}
		}
		if u.Location != nil {
			p.Location = []string{*u.Location}
		}
		if _, err := d.c.Users.UpdateProfile(ctx, &p); err != nil {
			return refused(err, "updating the current user's profile")
		}
	}
	if u.Locale != nil || u.Timezone != nil {
		var acct UserUpdate
		if u.Locale != nil {
			acct.Locale = *u.Locale
		}
		if u.Timezone != nil {
			acct.Timezone = *u.Timezone
		}
		if _, err := d.c.Users.Update(ctx, &acct); err != nil {
			return refused(err, "updating the current user's locale and time zone")
		}
	}
	return nil
}

// refused wraps a write's error; a 400 says Podio did not accept the input.
func refused(err error, what string) error {
	if e, ok := errors.AsType[*Error](err); ok && e.StatusCode == http.StatusBadRequest {
		return fmt.Errorf("podio: %s: %w: Podio refused it: %s", what, unified.ErrInvalidInput, e.Description)
	}
	return wrap(err, "%s", what)
}

// Organizations calls GET /org/.
func (d *Directory) Organizations(ctx context.Context) ([]unified.Organization, error) {
	orgs, _, err := d.c.Orgs.List(ctx)
	if err != nil {
		return nil, wrap(err, "listing organizations")
	}
	out := make([]unified.Organization, 0, len(orgs))
	for _, o := range orgs {
		if o != nil && o.OrgID > 0 {
			out = append(out, organization(o, "/org/"))
		}
	}
	return sortUnique(out, func(o unified.Organization) string { return o.ID }), nil
}

// Organization calls GET /org/{org_id}.
func (d *Directory) Organization(ctx context.Context, id string) (*unified.Organization, error) {
	orgID, err := parseID("organization", id)
	if err != nil {
		return nil, err
	}
	o, _, err := d.c.Orgs.Get(ctx, orgID)
	if err != nil {
		return nil, wrap(err, "reading organization %d", orgID)
	}
	org := organization(o, fmt.Sprintf("/org/%d", orgID))
	// The answer is for the id asked about, even if Podio left org_id out of it.
	org.ID = id
	return &org, nil
}

// Workspaces calls GET /org/{org_id}/space/ for one organization; for organizationID "" it calls
// GET /org/ and then GET /org/{org_id}/space/ for each organization. An organization that
// disappears between the two calls (404) is left out.
//
// Spaces whose item has no "org" object get the organization name from GET /org/ when listing all
// organizations, and an empty name when listing one (no extra call is made for it).
func (d *Directory) Workspaces(ctx context.Context, organizationID string) ([]unified.Workspace, error) {
	if organizationID != "" {
		orgID, err := parseID("organization", organizationID)
		if err != nil {
			return nil, err
		}
		out, err := d.orgWorkspaces(ctx, orgID, "")
		if err != nil {
			return nil, err
		}
		return sortUnique(out, func(w unified.Workspace) string { return w.ID }), nil
	}
	orgs, _, err := d.c.Orgs.List(ctx)
	if err != nil {
		return nil, wrap(err, "listing organizations")
	}
	var out []unified.Workspace
	for _, o := range orgs {
		if o == nil || o.OrgID <= 0 {
			continue
		}
		ws, err := d.orgWorkspaces(ctx, o.OrgID, o.Name)
		if errors.Is(err, unified.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, ws...)
	}
	return sortUnique(out, func(w unified.Workspace) string { return w.ID }), nil
}

// orgWorkspaces calls GET /org/{org_id}/space/.
func (d *Directory) orgWorkspaces(ctx context.Context, orgID int64, orgName string) ([]unified.Workspace, error) {
	spaces, _, err := d.c.Orgs.ListSpaces(ctx, orgID)
	if err != nil {
		return nil, wrap(err, "listing the spaces of organization %d", orgID)
	}
	path := fmt.Sprintf("/org/%d/space/", orgID)
	out := make([]unified.Workspace, 0, len(spaces))
	for _, s := range spaces {
		if s != nil && s.SpaceID > 0 {
			out = append(out, workspace(s, orgID, orgName, path))
		}
	}
	return out, nil
}

// Workspace calls GET /space/{space_id}.
func (d *Directory) Workspace(ctx context.Context, id string) (*unified.Workspace, error) {
	spaceID, err := parseID("workspace", id)
	if err != nil {
		return nil, err
	}
	s, _, err := d.c.Spaces.Get(ctx, spaceID)
	if err != nil {
		return nil, wrap(err, "reading space %d", spaceID)
	}
	w := workspace(s, 0, "", fmt.Sprintf("/space/%d", spaceID))
	// The answer is for the id asked about, even if Podio left space_id out of it.
	w.ID = id
	return &w, nil
}

// OrganizationUsers walks GET /org/{org_id}/member/ (org admins only) with the configured page
// size. When Podio answers 403 there, the linked person is not an org admin, and the answer is
// the part of the organization they can see, with Partial set: GET /org/{org_id}/space/, then a
// walk of GET /space/{space_id}/member/v2/ for every listed space, merged. A 403 from a space the
// person is not a member of is skipped (open spaces are listed but their members may be closed to
// them), and so is a 404 from any space (deleted between the two calls).
func (d *Directory) OrganizationUsers(ctx context.Context, organizationID string) (unified.UserList, error) {
	orgID, err := parseID("organization", organizationID)
	if err != nil {
		return unified.UserList{}, err
	}
	path := fmt.Sprintf("/org/%d/member/", orgID)
	var users []unified.User
	for m, err := range d.c.Orgs.AllMembers(ctx, orgID, &OrgMembersOptions{Limit: d.pageSize}) {
		if e, ok := errors.AsType[*Error](err); ok && e.IsForbidden() {
			return d.visibleOrganizationUsers(ctx, orgID)
		}
		if err != nil {
			return unified.UserList{}, wrap(err, "listing the members of organization %d", orgID)
		}
		if u, ok := orgMemberUser(m, organizationID, path); ok {
			users = append(users, u)
		}
	}
	// MergeUsers sorts, and folds a member seen twice when the offsets shifted during the walk.
	return unified.UserList{Users: nonNil(unified.MergeUsers(users))}, nil
}

// visibleOrganizationUsers is the union of the members of the organization's spaces visible to the
// linked person.
func (d *Directory) visibleOrganizationUsers(ctx context.Context, orgID int64) (unified.UserList, error) {
	spaces, _, err := d.c.Orgs.ListSpaces(ctx, orgID)
	if err != nil {
		return unified.UserList{}, wrap(err, "listing the spaces of organization %d", orgID)
	}
	var lists [][]unified.User
	for _, s := range spaces {
		if s == nil || s.SpaceID <= 0 {
			continue
		}
		users, err := d.spaceUsers(ctx, s.SpaceID, spaceOrgID(s, orgID), s.Name)
		if e, ok := errors.AsType[*Error](err); ok && (e.IsNotFound() || (e.IsForbidden() && s.Role == "")) {
			continue
		}
		if err != nil {
			return unified.UserList{}, err
		}
		lists = append(lists, users)
	}
	return unified.UserList{Users: nonNil(unified.MergeUsers(lists...)), Partial: true}, nil
}

// WorkspaceUsers calls GET /space/{space_id} (for the space's name and organization) and walks GET
// /space/{space_id}/member/v2/ with the configured page size.
func (d *Directory) WorkspaceUsers(ctx context.Context, workspaceID string) (unified.UserList, error) {
	spaceID, err := parseID("workspace", workspaceID)
	if err != nil {
		return unified.UserList{}, err
	}
	s, _, err := d.c.Spaces.Get(ctx, spaceID)
	if err != nil {
		return unified.UserList{}, wrap(err, "reading space %d", spaceID)
	}
	users, err := d.spaceUsers(ctx, spaceID, spaceOrgID(s, 0), s.Name)
	if err != nil {
		return unified.UserList{}, err
	}
	return unified.UserList{Users: nonNil(unified.MergeUsers(users))}, nil
}

// spaceUsers walks GET /space/{space_id}/member/v2/. The returned error wraps the *Error as it
// came, so callers can decide to skip a space.
func (d *Directory) spaceUsers(ctx context.Context, spaceID, orgID int64, spaceName string) ([]unified.User, error) {
	path := fmt.Sprintf("/space/%d/member/v2/", spaceID)
	var users []unified.User
	for m, err := range d.c.SpaceMembers.All(ctx, spaceID, &SpaceMembersOptions{Limit: d.pageSize}) {
		if err != nil {
			return nil, wrap(err, "listing the members of space %d", spaceID)
		}
		if u, ok := spaceMemberUser(m, formatID(orgID), strconv.FormatInt(spaceID, 10), spaceName, path); ok {
			users = append(users, u)
		}
	}
	return users, nil
}

// User calls GET /org/ and GET /org/{org_id}/member/{user_id} for each organization (404: not a
// member there; 403: the linked person may not look), and merges the memberships found. When none
// is found but some organization answered 403, it calls GET /contact/user/{user_id}, which gives
// the profile without roles; a 403 or 404 there is unified.ErrNotFound.
func (d *Directory) User(ctx context.Context, id string) (*unified.User, error) {
	userID, err := parseID("user", id)
	if err != nil {
		return nil, err
	}
	orgs, _, err := d.c.Orgs.List(ctx)
	if err != nil {
		return nil, wrap(err, "listing organizations")
	}
	var found []unified.User
	forbidden := false
	for _, o := range orgs {
		if o == nil || o.OrgID <= 0 {
			continue
		}
		m, _, err := d.c.Orgs.GetMember(ctx, o.OrgID, userID)
		if e, ok := errors.AsType[*Error](err); ok && e.IsNotFound() {
			continue
		}
		if e, ok := errors.AsType[*Error](err); ok && e.IsForbidden() {
			forbidden = true
			continue
		}
		if err != nil {
			return nil, wrap(err, "reading member %d of organization %d", userID, o.OrgID)
		}
		if u, ok := orgMemberUser(m, strconv.FormatInt(o.OrgID, 10), fmt.Sprintf("/org/%d/member/%d", o.OrgID, userID)); ok {
			u.ID = id
			found = append(found, u)
		}
	}
	if len(found) > 0 {
		u := unified.MergeUsers(found)[0]
		return &u, nil
	}
	if !forbidden {
		return nil, fmt.Errorf("podio: user %d is in none of the linked person's organizations: %w", userID, unified.ErrNotFound)
	}
	c, _, err := d.c.Contacts.GetUser(ctx, userID)
	if e, ok := errors.AsType[*Error](err); ok && (e.IsForbidden() || e.IsNotFound()) {
		return nil, fmt.Errorf("podio: reading the profile of user %d: %w: %w", userID, unified.ErrNotFound, err)
	}
	if err != nil {
		return nil, wrap(err, "reading the profile of user %d", userID)
	}
	u := contactUser(c, id, fmt.Sprintf("/contact/user/%d", userID))
	return &u, nil
}

// parseID turns a unified id into a Podio id. Only canonical decimal numbers are accepted ("+5"
// and "007" are not): the id is echoed back in answers and used as a cursor, so two spellings of
// one object must not exist.
func parseID(kind, id string) (int64, error) {
	n, err := strconv.ParseInt(id, 10, 64)
	if err != nil || n <= 0 || strconv.FormatInt(n, 10) != id {
		return 0, fmt.Errorf("podio: %s id %q is not a Podio id: %w", kind, id, unified.ErrNotFound)
	}
	return n, nil
}

// wrap adds context to a client error. A Podio 404 also matches unified.ErrNotFound, so that
// callers need not know the client's error types; everything else keeps its kind.
func wrap(err error, format string, args ...any) error {
	msg := "podio: " + fmt.Sprintf(format, args...)
	if e, ok := errors.AsType[*Error](err); ok && e.IsNotFound() {
		return fmt.Errorf("%s: %w: %w", msg, unified.ErrNotFound, err)
	}
	return fmt.Errorf("%s: %w", msg, err)
}

// ---- mapping ----

func formatID(id int64) string {
	if id <= 0 {
		return ""
	}
	return strconv.FormatInt(id, 10)
}

func strPtr(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func timePtr(t Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	u := t.UTC()
	return &u
}

func remote(path string, raw json.RawMessage) []unified.RemoteData {
	return []unified.RemoteData{{Path: path, Data: raw}}
}

// nonNil makes an empty list encode as [] rather than null.
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// sortUnique sorts by id with unified.CompareIDs and keeps the first item of each id.
func sortUnique[T any](items []T, id func(T) string) []T {
	slices.SortStableFunc(items, func(a, b T) int { return unified.CompareIDs(id(a), id(b)) })
	items = slices.CompactFunc(items, func(a, b T) bool { return id(a) == id(b) })
	return nonNil(items)
}

// minimal reports a profile with only the data Podio shows for invitees: they have never been
// seen.
func minimal(p *Contact) bool {
	return p == nil || p.LastSeenOn.IsZero()
}

// emails lists the addresses of a person, primary first, without duplicates (compared
// case-insensitively). The first address is the primary one: the account's address when known,
// else the first of the profile's, which Podio lists first.
func emails(primary string, others []string) []unified.Email {
	out := []unified.Email{}
	for _, m := range append([]string{primary}, others...) {
		m = strings.TrimSpace(m)
		if m == "" || slices.ContainsFunc(out, func(e unified.Email) bool { return strings.EqualFold(e.Email, m) }) {
			continue
		}
		out = append(out, unified.Email{Email: m, Type: "work", IsPrimary: len(out) == 0})
	}
	return out
}

// profileUser maps the profile fields shared by every user listing. primaryMail is the account's
// address when the listing has one. A profile without a name is named by its first address, which
// is what Podio shows for invitees anyway.
func profileUser(id string, p *Contact, primaryMail string) unified.User {
	if p == nil {
		p = &Contact{}
	}
	u := unified.User{
		ID:           id,
		Name:         p.Name,
		Emails:       emails(primaryMail, p.Mail),
		Roles:        []unified.UserRole{},
		LastActiveAt: timePtr(p.LastSeenOn),
	}
	if u.Name == "" && len(u.Emails) > 0 {
		u.Name = u.Emails[0].Email
	}
	u.FirstName, u.LastName = unified.SplitName(u.Name)
	if len(p.Title) > 0 {
		u.Title = strPtr(p.Title[0])
	}
	if p.Image != nil {
		u.Avatar = strPtr(p.Image.Link)
		if u.Avatar == nil {
			u.Avatar = strPtr(p.Image.ThumbnailLink)
		}
	}
	return u
}

// memberStatus maps the account status of a member item. Podio lists invitees with an inactive
// account and a minimal profile; an inactive account that has been seen is a deactivated person.
func memberStatus(accountStatus string, p *Contact) string {
	switch accountStatus {
	case "active":
		return unified.StatusActive
	case "inactive":
		if minimal(p) {
			return unified.StatusInvited
		}
		return unified.StatusInactive
	case "blacklisted":
		return unified.StatusDeleted
	}
	if minimal(p) {
		return unified.StatusInvited
	}
	return unified.StatusActive
}

// orgMemberUser maps an item of GET /org/{org_id}/member/ or GET /org/{org_id}/member/{user_id}.
// Items without a user id are skipped: they cannot be named.
func orgMemberUser(m *OrgMember, orgID, path string) (unified.User, bool) {
	if m == nil {
		return unified.User{}, false
	}
	var uid int64
	var mail, status string
	if m.User != nil {
		uid, mail, status = m.User.UserID, m.User.Mail, m.User.Status
	}
	if uid <= 0 && m.Profile != nil {
		uid = m.Profile.UserID
	}
	if uid <= 0 {
		return unified.User{}, false
	}
	u := profileUser(strconv.FormatInt(uid, 10), m.Profile, mail)
	u.Status = memberStatus(status, m.Profile)
	employee := m.Employee
	u.IsEmployee = &employee
	if role := unified.OrganizationRole(m.Role); role != "" {
		u.Roles = append(u.Roles, unified.NewUserRole(role, orgID, ""))
	}
	u.RemoteData = remote(path, m.Raw)
	return u, true
}

// spaceMemberUser maps an item of GET /space/{space_id}/member/v2/. The item has no account
// object, so the status is active unless the profile is an invitee's.
func spaceMemberUser(m *SpaceMemberV2, orgID, spaceID, spaceName, path string) (unified.User, bool) {
	if m == nil || m.Profile == nil || m.Profile.UserID <= 0 {
		return unified.User{}, false
	}
	u := profileUser(strconv.FormatInt(m.Profile.UserID, 10), m.Profile, "")
	u.Status = unified.StatusActive
	if minimal(m.Profile) {
		u.Status = unified.StatusInvited
	}
	employee := m.Employee
	u.IsEmployee = &employee
	u.Workspaces = []unified.UserWorkspace{}
	if role := unified.WorkspaceRole(m.Role); role != "" {
		u.Roles = append(u.Roles, unified.NewUserRole(role, orgID, spaceID))
		u.Workspaces = append(u.Workspaces, unified.UserWorkspace{ID: spaceID, Name: spaceName, Role: role})
	}
	u.RemoteData = remote(path, m.Raw)
	return u, true
}

// contactUser maps GET /contact/user/{user_id}: a profile without memberships.
func contactUser(c *Contact, id, path string) unified.User {
	u := profileUser(id, c, "")
	u.Status = unified.StatusActive
	if minimal(c) {
		u.Status = unified.StatusInvited
	}
	u.RemoteData = remote(path, c.Raw)
	return u
}

// accountStatus maps the status of the linked person's own account.
func accountStatus(s string) string {
	switch s {
	case "inactive":
		return unified.StatusInactive
	case "blacklisted":
		return unified.StatusDeleted
	}
	// Active, or not said: the person just called the API with their token.
	return unified.StatusActive
}

// meFromStatus maps GET /user/status and GET /org/.
func meFromStatus(st *UserStatus, orgs []*Organization) *unified.Me {
	acct := st.User
	if acct == nil {
		acct = &User{}
	}
	uid := acct.UserID
	if uid <= 0 && st.Profile != nil {
		uid = st.Profile.UserID
	}
	u := profileUser(formatID(uid), st.Profile, "")
	if st.Profile == nil || st.Profile.Name == "" {
		u.Name = cmp.Or(acct.Name, acct.Mail)
		u.FirstName, u.LastName = unified.SplitName(u.Name)
	}
	u.Emails = accountEmails(acct)
	u.Status = accountStatus(acct.Status)
	u.Timezone = strPtr(acct.Timezone)
	u.Locale = strPtr(acct.Locale)
	u.CreatedAt = timePtr(acct.CreatedOn)
	u.Workspaces = []unified.UserWorkspace{}

	me := &unified.Me{Organizations: []unified.MeOrganization{}}
	raws := make([][]byte, 0, len(orgs))
	for _, o := range orgs {
		if o == nil {
			continue
		}
		raws = append(raws, o.Raw)
		if o.OrgID <= 0 {
			continue
		}
		orgID := strconv.FormatInt(o.OrgID, 10)
		role := unified.OrganizationRole(o.Role)
		me.Organizations = append(me.Organizations, unified.MeOrganization{ID: orgID, Name: o.Name, Role: role})
		if role != "" {
			u.Roles = append(u.Roles, unified.NewUserRole(role, orgID, ""))
		}
		for _, s := range o.Spaces {
			if s == nil || s.SpaceID <= 0 {
				continue
			}
			wsRole := unified.WorkspaceRole(s.Role)
			if wsRole == "" {
				continue
			}
			spaceID := strconv.FormatInt(s.SpaceID, 10)
			u.Roles = append(u.Roles, unified.NewUserRole(wsRole, orgID, spaceID))
			u.Workspaces = append(u.Workspaces, unified.UserWorkspace{ID: spaceID, Name: s.Name, Role: wsRole})
		}
	}
	slices.SortStableFunc(me.Organizations, func(a, b unified.MeOrganization) int { return unified.CompareIDs(a.ID, b.ID) })
	slices.SortStableFunc(u.Workspaces, func(a, b unified.UserWorkspace) int { return unified.CompareIDs(a.ID, b.ID) })
	// GET /org/ is an array; it is rebuilt from its items, each exactly as Podio sent it.
	orgsRaw := append(append([]byte("["), bytes.Join(raws, []byte(","))...), ']')
	u.RemoteData = []unified.RemoteData{{Path: "/user/status", Data: st.Raw}, {Path: "/org/", Data: orgsRaw}}
	me.User = u
	return me
}

// accountEmails lists the account's addresses, primary first; the single mail field stands in
// when the account lists none.
func accountEmails(acct *User) []unified.Email {
	var primary string
	var others []string
	for _, m := range acct.Mails {
		if m.Primary && primary == "" {
			primary = m.Mail
			continue
		}
		// A second primary would be a Podio inconsistency; it is listed as a plain address.
		others = append(others, m.Mail)
	}
	if primary == "" {
		primary = acct.Mail
	}
	return emails(primary, others)
}

// memberCount reads member_count from the raw object: a count of 0 is a real answer only when
// Podio sent the key, so absent (or null) is unknown, nil. Without a raw object, 0 is taken as
// unknown.
func memberCount(raw json.RawMessage, decoded int) *int {
	if len(raw) == 0 {
		if decoded == 0 {
			return nil
		}
		return &decoded
	}
	var probe struct {
		MemberCount *int `json:"member_count"`
	}
	if json.Unmarshal(raw, &probe) != nil {
		return nil
	}
	return probe.MemberCount
}

// organization maps an item of GET /org/ or the answer of GET /org/{org_id}.
func organization(o *Organization, path string) unified.Organization {
	return unified.Organization{
		ID:          strconv.FormatInt(o.OrgID, 10),
		Name:        o.Name,
		URL:         strPtr(o.URL),
		Status:      cmp.Or(o.Status, "active"),
		PricingPlan: strPtr(o.Type),
		Role:        strPtr(unified.OrganizationRole(o.Role)),
		MemberCount: memberCount(o.Raw, o.MemberCount),
		CreatedAt:   timePtr(o.CreatedOn),
		RemoteData:  remote(path, o.Raw),
	}
}

// spaceOrgID is the organization of a space: org_id, else the embedded org reference, else the
// organization it was listed under.
func spaceOrgID(s *Space, parent int64) int64 {
	switch {
	case s.OrgID > 0:
		return s.OrgID
	case s.Org != nil && s.Org.OrgID > 0:
		return s.Org.OrgID
	}
	return parent
}

// workspace maps an item of GET /org/{org_id}/space/ or the answer of GET /space/{space_id}.
// parentID and parentName name the organization the space was listed under (0 and "" if none).
func workspace(s *Space, parentID int64, parentName, path string) unified.Workspace {
	status := unified.WorkspaceActive
	if s.Archived {
		status = unified.WorkspaceArchived
	}
	orgName := parentName
	if s.Org != nil && s.Org.Name != "" {
		orgName = s.Org.Name
	}
	return unified.Workspace{
		ID:           strconv.FormatInt(s.SpaceID, 10),
		Name:         s.Name,
		Description:  strPtr(s.Description),
		URL:          strPtr(s.URL),
		Status:       status,
		Privacy:      strPtr(s.Privacy),
		Organization: unified.OrgRef{ID: formatID(spaceOrgID(s, parentID)), Name: orgName},
		Role:         strPtr(unified.WorkspaceRole(s.Role)),
		MemberCount:  memberCount(s.Raw, s.MemberCount),
		CreatedAt:    timePtr(s.CreatedOn),
		RemoteData:   remote(path, s.Raw),
	}
}
