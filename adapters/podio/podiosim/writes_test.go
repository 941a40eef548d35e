package podiosim_test

import (
	"fmt"
	"strconv"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/dirgate/dirgate/adapters/podio/podiosim"
)

func TestSpaceMemberWritePermissions(t *testing.T) {
	t.Parallel()
	h := setup(t, podiosim.Config{})
	admin, member := h.token(adminMail), h.token(memberMail)
	tests := []struct {
		name, method, path, tok string
		body                    any
		status                  int
		code                    string
	}{
		{"light member invites", "POST", "/space/" + spaceEng + "/member/", member, map[string]any{"role": "regular", "users": []int{1000003}}, 403, "forbidden"},
		{"non-member invites", "POST", "/space/" + spaceBoard + "/member/", admin, map[string]any{"role": "regular", "users": []int{1000003}}, 403, "forbidden"},
		{"bad role", "POST", "/space/" + spaceSales + "/member/", admin, map[string]any{"role": "owner", "users": []int{1000003}}, 400, "invalid_value"},
		{"bad json", "POST", "/space/" + spaceSales + "/member/", admin, "{oops", 400, "invalid_value"},
		{"unknown user", "POST", "/space/" + spaceSales + "/member/", admin, map[string]any{"role": "regular", "users": []int{42}}, 404, "not_found"},
		{"regular changes role", "PUT", "/space/" + spaceSales + "/member/1000001", member, map[string]any{"role": "light"}, 403, "forbidden"},
		{"role of non-member", "PUT", "/space/" + spaceSales + "/member/1000003", admin, map[string]any{"role": "light"}, 404, "not_found"},
		{"bad role on update", "PUT", "/space/" + spaceSales + "/member/1000002", admin, map[string]any{"role": "boss"}, 400, "invalid_value"},
		{"regular removes other", "DELETE", "/space/" + spaceSales + "/member/1000001", member, nil, 403, "forbidden"},
		{"user limit", "POST", "/space/40006/member/", admin, map[string]any{"role": "light", "mails": manyMails(60)}, 403, "forbidden"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			checkPodioError(t, h.do(tc.method, tc.path, tc.tok, tc.body), tc.status, tc.code)
		})
	}
}

func manyMails(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("crowd%d@newcomers.example", i)
	}
	return out
}

func memberRoles(t *testing.T, h *harness, space, tok string) map[int64]string {
	t.Helper()
	r := h.do("GET", "/space/"+space+"/member/", tok, nil)
	if r.status != 200 {
		t.Fatalf("list members: %d %s", r.status, r.body)
	}
	out := map[int64]string{}
	for _, it := range r.arr(t) {
		m := it.(map[string]any)
		out[num(m["user"].(map[string]any)["user_id"])] = m["role"].(string)
	}
	return out
}

func TestSpaceMemberWrites(t *testing.T) {
	t.Parallel()
	h := setup(t, podiosim.Config{})
	admin, member := h.token(adminMail), h.token(memberMail)

	// member@ is regular in Sales: may invite. Grace (1000003) by user id, Henry by profile id,
	// an existing person by mail, and a brand-new address.
	r := h.do("POST", "/space/"+spaceSales+"/member/", member, map[string]any{
		"role": "light", "users": []int{1000003}, "profiles": []int{2000004},
		"mails": []string{"ADMIN@demo.example", "fresh.face@outside.example"}, "message": "welcome",
	})
	if r.status != 200 || string(r.body) != "{}\n" {
		t.Fatalf("add: %d %q", r.status, r.body)
	}
	roles := memberRoles(t, h, spaceSales, admin)
	if roles[1000003] != "light" || roles[1000004] != "light" || roles[adminUserID] != "admin" {
		t.Errorf("roles after add = %v (existing admin must be unchanged)", roles)
	}
	invitee, ok := h.sim.UserID("fresh.face@outside.example")
	if !ok {
		t.Fatal("invitee not created")
	}
	if _, listed := roles[invitee]; listed {
		t.Error("invitee listed as an active member")
	}
	checkPodioError(t, h.do("GET", "/space/"+spaceSales+"/member/"+strconv.FormatInt(invitee, 10), admin, nil), 404, "not_found")
	om := h.do("GET", "/org/"+org1+"/member/"+strconv.FormatInt(invitee, 10), admin, nil)
	if om.status != 200 {
		t.Fatalf("invitee org member: %d", om.status)
	}
	prof := om.obj(t)["profile"].(map[string]any)
	if _, has := prof["title"]; has || prof["avatar"] != nil {
		t.Errorf("invitee profile not minimal: %v", prof)
	}
	if got := om.obj(t)["user"].(map[string]any)["status"]; got != "inactive" {
		t.Errorf("invitee status = %v", got)
	}

	// Role change by an admin, comma list.
	if r := h.do("PUT", "/space/"+spaceSales+"/member/1000003,1000004", admin, map[string]any{"role": "regular"}); r.status != 204 || len(r.body) != 0 {
		t.Fatalf("update: %d %q", r.status, r.body)
	}
	if got := memberRoles(t, h, spaceSales, admin); got[1000003] != "regular" || got[1000004] != "regular" {
		t.Errorf("roles after update = %v", got)
	}
	// A regular member may remove themself; an admin may remove an invitee.
	if r := h.do("DELETE", "/space/"+spaceSales+"/member/1000002", member, nil); r.status != 204 {
		t.Fatalf("self removal: %d %s", r.status, r.body)
	}
	if r := h.do("DELETE", "/space/"+spaceSales+"/member/"+strconv.FormatInt(invitee, 10), admin, nil); r.status != 204 {
		t.Fatalf("invitee removal: %d %s", r.status, r.body)
	}
	checkPodioError(t, h.do("DELETE", "/space/"+spaceSales+"/member/1000002", admin, nil), 404, "not_found")
}

func TestWriteStatusKnobsAndInviteesV2(t *testing.T) {
	t.Parallel()
	h := setup(t, podiosim.Config{AddMemberStatus: 204, UpdateMemberStatus: 200, InvitedInSpaceMembersV2: true})
	admin := h.token(adminMail)
	if r := h.do("POST", "/space/"+spaceSales+"/member/", admin, map[string]any{"role": "regular", "mails": []string{"x@new.example"}}); r.status != 204 || len(r.body) != 0 {
		t.Fatalf("add: %d %q", r.status, r.body)
	}
	if r := h.do("PUT", "/space/"+spaceSales+"/member/1000002", admin, map[string]any{"role": "light"}); r.status != 200 || string(r.body) != "{}\n" {
		t.Fatalf("update: %d %q", r.status, r.body)
	}
	found := false
	for _, it := range h.do("GET", "/space/"+spaceSales+"/member/v2/?query=x%40new", admin, nil).arr(t) {
		found = found || it.(map[string]any)["profile"].(map[string]any)["mail"].([]any)[0] == "x@new.example"
	}
	if !found {
		t.Error("invitee not listed by v2 with InvitedInSpaceMembersV2")
	}
}

// walk pages through a list with the given limit and returns the user ids in order.
func walk(t *testing.T, h *harness, path, tok string, limit int, profileKey string) []int64 {
	t.Helper()
	var ids []int64
	for offset := 0; ; {
		r := h.do("GET", fmt.Sprintf("%s?limit=%d&offset=%d", path, limit, offset), tok, nil)
		if r.status != 200 {
			t.Fatalf("page: %d %s", r.status, r.body)
		}
		items := r.arr(t)
		for _, it := range items {
			ids = append(ids, num(it.(map[string]any)[profileKey].(map[string]any)["user_id"]))
		}
		offset += len(items)
		if len(items) < limit {
			return ids
		}
	}
}

func TestPagination(t *testing.T) {
	t.Parallel()
	h := setup(t, podiosim.Config{MaxPageSize: 10, RouteMaxPageSize: map[string]int{podiosim.RouteSpaceMembersV2: 3}})
	admin := h.token(adminMail)
	for _, tc := range []struct {
		name, path, key string
		cap             int
	}{
		{"org members", "/org/" + org1 + "/member/", "user", 10},
		{"space members v2", "/space/" + spaceSales + "/member/v2/", "profile", 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			all := h.do("GET", tc.path+"?limit=1000", admin, nil).arr(t)
			if len(all) != tc.cap {
				t.Errorf("limit=1000 returned %d items, want the cap %d", len(all), tc.cap)
			}
			if def := h.do("GET", tc.path, admin, nil).arr(t); len(def) != tc.cap {
				t.Errorf("default page has %d items, want %d", len(def), tc.cap)
			}
			for _, limit := range []int{1, 2, tc.cap} {
				ids := walk(t, h, tc.path, admin, limit, tc.key)
				seen := map[int64]bool{}
				for _, id := range ids {
					if seen[id] {
						t.Fatalf("limit %d: user %d listed twice", limit, id)
					}
					seen[id] = true
				}
				if want := walk(t, h, tc.path, admin, tc.cap, tc.key); !cmp.Equal(ids, want) {
					t.Errorf("limit %d walk differs from limit %d walk", limit, tc.cap)
				}
			}
		})
	}
	// The org list includes invitees and supports member_type and query.
	ids := walk(t, h, "/org/"+org1+"/member/", admin, 10, "user")
	if len(ids) < 30 {
		t.Errorf("org 1 has %d members, want the demo's ~40", len(ids))
	}
	for _, it := range h.do("GET", "/org/"+org1+"/member/?member_type=admin", admin, nil).arr(t) {
		if it.(map[string]any)["role"] != "admin" {
			t.Errorf("member_type=admin returned %v", it)
		}
	}
	q := h.do("GET", "/org/"+org1+"/member/?query=SAM%20TAY", admin, nil).arr(t)
	if len(q) != 1 || num(q[0].(map[string]any)["user"].(map[string]any)["user_id"]) != memberID {
		t.Errorf("query=SAM TAY returned %v", q)
	}
}

func ctl(t *testing.T, h *harness, method, path string, body any, want int) resp {
	t.Helper()
	r := h.do(method, path, "", body)
	if r.status != want {
		t.Fatalf("%s %s: %d %s, want %d", method, path, r.status, r.body, want)
	}
	return r
}

func TestEndOrgMembership(t *testing.T) {
	t.Parallel()
	h := setup(t, podiosim.Config{})
	admin := h.token(adminMail)

	// Build a known situation out of band: X is the only admin of Board Room (Grace demoted to
	// light, Henry regular → Henry is promoted), the only member of Archive 2023 (deleted), and a
	// regular member of Sales (membership ends).
	x := num(ctl(t, h, "POST", "/_sim/people", map[string]any{"name": "Xavier Quit", "mail": "xavier@northwind.example", "org_id": 3001, "employee": true}, 201).obj(t)["user_id"])
	xs := strconv.FormatInt(x, 10)
	ctl(t, h, "POST", "/_sim/spaces/"+spaceBoard+"/members", map[string]any{"user_id": x, "role": "admin"}, 201)
	ctl(t, h, "PUT", "/_sim/spaces/"+spaceBoard+"/members/1000003", map[string]any{"role": "light"}, 204)
	for id := range memberRoles(t, h, spaceArch, admin) {
		ctl(t, h, "DELETE", fmt.Sprintf("/_sim/spaces/%s/members/%d", spaceArch, id), nil, 204)
	}
	ctl(t, h, "POST", "/_sim/spaces/"+spaceArch+"/members", map[string]any{"user_id": x, "role": "admin"}, 201)
	ctl(t, h, "POST", "/_sim/spaces/"+spaceSales+"/members", map[string]any{"user_id": x, "role": "regular"}, 201)

	info := h.do("GET", "/org/"+org1+"/member/"+xs+"/end_member_info", admin, nil)
	if info.status != 200 {
		t.Fatalf("info: %d %s", info.status, info.body)
	}
	type entry struct{ Space, User int64 }
	summarize := func(v any) []entry {
		var out []entry
		for _, it := range v.([]any) {
			m := it.(map[string]any)
			checkShape(t, "end_member_info item", m, shape{"user": "object", "profile": "object", "space": "object", "role": "string", "started_on": "datetime|null"})
			out = append(out, entry{num(m["space"].(map[string]any)["space_id"]), num(m["user"].(map[string]any)["user_id"])})
		}
		return out
	}
	got := map[string][]entry{}
	for k, v := range info.obj(t) {
		got[k] = summarize(v)
	}
	want := map[string][]entry{
		"to_promote": {{40005, 1000004}},
		"to_remove":  {{40001, x}, {40005, x}},
		"to_delete":  {{40004, x}},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("end_member_info (-want +got):\n%s", diff)
	}

	checkPodioError(t, h.do("DELETE", "/org/"+org1+"/member/"+xs, h.token(memberMail), nil), 403, "forbidden")
	if r := h.do("DELETE", "/org/"+org1+"/member/"+xs, admin, nil); r.status != 204 {
		t.Fatalf("delete: %d %s", r.status, r.body)
	}
	// The effect is exactly the preview.
	for _, e := range got["to_promote"] {
		if role := memberRoles(t, h, strconv.FormatInt(e.Space, 10), h.token("grace.whitfield@northwind.example"))[e.User]; role != "admin" {
			t.Errorf("user %d in space %d has role %q, want admin", e.User, e.Space, role)
		}
	}
	state := ctl(t, h, "GET", "/_sim/state", nil, 200).obj(t)
	for _, e := range got["to_remove"] {
		for _, o := range state["orgs"].([]any) {
			for _, sp := range o.(map[string]any)["spaces"].([]any) {
				if num(sp.(map[string]any)["space_id"]) != e.Space {
					continue
				}
				for _, m := range sp.(map[string]any)["members"].([]any) {
					if num(m.(map[string]any)["user_id"]) == x {
						t.Errorf("user still a member of space %d", e.Space)
					}
				}
			}
		}
	}
	for _, e := range got["to_delete"] {
		checkPodioError(t, h.do("GET", fmt.Sprintf("/space/%d", e.Space), admin, nil), 404, "not_found")
	}
	checkPodioError(t, h.do("GET", "/org/"+org1+"/member/"+xs, admin, nil), 404, "not_found")
	if _, ok := h.sim.UserID("xavier@northwind.example"); !ok {
		t.Error("the account must survive the end of its org membership")
	}
}

// TestOrgMemberOrderFollowsChanges proves the sorted member listing reflects renames, removals and
// new people at once: a stale order would make the simulator lie to a gateway mid-walk.
func TestOrgMemberOrderFollowsChanges(t *testing.T) {
	t.Parallel()
	h := setup(t, podiosim.Config{})
	tok := h.token(adminMail)
	firstName := func(query string) (string, int) {
		t.Helper()
		r := h.do("GET", "/org/"+org1+"/member/?limit=100"+query, tok, nil)
		if r.status != 200 {
			t.Fatalf("list: %d %s", r.status, r.body)
		}
		items := r.arr(t)
		if len(items) == 0 {
			return "", 0
		}
		return items[0].(map[string]any)["profile"].(map[string]any)["name"].(string), len(items)
	}
	before, n := firstName("")
	last, _ := firstName("&sort_desc=1")
	if before == last {
		t.Fatalf("ascending and descending start with the same member %q", before)
	}

	// Rename the alphabetically last member so that they sort first.
	lastID := int64(0)
	for _, item := range h.do("GET", "/org/"+org1+"/member/?limit=1&sort_desc=1", tok, nil).arr(t) {
		lastID = int64(item.(map[string]any)["user"].(map[string]any)["user_id"].(float64))
	}
	if r := h.do("PATCH", fmt.Sprintf("/_sim/people/%d", lastID), "", map[string]any{"name": "Aaaron Aardvark"}); r.status != 200 {
		t.Fatalf("rename: %d %s", r.status, r.body)
	}
	if got, _ := firstName(""); got != "Aaaron Aardvark" {
		t.Errorf("first member after rename = %q, want the renamed person", got)
	}

	// A new person shows up, and a deleted one disappears.
	r := h.do("POST", "/_sim/people", "", map[string]any{"name": "Aaaa New", "mail": "new@demo.example", "org_id": 3001, "employee": true, "org_role": "regular"})
	if r.status != 201 {
		t.Fatalf("add person: %d %s", r.status, r.body)
	}
	if got, m := firstName(""); got != "Aaaa New" || m != n+1 {
		t.Errorf("after adding: first = %q, count = %d; want Aaaa New, %d", got, m, n+1)
	}
	newID := int64(r.obj(t)["user_id"].(float64))
	if r := h.do("DELETE", fmt.Sprintf("/_sim/people/%d", newID), "", nil); r.status != 204 {
		t.Fatalf("delete person: %d", r.status)
	}
	if got, m := firstName(""); got != "Aaaron Aardvark" || m != n {
		t.Errorf("after deleting: first = %q, count = %d; want Aaaron Aardvark, %d", got, m, n)
	}
}

// TestLastOrgAdminCannotBeRemoved: ending the membership of an organization's only admin would
// leave it unmanageable, so it is refused with 403 while removing a non-last admin works.
func TestLastOrgAdminCannotBeRemoved(t *testing.T) {
	t.Parallel()
	h := setup(t, podiosim.Config{})
	x := num(ctl(t, h, "POST", "/_sim/people", map[string]any{"name": "Xena Admin", "mail": "xena@demo.example", "org_id": 3002, "employee": true, "org_role": "admin"}, 201).obj(t)["user_id"])
	xena := h.token("xena@demo.example")
	// Leave exactly two admins, admin@ and Xena, whatever else the dataset holds.
	for _, o := range ctl(t, h, "GET", "/_sim/state", nil, 200).obj(t)["orgs"].([]any) {
		if num(o.(map[string]any)["org_id"]) != 3002 {
			continue
		}
		for _, m := range o.(map[string]any)["members"].([]any) {
			uid := num(m.(map[string]any)["user_id"])
			if m.(map[string]any)["role"] == "admin" && uid != adminUserID && uid != x {
				ctl(t, h, "PUT", fmt.Sprintf("/_sim/orgs/3002/members/%d", uid), map[string]any{"role": "regular"}, 204)
			}
		}
	}
	// Two admins: removing admin@ is allowed and leaves Xena as the only one.
	if r := h.do("DELETE", fmt.Sprintf("/org/%s/member/%d", org2, adminUserID), xena, nil); r.status != 204 {
		t.Fatalf("removing a non-last admin: %d %s", r.status, r.body)
	}
	r := h.do("DELETE", fmt.Sprintf("/org/%s/member/%d", org2, x), xena, nil)
	checkPodioError(t, r, 403, "forbidden")
	if got := h.do("GET", fmt.Sprintf("/org/%s/member/%d", org2, x), xena, nil); got.status != 200 || got.obj(t)["role"] != "admin" {
		t.Errorf("the last admin's membership changed after a refused removal: %d %s", got.status, got.body)
	}
}
