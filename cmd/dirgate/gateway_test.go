package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/dirgate/dirgate/internal/config"
	"github.com/dirgate/dirgate/internal/crypt"
	"github.com/dirgate/dirgate/internal/redistest"
	"github.com/dirgate/dirgate/internal/tenantauth"
)

// freeAddr returns a loopback address nobody listens on right now.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// waitFor waits until out matches re (woken by each write), and returns the first submatch.
func waitFor(t *testing.T, out *syncBuffer, re *regexp.Regexp) string {
	t.Helper()
	// Only a guard against a hang: a loaded CI machine (-race, parallel packages) has taken more
	// than 15 s to start dev mode.
	guard := time.After(2 * time.Minute)
	for {
		changed := out.Changed()
		if m := re.FindStringSubmatch(out.String()); m != nil {
			return m[1]
		}
		select {
		case <-changed:
		case <-guard:
			t.Fatalf("timed out waiting for %v; output:\n%s", re, out.String())
		}
	}
}

// TestDevQuickstartWorksAsPrinted runs "dirgate dev", then runs the shell block it prints with
// bash and curl, exactly as a newcomer would paste it.
func TestDevQuickstartWorksAsPrinted(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		if redistest.InCI() {
			t.Fatal("curl is required under CI=true (.ci/run installs it)")
		}
		t.Skip("curl not installed")
	}
	ctx, cancel := context.WithCancel(t.Context())
	var stdout syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"dev", "--addr", freeAddr(t), "--sim-addr", freeAddr(t), "--proxy-addr", freeAddr(t)}, &stdout, io.Discard)
	}()
	block := waitFor(t, &stdout, regexp.MustCompile(`(?s)(# --- dirgate dev quickstart ---.*# --- end ---)`))

	cmd := exec.CommandContext(t.Context(), "bash", "-euo", "pipefail", "-c", block)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the printed commands failed: %v\n%s", err, out)
	}
	// Five JSON answers: the linked account, the list holding it, a page of users, the
	// workspaces of org 3001, and a link token.
	dec := json.NewDecoder(bytes.NewReader(out))
	var linked, list, users, workspaces, link map[string]any
	for _, v := range []*map[string]any{&linked, &list, &users, &workspaces, &link} {
		if err := dec.Decode(v); err != nil {
			t.Fatalf("output is not five JSON objects: %v\n%s", err, out)
		}
	}
	if linked["status"] != "active" || linked["email"] != "admin@demo.example" {
		t.Errorf("link answered %v", linked)
	}
	if data, _ := list["data"].([]any); len(data) != 1 {
		t.Errorf("list answered %v, want the one linked account", list)
	}
	if res, _ := users["result"].([]any); len(res) != 5 || users["next_cursor"] == nil {
		t.Errorf("users answered %v, want a first page of 5 with a next cursor", users)
	}
	if res, _ := workspaces["result"].([]any); len(res) == 0 {
		t.Errorf("workspaces answered %v", workspaces)
	}
	if u, _ := link["link_url"].(string); !strings.Contains(u, "/link/") {
		t.Errorf("link token answered %v", link)
	}
	var orgs []map[string]any
	if err := dec.Decode(&orgs); err != nil || len(orgs) != 2 || orgs[0]["org_id"] == nil {
		t.Errorf("the proxied GET /org/ answered %v (%v), want Podio's two demo orgs", orgs, err)
	}

	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("dev exit code = %d after cancel, want 0", code)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("dev did not stop")
	}
}

// validServeEnv is a complete, safe configuration for serve against the test Redis.
func validServeEnv(t *testing.T, addr string) map[string]string {
	key, err := crypt.GenerateKey("k1")
	if err != nil {
		t.Fatal(err)
	}
	return map[string]string{
		"DIRGATE_ADDR":                addr,
		"DIRGATE_PUBLIC_URL":          "http://" + addr,
		"DIRGATE_REDIS_URL":           redistest.URL(),
		"DIRGATE_REDIS_PREFIX":        "dirgate-test-serve:" + t.Name() + ":",
		"DIRGATE_JWT_HS256_SECRET":    "serve-test-secret-0123456789-0123456789",
		"DIRGATE_ENCRYPTION_KEYS":     key.String(),
		"DIRGATE_PODIO_CLIENT_ID":     "client",
		"DIRGATE_PODIO_CLIENT_SECRET": "client-secret-value",
	}
}

func TestServeRefusesUnsafeConfig(t *testing.T) {
	// Not parallel: it sets environment variables.
	for name, tc := range map[string]struct {
		unset, set map[string]string
		want       []string
	}{
		"nothing set":  {unset: map[string]string{"all": ""}, want: []string{"DIRGATE_JWT_HS256_SECRET", "DIRGATE_ENCRYPTION_KEYS", "DIRGATE_PODIO_CLIENT_ID", "DIRGATE_PUBLIC_URL"}},
		"short secret": {set: map[string]string{"DIRGATE_JWT_HS256_SECRET": "short"}, want: []string{"DIRGATE_JWT_HS256_SECRET"}},
		"bad key":      {set: map[string]string{"DIRGATE_ENCRYPTION_KEYS": "k1:c2hvcnQ="}, want: []string{"DIRGATE_ENCRYPTION_KEYS"}},
	} {
		t.Run(name, func(t *testing.T) {
			env := validServeEnv(t, freeAddr(t))
			if _, all := tc.unset["all"]; all {
				env = map[string]string{}
			}
			for k, v := range tc.set {
				env[k] = v
			}
			for _, v := range config.Vars() {
				t.Setenv(v.Name, env[v.Name])
				if env[v.Name] == "" {
					os.Unsetenv(v.Name)
				}
			}
			var stderr bytes.Buffer
			if code := run(t.Context(), []string{"serve"}, io.Discard, &stderr); code != 2 {
				t.Fatalf("exit code %d, want 2; stderr:\n%s", code, stderr.String())
			}
			for _, w := range tc.want {
				if !strings.Contains(stderr.String(), w) {
					t.Errorf("the refusal does not name %s:\n%s", w, stderr.String())
				}
			}
			for _, secret := range []string{"serve-test-secret-0123456789-0123456789", "client-secret-value"} {
				if strings.Contains(stderr.String(), secret) {
					t.Errorf("the refusal prints a secret")
				}
			}
		})
	}
}

// TestServeStartsAndDrains starts serve with a valid configuration, calls it with a minted token,
// and stops it: readiness is served, and cancellation (SIGTERM) ends it cleanly.
func TestServeStartsAndDrains(t *testing.T) {
	redistest.New(t) // skips or fails (CI) without Redis
	addr := freeAddr(t)
	env := validServeEnv(t, addr)
	for _, v := range config.Vars() {
		t.Setenv(v.Name, env[v.Name])
		if env[v.Name] == "" {
			os.Unsetenv(v.Name)
		}
	}
	ctx, cancel := context.WithCancel(t.Context())
	var stdout, stderr syncBuffer
	done := make(chan int, 1)
	go func() { done <- run(ctx, []string{"serve"}, &stdout, &stderr) }()
	waitFor(t, &stdout, regexp.MustCompile(`listening on (\S+)`))

	res, err := http.Get("http://" + addr + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Errorf("readyz = %d", res.StatusCode)
	}
	m, _ := tenantauth.NewMinter([]byte(env["DIRGATE_JWT_HS256_SECRET"]), "", "", nil)
	tok, _ := m.Mint("tenant-serve", time.Minute)
	req, _ := http.NewRequest("GET", "http://"+addr+"/integrated-accounts", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	res, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Errorf("GET /integrated-accounts with a minted token = %d", res.StatusCode)
	}
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("serve exit code %d after SIGTERM, want 0; stderr:\n%s", code, stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not stop")
	}
	for _, secret := range []string{env["DIRGATE_JWT_HS256_SECRET"], env["DIRGATE_PODIO_CLIENT_SECRET"], strings.SplitN(env["DIRGATE_ENCRYPTION_KEYS"], ":", 2)[1]} {
		if strings.Contains(stderr.String()+stdout.String(), secret) {
			t.Errorf("serve's output holds a secret")
		}
	}
}

func TestTokenCommand(t *testing.T) {
	t.Setenv("DIRGATE_JWT_HS256_SECRET", "")
	os.Unsetenv("DIRGATE_JWT_HS256_SECRET")
	var out bytes.Buffer
	if code := run(t.Context(), []string{"token", "--tenant", "acme", "--ttl", "2h"}, &out, io.Discard); code != 0 {
		t.Fatalf("token exit code %d", code)
	}
	v, err := tenantauth.NewVerifier(tenantauth.Config{HS256Secret: []byte(devJWTSecret)})
	if err != nil {
		t.Fatal(err)
	}
	claims, err := v.Verify(strings.TrimSpace(out.String()))
	if err != nil || claims.Tenant != "acme" {
		t.Fatalf("minted token: %+v, %v", claims, err)
	}
	if d := time.Until(claims.ExpiresAt); d < time.Hour+50*time.Minute || d > 2*time.Hour+time.Minute {
		t.Errorf("token lives %s, want about 2h", d)
	}
	out.Reset()
	if code := run(t.Context(), []string{"token", "--tenant", "acme", "--account", "ia_123"}, &out, io.Discard); code != 0 {
		t.Fatalf("token --account exit code %d", code)
	}
	if claims, err := v.Verify(strings.TrimSpace(out.String())); err != nil || claims.Tenant != "acme" || claims.Account != "ia_123" {
		t.Errorf("account-scoped token: %+v, %v", claims, err)
	}
	for _, args := range [][]string{{"token"}, {"token", "--tenant", "bad tenant"}, {"token", "--tenant", "a", "--ttl", "-1h"},
		{"token", "--tenant", "a", "--account", strings.Repeat("x", 200)}} {
		if code := run(t.Context(), args, io.Discard, io.Discard); code != 2 {
			t.Errorf("%v: exit code %d, want 2", args, code)
		}
	}
}
