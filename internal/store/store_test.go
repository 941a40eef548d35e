package store_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/redis/go-redis/v9"

	"github.com/dirgate/dirgate/internal/crypt"
	"github.com/dirgate/dirgate/internal/redistest"
	"github.com/dirgate/dirgate/internal/store"
	"github.com/dirgate/dirgate/internal/testclock"
	"github.com/dirgate/dirgate/unified"
)

// clock is the settable test clock.
type clock = testclock.Clock

func newClock(t time.Time) *clock { return testclock.New(t) }

func ring(t *testing.T, keys ...crypt.Key) *crypt.Ring {
	t.Helper()
	r, err := crypt.NewRing(keys)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func key(t *testing.T, id string) crypt.Key {
	t.Helper()
	k, err := crypt.GenerateKey(id)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func newStore(t *testing.T, r *redistest.Redis, rg *crypt.Ring, now func() time.Time) *store.Store {
	t.Helper()
	s, err := store.New(store.Options{Client: r.Client, Prefix: r.Prefix, Ring: rg, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

type fixture struct {
	r     *redistest.Redis
	s     *store.Store
	clock *clock
}

func setup(t *testing.T) fixture {
	t.Helper()
	r := redistest.New(t)
	c := newClock(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	return fixture{r: r, s: newStore(t, r, ring(t, key(t, "k1")), c.Now), clock: c}
}

func creds(n int) store.Credentials {
	return store.Credentials{
		AccessToken:  fmt.Sprintf("ACCESS-%d-plaintext", n),
		RefreshToken: fmt.Sprintf("REFRESH-%d-plaintext", n),
		Expiry:       time.Date(2026, 3, 1, 20, 0, 0, 0, time.UTC),
		Scope:        "global:all",
	}
}

func create(t *testing.T, s *store.Store, tenant string, n int) store.Account {
	t.Helper()
	a, err := s.CreateAccount(t.Context(), store.Account{
		Tenant: tenant, GrantType: "authorization_code", PodioUserID: int64(1000 + n),
		Name: fmt.Sprintf("User %d", n), Email: fmt.Sprintf("u%d@example.com", n),
	}, creds(n))
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestNewAccountID(t *testing.T) {
	t.Parallel()
	re := regexp.MustCompile(`^ia_[a-z2-7]{26}$`)
	seen := map[string]bool{}
	for range 100 {
		id := store.NewAccountID()
		if !re.MatchString(id) || seen[id] {
			t.Fatalf("NewAccountID() = %q (dup=%v)", id, seen[id])
		}
		seen[id] = true
	}
}

func TestAccountCRUD(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := t.Context()
	start := f.clock.Now()

	a := create(t, f.s, "tenant-a", 1)
	want := store.Account{
		ID: a.ID, Tenant: "tenant-a", Status: "active", Provider: "podio", GrantType: "authorization_code",
		PodioUserID: 1001, Name: "User 1", Email: "u1@example.com", CreatedAt: start, UpdatedAt: start,
		AccessExpiry: creds(1).Expiry, Version: 1,
	}
	if diff := cmp.Diff(want, a); diff != "" {
		t.Fatalf("CreateAccount (-want +got):\n%s", diff)
	}
	got, err := f.s.GetAccount(ctx, "tenant-a", a.ID)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("GetAccount (-want +got):\n%s", diff)
	}
	ga, gc, err := f.s.LoadCredentials(ctx, "tenant-a", a.ID)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, ga); diff != "" {
		t.Fatalf("LoadCredentials account (-want +got):\n%s", diff)
	}
	if gc != creds(1) {
		t.Fatalf("LoadCredentials = %v, want %v", gc, creds(1))
	}

	// A second account, created later, lists after the first; another tenant's does not list.
	f.clock.Advance(time.Minute)
	b := create(t, f.s, "tenant-a", 2)
	create(t, f.s, "tenant-b", 3)
	list, err := f.s.ListAccounts(ctx, "tenant-a")
	if err != nil {
		t.Fatal(err)
	}
	if ids := []string{list[0].ID, list[1].ID}; len(list) != 2 || ids[0] != a.ID || ids[1] != b.ID {
		t.Fatalf("ListAccounts = %v, want [%s %s]", list, a.ID, b.ID)
	}

	// SaveCredentials: CAS on version 1, bumps version, sets LastRefreshedAt.
	f.clock.Advance(time.Minute)
	now := f.clock.Now()
	saved, err := f.s.SaveCredentials(ctx, "tenant-a", a.ID, 1, creds(11), true)
	if err != nil {
		t.Fatal(err)
	}
	if saved.Version != 2 || !saved.LastRefreshedAt.Equal(now) || !saved.UpdatedAt.Equal(now) || saved.Status != "active" {
		t.Fatalf("after SaveCredentials: %+v", saved)
	}
	if _, c, _ := f.s.LoadCredentials(ctx, "tenant-a", a.ID); c != creds(11) {
		t.Fatalf("after save, credentials = %v", c)
	}
	// refreshed=false leaves LastRefreshedAt alone.
	f.clock.Advance(time.Minute)
	saved, err = f.s.SaveCredentials(ctx, "tenant-a", a.ID, 2, creds(12), false)
	if err != nil || saved.Version != 3 || !saved.LastRefreshedAt.Equal(now) {
		t.Fatalf("SaveCredentials(refreshed=false) = %+v, %v", saved, err)
	}

	// SetStatus does not touch the credential version.
	st, err := f.s.SetStatus(ctx, "tenant-a", a.ID, store.StatusNeedsReauth)
	if err != nil || st.Status != "needs_reauth" || st.Version != 3 {
		t.Fatalf("SetStatus = %+v, %v", st, err)
	}
	if _, err := f.s.SetStatus(ctx, "tenant-a", a.ID, "bogus"); !errors.Is(err, unified.ErrInvalidInput) {
		t.Fatalf("SetStatus(bogus) err = %v", err)
	}
	if _, err := f.s.SetStatusIfVersion(ctx, "tenant-a", a.ID, store.StatusRevoked, 2); !errors.Is(err, unified.ErrConflict) {
		t.Fatalf("SetStatusIfVersion(old version) err = %v", err)
	}

	// Reauthorize: unconditional, active again, version+1, identity updated.
	re, err := f.s.Reauthorize(ctx, "tenant-a", a.ID, creds(21), "New Name", "new@example.com", 4242)
	if err != nil {
		t.Fatal(err)
	}
	if re.Status != "active" || re.Version != 4 || re.Name != "New Name" || re.Email != "new@example.com" || re.PodioUserID != 4242 {
		t.Fatalf("Reauthorize = %+v", re)
	}
	if _, c, _ := f.s.LoadCredentials(ctx, "tenant-a", a.ID); c != creds(21) {
		t.Fatalf("after Reauthorize, credentials = %v", c)
	}

	// Duplicate explicit id.
	if _, err := f.s.CreateAccount(ctx, store.Account{ID: a.ID, Tenant: "tenant-a"}, creds(9)); !errors.Is(err, unified.ErrConflict) {
		t.Fatalf("CreateAccount(dup id) err = %v", err)
	}

	// Delete.
	if err := f.s.DeleteAccount(ctx, "tenant-a", a.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := f.s.GetAccount(ctx, "tenant-a", a.ID); !errors.Is(err, unified.ErrNotFound) {
		t.Fatalf("GetAccount after delete err = %v", err)
	}
	if err := f.s.DeleteAccount(ctx, "tenant-a", a.ID); !errors.Is(err, unified.ErrNotFound) {
		t.Fatalf("second DeleteAccount err = %v", err)
	}
	list, _ = f.s.ListAccounts(ctx, "tenant-a")
	if len(list) != 1 || list[0].ID != b.ID {
		t.Fatalf("ListAccounts after delete = %v", list)
	}
}

func TestRevokeProxyTokens(t *testing.T) {
	t.Parallel()
	f := setup(t)
	a := create(t, f.s, "tenant-a", 1)
	if !a.ProxyTokensNotBefore.IsZero() {
		t.Fatalf("new account has proxy tokens revoked before %v", a.ProxyTokensNotBefore)
	}
	at := f.clock.Now().Add(time.Minute).Truncate(time.Second)
	got, err := f.s.RevokeProxyTokens(t.Context(), "tenant-a", a.ID, at)
	if err != nil {
		t.Fatal(err)
	}
	again, err := f.s.GetAccount(t.Context(), "tenant-a", a.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !got.ProxyTokensNotBefore.Equal(at) || !again.ProxyTokensNotBefore.Equal(at) || again.Version != a.Version {
		t.Errorf("after revoke: %v / %v (version %d), want %v and the credential version unchanged", got.ProxyTokensNotBefore, again.ProxyTokensNotBefore, again.Version, at)
	}
}

// TestAccountEvents: the events setting and the poll outcome round-trip through the record, leave
// the credential version alone, and a record that never had them reads as disabled.
func TestAccountEvents(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := t.Context()
	a := create(t, f.s, "tenant-a", 1)
	if a.Events != (store.Events{}) {
		t.Fatalf("new account events = %+v, want disabled", a.Events)
	}
	f.clock.Advance(time.Minute)
	on, err := f.s.SetEvents(ctx, "tenant-a", a.ID, true, 90*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if !on.Events.Enabled || on.Events.Interval != 90*time.Second || on.Version != a.Version || !on.UpdatedAt.Equal(f.clock.Now()) {
		t.Fatalf("after SetEvents: %+v", on)
	}

	pollAt := f.clock.Now().Add(time.Minute)
	if err := f.s.RecordPoll(ctx, "tenant-a", a.ID, pollAt, ""); err != nil {
		t.Fatal(err)
	}
	if err := f.s.RecordPoll(ctx, "tenant-a", a.ID, pollAt.Add(time.Minute), "rate_limited"); err != nil {
		t.Fatal(err)
	}
	got, err := f.s.GetAccount(ctx, "tenant-a", a.ID)
	if err != nil {
		t.Fatal(err)
	}
	want := store.Events{Enabled: true, Interval: 90 * time.Second, LastPollAt: pollAt, LastPollError: "rate_limited"}
	if diff := cmp.Diff(want, got.Events); diff != "" || !got.UpdatedAt.Equal(on.UpdatedAt) {
		t.Fatalf("after RecordPoll (-want +got):\n%s(updated_at %v, want %v)", diff, got.UpdatedAt, on.UpdatedAt)
	}

	off, err := f.s.SetEvents(ctx, "tenant-a", a.ID, false, 0)
	if err != nil || off.Events.Enabled || off.Events.Interval != 0 || !off.Events.LastPollAt.Equal(pollAt) {
		t.Fatalf("after disabling: %+v, %v", off.Events, err)
	}
	if _, err := f.s.SetEvents(ctx, "tenant-b", a.ID, true, 0); !errors.Is(err, unified.ErrNotFound) {
		t.Errorf("SetEvents from another tenant: %v", err)
	}
	if _, err := f.s.SetEvents(ctx, "tenant-a", a.ID, true, -time.Second); !errors.Is(err, unified.ErrInvalidInput) {
		t.Errorf("negative interval: %v", err)
	}
	if err := f.s.DeleteAccount(ctx, "tenant-a", a.ID); err != nil {
		t.Fatal(err)
	}
	if err := f.s.RecordPoll(ctx, "tenant-a", a.ID, pollAt, ""); !errors.Is(err, unified.ErrNotFound) {
		t.Errorf("RecordPoll after delete: %v (a poll must not recreate a deleted record)", err)
	}
	if n, _ := f.r.Exists(ctx, f.r.Prefix+"{acct:"+a.ID+"}:rec").Result(); n != 0 {
		t.Error("RecordPoll recreated the deleted record")
	}
}

func TestCreateAccountInvalid(t *testing.T) {
	t.Parallel()
	f := setup(t)
	tests := []struct {
		name string
		a    store.Account
		c    store.Credentials
	}{
		{"no tenant", store.Account{}, creds(1)},
		{"bad tenant", store.Account{Tenant: "a b"}, creds(1)},
		{"brace in id", store.Account{ID: "x}y", Tenant: "t"}, creds(1)},
		{"bad status", store.Account{Tenant: "t", Status: "gone"}, creds(1)},
		{"no access token", store.Account{Tenant: "t"}, store.Credentials{RefreshToken: "r"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := f.s.CreateAccount(t.Context(), tt.a, tt.c); !errors.Is(err, unified.ErrInvalidInput) {
				t.Fatalf("err = %v, want ErrInvalidInput", err)
			}
		})
	}
}

// TestTenantIsolation: another tenant's id behaves exactly like a missing one, for every operation,
// and changes nothing.
func TestTenantIsolation(t *testing.T) {
	t.Parallel()
	f := setup(t)
	a := create(t, f.s, "owner", 1)
	ops := []struct {
		name string
		do   func(ctx context.Context, tenant, id string) error
	}{
		{"GetAccount", func(ctx context.Context, tenant, id string) error {
			_, err := f.s.GetAccount(ctx, tenant, id)
			return err
		}},
		{"LoadCredentials", func(ctx context.Context, tenant, id string) error {
			_, _, err := f.s.LoadCredentials(ctx, tenant, id)
			return err
		}},
		{"SaveCredentials", func(ctx context.Context, tenant, id string) error {
			_, err := f.s.SaveCredentials(ctx, tenant, id, 1, creds(66), true)
			return err
		}},
		{"Reauthorize", func(ctx context.Context, tenant, id string) error {
			_, err := f.s.Reauthorize(ctx, tenant, id, creds(66), "x", "x@example.com", 1)
			return err
		}},
		{"RevokeProxyTokens", func(ctx context.Context, tenant, id string) error {
			_, err := f.s.RevokeProxyTokens(ctx, tenant, id, time.Now())
			return err
		}},
		{"SetStatus", func(ctx context.Context, tenant, id string) error {
			_, err := f.s.SetStatus(ctx, tenant, id, store.StatusRevoked)
			return err
		}},
		{"DeleteAccount", func(ctx context.Context, tenant, id string) error {
			return f.s.DeleteAccount(ctx, tenant, id)
		}},
	}
	callers := []struct{ tenant, id string }{
		{"intruder", a.ID},              // another tenant, real id
		{"owner", store.NewAccountID()}, // own tenant, missing id
		{"owner", "ia_{bad}"},           // malformed id
		{"", a.ID},                      // no tenant
	}
	for _, op := range ops {
		for _, c := range callers {
			t.Run(op.name+"/"+c.tenant+"/"+c.id, func(t *testing.T) {
				if err := op.do(t.Context(), c.tenant, c.id); !errors.Is(err, unified.ErrNotFound) {
					t.Fatalf("err = %v, want ErrNotFound", err)
				}
			})
		}
	}
	if list, err := f.s.ListAccounts(t.Context(), "intruder"); err != nil || len(list) != 0 {
		t.Fatalf("intruder lists %v, %v", list, err)
	}
	got, c, err := f.s.LoadCredentials(t.Context(), "owner", a.ID)
	if err != nil || got.Version != 1 || got.Status != "active" || c != creds(1) {
		t.Fatalf("owner's account changed: %+v %v %v", got, c, err)
	}
}

// TestSaveCredentialsConflict is the slow writer at the store level: a writer that read version N
// after another writer already stored N+1 gets ErrConflict and does not overwrite the newer token.
func TestSaveCredentialsConflict(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := t.Context()
	a := create(t, f.s, "t", 1)
	slow, _, err := f.s.LoadCredentials(ctx, "t", a.ID) // reads version 1
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.s.SaveCredentials(ctx, "t", a.ID, slow.Version, creds(2), true); err != nil {
		t.Fatal(err) // the fast writer: version 2
	}
	_, err = f.s.SaveCredentials(ctx, "t", a.ID, slow.Version, creds(3), true)
	if !errors.Is(err, unified.ErrConflict) {
		t.Fatalf("slow writer err = %v, want ErrConflict", err)
	}
	if strings.Contains(err.Error(), "plaintext") {
		t.Fatalf("error leaks a token: %v", err)
	}
	got, c, _ := f.s.LoadCredentials(ctx, "t", a.ID)
	if got.Version != 2 || c.RefreshToken != creds(2).RefreshToken {
		t.Fatalf("after conflict: version %d, refresh token %q; want 2 and the fast writer's", got.Version, c.RefreshToken)
	}
	// Concurrent writers on the same version: exactly one wins.
	var wins, conflicts int
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			_, err := f.s.SaveCredentials(ctx, "t", a.ID, 2, creds(100+i), true)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				wins++
			case errors.Is(err, unified.ErrConflict):
				conflicts++
			default:
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if wins != 1 || conflicts != 19 {
		t.Fatalf("wins=%d conflicts=%d, want 1 and 19", wins, conflicts)
	}
}

func TestDeleteAccountRemovesEveryKey(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := t.Context()
	a := create(t, f.s, "t", 1)
	other := create(t, f.s, "t", 2)
	if _, err := f.s.ObtainRefreshLock(ctx, a.ID, time.Minute); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"cache:users", "cache:org:1"} {
		if err := f.r.Set(ctx, f.r.Key("{acct:"+a.ID+"}:"+k), "x", 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.s.DeleteAccount(ctx, "t", a.ID); err != nil {
		t.Fatal(err)
	}
	keys, err := f.r.Keys(ctx, f.r.Prefix+"*").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if strings.Contains(k, a.ID) {
			t.Errorf("key %q survived DeleteAccount", k)
		}
	}
	members, _ := f.r.SMembers(ctx, f.r.Key("tenant:t:accts")).Result()
	if diff := cmp.Diff([]string{other.ID}, members); diff != "" {
		t.Errorf("tenant index (-want +got):\n%s", diff)
	}
	if _, err := f.s.GetAccount(ctx, "t", other.ID); err != nil {
		t.Errorf("other account: %v", err)
	}
}

func TestLinkTokenSingleUse(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := t.Context()
	now := f.clock.Now()
	lt := store.LinkToken{Tenant: "t", RedirectURI: "https://app.example.com/cb", ExpiresAt: now.Add(10 * time.Minute),
		AppName: "Acme HR", LogoURL: "https://cdn.example.com/logo.png", ReturnOrigin: "https://app.example.com"}
	const tok = "lt_SECRET_link_token_value"
	if err := f.s.PutLinkToken(ctx, tok, lt); err != nil {
		t.Fatal(err)
	}
	keys, _ := f.r.Keys(ctx, f.r.Prefix+"link:*").Result()
	if len(keys) != 1 || strings.Contains(keys[0], tok) {
		t.Fatalf("link keys = %v: want one key named by the hash", keys)
	}
	ttl := f.r.PTTL(ctx, keys[0]).Val()
	if ttl <= 9*time.Minute || ttl > 10*time.Minute {
		t.Fatalf("Redis TTL = %s, want ~10m", ttl)
	}
	// Peeking (the link page) leaves the token usable, however often.
	for range 2 {
		peeked, err := f.s.PeekLinkToken(ctx, tok)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(lt, peeked, cmpopts.EquateApproxTime(0)); diff != "" {
			t.Fatalf("PeekLinkToken (-want +got):\n%s", diff)
		}
	}
	got, err := f.s.TakeLinkToken(ctx, tok)
	if err != nil {
		t.Fatal(err)
	}
	lt.Digest = store.Digest(tok) // a taken token names itself by its digest
	if diff := cmp.Diff(lt, got, cmpopts.EquateApproxTime(0)); diff != "" {
		t.Fatalf("TakeLinkToken (-want +got):\n%s", diff)
	}
	if _, err := f.s.PeekLinkToken(ctx, tok); !errors.Is(err, unified.ErrNotFound) {
		t.Fatalf("peek after take err = %v, want ErrNotFound", err)
	}
	if _, err := f.s.TakeLinkToken(ctx, tok); !errors.Is(err, unified.ErrNotFound) {
		t.Fatalf("second take err = %v, want ErrNotFound", err)
	}

	t.Run("expired by the clock", func(t *testing.T) {
		lt := store.LinkToken{Tenant: "t", ExpiresAt: f.clock.Now().Add(time.Minute)}
		if err := f.s.PutLinkToken(ctx, "tok2", lt); err != nil {
			t.Fatal(err)
		}
		f.clock.Advance(2 * time.Minute) // Redis still holds it; the record's deadline has passed
		if _, err := f.s.PeekLinkToken(ctx, "tok2"); !errors.Is(err, unified.ErrNotFound) {
			t.Fatalf("peek err = %v, want ErrNotFound", err)
		}
		if _, err := f.s.TakeLinkToken(ctx, "tok2"); !errors.Is(err, unified.ErrNotFound) {
			t.Fatalf("err = %v, want ErrNotFound", err)
		}
	})
	t.Run("short TTL is a real Redis TTL", func(t *testing.T) {
		lt := store.LinkToken{Tenant: "t", ExpiresAt: f.clock.Now().Add(1500 * time.Millisecond)}
		if err := f.s.PutLinkToken(ctx, "tok3", lt); err != nil {
			t.Fatal(err)
		}
		keys, _ := f.r.Keys(ctx, f.r.Prefix+"link:*").Result()
		if len(keys) != 1 {
			t.Fatalf("keys = %v", keys)
		}
		if ttl := f.r.PTTL(ctx, keys[0]).Val(); ttl <= 0 || ttl > 1500*time.Millisecond {
			t.Fatalf("PTTL = %s, want (0, 1.5s]", ttl)
		}
	})
	t.Run("already expired", func(t *testing.T) {
		lt := store.LinkToken{Tenant: "t", ExpiresAt: f.clock.Now().Add(-time.Second)}
		if err := f.s.PutLinkToken(ctx, "tok4", lt); !errors.Is(err, unified.ErrInvalidInput) {
			t.Fatalf("err = %v, want ErrInvalidInput", err)
		}
	})
	t.Run("unknown and empty", func(t *testing.T) {
		for _, tok := range []string{"never-stored", ""} {
			if _, err := f.s.TakeLinkToken(ctx, tok); !errors.Is(err, unified.ErrNotFound) {
				t.Fatalf("TakeLinkToken(%q) err = %v", tok, err)
			}
			if _, err := f.s.PeekLinkToken(ctx, tok); !errors.Is(err, unified.ErrNotFound) {
				t.Fatalf("PeekLinkToken(%q) err = %v", tok, err)
			}
		}
	})
}

func TestStateSingleUse(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := t.Context()
	st := store.OAuthState{
		LinkToken:           store.LinkToken{Tenant: "t", RedirectURI: "https://a.example.com/", AccountID: "ia_x", ExpiresAt: f.clock.Now().Add(time.Minute)},
		RedirectURIForPodio: "https://gw.example.com/oauth/callback",
	}
	const state = "STATE_secret_value"
	if err := f.s.PutState(ctx, state, st, 5*time.Minute); err != nil {
		t.Fatal(err)
	}
	keys, _ := f.r.Keys(ctx, f.r.Prefix+"state:*").Result()
	if len(keys) != 1 || strings.Contains(keys[0], state) {
		t.Fatalf("state keys = %v", keys)
	}
	if ttl := f.r.PTTL(ctx, keys[0]).Val(); ttl <= 4*time.Minute || ttl > 5*time.Minute {
		t.Fatalf("PTTL = %s, want ~5m", ttl)
	}
	got, err := f.s.TakeState(ctx, state)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(st, got, cmpopts.EquateApproxTime(0)); diff != "" {
		t.Fatalf("TakeState (-want +got):\n%s", diff)
	}
	if _, err := f.s.TakeState(ctx, state); !errors.Is(err, unified.ErrNotFound) {
		t.Fatalf("second TakeState err = %v", err)
	}
	if err := f.s.PutState(ctx, "s", st, 0); !errors.Is(err, unified.ErrInvalidInput) {
		t.Fatalf("PutState(ttl 0) err = %v", err)
	}
}

func TestRefreshLock(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := t.Context()
	id := store.NewAccountID()
	l, err := f.s.ObtainRefreshLock(ctx, id, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.s.ObtainRefreshLock(ctx, id, 10*time.Second); !errors.Is(err, store.ErrLockHeld) {
		t.Fatalf("second obtain err = %v, want ErrLockHeld", err)
	}
	if ttl := f.r.PTTL(ctx, f.r.Key("{acct:"+id+"}:lock")).Val(); ttl <= 0 {
		t.Fatalf("lock key has no TTL (%s)", ttl)
	}
	if err := l.Release(ctx); err != nil {
		t.Fatal(err)
	}
	l2, err := f.s.ObtainRefreshLock(ctx, id, 10*time.Second)
	if err != nil {
		t.Fatalf("obtain after release: %v", err)
	}
	_ = l2.Release(ctx)
}

// TestRotateKeys: records sealed under the old key are re-sealed online; afterwards a ring with
// only the new key reads everything and a ring with only the old key reads nothing.
func TestRotateKeys(t *testing.T) {
	t.Parallel()
	r := redistest.New(t)
	ctx := t.Context()
	oldKey, newKey := key(t, "old"), key(t, "new")
	oldOnly := newStore(t, r, ring(t, oldKey), nil)
	var ids []struct{ tenant, id string }
	for i, tenant := range []string{"t1", "t1", "t2"} {
		a := create(t, oldOnly, tenant, i)
		ids = append(ids, struct{ tenant, id string }{tenant, a.ID})
	}
	rotating := newStore(t, r, ring(t, newKey, oldKey), nil)

	// Read under the old key works; the next write re-seals with the active key.
	a0, c0, err := rotating.LoadCredentials(ctx, ids[0].tenant, ids[0].id)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rotating.SaveCredentials(ctx, ids[0].tenant, ids[0].id, a0.Version, c0, false); err != nil {
		t.Fatal(err)
	}
	raw := r.HGet(ctx, r.Key("{acct:"+ids[0].id+"}:rec"), "refresh_token").Val()
	if !strings.HasPrefix(raw, "new.") {
		t.Fatalf("after a write the refresh token is sealed as %q..., want the active key", raw[:4])
	}

	n, err := rotating.RotateKeys(ctx)
	if err != nil || n != 2 {
		t.Fatalf("RotateKeys = %d, %v; want 2 (one was already re-sealed by its write)", n, err)
	}
	if n, err := rotating.RotateKeys(ctx); err != nil || n != 0 {
		t.Fatalf("second RotateKeys = %d, %v; want 0", n, err)
	}
	newOnly := newStore(t, r, ring(t, newKey), nil)
	for i, x := range ids {
		a, c, err := newOnly.LoadCredentials(ctx, x.tenant, x.id)
		if err != nil {
			t.Fatalf("new-only ring cannot read %s: %v", x.id, err)
		}
		if c != creds(i) {
			t.Errorf("account %d credentials changed by rotation: %v", i, c)
		}
		if i > 0 && a.Version != 1 {
			t.Errorf("account %d: RotateKeys changed the version to %d", i, a.Version)
		}
		if _, _, err := oldOnly.LoadCredentials(ctx, x.tenant, x.id); !errors.Is(err, crypt.ErrUnknownKey) {
			t.Errorf("old-only ring still reads %s: %v", x.id, err)
		}
	}

	// A record under a key the ring no longer has is reported, the rest still handled.
	lost := create(t, newStore(t, r, ring(t, key(t, "gone")), nil), "t3", 9)
	if n, err := newOnly.RotateKeys(ctx); err == nil || n != 0 || !errors.Is(err, crypt.ErrUnknownKey) {
		t.Fatalf("RotateKeys with an unreadable record = %d, %v", n, err)
	} else if strings.Contains(err.Error(), "plaintext") {
		t.Fatalf("error leaks a token: %v", err)
	}
	_ = lost
}

// TestRotateKeysConcurrentWithWrites runs RotateKeys while credentials are saved: no write is lost
// and no record is left under the old key.
func TestRotateKeysConcurrentWithWrites(t *testing.T) {
	t.Parallel()
	r := redistest.New(t)
	ctx := t.Context()
	oldKey, newKey := key(t, "old"), key(t, "new")
	old := newStore(t, r, ring(t, oldKey), nil)
	var ids []string
	for i := range 20 {
		ids = append(ids, create(t, old, "t", i).ID)
	}
	rotating := newStore(t, r, ring(t, newKey, oldKey), nil)
	var wg sync.WaitGroup
	wg.Go(func() {
		if _, err := rotating.RotateKeys(ctx); err != nil {
			t.Error(err)
		}
	})
	for i, id := range ids {
		wg.Go(func() {
			// A refresh that read version 1 before the rotation must still be able to store its
			// (rotated) tokens: re-sealing does not bump the version.
			if _, err := rotating.SaveCredentials(ctx, "t", id, 1, creds(500+i), true); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if _, err := rotating.RotateKeys(ctx); err != nil {
		t.Fatal(err)
	}
	newOnly := newStore(t, r, ring(t, newKey), nil)
	for i, id := range ids {
		a, c, err := newOnly.LoadCredentials(ctx, "t", id)
		if err != nil || c != creds(500+i) || a.Version != 2 {
			t.Fatalf("account %d: %v %v %v", i, a.Version, c, err)
		}
	}
}

// TestRedisHoldsNoPlaintext dumps every key the store wrote and looks for any token or secret.
func TestRedisHoldsNoPlaintext(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := t.Context()
	var secrets []string
	for i := range 3 {
		a := create(t, f.s, "t", i)
		secrets = append(secrets, creds(i).AccessToken, creds(i).RefreshToken)
		if _, err := f.s.SaveCredentials(ctx, "t", a.ID, 1, creds(10+i), true); err != nil {
			t.Fatal(err)
		}
		secrets = append(secrets, creds(10+i).AccessToken, creds(10+i).RefreshToken)
	}
	const link, state = "LINK-secret-token", "STATE-secret-value"
	secrets = append(secrets, link, state)
	if err := f.s.PutLinkToken(ctx, link, store.LinkToken{Tenant: "t", ExpiresAt: f.clock.Now().Add(time.Minute)}); err != nil {
		t.Fatal(err)
	}
	if err := f.s.PutState(ctx, state, store.OAuthState{}, time.Minute); err != nil {
		t.Fatal(err)
	}

	var dump strings.Builder
	iter := f.r.Scan(ctx, 0, f.r.Prefix+"*", 100).Iterator()
	n := 0
	for iter.Next(ctx) {
		k := iter.Val()
		n++
		dump.WriteString(k + "\n")
		switch typ := f.r.Type(ctx, k).Val(); typ {
		case "hash":
			for field, v := range f.r.HGetAll(ctx, k).Val() {
				dump.WriteString(field + "=" + v + "\n")
			}
		case "string":
			dump.WriteString(f.r.Get(ctx, k).Val() + "\n")
		case "set":
			dump.WriteString(strings.Join(f.r.SMembers(ctx, k).Val(), ",") + "\n")
		case "zset":
			dump.WriteString(strings.Join(f.r.ZRange(ctx, k, 0, -1).Val(), ",") + "\n")
		default:
			t.Errorf("unexpected key type %s for %s", typ, k)
		}
	}
	if err := iter.Err(); err != nil {
		t.Fatal(err)
	}
	if n < 5 {
		t.Fatalf("only %d keys dumped", n)
	}
	for _, s := range secrets {
		if strings.Contains(dump.String(), s) {
			t.Errorf("Redis holds %q in plaintext", s)
		}
	}
	if strings.Contains(dump.String(), "plaintext") {
		t.Error("Redis holds a token fragment in plaintext")
	}
}

func TestCredentialsStringHidesTokens(t *testing.T) {
	t.Parallel()
	c := creds(1)
	for _, s := range []string{fmt.Sprint(c), fmt.Sprintf("%v %+v %#v %s", c, c, c, c)} {
		if strings.Contains(s, c.AccessToken) || strings.Contains(s, c.RefreshToken) {
			t.Fatalf("formatted credentials leak tokens: %s", s)
		}
	}
}

func TestNewRedisClient(t *testing.T) {
	t.Parallel()
	r := redistest.New(t) // skips without Redis
	c, err := store.NewRedisClient(store.RedisConfig{URL: redistest.URL()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s, err := store.New(store.Options{Client: c, Prefix: r.Prefix, Ring: ring(t, key(t, "k"))})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Ping(t.Context()); err != nil {
		t.Fatal(err)
	}

	_, err = store.NewRedisClient(store.RedisConfig{URL: "redis://user:hunter2-password@[::1"})
	if err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("bad URL err = %v (must fail without echoing the password)", err)
	}
	if _, err := store.NewRedisClient(store.RedisConfig{}); err == nil {
		t.Fatal("empty config accepted")
	}
	down, err := store.NewRedisClient(store.RedisConfig{URL: "redis://127.0.0.1:1/0"})
	if err != nil {
		t.Fatal(err)
	}
	defer down.Close()
	if err := down.Ping(t.Context()).Err(); err == nil {
		t.Fatal("ping to port 1 succeeded")
	}
}

func TestNewOptions(t *testing.T) {
	t.Parallel()
	r := redistest.New(t)
	rg := ring(t, key(t, "k"))
	tests := []struct {
		name string
		opts store.Options
	}{
		{"no client", store.Options{Ring: rg}},
		{"no ring", store.Options{Client: r.Client}},
		{"brace in prefix", store.Options{Client: r.Client, Ring: rg, Prefix: "x{y}:"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := store.New(tt.opts); err == nil {
				t.Fatal("New succeeded")
			}
		})
	}
}

func TestUnavailable(t *testing.T) {
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"refused", fmt.Errorf("store: account %q: read: %w", "ia_1", refused), true},
		{"connection dropped", fmt.Errorf("store: %w", io.EOF), true},
		{"client closed", redis.ErrClosed, true},
		{"pool exhausted", redis.ErrPoolTimeout, true},
		{"missing record", fmt.Errorf("store: %w", unified.ErrNotFound), false},
		{"Podio unreachable", &url.Error{Op: "Get", URL: "https://api.podio.com/org/", Err: refused}, false},
		{"other", errors.New("store: corrupt field"), false},
	}
	for _, tt := range tests {
		if got := store.Unavailable(tt.err); got != tt.want {
			t.Errorf("%s: Unavailable = %v, want %v", tt.name, got, tt.want)
		}
	}
}

// TestPickerSession: a picker session is read as often as needed until it expires, and Redis
// holds it under the token's hash only.
func TestPickerSession(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := t.Context()
	ps := store.PickerSession{Tenant: "t", AccountID: "acct_1", MultiSelect: true, OrganizationIDs: []string{"3001"},
		ReturnOrigin: "https://app.example.com", ExpiresAt: f.clock.Now().Add(15 * time.Minute)}
	const tok = "pk_SECRET_picker_token"
	if err := f.s.PutPickerSession(ctx, tok, ps); err != nil {
		t.Fatal(err)
	}
	keys, _ := f.r.Keys(ctx, f.r.Prefix+"picker:*").Result()
	if len(keys) != 1 || strings.Contains(keys[0], tok) {
		t.Fatalf("picker keys = %v: want one key named by the hash", keys)
	}
	if ttl := f.r.PTTL(ctx, keys[0]).Val(); ttl <= 14*time.Minute || ttl > 15*time.Minute {
		t.Fatalf("Redis TTL = %s, want ~15m", ttl)
	}
	for range 2 {
		got, err := f.s.GetPickerSession(ctx, tok)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(ps, got, cmpopts.EquateApproxTime(0)); diff != "" {
			t.Fatalf("GetPickerSession (-want +got):\n%s", diff)
		}
	}
	for _, tok := range []string{"never-stored", ""} {
		if _, err := f.s.GetPickerSession(ctx, tok); !errors.Is(err, unified.ErrNotFound) {
			t.Errorf("GetPickerSession(%q) err = %v", tok, err)
		}
	}
	f.clock.Advance(16 * time.Minute) // Redis may still hold it; the record's deadline has passed
	if _, err := f.s.GetPickerSession(ctx, tok); !errors.Is(err, unified.ErrNotFound) {
		t.Errorf("expired: err = %v, want ErrNotFound", err)
	}
	ps.ExpiresAt = f.clock.Now().Add(-time.Second)
	if err := f.s.PutPickerSession(ctx, "other", ps); !errors.Is(err, unified.ErrInvalidInput) {
		t.Errorf("already expired: err = %v, want ErrInvalidInput", err)
	}
}

// TestSealedTokenBoundToItsRecord: a sealed token copied into another record does not open
// there. The additional data binds each ciphertext to its tenant, account and field, so someone
// who can write to Redis (or restore an old dump into the wrong place) cannot make one account
// act with another's Podio credentials.
func TestSealedTokenBoundToItsRecord(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := t.Context()
	mk := func(tenant string, n int) store.Account {
		a, err := f.s.CreateAccount(ctx, store.Account{Tenant: tenant, GrantType: "password", PodioUserID: int64(n)}, creds(n))
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	victim := mk("tenant-a", 1)
	sameTenant := mk("tenant-a", 2)
	otherTenant := mk("tenant-b", 3)
	rec := func(a store.Account) string { return f.r.Key("{acct:" + a.ID + "}:rec") }
	sealedAccess := f.r.HGet(ctx, rec(victim), "access_token").Val()
	sealedRefresh := f.r.HGet(ctx, rec(victim), "refresh_token").Val()
	for _, tc := range []struct {
		name   string
		target store.Account
		field  string
		value  string
	}{
		{"access token into another account of the tenant", sameTenant, "access_token", sealedAccess},
		{"access token into another tenant's account", otherTenant, "access_token", sealedAccess},
		{"refresh token into another tenant's account", otherTenant, "refresh_token", sealedRefresh},
		{"access token into the refresh token field", victim, "refresh_token", sealedAccess},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := f.r.HGet(ctx, rec(tc.target), tc.field).Val()
			f.r.HSet(ctx, rec(tc.target), tc.field, tc.value)
			defer f.r.HSet(ctx, rec(tc.target), tc.field, before)
			_, c, err := f.s.LoadCredentials(ctx, tc.target.Tenant, tc.target.ID)
			if err == nil {
				t.Fatalf("the copied ciphertext opened: %v", c)
			}
			if strings.Contains(err.Error(), "ACCESS-1") || strings.Contains(err.Error(), "REFRESH-1") {
				t.Errorf("the error holds the plaintext: %v", err)
			}
		})
	}
	// The victim's own record still opens.
	if _, c, err := f.s.LoadCredentials(ctx, victim.Tenant, victim.ID); err != nil || c.AccessToken != "ACCESS-1-plaintext" {
		t.Errorf("own credentials: %v, %v", c, err)
	}
}

// TestOpenLimitFreesOnExpiry: the open link tokens a tenant may hold are counted until they
// expire, on the store's clock; an expired one no longer counts, and a refused one is not stored.
func TestOpenLimitFreesOnExpiry(t *testing.T) {
	t.Parallel()
	r := redistest.New(t)
	c := newClock(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	s, err := store.New(store.Options{Client: r.Client, Prefix: r.Prefix, Ring: ring(t, key(t, "k1")), Now: c.Now, MaxOpen: 2})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	put := func(tok string, ttl time.Duration) error {
		return s.PutLinkToken(ctx, tok, store.LinkToken{Tenant: "t1", ExpiresAt: c.Now().Add(ttl)})
	}
	if err := put("a", time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := put("b", 5*time.Minute); err != nil {
		t.Fatal(err)
	}
	err = put("c", time.Minute)
	le, ok := errors.AsType[*store.LimitError](err)
	if !ok || le.Limit != 2 || !le.Until.Equal(c.Now().Add(time.Minute)) {
		t.Fatalf("third token: %v, want a LimitError until the oldest expires", err)
	}
	if _, err := s.PeekLinkToken(ctx, "c"); !errors.Is(err, unified.ErrNotFound) {
		t.Errorf("the refused token was stored: %v", err)
	}
	c.Advance(time.Minute + time.Millisecond)
	if err := put("c", time.Minute); err != nil {
		t.Errorf("after the oldest expired: %v", err)
	}
	if err := s.PutLinkToken(ctx, "d", store.LinkToken{Tenant: "t2", ExpiresAt: c.Now().Add(time.Minute)}); err != nil {
		t.Errorf("another tenant: %v", err)
	}
}
