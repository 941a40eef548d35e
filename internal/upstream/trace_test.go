package upstream_test

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/dirgate/dirgate/internal/upstream"
)

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// TestTracedRedactsQuery: a Podio call's span names the operation, keeps the query's names and
// none of its values or the URL's user info, and the call itself goes out unchanged with the trace.
func TestTracedRedactsQuery(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	const raw = "https://user:pw@api.podio.com/org/12/member/?oauth_token=s3cret-token&email=alice%40example.com&limit=100"
	var sent *http.Request
	rt := upstream.Traced(roundTripFunc(func(r *http.Request) (*http.Response, error) {
		sent = r
		return &http.Response{StatusCode: 200, Body: io.NopCloser(strings.NewReader("[]")), Header: http.Header{}, Request: r}, nil
	}), tp, propagation.TraceContext{})
	req, _ := http.NewRequestWithContext(context.Background(), "GET", raw, nil)
	res, err := rt.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if sent.URL.String() != raw || sent.Header.Get("traceparent") == "" {
		t.Errorf("Podio got %s (traceparent %q), want the URL unchanged and a traceparent", sent.URL, sent.Header.Get("traceparent"))
	}
	spans := rec.Ended()
	if len(spans) != 1 {
		t.Fatalf("%d spans, want 1", len(spans))
	}
	if got := spans[0].Name(); got != "podio GET /org/{id}/member/" {
		t.Errorf("span name %q", got)
	}
	var full string
	for _, a := range spans[0].Attributes() {
		if strings.Contains(a.Value.Emit(), "s3cret") || strings.Contains(a.Value.Emit(), "alice") || strings.Contains(a.Value.Emit(), "pw@") {
			t.Errorf("span attribute %s = %q holds a query value or user info", a.Key, a.Value.Emit())
		}
		if a.Key == "url.full" {
			full = a.Value.AsString()
		}
	}
	u, err := url.Parse(full)
	if err != nil || u.Path != "/org/12/member/" || u.Query().Get("oauth_token") != "REDACTED" || u.Query().Get("email") != "REDACTED" || u.Query().Get("limit") != "REDACTED" {
		t.Errorf("url.full = %q, want the path with every query value REDACTED", full)
	}
}
