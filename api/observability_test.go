package api_test

import (
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/dirgate/dirgate/adapters/podio/podiosim"
)

// metricValue returns the value of the sample whose line starts with series ("name{labels}"),
// or -1 when absent.
func metricValue(t *testing.T, body, series string) float64 {
	t.Helper()
	for line := range strings.Lines(body) {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(line), series+" "); ok {
			var v float64
			if _, err := fmt.Sscan(rest, &v); err != nil {
				t.Fatalf("sample %q: %v", line, err)
			}
			return v
		}
	}
	return -1
}

func TestMetricsAfterTraffic(t *testing.T) {
	t.Parallel()
	h, tok, q := directorySetup(t, harnessOptions{})
	acct := strings.TrimPrefix(q, "integrated_account_id=")
	h.mustGet(dir+"/users?"+q, tok) // MISS: Podio is called
	h.mustGet(dir+"/users?"+q, tok) // HIT
	// A path that matches no route and carries something secret-looking.
	if r := h.do("GET", "/no-such-route/sekrit-path-value", tok, nil); r.status != http.StatusNotFound {
		t.Fatalf("unknown route: %d", r.status)
	}
	if r := h.do("GET", "/integrated-accounts/"+acct+"/health", tok, nil); r.status != http.StatusOK {
		t.Fatalf("health: %d %s", r.status, r.body)
	}

	r := h.do("GET", "/metrics", "", nil)
	if r.status != http.StatusOK || !strings.HasPrefix(r.header.Get("Content-Type"), "text/plain") {
		t.Fatalf("GET /metrics: %d %s", r.status, r.header.Get("Content-Type"))
	}
	body := string(r.body)
	for _, series := range []string{
		`dirgate_http_request_duration_seconds_count{method="GET",route="/unified/user-directory/users",status="200"}`,
		`dirgate_http_request_duration_seconds_count{method="GET",route="unmatched",status="404"}`,
		`dirgate_cache_lookups_total{state="HIT"}`,
		`dirgate_cache_lookups_total{state="MISS"}`,
		`dirgate_upstream_requests_total{operation="GET /org/{id}/member/",status="200"}`,
		`dirgate_upstream_requests_total{operation="POST /oauth/token",status="200"}`,
	} {
		if v := metricValue(t, body, series); v < 1 {
			t.Errorf("%s = %v, want >= 1", series, v)
		}
	}
	for _, leak := range []string{acct, "sekrit-path-value", "acme", "/org/3001"} {
		if strings.Contains(body, leak) {
			t.Errorf("/metrics holds %q: labels must be templates, never ids, tenants or raw paths", leak)
		}
	}
	// Podio operation labels never carry numeric ids.
	if m := regexp.MustCompile(`operation="[^"]*/[0-9]+`).FindString(body); m != "" {
		t.Errorf("an operation label carries an id: %s", m)
	}
}

func TestMetricsToken(t *testing.T) {
	t.Parallel()
	const secret = "metrics-token-0123456789"
	h := newHarness(t, harnessOptions{metricsToken: secret})
	for _, tc := range []struct {
		name, auth string
		want       int
	}{
		{"none", "", http.StatusUnauthorized},
		{"wrong", "Bearer not-the-token", http.StatusUnauthorized},
		{"wrong scheme", "Basic " + secret, http.StatusUnauthorized},
		{"right", "Bearer " + secret, http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest("GET", h.url+"/metrics", nil)
			if tc.auth != "" {
				req.Header.Set("Authorization", tc.auth)
			}
			res, err := h.browser().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			if res.StatusCode != tc.want {
				t.Errorf("status %d, want %d", res.StatusCode, tc.want)
			}
		})
	}
	if strings.Contains(h.logs.String(), secret) {
		t.Error("the metrics token reached the logs")
	}
}

// TestRequestLogsCarryAccountNotSecrets: the request line names the account (from the path or
// the integrated_account_id query); no token or password reaches any log line.
func TestRequestLogsCarryAccountNotSecrets(t *testing.T) {
	t.Parallel()
	h, tok, q := directorySetup(t, harnessOptions{})
	acct := strings.TrimPrefix(q, "integrated_account_id=")
	h.mustGet(dir+"/users?"+q, tok)
	h.do("GET", "/integrated-accounts/"+acct+"/health", tok, nil)
	h.do("POST", "/integrated-accounts", tok, map[string]any{"grant_type": "password", "username": "admin@demo.example", "password": "wrong-password-987"})
	h.sim.Advance(9 * time.Hour)
	h.clock.Advance(9 * time.Hour)
	if r := h.do("POST", "/integrated-accounts/"+acct+"/check", tok, nil); r.status != http.StatusOK {
		t.Fatalf("check: %d %s", r.status, r.body)
	}
	_, c, err := h.replicas[0].store.LoadCredentials(t.Context(), "acme", acct)
	if err != nil {
		t.Fatal(err)
	}
	logs := h.logs.String()
	for _, want := range []string{
		`"route":"/unified/user-directory/users","status":200`,
		`"route":"/integrated-accounts/:id/health","status":200`,
	} {
		if !regexp.MustCompile(regexp.QuoteMeta(want) + `.*"tenant":"acme","account":"` + acct + `"`).MatchString(logs) {
			t.Errorf("no request line with %s and the account", want)
		}
	}
	for _, s := range []string{tok, c.AccessToken, c.RefreshToken, "wrong-password-987", "demo-secret", testJWTSecret} {
		if s == "" {
			t.Fatal("a secret to look for is empty; the test would prove nothing")
		}
		if strings.Contains(logs, s) {
			t.Errorf("the logs hold a secret (%.6s...)", s)
		}
	}
}

// TestTraceSpansShareIncomingTrace: a unified read sent with a traceparent makes a handler span
// in that trace, with Redis and Podio client spans below it, and Podio receives the trace.
func TestTraceSpansShareIncomingTrace(t *testing.T) {
	t.Parallel()
	rec := tracetest.NewSpanRecorder()
	h, tok, q := directorySetup(t, harnessOptions{spans: rec})
	const traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	r := h.get(h.url, dir+"/users?"+q, tok, "traceparent", "00-"+traceID+"-00f067aa0ba902b7-01")
	if r.status != http.StatusOK {
		t.Fatalf("users: %d %s", r.status, r.body)
	}
	var handler trace.SpanContext
	var redisSpans, podioSpans int
	spans := rec.Ended()
	for _, s := range spans {
		if s.SpanKind() == trace.SpanKindServer && s.Name() == "GET /unified/user-directory/users" {
			handler = s.SpanContext()
			if s.Parent().SpanID().String() != "00f067aa0ba902b7" {
				t.Errorf("handler span's parent = %s, want the caller's span", s.Parent().SpanID())
			}
		}
	}
	if handler.TraceID().String() != traceID {
		t.Fatalf("handler span trace = %s, want the incoming %s (%d spans)", handler.TraceID(), traceID, len(spans))
	}
	byID := map[trace.SpanID]tracetest.SpanStub{}
	for _, s := range tracetest.SpanStubsFromReadOnlySpans(spans) {
		byID[s.SpanContext.SpanID()] = s
	}
	// under reports whether s descends from the handler span.
	under := func(s tracetest.SpanStub) bool {
		for p := s.Parent; p.IsValid(); {
			if p.SpanID() == handler.SpanID() {
				return true
			}
			ps, ok := byID[p.SpanID()]
			if !ok {
				return false
			}
			p = ps.Parent
		}
		return false
	}
	for _, s := range byID {
		if s.SpanContext.TraceID().String() != traceID || s.SpanKind != trace.SpanKindClient || !under(s) {
			continue
		}
		for _, a := range s.Attributes {
			switch {
			case a.Key == "db.system" || a.Key == "db.system.name":
				redisSpans++
			case a.Key == "http.request.method" || a.Key == "http.method":
				podioSpans++
			}
		}
	}
	if redisSpans == 0 || podioSpans == 0 {
		t.Errorf("under the handler span: %d Redis spans and %d Podio spans, want both", redisSpans, podioSpans)
	}
	if got := h.podioTraceparent.Load(); got == nil || !strings.Contains(*got, traceID) {
		t.Errorf("Podio received traceparent %v, want one in trace %s", got, traceID)
	}
}

func TestAccountHealth(t *testing.T) {
	t.Parallel()
	h, tok, q := directorySetup(t, harnessOptions{})
	acct := strings.TrimPrefix(q, "integrated_account_id=")
	type health struct {
		Status string `json:"status"`
		Token  struct {
			ExpiresAt           *time.Time `json:"expires_at"`
			LastRefreshedAt     *time.Time `json:"last_refreshed_at"`
			LastRefreshOutcome  *string    `json:"last_refresh_outcome"`
			LastRefreshError    *string    `json:"last_refresh_error"`
			ConsecutiveFailures int        `json:"consecutive_failures"`
		} `json:"token"`
		Budget *struct {
			Classes map[string]struct{ Limit, Remaining int } `json:"classes"`
		} `json:"budget"`
		Events struct{ Enabled bool } `json:"events"`
	}
	read := func() health {
		t.Helper()
		r := h.do("GET", "/integrated-accounts/"+acct+"/health", tok, nil)
		if r.status != http.StatusOK {
			t.Fatalf("health: %d %s", r.status, r.body)
		}
		var out health
		r.json(t, &out)
		return out
	}
	got := read()
	if got.Status != "active" || got.Token.ExpiresAt == nil || got.Token.LastRefreshOutcome != nil || got.Token.ConsecutiveFailures != 0 {
		t.Errorf("fresh account: %+v", got)
	}
	if got.Budget == nil || got.Budget.Classes["general"].Limit != 1000 {
		t.Errorf("fresh account budget: %+v", got.Budget)
	}

	// The token expires; Podio's token endpoint fails twice, then works.
	if err := h.sim.AddFault(podiosim.Fault{Route: podiosim.RouteToken, Status: 503, Times: 2}); err != nil {
		t.Fatal(err)
	}
	h.sim.Advance(9 * time.Hour)
	h.clock.Advance(9 * time.Hour)
	for range 2 {
		if r := h.do("POST", "/integrated-accounts/"+acct+"/check", tok, nil); r.status == http.StatusOK {
			t.Fatal("check succeeded while Podio's token endpoint fails")
		}
	}
	got = read()
	if got.Token.LastRefreshOutcome == nil || *got.Token.LastRefreshOutcome != "failure" || got.Token.ConsecutiveFailures != 2 ||
		got.Token.LastRefreshError == nil || *got.Token.LastRefreshError != "podio_unavailable" {
		t.Errorf("after two failed refreshes: %+v (error %v)", got.Token, got.Token.LastRefreshError)
	}
	if r := h.do("POST", "/integrated-accounts/"+acct+"/check", tok, nil); r.status != http.StatusOK {
		t.Fatalf("check after the fault: %d %s", r.status, r.body)
	}
	got = read()
	if got.Token.LastRefreshOutcome == nil || *got.Token.LastRefreshOutcome != "success" || got.Token.ConsecutiveFailures != 0 ||
		got.Token.LastRefreshError != nil || got.Token.LastRefreshedAt == nil {
		t.Errorf("after a successful refresh: %+v", got.Token)
	}
	mx := h.do("GET", "/metrics", "", nil)
	if v := metricValue(t, string(mx.body), `dirgate_token_refreshes_total{outcome="failure"}`); v != 2 {
		t.Errorf("refresh failures counted: %v, want 2", v)
	}

	// Another tenant sees nothing.
	if r := h.do("GET", "/integrated-accounts/"+acct+"/health", h.token("other"), nil); r.status != http.StatusNotFound {
		t.Errorf("other tenant: %d", r.status)
	}
}
