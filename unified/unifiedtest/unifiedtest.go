package unifiedtest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/dirgate/dirgate/unified"
)

// Fixture tells Run how to reach the adapter under test and which objects exist.
type Fixture struct {
	// New returns a Directory for an account that may read everything (an org admin).
	New func(t *testing.T) unified.Directory
	// NewLimited returns a Directory for an account that is not an org admin of OrganizationID
	// (nil skips the partial-list checks).
	NewLimited func(t *testing.T) unified.Directory
	// OrganizationID is an organization the account of New belongs to; WorkspaceID is a
	// workspace that account can see.
	OrganizationID, WorkspaceID string
	// MissingID is an id no object has.
	MissingID string
	// Failing returns a Directory as New's whose provider answers every call with the failure
	// named: FailRateLimited (the provider's quota is spent, with a wait) or FailUnavailable (a
	// 5xx answer). nil skips the error-contract checks.
	Failing func(t *testing.T, failure string) unified.Directory
}

// Failures a Fixture's Failing provides.
const (
	FailRateLimited = "rate_limited"
	FailUnavailable = "unavailable"
)

// Run runs the conformance suite against f, each check in its own subtest.
func Run(t *testing.T, f Fixture) {
	t.Helper()
	if f.New == nil || f.OrganizationID == "" || f.WorkspaceID == "" || f.MissingID == "" {
		t.Fatal("unifiedtest: the Fixture needs New, OrganizationID, WorkspaceID and MissingID")
	}
	t.Run("Me", func(t *testing.T) { testMe(t, f) })
	t.Run("Organizations", func(t *testing.T) { testOrganizations(t, f) })
	t.Run("Workspaces", func(t *testing.T) { testWorkspaces(t, f) })
	t.Run("OrganizationUsers", func(t *testing.T) { testOrganizationUsers(t, f) })
	t.Run("WorkspaceUsers", func(t *testing.T) { testWorkspaceUsers(t, f) })
	t.Run("User", func(t *testing.T) { testUser(t, f) })
	t.Run("NotFound", func(t *testing.T) { testNotFound(t, f) })
	t.Run("ErrorContract", func(t *testing.T) {
		if f.Failing == nil {
			t.Skip("the Fixture has no Failing")
		}
		testErrorContract(t, f)
	})
	t.Run("PartialOrganizationUsers", func(t *testing.T) {
		if f.NewLimited == nil {
			t.Skip("the Fixture has no NewLimited")
		}
		testPartial(t, f)
	})
}

func testMe(t *testing.T, f Fixture) {
	me, err := f.New(t).Me(t.Context())
	if err != nil {
		t.Fatalf("Me: %v", err)
	}
	if me == nil {
		t.Fatal("Me returned nil without an error")
	}
	checkUser(t, "Me", me.User)
	if me.Organizations == nil {
		t.Error("Me: organizations is nil (encodes as null, the contract says array)")
	}
	orgIDs := make([]string, 0, len(me.Organizations))
	for _, o := range me.Organizations {
		orgIDs = append(orgIDs, o.ID)
		if o.Name == "" {
			t.Errorf("Me: organization %q has no name", o.ID)
		}
		if o.Role != "" {
			checkCatalogRole(t, fmt.Sprintf("Me: organization %q role", o.ID), o.Role, unified.ScopeOrganization)
		}
	}
	checkIDs(t, "Me organizations", orgIDs)
	if !slices.Contains(orgIDs, f.OrganizationID) {
		t.Errorf("Me: organizations %v do not include %q", orgIDs, f.OrganizationID)
	}
	for _, r := range me.Roles {
		if r.OrganizationID != nil && !slices.Contains(orgIDs, *r.OrganizationID) {
			t.Errorf("Me: role %s is held in organization %q, which is not among Me's organizations %v", r.ID, *r.OrganizationID, orgIDs)
		}
	}
	checkRoundTrip(t, "Me", me)
}

func testOrganizations(t *testing.T, f Fixture) {
	ctx := t.Context()
	d := f.New(t)
	orgs, err := d.Organizations(ctx)
	if err != nil {
		t.Fatalf("Organizations: %v", err)
	}
	ids := make([]string, 0, len(orgs))
	for _, o := range orgs {
		ids = append(ids, o.ID)
		checkOrganization(t, o)
	}
	checkIDs(t, "Organizations", ids)
	if !slices.Contains(ids, f.OrganizationID) {
		t.Fatalf("Organizations %v do not include %q", ids, f.OrganizationID)
	}
	for _, want := range orgs {
		got, err := d.Organization(ctx, want.ID)
		if err != nil {
			t.Errorf("Organization(%q): %v", want.ID, err)
			continue
		}
		checkOrganization(t, *got)
		if got.ID != want.ID || got.Name != want.Name || deref(got.Role) != deref(want.Role) {
			t.Errorf("Organization(%q) = id %q name %q role %q; the list has id %q name %q role %q",
				want.ID, got.ID, got.Name, deref(got.Role), want.ID, want.Name, deref(want.Role))
		}
	}
}

func checkOrganization(t *testing.T, o unified.Organization) {
	t.Helper()
	what := fmt.Sprintf("organization %q", o.ID)
	if o.ID == "" || o.Name == "" || o.Status == "" {
		t.Errorf("%s: id %q, name %q, status %q; all are required", what, o.ID, o.Name, o.Status)
	}
	if o.Role != nil {
		checkCatalogRole(t, what+" role", *o.Role, unified.ScopeOrganization)
	}
	if o.MemberCount != nil && *o.MemberCount < 0 {
		t.Errorf("%s: member_count %d", what, *o.MemberCount)
	}
	checkRemoteData(t, what, o.RemoteData)
	checkRoundTrip(t, what, o)
}

func testWorkspaces(t *testing.T, f Fixture) {
	ctx := t.Context()
	d := f.New(t)
	all, err := d.Workspaces(ctx, "")
	if err != nil {
		t.Fatalf(`Workspaces(""): %v`, err)
	}
	inOrg, err := d.Workspaces(ctx, f.OrganizationID)
	if err != nil {
		t.Fatalf("Workspaces(%q): %v", f.OrganizationID, err)
	}
	byID := map[string]unified.Workspace{}
	allIDs := make([]string, 0, len(all))
	for _, w := range all {
		checkWorkspace(t, w)
		allIDs = append(allIDs, w.ID)
		byID[w.ID] = w
	}
	checkIDs(t, `Workspaces("")`, allIDs)
	orgIDs := make([]string, 0, len(inOrg))
	for _, w := range inOrg {
		checkWorkspace(t, w)
		orgIDs = append(orgIDs, w.ID)
		if w.Organization.ID != f.OrganizationID {
			t.Errorf("Workspaces(%q): workspace %q is in organization %q", f.OrganizationID, w.ID, w.Organization.ID)
		}
		if _, ok := byID[w.ID]; !ok {
			t.Errorf(`Workspaces(%q) has workspace %q, which Workspaces("") lacks`, f.OrganizationID, w.ID)
		}
	}
	checkIDs(t, fmt.Sprintf("Workspaces(%q)", f.OrganizationID), orgIDs)
	if len(inOrg) == 0 {
		t.Errorf("Workspaces(%q) is empty", f.OrganizationID)
	}

	want, ok := byID[f.WorkspaceID]
	if !ok {
		t.Fatalf(`Workspaces("") %v lacks %q`, allIDs, f.WorkspaceID)
	}
	got, err := d.Workspace(ctx, f.WorkspaceID)
	if err != nil {
		t.Fatalf("Workspace(%q): %v", f.WorkspaceID, err)
	}
	checkWorkspace(t, *got)
	gotKey := []string{got.ID, got.Name, got.Status, got.Organization.ID, deref(got.Role)}
	wantKey := []string{want.ID, want.Name, want.Status, want.Organization.ID, deref(want.Role)}
	if !slices.Equal(gotKey, wantKey) {
		t.Errorf("Workspace(%q) id, name, status, organization, role = %q; the list has %q", f.WorkspaceID, gotKey, wantKey)
	}
}

func checkWorkspace(t *testing.T, w unified.Workspace) {
	t.Helper()
	what := fmt.Sprintf("workspace %q", w.ID)
	if w.ID == "" || w.Organization.ID == "" {
		t.Errorf("%s: id %q, organization id %q; both are required", what, w.ID, w.Organization.ID)
	}
	if w.Status != unified.WorkspaceActive && w.Status != unified.WorkspaceArchived {
		t.Errorf("%s: status %q, want %s or %s", what, w.Status, unified.WorkspaceActive, unified.WorkspaceArchived)
	}
	if w.Role != nil {
		checkCatalogRole(t, what+" role", *w.Role, unified.ScopeWorkspace)
	}
	if w.MemberCount != nil && *w.MemberCount < 0 {
		t.Errorf("%s: member_count %d", what, *w.MemberCount)
	}
	checkRemoteData(t, what, w.RemoteData)
	checkRoundTrip(t, what, w)
}

func testOrganizationUsers(t *testing.T, f Fixture) {
	ctx := t.Context()
	d := f.New(t)
	list, err := d.OrganizationUsers(ctx, f.OrganizationID)
	if err != nil {
		t.Fatalf("OrganizationUsers(%q): %v", f.OrganizationID, err)
	}
	what := fmt.Sprintf("OrganizationUsers(%q)", f.OrganizationID)
	if list.Partial {
		t.Errorf("%s: Partial is set for an account that may read everything", what)
	}
	checkUserList(t, what, list.Users)
	for _, u := range list.Users {
		for _, r := range u.Roles {
			if r.ApplicableIn == unified.ScopeOrganization && deref(r.OrganizationID) != f.OrganizationID {
				t.Errorf("%s: user %q has organization role %s in organization %q", what, u.ID, r.ID, deref(r.OrganizationID))
			}
		}
	}
	me, err := d.Me(ctx)
	if err != nil {
		t.Fatalf("Me: %v", err)
	}
	if !slices.ContainsFunc(list.Users, func(u unified.User) bool { return u.ID == me.ID }) {
		t.Errorf("%s lacks the linked person %q, a member of the organization", what, me.ID)
	}
}

func testWorkspaceUsers(t *testing.T, f Fixture) {
	list, err := f.New(t).WorkspaceUsers(t.Context(), f.WorkspaceID)
	if err != nil {
		t.Fatalf("WorkspaceUsers(%q): %v", f.WorkspaceID, err)
	}
	what := fmt.Sprintf("WorkspaceUsers(%q)", f.WorkspaceID)
	if list.Partial {
		t.Errorf("%s: Partial is set", what)
	}
	checkUserList(t, what, list.Users)
	for _, u := range list.Users {
		if !slices.ContainsFunc(u.Roles, func(r unified.UserRole) bool {
			return r.ApplicableIn == unified.ScopeWorkspace && deref(r.WorkspaceID) == f.WorkspaceID
		}) {
			t.Errorf("%s: user %q has no workspace role in %q: %+v", what, u.ID, f.WorkspaceID, u.Roles)
		}
		if !slices.ContainsFunc(u.Workspaces, func(w unified.UserWorkspace) bool { return w.ID == f.WorkspaceID }) {
			t.Errorf("%s: user %q has no workspaces entry for %q: %+v", what, u.ID, f.WorkspaceID, u.Workspaces)
		}
	}
}

func testUser(t *testing.T, f Fixture) {
	ctx := t.Context()
	d := f.New(t)
	list, err := d.OrganizationUsers(ctx, f.OrganizationID)
	if err != nil {
		t.Fatalf("OrganizationUsers(%q): %v", f.OrganizationID, err)
	}
	if len(list.Users) == 0 {
		t.Fatalf("OrganizationUsers(%q) is empty", f.OrganizationID)
	}
	// The first, the middle and the last listed user: enough to catch an id mix-up without
	// calling the provider once per member.
	picks := []unified.User{list.Users[0], list.Users[len(list.Users)/2], list.Users[len(list.Users)-1]}
	for _, want := range slices.CompactFunc(picks, func(a, b unified.User) bool { return a.ID == b.ID }) {
		got, err := d.User(ctx, want.ID)
		if err != nil {
			t.Errorf("User(%q): %v", want.ID, err)
			continue
		}
		checkUser(t, fmt.Sprintf("User(%q)", want.ID), *got)
		if got.ID != want.ID || got.Name != want.Name {
			t.Errorf("User(%q) = id %q name %q; the list has name %q", want.ID, got.ID, got.Name, want.Name)
		}
		checkRoundTrip(t, fmt.Sprintf("User(%q)", want.ID), got)
	}
}

func testNotFound(t *testing.T, f Fixture) {
	d := f.New(t)
	calls := []struct {
		name string
		call func(id string) error
	}{
		{"Organization", func(id string) error { _, err := d.Organization(t.Context(), id); return err }},
		{"Workspace", func(id string) error { _, err := d.Workspace(t.Context(), id); return err }},
		{"User", func(id string) error { _, err := d.User(t.Context(), id); return err }},
		{"OrganizationUsers", func(id string) error { _, err := d.OrganizationUsers(t.Context(), id); return err }},
		{"WorkspaceUsers", func(id string) error { _, err := d.WorkspaceUsers(t.Context(), id); return err }},
	}
	for _, c := range calls {
		for _, id := range []string{f.MissingID, "not-a-number"} {
			t.Run(c.name+"/"+id, func(t *testing.T) {
				err := c.call(id)
				if !errors.Is(err, unified.ErrNotFound) {
					t.Errorf("%s(%q) = %v, want an error matching unified.ErrNotFound", c.name, id, err)
				}
			})
		}
	}
}

// testErrorContract: a provider's failures reach callers as the unified sentinels, with the
// provider's answer (ProviderError) and, for a rate limit, the wait (RateLimit) to be found by
// errors.As, so nothing above the adapter needs its types.
func testErrorContract(t *testing.T, f Fixture) {
	_, err := f.Failing(t, FailRateLimited).Me(t.Context())
	if !errors.Is(err, unified.ErrRateLimited) {
		t.Errorf("rate limited: Me = %v, want an error matching unified.ErrRateLimited", err)
	}
	if rl, ok := errors.AsType[unified.RateLimit](err); !ok {
		t.Errorf("rate limited: %v is not a unified.RateLimit", err)
	} else if wait, known := rl.RetryAfter(); known && wait <= 0 {
		t.Errorf("rate limited: a known wait of %v", wait)
	}
	_, err = f.Failing(t, FailUnavailable).Me(t.Context())
	if !errors.Is(err, unified.ErrUpstream) || errors.Is(err, unified.ErrNotFound) || errors.Is(err, unified.ErrRateLimited) {
		t.Errorf("unavailable: Me = %v, want an error matching unified.ErrUpstream only", err)
	}
	if pe, ok := errors.AsType[unified.ProviderError](err); !ok || pe.ProviderStatus() < 500 {
		t.Errorf("unavailable: %v does not carry the provider's 5xx answer", err)
	}
}

func testPartial(t *testing.T, f Fixture) {
	ctx := t.Context()
	full, err := f.New(t).OrganizationUsers(ctx, f.OrganizationID)
	if err != nil {
		t.Fatalf("OrganizationUsers(%q) for New: %v", f.OrganizationID, err)
	}
	part, err := f.NewLimited(t).OrganizationUsers(ctx, f.OrganizationID)
	if err != nil {
		t.Fatalf("OrganizationUsers(%q) for NewLimited: %v", f.OrganizationID, err)
	}
	what := fmt.Sprintf("OrganizationUsers(%q) for NewLimited", f.OrganizationID)
	if !part.Partial {
		t.Errorf("%s: Partial is not set", what)
	}
	checkUserList(t, what, part.Users)
	for _, u := range part.Users {
		if !slices.ContainsFunc(full.Users, func(x unified.User) bool { return x.ID == u.ID }) {
			t.Errorf("%s has user %q, who is not in the complete list", what, u.ID)
		}
	}
}

// checkUserList checks a list of users: non-empty, unique ids in CompareIDs order, each user
// well-formed.
func checkUserList(t *testing.T, what string, users []unified.User) {
	t.Helper()
	if len(users) == 0 {
		t.Errorf("%s is empty", what)
	}
	ids := make([]string, 0, len(users))
	for _, u := range users {
		ids = append(ids, u.ID)
		checkUser(t, fmt.Sprintf("%s: user %q", what, u.ID), u)
	}
	checkIDs(t, what, ids)
}

var statuses = []string{unified.StatusActive, unified.StatusInactive, unified.StatusInvited, unified.StatusDeleted}

// checkUser checks one user against the contract: required fields, the status enum, e-mails,
// roles from the catalog with the ids of where they are held, remote data and a JSON round trip.
func checkUser(t *testing.T, what string, u unified.User) {
	t.Helper()
	if u.ID == "" || u.Name == "" {
		t.Errorf("%s: id %q name %q; both are required", what, u.ID, u.Name)
	}
	if !slices.Contains(statuses, u.Status) {
		t.Errorf("%s: status %q, want one of %v", what, u.Status, statuses)
	}
	if u.Emails == nil {
		t.Errorf("%s: emails is nil (encodes as null, the contract says array)", what)
	}
	primaries := 0
	for _, e := range u.Emails {
		if !strings.Contains(e.Email, "@") || e.Type == "" {
			t.Errorf("%s: malformed e-mail %+v", what, e)
		}
		if e.IsPrimary {
			primaries++
		}
	}
	if primaries > 1 {
		t.Errorf("%s: %d primary e-mails", what, primaries)
	}
	if u.Roles == nil {
		t.Errorf("%s: roles is nil (encodes as null, the contract says array)", what)
	}
	for _, r := range u.Roles {
		role := fmt.Sprintf("%s: role %+v", what, r)
		c, ok := unified.RoleByID(r.ID)
		if !ok {
			t.Errorf("%s is not in the catalog", role)
			continue
		}
		if r.ApplicableIn != c.ApplicableIn || r.Name != c.Name {
			t.Errorf("%s: applicable_in %q name %q, the catalog says %q %q", role, r.ApplicableIn, r.Name, c.ApplicableIn, c.Name)
		}
		if deref(r.OrganizationID) == "" && r.ApplicableIn == unified.ScopeOrganization {
			t.Errorf("%s: an organization role without organization_id", role)
		}
		if deref(r.WorkspaceID) == "" && r.ApplicableIn == unified.ScopeWorkspace {
			t.Errorf("%s: a workspace role without workspace_id", role)
		}
	}
	for _, w := range u.Workspaces {
		if w.ID == "" {
			t.Errorf("%s: workspace entry without id: %+v", what, w)
		}
		checkCatalogRole(t, fmt.Sprintf("%s: workspace %q role", what, w.ID), w.Role, unified.ScopeWorkspace)
	}
	checkRemoteData(t, what, u.RemoteData)
	checkRoundTrip(t, what, u)
}

func checkCatalogRole(t *testing.T, what, id, scope string) {
	t.Helper()
	r, ok := unified.RoleByID(id)
	if !ok {
		t.Errorf("%s: %q is not in the role catalog", what, id)
		return
	}
	if r.ApplicableIn != scope {
		t.Errorf("%s: %q applies in %s, want %s", what, id, r.ApplicableIn, scope)
	}
}

// checkIDs checks that ids are non-empty, unique and in unified.CompareIDs order.
func checkIDs(t *testing.T, what string, ids []string) {
	t.Helper()
	for i, id := range ids {
		if id == "" {
			t.Errorf("%s: empty id at %d", what, i)
		}
		if i > 0 && unified.CompareIDs(ids[i-1], id) >= 0 {
			t.Errorf("%s: ids not unique and ascending by CompareIDs: %q then %q", what, ids[i-1], id)
		}
	}
}

// checkRemoteData checks that an item says where it came from: at least one entry, each with a
// path and a JSON value.
func checkRemoteData(t *testing.T, what string, rds []unified.RemoteData) {
	t.Helper()
	if len(rds) == 0 {
		t.Errorf("%s: no remote_data", what)
	}
	for _, rd := range rds {
		if rd.Path == "" {
			t.Errorf("%s: remote_data entry without a path", what)
		}
		if len(rd.Data) == 0 || !json.Valid(rd.Data) {
			t.Errorf("%s: remote_data %q is not JSON: %.200q", what, rd.Path, rd.Data)
		}
	}
}

// checkRoundTrip checks that v encodes to valid JSON that decodes into the same type and encodes
// to the same bytes again: what the API serves and caches must survive a trip through JSON.
func checkRoundTrip[T any](t *testing.T, what string, v T) {
	t.Helper()
	first, err := json.Marshal(v)
	if err != nil {
		t.Errorf("%s: encoding to JSON: %v", what, err)
		return
	}
	if !json.Valid(first) {
		t.Errorf("%s: encodes to invalid JSON: %.200s", what, first)
		return
	}
	var back T
	if err := json.Unmarshal(first, &back); err != nil {
		t.Errorf("%s: decoding its own JSON: %v", what, err)
		return
	}
	second, err := json.Marshal(back)
	if err != nil {
		t.Errorf("%s: encoding the decoded value: %v", what, err)
		return
	}
	if !bytes.Equal(first, second) {
		t.Errorf("%s: JSON changes in a round trip:\n%.300s\n%.300s", what, first, second)
	}
}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}
