package api

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/dirgate/dirgate"
	"github.com/dirgate/dirgate/adapters/podio"
	"github.com/dirgate/dirgate/internal/cache"
	"github.com/dirgate/dirgate/internal/changes"
	"github.com/dirgate/dirgate/internal/creds"
	"github.com/dirgate/dirgate/internal/crypt"
	"github.com/dirgate/dirgate/internal/events"
	"github.com/dirgate/dirgate/internal/idempotency"
	"github.com/dirgate/dirgate/internal/jobs"
	"github.com/dirgate/dirgate/internal/metrics"
	"github.com/dirgate/dirgate/internal/proxy"
	"github.com/dirgate/dirgate/internal/quota"
	"github.com/dirgate/dirgate/internal/store"
	"github.com/dirgate/dirgate/internal/tenantauth"
	"github.com/dirgate/dirgate/internal/webhooks"
)

// Options are the pieces a Server is built from. cmd/dirgate wires them from configuration.
type Options struct {
	Store    *store.Store
	Creds    *creds.Manager
	Verifier *tenantauth.Verifier
	// Podio is a client configured with the API and authorize base URLs and the OAuth client
	// credentials; per-account clients are derived from it.
	Podio *podio.Client
	// PublicURL is where callers and browsers reach this gateway; link URLs and the OAuth
	// redirect URI are built from it.
	PublicURL *url.URL
	// AllowPasswordGrant enables POST /integrated-accounts with grant_type "password".
	AllowPasswordGrant bool
	// LinkTokenTTL is the lifetime of link tokens (at most 10 minutes); 0 means 10 minutes.
	LinkTokenTTL time.Duration
	// RequestTimeout bounds every request; 0 means 30 s.
	RequestTimeout time.Duration
	// BodyLimit caps JSON request bodies; "" means "1M".
	BodyLimit string
	// StreamTimeout is how long a streamed answer (CSV export, proxied body) may wait for the
	// client to take its next chunk, or for Podio to send the proxy its next one; 0 means 30 s.
	StreamTimeout time.Duration
	Logger        *slog.Logger
	Now           func() time.Time

	// Cache holds directory data for every replica; Ring seals list cursors (the credential key
	// ring: cursors are bound to their use by the sealed additional data).
	Cache *cache.Cache
	Ring  *crypt.Ring
	// CacheTTL says how long directory data is served from the cache; zero fields take defaults.
	CacheTTL CacheTTLs
	// PodioPageSize is the page size asked of Podio's paged member lists; 0 means 100.
	PodioPageSize int
	// CursorTTL is the lifetime of a list cursor; 0 means 1 hour.
	CursorTTL time.Duration

	// Minter signs account-scoped proxy tokens (POST /integrated-accounts/{id}/proxy-tokens); nil
	// when dirgate holds no HS256 secret, and the endpoint then says so.
	Minter *tenantauth.Minter
	// ProxyMaxBody caps proxied request bodies; 0 means 10 MiB.
	ProxyMaxBody int64
	// ProxyClient sends proxied calls to Podio; nil means one that never follows redirects.
	ProxyClient *http.Client
	// Budget is the shared Podio quota (the budget endpoint and RateLimit headers read it; the
	// Podio transport spends it). nil: no budget.
	Budget *quota.Budget
	// Jobs runs membership jobs (sync, offboarding, undo). nil: those routes answer 501.
	Jobs *jobs.Engine
	// Idempotency keeps the answers to writes sent with an Idempotency-Key. nil: such writes
	// answer 501.
	Idempotency *idempotency.Store
	// Events records change events (the feed, webhooks). nil: no events are recorded.
	Events *events.Log
	// Changes keeps the change-detection schedule, snapshots and the marks of own writes. nil (or
	// no Events): accounts cannot turn events on, and own writes are not marked.
	Changes *changes.Store
	// EventsInterval is the poll interval of accounts that set none; 0 means 10 minutes.
	// EventsMinInterval is the shortest interval an account may set; 0 means 1 minute.
	EventsInterval, EventsMinInterval time.Duration
	// Webhooks keeps the tenants' webhooks and their deliveries. nil: the webhook routes answer
	// 501.
	Webhooks *webhooks.Store

	// Metrics records request latencies, cache states and job submissions, and is served at
	// GET /metrics. nil: no metrics, and /metrics answers 404.
	Metrics *metrics.Metrics
	// MetricsToken, when set, is the bearer token GET /metrics requires.
	MetricsToken string
	// TracerProvider, when set, traces every request in a server span that continues the
	// caller's traceparent (Propagator; nil means W3C trace context). nil: no tracing.
	TracerProvider trace.TracerProvider
	Propagator     propagation.TextMapPropagator
}

// Server is the dirgate HTTP API.
type Server struct {
	store              *store.Store
	creds              *creds.Manager
	verifier           *tenantauth.Verifier
	podio              *podio.Client
	publicURL          *url.URL
	allowPasswordGrant bool
	linkTTL            time.Duration
	log                *slog.Logger
	now                func() time.Time
	cache              *cache.Cache
	ring               *crypt.Ring
	ttl                CacheTTLs
	podioPageSize      int
	cursorTTL          time.Duration
	minter             *tenantauth.Minter
	budget             *quota.Budget
	proxy              *proxy.Forwarder
	requestTimeout     time.Duration
	streamTimeout      time.Duration
	// known holds the last account records read, for reads while Redis is down (accountForRead).
	known *store.Memo[store.Account]
	jobs  *jobs.Engine
	idem  *idempotency.Store
	// events is nil when no events are recorded.
	events *events.Log
	// changes is nil when change detection is not configured.
	changes                           *changes.Store
	eventsInterval, eventsMinInterval time.Duration
	webhooks                          *webhooks.Store

	metrics *metrics.Metrics
	// metricsToken is the SHA-256 of Options.MetricsToken; nil when /metrics is open.
	metricsToken []byte
	// tracer is nil when requests are not traced.
	tracer     trace.Tracer
	propagator propagation.TextMapPropagator
	// routes are the registered route templates (metric labels name only these).
	routes map[string]bool

	draining atomic.Bool
	// redisSeen is set once Redis has answered a readiness probe: a replica that lost Redis later
	// stays ready (degraded), one that never reached it is not ready.
	redisSeen atomic.Bool
	echo      *echo.Echo
}

// maxKnownAccounts bounds the account records each replica keeps for Redis outages.
const maxKnownAccounts = 10000

// defaultStreamTimeout is Options.StreamTimeout's default.
const defaultStreamTimeout = 30 * time.Second

// maxLinkTokenTTL is the longest a link token may live (the issue: "at most 10 minutes").
const maxLinkTokenTTL = 10 * time.Minute

// New builds the API server.
func New(o Options) (*Server, error) {
	if o.Store == nil || o.Creds == nil || o.Verifier == nil || o.Podio == nil || o.PublicURL == nil || o.Cache == nil || o.Ring == nil {
		return nil, errors.New("api: Store, Creds, Verifier, Podio, PublicURL, Cache and Ring are required")
	}
	if o.CursorTTL <= 0 {
		o.CursorTTL = time.Hour
	}
	if o.LinkTokenTTL <= 0 || o.LinkTokenTTL > maxLinkTokenTTL {
		o.LinkTokenTTL = maxLinkTokenTTL
	}
	if o.RequestTimeout <= 0 {
		o.RequestTimeout = 30 * time.Second
	}
	if o.BodyLimit == "" {
		o.BodyLimit = "1M"
	}
	if o.StreamTimeout <= 0 {
		o.StreamTimeout = defaultStreamTimeout
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.EventsMinInterval <= 0 {
		o.EventsMinInterval = defaultEventsMinInterval
	}
	if o.EventsInterval <= 0 {
		o.EventsInterval = defaultEventsInterval
	}
	if o.EventsInterval < o.EventsMinInterval {
		return nil, fmt.Errorf("api: EventsInterval %s is shorter than EventsMinInterval %s", o.EventsInterval, o.EventsMinInterval)
	}
	s := &Server{
		store: o.Store, creds: o.Creds, verifier: o.Verifier, podio: o.Podio, publicURL: o.PublicURL,
		allowPasswordGrant: o.AllowPasswordGrant, linkTTL: o.LinkTokenTTL, log: o.Logger, now: o.Now,
		cache: o.Cache, ring: o.Ring, ttl: o.CacheTTL.withDefaults(), podioPageSize: o.PodioPageSize, cursorTTL: o.CursorTTL,
		minter: o.Minter, requestTimeout: o.RequestTimeout, streamTimeout: o.StreamTimeout, budget: o.Budget,
		known: store.NewMemo[store.Account](maxKnownAccounts, "account records", o.Logger),
		jobs:  o.Jobs, idem: o.Idempotency, events: o.Events, webhooks: o.Webhooks,
		changes: o.Changes, eventsInterval: o.EventsInterval, eventsMinInterval: o.EventsMinInterval,
		metrics: o.Metrics, propagator: o.Propagator, routes: map[string]bool{},
	}
	if o.MetricsToken != "" {
		sum := sha256.Sum256([]byte(o.MetricsToken))
		s.metricsToken = sum[:]
	}
	if o.TracerProvider != nil {
		s.tracer = o.TracerProvider.Tracer(tracerName)
		if s.propagator == nil {
			s.propagator = propagation.TraceContext{}
		}
	}
	fw, err := proxy.New(proxy.Options{Base: o.Podio.BaseURL, Client: o.ProxyClient, MaxBody: o.ProxyMaxBody,
		AnswerTimeout: o.RequestTimeout, StreamTimeout: o.StreamTimeout})
	if err != nil {
		return nil, fmt.Errorf("api: proxy: %w", err)
	}
	s.proxy = fw
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.Logger.SetOutput(io.Discard)
	e.HTTPErrorHandler = s.handleError
	// Proxied calls bound themselves (the forwarder's AnswerTimeout and StreamTimeout) and have
	// their own, larger body limit (ProxyMaxBody).
	proxied := func(c echo.Context) bool { return strings.HasPrefix(c.Request().URL.Path, "/proxy/") }
	e.Use(withRequestID, s.traceRequests, s.logRequests, middleware.Recover(), withTimeout(o.RequestTimeout, proxied),
		middleware.BodyLimitWithConfig(middleware.BodyLimitConfig{Limit: o.BodyLimit, Skipper: proxied}))

	e.GET("/healthz", s.healthz)
	e.GET("/readyz", s.readyz)
	e.GET("/openapi.yaml", serveSpec)
	if s.metrics != nil {
		e.GET("/metrics", s.metricsHandler)
	}
	e.GET("/ui/*", serveUI)
	e.GET("/docs", serveDocs)

	e.GET("/link/callback", s.linkCallback)
	e.GET("/link/:link_token", s.showLink)
	e.GET("/link/:link_token/authorize", s.authorizeLink)
	e.GET("/picker/:token", s.pickerPage)
	e.GET("/picker/:token/data", s.pickerData)

	// Tenant routes take the middleware per route: an echo Group with middleware registers a
	// catch-all that would turn every 405 into a 404.
	auth := s.requireTenant
	e.POST("/link-tokens", s.createLinkToken, auth)
	e.POST("/link-results", s.exchangeLinkResult, auth)
	e.POST("/picker-sessions", s.createPickerSession, auth)
	e.POST("/integrated-accounts", s.createAccount, auth)
	e.GET("/integrated-accounts", s.listAccounts, auth)
	e.GET("/integrated-accounts/:id", s.getAccount, auth)
	e.PATCH("/integrated-accounts/:id", s.patchAccount, auth)
	e.DELETE("/integrated-accounts/:id", s.deleteAccount, auth)
	e.POST("/integrated-accounts/:id/check", s.checkAccount, auth)
	s.registerDirectory(e, auth)
	s.registerMembership(e, auth)
	e.GET("/integrated-accounts/:id/budget", s.getBudget, auth)
	e.GET("/integrated-accounts/:id/health", s.getHealth, auth)
	e.GET("/events", s.listEvents, auth)
	e.POST("/integrated-accounts/:id/proxy-tokens", s.createProxyToken, auth)
	e.DELETE("/integrated-accounts/:id/proxy-tokens", s.revokeProxyTokens, auth)
	s.registerWebhooks(e, auth)
	e.Any("/proxy/:id/*", s.proxyByPath)
	e.Any("/proxy/:id", func(echo.Context) error {
		return newError(http.StatusBadRequest, "invalid_path", "add the Podio path: /proxy/{integrated_account_id}/{podio path}")
	})
	for _, r := range e.Routes() {
		s.routes[r.Path] = true
	}
	s.echo = e
	return s, nil
}

// ServeHTTP makes Server an http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.echo.ServeHTTP(w, r) }

// Drain turns readiness false, so load balancers stop sending new requests while in-flight ones
// finish (cmd/dirgate then shuts the listener down gracefully).
func (s *Server) Drain() { s.draining.Store(true) }

func (s *Server) healthz(c echo.Context) error {
	return c.JSON(http.StatusOK, map[string]string{"status": "ok"})
}

func (s *Server) readyz(c echo.Context) error {
	if s.draining.Load() {
		return newError(http.StatusServiceUnavailable, "not_ready", "shutting down")
	}
	ctx, cancel := context.WithTimeout(c.Request().Context(), 2*time.Second)
	defer cancel()
	if err := s.store.Ping(ctx); err != nil {
		if s.redisSeen.Load() {
			return c.JSON(http.StatusOK, map[string]string{"status": "degraded"})
		}
		return &Error{Status: http.StatusServiceUnavailable, Code: "not_ready", Message: "Redis is not reachable", Err: err}
	}
	s.redisSeen.Store(true)
	return c.JSON(http.StatusOK, map[string]string{"status": "ready"})
}

func serveSpec(c echo.Context) error {
	return c.Blob(http.StatusOK, "application/yaml", dirgate.OpenAPI)
}

// bindJSON decodes a JSON body strictly (unknown fields are errors) into v.
func bindJSON(c echo.Context, v any) error { return decodeJSON(c, v, false) }

// bindOptionalJSON is bindJSON for a body that may be left out: no body leaves v as it is.
func bindOptionalJSON(c echo.Context, v any) error { return decodeJSON(c, v, true) }

func decodeJSON(c echo.Context, v any, optional bool) error {
	ct := c.Request().Header.Get(echo.HeaderContentType)
	if ct != "" && !isJSON(ct) {
		return newError(http.StatusUnsupportedMediaType, "unsupported_media_type", "send Content-Type: application/json")
	}
	dec := jsonDecoder(c.Request().Body)
	if err := dec.Decode(v); err != nil {
		if errors.Is(err, io.EOF) {
			if optional {
				return nil
			}
			return badRequest("request body is empty; send a JSON object")
		}
		if be := bodyError(err); be != nil {
			return be
		}
		return badRequest(fmt.Sprintf("invalid JSON body: %v", err))
	}
	if dec.More() {
		return badRequest("invalid JSON body: more than one JSON value")
	}
	return nil
}

// readBody reads a request body whole, answering what went wrong in the caller's terms.
func readBody(r *http.Request) ([]byte, error) {
	b, err := io.ReadAll(r.Body)
	if err != nil {
		if be := bodyError(err); be != nil {
			return nil, be
		}
		return nil, &Error{Status: http.StatusBadRequest, Code: "invalid_body", Message: "the request body could not be read", Err: err}
	}
	return b, nil
}

// bodyError is the answer to a failed body read that is not about the body's content: too large
// (413), or not sent in time (408, the listener's read deadline: a client trickling its body is
// cut, not waited for). nil otherwise. Its message never repeats the read error, which names
// addresses.
func bodyError(err error) *Error {
	if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
		return newError(http.StatusRequestEntityTooLarge, "body_too_large", "request body too large")
	}
	// echo's body limit fails a streamed (chunked) body's Read with its own 413.
	if he, ok := errors.AsType[*echo.HTTPError](err); ok && he.Code == http.StatusRequestEntityTooLarge {
		return newError(http.StatusRequestEntityTooLarge, "body_too_large", "request body too large")
	}
	if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() {
		return &Error{Status: http.StatusRequestTimeout, Code: "request_timeout",
			Message: "the request body did not arrive in time; send it at once", Err: err}
	}
	return nil
}
