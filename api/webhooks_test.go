package api_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/dirgate/dirgate/internal/events"
	"github.com/dirgate/dirgate/internal/webhooks"
)

// hookReceiver is a webhook endpoint: it records every request and answers with the status its
// answer function picks for the n-th one (1-based; nil: 200).
type hookReceiver struct {
	*httptest.Server
	mu     sync.Mutex
	got    []hookRequest
	answer func(n int) int
}

type hookRequest struct {
	at     time.Time
	header http.Header
	body   []byte
}

func newHookReceiver(t *testing.T, answer func(n int) int) *hookReceiver {
	r := &hookReceiver{answer: answer}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.got = append(r.got, hookRequest{at: time.Now(), header: req.Header.Clone(), body: body})
		n := len(r.got)
		r.mu.Unlock()
		status := http.StatusOK
		if r.answer != nil {
			status = r.answer(n)
		}
		w.WriteHeader(status)
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *hookReceiver) requests() []hookRequest {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.got)
}

type webhookOut struct {
	ID          string   `json:"id"`
	URL         string   `json:"url"`
	Events      []string `json:"events"`
	Description string   `json:"description"`
	Secret      string   `json:"secret"`
}

type deliveryOut struct {
	EventID        string     `json:"event_id"`
	EventType      string     `json:"event_type"`
	Account        string     `json:"integrated_account_id"`
	Status         string     `json:"status"`
	Attempts       int        `json:"attempts"`
	LastStatusCode *int       `json:"last_status_code"`
	LastError      *string    `json:"last_error"`
	NextAttemptAt  *time.Time `json:"next_attempt_at"`
}

// createWebhook creates a webhook for tenant and returns it with its secret.
func (h *harness) createWebhook(tenant, rawURL string, types ...string) webhookOut {
	h.t.Helper()
	r := h.do("POST", "/webhooks", h.token(tenant), map[string]any{"url": rawURL, "events": types})
	if r.status != http.StatusCreated {
		h.t.Fatalf("create webhook: %d %s", r.status, r.body)
	}
	var w webhookOut
	r.json(h.t, &w)
	return w
}

// emit records an event on the first replica, as the poller and the lifecycle code do.
func (h *harness) emit(tenant, account, typ string, data any) events.Event {
	h.t.Helper()
	e, err := h.replicas[0].events.Emit(context.Background(), tenant, account, typ, data)
	if err != nil {
		h.t.Fatal(err)
	}
	return e
}

// delivery polls GET /webhooks/{id}/deliveries until the event's delivery satisfies ok.
func (h *harness) delivery(tenant, webhook, event string, ok func(deliveryOut) bool) deliveryOut {
	h.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	var last deliveryOut
	for time.Now().Before(deadline) {
		r := h.do("GET", "/webhooks/"+webhook+"/deliveries", h.token(tenant), nil)
		if r.status != http.StatusOK {
			h.t.Fatalf("deliveries: %d %s", r.status, r.body)
		}
		var list struct{ Data []deliveryOut }
		r.json(h.t, &list)
		for _, d := range list.Data {
			if d.EventID == event {
				last = d
				if ok(d) {
					return d
				}
			}
		}
		time.Sleep(25 * time.Millisecond)
	}
	h.t.Fatalf("the delivery of %s never reached the expected state; last %+v", event, last)
	return last
}

func succeeded(d deliveryOut) bool { return d.Status == webhooks.Succeeded }

func TestWebhookRoutes(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{webhooks: true})
	acme, globex := h.token("acme"), h.token("globex")

	r := h.do("POST", "/webhooks", acme, map[string]any{"url": "https://hooks.example.com/in?k=v",
		"events": []string{events.MembershipAdded, events.UserAdded}, "description": "directory sync"})
	if r.status != http.StatusCreated {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	var w webhookOut
	r.json(t, &w)
	if !strings.HasPrefix(w.Secret, "whsec_") || w.URL != "https://hooks.example.com/in?k=v" || len(w.Events) != 2 {
		t.Errorf("created %s", r.body)
	}
	if r.header.Get("Location") != "/webhooks/"+w.ID || r.header.Get("Cache-Control") != "no-store" {
		t.Errorf("Location %q, Cache-Control %q", r.header.Get("Location"), r.header.Get("Cache-Control"))
	}

	// The secret is shown once: never by GET, never in Redis in plain text.
	for _, path := range []string{"/webhooks/" + w.ID, "/webhooks"} {
		r := h.do("GET", path, acme, nil)
		if r.status != http.StatusOK || strings.Contains(string(r.body), w.Secret) || strings.Contains(string(r.body), `"secret"`) ||
			!strings.Contains(string(r.body), w.ID) {
			t.Errorf("GET %s: %d %s", path, r.status, r.body)
		}
	}
	if strings.Contains(h.dumpRedis(), strings.TrimPrefix(w.Secret, "whsec_")) {
		t.Error("Redis holds the webhook secret in plain text")
	}
	if strings.Contains(h.logs.String(), strings.TrimPrefix(w.Secret, "whsec_")) {
		t.Error("the logs hold the webhook secret")
	}
	if r := h.do("GET", "/webhooks/"+w.ID+"/deliveries", acme, nil); r.status != http.StatusOK || string(r.body) != `{"data":[]}`+"\n" {
		t.Errorf("deliveries of a new webhook: %d %s", r.status, r.body)
	}

	// Another tenant sees nothing and can touch nothing.
	for _, c := range []struct{ method, path string }{
		{"GET", "/webhooks/" + w.ID}, {"DELETE", "/webhooks/" + w.ID}, {"GET", "/webhooks/" + w.ID + "/deliveries"},
		{"GET", "/webhooks/wh_nosuchwebhook"},
	} {
		if r := h.do(c.method, c.path, globex, nil); r.status != http.StatusNotFound || r.errorCode(t) != "not_found" {
			t.Errorf("globex %s %s: %d %s", c.method, c.path, r.status, r.body)
		}
	}
	if r := h.do("GET", "/webhooks", globex, nil); r.status != http.StatusOK || string(r.body) != `{"data":[]}`+"\n" {
		t.Errorf("globex lists %s", r.body)
	}
	if r := h.do("GET", "/webhooks", "", nil); r.status != http.StatusUnauthorized {
		t.Errorf("no token: %d", r.status)
	}

	for _, tc := range []struct {
		name string
		body map[string]any
		code string
	}{
		{"ftp scheme", map[string]any{"url": "ftp://hooks.example.com/", "events": []string{"*"}}, "invalid_webhook_url"},
		{"no url", map[string]any{"events": []string{"*"}}, "invalid_webhook_url"},
		{"credentials in url", map[string]any{"url": "https://u:p@hooks.example.com/", "events": []string{"*"}}, "invalid_webhook_url"},
		{"unknown event type", map[string]any{"url": "https://hooks.example.com/", "events": []string{"user.teleported"}}, "invalid_request"},
		{"empty events", map[string]any{"url": "https://hooks.example.com/", "events": []string{}}, "invalid_request"},
		{"no events", map[string]any{"url": "https://hooks.example.com/"}, "invalid_request"},
		{"wildcard and more", map[string]any{"url": "https://hooks.example.com/", "events": []string{"*", "user.added"}}, "invalid_request"},
		{"unknown field", map[string]any{"url": "https://hooks.example.com/", "events": []string{"*"}, "secret": "mine"}, "invalid_request"},
	} {
		if r := h.do("POST", "/webhooks", acme, tc.body); r.status != http.StatusBadRequest || r.errorCode(t) != tc.code {
			t.Errorf("%s: %d %s, want 400 %s", tc.name, r.status, r.body, tc.code)
		}
	}

	if r := h.do("DELETE", "/webhooks/"+w.ID, acme, nil); r.status != http.StatusNoContent {
		t.Fatalf("delete: %d %s", r.status, r.body)
	}
	if r := h.do("GET", "/webhooks/"+w.ID, acme, nil); r.status != http.StatusNotFound {
		t.Errorf("GET after delete: %d", r.status)
	}

	// Without a webhook store the routes say so.
	bare := newHarness(t, harnessOptions{})
	if r := bare.do("GET", "/webhooks", bare.token("acme"), nil); r.status != http.StatusNotImplemented || r.errorCode(t) != "not_configured" {
		t.Errorf("unconfigured: %d %s", r.status, r.body)
	}
}

// The receiver checks the signature as the README tells it to, and gets the event's exact fields
// and no credential.
func TestWebhookDeliveryIsSigned(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{webhooks: true, allowPassword: true})
	acct := h.linkPassword("acme", "admin@demo.example")
	rcv := newHookReceiver(t, func(int) int { return http.StatusNoContent })
	w := h.createWebhook("acme", rcv.URL+"/hooks?source=dirgate", "*")
	e := h.emit("acme", acct, events.MembershipAdded, map[string]string{"workspace_id": "40001", "user_id": "7"})

	d := h.delivery("acme", w.ID, e.ID, succeeded)
	if d.Attempts != 1 || d.LastStatusCode == nil || *d.LastStatusCode != http.StatusNoContent || d.LastError != nil ||
		d.NextAttemptAt != nil || d.EventType != events.MembershipAdded || d.Account != acct {
		t.Errorf("delivery %+v", d)
	}
	got := rcv.requests()
	if len(got) != 1 {
		t.Fatalf("receiver got %d requests, want 1", len(got))
	}
	req := got[0]

	// Dirgate-Signature: t=<unix>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>
	var ts, sig string
	for part := range strings.SplitSeq(req.header.Get("Dirgate-Signature"), ",") {
		k, v, _ := strings.Cut(part, "=")
		switch k {
		case "t":
			ts = v
		case "v1":
			sig = v
		}
	}
	mac := hmac.New(sha256.New, []byte(w.Secret))
	mac.Write([]byte(ts + "." + string(req.body)))
	want := hex.EncodeToString(mac.Sum(nil))
	if !hmac.Equal([]byte(sig), []byte(want)) {
		t.Errorf("signature %q does not verify (want v1=%s)", req.header.Get("Dirgate-Signature"), want)
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || req.at.Sub(time.Unix(sec, 0)).Abs() > 5*time.Minute {
		t.Errorf("signature timestamp %q is not the time of sending (%v)", ts, req.at)
	}
	mac = hmac.New(sha256.New, []byte(w.Secret))
	mac.Write([]byte(ts + "." + string(req.body) + " "))
	if hex.EncodeToString(mac.Sum(nil)) == sig {
		t.Error("a changed body verifies too: the check proves nothing")
	}

	var body map[string]json.RawMessage
	if err := json.Unmarshal(req.body, &body); err != nil {
		t.Fatal(err)
	}
	var keys []string
	for k := range body {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	if fmt.Sprint(keys) != "[created_at data id integrated_account_id tenant_id type]" {
		t.Errorf("payload fields %v", keys)
	}
	var ev events.Event
	if err := json.Unmarshal(req.body, &ev); err != nil || ev.ID != e.ID || ev.Type != events.MembershipAdded || ev.Tenant != "acme" ||
		ev.Account != acct || !ev.CreatedAt.Equal(e.CreatedAt) || string(ev.Data) != `{"user_id":"7","workspace_id":"40001"}` {
		t.Errorf("payload %s", req.body)
	}
	for hdr, want := range map[string]string{"Content-Type": "application/json", "Dirgate-Event-Id": e.ID,
		"Dirgate-Event-Type": events.MembershipAdded, "Dirgate-Webhook-Id": w.ID, "Dirgate-Attempt": "1"} {
		if req.header.Get(hdr) != want {
			t.Errorf("header %s = %q, want %q", hdr, req.header.Get(hdr), want)
		}
	}
	if !strings.HasPrefix(req.header.Get("User-Agent"), "dirgate-webhooks/") {
		t.Errorf("User-Agent %q", req.header.Get("User-Agent"))
	}

	// No credential anywhere in what the receiver got.
	_, creds, err := h.replicas[0].store.LoadCredentials(context.Background(), "acme", acct)
	if err != nil || creds.AccessToken == "" {
		t.Fatalf("credentials: %v", err)
	}
	seen := strings.ToLower(string(req.body) + fmt.Sprint(req.header))
	for _, secret := range []string{creds.AccessToken, creds.RefreshToken, "demo-secret", "token"} {
		if strings.Contains(seen, strings.ToLower(secret)) {
			t.Errorf("the delivery carries %.6s...", secret)
		}
	}
}

// A receiver that fails twice and then succeeds gets the event three times; the delivery shows it.
func TestWebhookRetriesUntilSuccess(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{webhooks: true})
	rcv := newHookReceiver(t, func(n int) int {
		if n <= 2 {
			return http.StatusInternalServerError
		}
		return http.StatusOK
	})
	// Receivers put tokens of their own in URLs; such a URL stays out of logs and errors.
	w := h.createWebhook("acme", rcv.URL+"/in/sekrit-receiver-token", events.UserAdded)
	e := h.emit("acme", "ia_x", events.UserAdded, map[string]string{"user_id": "1"})

	d := h.delivery("acme", w.ID, e.ID, succeeded)
	if strings.Contains(h.logs.String(), "sekrit") {
		t.Error("the logs hold the webhook URL")
	}
	if !strings.Contains(h.logs.String(), "webhooks: attempt failed") {
		t.Error("no log line of the failed attempts was captured; the check above proves nothing")
	}
	if d.Attempts != 3 || d.LastStatusCode == nil || *d.LastStatusCode != http.StatusOK || d.LastError != nil || d.NextAttemptAt != nil {
		t.Errorf("delivery %+v: want 3 attempts, status 200, no error, no next attempt", d)
	}
	got := rcv.requests()
	if len(got) != 3 {
		t.Fatalf("receiver got %d requests, want 3", len(got))
	}
	for i, req := range got {
		if req.header.Get("Dirgate-Event-Id") != e.ID || req.header.Get("Dirgate-Attempt") != strconv.Itoa(i+1) ||
			string(req.body) != string(got[0].body) {
			t.Errorf("attempt %d: event %s, attempt header %s", i+1, req.header.Get("Dirgate-Event-Id"), req.header.Get("Dirgate-Attempt"))
		}
	}
}

// A receiver down for longer than the retry window: the delivery ends failed, and is not tried
// again.
func TestWebhookFailsAfterRetryWindow(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{webhooks: true, webhookWindow: time.Hour})
	down := httptest.NewServer(http.NotFoundHandler())
	downURL := down.URL
	down.Close() // nothing listens there any more
	w := h.createWebhook("acme", downURL+"/hook", "*")
	e := h.emit("acme", "ia_x", events.UserRemoved, nil)

	d := h.delivery("acme", w.ID, e.ID, func(d deliveryOut) bool { return d.Attempts >= 2 })
	if d.Status != webhooks.Pending || d.LastStatusCode != nil || d.LastError == nil || !strings.Contains(*d.LastError, "refused") {
		t.Errorf("while retrying: %+v", d)
	}
	h.clock.Advance(time.Hour) // the window is over
	d = h.delivery("acme", w.ID, e.ID, func(d deliveryOut) bool { return d.Status == webhooks.Failed })
	if d.NextAttemptAt != nil || d.LastError == nil {
		t.Errorf("failed delivery %+v: want an error and no next attempt", d)
	}
	insp := asynq.NewInspectorFromRedisClient(h.rdb.Client)
	info, err := insp.GetTaskInfo(h.webhookQueue, "wh:"+w.ID+":"+e.ID)
	if err != nil || info.State != asynq.TaskStateArchived {
		t.Errorf("the failed delivery's task: %+v %v, want archived (no more attempts)", info, err)
	}
}

// A delivery waiting for its retry, and one enqueued while no worker runs, survive a restart of the
// delivery worker: a new worker (a new asynq server on the same Redis) makes them.
func TestWebhookDeliverySurvivesRestart(t *testing.T) {
	t.Parallel()
	// An hour's backoff: the retry waits in Redis, and the test decides when it is due.
	h := newHarness(t, harnessOptions{webhooks: true, webhookBackoff: time.Hour})
	rcv := newHookReceiver(t, func(n int) int {
		if n == 1 {
			return http.StatusBadGateway
		}
		return http.StatusOK
	})
	w := h.createWebhook("acme", rcv.URL+"/in/sekrit-receiver-token", "*")
	first := h.emit("acme", "ia_x", events.UserAdded, nil)
	d := h.delivery("acme", w.ID, first.ID, func(d deliveryOut) bool { return d.Attempts == 1 && d.NextAttemptAt != nil })
	if d.Status != webhooks.Pending || d.LastStatusCode == nil || *d.LastStatusCode != http.StatusBadGateway ||
		d.LastError == nil || !strings.HasPrefix(*d.LastError, "HTTP 502") || strings.Contains(*d.LastError, "sekrit") ||
		time.Until(*d.NextAttemptAt) < 20*time.Minute {
		t.Errorf("waiting for its retry: %+v", d)
	}

	r := h.replicas[0]
	r.webhookWorker.Shutdown()
	second := h.emit("acme", "ia_y", events.UserAdded, nil)
	h.delivery("acme", w.ID, second.ID, func(d deliveryOut) bool { return true }) // dispatched, not delivered
	if n := len(rcv.requests()); n != 1 {
		t.Fatalf("receiver got %d requests with no worker running", n)
	}

	w2 := r.startWebhookWorker()
	h.delivery("acme", w.ID, second.ID, succeeded)
	w2.Wake() // the retry is due now
	d = h.delivery("acme", w.ID, first.ID, succeeded)
	if d.Attempts != 2 {
		t.Errorf("first event: %d attempts, want 2", d.Attempts)
	}
	var ids []string
	for _, req := range rcv.requests() {
		ids = append(ids, req.header.Get("Dirgate-Event-Id"))
	}
	slices.Sort(ids)
	want := []string{first.ID, first.ID, second.ID}
	slices.Sort(want)
	if !slices.Equal(ids, want) {
		t.Errorf("receiver got %v, want %v", ids, want)
	}
}

// With three replicas, each running a consumer and a worker, every event is delivered once.
func TestWebhookDeliveredOnceAcrossReplicas(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{webhooks: true, replicas: 3})
	rcv := newHookReceiver(t, nil)
	w := h.createWebhook("acme", rcv.URL, "*")
	var want []string
	for i := range 12 {
		e, err := h.replicas[i%3].events.Emit(context.Background(), "acme", fmt.Sprintf("ia_%d", i%2), events.UserUpdated, map[string]int{"i": i})
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, e.ID)
	}
	for _, id := range want {
		if d := h.delivery("acme", w.ID, id, succeeded); d.Attempts != 1 {
			t.Errorf("event %s: %d attempts", id, d.Attempts)
		}
	}
	// The deliveries list is the same from every replica.
	for _, rep := range h.replicas {
		r := h.call(h.browser(), "GET", rep.ts.URL, "/webhooks/"+w.ID+"/deliveries", h.token("acme"), nil)
		var list struct{ Data []deliveryOut }
		r.json(t, &list)
		if len(list.Data) != len(want) || list.Data[0].EventID != want[len(want)-1] {
			t.Errorf("replica %s lists %d deliveries, newest %+v", rep.ts.URL, len(list.Data), list.Data)
		}
	}
	var got []string
	for _, req := range rcv.requests() {
		got = append(got, req.header.Get("Dirgate-Event-Id"))
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("receiver got %v, want each of %v once", got, want)
	}
}

// Deleting a webhook drops its pending deliveries.
func TestWebhookDeleteDropsPendingDeliveries(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{webhooks: true, webhookBackoff: time.Hour})
	rcv := newHookReceiver(t, func(int) int { return http.StatusServiceUnavailable })
	w := h.createWebhook("acme", rcv.URL, "*")
	e := h.emit("acme", "ia_x", events.UserAdded, nil)
	h.delivery("acme", w.ID, e.ID, func(d deliveryOut) bool { return d.Attempts == 1 && d.NextAttemptAt != nil })
	if r := h.do("DELETE", "/webhooks/"+w.ID, h.token("acme"), nil); r.status != http.StatusNoContent {
		t.Fatalf("delete: %d %s", r.status, r.body)
	}
	h.replicas[0].webhookWorker.Wake() // the retry is due: the worker finds the webhook gone
	insp := asynq.NewInspectorFromRedisClient(h.rdb.Client)
	deadline := time.Now().Add(20 * time.Second)
	for {
		_, err := insp.GetTaskInfo(h.webhookQueue, "wh:"+w.ID+":"+e.ID)
		if errors.Is(err, asynq.ErrTaskNotFound) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the deleted webhook's delivery is still queued: %v", err)
		}
		time.Sleep(25 * time.Millisecond)
	}
	if n := len(rcv.requests()); n != 1 {
		t.Errorf("receiver got %d requests, want only the attempt before the delete", n)
	}
}

// In serve mode (internal targets not allowed) loopback, private and link-local URLs are refused
// at creation, and a name that resolves to loopback only when delivering is refused then.
func TestWebhookSSRF(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{webhooks: true, webhookStrict: true, webhookResolver: fakeDNS{
		"internal.example.com": {netip.MustParseAddr("10.0.0.7")},
		// Looks public when the webhook is created; the delivery dialer resolves it for real.
		"localhost": {netip.MustParseAddr("93.184.216.34")},
	}})
	rcv := newHookReceiver(t, nil)
	acme := h.token("acme")
	for _, u := range []string{
		rcv.URL, "http://127.0.0.1:8080/", "http://10.0.0.1/", "http://169.254.169.254/latest/meta-data/", "http://[::1]/",
		"http://192.168.1.10:3000/hook", "http://0.0.0.0/", "https://internal.example.com/hook",
	} {
		r := h.do("POST", "/webhooks", acme, map[string]any{"url": u, "events": []string{"*"}})
		if r.status != http.StatusBadRequest || r.errorCode(t) != "invalid_webhook_url" {
			t.Errorf("POST /webhooks %s: %d %s, want 400 invalid_webhook_url", u, r.status, r.body)
		}
	}
	if r := h.do("GET", "/webhooks", acme, nil); string(r.body) != `{"data":[]}`+"\n" {
		t.Errorf("refused webhooks were stored: %s", r.body)
	}

	u, _ := url.Parse(rcv.URL)
	w := h.createWebhook("acme", "http://localhost:"+u.Port()+"/hook", "*")
	e := h.emit("acme", "ia_x", events.UserAdded, nil)
	d := h.delivery("acme", w.ID, e.ID, func(d deliveryOut) bool { return d.Attempts >= 2 })
	if d.Status != webhooks.Pending || d.LastStatusCode != nil || d.LastError == nil || !strings.Contains(*d.LastError, "loopback") {
		t.Errorf("delivery to a name resolving to loopback: %+v", d)
	}
	if n := len(rcv.requests()); n != 0 {
		t.Errorf("the loopback receiver got %d requests", n)
	}
}

// fakeDNS answers from a table; other names do not resolve.
type fakeDNS map[string][]netip.Addr

func (f fakeDNS) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	if a, ok := f[host]; ok {
		return a, nil
	}
	return nil, fmt.Errorf("lookup %s: no such host", host)
}

// POST /webhooks/{id}/rotate-secret answers a new secret once; the old one keeps signing for the
// overlap, next to the new one, and the webhook shows until when.
func TestWebhookRotateSecretRoute(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{webhooks: true})
	acme := h.token("acme")
	rcv := newHookReceiver(t, func(int) int { return http.StatusNoContent })
	w := h.createWebhook("acme", rcv.URL+"/in", "*")
	path := "/webhooks/" + w.ID + "/rotate-secret"

	for _, tc := range []struct {
		body any
		code string
	}{
		{map[string]any{"overlap_seconds": -1}, "invalid_request"},
		{map[string]any{"overlap_seconds": 7*24*3600 + 1}, "invalid_request"},
		{map[string]any{"overlap_seconds": "1h"}, "invalid_request"},
		{map[string]any{"overlap": 60}, "invalid_request"},
	} {
		if r := h.do("POST", path, acme, tc.body); r.status != http.StatusBadRequest || r.errorCode(t) != tc.code {
			t.Errorf("rotate with %v: %d %s, want 400 %s", tc.body, r.status, r.body, tc.code)
		}
	}
	if r := h.do("POST", path, h.token("globex"), nil); r.status != http.StatusNotFound {
		t.Errorf("another tenant rotated the secret: %d %s", r.status, r.body)
	}

	r := h.do("POST", path, acme, nil) // no body: the default overlap, 24 h
	if r.status != http.StatusOK || r.header.Get("Cache-Control") != "no-store" {
		t.Fatalf("rotate: %d %s (Cache-Control %q)", r.status, r.body, r.header.Get("Cache-Control"))
	}
	var rotated struct {
		webhookOut
		PreviousSecretExpiresAt *time.Time `json:"previous_secret_expires_at"`
	}
	r.json(t, &rotated)
	if rotated.Secret == "" || rotated.Secret == w.Secret || rotated.PreviousSecretExpiresAt == nil ||
		rotated.PreviousSecretExpiresAt.Sub(h.clock.Now()).Round(time.Minute) != 24*time.Hour {
		t.Fatalf("rotate answered %s", r.body)
	}
	got := h.do("GET", "/webhooks/"+w.ID, acme, nil)
	if got.status != http.StatusOK || strings.Contains(string(got.body), rotated.Secret) || !strings.Contains(string(got.body), `"previous_secret_expires_at":"`) {
		t.Errorf("GET after rotation: %s", got.body)
	}

	e := h.emit("acme", "ia_x", events.UserAdded, nil)
	h.delivery("acme", w.ID, e.ID, succeeded)
	req := rcv.requests()[0]
	for _, s := range []string{w.Secret, rotated.Secret} {
		if err := webhooks.Verify(s, req.header.Get("Dirgate-Signature"), req.body, req.at, webhooks.DefaultTolerance); err != nil {
			t.Errorf("the delivery does not verify with the %s secret: %v", map[bool]string{true: "old", false: "new"}[s == w.Secret], err)
		}
	}

	// overlap 0: the previous secret stops at once.
	r = h.do("POST", path, acme, map[string]any{"overlap_seconds": 0})
	if r.status != http.StatusOK || !strings.Contains(string(r.body), `"previous_secret_expires_at":null`) {
		t.Errorf("rotate without overlap: %d %s", r.status, r.body)
	}
	if strings.Contains(h.logs.String(), rotated.Secret) || strings.Contains(h.logs.String(), w.Secret) {
		t.Error("the logs hold a webhook secret")
	}
}

// The cap on a tenant's webhooks answers 409 too_many_webhooks.
func TestWebhookCapRoute(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{webhooks: true})
	for i := range webhooks.MaxPerTenant {
		h.createWebhook("acme", fmt.Sprintf("http://127.0.0.1:9/%d", i), "*")
	}
	r := h.do("POST", "/webhooks", h.token("acme"), map[string]any{"url": "http://127.0.0.1:9/over", "events": []string{"*"}})
	if r.status != http.StatusConflict || r.errorCode(t) != "too_many_webhooks" {
		t.Errorf("webhook over the cap: %d %s, want 409 too_many_webhooks", r.status, r.body)
	}
	h.createWebhook("globex", "http://127.0.0.1:9/other", "*") // per tenant
}
