package upstream

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/dirgate/dirgate/internal/quota"
)

// Defaults for the zero values of Options.
const (
	DefaultCooldown         = 60 * time.Second
	DefaultMaxRetries       = 2
	DefaultBaseBackoff      = 100 * time.Millisecond
	DefaultMaxBackoff       = 2 * time.Second
	DefaultFailureThreshold = 5
	DefaultOpenTimeout      = 30 * time.Second
)

const (
	// maxBodyPeek is how much of a 420 body is read to find Podio's wait; the whole body is still
	// given back to the caller.
	maxBodyPeek = 64 << 10
	// maxDrain bounds how much of a failed response is read before retrying, so the connection can
	// be reused without reading an arbitrarily large error page.
	maxDrain = 64 << 10
	// maxCooldown bounds a wait parsed from Podio's answer: Podio's own is an hour, and a larger
	// number is more likely garbage than a real instruction.
	maxCooldown = 24 * time.Hour
)

// pleaseWait finds the wait in Podio's 420 description ("... Please wait 3600 seconds before
// trying again").
var pleaseWait = regexp.MustCompile(`(?i)please\s+wait\s+(\d+)\s+second`)

// Budget is what the transport needs from internal/quota (*quota.Budget implements it).
type Budget interface {
	// Admit counts one call of class c for key k, or refuses it.
	Admit(ctx context.Context, k quota.Key, c quota.Class, p quota.Priority) (quota.Decision, error)
	// Observe reports the X-Rate-Limit-Remaining Podio sent for a call of class c.
	Observe(ctx context.Context, k quota.Key, c quota.Class, remaining int) error
	// Cooldown stops all calls for key k for wait, after Podio answered 420.
	Cooldown(ctx context.Context, k quota.Key, wait time.Duration) error
}

// Observer is told of every Podio call and budget decision, for metrics. Label values it gets are
// bounded: operations are normalized (Operation), classes and priorities are enums.
// *metrics.Metrics implements it.
type Observer interface {
	// UpstreamCall reports one attempt: status is the HTTP code, "error" (no answer),
	// "budget_refused" or "circuit_open" (not sent).
	UpstreamCall(operation, status string, d time.Duration)
	// QuotaRefused reports a call the budget refused; reason is "budget" or "cooldown".
	QuotaRefused(class, priority, reason string)
	// QuotaCooldown reports a cooldown started after a 420.
	QuotaCooldown()
	// QuotaRemaining reports Podio's X-Rate-Limit-Remaining for a call of class.
	QuotaRemaining(class string, remaining int)
}

// Call says whose budget a request spends; put it in the request context with WithCall.
type Call struct {
	Key      quota.Key
	Priority quota.Priority
}

type callKey struct{}

// WithCall returns a context whose requests spend c's budget.
func WithCall(ctx context.Context, c Call) context.Context {
	return context.WithValue(ctx, callKey{}, c)
}

// CallFrom returns the Call put into ctx by WithCall.
func CallFrom(ctx context.Context) (Call, bool) {
	c, ok := ctx.Value(callKey{}).(Call)
	return c, ok
}

// Options configures a Transport. Zero values mean the documented defaults.
type Options struct {
	// Base sends the requests; nil means http.DefaultTransport.
	Base http.RoundTripper
	// Budget is the shared quota budget; nil means no budgeting.
	Budget Budget
	// RateLimitedRoutes are the operations in Podio's "rate limited" class, as "METHOD /path"
	// templates where numeric segments are {id}, e.g. "GET /org/{id}/member/". Default none.
	RateLimitedRoutes []string
	// BasePath is the API base URL's path (e.g. "/" or "/podio/"), stripped before matching
	// RateLimitedRoutes.
	BasePath string
	// DefaultCooldown is the cooldown after a 420 that names no wait; default 60s.
	DefaultCooldown time.Duration
	// MaxRetries is the number of retries after the first attempt; default 2, negative none.
	MaxRetries int
	// BaseBackoff is the backoff cap before the first retry, doubled for each further one;
	// default 100ms.
	BaseBackoff time.Duration
	// MaxBackoff caps the backoff; default 2s.
	MaxBackoff time.Duration
	// FailureThreshold is the number of consecutive failures that open the breaker; default 5.
	FailureThreshold int
	// OpenTimeout is how long the breaker stays open before a half-open probe; default 30s.
	OpenTimeout time.Duration
	// Now is the clock; default time.Now.
	Now func() time.Time
	// Sleep waits d or until ctx is done; default a timer.
	Sleep func(ctx context.Context, d time.Duration) error
	// Rand returns a number in [0, 1) for full jitter; default math/rand/v2.Float64.
	Rand func() float64
	// Logger receives breaker state changes and budget errors; default discards.
	Logger *slog.Logger
	// Observer is told of calls and budget decisions; nil: nobody.
	Observer Observer
}

// Transport is the http.RoundTripper for calls to one Podio upstream. It is safe for concurrent
// use; its circuit breaker is shared by all calls through it.
type Transport struct {
	base            http.RoundTripper
	budget          Budget
	routes          map[string]bool
	basePath        string
	defaultCooldown time.Duration
	maxRetries      int
	baseBackoff     time.Duration
	maxBackoff      time.Duration
	now             func() time.Time
	sleep           func(ctx context.Context, d time.Duration) error
	rand            func() float64
	log             *slog.Logger
	obs             Observer
	breaker         *breaker
}

var _ http.RoundTripper = (*Transport)(nil)

// New returns a Transport configured by o.
func New(o Options) *Transport {
	if o.Base == nil {
		o.Base = http.DefaultTransport
	}
	if o.DefaultCooldown <= 0 {
		o.DefaultCooldown = DefaultCooldown
	}
	if o.MaxRetries == 0 {
		o.MaxRetries = DefaultMaxRetries
	} else if o.MaxRetries < 0 {
		o.MaxRetries = 0
	}
	if o.BaseBackoff <= 0 {
		o.BaseBackoff = DefaultBaseBackoff
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = DefaultMaxBackoff
	}
	if o.FailureThreshold <= 0 {
		o.FailureThreshold = DefaultFailureThreshold
	}
	if o.OpenTimeout <= 0 {
		o.OpenTimeout = DefaultOpenTimeout
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Sleep == nil {
		o.Sleep = sleep
	}
	if o.Rand == nil {
		o.Rand = rand.Float64
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	routes := make(map[string]bool, len(o.RateLimitedRoutes))
	for _, r := range o.RateLimitedRoutes {
		if m, p, ok := strings.Cut(strings.TrimSpace(r), " "); ok {
			routes[strings.ToUpper(m)+" "+template(strings.TrimSpace(p))] = true
		}
	}
	return &Transport{
		base:            o.Base,
		budget:          o.Budget,
		routes:          routes,
		basePath:        strings.TrimSuffix(o.BasePath, "/"),
		defaultCooldown: o.DefaultCooldown,
		maxRetries:      o.MaxRetries,
		baseBackoff:     o.BaseBackoff,
		maxBackoff:      o.MaxBackoff,
		now:             o.Now,
		sleep:           o.Sleep,
		rand:            o.Rand,
		log:             o.Logger,
		obs:             o.Observer,
		breaker: &breaker{
			threshold: o.FailureThreshold,
			openFor:   o.OpenTimeout,
			log:       o.Logger,
		},
	}
}

// BudgetError is returned, without calling Podio, when the budget refuses a call.
type BudgetError struct {
	// RetryAfter is how long until the budget could admit the call.
	RetryAfter time.Duration
	// Cooldown: refused because Podio answered 420 and its wait has not passed.
	Cooldown bool
	// Class is the quota class of the refused call.
	Class quota.Class
}

// Error says which budget refused and for how long.
func (e *BudgetError) Error() string {
	if e.Cooldown {
		return fmt.Sprintf("upstream: podio rate limit cooldown, retry after %s", e.RetryAfter)
	}
	return fmt.Sprintf("upstream: podio %s call budget exhausted, retry after %s", e.Class, e.RetryAfter)
}

// CircuitOpenError is returned, without calling Podio, while the circuit breaker is open.
type CircuitOpenError struct {
	// RetryAfter is how long until the breaker lets a probe through.
	RetryAfter time.Duration
}

// Error says that Podio is considered down and for how long.
func (e *CircuitOpenError) Error() string {
	return fmt.Sprintf("upstream: podio circuit open, retry after %s", e.RetryAfter)
}

// RoundTrip sends req to Podio under the budget, retry and breaker rules of the package.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	call, ok := CallFrom(req.Context())
	if !ok || isTokenPath(req.URL.Path) {
		return t.send(req)
	}
	ctx := req.Context()
	class := t.Class(req.Method, req.URL.EscapedPath())
	idem := idempotent(req)
	maxRetries := 0
	if req.Body == nil || req.Body == http.NoBody || req.GetBody != nil {
		maxRetries = t.maxRetries
	}

	for attempt := 0; ; attempt++ {
		r := req
		if attempt > 0 && req.Body != nil && req.Body != http.NoBody {
			body, err := req.GetBody()
			if err != nil {
				return nil, fmt.Errorf("upstream: replaying request body: %w", err)
			}
			r = new(http.Request)
			*r = *req
			r.Body = body
		}
		resp, sent, err := t.attempt(ctx, r, call, class, attempt == 0)
		if !sent || attempt >= maxRetries || !retryableResult(ctx, resp, err) || (!idem && !neverSent(err)) {
			return resp, err
		}
		wait := t.backoff(attempt + 1)
		if dl, ok := ctx.Deadline(); ok && t.now().Add(wait).After(dl) {
			// The retry could not finish in time; the caller is better served by the real answer.
			return resp, err
		}
		if resp != nil {
			drain(resp.Body)
		}
		if err := t.sleep(ctx, wait); err != nil {
			return nil, fmt.Errorf("upstream: waiting to retry: %w", err)
		}
	}
}

// attempt makes one attempt: breaker, budget, Base, then learning from the answer. sent reports
// whether Base was called; when it was not, err says why.
func (t *Transport) attempt(ctx context.Context, req *http.Request, call Call, class quota.Class, first bool) (resp *http.Response, sent bool, err error) {
	refuse := func(err error) (*http.Response, bool, error) {
		// A RoundTripper must close the request body even when it does not send it; later
		// attempts' bodies are only created once admitted.
		if first && req.Body != nil {
			req.Body.Close()
		}
		return nil, false, err
	}
	if err := ctx.Err(); err != nil {
		return refuse(err)
	}
	probe, retryAfter, ok := t.breaker.allow(t.now())
	if !ok {
		t.observe(req, "circuit_open", 0)
		return refuse(&CircuitOpenError{RetryAfter: retryAfter})
	}
	if t.budget != nil {
		d, err := t.budget.Admit(ctx, call.Key, class, call.Priority)
		if err != nil {
			t.breaker.done(t.now(), probe, neither)
			return refuse(fmt.Errorf("upstream: admitting call: %w", err))
		}
		if !d.Allowed {
			t.breaker.done(t.now(), probe, neither)
			if t.obs != nil {
				reason := "budget"
				if d.Cooldown {
					reason = "cooldown"
				}
				t.obs.QuotaRefused(string(class), call.Priority.String(), reason)
			}
			t.observe(req, "budget_refused", 0)
			return refuse(&BudgetError{RetryAfter: d.RetryAfter, Cooldown: d.Cooldown, Class: class})
		}
	}

	resp, err = t.send(req)
	switch {
	case err != nil && contextError(ctx, err):
		t.breaker.done(t.now(), probe, neither)
		return nil, true, err
	case err != nil:
		t.breaker.done(t.now(), probe, failure)
		return nil, true, err
	case resp.StatusCode >= 500:
		t.breaker.done(t.now(), probe, failure)
	default:
		t.breaker.done(t.now(), probe, success)
	}
	t.learn(ctx, resp, call, class)
	return resp, true, nil
}

// learn reports Podio's rate-limit headers and 420s to the budget. Budget errors are logged, not
// returned: the caller's answer from Podio is still good.
func (t *Transport) learn(ctx context.Context, resp *http.Response, call Call, class quota.Class) {
	if t.budget == nil {
		return
	}
	// A 420's remaining count is 0 until Podio's window resets, which it does not reveal; the
	// wait it names (the cooldown below) says when to call again, so it is not recorded.
	if v := resp.Header.Get("X-Rate-Limit-Remaining"); v != "" && resp.StatusCode != 420 {
		if n, err := strconv.Atoi(strings.TrimSpace(v)); err == nil {
			if t.obs != nil {
				t.obs.QuotaRemaining(string(class), n)
			}
			if err := t.budget.Observe(ctx, call.Key, class, n); err != nil {
				t.log.WarnContext(ctx, "upstream: recording podio rate limit remaining failed", "err", err)
			}
		}
	}
	if resp.StatusCode != 420 {
		return
	}
	wait := t.rateLimitWait(resp)
	t.log.WarnContext(ctx, "upstream: podio rate limited the key", "client_id", call.Key.ClientID,
		"user_id", call.Key.UserID, "class", string(class), "wait", wait)
	if t.obs != nil {
		t.obs.QuotaCooldown()
	}
	if err := t.budget.Cooldown(ctx, call.Key, wait); err != nil {
		t.log.WarnContext(ctx, "upstream: recording podio rate limit cooldown failed", "err", err)
	}
}

// send makes one call through Base and reports it to the Observer.
func (t *Transport) send(req *http.Request) (*http.Response, error) {
	if t.obs == nil {
		return t.base.RoundTrip(req)
	}
	start := t.now()
	resp, err := t.base.RoundTrip(req)
	status := "error"
	if err == nil {
		status = strconv.Itoa(resp.StatusCode)
	}
	t.observe(req, status, t.now().Sub(start))
	return resp, err
}

// observe reports one call (or refusal) of req to the Observer.
func (t *Transport) observe(req *http.Request, status string, d time.Duration) {
	if t.obs == nil {
		return
	}
	p := req.URL.EscapedPath()
	if t.basePath != "" && strings.HasPrefix(p, t.basePath+"/") {
		p = p[len(t.basePath):]
	}
	t.obs.UpstreamCall(Operation(req.Method, p), status, d)
}

// Operation names a Podio call for metrics and spans, from a closed set: a standard method (else
// "OTHER") and the path with every segment that is not a word of Podio's route vocabulary
// replaced by {id}, at most maxOperationDepth segments deep, so that no id, email, token or
// made-up path reaches a label: Operation("GET", "/org/12/member/") is "GET /org/{id}/member/".
func Operation(method, escapedPath string) string {
	method = strings.ToUpper(method)
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions:
	default:
		method = "OTHER"
	}
	segs := strings.Split(escapedPath, "/")
	if len(segs) > maxOperationDepth+1 { // +1: the empty segment before the leading slash
		segs = append(segs[:maxOperationDepth+1], "...")
	}
	for i, s := range segs {
		if s != "" && s != "..." && !podioWords[s] {
			segs[i] = "{id}"
		}
	}
	return method + " " + strings.Join(segs, "/")
}

// maxOperationDepth bounds the path segments an operation label keeps; Podio's deepest routes
// have six.
const maxOperationDepth = 8

// podioWords are the fixed path segments of Podio's API (podio-api.md and the official SDKs'
// routes): the only segments an operation label keeps as they are.
var podioWords = func() map[string]bool {
	m := map[string]bool{}
	for w := range strings.FieldsSeq(`oauth token v2 authorize scope grant invalidate mfa verify
		user status profile contact org space app item file task comment hook search
		url shared member mail end_member_info space_member admin role membership-type leave join
		all_spaces available invite member_request accept ended total light regular guest
		request validate app_field view filter count totals external_id field
		notification stream embed conversation reference tag rating subscription
		`) {
		m[w] = true
	}
	return m
}()

// rateLimitWait finds how long Podio wants the key to wait after a 420, reading at most
// maxBodyPeek of the body and giving the whole body back to the caller.
func (t *Transport) rateLimitWait(resp *http.Response) time.Duration {
	if resp.Body != nil && resp.Body != http.NoBody {
		buf, _ := io.ReadAll(io.LimitReader(resp.Body, maxBodyPeek))
		body := resp.Body
		resp.Body = struct {
			io.Reader
			io.Closer
		}{io.MultiReader(bytes.NewReader(buf), body), body}
		if m := pleaseWait.FindSubmatch(buf); m != nil {
			if d, ok := seconds(string(m[1])); ok {
				return d
			}
		}
	}
	if d, ok := seconds(resp.Header.Get("Retry-After")); ok {
		return d
	}
	return t.defaultCooldown
}

// seconds parses a positive number of seconds, capped at maxCooldown.
func seconds(s string) (time.Duration, bool) {
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil || n <= 0 {
		return 0, false
	}
	if n > int64(maxCooldown/time.Second) {
		return maxCooldown, true
	}
	return time.Duration(n) * time.Second, true
}

// backoff is the full-jitter wait before retry n (1-based).
func (t *Transport) backoff(n int) time.Duration {
	d := t.baseBackoff
	for i := 1; i < n && d < t.maxBackoff; i++ {
		d *= 2
	}
	d = min(d, t.maxBackoff)
	return time.Duration(t.rand() * float64(d))
}

// Class is the quota class of a call: RateLimited when "METHOD template(path)" is one of
// Options.RateLimitedRoutes, General otherwise. escapedPath is the request path including
// Options.BasePath.
func (t *Transport) Class(method, escapedPath string) quota.Class {
	if len(t.routes) == 0 {
		return quota.General
	}
	p := escapedPath
	if t.basePath != "" && strings.HasPrefix(p, t.basePath+"/") {
		p = p[len(t.basePath):]
	}
	if t.routes[strings.ToUpper(method)+" "+template(p)] {
		return quota.RateLimited
	}
	return quota.General
}

// template replaces the numeric segments of path with {id}.
func template(path string) string {
	segs := strings.Split(path, "/")
	for i, s := range segs {
		if s != "" && strings.Trim(s, "0123456789") == "" {
			segs[i] = "{id}"
		}
	}
	return strings.Join(segs, "/")
}

// isTokenPath reports whether path is Podio's OAuth token endpoint.
func isTokenPath(path string) bool {
	path = strings.TrimSuffix(path, "/")
	return strings.HasSuffix(path, "/oauth/token") || strings.HasSuffix(path, "/oauth/token/v2")
}

// idempotent reports whether sending req twice does no more than sending it once: GET, HEAD,
// PUT and DELETE. POST and PATCH are not, whatever headers they carry: Podio documents no
// deduplication (an Idempotency-Key sent along is not known to be honoured), so a write that may
// have reached Podio is never sent again (see neverSent).
func idempotent(req *http.Request) bool {
	switch req.Method {
	case "", http.MethodGet, http.MethodHead, http.MethodPut, http.MethodDelete:
		return true
	}
	return false
}

// neverSent reports a failure that provably happened before any byte of the request left: the
// connection to Podio could not be made (a refused or failed dial, a name that does not resolve).
// Only such a failure lets a non-idempotent call be retried.
func neverSent(err error) bool {
	if err == nil {
		return false
	}
	if _, ok := errors.AsType[*net.DNSError](err); ok {
		return true
	}
	oe, ok := errors.AsType[*net.OpError](err)
	return ok && oe.Op == "dial"
}

// retryableResult reports whether an attempt's result is worth retrying: a network error that is
// not the caller's cancellation, or a gateway-class 5xx. 500 is not: Podio answers it for bugs a
// retry repeats.
func retryableResult(ctx context.Context, resp *http.Response, err error) bool {
	if err != nil {
		return !contextError(ctx, err)
	}
	switch resp.StatusCode {
	case http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return false
}

// contextError reports whether err comes from the caller's context rather than from Podio.
func contextError(ctx context.Context, err error) bool {
	return ctx.Err() != nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// drain reads a little of body and closes it, so the connection can be reused.
func drain(body io.ReadCloser) {
	if body == nil {
		return
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(body, maxDrain))
	_ = body.Close()
}

// sleep waits d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-tm.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
