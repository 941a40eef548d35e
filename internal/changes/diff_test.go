package changes_test

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/dirgate/dirgate/internal/changes"
	"github.com/dirgate/dirgate/internal/events"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// world builds a snapshot: workspaces "10" (org 1) and "20" (org 1), users 1..3, and the members
// given as workspace → user → role.
func world(at time.Time, members map[string]map[string]string) *changes.Snapshot {
	s := changes.NewSnapshot(at)
	s.Organizations["1"] = changes.Organization{Name: "Org"}
	s.Workspaces["10"] = changes.Workspace{Name: "Ten", OrganizationID: "1"}
	s.Workspaces["20"] = changes.Workspace{Name: "Twenty", OrganizationID: "1"}
	s.Users["1"] = changes.User{Name: "Ann", Email: "ann@x.example", Status: "active"}
	s.Users["2"] = changes.User{Name: "Bob", Email: "bob@x.example", Status: "active"}
	s.Users["3"] = changes.User{Name: "Cy", Email: "cy@x.example", Status: "invited"}
	s.WorkspacesFetchedAt = at
	for ws, m := range members {
		s.Members[ws] = m
		s.MembersFetchedAt[ws] = at
	}
	return s
}

func types(cs []changes.Change) []string {
	var out []string
	for _, c := range cs {
		out = append(out, c.Type)
	}
	return out
}

func TestDiff(t *testing.T) {
	t.Parallel()
	base := map[string]map[string]string{
		"10": {"1": "workspace_admin", "2": "workspace_regular"},
		"20": {"1": "workspace_admin"},
	}
	clone := func() map[string]map[string]string {
		out := map[string]map[string]string{}
		for ws, m := range base {
			out[ws] = map[string]string{}
			for u, r := range m {
				out[ws][u] = r
			}
		}
		return out
	}
	t.Run("baseline", func(t *testing.T) {
		got, settled := changes.Diff(nil, world(t0, base), nil, time.Second)
		if got != nil || settled != nil {
			t.Errorf("first poll: %v, settled %v; want nothing", got, settled)
		}
	})
	t.Run("no change", func(t *testing.T) {
		if got, _ := changes.Diff(world(t0, base), world(t0.Add(time.Hour), clone()), nil, time.Second); len(got) != 0 {
			t.Errorf("same world: %v", got)
		}
	})
	t.Run("every kind, in order", func(t *testing.T) {
		old := world(t0, base)
		m := clone()
		m["10"]["3"] = "workspace_light" // added
		m["10"]["2"] = "workspace_admin" // role change
		delete(m["20"], "1")             // removed
		m["30"] = map[string]string{"4": "workspace_admin"}
		cur := world(t0.Add(time.Hour), m)
		cur.Workspaces["30"] = changes.Workspace{Name: "Thirty", OrganizationID: "1"}
		delete(cur.Workspaces, "20")
		delete(cur.Members, "20")
		cur.Users["4"] = changes.User{Name: "Dee", Email: "dee@x.example", Status: "active"}
		cur.Users["2"] = changes.User{Name: "Bobby", Email: "bob@x.example", Title: "Boss", Status: "active"}
		old.Users["5"] = changes.User{Name: "Eve", Email: "eve@x.example", Status: "inactive"}

		got, _ := changes.Diff(old, cur, nil, time.Second)
		want := []changes.Change{
			{events.WorkspaceAdded, changes.WorkspaceData{WorkspaceID: "30", Name: "Thirty", OrganizationID: "1", OrganizationName: "Org", Origin: "poll"}},
			{events.UserAdded, changes.UserData{UserID: "4", Name: "Dee", Email: "dee@x.example", Status: "active", Origin: "poll"}},
			{events.MembershipAdded, changes.MembershipData{WorkspaceID: "10", WorkspaceName: "Ten", OrganizationID: "1", UserID: "3", Name: "Cy", Email: "cy@x.example", Role: "workspace_light", Origin: "poll"}},
			{events.MembershipAdded, changes.MembershipData{WorkspaceID: "30", WorkspaceName: "Thirty", OrganizationID: "1", UserID: "4", Name: "Dee", Email: "dee@x.example", Role: "workspace_admin", Origin: "poll"}},
			{events.MembershipRoleChanged, changes.MembershipData{WorkspaceID: "10", WorkspaceName: "Ten", OrganizationID: "1", UserID: "2", Name: "Bobby", Email: "bob@x.example", Role: "workspace_admin", PreviousRole: "workspace_regular", Origin: "poll"}},
			{events.MembershipRemoved, changes.MembershipData{WorkspaceID: "20", WorkspaceName: "Twenty", OrganizationID: "1", UserID: "1", Name: "Ann", Email: "ann@x.example", PreviousRole: "workspace_admin", Origin: "poll"}},
			{events.UserRemoved, changes.UserData{UserID: "5", Name: "Eve", Email: "eve@x.example", Status: "inactive", Origin: "poll"}},
			{events.WorkspaceRemoved, changes.WorkspaceData{WorkspaceID: "20", Name: "Twenty", OrganizationID: "1", OrganizationName: "Org", Origin: "poll"}},
			{events.UserUpdated, changes.UserUpdateData{
				UserData: changes.UserData{UserID: "2", Name: "Bobby", Email: "bob@x.example", Title: "Boss", Status: "active", Origin: "poll"},
				Changes:  map[string]changes.FieldChange{"name": {Old: "Bob", New: "Bobby"}, "title": {Old: "", New: "Boss"}},
			}},
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("changes (-want +got):\n%s", diff)
		}
	})
	t.Run("ids sort as numbers", func(t *testing.T) {
		old := world(t0, base)
		m := clone()
		m["10"]["9"], m["10"]["10"] = "workspace_light", "workspace_light"
		got, _ := changes.Diff(old, world(t0.Add(time.Hour), m), nil, time.Second)
		if len(got) != 2 || got[0].Data.(changes.MembershipData).UserID != "9" || got[1].Data.(changes.MembershipData).UserID != "10" {
			t.Errorf("got %v, want user 9 before user 10", got)
		}
	})
}

// TestDiffMarks: a change dirgate made (and reported) is not reported again; what happened to the
// membership after the write is reported from the state the write left.
func TestDiffMarks(t *testing.T) {
	t.Parallel()
	const margin = 5 * time.Second
	write := t0.Add(time.Minute)
	m := changes.Member{Workspace: "10", User: "3"}
	mark := func(role string) map[changes.Member]changes.Mark {
		return map[changes.Member]changes.Mark{m: {Role: role, At: write, Expires: write.Add(time.Hour)}}
	}
	old := world(t0, map[string]map[string]string{"10": {"1": "workspace_admin"}})
	for _, tc := range []struct {
		name     string
		role     string // 3's role in the new list ("" none)
		fetched  time.Time
		mark     map[changes.Member]changes.Mark
		want     []string
		previous string // of the one change, if any
		settled  bool
	}{
		{"own add seen", "workspace_regular", write.Add(time.Minute), mark("workspace_regular"), nil, "", true},
		{"own add, then re-roled elsewhere", "workspace_admin", write.Add(time.Minute), mark("workspace_regular"),
			[]string{events.MembershipRoleChanged}, "workspace_regular", true},
		{"own add, then removed elsewhere", "", write.Add(time.Minute), mark("workspace_regular"),
			[]string{events.MembershipRemoved}, "workspace_regular", true},
		{"list read before the write", "", write.Add(-time.Minute), mark("workspace_regular"), nil, "", false},
		{"list read within the margin", "workspace_regular", write.Add(margin), mark("workspace_regular"), nil, "", false},
		{"expired mark", "workspace_regular", write.Add(2 * time.Hour), map[changes.Member]changes.Mark{m: {Role: "workspace_regular", At: write, Expires: write}},
			[]string{events.MembershipAdded}, "", true},
		{"no mark", "workspace_regular", write.Add(time.Minute), nil, []string{events.MembershipAdded}, "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			members := map[string]map[string]string{"10": {"1": "workspace_admin"}}
			if tc.role != "" {
				members["10"]["3"] = tc.role
			}
			cur := world(tc.fetched.Add(time.Second), members)
			cur.MembersFetchedAt["10"] = tc.fetched
			got, settled := changes.Diff(old, cur, tc.mark, margin)
			if diff := cmp.Diff(tc.want, types(got)); diff != "" {
				t.Fatalf("types (-want +got):\n%s", diff)
			}
			if len(got) == 1 && got[0].Data.(changes.MembershipData).PreviousRole != tc.previous {
				t.Errorf("previous role = %q, want %q", got[0].Data.(changes.MembershipData).PreviousRole, tc.previous)
			}
			if (len(settled) == 1) != tc.settled {
				t.Errorf("settled = %v, want settled %v", settled, tc.settled)
			}
		})
	}
	// On the baseline nothing is reported, but marks the new lists include are settled.
	cur := world(write.Add(time.Hour), map[string]map[string]string{"10": {"3": "workspace_regular"}})
	if got, settled := changes.Diff(nil, cur, mark("workspace_regular"), margin); got != nil || len(settled) != 1 {
		t.Errorf("baseline with a mark: %v, settled %v", got, settled)
	}
}
