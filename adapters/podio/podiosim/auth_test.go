package podiosim_test

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dirgate/dirgate/adapters/podio/podiosim"
)

func TestExpiredTokenAndAuthSchemes(t *testing.T) {
	t.Parallel()
	h := setup(t, podiosim.Config{})
	tok := h.token(adminMail)

	for _, tc := range []struct {
		name, path, header string
	}{
		{"OAuth2 header", "/user/", "OAuth2 " + tok},
		{"Bearer header", "/user/", "Bearer " + tok},
		{"oauth_token query", "/user/?oauth_token=" + tok, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest("GET", h.url+tc.path, nil)
			if tc.header != "" {
				req.Header.Set("Authorization", tc.header)
			}
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			if res.StatusCode != 200 {
				t.Fatalf("status = %d", res.StatusCode)
			}
		})
	}

	h.sim.Advance(8*time.Hour + time.Second)
	r := h.do("GET", "/org/", tok, nil)
	e := checkPodioError(t, r, 401, "unauthorized")
	if e["error_description"] != "expired_token" {
		t.Errorf("error_description = %v", e["error_description"])
	}
	if got := r.header.Get("WWW-Authenticate"); got != `Bearer realm="podio", error="expired_token"` {
		t.Errorf("WWW-Authenticate = %q", got)
	}
	if strings.Contains(string(r.body), tok) {
		t.Error("token leaked into the error body")
	}
	r = h.do("GET", "/org/", "garbage", nil)
	if e := checkPodioError(t, r, 401, "invalid_token"); e["error_description"] == "expired_token" {
		t.Error("unknown token must not look expired")
	}
	if r.header.Get("WWW-Authenticate") != "" {
		t.Error("WWW-Authenticate only for expired tokens")
	}
}

var waitRE = regexp.MustCompile(`^You have hit the rate limit\. Please wait (\d+) seconds before trying again$`)

func TestQuota(t *testing.T) {
	t.Parallel()
	for _, retryAfter := range []bool{false, true} {
		t.Run("retry-after="+strconv.FormatBool(retryAfter), func(t *testing.T) {
			t.Parallel()
			h := setup(t, podiosim.Config{GeneralLimit: 3, RetryAfterHeader: retryAfter})
			tok := h.token(adminMail)
			for want := 2; want >= 0; want-- {
				r := h.do("GET", "/user/", tok, nil)
				if r.status != 200 || r.header.Get("X-Rate-Limit-Limit") != "3" || r.header.Get("X-Rate-Limit-Remaining") != strconv.Itoa(want) {
					t.Fatalf("status %d limit %s remaining %s, want 200 3 %d", r.status, r.header.Get("X-Rate-Limit-Limit"), r.header.Get("X-Rate-Limit-Remaining"), want)
				}
			}
			h.sim.Advance(20 * time.Minute)
			r := h.do("GET", "/org/", tok, nil)
			e := checkPodioError(t, r, 420, "rate_limit")
			m := waitRE.FindStringSubmatch(e["error_description"].(string))
			if m == nil || m[1] != "2400" {
				t.Fatalf("error_description = %q, want a 2400 s wait", e["error_description"])
			}
			if got := r.header.Get("Retry-After"); (got == "2400") != retryAfter || (!retryAfter && got != "") {
				t.Errorf("Retry-After = %q with RetryAfterHeader=%v", got, retryAfter)
			}
			if r.header.Get("X-Rate-Limit-Remaining") != "0" {
				t.Errorf("remaining on 420 = %q", r.header.Get("X-Rate-Limit-Remaining"))
			}
			// Another user is counted separately; the limited user recovers when the window ends.
			if r := h.do("GET", "/user/", h.token(memberMail), nil); r.status != 200 {
				t.Fatalf("other user: status %d", r.status)
			}
			h.sim.Advance(40 * time.Minute)
			if r := h.do("GET", "/user/", tok, nil); r.status != 200 || r.header.Get("X-Rate-Limit-Remaining") != "2" {
				t.Fatalf("after window: status %d remaining %s (a 420 must not count)", r.status, r.header.Get("X-Rate-Limit-Remaining"))
			}
			if got := h.sim.Calls()[podiosim.RouteOrgs]; got != 1 {
				t.Errorf("rejected call counted %d times in Calls, want 1", got)
			}
			if got := h.sim.RateLimitedCalls(); len(got) != 1 || got[podiosim.RouteOrgs] != 1 {
				t.Errorf("RateLimitedCalls = %v, want the one 420 of %s", got, podiosim.RouteOrgs)
			}
			// A 420 forced by a fault counts too; ResetCalls clears both counters.
			if err := h.sim.AddFault(podiosim.Fault{Route: podiosim.RouteUser, RateLimit: true, Times: 1}); err != nil {
				t.Fatal(err)
			}
			checkPodioError(t, h.do("GET", "/user/", tok, nil), 420, "rate_limit")
			if got := h.sim.RateLimitedCalls()[podiosim.RouteUser]; got != 1 {
				t.Errorf("forced 420s counted %d times, want 1", got)
			}
			h.sim.ResetCalls()
			if got := h.sim.RateLimitedCalls(); len(got) != 0 {
				t.Errorf("after ResetCalls, RateLimitedCalls = %v", got)
			}
			h.do("GET", "/user/", tok, nil)
			h.do("GET", "/user/", tok, nil)
			h.sim.ResetQuota()
			if r := h.do("GET", "/user/", tok, nil); r.status != 200 {
				t.Fatalf("after ResetQuota: %d", r.status)
			}
		})
	}
}

func TestQuotaRateLimitedClass(t *testing.T) {
	t.Parallel()
	h := setup(t, podiosim.Config{GeneralLimit: 5, RateLimitedLimit: 2, RateLimitedRoutes: []string{podiosim.RouteOrgMembers}})
	tok := h.token(adminMail)
	path := "/org/" + org1 + "/member/"
	for want := 1; want >= 0; want-- {
		r := h.do("GET", path, tok, nil)
		if r.status != 200 || r.header.Get("X-Rate-Limit-Limit") != "2" || r.header.Get("X-Rate-Limit-Remaining") != strconv.Itoa(want) {
			t.Fatalf("status %d limit %s remaining %s", r.status, r.header.Get("X-Rate-Limit-Limit"), r.header.Get("X-Rate-Limit-Remaining"))
		}
	}
	checkPodioError(t, h.do("GET", path, tok, nil), 420, "rate_limit")
	r := h.do("GET", "/user/", tok, nil)
	if r.status != 200 || r.header.Get("X-Rate-Limit-Limit") != "5" || r.header.Get("X-Rate-Limit-Remaining") != "4" {
		t.Fatalf("general class: status %d limit %s remaining %s", r.status, r.header.Get("X-Rate-Limit-Limit"), r.header.Get("X-Rate-Limit-Remaining"))
	}
	// Unauthenticated answers carry the general limit untouched; the token endpoint is not counted.
	r = h.do("POST", "/oauth/token", "", "grant_type=password&client_id=demo-client&client_secret=demo-secret&username=admin%40demo.example&password=demo")
	if r.status != 200 || r.header.Get("X-Rate-Limit-Limit") != "5" || r.header.Get("X-Rate-Limit-Remaining") != "5" {
		t.Fatalf("token endpoint: status %d limit %s remaining %s", r.status, r.header.Get("X-Rate-Limit-Limit"), r.header.Get("X-Rate-Limit-Remaining"))
	}
}

func tokenForm(kv ...string) string {
	v := url.Values{"client_id": {"demo-client"}, "client_secret": {"demo-secret"}}
	for i := 0; i+1 < len(kv); i += 2 {
		v.Set(kv[i], kv[i+1])
	}
	return v.Encode()
}

func TestTokenEndpoint(t *testing.T) {
	t.Parallel()
	h := setup(t, podiosim.Config{})
	tests := []struct {
		name   string
		path   string
		body   any
		status int
		code   string
		ref    string
	}{
		{"password form", "/oauth/token", tokenForm("grant_type", "password", "username", adminMail, "password", "demo"), 200, "", "user:1000001"},
		{"password v2 json", "/oauth/token/v2", map[string]any{"grant_type": "password", "client_id": "demo-client", "client_secret": "demo-secret", "username": memberMail, "password": "demo"}, 200, "", "user:1000002"},
		{"app v2 numeric id", "/oauth/token/v2", map[string]any{"grant_type": "app", "client_id": "demo-client", "client_secret": "demo-secret", "app_id": 5001, "app_token": "demo-app-token"}, 200, "", "app:5001"},
		{"app form", "/oauth/token", tokenForm("grant_type", "app", "app_id", "5001", "app_token", "demo-app-token"), 200, "", "app:5001"},
		{"bad password", "/oauth/token", tokenForm("grant_type", "password", "username", adminMail, "password", "nope"), 400, "invalid_grant", ""},
		{"bad app token", "/oauth/token", tokenForm("grant_type", "app", "app_id", "5001", "app_token", "x"), 400, "invalid_grant", ""},
		{"bad secret", "/oauth/token", "grant_type=password&client_id=demo-client&client_secret=wrong&username=a&password=b", 401, "invalid_client", ""},
		{"unknown client", "/oauth/token", "grant_type=password&client_id=other&client_secret=x&username=a&password=b", 401, "invalid_client", ""},
		{"unsupported grant", "/oauth/token", tokenForm("grant_type", "implicit"), 400, "unsupported_grant_type", ""},
		{"missing param", "/oauth/token", tokenForm("grant_type", "password", "username", adminMail), 400, "invalid_request", ""},
		{"bad refresh", "/oauth/token", tokenForm("grant_type", "refresh_token", "refresh_token", "nope"), 400, "invalid_grant", ""},
		{"bad code", "/oauth/token", tokenForm("grant_type", "authorization_code", "code", "nope", "redirect_uri", "http://localhost/cb"), 400, "invalid_grant", ""},
		{"v2 not json", "/oauth/token/v2", "{nope", 400, "invalid_request", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := h.do("POST", tc.path, "", tc.body)
			if tc.code != "" {
				checkPodioError(t, r, tc.status, tc.code)
				return
			}
			if r.status != 200 {
				t.Fatalf("status %d: %s", r.status, r.body)
			}
			m := r.obj(t)
			checkShape(t, "token", m, tokenShape2_2)
			ref := m["ref"].(map[string]any)
			if got := ref["type"].(string) + ":" + strconv.FormatInt(num(ref["id"]), 10); got != tc.ref {
				t.Errorf("ref = %s, want %s", got, tc.ref)
			}
			if m["token_type"] != "bearer" || num(m["expires_in"]) != 28800 || m["scope"] != "global:all" {
				t.Errorf("token fields = %v", m)
			}
			if strings.HasPrefix(tc.ref, "app:") {
				checkPodioError(t, h.do("GET", "/org/", m["access_token"].(string), nil), 403, "forbidden")
			}
		})
	}
}

func TestRefreshRotation(t *testing.T) {
	t.Parallel()
	for _, disable := range []bool{false, true} {
		t.Run("disable="+strconv.FormatBool(disable), func(t *testing.T) {
			t.Parallel()
			h := setup(t, podiosim.Config{DisableRefreshRotation: disable})
			first, err := h.sim.IssueToken("demo-client", memberMail)
			if err != nil {
				t.Fatal(err)
			}
			r := h.do("POST", "/oauth/token", "", tokenForm("grant_type", "refresh_token", "refresh_token", first.RefreshToken))
			if r.status != 200 {
				t.Fatalf("refresh: %d %s", r.status, r.body)
			}
			m := r.obj(t)
			if same := m["refresh_token"] == first.RefreshToken; same != disable {
				t.Errorf("refresh token unchanged = %v, want %v", same, disable)
			}
			if m["access_token"] == first.AccessToken {
				t.Error("refresh must mint a new access token")
			}
			if r := h.do("GET", "/user/", first.AccessToken, nil); r.status != 200 {
				t.Errorf("old access token stopped working: %d", r.status)
			}
			reuse := h.do("POST", "/oauth/token", "", tokenForm("grant_type", "refresh_token", "refresh_token", first.RefreshToken))
			if disable {
				if reuse.status != 200 {
					t.Fatalf("reuse without rotation: %d %s", reuse.status, reuse.body)
				}
			} else {
				checkPodioError(t, reuse, 400, "invalid_grant")
				next := h.do("POST", "/oauth/token", "", tokenForm("grant_type", "refresh_token", "refresh_token", m["refresh_token"].(string)))
				if next.status != 200 {
					t.Fatalf("rotated token refused: %d", next.status)
				}
			}
			// Refresh tokens expire after 28 days.
			latest, _ := h.sim.IssueToken("demo-client", memberMail)
			h.sim.Advance(28*24*time.Hour + time.Second)
			checkPodioError(t, h.do("POST", "/oauth/token", "", tokenForm("grant_type", "refresh_token", "refresh_token", latest.RefreshToken)), 400, "invalid_grant")
		})
	}
}

func noRedirectGet(t *testing.T, u string) *http.Response {
	t.Helper()
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func TestAuthorizeFlow(t *testing.T) {
	t.Parallel()
	sim := podiosim.New(podiosim.Config{})
	mux := http.NewServeMux()
	mux.Handle("/podio/", http.StripPrefix("/podio", sim)) // the client tests mount it like this
	ts := httptest.NewServer(mux)
	t.Cleanup(ts.Close)
	h := &harness{t: t, sim: sim, url: ts.URL + "/podio"}
	const cb = "http://app.localhost:8080/cb?x=1"

	q := url.Values{"client_id": {"demo-client"}, "redirect_uri": {cb}, "state": {"s1"}, "response_type": {"code"}}
	page := h.do("GET", "/oauth/authorize?"+q.Encode()+"&state=s2", "", nil)
	if page.status != 200 || !strings.HasPrefix(page.header.Get("Content-Type"), "text/html") {
		t.Fatalf("page: %d %s", page.status, page.header.Get("Content-Type"))
	}
	for _, want := range []string{`action="authorize"`, `name="client_id" value="demo-client"`, `name="state" value="s2"`, `name="username"`, `name="password"`, `value="allow"`, `value="deny"`} {
		if !strings.Contains(string(page.body), want) {
			t.Errorf("page lacks %s", want)
		}
	}

	form := func(kv ...string) string {
		v := url.Values{"client_id": {"demo-client"}, "redirect_uri": {cb}, "state": {"s1"}}
		for i := 0; i+1 < len(kv); i += 2 {
			v.Set(kv[i], kv[i+1])
		}
		return v.Encode()
	}
	deny := h.do("POST", "/oauth/authorize", "", form("decision", "deny"))
	if want := "http://app.localhost:8080/cb?x=1&error_reason=user_denied&error=access_denied&error_description=The+user+denied+your+request.&state=s1"; deny.status != 302 || deny.header.Get("Location") != want {
		t.Fatalf("deny: %d %q", deny.status, deny.header.Get("Location"))
	}
	bad := h.do("POST", "/oauth/authorize", "", form("decision", "allow", "username", adminMail, "password", "wrong"))
	if bad.status != 200 || bad.header.Get("Location") != "" || !strings.Contains(string(bad.body), "Wrong e-mail or password") {
		t.Fatalf("wrong password: %d %q", bad.status, bad.header.Get("Location"))
	}
	allow := h.do("POST", "/oauth/authorize", "", form("decision", "allow", "username", adminMail, "password", "demo"))
	loc, err := url.Parse(allow.header.Get("Location"))
	if allow.status != 302 || err != nil || loc.Query().Get("state") != "s1" || loc.Query().Get("code") == "" || loc.Query().Get("x") != "1" {
		t.Fatalf("allow: %d %q", allow.status, allow.header.Get("Location"))
	}
	code := loc.Query().Get("code")
	checkPodioError(t, h.do("POST", "/oauth/token", "", tokenForm("grant_type", "authorization_code", "code", code, "redirect_uri", "http://localhost/other")), 400, "invalid_grant")
	ok := h.do("POST", "/oauth/token", "", tokenForm("grant_type", "authorization_code", "code", code, "redirect_uri", cb))
	if ok.status != 200 || num(ok.obj(t)["ref"].(map[string]any)["id"]) != adminUserID {
		t.Fatalf("exchange: %d %s", ok.status, ok.body)
	}
	checkPodioError(t, h.do("POST", "/oauth/token", "", tokenForm("grant_type", "authorization_code", "code", code, "redirect_uri", cb)), 400, "invalid_grant")

	// No state → no state parameter; codes expire after 10 minutes.
	allow = h.do("POST", "/oauth/authorize", "", form("decision", "allow", "username", memberMail, "password", "demo", "state", ""))
	loc, _ = url.Parse(allow.header.Get("Location"))
	if _, has := loc.Query()["state"]; has {
		t.Errorf("empty state echoed: %s", loc)
	}
	sim.Advance(11 * time.Minute)
	checkPodioError(t, h.do("POST", "/oauth/token", "", tokenForm("grant_type", "authorization_code", "code", loc.Query().Get("code"), "redirect_uri", cb)), 400, "invalid_grant")

	for _, tc := range []struct{ name, client, redirect string }{
		{"foreign domain", "demo-client", "https://evil.example.org/cb"},
		{"suffix trick", "demo-client", "https://notexample.com/cb"},
		{"not absolute", "demo-client", "/cb"},
		{"unparsable", "demo-client", "http://%zz"},
		{"unknown client", "nobody", cb},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q := url.Values{"client_id": {tc.client}, "redirect_uri": {tc.redirect}}
			res := noRedirectGet(t, h.url+"/oauth/authorize?"+q.Encode())
			res.Body.Close()
			if res.StatusCode != 400 || res.Header.Get("Location") != "" {
				t.Errorf("GET: %d %q", res.StatusCode, res.Header.Get("Location"))
			}
			r := h.do("POST", "/oauth/authorize", "", q.Encode()+"&decision=deny")
			if r.status != 400 || r.header.Get("Location") != "" {
				t.Errorf("POST: %d %q", r.status, r.header.Get("Location"))
			}
		})
	}
	res := noRedirectGet(t, h.url+"/oauth/authorize?client_id=demo-client&redirect_uri="+url.QueryEscape("https://sub.example.com:9443/cb"))
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Errorf("subdomain redirect refused: %d", res.StatusCode)
	}
}
