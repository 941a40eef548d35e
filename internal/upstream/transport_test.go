package upstream

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/dirgate/dirgate/internal/quota"
	"github.com/dirgate/dirgate/internal/testclock"
)

var (
	testKey  = quota.Key{ClientID: "client-1", UserID: 42}
	testCall = Call{Key: testKey, Priority: quota.Background}
)

// clock is the settable test clock.
type clock = testclock.Clock

func newClock() *clock { return testclock.New(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)) }

type admit struct {
	Key      quota.Key
	Class    quota.Class
	Priority quota.Priority
}

type observe struct {
	Key       quota.Key
	Class     quota.Class
	Remaining int
}

type cooldown struct {
	Key  quota.Key
	Wait time.Duration
}

// fakeBudget records what the transport tells it and admits by a settable decision.
type fakeBudget struct {
	mu        sync.Mutex
	refuse    *quota.Decision // nil: admit everything
	admits    []admit
	observes  []observe
	cooldowns []cooldown
}

func (b *fakeBudget) Admit(_ context.Context, k quota.Key, c quota.Class, p quota.Priority) (quota.Decision, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.admits = append(b.admits, admit{k, c, p})
	if b.refuse != nil {
		return *b.refuse, nil
	}
	return quota.Decision{Allowed: true, Limit: 1000, Remaining: 999}, nil
}

func (b *fakeBudget) Observe(_ context.Context, k quota.Key, c quota.Class, remaining int) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.observes = append(b.observes, observe{k, c, remaining})
	return nil
}

func (b *fakeBudget) Cooldown(_ context.Context, k quota.Key, wait time.Duration) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.cooldowns = append(b.cooldowns, cooldown{k, wait})
	return nil
}

func (b *fakeBudget) Admits() []admit {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]admit(nil), b.admits...)
}

// server is a fake Podio that counts the requests reaching it.
type server struct {
	*httptest.Server
	calls  atomic.Int32
	mu     sync.Mutex
	bodies []string
}

func newServer(t *testing.T, h http.HandlerFunc) *server {
	t.Helper()
	s := &server{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.calls.Add(1)
		b, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		s.bodies = append(s.bodies, string(b))
		s.mu.Unlock()
		h(w, r)
	}))
	t.Cleanup(s.Close)
	return s
}

func status(code int) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(code) }
}

// hangUp closes the connection without an answer: a network error for the client.
func hangUp(w http.ResponseWriter, _ *http.Request) {
	c, _, err := w.(http.Hijacker).Hijack()
	if err != nil {
		panic(err)
	}
	c.Close()
}

// sleeps records the backoffs the transport asks for without waiting.
type sleeps struct {
	mu sync.Mutex
	d  []time.Duration
}

func (s *sleeps) Sleep(ctx context.Context, d time.Duration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.d = append(s.d, d)
	return ctx.Err()
}

func (s *sleeps) Got() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Duration(nil), s.d...)
}

// testOptions fills o with fakes where it has none: a keep-alive-free base (so net/http never
// retries on its own and the server counts exactly our attempts), a clock, recorded sleeps and
// Rand returning 1.
func testOptions(o Options) Options {
	if o.Base == nil {
		o.Base = &http.Transport{DisableKeepAlives: true}
	}
	if o.Now == nil {
		o.Now = newClock().Now
	}
	if o.Sleep == nil {
		o.Sleep = (&sleeps{}).Sleep
	}
	if o.Rand == nil {
		o.Rand = func() float64 { return 1 }
	}
	return o
}

// do sends one request through tr with an http.Client, as the Podio client does.
func do(t *testing.T, tr http.RoundTripper, ctx context.Context, method, url string, body io.Reader, hdr http.Header) (*http.Response, error) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err == nil {
		t.Cleanup(func() { resp.Body.Close() })
	}
	return resp, err
}

func TestAttempts(t *testing.T) {
	t.Parallel()
	idem := http.Header{"Idempotency-Key": {"k-1"}}
	replayable := func() io.Reader { return strings.NewReader("payload") }
	// http.NewRequest sets GetBody only for the bytes and strings readers it knows.
	oneShot := func() io.Reader { return io.NopCloser(strings.NewReader("payload")) }
	tests := []struct {
		name    string
		method  string
		handler http.HandlerFunc
		body    func() io.Reader
		hdr     http.Header
		want    int
		wantErr bool
	}{
		{"200", http.MethodGet, status(200), nil, nil, 1, false},
		{"500", http.MethodGet, status(500), nil, nil, 1, false},
		{"502", http.MethodGet, status(502), nil, nil, 3, false},
		{"503", http.MethodGet, status(503), nil, nil, 3, false},
		{"504", http.MethodGet, status(504), nil, nil, 3, false},
		{"network error", http.MethodGet, hangUp, nil, nil, 3, true},
		{"404", http.MethodGet, status(404), nil, nil, 1, false},
		{"420", http.MethodGet, status(420), nil, nil, 1, false},
		{"HEAD 503", http.MethodHead, status(503), nil, nil, 3, false},
		{"DELETE 503", http.MethodDelete, status(503), nil, nil, 3, false},
		{"POST 503 without Idempotency-Key", http.MethodPost, status(503), replayable, nil, 1, false},
		// Podio does not document Idempotency-Key: a POST that reached it is never sent again.
		{"POST 503 with Idempotency-Key", http.MethodPost, status(503), replayable, idem, 1, false},
		{"POST network error with Idempotency-Key", http.MethodPost, hangUp, replayable, idem, 1, true},
		{"PATCH 504 with Idempotency-Key", http.MethodPatch, status(504), replayable, idem, 1, false},
		{"PATCH 503 without Idempotency-Key", http.MethodPatch, status(503), replayable, nil, 1, false},
		{"POST network error without Idempotency-Key", http.MethodPost, hangUp, replayable, nil, 1, true},
		{"PUT 503 replayable body", http.MethodPut, status(503), replayable, nil, 3, false},
		{"PUT 503 non-replayable body", http.MethodPut, status(503), oneShot, nil, 1, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := newServer(t, tt.handler)
			tr := New(testOptions(Options{FailureThreshold: 100}))
			var body io.Reader
			if tt.body != nil {
				body = tt.body()
			}
			resp, err := do(t, tr, WithCall(t.Context(), testCall), tt.method, srv.URL+"/user/status", body, tt.hdr)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			if got := int(srv.calls.Load()); got != tt.want {
				t.Errorf("attempts = %d, want %d", got, tt.want)
			}
			if err == nil {
				if _, err := io.ReadAll(resp.Body); err != nil {
					t.Errorf("reading the last response: %v", err)
				}
			}
			if tt.body != nil && tt.want > 1 {
				srv.mu.Lock()
				defer srv.mu.Unlock()
				for i, b := range srv.bodies {
					if b != "payload" {
						t.Errorf("attempt %d body = %q, want the replayed payload", i+1, b)
					}
				}
			}
		})
	}
}

func TestBackoff(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name         string
		opts         Options
		deadlineIn   time.Duration // 0: no deadline
		want         []time.Duration
		wantAttempts int
	}{
		{"doubling", Options{}, 0, []time.Duration{100 * time.Millisecond, 200 * time.Millisecond}, 3},
		{"capped", Options{MaxBackoff: 150 * time.Millisecond}, 0, []time.Duration{100 * time.Millisecond, 150 * time.Millisecond}, 3},
		{"jitter", Options{Rand: func() float64 { return 0.5 }}, 0, []time.Duration{50 * time.Millisecond, 100 * time.Millisecond}, 3},
		{"more retries", Options{MaxRetries: 4, BaseBackoff: time.Second, MaxBackoff: 5 * time.Second}, 0,
			[]time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 5 * time.Second}, 5},
		{"no retries", Options{MaxRetries: -1}, 0, nil, 1},
		{"deadline too close", Options{}, 50 * time.Millisecond, nil, 1},
		{"deadline allows one retry", Options{}, 250 * time.Millisecond, []time.Duration{100 * time.Millisecond}, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := newServer(t, status(503))
			sl := &sleeps{}
			clk := newClock()
			o := tt.opts
			o.Now = clk.Now
			o.Sleep = func(ctx context.Context, d time.Duration) error {
				clk.Advance(d)
				return sl.Sleep(ctx, d)
			}
			tr := New(testOptions(o))
			ctx := WithCall(t.Context(), testCall)
			if tt.deadlineIn > 0 {
				// The deadline is real time but far away, so it never expires during the test;
				// the transport sees it tt.deadlineIn after its (fake) now, which moves only
				// by the sleeps it asks for.
				realDeadline := time.Now().Add(time.Hour)
				clk.Set(realDeadline.Add(-tt.deadlineIn))
				var cancel context.CancelFunc
				ctx, cancel = context.WithDeadline(ctx, realDeadline)
				defer cancel()
			}
			resp, err := do(t, tr, ctx, http.MethodGet, srv.URL+"/user/status", nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != 503 {
				t.Errorf("status = %d, want the last 503", resp.StatusCode)
			}
			if diff := cmp.Diff(tt.want, sl.Got()); diff != "" {
				t.Errorf("sleeps (-want +got):\n%s", diff)
			}
			if got := int(srv.calls.Load()); got != tt.wantAttempts {
				t.Errorf("attempts = %d, want %d", got, tt.wantAttempts)
			}
		})
	}
}

func TestRetryStopsWhenContextEnds(t *testing.T) {
	t.Parallel()
	srv := newServer(t, status(503))
	ctx, cancel := context.WithCancel(WithCall(t.Context(), testCall))
	tr := New(testOptions(Options{Sleep: func(ctx context.Context, _ time.Duration) error {
		cancel()
		return ctx.Err()
	}}))
	_, err := do(t, tr, ctx, http.MethodGet, srv.URL+"/user/status", nil, nil)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if got := srv.calls.Load(); got != 1 {
		t.Errorf("attempts = %d, want 1", got)
	}
}

func TestBudgetRefusal(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		decision quota.Decision
		want     BudgetError
	}{
		{"exhausted", quota.Decision{RetryAfter: 5 * time.Second},
			BudgetError{RetryAfter: 5 * time.Second, Class: quota.General}},
		{"cooldown", quota.Decision{RetryAfter: time.Hour, Cooldown: true},
			BudgetError{RetryAfter: time.Hour, Cooldown: true, Class: quota.General}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := newServer(t, status(200))
			b := &fakeBudget{refuse: &tt.decision}
			tr := New(testOptions(Options{Budget: b}))
			_, err := do(t, tr, WithCall(t.Context(), testCall), http.MethodGet, srv.URL+"/user/status", nil, nil)
			be, ok := errors.AsType[*BudgetError](err)
			if !ok {
				t.Fatalf("err = %v (%T), want *BudgetError through *url.Error", err, err)
			}
			if diff := cmp.Diff(tt.want, *be); diff != "" {
				t.Errorf("BudgetError (-want +got):\n%s", diff)
			}
			if got := srv.calls.Load(); got != 0 {
				t.Errorf("server calls = %d, want 0", got)
			}
		})
	}
}

func TestAdmitPerAttempt(t *testing.T) {
	t.Parallel()
	srv := newServer(t, status(503))
	b := &fakeBudget{}
	tr := New(testOptions(Options{Budget: b}))
	if _, err := do(t, tr, WithCall(t.Context(), testCall), http.MethodGet, srv.URL+"/user/status", nil, nil); err != nil {
		t.Fatal(err)
	}
	a := admit{testKey, quota.General, quota.Background}
	if diff := cmp.Diff([]admit{a, a, a}, b.Admits()); diff != "" {
		t.Errorf("admits (-want +got):\n%s", diff)
	}
}

func TestClass(t *testing.T) {
	t.Parallel()
	routes := []string{"GET /org/{id}/member/", "get /space/{id}/member/v2/"}
	tests := []struct {
		basePath, method, path string
		want                   quota.Class
	}{
		{"/", "GET", "/org/3001/member/", quota.RateLimited},
		{"", "GET", "/org/3001/member/", quota.RateLimited},
		{"/", "get", "/org/3001/member/", quota.RateLimited},
		{"/", "GET", "/space/7/member/v2/", quota.RateLimited},
		{"/", "GET", "/org/3001/member", quota.General},
		{"/", "POST", "/org/3001/member/", quota.General},
		{"/", "GET", "/org/3001/", quota.General},
		{"/", "GET", "/org/abc/member/", quota.General},
		{"/podio/", "GET", "/podio/org/3001/member/", quota.RateLimited},
		{"/podio", "GET", "/podio/org/3001/member/", quota.RateLimited},
		{"/podio/", "GET", "/org/3001/member/", quota.RateLimited},
		{"/podio/", "GET", "/podiox/org/3001/member/", quota.General},
	}
	for _, tt := range tests {
		t.Run(tt.basePath+" "+tt.method+" "+tt.path, func(t *testing.T) {
			t.Parallel()
			tr := New(Options{RateLimitedRoutes: routes, BasePath: tt.basePath})
			if got := tr.Class(tt.method, tt.path); got != tt.want {
				t.Errorf("Class = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestAdmitClass(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, basePath, path string
		want                 quota.Class
	}{
		{"rate limited route", "/", "/org/3001/member/?limit=5", quota.RateLimited},
		{"rate limited route under a base path", "/podio/", "/podio/org/3001/member/?limit=5", quota.RateLimited},
		{"other route", "/", "/org/3001/", quota.General},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := newServer(t, status(200))
			b := &fakeBudget{}
			tr := New(testOptions(Options{Budget: b, BasePath: tt.basePath, RateLimitedRoutes: []string{"GET /org/{id}/member/"}}))
			if _, err := do(t, tr, WithCall(t.Context(), testCall), http.MethodGet, srv.URL+tt.path, nil, nil); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff([]admit{{testKey, tt.want, quota.Background}}, b.Admits()); diff != "" {
				t.Errorf("admits (-want +got):\n%s", diff)
			}
		})
	}
}

func TestObserve(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		header string
		want   []observe
	}{
		{"header", "742", []observe{{testKey, quota.RateLimited, 742}}},
		{"zero", "0", []observe{{testKey, quota.RateLimited, 0}}},
		{"garbage", "many", nil},
		{"absent", "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := newServer(t, func(w http.ResponseWriter, _ *http.Request) {
				if tt.header != "" {
					w.Header().Set("X-Rate-Limit-Remaining", tt.header)
				}
			})
			b := &fakeBudget{}
			tr := New(testOptions(Options{Budget: b, RateLimitedRoutes: []string{"GET /org/{id}/member/"}}))
			if _, err := do(t, tr, WithCall(t.Context(), testCall), http.MethodGet, srv.URL+"/org/1/member/", nil, nil); err != nil {
				t.Fatal(err)
			}
			b.mu.Lock()
			defer b.mu.Unlock()
			if diff := cmp.Diff(tt.want, b.observes); diff != "" {
				t.Errorf("observes (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRateLimited(t *testing.T) {
	t.Parallel()
	podioBody := `{"error":"rate_limit","error_description":"You have hit the rate limit. Please wait 3600 seconds before trying again","error_detail":null}`
	long := `{"error_description":"please WAIT 120 seconds"}` + strings.Repeat(" ", 100<<10) + "end"
	tests := []struct {
		name       string
		body       string
		retryAfter string
		defaultCD  time.Duration
		want       time.Duration
	}{
		{"body says", podioBody, "", 0, time.Hour},
		{"body wins over Retry-After", podioBody, "10", 0, time.Hour},
		{"body longer than the peek", long, "", 0, 2 * time.Minute},
		{"Retry-After", `{"error":"rate_limit"}`, "30", 0, 30 * time.Second},
		{"nothing: default", `{"error":"rate_limit"}`, "", 0, DefaultCooldown},
		{"nothing: configured default", "", "", 90 * time.Second, 90 * time.Second},
		{"bad Retry-After", "", "soon", 0, DefaultCooldown},
		{"absurd wait capped", "Please wait 99999999999 seconds", "", 0, 24 * time.Hour},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := newServer(t, func(w http.ResponseWriter, _ *http.Request) {
				if tt.retryAfter != "" {
					w.Header().Set("Retry-After", tt.retryAfter)
				}
				w.WriteHeader(420)
				io.WriteString(w, tt.body)
			})
			b := &fakeBudget{}
			tr := New(testOptions(Options{Budget: b, DefaultCooldown: tt.defaultCD}))
			resp, err := do(t, tr, WithCall(t.Context(), testCall), http.MethodGet, srv.URL+"/user/status", nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != 420 {
				t.Errorf("status = %d, want 420 as is", resp.StatusCode)
			}
			got, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.body {
				t.Errorf("caller read %d bytes, want the whole %d-byte body", len(got), len(tt.body))
			}
			b.mu.Lock()
			defer b.mu.Unlock()
			if diff := cmp.Diff([]cooldown{{testKey, tt.want}}, b.cooldowns); diff != "" {
				t.Errorf("cooldowns (-want +got):\n%s", diff)
			}
			if got := srv.calls.Load(); got != 1 {
				t.Errorf("attempts = %d, want 1 (a 420 is never retried)", got)
			}
		})
	}
}

func TestPassThrough(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		path    string
		call    bool
		handler http.HandlerFunc
	}{
		{"token endpoint", "/oauth/token", true, status(503)},
		{"token endpoint v2", "/oauth/token/v2", true, status(503)},
		{"token endpoint under a base path", "/podio/oauth/token", true, status(503)},
		{"no Call", "/user/status", false, status(503)},
		{"no Call 420", "/user/status", false, status(420)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := newServer(t, tt.handler)
			b := &fakeBudget{refuse: &quota.Decision{RetryAfter: time.Hour}}
			tr := New(testOptions(Options{Budget: b, FailureThreshold: 1}))
			ctx := t.Context()
			if tt.call {
				ctx = WithCall(ctx, testCall)
			}
			for range 3 {
				if _, err := do(t, tr, ctx, http.MethodGet, srv.URL+tt.path, nil, nil); err != nil {
					t.Fatalf("err = %v, want the answer passed through", err)
				}
			}
			if got := srv.calls.Load(); got != 3 {
				t.Errorf("attempts = %d, want 3 (one per call: no retry, no breaker)", got)
			}
			b.mu.Lock()
			defer b.mu.Unlock()
			if len(b.admits)+len(b.observes)+len(b.cooldowns) != 0 {
				t.Errorf("budget used: admits %v observes %v cooldowns %v", b.admits, b.observes, b.cooldowns)
			}
		})
	}
}

func TestCircuitBreaker(t *testing.T) {
	t.Parallel()
	var code atomic.Int32
	code.Store(500)
	srv := newServer(t, func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(int(code.Load())) })
	clk := newClock()
	b := &fakeBudget{}
	tr := New(testOptions(Options{Now: clk.Now, Budget: b}))
	ctx := WithCall(t.Context(), testCall)
	get := func() (*http.Response, error) {
		return do(t, tr, ctx, http.MethodGet, srv.URL+"/user/status", nil, nil)
	}
	wantOpen := func(retryAfter time.Duration) {
		t.Helper()
		before, admits := srv.calls.Load(), len(b.Admits())
		_, err := get()
		ce, ok := errors.AsType[*CircuitOpenError](err)
		if !ok {
			t.Fatalf("err = %v, want *CircuitOpenError", err)
		}
		if ce.RetryAfter != retryAfter {
			t.Errorf("RetryAfter = %v, want %v", ce.RetryAfter, retryAfter)
		}
		if srv.calls.Load() != before {
			t.Error("an open circuit called the server")
		}
		if len(b.Admits()) != admits {
			t.Error("an open circuit spent budget")
		}
	}
	wantStatus := func(want int) {
		t.Helper()
		resp, err := get()
		if err != nil {
			t.Fatalf("err = %v, want status %d", err, want)
		}
		if resp.StatusCode != want {
			t.Fatalf("status = %d, want %d", resp.StatusCode, want)
		}
	}

	for range 5 {
		wantStatus(500)
	}
	wantOpen(30 * time.Second)
	if got := srv.calls.Load(); got != 5 {
		t.Fatalf("server calls = %d, want 5", got)
	}
	clk.Advance(10 * time.Second)
	wantOpen(20 * time.Second)

	// The probe fails: open again for a full OpenTimeout.
	clk.Advance(20 * time.Second)
	wantStatus(500)
	wantOpen(30 * time.Second)

	// The probe succeeds: closed, and it takes five new failures to open again.
	clk.Advance(30 * time.Second)
	code.Store(200)
	wantStatus(200)
	wantStatus(200)
	code.Store(500)
	for range 5 {
		wantStatus(500)
	}
	wantOpen(30 * time.Second)
}

func TestCircuitBreakerNetworkErrors(t *testing.T) {
	t.Parallel()
	srv := newServer(t, hangUp)
	tr := New(testOptions(Options{FailureThreshold: 3}))
	ctx := WithCall(t.Context(), testCall)
	// One GET makes three failing attempts, which is enough to open the circuit.
	if _, err := do(t, tr, ctx, http.MethodGet, srv.URL+"/user/status", nil, nil); err == nil {
		t.Fatal("want a network error")
	}
	_, err := do(t, tr, ctx, http.MethodGet, srv.URL+"/user/status", nil, nil)
	if _, ok := errors.AsType[*CircuitOpenError](err); !ok {
		t.Fatalf("err = %v, want *CircuitOpenError", err)
	}
	if got := srv.calls.Load(); got != 3 {
		t.Errorf("server calls = %d, want 3", got)
	}
}

func TestCircuitBreakerRetryStopsWhenOpen(t *testing.T) {
	t.Parallel()
	srv := newServer(t, status(503))
	tr := New(testOptions(Options{FailureThreshold: 2}))
	_, err := do(t, tr, WithCall(t.Context(), testCall), http.MethodGet, srv.URL+"/user/status", nil, nil)
	if _, ok := errors.AsType[*CircuitOpenError](err); !ok {
		t.Fatalf("err = %v, want *CircuitOpenError once the retries opened the circuit", err)
	}
	if got := srv.calls.Load(); got != 2 {
		t.Errorf("server calls = %d, want 2", got)
	}
}

func TestCircuitBreakerCancelledCallsDoNotCount(t *testing.T) {
	t.Parallel()
	arrived := make(chan struct{}, 1)
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		<-r.Context().Done()
	})
	tr := New(testOptions(Options{FailureThreshold: 1}))
	for range 3 {
		ctx, cancel := context.WithCancel(WithCall(t.Context(), testCall))
		go func() {
			<-arrived
			cancel()
		}()
		_, err := do(t, tr, ctx, http.MethodGet, srv.URL+"/user/status", nil, nil)
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want context.Canceled", err)
		}
		cancel()
	}
	tr.breaker.mu.Lock()
	defer tr.breaker.mu.Unlock()
	if tr.breaker.state != closed || tr.breaker.failures != 0 {
		t.Errorf("breaker state %v, failures %d after cancelled calls; want closed with none", tr.breaker.state, tr.breaker.failures)
	}
	if got := srv.calls.Load(); got != 3 {
		t.Errorf("server calls = %d, want 3 (no retry of a cancelled call)", got)
	}
}

func TestHalfOpenLetsOneProbeThrough(t *testing.T) {
	t.Parallel()
	var probing atomic.Bool
	arrived := make(chan struct{})
	release := make(chan struct{})
	srv := newServer(t, func(w http.ResponseWriter, _ *http.Request) {
		if !probing.Load() {
			w.WriteHeader(500)
			return
		}
		arrived <- struct{}{}
		<-release
	})
	clk := newClock()
	tr := New(testOptions(Options{Now: clk.Now, FailureThreshold: 1}))
	ctx := WithCall(t.Context(), testCall)
	if _, err := do(t, tr, ctx, http.MethodGet, srv.URL+"/user/status", nil, nil); err != nil {
		t.Fatal(err)
	}
	clk.Advance(30 * time.Second)
	probing.Store(true)

	probeDone := make(chan error, 1)
	go func() {
		resp, err := do(t, tr, ctx, http.MethodGet, srv.URL+"/user/status", nil, nil)
		if err == nil && resp.StatusCode != 200 {
			err = errors.New(resp.Status)
		}
		probeDone <- err
	}()
	<-arrived

	const others = 8
	var wg sync.WaitGroup
	errs := make([]error, others)
	for i := range others {
		wg.Go(func() {
			_, errs[i] = do(t, tr, ctx, http.MethodGet, srv.URL+"/user/status", nil, nil)
		})
	}
	wg.Wait()
	for i, err := range errs {
		if _, ok := errors.AsType[*CircuitOpenError](err); !ok {
			t.Errorf("caller %d during the probe: err = %v, want *CircuitOpenError", i, err)
		}
	}
	close(release)
	if err := <-probeDone; err != nil {
		t.Fatalf("probe: %v", err)
	}
	if got := srv.calls.Load(); got != 2 {
		t.Errorf("server calls = %d, want 2 (the failure and the one probe)", got)
	}
	// The probe succeeded: closed.
	probing.Store(false)
	if _, err := do(t, tr, ctx, http.MethodGet, srv.URL+"/user/status", nil, nil); err != nil {
		t.Errorf("after the probe: err = %v, want the circuit closed", err)
	}
}

func TestBudgetRefusalFreesTheProbe(t *testing.T) {
	t.Parallel()
	srv := newServer(t, status(500))
	clk := newClock()
	b := &fakeBudget{}
	tr := New(testOptions(Options{Now: clk.Now, Budget: b, FailureThreshold: 1}))
	ctx := WithCall(t.Context(), testCall)
	if _, err := do(t, tr, ctx, http.MethodGet, srv.URL+"/user/status", nil, nil); err != nil {
		t.Fatal(err)
	}
	clk.Advance(30 * time.Second)
	b.mu.Lock()
	b.refuse = &quota.Decision{RetryAfter: time.Second}
	b.mu.Unlock()
	if _, err := do(t, tr, ctx, http.MethodGet, srv.URL+"/user/status", nil, nil); !errors.As(err, new(*BudgetError)) {
		t.Fatalf("err = %v, want *BudgetError", err)
	}
	b.mu.Lock()
	b.refuse = nil
	b.mu.Unlock()
	// The refused call was not sent, so the next one is the probe.
	resp, err := do(t, tr, ctx, http.MethodGet, srv.URL+"/user/status", nil, nil)
	if err != nil || resp.StatusCode != 500 {
		t.Fatalf("got %v, %v; want the probe to reach the server", resp, err)
	}
}

func TestRequestBodyClosedWhenRefused(t *testing.T) {
	t.Parallel()
	b := &fakeBudget{refuse: &quota.Decision{RetryAfter: time.Second}}
	tr := New(testOptions(Options{Budget: b}))
	body := &closeRecorder{Reader: strings.NewReader("x")}
	req, err := http.NewRequestWithContext(WithCall(t.Context(), testCall), http.MethodPut, "http://podio.invalid/x", body)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tr.RoundTrip(req); err == nil {
		t.Fatal("want *BudgetError")
	}
	if !body.closed.Load() {
		t.Error("request body not closed")
	}
}

type closeRecorder struct {
	io.Reader
	closed atomic.Bool
}

func (c *closeRecorder) Close() error { c.closed.Store(true); return nil }

func TestNoSecretsInLogsOrErrors(t *testing.T) {
	t.Parallel()
	const secret = "s3cr3t-token"
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/rl" {
			w.WriteHeader(420)
			io.WriteString(w, "Please wait 5 seconds "+secret)
			return
		}
		w.Header().Set("X-Secret", secret)
		w.WriteHeader(503)
		io.WriteString(w, secret)
	})
	var logs bytes.Buffer
	var mu sync.Mutex
	logger := slog.New(slog.NewTextHandler(&lockedWriter{mu: &mu, w: &logs}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	tr := New(testOptions(Options{Logger: logger, FailureThreshold: 2, Budget: &fakeBudget{}}))
	ctx := WithCall(t.Context(), testCall)
	hdr := http.Header{"Authorization": {"OAuth2 " + secret}}
	var errs []string
	for _, p := range []string{"/rl?access_token=" + secret, "/x?access_token=" + secret, "/x?access_token=" + secret} {
		resp, err := do(t, tr, ctx, http.MethodGet, srv.URL+p, nil, hdr)
		if err != nil {
			errs = append(errs, err.Error())
		} else {
			io.ReadAll(resp.Body)
		}
	}
	if len(errs) == 0 {
		t.Fatal("want the open circuit to fail the last call")
	}
	mu.Lock()
	defer mu.Unlock()
	if !strings.Contains(logs.String(), "circuit opened") {
		t.Errorf("the circuit opening was not logged:\n%s", logs.String())
	}
	if strings.Contains(logs.String(), secret) {
		t.Errorf("logs contain the secret:\n%s", logs.String())
	}
	for _, e := range errs {
		// http.Client's *url.Error quotes the URL (its query included) itself; what this package
		// adds must not.
		if strings.Contains(strings.ReplaceAll(e, "access_token="+secret, ""), secret) {
			t.Errorf("error contains the secret: %s", e)
		}
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func TestCallContext(t *testing.T) {
	t.Parallel()
	if _, ok := CallFrom(t.Context()); ok {
		t.Error("CallFrom found a Call in a bare context")
	}
	got, ok := CallFrom(WithCall(t.Context(), testCall))
	if !ok || got != testCall {
		t.Errorf("CallFrom = %v, %v; want %v", got, ok, testCall)
	}
}

func TestDefaultSleep(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	done := make(chan error, 1)
	go func() { done <- sleep(ctx, time.Hour) }()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("sleep = %v, want context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("sleep ignored a cancelled context")
	}
	if err := sleep(t.Context(), time.Millisecond); err != nil {
		t.Errorf("sleep = %v, want nil", err)
	}
}

// refusingDials fails the first n round trips as a refused dial (nothing was sent), then passes
// them to next.
type refusingDials struct {
	n     atomic.Int32
	calls atomic.Int32
	next  http.RoundTripper
}

func (r *refusingDials) RoundTrip(req *http.Request) (*http.Response, error) {
	r.calls.Add(1)
	if r.n.Add(-1) >= 0 {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
	}
	return r.next.RoundTrip(req)
}

// TestWriteRetriedOnlyWhenNeverSent: a POST whose connection could not even be made never reached
// Podio, so it is retried; one that failed after it may have arrived is not (above).
func TestWriteRetriedOnlyWhenNeverSent(t *testing.T) {
	t.Parallel()
	srv := newServer(t, status(200))
	base := &refusingDials{next: &http.Transport{DisableKeepAlives: true}}
	base.n.Store(1)
	tr := New(testOptions(Options{Base: base, FailureThreshold: 100}))
	resp, err := do(t, tr, WithCall(t.Context(), testCall), http.MethodPost, srv.URL+"/space/1/member/",
		strings.NewReader("payload"), nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("POST after a refused dial: %v, %v", resp, err)
	}
	if base.calls.Load() != 2 || srv.calls.Load() != 1 {
		t.Errorf("attempts %d, reaching Podio %d; want 2 and 1", base.calls.Load(), srv.calls.Load())
	}
}
