package config

import (
	"encoding/base64"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

const (
	testSecret       = "jwt-secret-0123456789-0123456789-abc"
	testClientSecret = "podio-client-secret-value"
	testRedisPass    = "redis-password-value"
)

var testKey = "k1:" + base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef"))

// validEnv is a complete, safe serve configuration.
func validEnv() map[string]string {
	return map[string]string{
		"DIRGATE_PUBLIC_URL":          "https://gw.example.com",
		"DIRGATE_JWT_HS256_SECRET":    testSecret,
		"DIRGATE_ENCRYPTION_KEYS":     testKey,
		"DIRGATE_PODIO_CLIENT_ID":     "client",
		"DIRGATE_PODIO_CLIENT_SECRET": testClientSecret,
	}
}

func environ(m map[string]string) []string {
	var out []string
	for k, v := range m {
		out = append(out, k+"="+v)
	}
	return out
}

func load(t *testing.T, m map[string]string) Config {
	t.Helper()
	c, err := Load(environ(m))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return c
}

func TestLoadDefaults(t *testing.T) {
	t.Parallel()
	want := Config{
		Addr:               ":8080",
		RedisURL:           "redis://127.0.0.1:6379/0",
		RedisPrefix:        "dirgate:",
		PodioAPIURL:        "https://api.podio.com/",
		PodioAuthURL:       "https://podio.com/",
		RefreshMargin:      15 * time.Minute,
		TenantMaxOpen:      1000,
		JWTMaxLifetime:     24 * time.Hour,
		IdemMaxKeys:        10000,
		IdemMaxBytes:       64 << 20,
		LinkTokenTTL:       10 * time.Minute,
		RequestTimeout:     30 * time.Second,
		PodioTimeout:       15 * time.Second,
		RedisTimeout:       500 * time.Millisecond,
		ShutdownTimeout:    20 * time.Second,
		HTTPReadTimeout:    30 * time.Second,
		HTTPWriteTimeout:   time.Minute,
		HTTPStreamTimeout:  30 * time.Second,
		HTTPIdleTimeout:    2 * time.Minute,
		HTTPMaxHeaderBytes: 64 << 10,
		LogLevel:           "info",

		CacheTimeout:       50 * time.Millisecond,
		CacheTTLMe:         5 * time.Minute,
		CacheTTLOrgs:       10 * time.Minute,
		CacheTTLWorkspaces: 10 * time.Minute,
		CacheTTLUsers:      5 * time.Minute,
		CacheMaxStale:      time.Hour,
		CursorTTL:          time.Hour,
		PodioPageSize:      100,
		ProxyMaxBody:       10 << 20,
		QuotaGeneral:       1000,
		QuotaRateLimited:   250,
		QuotaReserve:       0.2,
		QuotaCooldown:      time.Minute,
		JobConcurrency:     4,
		JobTenantConc:      2,
		JobTenantMax:       20,
		JobRetention:       7 * 24 * time.Hour,
		Replicas:           1,
		PodioRetries:       2,
		BreakerFailures:    5,
		BreakerOpen:        30 * time.Second,
		EventRetention:     7 * 24 * time.Hour,
		EventsInterval:     10 * time.Minute,
		EventsMinInterval:  time.Minute,
		WebhookTenantConc:  3,
		WebhookRetryWindow: 24 * time.Hour,
	}
	for name, env := range map[string][]string{
		"nil":                 nil,
		"unrelated variables": {"HOME=/root", "PATH=/bin", "NOEQUALS"},
		"empty values":        {"DIRGATE_ADDR=", "DIRGATE_REFRESH_MARGIN="},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			got, err := Load(env)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("defaults (-want +got):\n%s", diff)
			}
		})
	}
}

// TestLoadIgnoresProcessEnvironment checks that Load reads only its argument.
func TestLoadIgnoresProcessEnvironment(t *testing.T) {
	t.Setenv("DIRGATE_ADDR", ":9999") // not parallel: it sets the process environment
	c, err := Load(nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Addr != ":8080" {
		t.Errorf("Addr = %q: Load read the process environment", c.Addr)
	}
}

func TestLoadParses(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct {
		env  map[string]string
		got  func(Config) any
		want any
	}{
		"string":                      {map[string]string{"DIRGATE_PUBLIC_URL": "https://x"}, func(c Config) any { return c.PublicURL }, "https://x"},
		"value with equals":           {map[string]string{"DIRGATE_JWT_HS256_SECRET": "a=b=c"}, func(c Config) any { return c.JWTSecret }, "a=b=c"},
		"duration minutes":            {map[string]string{"DIRGATE_REFRESH_MARGIN": "5m"}, func(c Config) any { return c.RefreshMargin }, 5 * time.Minute},
		"duration mixed":              {map[string]string{"DIRGATE_REQUEST_TIMEOUT": "1m30s"}, func(c Config) any { return c.RequestTimeout }, 90 * time.Second},
		"duration ms":                 {map[string]string{"DIRGATE_REDIS_TIMEOUT": "50ms"}, func(c Config) any { return c.RedisTimeout }, 50 * time.Millisecond},
		"bool true":                   {map[string]string{"DIRGATE_ALLOW_PASSWORD_GRANT": "true"}, func(c Config) any { return c.AllowPasswordGrant }, true},
		"bool 1":                      {map[string]string{"DIRGATE_ALLOW_PASSWORD_GRANT": "1"}, func(c Config) any { return c.AllowPasswordGrant }, true},
		"bool false":                  {map[string]string{"DIRGATE_ALLOW_PASSWORD_GRANT": "false"}, func(c Config) any { return c.AllowPasswordGrant }, false},
		"webhook private targets":     {map[string]string{"DIRGATE_WEBHOOK_ALLOW_PRIVATE": "true"}, func(c Config) any { return c.AllowPrivateHooks }, true},
		"webhook http targets":        {map[string]string{"DIRGATE_WEBHOOK_ALLOW_HTTP": "true"}, func(c Config) any { return c.AllowHTTPHooks }, true},
		"webhook tenant concurrency":  {map[string]string{"DIRGATE_WEBHOOK_TENANT_CONCURRENCY": "5"}, func(c Config) any { return c.WebhookTenantConc }, 5},
		"list":                        {map[string]string{"DIRGATE_REDIS_ADDRS": "a:26379,b:26379,c:26379"}, func(c Config) any { return c.RedisAddrs }, []string{"a:26379", "b:26379", "c:26379"}},
		"list with spaces and blanks": {map[string]string{"DIRGATE_REDIS_ADDRS": " a:1 , ,b:2,"}, func(c Config) any { return c.RedisAddrs }, []string{"a:1", "b:2"}},
		"list single":                 {map[string]string{"DIRGATE_REDIS_ADDRS": "a:1"}, func(c Config) any { return c.RedisAddrs }, []string{"a:1"}},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			if diff := cmp.Diff(tc.want, tc.got(load(t, tc.env))); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestLoadErrorsNameTheVariable(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct {
		env  []string
		want []string
	}{
		"bad duration": {[]string{"DIRGATE_REFRESH_MARGIN=soon"}, []string{"DIRGATE_REFRESH_MARGIN"}},
		"bad bool":     {[]string{"DIRGATE_ALLOW_PASSWORD_GRANT=maybe"}, []string{"DIRGATE_ALLOW_PASSWORD_GRANT"}},
		"two bad":      {[]string{"DIRGATE_PODIO_TIMEOUT=x", "DIRGATE_SHUTDOWN_TIMEOUT=10"}, []string{"DIRGATE_PODIO_TIMEOUT", "DIRGATE_SHUTDOWN_TIMEOUT"}},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			_, err := Load(tc.env)
			if err == nil {
				t.Fatal("Load succeeded")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not name %s: %v", w, err)
				}
			}
		})
	}
}

func TestValidateAcceptsValid(t *testing.T) {
	t.Parallel()
	urlKey := "k2:" + base64.RawURLEncoding.EncodeToString([]byte("\xff\xfe0123456789abcdef0123456789abcd"))
	for name, change := range map[string]map[string]string{
		"minimal":                        {},
		"localhost http":                 {"DIRGATE_PUBLIC_URL": "http://localhost:8080"},
		"127.0.0.1 http":                 {"DIRGATE_PUBLIC_URL": "http://127.0.0.1:8080/base/"},
		"ipv6 loopback http":             {"DIRGATE_PUBLIC_URL": "http://[::1]:8080"},
		"public keys file":               {"DIRGATE_JWT_HS256_SECRET": "", "DIRGATE_JWT_PUBLIC_KEYS_FILE": "/etc/dirgate/jwt.pem", "DIRGATE_JWT_ISSUER": "https://idp.example", "DIRGATE_JWT_AUDIENCE": "dirgate", "DIRGATE_JWT_KEY_TENANTS": "k1=acme,globex-*"},
		"jwks url":                       {"DIRGATE_JWT_HS256_SECRET": "", "DIRGATE_JWT_JWKS_URL": "https://idp.example/.well-known/jwks.json", "DIRGATE_JWT_ISSUER": "https://idp.example", "DIRGATE_JWT_AUDIENCE": "dirgate", "DIRGATE_JWT_KEY_TENANTS": "k1=*"},
		"two keys, url base64 unpadded":  {"DIRGATE_ENCRYPTION_KEYS": testKey + "," + urlKey},
		"sentinel":                       {"DIRGATE_REDIS_ADDRS": "s1:26379,s2:26379", "DIRGATE_REDIS_MASTER_NAME": "mymaster", "DIRGATE_REDIS_URL": ""},
		"rediss":                         {"DIRGATE_REDIS_URL": "rediss://user:pw@redis.example.com:6380/1"},
		"link ttl at max":                {"DIRGATE_LINK_TOKEN_TTL": "10m"},
		"separate cache redis, no stale": {"DIRGATE_CACHE_REDIS_URL": "redis://cache:6379/1", "DIRGATE_CACHE_MAX_STALE": "0s"},
		"everything set": {
			"DIRGATE_ADDR": "0.0.0.0:9000", "DIRGATE_JWT_ISSUER": "idp", "DIRGATE_JWT_AUDIENCE": "dirgate",
			"DIRGATE_ALLOW_PASSWORD_GRANT": "true", "DIRGATE_LOG_LEVEL": "debug", "DIRGATE_LINK_TOKEN_TTL": "1m",
		},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			env := validEnv()
			for k, v := range change {
				env[k] = v
			}
			if err := load(t, env).Validate(); err != nil {
				t.Errorf("Validate: %v", err)
			}
		})
	}
}

// TestValidateRefuses checks that each unsafe setting is refused with a message naming the
// variable to set, and that no secret value appears in it.
func TestValidateRefuses(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct {
		change map[string]string
		want   []string
	}{
		"missing public url":     {map[string]string{"DIRGATE_PUBLIC_URL": ""}, []string{"DIRGATE_PUBLIC_URL"}},
		"relative public url":    {map[string]string{"DIRGATE_PUBLIC_URL": "gw.example.com"}, []string{"DIRGATE_PUBLIC_URL"}},
		"http on another host":   {map[string]string{"DIRGATE_PUBLIC_URL": "http://gw.example.com"}, []string{"DIRGATE_PUBLIC_URL", "https"}},
		"http on localhost-like": {map[string]string{"DIRGATE_PUBLIC_URL": "http://localhost.evil.com"}, []string{"DIRGATE_PUBLIC_URL"}},
		"ftp public url":         {map[string]string{"DIRGATE_PUBLIC_URL": "ftp://gw.example.com"}, []string{"DIRGATE_PUBLIC_URL"}},
		"public url with query":  {map[string]string{"DIRGATE_PUBLIC_URL": "https://gw.example.com/?a=b"}, []string{"DIRGATE_PUBLIC_URL"}},
		"public url with user":   {map[string]string{"DIRGATE_PUBLIC_URL": "https://u:p@gw.example.com"}, []string{"DIRGATE_PUBLIC_URL"}},
		"no jwt key":             {map[string]string{"DIRGATE_JWT_HS256_SECRET": ""}, []string{"DIRGATE_JWT_HS256_SECRET", "DIRGATE_JWT_PUBLIC_KEYS_FILE", "DIRGATE_JWT_JWKS_URL"}},
		"both jwt keys":          {map[string]string{"DIRGATE_JWT_PUBLIC_KEYS_FILE": "/k.pem"}, []string{"DIRGATE_JWT_HS256_SECRET", "DIRGATE_JWT_PUBLIC_KEYS_FILE"}},
		"two public sources":     {map[string]string{"DIRGATE_JWT_HS256_SECRET": "", "DIRGATE_JWT_PUBLIC_KEYS_FILE": "/k.pem", "DIRGATE_JWT_JWKS_FILE": "/k.json"}, []string{"DIRGATE_JWT_JWKS_FILE"}},
		"public keys, no iss":    {map[string]string{"DIRGATE_JWT_HS256_SECRET": "", "DIRGATE_JWT_JWKS_FILE": "/k.json", "DIRGATE_JWT_AUDIENCE": "d", "DIRGATE_JWT_KEY_TENANTS": "k=*"}, []string{"DIRGATE_JWT_ISSUER"}},
		"public keys, no aud":    {map[string]string{"DIRGATE_JWT_HS256_SECRET": "", "DIRGATE_JWT_JWKS_FILE": "/k.json", "DIRGATE_JWT_ISSUER": "i", "DIRGATE_JWT_KEY_TENANTS": "k=*"}, []string{"DIRGATE_JWT_AUDIENCE"}},
		"public keys, unbound":   {map[string]string{"DIRGATE_JWT_HS256_SECRET": "", "DIRGATE_JWT_JWKS_URL": "https://idp/jwks", "DIRGATE_JWT_ISSUER": "i", "DIRGATE_JWT_AUDIENCE": "d"}, []string{"DIRGATE_JWT_KEY_TENANTS"}},
		"bad key tenants":        {map[string]string{"DIRGATE_JWT_HS256_SECRET": "", "DIRGATE_JWT_JWKS_URL": "https://idp/jwks", "DIRGATE_JWT_ISSUER": "i", "DIRGATE_JWT_AUDIENCE": "d", "DIRGATE_JWT_KEY_TENANTS": "k1"}, []string{"DIRGATE_JWT_KEY_TENANTS"}},
		"no jwt lifetime":        {map[string]string{"DIRGATE_JWT_MAX_LIFETIME": "0s"}, []string{"DIRGATE_JWT_MAX_LIFETIME"}},
		"short jwt secret":       {map[string]string{"DIRGATE_JWT_HS256_SECRET": testSecret[:31]}, []string{"DIRGATE_JWT_HS256_SECRET", "32"}},
		"no encryption keys":     {map[string]string{"DIRGATE_ENCRYPTION_KEYS": ""}, []string{"DIRGATE_ENCRYPTION_KEYS"}},
		"short encryption key":   {map[string]string{"DIRGATE_ENCRYPTION_KEYS": "k1:c2hvcnQ="}, []string{"DIRGATE_ENCRYPTION_KEYS", "want 32"}},
		"encryption key no kid":  {map[string]string{"DIRGATE_ENCRYPTION_KEYS": strings.TrimPrefix(testKey, "k1:")}, []string{"DIRGATE_ENCRYPTION_KEYS"}},
		"encryption key bad kid": {map[string]string{"DIRGATE_ENCRYPTION_KEYS": "k 1" + strings.TrimPrefix(testKey, "k1")}, []string{"DIRGATE_ENCRYPTION_KEYS"}},
		"encryption key dup kid": {map[string]string{"DIRGATE_ENCRYPTION_KEYS": testKey + "," + testKey}, []string{"DIRGATE_ENCRYPTION_KEYS", "duplicate"}},
		"encryption key not b64": {map[string]string{"DIRGATE_ENCRYPTION_KEYS": "k1:!!!not-base64!!!"}, []string{"DIRGATE_ENCRYPTION_KEYS", "base64"}},
		"no podio client id":     {map[string]string{"DIRGATE_PODIO_CLIENT_ID": ""}, []string{"DIRGATE_PODIO_CLIENT_ID"}},
		"no podio client secret": {map[string]string{"DIRGATE_PODIO_CLIENT_SECRET": ""}, []string{"DIRGATE_PODIO_CLIENT_SECRET"}},
		"http podio api":         {map[string]string{"DIRGATE_PODIO_API_URL": "http://api.podio.com/"}, []string{"DIRGATE_PODIO_API_URL"}},
		"relative podio auth":    {map[string]string{"DIRGATE_PODIO_AUTH_URL": "podio.com"}, []string{"DIRGATE_PODIO_AUTH_URL"}},
		"bad redis url":          {map[string]string{"DIRGATE_REDIS_URL": "http://" + testRedisPass + "@redis"}, []string{"DIRGATE_REDIS_URL"}},
		"master without addrs":   {map[string]string{"DIRGATE_REDIS_MASTER_NAME": "mymaster"}, []string{"DIRGATE_REDIS_MASTER_NAME", "DIRGATE_REDIS_ADDRS"}},
		"zero link ttl":          {map[string]string{"DIRGATE_LINK_TOKEN_TTL": "0s"}, []string{"DIRGATE_LINK_TOKEN_TTL"}},
		"negative link ttl":      {map[string]string{"DIRGATE_LINK_TOKEN_TTL": "-1m"}, []string{"DIRGATE_LINK_TOKEN_TTL"}},
		"long link ttl":          {map[string]string{"DIRGATE_LINK_TOKEN_TTL": "11m"}, []string{"DIRGATE_LINK_TOKEN_TTL", "10m"}},
		"zero quota":             {map[string]string{"DIRGATE_QUOTA_GENERAL_LIMIT": "0"}, []string{"DIRGATE_QUOTA_GENERAL_LIMIT"}},
		"reserve of one":         {map[string]string{"DIRGATE_QUOTA_RESERVE": "1"}, []string{"DIRGATE_QUOTA_RESERVE"}},
		"bad rate-limited route": {map[string]string{"DIRGATE_QUOTA_RATE_LIMITED_ROUTES": "org/{id}"}, []string{"DIRGATE_QUOTA_RATE_LIMITED_ROUTES"}},
		"too many retries":       {map[string]string{"DIRGATE_PODIO_RETRIES": "9"}, []string{"DIRGATE_PODIO_RETRIES"}},
		"zero proxy body":        {map[string]string{"DIRGATE_PROXY_MAX_BODY": "0"}, []string{"DIRGATE_PROXY_MAX_BODY"}},
		"proxy on api address":   {map[string]string{"DIRGATE_PROXY_ADDR": ":8080"}, []string{"DIRGATE_PROXY_ADDR"}},
		"zero page size":         {map[string]string{"DIRGATE_PODIO_PAGE_SIZE": "0"}, []string{"DIRGATE_PODIO_PAGE_SIZE"}},
		"huge page size":         {map[string]string{"DIRGATE_PODIO_PAGE_SIZE": "5000"}, []string{"DIRGATE_PODIO_PAGE_SIZE", "1000"}},
		"zero events interval":   {map[string]string{"DIRGATE_EVENTS_INTERVAL": "0s"}, []string{"DIRGATE_EVENTS_INTERVAL"}},
		"interval below minimum": {map[string]string{"DIRGATE_EVENTS_INTERVAL": "30s"}, []string{"DIRGATE_EVENTS_INTERVAL", "DIRGATE_EVENTS_MIN_INTERVAL"}},
		"negative min interval":  {map[string]string{"DIRGATE_EVENTS_MIN_INTERVAL": "-1m"}, []string{"DIRGATE_EVENTS_MIN_INTERVAL"}},
		"negative max stale":     {map[string]string{"DIRGATE_CACHE_MAX_STALE": "-1s"}, []string{"DIRGATE_CACHE_MAX_STALE"}},
		"zero users ttl":         {map[string]string{"DIRGATE_CACHE_TTL_USERS": "0s"}, []string{"DIRGATE_CACHE_TTL_USERS"}},
		"zero cache timeout":     {map[string]string{"DIRGATE_CACHE_TIMEOUT": "0s"}, []string{"DIRGATE_CACHE_TIMEOUT"}},
		"zero cursor ttl":        {map[string]string{"DIRGATE_CURSOR_TTL": "0s"}, []string{"DIRGATE_CURSOR_TTL"}},
		"zero webhook window":    {map[string]string{"DIRGATE_WEBHOOK_RETRY_WINDOW": "0s"}, []string{"DIRGATE_WEBHOOK_RETRY_WINDOW"}},
		"bad cache redis url":    {map[string]string{"DIRGATE_CACHE_REDIS_URL": "http://x"}, []string{"DIRGATE_CACHE_REDIS_URL"}},
		"zero refresh margin":    {map[string]string{"DIRGATE_REFRESH_MARGIN": "0s"}, []string{"DIRGATE_REFRESH_MARGIN"}},
		"zero request timeout":   {map[string]string{"DIRGATE_REQUEST_TIMEOUT": "0s"}, []string{"DIRGATE_REQUEST_TIMEOUT"}},
		"negative podio timeout": {map[string]string{"DIRGATE_PODIO_TIMEOUT": "-1s"}, []string{"DIRGATE_PODIO_TIMEOUT"}},
		"zero redis timeout":     {map[string]string{"DIRGATE_REDIS_TIMEOUT": "0s"}, []string{"DIRGATE_REDIS_TIMEOUT"}},
		"zero shutdown timeout":  {map[string]string{"DIRGATE_SHUTDOWN_TIMEOUT": "0s"}, []string{"DIRGATE_SHUTDOWN_TIMEOUT"}},
		"bad log level":          {map[string]string{"DIRGATE_LOG_LEVEL": "verbose"}, []string{"DIRGATE_LOG_LEVEL"}},
		"nothing set": {
			map[string]string{"DIRGATE_PUBLIC_URL": "", "DIRGATE_JWT_HS256_SECRET": "", "DIRGATE_ENCRYPTION_KEYS": "", "DIRGATE_PODIO_CLIENT_ID": "", "DIRGATE_PODIO_CLIENT_SECRET": ""},
			[]string{"DIRGATE_PUBLIC_URL", "DIRGATE_JWT_HS256_SECRET", "DIRGATE_ENCRYPTION_KEYS", "DIRGATE_PODIO_CLIENT_ID", "DIRGATE_PODIO_CLIENT_SECRET"},
		},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			env := validEnv()
			for k, v := range tc.change {
				env[k] = v
			}
			err := load(t, env).Validate()
			if err == nil {
				t.Fatal("Validate accepted the configuration")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("the refusal does not mention %q:\n%v", w, err)
				}
			}
			for _, secret := range []string{testSecret[:20], testClientSecret, testRedisPass, strings.TrimPrefix(testKey, "k1:"), "c2hvcnQ"} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("the refusal contains a secret value:\n%v", err)
				}
			}
		})
	}
}

func TestVarsCoversEveryField(t *testing.T) {
	t.Parallel()
	vars := Vars()
	byName := map[string]Var{}
	for _, v := range vars {
		if _, dup := byName[v.Name]; dup {
			t.Errorf("variable %s listed twice", v.Name)
		}
		byName[v.Name] = v
		// OTEL_* variables keep the names the OpenTelemetry specification gives them.
		if !strings.HasPrefix(v.Name, "DIRGATE_") && !strings.HasPrefix(v.Name, "OTEL_EXPORTER_OTLP_") {
			t.Errorf("variable %s lacks the DIRGATE_ prefix", v.Name)
		}
		if v.Doc == "" {
			t.Errorf("variable %s has no doc", v.Name)
		}
	}
	typ := reflect.TypeFor[Config]()
	for f := range typ.Fields() {
		name, ok := f.Tag.Lookup("env")
		if !ok {
			t.Errorf("field %s has no env tag", f.Name)
			continue
		}
		v, listed := byName[name]
		if !listed {
			t.Errorf("field %s (%s) is missing from Vars()", f.Name, name)
			continue
		}
		if v.Default != f.Tag.Get("envDefault") {
			t.Errorf("%s default = %q, want the envDefault tag %q", name, v.Default, f.Tag.Get("envDefault"))
		}
	}
	if len(vars) != typ.NumField() {
		t.Errorf("Vars() has %d entries, Config has %d fields", len(vars), typ.NumField())
	}
	if got := byName["DIRGATE_REFRESH_MARGIN"].Default; got != "15m" {
		t.Errorf("DIRGATE_REFRESH_MARGIN default = %q, want 15m", got)
	}
}

func TestRedacted(t *testing.T) {
	t.Parallel()
	env := validEnv()
	env["DIRGATE_REDIS_PASSWORD"] = testRedisPass
	env["DIRGATE_REDIS_URL"] = "redis://user:" + testRedisPass + "x@redis.example.com:6379/0"
	env["DIRGATE_REDIS_ADDRS"] = "a:1,b:2"
	c := load(t, env)
	got := c.Redacted()

	for _, v := range Vars() {
		if _, ok := got[v.Name]; !ok {
			t.Errorf("Redacted lacks %s", v.Name)
		}
	}
	for _, secret := range []string{testSecret, testClientSecret, testRedisPass, strings.TrimPrefix(testKey, "k1:")} {
		for name, val := range got {
			if strings.Contains(val, secret) {
				t.Errorf("%s = %q contains a secret", name, val)
			}
		}
	}
	want := map[string]string{
		"DIRGATE_JWT_HS256_SECRET":     "[set]",
		"DIRGATE_ENCRYPTION_KEYS":      "[set]",
		"DIRGATE_PODIO_CLIENT_SECRET":  "[set]",
		"DIRGATE_REDIS_PASSWORD":       "[set]",
		"DIRGATE_REDIS_URL":            "redis://user:xxxxx@redis.example.com:6379/0",
		"DIRGATE_REDIS_ADDRS":          "a:1,b:2",
		"DIRGATE_PUBLIC_URL":           "https://gw.example.com",
		"DIRGATE_PODIO_CLIENT_ID":      "client",
		"DIRGATE_REFRESH_MARGIN":       "15m0s",
		"DIRGATE_ALLOW_PASSWORD_GRANT": "false",
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("%s = %q, want %q", k, got[k], w)
		}
	}

	unset := Config{}.Redacted()
	for _, k := range []string{"DIRGATE_JWT_HS256_SECRET", "DIRGATE_ENCRYPTION_KEYS", "DIRGATE_PODIO_CLIENT_SECRET", "DIRGATE_REDIS_PASSWORD"} {
		if unset[k] != "[unset]" {
			t.Errorf("unset %s = %q, want [unset]", k, unset[k])
		}
	}
}
