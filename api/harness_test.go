package api_test

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/extra/redisotel/v9"
	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/dirgate/dirgate"
	"github.com/dirgate/dirgate/adapters/podio"
	"github.com/dirgate/dirgate/adapters/podio/podiosim"
	"github.com/dirgate/dirgate/api"
	"github.com/dirgate/dirgate/internal/cache"
	"github.com/dirgate/dirgate/internal/changes"
	"github.com/dirgate/dirgate/internal/creds"
	"github.com/dirgate/dirgate/internal/crypt"
	"github.com/dirgate/dirgate/internal/events"
	"github.com/dirgate/dirgate/internal/idempotency"
	"github.com/dirgate/dirgate/internal/jobs"
	"github.com/dirgate/dirgate/internal/membership"
	"github.com/dirgate/dirgate/internal/metrics"
	"github.com/dirgate/dirgate/internal/quota"
	"github.com/dirgate/dirgate/internal/redistest"
	"github.com/dirgate/dirgate/internal/store"
	"github.com/dirgate/dirgate/internal/tenantauth"
	"github.com/dirgate/dirgate/internal/testclock"
	"github.com/dirgate/dirgate/internal/testlog"
	"github.com/dirgate/dirgate/internal/upstream"
	"github.com/dirgate/dirgate/internal/webhooks"
)

const testJWTSecret = "test-secret-0123456789-0123456789-abcdef"

// clock is the gateway's clock in tests: real time plus an offset the test moves.
type clock = testclock.Offset

// syncBuffer collects log output from many goroutines.
type syncBuffer = testlog.Buffer

type harnessOptions struct {
	sim           podiosim.Config
	allowPassword bool
	replicas      int // gateway instances on the same Redis; 0 means 1
	// cacheRedisURL gives the cache a Redis of its own (a dead or slow one in fail-open tests).
	cacheRedisURL  string
	ttl            api.CacheTTLs
	requestTimeout time.Duration
	podioPageSize  int
	proxyMaxBody   int64
	// quotaGeneral is the gateway's general hourly limit (0: 1000); breakerFailures and
	// breakerOpen tune the circuit breaker (0: defaults); simOnGatewayClock makes the simulator
	// keep time with the gateway's clock, so that advancing it moves Podio's quota windows too.
	quotaGeneral      int
	breakerFailures   int
	breakerOpen       time.Duration
	simOnGatewayClock bool
	// redisURL points every replica at a Redis of the test's own (one it kills and restarts);
	// empty means the shared test Redis.
	redisURL string
	// jobs gives every replica a job engine (workers included) on one queue of the test's own.
	jobs bool
	// jobMaxActive caps a tenant's unfinished jobs (0: the engine's default).
	jobMaxActive int
	// poller runs a change poller on every replica, looking for due accounts every 20 ms (on
	// the gateway's clock); accounts may set poll intervals down to one second.
	poller bool
	// webhooks gives every replica the webhook store, an events consumer (group "webhooks") and a
	// delivery worker, on one queue of the test's own. Receivers are httptest servers on
	// 127.0.0.1, so internal targets are allowed unless webhookStrict (the SSRF test);
	// webhookResolver replaces DNS for the check at creation. webhookBackoff is the wait after a
	// first failed attempt (0: 50 ms; the cap is 4 times it); webhookWindow the retry window (0:
	// the default, 24 h).
	webhooks        bool
	webhookStrict   bool
	webhookResolver webhooks.Resolver
	webhookBackoff  time.Duration
	webhookWindow   time.Duration
	// metricsToken protects each replica's /metrics; spans, when set, records every replica's
	// spans (handler, Redis, Podio calls).
	metricsToken string
	spans        *tracetest.SpanRecorder
	// maxOpen is the store's limit of open link tokens and picker sessions per tenant (0: the
	// default).
	maxOpen int
	// idemMaxKeys is the idempotency store's limit of records per tenant (0: its default).
	idemMaxKeys int
	// jwt replaces the HS256 verifier configuration (h.token's tokens then fail unless it
	// keeps the test secret).
	jwt *tenantauth.Config
}

// replica is one gateway instance: its own Redis client, store, credential manager and server.
type replica struct {
	srv         *api.Server
	ts          *httptest.Server
	store       *store.Store
	cacheClient redis.UniversalClient
	proxyTS     *httptest.Server // the root proxy listener
	jobs        *jobs.Engine     // nil unless harnessOptions.jobs
	events      *events.Log
	changes     *changes.Store
	// webhooks, webhookWorker and startWebhookWorker are set with harnessOptions.webhooks;
	// startWebhookWorker starts another worker on the same queue (a restarted replica's).
	webhooks           *webhooks.Store
	webhookWorker      *webhooks.Worker
	startWebhookWorker func() *webhooks.Worker
	// metrics are the replica's collectors, on a registry of its own.
	metrics *metrics.Metrics
}

type harness struct {
	t        *testing.T
	sim      *podiosim.Server
	simURL   string
	replicas []*replica
	url      string // the first replica's base URL
	rdb      *redistest.Redis
	redisURL string
	clock    *clock
	logs     *syncBuffer
	minter   *tenantauth.Minter
	ring     *crypt.Ring
	spec     *openapi3.T
	// clientTimeout bounds a test client's request: past the gateway's own request timeout, so
	// the gateway answers first.
	clientTimeout time.Duration
	// podioTraceparent is the last traceparent header Podio received.
	podioTraceparent atomic.Pointer[string]
	// webhookQueue is the asynq queue of webhook deliveries (harnessOptions.webhooks).
	webhookQueue string
}

func newHarness(t *testing.T, o harnessOptions) *harness {
	t.Helper()
	h := &harness{t: t, redisURL: cmp.Or(o.redisURL, redistest.URL()), clock: &clock{}, logs: &syncBuffer{},
		clientTimeout: max(30*time.Second, o.requestTimeout+10*time.Second)}
	h.rdb = redistest.NewAt(t, h.redisURL)
	if o.simOnGatewayClock {
		o.sim.Now = h.clock.Now
	}
	h.sim = podiosim.New(o.sim)
	simTS := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if tp := r.Header.Get("traceparent"); tp != "" {
			h.podioTraceparent.Store(&tp)
		}
		h.sim.ServeHTTP(w, r)
	}))
	t.Cleanup(simTS.Close)
	h.simURL = simTS.URL

	key, err := crypt.GenerateKey("k1")
	if err != nil {
		t.Fatal(err)
	}
	if h.ring, err = crypt.NewRing([]crypt.Key{key}); err != nil {
		t.Fatal(err)
	}
	jwtConfig := tenantauth.Config{HS256Secret: []byte(testJWTSecret)}
	if o.jwt != nil {
		jwtConfig = *o.jwt
	}
	ver, err := tenantauth.NewVerifier(jwtConfig)
	if err != nil {
		t.Fatal(err)
	}
	if h.minter, err = tenantauth.NewMinter([]byte(testJWTSecret), "", "", nil); err != nil {
		t.Fatal(err)
	}
	h.spec = loadSpec(t)
	h.webhookQueue = strings.ReplaceAll(h.rdb.Prefix, ":", "-") + "webhooks"

	n := max(o.replicas, 1)
	for range n {
		h.replicas = append(h.replicas, h.newReplica(o, ver))
	}
	h.url = h.replicas[0].ts.URL
	return h
}

func (h *harness) newReplica(o harnessOptions, ver *tenantauth.Verifier) *replica {
	t := h.t
	// The shared test Redis gets patient timeouts (a loaded machine, -race: these tests are not
	// about a slow Redis); a test's own Redis (killed and restarted) keeps the production ones.
	rcfg := store.RedisConfig{URL: h.redisURL}
	if o.redisURL == "" {
		rcfg.DialTimeout = redistest.DialTimeout(h.redisURL)
		rcfg.ReadTimeout, rcfg.WriteTimeout = 2*time.Second, 2*time.Second
	}
	rc, err := store.NewRedisClient(rcfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rc.Close() })
	mx := metrics.New(prometheus.NewRegistry(), false)
	rc.AddHook(store.ErrorHook(mx.RedisError))
	var tp *sdktrace.TracerProvider
	if o.spans != nil {
		tp = sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(o.spans))
		if err := redisotel.InstrumentTracing(rc, redisotel.WithTracerProvider(tp), redisotel.WithDBStatement(false)); err != nil {
			t.Fatal(err)
		}
	}
	st, err := store.New(store.Options{Client: rc, Prefix: h.rdb.Prefix, Ring: h.ring, Now: h.clock.Now, MaxOpen: o.maxOpen})
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewJSONHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	budget, err := quota.New(quota.Options{
		Client: rc, Prefix: h.rdb.Prefix, Now: h.clock.Now, Logger: log,
		GeneralLimit: cmp.Or(o.quotaGeneral, 1000), RateLimitedLimit: 250, OpTimeout: 250 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	rt := upstream.New(upstream.Options{
		Budget: budget, BasePath: "/", Now: h.clock.Now, Logger: log,
		FailureThreshold: o.breakerFailures, OpenTimeout: o.breakerOpen, Observer: mx,
	})
	var podioRT http.RoundTripper = rt
	if tp != nil {
		podioRT = upstream.Traced(rt, tp, propagation.TraceContext{})
	}
	pc := podio.NewClient(&http.Client{Timeout: 10 * time.Second, Transport: podioRT}, nil)
	if pc, err = pc.WithBaseURL(h.simURL + "/"); err != nil {
		t.Fatal(err)
	}
	if pc, err = pc.WithAuthURL(h.simURL + "/"); err != nil {
		t.Fatal(err)
	}
	pc.OAuthConfig = podio.OAuthConfig{ClientID: "demo-client", ClientSecret: "demo-secret"}
	pc.Now = h.clock.Now
	r := &replica{store: st, metrics: mx}
	mgr := creds.New(creds.Options{Store: st, Refresher: pc.OAuth, Now: h.clock.Now, Logger: log,
		OnNeedsReauth: func(ctx context.Context, a store.Account) { r.srv.AccountNeedsReauth(ctx, a) }, OnRefresh: mx.Refresh})

	cacheClient := rc
	if o.cacheRedisURL != "" {
		if cacheClient, err = store.NewRedisClient(store.RedisConfig{
			URL: o.cacheRedisURL, DialTimeout: 50 * time.Millisecond, ReadTimeout: 2 * time.Second, WriteTimeout: 2 * time.Second,
		}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cacheClient.Close() })
	}
	// A short fill lock: a fetch held by a hanging Podio is abandoned soon after its caller. A
	// longer Redis timeout than production's 50 ms: under -race, parallel tests slow Redis replies
	// enough to mark it down, and a replica that fails open makes its own Podio calls. Longer still
	// (1 s) on the shared test Redis when the test is not about Redis faults: a loaded CI machine
	// made coalescing tests see a second walk.
	cacheOp := 250 * time.Millisecond
	if o.cacheRedisURL == "" && o.redisURL == "" {
		cacheOp = time.Second
	}
	ch, err := cache.New(cache.Options{
		Client: cacheClient, Prefix: h.rdb.Prefix, Now: h.clock.Now, Logger: log,
		FillLockTTL: 3 * time.Second, OpTimeout: cacheOp,
	})
	if err != nil {
		t.Fatal(err)
	}

	r.cacheClient = cacheClient
	var eng *jobs.Engine
	if o.jobs {
		exec := &membership.Executor{DefaultCooldown: time.Minute, Now: h.clock.Now,
			Client: func(ctx context.Context, tenant, account string) (context.Context, *podio.Client, error) {
				return r.srv.JobClient(ctx, tenant, account)
			},
			Written: func(ctx context.Context, j *jobs.Job, it *jobs.Item) { r.srv.JobWritten(ctx, j, it) },
		}
		queue := strings.ReplaceAll(h.rdb.Prefix, ":", "-") + "jobs"
		if eng, err = jobs.New(jobs.Options{
			Client: rc, Prefix: h.rdb.Prefix, Queue: queue, Logger: log, Now: h.clock.Now,
			PollInterval: 50 * time.Millisecond, MaxWait: 200 * time.Millisecond, OwnerTTL: 3 * time.Second,
			MaxActive: o.jobMaxActive,
			OnFinish: func(ctx context.Context, j *jobs.Job) {
				mx.JobFinished(j.Type, string(j.Status))
				r.srv.JobFinished(ctx, j)
			},
			OnRunning: mx.JobRunning,
			Executors: map[string]jobs.Executor{
				membership.JobWorkspaceSync: exec, membership.JobOffboard: exec, membership.JobUndoOffboard: exec,
			},
		}); err != nil {
			t.Fatal(err)
		}
		r.jobs = eng
		t.Cleanup(func() {
			ctx := context.Background()
			iter := h.rdb.Scan(ctx, 0, "asynq:{"+queue+"}*", 1000).Iterator()
			for iter.Next(ctx) {
				h.rdb.Del(ctx, iter.Val())
			}
			h.rdb.SRem(ctx, "asynq:queues", queue)
		})
	}
	idem, err := idempotency.New(idempotency.Options{Client: rc, Prefix: h.rdb.Prefix, MaxKeys: o.idemMaxKeys, Now: h.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	evlog, err := events.New(events.Options{Client: rc, Prefix: h.rdb.Prefix, Now: h.clock.Now, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	r.events = evlog
	if r.changes, err = changes.New(changes.Options{Client: rc, Prefix: h.rdb.Prefix}); err != nil {
		t.Fatal(err)
	}
	if o.webhooks {
		if r.webhooks, err = webhooks.NewStore(webhooks.StoreOptions{Client: rc, Prefix: h.rdb.Prefix, Ring: h.ring,
			AllowPrivate: !o.webhookStrict, AllowHTTP: true, Resolver: o.webhookResolver, Now: h.clock.Now}); err != nil {
			t.Fatal(err)
		}
	}
	r.ts = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) { r.srv.ServeHTTP(w, req) }))
	t.Cleanup(r.ts.Close)
	pub, _ := url.Parse(r.ts.URL)
	opts := api.Options{
		Store: st, Creds: mgr, Verifier: ver, Podio: pc, PublicURL: pub,
		AllowPasswordGrant: o.allowPassword, Logger: log, Now: h.clock.Now,
		Cache: ch, Ring: h.ring, CacheTTL: o.ttl, RequestTimeout: o.requestTimeout, PodioPageSize: o.podioPageSize,
		Minter: h.minter, ProxyMaxBody: o.proxyMaxBody, Budget: budget, ProxyClient: &http.Client{Transport: podioRT},
		Metrics: mx, MetricsToken: o.metricsToken,
		Jobs: eng, Idempotency: idem, Events: evlog, Changes: r.changes, EventsMinInterval: time.Second, Webhooks: r.webhooks,
	}
	if tp != nil {
		opts.TracerProvider = tp
	}
	r.srv, err = api.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	if o.poller {
		p, err := changes.NewPoller(changes.PollerOptions{Store: r.changes, Poll: r.srv.PollAccount, Tick: 20 * time.Millisecond,
			Now: h.clock.Now, Logger: log})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		wg.Go(func() { p.Run(ctx) })
		t.Cleanup(func() { cancel(); wg.Wait() })
	}
	if eng != nil {
		if err := eng.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(eng.Shutdown)
	}
	r.proxyTS = httptest.NewServer(r.srv.ProxyRoot())
	t.Cleanup(r.proxyTS.Close)
	if o.webhooks {
		h.startWebhooks(r, o, evlog, log)
	}
	return r
}

// startWebhooks runs a replica's webhook delivery: its worker and its member of the events
// consumer group.
func (h *harness) startWebhooks(r *replica, o harnessOptions, evlog *events.Log, log *slog.Logger) {
	t := h.t
	base := cmp.Or(o.webhookBackoff, 50*time.Millisecond)
	wo := webhooks.Options{Store: r.webhooks, Queue: h.webhookQueue, RetryWindow: o.webhookWindow, BackoffBase: base,
		BackoffCap: 4 * base, PollInterval: 50 * time.Millisecond, HoldPoll: 100 * time.Millisecond, Logger: log,
		OnAttempt: r.metrics.WebhookAttempt}
	t.Cleanup(func() {
		ctx := context.Background()
		iter := h.rdb.Scan(ctx, 0, "asynq:{"+h.webhookQueue+"}*", 1000).Iterator()
		for iter.Next(ctx) {
			h.rdb.Del(ctx, iter.Val())
		}
		h.rdb.SRem(ctx, "asynq:queues", h.webhookQueue)
	})
	r.startWebhookWorker = func() *webhooks.Worker {
		w, err := webhooks.NewWorker(wo)
		if err != nil {
			t.Fatal(err)
		}
		if err := w.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(w.Shutdown)
		return w
	}
	r.webhookWorker = r.startWebhookWorker()
	disp, err := webhooks.NewDispatcher(wo)
	if err != nil {
		t.Fatal(err)
	}
	c := &events.Consumer{Log: evlog, Group: "webhooks", Name: fmt.Sprintf("replica-%p", r), Handle: disp.Handle,
		Block: 50 * time.Millisecond}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { _ = c.Run(ctx) })
	t.Cleanup(func() { cancel(); wg.Wait() })
}

func loadSpec(t *testing.T) *openapi3.T {
	t.Helper()
	doc, err := openapi3.NewLoader().LoadFromData(dirgate.OpenAPI)
	if err != nil {
		t.Fatalf("openapi.yaml: %v", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("openapi.yaml is not a valid OpenAPI document: %v", err)
	}
	return doc
}

// token mints a tenant token.
func (h *harness) token(tenant string) string {
	h.t.Helper()
	tok, err := h.minter.Mint(tenant, time.Hour)
	if err != nil {
		h.t.Fatal(err)
	}
	return tok
}

// browser returns an HTTP client that validates every gateway response against openapi.yaml,
// keeps cookies and does not follow redirects.
func (h *harness) browser() *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{
		Jar:           jar,
		Transport:     &validating{t: h.t, spec: h.spec, gateways: h.gatewayURLs()},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Timeout:       h.clientTimeout,
	}
}

func (h *harness) gatewayURLs() []string {
	var out []string
	for _, r := range h.replicas {
		out = append(out, r.ts.URL)
	}
	return out
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) json(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("response is not JSON (%v): %s", err, r.body)
	}
}

// errorCode returns the code of the common error body.
func (r response) errorCode(t *testing.T) string {
	t.Helper()
	var e struct {
		Error struct {
			Code, Message, RequestID string
		} `json:"error"`
	}
	r.json(t, &e)
	return e.Error.Code
}

// call sends a request to base+path with an optional tenant token and JSON body.
func (h *harness) call(c *http.Client, method, base, path, token string, body any) response {
	h.t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			h.t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, base+path, rd)
	if err != nil {
		h.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := c.Do(req)
	if err != nil {
		h.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return response{status: res.StatusCode, header: res.Header, body: b}
}

// do calls the first replica with a fresh validating client.
func (h *harness) do(method, path, token string, body any) response {
	h.t.Helper()
	return h.call(h.browser(), method, h.url, path, token, body)
}

// validating is an http.RoundTripper that checks each gateway response against openapi.yaml:
// status documented for the operation, headers and body matching the schema.
type validating struct {
	t        *testing.T
	spec     *openapi3.T
	gateways []string

	once   sync.Once
	router routers.Router
	err    error
}

func (v *validating) RoundTrip(req *http.Request) (*http.Response, error) {
	res, err := http.DefaultTransport.RoundTrip(req)
	if err != nil || !v.isGateway(req.URL) {
		return res, err
	}
	body, rerr := io.ReadAll(res.Body)
	res.Body.Close()
	if rerr != nil {
		return nil, rerr
	}
	res.Body = io.NopCloser(bytes.NewReader(body))
	if verr := v.check(req, res, body); verr != nil {
		v.t.Errorf("response to %s %s breaks openapi.yaml: %v\nbody: %.500s", req.Method, cutString(req.URL.RequestURI(), 200), verr, body)
	}
	return res, nil
}

func (v *validating) isGateway(u *url.URL) bool {
	for _, g := range v.gateways {
		if gu, err := url.Parse(g); err == nil && gu.Scheme == u.Scheme && gu.Host == u.Host {
			return true
		}
	}
	return false
}

func (v *validating) check(req *http.Request, res *http.Response, body []byte) error {
	v.once.Do(func() {
		doc := *v.spec
		doc.Servers = nil
		for _, g := range v.gateways {
			doc.Servers = append(doc.Servers, &openapi3.Server{URL: g})
		}
		v.router, v.err = gorillamux.NewRouter(&doc)
	})
	if v.err != nil {
		return v.err
	}
	routed := req
	if req.URL.Opaque != "" {
		// A raw path sent as is (see harness.send): route on its decoded form.
		routed = req.Clone(req.Context())
		// An escaped slash stays inside its segment, as the gateway's router keeps it.
		routed.URL.Path, _ = url.PathUnescape(strings.NewReplacer("%2F", "_", "%2f", "_").Replace(req.URL.Opaque))
		routed.URL.Opaque = ""
	}
	if rest, ok := strings.CutPrefix(routed.URL.Path, "/proxy/"); ok {
		// The Podio path spans any number of segments; the router matches one.
		if id, _, ok := strings.Cut(rest, "/"); ok {
			routed = req.Clone(req.Context())
			routed.URL.Path, routed.URL.RawPath = "/proxy/"+id+"/podio-path", ""
		}
	}
	route, params, err := v.router.FindRoute(routed)
	if err != nil {
		// Not a documented route: it must be the common 404/405 error.
		if res.StatusCode != http.StatusNotFound && res.StatusCode != http.StatusMethodNotAllowed {
			return fmt.Errorf("undocumented route answered %d: %w", res.StatusCode, err)
		}
		var doc any
		if err := json.Unmarshal(body, &doc); err != nil {
			return fmt.Errorf("error body is not JSON: %w", err)
		}
		return v.spec.Components.Schemas["Error"].Value.VisitJSON(doc)
	}
	exercised.record(route.Operation.OperationID)
	opts := &openapi3filter.Options{IncludeResponseStatus: true, AuthenticationFunc: openapi3filter.NoopAuthenticationFunc}
	ct := res.Header.Get("Content-Type")
	if strings.HasPrefix(ct, "text/html") || strings.HasPrefix(ct, "application/yaml") || strings.HasPrefix(ct, "text/css") ||
		strings.HasPrefix(ct, "text/javascript") {
		opts.ExcludeResponseBody = true
	}
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: routed, PathParams: params, Route: route, Options: opts},
		Status:                 res.StatusCode,
		Header:                 res.Header,
		Body:                   io.NopCloser(bytes.NewReader(body)),
		Options:                opts,
	}
	if err := openapi3filter.ValidateResponse(req.Context(), in); err != nil {
		return err
	}
	if res.Header.Get("X-Request-Id") == "" && res.StatusCode != http.StatusFound {
		return errors.New("no X-Request-Id header")
	}
	return nil
}

// cutString shortens s to at most n bytes for a message.
func cutString(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}
