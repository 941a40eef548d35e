package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/dirgate/dirgate/adapters/podio"
	"github.com/dirgate/dirgate/api"
	"github.com/dirgate/dirgate/internal/cache"
	"github.com/dirgate/dirgate/internal/changes"
	"github.com/dirgate/dirgate/internal/config"
	"github.com/dirgate/dirgate/internal/creds"
	"github.com/dirgate/dirgate/internal/crypt"
	"github.com/dirgate/dirgate/internal/events"
	"github.com/dirgate/dirgate/internal/idempotency"
	"github.com/dirgate/dirgate/internal/jobs"
	"github.com/dirgate/dirgate/internal/membership"
	"github.com/dirgate/dirgate/internal/quota"
	"github.com/dirgate/dirgate/internal/store"
	"github.com/dirgate/dirgate/internal/tenantauth"
	"github.com/dirgate/dirgate/internal/upstream"
	"github.com/dirgate/dirgate/internal/webhooks"
)

// gateway is the wired gateway: what serve and dev run.
type gateway struct {
	api   *api.Server
	store *store.Store
	redis redis.UniversalClient
	// cacheRedis is set when DIRGATE_CACHE_REDIS_URL names a Redis of its own.
	cacheRedis redis.UniversalClient
	// jobs runs membership jobs; serveAll starts and stops its workers.
	jobs *jobs.Engine
	// events records change events.
	events *events.Log
	// poller polls accounts with events enabled for changes; serveAll runs it.
	poller *changes.Poller
	// serveAll runs hookWorker (webhook deliveries) and an events consumer that hands each event
	// to hookDispatcher.
	hookDispatcher *webhooks.Dispatcher
	hookWorker     *webhooks.Worker
	// telemetry holds the metrics and the tracer provider (flushed on Close).
	telemetry *telemetry
	// stopKeys ends the JWK Set refresher (DIRGATE_JWT_JWKS_URL).
	stopKeys context.CancelFunc
}

func (g *gateway) Close() error {
	g.stopKeys()
	g.telemetry.close()
	if g.cacheRedis != nil {
		g.cacheRedis.Close()
	}
	return g.redis.Close()
}

// redisClient builds the Redis client the configuration names.
func redisClient(cfg config.Config) (redis.UniversalClient, error) {
	return store.NewRedisClient(store.RedisConfig{
		URL: cfg.RedisURL, Addrs: cfg.RedisAddrs, MasterName: cfg.RedisMasterName,
		Username: cfg.RedisUsername, Password: cfg.RedisPassword,
		DialTimeout: cfg.RedisTimeout, ReadTimeout: cfg.RedisTimeout, WriteTimeout: cfg.RedisTimeout,
	})
}

// newRing builds the key ring that seals credentials and cursors.
func newRing(cfg config.Config) (*crypt.Ring, error) {
	keys, err := crypt.ParseKeys(cfg.EncryptionKeys)
	if err != nil {
		return nil, fmt.Errorf("DIRGATE_ENCRYPTION_KEYS: %w", err)
	}
	ring, err := crypt.NewRing(keys)
	if err != nil {
		return nil, fmt.Errorf("DIRGATE_ENCRYPTION_KEYS: %w", err)
	}
	return ring, nil
}

// newStore builds the store over rc with the configuration's key ring and prefix.
func newStore(cfg config.Config, rc redis.UniversalClient) (*store.Store, error) {
	ring, err := newRing(cfg)
	if err != nil {
		return nil, err
	}
	return store.New(store.Options{Client: rc, Prefix: cfg.RedisPrefix, Ring: ring})
}

// newCache builds the directory cache: on its own Redis when DIRGATE_CACHE_REDIS_URL is set (the
// returned client is then to be closed), else on rc.
func newCache(cfg config.Config, rc redis.UniversalClient, log *slog.Logger) (*cache.Cache, redis.UniversalClient, error) {
	var own redis.UniversalClient
	if cfg.CacheRedisURL != "" {
		var err error
		own, err = store.NewRedisClient(store.RedisConfig{
			URL: cfg.CacheRedisURL, DialTimeout: cfg.CacheTimeout, ReadTimeout: cfg.RedisTimeout, WriteTimeout: cfg.RedisTimeout,
		})
		if err != nil {
			return nil, nil, fmt.Errorf("DIRGATE_CACHE_REDIS_URL: %w", err)
		}
		rc = own
	}
	c, err := cache.New(cache.Options{Client: rc, Prefix: cfg.RedisPrefix, OpTimeout: cfg.CacheTimeout, SnapshotTTL: cfg.CursorTTL, Logger: log})
	if err != nil {
		if own != nil {
			own.Close()
		}
		return nil, nil, err
	}
	return c, own, nil
}

// newVerifier builds the tenant-token verifier from the configuration; a JWK Set URL is kept
// fresh until ctx ends.
func newVerifier(ctx context.Context, cfg config.Config, log *slog.Logger) (*tenantauth.Verifier, error) {
	tc := tenantauth.Config{Issuer: cfg.JWTIssuer, Audience: cfg.JWTAudience, MaxLifetime: cfg.JWTMaxLifetime}
	var err error
	switch {
	case cfg.JWTSecret != "":
		tc.HS256Secret = []byte(cfg.JWTSecret)
	case cfg.JWTPublicKeys != "":
		pemData, err := os.ReadFile(cfg.JWTPublicKeys)
		if err != nil {
			return nil, fmt.Errorf("DIRGATE_JWT_PUBLIC_KEYS_FILE: %w", err)
		}
		if tc.PublicKeys, err = tenantauth.ParsePublicKeys(pemData); err != nil {
			return nil, fmt.Errorf("DIRGATE_JWT_PUBLIC_KEYS_FILE: %w", err)
		}
	case cfg.JWTJWKSFile != "":
		raw, err := os.ReadFile(cfg.JWTJWKSFile)
		if err != nil {
			return nil, fmt.Errorf("DIRGATE_JWT_JWKS_FILE: %w", err)
		}
		if tc.JWKS, err = tenantauth.ReadJWKS(raw); err != nil {
			return nil, fmt.Errorf("DIRGATE_JWT_JWKS_FILE: %w", err)
		}
	case cfg.JWTJWKSURL != "":
		if tc.JWKS, err = tenantauth.NewJWKS(ctx, cfg.JWTJWKSURL, log); err != nil {
			return nil, fmt.Errorf("DIRGATE_JWT_JWKS_URL: %w", err)
		}
	}
	if cfg.JWTKeyTenants != "" && cfg.JWTSecret == "" {
		if tc.KeyTenants, err = tenantauth.ParseKeyTenants(cfg.JWTKeyTenants); err != nil {
			return nil, fmt.Errorf("DIRGATE_JWT_KEY_TENANTS: %w", err)
		}
	}
	return tenantauth.NewVerifier(tc)
}

// newPodioClient builds the Podio client every account's client is derived from; its calls go
// through rt (the budgeting, retrying, circuit-breaking transport) when not nil.
func newPodioClient(cfg config.Config, rt http.RoundTripper) (*podio.Client, error) {
	pc := podio.NewClient(&http.Client{Timeout: cfg.PodioTimeout, Transport: rt}, nil)
	pc, err := pc.WithBaseURL(cfg.PodioAPIURL)
	if err != nil {
		return nil, fmt.Errorf("DIRGATE_PODIO_API_URL: %w", err)
	}
	if pc, err = pc.WithAuthURL(cfg.PodioAuthURL); err != nil {
		return nil, fmt.Errorf("DIRGATE_PODIO_AUTH_URL: %w", err)
	}
	pc.OAuthConfig = podio.OAuthConfig{ClientID: cfg.PodioClientID, ClientSecret: cfg.PodioClientSecret}
	return pc, nil
}

// buildGateway wires every piece from cfg over the given Redis client.
func buildGateway(cfg config.Config, rc redis.UniversalClient, log *slog.Logger) (gw *gateway, err error) {
	ring, err := newRing(cfg)
	if err != nil {
		return nil, err
	}
	tel, err := newTelemetry(cfg)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			tel.close()
		}
	}()
	if err := tel.instrumentRedis(rc); err != nil {
		return nil, err
	}
	st, err := store.New(store.Options{Client: rc, Prefix: cfg.RedisPrefix, Ring: ring, MaxOpen: cfg.TenantMaxOpen})
	if err != nil {
		return nil, err
	}
	keysCtx, stopKeys := context.WithCancel(context.Background())
	defer func() {
		if err != nil {
			stopKeys()
		}
	}()
	ver, err := newVerifier(keysCtx, cfg, log)
	if err != nil {
		return nil, err
	}
	budget, err := quota.New(quota.Options{
		Client: rc, Prefix: cfg.RedisPrefix, Logger: log, GeneralLimit: cfg.QuotaGeneral, RateLimitedLimit: cfg.QuotaRateLimited,
		Reserve: cfg.QuotaReserve, Replicas: cfg.Replicas, OpTimeout: cfg.CacheTimeout,
	})
	if err != nil {
		return nil, err
	}
	base, err := url.Parse(cfg.PodioAPIURL)
	if err != nil {
		return nil, fmt.Errorf("DIRGATE_PODIO_API_URL: %w", err)
	}
	retries := cfg.PodioRetries
	if retries == 0 {
		retries = -1 // upstream.Options reads 0 as "the default"
	}
	rt := upstream.New(upstream.Options{
		Budget: budget, RateLimitedRoutes: cfg.QuotaRLRoutes, BasePath: base.Path, DefaultCooldown: cfg.QuotaCooldown,
		MaxRetries: retries, FailureThreshold: cfg.BreakerFailures, OpenTimeout: cfg.BreakerOpen, Logger: log,
		Observer: tel.metrics,
	})
	// Each Podio call (retries included) is one client span carrying traceparent to Podio.
	podioRT := tel.podioTransport(rt)
	pc, err := newPodioClient(cfg, podioRT)
	if err != nil {
		return nil, err
	}
	pub, err := url.Parse(cfg.PublicURL)
	if err != nil {
		return nil, fmt.Errorf("DIRGATE_PUBLIC_URL: %w", err)
	}
	// Pieces built before the API server tell it of events through srv, bound once it exists.
	var srv *api.Server
	mgr := creds.New(creds.Options{Store: st, Refresher: pc.OAuth, Margin: cfg.RefreshMargin, Logger: log,
		OnNeedsReauth: func(ctx context.Context, a store.Account) { srv.AccountNeedsReauth(ctx, a) },
		OnRefresh:     tel.metrics.Refresh})
	// Account-scoped proxy tokens are signed with the tenant HS256 secret, when there is one.
	var minter *tenantauth.Minter
	if cfg.JWTSecret != "" {
		if minter, err = tenantauth.NewMinter([]byte(cfg.JWTSecret), cfg.JWTIssuer, cfg.JWTAudience, nil); err != nil {
			return nil, fmt.Errorf("DIRGATE_JWT_HS256_SECRET: %w", err)
		}
	}
	ch, cacheRedis, err := newCache(cfg, rc, log)
	if err != nil {
		return nil, err
	}
	if cacheRedis != nil {
		// The cache's own client is the gateway's to close, or closed here on any later error.
		defer func() {
			if err != nil {
				cacheRedis.Close()
			}
		}()
		if err := tel.instrumentRedis(cacheRedis); err != nil {
			return nil, err
		}
	}
	// The executor reaches Podio through the API server's accounts and budget.
	exec := &membership.Executor{DefaultCooldown: cfg.QuotaCooldown,
		Client: func(ctx context.Context, tenant, account string) (context.Context, *podio.Client, error) {
			return srv.JobClient(ctx, tenant, account)
		},
		Written: func(ctx context.Context, j *jobs.Job, it *jobs.Item) { srv.JobWritten(ctx, j, it) },
	}
	eng, err := jobs.New(jobs.Options{
		Client: rc, Prefix: cfg.RedisPrefix, Queue: strings.TrimSuffix(cfg.RedisPrefix, ":") + ":jobs", Logger: log,
		Concurrency: cfg.JobConcurrency, OnRunning: tel.metrics.JobRunning,
		TenantConcurrency: cfg.JobTenantConc, MaxActive: cfg.JobTenantMax, Retention: cfg.JobRetention,
		OnFinish: func(ctx context.Context, j *jobs.Job) {
			tel.metrics.JobFinished(j.Type, string(j.Status))
			srv.JobFinished(ctx, j)
		},
		Executors: map[string]jobs.Executor{
			membership.JobWorkspaceSync: exec, membership.JobOffboard: exec, membership.JobUndoOffboard: exec,
		},
	})
	if err != nil {
		return nil, err
	}
	// A running request holds its key a little longer than a request may last.
	idem, err := idempotency.New(idempotency.Options{Client: rc, Prefix: cfg.RedisPrefix, Lease: cfg.RequestTimeout + 30*time.Second,
		MaxKeys: cfg.IdemMaxKeys, MaxBytes: cfg.IdemMaxBytes})
	if err != nil {
		return nil, err
	}
	evlog, err := events.New(events.Options{Client: rc, Prefix: cfg.RedisPrefix, Retention: cfg.EventRetention, Logger: log})
	if err != nil {
		return nil, err
	}
	cs, err := changes.New(changes.Options{Client: rc, Prefix: cfg.RedisPrefix})
	if err != nil {
		return nil, err
	}
	hooks, err := webhooks.NewStore(webhooks.StoreOptions{Client: rc, Prefix: cfg.RedisPrefix, Ring: ring,
		AllowPrivate: cfg.AllowPrivateHooks, AllowHTTP: cfg.AllowHTTPHooks, Retention: cfg.EventRetention})
	if err != nil {
		return nil, err
	}
	hookOpts := webhooks.Options{Store: hooks, Queue: strings.TrimSuffix(cfg.RedisPrefix, ":") + ":webhooks",
		RetryWindow: cfg.WebhookRetryWindow, TenantConcurrency: cfg.WebhookTenantConc, Logger: log, OnAttempt: tel.metrics.WebhookAttempt}
	disp, err := webhooks.NewDispatcher(hookOpts)
	if err != nil {
		return nil, err
	}
	hookWorker, err := webhooks.NewWorker(hookOpts)
	if err != nil {
		return nil, err
	}
	srv, err = api.New(api.Options{
		Store: st, Creds: mgr, Verifier: ver, Podio: pc, PublicURL: pub,
		AllowPasswordGrant: cfg.AllowPasswordGrant, LinkTokenTTL: cfg.LinkTokenTTL,
		RequestTimeout: cfg.RequestTimeout, StreamTimeout: cfg.HTTPStreamTimeout, Logger: log,
		Cache: ch, Ring: ring, PodioPageSize: cfg.PodioPageSize, CursorTTL: cfg.CursorTTL,
		Minter: minter, ProxyMaxBody: cfg.ProxyMaxBody, Budget: budget, Jobs: eng, Idempotency: idem, Events: evlog,
		Changes: cs, EventsInterval: cfg.EventsInterval, EventsMinInterval: cfg.EventsMinInterval, Webhooks: hooks,
		ProxyClient: &http.Client{Transport: podioRT},
		Metrics:     tel.metrics, MetricsToken: cfg.MetricsToken, TracerProvider: tel.tracer, Propagator: tel.propagator,
		CacheTTL: api.CacheTTLs{
			Me: cfg.CacheTTLMe, Organizations: cfg.CacheTTLOrgs, Workspaces: cfg.CacheTTLWorkspaces,
			Users: cfg.CacheTTLUsers, MaxStale: cfg.CacheMaxStale,
		},
	})
	if err != nil {
		return nil, err
	}
	poller, err := changes.NewPoller(changes.PollerOptions{Store: cs, Poll: srv.PollAccount, Logger: log})
	if err != nil {
		return nil, err
	}
	return &gateway{stopKeys: stopKeys, api: srv, store: st, redis: rc, cacheRedis: cacheRedis, jobs: eng, events: evlog, poller: poller,
		hookDispatcher: disp, hookWorker: hookWorker, telemetry: tel}, nil
}

// newLogger returns a JSON logger at the configured level.
func newLogger(w io.Writer, level string) *slog.Logger {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		l = slog.LevelInfo
	}
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: l}))
}
