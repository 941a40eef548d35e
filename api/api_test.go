package api_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/dirgate/dirgate/adapters/podio/podiosim"
)

func TestHealthReadinessAndSpec(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	if r := h.do("GET", "/healthz", "", nil); r.status != http.StatusOK {
		t.Errorf("healthz: %d", r.status)
	}
	if r := h.do("GET", "/readyz", "", nil); r.status != http.StatusOK {
		t.Errorf("readyz: %d %s", r.status, r.body)
	}
	r := h.do("GET", "/openapi.yaml", "", nil)
	if r.status != http.StatusOK || !strings.Contains(string(r.body), "openapi: 3.") {
		t.Errorf("openapi.yaml: %d", r.status)
	}
	// Draining turns readiness false while liveness stays true.
	h.replicas[0].srv.Drain()
	if r := h.do("GET", "/readyz", "", nil); r.status != http.StatusServiceUnavailable || r.errorCode(t) != "not_ready" {
		t.Errorf("readyz while draining: %d %s, want 503 not_ready", r.status, r.body)
	}
	if r := h.do("GET", "/healthz", "", nil); r.status != http.StatusOK {
		t.Errorf("healthz while draining: %d", r.status)
	}
}

func TestErrorsShareOneShape(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	tok := h.token("tenant-a")
	for _, tc := range []struct {
		name, method, path string
		body               any
		status             int
		code               string
	}{
		{"unknown route", "GET", "/nope", nil, 404, "not_found"},
		{"wrong method", "PUT", "/integrated-accounts", nil, 405, "method_not_allowed"},
		{"unknown account", "GET", "/integrated-accounts/ia_missing", nil, 404, "not_found"},
		{"empty body", "POST", "/integrated-accounts", nil, 400, "invalid_request"},
		{"no grant type", "POST", "/integrated-accounts", map[string]any{}, 400, "invalid_request"},
		{"bad grant type", "POST", "/integrated-accounts", map[string]any{"grant_type": "authorization_code"}, 400, "invalid_request"},
		{"password grant off", "POST", "/integrated-accounts", map[string]any{"grant_type": "password", "username": "a@b.c", "password": "x"}, 403, "grant_type_disabled"},
		{"app grant without token", "POST", "/integrated-accounts", map[string]any{"grant_type": "app", "app_id": 5001}, 400, "invalid_request"},
		{"app grant wrong token", "POST", "/integrated-accounts", map[string]any{"grant_type": "app", "app_id": 5001, "app_token": "wrong"}, 400, "invalid_grant"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := h.do(tc.method, tc.path, tok, tc.body)
			if r.status != tc.status || r.errorCode(t) != tc.code {
				t.Errorf("%s %s: %d %s, want %d %s", tc.method, tc.path, r.status, r.body, tc.status, tc.code)
			}
			var e struct {
				Error struct {
					RequestID string `json:"request_id"`
				}
			}
			r.json(t, &e)
			if e.Error.RequestID == "" || e.Error.RequestID != r.header.Get("X-Request-Id") {
				t.Errorf("request_id %q, X-Request-Id %q: want the same, non-empty", e.Error.RequestID, r.header.Get("X-Request-Id"))
			}
		})
	}
	t.Run("caller's request id is kept when well-formed", func(t *testing.T) {
		for id, keep := range map[string]bool{"abc-123_x.y:z": true, "bad id with spaces": false, strings.Repeat("a", 200): false} {
			req, _ := http.NewRequest("GET", h.url+"/healthz", nil)
			req.Header.Set("X-Request-Id", id)
			res, err := h.browser().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			if got := res.Header.Get("X-Request-Id"); (got == id) != keep || got == "" {
				t.Errorf("X-Request-Id %q came back as %q (keep=%v)", id, got, keep)
			}
		}
	})
}

func TestTenantAuthRefusals(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	sign := func(claims jwt.MapClaims, secret string) string {
		s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte(secret))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	future := time.Now().Add(time.Hour).Unix()
	none, _ := jwt.NewWithClaims(jwt.SigningMethodNone, jwt.MapClaims{"sub": "t", "exp": future}).SignedString(jwt.UnsafeAllowNoneSignatureType)
	for name, header := range map[string]string{
		"missing":      "",
		"wrong scheme": "Basic " + h.token("tenant-a"),
		"alg none":     "Bearer " + none,
		"wrong secret": "Bearer " + sign(jwt.MapClaims{"sub": "t", "exp": future}, "another-secret-0123456789-0123456789"),
		"no exp":       "Bearer " + sign(jwt.MapClaims{"sub": "t"}, testJWTSecret),
		"expired":      "Bearer " + sign(jwt.MapClaims{"sub": "t", "exp": time.Now().Add(-time.Hour).Unix()}, testJWTSecret),
		"no sub":       "Bearer " + sign(jwt.MapClaims{"exp": future}, testJWTSecret),
		"oversized":    "Bearer " + sign(jwt.MapClaims{"sub": "t", "exp": future, "pad": strings.Repeat("x", 9<<10)}, testJWTSecret),
		"garbage":      "Bearer not.a.jwt",
		"empty bearer": "Bearer ",
	} {
		t.Run(name, func(t *testing.T) {
			req, _ := http.NewRequest("GET", h.url+"/integrated-accounts", nil)
			if header != "" {
				req.Header.Set("Authorization", header)
			}
			res, err := h.browser().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			if res.StatusCode != http.StatusUnauthorized || res.Header.Get("WWW-Authenticate") == "" {
				t.Errorf("%s: %d (WWW-Authenticate %q), want 401 with a challenge", name, res.StatusCode, res.Header.Get("WWW-Authenticate"))
			}
		})
	}
}

// linkPassword links the demo person server-side for tenant and returns the account id.
func (h *harness) linkPassword(tenant, username string) string {
	h.t.Helper()
	r := h.do("POST", "/integrated-accounts", h.token(tenant), map[string]any{"grant_type": "password", "username": username, "password": "demo"})
	if r.status != http.StatusCreated {
		h.t.Fatalf("link %s for %s: %d %s", username, tenant, r.status, r.body)
	}
	var a struct{ ID string }
	r.json(h.t, &a)
	return a.ID
}

func TestAccountLifecycle(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{allowPassword: true})
	tok := h.token("tenant-a")
	id := h.linkPassword("tenant-a", "admin@demo.example")
	var a map[string]any
	h.do("GET", "/integrated-accounts/"+id, tok, nil).json(t, &a)
	if a["status"] != "active" || a["grant_type"] != "password" || a["email"] != "admin@demo.example" || a["access_token_expires_at"] == nil {
		t.Errorf("account = %v", a)
	}
	if r := h.do("POST", "/integrated-accounts", tok, map[string]any{"grant_type": "password", "username": "admin@demo.example", "password": "wrong"}); r.status != 400 || r.errorCode(t) != "invalid_grant" {
		t.Errorf("wrong password: %d %s", r.status, r.body)
	}
	r := h.do("POST", "/integrated-accounts", tok, map[string]any{"grant_type": "app", "app_id": 5001, "app_token": "demo-app-token"})
	if r.status != http.StatusCreated {
		t.Fatalf("app grant: %d %s", r.status, r.body)
	}
	var app map[string]any
	r.json(t, &app)
	if app["podio_app_id"] != "5001" || app["podio_user_id"] != nil {
		t.Errorf("app account = %v", app)
	}
	if r := h.do("POST", "/integrated-accounts/"+app["id"].(string)+"/check", tok, nil); r.status != http.StatusOK {
		t.Errorf("check app account: %d %s", r.status, r.body)
	}
	var list struct{ Data []map[string]any }
	h.do("GET", "/integrated-accounts", tok, nil).json(t, &list)
	if len(list.Data) != 2 || list.Data[0]["id"] != id {
		t.Fatalf("list = %v, want the two accounts, oldest first", list.Data)
	}
	if r := h.do("DELETE", "/integrated-accounts/"+id, tok, nil); r.status != http.StatusNoContent {
		t.Fatalf("delete: %d %s", r.status, r.body)
	}
	if r := h.do("GET", "/integrated-accounts/"+id, tok, nil); r.status != http.StatusNotFound {
		t.Errorf("get after delete: %d", r.status)
	}
	if r := h.do("DELETE", "/integrated-accounts/"+id, tok, nil); r.status != http.StatusNotFound {
		t.Errorf("second delete: %d, want 404", r.status)
	}
	// Nothing of the account is left in Redis.
	keys, err := h.rdb.Keys(context.Background(), h.rdb.Prefix+"*"+id+"*").Result()
	if err != nil || len(keys) != 0 {
		t.Errorf("keys left after delete: %v %v", keys, err)
	}
}

// TestTenantIsolation: every route that takes an id, called with another tenant's token, answers
// 404 with none of the other tenant's data.
func TestTenantIsolation(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{allowPassword: true})
	id := h.linkPassword("tenant-a", "admin@demo.example")
	other := h.token("tenant-b")
	for _, tc := range []struct {
		method, path string
		body         any
	}{
		{"GET", "/integrated-accounts/" + id, nil},
		{"DELETE", "/integrated-accounts/" + id, nil},
		{"POST", "/integrated-accounts/" + id + "/check", nil},
		{"POST", "/link-tokens", map[string]any{"redirect_uri": appRedirect, "integrated_account_id": id}},
	} {
		r := h.do(tc.method, tc.path, other, tc.body)
		if r.status != http.StatusNotFound {
			t.Errorf("tenant-b %s %s: %d, want 404", tc.method, tc.path, r.status)
		}
		for _, leak := range []string{id, "admin@demo.example", "tenant-a"} {
			if strings.Contains(string(r.body), leak) {
				t.Errorf("tenant-b %s %s: body reveals %q: %s", tc.method, tc.path, leak, r.body)
			}
		}
	}
	var list struct{ Data []map[string]any }
	h.do("GET", "/integrated-accounts", other, nil).json(t, &list)
	if len(list.Data) != 0 {
		t.Errorf("tenant-b lists %d accounts, want 0", len(list.Data))
	}
	// tenant-a still has its account, untouched by tenant-b's DELETE.
	if r := h.do("GET", "/integrated-accounts/"+id, h.token("tenant-a"), nil); r.status != http.StatusOK {
		t.Errorf("tenant-a lost its account: %d", r.status)
	}
}

// TestRefreshExactlyOnceAcrossReplicas: three gateway instances on one Redis and one simulator
// that rotates refresh tokens; 300 concurrent calls on an expired access token make exactly one
// call to Podio's token endpoint, and all 300 succeed. Repeated 50 times, alternating the
// proactive path (margin) and the reactive one (Podio's 401).
func TestRefreshExactlyOnceAcrossReplicas(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{allowPassword: true, replicas: 3, sim: podiosim.Config{GeneralLimit: 1 << 30}})
	tok := h.token("tenant-a")
	const calls, rounds = 300, 50
	clients := make([]*http.Client, len(h.replicas))
	for i := range clients {
		clients[i] = &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 100}}
	}
	for round := range rounds {
		id := h.linkPassword("tenant-a", "admin@demo.example")
		// Podio's clock moves past the 8 h access-token lifetime. In even rounds the gateways' clock
		// moves too, so they refresh proactively; in odd rounds they do not notice, send the dead
		// token, and refresh on Podio's 401 expired_token.
		h.sim.Advance(9 * time.Hour)
		if round%2 == 0 {
			h.clock.Advance(9 * time.Hour)
		}
		before := h.sim.Calls()["POST /oauth/token"]
		var wg sync.WaitGroup
		statuses := make([]int, calls)
		for i := range calls {
			wg.Go(func() {
				rep := h.replicas[i%len(h.replicas)]
				req, _ := http.NewRequest("POST", rep.ts.URL+"/integrated-accounts/"+id+"/check", nil)
				req.Header.Set("Authorization", "Bearer "+tok)
				res, err := clients[i%len(clients)].Do(req)
				if err != nil {
					t.Errorf("round %d call %d: %v", round, i, err)
					return
				}
				res.Body.Close()
				statuses[i] = res.StatusCode
			})
		}
		wg.Wait()
		for i, s := range statuses {
			if s != http.StatusOK {
				t.Fatalf("round %d: call %d answered %d, want 200", round, i, s)
			}
		}
		if got := h.sim.Calls()["POST /oauth/token"] - before; got != 1 {
			t.Fatalf("round %d: %d calls to the token endpoint, want exactly 1", round, got)
		}
	}
}

// TestNoSecretInRedisOrLogs: after linking (browser and server-side), refreshing and failing,
// neither the raw Redis contents nor any log line holds a token or secret in plain text.
func TestNoSecretInRedisOrLogs(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{allowPassword: true})
	tenantTok := h.token("tenant-a")
	p := h.person()
	_, loc := p.finish(p.authorize(p.startLink("tenant-a", appRedirect, ""), "admin@demo.example", "demo", "allow"))
	browserID := h.linked("tenant-a", loc)
	passwordID := h.linkPassword("tenant-a", "member@demo.example")
	// Force a refresh and an error path, so their log lines exist too.
	h.sim.Advance(9 * time.Hour)
	h.clock.Advance(9 * time.Hour)
	for _, id := range []string{browserID, passwordID} {
		if r := h.do("POST", "/integrated-accounts/"+id+"/check", tenantTok, nil); r.status != http.StatusOK {
			t.Fatalf("check %s: %d %s", id, r.status, r.body)
		}
	}
	h.do("POST", "/integrated-accounts", tenantTok, map[string]any{"grant_type": "password", "username": "admin@demo.example", "password": "wrong-password-123"})

	secrets := []string{"demo-secret", testJWTSecret, tenantTok, "wrong-password-123"}
	for _, id := range []string{browserID, passwordID} {
		_, c, err := h.replicas[0].store.LoadCredentials(context.Background(), "tenant-a", id)
		if err != nil {
			t.Fatal(err)
		}
		if c.AccessToken == "" || c.RefreshToken == "" {
			t.Fatalf("account %s has no stored tokens", id)
		}
		secrets = append(secrets, c.AccessToken, c.RefreshToken)
	}
	dump := h.dumpRedis()
	logs := h.logs.String()
	if !strings.Contains(logs, `"route"`) {
		t.Fatal("no request log lines were captured; the test would prove nothing")
	}
	for _, s := range secrets {
		if strings.Contains(dump, s) {
			t.Errorf("Redis holds a secret in plain text (%.6s...)", s)
		}
		if strings.Contains(logs, s) {
			t.Errorf("the logs hold a secret in plain text (%.6s...)", s)
		}
	}
}

// dumpRedis renders every key of the test's prefix with its value, whatever its type.
func (h *harness) dumpRedis() string {
	h.t.Helper()
	ctx := context.Background()
	var b strings.Builder
	keys, err := h.rdb.Keys(ctx, h.rdb.Prefix+"*").Result()
	if err != nil {
		h.t.Fatal(err)
	}
	if len(keys) == 0 {
		h.t.Fatal("Redis holds no keys under the test prefix; the test would prove nothing")
	}
	for _, k := range keys {
		fmt.Fprintf(&b, "%s ", k)
		switch typ := h.rdb.Type(ctx, k).Val(); typ {
		case "string":
			fmt.Fprintln(&b, h.rdb.Get(ctx, k).Val())
		case "hash":
			fmt.Fprintln(&b, h.rdb.HGetAll(ctx, k).Val())
		case "set":
			fmt.Fprintln(&b, h.rdb.SMembers(ctx, k).Val())
		case "zset":
			fmt.Fprintln(&b, h.rdb.ZRange(ctx, k, 0, -1).Val())
		case "list":
			fmt.Fprintln(&b, h.rdb.LRange(ctx, k, 0, -1).Val())
		default:
			fmt.Fprintln(&b, typ)
		}
	}
	return b.String()
}

// TestJSONBodyLimit: an API route refuses a JSON body over the limit (1 MiB) with 413
// body_too_large, declared or not, and stores nothing; the proxy keeps its own, larger limit.
func TestJSONBodyLimit(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{allowPassword: true})
	tok := h.token("tenant-limit")
	big := `{"app_name":"` + strings.Repeat("x", 2<<20) + `"}`
	for _, chunked := range []bool{false, true} {
		req, _ := http.NewRequest("POST", h.url+"/link-tokens", strings.NewReader(big))
		if chunked {
			req.Body = io.NopCloser(strings.NewReader(big)) // no length: streamed, chunked
			req.ContentLength = -1
		}
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("Content-Type", "application/json")
		res, err := h.browser().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(string(b), `"body_too_large"`) {
			t.Errorf("chunked=%v: %d %.200s; want 413 body_too_large", chunked, res.StatusCode, b)
		}
	}
	if keys := h.rdb.Keys(t.Context(), h.rdb.Prefix+"*").Val(); len(keys) != 0 {
		t.Errorf("a refused request stored %v", keys)
	}
}
