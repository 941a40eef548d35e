package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/caarlos0/env/v11"

	"github.com/dirgate/dirgate/internal/crypt"
	"github.com/dirgate/dirgate/internal/tenantauth"
)

// Config is dirgate's whole configuration. Each field's env tag names its variable, envDefault
// gives the default, doc documents it, and secret marks values that Redacted hides ("true": the
// whole value; "url": the password inside a URL).
type Config struct {
	Addr               string        `env:"DIRGATE_ADDR" envDefault:":8080" doc:"listen address (host:port) of the gateway"`
	PublicURL          string        `env:"DIRGATE_PUBLIC_URL" doc:"external base URL of the gateway, used for link URLs and the OAuth redirect; https unless the host is localhost (required by serve)"`
	RedisURL           string        `env:"DIRGATE_REDIS_URL" envDefault:"redis://127.0.0.1:6379/0" secret:"url" doc:"Redis URL (redis:// or rediss://) of a standalone server"`
	RedisAddrs         []string      `env:"DIRGATE_REDIS_ADDRS" doc:"comma-separated Sentinel (with DIRGATE_REDIS_MASTER_NAME) or Cluster seed addresses; overrides DIRGATE_REDIS_URL"`
	RedisMasterName    string        `env:"DIRGATE_REDIS_MASTER_NAME" doc:"Sentinel master name (with DIRGATE_REDIS_ADDRS)"`
	RedisUsername      string        `env:"DIRGATE_REDIS_USERNAME" doc:"Redis ACL user name (with DIRGATE_REDIS_ADDRS)"`
	RedisPassword      string        `env:"DIRGATE_REDIS_PASSWORD" secret:"true" doc:"Redis password (with DIRGATE_REDIS_ADDRS)"`
	RedisPrefix        string        `env:"DIRGATE_REDIS_PREFIX" envDefault:"dirgate:" doc:"prefix of every Redis key dirgate writes"`
	JWTSecret          string        `env:"DIRGATE_JWT_HS256_SECRET" secret:"true" doc:"HS256 secret (at least 32 bytes) for tenant JWTs, for single-tenant deployments (whoever holds it signs for any tenant); set this or one public key source"`
	JWTPublicKeys      string        `env:"DIRGATE_JWT_PUBLIC_KEYS_FILE" doc:"PEM file of RS256/ES256/EdDSA public keys for tenant JWTs, each named by a kid header (else key-1, key-2...)"`
	JWTJWKSFile        string        `env:"DIRGATE_JWT_JWKS_FILE" doc:"JWK Set file (RFC 7517) of public keys for tenant JWTs"`
	JWTJWKSURL         string        `env:"DIRGATE_JWT_JWKS_URL" doc:"https URL of a JWK Set of public keys for tenant JWTs, as identity providers publish them (read hourly, and at most every 5 minutes for an unknown kid; redirects not followed)"`
	JWTKeyTenants      string        `env:"DIRGATE_JWT_KEY_TENANTS" doc:"with public keys: which tenants each key may sign for, \"kid=tenant-a,acme-*;kid2=*\" (exact ids, or prefixes ending in *); required with public keys"`
	JWTIssuer          string        `env:"DIRGATE_JWT_ISSUER" doc:"required iss of tenant JWTs (checked when set; required with public keys)"`
	JWTAudience        string        `env:"DIRGATE_JWT_AUDIENCE" doc:"required aud of tenant JWTs (checked when set; required with public keys)"`
	JWTMaxLifetime     time.Duration `env:"DIRGATE_JWT_MAX_LIFETIME" envDefault:"24h" doc:"longest exp - iat of a tenant JWT (iat is required)"`
	EncryptionKeys     string        `env:"DIRGATE_ENCRYPTION_KEYS" secret:"true" doc:"credential encryption keys \"kid:base64(32 bytes),...\"; the first encrypts, all decrypt (required by serve)"`
	PodioClientID      string        `env:"DIRGATE_PODIO_CLIENT_ID" doc:"Podio OAuth client id (required by serve)"`
	PodioClientSecret  string        `env:"DIRGATE_PODIO_CLIENT_SECRET" secret:"true" doc:"Podio OAuth client secret (required by serve)"`
	PodioAPIURL        string        `env:"DIRGATE_PODIO_API_URL" envDefault:"https://api.podio.com/" doc:"base URL of the Podio API"`
	PodioAuthURL       string        `env:"DIRGATE_PODIO_AUTH_URL" envDefault:"https://podio.com/" doc:"base URL of Podio's OAuth authorization pages"`
	AllowPasswordGrant bool          `env:"DIRGATE_ALLOW_PASSWORD_GRANT" envDefault:"false" doc:"allow linking accounts with a Podio username and password"`
	RefreshMargin      time.Duration `env:"DIRGATE_REFRESH_MARGIN" envDefault:"15m" doc:"refresh a Podio access token when less than this remains"`
	LinkTokenTTL       time.Duration `env:"DIRGATE_LINK_TOKEN_TTL" envDefault:"10m" doc:"lifetime of a link token (at most 10m)"`
	TenantMaxOpen      int           `env:"DIRGATE_TENANT_MAX_OPEN" envDefault:"1000" doc:"most unexpired link tokens, and separately picker sessions, one tenant may hold (more: 429)"`
	IdemMaxKeys        int           `env:"DIRGATE_IDEMPOTENCY_MAX_KEYS" envDefault:"10000" doc:"most Idempotency-Key records (running or kept) one tenant may hold at once (a new key beyond: 429 too_many_idempotency_keys)"`
	IdemMaxBytes       int64         `env:"DIRGATE_IDEMPOTENCY_MAX_BYTES" envDefault:"67108864" doc:"most bytes of kept Idempotency-Key answers one tenant may hold at once (a new key beyond: 429 too_many_idempotency_keys)"`
	RequestTimeout     time.Duration `env:"DIRGATE_REQUEST_TIMEOUT" envDefault:"30s" doc:"upper bound on the handling of one API request"`
	PodioTimeout       time.Duration `env:"DIRGATE_PODIO_TIMEOUT" envDefault:"15s" doc:"timeout of one call to Podio"`
	RedisTimeout       time.Duration `env:"DIRGATE_REDIS_TIMEOUT" envDefault:"500ms" doc:"dial, read and write timeout of Redis calls"`
	ShutdownTimeout    time.Duration `env:"DIRGATE_SHUTDOWN_TIMEOUT" envDefault:"20s" doc:"how long shutdown waits for requests in flight"`
	HTTPReadTimeout    time.Duration `env:"DIRGATE_HTTP_READ_TIMEOUT" envDefault:"30s" doc:"how long a client may take to send a whole request, headers and body (slower: the connection is cut, 408 where an answer can still be written)"`
	HTTPWriteTimeout   time.Duration `env:"DIRGATE_HTTP_WRITE_TIMEOUT" envDefault:"60s" doc:"how long an answer may take from the end of the request headers until it is written; longer than DIRGATE_REQUEST_TIMEOUT (streamed answers use DIRGATE_HTTP_STREAM_TIMEOUT instead)"`
	HTTPStreamTimeout  time.Duration `env:"DIRGATE_HTTP_STREAM_TIMEOUT" envDefault:"30s" doc:"how long a streamed answer (CSV export, proxied download) may wait for the client to take its next chunk, or for Podio to send it, before the connection is cut"`
	HTTPIdleTimeout    time.Duration `env:"DIRGATE_HTTP_IDLE_TIMEOUT" envDefault:"120s" doc:"how long an idle keep-alive connection stays open"`
	HTTPMaxHeaderBytes int           `env:"DIRGATE_HTTP_MAX_HEADER_BYTES" envDefault:"65536" doc:"largest request line and headers accepted, in bytes (larger: 431)"`
	LogLevel           string        `env:"DIRGATE_LOG_LEVEL" envDefault:"info" doc:"log level: debug, info, warn or error"`
	MetricsToken       string        `env:"DIRGATE_METRICS_TOKEN" secret:"true" doc:"bearer token GET /metrics requires; unset: /metrics is open"`
	OTLPEndpoint       string        `env:"OTEL_EXPORTER_OTLP_ENDPOINT" secret:"url" doc:"OTLP/HTTP collector URL; set: traces are exported (the other OTEL_EXPORTER_OTLP_* variables apply); unset: no tracing"`

	CacheRedisURL      string        `env:"DIRGATE_CACHE_REDIS_URL" secret:"url" doc:"Redis URL (redis:// or rediss://) for cached directory data only; unset: the main Redis"`
	CacheTimeout       time.Duration `env:"DIRGATE_CACHE_TIMEOUT" envDefault:"50ms" doc:"timeout of one cache read in Redis; slower or failing cache reads go to Podio (fail open)"`
	CacheTTLMe         time.Duration `env:"DIRGATE_CACHE_TTL_ME" envDefault:"5m" doc:"how long /me is served from the cache"`
	CacheTTLOrgs       time.Duration `env:"DIRGATE_CACHE_TTL_ORGANIZATIONS" envDefault:"10m" doc:"how long organizations are served from the cache"`
	CacheTTLWorkspaces time.Duration `env:"DIRGATE_CACHE_TTL_WORKSPACES" envDefault:"10m" doc:"how long workspaces are served from the cache"`
	CacheTTLUsers      time.Duration `env:"DIRGATE_CACHE_TTL_USERS" envDefault:"5m" doc:"how long users (lists and single users) are served from the cache"`
	CacheMaxStale      time.Duration `env:"DIRGATE_CACHE_MAX_STALE" envDefault:"1h" doc:"how much older than its TTL cached data may be when it is served because Podio fails (0: never serve stale data)"`
	CursorTTL          time.Duration `env:"DIRGATE_CURSOR_TTL" envDefault:"1h" doc:"lifetime of a list cursor (next_cursor)"`
	ProxyAddr          string        `env:"DIRGATE_PROXY_ADDR" doc:"listen address of the root proxy listener, which serves Podio's paths at its root for Podio SDKs (off when unset)"`
	ProxyMaxBody       int64         `env:"DIRGATE_PROXY_MAX_BODY" envDefault:"10485760" doc:"largest request body the proxy forwards, in bytes (larger: 413)"`
	QuotaGeneral       int           `env:"DIRGATE_QUOTA_GENERAL_LIMIT" envDefault:"1000" doc:"Podio calls per rolling hour per (Podio user, client id), shared by every replica (Podio's documented general limit)"`
	QuotaRateLimited   int           `env:"DIRGATE_QUOTA_RATE_LIMITED_LIMIT" envDefault:"250" doc:"calls per rolling hour of Podio's \"rate limited\" operations (Podio's documented limit)"`
	QuotaRLRoutes      []string      `env:"DIRGATE_QUOTA_RATE_LIMITED_ROUTES" doc:"comma-separated operations in Podio's rate-limited class, as \"METHOD /path\" with {id} for ids, e.g. \"GET /org/{id}/member/\" (Podio does not say which; none by default)"`
	QuotaReserve       float64       `env:"DIRGATE_QUOTA_RESERVE" envDefault:"0.2" doc:"share of each hourly limit that background work (jobs, pollers) leaves to interactive calls"`
	QuotaCooldown      time.Duration `env:"DIRGATE_QUOTA_DEFAULT_COOLDOWN" envDefault:"60s" doc:"how long to stop calling Podio after a 420 that names no wait"`
	JobConcurrency     int           `env:"DIRGATE_JOB_CONCURRENCY" envDefault:"4" doc:"membership jobs one replica runs at once (each is one Podio write at a time)"`
	JobTenantConc      int           `env:"DIRGATE_JOB_TENANT_CONCURRENCY" envDefault:"2" doc:"jobs of one tenant one replica runs at once (the others wait, so one tenant cannot take every worker)"`
	JobTenantMax       int           `env:"DIRGATE_JOB_TENANT_MAX_ACTIVE" envDefault:"20" doc:"unfinished jobs (queued, running, waiting) one tenant may have (more: 429 too_many_jobs)"`
	JobRetention       time.Duration `env:"DIRGATE_JOB_RETENTION" envDefault:"168h" doc:"how long a finished job stays readable"`
	Replicas           int           `env:"DIRGATE_REPLICAS" envDefault:"1" doc:"number of gateway replicas; while Redis is down each one spends at most 1/DIRGATE_REPLICAS of the quota on its own"`
	PodioRetries       int           `env:"DIRGATE_PODIO_RETRIES" envDefault:"2" doc:"retries of idempotent Podio calls on network errors, 502, 503 and 504 (full-jitter backoff, 100 ms base, 2 s cap, within the request deadline)"`
	BreakerFailures    int           `env:"DIRGATE_BREAKER_FAILURES" envDefault:"5" doc:"consecutive Podio failures (network errors, 5xx) that open the circuit breaker"`
	BreakerOpen        time.Duration `env:"DIRGATE_BREAKER_OPEN" envDefault:"30s" doc:"how long the circuit breaker stays open before one probe call"`
	EventRetention     time.Duration `env:"DIRGATE_EVENT_RETENTION" envDefault:"168h" doc:"how long change events stay in the events feed (GET /events)"`
	EventsInterval     time.Duration `env:"DIRGATE_EVENTS_INTERVAL" envDefault:"10m" doc:"how often an account with events enabled is polled for changes, unless it sets its own interval"`
	EventsMinInterval  time.Duration `env:"DIRGATE_EVENTS_MIN_INTERVAL" envDefault:"1m" doc:"the shortest poll interval an account may set (PATCH /integrated-accounts/{id})"`
	AllowPrivateHooks  bool          `env:"DIRGATE_WEBHOOK_ALLOW_PRIVATE" envDefault:"false" doc:"let webhooks target loopback, private, link-local and other internal addresses (on in dev mode; off in production, where it would let tenants reach your internal network)"`
	AllowHTTPHooks     bool          `env:"DIRGATE_WEBHOOK_ALLOW_HTTP" envDefault:"false" doc:"let webhooks use plain http URLs (on in dev mode; off in production, where deliveries would carry tenant data in the clear)"`
	WebhookTenantConc  int           `env:"DIRGATE_WEBHOOK_TENANT_CONCURRENCY" envDefault:"3" doc:"webhook deliveries of one tenant one replica makes at once, of its 10 (the others wait, so one tenant's slow endpoints cannot hold every worker)"`
	WebhookRetryWindow time.Duration `env:"DIRGATE_WEBHOOK_RETRY_WINDOW" envDefault:"24h" doc:"how long a webhook delivery is retried (backoff from 10s doubling up to 1h) before it is marked failed"`
	PodioPageSize      int           `env:"DIRGATE_PODIO_PAGE_SIZE" envDefault:"100" doc:"page size asked of Podio's paged member lists (the largest Podio serves; Podio documents no maximum)"`
}

const (
	// MinJWTSecret is the shortest DIRGATE_JWT_HS256_SECRET accepted, in bytes.
	MinJWTSecret = 32
	// MaxLinkTokenTTL is the longest DIRGATE_LINK_TOKEN_TTL accepted.
	MaxLinkTokenTTL = 10 * time.Minute
	// MaxPodioPageSize is the largest DIRGATE_PODIO_PAGE_SIZE accepted.
	MaxPodioPageSize = 1000
)

// Load parses environ ("NAME=value" entries, as from os.Environ) into a Config, applying defaults.
// It reads nothing else: a nil environ yields the defaults. Load does not judge safety; see
// Validate.
func Load(environ []string) (Config, error) {
	m := make(map[string]string, len(environ))
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok {
			m[k] = v
		}
	}
	var c Config
	if err := env.ParseWithOptions(&c, env.Options{Environment: m}); err != nil {
		return Config{}, loadError(err)
	}
	c.RedisAddrs = cleanList(c.RedisAddrs)
	c.QuotaRLRoutes = cleanList(c.QuotaRLRoutes)
	return c, nil
}

// loadError rewrites env's errors to name the variable rather than the Go field.
func loadError(err error) error {
	var agg env.AggregateError
	if !errors.As(err, &agg) {
		return fmt.Errorf("config: %w", err)
	}
	names := fieldVars()
	errs := make([]error, 0, len(agg.Errors))
	for _, e := range agg.Errors {
		var pe env.ParseError
		if errors.As(e, &pe) {
			errs = append(errs, fmt.Errorf("config: %s: invalid %s: %w", names[pe.Name], pe.Type, pe.Err))
			continue
		}
		errs = append(errs, fmt.Errorf("config: %w", e))
	}
	return errors.Join(errs...)
}

// cleanList trims the items of a comma-separated list and drops empty ones.
func cleanList(in []string) []string {
	var out []string
	for _, s := range in {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// Var describes one configuration variable.
type Var struct {
	// Name is the environment variable.
	Name string
	// Default is the value used when the variable is unset or empty ("" when none).
	Default string
	// Doc says what the variable does.
	Doc string
}

// Vars lists every configuration variable in declaration order, read from Config's struct tags.
func Vars() []Var {
	t := reflect.TypeFor[Config]()
	vars := make([]Var, 0, t.NumField())
	for f := range t.Fields() {
		name := envName(f)
		if name == "" {
			continue
		}
		vars = append(vars, Var{Name: name, Default: f.Tag.Get("envDefault"), Doc: f.Tag.Get("doc")})
	}
	return vars
}

// envName is the variable of a field ("" when the field has no env tag).
func envName(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("env"), ",")
	return name
}

// fieldVars maps Go field names to variable names.
func fieldVars() map[string]string {
	m := map[string]string{}
	for f := range reflect.TypeFor[Config]().Fields() {
		m[f.Name] = envName(f)
	}
	return m
}

// Redacted returns every variable with its effective value, for a start-up log line. Secrets are
// replaced by "[set]" or "[unset]"; a password inside a URL is replaced by "xxxxx".
func (c Config) Redacted() map[string]string {
	out := map[string]string{}
	v := reflect.ValueOf(c)
	t := v.Type()
	for i := range t.NumField() {
		f := t.Field(i)
		name := envName(f)
		if name == "" {
			continue
		}
		val := formatValue(v.Field(i))
		switch f.Tag.Get("secret") {
		case "true":
			val = "[unset]"
			if !v.Field(i).IsZero() {
				val = "[set]"
			}
		case "url":
			val = redactURL(val)
		}
		out[name] = val
	}
	return out
}

// formatValue renders a field the way it would be written in the environment.
func formatValue(v reflect.Value) string {
	switch x := v.Interface().(type) {
	case string:
		return x
	case bool:
		return strconv.FormatBool(x)
	case time.Duration:
		return x.String()
	case []string:
		return strings.Join(x, ",")
	default:
		return fmt.Sprint(x)
	}
}

// redactURL hides the password of a URL; a value that does not parse is hidden entirely, since it
// may be a password typed in the wrong place.
func redactURL(s string) string {
	if s == "" {
		return ""
	}
	u, err := url.Parse(s)
	if err != nil {
		return "[set]"
	}
	return u.Redacted()
}

// Validate reports every unsafe or unusable setting, for "dirgate serve". Each problem names the
// variable to set; all problems are joined in one error. Messages never contain secret values.
func (c Config) Validate() error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	if c.Addr == "" {
		add("DIRGATE_ADDR is empty: set a listen address such as :8080")
	}
	if err := checkBaseURL(c.PublicURL, true); err != nil {
		add("DIRGATE_PUBLIC_URL: %w", err)
	}

	sources := 0
	for _, v := range []string{c.JWTSecret, c.JWTPublicKeys, c.JWTJWKSFile, c.JWTJWKSURL} {
		if v != "" {
			sources++
		}
	}
	public := c.JWTSecret == "" && sources > 0
	switch {
	case sources == 0:
		add("no tenant JWT key: set DIRGATE_JWT_HS256_SECRET (at least %d bytes, single tenant) or one of DIRGATE_JWT_PUBLIC_KEYS_FILE, DIRGATE_JWT_JWKS_FILE, DIRGATE_JWT_JWKS_URL", MinJWTSecret)
	case sources > 1:
		add("more than one of DIRGATE_JWT_HS256_SECRET, DIRGATE_JWT_PUBLIC_KEYS_FILE, DIRGATE_JWT_JWKS_FILE and DIRGATE_JWT_JWKS_URL is set: set only one")
	case c.JWTSecret != "" && len(c.JWTSecret) < MinJWTSecret:
		add("DIRGATE_JWT_HS256_SECRET is too short: set at least %d bytes (e.g. openssl rand -base64 48)", MinJWTSecret)
	}
	if public && sources == 1 {
		if c.JWTIssuer == "" {
			add("DIRGATE_JWT_ISSUER is not set: with public keys, tokens must name their issuer (set it to the iss your identity provider writes)")
		}
		if c.JWTAudience == "" {
			add("DIRGATE_JWT_AUDIENCE is not set: with public keys, tokens must be meant for this gateway (set it to the aud your identity provider writes)")
		}
		if c.JWTKeyTenants == "" {
			add("DIRGATE_JWT_KEY_TENANTS is not set: with public keys, say which tenants each key may sign for, e.g. \"kid1=tenant-a,acme-*\"")
		} else if _, err := tenantauth.ParseKeyTenants(c.JWTKeyTenants); err != nil {
			add("DIRGATE_JWT_KEY_TENANTS: %w", err)
		}
	}
	if c.JWTMaxLifetime <= 0 {
		add("DIRGATE_JWT_MAX_LIFETIME is %s: set a positive duration such as 24h", c.JWTMaxLifetime)
	}

	if c.EncryptionKeys == "" {
		add("DIRGATE_ENCRYPTION_KEYS is not set: set \"kid:<base64 of 32 random bytes>\"")
	} else if _, err := crypt.ParseKeys(c.EncryptionKeys); err != nil {
		// The crypt package owns the key format; its errors never carry key material.
		add("DIRGATE_ENCRYPTION_KEYS: %w", err)
	}

	if c.PodioClientID == "" {
		add("DIRGATE_PODIO_CLIENT_ID is not set: set the Podio OAuth client id")
	}
	if c.PodioClientSecret == "" {
		add("DIRGATE_PODIO_CLIENT_SECRET is not set: set the Podio OAuth client secret")
	}
	if err := checkBaseURL(c.PodioAPIURL, false); err != nil {
		add("DIRGATE_PODIO_API_URL: %w", err)
	}
	if err := checkBaseURL(c.PodioAuthURL, false); err != nil {
		add("DIRGATE_PODIO_AUTH_URL: %w", err)
	}

	if len(c.RedisAddrs) == 0 {
		if err := checkRedisURL(c.RedisURL); err != nil {
			add("DIRGATE_REDIS_URL: %w (or set DIRGATE_REDIS_ADDRS)", err)
		}
		if c.RedisMasterName != "" {
			add("DIRGATE_REDIS_MASTER_NAME is set without DIRGATE_REDIS_ADDRS: set the Sentinel addresses")
		}
	}
	if c.RedisPrefix == "" {
		add("DIRGATE_REDIS_PREFIX is empty: set a key prefix such as dirgate:")
	}

	if c.LinkTokenTTL <= 0 || c.LinkTokenTTL > MaxLinkTokenTTL {
		add("DIRGATE_LINK_TOKEN_TTL is %s: set a duration above 0 and at most %s", c.LinkTokenTTL, MaxLinkTokenTTL)
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"DIRGATE_REFRESH_MARGIN", c.RefreshMargin},
		{"DIRGATE_REQUEST_TIMEOUT", c.RequestTimeout},
		{"DIRGATE_PODIO_TIMEOUT", c.PodioTimeout},
		{"DIRGATE_REDIS_TIMEOUT", c.RedisTimeout},
		{"DIRGATE_SHUTDOWN_TIMEOUT", c.ShutdownTimeout},
		{"DIRGATE_HTTP_READ_TIMEOUT", c.HTTPReadTimeout},
		{"DIRGATE_HTTP_WRITE_TIMEOUT", c.HTTPWriteTimeout},
		{"DIRGATE_HTTP_STREAM_TIMEOUT", c.HTTPStreamTimeout},
		{"DIRGATE_HTTP_IDLE_TIMEOUT", c.HTTPIdleTimeout},
		{"DIRGATE_CACHE_TIMEOUT", c.CacheTimeout},
		{"DIRGATE_CACHE_TTL_ME", c.CacheTTLMe},
		{"DIRGATE_CACHE_TTL_ORGANIZATIONS", c.CacheTTLOrgs},
		{"DIRGATE_CACHE_TTL_WORKSPACES", c.CacheTTLWorkspaces},
		{"DIRGATE_CACHE_TTL_USERS", c.CacheTTLUsers},
		{"DIRGATE_CURSOR_TTL", c.CursorTTL},
		{"DIRGATE_EVENT_RETENTION", c.EventRetention},
		{"DIRGATE_EVENTS_INTERVAL", c.EventsInterval},
		{"DIRGATE_EVENTS_MIN_INTERVAL", c.EventsMinInterval},
		{"DIRGATE_WEBHOOK_RETRY_WINDOW", c.WebhookRetryWindow},
	} {
		if d.v <= 0 {
			add("%s is %s: set a positive duration such as 30s", d.name, d.v)
		}
	}

	if c.HTTPWriteTimeout > 0 && c.RequestTimeout > 0 && c.HTTPWriteTimeout <= c.RequestTimeout {
		add("DIRGATE_HTTP_WRITE_TIMEOUT (%s) must be longer than DIRGATE_REQUEST_TIMEOUT (%s), or answers are cut before they are written: raise it", c.HTTPWriteTimeout, c.RequestTimeout)
	}
	if c.HTTPMaxHeaderBytes < 4<<10 || c.HTTPMaxHeaderBytes > 1<<20 {
		add("DIRGATE_HTTP_MAX_HEADER_BYTES is %d: set 4096 to 1048576 bytes (tenant tokens are up to 8 KiB)", c.HTTPMaxHeaderBytes)
	}
	if c.EventsMinInterval > 0 && c.EventsInterval < c.EventsMinInterval {
		add("DIRGATE_EVENTS_INTERVAL is %s, below DIRGATE_EVENTS_MIN_INTERVAL (%s): raise it or lower the minimum", c.EventsInterval, c.EventsMinInterval)
	}
	if c.CacheMaxStale < 0 {
		add("DIRGATE_CACHE_MAX_STALE is %s: set 0 or a positive duration such as 1h", c.CacheMaxStale)
	}
	if c.JobTenantConc < 1 || c.JobTenantMax < 1 || c.JobRetention <= 0 {
		add("DIRGATE_JOB_TENANT_CONCURRENCY and DIRGATE_JOB_TENANT_MAX_ACTIVE must be at least 1 and DIRGATE_JOB_RETENTION positive (defaults 2, 20, 168h)")
	}
	if c.WebhookTenantConc < 1 {
		add("DIRGATE_WEBHOOK_TENANT_CONCURRENCY is %d: set at least 1 (default 3)", c.WebhookTenantConc)
	}
	if c.TenantMaxOpen < 1 {
		add("DIRGATE_TENANT_MAX_OPEN is %d: set at least 1 (default 1000)", c.TenantMaxOpen)
	}
	if c.IdemMaxKeys < 1 || c.IdemMaxBytes < 1<<20 {
		add("DIRGATE_IDEMPOTENCY_MAX_KEYS must be at least 1 and DIRGATE_IDEMPOTENCY_MAX_BYTES at least 1048576 (defaults 10000 and 67108864)")
	}
	if c.PodioPageSize < 1 || c.PodioPageSize > MaxPodioPageSize {
		add("DIRGATE_PODIO_PAGE_SIZE is %d: set 1 to %d (100 is Podio's documented default)", c.PodioPageSize, MaxPodioPageSize)
	}
	if c.QuotaGeneral < 1 || c.QuotaRateLimited < 1 {
		add("DIRGATE_QUOTA_GENERAL_LIMIT and DIRGATE_QUOTA_RATE_LIMITED_LIMIT must be at least 1 (Podio: 1000 and 250)")
	}
	if c.QuotaReserve < 0 || c.QuotaReserve >= 1 {
		add("DIRGATE_QUOTA_RESERVE is %v: set a share from 0 to below 1, such as 0.2", c.QuotaReserve)
	}
	for _, r := range c.QuotaRLRoutes {
		if m, p, ok := strings.Cut(r, " "); !ok || m != strings.ToUpper(m) || !strings.HasPrefix(p, "/") {
			add("DIRGATE_QUOTA_RATE_LIMITED_ROUTES: %q is not \"METHOD /path\"", r)
		}
	}
	if c.QuotaCooldown <= 0 || c.BreakerOpen <= 0 {
		add("DIRGATE_QUOTA_DEFAULT_COOLDOWN and DIRGATE_BREAKER_OPEN must be positive durations")
	}
	if c.Replicas < 1 || c.PodioRetries < 0 || c.PodioRetries > 5 || c.BreakerFailures < 1 {
		add("DIRGATE_REPLICAS and DIRGATE_BREAKER_FAILURES must be at least 1, DIRGATE_PODIO_RETRIES 0 to 5")
	}
	if c.ProxyMaxBody < 1 {
		add("DIRGATE_PROXY_MAX_BODY is %d: set a positive number of bytes such as 10485760", c.ProxyMaxBody)
	}
	if c.ProxyAddr != "" && c.ProxyAddr == c.Addr {
		add("DIRGATE_PROXY_ADDR equals DIRGATE_ADDR: give the root proxy listener its own address")
	}
	if c.CacheRedisURL != "" {
		if err := checkRedisURL(c.CacheRedisURL); err != nil {
			add("DIRGATE_CACHE_REDIS_URL: %w", err)
		}
	}

	switch strings.ToLower(c.LogLevel) {
	case "debug", "info", "warn", "error":
	default:
		add("DIRGATE_LOG_LEVEL is %q: set debug, info, warn or error", c.LogLevel)
	}
	return errors.Join(errs...)
}

// checkBaseURL accepts an absolute http(s) URL without credentials, query or fragment; plain
// http only on a loopback host.
func checkBaseURL(s string, required bool) error {
	if s == "" {
		if required {
			return errors.New("not set: set the absolute https URL the gateway is reached at")
		}
		return errors.New("empty: set an absolute https URL")
	}
	u, err := url.Parse(s)
	if err != nil {
		return errors.New("not a valid URL: set an absolute https URL")
	}
	switch {
	case u.Scheme != "https" && u.Scheme != "http", u.Host == "":
		return errors.New("not an absolute http(s) URL: set an absolute https URL")
	case u.User != nil:
		return errors.New("must not contain credentials")
	case u.RawQuery != "" || u.Fragment != "" || u.ForceQuery:
		return errors.New("must not contain a query or fragment")
	case u.Scheme == "http" && !isLoopback(u.Hostname()):
		return errors.New("plain http is allowed only for localhost: set an https URL")
	}
	return nil
}

// isLoopback reports whether host is localhost or a loopback IP literal.
func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// checkRedisURL accepts a redis:// or rediss:// URL with a host. Its error never repeats the URL,
// which may hold a password.
func checkRedisURL(s string) error {
	if s == "" {
		return errors.New("not set: set redis://host:port/db")
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "redis" && u.Scheme != "rediss") || u.Host == "" {
		return errors.New("not a redis:// or rediss:// URL")
	}
	return nil
}
