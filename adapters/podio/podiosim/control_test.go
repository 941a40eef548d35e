package podiosim_test

import (
	"context"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/dirgate/dirgate/adapters/podio/podiosim"
)

func TestFaults(t *testing.T) {
	t.Parallel()
	h := setup(t, podiosim.Config{})
	tok := h.token(adminMail)

	ctl(t, h, "POST", "/_sim/faults", map[string]any{"route": podiosim.RouteUser, "status": 503, "times": 1}, 201)
	checkPodioError(t, h.do("GET", "/user/", tok, nil), 503, "unavailable")
	if r := h.do("GET", "/user/", tok, nil); r.status != 200 {
		t.Fatalf("fault with times=1 applied twice: %d", r.status)
	}

	if err := h.sim.AddFault(podiosim.Fault{Route: "*", RateLimit: true, Times: 2}); err != nil {
		t.Fatal(err)
	}
	if got := ctl(t, h, "GET", "/_sim/faults", nil, 200).arr(t); len(got) != 1 || num(got[0].(map[string]any)["times"]) != 2 {
		t.Errorf("faults = %v", got)
	}
	e := checkPodioError(t, h.do("GET", "/org/", tok, nil), 420, "rate_limit")
	if waitRE.FindString(e["error_description"].(string)) == "" {
		t.Errorf("forced 420 description = %q", e["error_description"])
	}
	// Faults come before auth: even an unauthenticated call gets it.
	checkPodioError(t, h.do("GET", "/org/", "", nil), 420, "rate_limit")
	if r := h.do("GET", "/org/", tok, nil); r.status != 200 {
		t.Fatalf("after the forced 420s: %d", r.status)
	}

	// Latency respects the request context: a short client deadline ends the wait early.
	if err := h.sim.AddFault(podiosim.Fault{Route: podiosim.RouteOrgs, LatencyMS: 20}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if r := h.do("GET", "/org/", tok, nil); r.status != 200 {
		t.Fatalf("with latency: %d", r.status)
	}
	if time.Since(start) < 20*time.Millisecond {
		t.Error("latency fault did not delay the answer")
	}
	ctl(t, h, "DELETE", "/_sim/faults", nil, 204)

	h.sim.AddFault(podiosim.Fault{Route: podiosim.RouteUserStatus, Timeout: true})
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", h.url+"/user/status", nil)
	if res, err := http.DefaultClient.Do(req); err == nil {
		res.Body.Close()
		t.Fatalf("timeout fault answered %d", res.StatusCode)
	}
	h.sim.ClearFaults()

	for _, bad := range []podiosim.Fault{
		{Route: "GET /nope/", Status: 500},
		{Route: "*", Status: 404},
		{Route: "*", Status: 500, RateLimit: true},
		{Route: "*"},
		{Route: "*", LatencyMS: -1},
	} {
		if err := h.sim.AddFault(bad); err == nil {
			t.Errorf("AddFault(%+v) accepted", bad)
		}
	}
	ctl(t, h, "POST", "/_sim/faults", map[string]any{"route": "*", "status": 418}, 400)
	ctl(t, h, "POST", "/_sim/faults", map[string]any{"route": "*", "status": 500, "bogus": 1}, 400)
}

func TestCountersAndRoutes(t *testing.T) {
	t.Parallel()
	h := setup(t, podiosim.Config{})
	tok := h.token(memberMail)
	h.do("GET", "/org/", tok, nil)
	h.do("GET", "/org", tok, nil)
	h.do("GET", "/org/", "", nil)                  // 401 still counted
	h.do("GET", "/org/"+org1+"/member/", tok, nil) // 403 still counted
	h.do("GET", "/nope", tok, nil)                 // not a Podio route
	ctl(t, h, "GET", "/_sim/state", nil, 200)      // control API not counted
	want := map[string]int{podiosim.RouteOrgs: 3, podiosim.RouteOrgMembers: 1}
	if diff := cmp.Diff(want, h.sim.Calls()); diff != "" {
		t.Errorf("Calls (-want +got):\n%s", diff)
	}
	got := map[string]int{}
	for k, v := range ctl(t, h, "GET", "/_sim/calls", nil, 200).obj(t) {
		got[k] = int(num(v))
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("/_sim/calls (-want +got):\n%s", diff)
	}
	ctl(t, h, "DELETE", "/_sim/calls", nil, 204)
	if len(h.sim.Calls()) != 0 {
		t.Error("calls not reset")
	}
	h.do("GET", "/user/", tok, nil)
	h.sim.ResetCalls()
	if len(h.sim.Calls()) != 0 {
		t.Error("ResetCalls did not reset")
	}
	routes := ctl(t, h, "GET", "/_sim/routes", nil, 200).arr(t)
	if len(routes) != 26 || routes[0] != podiosim.RouteUser {
		t.Errorf("routes = %v", routes)
	}
	ctl(t, h, "GET", "/_sim/nope", nil, 404)
	ctl(t, h, "PUT", "/_sim/state", nil, 405)
}

func TestOutOfBandChanges(t *testing.T) {
	t.Parallel()
	h := setup(t, podiosim.Config{})
	admin, member := h.token(adminMail), h.token(memberMail)

	created := ctl(t, h, "POST", "/_sim/people", map[string]any{"name": "Zed New", "mail": "zed@northwind.example", "org_id": 3001, "employee": false, "org_role": "regular", "password": "pw", "title": "Auditor"}, 201).obj(t)
	zid := strconv.FormatInt(num(created["user_id"]), 10)
	om := h.do("GET", "/org/"+org1+"/member/"+zid, admin, nil)
	if om.status != 200 || om.obj(t)["profile"].(map[string]any)["title"].([]any)[0] != "Auditor" {
		t.Fatalf("new person: %d %s", om.status, om.body)
	}
	if r := h.do("POST", "/oauth/token", "", tokenForm("grant_type", "password", "username", "zed@northwind.example", "password", "pw")); r.status != 200 {
		t.Errorf("new person's password refused: %d", r.status)
	}
	ctl(t, h, "POST", "/_sim/people", map[string]any{"name": "Dup", "mail": "ZED@northwind.example", "org_id": 3001}, 400)
	ctl(t, h, "POST", "/_sim/people", map[string]any{"name": "Lost", "mail": "l@x.example", "org_id": 1}, 404)

	p := ctl(t, h, "PATCH", "/_sim/people/"+zid, map[string]any{"name": "Zed Renamed"}, 200).obj(t)
	if p["name"] != "Zed Renamed" || p["mail"] != "zed@northwind.example" {
		t.Errorf("patched person = %v", p)
	}
	if got := h.do("GET", "/contact/user/"+zid, admin, nil).obj(t)["name"]; got != "Zed Renamed" {
		t.Errorf("contact name = %v", got)
	}

	ctl(t, h, "POST", "/_sim/spaces/"+spaceSales+"/members", map[string]any{"user_id": num(created["user_id"]), "role": "light"}, 201)
	if r := h.do("GET", "/space/"+spaceSales+"/member/"+zid, member, nil); r.status != 200 || r.obj(t)["role"] != "light" {
		t.Fatalf("space membership: %d %s", r.status, r.body)
	}
	ctl(t, h, "PUT", "/_sim/spaces/"+spaceSales+"/members/"+zid, map[string]any{"role": "admin"}, 204)
	if r := h.do("GET", "/space/"+spaceSales+"/member/"+zid, member, nil); r.obj(t)["role"] != "admin" {
		t.Errorf("role after PUT = %v", r.obj(t)["role"])
	}
	ctl(t, h, "DELETE", "/_sim/spaces/"+spaceSales+"/members/"+zid, nil, 204)
	checkPodioError(t, h.do("GET", "/space/"+spaceSales+"/member/"+zid, member, nil), 404, "not_found")

	ctl(t, h, "DELETE", "/_sim/people/"+zid, nil, 204)
	checkPodioError(t, h.do("GET", "/org/"+org1+"/member/"+zid, admin, nil), 404, "not_found")
	if st := ctl(t, h, "PATCH", "/_sim/people/"+zid, map[string]any{}, 200).obj(t)["status"]; st != "inactive" {
		t.Errorf("deleted person status = %v", st)
	}

	ctl(t, h, "PATCH", "/_sim/spaces/"+spaceSales, map[string]any{"name": "Sales EMEA", "archived": true}, 200)
	sp := h.do("GET", "/space/"+spaceSales, member, nil).obj(t)
	if sp["name"] != "Sales EMEA" || sp["archived"] != true {
		t.Errorf("space after PATCH = %v %v", sp["name"], sp["archived"])
	}
	ctl(t, h, "PATCH", "/_sim/orgs/"+org1, map[string]any{"name": "Northwind Global"}, 200)
	if got := h.do("GET", "/org/"+org1, member, nil).obj(t)["name"]; got != "Northwind Global" {
		t.Errorf("org name = %v", got)
	}

	checkPodioError(t, h.do("GET", "/org/"+org1+"/member/", member, nil), 403, "forbidden")
	ctl(t, h, "PUT", "/_sim/orgs/"+org1+"/members/1000002", map[string]any{"role": "admin"}, 204)
	if r := h.do("GET", "/org/"+org1+"/member/", member, nil); r.status != 200 {
		t.Errorf("promoted org admin still refused: %d", r.status)
	}
	ctl(t, h, "PUT", "/_sim/orgs/"+org1+"/members/1000002", map[string]any{"role": "owner"}, 400)
}

func TestClock(t *testing.T) {
	t.Parallel()
	base := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	h := setup(t, podiosim.Config{Now: func() time.Time { return base }, AccessTokenTTL: time.Minute})
	tok := h.token(adminMail)
	if r := h.do("GET", "/user/", tok, nil); r.status != 200 {
		t.Fatal(r.status)
	}
	got := ctl(t, h, "POST", "/_sim/clock/advance", map[string]any{"seconds": 61}, 200).obj(t)
	if got["now"] != "2025-03-01 12:01:01" || !h.sim.Now().Equal(base.Add(61*time.Second)) {
		t.Errorf("now = %v / %v", got["now"], h.sim.Now())
	}
	checkPodioError(t, h.do("GET", "/user/", tok, nil), 401, "unauthorized")
	ctl(t, h, "POST", "/_sim/clock/advance", map[string]any{"seconds": -5}, 400)
	if st := ctl(t, h, "GET", "/_sim/state", nil, 200).obj(t)["now"]; st != "2025-03-01 12:01:01" {
		t.Errorf("state now = %v", st)
	}
}

func TestConcurrency(t *testing.T) {
	t.Parallel()
	h := setup(t, podiosim.Config{})
	admin, member := h.token(adminMail), h.token(memberMail)
	var wg sync.WaitGroup
	for i := range 40 {
		wg.Go(func() {
			switch i % 5 {
			case 0:
				h.do("GET", "/org/"+org1+"/member/?limit=5&offset="+strconv.Itoa(i), admin, nil)
			case 1:
				h.do("POST", "/space/"+spaceSales+"/member/", admin, map[string]any{"role": "light", "mails": []string{"c" + strconv.Itoa(i) + "@conc.example"}})
			case 2:
				h.do("GET", "/space/"+spaceSales+"/member/v2/", member, nil)
			case 3:
				h.do("GET", "/_sim/state", "", nil)
				h.sim.Calls()
			case 4:
				h.do("POST", "/oauth/token", "", tokenForm("grant_type", "password", "username", memberMail, "password", "demo"))
				h.sim.Advance(time.Second)
			}
		})
	}
	wg.Wait()
	if got := h.sim.Calls()[podiosim.RouteAddSpaceMember]; got != 8 {
		t.Errorf("add-member calls = %d, want 8", got)
	}
}
