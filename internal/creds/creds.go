package creds

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/dirgate/dirgate/adapters/podio"
	"github.com/dirgate/dirgate/internal/store"
	"github.com/dirgate/dirgate/unified"
)

// Defaults for Options.
const (
	DefaultMargin   = 15 * time.Minute
	DefaultLockTTL  = 15 * time.Second
	DefaultLockWait = 20 * time.Second
)

// Lock polling backoff bounds (jittered, doubling).
const (
	minLockBackoff = 5 * time.Millisecond
	maxLockBackoff = 200 * time.Millisecond
)

// saveAttempts bounds how often a refreshed token is written when Redis fails: after a rotating
// refresh the new refresh token may be the only valid one, so losing it costs a re-link.
const saveAttempts = 3

// Refresher exchanges a refresh token for new tokens (refresh_token grant).
// *podio.OAuthService implements it.
type Refresher interface {
	Refresh(ctx context.Context, refreshToken string) (*podio.Token, error)
}

var _ Refresher = (*podio.OAuthService)(nil)

// Options configures a Manager.
type Options struct {
	// Store holds the accounts and their credentials. Required.
	Store *store.Store
	// Refresher calls Podio's token endpoint. Required.
	Refresher Refresher
	// Margin: refresh proactively when less than this is left of the access token; default 15m.
	Margin time.Duration
	// LockTTL is how long the refresh lock lives if its holder dies; default 15s, longer than a
	// Podio token call's timeout.
	LockTTL time.Duration
	// LockWait is how long a caller waits for another replica's refresh; default 20s, and never
	// longer than the caller's context allows.
	LockWait time.Duration
	// Now is the clock used for token expiry; nil means time.Now.
	Now func() time.Time
	// Logger receives refresh events (never token values); nil discards them.
	Logger *slog.Logger
	// OnNeedsReauth is told when this manager marks an account needs_reauth (Podio refused its
	// refresh token); nil: nobody is told.
	OnNeedsReauth func(ctx context.Context, a store.Account)
	// OnRefresh is told the outcome of each refresh this manager makes with Podio: "success",
	// "failure" or "invalid_grant" (metrics); nil: nobody is told.
	OnRefresh func(outcome string)
}

// Manager supplies access tokens for integrated accounts and coordinates their refresh. It is
// safe for concurrent use; create one per process.
type Manager struct {
	store     *store.Store
	refresher Refresher
	margin    time.Duration
	lockTTL   time.Duration
	lockWait  time.Duration
	now       func() time.Time
	log       *slog.Logger
	// onNeedsReauth: see Options.OnNeedsReauth.
	onNeedsReauth func(ctx context.Context, a store.Account)
	onRefresh     func(outcome string)

	mu      sync.Mutex
	flights map[string]*flight

	// known holds each account's last access token read from the store, in memory only, so that
	// reads keep working while Redis is unreachable (see Token).
	known *store.Memo[*podio.Token]
}

// maxKnown bounds the access tokens kept in memory for Redis outages.
const maxKnown = 10000

// flight is one in-process refresh that every local caller for the account shares.
type flight struct {
	done chan struct{}
	tok  *podio.Token
	err  error
}

// New returns a Manager; zero options get their defaults.
func New(opts Options) *Manager {
	m := &Manager{
		store:     opts.Store,
		refresher: opts.Refresher,
		margin:    opts.Margin,
		lockTTL:   opts.LockTTL,
		lockWait:  opts.LockWait,
		now:       opts.Now,
		log:       opts.Logger,
		flights:   map[string]*flight{},
		known:     store.NewMemo[*podio.Token](maxKnown, "access tokens", opts.Logger),

		onNeedsReauth: opts.OnNeedsReauth,
		onRefresh:     opts.OnRefresh,
	}
	if m.margin <= 0 {
		m.margin = DefaultMargin
	}
	if m.lockTTL <= 0 {
		m.lockTTL = DefaultLockTTL
	}
	if m.lockWait <= 0 {
		m.lockWait = DefaultLockWait
	}
	if m.now == nil {
		m.now = time.Now
	}
	if m.log == nil {
		m.log = slog.New(slog.DiscardHandler)
	}
	return m
}

// TokenSource returns the podio.TokenSource of one account of one tenant. It is cheap; create one
// per request if convenient.
//
// Token returns the stored access token, refreshed first when less than Margin is left; an
// account that is not active fails with unified.ErrNeedsReauth, and an account of another tenant
// with unified.ErrNotFound. The returned tokens carry no refresh token: the refresh token never
// leaves this package and the store.
func (m *Manager) TokenSource(tenant, accountID string) podio.TokenSource {
	return &tokenSource{m: m, tenant: tenant, id: accountID}
}

type tokenSource struct {
	m          *Manager
	tenant, id string
}

var _ podio.TokenSource = (*tokenSource)(nil)

// Token implements podio.TokenSource (see Manager.TokenSource).
func (ts *tokenSource) Token(ctx context.Context) (*podio.Token, error) {
	m := ts.m
	a, c, err := m.store.LoadCredentials(ctx, ts.tenant, ts.id)
	if err != nil {
		// Redis being down must not stop reads Podio can answer: the last access token read
		// serves until it expires. A refresh still needs Redis (it must happen once).
		if t, ok := m.known.Fallback(ctx, ts.key(), err); ok && (t.Expiry.IsZero() || t.Expiry.After(m.now())) {
			return t, nil
		}
		return nil, fmt.Errorf("creds: %w", err)
	}
	if err := usable(a); err != nil {
		m.known.Forget(ts.key())
		return nil, err
	}
	cur := token(a, c)
	m.known.Remember(ctx, ts.key(), cur)
	if !m.expiring(c) {
		return cur, nil
	}
	fresh, err := m.refresh(ctx, ts.tenant, ts.id, cur)
	if err == nil {
		return fresh, nil
	}
	if errors.Is(err, unified.ErrNeedsReauth) || ctx.Err() != nil || !c.Expiry.After(m.now()) {
		return nil, err
	}
	// A proactive refresh failed (Podio or Redis trouble) but the token is still valid: use it
	// and let the next call or a 401 try again.
	m.log.WarnContext(ctx, "proactive token refresh failed; using the current token",
		"tenant", ts.tenant, "account", ts.id, "expires_in", c.Expiry.Sub(m.now()).Round(time.Second), "err", err)
	return cur, nil
}

// key names the account in the manager's memory.
func (ts *tokenSource) key() string { return ts.tenant + "/" + ts.id }

// Refresh implements podio.TokenSource: called by the Podio client after a 401 expired_token.
func (ts *tokenSource) Refresh(ctx context.Context, stale *podio.Token) (*podio.Token, error) {
	return ts.m.refresh(ctx, ts.tenant, ts.id, stale)
}

// usable fails for accounts whose credentials must not be used.
func usable(a store.Account) error {
	if a.Status != store.StatusActive {
		return fmt.Errorf("creds: account %q is %s: %w", a.ID, a.Status, unified.ErrNeedsReauth)
	}
	return nil
}

// expiring reports whether less than the margin is left of the access token. An unknown expiry
// never triggers a proactive refresh; a 401 still does.
func (m *Manager) expiring(c store.Credentials) bool {
	return !c.Expiry.IsZero() && c.Expiry.Sub(m.now()) < m.margin
}

// replaced reports whether the stored credentials c already replace stale (someone else
// refreshed) and are good to use.
func (m *Manager) replaced(c store.Credentials, stale *podio.Token) bool {
	if m.expiring(c) {
		return false
	}
	return stale == nil || c.AccessToken != stale.AccessToken
}

// token converts stored credentials to the token handed to the Podio client, without the
// refresh token.
func token(a store.Account, c store.Credentials) *podio.Token {
	ref := podio.Ref{Type: "user", ID: a.PodioUserID}
	if a.GrantType == "app" {
		ref.Type = "app"
	}
	return &podio.Token{AccessToken: c.AccessToken, TokenType: "bearer", Expiry: c.Expiry, Scope: c.Scope, Ref: ref}
}

// refresh joins or starts the account's in-process refresh and waits for it or for ctx.
func (m *Manager) refresh(ctx context.Context, tenant, id string, stale *podio.Token) (*podio.Token, error) {
	key := tenant + "\x00" + id
	m.mu.Lock()
	f, ok := m.flights[key]
	if !ok {
		f = &flight{done: make(chan struct{})}
		m.flights[key] = f
		// The refresh runs detached from this caller, so that one caller giving up does not fail
		// the others sharing it; it is bounded by the lock wait plus one lock lifetime.
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), m.lockWait+m.lockTTL)
		go func() {
			defer cancel()
			f.tok, f.err = m.refreshAcrossReplicas(fctx, tenant, id, stale)
			m.mu.Lock()
			delete(m.flights, key)
			m.mu.Unlock()
			close(f.done)
		}()
	}
	m.mu.Unlock()
	select {
	case <-f.done:
		if f.err != nil {
			return nil, f.err
		}
		cp := *f.tok
		return &cp, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// refreshAcrossReplicas takes the account's Redis lock (or sees another replica's result while
// waiting for it), re-reads, and refreshes only if the stored token is still the stale one.
func (m *Manager) refreshAcrossReplicas(ctx context.Context, tenant, id string, stale *podio.Token) (*podio.Token, error) {
	lock, tok, err := m.lockOrResult(ctx, tenant, id, stale)
	if err != nil || tok != nil {
		return tok, err
	}
	defer func() {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
		defer cancel()
		if err := lock.Release(rctx); err != nil {
			m.log.DebugContext(ctx, "refresh lock not released (expired?)", "tenant", tenant, "account", id, "err", err)
		}
	}()
	// Re-read under the lock: another replica may have refreshed between our read and the lock.
	a, c, err := m.store.LoadCredentials(ctx, tenant, id)
	if err != nil {
		return nil, fmt.Errorf("creds: %w", err)
	}
	if err := usable(a); err != nil {
		return nil, err
	}
	if m.replaced(c, stale) {
		return token(a, c), nil
	}
	return m.refreshLocked(ctx, tenant, id, a, c, true)
}

// lockOrResult polls for the refresh lock with jittered backoff for up to LockWait. While another
// replica holds it, it re-reads the credentials and returns them as soon as they replace stale.
func (m *Manager) lockOrResult(ctx context.Context, tenant, id string, stale *podio.Token) (store.Lock, *podio.Token, error) {
	wctx, cancel := context.WithTimeout(ctx, m.lockWait)
	defer cancel()
	backoff := minLockBackoff
	timer := time.NewTimer(0)
	<-timer.C
	defer timer.Stop()
	for {
		lock, err := m.store.ObtainRefreshLock(wctx, id, m.lockTTL)
		if err == nil {
			return lock, nil, nil
		}
		if !errors.Is(err, store.ErrLockHeld) {
			return nil, nil, fmt.Errorf("creds: account %q: refresh lock: %w", id, err)
		}
		a, c, err := m.store.LoadCredentials(wctx, tenant, id)
		if err != nil {
			return nil, nil, fmt.Errorf("creds: waiting for refresh: %w", err)
		}
		if err := usable(a); err != nil {
			return nil, nil, err
		}
		if m.replaced(c, stale) {
			return nil, token(a, c), nil
		}
		timer.Reset(backoff/2 + rand.N(backoff/2+1))
		select {
		case <-timer.C:
		case <-wctx.Done():
			return nil, nil, fmt.Errorf("creds: account %q: gave up waiting for another replica's token refresh: %w", id, wctx.Err())
		}
		backoff = min(2*backoff, maxLockBackoff)
	}
}

// refreshLocked calls Podio with the stored refresh token and stores the result with a
// compare-and-set on the version read under the lock. retry allows one more attempt with a
// refresh token another replica stored meanwhile.
func (m *Manager) refreshLocked(ctx context.Context, tenant, id string, a store.Account, c store.Credentials, retry bool) (*podio.Token, error) {
	tok, err := m.refresher.Refresh(ctx, c.RefreshToken)
	if err != nil {
		if !isInvalidGrant(err) {
			m.log.WarnContext(ctx, "token refresh failed", "tenant", tenant, "account", id, "err", err)
			m.refreshFailed(ctx, tenant, id, "failure", refreshErrorCode(ctx, err))
			return nil, fmt.Errorf("creds: account %q: refreshing access token: %w", id, err)
		}
		m.refreshFailed(ctx, tenant, id, "invalid_grant", "invalid_grant")
		return m.invalidGrant(ctx, tenant, id, a, c, retry)
	}
	if tok == nil || tok.AccessToken == "" {
		m.refreshFailed(ctx, tenant, id, "failure", "no_access_token")
		return nil, fmt.Errorf("creds: account %q: refresh returned no access token", id)
	}
	m.told("success")
	nc := store.Credentials{AccessToken: tok.AccessToken, RefreshToken: tok.RefreshToken, Expiry: tok.Expiry, Scope: tok.Scope}
	if nc.RefreshToken == "" {
		nc.RefreshToken = c.RefreshToken
	}
	if nc.Scope == "" {
		nc.Scope = c.Scope
	}
	saved, err := m.save(ctx, tenant, id, a.Version, nc)
	if errors.Is(err, unified.ErrConflict) {
		// Someone stored newer credentials while Podio answered (our lock expired, or the account
		// was linked again). Theirs win; ours are dropped unused.
		m.log.WarnContext(ctx, "refreshed token discarded: credentials changed meanwhile", "tenant", tenant, "account", id, "version", a.Version)
		a2, c2, lerr := m.store.LoadCredentials(ctx, tenant, id)
		if lerr == nil && usable(a2) == nil && !m.expiring(c2) {
			return token(a2, c2), nil
		}
		return nil, fmt.Errorf("creds: account %q: %w", id, err)
	}
	if err != nil {
		return nil, fmt.Errorf("creds: account %q: storing refreshed token: %w", id, err)
	}
	m.log.InfoContext(ctx, "access token refreshed", "tenant", tenant, "account", id, "version", saved.Version, "expiry", nc.Expiry)
	return token(saved, nc), nil
}

// told tells OnRefresh of an outcome.
func (m *Manager) told(outcome string) {
	if m.onRefresh != nil {
		m.onRefresh(outcome)
	}
}

// refreshFailed reports a failed refresh and records it on the account (its health), with a
// context that outlives a canceled caller: the failure is what an operator needs to see.
func (m *Manager) refreshFailed(ctx context.Context, tenant, id, outcome, code string) {
	m.told(outcome)
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	if err := m.store.RecordRefreshFailure(rctx, tenant, id, m.now(), code); err != nil {
		m.log.WarnContext(ctx, "recording the refresh failure failed", "tenant", tenant, "account", id, "err", err)
	}
}

// refreshErrorCode is a short, secret-free code for a failed refresh.
func refreshErrorCode(ctx context.Context, err error) string {
	if ctx.Err() != nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return "timeout"
	}
	if errors.Is(err, unified.ErrRateLimited) {
		return "rate_limited"
	}
	if status := unified.ProviderStatus(err); status != 0 {
		if status >= 500 {
			return "podio_unavailable"
		}
		return fmt.Sprintf("podio_%d", status)
	}
	return "network"
}

// save writes refreshed credentials, retrying transient Redis failures with a context that
// outlives the caller's: after a rotating refresh, this write is what keeps the account usable.
func (m *Manager) save(ctx context.Context, tenant, id string, version int64, c store.Credentials) (store.Account, error) {
	var err error
	for attempt := range saveAttempts {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		var a store.Account
		a, err = m.store.SaveCredentials(sctx, tenant, id, version, c, true)
		cancel()
		if err == nil || errors.Is(err, unified.ErrConflict) || errors.Is(err, unified.ErrNotFound) || errors.Is(err, unified.ErrInvalidInput) {
			return a, err
		}
		m.log.WarnContext(ctx, "storing refreshed token failed", "tenant", tenant, "account", id, "attempt", attempt+1, "err", err)
	}
	return store.Account{}, err
}

// invalidGrant handles a refused refresh token: re-read once, and use or retry with what another
// replica stored; else mark the account needs_reauth.
func (m *Manager) invalidGrant(ctx context.Context, tenant, id string, a store.Account, c store.Credentials, retry bool) (*podio.Token, error) {
	a2, c2, err := m.store.LoadCredentials(ctx, tenant, id)
	if err != nil {
		return nil, fmt.Errorf("creds: account %q: re-reading after refused refresh token: %w", id, err)
	}
	if err := usable(a2); err != nil {
		return nil, err
	}
	if a2.Version != a.Version || c2.RefreshToken != c.RefreshToken {
		// Another replica rotated the refresh token meanwhile.
		if !m.expiring(c2) {
			m.log.InfoContext(ctx, "refresh token was rotated by another replica; using its token", "tenant", tenant, "account", id)
			return token(a2, c2), nil
		}
		if retry {
			return m.refreshLocked(ctx, tenant, id, a2, c2, false)
		}
	}
	marked, err := m.store.SetStatusIfVersion(ctx, tenant, id, store.StatusNeedsReauth, a2.Version)
	switch {
	case err == nil:
		m.log.WarnContext(ctx, "refresh token refused by Podio; account needs re-authorization", "tenant", tenant, "account", id)
		if m.onNeedsReauth != nil {
			m.onNeedsReauth(ctx, marked)
		}
	case errors.Is(err, unified.ErrConflict):
		// Replaced meanwhile (a re-link): use the new credentials if they are good.
		if a3, c3, lerr := m.store.LoadCredentials(ctx, tenant, id); lerr == nil && usable(a3) == nil && !m.expiring(c3) {
			return token(a3, c3), nil
		}
	default:
		m.log.ErrorContext(ctx, "marking account needs_reauth failed", "tenant", tenant, "account", id, "err", err)
	}
	return nil, fmt.Errorf("creds: account %q: Podio refused the refresh token: %w", id, unified.ErrNeedsReauth)
}

// isInvalidGrant: the provider refused the refresh token itself (not a wrapped verdict of ours).
func isInvalidGrant(err error) bool {
	_, answered := errors.AsType[unified.ProviderError](err)
	return answered && errors.Is(err, unified.ErrNeedsReauth)
}
