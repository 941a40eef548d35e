package api_test

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dirgate/dirgate/adapters/podio/podiosim"
	"github.com/dirgate/dirgate/api"
)

// TestQuotaHoldsAcrossReplicasForTwoHours: three replicas hammer one account for two simulated
// hours, three times faster than the quota allows. Podio never answers 420, and no 60-minute
// window holds more calls than the limit.
func TestQuotaHoldsAcrossReplicasForTwoHours(t *testing.T) {
	t.Parallel()
	const limit = 60
	h, tok, q := directorySetup(t, harnessOptions{
		replicas: 3, quotaGeneral: limit, simOnGatewayClock: true,
		sim: podiosim.Config{GeneralLimit: limit},
	})
	h.sim.ResetQuota() // linking spent a call of Podio's own window, outside the gateway's budget
	var perMinute []int
	var got429, got420 int
	for minute := range 120 {
		before := totalCalls(h.sim.Calls())
		var wg sync.WaitGroup
		var mu sync.Mutex
		// Three different reads (identical ones would be coalesced into one Podio call).
		paths := []string{"/organizations/3001", "/organizations/3002", "/workspaces/40001"}
		for i := range 3 {
			wg.Go(func() {
				r := h.get(h.replicas[i].ts.URL, dir+paths[i]+"?"+q, tok, "Cache-Control", "no-cache")
				mu.Lock()
				defer mu.Unlock()
				switch {
				case r.status == 429 && strings.Contains(string(r.body), `"remote"`):
					got420++
				case r.status == 429:
					got429++
					if ra, err := strconv.Atoi(r.header.Get("Retry-After")); err != nil || ra < 1 || ra > 3600 {
						t.Errorf("429 without a sensible Retry-After: %q", r.header.Get("Retry-After"))
					}
				case r.status != 200:
					t.Errorf("minute %d: %d %s", minute, r.status, r.body)
				}
			})
		}
		wg.Wait()
		perMinute = append(perMinute, totalCalls(h.sim.Calls())-before)
		h.clock.Advance(time.Minute)
	}
	if got420 != 0 {
		t.Errorf("Podio answered 420 %d times", got420)
	}
	if got429 == 0 {
		t.Error("demand was three times the quota, yet nothing was refused: the test proves nothing")
	}
	for start := range len(perMinute) - 59 {
		sum := 0
		for _, n := range perMinute[start : start+60] {
			sum += n
		}
		if sum > limit {
			t.Errorf("minutes %d-%d: %d Podio calls, limit %d", start, start+59, sum, limit)
		}
	}
}

// TestPodio420CoolsDownEveryReplica: one 420 from Podio stops every replica from calling Podio for
// that account until the wait has passed; callers get 429 with the remaining wait.
func TestPodio420CoolsDownEveryReplica(t *testing.T) {
	t.Parallel()
	h, tok, q := directorySetup(t, harnessOptions{replicas: 3})
	if err := h.sim.AddFault(podiosim.Fault{Route: podiosim.RouteOrg, RateLimit: true, Times: 1}); err != nil {
		t.Fatal(err)
	}
	hit := time.Now()
	r := h.get(h.url, dir+"/organizations/3001?"+q, tok)
	if r.status != 429 || r.header.Get("Retry-After") != "60" {
		t.Fatalf("Podio's 420: %d Retry-After %q %s", r.status, r.header.Get("Retry-After"), r.body)
	}
	h.sim.ResetCalls()
	h.clock.Advance(20 * time.Second)
	// The clock is real time plus the offset: on a loaded machine real seconds pass between the
	// calls below, and the wait left shrinks by as many.
	waitLeft := func(header string) bool {
		n, err := strconv.Atoi(header)
		return err == nil && n <= 40 && n >= 40-int(time.Since(hit).Seconds())-1
	}
	for i, rep := range h.replicas {
		r := h.get(rep.ts.URL, dir+"/workspaces/40001?"+q, tok)
		if r.status != 429 || !waitLeft(r.header.Get("Retry-After")) || r.errorCode(t) != "rate_limited" {
			t.Errorf("replica %d during the cooldown: %d Retry-After %q", i, r.status, r.header.Get("Retry-After"))
		}
	}
	// The proxy answers in Podio's own form.
	acct := strings.TrimPrefix(q, "integrated_account_id=")
	if r := h.send(h.browser(), "GET", h.url, "/proxy/"+acct+"/org/", "Bearer "+tok, nil); r.status != 420 || !waitLeft(r.header.Get("Retry-After")) ||
		!strings.Contains(string(r.body), "Please wait "+r.header.Get("Retry-After")+" seconds") {
		t.Errorf("proxy during the cooldown: %d %s", r.status, r.body)
	}
	if c := totalCalls(h.sim.Calls()); c != 0 {
		t.Errorf("%d Podio calls during the cooldown: %v", c, h.sim.Calls())
	}
	var b struct {
		CooldownUntil *time.Time `json:"cooldown_until"`
	}
	h.do("GET", "/integrated-accounts/"+acct+"/budget", tok, nil).json(t, &b)
	if b.CooldownUntil == nil {
		t.Error("budget shows no cooldown")
	}
	h.clock.Advance(41 * time.Second)
	if r := h.get(h.replicas[2].ts.URL, dir+"/workspaces/40001?"+q, tok); r.status != 200 {
		t.Errorf("after the cooldown: %d %s", r.status, r.body)
	}
}

// TestRemainingHeaderCorrectsBudget: when Podio reports fewer calls left than dirgate counted (the
// same Podio user and API key used elsewhere), dirgate believes Podio.
func TestRemainingHeaderCorrectsBudget(t *testing.T) {
	t.Parallel()
	h, tok, q := directorySetup(t, harnessOptions{quotaGeneral: 100, sim: podiosim.Config{GeneralLimit: 100}})
	acct := strings.TrimPrefix(q, "integrated_account_id=")
	// Someone else spends 90 of the same user's calls directly.
	pt, err := h.sim.IssueToken("demo-client", "admin@demo.example")
	if err != nil {
		t.Fatal(err)
	}
	for range 90 {
		req, _ := http.NewRequest("GET", h.simURL+"/org/", nil)
		req.Header.Set("Authorization", "OAuth2 "+pt.AccessToken)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
	}
	h.mustGet(dir+"/organizations/3001?"+q, tok)
	var b struct {
		Classes map[string]struct {
			Limit, Remaining int
		} `json:"classes"`
		Reserve float64
	}
	h.do("GET", "/integrated-accounts/"+acct+"/budget", tok, nil).json(t, &b)
	g := b.Classes["general"]
	if g.Limit != 100 || g.Remaining > 100-90-2 {
		t.Errorf("budget after Podio said few calls remain: %+v", b)
	}
	// And the headers of the next unified answer say so.
	r := h.mustGet(dir+"/organizations/3001?"+q, tok)
	if r.header.Get("RateLimit-Policy") != `"general";q=100;w=3600` || !strings.HasPrefix(r.header.Get("RateLimit"), fmt.Sprintf(`"general";r=%d;`, g.Remaining)) {
		t.Errorf("RateLimit headers: %q %q (remaining %d)", r.header.Get("RateLimit-Policy"), r.header.Get("RateLimit"), g.Remaining)
	}
}

// TestBreakerServesStaleAndFailsFast: Podio keeps failing; after the threshold the breaker opens,
// cached data is served stale, uncached calls fail fast with 503 and Retry-After, and after the
// open period one probe closes it again.
func TestBreakerServesStaleAndFailsFast(t *testing.T) {
	t.Parallel()
	h, tok, q := directorySetup(t, harnessOptions{breakerFailures: 3, breakerOpen: 10 * time.Second,
		ttl: api.CacheTTLs{Organizations: time.Second, MaxStale: time.Hour}})
	h.mustGet(dir+"/organizations?"+q, tok) // cached
	if err := h.sim.AddFault(podiosim.Fault{Route: "*", Status: 500}); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if r := h.get(h.url, dir+fmt.Sprintf("/organizations/300%d?", i+1)+q, tok); r.status != 502 {
			t.Fatalf("failure %d: %d %s", i, r.status, r.body)
		}
	}
	h.sim.ResetCalls()
	start := time.Now()
	r := h.get(h.url, dir+"/workspaces/40001?"+q, tok)
	if r.status != 503 || r.header.Get("Retry-After") == "" || time.Since(start) > time.Second {
		t.Errorf("open breaker: %d Retry-After %q after %v", r.status, r.header.Get("Retry-After"), time.Since(start))
	}
	h.clock.Advance(2 * time.Second) // past the organizations TTL, within max stale; the breaker is still open
	if r := h.get(h.url, dir+"/organizations?"+q, tok); r.status != 200 || r.header.Get("X-Cache") != "STALE" {
		t.Errorf("cached data while open: %d X-Cache %q", r.status, r.header.Get("X-Cache"))
	}
	if c := totalCalls(h.sim.Calls()); c != 0 {
		t.Errorf("%d Podio calls while the breaker was open", c)
	}
	h.sim.ClearFaults()
	h.clock.Advance(10 * time.Second) // the open period ends: one probe goes through and closes it
	if r := h.get(h.url, dir+"/workspaces/40001?"+q, tok); r.status != 200 {
		t.Errorf("after the open period: %d %s", r.status, r.body)
	}
}
