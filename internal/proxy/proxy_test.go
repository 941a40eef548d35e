package proxy_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/dirgate/dirgate/adapters/podio"
	"github.com/dirgate/dirgate/adapters/podio/podiosim"
	"github.com/dirgate/dirgate/internal/proxy"
	"github.com/dirgate/dirgate/unified"
)

// ---- test doubles -------------------------------------------------------------------------

// tokens is a TokenSource for tests: it hands out current and answers Refresh with refresh.
type tokens struct {
	mu        sync.Mutex
	current   *podio.Token
	tokenErr  error
	refresh   func(stale *podio.Token) (*podio.Token, error)
	refreshed []string // access tokens passed to Refresh as stale
}

func staticTokens(access string) *tokens {
	return &tokens{current: &podio.Token{AccessToken: access}}
}

func (s *tokens) Token(context.Context) (*podio.Token, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tokenErr != nil {
		return nil, s.tokenErr
	}
	return s.current, nil
}

func (s *tokens) Refresh(_ context.Context, stale *podio.Token) (*podio.Token, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refreshed = append(s.refreshed, stale.AccessToken)
	if s.refresh == nil {
		return nil, podio.ErrCannotRefresh
	}
	fresh, err := s.refresh(stale)
	if err == nil {
		s.current = fresh
	}
	return fresh, err
}

func (s *tokens) refreshes() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.refreshed...)
}

// strictWriter is a ResponseWriter that records whether anything was written, for the cases
// where Forward must answer with an error and leave the writer alone.
type strictWriter struct {
	header  http.Header
	written bool
}

func newStrictWriter() *strictWriter { return &strictWriter{header: http.Header{}} }

func (w *strictWriter) Header() http.Header { return w.header }
func (w *strictWriter) WriteHeader(int)     { w.written = true }
func (w *strictWriter) Write(p []byte) (int, error) {
	w.written = true
	return len(p), nil
}

// exchange is one request as a recording upstream saw it.
type exchange struct {
	Method        string
	RequestURI    string
	Header        http.Header
	Body          []byte
	BodyErr       error
	ContentLength int64
	Chunked       bool
}

// upstream is a recording fake Podio: a real HTTP server that records every request and answers
// with respond.
type upstream struct {
	*httptest.Server
	mu      sync.Mutex
	seen    []exchange
	respond http.HandlerFunc
}

func newUpstream(t *testing.T, respond http.HandlerFunc) *upstream {
	t.Helper()
	u := &upstream{respond: respond}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		u.mu.Lock()
		u.seen = append(u.seen, exchange{
			Method: r.Method, RequestURI: r.RequestURI, Header: r.Header.Clone(), Body: body, BodyErr: err,
			ContentLength: r.ContentLength, Chunked: len(r.TransferEncoding) > 0,
		})
		u.mu.Unlock()
		if err != nil {
			http.Error(w, "bad body", http.StatusBadRequest)
			return
		}
		u.respond(w, r)
	}))
	t.Cleanup(u.Close)
	return u
}

func (u *upstream) requests() []exchange {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]exchange(nil), u.seen...)
}

// tap sits between the forwarder and the simulator and keeps the last answer exactly as the
// simulator wrote it, so that tests can compare it with what the caller received.
type tap struct {
	h    http.Handler
	mu   sync.Mutex
	last *httptest.ResponseRecorder
}

func (tp *tap) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rec := httptest.NewRecorder()
	tp.h.ServeHTTP(rec, r)
	for k, vs := range rec.Header() {
		w.Header()[k] = vs
	}
	w.WriteHeader(rec.Code)
	_, _ = w.Write(rec.Body.Bytes())
	tp.mu.Lock()
	tp.last = rec
	tp.mu.Unlock()
}

func (tp *tap) lastAnswer() *httptest.ResponseRecorder {
	tp.mu.Lock()
	defer tp.mu.Unlock()
	return tp.last
}

// simEnv is the simulator mounted under /podio/ of a real HTTP server, as in dev mode.
type simEnv struct {
	sim  *podiosim.Server
	tap  *tap
	srv  *httptest.Server
	base *url.URL
}

func newSimEnv(t *testing.T) *simEnv {
	t.Helper()
	sim := podiosim.New(podiosim.Config{})
	tp := &tap{h: sim}
	srv := httptest.NewServer(http.StripPrefix("/podio", tp))
	t.Cleanup(srv.Close)
	base, err := url.Parse(srv.URL + "/podio/")
	if err != nil {
		t.Fatal(err)
	}
	return &simEnv{sim: sim, tap: tp, srv: srv, base: base}
}

func (e *simEnv) forwarder(t *testing.T, o proxy.Options) *proxy.Forwarder {
	t.Helper()
	o.Base = e.base
	f, err := proxy.New(o)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func (e *simEnv) token(t *testing.T, email string) string {
	t.Helper()
	tok, err := e.sim.IssueToken("demo-client", email)
	if err != nil {
		t.Fatal(err)
	}
	return tok.AccessToken
}

func (e *simEnv) userID(t *testing.T, email string) int64 {
	t.Helper()
	id, ok := e.sim.UserID(email)
	if !ok {
		t.Fatalf("no user %s in the demo dataset", email)
	}
	return id
}

func (e *simEnv) upstreamCalls() int {
	n := 0
	for _, c := range e.sim.Calls() {
		n += c
	}
	return n
}

// frontend is dirgate's side in miniature: a real HTTP server whose handler sets a request id,
// calls Forward and answers *proxy.Error itself, as the api package does.
type frontend struct {
	*httptest.Server
	mu      sync.Mutex
	results []result
}

type result struct {
	res proxy.Result
	err error
}

func newFrontend(t *testing.T, f *proxy.Forwarder, src func(r *http.Request) podio.TokenSource) *frontend {
	t.Helper()
	fe := &frontend{}
	fe.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fe.mu.Lock()
		id := fmt.Sprintf("dg-%d", len(fe.results)+1)
		fe.mu.Unlock()
		w.Header().Set("X-Request-Id", id)
		res, err := f.Forward(w, r, r.URL.EscapedPath(), src(r))
		fe.mu.Lock()
		fe.results = append(fe.results, result{res, err})
		fe.mu.Unlock()
		if err != nil && !res.Written {
			status := http.StatusInternalServerError
			if pe, ok := errors.AsType[*proxy.Error](err); ok {
				status = pe.Status
			}
			http.Error(w, "dirgate", status)
		}
	}))
	t.Cleanup(fe.Close)
	return fe
}

func (fe *frontend) last(t *testing.T) result {
	t.Helper()
	fe.mu.Lock()
	defer fe.mu.Unlock()
	if len(fe.results) == 0 {
		t.Fatal("the frontend handled no request")
	}
	return fe.results[len(fe.results)-1]
}

// rawClient does not decompress, so tests see bytes exactly as the frontend sent them.
func rawClient() *http.Client {
	return &http.Client{Transport: &http.Transport{DisableCompression: true}}
}

func do(t *testing.T, c *http.Client, method, rawURL string, body io.Reader, header http.Header) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, rawURL, body)
	if err != nil {
		t.Fatal(err)
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, data
}

// ---- round trips against the simulator -------------------------------------------------------

func TestForwardRoundTripsThroughSimulator(t *testing.T) {
	t.Parallel()
	env := newSimEnv(t)
	admin := env.token(t, "admin@demo.example")
	member := env.token(t, "member@demo.example")
	grace := env.userID(t, "grace.whitfield@northwind.example")
	f := env.forwarder(t, proxy.Options{})
	fe := newFrontend(t, f, func(r *http.Request) podio.TokenSource {
		if r.Header.Get("X-Test-As") == "member" {
			return staticTokens(member)
		}
		return staticTokens(admin)
	})
	graceMember := fmt.Sprintf("/space/40001/member/%d", grace)

	// The steps share one simulator and run in order: the writes build on each other.
	steps := []struct {
		name       string
		setup      func(t *testing.T)
		asMember   bool
		method     string
		path       string // with query
		body       string
		wantStatus int
		check      func(t *testing.T, body []byte)
	}{
		{name: "collection with trailing slash", method: "GET", path: "/org/", wantStatus: 200,
			check: func(t *testing.T, body []byte) { wantLen(t, body, 2) }},
		{name: "object without slash", method: "GET", path: "/org/3001", wantStatus: 200,
			check: func(t *testing.T, body []byte) { wantField(t, body, "org_id", float64(3001)) }},
		{name: "query forwarded", method: "GET", path: "/org/3001/member/?limit=5&offset=2", wantStatus: 200,
			check: func(t *testing.T, body []byte) { wantLen(t, body, 5) }},
		{name: "403 verbatim", asMember: true, method: "GET", path: "/org/3001/member/", wantStatus: 403,
			check: func(t *testing.T, body []byte) { wantField(t, body, "error", "forbidden") }},
		{name: "404 verbatim", method: "GET", path: "/space/99999", wantStatus: 404,
			check: func(t *testing.T, body []byte) { wantField(t, body, "error", "not_found") }},
		{name: "POST JSON body", method: "POST", path: "/space/40001/member/",
			body: fmt.Sprintf(`{"role":"regular","users":[%d]}`, grace), wantStatus: 200,
			check: func(t *testing.T, body []byte) { wantBody(t, body, "{}\n") }},
		{name: "PUT role", method: "PUT", path: graceMember, body: `{"role":"light"}`, wantStatus: 204,
			check: func(t *testing.T, body []byte) { wantBody(t, body, "") }},
		{name: "role changed", method: "GET", path: graceMember, wantStatus: 200,
			check: func(t *testing.T, body []byte) { wantField(t, body, "role", "light") }},
		{name: "DELETE membership", method: "DELETE", path: graceMember, wantStatus: 204,
			check: func(t *testing.T, body []byte) { wantBody(t, body, "") }},
		{name: "membership gone", method: "GET", path: graceMember, wantStatus: 404,
			check: func(t *testing.T, body []byte) { wantField(t, body, "error", "not_found") }},
		{name: "420 rate limit verbatim",
			setup: func(t *testing.T) {
				if err := env.sim.AddFault(podiosim.Fault{Route: podiosim.RouteOrgs, RateLimit: true, Times: 1}); err != nil {
					t.Fatal(err)
				}
			},
			method: "GET", path: "/org/", wantStatus: podio.StatusRateLimited,
			check: func(t *testing.T, body []byte) {
				wantField(t, body, "error", "rate_limit")
				wantField(t, body, "error_description", "You have hit the rate limit. Please wait 60 seconds before trying again")
			}},
		{name: "500 fault verbatim",
			setup: func(t *testing.T) {
				if err := env.sim.AddFault(podiosim.Fault{Route: podiosim.RouteOrg, Status: 500, Times: 1}); err != nil {
					t.Fatal(err)
				}
			},
			method: "GET", path: "/org/3001", wantStatus: 500,
			check: func(t *testing.T, body []byte) { wantField(t, body, "error", "server_error") }},
	}
	for i, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			if st.setup != nil {
				st.setup(t)
			}
			header := http.Header{"Accept": {"application/json"}}
			if st.body != "" {
				header.Set("Content-Type", "application/json")
			}
			if st.asMember {
				header.Set("X-Test-As", "member")
			}
			var body io.Reader
			if st.body != "" {
				body = strings.NewReader(st.body)
			}
			resp, got := do(t, rawClient(), st.method, fe.URL+st.path, body, header)
			if resp.StatusCode != st.wantStatus {
				t.Fatalf("status %d, want %d; body %s", resp.StatusCode, st.wantStatus, got)
			}
			st.check(t, got)

			// What the caller got is what Podio sent.
			podioAnswer := env.tap.lastAnswer()
			if podioAnswer.Code != resp.StatusCode {
				t.Errorf("status %d, Podio sent %d", resp.StatusCode, podioAnswer.Code)
			}
			if diff := cmp.Diff(podioAnswer.Body.String(), string(got)); diff != "" {
				t.Errorf("body differs from Podio's (-podio +caller):\n%s", diff)
			}
			for _, h := range []string{"Content-Type", "X-Rate-Limit-Limit", "X-Rate-Limit-Remaining", "X-Podio-Request-Id", "Www-Authenticate"} {
				if p, c := podioAnswer.Header().Values(h), resp.Header.Values(h); !cmp.Equal(p, c) {
					t.Errorf("header %s = %q, Podio sent %q", h, c, p)
				}
			}
			if resp.Header.Get("X-Rate-Limit-Limit") == "" {
				t.Error("X-Rate-Limit-Limit missing")
			}
			if got, want := resp.Header.Get("X-Request-Id"), fmt.Sprintf("dg-%d", i+1); got != want {
				t.Errorf("X-Request-Id %q, want dirgate's %q", got, want)
			}
			r := fe.last(t)
			if r.err != nil {
				t.Errorf("Forward: %v", r.err)
			}
			want := proxy.Result{Status: st.wantStatus, Upstream: 1, Bytes: int64(len(got)), Written: true}
			if diff := cmp.Diff(want, r.res); diff != "" {
				t.Errorf("Result (-want +got):\n%s", diff)
			}
		})
	}
	if got := env.sim.Calls()[podiosim.RouteOrgs]; got != 2 {
		t.Errorf("GET /org/ reached Podio %d times, want 2", got)
	}
}

func wantLen(t *testing.T, body []byte, n int) {
	t.Helper()
	var items []json.RawMessage
	if err := json.Unmarshal(body, &items); err != nil {
		t.Fatalf("body is not a JSON array: %v: %s", err, body)
	}
	if len(items) != n {
		t.Errorf("%d items, want %d", len(items), n)
	}
}

func wantField(t *testing.T, body []byte, key string, want any) {
	t.Helper()
	var obj map[string]any
	if err := json.Unmarshal(body, &obj); err != nil {
		t.Fatalf("body is not a JSON object: %v: %s", err, body)
	}
	if diff := cmp.Diff(want, obj[key]); diff != "" {
		t.Errorf("%s (-want +got):\n%s", key, diff)
	}
}

func wantBody(t *testing.T, body []byte, want string) {
	t.Helper()
	if diff := cmp.Diff(want, string(body)); diff != "" {
		t.Errorf("body (-want +got):\n%s", diff)
	}
}

// ---- headers --------------------------------------------------------------------------------

func TestForwardHeaderHygiene(t *testing.T) {
	t.Parallel()
	const answer = `{"ok":true}`
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Connection", "X-Hop-Resp")
		h.Set("X-Hop-Resp", "connection-scoped")
		h.Set("Keep-Alive", "timeout=5")
		h.Set("Proxy-Authenticate", "Basic")
		h.Set("Proxy-Something", "x")
		h.Set("Set-Cookie", "podio_session=abc; Path=/")
		h.Set("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
		h.Set("Alt-Svc", `h3=":443"`)
		h.Set("X-Request-Id", "podio-side")
		h.Set("X-Rate-Limit-Limit", "1000")
		h.Set("X-Rate-Limit-Remaining", "998")
		h.Set("X-Podio-Request-Id", "abc123")
		h.Set("Content-Type", "application/json; charset=utf-8")
		h.Set("Content-Length", strconv.Itoa(len(answer)))
		h.Set("Vary", "Accept-Language")
		_, _ = io.WriteString(w, answer)
	})
	base, _ := url.Parse(up.URL + "/")
	f, err := proxy.New(proxy.Options{Base: base})
	if err != nil {
		t.Fatal(err)
	}

	r := httptest.NewRequest(http.MethodPost, "/org/3001?x=1", strings.NewReader(`{"a":1}`))
	for k, v := range map[string]string{
		"Authorization":       "Bearer caller-jwt",
		"Proxy-Authorization": "Basic Y2FsbGVy",
		"Cookie":              "dirgate_session=secret",
		"Cookie2":             "x",
		"X-Forwarded-For":     "10.0.0.1",
		"X-Forwarded-Proto":   "https",
		"X-Forwarded-Host":    "evil.example",
		"Forwarded":           "for=10.0.0.1",
		"X-Real-Ip":           "10.0.0.1",
		"X-Request-Id":        "caller-chosen",
		"Connection":          "keep-alive, X-Secret-Hop",
		"X-Secret-Hop":        "named-in-connection",
		"Keep-Alive":          "timeout=5",
		"Proxy-Connection":    "keep-alive",
		"Te":                  "trailers",
		"Trailer":             "X-T",
		"Transfer-Encoding":   "chunked",
		"Upgrade":             "websocket",
		"Expect":              "100-continue",
		"Content-Type":        "application/json",
		"Accept":              "application/json",
		"Accept-Language":     "da_DK",
		"Accept-Encoding":     "gzip",
		"X-Podio-Dry-Run":     "1",
		"User-Agent":          "podio-rb/1.5",
		"Idempotency-Key":     "k-1",
		"X-Idempotency-Key":   "k-2",
	} {
		r.Header.Set(k, v)
	}
	r.Header["x-forwarded-port"] = []string{"443"} // not canonical, as a hand-built header may be
	r.Header["cookie"] = []string{"lowercase=1"}

	w := httptest.NewRecorder()
	w.Header().Set("X-Request-Id", "dg-1")
	res, err := f.Forward(w, r, r.URL.EscapedPath(), staticTokens("podio-access"))
	if err != nil {
		t.Fatalf("Forward: %v", err)
	}
	if diff := cmp.Diff(proxy.Result{Status: 200, Upstream: 1, Bytes: int64(len(answer)), Written: true}, res); diff != "" {
		t.Errorf("Result (-want +got):\n%s", diff)
	}

	seen := up.requests()
	if len(seen) != 1 {
		t.Fatalf("upstream saw %d requests, want 1", len(seen))
	}
	got := seen[0].Header
	got.Del("Content-Length") // set by the transport from the body
	want := http.Header{
		"Authorization":   {"OAuth2 podio-access"},
		"X-Request-Id":    {"dg-1"},
		"Content-Type":    {"application/json"},
		"Accept":          {"application/json"},
		"Accept-Language": {"da_DK"},
		"Accept-Encoding": {"gzip"},
		"X-Podio-Dry-Run": {"1"},
		"User-Agent":      {"podio-rb/1.5"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("headers Podio received (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(exchange{Method: "POST", RequestURI: "/org/3001?x=1", Body: []byte(`{"a":1}`), ContentLength: 7},
		seen[0], cmpIgnoreHeader); diff != "" {
		t.Errorf("request Podio received (-want +got):\n%s", diff)
	}

	gotResp := w.Result().Header
	gotResp.Del("Date")
	wantResp := http.Header{
		"X-Request-Id":           {"dg-1"},
		"X-Rate-Limit-Limit":     {"1000"},
		"X-Rate-Limit-Remaining": {"998"},
		"X-Podio-Request-Id":     {"abc123"},
		"Content-Type":           {"application/json; charset=utf-8"},
		"Content-Length":         {strconv.Itoa(len(answer))},
		"Vary":                   {"Accept-Language"},
	}
	if diff := cmp.Diff(wantResp, gotResp); diff != "" {
		t.Errorf("headers the caller received (-want +got):\n%s", diff)
	}
	if w.Body.String() != answer {
		t.Errorf("body %q, want %q", w.Body.String(), answer)
	}
}

var cmpIgnoreHeader = cmp.FilterPath(func(p cmp.Path) bool { return p.String() == "Header" }, cmp.Ignore())

// ---- hostile input --------------------------------------------------------------------------

// failingReader fails like a client that disconnects mid-body.
type failingReader struct{ sent bool }

func (r *failingReader) Read(p []byte) (int, error) {
	if !r.sent {
		r.sent = true
		return copy(p, "{\"role\":"), nil
	}
	return 0, io.ErrUnexpectedEOF
}

func TestForwardRefusesHostileInput(t *testing.T) {
	t.Parallel()
	const maxBody = 1 << 10
	type hostileRequest struct {
		name       string
		method     string
		path       string
		query      string
		body       func() io.Reader // nil: no body
		length     int64            // Content-Length; -1 unknown
		wantStatus int
		wantCode   string
	}
	var cases []hostileRequest
	for _, h := range hostileInputs {
		cases = append(cases, hostileRequest{name: h.name, method: "GET", path: h.path, query: h.query,
			wantStatus: http.StatusBadRequest, wantCode: proxy.CodeInvalidPath})
	}
	big := strings.Repeat("x", maxBody+1)
	cases = append(cases,
		hostileRequest{name: "Content-Length over MaxBody", method: "POST", path: "/space/40001/member/",
			body: func() io.Reader { return strings.NewReader(big) }, length: int64(len(big)),
			wantStatus: http.StatusRequestEntityTooLarge, wantCode: proxy.CodeBodyTooLarge},
		hostileRequest{name: "chunked body over MaxBody", method: "POST", path: "/space/40001/member/",
			body: func() io.Reader { return io.MultiReader(strings.NewReader(big)) }, length: -1,
			wantStatus: http.StatusRequestEntityTooLarge, wantCode: proxy.CodeBodyTooLarge},
		hostileRequest{name: "caller's own body limit", method: "POST", path: "/space/40001/member/",
			body: func() io.Reader {
				return http.MaxBytesReader(httptest.NewRecorder(), io.NopCloser(strings.NewReader(big[:100])), 10)
			}, length: -1,
			wantStatus: http.StatusRequestEntityTooLarge, wantCode: proxy.CodeBodyTooLarge},
		hostileRequest{name: "body ends early", method: "POST", path: "/space/40001/member/",
			body: func() io.Reader { return &failingReader{} }, length: 100,
			wantStatus: http.StatusBadRequest, wantCode: proxy.CodeInvalidBody},
		hostileRequest{name: "TRACE", method: "TRACE", path: "/org/",
			wantStatus: http.StatusMethodNotAllowed, wantCode: proxy.CodeMethodNotAllowed},
		hostileRequest{name: "CONNECT", method: "CONNECT", path: "/org/",
			wantStatus: http.StatusMethodNotAllowed, wantCode: proxy.CodeMethodNotAllowed},
	)

	env := newSimEnv(t)
	f := env.forwarder(t, proxy.Options{MaxBody: maxBody})
	src := staticTokens(env.token(t, "admin@demo.example"))
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(tc.method, "/", nil)
			r.URL.RawQuery = tc.query
			if tc.body != nil {
				r.Body = io.NopCloser(tc.body())
				r.ContentLength = tc.length
			}
			w := newStrictWriter()
			res, err := f.Forward(w, r, tc.path, src)
			pe, ok := errors.AsType[*proxy.Error](err)
			if !ok {
				t.Fatalf("Forward error %v (%T), want *proxy.Error", err, err)
			}
			if pe.Status != tc.wantStatus || pe.Code != tc.wantCode {
				t.Errorf("got %d %s, want %d %s", pe.Status, pe.Code, tc.wantStatus, tc.wantCode)
			}
			if res != (proxy.Result{}) || w.written {
				t.Errorf("Result %+v, written %v: want nothing done", res, w.written)
			}
		})
	}
	if n := env.upstreamCalls(); n != 0 {
		t.Errorf("Podio was called %d times, want 0 (calls: %v)", n, env.sim.Calls())
	}
}

// ---- request bodies -------------------------------------------------------------------------

func TestForwardRequestBodies(t *testing.T) {
	t.Parallel()
	const replay = 1 << 10
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
	base, _ := url.Parse(up.URL + "/")
	f, err := proxy.New(proxy.Options{Base: base, MaxBody: 64 << 10, ReplayBuffer: replay})
	if err != nil {
		t.Fatal(err)
	}
	small := `{"role":"regular","users":[1]}`
	large := strings.Repeat("y", 8<<10)
	tests := []struct {
		name        string
		method      string
		body        string
		unknownLen  bool
		noBody      bool
		wantLength  int64
		wantChunked bool
	}{
		{name: "no body", method: "GET", noBody: true, wantLength: 0},
		{name: "empty POST", method: "POST", noBody: true, wantLength: 0},
		{name: "small, known length: buffered", method: "POST", body: small, wantLength: int64(len(small))},
		{name: "small, unknown length: buffered, sent with a length", method: "POST", body: small, unknownLen: true, wantLength: int64(len(small))},
		{name: "exactly the replay buffer, unknown length", method: "PUT", body: large[:replay], unknownLen: true, wantLength: replay},
		{name: "large, known length: streamed", method: "PUT", body: large, wantLength: int64(len(large))},
		{name: "large, unknown length: streamed chunked", method: "PUT", body: large, unknownLen: true, wantLength: -1, wantChunked: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(tc.method, "/space/1/member/", nil)
			if !tc.noBody {
				r.Body = io.NopCloser(strings.NewReader(tc.body))
				r.ContentLength = int64(len(tc.body))
				if tc.unknownLen {
					r.Body = io.NopCloser(io.MultiReader(strings.NewReader(tc.body)))
					r.ContentLength = -1
				}
			}
			before := len(up.requests())
			res, err := f.Forward(httptest.NewRecorder(), r, "/space/1/member/", staticTokens("t"))
			if err != nil {
				t.Fatalf("Forward: %v", err)
			}
			if res.Status != http.StatusNoContent {
				t.Errorf("status %d, want 204", res.Status)
			}
			seen := up.requests()[before:]
			if len(seen) != 1 {
				t.Fatalf("upstream saw %d requests, want 1", len(seen))
			}
			want := exchange{Method: tc.method, RequestURI: "/space/1/member/", Body: []byte(tc.body),
				ContentLength: tc.wantLength, Chunked: tc.wantChunked}
			if diff := cmp.Diff(want, seen[0], cmpIgnoreHeader, cmp.Comparer(func(a, b []byte) bool { return bytes.Equal(a, b) })); diff != "" {
				t.Errorf("request Podio received (-want +got):\n%s", diff)
			}
		})
	}
}

func TestForwardStreamedBodyOverLimitAborts(t *testing.T) {
	t.Parallel()
	const maxBody = 64 << 10
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusOK) })
	base, _ := url.Parse(up.URL + "/")
	f, err := proxy.New(proxy.Options{Base: base, MaxBody: maxBody, ReplayBuffer: 1 << 10})
	if err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest(http.MethodPut, "/", nil)
	r.Body = io.NopCloser(io.MultiReader(strings.NewReader(strings.Repeat("z", 4*maxBody))))
	r.ContentLength = -1
	w := newStrictWriter()
	res, err := f.Forward(w, r, "/space/1/member/", staticTokens("t"))
	pe, ok := errors.AsType[*proxy.Error](err)
	if !ok || pe.Status != http.StatusRequestEntityTooLarge || pe.Code != proxy.CodeBodyTooLarge {
		t.Fatalf("Forward error %v, want 413 body_too_large", err)
	}
	if res.Written || w.written {
		t.Error("something was written to the caller")
	}
	for _, ex := range up.requests() {
		if ex.BodyErr == nil {
			t.Errorf("Podio received a complete body of %d bytes", len(ex.Body))
		}
	}
}

// ---- token refresh --------------------------------------------------------------------------

func TestForwardRefreshesExpiredTokenOnce(t *testing.T) {
	t.Parallel()
	const replay = 256
	padded := func(n int) string {
		return `{"role":"regular","users":[],"message":"` + strings.Repeat("p", n) + `"}`
	}
	tests := []struct {
		name         string
		method, path string
		body         string
		unknownLen   bool
		stale        func(t *testing.T, env *simEnv) string // the token Token() returns
		refresh      func(env *simEnv, t *testing.T) func(stale *podio.Token) (*podio.Token, error)
		wantStatus   int
		wantUpstream int
		wantRefresh  int
		wantErr      error
		check        func(t *testing.T, body []byte, h http.Header)
	}{
		{
			name: "GET retried with a fresh token", method: "GET", path: "/org/",
			stale: expiredToken, refresh: freshToken,
			wantStatus: 200, wantUpstream: 2, wantRefresh: 1,
			check: func(t *testing.T, body []byte, _ http.Header) { wantLen(t, body, 2) },
		},
		{
			name: "buffered POST body replayed", method: "POST", path: "/space/40001/member/", body: padded(10),
			stale: expiredToken, refresh: freshToken,
			wantStatus: 200, wantUpstream: 2, wantRefresh: 1,
			check: func(t *testing.T, body []byte, _ http.Header) { wantBody(t, body, "{}\n") },
		},
		{
			name: "buffered body of unknown length replayed", method: "POST", path: "/space/40001/member/", body: padded(10),
			unknownLen: true, stale: expiredToken, refresh: freshToken,
			wantStatus: 200, wantUpstream: 2, wantRefresh: 1,
		},
		{
			name: "invalid token refreshed too", method: "GET", path: "/org/3001",
			stale:   func(*testing.T, *simEnv) string { return "never-valid" },
			refresh: freshToken, wantStatus: 200, wantUpstream: 2, wantRefresh: 1,
		},
		{
			name: "streamed body is not replayed: 401 passed through", method: "POST", path: "/space/40001/member/",
			body: padded(4 * replay), stale: expiredToken, refresh: freshToken,
			wantStatus: 401, wantUpstream: 1, wantRefresh: 0,
			check: func(t *testing.T, body []byte, h http.Header) {
				wantField(t, body, "error_description", "expired_token")
				if got := h.Get("Www-Authenticate"); !strings.Contains(got, "expired_token") {
					t.Errorf("WWW-Authenticate %q not passed through", got)
				}
			},
		},
		{
			name: "streamed body of unknown length is not replayed", method: "POST", path: "/space/40001/member/",
			body: padded(4 * replay), unknownLen: true, stale: expiredToken, refresh: freshToken,
			wantStatus: 401, wantUpstream: 1, wantRefresh: 0,
		},
		{
			name: "second 401 passed through", method: "GET", path: "/org/",
			stale: expiredToken,
			refresh: func(_ *simEnv, _ *testing.T) func(*podio.Token) (*podio.Token, error) {
				return func(stale *podio.Token) (*podio.Token, error) { return stale, nil } // someone else's stale copy
			},
			wantStatus: 401, wantUpstream: 2, wantRefresh: 1,
			check: func(t *testing.T, body []byte, _ http.Header) {
				wantField(t, body, "error_description", "expired_token")
			},
		},
		{
			name: "refresh error returned wrapped", method: "GET", path: "/org/",
			stale: expiredToken,
			refresh: func(_ *simEnv, _ *testing.T) func(*podio.Token) (*podio.Token, error) {
				return func(*podio.Token) (*podio.Token, error) {
					return nil, fmt.Errorf("refresh token refused: %w", unified.ErrNeedsReauth)
				}
			},
			wantUpstream: 1, wantRefresh: 1, wantErr: unified.ErrNeedsReauth,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			env := newSimEnv(t)
			f := env.forwarder(t, proxy.Options{ReplayBuffer: replay})
			stale := tc.stale(t, env)
			src := staticTokens(stale)
			src.refresh = tc.refresh(env, t)

			r := httptest.NewRequest(tc.method, tc.path, nil)
			if tc.body != "" {
				r.Body = io.NopCloser(strings.NewReader(tc.body))
				r.ContentLength = int64(len(tc.body))
				if tc.unknownLen {
					r.Body = io.NopCloser(io.MultiReader(strings.NewReader(tc.body)))
					r.ContentLength = -1
				}
				r.Header.Set("Content-Type", "application/json")
			}
			w := httptest.NewRecorder()
			res, err := f.Forward(w, r, r.URL.EscapedPath(), src)

			if got := src.refreshes(); len(got) != tc.wantRefresh {
				t.Errorf("Refresh called %d times, want %d", len(got), tc.wantRefresh)
			} else if len(got) == 1 && got[0] != stale {
				t.Error("Refresh was not given the stale token")
			}
			if n := env.upstreamCalls(); n != tc.wantUpstream || res.Upstream != tc.wantUpstream {
				t.Errorf("Podio called %d times, Result.Upstream %d, want %d", n, res.Upstream, tc.wantUpstream)
			}
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("Forward error %v, want %v", err, tc.wantErr)
				}
				if res.Written || w.Body.Len() > 0 {
					t.Error("something was written to the caller")
				}
				if strings.Contains(err.Error(), stale) {
					t.Error("the error text contains the access token")
				}
				return
			}
			if err != nil {
				t.Fatalf("Forward: %v", err)
			}
			if res.Status != tc.wantStatus || w.Code != tc.wantStatus {
				t.Fatalf("Result.Status %d, written %d, want %d; body %s", res.Status, w.Code, tc.wantStatus, w.Body)
			}
			if strings.Contains(w.Body.String(), stale) {
				t.Error("the answer contains the access token")
			}
			if tc.check != nil {
				tc.check(t, w.Body.Bytes(), w.Result().Header)
			}
		})
	}
}

// expiredToken issues a token and moves the simulator's clock past its 8 hour lifetime.
func expiredToken(t *testing.T, env *simEnv) string {
	tok := env.token(t, "admin@demo.example")
	env.sim.Advance(9 * time.Hour)
	return tok
}

// freshToken refreshes by issuing a new token in the simulator.
func freshToken(env *simEnv, t *testing.T) func(*podio.Token) (*podio.Token, error) {
	return func(*podio.Token) (*podio.Token, error) {
		tok, err := env.sim.IssueToken("demo-client", "admin@demo.example")
		if err != nil {
			return nil, err
		}
		return &podio.Token{AccessToken: tok.AccessToken}, nil
	}
}

func TestForwardPassesOtherUnauthorizedThrough(t *testing.T) {
	t.Parallel()
	big := bytes.Repeat([]byte("not json "), 10<<10) // longer than the 64 KiB looked at
	tests := []struct {
		name string
		body []byte
	}{
		{name: "401 without expired_token", body: []byte(`{"error":"unauthorized","error_description":"The token has been revoked"}`)},
		{name: "401 with a large non-JSON body", body: big},
		{name: "401 with an empty body", body: nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(http.StatusUnauthorized)
				_, _ = w.Write(tc.body)
			})
			base, _ := url.Parse(up.URL + "/")
			f, err := proxy.New(proxy.Options{Base: base})
			if err != nil {
				t.Fatal(err)
			}
			src := staticTokens("t")
			src.refresh = func(*podio.Token) (*podio.Token, error) { return &podio.Token{AccessToken: "t2"}, nil }
			w := httptest.NewRecorder()
			res, err := f.Forward(w, httptest.NewRequest("GET", "/org/", nil), "/org/", src)
			if err != nil {
				t.Fatalf("Forward: %v", err)
			}
			if w.Code != http.StatusUnauthorized || !bytes.Equal(w.Body.Bytes(), tc.body) {
				t.Errorf("got %d with %d bytes, want 401 with Podio's %d bytes", w.Code, w.Body.Len(), len(tc.body))
			}
			if res.Upstream != 1 || len(up.requests()) != 1 || len(src.refreshes()) != 0 {
				t.Errorf("Upstream %d, Podio saw %d, refreshes %d; want 1, 1, 0", res.Upstream, len(up.requests()), len(src.refreshes()))
			}
		})
	}
}

func TestForwardTokenSourceErrorReturnedWrapped(t *testing.T) {
	t.Parallel()
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {})
	base, _ := url.Parse(up.URL + "/")
	f, err := proxy.New(proxy.Options{Base: base})
	if err != nil {
		t.Fatal(err)
	}
	src := &tokens{tokenErr: fmt.Errorf("account 7: %w", unified.ErrNeedsReauth)}
	w := newStrictWriter()
	res, err := f.Forward(w, httptest.NewRequest("GET", "/org/", nil), "/org/", src)
	if !errors.Is(err, unified.ErrNeedsReauth) {
		t.Fatalf("Forward error %v, want ErrNeedsReauth", err)
	}
	if _, ok := errors.AsType[*proxy.Error](err); ok {
		t.Error("a token-source error came back as *proxy.Error")
	}
	if res != (proxy.Result{}) || w.written || len(up.requests()) != 0 {
		t.Errorf("Result %+v, written %v, upstream %d: want nothing done", res, w.written, len(up.requests()))
	}
}

// ---- redirects, streaming, failures ----------------------------------------------------------

func TestForwardDoesNotFollowRedirects(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		client *http.Client
	}{
		{name: "default client"},
		{name: "given client that follows redirects", client: &http.Client{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Location", "http://elsewhere.invalid/steal")
				w.WriteHeader(http.StatusFound)
			})
			base, _ := url.Parse(up.URL + "/")
			f, err := proxy.New(proxy.Options{Base: base, Client: tc.client})
			if err != nil {
				t.Fatal(err)
			}
			w := httptest.NewRecorder()
			res, err := f.Forward(w, httptest.NewRequest("GET", "/org/", nil), "/org/", staticTokens("t"))
			if err != nil {
				t.Fatalf("Forward: %v", err)
			}
			if w.Code != http.StatusFound || w.Header().Get("Location") != "http://elsewhere.invalid/steal" {
				t.Errorf("got %d Location %q, want Podio's 302", w.Code, w.Header().Get("Location"))
			}
			if res.Upstream != 1 || len(up.requests()) != 1 {
				t.Errorf("Upstream %d, Podio saw %d requests, want 1", res.Upstream, len(up.requests()))
			}
			if tc.client != nil && tc.client.CheckRedirect != nil {
				t.Error("New changed the caller's client")
			}
		})
	}
}

func TestForwardStreamsResponses(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	var gz bytes.Buffer
	gz.WriteString("\x1f\x8b\x08\x00fake-gzip-bytes")
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/known":
			w.Header().Set("Content-Length", "5")
			_, _ = io.WriteString(w, "hello")
		case "/stream":
			_, _ = io.WriteString(w, "first|")
			http.NewResponseController(w).Flush()
			select {
			case <-release:
			case <-r.Context().Done():
				return
			}
			_, _ = io.WriteString(w, "second")
		case "/no-type":
			w.Header()["Content-Type"] = nil
			_, _ = io.WriteString(w, "<html><body>sniff me</body></html>")
		case "/gzip":
			w.Header().Set("Content-Encoding", "gzip")
			w.Header().Set("Content-Length", strconv.Itoa(gz.Len()))
			_, _ = w.Write(gz.Bytes())
		}
	})
	base, _ := url.Parse(up.URL + "/")
	f, err := proxy.New(proxy.Options{Base: base})
	if err != nil {
		t.Fatal(err)
	}
	fe := newFrontend(t, f, func(*http.Request) podio.TokenSource { return staticTokens("t") })

	t.Run("Content-Length kept", func(t *testing.T) {
		resp, body := do(t, rawClient(), "GET", fe.URL+"/known", nil, nil)
		if resp.ContentLength != 5 || string(body) != "hello" || len(resp.TransferEncoding) != 0 {
			t.Errorf("Content-Length %d, TE %v, body %q; want 5, none, hello", resp.ContentLength, resp.TransferEncoding, body)
		}
	})
	t.Run("no Content-Type added", func(t *testing.T) {
		resp, _ := do(t, rawClient(), "GET", fe.URL+"/no-type", nil, nil)
		if got, ok := resp.Header["Content-Type"]; ok {
			t.Errorf("Content-Type %q added; Podio sent none", got)
		}
	})
	t.Run("encoding passed through, not decoded", func(t *testing.T) {
		resp, body := do(t, rawClient(), "GET", fe.URL+"/gzip", nil, nil)
		if resp.Header.Get("Content-Encoding") != "gzip" || !bytes.Equal(body, gz.Bytes()) {
			t.Errorf("Content-Encoding %q, body %q; want Podio's gzip bytes", resp.Header.Get("Content-Encoding"), body)
		}
	})
	t.Run("unknown length streamed as it comes", func(t *testing.T) {
		// The second half is only sent once the first half reached the client, so without a
		// flush this would wait forever; the generous deadline turns that into a failure.
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, "GET", fe.URL+"/stream", nil)
		resp, err := rawClient().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		first := make([]byte, len("first|"))
		if _, err := io.ReadFull(resp.Body, first); err != nil {
			t.Fatalf("the first part did not arrive on its own: %v", err)
		}
		close(release)
		rest, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		if got := string(first) + string(rest); got != "first|second" {
			t.Errorf("body %q", got)
		}
		if resp.ContentLength != -1 {
			t.Errorf("Content-Length %d, want unknown", resp.ContentLength)
		}
	})
}

func TestForwardUpstreamFailures(t *testing.T) {
	t.Parallel()
	const secret = "podio-secret-access-token"
	closed := httptest.NewServer(http.NotFoundHandler())
	closedURL := closed.URL
	closed.Close()

	env := newSimEnv(t)
	simToken := env.token(t, "admin@demo.example")
	hangUp := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		conn, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			_ = conn.Close()
		}
	})
	cutShort := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		conn, buf, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		_, _ = buf.WriteString("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n[1,2,3,4,5")
		_ = buf.Flush()
		_ = conn.Close()
	})
	switching := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		conn, buf, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		_, _ = buf.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n\r\n")
		_ = buf.Flush()
		_ = conn.Close()
	})

	tests := []struct {
		name        string
		base        string
		client      *http.Client
		setup       func(t *testing.T)
		ctx         func(t *testing.T) context.Context
		token       string
		wantStatus  int
		wantCode    string
		wantIs      error
		wantWritten bool
	}{
		{name: "connection refused", base: closedURL + "/", token: secret,
			wantStatus: http.StatusBadGateway, wantCode: proxy.CodeUpstreamUnavailable},
		{name: "connection closed without an answer", base: hangUp.URL + "/", token: secret,
			wantStatus: http.StatusBadGateway, wantCode: proxy.CodeUpstreamUnavailable},
		{name: "request deadline", base: env.base.String(), token: simToken,
			setup: func(t *testing.T) {
				if err := env.sim.AddFault(podiosim.Fault{Route: podiosim.RouteOrgs, Timeout: true, Times: 1}); err != nil {
					t.Fatal(err)
				}
			},
			ctx: func(t *testing.T) context.Context {
				ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
				t.Cleanup(cancel)
				return ctx
			},
			wantStatus: http.StatusGatewayTimeout, wantCode: proxy.CodeUpstreamTimeout, wantIs: context.DeadlineExceeded},
		{name: "client timeout", base: env.base.String(), token: simToken, client: &http.Client{Timeout: 100 * time.Millisecond},
			setup: func(t *testing.T) {
				if err := env.sim.AddFault(podiosim.Fault{Route: podiosim.RouteOrgs, LatencyMS: 30_000, Times: 1}); err != nil {
					t.Fatal(err)
				}
			},
			wantStatus: http.StatusGatewayTimeout, wantCode: proxy.CodeUpstreamTimeout},
		{name: "caller gone", base: env.base.String(), token: simToken,
			ctx: func(t *testing.T) context.Context {
				ctx, cancel := context.WithCancel(t.Context())
				cancel()
				return ctx
			},
			wantStatus: http.StatusBadGateway, wantCode: proxy.CodeUpstreamUnavailable, wantIs: context.Canceled},
		{name: "informational answer", base: switching.URL + "/", token: secret,
			wantStatus: http.StatusBadGateway, wantCode: proxy.CodeUpstreamUnavailable},
		{name: "Podio's body cut short", base: cutShort.URL + "/", token: secret, wantWritten: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.setup != nil {
				tc.setup(t)
			}
			base, _ := url.Parse(tc.base)
			f, err := proxy.New(proxy.Options{Base: base, Client: tc.client})
			if err != nil {
				t.Fatal(err)
			}
			r := httptest.NewRequest("GET", "/org/", nil)
			if tc.ctx != nil {
				r = r.WithContext(tc.ctx(t))
			}
			w := httptest.NewRecorder()
			start := time.Now()
			res, err := f.Forward(w, r, "/org/", staticTokens(tc.token))
			if d := time.Since(start); d > 20*time.Second {
				t.Errorf("Forward took %s", d)
			}
			if err == nil {
				t.Fatal("Forward succeeded, want an error")
			}
			if strings.Contains(err.Error(), tc.token) {
				t.Errorf("error %q contains the access token", err)
			}
			if tc.wantWritten {
				if !res.Written || res.Status != 200 || res.Bytes != int64(len("[1,2,3,4,5")) {
					t.Errorf("Result %+v, want the 200 and the 10 bytes that arrived", res)
				}
				return
			}
			pe, ok := errors.AsType[*proxy.Error](err)
			if !ok || pe.Status != tc.wantStatus || pe.Code != tc.wantCode {
				t.Fatalf("Forward error %v, want %d %s", err, tc.wantStatus, tc.wantCode)
			}
			if tc.wantIs != nil && !errors.Is(err, tc.wantIs) {
				t.Errorf("Forward error %v does not match %v", err, tc.wantIs)
			}
			if res.Written || w.Body.Len() > 0 || res.Upstream != 1 {
				t.Errorf("Result %+v: want nothing written and one upstream call", res)
			}
		})
	}
}
