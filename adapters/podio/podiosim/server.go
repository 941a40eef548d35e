package podiosim

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Config tunes the simulator. The zero value is a faithful default: the demo dataset, Podio's
// documented limits and lifetimes, and the recommended answers where podio-api.md is UNCONFIRMED.
type Config struct {
	// Dataset is the world to serve; nil means Demo(). New works on its own copy.
	Dataset *Dataset
	// Now is the wall clock; nil means time.Now. Advance adds an offset on top of it.
	Now func() time.Time

	// AccessTokenTTL is the access-token lifetime; 0 means 8 hours (expires_in 28800).
	AccessTokenTTL time.Duration
	// RefreshTokenTTL is the refresh-token lifetime; 0 means 28 days.
	RefreshTokenTTL time.Duration
	// DisableRefreshRotation makes a refresh return the same, still valid, refresh token.
	// By default a refresh returns a new refresh token and the used one becomes invalid_grant.
	DisableRefreshRotation bool

	// GeneralLimit is the hourly call ceiling per (user, client_id) for general routes; 0 means 1000.
	GeneralLimit int
	// RateLimitedLimit is the hourly ceiling for routes in RateLimitedRoutes; 0 means 250.
	RateLimitedLimit int
	// RateLimitedRoutes names the routes (e.g. RouteOrgMembers) in Podio's "rate limited" class.
	RateLimitedRoutes []string
	// RetryAfterHeader adds a Retry-After header to 420 answers. Podio documents none, so it is off.
	RetryAfterHeader bool

	// MaxPageSize caps (and is the default of) limit on the org member list, and caps limit on the
	// v2 space member list; 0 means 100.
	MaxPageSize int
	// RouteMaxPageSize overrides MaxPageSize per route name.
	RouteMaxPageSize map[string]int
	// StrictSlashes turns off the leniency that accepts "/user" and "/org" for "/user/" and "/org/".
	StrictSlashes bool
	// InvitedInSpaceMembersV2 lists invitees in GET /space/{space_id}/member/v2/ (UNCONFIRMED; off).
	InvitedInSpaceMembersV2 bool

	// AddMemberStatus is the success status of POST /space/{space_id}/member/; 0 means 200 with {}.
	AddMemberStatus int
	// UpdateMemberStatus is the success status of PUT /space/{space_id}/member/{user_ids}; 0 means 204.
	UpdateMemberStatus int
	// EndMemberStatus is the success status of DELETE /space/{space_id}/member/{user_ids}; 0 means 204.
	EndMemberStatus int
	// EndOrgMemberStatus is the success status of DELETE /org/{org_id}/member/{user_id}; 0 means 204.
	EndOrgMemberStatus int
	// UpdateProfileStatus is the success status of PUT /user/profile/ and PUT /user/profile/{key};
	// 0 means 204.
	UpdateProfileStatus int
	// UpdateUserStatus is the success status of PUT /user/ (itself UNCONFIRMED); 0 means 204.
	UpdateUserStatus int
}

// Route names, "METHOD /pattern" exactly as in podio-api.md. They key Calls, faults,
// RateLimitedRoutes and RouteMaxPageSize.
const (
	RouteUser               = "GET /user/"
	RouteUserStatus         = "GET /user/status"
	RouteContactUser        = "GET /contact/user/{user_id}"
	RouteUpdateUser         = "PUT /user/" // UNCONFIRMED: not in podio-api.md (see doc.go)
	RouteUpdateProfile      = "PUT /user/profile/"
	RouteUpdateProfileField = "PUT /user/profile/{key}"
	RouteOrgs               = "GET /org/"
	RouteOrg                = "GET /org/{org_id}"
	RouteOrgMembers         = "GET /org/{org_id}/member/"
	RouteOrgMember          = "GET /org/{org_id}/member/{user_id}"
	RouteOrgMemberByMail    = "GET /org/{org_id}/member/mail/{mail}"
	RouteEndMemberInfo      = "GET /org/{org_id}/member/{user_id}/end_member_info"
	RouteEndOrgMember       = "DELETE /org/{org_id}/member/{user_id}"
	RouteOrgSpaces          = "GET /org/{org_id}/space/"
	RouteOrgAllSpaces       = "GET /org/{org_id}/all_spaces/"
	RouteSpace              = "GET /space/{space_id}"
	RouteSpaceMembers       = "GET /space/{space_id}/member/"
	RouteSpaceMembersV2     = "GET /space/{space_id}/member/v2/"
	RouteSpaceMember        = "GET /space/{space_id}/member/{user_id}"
	RouteAddSpaceMember     = "POST /space/{space_id}/member/"
	RouteUpdateSpaceMember  = "PUT /space/{space_id}/member/{user_ids}"
	RouteEndSpaceMember     = "DELETE /space/{space_id}/member/{user_ids}"
	RouteToken              = "POST /oauth/token"
	RouteTokenV2            = "POST /oauth/token/v2"
	RouteAuthorize          = "GET /oauth/authorize"
	RouteAuthorizeSubmit    = "POST /oauth/authorize"
)

// datetimeLayout is Podio's datetime format: UTC, a space, no zone.
const datetimeLayout = "2006-01-02 15:04:05"

// Server is the simulator: an http.Handler serving the Podio API routes, the OAuth pages and the
// /_sim/ control API. It is safe for concurrent use.
type Server struct {
	cfg         Config
	routes      []*route
	control     []*route
	rateLimited map[string]bool
	reqSeq      atomic.Uint64

	mu      sync.Mutex // guards everything below
	ds      *Dataset
	offset  time.Duration
	tokens  map[string]*accessToken
	refresh map[string]*refreshGrant
	codes   map[string]*authCode
	quota   map[quotaKey]*quotaWindow
	faults  []*faultState
	calls   map[string]int
	// limited counts the 420 answers per route (quota or fault), beside calls.
	limited map[string]int
	minted  int // tokens minted, to pace sweepLocked
	// orgOrder caches sorted org member lists; any mutating request clears it (forgetMutations).
	orgOrder map[orgOrderKey][]orgEntry
}

type accessToken struct {
	refType  string // "user" or "app"
	refID    int64
	clientID string
	expires  time.Time
}

type refreshGrant struct {
	refType  string
	refID    int64
	clientID string
	expires  time.Time
}

type authCode struct {
	clientID, redirectURI string
	userID                int64
	expires               time.Time
}

type quotaKey struct {
	refType  string
	refID    int64
	clientID string
	class    string
}

type quotaWindow struct {
	start time.Time
	used  int
}

type faultState struct {
	f    Fault
	left int // remaining applications; <0 = until cleared
}

// New builds a simulator from cfg (see Config for defaults).
func New(cfg Config) *Server {
	if cfg.Dataset == nil {
		cfg.Dataset = Demo()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.AccessTokenTTL <= 0 {
		cfg.AccessTokenTTL = 8 * time.Hour
	}
	if cfg.RefreshTokenTTL <= 0 {
		cfg.RefreshTokenTTL = 28 * 24 * time.Hour
	}
	if cfg.GeneralLimit <= 0 {
		cfg.GeneralLimit = 1000
	}
	if cfg.RateLimitedLimit <= 0 {
		cfg.RateLimitedLimit = 250
	}
	if cfg.MaxPageSize <= 0 {
		cfg.MaxPageSize = 100
	}
	s := &Server{
		cfg:         cfg,
		rateLimited: map[string]bool{},
		ds:          cfg.Dataset.clone(),
		tokens:      map[string]*accessToken{},
		refresh:     map[string]*refreshGrant{},
		codes:       map[string]*authCode{},
		quota:       map[quotaKey]*quotaWindow{},
		calls:       map[string]int{},
		limited:     map[string]int{},
		orgOrder:    map[orgOrderKey][]orgEntry{},
	}
	for _, r := range cfg.RateLimitedRoutes {
		s.rateLimited[r] = true
	}
	s.routes = s.podioRoutes()
	s.control = s.controlRoutes()
	return s
}

// Now reports the simulator clock: Config.Now plus everything passed to Advance, in UTC.
func (s *Server) Now() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.now()
}

func (s *Server) now() time.Time { return s.cfg.Now().Add(s.offset).UTC() }

// Advance moves the simulator clock forward by d (token expiry, code expiry, quota windows).
func (s *Server) Advance(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if d > 0 {
		s.offset += d
	}
}

// Calls reports how often each Podio route was called, including calls answered by a fault, a 401,
// a 403 or a 420. Control-API calls are not counted.
func (s *Server) Calls() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.calls)
}

// RateLimitedCalls reports how many calls of each route were answered 420, whether the quota was
// spent or a fault forced it. A client that keeps to Podio's limits sees none of the quota kind.
func (s *Server) RateLimitedCalls() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.limited)
}

// ResetCalls sets every call counter (and every RateLimitedCalls counter) back to zero.
func (s *Server) ResetCalls() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.calls)
	clear(s.limited)
}

// ResetQuota forgets every rate-limit window, as if an hour had passed for everyone.
func (s *Server) ResetQuota() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.quota)
}

// Token is what IssueToken mints: the same values the password grant would return.
type Token struct {
	AccessToken  string
	RefreshToken string
	ExpiresIn    int
	UserID       int64
}

// IssueToken mints tokens for the active person with the given e-mail, as if the password grant
// had succeeded for clientID, without an HTTP round trip or a password.
func (s *Server) IssueToken(clientID, email string) (Token, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ds.clients[clientID] == nil {
		return Token{}, fmt.Errorf("podiosim: unknown client %q", clientID)
	}
	p := s.ds.personByMail(email)
	if p == nil || p.status != "active" {
		return Token{}, fmt.Errorf("podiosim: no active person with mail %q", email)
	}
	access, refresh := s.mintTokens("user", p.userID, clientID)
	return Token{AccessToken: access, RefreshToken: refresh, ExpiresIn: int(s.cfg.AccessTokenTTL / time.Second), UserID: p.userID}, nil
}

// UserID looks up a person's user id by e-mail (case-insensitive).
func (s *Server) UserID(email string) (int64, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p := s.ds.personByMail(email); p != nil {
		return p.userID, true
	}
	return 0, false
}

// Fault describes an injected failure for calls of Route ("*" = every Podio route; never /_sim/).
type Fault struct {
	Route     string `json:"route"`
	LatencyMS int    `json:"latency_ms,omitempty"` // added delay before answering (respects the request context)
	Status    int    `json:"status,omitempty"`     // 500, 502, 503 or 504 with a Podio error body
	Timeout   bool   `json:"timeout,omitempty"`    // never answer: hold until the request context ends (cap 60 s), then drop
	RateLimit bool   `json:"rate_limit,omitempty"` // forced 420 rate_limit answer
	Times     int    `json:"times,omitempty"`      // apply to the next N matching calls; 0 = until cleared
}

// AddFault installs f after validating it (known route or "*", a supported status, one outcome).
func (s *Server) AddFault(f Fault) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addFaultLocked(f)
}

// addFaultLocked validates and installs f. Caller holds s.mu.
func (s *Server) addFaultLocked(f Fault) error {
	if f.Route != "*" && !slices.ContainsFunc(s.routes, func(r *route) bool { return r.name == f.Route }) {
		return fmt.Errorf("podiosim: fault for unknown route %q", f.Route)
	}
	switch f.Status {
	case 0, 500, 502, 503, 504:
	default:
		return fmt.Errorf("podiosim: fault status %d not supported (500, 502, 503, 504)", f.Status)
	}
	outcomes := 0
	for _, b := range []bool{f.Status != 0, f.Timeout, f.RateLimit} {
		if b {
			outcomes++
		}
	}
	if outcomes > 1 {
		return errors.New("podiosim: a fault may have only one of status, timeout, rate_limit")
	}
	if f.LatencyMS < 0 || f.Times < 0 {
		return errors.New("podiosim: latency_ms and times must not be negative")
	}
	if outcomes == 0 && f.LatencyMS == 0 {
		return errors.New("podiosim: fault has no effect (set latency_ms, status, timeout or rate_limit)")
	}
	left := f.Times
	if left == 0 {
		left = -1
	}
	s.faults = append(s.faults, &faultState{f: f, left: left})
	return nil
}

// ClearFaults removes every installed fault.
func (s *Server) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = nil
}

// Faults lists the installed faults with Times set to the applications left (0 = until cleared).
func (s *Server) Faults() []Fault {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Fault, 0, len(s.faults))
	for _, fs := range s.faults {
		f := fs.f
		f.Times = max(fs.left, 0)
		out = append(out, f)
	}
	return out
}

// Routes lists the Podio route names the simulator serves.
func (s *Server) Routes() []string {
	out := make([]string, len(s.routes))
	for i, r := range s.routes {
		out[i] = r.name
	}
	return out
}

// faultEffect is the combined outcome of the faults matching one call.
type faultEffect struct {
	latency   time.Duration
	status    int
	timeout   bool
	rateLimit bool
}

// takeFaults consumes one application of every fault matching route. Caller holds s.mu.
func (s *Server) takeFaults(route string) faultEffect {
	var e faultEffect
	kept := s.faults[:0]
	for _, fs := range s.faults {
		if fs.f.Route == "*" || fs.f.Route == route {
			e.latency += time.Duration(fs.f.LatencyMS) * time.Millisecond
			if e.status == 0 && !e.timeout && !e.rateLimit {
				e.status, e.timeout, e.rateLimit = fs.f.Status, fs.f.Timeout, fs.f.RateLimit
			}
			if fs.left > 0 {
				fs.left--
				if fs.left == 0 {
					continue
				}
			}
		}
		kept = append(kept, fs)
	}
	clear(s.faults[len(kept):])
	s.faults = kept
	return e
}

// ---- routing ----

type routeKind int

const (
	kindAPI   routeKind = iota // needs a token, counts against quota
	kindOAuth                  // OAuth endpoints: no token, no quota
)

// call carries one request through the handlers.
type call struct {
	r      *http.Request
	route  *route
	params map[string]string
	body   []byte
	form   url.Values // query values followed by form-body values
	tok    *accessToken
	now    time.Time
}

// reply is what a handler produces under the lock; it is written after the lock is released.
type reply struct {
	status  int
	body    any // JSON-encoded unless nil
	html    []byte
	perr    *podioError
	header  http.Header
	rlLimit int // X-Rate-Limit-* values; limit 0 = use general limit with nothing used
	rlLeft  int
}

type podioError struct {
	code, desc string
}

func errReply(status int, code, desc string) reply {
	return reply{status: status, perr: &podioError{code: code, desc: desc}}
}

func notFound(what string) reply {
	return errReply(http.StatusNotFound, "not_found", what+" not found")
}
func forbidden(why string) reply { return errReply(http.StatusForbidden, "forbidden", why) }
func invalidValue(why string) reply {
	return errReply(http.StatusBadRequest, "invalid_value", why)
}

type route struct {
	name   string
	method string
	segs   []string
	kind   routeKind
	h      func(*call) reply
}

func newRoute(name string, kind routeKind, h func(*call) reply) *route {
	method, pattern, _ := strings.Cut(name, " ")
	return &route{name: name, method: method, segs: splitPath(pattern), kind: kind, h: h}
}

// splitPath splits an escaped path into segments; a trailing slash yields an empty last segment,
// which keeps "/org/" and "/org" apart.
func splitPath(p string) []string { return strings.Split(strings.TrimPrefix(p, "/"), "/") }

// match finds the route for method and escaped path. It returns the route and its unescaped
// placeholder values; when the path exists only for other methods it returns their list instead.
// Routes are tried in table order, so literal routes listed first win over placeholders.
func match(routes []*route, method, escPath string) (*route, map[string]string, []string) {
	segs := splitPath(escPath)
	var allowed []string
	for _, rt := range routes {
		params, ok := matchSegs(rt.segs, segs)
		if !ok {
			continue
		}
		if rt.method != method {
			if !slices.Contains(allowed, rt.method) {
				allowed = append(allowed, rt.method)
			}
			continue
		}
		return rt, params, nil
	}
	return nil, nil, allowed
}

func matchSegs(pattern, segs []string) (map[string]string, bool) {
	if len(pattern) != len(segs) {
		return nil, false
	}
	var params map[string]string
	for i, p := range pattern {
		if !strings.HasPrefix(p, "{") {
			if p != segs[i] {
				return nil, false
			}
			continue
		}
		v, err := url.PathUnescape(segs[i])
		if err != nil || v == "" {
			return nil, false
		}
		// Numeric placeholders only bind segments that start like a number, so that the literal
		// sibling "v2" (GET /space/{id}/member/v2 without its slash) is a 404, not a bad id.
		if strings.HasSuffix(p, "_id}") || strings.HasSuffix(p, "_ids}") {
			if c := v[0]; (c < '0' || c > '9') && c != '-' {
				return nil, false
			}
		}
		if params == nil {
			params = map[string]string{}
		}
		params[p[1:len(p)-1]] = v
	}
	return params, true
}

func (s *Server) podioRoutes() []*route {
	return []*route{
		newRoute(RouteUser, kindAPI, s.getUser),
		newRoute(RouteUserStatus, kindAPI, s.getUserStatus),
		newRoute(RouteContactUser, kindAPI, s.getContactUser),
		newRoute(RouteUpdateUser, kindAPI, s.updateUser),
		newRoute(RouteUpdateProfile, kindAPI, s.updateProfile),
		newRoute(RouteUpdateProfileField, kindAPI, s.updateProfileField),
		newRoute(RouteOrgs, kindAPI, s.getOrgs),
		newRoute(RouteOrg, kindAPI, s.getOrg),
		newRoute(RouteOrgMembers, kindAPI, s.getOrgMembers),
		newRoute(RouteOrgMemberByMail, kindAPI, s.getOrgMemberByMail),
		newRoute(RouteEndMemberInfo, kindAPI, s.getEndMemberInfo),
		newRoute(RouteOrgMember, kindAPI, s.getOrgMember),
		newRoute(RouteEndOrgMember, kindAPI, s.endOrgMember),
		newRoute(RouteOrgSpaces, kindAPI, s.getOrgSpaces),
		newRoute(RouteOrgAllSpaces, kindAPI, s.getOrgAllSpaces),
		newRoute(RouteSpace, kindAPI, s.getSpace),
		newRoute(RouteSpaceMembers, kindAPI, s.getSpaceMembers),
		newRoute(RouteSpaceMembersV2, kindAPI, s.getSpaceMembersV2),
		newRoute(RouteSpaceMember, kindAPI, s.getSpaceMember),
		newRoute(RouteAddSpaceMember, kindAPI, s.addSpaceMembers),
		newRoute(RouteUpdateSpaceMember, kindAPI, s.updateSpaceMembers),
		newRoute(RouteEndSpaceMember, kindAPI, s.endSpaceMembers),
		newRoute(RouteToken, kindOAuth, s.postToken),
		newRoute(RouteTokenV2, kindOAuth, s.postTokenV2),
		newRoute(RouteAuthorize, kindOAuth, s.getAuthorize),
		newRoute(RouteAuthorizeSubmit, kindOAuth, s.postAuthorize),
	}
}

// maxBody bounds request bodies; the simulator never needs more.
const maxBody = 1 << 20

// ServeHTTP serves the Podio routes, the OAuth pages and the /_sim/ control API.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Podio-Request-Id", fmt.Sprintf("sim-%012d", s.reqSeq.Add(1)))
	escPath := r.URL.EscapedPath()
	if escPath == "/_sim" || strings.HasPrefix(escPath, "/_sim/") {
		s.serveControl(w, r, escPath)
		return
	}
	if !s.cfg.StrictSlashes && (escPath == "/user" || escPath == "/org") {
		escPath += "/" // several official SDKs call these two without the slash (podio-api.md §1)
	}
	rt, params, allowed := match(s.routes, r.Method, escPath)
	if rt == nil {
		if len(allowed) > 0 {
			w.Header().Set("Allow", strings.Join(allowed, ", "))
			s.write(w, r, errReply(http.StatusMethodNotAllowed, "method_not_allowed", "Method "+r.Method+" is not allowed on this resource"))
			return
		}
		s.write(w, r, errReply(http.StatusNotFound, "not_found", "No such resource"))
		return
	}
	c := &call{r: r, route: rt, params: params}
	c.body, _ = io.ReadAll(io.LimitReader(r.Body, maxBody))
	c.form = r.URL.Query()
	if ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); ct == "application/x-www-form-urlencoded" {
		if bf, err := url.ParseQuery(string(c.body)); err == nil {
			for k, vs := range bf {
				c.form[k] = append(c.form[k], vs...)
			}
		}
	}

	s.mu.Lock()
	s.calls[rt.name]++
	eff := s.takeFaults(rt.name)
	s.mu.Unlock()

	if eff.latency > 0 && !sleepCtx(r.Context(), eff.latency) {
		return // the caller gave up; nobody is listening
	}
	switch {
	case eff.timeout:
		sleepCtx(r.Context(), 60*time.Second)
		if r.Context().Err() == nil {
			panic(http.ErrAbortHandler) // drop the connection without an answer
		}
		return
	case eff.rateLimit:
		s.mu.Lock()
		s.limited[rt.name]++
		s.mu.Unlock()
		s.write(w, r, s.rateLimitReply(s.cfg.GeneralLimit, forcedRateLimitWait))
		return
	case eff.status != 0:
		s.write(w, r, errReply(eff.status, faultCodes[eff.status], http.StatusText(eff.status)))
		return
	}

	s.mu.Lock()
	c.now = s.now()
	rep := s.dispatch(c)
	if rep.status == 420 {
		s.limited[rt.name]++
	}
	s.forgetDerived(r.Method)
	s.mu.Unlock()
	s.write(w, r, rep)
}

// forgetDerived drops state derived from the dataset after a request that may have changed it:
// every method but GET and HEAD. Caller holds s.mu.
func (s *Server) forgetDerived(method string) {
	if method != http.MethodGet && method != http.MethodHead {
		clear(s.orgOrder)
	}
}

// forcedRateLimitWait is the "Please wait N seconds" of a 420 forced by a fault, which has no
// window to count down.
const forcedRateLimitWait = 60

// faultCodes are the error strings of injected 5xx answers.
var faultCodes = map[int]string{500: "server_error", 502: "bad_gateway", 503: "unavailable", 504: "gateway_timeout"}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// dispatch authenticates, applies the quota and runs the handler. Caller holds s.mu.
func (s *Server) dispatch(c *call) reply {
	if c.route.kind != kindAPI {
		return c.route.h(c)
	}
	tok, rep, ok := s.authenticate(c)
	if !ok {
		return rep
	}
	c.tok = tok
	class, limit := "general", s.cfg.GeneralLimit
	if s.rateLimited[c.route.name] {
		class, limit = "rate_limited", s.cfg.RateLimitedLimit
	}
	key := quotaKey{refType: tok.refType, refID: tok.refID, clientID: tok.clientID, class: class}
	win := s.quota[key]
	if win == nil || !c.now.Before(win.start.Add(time.Hour)) {
		win = &quotaWindow{start: c.now}
		s.quota[key] = win
	}
	if win.used >= limit {
		wait := int((win.start.Add(time.Hour).Sub(c.now) + time.Second - 1) / time.Second)
		return s.rateLimitReply(limit, max(wait, 1))
	}
	win.used++
	if tok.refType == "app" {
		rep = forbidden("Apps cannot access the user directory; authenticate as a user")
	} else {
		rep = c.route.h(c)
	}
	rep.rlLimit, rep.rlLeft = limit, limit-win.used
	return rep
}

func (s *Server) rateLimitReply(limit, wait int) reply {
	rep := errReply(420, "rate_limit", fmt.Sprintf("You have hit the rate limit. Please wait %d seconds before trying again", wait))
	rep.rlLimit, rep.rlLeft = limit, 0
	if s.cfg.RetryAfterHeader {
		rep.header = http.Header{"Retry-After": {strconv.Itoa(wait)}}
	}
	return rep
}

// authenticate finds the access token of the call: Authorization "OAuth2 <t>" or "Bearer <t>", or
// the legacy oauth_token query/form parameter. Caller holds s.mu.
func (s *Server) authenticate(c *call) (*accessToken, reply, bool) {
	raw := ""
	if h := c.r.Header.Get("Authorization"); h != "" {
		scheme, t, _ := strings.Cut(strings.TrimSpace(h), " ")
		if strings.EqualFold(scheme, "OAuth2") || strings.EqualFold(scheme, "Bearer") {
			raw = strings.TrimSpace(t)
		}
	} else if vs := c.form["oauth_token"]; len(vs) > 0 {
		raw = vs[len(vs)-1]
	}
	if raw == "" {
		return nil, errReply(http.StatusUnauthorized, "invalid_token", "No access token was given"), false
	}
	tok := s.tokens[raw]
	if tok == nil {
		return nil, errReply(http.StatusUnauthorized, "invalid_token", "The access token is not valid"), false
	}
	if !c.now.Before(tok.expires) {
		rep := errReply(http.StatusUnauthorized, "unauthorized", "expired_token")
		rep.header = http.Header{"Www-Authenticate": {`Bearer realm="podio", error="expired_token"`}}
		return nil, rep, false
	}
	return tok, reply{}, true
}

// mintTokens issues an access token and a refresh token. Caller holds s.mu.
// sweepEvery is how many mints pass between sweeps of dead credentials.
const sweepEvery = 1024

// sweepLocked forgets credentials that can no longer matter, so that a long-running simulator does
// not grow without bound. Expired access tokens are kept for as long as a refresh token lives, so
// that a client holding an old one still gets expired_token (not invalid_token) back. Caller holds s.mu.
func (s *Server) sweepLocked(now time.Time) {
	for k, t := range s.tokens {
		if now.After(t.expires.Add(s.cfg.RefreshTokenTTL)) {
			delete(s.tokens, k)
		}
	}
	for k, g := range s.refresh {
		if now.After(g.expires) {
			delete(s.refresh, k)
		}
	}
	for k, c := range s.codes {
		if now.After(c.expires) {
			delete(s.codes, k)
		}
	}
}

func (s *Server) mintTokens(refType string, refID int64, clientID string) (access, refresh string) {
	now := s.now()
	if s.minted++; s.minted%sweepEvery == 0 {
		s.sweepLocked(now)
	}
	access, refresh = randomToken(), randomToken()
	s.tokens[access] = &accessToken{refType: refType, refID: refID, clientID: clientID, expires: now.Add(s.cfg.AccessTokenTTL)}
	s.refresh[refresh] = &refreshGrant{refType: refType, refID: refID, clientID: clientID, expires: now.Add(s.cfg.RefreshTokenTTL)}
	return access, refresh
}

func randomToken() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	return hex.EncodeToString(b)
}

// write sends a reply. Every Podio error body is produced here (podio-api.md §9.1).
func (s *Server) write(w http.ResponseWriter, r *http.Request, rep reply) {
	h := w.Header()
	limit, left := rep.rlLimit, rep.rlLeft
	if limit == 0 {
		limit, left = s.cfg.GeneralLimit, s.cfg.GeneralLimit
	}
	h.Set("X-Rate-Limit-Limit", strconv.Itoa(limit))
	h.Set("X-Rate-Limit-Remaining", strconv.Itoa(left))
	for k, vs := range rep.header {
		h[k] = vs
	}
	if rep.html != nil {
		h.Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(rep.status)
		_, _ = w.Write(rep.html)
		return
	}
	body := rep.body
	if rep.perr != nil {
		body = map[string]any{
			"error":             rep.perr.code,
			"error_description": rep.perr.desc,
			"error_detail":      nil,
			"error_parameters":  map[string]any{},
			"error_propagate":   false,
			"request": map[string]any{
				"url":          "http://" + r.Host + r.URL.Path,
				"query_string": r.URL.RawQuery,
				"method":       r.Method,
			},
		}
	}
	if body == nil {
		w.WriteHeader(rep.status)
		return
	}
	writeJSON(w, rep.status, body)
}

func writeJSON(w http.ResponseWriter, status int, body any) {
	var buf bytes.Buffer
	if err := json.NewEncoder(&buf).Encode(body); err != nil {
		http.Error(w, "podiosim: encoding response: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}
