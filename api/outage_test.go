package api_test

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dirgate/dirgate/adapters/podio/podiosim"
	"github.com/dirgate/dirgate/internal/redistest"
	"github.com/dirgate/dirgate/internal/store"
)

// TestRedisKilledMidLoad kills the gateway's Redis (a real redis-server process of the test's own)
// while two replicas serve reads, then starts it again. Reads Podio can answer never fail, none
// takes longer than the Redis timeout plus Podio's latency, and once Redis is back the replicas
// share one budget and one cache again.
func TestRedisKilledMidLoad(t *testing.T) {
	// Not parallel: the latency bound is about dirgate, not about other tests sharing the CPU.
	const podioLatency = 20 * time.Millisecond
	bound := store.DefaultReadTimeout + podioLatency
	srv := redistest.StartServer(t)
	h, tok, q := directorySetup(t, harnessOptions{replicas: 2, redisURL: srv.URL()})
	if err := h.sim.AddFault(podiosim.Fault{Route: "*", LatencyMS: int(podioLatency / time.Millisecond)}); err != nil {
		t.Fatal(err)
	}

	// Half the unified reads may come from the cache; the other half insist on Podio (no-cache),
	// as every proxied call does, so the outage is crossed by reads that need the account record
	// and the access token.
	acct := q[len("integrated_account_id="):]
	paths := []string{dir + "/me?" + q, dir + "/organizations?" + q, "/proxy/" + acct + "/org/", dir + "/organizations/3001?" + q, dir + "/workspaces/40001?" + q}
	type result struct {
		phase  string
		path   string
		status int
		took   time.Duration
		err    error
	}
	var (
		phase   atomic.Value
		mu      sync.Mutex
		results []result
		// progress is closed (and replaced) each time a result is added.
		progress = make(chan struct{})
		stop     = make(chan struct{})
		wg       sync.WaitGroup
	)
	phase.Store("before")
	client := h.browser()
	for w := range 4 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				p := paths[(w+i)%len(paths)]
				req, _ := http.NewRequest("GET", h.replicas[(w+i)%2].ts.URL+p, nil)
				req.Header.Set("Authorization", "Bearer "+tok)
				if i%2 == 0 {
					req.Header.Set("Cache-Control", "no-cache")
				}
				ph := phase.Load().(string)
				start := time.Now()
				res, err := client.Do(req)
				status := 0
				if err == nil {
					_, err = io.Copy(io.Discard, res.Body)
					res.Body.Close()
					status = res.StatusCode
				}
				mu.Lock()
				results = append(results, result{ph, p, status, time.Since(start), err})
				close(progress) // wakes served
				progress = make(chan struct{})
				mu.Unlock()
			}
		})
	}
	if r := h.get(h.url, "/readyz", ""); r.status != http.StatusOK || !strings.Contains(string(r.body), `"ready"`) {
		t.Fatalf("readyz before the outage: %d %s", r.status, r.body)
	}
	// Each phase lasts until the load has made enough requests in it, however fast this machine is.
	served := func(ph string, n int) {
		t.Helper()
		guard := time.After(time.Minute) // only against a hang
		for {
			mu.Lock()
			k, next := 0, progress
			for _, r := range results {
				if r.phase == ph {
					k++
				}
			}
			mu.Unlock()
			if k >= n {
				return
			}
			select {
			case <-next:
			case <-guard:
				t.Fatalf("only %d requests %s within a minute", k, ph)
			}
		}
	}
	const perPhase = 40
	served("before", perPhase)
	srv.Kill()
	phase.Store("redis down")
	served("redis down", perPhase/2)
	// What needs Redis says so (503, retry soon); readiness holds, degraded; the budget is this
	// replica's own view.
	r := h.get(h.url, "/integrated-accounts", tok)
	if r.status != http.StatusServiceUnavailable || r.errorCode(t) != "store_unavailable" || r.header.Get("Retry-After") == "" {
		t.Errorf("GET /integrated-accounts with Redis down: %d %s", r.status, r.body)
	}
	if r := h.get(h.url, "/readyz", ""); r.status != http.StatusOK || !strings.Contains(string(r.body), `"degraded"`) {
		t.Errorf("readyz with Redis down: %d %s", r.status, r.body)
	}
	if r := h.get(h.url, "/integrated-accounts/"+acct+"/budget", tok); r.status != http.StatusOK {
		t.Errorf("budget with Redis down: %d %s", r.status, r.body)
	}
	served("redis down", perPhase)
	srv.Start()
	phase.Store("redis back")
	served("redis back", 2*perPhase)
	close(stop)
	wg.Wait()

	count, slowest := map[string]int{}, map[string]time.Duration{}
	for _, r := range results {
		count[r.phase]++
		slowest[r.phase] = max(slowest[r.phase], r.took)
		if r.err != nil || r.status != http.StatusOK {
			t.Errorf("%s: GET %s: %d %v (after %v)", r.phase, r.path, r.status, r.err, r.took)
		}
		if r.took > bound {
			t.Errorf("%s: GET %s took %v, more than the Redis timeout plus Podio's latency (%v)", r.phase, r.path, r.took, bound)
		}
	}
	t.Logf("requests per phase %v; slowest per phase %v", count, slowest)
	for _, ph := range []string{"before", "redis down", "redis back"} {
		if count[ph] < 10 {
			t.Fatalf("only %d requests %s: the load did not cross the outage", count[ph], ph)
		}
	}

	// The shared budget resumes: a call through one replica shows in the other's budget. Each
	// fell back to a budget of its own while Redis was down; they agree again once both use Redis.
	budgetPath := "/integrated-accounts/" + acct + "/budget"
	used := func(replica int) int {
		var b struct {
			Classes map[string]struct {
				UsedLastHour int `json:"used_last_hour"`
			} `json:"classes"`
		}
		h.get(h.replicas[replica].ts.URL, budgetPath, tok).json(t, &b)
		return b.Classes["general"].UsedLastHour
	}
	eventually(t, 10*time.Second, func() error {
		before, calls := used(1), totalCalls(h.sim.Calls())
		if r := h.get(h.replicas[0].ts.URL, dir+"/me?"+q, tok, "Cache-Control", "no-cache"); r.status != 200 {
			return fmt.Errorf("GET /me: %d", r.status)
		}
		made := totalCalls(h.sim.Calls()) - calls
		if after := used(1); made == 0 || after != before+made {
			return fmt.Errorf("replica 1 saw %d -> %d calls after %d Podio calls through replica 0", before, after, made)
		}
		return nil
	})

	// The shared cache resumes: what one replica fetched, the other serves without calling Podio.
	eventually(t, 10*time.Second, func() error {
		r0 := h.get(h.replicas[0].ts.URL, dir+"/organizations/3002?"+q, tok, "Cache-Control", "no-cache")
		calls := totalCalls(h.sim.Calls())
		r1 := h.get(h.replicas[1].ts.URL, dir+"/organizations/3002?"+q, tok)
		if r0.status != 200 || r1.status != 200 {
			return fmt.Errorf("statuses %d, %d", r0.status, r1.status)
		}
		if got := totalCalls(h.sim.Calls()); got != calls || r1.header.Get("X-Cache") != "HIT" {
			return fmt.Errorf("replica 1 answered %q with %d more Podio calls", r1.header.Get("X-Cache"), got-calls)
		}
		return nil
	})
}

// eventually retries check until it succeeds or within has passed, then fails with its last error.
func eventually(t *testing.T, within time.Duration, check func() error) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
