package api

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/dirgate/dirgate/internal/metrics"
	"github.com/dirgate/dirgate/internal/quota"
)

// tracerName names the gateway's instrumentation scope.
const tracerName = "github.com/dirgate/dirgate/api"

// routeUnmatched is the route label of requests that matched no route: their raw path may carry
// anything, secrets included, and would make one label value per path.
const routeUnmatched = "unmatched"

// routeProxyRoot is the route label of every request to the root proxy listener (ProxyRoot),
// whatever Podio path it names.
const routeProxyRoot = "proxy_root"

// ctxListener marks requests of the root proxy listener, whose routes are not the API's.
const ctxListener = "dirgate.listener"

// routeLabel is the request's route template when it names a registered route of the API,
// routeProxyRoot on the root proxy listener, else routeUnmatched.
func (s *Server) routeLabel(c echo.Context) string {
	if l, _ := c.Get(ctxListener).(string); l == routeProxyRoot {
		return routeProxyRoot
	}
	if p := c.Path(); s.routes[p] {
		return p
	}
	return routeUnmatched
}

// validAccountID accepts what an account id may be (store: 1-64 of [A-Za-z0-9_-]); anything else
// is not logged, since a caller may paste anything, a token included, where an id belongs.
var validAccountID = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// accountOf is the integrated account a request names, from its path (/integrated-accounts/{id}/…,
// /proxy/{id}/…) or its integrated_account_id query parameter; "" when none or not id-shaped.
func accountOf(c echo.Context) string {
	var id string
	if p := c.Path(); strings.HasPrefix(p, "/integrated-accounts/:id") || strings.HasPrefix(p, "/proxy/:id") {
		id = c.Param("id")
	} else {
		id = c.QueryParam("integrated_account_id")
	}
	if !validAccountID.MatchString(id) {
		return ""
	}
	return id
}

// traceRequests continues the caller's W3C trace context (traceparent) and wraps the request in a
// server span named by its route template. Without a tracer provider it does nothing.
func (s *Server) traceRequests(next echo.HandlerFunc) echo.HandlerFunc {
	if s.tracer == nil {
		return next
	}
	return func(c echo.Context) error {
		req := c.Request()
		ctx := s.propagator.Extract(req.Context(), propagation.HeaderCarrier(req.Header))
		route := s.routeLabel(c)
		// OpenTelemetry's convention for a method outside the standard ones: "_OTHER", so a
		// made-up method never reaches a span name or attribute.
		method := metrics.Method(req.Method)
		if method == metrics.MethodOther {
			method = "_OTHER"
		}
		ctx, span := s.tracer.Start(ctx, method+" "+route, trace.WithSpanKind(trace.SpanKindServer),
			trace.WithAttributes(attribute.String("http.request.method", method), attribute.String("http.route", route)))
		defer span.End()
		c.SetRequest(req.WithContext(ctx))
		err := next(c)
		status := c.Response().Status
		if err != nil {
			status = toError(err).Status
		}
		span.SetAttributes(attribute.Int("http.response.status_code", status))
		if status >= 500 {
			span.SetStatus(codes.Error, http.StatusText(status))
		}
		return err
	}
}

// metricsHandler serves GET /metrics, behind a bearer token when one is configured.
func (s *Server) metricsHandler(c echo.Context) error {
	if s.metricsToken != nil {
		h := c.Request().Header.Get("Authorization")
		scheme, raw, _ := strings.Cut(h, " ")
		// Compare digests, so the comparison takes the same time whatever the token's length.
		got := sha256.Sum256([]byte(strings.TrimSpace(raw)))
		if !strings.EqualFold(scheme, "Bearer") || subtle.ConstantTimeCompare(got[:], s.metricsToken) != 1 {
			return newError(http.StatusUnauthorized, "unauthorized", "GET /metrics needs Authorization: Bearer <DIRGATE_METRICS_TOKEN>")
		}
	}
	s.metrics.Handler().ServeHTTP(c.Response(), c.Request())
	return nil
}

// healthJSON is the answer of GET /integrated-accounts/{id}/health.
type healthJSON struct {
	IntegratedAccountID string            `json:"integrated_account_id"`
	Status              string            `json:"status"`
	Token               healthTokenJSON   `json:"token"`
	Budget              *healthBudgetJSON `json:"budget"`
	Events              healthEventsJSON  `json:"events"`
}

type healthTokenJSON struct {
	ExpiresAt            *time.Time `json:"expires_at"`
	LastRefreshedAt      *time.Time `json:"last_refreshed_at"`
	LastRefreshAttemptAt *time.Time `json:"last_refresh_attempt_at"`
	// LastRefreshOutcome is "success", "failure" or null (never refreshed).
	LastRefreshOutcome  *string `json:"last_refresh_outcome"`
	LastRefreshError    *string `json:"last_refresh_error"`
	ConsecutiveFailures int64   `json:"consecutive_failures"`
}

type healthBudgetJSON struct {
	Classes       map[string]healthClassJSON `json:"classes"`
	CooldownUntil *time.Time                 `json:"cooldown_until"`
}

type healthClassJSON struct {
	Limit      int        `json:"limit"`
	Remaining  int        `json:"remaining"`
	NextSlotAt *time.Time `json:"next_slot_at"`
}

type healthEventsJSON struct {
	Enabled       bool       `json:"enabled"`
	LastPollAt    *time.Time `json:"last_poll_at"`
	LastPollError *string    `json:"last_poll_error"`
}

// getHealth answers GET /integrated-accounts/{id}/health: what an operator checks when an
// account misbehaves. The budget is null when no budget is configured or Redis cannot say.
func (s *Server) getHealth(c echo.Context) error {
	ctx := c.Request().Context()
	a, err := s.accountForRead(ctx, tenantOf(c), c.Param("id"))
	if err != nil {
		return err
	}
	out := healthJSON{IntegratedAccountID: a.ID, Status: a.Status,
		Token: healthTokenJSON{
			ExpiresAt: optTime(a.AccessExpiry), LastRefreshedAt: optTime(a.LastRefreshedAt),
			LastRefreshAttemptAt: optTime(a.Refresh.LastAttemptAt), ConsecutiveFailures: a.Refresh.ConsecutiveFailures,
		},
		Events: healthEventsJSON{Enabled: a.Events.Enabled, LastPollAt: optTime(a.Events.LastPollAt), LastPollError: nullString(a.Events.LastPollError)},
	}
	switch {
	case a.Refresh.LastError != "":
		out.Token.LastRefreshOutcome, out.Token.LastRefreshError = nullString("failure"), nullString(a.Refresh.LastError)
	case !a.LastRefreshedAt.IsZero():
		out.Token.LastRefreshOutcome = nullString("success")
	}
	if s.budget != nil {
		if st, err := s.budget.Status(ctx, s.budgetKey(a)); err == nil {
			b := &healthBudgetJSON{Classes: map[string]healthClassJSON{}, CooldownUntil: optTime(st.CooldownUntil)}
			for _, cl := range []quota.Class{quota.General, quota.RateLimited} {
				if cs, ok := st.Classes[cl]; ok {
					b.Classes[string(cl)] = healthClassJSON{Limit: cs.Limit, Remaining: cs.Remaining, NextSlotAt: optTime(cs.NextSlotAt)}
				}
			}
			out.Budget = b
		}
	}
	return c.JSON(http.StatusOK, out)
}

func nullString(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}
