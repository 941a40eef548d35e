package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"

	"github.com/dirgate/dirgate/internal/config"
	"github.com/dirgate/dirgate/internal/events"
	"github.com/dirgate/dirgate/internal/redistest"
	"github.com/dirgate/dirgate/internal/tenantauth"
	"github.com/dirgate/dirgate/internal/webhooks"
)

// TestServeDeliversWebhooks: serve runs the events consumer and the delivery worker, so an event
// recorded in Redis reaches a webhook created through the API, signed.
func TestServeDeliversWebhooks(t *testing.T) {
	rdb := redistest.New(t)
	addr := freeAddr(t)
	env := validServeEnv(t, addr)
	env["DIRGATE_REDIS_PREFIX"] = rdb.Prefix
	env["DIRGATE_WEBHOOK_ALLOW_PRIVATE"] = "true" // the receiver is on 127.0.0.1
	env["DIRGATE_WEBHOOK_ALLOW_HTTP"] = "true"    // over http
	for _, v := range config.Vars() {
		t.Setenv(v.Name, env[v.Name])
		if env[v.Name] == "" {
			os.Unsetenv(v.Name)
		}
	}
	t.Cleanup(func() {
		ctx := context.Background()
		for _, q := range []string{"webhooks", "jobs"} {
			queue := strings.TrimSuffix(rdb.Prefix, ":") + ":" + q
			iter := rdb.Scan(ctx, 0, "asynq:{"+queue+"}*", 1000).Iterator()
			for iter.Next(ctx) {
				rdb.Del(ctx, iter.Val())
			}
			rdb.SRem(ctx, "asynq:queues", queue)
		}
	})
	type delivery struct {
		header http.Header
		body   []byte
	}
	got := make(chan delivery, 10)
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- delivery{r.Header.Clone(), b}
	}))
	defer rcv.Close()

	ctx, cancel := context.WithCancel(t.Context())
	var stdout, stderr syncBuffer
	done := make(chan int, 1)
	go func() { done <- run(ctx, []string{"serve"}, &stdout, &stderr) }()
	waitFor(t, &stdout, regexp.MustCompile(`listening on (\S+)`))

	m, _ := tenantauth.NewMinter([]byte(env["DIRGATE_JWT_HS256_SECRET"]), "", "", nil)
	tok, _ := m.Mint("tenant-serve", time.Minute)
	req, _ := http.NewRequest("POST", "http://"+addr+"/webhooks", strings.NewReader(`{"url":"`+rcv.URL+`","events":["*"]}`))
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var hook struct{ ID, Secret string }
	err = json.NewDecoder(res.Body).Decode(&hook)
	res.Body.Close()
	if res.StatusCode != http.StatusCreated || err != nil {
		t.Fatalf("POST /webhooks = %d (%v)", res.StatusCode, err)
	}

	evlog, err := events.New(events.Options{Client: rdb.Client, Prefix: rdb.Prefix})
	if err != nil {
		t.Fatal(err)
	}
	e, err := evlog.Emit(t.Context(), "tenant-serve", "ia_1", events.UserAdded, map[string]string{"user_id": "1"})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case d := <-got:
		if d.header.Get("Dirgate-Event-Id") != e.ID {
			t.Errorf("delivered event %s, want %s", d.header.Get("Dirgate-Event-Id"), e.ID)
		}
		if err := webhooks.Verify(hook.Secret, d.header.Get("Dirgate-Signature"), d.body, time.Now(), webhooks.DefaultTolerance); err != nil {
			t.Errorf("signature: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("no delivery; stderr:\n%s", stderr.String())
	}
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("serve exit code %d; stderr:\n%s", code, stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not stop")
	}
	if strings.Contains(stderr.String()+stdout.String(), hook.Secret) {
		t.Error("serve's output holds the webhook secret")
	}
}

// TestDevModeDeliversWebhooks: dev mode's embedded Redis (miniredis) runs the webhook scripts, the
// events consumer and the delivery queue, so the README's walkthrough works there.
func TestDevModeDeliversWebhooks(t *testing.T) {
	t.Parallel()
	mr := miniredis.RunT(t)
	defer runMiniredisClock(mr)()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg.PublicURL = "http://" + ln.Addr().String()
	cfg.AllowPrivateHooks, cfg.AllowHTTPHooks = true, true // as runDev sets them
	gw := miniGateway(t, mr, cfg)
	ctx, cancel := context.WithCancel(t.Context())
	served := make(chan error, 1)
	go func() { served <- serveAll(ctx, gw, ln, nil, time.Second, limitsFrom(cfg)) }()
	defer func() { cancel(); <-served }()

	got := make(chan http.Header, 10)
	answers := make(chan int, 2)
	answers <- http.StatusInternalServerError // the first attempt fails: the retry path runs too
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r.Header.Clone()
		select {
		case code := <-answers:
			w.WriteHeader(code)
		default:
		}
	}))
	defer rcv.Close()

	m, _ := tenantauth.NewMinter([]byte(devJWTSecret), "", "", nil)
	tok, _ := m.Mint(devTenant, time.Minute)
	req, _ := http.NewRequest("POST", cfg.PublicURL+"/webhooks", strings.NewReader(`{"url":"`+rcv.URL+`/hook","events":["*"]}`))
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusCreated {
		t.Fatalf("POST /webhooks = %d", res.StatusCode)
	}
	e, err := gw.events.Emit(ctx, devTenant, "ia_1", events.UserAdded, nil)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.After(30 * time.Second)
	for attempt := 1; attempt <= 2; {
		select {
		case h := <-got:
			if h.Get("Dirgate-Event-Id") != e.ID || h.Get("Dirgate-Attempt") != strconv.Itoa(attempt) {
				t.Errorf("request %d: event %s attempt %s", attempt, h.Get("Dirgate-Event-Id"), h.Get("Dirgate-Attempt"))
			}
			attempt++
		case <-time.After(100 * time.Millisecond):
			gw.hookWorker.Wake() // the retry need not wait for its backoff
		case <-deadline:
			t.Fatalf("attempt %d never came", attempt)
		}
	}
}

// TestServeWebhooksHTTPSOnly: with serve's defaults a webhook must be https (dev mode allows http).
func TestServeWebhooksHTTPSOnly(t *testing.T) {
	t.Parallel()
	mr := miniredis.RunT(t)
	cfg, err := config.Load(nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.AllowHTTPHooks || cfg.AllowPrivateHooks {
		t.Fatalf("defaults allow http (%v) or private (%v) webhook targets", cfg.AllowHTTPHooks, cfg.AllowPrivateHooks)
	}
	cfg.PublicURL = "https://dirgate.example.com"
	cfg.AllowPrivateHooks = true // so that only the scheme can refuse the loopback URL below
	gw := miniGateway(t, mr, cfg)
	m, _ := tenantauth.NewMinter([]byte(devJWTSecret), "", "", nil)
	tok, _ := m.Mint(devTenant, time.Minute)
	for url, want := range map[string]int{"http://127.0.0.1:9/hook": http.StatusBadRequest, "https://127.0.0.1:9/hook": http.StatusCreated} {
		req := httptest.NewRequest("POST", "/webhooks", strings.NewReader(`{"url":"`+url+`","events":["*"]}`))
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		gw.api.ServeHTTP(rec, req)
		if rec.Code != want || want == http.StatusBadRequest && !strings.Contains(rec.Body.String(), "https") {
			t.Errorf("POST /webhooks %s = %d %s, want %d", url, rec.Code, rec.Body.String(), want)
		}
	}
}

// miniGateway builds a gateway on miniredis with dev mode's secrets and Podio client; it is closed
// when the test ends.
func miniGateway(t *testing.T, mr *miniredis.Miniredis, cfg config.Config) *gateway {
	t.Helper()
	cfg.RedisURL = "redis://" + mr.Addr() + "/0"
	cfg.JWTSecret, cfg.EncryptionKeys = devJWTSecret, devEncryptionKey
	cfg.PodioClientID, cfg.PodioClientSecret = "demo-client", "demo-secret"
	rc, err := redisClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	gw, err := buildGateway(cfg, rc, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { gw.Close() })
	return gw
}
