package api_test

import (
	"fmt"
	"html"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/dirgate/dirgate/adapters/podio/podiosim"
)

var hiddenInput = regexp.MustCompile(`<input type="hidden" name="([a-z_]+)" value="([^"]*)">`)

// person drives a browser through the link flow: open link_url, sign in on the simulator's
// authorize page, and follow Podio's redirect back to the gateway's callback.
type person struct {
	h       *harness
	browser *http.Client
}

func (h *harness) person() *person { return &person{h: h, browser: h.browser()} }

// get fetches an absolute URL with the person's browser.
func (p *person) get(raw string) response {
	p.h.t.Helper()
	res, err := p.browser.Get(raw)
	if err != nil {
		p.h.t.Fatalf("GET %s: %v", raw, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return response{status: res.StatusCode, header: res.Header, body: b}
}

// authorize opens the Podio authorize page at authURL, submits the decision with the
// credentials, and returns Podio's redirect (the gateway callback URL).
func (p *person) authorize(authURL, username, password, decision string) string {
	t := p.h.t
	t.Helper()
	page := p.get(authURL)
	if page.status != http.StatusOK {
		t.Fatalf("authorize page: %d %s", page.status, page.body)
	}
	form := url.Values{"username": {username}, "password": {password}, "decision": {decision}}
	for _, m := range hiddenInput.FindAllStringSubmatch(string(page.body), -1) {
		form.Set(m[1], html.UnescapeString(m[2]))
	}
	res, err := p.browser.PostForm(p.h.simURL+"/oauth/authorize", form)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusFound {
		t.Fatalf("authorize submit: %d, want a redirect", res.StatusCode)
	}
	return res.Header.Get("Location")
}

// startLink creates a link token for tenant and opens it; it returns Podio's authorize URL.
func (p *person) startLink(tenant, redirectURI, accountID string) string {
	body := map[string]any{}
	if redirectURI != "" {
		body["redirect_uri"] = redirectURI
	}
	if accountID != "" {
		body["integrated_account_id"] = accountID
	}
	return p.continueLink(p.createLink(tenant, body))
}

// createLink creates a link token for tenant with body and returns its link_url.
func (p *person) createLink(tenant string, body map[string]any) string {
	t := p.h.t
	t.Helper()
	r := p.h.call(p.browser, "POST", p.h.url, "/link-tokens", p.h.token(tenant), body)
	if r.status != http.StatusCreated {
		t.Fatalf("POST /link-tokens: %d %s", r.status, r.body)
	}
	var lt struct {
		LinkToken string    `json:"link_token"`
		LinkURL   string    `json:"link_url"`
		ExpiresAt time.Time `json:"expires_at"`
	}
	r.json(t, &lt)
	if !strings.HasPrefix(lt.LinkURL, p.h.url+"/link/") || lt.ExpiresAt.Sub(p.h.clock.Now()) > 10*time.Minute+time.Second {
		t.Fatalf("link token %+v: want a link_url on the gateway and expiry within 10 minutes", lt)
	}
	return lt.LinkURL
}

var continueLink = regexp.MustCompile(`<a class="button" id="continue" href="([^"]+)">`)

// continueLink opens the hosted link page at linkURL, clicks Continue, and returns Podio's
// authorize URL it was redirected to.
func (p *person) continueLink(linkURL string) string {
	t := p.h.t
	t.Helper()
	page := p.get(linkURL)
	m := continueLink.FindSubmatch(page.body)
	if page.status != http.StatusOK || m == nil {
		t.Fatalf("GET link_url: %d %s, want the link page with a Continue link", page.status, page.body)
	}
	authorize := html.UnescapeString(string(m[1]))
	if authorize != linkURL+"/authorize" {
		t.Fatalf("Continue goes to %q, want %q", authorize, linkURL+"/authorize")
	}
	open := p.get(authorize)
	if open.status != http.StatusFound || !strings.HasPrefix(open.header.Get("Location"), p.h.simURL+"/oauth/authorize?") {
		t.Fatalf("GET %s: %d → %q, want a redirect to the authorize page", authorize, open.status, open.header.Get("Location"))
	}
	return open.header.Get("Location")
}

// finish follows the callback URL and returns where the gateway sends the browser.
func (p *person) finish(callback string) (response, *url.URL) {
	p.h.t.Helper()
	r := p.get(callback)
	loc, _ := url.Parse(r.header.Get("Location"))
	return r, loc
}

// exchange trades a link result for the account (POST /link-results as tenant) and returns the
// account id.
func (h *harness) exchange(tenant, result string) string {
	h.t.Helper()
	r := h.do("POST", "/link-results", h.token(tenant), map[string]any{"link_result": result})
	if r.status != http.StatusOK {
		h.t.Fatalf("POST /link-results: %d %s", r.status, r.body)
	}
	var out struct {
		IntegratedAccount struct{ ID string } `json:"integrated_account"`
	}
	r.json(h.t, &out)
	return out.IntegratedAccount.ID
}

// linked is the account a link redirect names, through its link_result.
func (h *harness) linked(tenant string, loc *url.URL) string {
	h.t.Helper()
	if loc.Query().Has("integrated_account_id") {
		h.t.Fatalf("the redirect names the account itself: %v", loc)
	}
	return h.exchange(tenant, loc.Query().Get("link_result"))
}

const appRedirect = "https://app.example/linked?session=42"

func TestLinkFlowEndToEnd(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	p := h.person()
	callback := p.authorize(p.startLink("tenant-a", appRedirect, ""), "admin@demo.example", "demo", "allow")
	if !strings.HasPrefix(callback, h.url+"/link/callback?") {
		t.Fatalf("Podio redirected to %q, want the gateway callback", callback)
	}
	r, loc := p.finish(callback)
	if r.status != http.StatusFound || loc == nil || loc.Host != "app.example" || loc.Query().Get("session") != "42" {
		t.Fatalf("callback: %d → %v, want the app's redirect_uri with its own query kept", r.status, loc)
	}
	id := h.linked("tenant-a", loc)
	if !strings.HasPrefix(id, "ia_") {
		t.Fatalf("the link result names account %q", id)
	}
	acct := h.do("GET", "/integrated-accounts/"+id, h.token("tenant-a"), nil)
	var a struct {
		Status, Email, GrantType string `json:"-"`
	}
	var got map[string]any
	acct.json(t, &got)
	_ = a
	if got["status"] != "active" || got["email"] != "admin@demo.example" || got["grant_type"] != "authorization_code" {
		t.Errorf("linked account = %v", got)
	}
	uid, _ := h.sim.UserID("admin@demo.example")
	if got["podio_user_id"] != fmt.Sprint(uid) {
		t.Errorf("podio_user_id = %v, want %d", got["podio_user_id"], uid)
	}

	// Replaying the callback (same browser) links nothing more.
	if r, _ := p.finish(callback); r.status != http.StatusBadRequest {
		t.Errorf("replayed callback: %d, want 400", r.status)
	}
	var list struct{ Data []map[string]any }
	h.do("GET", "/integrated-accounts", h.token("tenant-a"), nil).json(t, &list)
	if len(list.Data) != 1 {
		t.Errorf("after a replayed callback the tenant has %d accounts, want 1", len(list.Data))
	}
}

func TestLinkFlowRefusals(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	countAccounts := func() int {
		var list struct{ Data []map[string]any }
		h.do("GET", "/integrated-accounts", h.token("tenant-a"), nil).json(t, &list)
		return len(list.Data)
	}

	t.Run("denied consent", func(t *testing.T) {
		p := h.person()
		r, loc := p.finish(p.authorize(p.startLink("tenant-a", appRedirect, ""), "admin@demo.example", "demo", "deny"))
		if r.status != http.StatusFound || loc.Query().Get("error") != "access_denied" || loc.Query().Get("link_result") != "" {
			t.Errorf("denied: %d → %v, want redirect with error=access_denied", r.status, loc)
		}
	})
	t.Run("callback in another browser", func(t *testing.T) {
		p := h.person()
		callback := p.authorize(p.startLink("tenant-a", appRedirect, ""), "admin@demo.example", "demo", "allow")
		if r, _ := h.person().finish(callback); r.status != http.StatusBadRequest {
			t.Errorf("callback without the starting browser's cookie: %d, want 400", r.status)
		}
		// The state was not consumed by the stranger: the right browser still completes.
		if r, loc := p.finish(callback); r.status != http.StatusFound || loc.Query().Get("link_result") == "" {
			t.Errorf("the starting browser after a stranger's attempt: %d → %v", r.status, loc)
		}
	})
	t.Run("forged state", func(t *testing.T) {
		p := h.person()
		callback := p.authorize(p.startLink("tenant-a", appRedirect, ""), "admin@demo.example", "demo", "allow")
		u, _ := url.Parse(callback)
		q := u.Query()
		q.Set("state", q.Get("state")+"x")
		u.RawQuery = q.Encode()
		if r, _ := p.finish(u.String()); r.status != http.StatusBadRequest {
			t.Errorf("forged state: %d, want 400", r.status)
		}
	})
	t.Run("link token used twice", func(t *testing.T) {
		p := h.person()
		linkURL := p.createLink("tenant-a", map[string]any{"redirect_uri": appRedirect})
		// Previewers and the person may load the page any number of times...
		for i := range 2 {
			if page := p.get(linkURL); page.status != http.StatusOK {
				t.Fatalf("page load %d: %d, want 200", i+1, page.status)
			}
		}
		// ...but Continue works once.
		if first := p.get(linkURL + "/authorize"); first.status != http.StatusFound {
			t.Fatalf("first continue: %d", first.status)
		}
		if again := p.get(linkURL + "/authorize"); again.status != http.StatusNotFound || !strings.Contains(string(again.body), "expired") {
			t.Errorf("second continue: %d, want 404 with the expired page", again.status)
		}
		if page := p.get(linkURL); page.status != http.StatusNotFound {
			t.Errorf("page after continuing: %d, want 404", page.status)
		}
	})
	t.Run("expired link token", func(t *testing.T) {
		h2 := newHarness(t, harnessOptions{})
		p := h2.person()
		r := h2.call(p.browser, "POST", h2.url, "/link-tokens", h2.token("tenant-a"), map[string]any{"redirect_uri": appRedirect})
		var lt struct {
			LinkURL string `json:"link_url"`
		}
		r.json(t, &lt)
		h2.clock.Advance(11 * time.Minute)
		for _, u := range []string{lt.LinkURL, lt.LinkURL + "/authorize"} {
			if got := p.get(u); got.status != http.StatusNotFound {
				t.Errorf("expired link token, GET %s: %d, want 404", u, got.status)
			}
		}
	})
	t.Run("wrong password stays on Podio's page", func(t *testing.T) {
		p := h.person()
		authURL := p.startLink("tenant-a", appRedirect, "")
		page := p.get(authURL)
		form := url.Values{"username": {"admin@demo.example"}, "password": {"nope"}, "decision": {"allow"}}
		for _, m := range hiddenInput.FindAllStringSubmatch(string(page.body), -1) {
			form.Set(m[1], html.UnescapeString(m[2]))
		}
		res, err := p.browser.PostForm(h.simURL+"/oauth/authorize", form)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusOK {
			t.Errorf("wrong password: %d, want the sign-in page again", res.StatusCode)
		}
	})
	t.Run("bad link token requests", func(t *testing.T) {
		for _, body := range []map[string]any{
			{"redirect_uri": "not a url"},
			{"redirect_uri": "ftp://app.example/x"},
			{"redirect_uri": "https://app.example/x#frag"},
			{"redirect_uri": appRedirect, "extra": 1},
		} {
			if r := h.do("POST", "/link-tokens", h.token("tenant-a"), body); r.status != http.StatusBadRequest || r.errorCode(t) != "invalid_request" {
				t.Errorf("POST /link-tokens %v: %d %s, want 400 invalid_request", body, r.status, r.body)
			}
		}
		if r := h.do("POST", "/link-tokens", h.token("tenant-a"), map[string]any{"redirect_uri": appRedirect, "integrated_account_id": "ia_nope"}); r.status != http.StatusNotFound {
			t.Errorf("link token for an unknown account: %d, want 404", r.status)
		}
	})
	// denied, stranger (then completed), forged: exactly one account came out of all that.
	if n := countAccounts(); n != 1 {
		t.Errorf("tenant has %d accounts after the refusals, want 1 (the completed one)", n)
	}
}

// TestReauthorizeNeedsReauthAccount: an account whose refresh token Podio refuses turns
// needs_reauth (calls answer 424), and a browser re-link with the same Podio user revives it.
func TestReauthorizeNeedsReauthAccount(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{sim: podiosim.Config{AccessTokenTTL: time.Hour}})
	p := h.person()
	_, loc := p.finish(p.authorize(p.startLink("tenant-a", appRedirect, ""), "admin@demo.example", "demo", "allow"))
	id := h.linked("tenant-a", loc)
	tok := h.token("tenant-a")
	if r := h.do("POST", "/integrated-accounts/"+id+"/check", tok, nil); r.status != http.StatusOK {
		t.Fatalf("check of a fresh account: %d %s", r.status, r.body)
	}

	// Both tokens die behind our back: the access token expires and the refresh token is
	// forgotten by Podio (29 days later).
	h.sim.Advance(29 * 24 * time.Hour)
	h.clock.Advance(29 * 24 * time.Hour)
	r := h.do("POST", "/integrated-accounts/"+id+"/check", tok, nil)
	if r.status != http.StatusFailedDependency || r.errorCode(t) != "needs_reauth" {
		t.Fatalf("check with refused credentials: %d %s, want 424 needs_reauth", r.status, r.body)
	}
	var a map[string]any
	h.do("GET", "/integrated-accounts/"+id, tok, nil).json(t, &a)
	if a["status"] != "needs_reauth" {
		t.Fatalf("status = %v, want needs_reauth", a["status"])
	}

	// A different Podio user cannot take the account over.
	p2 := h.person()
	_, loc = p2.finish(p2.authorize(p2.startLink("tenant-a", appRedirect, id), "member@demo.example", "demo", "allow"))
	if loc.Query().Get("error") != "account_mismatch" {
		t.Errorf("re-link as another user → %v, want error=account_mismatch", loc)
	}
	// The same user revives it.
	p3 := h.person()
	_, loc = p3.finish(p3.authorize(p3.startLink("tenant-a", appRedirect, id), "admin@demo.example", "demo", "allow"))
	if got := h.linked("tenant-a", loc); got != id {
		t.Fatalf("re-link → account %s, want %s", got, id)
	}
	if r := h.do("POST", "/integrated-accounts/"+id+"/check", tok, nil); r.status != http.StatusOK {
		t.Fatalf("check after re-link: %d %s", r.status, r.body)
	}
	h.do("GET", "/integrated-accounts/"+id, tok, nil).json(t, &a)
	if a["status"] != "active" {
		t.Errorf("status after re-link = %v, want active", a["status"])
	}
}

func TestLinkTokenPageFieldsValidation(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	tok := h.token("tenant-a")
	long := strings.Repeat("a", 101)
	for name, body := range map[string]map[string]any{
		"app_name too long":          {"app_name": long},
		"app_name control character": {"app_name": "Acme\nHR"},
		"logo_url http":              {"logo_url": "http://cdn.example.com/logo.png"},
		"logo_url relative":          {"logo_url": "/logo.png"},
		"logo_url user info":         {"logo_url": "https://user:pw@cdn.example.com/logo.png"},
		"logo_url too long":          {"logo_url": "https://cdn.example.com/" + strings.Repeat("a", 2048)},
		"logo_url javascript":        {"logo_url": "javascript:alert(1)"},
		"return_origin with path":    {"return_origin": "https://app.example.com/cb"},
		"return_origin trailing /":   {"return_origin": "https://app.example.com/"},
		"return_origin query":        {"return_origin": "https://app.example.com?x=1"},
		"return_origin fragment":     {"return_origin": "https://app.example.com#x"},
		"return_origin user info":    {"return_origin": "https://u@app.example.com"},
		"return_origin scheme":       {"return_origin": "ftp://app.example.com"},
		"return_origin star":         {"return_origin": "*"},
		"return_origin no host":      {"return_origin": "https://"},
	} {
		if r := h.do("POST", "/link-tokens", tok, body); r.status != http.StatusBadRequest || r.errorCode(t) != "invalid_request" {
			t.Errorf("%s: POST /link-tokens %v: %d %s, want 400 invalid_request", name, body, r.status, r.body)
		}
	}
	for name, body := range map[string]map[string]any{
		"nothing (redirect_uri is optional)": {},
		"app_name of 100 characters":         {"app_name": strings.Repeat("é", 100)},
		"all fields": {"redirect_uri": appRedirect, "app_name": "Acme HR", "logo_url": "https://cdn.example.com:8443/logo.png?v=2",
			"return_origin": "http://localhost:3000"},
	} {
		if r := h.do("POST", "/link-tokens", tok, body); r.status != http.StatusCreated {
			t.Errorf("%s: POST /link-tokens %v: %d %s, want 201", name, body, r.status, r.body)
		}
	}
}

// TestLinkPage: the hosted page names the app, shows its logo with a policy widened to the
// logo's origin only, and escapes what the tenant supplied.
func TestLinkPage(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	p := h.person()
	linkURL := p.createLink("tenant-a", map[string]any{
		"app_name": `Acme <HR>`, "logo_url": "https://cdn.example.com:8443/logo.png?v=2",
	})
	r := p.get(linkURL)
	body := string(r.body)
	if r.status != http.StatusOK ||
		!strings.Contains(body, "Connect your Podio account to Acme &lt;HR&gt;") ||
		!strings.Contains(body, `<img class="logo" src="https://cdn.example.com:8443/logo.png?v=2" alt="Acme &lt;HR&gt; logo">`) ||
		!strings.Contains(body, `href="`+linkURL+`/authorize"`) || strings.Contains(body, "<HR>") {
		t.Fatalf("link page: %d %s", r.status, body)
	}
	csp := r.header.Get("Content-Security-Policy")
	if !strings.Contains(csp, "img-src 'self' data: https://cdn.example.com:8443;") || !strings.Contains(csp, "default-src 'none'") ||
		!strings.Contains(csp, "script-src 'self';") || r.header.Get("Cache-Control") != "no-store" {
		t.Errorf("link page policy %q, headers %v: want img-src widened to the logo origin only", csp, r.header)
	}

	plain := p.get(p.createLink("tenant-a", map[string]any{}))
	pb := string(plain.body)
	if plain.status != http.StatusOK || !strings.Contains(pb, "<h1>Connect your Podio account</h1>") || strings.Contains(pb, "<img") ||
		!strings.Contains(plain.header.Get("Content-Security-Policy"), "img-src 'self' data:;") {
		t.Errorf("page without app name or logo: %d %q %s", plain.status, plain.header.Get("Content-Security-Policy"), pb)
	}
}

var resultData = regexp.MustCompile(`(data-[a-z-]+)="([^"]*)"`)

// dataAttrs reads the data attributes link.js posts from a result page.
func dataAttrs(body []byte) map[string]string {
	out := map[string]string{}
	for _, m := range resultData.FindAllSubmatch(body, -1) {
		out[string(m[1])] = html.UnescapeString(string(m[2]))
	}
	return out
}

// TestLinkResultPages: without redirect_uri the link ends on dirgate's own pages, which carry
// the popup message for return_origin.
func TestLinkResultPages(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	const origin = "https://app.example.com:8443"

	t.Run("success", func(t *testing.T) {
		p := h.person()
		callback := p.authorize(p.continueLink(p.createLink("tenant-a", map[string]any{"app_name": "Acme HR", "return_origin": "https://APP.example.com:8443"})),
			"admin@demo.example", "demo", "allow")
		r, _ := p.finish(callback)
		body := string(r.body)
		if r.status != http.StatusOK || !strings.Contains(body, "Connected ") || strings.Contains(body, "ia_") ||
			!strings.Contains(r.header.Get("Content-Security-Policy"), "script-src 'self'") || !strings.Contains(body, `<script src="/ui/link.js">`) {
			t.Fatalf("success page: %d %s", r.status, body)
		}
		result := dataAttrs(r.body)["data-link-result"]
		id := h.exchange("tenant-a", result)
		var acct map[string]any
		if g := h.do("GET", "/integrated-accounts/"+id, h.token("tenant-a"), nil); g.status != http.StatusOK {
			t.Fatalf("the account on the page: %d", g.status)
		} else {
			g.json(t, &acct)
		}
		if !strings.Contains(body, "Connected "+html.EscapeString(acct["name"].(string))) {
			t.Errorf("success page does not name %q: %s", acct["name"], body)
		}
		want := map[string]string{"data-return-origin": origin, "data-type": "dirgate:linked",
			"data-link-result": result, "data-name": acct["name"].(string)}
		if diff := cmp.Diff(want, dataAttrs(r.body)); diff != "" {
			t.Errorf("popup message data (-want +got):\n%s", diff)
		}
	})
	t.Run("denied", func(t *testing.T) {
		p := h.person()
		r, _ := p.finish(p.authorize(p.continueLink(p.createLink("tenant-a", map[string]any{"app_name": "Acme HR", "return_origin": origin})),
			"admin@demo.example", "demo", "deny"))
		body := string(r.body)
		if r.status != http.StatusBadRequest || !strings.Contains(body, `role="alert"`) || !strings.Contains(body, "Access was not allowed") ||
			!strings.Contains(body, "ask Acme HR for a new link") || strings.Contains(body, "ia_") {
			t.Fatalf("denied page: %d %s", r.status, body)
		}
		want := map[string]string{"data-return-origin": origin, "data-type": "dirgate:link-failed",
			"data-error": "access_denied", "data-error-description": "The Podio user did not grant access."}
		if diff := cmp.Diff(want, dataAttrs(r.body)); diff != "" {
			t.Errorf("popup message data (-want +got):\n%s", diff)
		}
	})
	t.Run("mismatch without return_origin", func(t *testing.T) {
		p := h.person()
		_, loc := p.finish(p.authorize(p.startLink("tenant-a", appRedirect, ""), "admin@demo.example", "demo", "allow"))
		id := h.linked("tenant-a", loc)
		p2 := h.person()
		r, _ := p2.finish(p2.authorize(p2.continueLink(p2.createLink("tenant-a", map[string]any{"integrated_account_id": id})),
			"member@demo.example", "demo", "allow"))
		body := string(r.body)
		if r.status != http.StatusBadRequest || !strings.Contains(body, "A different Podio user signed in") ||
			!strings.Contains(body, "ask the application that sent you here for a new link") {
			t.Fatalf("mismatch page: %d %s", r.status, body)
		}
		if got := dataAttrs(r.body); got["data-return-origin"] != "" || got["data-error"] != "account_mismatch" {
			t.Errorf("popup data without return_origin: %v", got)
		}
	})
	t.Run("link.js is served", func(t *testing.T) {
		r := h.do("GET", "/ui/link.js", "", nil)
		if r.status != http.StatusOK || !strings.HasPrefix(r.header.Get("Content-Type"), "text/javascript") ||
			!strings.Contains(string(r.body), "postMessage(msg, origin)") || strings.Contains(string(r.body), `"*"`) {
			t.Errorf("link.js: %d %v", r.status, r.header)
		}
	})
}

// TestLinkResultExchange: the browser learns only a single-use code; the tenant's backend learns
// the account by exchanging it, once, with its own token (and, if it says so, only for its own
// link token). A customer who replays a redirect, or types another customer's account id into
// one, attaches nothing.
func TestLinkResultExchange(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{replicas: 2, allowPassword: true})
	p := h.person()
	linkURL := p.createLink("tenant-a", map[string]any{"redirect_uri": appRedirect,
		"end_user": map[string]any{"id": "cust-42", "organization_id": "org-7", "email": "ops@customer.example", "name": "Customer Ops"}})
	linkToken := linkURL[strings.LastIndex(linkURL, "/")+1:]
	_, loc := p.finish(p.authorize(p.continueLink(linkURL), "admin@demo.example", "demo", "allow"))
	result := loc.Query().Get("link_result")
	if !strings.HasPrefix(result, "lr_") || loc.Query().Has("integrated_account_id") {
		t.Fatalf("redirect %v: want a link_result and no account id", loc)
	}
	exchange := func(replica int, tenant string, body map[string]any) response {
		return h.call(h.browser(), "POST", h.replicas[replica].ts.URL, "/link-results", h.token(tenant), body)
	}

	// Another tenant, or the right tenant naming another link token, learns nothing and uses
	// nothing up.
	if r := exchange(0, "tenant-b", map[string]any{"link_result": result}); r.status != http.StatusNotFound {
		t.Errorf("another tenant's exchange: %d %s, want 404", r.status, r.body)
	}
	if r := exchange(1, "tenant-a", map[string]any{"link_result": result, "link_token": "lt_someotherlinktoken"}); r.status != http.StatusNotFound {
		t.Errorf("exchange for another link token: %d %s, want 404", r.status, r.body)
	}
	// The owner, on another replica, with its link token.
	r := exchange(1, "tenant-a", map[string]any{"link_result": result, "link_token": linkToken})
	if r.status != http.StatusOK {
		t.Fatalf("exchange: %d %s", r.status, r.body)
	}
	var out struct {
		IntegratedAccount map[string]any `json:"integrated_account"`
		Reauthorized      bool           `json:"reauthorized"`
		EndUser           map[string]any `json:"end_user"`
	}
	r.json(t, &out)
	wantEnd := map[string]any{"id": "cust-42", "organization_id": "org-7", "email": "ops@customer.example", "name": "Customer Ops"}
	if diff := cmp.Diff(wantEnd, out.EndUser); diff != "" || out.Reauthorized {
		t.Errorf("exchange answer: reauthorized %v, end_user (-want +got):\n%s", out.Reauthorized, diff)
	}
	id, _ := out.IntegratedAccount["id"].(string)
	if diff := cmp.Diff(wantEnd, out.IntegratedAccount["end_user"]); diff != "" || !strings.HasPrefix(id, "ia_") {
		t.Errorf("account %v: end_user (-want +got):\n%s", out.IntegratedAccount, diff)
	}
	// Single use, on every replica.
	for i := range h.replicas {
		if r := exchange(i, "tenant-a", map[string]any{"link_result": result}); r.status != http.StatusNotFound {
			t.Errorf("second exchange on replica %d: %d, want 404", i, r.status)
		}
	}
	// A forged redirect naming the account id gives the attacker no code to exchange.
	if r := exchange(0, "tenant-a", map[string]any{"link_result": id}); r.status != http.StatusBadRequest || r.errorCode(t) != "invalid_link_result" {
		t.Errorf("an account id as link_result: %d %s, want 400 invalid_link_result", r.status, r.body)
	}

	// The end user is on the account: listed, filtered, patched, cleared.
	tok := h.token("tenant-a")
	other := h.linkPassword("tenant-a", "member@demo.example")
	list := func(q string) []string {
		t.Helper()
		var l struct{ Data []struct{ ID string } }
		r := h.do("GET", "/integrated-accounts"+q, tok, nil)
		if r.status != http.StatusOK {
			t.Fatalf("GET /integrated-accounts%s: %d %s", q, r.status, r.body)
		}
		r.json(t, &l)
		var ids []string
		for _, a := range l.Data {
			ids = append(ids, a.ID)
		}
		return ids
	}
	if got := list("?end_user_id=cust-42"); !slices.Equal(got, []string{id}) {
		t.Errorf("filter by end user: %v, want [%s]", got, id)
	}
	if got := list(""); len(got) != 2 {
		t.Errorf("unfiltered: %v", got)
	}
	if r := h.do("PATCH", "/integrated-accounts/"+other, tok, map[string]any{"end_user": map[string]any{"id": "cust-42"}}); r.status != http.StatusOK {
		t.Fatalf("PATCH end_user: %d %s", r.status, r.body)
	}
	if got := list("?end_user_id=cust-42"); len(got) != 2 {
		t.Errorf("after PATCH: %v, want both accounts", got)
	}
	if r := h.do("PATCH", "/integrated-accounts/"+other, tok, map[string]any{"end_user": nil}); r.status != http.StatusOK {
		t.Fatalf("PATCH end_user null: %d %s", r.status, r.body)
	}
	if got := list("?end_user_id=cust-42"); !slices.Equal(got, []string{id}) {
		t.Errorf("after clearing: %v", got)
	}
	// Bad input is refused and changes nothing.
	for _, bad := range []map[string]any{
		{"end_user": map[string]any{"id": ""}},
		{"end_user": map[string]any{"id": "x", "email": "not an address"}},
		{"end_user": map[string]any{"id": "x\u0000y"}},
		{"end_user": map[string]any{"id": strings.Repeat("x", 257)}},
		{"end_user": map[string]any{"id": "x", "extra": 1}},
		{"end_user": "cust-42"},
		{"end_user": map[string]any{"id": "x"}, "events": map[string]any{"interval": "1ms"}},
	} {
		if r := h.do("PATCH", "/integrated-accounts/"+id, tok, bad); r.status != http.StatusBadRequest {
			t.Errorf("PATCH %v: %d %s, want 400", bad, r.status, r.body)
		}
		if r := h.do("POST", "/link-tokens", tok, map[string]any{"end_user": bad["end_user"]}); bad["events"] == nil && r.status != http.StatusBadRequest {
			t.Errorf("POST /link-tokens %v: %d %s, want 400", bad, r.status, r.body)
		}
	}
	if got := list("?end_user_id=cust-42"); !slices.Equal(got, []string{id}) {
		t.Errorf("a refused PATCH changed the end user: %v", got)
	}
	for _, q := range []string{"?end_user_id=", "?end_user=x"} {
		if r := h.do("GET", "/integrated-accounts"+q, tok, nil); r.status != http.StatusBadRequest {
			t.Errorf("GET /integrated-accounts%s: %d, want 400", q, r.status)
		}
	}

	// A code not exchanged in time is gone.
	p2 := h.person()
	_, loc = p2.finish(p2.authorize(p2.startLink("tenant-a", appRedirect, ""), "admin@demo.example", "demo", "allow"))
	late := loc.Query().Get("link_result")
	h.rdb.Del(t.Context(), h.rdb.Keys(t.Context(), h.rdb.Prefix+"linkres:*").Val()...) // as Redis expiry would
	if r := exchange(0, "tenant-a", map[string]any{"link_result": late}); r.status != http.StatusNotFound {
		t.Errorf("an expired code: %d, want 404", r.status)
	}
}

// TestOpenLinkTokensAndPickerSessionsAreCapped: a tenant holds at most DIRGATE_TENANT_MAX_OPEN
// unexpired link tokens (and, apart, picker sessions), checked atomically across replicas; past
// it, 429 with Retry-After and nothing stored. Using a link token frees its place.
func TestOpenLinkTokensAndPickerSessionsAreCapped(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{replicas: 3, maxOpen: 5, allowPassword: true})
	tok := h.token("tenant-cap")
	acct := h.linkPassword("tenant-cap", "admin@demo.example")
	for _, kind := range []struct {
		path, code string
		body       map[string]any
	}{
		{"/link-tokens", "too_many_link_tokens", map[string]any{}},
		{"/picker-sessions", "too_many_picker_sessions", map[string]any{"integrated_account_id": acct, "return_origin": "https://app.example"}},
	} {
		t.Run(kind.code, func(t *testing.T) {
			var ok, refused atomic.Int32
			var wg sync.WaitGroup
			for i := range 20 {
				wg.Go(func() {
					r := h.call(h.browser(), "POST", h.replicas[i%3].ts.URL, kind.path, tok, kind.body)
					switch {
					case r.status == http.StatusCreated:
						ok.Add(1)
					case r.status == http.StatusTooManyRequests && r.errorCode(t) == kind.code && r.header.Get("Retry-After") != "":
						refused.Add(1)
					default:
						t.Errorf("%s: %d %s", kind.path, r.status, r.body)
					}
				})
			}
			wg.Wait()
			if ok.Load() != 5 || refused.Load() != 15 {
				t.Errorf("%d created, %d refused; want 5 and 15", ok.Load(), refused.Load())
			}
			if r := h.do("POST", kind.path, h.token("tenant-other"), kind.body); kind.path == "/link-tokens" && r.status != http.StatusCreated {
				t.Errorf("another tenant is not limited by this one: %d", r.status)
			}
		})
	}
	// Nothing is stored for a refused request: 5 link tokens of tenant-cap, 1 of tenant-other.
	if keys := h.rdb.Keys(t.Context(), h.rdb.Prefix+"link:*").Val(); len(keys) != 6 {
		t.Errorf("%d link tokens stored, want 6", len(keys))
	}
	// A link token that is used frees its place.
	p := h.person()
	var urls []string
	for range 5 {
		urls = append(urls, p.createLink("tenant-free", map[string]any{}))
	}
	if r := h.do("POST", "/link-tokens", h.token("tenant-free"), map[string]any{}); r.status != http.StatusTooManyRequests {
		t.Fatalf("a sixth link token: %d, want 429", r.status)
	}
	p.continueLink(urls[0])
	if r := h.do("POST", "/link-tokens", h.token("tenant-free"), map[string]any{}); r.status != http.StatusCreated {
		t.Errorf("after one was used: %d %s, want 201", r.status, r.body)
	}
}
