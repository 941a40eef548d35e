package creds_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dirgate/dirgate/adapters/podio"
	"github.com/dirgate/dirgate/adapters/podio/podiosim"
	"github.com/dirgate/dirgate/internal/creds"
	"github.com/dirgate/dirgate/internal/store"
	"github.com/dirgate/dirgate/unified"
)

// TestMultiReplicaRefreshExactlyOnce is the headline: three replicas, 300 concurrent API calls on
// an account whose access token has expired, with refresh-token rotation on. Podio's token
// endpoint must be called exactly once and every call must succeed; 50 rounds, fresh account each.
func TestMultiReplicaRefreshExactlyOnce(t *testing.T) {
	const (
		replicas = 3
		perRep   = 100
		rounds   = 50
	)
	e := newEnv(t, replicas)
	mgrs := make([]*creds.Manager, replicas)
	for i := range mgrs {
		mgrs[i] = e.manager(t, i, creds.Options{})
	}
	start := time.Now()
	var secrets []string
	for round := range rounds {
		a, issued := e.newAccount(t, "tenant-multi")
		secrets = append(secrets, issued.AccessToken, issued.RefreshToken)
		e.sim.Advance(8*time.Hour + time.Minute) // the access token is now expired
		before := e.tokenCalls()

		var failed atomic.Int64
		var firstErr sync.Once
		var wg sync.WaitGroup
		for r := range replicas {
			client := e.podioClient(t, mgrs[r].TokenSource("tenant-multi", a.ID))
			for i := range perRep {
				wg.Go(func() {
					var err error
					// Mostly the cheap GET /user/; GET /org/ decodes a large body and would
					// spend the time budget on JSON under -race rather than on the refresh.
					if i%20 == 0 {
						_, _, err = client.Orgs.List(t.Context())
					} else {
						_, _, err = client.Users.Get(t.Context())
					}
					if err != nil {
						failed.Add(1)
						firstErr.Do(func() { t.Errorf("round %d replica %d: %v", round, r, err) })
					}
				})
			}
		}
		wg.Wait()
		if n := failed.Load(); n > 0 {
			t.Fatalf("round %d: %d of %d calls failed", round, n, replicas*perRep)
		}
		if got := e.tokenCalls() - before; got != 1 {
			t.Fatalf("round %d: token endpoint called %d times, want exactly 1", round, got)
		}
		acct, c := e.load(t, "tenant-multi", a.ID)
		if acct.Version != 2 || c.RefreshToken == issued.RefreshToken || acct.LastRefreshedAt.IsZero() {
			t.Fatalf("round %d: stored version %d, refresh token rotated=%v", round, acct.Version, c.RefreshToken != issued.RefreshToken)
		}
		secrets = append(secrets, c.AccessToken, c.RefreshToken)
	}
	t.Logf("%d rounds x %d calls on %d replicas in %s", rounds, replicas*perRep, replicas, time.Since(start).Round(time.Millisecond))
	e.assertNoSecretsLogged(t, secrets...)
}

// TestLockHolderDies: a replica took the refresh lock and died. Callers wait for the lock to
// expire; then exactly one replica refreshes, with no invalid_grant, and stores the rotated token.
func TestLockHolderDies(t *testing.T) {
	e := newEnv(t, 3)
	mgrs := make([]*creds.Manager, 3)
	for i := range mgrs {
		mgrs[i] = e.manager(t, i, creds.Options{})
	}
	a, issued := e.newAccount(t, "tenant-dead")
	e.sim.Advance(8*time.Hour + time.Minute)

	// The dead replica: takes the lock with a short TTL and never releases it.
	if _, err := e.stores[0].ObtainRefreshLock(t.Context(), a.ID, 300*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	before := e.tokenCalls()
	var wg sync.WaitGroup
	for i := range 30 {
		client := e.podioClient(t, mgrs[i%3].TokenSource("tenant-dead", a.ID))
		wg.Go(func() {
			if _, _, err := client.Users.Get(t.Context()); err != nil {
				t.Errorf("call %d: %v", i, err)
			}
		})
	}
	wg.Wait()
	if got := e.tokenCalls() - before; got != 1 {
		t.Fatalf("token endpoint called %d times, want 1", got)
	}
	acct, c := e.load(t, "tenant-dead", a.ID)
	if acct.Status != store.StatusActive || acct.Version != 2 || c.RefreshToken == issued.RefreshToken {
		t.Fatalf("after refresh: status %s version %d rotated=%v", acct.Status, acct.Version, c.RefreshToken != issued.RefreshToken)
	}
	if logs := e.logs.String(); strings.Contains(logs, "refused") || strings.Contains(logs, "discarded") {
		t.Fatalf("a replica hit invalid_grant or a conflict:\n%s", logs)
	}
	// The stored refresh token is the live one; the original was rotated away.
	oauth := e.podioClient(t, nil).OAuth
	if _, err := oauth.Refresh(t.Context(), issued.RefreshToken); !isInvalidGrant(err) {
		t.Fatalf("original refresh token: err = %v, want invalid_grant", err)
	}
	if _, err := oauth.Refresh(t.Context(), c.RefreshToken); err != nil {
		t.Fatalf("stored refresh token does not work: %v", err)
	}
}

// blockingRefresher simulates a slow replica: it signals when called, then waits for release
// before answering with its own (late) tokens.
type blockingRefresher struct {
	entered, release chan struct{}
	once             sync.Once
	sim              *podiosim.Server
}

func (b *blockingRefresher) Refresh(ctx context.Context, _ string) (*podio.Token, error) {
	b.once.Do(func() { close(b.entered) })
	select {
	case <-b.release:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return &podio.Token{AccessToken: "slow-access", RefreshToken: "slow-refresh", Expiry: b.sim.Now().Add(8 * time.Hour)}, nil
}

// TestSlowWriterCannotOverwrite: replica A read version 1, its lock expired while Podio was slow,
// and replica B refreshed and stored version 2 meanwhile. A's write must be refused and A must hand
// out B's token; the stored refresh token stays B's.
func TestSlowWriterCannotOverwrite(t *testing.T) {
	e := newEnv(t, 2)
	slow := &blockingRefresher{entered: make(chan struct{}), release: make(chan struct{}), sim: e.sim}
	mgrA := e.manager(t, 0, creds.Options{Refresher: slow, LockTTL: 200 * time.Millisecond})
	mgrB := e.manager(t, 1, creds.Options{})
	a, issued := e.newAccount(t, "tenant-slow")
	e.sim.Advance(8*time.Hour + time.Minute)

	type result struct {
		tok *podio.Token
		err error
	}
	resA := make(chan result, 1)
	go func() {
		tok, err := mgrA.TokenSource("tenant-slow", a.ID).Token(t.Context())
		resA <- result{tok, err}
	}()
	<-slow.entered // A holds the lock (200 ms) and waits on "Podio"

	tokB, err := mgrB.TokenSource("tenant-slow", a.ID).Token(t.Context()) // waits for A's lock to expire
	if err != nil {
		t.Fatal(err)
	}
	afterB, cB := e.load(t, "tenant-slow", a.ID)
	if afterB.Version != 2 || cB.AccessToken != tokB.AccessToken {
		t.Fatalf("B stored version %d", afterB.Version)
	}
	close(slow.release)
	ra := <-resA
	if ra.err != nil {
		t.Fatalf("A: %v", ra.err)
	}
	if ra.tok.AccessToken != tokB.AccessToken {
		t.Fatalf("A handed out its own late token instead of B's stored one")
	}
	final, c := e.load(t, "tenant-slow", a.ID)
	if final.Version != 2 || c.RefreshToken != cB.RefreshToken || c.RefreshToken == "slow-refresh" {
		t.Fatalf("slow writer overwrote the stored credentials (version %d)", final.Version)
	}
	if got := e.tokenCalls(); got != 1 {
		t.Fatalf("token endpoint called %d times, want 1 (B only)", got)
	}
	if !strings.Contains(e.logs.String(), "refreshed token discarded") {
		t.Errorf("A's conflict was not logged:\n%s", e.logs.String())
	}
	e.assertNoSecretsLogged(t, issued.AccessToken, issued.RefreshToken, c.AccessToken, c.RefreshToken, "slow-access", "slow-refresh")
}

func isInvalidGrant(err error) bool {
	pe, ok := errors.AsType[*podio.Error](err)
	return ok && pe.IsInvalidGrant()
}

// TestInvalidGrantNeedsReauth: the refresh token was rotated behind the store's back, so Podio
// refuses it; the account becomes needs_reauth and stays so, without further Podio calls, until
// it is linked again.
func TestInvalidGrantNeedsReauth(t *testing.T) {
	e := newEnv(t, 1)
	mgr := e.manager(t, 0, creds.Options{})
	a, issued := e.newAccount(t, "tenant-ig")
	if _, err := e.podioClient(t, nil).OAuth.Refresh(t.Context(), issued.RefreshToken); err != nil {
		t.Fatal(err) // rotated; the stored refresh token is now invalid
	}
	e.sim.Advance(8*time.Hour + time.Minute)
	client := e.podioClient(t, mgr.TokenSource("tenant-ig", a.ID))

	_, _, err := client.Users.Get(t.Context())
	if !errors.Is(err, unified.ErrNeedsReauth) {
		t.Fatalf("Users.Get err = %v, want ErrNeedsReauth", err)
	}
	for _, s := range []string{issued.AccessToken, issued.RefreshToken} {
		if strings.Contains(err.Error(), s) {
			t.Fatal("the error text contains a token")
		}
	}
	if acct, _ := e.load(t, "tenant-ig", a.ID); acct.Status != store.StatusNeedsReauth {
		t.Fatalf("status = %s, want needs_reauth", acct.Status)
	}
	calls := e.tokenCalls()
	if _, err := mgr.TokenSource("tenant-ig", a.ID).Token(t.Context()); !errors.Is(err, unified.ErrNeedsReauth) {
		t.Fatalf("Token err = %v, want ErrNeedsReauth", err)
	}
	if _, err := mgr.TokenSource("tenant-ig", a.ID).Refresh(t.Context(), nil); !errors.Is(err, unified.ErrNeedsReauth) {
		t.Fatalf("Refresh err = %v, want ErrNeedsReauth", err)
	}
	if got := e.tokenCalls(); got != calls {
		t.Fatalf("a needs_reauth account still called the token endpoint (%d times)", got-calls)
	}

	// Re-link: active again, and calls work.
	fresh, err := e.sim.IssueToken("demo-client", "admin@demo.example")
	if err != nil {
		t.Fatal(err)
	}
	re, err := e.stores[0].Reauthorize(t.Context(), "tenant-ig", a.ID, store.Credentials{
		AccessToken: fresh.AccessToken, RefreshToken: fresh.RefreshToken,
		Expiry: e.sim.Now().Add(8 * time.Hour), Scope: "global:all",
	}, "Admin", "admin@demo.example", fresh.UserID)
	if err != nil || re.Status != store.StatusActive {
		t.Fatalf("Reauthorize = %+v, %v", re, err)
	}
	if _, _, err := client.Users.Get(t.Context()); err != nil {
		t.Fatalf("after re-link: %v", err)
	}
	e.assertNoSecretsLogged(t, issued.AccessToken, issued.RefreshToken, fresh.AccessToken, fresh.RefreshToken)
}

// racingRefresher plays "another replica rotated the token while we were calling Podio": before
// delegating with the (now stale) refresh token it refreshes the stored one itself and saves the
// result, as the other replica would have.
type racingRefresher struct {
	t       *testing.T
	e       *env
	tenant  string
	id      string
	expired bool // store the other replica's token as already expiring
	once    sync.Once
	inner   simRefresher
}

func (r *racingRefresher) Refresh(ctx context.Context, refreshToken string) (*podio.Token, error) {
	r.once.Do(func() {
		a, c, err := r.e.stores[0].LoadCredentials(ctx, r.tenant, r.id)
		if err != nil {
			r.t.Error(err)
			return
		}
		tok, err := r.inner.Refresh(ctx, c.RefreshToken)
		if err != nil {
			r.t.Error(err)
			return
		}
		exp := tok.Expiry
		if r.expired {
			exp = r.e.sim.Now().Add(-time.Minute)
		}
		if _, err := r.e.stores[0].SaveCredentials(ctx, r.tenant, r.id, a.Version,
			store.Credentials{AccessToken: tok.AccessToken, RefreshToken: tok.RefreshToken, Expiry: exp}, true); err != nil {
			r.t.Error(err)
		}
	})
	return r.inner.Refresh(ctx, refreshToken)
}

// TestInvalidGrantReReadOnce: the refresh token was rotated by another replica meanwhile, so the
// invalid_grant is not the account's fault: no needs_reauth.
func TestInvalidGrantReReadOnce(t *testing.T) {
	tests := []struct {
		name string
		// otherExpired: the other replica's stored token is itself expiring, so the Manager must
		// retry once with the refresh token it stored.
		otherExpired   bool
		wantTokenCalls int
	}{
		{"use the other replica's token", false, 2},
		{"retry with the other replica's refresh token", true, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, 1)
			a, _ := e.newAccount(t, "tenant-rr")
			rr := &racingRefresher{t: t, e: e, tenant: "tenant-rr", id: a.ID, expired: tt.otherExpired, inner: e.refresher(t)}
			mgr := e.manager(t, 0, creds.Options{Refresher: rr})
			e.sim.Advance(8*time.Hour + time.Minute)

			tok, err := mgr.TokenSource("tenant-rr", a.ID).Token(t.Context())
			if err != nil {
				t.Fatalf("Token: %v", err)
			}
			acct, c := e.load(t, "tenant-rr", a.ID)
			if acct.Status != store.StatusActive {
				t.Fatalf("status = %s, want active", acct.Status)
			}
			if tok.AccessToken != c.AccessToken {
				t.Fatal("returned token is not the stored one")
			}
			if got := e.tokenCalls(); got != tt.wantTokenCalls {
				t.Fatalf("token endpoint calls = %d, want %d", got, tt.wantTokenCalls)
			}
			client := e.podioClient(t, mgr.TokenSource("tenant-rr", a.ID))
			if _, _, err := client.Users.Get(t.Context()); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestProactiveRefresh: with less than the margin left, the token is refreshed before the call, so
// Podio never answers 401; with more left, nothing is refreshed.
func TestProactiveRefresh(t *testing.T) {
	tests := []struct {
		name        string
		left        time.Duration
		wantRefresh bool
	}{
		{"10m left, margin 15m", 10 * time.Minute, true},
		{"1s left", time.Second, true},
		{"20m left", 20 * time.Minute, false},
		{"already expired", -time.Hour, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, 1)
			mgr := e.manager(t, 0, creds.Options{Margin: 15 * time.Minute})
			a, issued := e.newAccount(t, "tenant-p")
			e.sim.Advance(time.Duration(issued.ExpiresIn)*time.Second - tt.left)
			client := e.podioClient(t, mgr.TokenSource("tenant-p", a.ID))
			if _, _, err := client.Users.Get(t.Context()); err != nil {
				t.Fatal(err)
			}
			calls := e.sim.Calls()
			wantToken := 0
			if tt.wantRefresh {
				wantToken = 1
			}
			if calls[tokenRoute] != wantToken || calls[podiosim.RouteUser] != 1 {
				t.Fatalf("calls: token %d (want %d), %s %d (want 1, no 401 retry)", calls[tokenRoute], wantToken, podiosim.RouteUser, calls[podiosim.RouteUser])
			}
		})
	}
}

// TestRefreshOn401: our clock says the token is fine but Podio says it expired; the client's
// single retry after TokenSource.Refresh succeeds with one token call.
func TestRefreshOn401(t *testing.T) {
	e := newEnv(t, 1)
	a, issued := e.newAccount(t, "tenant-401")
	our := e.sim.Now()
	mgr := creds.New(creds.Options{Store: e.stores[0], Refresher: e.refresher(t), Now: func() time.Time { return our }})
	e.sim.Advance(9 * time.Hour) // only Podio's clock moves
	client := e.podioClient(t, mgr.TokenSource("tenant-401", a.ID))
	if _, _, err := client.Users.Get(t.Context()); err != nil {
		t.Fatal(err)
	}
	calls := e.sim.Calls()
	if calls[tokenRoute] != 1 || calls[podiosim.RouteUser] != 2 {
		t.Fatalf("calls = %v, want 1 token call and 2 user calls (401, retry)", calls)
	}
	_, c := e.load(t, "tenant-401", a.ID)
	if c.RefreshToken == issued.RefreshToken {
		t.Fatal("rotated refresh token was not stored")
	}
}

// TestTokenSourceTenantIsolation: another tenant's account id is not found, and nothing is
// refreshed for it.
func TestTokenSourceTenantIsolation(t *testing.T) {
	e := newEnv(t, 1)
	mgr := e.manager(t, 0, creds.Options{})
	a, _ := e.newAccount(t, "owner")
	e.sim.Advance(9 * time.Hour)
	ts := mgr.TokenSource("intruder", a.ID)
	if _, err := ts.Token(t.Context()); !errors.Is(err, unified.ErrNotFound) {
		t.Fatalf("Token err = %v, want ErrNotFound", err)
	}
	if _, err := ts.Refresh(t.Context(), &podio.Token{AccessToken: "x"}); !errors.Is(err, unified.ErrNotFound) {
		t.Fatalf("Refresh err = %v, want ErrNotFound", err)
	}
	if got := e.tokenCalls(); got != 0 {
		t.Fatalf("token endpoint called %d times for a foreign account", got)
	}
}

// failingRefresher fails every refresh with a non-OAuth error.
type failingRefresher struct{ calls atomic.Int64 }

func (f *failingRefresher) Refresh(context.Context, string) (*podio.Token, error) {
	f.calls.Add(1)
	return nil, fmt.Errorf("podio: refreshing token: %w", unified.ErrUpstream)
}

// TestProactiveRefreshFailureUsesCurrentToken: if the token endpoint is down while the current
// token is still valid, callers keep working with it; once it has expired, they get the error.
func TestProactiveRefreshFailureUsesCurrentToken(t *testing.T) {
	e := newEnv(t, 1)
	fr := &failingRefresher{}
	mgr := e.manager(t, 0, creds.Options{Refresher: fr})
	a, issued := e.newAccount(t, "tenant-f")
	e.sim.Advance(8*time.Hour - 5*time.Minute)
	tok, err := mgr.TokenSource("tenant-f", a.ID).Token(t.Context())
	if err != nil || tok.AccessToken != issued.AccessToken {
		t.Fatalf("Token = %v, %v; want the current token", tok, err)
	}
	e.sim.Advance(10 * time.Minute)
	if _, err := mgr.TokenSource("tenant-f", a.ID).Token(t.Context()); !errors.Is(err, unified.ErrUpstream) {
		t.Fatalf("expired token with failing refresh: err = %v, want ErrUpstream", err)
	}
	if acct, _ := e.load(t, "tenant-f", a.ID); acct.Status != store.StatusActive {
		t.Fatalf("a transient failure changed the status to %s", acct.Status)
	}
	if fr.calls.Load() != 2 {
		t.Fatalf("refresher called %d times, want 2", fr.calls.Load())
	}
}
