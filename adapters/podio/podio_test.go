package podio_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
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

const (
	basePath     = "/podio/"
	clientID     = "demo-client"
	clientSecret = "demo-secret"
	adminMail    = "admin@demo.example"
	memberMail   = "member@demo.example"
	demoPassword = "demo"
)

// fixture is a simulator mounted under a non-root base path, and a client
// pointed at it that has the demo API key but no token source.
type fixture struct {
	sim    *podiosim.Server
	srv    *httptest.Server
	client *podio.Client
}

// setup starts podiosim behind httptest under /podio/. Any request that
// loses the base path fails the test.
func setup(t *testing.T, cfg podiosim.Config) *fixture {
	t.Helper()
	sim := podiosim.New(cfg)
	mux := http.NewServeMux()
	mux.Handle(basePath, http.StripPrefix(strings.TrimSuffix(basePath, "/"), sim))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("request outside the base path: %s %s", r.Method, r.URL.Path)
		http.Error(w, "outside base path", http.StatusTeapot)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	c, err := podio.NewClient(srv.Client(), nil).WithBaseURL(srv.URL + basePath)
	if err != nil {
		t.Fatalf("WithBaseURL: %v", err)
	}
	c.OAuthConfig = podio.OAuthConfig{ClientID: clientID, ClientSecret: clientSecret}
	return &fixture{sim: sim, srv: srv, client: c}
}

// issued mints a token with sim.IssueToken (no HTTP).
func (f *fixture) issued(t *testing.T, mail string) *podio.Token {
	t.Helper()
	st, err := f.sim.IssueToken(clientID, mail)
	if err != nil {
		t.Fatalf("IssueToken(%s): %v", mail, err)
	}
	if st.AccessToken == "" || st.RefreshToken == "" {
		t.Fatalf("IssueToken(%s) returned an empty token", mail)
	}
	return &podio.Token{
		AccessToken:  st.AccessToken,
		RefreshToken: st.RefreshToken,
		TokenType:    "bearer",
		Ref:          podio.Ref{Type: "user", ID: st.UserID},
	}
}

// password obtains a token through the OAuth service's password grant.
func (f *fixture) password(t *testing.T, mail string) *podio.Token {
	t.Helper()
	tok, err := f.client.OAuth.PasswordGrant(t.Context(), mail, demoPassword)
	if err != nil {
		t.Fatalf("PasswordGrant(%s): %v", mail, err)
	}
	return tok
}

// as returns a client that uses tok and cannot refresh it.
func (f *fixture) as(tok *podio.Token) *podio.Client {
	return f.client.WithTokenSource(podio.StaticTokenSource(tok))
}

// userID looks a demo person up in the simulator.
func (f *fixture) userID(t *testing.T, mail string) int64 {
	t.Helper()
	id, ok := f.sim.UserID(mail)
	if !ok {
		t.Fatalf("simulator has no user %s", mail)
	}
	return id
}

// simState is the part of GET /_sim/state the tests use: an independent
// view of the simulator's data, used to find ids by name.
type simState struct {
	Orgs []struct {
		OrgID   int64  `json:"org_id"`
		Name    string `json:"name"`
		Members []struct {
			UserID  int64  `json:"user_id"`
			Role    string `json:"role"`
			Invited bool   `json:"invited"`
		} `json:"members"`
		Spaces []struct {
			SpaceID  int64  `json:"space_id"`
			Name     string `json:"name"`
			Archived bool   `json:"archived"`
			Members  []struct {
				UserID  int64  `json:"user_id"`
				Role    string `json:"role"`
				Invited bool   `json:"invited"`
			} `json:"members"`
		} `json:"spaces"`
	} `json:"orgs"`
}

func (f *fixture) state(t *testing.T) *simState {
	t.Helper()
	resp, err := f.srv.Client().Get(f.srv.URL + basePath + "_sim/state")
	if err != nil {
		t.Fatalf("GET /_sim/state: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /_sim/state: status %d", resp.StatusCode)
	}
	var st simState
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatalf("decoding /_sim/state: %v", err)
	}
	return &st
}

func (f *fixture) orgID(t *testing.T, name string) int64 {
	t.Helper()
	for _, o := range f.state(t).Orgs {
		if o.Name == name {
			return o.OrgID
		}
	}
	t.Fatalf("no org named %q", name)
	return 0
}

func (f *fixture) spaceID(t *testing.T, name string) int64 {
	t.Helper()
	for _, o := range f.state(t).Orgs {
		for _, s := range o.Spaces {
			if s.Name == name {
				return s.SpaceID
			}
		}
	}
	t.Fatalf("no space named %q", name)
	return 0
}

// countingSource is a TokenSource that serves cur and counts Refresh calls;
// refresh decides what a refresh returns.
type countingSource struct {
	mu        sync.Mutex
	cur       *podio.Token
	refresh   func(ctx context.Context, stale *podio.Token) (*podio.Token, error)
	refreshes int
}

func (s *countingSource) Token(context.Context) (*podio.Token, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cur, nil
}

func (s *countingSource) Refresh(ctx context.Context, stale *podio.Token) (*podio.Token, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refreshes++
	fresh, err := s.refresh(ctx, stale)
	if err != nil {
		return nil, err
	}
	s.cur = fresh
	return fresh, nil
}

func (s *countingSource) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.refreshes
}

func TestNewClientDefaults(t *testing.T) {
	t.Parallel()
	c := podio.NewClient(nil, nil)
	got := []string{c.BaseURL.String(), c.AuthURL.String(), c.UserAgent}
	want := []string{"https://api.podio.com/", "https://podio.com/", podio.DefaultUserAgent}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("defaults (-want +got):\n%s", diff)
	}
	if c.Users == nil || c.Contacts == nil || c.Orgs == nil || c.Spaces == nil || c.SpaceMembers == nil || c.OAuth == nil {
		t.Error("a service is nil")
	}
}

func TestNewRequestResolvesAgainstBasePath(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		base    string
		path    string
		want    string
		wantErr bool
	}{
		{"root base", "https://api.podio.com/", "user/", "https://api.podio.com/user/", false},
		{"base with path", "http://127.0.0.1:1234/podio/", "org/1/member/", "http://127.0.0.1:1234/podio/org/1/member/", false},
		{"no trailing slash on path kept", "http://h/podio/", "user/status", "http://h/podio/user/status", false},
		{"query kept", "http://h/podio/", "space/2/member/v2/?limit=5", "http://h/podio/space/2/member/v2/?limit=5", false},
		{"comma list", "http://h/podio/", "space/2/member/3,4", "http://h/podio/space/2/member/3,4", false},
		{"escaped mail", "http://h/podio/", "org/1/member/mail/" + url.PathEscape("a/b@x.example"), "http://h/podio/org/1/member/mail/a%2Fb@x.example", false},
		{"base missing slash", "http://h/podio", "user/", "", true},
		{"leading slash would drop base path", "http://h/podio/", "/user/", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := podio.NewClient(nil, nil)
			u, err := url.Parse(tt.base)
			if err != nil {
				t.Fatal(err)
			}
			c.BaseURL = u
			req, err := c.NewRequest(http.MethodGet, tt.path, nil)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("NewRequest(%q) on %q: want error, got %s", tt.path, tt.base, req.URL)
				}
				return
			}
			if err != nil {
				t.Fatalf("NewRequest: %v", err)
			}
			if got := req.URL.String(); got != tt.want {
				t.Errorf("URL = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestWithBaseURLAddsSlash(t *testing.T) {
	t.Parallel()
	c, err := podio.NewClient(nil, nil).WithBaseURL("http://127.0.0.1:1234/podio")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := c.BaseURL.String(), "http://127.0.0.1:1234/podio/"; got != want {
		t.Errorf("BaseURL = %q, want %q", got, want)
	}
	if _, err := podio.NewClient(nil, nil).WithBaseURL("not a url"); err == nil {
		t.Error("WithBaseURL accepted a relative URL")
	}
}

func TestNewRequestBody(t *testing.T) {
	t.Parallel()
	c := podio.NewClient(nil, nil)
	req, err := c.NewRequest(http.MethodPut, "space/1/member/2", map[string]string{"role": "light"})
	if err != nil {
		t.Fatal(err)
	}
	if got := req.Header.Get("Content-Type"); got != "application/json" {
		t.Errorf("Content-Type = %q", got)
	}
	if req.GetBody == nil {
		t.Fatal("GetBody is nil: the body could not be replayed after a refresh")
	}
	for range 2 {
		b, err := req.GetBody()
		if err != nil {
			t.Fatal(err)
		}
		data, _ := io.ReadAll(b)
		if got, want := string(data), `{"role":"light"}`; got != want {
			t.Errorf("body = %s, want %s", got, want)
		}
	}
}

// TestRequestsKeepBasePathAndSlashes runs every service method against a
// strict simulator (exact paths only) and checks the route it reached.
func TestRequestsKeepBasePathAndSlashes(t *testing.T) {
	t.Parallel()
	type ids struct{ org, space, admin, member, grace int64 }
	tests := []struct {
		route string
		call  func(ctx context.Context, c *podio.Client, id ids) (*podio.Response, error)
	}{
		{"GET /user/", func(ctx context.Context, c *podio.Client, _ ids) (*podio.Response, error) {
			_, r, err := c.Users.Get(ctx)
			return r, err
		}},
		{"GET /user/status", func(ctx context.Context, c *podio.Client, _ ids) (*podio.Response, error) {
			_, r, err := c.Users.Status(ctx)
			return r, err
		}},
		{"GET /contact/user/{user_id}", func(ctx context.Context, c *podio.Client, id ids) (*podio.Response, error) {
			_, r, err := c.Contacts.GetUser(ctx, id.member)
			return r, err
		}},
		{"GET /org/", func(ctx context.Context, c *podio.Client, _ ids) (*podio.Response, error) {
			_, r, err := c.Orgs.List(ctx)
			return r, err
		}},
		{"GET /org/{org_id}", func(ctx context.Context, c *podio.Client, id ids) (*podio.Response, error) {
			_, r, err := c.Orgs.Get(ctx, id.org)
			return r, err
		}},
		{"GET /org/{org_id}/member/", func(ctx context.Context, c *podio.Client, id ids) (*podio.Response, error) {
			_, r, err := c.Orgs.ListMembers(ctx, id.org, &podio.OrgMembersOptions{Limit: 5, SortBy: "name", SortDesc: true})
			return r, err
		}},
		{"GET /org/{org_id}/member/{user_id}", func(ctx context.Context, c *podio.Client, id ids) (*podio.Response, error) {
			_, r, err := c.Orgs.GetMember(ctx, id.org, id.member)
			return r, err
		}},
		{"GET /org/{org_id}/member/mail/{mail}", func(ctx context.Context, c *podio.Client, id ids) (*podio.Response, error) {
			_, r, err := c.Orgs.GetMemberByMail(ctx, id.org, memberMail)
			return r, err
		}},
		{"GET /org/{org_id}/member/{user_id}/end_member_info", func(ctx context.Context, c *podio.Client, id ids) (*podio.Response, error) {
			_, r, err := c.Orgs.EndMemberInfo(ctx, id.org, id.member)
			return r, err
		}},
		{"DELETE /org/{org_id}/member/{user_id}", func(ctx context.Context, c *podio.Client, id ids) (*podio.Response, error) {
			return c.Orgs.EndMembership(ctx, id.org, id.grace)
		}},
		{"GET /org/{org_id}/space/", func(ctx context.Context, c *podio.Client, id ids) (*podio.Response, error) {
			_, r, err := c.Orgs.ListSpaces(ctx, id.org)
			return r, err
		}},
		{"GET /org/{org_id}/all_spaces/", func(ctx context.Context, c *podio.Client, id ids) (*podio.Response, error) {
			_, r, err := c.Orgs.ListAllSpaces(ctx, id.org)
			return r, err
		}},
		{"GET /space/{space_id}", func(ctx context.Context, c *podio.Client, id ids) (*podio.Response, error) {
			_, r, err := c.Spaces.Get(ctx, id.space)
			return r, err
		}},
		{"GET /space/{space_id}/member/", func(ctx context.Context, c *podio.Client, id ids) (*podio.Response, error) {
			_, r, err := c.SpaceMembers.ListActive(ctx, id.space)
			return r, err
		}},
		{"GET /space/{space_id}/member/v2/", func(ctx context.Context, c *podio.Client, id ids) (*podio.Response, error) {
			_, r, err := c.SpaceMembers.List(ctx, id.space, &podio.SpaceMembersOptions{Limit: 5, MemberType: "employee"})
			return r, err
		}},
		{"GET /space/{space_id}/member/{user_id}", func(ctx context.Context, c *podio.Client, id ids) (*podio.Response, error) {
			_, r, err := c.SpaceMembers.Get(ctx, id.space, id.member)
			return r, err
		}},
		{"POST /space/{space_id}/member/", func(ctx context.Context, c *podio.Client, id ids) (*podio.Response, error) {
			return c.SpaceMembers.Add(ctx, id.space, &podio.AddSpaceMembersRequest{Role: podio.RoleLight, Users: []int64{id.grace}})
		}},
		{"PUT /space/{space_id}/member/{user_ids}", func(ctx context.Context, c *podio.Client, id ids) (*podio.Response, error) {
			return c.SpaceMembers.UpdateRole(ctx, id.space, []int64{id.member}, podio.RoleLight)
		}},
		{"DELETE /space/{space_id}/member/{user_ids}", func(ctx context.Context, c *podio.Client, id ids) (*podio.Response, error) {
			return c.SpaceMembers.End(ctx, id.space, []int64{id.member})
		}},
	}
	for _, tt := range tests {
		t.Run(tt.route, func(t *testing.T) {
			t.Parallel()
			f := setup(t, podiosim.Config{StrictSlashes: true})
			id := ids{
				org:    f.orgID(t, "Northwind Traders"),
				space:  f.spaceID(t, "Sales"),
				admin:  f.userID(t, adminMail),
				member: f.userID(t, memberMail),
				grace:  f.userID(t, "grace.whitfield@northwind.example"),
			}
			c := f.as(f.issued(t, adminMail))
			f.sim.ResetCalls()
			resp, err := tt.call(t.Context(), c, id)
			if err != nil {
				t.Fatalf("call failed: %v", err)
			}
			if diff := cmp.Diff(map[string]int{tt.route: 1}, calls(f)); diff != "" {
				t.Errorf("simulator routes (-want +got):\n%s", diff)
			}
			if !strings.HasPrefix(resp.Request.URL.Path, basePath) {
				t.Errorf("request path %q lost the base path %q", resp.Request.URL.Path, basePath)
			}
			if got := resp.Request.Header.Get("Authorization"); !strings.HasPrefix(got, "OAuth2 ") {
				t.Errorf("Authorization scheme: got %q, want OAuth2", strings.SplitN(got, " ", 2)[0])
			}
			if !resp.Rate.Present || resp.Rate.Limit <= 0 {
				t.Errorf("Rate = %+v, want the X-Rate-Limit headers parsed", resp.Rate)
			}
		})
	}
}

func TestCheckResponse(t *testing.T) {
	t.Parallel()
	podioBody := `{"error":"not_found","error_description":"Object not found","error_detail":null,` +
		`"error_parameters":{},"error_propagate":true,"request":{"url":"http://api.podio.com/space/9/member/","query_string":"a=1","method":"GET"}}`
	rateBody := `{"error":"rate_limit","error_description":"You have hit the rate limit. Please wait 3600 seconds before trying again"}`
	tests := []struct {
		name       string
		status     int
		header     http.Header
		body       string
		wantErr    bool
		wantStatus int
		wantCode   string
		wantDesc   string
		wantReq    podio.ErrorRequest
		wantProp   bool
		rateLimit  bool
		wantWait   time.Duration
		waitKnown  bool
		wantRate   podio.Rate
	}{
		{name: "200", status: 200, body: `{}`},
		{name: "201", status: 201, body: ``},
		{name: "204", status: 204},
		{
			name: "podio json", status: 404, body: podioBody, wantErr: true, wantStatus: 404,
			wantCode: "not_found", wantDesc: "Object not found", wantProp: true,
			wantReq: podio.ErrorRequest{URL: "http://api.podio.com/space/9/member/", QueryString: "a=1", Method: "GET"},
		},
		{
			name: "html from a proxy", status: 502, header: http.Header{"Content-Type": {"text/html"}},
			body: "<html><body>Bad Gateway</body></html>", wantErr: true, wantStatus: 502,
		},
		{name: "empty 500", status: 500, wantErr: true, wantStatus: 500},
		{name: "json that is not an object", status: 503, body: `["x"]`, wantErr: true, wantStatus: 503},
		{
			name: "420 wait in body", status: 420, body: rateBody,
			header:  http.Header{"X-Rate-Limit-Limit": {"1000"}, "X-Rate-Limit-Remaining": {"0"}},
			wantErr: true, wantStatus: 420, wantCode: "rate_limit",
			wantDesc:  "You have hit the rate limit. Please wait 3600 seconds before trying again",
			rateLimit: true, wantWait: time.Hour, waitKnown: true, wantRate: podio.Rate{Limit: 1000, Remaining: 0, Present: true},
		},
		{
			name: "420 retry-after header only", status: 420, body: `{"error":"rate_limit"}`,
			header:  http.Header{"Retry-After": {"17"}},
			wantErr: true, wantStatus: 420, wantCode: "rate_limit",
			rateLimit: true, wantWait: 17 * time.Second, waitKnown: true,
		},
		{
			name: "420 wait unknown", status: 420, body: `rate limited`,
			wantErr: true, wantStatus: 420, rateLimit: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := tt.header
			if h == nil {
				h = http.Header{}
			}
			req := httptest.NewRequest(http.MethodGet, "http://h/podio/space/9/member/", nil)
			r := &http.Response{StatusCode: tt.status, Header: h, Body: io.NopCloser(strings.NewReader(tt.body)), Request: req}
			err := podio.CheckResponse(r)
			if !tt.wantErr {
				if err != nil {
					t.Fatalf("CheckResponse: %v", err)
				}
				return
			}
			perr, ok := errors.AsType[*podio.Error](err)
			if !ok {
				t.Fatalf("error %T is not a *podio.Error: %v", err, err)
			}
			got := []any{perr.StatusCode, perr.Code, perr.Description, perr.Request, perr.Propagate}
			want := []any{tt.wantStatus, tt.wantCode, tt.wantDesc, tt.wantReq, tt.wantProp}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("error fields (-want +got):\n%s", diff)
			}
			if string(perr.Body) != tt.body {
				t.Errorf("Body = %q, want %q", perr.Body, tt.body)
			}
			if msg := err.Error(); !strings.Contains(msg, "podio") || strings.Contains(msg, "<html>") {
				t.Errorf("Error() = %q: want a short podio message without the body", msg)
			}
			// The body stays readable for callers of CheckResponse.
			if rest, _ := io.ReadAll(r.Body); string(rest) != tt.body {
				t.Errorf("body after CheckResponse = %q", rest)
			}
			rl, isRL := errors.AsType[*podio.RateLimitError](err)
			if isRL != tt.rateLimit {
				t.Fatalf("RateLimitError = %v, want %v", isRL, tt.rateLimit)
			}
			if !isRL {
				return
			}
			if diff := cmp.Diff([]any{tt.wantWait, tt.waitKnown, tt.wantRate}, []any{rl.Wait, rl.WaitKnown, rl.Rate}); diff != "" {
				t.Errorf("rate limit (-want +got):\n%s", diff)
			}
			if !perr.IsRateLimited() {
				t.Error("IsRateLimited() = false on a 420")
			}
		})
	}
}

func TestErrorPredicates(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name                                       string
		e                                          *podio.Error
		expired, invalidGrant, forbidden, notFound bool
	}{
		{"expired_token description", &podio.Error{StatusCode: 401, Code: "unauthorized", Description: "expired_token"}, true, false, false, false},
		{"invalid_token code", &podio.Error{StatusCode: 401, Code: "invalid_token", Description: "bad"}, true, false, false, false},
		{"other 401", &podio.Error{StatusCode: 401, Code: "unauthorized", Description: "no"}, false, false, false, false},
		{"expired_token but not 401", &podio.Error{StatusCode: 400, Description: "expired_token"}, false, false, false, false},
		{"invalid_grant", &podio.Error{StatusCode: 400, Code: "invalid_grant"}, false, true, false, false},
		{"403", &podio.Error{StatusCode: 403, Code: "forbidden"}, false, false, true, false},
		{"404", &podio.Error{StatusCode: 404, Code: "not_found"}, false, false, false, true},
		{"nil", nil, false, false, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := []bool{tt.e.IsExpiredToken(), tt.e.IsInvalidGrant(), tt.e.IsForbidden(), tt.e.IsNotFound()}
			want := []bool{tt.expired, tt.invalidGrant, tt.forbidden, tt.notFound}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("expired, invalidGrant, forbidden, notFound (-want +got):\n%s", diff)
			}
		})
	}
}

func TestTimeJSON(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in       string
		want     time.Time
		wantOut  string
		wantFail bool
	}{
		{in: `"2019-03-04 10:11:12"`, want: time.Date(2019, 3, 4, 10, 11, 12, 0, time.UTC), wantOut: `"2019-03-04 10:11:12"`},
		{in: `null`, wantOut: `null`},
		{in: `""`, wantOut: `null`},
		{in: `"2019-03-04T10:11:12Z"`, wantFail: true},
		{in: `12`, wantFail: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			t.Parallel()
			var v podio.Time
			err := json.Unmarshal([]byte(tt.in), &v)
			if tt.wantFail {
				if err == nil {
					t.Fatalf("Unmarshal(%s) = %v, want error", tt.in, v)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !v.Equal(tt.want) || (!v.IsZero() && v.Location() != time.UTC) {
				t.Errorf("Unmarshal(%s) = %v, want %v", tt.in, v.Time, tt.want)
			}
			out, err := json.Marshal(v)
			if err != nil {
				t.Fatal(err)
			}
			if string(out) != tt.wantOut {
				t.Errorf("Marshal = %s, want %s", out, tt.wantOut)
			}
		})
	}
	// A non-UTC time is written in UTC.
	cet := time.FixedZone("CET", 3600)
	out, _ := json.Marshal(podio.Time{Time: time.Date(2020, 1, 1, 1, 0, 0, 0, cet)})
	if string(out) != `"2020-01-01 00:00:00"` {
		t.Errorf("Marshal(CET) = %s", out)
	}
}

func TestDateJSON(t *testing.T) {
	t.Parallel()
	var d podio.Date
	if err := json.Unmarshal([]byte(`"1815-12-10"`), &d); err != nil {
		t.Fatal(err)
	}
	if !d.Equal(time.Date(1815, 12, 10, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("Date = %v", d.Time)
	}
	out, _ := json.Marshal(d)
	if string(out) != `"1815-12-10"` {
		t.Errorf("Marshal = %s", out)
	}
	var z podio.Date
	if err := json.Unmarshal([]byte(`null`), &z); err != nil || !z.IsZero() {
		t.Errorf("null → %v, %v", z.Time, err)
	}
}

func TestTokenStringHidesSecrets(t *testing.T) {
	t.Parallel()
	tok := podio.Token{AccessToken: "access-secret-123", RefreshToken: "refresh-secret-456", Scope: "global:all"}
	for _, format := range []string{"%v", "%+v", "%#v", "%s"} {
		for _, v := range []any{tok, &tok} {
			s := fmt.Sprintf(format, v)
			if strings.Contains(s, tok.AccessToken) || strings.Contains(s, tok.RefreshToken) {
				t.Errorf("fmt %s printed a secret: %s", format, s)
			}
		}
	}
}
