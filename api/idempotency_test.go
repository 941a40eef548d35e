package api_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/dirgate/dirgate/adapters/podio/podiosim"
)

// TestIdempotencyKey: a write retried with its Idempotency-Key gets the first answer, on any
// replica, without a second Podio call; the key with another request is refused; failures a
// retry should get past are not kept.
func TestIdempotencyKey(t *testing.T) {
	t.Parallel()
	h, tok, q := directorySetup(t, harnessOptions{replicas: 2, jobs: true, sim: podiosim.Config{InvitedInSpaceMembersV2: true}})
	acct := q[len("integrated_account_id="):]
	const space = 40001
	path := fmt.Sprintf("%s/workspaces/%d/members?%s", dir, space, q)
	send := func(replica int, method, path, key, body string) response {
		t.Helper()
		var b []byte
		if body != "" {
			b = []byte(body)
		}
		return h.send(h.browser(), method, h.replicas[replica].ts.URL, path, "Bearer "+tok, b, "Idempotency-Key", key)
	}

	before := h.sim.Calls()
	first := send(0, "POST", path, "add-1", `{"email":"idem@example.com","role":"light"}`)
	if first.status != http.StatusCreated || first.header.Get("Idempotent-Replayed") != "" {
		t.Fatalf("first add: %d %q %s", first.status, first.header.Get("Idempotent-Replayed"), first.body)
	}
	afterFirst := h.sim.Calls()
	if afterFirst[podiosim.RouteAddSpaceMember]-before[podiosim.RouteAddSpaceMember] != 1 {
		t.Fatalf("first add made %d Podio add calls", afterFirst[podiosim.RouteAddSpaceMember]-before[podiosim.RouteAddSpaceMember])
	}

	// The same request from another replica, encoded differently: the kept answer, no Podio call.
	again := send(1, "POST", path, "add-1", `{ "role": "light",  "email": "idem@example.com" }`)
	if again.status != http.StatusCreated || again.header.Get("Idempotent-Replayed") != "true" || string(again.body) != string(first.body) {
		t.Fatalf("replay: %d %q %s (first: %s)", again.status, again.header.Get("Idempotent-Replayed"), again.body, first.body)
	}
	if diff := cmp.Diff(afterFirst, h.sim.Calls()); diff != "" {
		t.Errorf("the replay called Podio (-before +after):\n%s", diff)
	}

	// The key with another body, or on another route: 422, nothing written.
	if r := send(0, "POST", path, "add-1", `{"email":"other@example.com","role":"light"}`); r.status != http.StatusUnprocessableEntity || r.errorCode(t) != "idempotency_key_reused" {
		t.Errorf("same key, other body: %d %s", r.status, r.body)
	}
	other := fmt.Sprintf("%s/workspaces/%d/members?%s", dir, 40002, q)
	if r := send(1, "POST", other, "add-1", `{"email":"idem@example.com","role":"light"}`); r.status != http.StatusUnprocessableEntity {
		t.Errorf("same key, other workspace: %d %s", r.status, r.body)
	}
	if diff := cmp.Diff(afterFirst, h.sim.Calls()); diff != "" {
		t.Errorf("a refused key called Podio:\n%s", diff)
	}
	// Keys belong to a tenant: another tenant's "add-1" is a request of its own (and this
	// account is not theirs).
	if r := h.send(h.browser(), "POST", h.url, path, "Bearer "+h.token("globex"), []byte(`{"email":"idem@example.com","role":"light"}`),
		"Idempotency-Key", "add-1"); r.status != http.StatusNotFound {
		t.Errorf("another tenant's key: %d %s", r.status, r.body)
	}

	// Malformed keys.
	for _, key := range []string{"has space", strings.Repeat("k", 256), "é"} {
		if r := send(0, "POST", path, key, `{"email":"idem@example.com","role":"light"}`); r.status != http.StatusBadRequest || r.errorCode(t) != "invalid_idempotency_key" {
			t.Errorf("key %.20q: %d %s", key, r.status, r.body)
		}
	}

	// A client error is an answer like any other: kept, and replayed without asking Podio.
	unknown := fmt.Sprintf("%s/workspaces/%d/members?%s", dir, 999999, q)
	miss := send(0, "POST", unknown, "add-unknown", `{"email":"idem@example.com","role":"light"}`)
	calls := h.sim.Calls()
	if r := send(1, "POST", unknown, "add-unknown", `{"email":"idem@example.com","role":"light"}`); miss.status != http.StatusNotFound ||
		r.status != http.StatusNotFound || r.header.Get("Idempotent-Replayed") != "true" {
		t.Errorf("404 replay: first %d, again %d %q", miss.status, r.status, r.header.Get("Idempotent-Replayed"))
	}
	if diff := cmp.Diff(calls, h.sim.Calls()); diff != "" {
		t.Errorf("replaying a 404 called Podio:\n%s", diff)
	}

	// A Podio outage (5xx) is not kept: the retry with the key runs and succeeds.
	if err := h.sim.AddFault(podiosim.Fault{Route: podiosim.RouteAddSpaceMember, Status: 503, Times: 1}); err != nil {
		t.Fatal(err)
	}
	outage := `{"email":"idem.retry@example.com","role":"regular"}`
	if r := send(0, "POST", path, "add-2", outage); r.status != http.StatusServiceUnavailable {
		t.Fatalf("add during the fault: %d %s", r.status, r.body)
	}
	if r := send(1, "POST", path, "add-2", outage); r.status != http.StatusCreated || r.header.Get("Idempotent-Replayed") != "" {
		t.Fatalf("retry after the fault: %d %q %s", r.status, r.header.Get("Idempotent-Replayed"), r.body)
	}
	if m, ok := byMail(podioMembers(t, h, tok, acct, space), "idem.retry@example.com"); !ok || m.Role != "regular" {
		t.Errorf("after the retry Podio shows %+v (found %v)", m, ok)
	}

	// A retried sync start answers the first job; no second job exists.
	syncPath := fmt.Sprintf("%s/workspaces/%d/members/sync?%s", dir, space, q)
	syncBody := `{"members":[{"email":"idem.sync@example.com"}],"mode":"add_only"}`
	s1 := send(0, "POST", syncPath, "sync-1", syncBody)
	s2 := send(1, "POST", syncPath, "sync-1", syncBody)
	var j1, j2 struct{ ID string }
	s1.json(t, &j1)
	s2.json(t, &j2)
	if s1.status != http.StatusAccepted || s2.status != http.StatusAccepted || j1.ID == "" || j1.ID != j2.ID ||
		s2.header.Get("Location") != "/jobs/"+j1.ID {
		t.Fatalf("sync replay: %d %s / %d %s", s1.status, j1.ID, s2.status, j2.ID)
	}
	awaitJob(t, h, tok, j1.ID)
	var list struct{ Results []struct{ ID string } }
	h.do("GET", "/jobs?"+q, tok, nil).json(t, &list)
	if len(list.Results) != 1 {
		t.Errorf("%d jobs after a replayed start, want 1", len(list.Results))
	}
}

// TestIdempotencyKeyWhileRunning: a retry that arrives while the first request still runs is
// told to come back (409 idempotency_in_progress), then gets the kept answer.
func TestIdempotencyKeyWhileRunning(t *testing.T) {
	t.Parallel()
	h, tok, q := directorySetup(t, harnessOptions{replicas: 2, sim: podiosim.Config{InvitedInSpaceMembersV2: true}})
	if err := h.sim.AddFault(podiosim.Fault{Route: podiosim.RouteAddSpaceMember, LatencyMS: 1500, Times: 1}); err != nil {
		t.Fatal(err)
	}
	path := fmt.Sprintf("%s/workspaces/%d/members?%s", dir, 40001, q)
	body := []byte(`{"email":"slow@example.com","role":"light"}`)
	done := make(chan response, 1)
	go func() {
		done <- h.send(h.browser(), "POST", h.replicas[0].ts.URL, path, "Bearer "+tok, body, "Idempotency-Key", "slow-1")
	}()
	// Wait until the first request holds the key (its Podio add is slowed by the fault).
	deadline := time.Now().Add(10 * time.Second)
	for h.sim.Calls()[podiosim.RouteAddSpaceMember] == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the first request never reached Podio")
		}
		time.Sleep(10 * time.Millisecond)
	}
	busy := h.send(h.browser(), "POST", h.replicas[1].ts.URL, path, "Bearer "+tok, body, "Idempotency-Key", "slow-1")
	if busy.status != http.StatusConflict || busy.errorCode(t) != "idempotency_in_progress" || busy.header.Get("Retry-After") == "" {
		t.Fatalf("retry while running: %d %v %s", busy.status, busy.header, busy.body)
	}
	first := <-done
	if first.status != http.StatusCreated {
		t.Fatalf("first: %d %s", first.status, first.body)
	}
	later := h.send(h.browser(), "POST", h.replicas[1].ts.URL, path, "Bearer "+tok, body, "Idempotency-Key", "slow-1")
	var a, b map[string]any
	_ = json.Unmarshal(first.body, &a)
	later.json(t, &b)
	if later.status != http.StatusCreated || later.header.Get("Idempotent-Replayed") != "true" || !cmp.Equal(a, b) {
		t.Errorf("retry after the first finished: %d %s", later.status, later.body)
	}
	if n := h.sim.Calls()[podiosim.RouteAddSpaceMember]; n != 1 {
		t.Errorf("%d Podio add calls, want 1", n)
	}
}

// TestIdempotencyKeyLimit: a tenant holds a bounded number of Idempotency-Key records; a new
// key beyond answers 429 too_many_idempotency_keys with Retry-After and does not run, while the
// keys it holds still replay, requests without a key still run, and other tenants are unaffected.
func TestIdempotencyKeyLimit(t *testing.T) {
	t.Parallel()
	h, tok, q := directorySetup(t, harnessOptions{idemMaxKeys: 2})
	path := fmt.Sprintf("%s/workspaces/%d/members?%s", dir, 40001, q)
	send := func(key, email string) response {
		t.Helper()
		body := []byte(fmt.Sprintf(`{"email":%q,"role":"light"}`, email))
		if key == "" {
			return h.send(h.browser(), "POST", h.url, path, "Bearer "+tok, body)
		}
		return h.send(h.browser(), "POST", h.url, path, "Bearer "+tok, body, "Idempotency-Key", key)
	}
	for i, key := range []string{"k1", "k2"} {
		if r := send(key, fmt.Sprintf("lim%d@example.com", i)); r.status != http.StatusCreated {
			t.Fatalf("%s: %d %s", key, r.status, r.body)
		}
	}
	before := h.sim.Calls()
	r := send("k3", "lim3@example.com")
	if r.status != http.StatusTooManyRequests || r.errorCode(t) != "too_many_idempotency_keys" || r.header.Get("Retry-After") == "" {
		t.Fatalf("a third key: %d %q %s", r.status, r.header.Get("Retry-After"), r.body)
	}
	if diff := cmp.Diff(before, h.sim.Calls()); diff != "" {
		t.Fatalf("the refused request called Podio:\n%s", diff)
	}
	if r := send("k1", "lim0@example.com"); r.status != http.StatusCreated || r.header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("a held key: %d %q", r.status, r.header.Get("Idempotent-Replayed"))
	}
	if r := send("", "nokey@example.com"); r.status != http.StatusCreated {
		t.Fatalf("without a key: %d %s", r.status, r.body)
	}
	// Once the oldest records are forgotten, new keys run again.
	h.clock.Advance(25 * time.Hour)
	if r := send("k3", "lim3@example.com"); r.status != http.StatusCreated || r.header.Get("Idempotent-Replayed") != "" {
		t.Fatalf("after the retention: %d %s", r.status, r.body)
	}
}
