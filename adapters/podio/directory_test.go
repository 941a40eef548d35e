package podio_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/dirgate/dirgate/adapters/podio"
	"github.com/dirgate/dirgate/adapters/podio/podiosim"
	"github.com/dirgate/dirgate/unified"
	"github.com/dirgate/dirgate/unified/unifiedtest"
)

// Demo dataset ids (README.md "Datasets").
const (
	demoNorthwind = "3001"
	demoBluefin   = "3002"
	demoSales     = "40001" // admin@ is its admin, member@ a regular member
	demoAdminID   = "1000001"
	demoMemberID  = "1000002"
	demoInviteeID = "1000057" // new.colleague1@northwind.example, invited to Sales, never joined
)

// directory returns a Directory acting as the person with the given mail.
func (f *fixture) directory(t *testing.T, mail string, opts podio.DirectoryOptions) *podio.Directory {
	t.Helper()
	return podio.NewDirectory(f.as(f.issued(t, mail)), opts)
}

func TestDirectoryConformance(t *testing.T) {
	t.Parallel()
	f := setup(t, podiosim.Config{})
	unifiedtest.Run(t, unifiedtest.Fixture{
		New:            func(t *testing.T) unified.Directory { return f.directory(t, adminMail, podio.DirectoryOptions{}) },
		NewLimited:     func(t *testing.T) unified.Directory { return f.directory(t, memberMail, podio.DirectoryOptions{}) },
		OrganizationID: demoNorthwind,
		WorkspaceID:    demoSales,
		MissingID:      "999999999",
		Failing: func(t *testing.T, failure string) unified.Directory {
			f := setup(t, podiosim.Config{})
			d := f.directory(t, adminMail, podio.DirectoryOptions{})
			fault := podiosim.Fault{Route: "*", Status: http.StatusServiceUnavailable}
			if failure == unifiedtest.FailRateLimited {
				fault = podiosim.Fault{Route: "*", RateLimit: true}
			}
			if err := f.sim.AddFault(fault); err != nil {
				t.Fatal(err)
			}
			return d
		},
	})
}

// TestDirectoryOrganizationUsersCalls checks that a complete org member list costs one Podio call
// per page and no more, with the page size the options ask for.
func TestDirectoryOrganizationUsersCalls(t *testing.T) {
	t.Parallel()
	// 2550 members: not a multiple of 100 (26 pages), a multiple of 50 (51 full pages and the
	// empty one that ends the walk), so halving the page size exactly doubles the calls.
	f := setup(t, podiosim.Config{
		Dataset:     podiosim.Large(podiosim.LargeOptions{Seed: 7, Orgs: 1, Spaces: 10, People: 2550}),
		MaxPageSize: 1000,
	})
	st := f.state(t)
	if len(st.Orgs) != 1 {
		t.Fatalf("want 1 org, got %d", len(st.Orgs))
	}
	orgID := strconv.FormatInt(st.Orgs[0].OrgID, 10)
	var want []string
	for _, m := range st.Orgs[0].Members {
		want = append(want, strconv.FormatInt(m.UserID, 10))
	}
	slices.SortFunc(want, unified.CompareIDs)
	n := len(want)
	if n != 2550 {
		t.Fatalf("org has %d members, want 2550", n)
	}

	tests := []struct {
		name      string
		pageSize  int
		wantCalls int
	}{
		{"default page size", 0, 26},
		{"page size 100", 100, 26},
		{"page size 50", 50, 52},
		{"page size 1000", 1000, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			size := tt.pageSize
			if size == 0 {
				size = podio.DefaultPageSize
			}
			if got := wantPages(n, size); got != tt.wantCalls {
				t.Fatalf("table says %d calls, the paging rule %d", tt.wantCalls, got)
			}
			d := f.directory(t, adminMail, podio.DirectoryOptions{PageSize: tt.pageSize})
			f.sim.ResetCalls()
			list, err := d.OrganizationUsers(t.Context(), orgID)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(map[string]int{podiosim.RouteOrgMembers: tt.wantCalls}, calls(f)); diff != "" {
				t.Errorf("calls (-want +got):\n%s", diff)
			}
			got := make([]string, len(list.Users))
			for i, u := range list.Users {
				got[i] = u.ID
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("user ids (-want +got):\n%s", diff)
			}
			if list.Partial {
				t.Error("Partial set for an org admin")
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

func utc(s string) *time.Time {
	t, err := time.Parse(podio.TimeLayout, s)
	if err != nil {
		panic(err)
	}
	return &t
}

// ignoreRawData leaves the raw objects out of a comparison; checkRemote checks them.
var ignoreRawData = cmpopts.IgnoreFields(unified.RemoteData{}, "Data")

// checkRemote checks that each remote_data entry holds a JSON object whose key has the value
// want (an id).
func checkRemote(t *testing.T, what string, rds []unified.RemoteData, key string, want int64) {
	t.Helper()
	for _, rd := range rds {
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(rd.Data, &obj); err != nil {
			t.Errorf("%s: remote_data %s is not a JSON object: %v", what, rd.Path, err)
			continue
		}
		var got int64
		if err := json.Unmarshal(obj[key], &got); err != nil || got != want {
			t.Errorf("%s: remote_data %s has %s %s, want %d", what, rd.Path, key, obj[key], want)
		}
	}
}

// TestDirectoryMappingDemo maps demo objects served by the simulator and compares them field by
// field with what podio-api.md and the demo dataset say.
func TestDirectoryMappingDemo(t *testing.T) {
	t.Parallel()
	f := setup(t, podiosim.Config{})
	ctx := t.Context()
	admin := f.directory(t, adminMail, podio.DirectoryOptions{})

	orgRole := func(role, org string) unified.UserRole { return unified.NewUserRole(role, org, "") }
	wsRole := func(role, org, ws string) unified.UserRole { return unified.NewUserRole(role, org, ws) }

	t.Run("org member", func(t *testing.T) {
		list, err := admin.OrganizationUsers(ctx, demoNorthwind)
		if err != nil {
			t.Fatal(err)
		}
		byID := map[string]unified.User{}
		for _, u := range list.Users {
			byID[u.ID] = u
		}
		sam := unified.User{
			ID: demoMemberID, Name: "Sam Taylor", FirstName: ptr("Sam"), LastName: ptr("Taylor"),
			Emails:       []unified.Email{{Email: memberMail, Type: "work", IsPrimary: true}},
			Status:       unified.StatusActive,
			Title:        ptr("Marketing Lead"),
			Avatar:       ptr("https://files.podio.com/91000002"),
			IsEmployee:   ptr(true),
			Roles:        []unified.UserRole{orgRole(unified.RoleOrganizationRegular, demoNorthwind)},
			LastActiveAt: utc("2023-01-06 09:00:00"),
			RemoteData:   []unified.RemoteData{{Path: "/org/3001/member/"}},
		}
		invitee := unified.User{
			ID: demoInviteeID, Name: "new.colleague1@northwind.example", FirstName: ptr("new.colleague1@northwind.example"),
			Emails:     []unified.Email{{Email: "new.colleague1@northwind.example", Type: "work", IsPrimary: true}},
			Status:     unified.StatusInvited,
			IsEmployee: ptr(false),
			Roles:      []unified.UserRole{orgRole(unified.RoleOrganizationRegular, demoNorthwind)},
			RemoteData: []unified.RemoteData{{Path: "/org/3001/member/"}},
		}
		for _, want := range []unified.User{sam, invitee} {
			got := byID[want.ID]
			if diff := cmp.Diff(want, got, ignoreRawData); diff != "" {
				t.Errorf("user %s (-want +got):\n%s", want.ID, diff)
			}
			id, _ := strconv.ParseInt(want.ID, 10, 64)
			var item struct {
				User struct {
					UserID int64 `json:"user_id"`
				} `json:"user"`
			}
			if len(got.RemoteData) == 1 && (json.Unmarshal(got.RemoteData[0].Data, &item) != nil || item.User.UserID != id) {
				t.Errorf("user %s: remote_data is not its member item: %s", want.ID, got.RemoteData[0].Data)
			}
		}
	})

	t.Run("v2 space member", func(t *testing.T) {
		list, err := admin.WorkspaceUsers(ctx, demoSales)
		if err != nil {
			t.Fatal(err)
		}
		i := slices.IndexFunc(list.Users, func(u unified.User) bool { return u.ID == demoMemberID })
		if i < 0 {
			t.Fatalf("member@ not in Sales: %d users", len(list.Users))
		}
		want := unified.User{
			ID: demoMemberID, Name: "Sam Taylor", FirstName: ptr("Sam"), LastName: ptr("Taylor"),
			Emails:       []unified.Email{{Email: memberMail, Type: "work", IsPrimary: true}},
			Status:       unified.StatusActive,
			Title:        ptr("Marketing Lead"),
			Avatar:       ptr("https://files.podio.com/91000002"),
			IsEmployee:   ptr(true),
			Roles:        []unified.UserRole{wsRole(unified.RoleWorkspaceRegular, demoNorthwind, demoSales)},
			Workspaces:   []unified.UserWorkspace{{ID: demoSales, Name: "Sales", Role: unified.RoleWorkspaceRegular}},
			LastActiveAt: utc("2023-01-06 09:00:00"),
			RemoteData:   []unified.RemoteData{{Path: "/space/40001/member/v2/"}},
		}
		if diff := cmp.Diff(want, list.Users[i], ignoreRawData); diff != "" {
			t.Errorf("Sales member@ (-want +got):\n%s", diff)
		}
		var item struct {
			Profile struct {
				UserID int64 `json:"user_id"`
			} `json:"profile"`
			Role string `json:"role"`
		}
		if err := json.Unmarshal(list.Users[i].RemoteData[0].Data, &item); err != nil || item.Profile.UserID != 1000002 || item.Role != "regular" {
			t.Errorf("remote_data is not member@'s v2 item: %s", list.Users[i].RemoteData[0].Data)
		}
	})

	t.Run("me", func(t *testing.T) {
		me, err := admin.Me(ctx)
		if err != nil {
			t.Fatal(err)
		}
		ws := func(id, name, role string) unified.UserWorkspace {
			return unified.UserWorkspace{ID: id, Name: name, Role: role}
		}
		want := &unified.Me{
			User: unified.User{
				ID: demoAdminID, Name: "Alex Morgan", FirstName: ptr("Alex"), LastName: ptr("Morgan"),
				Emails:   []unified.Email{{Email: adminMail, Type: "work", IsPrimary: true}},
				Status:   unified.StatusActive,
				Title:    ptr("Operations Director"),
				Avatar:   ptr("https://files.podio.com/91000001"),
				Timezone: ptr("Europe/London"),
				Locale:   ptr("en_GB"),
				Roles: []unified.UserRole{
					orgRole(unified.RoleOrganizationAdmin, demoNorthwind),
					wsRole(unified.RoleWorkspaceAdmin, demoNorthwind, "40001"),
					wsRole(unified.RoleWorkspaceRegular, demoNorthwind, "40002"),
					wsRole(unified.RoleWorkspaceAdmin, demoNorthwind, "40003"),
					wsRole(unified.RoleWorkspaceAdmin, demoNorthwind, "40004"),
					orgRole(unified.RoleOrganizationAdmin, demoBluefin),
					wsRole(unified.RoleWorkspaceAdmin, demoBluefin, "40006"),
					wsRole(unified.RoleWorkspaceAdmin, demoBluefin, "40007"),
					wsRole(unified.RoleWorkspaceAdmin, demoBluefin, "40008"),
				},
				Workspaces: []unified.UserWorkspace{
					ws("40001", "Sales", unified.RoleWorkspaceAdmin),
					ws("40002", "Marketing", unified.RoleWorkspaceRegular),
					ws("40003", "Engineering", unified.RoleWorkspaceAdmin),
					ws("40004", "Archive 2023", unified.RoleWorkspaceAdmin),
					ws("40006", "Research", unified.RoleWorkspaceAdmin),
					ws("40007", "Lab Operations", unified.RoleWorkspaceAdmin),
					ws("40008", "Community", unified.RoleWorkspaceAdmin),
				},
				LastActiveAt: utc("2023-01-03 09:00:00"),
				CreatedAt:    utc("2023-01-02 09:00:00"),
				RemoteData:   []unified.RemoteData{{Path: "/user/status"}, {Path: "/org/"}},
			},
			Organizations: []unified.MeOrganization{
				{ID: demoNorthwind, Name: "Northwind Traders", Role: unified.RoleOrganizationAdmin},
				{ID: demoBluefin, Name: "Bluefin Labs", Role: unified.RoleOrganizationAdmin},
			},
		}
		if diff := cmp.Diff(want, me, ignoreRawData); diff != "" {
			t.Errorf("Me (-want +got):\n%s", diff)
		}
		if len(me.RemoteData) != 2 {
			t.Fatalf("remote_data: %d entries", len(me.RemoteData))
		}
		var status struct {
			User struct {
				UserID int64 `json:"user_id"`
			} `json:"user"`
		}
		if err := json.Unmarshal(me.RemoteData[0].Data, &status); err != nil || status.User.UserID != 1000001 {
			t.Errorf("/user/status remote_data: %s", me.RemoteData[0].Data)
		}
		var orgs []struct {
			OrgID int64 `json:"org_id"`
		}
		if err := json.Unmarshal(me.RemoteData[1].Data, &orgs); err != nil || len(orgs) != 2 || orgs[0].OrgID != 3001 || orgs[1].OrgID != 3002 {
			t.Errorf("/org/ remote_data is not the array of both orgs: %.300s", me.RemoteData[1].Data)
		}
	})

	t.Run("organization", func(t *testing.T) {
		got, err := admin.Organization(ctx, demoNorthwind)
		if err != nil {
			t.Fatal(err)
		}
		want := &unified.Organization{
			ID: demoNorthwind, Name: "Northwind Traders", URL: ptr("https://podio.com/northwindtraders"),
			Status: "active", PricingPlan: ptr("premium"), Role: ptr(unified.RoleOrganizationAdmin),
			MemberCount: ptr(38), CreatedAt: utc("2023-01-02 09:00:00"),
			RemoteData: []unified.RemoteData{{Path: "/org/3001"}},
		}
		if diff := cmp.Diff(want, got, ignoreRawData); diff != "" {
			t.Errorf("Organization (-want +got):\n%s", diff)
		}
		checkRemote(t, "organization", got.RemoteData, "org_id", 3001)
	})

	t.Run("workspace", func(t *testing.T) {
		got, err := admin.Workspace(ctx, demoSales)
		if err != nil {
			t.Fatal(err)
		}
		want := &unified.Workspace{
			ID: demoSales, Name: "Sales", Description: ptr("Workspace for Sales."),
			URL: ptr("https://podio.com/northwindtraders/sales"), Status: unified.WorkspaceActive,
			Privacy: ptr("closed"), Organization: unified.OrgRef{ID: demoNorthwind, Name: "Northwind Traders"},
			Role: ptr(unified.RoleWorkspaceAdmin), MemberCount: ptr(24), CreatedAt: utc("2023-01-07 09:00:00"),
			RemoteData: []unified.RemoteData{{Path: "/space/40001"}},
		}
		if diff := cmp.Diff(want, got, ignoreRawData); diff != "" {
			t.Errorf("Workspace (-want +got):\n%s", diff)
		}
		checkRemote(t, "workspace", got.RemoteData, "space_id", 40001)
	})

	t.Run("workspaces of every organization", func(t *testing.T) {
		all, err := admin.Workspaces(ctx, "")
		if err != nil {
			t.Fatal(err)
		}
		type key struct{ ID, Org, Status, Role string }
		var got []key
		for _, w := range all {
			got = append(got, key{w.ID, w.Organization.Name, w.Status, deref(w.Role)})
		}
		// Board Room (40005) is closed and admin@ is not in it.
		want := []key{
			{"40001", "Northwind Traders", "active", unified.RoleWorkspaceAdmin},
			{"40002", "Northwind Traders", "active", unified.RoleWorkspaceRegular},
			{"40003", "Northwind Traders", "active", unified.RoleWorkspaceAdmin},
			{"40004", "Northwind Traders", "archived", unified.RoleWorkspaceAdmin},
			{"40006", "Bluefin Labs", "active", unified.RoleWorkspaceAdmin},
			{"40007", "Bluefin Labs", "active", unified.RoleWorkspaceAdmin},
			{"40008", "Bluefin Labs", "active", unified.RoleWorkspaceAdmin},
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("Workspaces(\"\") (-want +got):\n%s", diff)
		}
	})
}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

// TestDirectoryUser covers User's three sources: org memberships, merged across organizations;
// the contact when memberships are closed to the caller; and not found.
func TestDirectoryUser(t *testing.T) {
	t.Parallel()
	f := setup(t, podiosim.Config{})
	ctx := t.Context()
	st := f.state(t)
	// A person only in Bluefin Labs: member@ shares no organization with them.
	var bluefinOnly string
	inNorthwind := map[int64]bool{}
	for _, m := range st.Orgs[0].Members {
		inNorthwind[m.UserID] = true
	}
	for _, m := range st.Orgs[1].Members {
		if !inNorthwind[m.UserID] && !m.Invited {
			bluefinOnly = strconv.FormatInt(m.UserID, 10)
			break
		}
	}
	if st.Orgs[0].Name != "Northwind Traders" || bluefinOnly == "" {
		t.Fatal("demo dataset changed: no active Bluefin-only person")
	}

	tests := []struct {
		name      string
		as        string
		id        string
		wantRoles []unified.UserRole
		wantPaths []string
		wantCalls map[string]int
		notFound  bool
		forbidden bool
	}{
		{
			name: "admin reads a member of one org", as: adminMail, id: demoMemberID,
			wantRoles: []unified.UserRole{unified.NewUserRole(unified.RoleOrganizationRegular, demoNorthwind, "")},
			wantPaths: []string{"/org/3001/member/1000002"},
			wantCalls: map[string]int{podiosim.RouteOrgs: 1, podiosim.RouteOrgMember: 2},
		},
		{
			name: "admin reads themself in both orgs", as: adminMail, id: demoAdminID,
			wantRoles: []unified.UserRole{
				unified.NewUserRole(unified.RoleOrganizationAdmin, demoNorthwind, ""),
				unified.NewUserRole(unified.RoleOrganizationAdmin, demoBluefin, ""),
			},
			wantPaths: []string{"/org/3001/member/1000001", "/org/3002/member/1000001"},
			wantCalls: map[string]int{podiosim.RouteOrgs: 1, podiosim.RouteOrgMember: 2},
		},
		{
			name: "member reads themself", as: memberMail, id: demoMemberID,
			wantRoles: []unified.UserRole{unified.NewUserRole(unified.RoleOrganizationRegular, demoNorthwind, "")},
			wantPaths: []string{"/org/3001/member/1000002"},
			wantCalls: map[string]int{podiosim.RouteOrgs: 1, podiosim.RouteOrgMember: 1},
		},
		{
			name: "member reads the admin through the contact", as: memberMail, id: demoAdminID,
			wantRoles: []unified.UserRole{},
			wantPaths: []string{"/contact/user/1000001"},
			wantCalls: map[string]int{podiosim.RouteOrgs: 1, podiosim.RouteOrgMember: 1, podiosim.RouteContactUser: 1},
		},
		{
			name: "member cannot see a stranger", as: memberMail, id: bluefinOnly, notFound: true, forbidden: true,
			wantCalls: map[string]int{podiosim.RouteOrgs: 1, podiosim.RouteOrgMember: 1, podiosim.RouteContactUser: 1},
		},
		{
			name: "admin looks up a missing id", as: adminMail, id: "999999999", notFound: true,
			wantCalls: map[string]int{podiosim.RouteOrgs: 1, podiosim.RouteOrgMember: 2},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := f.directory(t, tt.as, podio.DirectoryOptions{})
			f.sim.ResetCalls()
			u, err := d.User(ctx, tt.id)
			if diff := cmp.Diff(tt.wantCalls, calls(f)); diff != "" {
				t.Errorf("calls (-want +got):\n%s", diff)
			}
			if tt.notFound {
				if !errors.Is(err, unified.ErrNotFound) {
					t.Fatalf("err = %v, want ErrNotFound", err)
				}
				e, ok := errors.AsType[*podio.Error](err)
				if tt.forbidden != (ok && e.IsForbidden()) {
					t.Errorf("err = %v; carries the 403: %v, want %v", err, ok && e.IsForbidden(), tt.forbidden)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if u.ID != tt.id || u.Status != unified.StatusActive {
				t.Errorf("id %q status %q, want %q active", u.ID, u.Status, tt.id)
			}
			if diff := cmp.Diff(tt.wantRoles, u.Roles); diff != "" {
				t.Errorf("roles (-want +got):\n%s", diff)
			}
			var paths []string
			for _, rd := range u.RemoteData {
				paths = append(paths, rd.Path)
			}
			if diff := cmp.Diff(tt.wantPaths, paths); diff != "" {
				t.Errorf("remote_data paths (-want +got):\n%s", diff)
			}
		})
	}
}

// TestDirectoryPartialOrganizationUsers checks the fallback for a person who is not an org admin:
// the members of their spaces, flagged partial.
func TestDirectoryPartialOrganizationUsers(t *testing.T) {
	t.Parallel()
	f := setup(t, podiosim.Config{})
	st := f.state(t)
	memberID := f.userID(t, memberMail)
	want := map[string]bool{}
	spaces := 0
	for _, s := range st.Orgs[0].Spaces {
		var active []string
		isMember := false
		for _, m := range s.Members {
			if !m.Invited {
				active = append(active, strconv.FormatInt(m.UserID, 10))
				isMember = isMember || m.UserID == memberID
			}
		}
		if !isMember {
			continue
		}
		spaces++
		for _, id := range active {
			want[id] = true
		}
	}

	d := f.directory(t, memberMail, podio.DirectoryOptions{})
	f.sim.ResetCalls()
	list, err := d.OrganizationUsers(t.Context(), demoNorthwind)
	if err != nil {
		t.Fatal(err)
	}
	if !list.Partial {
		t.Error("Partial not set")
	}
	got := map[string]bool{}
	for _, u := range list.Users {
		got[u.ID] = true
		if u.Workspaces == nil || len(u.Workspaces) == 0 {
			t.Errorf("user %s: no workspaces, though found through one", u.ID)
		}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("users (-want +got):\n%s", diff)
	}
	wantCalls := map[string]int{podiosim.RouteOrgMembers: 1, podiosim.RouteOrgSpaces: 1, podiosim.RouteSpaceMembersV2: spaces}
	if diff := cmp.Diff(wantCalls, calls(f)); diff != "" {
		t.Errorf("calls (-want +got):\n%s", diff)
	}
}

func TestDirectoryErrors(t *testing.T) {
	t.Parallel()

	t.Run("500 on the org member list", func(t *testing.T) {
		t.Parallel()
		f := setup(t, podiosim.Config{})
		if err := f.sim.AddFault(podiosim.Fault{Route: podiosim.RouteOrgMembers, Status: 500}); err != nil {
			t.Fatal(err)
		}
		_, err := f.directory(t, adminMail, podio.DirectoryOptions{}).OrganizationUsers(t.Context(), demoNorthwind)
		if e, ok := errors.AsType[*podio.Error](err); !ok || e.StatusCode != 500 {
			t.Errorf("err = %v, want a 500 *podio.Error", err)
		}
		if errors.Is(err, unified.ErrNotFound) {
			t.Errorf("err = %v matches ErrNotFound", err)
		}
	})

	t.Run("500 on a space during the partial fallback", func(t *testing.T) {
		t.Parallel()
		f := setup(t, podiosim.Config{})
		if err := f.sim.AddFault(podiosim.Fault{Route: podiosim.RouteSpaceMembersV2, Status: 503}); err != nil {
			t.Fatal(err)
		}
		_, err := f.directory(t, memberMail, podio.DirectoryOptions{}).OrganizationUsers(t.Context(), demoNorthwind)
		if e, ok := errors.AsType[*podio.Error](err); !ok || e.StatusCode != 503 {
			t.Errorf("err = %v, want a 503 *podio.Error", err)
		}
	})

	t.Run("420 is a rate limit error", func(t *testing.T) {
		t.Parallel()
		f := setup(t, podiosim.Config{})
		if err := f.sim.AddFault(podiosim.Fault{Route: podiosim.RouteOrgMembers, RateLimit: true}); err != nil {
			t.Fatal(err)
		}
		_, err := f.directory(t, adminMail, podio.DirectoryOptions{}).OrganizationUsers(t.Context(), demoNorthwind)
		rl, ok := errors.AsType[*podio.RateLimitError](err)
		if !ok {
			t.Fatalf("err = %v, want a *podio.RateLimitError", err)
		}
		if !rl.WaitKnown || rl.Wait != 60*time.Second {
			t.Errorf("wait %s (known %v), want the simulator's 60s", rl.Wait, rl.WaitKnown)
		}
		if errors.Is(err, unified.ErrNotFound) {
			t.Errorf("err = %v matches ErrNotFound", err)
		}
	})

	t.Run("404 matches ErrNotFound and the Podio error", func(t *testing.T) {
		t.Parallel()
		f := setup(t, podiosim.Config{})
		d := f.directory(t, adminMail, podio.DirectoryOptions{})
		calls := map[string]func() error{
			"Organization":      func() error { _, err := d.Organization(t.Context(), "999999999"); return err },
			"Workspace":         func() error { _, err := d.Workspace(t.Context(), "999999999"); return err },
			"Workspaces":        func() error { _, err := d.Workspaces(t.Context(), "999999999"); return err },
			"OrganizationUsers": func() error { _, err := d.OrganizationUsers(t.Context(), "999999999"); return err },
			"WorkspaceUsers":    func() error { _, err := d.WorkspaceUsers(t.Context(), "999999999"); return err },
		}
		for name, call := range calls {
			err := call()
			e, ok := errors.AsType[*podio.Error](err)
			if !errors.Is(err, unified.ErrNotFound) || !ok || !e.IsNotFound() {
				t.Errorf("%s: err = %v, want ErrNotFound and a 404 *podio.Error", name, err)
			}
		}
	})

	t.Run("403 stays a 403", func(t *testing.T) {
		t.Parallel()
		f := setup(t, podiosim.Config{})
		// member@ is not in Bluefin Labs.
		_, err := f.directory(t, memberMail, podio.DirectoryOptions{}).Organization(t.Context(), demoBluefin)
		if e, ok := errors.AsType[*podio.Error](err); !ok || !e.IsForbidden() || errors.Is(err, unified.ErrNotFound) {
			t.Errorf("err = %v, want a 403 *podio.Error that is not ErrNotFound", err)
		}
	})

	t.Run("cancelled context", func(t *testing.T) {
		t.Parallel()
		f := setup(t, podiosim.Config{})
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		_, err := f.directory(t, adminMail, podio.DirectoryOptions{}).Me(ctx)
		if !errors.Is(err, context.Canceled) {
			t.Errorf("err = %v, want context.Canceled", err)
		}
	})
}

// TestDirectoryIDs checks that ids Podio could not have issued are not found without a call.
func TestDirectoryIDs(t *testing.T) {
	t.Parallel()
	f := setup(t, podiosim.Config{})
	d := f.directory(t, adminMail, podio.DirectoryOptions{})
	methods := []struct {
		name string
		call func(ctx context.Context, id string) error
	}{
		{"Organization", func(ctx context.Context, id string) error { _, err := d.Organization(ctx, id); return err }},
		{"Workspaces", func(ctx context.Context, id string) error { _, err := d.Workspaces(ctx, id); return err }},
		{"Workspace", func(ctx context.Context, id string) error { _, err := d.Workspace(ctx, id); return err }},
		{"OrganizationUsers", func(ctx context.Context, id string) error { _, err := d.OrganizationUsers(ctx, id); return err }},
		{"WorkspaceUsers", func(ctx context.Context, id string) error { _, err := d.WorkspaceUsers(ctx, id); return err }},
		{"User", func(ctx context.Context, id string) error { _, err := d.User(ctx, id); return err }},
	}
	ids := []string{"not-a-number", "0", "-1", "+3001", "03001", "3001 ", "1e3", "99999999999999999999"}
	for _, m := range methods {
		for _, id := range ids {
			t.Run(fmt.Sprintf("%s(%q)", m.name, id), func(t *testing.T) {
				f.sim.ResetCalls()
				if err := m.call(t.Context(), id); !errors.Is(err, unified.ErrNotFound) {
					t.Errorf("err = %v, want ErrNotFound", err)
				}
				if got := calls(f); len(got) != 0 {
					t.Errorf("Podio was called: %v", got)
				}
			})
		}
	}
}

// canned is a fixed Podio: each path (without query) answers a status and a body. It lets the
// mapping tests use objects the simulator does not produce, and compare remote_data byte for byte.
type canned map[string]answer

// answer is a canned status (0 means 200) and body.
type answer struct {
	status int
	body   string
}

func (c canned) directory(t *testing.T) *podio.Directory {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a, ok := c[r.URL.Path]
		if !ok {
			a.status, a.body = http.StatusNotFound, `{"error": "not_found", "error_description": "No such path"}`
		}
		if off := r.URL.Query().Get("offset"); off != "" && off != "0" {
			// Only the first page is canned; the walk asks for the next one only after a full page.
			t.Errorf("unexpected second page: %s", r.URL)
			a.body = "[]"
		}
		w.Header().Set("Content-Type", "application/json")
		if a.status == 0 {
			a.status = http.StatusOK
		}
		w.WriteHeader(a.status)
		_, _ = w.Write([]byte(a.body))
	}))
	t.Cleanup(srv.Close)
	c2, err := podio.NewClient(srv.Client(), podio.StaticTokenSource(&podio.Token{AccessToken: "canned"})).WithBaseURL(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	return podio.NewDirectory(c2, podio.DirectoryOptions{})
}

// array joins items into a JSON array with whitespace between them that is not part of any item.
func array(items ...string) string {
	return "[\n  " + strings.Join(items, " ,\n  ") + "\n]"
}

// TestDirectoryMappingCanned maps hand-written Podio objects that cover the corners of the mapping
// rules: status inference, e-mail de-duplication, fallbacks, absent counts, null names.
func TestDirectoryMappingCanned(t *testing.T) {
	t.Parallel()
	const (
		seenActive = `{"user": {"user_id": 11, "mail": "ann@x.example", "status": "active"},
  "profile": {"user_id": 11, "name": "Ann  Lee  Smith", "mail": ["ANN@x.example", "ann.lee@y.example", ""],
    "title": ["CTO", "Founder"], "image": {"file_id": 5, "thumbnail_link": "https://files.example/5/thumb"},
    "last_seen_on": "2024-05-06 07:08:09"},
  "employee": true, "role": "admin"}`
		noStatusSeen  = `{"user": {"user_id": 12, "mail": "bo@x.example"}, "profile": {"user_id": 12, "name": "Bo", "last_seen_on": "2024-01-01 00:00:00", "image": {"file_id": 6, "link": "https://files.example/6", "thumbnail_link": "https://files.example/6/t"}}, "employee": false, "role": "regular"}`
		noStatusNew   = `{"user": {"user_id": 13, "mail": "cy@x.example"}, "profile": {"user_id": 13, "name": "cy@x.example"}, "employee": false, "role": null}`
		inactiveSeen  = `{"user": {"user_id": 14, "mail": "di@x.example", "status": "inactive"}, "profile": {"user_id": 14, "name": "Di", "last_seen_on": "2023-03-03 03:03:03"}, "employee": true, "role": "regular"}`
		inactiveNew   = `{"user": {"user_id": 15, "mail": "ed@x.example", "status": "inactive"}, "profile": {"user_id": 15, "name": "ed@x.example", "avatar": null, "mail": ["ed@x.example"]}, "employee": false, "role": "regular"}`
		blacklisted   = `{"user": {"user_id": 16, "mail": "fi@x.example", "status": "blacklisted"}, "profile": {"user_id": 16, "name": "Fi", "last_seen_on": "2022-02-02 02:02:02"}, "employee": true, "role": "regular"}`
		profileIDOnly = `{"profile": {"user_id": 17, "mail": ["gu@x.example"]}, "employee": true, "role": "light"}`
		noID          = `{"profile": {"profile_id": 99, "name": "A contact"}, "employee": false, "role": "regular"}`

		v2Member = `{"user": {"profile_id": 21, "user_id": 21, "name": "Hal", "mail": ["hal@x.example", "HAL@x.example"], "last_seen_on": "2024-02-02 02:02:02"}, "employee": false, "role": "light", "grants": 1}`
		v2Blank  = `{"profile": {"user_id": 22, "name": "Ivy", "last_seen_on": "2024-02-02 02:02:02"}, "employee": true, "role": ""}`
		v2Invite = `{"profile": {"user_id": 23, "name": "jo@x.example", "mail": ["jo@x.example"]}, "employee": false, "role": "regular"}`

		orgBare  = `{"org_id": 7, "name": "Bare", "role": ""}`
		orgZero  = `{"org_id": 8, "name": "Zero", "status": "inactive", "type": "free", "member_count": 0, "url": "https://podio.com/zero", "created_on": "2020-01-01 10:00:00"}`
		spaceOdd = `{"space_id": 71, "name": null, "archived": true, "privacy": "", "role": null}`
		space72  = `{"space_id": 72, "name": "Named", "org_id": 7, "org": {"org_id": 7, "name": "Bare (from space)"}, "member_count": 0, "role": "light", "privacy": "open", "description": "d"}`
	)
	d := canned{
		"/org/7/member/":       {body: array(seenActive, noStatusSeen, noStatusNew, inactiveSeen, inactiveNew, blacklisted, profileIDOnly, noID)},
		"/space/72":            {body: space72},
		"/space/72/member/v2/": {body: array(v2Member, v2Blank, v2Invite)},
		"/org/":                {body: array(orgBare, orgZero)},
		"/org/7/space/":        {body: array(spaceOdd, space72)},
		"/org/8/space/":        {status: 404, body: `{"error": "not_found"}`},
	}.directory(t)
	ctx := t.Context()
	rd := func(path, data string) []unified.RemoteData {
		return []unified.RemoteData{{Path: path, Data: json.RawMessage(data)}}
	}
	orgRole := func(role string) []unified.UserRole {
		return []unified.UserRole{unified.NewUserRole(role, "7", "")}
	}
	mail := func(addrs ...string) []unified.Email {
		out := []unified.Email{}
		for i, a := range addrs {
			out = append(out, unified.Email{Email: a, Type: "work", IsPrimary: i == 0})
		}
		return out
	}
	const members = "/org/7/member/"

	t.Run("org members", func(t *testing.T) {
		list, err := d.OrganizationUsers(ctx, "7")
		if err != nil {
			t.Fatal(err)
		}
		want := unified.UserList{Users: []unified.User{
			{
				ID: "11", Name: "Ann  Lee  Smith", FirstName: ptr("Ann"), LastName: ptr("Lee Smith"),
				Emails: mail("ann@x.example", "ann.lee@y.example"), Status: unified.StatusActive,
				Title: ptr("CTO"), Avatar: ptr("https://files.example/5/thumb"), IsEmployee: ptr(true),
				Roles: orgRole(unified.RoleOrganizationAdmin), LastActiveAt: utc("2024-05-06 07:08:09"),
				RemoteData: rd(members, seenActive),
			},
			{
				ID: "12", Name: "Bo", FirstName: ptr("Bo"), Emails: mail("bo@x.example"), Status: unified.StatusActive,
				Avatar: ptr("https://files.example/6"), IsEmployee: ptr(false),
				Roles: orgRole(unified.RoleOrganizationRegular), LastActiveAt: utc("2024-01-01 00:00:00"),
				RemoteData: rd(members, noStatusSeen),
			},
			{
				ID: "13", Name: "cy@x.example", FirstName: ptr("cy@x.example"), Emails: mail("cy@x.example"),
				Status: unified.StatusInvited, IsEmployee: ptr(false), Roles: []unified.UserRole{},
				RemoteData: rd(members, noStatusNew),
			},
			{
				ID: "14", Name: "Di", FirstName: ptr("Di"), Emails: mail("di@x.example"), Status: unified.StatusInactive,
				IsEmployee: ptr(true), Roles: orgRole(unified.RoleOrganizationRegular), LastActiveAt: utc("2023-03-03 03:03:03"),
				RemoteData: rd(members, inactiveSeen),
			},
			{
				ID: "15", Name: "ed@x.example", FirstName: ptr("ed@x.example"), Emails: mail("ed@x.example"),
				Status: unified.StatusInvited, IsEmployee: ptr(false), Roles: orgRole(unified.RoleOrganizationRegular),
				RemoteData: rd(members, inactiveNew),
			},
			{
				ID: "16", Name: "Fi", FirstName: ptr("Fi"), Emails: mail("fi@x.example"), Status: unified.StatusDeleted,
				IsEmployee: ptr(true), Roles: orgRole(unified.RoleOrganizationRegular), LastActiveAt: utc("2022-02-02 02:02:02"),
				RemoteData: rd(members, blacklisted),
			},
			{
				ID: "17", Name: "gu@x.example", FirstName: ptr("gu@x.example"), Emails: mail("gu@x.example"),
				Status: unified.StatusInvited, IsEmployee: ptr(true), Roles: orgRole(unified.RoleOrganizationRegular),
				RemoteData: rd(members, profileIDOnly),
			},
		}}
		if diff := cmp.Diff(want, list); diff != "" {
			t.Errorf("OrganizationUsers (-want +got):\n%s", diff)
		}
	})

	t.Run("v2 members", func(t *testing.T) {
		list, err := d.WorkspaceUsers(ctx, "72")
		if err != nil {
			t.Fatal(err)
		}
		const path = "/space/72/member/v2/"
		want := unified.UserList{Users: []unified.User{
			{
				ID: "21", Name: "Hal", FirstName: ptr("Hal"), Emails: mail("hal@x.example"), Status: unified.StatusActive,
				IsEmployee: ptr(false), LastActiveAt: utc("2024-02-02 02:02:02"),
				Roles:      []unified.UserRole{unified.NewUserRole(unified.RoleWorkspaceLight, "7", "72")},
				Workspaces: []unified.UserWorkspace{{ID: "72", Name: "Named", Role: unified.RoleWorkspaceLight}},
				RemoteData: rd(path, v2Member),
			},
			{
				ID: "22", Name: "Ivy", FirstName: ptr("Ivy"), Emails: []unified.Email{}, Status: unified.StatusActive,
				IsEmployee: ptr(true), LastActiveAt: utc("2024-02-02 02:02:02"),
				Roles: []unified.UserRole{}, Workspaces: []unified.UserWorkspace{},
				RemoteData: rd(path, v2Blank),
			},
			{
				ID: "23", Name: "jo@x.example", FirstName: ptr("jo@x.example"), Emails: mail("jo@x.example"),
				Status: unified.StatusInvited, IsEmployee: ptr(false),
				Roles:      []unified.UserRole{unified.NewUserRole(unified.RoleWorkspaceRegular, "7", "72")},
				Workspaces: []unified.UserWorkspace{{ID: "72", Name: "Named", Role: unified.RoleWorkspaceRegular}},
				RemoteData: rd(path, v2Invite),
			},
		}}
		if diff := cmp.Diff(want, list); diff != "" {
			t.Errorf("WorkspaceUsers (-want +got):\n%s", diff)
		}
	})

	t.Run("organizations", func(t *testing.T) {
		orgs, err := d.Organizations(ctx)
		if err != nil {
			t.Fatal(err)
		}
		want := []unified.Organization{
			{ID: "7", Name: "Bare", Status: "active", RemoteData: rd("/org/", orgBare)},
			{
				ID: "8", Name: "Zero", URL: ptr("https://podio.com/zero"), Status: "inactive", PricingPlan: ptr("free"),
				MemberCount: ptr(0), CreatedAt: utc("2020-01-01 10:00:00"), RemoteData: rd("/org/", orgZero),
			},
		}
		if diff := cmp.Diff(want, orgs); diff != "" {
			t.Errorf("Organizations (-want +got):\n%s", diff)
		}
	})

	t.Run("workspaces", func(t *testing.T) {
		// Org 8's space list answers 404 (the org went away between the calls): left out.
		all, err := d.Workspaces(ctx, "")
		if err != nil {
			t.Fatal(err)
		}
		want := []unified.Workspace{
			{
				ID: "71", Status: unified.WorkspaceArchived, Organization: unified.OrgRef{ID: "7", Name: "Bare"},
				RemoteData: rd("/org/7/space/", spaceOdd),
			},
			{
				ID: "72", Name: "Named", Description: ptr("d"), Status: unified.WorkspaceActive, Privacy: ptr("open"),
				Organization: unified.OrgRef{ID: "7", Name: "Bare (from space)"}, Role: ptr(unified.RoleWorkspaceLight),
				MemberCount: ptr(0), RemoteData: rd("/org/7/space/", space72),
			},
		}
		if diff := cmp.Diff(want, all); diff != "" {
			t.Errorf("Workspaces(\"\") (-want +got):\n%s", diff)
		}
		// Listing one org has no parent name to offer.
		one, err := d.Workspaces(ctx, "7")
		if err != nil {
			t.Fatal(err)
		}
		if len(one) != 2 || one[0].Organization != (unified.OrgRef{ID: "7"}) {
			t.Errorf("Workspaces(\"7\") = %+v", one)
		}
	})
}

// TestDirectoryPartialSkips checks which space failures the partial fallback tolerates.
func TestDirectoryPartialSkips(t *testing.T) {
	t.Parallel()
	const (
		forbidden = `{"error": "forbidden", "error_description": "You are not a member of this space"}`
		notFound  = `{"error": "not_found"}`
		member    = `{"profile": {"user_id": 31, "name": "Kim", "last_seen_on": "2024-01-01 00:00:00"}, "employee": true, "role": "regular"}`
	)
	base := func() canned {
		return canned{
			"/org/9/member/": {status: 403, body: `{"error": "forbidden"}`},
			"/org/9/space/": {body: array(
				`{"space_id": 91, "name": "Mine", "org_id": 9, "role": "regular"}`,
				`{"space_id": 92, "name": "Open", "org_id": 9, "role": null, "privacy": "open"}`,
				`{"space_id": 93, "name": "Gone", "org_id": 9, "role": "admin"}`,
			)},
			"/space/91/member/v2/": {body: array(member)},
			"/space/92/member/v2/": {status: 403, body: forbidden},
			"/space/93/member/v2/": {status: 404, body: notFound},
		}
	}
	t.Run("403 on a space without role and 404 are skipped", func(t *testing.T) {
		t.Parallel()
		list, err := base().directory(t).OrganizationUsers(t.Context(), "9")
		if err != nil {
			t.Fatal(err)
		}
		if !list.Partial || len(list.Users) != 1 || list.Users[0].ID != "31" {
			t.Errorf("list = %+v, want Kim alone, partial", list)
		}
	})
	t.Run("403 on a space of the person is an error", func(t *testing.T) {
		t.Parallel()
		c := base()
		c["/space/91/member/v2/"] = answer{403, forbidden}
		_, err := c.directory(t).OrganizationUsers(t.Context(), "9")
		if e, ok := errors.AsType[*podio.Error](err); !ok || !e.IsForbidden() {
			t.Errorf("err = %v, want the 403", err)
		}
	})
	t.Run("403 on the space list is an error", func(t *testing.T) {
		t.Parallel()
		c := base()
		c["/org/9/space/"] = answer{403, forbidden}
		_, err := c.directory(t).OrganizationUsers(t.Context(), "9")
		if e, ok := errors.AsType[*podio.Error](err); !ok || !e.IsForbidden() {
			t.Errorf("err = %v, want the 403", err)
		}
	})
}
