package api_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dirgate/dirgate/adapters/podio/podiosim"
	"github.com/dirgate/dirgate/api"
	"github.com/dirgate/dirgate/internal/redistest"
	"github.com/dirgate/dirgate/unified"
)

const dir = "/unified/user-directory"

// page is a decoded list envelope.
type page struct {
	Result            []json.RawMessage `json:"result"`
	NextCursor        *string           `json:"next_cursor"`
	ResultCount       int               `json:"result_count"`
	IsPartialResponse bool              `json:"is_partial_response"`
}

// get calls a directory route on the given replica (base) with the tenant token.
func (h *harness) get(base, path, token string, header ...string) response {
	h.t.Helper()
	req, err := http.NewRequest("GET", base+path, nil)
	if err != nil {
		h.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	res, err := h.browser().Do(req)
	if err != nil {
		h.t.Fatalf("GET %s: %v", path, err)
	}
	defer res.Body.Close()
	var b bytes.Buffer
	_, _ = b.ReadFrom(res.Body)
	return response{status: res.StatusCode, header: res.Header, body: b.Bytes()}
}

func (h *harness) mustGet(path, token string, header ...string) response {
	h.t.Helper()
	r := h.get(h.url, path, token, header...)
	if r.status != http.StatusOK {
		h.t.Fatalf("GET %s: %d %s", path, r.status, r.body)
	}
	return r
}

// crawl follows next_cursor from the first page of path (which has its query already) and returns
// the ids in order. between runs after each page with the page number (1-based).
func (h *harness) crawl(path, token string, limit int, between func(n int)) (ids []string, partial bool) {
	h.t.Helper()
	sep := "?"
	if strings.Contains(path, "?") {
		sep = "&"
	}
	next := ""
	for n := 1; ; n++ {
		p := path + sep + "limit=" + strconv.Itoa(limit)
		if next != "" {
			p += "&next_cursor=" + url.QueryEscape(next)
		}
		r := h.mustGet(p, token)
		var pg page
		r.json(h.t, &pg)
		if pg.ResultCount != len(pg.Result) || len(pg.Result) > limit {
			h.t.Fatalf("page %d: result_count %d, %d items, limit %d", n, pg.ResultCount, len(pg.Result), limit)
		}
		partial = partial || pg.IsPartialResponse
		for _, it := range pg.Result {
			var v struct{ ID string }
			if err := json.Unmarshal(it, &v); err != nil {
				h.t.Fatal(err)
			}
			ids = append(ids, v.ID)
		}
		if between != nil {
			between(n)
		}
		if pg.NextCursor == nil {
			return ids, partial
		}
		if len(pg.Result) != limit {
			h.t.Fatalf("page %d has %d items and a next cursor; want full pages before the last", n, len(pg.Result))
		}
		next = *pg.NextCursor
	}
}

// simState reads the simulator's world.
type simState struct {
	Orgs []struct {
		OrgID   int64 `json:"org_id"`
		Members []struct {
			UserID  int64 `json:"user_id"`
			Role    string
			Invited bool
		} `json:"members"`
		Spaces []struct {
			SpaceID int64 `json:"space_id"`
			Members []struct {
				UserID int64 `json:"user_id"`
				Role   string
			} `json:"members"`
		} `json:"spaces"`
	} `json:"orgs"`
}

func (h *harness) simState() simState {
	h.t.Helper()
	var st simState
	h.simJSON("GET", "/_sim/state", nil, &st)
	return st
}

// simJSON calls the simulator's control API.
func (h *harness) simJSON(method, path string, body, out any) {
	h.t.Helper()
	var rd *bytes.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	} else {
		rd = bytes.NewReader(nil)
	}
	req, _ := http.NewRequest(method, h.simURL+path, rd)
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode >= 300 {
		var b bytes.Buffer
		_, _ = b.ReadFrom(res.Body)
		h.t.Fatalf("%s %s: %d %s", method, path, res.StatusCode, b.String())
	}
	if out != nil {
		if err := json.NewDecoder(res.Body).Decode(out); err != nil {
			h.t.Fatal(err)
		}
	}
}

// orgMembers is the ids of an org's members (invitees included) per the simulator.
func (st simState) orgMembers(org int64) []string {
	var ids []string
	for _, o := range st.Orgs {
		if o.OrgID == org {
			for _, m := range o.Members {
				ids = append(ids, strconv.FormatInt(m.UserID, 10))
			}
		}
	}
	slices.SortFunc(ids, unified.CompareIDs)
	return ids
}

func usersOf(t *testing.T, r response) []unified.User {
	t.Helper()
	var pg struct{ Result []unified.User }
	r.json(t, &pg)
	return pg.Result
}

// dropCache deletes every cached directory key, as an eviction would, and says how many.
func (h *harness) dropCache() int {
	h.t.Helper()
	ctx := h.t.Context()
	keys, err := h.rdb.Keys(ctx, h.rdb.Prefix+"*:cache:*").Result()
	if err != nil {
		h.t.Fatal(err)
	}
	for _, k := range keys {
		if err := h.rdb.Del(ctx, k).Err(); err != nil {
			h.t.Fatal(err)
		}
	}
	return len(keys)
}

// setup links the demo admin for a tenant and returns the token and account query.
func directorySetup(t *testing.T, o harnessOptions) (*harness, string, string) {
	t.Helper()
	o.allowPassword = true
	h := newHarness(t, o)
	tok := h.token("acme")
	acct := h.linkPassword("acme", "admin@demo.example")
	return h, tok, "integrated_account_id=" + acct
}

func TestDirectoryRoutesOnDemo(t *testing.T) {
	t.Parallel()
	h, tok, q := directorySetup(t, harnessOptions{})

	var me unified.Me
	h.mustGet(dir+"/me?"+q, tok).json(t, &me)
	if me.ID != "1000001" || me.Status != unified.StatusActive || len(me.Organizations) != 2 || len(me.RemoteData) == 0 {
		t.Errorf("me = %+v", me)
	}

	var orgs page
	h.mustGet(dir+"/organizations?"+q, tok).json(t, &orgs)
	var org unified.Organization
	h.mustGet(dir+"/organizations/3001?"+q, tok).json(t, &org)
	if orgs.ResultCount != 2 || org.ID != "3001" || org.Name != "Northwind Traders" || org.Role == nil || *org.Role != unified.RoleOrganizationAdmin {
		t.Errorf("organizations: %d, org 3001 = %+v", orgs.ResultCount, org)
	}

	all, _ := h.crawl(dir+"/workspaces?"+q, tok, 100, nil)
	in3001, _ := h.crawl(dir+"/workspaces?organization_id=3001&"+q, tok, 100, nil)
	if len(in3001) == 0 || len(in3001) >= len(all) {
		t.Errorf("workspaces: %d in org 3001, %d in all", len(in3001), len(all))
	}
	var ws unified.Workspace
	h.mustGet(dir+"/workspaces/"+in3001[0]+"?"+q, tok).json(t, &ws)
	if ws.ID != in3001[0] || ws.Organization.ID != "3001" {
		t.Errorf("workspace = %+v", ws)
	}

	st := h.simState()
	users, partial := h.crawl(dir+"/users?organization_id=3001&"+q, tok, 100, nil)
	if diff := slices.Compare(users, st.orgMembers(3001)); diff != 0 || partial {
		t.Errorf("users of 3001 = %v (partial %v), want %v", users, partial, st.orgMembers(3001))
	}
	everyone, _ := h.crawl(dir+"/users?"+q, tok, 100, nil)
	union := slices.Concat(st.orgMembers(3001), st.orgMembers(3002))
	slices.SortFunc(union, unified.CompareIDs)
	if !slices.Equal(everyone, slices.Compact(union)) {
		t.Errorf("all users = %d ids, want the %d of both orgs", len(everyone), len(slices.Compact(union)))
	}
	wsUsers := usersOf(t, h.mustGet(dir+"/users?workspace_id="+in3001[0]+"&limit=100&"+q, tok))
	for _, u := range wsUsers {
		if len(u.Workspaces) != 1 || u.Workspaces[0].ID != in3001[0] || !strings.HasPrefix(u.Roles[0].ID, "workspace_") {
			t.Errorf("workspace user %s: workspaces %+v roles %+v", u.ID, u.Workspaces, u.Roles)
		}
	}
	var u unified.User
	h.mustGet(dir+"/users/1000002?"+q, tok).json(t, &u)
	if u.ID != "1000002" || len(u.Emails) == 0 || u.Emails[0].Email != "member@demo.example" {
		t.Errorf("user 1000002 = %+v", u)
	}

	var roles page
	h.mustGet(dir+"/roles?"+q, tok).json(t, &roles)
	var wsRoles page
	h.mustGet(dir+"/roles?applicable_in=workspace&"+q, tok).json(t, &wsRoles)
	var role unified.Role
	h.mustGet(dir+"/roles/workspace_admin?"+q, tok).json(t, &role)
	if roles.ResultCount != 5 || wsRoles.ResultCount != 3 || role.ApplicableIn != "workspace" || len(role.Permissions) == 0 {
		t.Errorf("roles: %d, workspace roles %d, workspace_admin %+v", roles.ResultCount, wsRoles.ResultCount, role)
	}
	rolesPaged, _ := h.crawl(dir+"/roles?"+q, tok, 2, nil)
	if len(rolesPaged) != 5 {
		t.Errorf("roles paged by 2: %v", rolesPaged)
	}
	if r := h.get(h.url, dir+"/roles/owner?"+q, tok); r.status != http.StatusNotFound {
		t.Errorf("unknown role: %d", r.status)
	}

	// remote_data is Podio's raw object; ignore_remote_data leaves it out.
	if !bytes.Contains(h.mustGet(dir+"/users/1000002?"+q, tok).body, []byte(`"remote_data"`)) {
		t.Error("user has no remote_data")
	}
	for _, p := range []string{"/me", "/users/1000002", "/organizations/3001", "/workspaces/" + in3001[0], "/users?organization_id=3001", "/organizations", "/workspaces"} {
		sep := "?"
		if strings.Contains(p, "?") {
			sep = "&"
		}
		if b := h.mustGet(dir+p+sep+"ignore_remote_data=true&"+q, tok).body; bytes.Contains(b, []byte("remote_data")) {
			t.Errorf("%s with ignore_remote_data=true still has remote_data", p)
		}
	}
}

func TestUserFilters(t *testing.T) {
	t.Parallel()
	h, tok, q := directorySetup(t, harnessOptions{})
	all := usersOf(t, h.mustGet(dir+"/users?organization_id=3001&limit=100&"+q, tok))
	cut := time.Now().Add(-24 * time.Hour)
	for _, tc := range []struct {
		filter string
		keep   func(u unified.User) bool
	}{
		{"status=invited", func(u unified.User) bool { return u.Status == unified.StatusInvited }},
		{"status=active", func(u unified.User) bool { return u.Status == unified.StatusActive }},
		{"role=organization_admin", func(u unified.User) bool {
			return slices.ContainsFunc(u.Roles, func(r unified.UserRole) bool { return r.ID == unified.RoleOrganizationAdmin })
		}},
		{"email=MEMBER%40demo.example", func(u unified.User) bool { return u.ID == "1000002" }},
		{"query=demo.example", func(u unified.User) bool {
			return slices.ContainsFunc(u.Emails, func(e unified.Email) bool { return strings.Contains(e.Email, "demo.example") })
		}},
		{"inactive_since=" + url.QueryEscape(cut.Format(time.RFC3339)), func(u unified.User) bool {
			return u.LastActiveAt == nil || u.LastActiveAt.Before(cut)
		}},
	} {
		t.Run(tc.filter, func(t *testing.T) {
			var want []string
			for _, u := range all {
				if tc.keep(u) {
					want = append(want, u.ID)
				}
			}
			got, _ := h.crawl(dir+"/users?organization_id=3001&"+tc.filter+"&"+q, tok, 3, nil)
			if !slices.Equal(got, want) {
				t.Errorf("got %v, want %v", got, want)
			}
			if len(want) == 0 && tc.filter != "status=invited" {
				t.Errorf("filter %s matches nobody in the demo: the test proves nothing", tc.filter)
			}
		})
	}
	// A workspace role filter on a workspace list, combined with the organization it belongs to.
	ws := usersOf(t, h.mustGet(dir+"/users?workspace_id=40001&limit=100&"+q, tok))
	var admins []string
	for _, u := range ws {
		if slices.ContainsFunc(u.Roles, func(r unified.UserRole) bool { return r.ID == unified.RoleWorkspaceAdmin }) {
			admins = append(admins, u.ID)
		}
	}
	got, _ := h.crawl(dir+"/users?workspace_id=40001&role=workspace_admin&organization_id=3001&"+q, tok, 100, nil)
	if len(admins) == 0 || !slices.Equal(got, admins) {
		t.Errorf("workspace admins of 40001 = %v, want %v", got, admins)
	}
	if got, _ := h.crawl(dir+"/users?workspace_id=40001&organization_id=3002&"+q, tok, 100, nil); len(got) != 0 {
		t.Errorf("workspace 40001 filtered to org 3002: %v, want none", got)
	}
}

func TestDirectoryRefusesBadInput(t *testing.T) {
	t.Parallel()
	h, tok, q := directorySetup(t, harnessOptions{})
	other := h.linkPassword("globex", "admin@demo.example")
	for _, tc := range []struct {
		path   string
		status int
		code   string
	}{
		{dir + "/users", 400, "invalid_request"},
		{dir + "/me?integrated_account_id=", 400, "invalid_request"},
		{dir + "/users?limit=0&" + q, 400, "invalid_request"},
		{dir + "/users?limit=101&" + q, 400, "invalid_request"},
		{dir + "/users?limit=ten&" + q, 400, "invalid_request"},
		{dir + "/users?organisation_id=3001&" + q, 400, "invalid_request"},
		{dir + "/users?role=owner&" + q, 400, "invalid_request"},
		{dir + "/users?role=workspace_admin&" + q, 400, "invalid_request"},
		{dir + "/users?status=gone&" + q, 400, "invalid_request"},
		{dir + "/users?inactive_since=yesterday&" + q, 400, "invalid_request"},
		{dir + "/users?email=&" + q, 400, "invalid_request"},
		{dir + "/users?limit=1&limit=2&" + q, 400, "invalid_request"},
		{dir + "/me?ignore_remote_data=yes&" + q, 400, "invalid_request"},
		{dir + "/roles?applicable_in=space&" + q, 400, "invalid_request"},
		{dir + "/users?next_cursor=garbage&" + q, 400, "invalid_cursor"},
		{dir + "/me?integrated_account_id=" + other, 404, "not_found"},
		{dir + "/users?integrated_account_id=ia_nope", 404, "not_found"},
		{dir + "/organizations/9999?" + q, 404, "not_found"},
		{dir + "/organizations/abc?" + q, 404, "not_found"},
		{dir + "/workspaces/9999999?" + q, 404, "not_found"},
		{dir + "/users/999999999?" + q, 404, "not_found"},
		{dir + "/users?organization_id=9999&" + q, 404, "not_found"},
	} {
		r := h.get(h.url, tc.path, tok)
		if r.status != tc.status || r.errorCode(t) != tc.code {
			t.Errorf("GET %s: %d %s, want %d %s", tc.path, r.status, r.body, tc.status, tc.code)
		}
	}
}

func TestCursorIsSealedAndBound(t *testing.T) {
	t.Parallel()
	h, tok, q := directorySetup(t, harnessOptions{})
	first := func(path string) string {
		var pg page
		h.mustGet(path, tok).json(t, &pg)
		if pg.NextCursor == nil {
			t.Fatalf("%s: no next cursor", path)
		}
		return url.QueryEscape(*pg.NextCursor)
	}
	cur := first(dir + "/users?organization_id=3001&limit=2&" + q)
	h.mustGet(dir+"/users?organization_id=3001&limit=5&next_cursor="+cur+"&"+q, tok) // limit may change

	raw, _ := url.QueryUnescape(cur)
	tampered := []byte(raw)
	tampered[len(tampered)-3] ^= 1
	acct2 := h.linkPassword("acme", "member@demo.example")
	for name, path := range map[string]string{
		"tampered":        dir + "/users?organization_id=3001&next_cursor=" + url.QueryEscape(string(tampered)) + "&" + q,
		"other filters":   dir + "/users?organization_id=3002&next_cursor=" + cur + "&" + q,
		"filters dropped": dir + "/users?next_cursor=" + cur + "&" + q,
		"other route":     dir + "/workspaces?organization_id=3001&next_cursor=" + cur + "&" + q,
		"other account":   dir + "/users?organization_id=3001&next_cursor=" + cur + "&integrated_account_id=" + acct2,
		"too long":        dir + "/users?organization_id=3001&next_cursor=" + strings.Repeat("a", 2000) + "&" + q,
	} {
		if r := h.get(h.url, path, tok); r.status != 400 || r.errorCode(t) != "invalid_cursor" {
			t.Errorf("%s: %d %s, want 400 invalid_cursor", name, r.status, r.body)
		}
	}
	h.clock.Advance(time.Hour + time.Minute)
	if r := h.get(h.url, dir+"/users?organization_id=3001&next_cursor="+cur+"&"+q, tok); r.status != 400 || r.errorCode(t) != "invalid_cursor" {
		t.Errorf("expired cursor: %d %s", r.status, r.body)
	}
}

// TestConsistentCrawlWhileMembersChange changes an organization's members in Podio between the
// pages of a crawl. Podio's own offset pages shift (the list is sorted by name); dirgate's crawl
// must show every person who was a member throughout exactly once, also when the cached list the
// crawl started on disappears midway.
func TestConsistentCrawlWhileMembersChange(t *testing.T) {
	t.Parallel()
	for _, evict := range []bool{false, true} {
		t.Run(fmt.Sprintf("snapshot evicted=%v", evict), func(t *testing.T) {
			t.Parallel()
			h, tok, q := directorySetup(t, harnessOptions{ttl: api.CacheTTLs{Users: time.Millisecond}})
			before := h.simState().orgMembers(3001)
			var added []string
			removed := map[string]bool{}
			ids, _ := h.crawl(dir+"/users?organization_id=3001&"+q, tok, 4, func(n int) {
				// Add people whose names sort first, and remove someone not yet seen and someone seen.
				var out struct {
					UserID int64 `json:"user_id"`
				}
				h.simJSON("POST", "/_sim/people", map[string]any{"name": fmt.Sprintf("Aaron %02d", n), "mail": fmt.Sprintf("aaron%d@new.example", n), "org_id": 3001, "employee": true}, &out)
				added = append(added, strconv.FormatInt(out.UserID, 10))
				for _, victim := range []string{before[len(before)-n], before[n+1]} {
					if victim != "1000001" && !removed[victim] {
						removed[victim] = true
						h.simJSON("DELETE", "/_sim/people/"+victim, nil, nil)
						break
					}
				}
				h.clock.Advance(time.Second) // the cached list is now expired: new first pages refetch
				if evict && n == 2 {
					if h.dropCache() == 0 { // every snapshot gone: the crawl resumes by id
						t.Fatal("nothing cached to evict")
					}
					h.mustGet(dir+"/users?organization_id=3001&"+q, tok)
				}
			})
			seen := map[string]int{}
			for _, id := range ids {
				seen[id]++
			}
			for _, id := range before {
				if !removed[id] && seen[id] != 1 {
					t.Errorf("member %s present throughout was seen %d times", id, seen[id])
				}
			}
			for id, n := range seen {
				if n != 1 {
					t.Errorf("%s seen %d times", id, n)
				}
			}
			if !slices.IsSortedFunc(ids, unified.CompareIDs) {
				t.Error("crawl is not in id order")
			}
			if len(removed) < 3 || len(added) < 3 {
				t.Fatalf("the crawl changed too little (%d removed, %d added) to prove anything", len(removed), len(added))
			}
			// The world changed: a new crawl sees it.
			after, _ := h.crawl(dir+"/users?organization_id=3001&"+q, tok, 100, nil)
			if !slices.Equal(after, h.simState().orgMembers(3001)) {
				t.Errorf("a new crawl sees %v, want %v", after, h.simState().orgMembers(3001))
			}
		})
	}
}

// TestCrawlCostsOnePodioWalk checks the upstream cost of crawls on the large dataset: one walk of
// Podio's member list at page size 100 whatever the client limit, and nothing on a repeat.
func TestCrawlCostsOnePodioWalk(t *testing.T) {
	t.Parallel()
	ds := podiosim.Large(podiosim.LargeOptions{People: 2345, Spaces: 20})
	// A cold page waits for the whole fill (24 Podio pages); on a loaded machine under -race that
	// has taken longer than the default 30 s. The test is about Podio calls, not time.
	h, tok, q := directorySetup(t, harnessOptions{sim: podiosim.Config{Dataset: ds}, requestTimeout: 2 * time.Minute})
	org := strconv.FormatInt(h.simState().Orgs[0].OrgID, 10)
	want := h.simState().orgMembers(h.simState().Orgs[0].OrgID)

	// Every route answers on the large dataset.
	ws, _ := h.crawl(dir+"/workspaces?organization_id="+org+"&"+q, tok, 100, nil)
	if len(ws) != 20 {
		t.Errorf("large: %d workspaces, want 20", len(ws))
	}
	wsUsers, _ := h.crawl(dir+"/users?workspace_id="+ws[0]+"&"+q, tok, 100, nil)
	for _, p := range []string{"/me", "/organizations", "/organizations/" + org, "/workspaces", "/workspaces/" + ws[0],
		"/users/" + wsUsers[len(wsUsers)-1], "/roles"} {
		sep := "?"
		if strings.Contains(p, "?") {
			sep = "&"
		}
		h.mustGet(dir+p+sep+q, tok)
	}

	// 37: pages that never line up with Podio's 100 (7 did too, at 670 requests per run).
	for _, limit := range []int{20, 100, 37} {
		h.dropCache()
		h.sim.ResetCalls()
		ids, _ := h.crawl(dir+"/users?organization_id="+org+"&"+q, tok, limit, nil)
		if !slices.Equal(ids, want) {
			t.Fatalf("limit %d: crawl returned %d ids, want the %d members", limit, len(ids), len(want))
		}
		n := len(want)
		bound := (n+99)/100 + 1
		if got := listCalls(h.sim.Calls()); got > bound {
			t.Errorf("limit %d: %d Podio list calls for %d people, want at most %d", limit, got, n, bound)
		}
		h.sim.ResetCalls()
		if again, _ := h.crawl(dir+"/users?organization_id="+org+"&"+q, tok, limit, nil); !slices.Equal(again, ids) {
			t.Errorf("limit %d: repeated crawl differs", limit)
		}
		if calls := totalCalls(h.sim.Calls()); calls != 0 {
			t.Errorf("limit %d: repeated crawl within the TTL made %d Podio calls: %v", limit, calls, h.sim.Calls())
		}
	}
}

func listCalls(c map[string]int) int {
	return c[podiosim.RouteOrgMembers] + c[podiosim.RouteSpaceMembersV2] + c[podiosim.RouteOrgs] + c[podiosim.RouteOrgSpaces] + c[podiosim.RouteSpaceMembers]
}

func totalCalls(c map[string]int) int {
	n := 0
	for _, v := range c {
		n += v
	}
	return n
}

// TestIdenticalRequestsCoalesceAcrossReplicas sends identical cold requests to three replicas at
// once: Podio sees one walk of the member list.
func TestIdenticalRequestsCoalesceAcrossReplicas(t *testing.T) {
	t.Parallel()
	ds := podiosim.Large(podiosim.LargeOptions{People: 450, Spaces: 5})
	h, tok, q := directorySetup(t, harnessOptions{sim: podiosim.Config{Dataset: ds}, replicas: 3})
	org := strconv.FormatInt(h.simState().Orgs[0].OrgID, 10)
	if err := h.sim.AddFault(podiosim.Fault{Route: podiosim.RouteOrgMembers, LatencyMS: 40}); err != nil {
		t.Fatal(err)
	}
	h.sim.ResetCalls()
	var wg sync.WaitGroup
	results := make([]response, 60)
	for i := range results {
		wg.Go(func() {
			base := h.replicas[i%3].ts.URL
			results[i] = h.get(base, dir+"/users?organization_id="+org+"&limit=50&"+q, tok)
		})
	}
	wg.Wait()
	for i, r := range results {
		if r.status != 200 {
			t.Fatalf("request %d: %d %s", i, r.status, r.body)
		}
		if !bytes.Equal(usersBody(t, r), usersBody(t, results[0])) {
			t.Errorf("request %d got another first page than request 0", i)
		}
	}
	n := len(h.simState().orgMembers(h.simState().Orgs[0].OrgID))
	if got, want := h.sim.Calls()[podiosim.RouteOrgMembers], (n+99)/100+boolInt(n%100 == 0); got != want {
		t.Errorf("60 identical requests over 3 replicas made %d member-list calls, want one walk (%d)", got, want)
	}
	// Single objects coalesce too.
	h.sim.ResetCalls()
	for i := range 30 {
		wg.Go(func() { h.get(h.replicas[i%3].ts.URL, dir+"/me?"+q, tok) })
	}
	wg.Wait()
	if got := h.sim.Calls()[podiosim.RouteUserStatus]; got != 1 {
		t.Errorf("30 identical /me requests made %d GET /user/status calls, want 1", got)
	}
}

// usersBody is a page's result array.
func usersBody(t *testing.T, r response) []byte {
	t.Helper()
	var pg page
	r.json(t, &pg)
	b, _ := json.Marshal(pg.Result)
	return b
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func TestCacheHeadersAndNoCache(t *testing.T) {
	t.Parallel()
	h, tok, q := directorySetup(t, harnessOptions{})
	path := dir + "/organizations/3001?" + q
	if r := h.mustGet(path, tok); r.header.Get("X-Cache") != "MISS" || r.header.Get("Age") != "0" {
		t.Errorf("first read: X-Cache %q Age %q", r.header.Get("X-Cache"), r.header.Get("Age"))
	}
	h.clock.Advance(7 * time.Second)
	h.sim.ResetCalls()
	if r := h.mustGet(path, tok); r.header.Get("X-Cache") != "HIT" || r.header.Get("Age") != "7" {
		t.Errorf("second read: X-Cache %q Age %q", r.header.Get("X-Cache"), r.header.Get("Age"))
	}
	if c := totalCalls(h.sim.Calls()); c != 0 {
		t.Errorf("a HIT made %d Podio calls", c)
	}
	h.simJSON("PATCH", "/_sim/orgs/3001", map[string]any{"name": "Northwind Renamed"}, nil)
	var org unified.Organization
	r := h.mustGet(path, tok, "Cache-Control", "no-cache")
	r.json(t, &org)
	if r.header.Get("X-Cache") != "MISS" || org.Name != "Northwind Renamed" || h.sim.Calls()[podiosim.RouteOrg] != 1 {
		t.Errorf("no-cache: X-Cache %q, name %q, %d calls", r.header.Get("X-Cache"), org.Name, h.sim.Calls()[podiosim.RouteOrg])
	}
	// Concurrent no-cache reads still make one call. A read that begins after the fill has ended
	// rightly makes another, so Podio is slow enough (1 s) that all 20 begin while it runs, even
	// on a loaded machine under -race.
	h.sim.ResetCalls()
	if err := h.sim.AddFault(podiosim.Fault{Route: podiosim.RouteOrgs, LatencyMS: 1000}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	start := make(chan struct{})
	for range 20 {
		wg.Go(func() {
			<-start
			h.get(h.url, dir+"/organizations?"+q, tok, "Cache-Control", "no-cache")
		})
	}
	close(start)
	wg.Wait()
	if got := h.sim.Calls()[podiosim.RouteOrgs]; got != 1 {
		t.Errorf("20 concurrent no-cache reads made %d calls, want 1", got)
	}
}

func TestStaleDataWhenPodioFails(t *testing.T) {
	t.Parallel()
	h, tok, q := directorySetup(t, harnessOptions{ttl: api.CacheTTLs{Organizations: time.Minute, MaxStale: 10 * time.Minute}})
	path := dir + "/organizations?" + q
	h.mustGet(path, tok)
	if err := h.sim.AddFault(podiosim.Fault{Route: podiosim.RouteOrgs, Status: 503}); err != nil {
		t.Fatal(err)
	}
	h.clock.Advance(5 * time.Minute)
	r := h.mustGet(path, tok)
	if r.header.Get("X-Cache") != "STALE" || r.header.Get("Age") != "300" {
		t.Errorf("Podio down within max stale: X-Cache %q Age %q", r.header.Get("X-Cache"), r.header.Get("Age"))
	}
	h.clock.Advance(10 * time.Minute)
	r = h.get(h.url, path, tok)
	var e struct {
		Error struct {
			Code   string
			Remote struct{ Status int }
		}
	}
	r.json(t, &e)
	if r.status != 503 || e.Error.Code != "upstream_unavailable" || e.Error.Remote.Status != 503 {
		t.Errorf("Podio down beyond max stale: %d %s", r.status, r.body)
	}
}

func TestPodioErrorsMap(t *testing.T) {
	t.Parallel()
	// A breaker that does not open here: this test is about each failure's own answer.
	h, tok, q := directorySetup(t, harnessOptions{requestTimeout: 2 * time.Second, breakerFailures: 1000})
	for _, tc := range []struct {
		fault      podiosim.Fault
		status     int
		code       string
		retryAfter string
		remote     int
	}{
		{podiosim.Fault{Status: 500}, 502, "upstream_error", "", 500},
		{podiosim.Fault{Status: 502}, 502, "upstream_error", "", 502},
		{podiosim.Fault{Status: 503}, 503, "upstream_unavailable", "", 503},
		{podiosim.Fault{Status: 504}, 504, "upstream_timeout", "", 504},
		{podiosim.Fault{RateLimit: true}, 429, "rate_limited", "60", 420},
		{podiosim.Fault{Timeout: true}, 504, "upstream_timeout", "", 0},
	} {
		t.Run(tc.code+strconv.Itoa(tc.remote), func(t *testing.T) {
			h.sim.ClearFaults()
			h.clock.Advance(61 * time.Second) // past any cooldown an earlier 420 started
			tc.fault.Route = podiosim.RouteSpace
			if err := h.sim.AddFault(tc.fault); err != nil {
				t.Fatal(err)
			}
			r := h.get(h.url, dir+"/workspaces/40001?"+q, tok)
			var e struct {
				Error struct {
					Code   string
					Remote *struct {
						Status int
						Reason string
					}
				}
			}
			r.json(t, &e)
			if r.status != tc.status || e.Error.Code != tc.code || r.header.Get("Retry-After") != tc.retryAfter || e.Error.Remote == nil || e.Error.Remote.Status != tc.remote {
				t.Errorf("%d %s (Retry-After %q), want %d %s remote %d", r.status, r.body, r.header.Get("Retry-After"), tc.status, tc.code, tc.remote)
			}
		})
	}
}

// TestAppAccountIsForbiddenUpstream: an app account cannot read people; Podio's 403 → 403
// forbidden_upstream.
func TestAppAccountIsForbiddenUpstream(t *testing.T) {
	t.Parallel()
	h, tok, _ := directorySetup(t, harnessOptions{})
	r := h.do("POST", "/integrated-accounts", tok, map[string]any{"grant_type": "app", "app_id": 5001, "app_token": "demo-app-token"})
	if r.status != http.StatusCreated {
		t.Fatalf("demo app grant: %d %s", r.status, r.body)
	}
	var a struct{ ID string }
	r.json(t, &a)
	if r := h.get(h.url, dir+"/organizations?integrated_account_id="+a.ID, tok); r.status != 403 || r.errorCode(t) != "forbidden_upstream" {
		t.Errorf("app account: %d %s, want 403 forbidden_upstream", r.status, r.body)
	}
}

// TestNonAdminSeesPartialOrganization: Podio refuses the member list to non-admins; dirgate
// answers the members of the workspaces the person can see, marked partial.
func TestNonAdminSeesPartialOrganization(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{allowPassword: true})
	tok := h.token("acme")
	q := "integrated_account_id=" + h.linkPassword("acme", "member@demo.example")
	ids, partial := h.crawl(dir+"/users?organization_id=3001&"+q, tok, 5, nil)
	full := h.simState().orgMembers(3001)
	if !partial || len(ids) == 0 || len(ids) >= len(full) {
		t.Fatalf("non-admin: %d users (partial %v), full org has %d", len(ids), partial, len(full))
	}
	for _, id := range ids {
		if !slices.Contains(full, id) {
			t.Errorf("user %s is not a member of org 3001", id)
		}
	}
	if !slices.IsSortedFunc(ids, unified.CompareIDs) || len(slices.Compact(slices.Clone(ids))) != len(ids) {
		t.Error("partial list is not de-duplicated and sorted")
	}
}

// blackhole is the URL of a Redis that accepts connections and never answers.
func blackhole(t *testing.T) string { return "redis://" + redistest.Blackhole(t) + "/0" }

// closedPort is the URL of a Redis that is down.
func closedPort(t *testing.T) string { return "redis://" + redistest.ClosedAddr(t) + "/0" }

// TestReadsFailOpenWhenCacheRedisFails: with the cache's Redis hanging or gone (the store's Redis
// up), reads go to Podio directly, answer quickly, and crawls still work.
func TestReadsFailOpenWhenCacheRedisFails(t *testing.T) {
	t.Parallel()
	for name, addr := range map[string]func(*testing.T) string{"hanging": blackhole, "down": closedPort} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			h, tok, q := directorySetup(t, harnessOptions{cacheRedisURL: addr(t)})
			for i := range 3 {
				start := time.Now()
				r := h.mustGet(dir+"/organizations/3001?"+q, tok)
				if d := time.Since(start); d > 2*time.Second {
					t.Errorf("read %d took %v with the cache Redis %s", i, d, name)
				}
				if r.header.Get("X-Cache") == "" {
					t.Error("no X-Cache header")
				}
			}
			ids, _ := h.crawl(dir+"/users?organization_id=3001&"+q, tok, 6, nil)
			if !slices.Equal(ids, h.simState().orgMembers(3001)) {
				t.Errorf("crawl without cache Redis: %v", ids)
			}
		})
	}
}
