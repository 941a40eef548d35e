package podio_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/dirgate/dirgate/adapters/podio"
	"github.com/dirgate/dirgate/adapters/podio/podiosim"
)

const (
	routeOrgMembers   = "GET /org/{org_id}/member/"
	routeSpaceMembers = "GET /space/{space_id}/member/v2/"
)

// calls returns the simulator's call counts without zero entries.
func calls(f *fixture) map[string]int {
	out := map[string]int{}
	for k, v := range f.sim.Calls() {
		if v != 0 {
			out[k] = v
		}
	}
	return out
}

// wantPages is how many requests an offset walk over n items with page
// size limit makes: it stops at the first page shorter than limit, which is
// an empty page when limit divides n.
func wantPages(n, limit int) int { return n/limit + 1 }

func TestOrgMembersIterator(t *testing.T) {
	t.Parallel()
	f := setup(t, podiosim.Config{})
	ctx := t.Context()
	c := f.as(f.issued(t, adminMail))
	orgID := f.orgID(t, "Northwind Traders")

	full, _, err := c.Orgs.ListMembers(ctx, orgID, &podio.OrgMembersOptions{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	if len(full) < 20 || len(full) >= 100 {
		t.Fatalf("need one page of 20-99 members for this test, got %d", len(full))
	}
	want := map[int64]int{}
	for _, m := range full {
		want[m.User.UserID]++
	}

	for _, limit := range []int{7, 10, len(full), len(full) + 1} {
		f.sim.ResetCalls()
		got := map[int64]int{}
		for m, err := range c.Orgs.AllMembers(ctx, orgID, &podio.OrgMembersOptions{Limit: limit}) {
			if err != nil {
				t.Fatalf("limit %d: %v", limit, err)
			}
			got[m.User.UserID]++
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("limit %d: members seen (user id → times) (-want +got):\n%s", limit, diff)
		}
		if diff := cmp.Diff(map[string]int{routeOrgMembers: wantPages(len(full), limit)}, calls(f)); diff != "" {
			t.Errorf("limit %d: calls (-want +got):\n%s", limit, diff)
		}
	}

	// Breaking after the first member of the second page stops the walk.
	f.sim.ResetCalls()
	n := 0
	for _, err := range c.Orgs.AllMembers(ctx, orgID, &podio.OrgMembersOptions{Limit: 5}) {
		if err != nil {
			t.Fatal(err)
		}
		n++
		if n == 6 {
			break
		}
	}
	if diff := cmp.Diff(map[string]int{routeOrgMembers: 2}, calls(f)); diff != "" {
		t.Errorf("after break: calls (-want +got):\n%s", diff)
	}
}

func TestSpaceMembersIterator(t *testing.T) {
	t.Parallel()
	f := setup(t, podiosim.Config{})
	ctx := t.Context()
	c := f.as(f.issued(t, adminMail))
	sales := f.spaceID(t, "Sales")

	full, _, err := c.SpaceMembers.List(ctx, sales, &podio.SpaceMembersOptions{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	if len(full) < 7 || len(full) >= 100 {
		t.Fatalf("need one page of 7-99 members for this test, got %d", len(full))
	}
	want := map[int64]int{}
	for _, m := range full {
		want[m.Profile.ProfileID]++
	}
	for _, limit := range []int{2, 3, len(full)} {
		f.sim.ResetCalls()
		got := map[int64]int{}
		for m, err := range c.SpaceMembers.All(ctx, sales, &podio.SpaceMembersOptions{Limit: limit}) {
			if err != nil {
				t.Fatalf("limit %d: %v", limit, err)
			}
			got[m.Profile.ProfileID]++
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("limit %d: members seen (profile id → times) (-want +got):\n%s", limit, diff)
		}
		if diff := cmp.Diff(map[string]int{routeSpaceMembers: wantPages(len(full), limit)}, calls(f)); diff != "" {
			t.Errorf("limit %d: calls (-want +got):\n%s", limit, diff)
		}
	}

	f.sim.ResetCalls()
	n := 0
	for _, err := range c.SpaceMembers.All(ctx, sales, &podio.SpaceMembersOptions{Limit: 2}) {
		if err != nil {
			t.Fatal(err)
		}
		n++
		if n == 1 {
			break
		}
	}
	if diff := cmp.Diff(map[string]int{routeSpaceMembers: 1}, calls(f)); diff != "" {
		t.Errorf("after break: calls (-want +got):\n%s", diff)
	}
}

func TestIteratorStopsOnError(t *testing.T) {
	t.Parallel()
	f := setup(t, podiosim.Config{})
	ctx := t.Context()
	c := f.as(f.issued(t, adminMail))
	sales := f.spaceID(t, "Sales")

	// The second page fails: the first page is yielded, then the error
	// once, then nothing.
	f.sim.ResetCalls()
	var items, errs int
	first := true
	for m, err := range c.SpaceMembers.All(ctx, sales, &podio.SpaceMembersOptions{Limit: 2}) {
		if first {
			first = false
			// From now on every page fails.
			if err := f.sim.AddFault(podiosim.Fault{Route: routeSpaceMembers, Status: 503}); err != nil {
				t.Fatal(err)
			}
		}
		if err != nil {
			errs++
			if e, ok := errors.AsType[*podio.Error](err); !ok || e.StatusCode != 503 {
				t.Errorf("err = %v, want a 503 *podio.Error", err)
			}
			if m != nil {
				t.Errorf("item %+v yielded with the error", m)
			}
			continue
		}
		items++
	}
	if items != 2 || errs != 1 {
		t.Errorf("items %d, errors %d; want 2 items then 1 error", items, errs)
	}
	if diff := cmp.Diff(map[string]int{routeSpaceMembers: 2}, calls(f)); diff != "" {
		t.Errorf("calls (-want +got):\n%s", diff)
	}

	// A failure on the first page: the error alone.
	f.sim.ResetCalls()
	member := f.as(f.issued(t, memberMail))
	errs = 0
	for m, err := range member.Orgs.AllMembers(ctx, f.orgID(t, "Northwind Traders"), nil) {
		if err == nil {
			t.Fatalf("member walked org members: %+v", m)
		}
		errs++
		if e, ok := errors.AsType[*podio.Error](err); !ok || !e.IsForbidden() {
			t.Errorf("err = %v, want 403", err)
		}
	}
	if errs != 1 {
		t.Errorf("errors yielded: %d, want 1", errs)
	}
}

// TestIteratorPageSize walks an org with more members than one default page.
// A positive limit is sent as given, so with a server that allows large pages
// a large limit walks in fewer requests and sees the same members.
func TestIteratorPageSize(t *testing.T) {
	t.Parallel()
	f := setup(t, podiosim.Config{
		Dataset:     podiosim.Large(podiosim.LargeOptions{Seed: 3, Orgs: 1, Spaces: 4, People: 250}),
		MaxPageSize: 1000,
	})
	ctx := t.Context()
	c := f.as(f.issued(t, adminMail))
	st := f.state(t)
	if len(st.Orgs) != 1 {
		t.Fatalf("want 1 org, got %d", len(st.Orgs))
	}
	orgID := st.Orgs[0].OrgID
	n := len(st.Orgs[0].Members)
	if n <= 200 {
		t.Fatalf("org has %d members, want more than 200", n)
	}
	want := map[int64]int{}
	for _, m := range st.Orgs[0].Members {
		want[m.UserID]++
	}

	tests := []struct {
		limit, pageSize int
	}{
		{limit: 40, pageSize: 40},
		{limit: 0, pageSize: podio.DefaultPageSize},
		{limit: 100, pageSize: 100},
		{limit: 250, pageSize: 250},
		{limit: 1000, pageSize: 1000},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("limit %d", tt.limit), func(t *testing.T) {
			f.sim.ResetCalls()
			seen := map[int64]int{}
			for m, err := range c.Orgs.AllMembers(ctx, orgID, &podio.OrgMembersOptions{Limit: tt.limit}) {
				if err != nil {
					t.Fatal(err)
				}
				seen[m.User.UserID]++
			}
			if diff := cmp.Diff(want, seen); diff != "" {
				t.Errorf("members seen (user id → times) (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(map[string]int{routeOrgMembers: wantPages(n, tt.pageSize)}, calls(f)); diff != "" {
				t.Errorf("calls (-want +got):\n%s", diff)
			}
		})
	}
}

// TestIteratorLimitAboveServerCap pins the hazard DefaultPageSize documents:
// a server that silently caps a larger limit returns a full capped page that
// is shorter than the limit, and the walk ends there without an error.
func TestIteratorLimitAboveServerCap(t *testing.T) {
	t.Parallel()
	f := setup(t, podiosim.Config{Dataset: podiosim.Large(podiosim.LargeOptions{Seed: 3, Orgs: 1, Spaces: 4, People: 250})})
	c := f.as(f.issued(t, adminMail))
	orgID := f.state(t).Orgs[0].OrgID
	seen := 0
	for _, err := range c.Orgs.AllMembers(t.Context(), orgID, &podio.OrgMembersOptions{Limit: 1000}) {
		if err != nil {
			t.Fatal(err)
		}
		seen++
	}
	// The simulator caps at 100 by default.
	if seen != 100 {
		t.Errorf("walk with limit 1000 against a server capping at 100 saw %d members, want 100 (one capped page)", seen)
	}
	if diff := cmp.Diff(map[string]int{routeOrgMembers: 1}, calls(f)); diff != "" {
		t.Errorf("calls (-want +got):\n%s", diff)
	}
}
