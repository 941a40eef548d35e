package api_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/dirgate/dirgate/adapters/podio/podiosim"
	"github.com/dirgate/dirgate/internal/tenantauth"
)

// send makes a request with a raw (already escaped) path on base, without any client-side
// cleaning, and returns the answer.
func (h *harness) send(c *http.Client, method, base, rawPath, auth string, body []byte, header ...string) response {
	h.t.Helper()
	u, err := url.Parse(base)
	if err != nil {
		h.t.Fatal(err)
	}
	path, query, _ := strings.Cut(rawPath, "?")
	req := &http.Request{Method: method, URL: &url.URL{Scheme: u.Scheme, Host: u.Host, Opaque: path, RawQuery: query},
		Header: http.Header{}, Host: u.Host}
	if body != nil {
		req.Body = io.NopCloser(bytes.NewReader(body))
		req.ContentLength = int64(len(body))
		req.Header.Set("Content-Type", "application/json")
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	res, err := c.Do(req)
	if err != nil {
		h.t.Fatalf("%s %s: %v", method, rawPath, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return response{status: res.StatusCode, header: res.Header, body: b}
}

// proxyToken mints an account-scoped token through the API.
func (h *harness) proxyToken(tok, account string) string {
	h.t.Helper()
	r := h.do("POST", "/integrated-accounts/"+account+"/proxy-tokens", tok, map[string]any{"ttl": "1h"})
	if r.status != http.StatusCreated {
		h.t.Fatalf("proxy token: %d %s", r.status, r.body)
	}
	var pt struct {
		Token               string `json:"token"`
		IntegratedAccountID string `json:"integrated_account_id"`
	}
	r.json(h.t, &pt)
	if pt.IntegratedAccountID != account {
		h.t.Fatalf("proxy token for %q names %q", account, pt.IntegratedAccountID)
	}
	return pt.Token
}

func proxySetup(t *testing.T, o harnessOptions) (h *harness, tok, acct string) {
	t.Helper()
	o.allowPassword = true
	h = newHarness(t, o)
	tok = h.token("acme")
	acct = h.linkPassword("acme", "admin@demo.example")
	return h, tok, acct
}

// TestProxyRoundTrips runs reads, writes, errors and 420s through both entrances: /proxy/{id}
// with a tenant token (Bearer and OAuth2 schemes) and the root listener with an account-scoped
// token.
func TestProxyRoundTrips(t *testing.T) {
	t.Parallel()
	h, tok, acct := proxySetup(t, harnessOptions{})
	scoped := h.proxyToken(tok, acct)
	member, _ := h.sim.UserID("member@demo.example")
	for _, entrance := range []struct {
		name, base, prefix, auth string
	}{
		{"path with Bearer", h.url, "/proxy/" + acct, "Bearer " + tok},
		{"path with OAuth2", h.url, "/proxy/" + acct, "OAuth2 " + tok},
		{"path with scoped token", h.url, "/proxy/" + acct, "OAuth2 " + scoped},
		{"root listener", h.replicas[0].proxyTS.URL, "", "OAuth2 " + scoped},
	} {
		t.Run(entrance.name, func(t *testing.T) {
			c := h.browser()
			call := func(method, path string, body any) response {
				var b []byte
				if body != nil {
					b, _ = json.Marshal(body)
				}
				return h.send(c, method, entrance.base, entrance.prefix+path, entrance.auth, b)
			}
			var orgs []map[string]any
			r := call("GET", "/org/", nil)
			if err := json.Unmarshal(r.body, &orgs); err != nil || r.status != 200 || len(orgs) != 2 {
				t.Fatalf("GET /org/: %d %.200s", r.status, r.body)
			}
			if r.header.Get("X-Rate-Limit-Remaining") == "" || r.header.Get("X-Request-Id") == "" {
				t.Errorf("GET /org/ headers: %v", r.header)
			}
			var members []any
			r = call("GET", "/org/3001/member/?limit=5&offset=2", nil)
			if err := json.Unmarshal(r.body, &members); err != nil || len(members) != 5 {
				t.Errorf("member page with query: %d %.200s", r.status, r.body)
			}
			if r := call("GET", "/org/3001/member", nil); r.status != 404 || !bytes.Contains(r.body, []byte(`"error":"not_found"`)) {
				t.Errorf("no trailing slash is another Podio resource: %d %s", r.status, r.body)
			}
			if r := call("POST", "/space/40003/member/", map[string]any{"users": []int64{member}, "role": "light"}); r.status != 200 {
				t.Errorf("add member: %d %s", r.status, r.body)
			}
			if r := call("PUT", fmt.Sprintf("/space/40003/member/%d", member), map[string]any{"role": "regular"}); r.status != 204 || len(r.body) != 0 {
				t.Errorf("change role: %d %q", r.status, r.body)
			}
			if r := call("DELETE", fmt.Sprintf("/space/40003/member/%d", member), nil); r.status != 204 {
				t.Errorf("end membership: %d %s", r.status, r.body)
			}
			if r := call("PUT", fmt.Sprintf("/space/40003/member/%d", member), map[string]any{"role": "boss"}); r.status != 400 || !bytes.Contains(r.body, []byte(`"error_description"`)) {
				t.Errorf("Podio's error body comes back verbatim: %d %s", r.status, r.body)
			}
			// The simulator serves no HEAD: its 405 comes back, without a body.
			if r := call("HEAD", "/org/3001", nil); r.status != 405 || len(r.body) != 0 || r.header.Get("Allow") == "" {
				t.Errorf("HEAD: %d %q %v", r.status, r.body, r.header)
			}
			if r := call("PATCH", "/org/3001", map[string]any{"name": "x"}); r.status != 405 || !bytes.Contains(r.body, []byte("method_not_allowed")) {
				t.Errorf("PATCH, which Podio does not serve here: %d %s", r.status, r.body)
			}
			if err := h.sim.AddFault(podiosim.Fault{Route: podiosim.RouteOrgs, RateLimit: true, Times: 1}); err != nil {
				t.Fatal(err)
			}
			if r := call("GET", "/org/", nil); r.status != 420 || !bytes.Contains(r.body, []byte("Please wait 60 seconds")) || r.header.Get("X-Rate-Limit-Remaining") != "0" {
				t.Errorf("Podio's 420 passes through: %d %s %v", r.status, r.body, r.header)
			}
			h.clock.Advance(61 * time.Second) // past the cooldown Podio asked for

		})
	}
}

func TestProxyTokensAreScoped(t *testing.T) {
	t.Parallel()
	h, tok, acct := proxySetup(t, harnessOptions{})
	other := h.linkPassword("acme", "member@demo.example")
	foreign := h.linkPassword("globex", "admin@demo.example")
	scoped := h.proxyToken(tok, acct)
	root := h.replicas[0].proxyTS.URL
	c := h.browser()

	// A scoped token reaches its own account only, and only through the proxy.
	if r := h.send(c, "GET", h.url, "/proxy/"+other+"/org/", "Bearer "+scoped, nil); r.status != 404 {
		t.Errorf("scoped token on another account: %d %s", r.status, r.body)
	}
	if r := h.send(c, "GET", h.url, "/integrated-accounts", "Bearer "+scoped, nil); r.status != 401 {
		t.Errorf("scoped token on the API: %d %s", r.status, r.body)
	}
	if r := h.send(c, "GET", h.url, "/proxy/"+foreign+"/org/", "Bearer "+tok, nil); r.status != 404 || r.errorCode(t) != "not_found" {
		t.Errorf("another tenant's account: %d %s", r.status, r.body)
	}
	if r := h.send(c, "GET", root, "/org/", "OAuth2 "+tok, nil); r.status != 401 || !bytes.Contains(r.body, []byte(`"error":"invalid_token"`)) {
		t.Errorf("tenant token on the root listener: %d %s", r.status, r.body)
	}
	if r := h.do("POST", "/integrated-accounts/"+foreign+"/proxy-tokens", tok, nil); r.status != 404 {
		t.Errorf("minting for another tenant's account: %d %s", r.status, r.body)
	}
	for _, ttl := range []any{"30s", "1000h", "soon", -5} {
		if r := h.do("POST", "/integrated-accounts/"+acct+"/proxy-tokens", tok, map[string]any{"ttl": ttl}); r.status != 400 {
			t.Errorf("ttl %v: %d %s", ttl, r.status, r.body)
		}
	}
	if r := h.do("POST", "/integrated-accounts/"+acct+"/proxy-tokens", tok, map[string]any{"ttl": 600}); r.status != 201 {
		t.Errorf("ttl in seconds: %d %s", r.status, r.body)
	}

	// Expired and revoked tokens answer like Podio's expired token.
	past, _ := tenantauth.NewMinter([]byte(testJWTSecret), "", "", func() time.Time { return time.Now().Add(-2 * time.Hour) })
	expired, _ := past.MintAccount("acme", acct, time.Hour)
	podioExpired := func(name string, r response) {
		t.Helper()
		var e struct{ Error, ErrorDescription string }
		_ = json.Unmarshal(r.body, &struct {
			Error            *string `json:"error"`
			ErrorDescription *string `json:"error_description"`
		}{&e.Error, &e.ErrorDescription})
		if r.status != 401 || e.Error != "unauthorized" || e.ErrorDescription != "expired_token" || !strings.Contains(r.header.Get("WWW-Authenticate"), "expired_token") {
			t.Errorf("%s: %d %s (%v), want Podio's 401 expired_token", name, r.status, r.body, r.header.Get("WWW-Authenticate"))
		}
	}
	podioExpired("expired", h.send(c, "GET", root, "/org/", "OAuth2 "+expired, nil))
	if r := h.send(c, "GET", root, "/org/", "OAuth2 "+scoped, nil); r.status != 200 {
		t.Fatalf("scoped token before revocation: %d", r.status)
	}
	if r := h.do("DELETE", "/integrated-accounts/"+acct+"/proxy-tokens", tok, nil); r.status != 204 {
		t.Fatalf("revoke: %d %s", r.status, r.body)
	}
	podioExpired("revoked", h.send(c, "GET", root, "/org/", "OAuth2 "+scoped, nil))
	if r := h.send(c, "GET", h.url, "/proxy/"+acct+"/org/", "Bearer "+scoped, nil); r.status != 401 {
		t.Errorf("revoked token on /proxy: %d", r.status)
	}
	later, _ := tenantauth.NewMinter([]byte(testJWTSecret), "", "", func() time.Time { return time.Now().Add(3 * time.Second) })
	fresh, _ := later.MintAccount("acme", acct, time.Hour)
	if r := h.send(c, "GET", root, "/org/", "OAuth2 "+fresh, nil); r.status != 200 {
		t.Errorf("a token issued after the revocation: %d %s", r.status, r.body)
	}
	if r := h.do("DELETE", "/integrated-accounts/"+acct, tok, nil); r.status != 204 {
		t.Fatal(r.status)
	}
	podioExpired("account deleted", h.send(c, "GET", root, "/org/", "OAuth2 "+fresh, nil))
}

// TestProxyRefusesHostileInput: every request here is answered by dirgate, and Podio sees none.
func TestProxyRefusesHostileInput(t *testing.T) {
	t.Parallel()
	h, tok, acct := proxySetup(t, harnessOptions{proxyMaxBody: 1 << 10})
	scoped := h.proxyToken(tok, acct)
	h.sim.ResetCalls()
	c := h.browser()
	big := bytes.Repeat([]byte("x"), 2<<10)
	for _, tc := range []struct {
		path   string
		body   []byte
		status int
	}{
		{"/org/../user/status", nil, 400},
		{"/org/./", nil, 400},
		{"/org/%2e%2e/user/status", nil, 400},
		{"/org/%2E%2E/user/status", nil, 400},
		{"/org/%252e%252e/user/status", nil, 400},
		{"/org%2f..%2fuser/status", nil, 400},
		{"/org/%5c../user/status", nil, 400},
		{"//evil.example/org/", nil, 400},
		{"/org//3001", nil, 400},
		{"/http://evil.example/", nil, 400},
		{"/org/%00/", nil, 400},
		{"/org/%0d%0aX-Injected:%20yes/", nil, 400},
		{"/org/%7f/", nil, 400},
		{"/" + strings.Repeat("a", 5000), nil, 400},
		{"/space/40001/member/", big, 413},
	} {
		for _, entrance := range []struct{ base, prefix, auth string }{
			{h.url, "/proxy/" + acct, "Bearer " + tok},
			{h.replicas[0].proxyTS.URL, "", "OAuth2 " + scoped},
		} {
			method := "GET"
			if tc.body != nil {
				method = "POST"
			}
			r := h.send(c, method, entrance.base, entrance.prefix+tc.path, entrance.auth, tc.body)
			if r.status != tc.status {
				t.Errorf("%s %s%s: %d %.200s, want %d", method, entrance.prefix, tc.path, r.status, r.body, tc.status)
			}
		}
	}
	// Header injection and a backslash, on a raw connection (Go's client would refuse to send them).
	for _, raw := range []string{
		"GET /proxy/" + acct + "/org/ HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + tok + "\r\nX-A: b\rX-Injected: yes\r\n\r\n",
		"GET /proxy/" + acct + "/org\\..\\user/status HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + tok + "\r\n\r\n",
		"GET http://evil.example/proxy/" + acct + "/org/ HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + tok + "\r\n\r\n",
	} {
		if status := rawStatus(t, h.url, raw); status != 400 && status != 404 {
			t.Errorf("raw %q: %d, want 400", raw[:40], status)
		}
	}
	if rawStatus(t, h.replicas[0].proxyTS.URL, "GET http://evil.example/org/ HTTP/1.1\r\nHost: evil.example\r\nAuthorization: OAuth2 "+scoped+"\r\n\r\n") != 400 {
		t.Error("absolute-form request target on the root listener was not refused")
	}
	if calls := totalCalls(h.sim.Calls()); calls != 0 {
		t.Errorf("hostile requests reached Podio: %v", h.sim.Calls())
	}
}

// rawStatus writes a raw HTTP request to base's host and returns the status code.
func rawStatus(t *testing.T, base, raw string) int {
	t.Helper()
	u, _ := url.Parse(base)
	conn, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(conn, raw); err != nil {
		t.Fatal(err)
	}
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("raw request: %v", err)
	}
	res.Body.Close()
	return res.StatusCode
}

// TestProxyRefreshesExpiredToken: Podio says the access token expired; the proxy refreshes it
// once and repeats the call, and no token reaches the logs.
func TestProxyRefreshesExpiredToken(t *testing.T) {
	t.Parallel()
	h, tok, acct := proxySetup(t, harnessOptions{})
	h.sim.Advance(9 * time.Hour) // Podio's tokens expire; the gateway's clock still thinks them fresh
	h.sim.ResetCalls()
	c := h.browser()
	r := h.send(c, "GET", h.url, "/proxy/"+acct+"/org/3001", "Bearer "+tok, nil)
	if r.status != 200 {
		t.Fatalf("after expiry: %d %s", r.status, r.body)
	}
	if got := h.sim.Calls()[podiosim.RouteToken]; got != 1 {
		t.Errorf("token endpoint called %d times, want 1", got)
	}
	if got := h.sim.Calls()[podiosim.RouteOrg]; got != 2 {
		t.Errorf("GET /org/{id} called %d times, want 2 (refused, then repeated)", got)
	}
	_, cr, err := h.replicas[0].store.LoadCredentials(t.Context(), "acme", acct)
	if err != nil {
		t.Fatal(err)
	}
	logs := h.logs.String()
	for _, secret := range []string{cr.AccessToken, cr.RefreshToken, tok} {
		if strings.Contains(logs, secret) {
			t.Error("a token reached the logs")
		}
	}
	if !strings.Contains(logs, `"msg":"proxy"`) || !strings.Contains(logs, `"path":"/org/{id}"`) || !strings.Contains(logs, `"account":"`+acct+`"`) {
		t.Errorf("no proxy log line with the path template and account:\n%s", logs)
	}
}

// TestProxiedWriteNotRetried: a proxied POST that Podio answers 503 is not sent again, even with
// an Idempotency-Key (Podio documents none: the write may have taken effect), and the key is not
// passed on. A retry would have met the simulator's next, healthy answer.
func TestProxiedWriteNotRetried(t *testing.T) {
	t.Parallel()
	h, tok, acct := proxySetup(t, harnessOptions{})
	space := h.simState().Orgs[0].Spaces[0].SpaceID
	member, _ := h.sim.UserID("member@demo.example")
	if err := h.sim.AddFault(podiosim.Fault{Route: podiosim.RouteAddSpaceMember, Status: 503, Times: 1}); err != nil {
		t.Fatal(err)
	}
	body, _ := json.Marshal(map[string]any{"role": "regular", "users": []int64{member}})
	r := h.send(h.browser(), "POST", h.url, fmt.Sprintf("/proxy/%s/space/%d/member/", acct, space), "Bearer "+tok, body,
		"Idempotency-Key", "proxy-write-1")
	if r.status != http.StatusServiceUnavailable {
		t.Fatalf("proxied POST answered %d %s; want Podio's 503 passed through, not a retry", r.status, r.body)
	}
}
