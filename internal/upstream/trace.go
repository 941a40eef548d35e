package upstream

import (
	"net/http"
	"net/url"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// Traced wraps rt so that each Podio call is a client span named "podio <Operation>" and carries
// the trace to Podio (prop). The span's URL keeps the query's names but not their values: a query
// may hold a token (Podio still accepts oauth_token=), an e-mail or a search, and spans leave the
// gateway for whatever collector is configured.
func Traced(rt http.RoundTripper, tp trace.TracerProvider, prop propagation.TextMapPropagator) http.RoundTripper {
	return otelhttp.NewTransport(redactSpanURL{rt}, otelhttp.WithTracerProvider(tp), otelhttp.WithPropagators(prop),
		otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string {
			return "podio " + Operation(r.Method, r.URL.EscapedPath())
		}))
}

// redactSpanURL runs inside otelhttp's transport, where the request's context holds the call's
// span, and replaces the URL otelhttp recorded with redactedURL's.
type redactSpanURL struct{ next http.RoundTripper }

func (t redactSpanURL) RoundTrip(r *http.Request) (*http.Response, error) {
	if span := trace.SpanFromContext(r.Context()); span.IsRecording() {
		// The same key otelhttp set (stable HTTP semantic conventions); the last value wins.
		span.SetAttributes(attribute.String("url.full", redactedURL(r.URL)))
	}
	return t.next.RoundTrip(r)
}

// redactedURL is u without user info and with every query value replaced by REDACTED.
func redactedURL(u *url.URL) string {
	c := *u
	c.User = nil
	if c.RawQuery != "" {
		q := c.Query()
		for _, vs := range q {
			for i := range vs {
				vs[i] = "REDACTED"
			}
		}
		c.RawQuery = q.Encode()
	}
	return c.String()
}
