package podio_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/dirgate/dirgate/adapters/podio"
	"github.com/dirgate/dirgate/adapters/podio/podiosim"
)

const routeToken = "POST /oauth/token"

func TestPasswordGrant(t *testing.T) {
	t.Parallel()
	f := setup(t, podiosim.Config{})
	before := time.Now()
	tok := f.password(t, adminMail)
	if tok.AccessToken == "" || tok.RefreshToken == "" {
		t.Fatalf("token without access or refresh token: %v", tok)
	}
	got := []any{tok.TokenType, tok.Ref}
	want := []any{"bearer", podio.Ref{Type: "user", ID: f.userID(t, adminMail)}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("token_type, ref (-want +got):\n%s", diff)
	}
	if tok.Scope == "" {
		t.Error("scope not parsed")
	}
	if exp := tok.Expiry.Sub(before); exp < 8*time.Hour-time.Minute || exp > 8*time.Hour+time.Minute {
		t.Errorf("expiry in %s, want about 8h (expires_in 28800)", exp)
	}
	if diff := cmp.Diff(map[string]int{routeToken: 1}, calls(f)); diff != "" {
		t.Errorf("calls (-want +got):\n%s", diff)
	}
	// The token works.
	u, _, err := f.as(tok).Users.Get(t.Context())
	if err != nil || u.Mail != adminMail {
		t.Fatalf("Users.Get with the new token: %v, %+v", err, u)
	}
}

func TestTokenGrantErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name         string
		secret       string
		call         func(ctx context.Context, c *podio.Client) (*podio.Token, error)
		invalidGrant bool
	}{
		{"wrong password", clientSecret, func(ctx context.Context, c *podio.Client) (*podio.Token, error) {
			return c.OAuth.PasswordGrant(ctx, adminMail, "wrong-password-xyz")
		}, true},
		{"unknown user", clientSecret, func(ctx context.Context, c *podio.Client) (*podio.Token, error) {
			return c.OAuth.PasswordGrant(ctx, "nobody@demo.example", "wrong-password-xyz")
		}, true},
		{"unknown refresh token", clientSecret, func(ctx context.Context, c *podio.Client) (*podio.Token, error) {
			return c.OAuth.Refresh(ctx, "no-such-refresh-token-xyz")
		}, true},
		{"unknown authorization code", clientSecret, func(ctx context.Context, c *podio.Client) (*podio.Token, error) {
			return c.OAuth.Exchange(ctx, "no-such-code-xyz", "http://localhost/cb")
		}, true},
		{"wrong app token", clientSecret, func(ctx context.Context, c *podio.Client) (*podio.Token, error) {
			return c.OAuth.AppGrant(ctx, 5001, "wrong-app-token-xyz")
		}, true},
		{"wrong client secret", "wrong-secret-xyz", func(ctx context.Context, c *podio.Client) (*podio.Token, error) {
			return c.OAuth.PasswordGrant(ctx, adminMail, demoPassword)
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := setup(t, podiosim.Config{})
			c := f.client
			c.OAuthConfig.ClientSecret = tt.secret
			tok, err := tt.call(t.Context(), c)
			if err == nil {
				t.Fatalf("got token %v, want an error", tok)
			}
			e, ok := errors.AsType[*podio.Error](err)
			if !ok {
				t.Fatalf("err %T is not a *podio.Error: %v", err, err)
			}
			if e.StatusCode < 400 || e.StatusCode > 499 {
				t.Errorf("status %d, want 4xx", e.StatusCode)
			}
			if tt.invalidGrant && (!e.IsInvalidGrant() || e.StatusCode != http.StatusBadRequest) {
				t.Errorf("err = %v (status %d, code %q), want 400 invalid_grant", err, e.StatusCode, e.Code)
			}
			for _, secret := range []string{tt.secret, "wrong-password-xyz", "no-such-refresh-token-xyz", "no-such-code-xyz", "wrong-app-token-xyz"} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("Error() %q contains the secret %q", err.Error(), secret)
				}
			}
		})
	}
}

func TestAppGrant(t *testing.T) {
	t.Parallel()
	f := setup(t, podiosim.Config{})
	tok, err := f.client.OAuth.AppGrant(t.Context(), 5001, "demo-app-token")
	if err != nil {
		t.Fatalf("AppGrant: %v", err)
	}
	if tok.AccessToken == "" || tok.Expiry.IsZero() {
		t.Errorf("app token = %v", tok)
	}
	if tok.Ref.Type == "" {
		t.Errorf("ref not parsed: %+v", tok.Ref)
	}
	if diff := cmp.Diff(map[string]int{routeToken: 1}, calls(f)); diff != "" {
		t.Errorf("calls (-want +got):\n%s", diff)
	}
}

func TestAuthCodeURL(t *testing.T) {
	t.Parallel()
	c := podio.NewClient(nil, nil)
	c.OAuthConfig = podio.OAuthConfig{ClientID: clientID, ClientSecret: clientSecret}
	raw, err := c.OAuth.AuthCodeURL("st-123", "https://app.example.com/callback")
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := u.Scheme+"://"+u.Host+u.Path, "https://podio.com/oauth/authorize"; got != want {
		t.Errorf("authorize endpoint = %q, want %q", got, want)
	}
	want := url.Values{
		"client_id":     {clientID},
		"redirect_uri":  {"https://app.example.com/callback"},
		"response_type": {"code"},
		"state":         {"st-123"},
	}
	if diff := cmp.Diff(want, u.Query()); diff != "" {
		t.Errorf("query (-want +got):\n%s", diff)
	}
	if strings.Contains(raw, clientSecret) {
		t.Error("the client secret is in the authorize URL")
	}

	c2, err := c.WithAuthURL("http://127.0.0.1:9/podio")
	if err != nil {
		t.Fatal(err)
	}
	raw, _ = c2.OAuth.AuthCodeURL("s", "http://localhost/cb")
	if !strings.HasPrefix(raw, "http://127.0.0.1:9/podio/oauth/authorize?") {
		t.Errorf("AuthCodeURL on a custom AuthURL = %q", raw)
	}
}

func TestRefreshRotation(t *testing.T) {
	t.Parallel()
	t.Run("rotation on", func(t *testing.T) {
		t.Parallel()
		f := setup(t, podiosim.Config{})
		ctx := t.Context()
		old := f.password(t, adminMail)
		fresh, err := f.client.OAuth.Refresh(ctx, old.RefreshToken)
		if err != nil {
			t.Fatalf("Refresh: %v", err)
		}
		if fresh.AccessToken == "" || fresh.AccessToken == old.AccessToken {
			t.Error("refresh did not return a new access token")
		}
		if fresh.RefreshToken == "" || fresh.RefreshToken == old.RefreshToken {
			t.Fatal("refresh did not return the rotated refresh token")
		}
		if fresh.Ref.ID != f.userID(t, adminMail) {
			t.Errorf("ref = %+v", fresh.Ref)
		}
		// The old refresh token is spent.
		_, err = f.client.OAuth.Refresh(ctx, old.RefreshToken)
		if e, ok := errors.AsType[*podio.Error](err); !ok || !e.IsInvalidGrant() {
			t.Errorf("reusing the old refresh token: err = %v, want invalid_grant", err)
		}
		// The rotated one works.
		if _, err := f.client.OAuth.Refresh(ctx, fresh.RefreshToken); err != nil {
			t.Errorf("refresh with the rotated token: %v", err)
		}
	})
	t.Run("rotation off", func(t *testing.T) {
		t.Parallel()
		f := setup(t, podiosim.Config{DisableRefreshRotation: true})
		ctx := t.Context()
		old := f.password(t, adminMail)
		for range 2 {
			fresh, err := f.client.OAuth.Refresh(ctx, old.RefreshToken)
			if err != nil {
				t.Fatalf("Refresh: %v", err)
			}
			if fresh.RefreshToken != old.RefreshToken {
				t.Errorf("refresh token changed without rotation")
			}
		}
	})
}

func TestExpiredTokenRefreshedOnce(t *testing.T) {
	t.Parallel()
	f := setup(t, podiosim.Config{})
	ctx := t.Context()
	start := f.password(t, adminMail)
	src := &countingSource{cur: start, refresh: func(ctx context.Context, stale *podio.Token) (*podio.Token, error) {
		return f.client.OAuth.Refresh(ctx, stale.RefreshToken)
	}}
	c := f.client.WithTokenSource(src)

	f.sim.Advance(8*time.Hour + time.Minute)
	f.sim.ResetCalls()
	u, _, err := c.Users.Get(ctx)
	if err != nil {
		t.Fatalf("Users.Get after expiry: %v", err)
	}
	if u.Mail != adminMail {
		t.Errorf("mail = %q", u.Mail)
	}
	if n := src.count(); n != 1 {
		t.Errorf("Refresh called %d times, want 1", n)
	}
	if diff := cmp.Diff(map[string]int{"GET /user/": 2, routeToken: 1}, calls(f)); diff != "" {
		t.Errorf("calls (-want +got):\n%s", diff)
	}
	// The refreshed token stays in use: no further refresh.
	if _, _, err := c.Users.Get(ctx); err != nil {
		t.Fatal(err)
	}
	if n := src.count(); n != 1 {
		t.Errorf("Refresh called %d times after a second call, want 1", n)
	}
}

func TestExpiredTokenReplaysBody(t *testing.T) {
	t.Parallel()
	f := setup(t, podiosim.Config{})
	ctx := t.Context()
	start := f.issued(t, adminMail)
	src := &countingSource{cur: start, refresh: func(ctx context.Context, stale *podio.Token) (*podio.Token, error) {
		return f.client.OAuth.Refresh(ctx, stale.RefreshToken)
	}}
	c := f.client.WithTokenSource(src)
	sales := f.spaceID(t, "Sales")
	member := f.userID(t, memberMail)

	f.sim.Advance(9 * time.Hour)
	if _, err := c.SpaceMembers.UpdateRole(ctx, sales, []int64{member}, podio.RoleAdmin); err != nil {
		t.Fatalf("UpdateRole after expiry: %v", err)
	}
	if n := src.count(); n != 1 {
		t.Errorf("Refresh called %d times, want 1", n)
	}
	checkRoles(t, c, sales, []int64{member}, podio.RoleAdmin)
}

func TestExpiredTokenNoLoop(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		refresh   func(f *fixture, t *testing.T) func(context.Context, *podio.Token) (*podio.Token, error)
		wantCalls map[string]int
		wantCheck func(t *testing.T, err error)
	}{
		{
			name: "refresh returns another expired token",
			refresh: func(f *fixture, t *testing.T) func(context.Context, *podio.Token) (*podio.Token, error) {
				other := f.issued(t, adminMail) // minted before Advance: expired too
				return func(context.Context, *podio.Token) (*podio.Token, error) { return other, nil }
			},
			wantCalls: map[string]int{"GET /user/": 2},
			wantCheck: func(t *testing.T, err error) {
				if e, ok := errors.AsType[*podio.Error](err); !ok || !e.IsExpiredToken() || e.StatusCode != 401 {
					t.Errorf("err = %v, want the second 401 expired_token", err)
				}
			},
		},
		{
			name: "refresh fails with invalid_grant",
			refresh: func(f *fixture, t *testing.T) func(context.Context, *podio.Token) (*podio.Token, error) {
				return func(ctx context.Context, _ *podio.Token) (*podio.Token, error) {
					return f.client.OAuth.Refresh(ctx, "revoked-refresh-token")
				}
			},
			wantCalls: map[string]int{"GET /user/": 1, routeToken: 1},
			wantCheck: func(t *testing.T, err error) {
				if e, ok := errors.AsType[*podio.Error](err); !ok || !e.IsInvalidGrant() {
					t.Errorf("err = %v, want invalid_grant from the refresh", err)
				}
			},
		},
		{
			name: "static source cannot refresh",
			refresh: func(*fixture, *testing.T) func(context.Context, *podio.Token) (*podio.Token, error) {
				return func(ctx context.Context, stale *podio.Token) (*podio.Token, error) {
					return podio.StaticTokenSource(stale).Refresh(ctx, stale)
				}
			},
			wantCalls: map[string]int{"GET /user/": 1},
			wantCheck: func(t *testing.T, err error) {
				if !errors.Is(err, podio.ErrCannotRefresh) {
					t.Errorf("err = %v, want ErrCannotRefresh", err)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := setup(t, podiosim.Config{})
			src := &countingSource{cur: f.issued(t, adminMail), refresh: tt.refresh(f, t)}
			c := f.client.WithTokenSource(src)
			f.sim.Advance(9 * time.Hour)
			f.sim.ResetCalls()
			_, _, err := c.Users.Get(t.Context())
			if err == nil {
				t.Fatal("Users.Get succeeded with an expired token and no way to refresh")
			}
			tt.wantCheck(t, err)
			if n := src.count(); n != 1 {
				t.Errorf("Refresh called %d times, want 1", n)
			}
			if diff := cmp.Diff(tt.wantCalls, calls(f)); diff != "" {
				t.Errorf("calls (-want +got):\n%s", diff)
			}
		})
	}
}

func TestMemoryTokenSourceRefreshesOnceConcurrently(t *testing.T) {
	t.Parallel()
	f := setup(t, podiosim.Config{})
	ctx := t.Context()
	src := f.client.OAuth.TokenSource(f.password(t, adminMail))
	c := f.client.WithTokenSource(src)
	f.sim.Advance(9 * time.Hour)
	f.sim.ResetCalls()

	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Go(func() {
			if _, _, err := c.Users.Get(ctx); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("Users.Get: %v", err)
	}
	if got := calls(f)[routeToken]; got != 1 {
		t.Errorf("token endpoint called %d times, want 1", got)
	}
	tok, _ := src.Token(ctx)
	if tok.RefreshToken == "" {
		t.Error("rotated refresh token lost")
	}
}

func TestRateLimit(t *testing.T) {
	t.Parallel()
	f := setup(t, podiosim.Config{GeneralLimit: 3})
	ctx := t.Context()
	c := f.as(f.issued(t, adminMail))

	for i := range 3 {
		_, resp, err := c.Users.Get(ctx)
		if err != nil {
			t.Fatalf("call %d: %v", i+1, err)
		}
		if diff := cmp.Diff(podio.Rate{Limit: 3, Remaining: 2 - i, Present: true}, resp.Rate); diff != "" {
			t.Errorf("call %d: Rate (-want +got):\n%s", i+1, diff)
		}
	}
	_, resp, err := c.Users.Get(ctx)
	rl, ok := errors.AsType[*podio.RateLimitError](err)
	if !ok {
		t.Fatalf("4th call: err = %v (%T), want *podio.RateLimitError", err, err)
	}
	if !rl.WaitKnown || rl.Wait <= 0 || rl.Wait > time.Hour {
		t.Errorf("Wait = %s (known %v), want the parsed 'Please wait N seconds' within an hour", rl.Wait, rl.WaitKnown)
	}
	if diff := cmp.Diff(podio.Rate{Limit: 3, Remaining: 0, Present: true}, rl.Rate); diff != "" {
		t.Errorf("RateLimitError.Rate (-want +got):\n%s", diff)
	}
	if resp == nil || resp.StatusCode != podio.StatusRateLimited {
		t.Errorf("response = %+v, want status 420", resp)
	}
	// It is also a *podio.Error with the rate_limit code.
	if e, ok := errors.AsType[*podio.Error](err); !ok || e.Code != "rate_limit" || e.StatusCode != 420 {
		t.Errorf("as *podio.Error: %v", err)
	}

	// A new window lets calls through again.
	f.sim.ResetQuota()
	if _, _, err := c.Users.Get(ctx); err != nil {
		t.Errorf("after ResetQuota: %v", err)
	}
}

func TestRateLimitFault(t *testing.T) {
	t.Parallel()
	for _, header := range []bool{false, true} {
		t.Run(fmt.Sprintf("Retry-After header %v", header), func(t *testing.T) {
			t.Parallel()
			f := setup(t, podiosim.Config{RetryAfterHeader: header})
			c := f.as(f.issued(t, adminMail))
			if err := f.sim.AddFault(podiosim.Fault{Route: "GET /org/", RateLimit: true, Times: 1}); err != nil {
				t.Fatal(err)
			}
			_, _, err := c.Orgs.List(t.Context())
			rl, ok := errors.AsType[*podio.RateLimitError](err)
			if !ok {
				t.Fatalf("err = %v, want *podio.RateLimitError", err)
			}
			if !rl.WaitKnown || rl.Wait <= 0 {
				t.Errorf("Wait = %s known %v", rl.Wait, rl.WaitKnown)
			}
			if _, _, err := c.Orgs.List(t.Context()); err != nil {
				t.Errorf("after the fault: %v", err)
			}
		})
	}
}

func TestServerErrors(t *testing.T) {
	t.Parallel()
	for _, status := range []int{500, 502, 503, 504} {
		t.Run(fmt.Sprint(status), func(t *testing.T) {
			t.Parallel()
			f := setup(t, podiosim.Config{})
			c := f.as(f.issued(t, adminMail))
			if err := f.sim.AddFault(podiosim.Fault{Route: "*", Status: status, Times: 1}); err != nil {
				t.Fatal(err)
			}
			_, resp, err := c.Orgs.List(t.Context())
			e, ok := errors.AsType[*podio.Error](err)
			if !ok {
				t.Fatalf("err = %v (%T), want *podio.Error", err, err)
			}
			if e.StatusCode != status || resp == nil || resp.StatusCode != status {
				t.Errorf("status = %d, want %d", e.StatusCode, status)
			}
			if e.Code == "" {
				t.Errorf("the simulator's Podio error body was not decoded: %q", e.Body)
			}
			if !strings.Contains(err.Error(), fmt.Sprint(status)) {
				t.Errorf("Error() = %q does not name the status", err.Error())
			}
			if _, ok := errors.AsType[*podio.RateLimitError](err); ok {
				t.Error("a 5xx became a RateLimitError")
			}
			if _, _, err := c.Orgs.List(t.Context()); err != nil {
				t.Errorf("after the fault: %v", err)
			}
		})
	}
}

// TestNonJSONErrorBody puts a proxy in front of the simulator that answers
// one route with an HTML 502.
func TestNonJSONErrorBody(t *testing.T) {
	t.Parallel()
	sim := podiosim.New(podiosim.Config{})
	html := "<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>"
	proxy := httptest.NewServer(http.StripPrefix("/podio", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/org/" {
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(http.StatusBadGateway)
			fmt.Fprint(w, html)
			return
		}
		sim.ServeHTTP(w, r)
	})))
	t.Cleanup(proxy.Close)
	st, err := sim.IssueToken(clientID, adminMail)
	if err != nil {
		t.Fatal(err)
	}
	c, err := podio.NewClient(proxy.Client(), podio.StaticTokenSource(&podio.Token{AccessToken: st.AccessToken})).WithBaseURL(proxy.URL + "/podio/")
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = c.Orgs.List(t.Context())
	e, ok := errors.AsType[*podio.Error](err)
	if !ok {
		t.Fatalf("err = %v (%T), want *podio.Error", err, err)
	}
	got := []any{e.StatusCode, e.Code, string(e.Body)}
	if diff := cmp.Diff([]any{502, "", html}, got); diff != "" {
		t.Errorf("status, code, body (-want +got):\n%s", diff)
	}
	if strings.Contains(err.Error(), "<html>") {
		t.Errorf("Error() contains the HTML body: %q", err.Error())
	}
	// Other routes pass through.
	if _, _, err := c.Users.Get(t.Context()); err != nil {
		t.Errorf("Users.Get through the proxy: %v", err)
	}
}

func TestTimeoutFault(t *testing.T) {
	t.Parallel()
	f := setup(t, podiosim.Config{})
	c := f.as(f.issued(t, adminMail))
	if err := f.sim.AddFault(podiosim.Fault{Route: "GET /user/", Timeout: true, Times: 1}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	_, _, err := c.Users.Get(ctx)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v, want context.DeadlineExceeded", err)
	}
}

// TestSecretsNotInErrors provokes every kind of failure and checks that no
// token, client secret or password reaches an error string.
func TestSecretsNotInErrors(t *testing.T) {
	t.Parallel()
	f := setup(t, podiosim.Config{GeneralLimit: 50})
	ctx := t.Context()
	tok := f.password(t, memberMail)
	expired := f.issued(t, memberMail)
	secrets := []string{tok.AccessToken, tok.RefreshToken, expired.AccessToken, expired.RefreshToken, clientSecret}

	var errs []error
	collect := func(err error) {
		if err == nil {
			t.Errorf("expected an error")
			return
		}
		errs = append(errs, err)
	}
	member := f.as(tok)
	orgID := f.orgID(t, "Northwind Traders")

	_, _, err := member.Orgs.ListMembers(ctx, orgID, nil) // 403
	collect(err)
	_, _, err = member.Spaces.Get(ctx, 999999) // 404
	collect(err)
	if err := f.sim.AddFault(podiosim.Fault{Route: "*", Status: 500, Times: 1}); err != nil {
		t.Fatal(err)
	}
	_, _, err = member.Users.Get(ctx) // 500
	collect(err)
	if err := f.sim.AddFault(podiosim.Fault{Route: "*", RateLimit: true, Times: 1}); err != nil {
		t.Fatal(err)
	}
	_, _, err = member.Users.Get(ctx) // 420
	collect(err)
	_, _, err = f.as(&podio.Token{AccessToken: "garbage-" + tok.AccessToken}).Users.Get(ctx) // 401 invalid token
	collect(err)

	f.sim.Advance(9 * time.Hour)
	_, _, err = f.as(expired).Users.Get(ctx) // 401 expired, cannot refresh
	collect(err)
	src := &countingSource{cur: expired, refresh: func(ctx context.Context, stale *podio.Token) (*podio.Token, error) {
		return stale, nil
	}}
	_, _, err = f.client.WithTokenSource(src).Users.Get(ctx) // 401 twice
	collect(err)
	_, err = f.client.OAuth.Refresh(ctx, expired.RefreshToken+"x") // invalid_grant
	collect(err)
	_, err = f.client.OAuth.PasswordGrant(ctx, memberMail, "s3cret-pw") // invalid_grant
	collect(err)
	secrets = append(secrets, "s3cret-pw")

	for _, err := range errs {
		for _, verb := range []string{"%v", "%+v", "%#v"} {
			msg := fmt.Sprintf(verb, err)
			for _, s := range secrets {
				if strings.Contains(msg, s) {
					t.Errorf("fmt %s of %T leaks a secret: %s", verb, err, msg)
				}
			}
		}
	}
}

// TestExchange runs the server-side flow: AuthCodeURL, the simulator's
// authorize form (as the browser would post it), then Exchange.
func TestExchange(t *testing.T) {
	t.Parallel()
	f := setup(t, podiosim.Config{})
	ctx := t.Context()
	c, err := f.client.WithAuthURL(f.srv.URL + basePath)
	if err != nil {
		t.Fatal(err)
	}
	const redirect = "http://localhost:8080/callback"
	authURL, err := c.OAuth.AuthCodeURL("state-42", redirect)
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(authURL)
	if err != nil {
		t.Fatal(err)
	}
	// The browser logs in and allows access on the authorize page.
	form := u.Query()
	form.Set("username", adminMail)
	form.Set("password", demoPassword)
	form.Set("decision", "allow")
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noRedirect.PostForm(u.Scheme+"://"+u.Host+u.Path, form)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("authorize answered %d, want a redirect", resp.StatusCode)
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	if got := loc.Query().Get("state"); got != "state-42" {
		t.Errorf("state = %q, want state-42", got)
	}
	code := loc.Query().Get("code")
	if code == "" {
		t.Fatalf("no code in redirect %s", loc)
	}

	tok, err := c.OAuth.Exchange(ctx, code, redirect)
	if err != nil {
		t.Fatalf("Exchange: %v", err)
	}
	if tok.AccessToken == "" || tok.RefreshToken == "" || tok.Ref.ID != f.userID(t, adminMail) {
		t.Errorf("token = %v", tok)
	}
	me, _, err := c.WithTokenSource(podio.StaticTokenSource(tok)).Users.Get(ctx)
	if err != nil || me.Mail != adminMail {
		t.Errorf("Users.Get with the exchanged token: %v %+v", err, me)
	}
	// A code works once.
	_, err = c.OAuth.Exchange(ctx, code, redirect)
	if e, ok := errors.AsType[*podio.Error](err); !ok || !e.IsInvalidGrant() {
		t.Errorf("second Exchange: err = %v, want invalid_grant", err)
	}
}

// TestTokenExpiryUsesClientClock: Expiry is computed from expires_in on the client's own clock, so
// a caller whose clock is injected (tests, or a fleet with one time source) compares like with like.
func TestTokenExpiryUsesClientClock(t *testing.T) {
	t.Parallel()
	f := setup(t, podiosim.Config{})
	at := time.Date(2030, 5, 6, 7, 8, 9, 0, time.UTC)
	f.client.Now = func() time.Time { return at }
	tok, err := f.client.OAuth.PasswordGrant(t.Context(), "admin@demo.example", "demo")
	if err != nil {
		t.Fatal(err)
	}
	if want := at.Add(28800 * time.Second); !tok.Expiry.Equal(want) {
		t.Errorf("password grant Expiry = %v, want %v", tok.Expiry, want)
	}
	fresh, err := f.client.OAuth.Refresh(t.Context(), tok.RefreshToken)
	if err != nil {
		t.Fatal(err)
	}
	if want := at.Add(28800 * time.Second); !fresh.Expiry.Equal(want) {
		t.Errorf("refresh Expiry = %v, want %v", fresh.Expiry, want)
	}
	app, err := f.client.OAuth.AppGrant(t.Context(), 5001, "demo-app-token")
	if err != nil {
		t.Fatal(err)
	}
	if want := at.Add(28800 * time.Second); !app.Expiry.Equal(want) {
		t.Errorf("app grant Expiry = %v, want %v", app.Expiry, want)
	}
}
