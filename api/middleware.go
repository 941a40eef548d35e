package api

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"go.opentelemetry.io/otel/trace"

	"github.com/dirgate/dirgate/internal/metrics"
)

const (
	headerRequestID = "X-Request-Id"
	ctxRequestID    = "dirgate.request_id"
	ctxTenant       = "dirgate.tenant"
	// maxAuthHeader caps the Authorization header before any parsing (tenantauth caps the token too).
	maxAuthHeader = 8<<10 + len("Bearer ")
)

// validRequestID accepts a caller's X-Request-Id only when it is short and plain, so that it is
// safe to echo in headers, bodies and logs.
var validRequestID = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,128}$`)

// withRequestID takes the caller's X-Request-Id when well-formed, else makes one, and echoes it.
func withRequestID(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		rid := c.Request().Header.Get(headerRequestID)
		if !validRequestID.MatchString(rid) {
			rid = newRequestID()
		}
		c.Set(ctxRequestID, rid)
		c.Response().Header().Set(headerRequestID, rid)
		return next(c)
	}
}

func newRequestID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return "req_" + hex.EncodeToString(b[:])
}

func requestID(c echo.Context) string {
	if v, ok := c.Get(ctxRequestID).(string); ok {
		return v
	}
	return ""
}

// ctxUntimed holds a request's context as it was before withTimeout bounded it: the context a
// streamed answer goes on with once its status is sent (see streamContext).
const ctxUntimed = "dirgate.untimed_ctx"

// withTimeout bounds every request's context, so no upstream or Redis call outlives it. skip, when
// not nil, names requests that bound themselves (the proxy bounds the wait for Podio's answer, not
// the streaming of its body).
func withTimeout(d time.Duration, skip func(echo.Context) bool) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			if skip != nil && skip(c) {
				return next(c)
			}
			parent := c.Request().Context()
			c.Set(ctxUntimed, parent)
			ctx, cancel := context.WithTimeout(parent, d)
			defer cancel()
			c.SetRequest(c.Request().WithContext(ctx))
			return next(c)
		}
	}
}

// streamContext lifts the request deadline once an answer streams: the request timeout bounds
// the work before the first byte, and from then on the answer goes on as long as the client keeps
// taking it (streamChunk's write deadlines cut a client that stops). The caller's own cancellation
// (a closed connection) still ends it.
func streamContext(c echo.Context) {
	if parent, ok := c.Get(ctxUntimed).(context.Context); ok {
		c.SetRequest(c.Request().WithContext(parent))
	}
}

// streamChunk gives the next chunk of a streamed answer d to reach the client: a client that stops
// reading is cut when it passes, instead of holding the handler and its connection forever. It
// replaces the listener's write timeout, which would cut a long answer that keeps moving.
func streamChunk(c echo.Context, d time.Duration) {
	_ = http.NewResponseController(c.Response()).SetWriteDeadline(time.Now().Add(d))
}

// logRequests writes one line per request. It logs the route pattern, never the raw path or the
// query: paths like /link/{link_token} carry secrets.
func (s *Server) logRequests(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := s.now()
		err := next(c)
		status := c.Response().Status
		if err != nil {
			status = toError(err).Status
		}
		d := s.now().Sub(start)
		route := s.routeLabel(c)
		s.metrics.Request(route, c.Request().Method, status, d)
		if logged, _ := c.Get(ctxProxyLogged).(bool); logged {
			return err // the proxy wrote its own line
		}
		attrs := []any{"request_id", requestID(c), "method", metrics.LogMethod(c.Request().Method), "route", route,
			"status", status, "duration_ms", d.Milliseconds(), "tenant", tenantOf(c), "account", accountOf(c)}
		if sc := trace.SpanContextFromContext(c.Request().Context()); sc.IsValid() {
			attrs = append(attrs, "trace_id", sc.TraceID().String())
		}
		s.log.InfoContext(c.Request().Context(), "request", attrs...)
		return err
	}
}

// requireTenant authenticates the caller's JWT and records the tenant it names.
func (s *Server) requireTenant(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		h := c.Request().Header.Get("Authorization")
		if h == "" {
			return newError(http.StatusUnauthorized, "unauthorized", "missing Authorization: Bearer <token>")
		}
		if len(h) > maxAuthHeader {
			return newError(http.StatusUnauthorized, "unauthorized", "token too large")
		}
		scheme, raw, ok := strings.Cut(h, " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") || raw == "" {
			return newError(http.StatusUnauthorized, "unauthorized", "use Authorization: Bearer <token>")
		}
		claims, err := s.verifier.VerifyContext(c.Request().Context(), strings.TrimSpace(raw))
		if err != nil {
			return &Error{Status: http.StatusUnauthorized, Code: "unauthorized", Message: err.Error(), Err: err}
		}
		if claims.Account != "" {
			return newError(http.StatusUnauthorized, "unauthorized", "account-scoped tokens are valid only for the proxy")
		}
		c.Set(ctxTenant, claims.Tenant)
		return next(c)
	}
}

// tenantOf is the authenticated tenant, or "" on unauthenticated routes.
func tenantOf(c echo.Context) string {
	t, _ := c.Get(ctxTenant).(string)
	return t
}
