package podiosim

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"mime"
	"net/http"
	"net/url"
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

// ---- serving ----

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
