package podio

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

const (
	// DefaultBaseURL is the Podio API base URL.
	DefaultBaseURL = "https://api.podio.com/"
	// DefaultAuthURL is the base of Podio's browser authorization endpoint
	// (podio.com, not api.podio.com; podio-api.md §2.1).
	DefaultAuthURL = "https://podio.com/"
	// DefaultUserAgent is sent unless Client.UserAgent is changed.
	DefaultUserAgent = "dirgate-podio"

	headerRateLimit     = "X-Rate-Limit-Limit"
	headerRateRemaining = "X-Rate-Limit-Remaining"
	headerRequestID     = "X-Podio-Request-Id"
	headerRetryAfter    = "Retry-After"

	// maxErrorBody caps how much of an error body is read and kept.
	maxErrorBody = 64 << 10
)

// A Client manages communication with the Podio API.
//
// Set the exported fields before the first request; a Client is safe for
// concurrent use once configured.
type Client struct {
	client *http.Client
	tokens TokenSource

	// BaseURL is the API base URL. It must end with a slash; it may carry a
	// path (for example http://127.0.0.1:1234/podio/), which is kept because
	// request paths are resolved relative to it.
	BaseURL *url.URL
	// AuthURL is the base of the browser authorization endpoint; it must end
	// with a slash.
	AuthURL *url.URL
	// UserAgent is sent with every API request.
	UserAgent string
	// OAuthConfig holds the API key used by the OAuth service.
	OAuthConfig OAuthConfig
	// Now is the clock that turns a token's expires_in into Token.Expiry; nil means time.Now.
	Now func() time.Time

	common service

	// Services for the parts of the Podio API.
	Users        *UsersService
	Contacts     *ContactsService
	Orgs         *OrgsService
	Spaces       *SpacesService
	SpaceMembers *SpaceMembersService
	OAuth        *OAuthService
}

type service struct {
	client *Client
}

// NewClient returns a Podio API client. A nil httpClient means
// http.DefaultClient. tokens supplies access tokens for API calls; it may be
// nil for a client that only uses the OAuth service, in which case API
// requests are sent without an Authorization header.
func NewClient(httpClient *http.Client, tokens TokenSource) *Client {
	if httpClient == nil {
		httpClient = http.DefaultClient
	}
	baseURL, _ := url.Parse(DefaultBaseURL)
	authURL, _ := url.Parse(DefaultAuthURL)
	c := &Client{
		client:    httpClient,
		tokens:    tokens,
		BaseURL:   baseURL,
		AuthURL:   authURL,
		UserAgent: DefaultUserAgent,
	}
	c.initialize()
	return c
}

func (c *Client) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

func (c *Client) initialize() {
	c.common.client = c
	c.Users = (*UsersService)(&c.common)
	c.Contacts = (*ContactsService)(&c.common)
	c.Orgs = (*OrgsService)(&c.common)
	c.Spaces = (*SpacesService)(&c.common)
	c.SpaceMembers = (*SpaceMembersService)(&c.common)
	c.OAuth = (*OAuthService)(&c.common)
}

// copy returns a shallow copy of c with its own services.
func (c *Client) copy() *Client {
	clone := &Client{
		client:      c.client,
		tokens:      c.tokens,
		UserAgent:   c.UserAgent,
		OAuthConfig: c.OAuthConfig,
		Now:         c.Now,
	}
	if c.BaseURL != nil {
		u := *c.BaseURL
		clone.BaseURL = &u
	}
	if c.AuthURL != nil {
		u := *c.AuthURL
		clone.AuthURL = &u
	}
	clone.initialize()
	return clone
}

// WithTokenSource returns a copy of the client that takes its access tokens
// from tokens. The receiver is not changed.
func (c *Client) WithTokenSource(tokens TokenSource) *Client {
	clone := c.copy()
	clone.tokens = tokens
	return clone
}

// WithBaseURL returns a copy of the client that sends API requests to
// baseURL. A missing trailing slash is added, so that the path of baseURL is
// kept when request paths are resolved against it.
func (c *Client) WithBaseURL(baseURL string) (*Client, error) {
	u, err := parseBase(baseURL)
	if err != nil {
		return nil, err
	}
	clone := c.copy()
	clone.BaseURL = u
	return clone, nil
}

// WithAuthURL returns a copy of the client whose AuthCodeURL points at
// authURL. A missing trailing slash is added.
func (c *Client) WithAuthURL(authURL string) (*Client, error) {
	u, err := parseBase(authURL)
	if err != nil {
		return nil, err
	}
	clone := c.copy()
	clone.AuthURL = u
	return clone, nil
}

func parseBase(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("podio: parsing base URL: %w", err)
	}
	if u.Scheme == "" || u.Host == "" {
		return nil, fmt.Errorf("podio: base URL %q is not absolute", raw)
	}
	if !strings.HasSuffix(u.Path, "/") {
		u.Path += "/"
		if u.RawPath != "" {
			u.RawPath += "/"
		}
	}
	return u, nil
}

// resolve turns a path relative to base into an absolute URL. A leading slash
// is refused because it would drop the path of base.
func resolve(base *url.URL, path string) (*url.URL, error) {
	if base == nil {
		return nil, errors.New("podio: base URL is not set")
	}
	if !strings.HasSuffix(base.Path, "/") {
		return nil, fmt.Errorf("podio: base URL must have a trailing slash, but %q does not", base)
	}
	if strings.HasPrefix(path, "/") {
		return nil, fmt.Errorf("podio: request path %q must be relative to the base URL (no leading slash)", path)
	}
	u, err := base.Parse(path)
	if err != nil {
		return nil, fmt.Errorf("podio: parsing request path: %w", err)
	}
	return u, nil
}

// NewRequest creates an API request. path is resolved relative to BaseURL and
// must not start with a slash; Podio paths are copied verbatim, trailing
// slash included. A non-nil body is encoded as JSON and kept in memory, so
// the request can be replayed after a token refresh.
func (c *Client) NewRequest(method, path string, body any) (*http.Request, error) {
	u, err := resolve(c.BaseURL, path)
	if err != nil {
		return nil, err
	}
	var buf io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, fmt.Errorf("podio: encoding request body: %w", err)
		}
		// bytes.Reader makes http.NewRequest set GetBody, which Do uses to
		// replay the request.
		buf = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, u.String(), buf)
	if err != nil {
		return nil, fmt.Errorf("podio: creating request: %w", err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	if c.UserAgent != "" {
		req.Header.Set("User-Agent", c.UserAgent)
	}
	return req, nil
}

// Rate is the rate-limit state Podio reports on every response
// (X-Rate-Limit-Limit and X-Rate-Limit-Remaining). Podio exposes no reset
// time.
type Rate struct {
	// Limit is the ceiling for the call just made (calls per hour).
	Limit int
	// Remaining is the number of calls left in the current window.
	Remaining int
	// Present reports whether the response carried the headers at all.
	Present bool
}

func parseRate(r *http.Response) Rate {
	var rate Rate
	if r == nil {
		return rate
	}
	if v, err := strconv.Atoi(strings.TrimSpace(r.Header.Get(headerRateLimit))); err == nil {
		rate.Limit = v
		rate.Present = true
	}
	if v, err := strconv.Atoi(strings.TrimSpace(r.Header.Get(headerRateRemaining))); err == nil {
		rate.Remaining = v
		rate.Present = true
	}
	return rate
}

// Response wraps the http.Response of a Podio call. Its body has already
// been consumed.
type Response struct {
	*http.Response

	// Rate is the rate-limit state reported with the response.
	Rate Rate
	// RequestID is Podio's x-podio-request-id header, if any.
	RequestID string
}

func newResponse(r *http.Response) *Response {
	return &Response{
		Response:  r,
		Rate:      parseRate(r),
		RequestID: r.Header.Get(headerRequestID),
	}
}

// Do sends an API request and decodes the JSON response body into v (if v is
// non-nil; an io.Writer receives the raw body). Answers 200, 201 and 204 are
// success with or without a body. Any other status is returned as an error
// from CheckResponse.
//
// Do takes the access token from the client's TokenSource. If Podio answers
// 401 with an expired or invalid token (see Error.IsExpiredToken), Do calls
// TokenSource.Refresh once and repeats the request once, provided its body
// can be replayed; a second such answer is returned as the error.
//
// The returned Response is non-nil whenever Podio answered, also on error.
func (c *Client) Do(ctx context.Context, req *http.Request, v any) (*Response, error) {
	if ctx == nil {
		return nil, errors.New("podio: nil context")
	}
	var tok *Token
	if c.tokens != nil {
		t, err := c.tokens.Token(ctx)
		if err != nil {
			return nil, fmt.Errorf("podio: getting access token: %w", err)
		}
		if t == nil || t.AccessToken == "" {
			return nil, errors.New("podio: token source returned no access token")
		}
		tok = t
	}

	resp, err := c.do(ctx, req, tok, v)
	if err == nil || tok == nil {
		return resp, err
	}
	apiErr, ok := errors.AsType[*Error](err)
	if !ok || !apiErr.IsExpiredToken() {
		return resp, err
	}
	if req.Body != nil && req.Body != http.NoBody && req.GetBody == nil {
		// The body was consumed and cannot be sent again.
		return resp, err
	}

	fresh, rerr := c.tokens.Refresh(ctx, tok)
	if rerr != nil {
		return resp, fmt.Errorf("podio: refreshing expired access token: %w", rerr)
	}
	if fresh == nil || fresh.AccessToken == "" {
		return resp, errors.New("podio: token refresh returned no access token")
	}
	retry := req
	if req.GetBody != nil {
		body, gerr := req.GetBody()
		if gerr != nil {
			return resp, fmt.Errorf("podio: replaying request body: %w", gerr)
		}
		retry = req.Clone(req.Context())
		retry.Body = body
	}
	return c.do(ctx, retry, fresh, v)
}

// do sends req once with tok and handles the answer.
func (c *Client) do(ctx context.Context, req *http.Request, tok *Token, v any) (*Response, error) {
	r := req.Clone(ctx)
	if tok != nil {
		r.Header.Set("Authorization", "OAuth2 "+tok.AccessToken)
	}
	httpResp, err := c.client.Do(r)
	if err != nil {
		// A cancelled context is the more useful error.
		if cerr := ctx.Err(); cerr != nil {
			return nil, cerr
		}
		return nil, fmt.Errorf("podio: %s %s: %w", req.Method, req.URL.Path, err)
	}
	defer httpResp.Body.Close()
	resp := newResponse(httpResp)

	if err := CheckResponse(httpResp); err != nil {
		if tok != nil {
			redactError(err, tok.AccessToken)
		}
		return resp, err
	}

	switch v := v.(type) {
	case nil:
		_, _ = io.Copy(io.Discard, httpResp.Body)
	case io.Writer:
		if _, err := io.Copy(v, httpResp.Body); err != nil {
			return resp, fmt.Errorf("podio: reading %s %s response: %w", req.Method, req.URL.Path, err)
		}
	default:
		if err := json.NewDecoder(httpResp.Body).Decode(v); err != nil && !errors.Is(err, io.EOF) {
			return resp, fmt.Errorf("podio: decoding %s %s response: %w", req.Method, req.URL.Path, err)
		}
	}
	return resp, nil
}

// redactError removes secret from the text fields of a Podio error, in case
// a server echoes it back.
func redactError(err error, secret string) {
	if secret == "" {
		return
	}
	e, ok := errors.AsType[*Error](err)
	if !ok {
		return
	}
	const mask = "[redacted]"
	e.Code = strings.ReplaceAll(e.Code, secret, mask)
	e.Description = strings.ReplaceAll(e.Description, secret, mask)
	e.Request.URL = strings.ReplaceAll(e.Request.URL, secret, mask)
	e.Request.QueryString = strings.ReplaceAll(e.Request.QueryString, secret, mask)
	if bytes.Contains(e.Detail, []byte(secret)) {
		e.Detail = bytes.ReplaceAll(e.Detail, []byte(secret), []byte(mask))
	}
	if bytes.Contains(e.Parameters, []byte(secret)) {
		e.Parameters = bytes.ReplaceAll(e.Parameters, []byte(secret), []byte(mask))
	}
	if bytes.Contains(e.Body, []byte(secret)) {
		e.Body = bytes.ReplaceAll(e.Body, []byte(secret), []byte(mask))
	}
}

// get is the common shape of a GET that decodes into v.
func (s *service) get(ctx context.Context, path string, v any) (*Response, error) {
	req, err := s.client.NewRequest(http.MethodGet, path, nil)
	if err != nil {
		return nil, err
	}
	return s.client.Do(ctx, req, v)
}

// joinIDs renders ids as Podio's comma-separated path list.
func joinIDs(ids []int64) string {
	parts := make([]string, len(ids))
	for i, id := range ids {
		parts[i] = strconv.FormatInt(id, 10)
	}
	return strings.Join(parts, ",")
}

// unmarshalRaw decodes data into v, a pointer to a method-less alias of the
// type being decoded (so its UnmarshalJSON is not called again), and stores a
// copy of data in raw: encoding/json may reuse data after UnmarshalJSON
// returns. JSON null leaves everything unchanged, as it does for types without
// an UnmarshalJSON method.
func unmarshalRaw(data []byte, v any, raw *json.RawMessage) error {
	if isNull(data) {
		return nil
	}
	if err := json.Unmarshal(data, v); err != nil {
		return err
	}
	*raw = bytes.Clone(data)
	return nil
}

func isNull(data []byte) bool {
	return bytes.Equal(bytes.TrimSpace(data), []byte("null"))
}
