package api_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dirgate/dirgate/adapters/podio/podiosim"
)

// TestScaleOutBehindRoundRobin: three replicas on one Redis behind a round-robin balancer, as a
// deployment runs them. Every request may land on another replica, and still: a cold list is
// read from Podio once (shared cache and fill lock), the budget is one (shared quota), an
// expired token is refreshed once (shared lock), a job runs each write once (shared queue), and
// a webhook gets the job's event once (shared dispatch).
func TestScaleOutBehindRoundRobin(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{replicas: 3, jobs: true, webhooks: true, allowPassword: true,
		sim: podiosim.Config{InvitedInSpaceMembersV2: true}})
	var next atomic.Uint64
	var targets []*url.URL
	for _, rep := range h.replicas {
		u, _ := url.Parse(rep.ts.URL)
		targets = append(targets, u)
	}
	served := make([]atomic.Int64, len(targets))
	lb := httptest.NewServer(&httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) {
		i := next.Add(1) % uint64(len(targets))
		served[i].Add(1)
		r.SetURL(targets[i])
		r.Out.Host = r.In.Host
	}})
	defer lb.Close()
	client := &http.Client{Timeout: 30 * time.Second}
	tok := h.token("acme")
	call := func(method, path string, body any) response {
		t.Helper()
		return h.call(client, method, lb.URL, path, tok, body)
	}

	r := call("POST", "/integrated-accounts", map[string]any{"grant_type": "password", "username": "admin@demo.example", "password": "demo"})
	var acct struct{ ID string }
	r.json(t, &acct)
	if r.status != http.StatusCreated {
		t.Fatalf("link: %d %s", r.status, r.body)
	}
	q := "integrated_account_id=" + acct.ID

	// Cache: 30 identical cold reads spread over the replicas make one Podio walk.
	before := h.sim.Calls()[podiosim.RouteSpaceMembersV2]
	var wg sync.WaitGroup
	bodies := make([]string, 30)
	for i := range bodies {
		wg.Go(func() {
			r := call("GET", dir+"/users?workspace_id=40001&limit=100&"+q, nil)
			if r.status != http.StatusOK {
				t.Errorf("read %d: %d %s", i, r.status, r.body)
			}
			var p struct{ Result []json.RawMessage }
			_ = json.Unmarshal(r.body, &p)
			bodies[i] = fmt.Sprint(len(p.Result))
		})
	}
	wg.Wait()
	if got := h.sim.Calls()[podiosim.RouteSpaceMembersV2] - before; got != 1 {
		t.Errorf("30 cold reads over 3 replicas made %d member-list calls, want 1", got)
	}
	for _, b := range bodies {
		if b != bodies[0] || b == "0" {
			t.Fatalf("the replicas answered different lists: %v", bodies)
		}
	}

	// Quota: every replica shows the same budget, and it counts every replica's calls.
	var used []int
	for range 3 {
		var b struct {
			Classes map[string]struct {
				UsedLastHour int `json:"used_last_hour"`
			} `json:"classes"`
		}
		call("GET", "/integrated-accounts/"+acct.ID+"/budget", nil).json(t, &b)
		used = append(used, b.Classes["general"].UsedLastHour)
	}
	if used[0] != used[1] || used[1] != used[2] || used[0] == 0 {
		t.Errorf("budget used per replica %v, want one shared figure", used)
	}

	// Lock: an expired token, 30 calls over the replicas, one refresh.
	h.sim.Advance(9 * time.Hour)
	h.clock.Advance(9 * time.Hour)
	refreshes := h.sim.Calls()["POST /oauth/token"]
	for i := range 30 {
		wg.Go(func() {
			if r := call("POST", "/integrated-accounts/"+acct.ID+"/check", nil); r.status != http.StatusOK {
				t.Errorf("check %d: %d %s", i, r.status, r.body)
			}
		})
	}
	wg.Wait()
	if got := h.sim.Calls()["POST /oauth/token"] - refreshes; got != 1 {
		t.Errorf("%d token refreshes for 30 calls over 3 replicas, want 1", got)
	}

	// Jobs and webhooks: a sync started on one replica, followed on the others, writes each
	// member once, and the webhook hears of its end once.
	rcv := newHookReceiver(t, nil)
	if r := call("POST", "/webhooks", map[string]any{"url": rcv.URL, "events": []string{"job.succeeded"}}); r.status != http.StatusCreated {
		t.Fatalf("webhook: %d %s", r.status, r.body)
	}
	adds := h.sim.Calls()[podiosim.RouteAddSpaceMember]
	var members []map[string]any
	for i := range 6 {
		members = append(members, map[string]any{"email": fmt.Sprintf("scale%d@example.com", i)})
	}
	r = call("POST", fmt.Sprintf("%s/workspaces/40001/members/sync?%s", dir, q), map[string]any{"members": members, "mode": "add_only"})
	var job struct{ ID, Status string }
	r.json(t, &job)
	if r.status != http.StatusAccepted {
		t.Fatalf("sync: %d %s", r.status, r.body)
	}
	for deadline := time.Now().Add(60 * time.Second); job.Status != "succeeded"; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("job %s still %s", job.ID, job.Status)
		}
		call("GET", "/jobs/"+job.ID, nil).json(t, &job)
	}
	if got := h.sim.Calls()[podiosim.RouteAddSpaceMember] - adds; got != len(members) {
		t.Errorf("%d Podio adds for %d members", got, len(members))
	}
	for deadline := time.Now().Add(30 * time.Second); len(rcv.requests()) == 0 && time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond) // room for a (wrong) second delivery
	if got := rcv.requests(); len(got) != 1 || got[0].header.Get("Dirgate-Event-Type") != "job.succeeded" {
		t.Errorf("the webhook got %d deliveries, want one job.succeeded", len(got))
	}

	for i := range served {
		if served[i].Load() == 0 {
			t.Errorf("replica %d served nothing: the balancer did not spread the load", i)
		}
	}
}
