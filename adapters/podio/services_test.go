package podio_test

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/dirgate/dirgate/adapters/podio"
	"github.com/dirgate/dirgate/adapters/podio/podiosim"
)

func TestUsersGet(t *testing.T) {
	t.Parallel()
	f := setup(t, podiosim.Config{})
	c := f.as(f.password(t, adminMail))
	u, resp, err := c.Users.Get(t.Context())
	if err != nil {
		t.Fatalf("Users.Get: %v", err)
	}
	want := []any{f.userID(t, adminMail), adminMail, "active"}
	if diff := cmp.Diff(want, []any{u.UserID, u.Mail, u.Status}); diff != "" {
		t.Errorf("user_id, mail, status (-want +got):\n%s", diff)
	}
	if u.CreatedOn.IsZero() {
		t.Error("created_on not decoded")
	}
	if !slices.ContainsFunc(u.Mails, func(m podio.UserMail) bool { return m.Mail == adminMail && m.Primary }) {
		t.Errorf("mails = %+v, want %s as primary", u.Mails, adminMail)
	}
	if resp.Rate.Limit != 1000 || !resp.Rate.Present {
		t.Errorf("Rate = %+v, want the default general limit 1000", resp.Rate)
	}
}

func TestUsersStatus(t *testing.T) {
	t.Parallel()
	f := setup(t, podiosim.Config{})
	c := f.as(f.issued(t, memberMail))
	st, _, err := c.Users.Status(t.Context())
	if err != nil {
		t.Fatalf("Users.Status: %v", err)
	}
	if st.User == nil || st.Profile == nil {
		t.Fatalf("status without user or profile: %+v", st)
	}
	id := f.userID(t, memberMail)
	got := []any{st.User.UserID, st.User.Mail, st.Profile.UserID, st.Profile.Name, st.Profile.Mail}
	want := []any{id, memberMail, id, "Sam Taylor", []string{memberMail}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("user_id, mail, profile.user_id, profile.name, profile.mail (-want +got):\n%s", diff)
	}
	if st.Profile.ProfileID == 0 {
		t.Error("profile.profile_id is zero")
	}
}

func TestContactsGetUser(t *testing.T) {
	t.Parallel()
	f := setup(t, podiosim.Config{})
	c := f.as(f.issued(t, memberMail))
	id := f.userID(t, adminMail)
	p, _, err := c.Contacts.GetUser(t.Context(), id)
	if err != nil {
		t.Fatalf("Contacts.GetUser: %v", err)
	}
	got := []any{p.UserID, p.Name, p.Mail, p.Title, p.Phone, p.Type}
	want := []any{id, "Alex Morgan", []string{adminMail}, []string{"Operations Director"}, []string{"+44 20 7946 0001"}, "user"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("user_id, name, mail, title, phone, type (-want +got):\n%s", diff)
	}
	if p.ProfileID == 0 {
		t.Error("profile_id is zero")
	}

	_, _, err = c.Contacts.GetUser(t.Context(), 999999999)
	if e, ok := errors.AsType[*podio.Error](err); !ok || !e.IsNotFound() {
		t.Errorf("unknown user: err = %v, want a 404 *podio.Error", err)
	}
}

func TestOrgsListAndGet(t *testing.T) {
	t.Parallel()
	f := setup(t, podiosim.Config{})
	ctx := t.Context()

	admin := f.as(f.issued(t, adminMail))
	orgs, _, err := admin.Orgs.List(ctx)
	if err != nil {
		t.Fatalf("Orgs.List: %v", err)
	}
	names := map[string]*podio.Organization{}
	for _, o := range orgs {
		names[o.Name] = o
	}
	if diff := cmp.Diff([]string{"Bluefin Labs", "Northwind Traders"}, slices.Sorted(maps.Keys(names))); diff != "" {
		t.Fatalf("org names (-want +got):\n%s", diff)
	}
	nw := names["Northwind Traders"]
	if nw.OrgID != f.orgID(t, "Northwind Traders") || nw.Role != "admin" {
		t.Errorf("Northwind: org_id %d role %q, want %d admin", nw.OrgID, nw.Role, f.orgID(t, "Northwind Traders"))
	}
	// admin@ is in four Northwind spaces (not Board Room).
	var spaceNames []string
	for _, s := range nw.Spaces {
		spaceNames = append(spaceNames, s.Name)
		if s.SpaceID == 0 {
			t.Errorf("space %q without space_id", s.Name)
		}
	}
	slices.Sort(spaceNames)
	if diff := cmp.Diff([]string{"Archive 2023", "Engineering", "Marketing", "Sales"}, spaceNames); diff != "" {
		t.Errorf("Northwind spaces in GET /org/ (-want +got):\n%s", diff)
	}

	// The member sees only the org it belongs to.
	member := f.as(f.issued(t, memberMail))
	morgs, _, err := member.Orgs.List(ctx)
	if err != nil {
		t.Fatalf("Orgs.List as member: %v", err)
	}
	if len(morgs) != 1 || morgs[0].Name != "Northwind Traders" || morgs[0].Role != "regular" {
		t.Errorf("member orgs = %+v, want Northwind Traders with role regular", morgs)
	}

	org, _, err := admin.Orgs.Get(ctx, nw.OrgID)
	if err != nil {
		t.Fatalf("Orgs.Get: %v", err)
	}
	got := []any{org.OrgID, org.Name, org.URLLabel, org.Status, org.UserLimit}
	want := []any{nw.OrgID, "Northwind Traders", "northwindtraders", "active", 100}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("org_id, name, url_label, status, user_limit (-want +got):\n%s", diff)
	}
	if org.CreatedOn.IsZero() {
		t.Error("created_on not decoded")
	}

	_, _, err = admin.Orgs.Get(ctx, 999999)
	if e, ok := errors.AsType[*podio.Error](err); !ok || !e.IsNotFound() {
		t.Errorf("unknown org: err = %v, want 404", err)
	}
}

func TestOrgsSpaces(t *testing.T) {
	t.Parallel()
	f := setup(t, podiosim.Config{})
	ctx := t.Context()
	admin := f.as(f.issued(t, adminMail))
	orgID := f.orgID(t, "Northwind Traders")
	board := f.spaceID(t, "Board Room")

	all, _, err := admin.Orgs.ListAllSpaces(ctx, orgID)
	if err != nil {
		t.Fatalf("Orgs.ListAllSpaces: %v", err)
	}
	var allIDs []int64
	for _, s := range all {
		allIDs = append(allIDs, s.SpaceID)
	}
	if len(all) != 5 || !slices.Contains(allIDs, board) {
		t.Errorf("all_spaces = %v, want the 5 Northwind spaces including Board Room %d", allIDs, board)
	}

	visible, _, err := admin.Orgs.ListSpaces(ctx, orgID)
	if err != nil {
		t.Fatalf("Orgs.ListSpaces: %v", err)
	}
	for _, s := range visible {
		if s.OrgID != 0 && s.OrgID != orgID {
			t.Errorf("space %d has org_id %d, want %d", s.SpaceID, s.OrgID, orgID)
		}
	}
	if len(visible) == 0 || len(visible) > len(all) {
		t.Errorf("GET /org/{id}/space/ returned %d spaces; all_spaces %d", len(visible), len(all))
	}

	// Only org admins may list all spaces.
	member := f.as(f.issued(t, memberMail))
	if _, _, err := member.Orgs.ListAllSpaces(ctx, orgID); err == nil {
		t.Error("member listed all_spaces")
	} else if e, ok := errors.AsType[*podio.Error](err); !ok || !e.IsForbidden() {
		t.Errorf("member all_spaces: err = %v, want 403", err)
	}
}

func TestSpacesGet(t *testing.T) {
	t.Parallel()
	f := setup(t, podiosim.Config{})
	c := f.as(f.issued(t, memberMail))
	sales := f.spaceID(t, "Sales")
	s, _, err := c.Spaces.Get(t.Context(), sales)
	if err != nil {
		t.Fatalf("Spaces.Get: %v", err)
	}
	got := []any{s.SpaceID, s.Name, s.URLLabel, s.OrgID, s.Role, s.Privacy, s.Archived}
	want := []any{sales, "Sales", "sales", f.orgID(t, "Northwind Traders"), "regular", "closed", false}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("space_id, name, url_label, org_id, role, privacy, archived (-want +got):\n%s", diff)
	}
	if s.CreatedOn.IsZero() {
		t.Error("created_on not decoded")
	}

	archive, _, err := f.as(f.issued(t, adminMail)).Spaces.Get(t.Context(), f.spaceID(t, "Archive 2023"))
	if err != nil {
		t.Fatalf("Spaces.Get(archive): %v", err)
	}
	if !archive.Archived {
		t.Error("Archive 2023: archived = false")
	}

	_, _, err = c.Spaces.Get(t.Context(), 999999)
	if e, ok := errors.AsType[*podio.Error](err); !ok || !e.IsNotFound() {
		t.Errorf("unknown space: err = %v, want 404", err)
	}
}

func TestOrgMembers(t *testing.T) {
	t.Parallel()
	f := setup(t, podiosim.Config{})
	ctx := t.Context()
	admin := f.as(f.issued(t, adminMail))
	orgID := f.orgID(t, "Northwind Traders")
	memberID := f.userID(t, memberMail)

	page, _, err := admin.Orgs.ListMembers(ctx, orgID, &podio.OrgMembersOptions{Limit: 100})
	if err != nil {
		t.Fatalf("Orgs.ListMembers: %v", err)
	}
	byID := map[int64]*podio.OrgMember{}
	for _, m := range page {
		if m.User == nil {
			t.Fatalf("member without user: %+v", m)
		}
		byID[m.User.UserID] = m
	}
	m, ok := byID[memberID]
	if !ok {
		t.Fatalf("member@ not in the org member list")
	}
	got := []any{m.User.Mail, m.Role, m.Employee, m.SpaceMemberships}
	want := []any{memberMail, "regular", true, 3}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("member@ mail, role, employee, space_memberships (-want +got):\n%s", diff)
	}
	if m.Profile == nil || m.Profile.Name != "Sam Taylor" {
		t.Errorf("member@ profile = %+v, want name Sam Taylor", m.Profile)
	}
	if a := byID[f.userID(t, adminMail)]; a == nil || a.Role != "admin" {
		t.Errorf("admin@ in list = %+v, want role admin", a)
	}

	one, _, err := admin.Orgs.GetMember(ctx, orgID, memberID)
	if err != nil {
		t.Fatalf("Orgs.GetMember: %v", err)
	}
	if one.User == nil || one.User.UserID != memberID || one.Role != "regular" {
		t.Errorf("GetMember = %+v", one)
	}
	if one.Spaces == nil || one.Spaces.Started != 3 {
		t.Errorf("GetMember spaces = %+v, want started 3", one.Spaces)
	}

	byMail, _, err := admin.Orgs.GetMemberByMail(ctx, orgID, memberMail)
	if err != nil {
		t.Fatalf("Orgs.GetMemberByMail: %v", err)
	}
	if byMail.User == nil || byMail.User.UserID != memberID {
		t.Errorf("GetMemberByMail user = %+v, want %d", byMail.User, memberID)
	}
	_, _, err = admin.Orgs.GetMemberByMail(ctx, orgID, "nobody+x@demo.example")
	if e, ok := errors.AsType[*podio.Error](err); !ok || !e.IsNotFound() {
		t.Errorf("unknown mail: err = %v, want 404", err)
	}

	// Filters reach the simulator: a query for the member's name.
	q, _, err := admin.Orgs.ListMembers(ctx, orgID, &podio.OrgMembersOptions{Query: "Sam Taylor"})
	if err != nil {
		t.Fatalf("ListMembers(query): %v", err)
	}
	if !slices.ContainsFunc(q, func(m *podio.OrgMember) bool { return m.User.UserID == memberID }) || len(q) >= len(page) {
		t.Errorf("query Sam Taylor returned %d of %d members", len(q), len(page))
	}
	admins, _, err := admin.Orgs.ListMembers(ctx, orgID, &podio.OrgMembersOptions{MemberType: "admin"})
	if err != nil {
		t.Fatalf("ListMembers(member_type=admin): %v", err)
	}
	for _, a := range admins {
		if a.Role != "admin" {
			t.Errorf("member_type=admin returned %d with role %q", a.User.UserID, a.Role)
		}
	}

	// Listing org members is for org admins only.
	member := f.as(f.issued(t, memberMail))
	_, _, err = member.Orgs.ListMembers(ctx, orgID, nil)
	if e, ok := errors.AsType[*podio.Error](err); !ok || !e.IsForbidden() || e.StatusCode != 403 {
		t.Errorf("member listing org members: err = %v, want 403 *podio.Error", err)
	}
}

func TestOrgEndMembership(t *testing.T) {
	t.Parallel()
	for _, status := range []int{0, 200, 204} {
		t.Run(fmt.Sprintf("status %d", status), func(t *testing.T) {
			t.Parallel()
			testOrgEndMembership(t, podiosim.Config{EndOrgMemberStatus: status})
		})
	}
}

func testOrgEndMembership(t *testing.T, cfg podiosim.Config) {
	f := setup(t, cfg)
	ctx := t.Context()
	admin := f.as(f.issued(t, adminMail))
	orgID := f.orgID(t, "Northwind Traders")
	grace := f.userID(t, "grace.whitfield@northwind.example")

	// Grace is the only admin of Board Room, with Henry as regular member.
	info, _, err := admin.Orgs.EndMemberInfo(ctx, orgID, grace)
	if err != nil {
		t.Fatalf("Orgs.EndMemberInfo: %v", err)
	}
	if n := len(info.ToPromote) + len(info.ToRemove) + len(info.ToDelete); n == 0 {
		t.Errorf("EndMemberInfo = %+v, want Board Room affected", info)
	}

	if _, err := admin.Orgs.EndMembership(ctx, orgID, grace); err != nil {
		t.Fatalf("Orgs.EndMembership: %v", err)
	}
	_, _, err = admin.Orgs.GetMember(ctx, orgID, grace)
	if e, ok := errors.AsType[*podio.Error](err); !ok || !e.IsNotFound() {
		t.Errorf("GetMember after EndMembership: err = %v, want 404", err)
	}
	_, _, err = admin.SpaceMembers.Get(ctx, f.spaceID(t, "Board Room"), grace)
	if err == nil {
		t.Error("grace is still a Board Room member after her org membership ended")
	}
}

func TestSpaceMembersRead(t *testing.T) {
	t.Parallel()
	f := setup(t, podiosim.Config{})
	ctx := t.Context()
	c := f.as(f.issued(t, adminMail))
	sales := f.spaceID(t, "Sales")
	memberID := f.userID(t, memberMail)

	v1, _, err := c.SpaceMembers.ListActive(ctx, sales)
	if err != nil {
		t.Fatalf("SpaceMembers.ListActive: %v", err)
	}
	var found *podio.SpaceMember
	for _, m := range v1 {
		if m.User != nil && m.User.UserID == memberID {
			found = m
		}
	}
	if found == nil || found.Role != "regular" {
		t.Fatalf("v1 list: member@ = %+v, want role regular", found)
	}
	if found.Profile != nil && found.Profile.Name != "Sam Taylor" {
		t.Errorf("v1 profile name = %q", found.Profile.Name)
	}

	v2, _, err := c.SpaceMembers.List(ctx, sales, nil)
	if err != nil {
		t.Fatalf("SpaceMembers.List: %v", err)
	}
	var found2 *podio.SpaceMemberV2
	for _, m := range v2 {
		if m.Profile == nil {
			t.Fatalf("v2 item without profile/user: %+v", m)
		}
		if m.Profile.UserID == memberID {
			found2 = m
		}
	}
	if found2 == nil {
		t.Fatal("member@ not in v2 list")
	}
	got := []any{found2.Role, found2.Employee, found2.Profile.Name, found2.Profile.Mail}
	want := []any{"regular", true, "Sam Taylor", []string{memberMail}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("v2 member@ role, employee, name, mail (-want +got):\n%s", diff)
	}

	one, _, err := c.SpaceMembers.Get(ctx, sales, memberID)
	if err != nil {
		t.Fatalf("SpaceMembers.Get: %v", err)
	}
	if one.User == nil || one.User.UserID != memberID || one.Role != "regular" || one.StartedOn.IsZero() || !one.EndedOn.IsZero() {
		t.Errorf("SpaceMembers.Get = %+v (user %+v)", one, one.User)
	}

	// The member's roles in the three Northwind spaces (demo facts).
	member := f.as(f.issued(t, memberMail))
	for name, role := range map[string]string{"Sales": "regular", "Marketing": "admin", "Engineering": "light"} {
		m, _, err := member.SpaceMembers.Get(ctx, f.spaceID(t, name), memberID)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if m.Role != role {
			t.Errorf("%s: role %q, want %q", name, m.Role, role)
		}
	}
}

func TestSpaceMembersWrite(t *testing.T) {
	t.Parallel()
	statuses := []struct {
		name string
		cfg  podiosim.Config
	}{
		{"default statuses", podiosim.Config{}},
		{"all 200", podiosim.Config{AddMemberStatus: 200, UpdateMemberStatus: 200, EndMemberStatus: 200}},
		{"201 and 204", podiosim.Config{AddMemberStatus: 201, UpdateMemberStatus: 204, EndMemberStatus: 204}},
		{"add 204", podiosim.Config{AddMemberStatus: 204}},
	}
	for _, st := range statuses {
		t.Run(st.name, func(t *testing.T) {
			t.Parallel()
			f := setup(t, st.cfg)
			ctx := t.Context()
			c := f.as(f.issued(t, adminMail))
			sales := f.spaceID(t, "Sales")
			grace := f.userID(t, "grace.whitfield@northwind.example")
			henry := f.userID(t, "henry.osei@northwind.example")
			both := []int64{grace, henry}

			if _, err := c.SpaceMembers.Add(ctx, sales, &podio.AddSpaceMembersRequest{Role: podio.RoleLight, Users: both, Message: "welcome"}); err != nil {
				t.Fatalf("SpaceMembers.Add: %v", err)
			}
			checkRoles(t, c, sales, both, podio.RoleLight)

			if _, err := c.SpaceMembers.UpdateRole(ctx, sales, both, podio.RoleRegular); err != nil {
				t.Fatalf("SpaceMembers.UpdateRole: %v", err)
			}
			checkRoles(t, c, sales, both, podio.RoleRegular)

			if _, err := c.SpaceMembers.End(ctx, sales, both); err != nil {
				t.Fatalf("SpaceMembers.End: %v", err)
			}
			for _, id := range both {
				_, _, err := c.SpaceMembers.Get(ctx, sales, id)
				if e, ok := errors.AsType[*podio.Error](err); !ok || !e.IsNotFound() {
					t.Errorf("user %d after End: err = %v, want 404", id, err)
				}
			}
		})
	}
}

func checkRoles(t *testing.T, c *podio.Client, spaceID int64, ids []int64, role string) {
	t.Helper()
	for _, id := range ids {
		m, _, err := c.SpaceMembers.Get(t.Context(), spaceID, id)
		if err != nil {
			t.Errorf("SpaceMembers.Get(%d): %v", id, err)
			continue
		}
		if m.Role != role {
			t.Errorf("user %d: role %q, want %q", id, m.Role, role)
		}
	}
}

func TestSpaceMembersWriteNeedsIDs(t *testing.T) {
	t.Parallel()
	f := setup(t, podiosim.Config{})
	c := f.as(f.issued(t, adminMail))
	f.sim.ResetCalls()
	if _, err := c.SpaceMembers.UpdateRole(t.Context(), 1, nil, podio.RoleLight); err == nil {
		t.Error("UpdateRole with no ids: no error")
	}
	if _, err := c.SpaceMembers.End(t.Context(), 1, nil); err == nil {
		t.Error("End with no ids: no error")
	}
	if _, err := c.SpaceMembers.Add(t.Context(), 1, nil); err == nil {
		t.Error("Add with nil body: no error")
	}
	if got := calls(f); len(got) != 0 {
		t.Errorf("requests were sent: %v", got)
	}
}
