package cache_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/redis/go-redis/v9"

	"github.com/dirgate/dirgate/internal/cache"
	"github.com/dirgate/dirgate/internal/redistest"
	"github.com/dirgate/dirgate/internal/store"
	"github.com/dirgate/dirgate/internal/testclock"
)

// clock is the settable test clock.
type clock = testclock.Clock

func newClock() *clock { return testclock.New(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)) }

// counter is a go-redis hook counting round trips (a pipeline or transaction counts as one) and dials.
type counter struct{ cmds, dials atomic.Int64 }

func (h *counter) DialHook(next redis.DialHook) redis.DialHook {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		h.dials.Add(1)
		return next(ctx, network, addr)
	}
}

func (h *counter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		h.cmds.Add(1)
		return next(ctx, cmd)
	}
}

func (h *counter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		h.cmds.Add(1)
		return next(ctx, cmds)
	}
}

func (h *counter) touches() int64 { return h.cmds.Load() + h.dials.Load() }

// client returns a Redis client the way the gateway builds one, counting its round trips.
func client(t *testing.T, rawURL string) (redis.UniversalClient, *counter) {
	t.Helper()
	c, err := store.NewRedisClient(store.RedisConfig{
		URL: rawURL, DialTimeout: redistest.DialTimeout(rawURL), ReadTimeout: 2 * time.Second, WriteTimeout: 2 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	h := &counter{}
	c.AddHook(h)
	return c, h
}

// urlWithHost is the test Redis URL pointed at another address (a proxy or a dead port).
func urlWithHost(t *testing.T, host string) string {
	t.Helper()
	u, err := url.Parse(redistest.URL())
	if err != nil {
		t.Fatal(err)
	}
	u.Host = host
	return u.String()
}

func redisAddr(t *testing.T) string {
	t.Helper()
	o, err := redis.ParseURL(redistest.URL())
	if err != nil {
		t.Fatal(err)
	}
	return o.Addr
}

type env struct {
	rdb   *redistest.Redis
	url   string
	clock *clock
}

func newEnv(t *testing.T) *env {
	t.Helper()
	return newEnvAt(t, redistest.URL())
}

// newEnvAt is newEnv on the Redis at rawURL.
func newEnvAt(t *testing.T, rawURL string) *env {
	t.Helper()
	return &env{rdb: redistest.NewAt(t, rawURL), url: rawURL, clock: newClock()}
}

// cache returns a Cache on its own client; tweak adjusts the options.
func (e *env) cache(t *testing.T, tweak func(*cache.Options)) (*cache.Cache, *counter) {
	t.Helper()
	c, h := client(t, e.url)
	o := cache.Options{
		Client: c, Prefix: e.rdb.Prefix, Now: e.clock.Now,
		// Generous: these tests are about cache logic, not about a slow Redis under -race.
		OpTimeout: time.Second, PollInterval: 5 * time.Millisecond,
	}
	if tweak != nil {
		tweak(&o)
	}
	ca, err := cache.New(o)
	if err != nil {
		t.Fatal(err)
	}
	return ca, h
}

func (e *env) headKey(sc cache.Scope, key string) string {
	return e.rdb.Prefix + "{acct:" + sc.Account + "}:cache:" + sc.Tenant + ":h:" + key
}

func (e *env) snapKey(sc cache.Scope, id string) string {
	return e.rdb.Prefix + "{acct:" + sc.Account + "}:cache:" + sc.Tenant + ":s:" + id
}

var (
	scope  = cache.Scope{Tenant: "acme", Account: "ia_one"}
	policy = cache.Policy{TTL: time.Minute, MaxStale: 10 * time.Minute}
)

// items returns n distinct JSON items.
func items(n int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		out[i] = fmt.Appendf(nil, `{"i":%d}`, i)
	}
	return out
}

// fetcher serves a fixed list and counts calls.
type fetcher struct {
	calls atomic.Int64
	items [][]byte
	delay time.Duration
	err   error
}

func (f *fetcher) fetch(ctx context.Context) ([][]byte, bool, error) {
	f.calls.Add(1)
	if f.delay > 0 {
		select {
		case <-time.After(f.delay):
		case <-ctx.Done():
			return nil, false, ctx.Err()
		}
	}
	if f.err != nil {
		return nil, false, f.err
	}
	return f.items, false, nil
}

func strs(bs [][]byte) []string {
	out := make([]string, len(bs))
	for i, b := range bs {
		out[i] = string(b)
	}
	return out
}

func TestNew(t *testing.T) {
	t.Parallel()
	c, _ := client(t, redistest.URL())
	tests := []struct {
		name string
		opts cache.Options
	}{
		{"no client", cache.Options{}},
		{"brace in prefix", cache.Options{Client: c, Prefix: "x{y}:"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := cache.New(tt.opts); err == nil {
				t.Fatal("New succeeded")
			}
		})
	}
}

func TestInvalidScope(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c, _ := e.cache(t, nil)
	f := &fetcher{items: items(1)}
	for _, sc := range []cache.Scope{{Tenant: "", Account: "a"}, {Tenant: "t", Account: ""}, {Tenant: "t", Account: "a}b"}} {
		t.Run(fmt.Sprintf("%q/%q", sc.Tenant, sc.Account), func(t *testing.T) {
			if _, err := c.List(t.Context(), sc, "k", policy, 0, f.fetch); err == nil {
				t.Error("List succeeded")
			}
			if _, err := c.Page(t.Context(), sc, "r00000000000000000000000000000000", 0, 1); err == nil {
				t.Error("Page succeeded")
			}
		})
	}
	if f.calls.Load() != 0 {
		t.Errorf("fetch called %d times", f.calls.Load())
	}
}

func TestListHitMissTTL(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c, _ := e.cache(t, nil)
	f := &fetcher{items: items(3)}
	steps := []struct {
		name      string
		advance   time.Duration
		wantState cache.State
		wantCalls int64
		newID     bool
	}{
		{"first call misses", 0, cache.Miss, 1, true},
		{"second call hits", 0, cache.Hit, 1, false},
		{"just before TTL hits", time.Minute - time.Microsecond, cache.Hit, 1, false},
		{"at TTL misses", time.Microsecond, cache.Miss, 2, true},
		{"after refill hits", time.Second, cache.Hit, 2, false},
	}
	var prevID string
	var ids []string
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			e.clock.Advance(st.advance)
			s, err := c.List(t.Context(), scope, "users", policy, 2, f.fetch)
			if err != nil {
				t.Fatal(err)
			}
			if s.State != st.wantState || f.calls.Load() != st.wantCalls {
				t.Errorf("state %s after %d fetches, want %s after %d", s.State, f.calls.Load(), st.wantState, st.wantCalls)
			}
			if (s.ID != prevID) != st.newID {
				t.Errorf("snapshot id changed: %v, want %v", s.ID != prevID, st.newID)
			}
			if diff := cmp.Diff(strs(f.items[:2]), strs(s.First)); diff != "" {
				t.Errorf("First (-want +got):\n%s", diff)
			}
			if s.Count != 3 || s.Partial {
				t.Errorf("Count %d Partial %v", s.Count, s.Partial)
			}
			prevID = s.ID
			ids = append(ids, s.ID)
		})
	}
	// The replaced snapshot still serves open cursors.
	got, err := c.Page(t.Context(), scope, ids[0], 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(strs(f.items), strs(got)); diff != "" {
		t.Errorf("old snapshot (-want +got):\n%s", diff)
	}
}

func TestFetchedAtAndTTLs(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c, _ := e.cache(t, func(o *cache.Options) { o.SnapshotTTL = time.Hour })
	fetchStart := e.clock.Now()
	s, err := c.List(t.Context(), scope, "users", policy, 0, func(context.Context) ([][]byte, bool, error) {
		e.clock.Advance(5 * time.Second) // a slow upstream
		return items(2), true, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if !s.FetchedAt.Equal(fetchStart) || !s.Partial {
		t.Errorf("FetchedAt %v Partial %v, want %v true", s.FetchedAt, s.Partial, fetchStart)
	}
	hit, err := c.List(t.Context(), scope, "users", policy, 0, nil2)
	if err != nil {
		t.Fatal(err)
	}
	if hit.State != cache.Hit || !hit.FetchedAt.Equal(fetchStart) || !hit.Partial {
		t.Errorf("hit: %+v", hit)
	}
	tests := []struct {
		name, key string
		want      time.Duration
	}{
		{"head", e.headKey(scope, "users"), policy.TTL + policy.MaxStale},
		{"snapshot", e.snapKey(scope, s.ID), policy.TTL + policy.MaxStale + time.Hour},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ttl, err := e.rdb.PTTL(t.Context(), tt.key).Result()
			if err != nil {
				t.Fatal(err)
			}
			if ttl > tt.want || ttl < tt.want-time.Minute {
				t.Errorf("TTL %s, want about %s", ttl, tt.want)
			}
		})
	}
}

// nil2 is a fetch that must not run.
func nil2(context.Context) ([][]byte, bool, error) {
	return nil, false, errors.New("fetch must not be called")
}

func TestPage(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c, _ := e.cache(t, nil)
	all := items(5)
	full, err := c.List(t.Context(), scope, "users", policy, 0, (&fetcher{items: all}).fetch)
	if err != nil {
		t.Fatal(err)
	}
	empty, err := c.List(t.Context(), scope, "nobody", policy, 3, (&fetcher{}).fetch)
	if err != nil {
		t.Fatal(err)
	}
	if empty.Count != 0 || len(empty.First) != 0 {
		t.Fatalf("empty snapshot: Count %d First %d", empty.Count, len(empty.First))
	}
	gone := items(2)
	dropped, err := c.List(t.Context(), scope, "dropped", policy, 0, (&fetcher{items: gone}).fetch)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.rdb.Del(t.Context(), e.snapKey(scope, dropped.ID)).Err(); err != nil { // as if expired
		t.Fatal(err)
	}

	tests := []struct {
		name      string
		sc        cache.Scope
		id        string
		offset, n int
		want      [][]byte
		wantErr   error
	}{
		{"first page", scope, full.ID, 0, 2, all[:2], nil},
		{"middle page", scope, full.ID, 2, 2, all[2:4], nil},
		{"last page is short", scope, full.ID, 4, 2, all[4:], nil},
		{"past the end", scope, full.ID, 5, 2, nil, nil},
		{"far past the end", scope, full.ID, 100, 2, nil, nil},
		{"zero items", scope, full.ID, 0, 0, nil, nil},
		{"whole list", scope, full.ID, 0, 100, all, nil},
		{"huge page", scope, full.ID, 1, math.MaxInt, all[1:], nil},
		{"empty snapshot", scope, empty.ID, 0, 10, nil, nil},
		{"expired snapshot", scope, dropped.ID, 0, 10, nil, cache.ErrSnapshotGone},
		{"unknown id", scope, "r0123456789abcdef0123456789abcdef", 0, 10, nil, cache.ErrSnapshotGone},
		{"unknown local id", scope, "l0123456789abcdef0123456789abcdef", 0, 10, nil, cache.ErrSnapshotGone},
		{"malformed id", scope, "x" + full.ID[1:], 0, 10, nil, cache.ErrSnapshotGone},
		{"empty id", scope, "", 0, 10, nil, cache.ErrSnapshotGone},
		{"other tenant", cache.Scope{Tenant: "other", Account: scope.Account}, full.ID, 0, 10, nil, cache.ErrSnapshotGone},
		{"other account", cache.Scope{Tenant: scope.Tenant, Account: "ia_two"}, full.ID, 0, 10, nil, cache.ErrSnapshotGone},
		{"empty snapshot of other tenant", cache.Scope{Tenant: "other", Account: scope.Account}, empty.ID, 0, 10, nil, cache.ErrSnapshotGone},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := c.Page(t.Context(), tt.sc, tt.id, tt.offset, tt.n)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err %v, want %v", err, tt.wantErr)
			}
			if diff := cmp.Diff(strs(tt.want), strs(got)); diff != "" {
				t.Errorf("items (-want +got):\n%s", diff)
			}
		})
	}

	t.Run("negative offset", func(t *testing.T) {
		if _, err := c.Page(t.Context(), scope, full.ID, -1, 2); err == nil || errors.Is(err, cache.ErrSnapshotGone) {
			t.Errorf("err %v, want an invalid-argument error", err)
		}
	})
}

func TestInvalidate(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c, _ := e.cache(t, nil)
	f := &fetcher{items: items(4)}
	old, err := c.List(t.Context(), scope, "users", policy, 0, f.fetch)
	if err != nil {
		t.Fatal(err)
	}
	other, err := c.List(t.Context(), scope, "spaces", policy, 0, f.fetch)
	if err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(time.Second)
	if err := c.Invalidate(t.Context(), scope, "users", "not-cached"); err != nil {
		t.Fatal(err)
	}
	s, err := c.List(t.Context(), scope, "users", policy, 0, f.fetch)
	if err != nil {
		t.Fatal(err)
	}
	if s.State != cache.Miss || s.ID == old.ID || f.calls.Load() != 3 {
		t.Errorf("after Invalidate: state %s, same id %v, %d fetches", s.State, s.ID == old.ID, f.calls.Load())
	}
	// Open cursors keep working.
	got, err := c.Page(t.Context(), scope, old.ID, 1, 2)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(strs(f.items[1:3]), strs(got)); diff != "" {
		t.Errorf("old snapshot (-want +got):\n%s", diff)
	}
	// Other keys stay cached.
	s, err = c.List(t.Context(), scope, "spaces", policy, 0, f.fetch)
	if err != nil {
		t.Fatal(err)
	}
	if s.State != cache.Hit || s.ID != other.ID {
		t.Errorf("other key: state %s, same id %v", s.State, s.ID == other.ID)
	}
}

// A fill that began before an Invalidate must not install its (possibly outdated) result.
func TestInvalidateDuringFill(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c, _ := e.cache(t, nil)
	started, release := make(chan struct{}), make(chan struct{})
	done := make(chan cache.Snapshot)
	go func() {
		s, err := c.List(context.Background(), scope, "users", policy, 0, func(context.Context) ([][]byte, bool, error) {
			close(started)
			<-release
			return items(1), false, nil
		})
		if err != nil {
			t.Error(err)
		}
		done <- s
	}()
	<-started
	e.clock.Advance(time.Second)
	if err := c.Invalidate(t.Context(), scope, "users"); err != nil {
		t.Fatal(err)
	}
	close(release)
	if s := <-done; s.State != cache.Miss {
		t.Errorf("the filling caller got %s, want MISS", s.State)
	}
	f := &fetcher{items: items(2)}
	s, err := c.List(t.Context(), scope, "users", policy, 0, f.fetch)
	if err != nil {
		t.Fatal(err)
	}
	if s.State != cache.Miss || s.Count != 2 || f.calls.Load() != 1 {
		t.Errorf("after the invalidated fill: state %s count %d fetches %d, want a new fill", s.State, s.Count, f.calls.Load())
	}
}

func TestTenantWithColons(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c, _ := e.cache(t, nil)
	a := cache.Scope{Tenant: "a:h:b", Account: "ia_one"}
	b := cache.Scope{Tenant: "a", Account: "ia_one"}
	if _, err := c.List(t.Context(), a, "c", policy, 0, (&fetcher{items: items(1)}).fetch); err != nil {
		t.Fatal(err)
	}
	f := &fetcher{items: items(2)}
	s, err := c.List(t.Context(), b, "b:h:c", policy, 0, f.fetch)
	if err != nil {
		t.Fatal(err)
	}
	if s.State != cache.Miss || s.Count != 2 {
		t.Errorf("tenant %q read tenant %q's entry: %s, count %d", b.Tenant, a.Tenant, s.State, s.Count)
	}
}

func TestListFirstHitIsOneRoundTrip(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c, h := e.cache(t, nil)
	f := &fetcher{items: items(10)}
	if _, err := c.List(t.Context(), scope, "users", policy, 4, f.fetch); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		first int
		want  [][]byte
	}{
		{"no items", 0, nil},
		{"some items", 4, f.items[:4]},
		{"more than the list", 50, f.items},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := h.cmds.Load()
			s, err := c.List(t.Context(), scope, "users", policy, tt.first, f.fetch)
			if err != nil {
				t.Fatal(err)
			}
			if s.State != cache.Hit {
				t.Fatalf("state %s", s.State)
			}
			if n := h.cmds.Load() - before; n != 1 {
				t.Errorf("HIT took %d round trips, want 1", n)
			}
			if diff := cmp.Diff(strs(tt.want), strs(s.First)); diff != "" {
				t.Errorf("First (-want +got):\n%s", diff)
			}
		})
	}
}

func TestPageIsOneRoundTrip(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c, h := e.cache(t, nil)
	s, err := c.List(t.Context(), scope, "users", policy, 0, (&fetcher{items: items(10)}).fetch)
	if err != nil {
		t.Fatal(err)
	}
	before := h.cmds.Load()
	if _, err := c.Page(t.Context(), scope, s.ID, 3, 3); err != nil {
		t.Fatal(err)
	}
	if n := h.cmds.Load() - before; n != 1 {
		t.Errorf("Page took %d round trips, want 1", n)
	}
}

func TestValue(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c, _ := e.cache(t, nil)
	var calls atomic.Int64
	fetch := func(context.Context) ([]byte, error) {
		calls.Add(1)
		return []byte(`{"name":"Northwind"}`), nil
	}
	steps := []struct {
		name      string
		advance   time.Duration
		wantState cache.State
		wantCalls int64
	}{
		{"miss", 0, cache.Miss, 1},
		{"hit", time.Second, cache.Hit, 1},
		{"expired", time.Minute, cache.Miss, 2},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			e.clock.Advance(st.advance)
			v, s, err := c.Value(t.Context(), scope, "org:1", policy, fetch)
			if err != nil {
				t.Fatal(err)
			}
			if string(v) != `{"name":"Northwind"}` || len(s.First) != 1 || !bytes.Equal(s.First[0], v) {
				t.Errorf("value %s, First %q", v, s.First)
			}
			if s.State != st.wantState || calls.Load() != st.wantCalls || s.Count != 1 || s.ID != "" {
				t.Errorf("state %s calls %d count %d id %q", s.State, calls.Load(), s.Count, s.ID)
			}
		})
	}
	t.Run("a list under the same key is not a value", func(t *testing.T) {
		f := &fetcher{items: items(1)}
		s, err := c.List(t.Context(), scope, "org:1", policy, 0, f.fetch)
		if err != nil {
			t.Fatal(err)
		}
		if s.State != cache.Miss || f.calls.Load() != 1 {
			t.Errorf("state %s calls %d", s.State, f.calls.Load())
		}
	})
}

func TestCoalescing(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		instances int
	}{
		{"one instance", 1},
		{"three instances", 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			caches := make([]*cache.Cache, tt.instances)
			for i := range caches {
				caches[i], _ = e.cache(t, nil)
			}
			f := &fetcher{items: items(20), delay: 100 * time.Millisecond}
			const perInstance = 50
			type got struct {
				s     cache.Snapshot
				first int
				err   error
			}
			results := make(chan got, tt.instances*perInstance)
			var wg sync.WaitGroup
			startGun := make(chan struct{})
			for i, c := range caches {
				for j := range perInstance {
					first := (i + j) % 4 * 3 // callers want different first pages
					wg.Go(func() {
						<-startGun
						s, err := c.List(t.Context(), scope, "users", policy, first, f.fetch)
						results <- got{s, first, err}
					})
				}
			}
			close(startGun)
			wg.Wait()
			close(results)
			ids := map[string]int{}
			for r := range results {
				if r.err != nil {
					t.Fatal(r.err)
				}
				ids[r.s.ID]++
				if r.s.Count != 20 {
					t.Errorf("Count %d", r.s.Count)
				}
				if diff := cmp.Diff(strs(f.items[:r.first]), strs(r.s.First)); diff != "" {
					t.Errorf("First for first=%d (-want +got):\n%s", r.first, diff)
				}
			}
			if n := f.calls.Load(); n != 1 {
				t.Errorf("%d fetches, want 1", n)
			}
			if len(ids) != 1 {
				t.Errorf("callers got %d different snapshots: %v", len(ids), ids)
			}
		})
	}
}

func TestFresh(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c1, _ := e.cache(t, nil)
	c2, _ := e.cache(t, nil)
	f := &fetcher{items: items(3)}
	old, err := c1.List(t.Context(), scope, "users", policy, 0, f.fetch)
	if err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(time.Second) // still well within TTL
	fresh := policy
	fresh.Fresh = true

	t.Run("a fresh call refetches a HIT entry", func(t *testing.T) {
		s, err := c1.List(t.Context(), scope, "users", fresh, 0, f.fetch)
		if err != nil {
			t.Fatal(err)
		}
		if s.State != cache.Miss || s.ID == old.ID || f.calls.Load() != 2 {
			t.Errorf("state %s, same id %v, %d fetches", s.State, s.ID == old.ID, f.calls.Load())
		}
	})
	t.Run("a normal call then hits the new entry", func(t *testing.T) {
		s, err := c2.List(t.Context(), scope, "users", policy, 0, f.fetch)
		if err != nil {
			t.Fatal(err)
		}
		if s.State != cache.Hit || f.calls.Load() != 2 {
			t.Errorf("state %s, %d fetches", s.State, f.calls.Load())
		}
	})
	t.Run("concurrent fresh calls coalesce", func(t *testing.T) {
		e.clock.Advance(time.Second)
		slow := &fetcher{items: items(3), delay: 100 * time.Millisecond}
		var wg sync.WaitGroup
		ids := make(chan string, 40)
		for i := range 40 {
			c := c1
			if i%2 == 1 {
				c = c2
			}
			wg.Go(func() {
				s, err := c.List(t.Context(), scope, "users", fresh, 0, slow.fetch)
				if err != nil {
					t.Error(err)
					return
				}
				ids <- s.ID
			})
		}
		wg.Wait()
		close(ids)
		seen := map[string]bool{}
		for id := range ids {
			seen[id] = true
		}
		if slow.calls.Load() != 1 || len(seen) != 1 {
			t.Errorf("%d fetches, %d snapshots; want 1 and 1", slow.calls.Load(), len(seen))
		}
	})
}

var errUpstream = errors.New("upstream: 503")

func TestStale(t *testing.T) {
	t.Parallel()
	acceptAll := func(error) bool { return true }
	rejectAll := func(error) bool { return false }
	tests := []struct {
		name    string
		age     time.Duration
		stale   func(error) bool
		wantErr bool
	}{
		{"within MaxStale, accepted", policy.TTL + time.Minute, acceptAll, false},
		{"at TTL+MaxStale, accepted", policy.TTL + policy.MaxStale, acceptAll, false},
		{"beyond TTL+MaxStale", policy.TTL + policy.MaxStale + time.Second, acceptAll, true},
		{"error rejected", policy.TTL + time.Minute, rejectAll, true},
		{"no Stale func", policy.TTL + time.Minute, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			c, _ := e.cache(t, nil)
			good := &fetcher{items: items(3)}
			old, err := c.List(t.Context(), scope, "users", policy, 0, good.fetch)
			if err != nil {
				t.Fatal(err)
			}
			e.clock.Advance(tt.age)
			p := policy
			p.Stale = tt.stale
			bad := &fetcher{err: errUpstream}
			s, err := c.List(t.Context(), scope, "users", p, 2, bad.fetch)
			if bad.calls.Load() != 1 {
				t.Errorf("%d fetches, want 1", bad.calls.Load())
			}
			if tt.wantErr {
				if !errors.Is(err, errUpstream) {
					t.Fatalf("err %v, want %v", err, errUpstream)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if s.State != cache.Stale || s.ID != old.ID || !errors.Is(s.Err, errUpstream) || !s.FetchedAt.Equal(old.FetchedAt) {
				t.Errorf("got %+v, want STALE %s", s, old.ID)
			}
			if diff := cmp.Diff(strs(good.items[:2]), strs(s.First)); diff != "" {
				t.Errorf("First (-want +got):\n%s", diff)
			}
		})
	}
	t.Run("no entry", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		c, _ := e.cache(t, nil)
		p := policy
		p.Stale = acceptAll
		if _, err := c.List(t.Context(), scope, "users", p, 0, (&fetcher{err: errUpstream}).fetch); !errors.Is(err, errUpstream) {
			t.Fatalf("err %v, want %v", err, errUpstream)
		}
	})
}

func TestDerive(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	caches := make([]*cache.Cache, 3)
	for i := range caches {
		caches[i], _ = e.cache(t, nil)
	}
	all := items(10)
	base, err := caches[0].List(t.Context(), scope, "users", policy, 0, (&fetcher{items: all}).fetch)
	if err != nil {
		t.Fatal(err)
	}
	base.State = cache.Hit // as another caller would see it
	var keeps atomic.Int64
	even := func(item []byte) bool {
		keeps.Add(1)
		time.Sleep(time.Millisecond)          // simulated work, so that concurrent derivations overlap
		return (item[len(item)-2]-'0')%2 == 0 // items look like {"i":7}
	}
	want := [][]byte{all[0], all[2], all[4], all[6], all[8]}

	var wg sync.WaitGroup
	got := make(chan cache.Snapshot, 30)
	for i := range 30 {
		wg.Go(func() {
			s, err := caches[i%3].Derive(t.Context(), scope, base, "even", 2+i%4, even)
			if err != nil {
				t.Error(err)
				return
			}
			got <- s
		})
	}
	wg.Wait()
	close(got)
	ids := map[string]bool{}
	for s := range got {
		ids[s.ID] = true
		if s.Count != 5 || s.State != cache.Hit || !s.FetchedAt.Equal(base.FetchedAt) || s.ID == base.ID {
			t.Errorf("derived %+v", s)
		}
		if diff := cmp.Diff(strs(want[:len(s.First)]), strs(s.First)); diff != "" || len(s.First) < 2 {
			t.Errorf("First (-want +got):\n%s", diff)
		}
	}
	if n := keeps.Load(); n != 10 || len(ids) != 1 {
		t.Errorf("keep ran %d times (want 10: one derivation), %d derived ids (want 1)", n, len(ids))
	}
	var id string
	for k := range ids {
		id = k
	}

	t.Run("reused", func(t *testing.T) {
		s, err := caches[1].Derive(t.Context(), scope, base, "even", 0, even)
		if err != nil {
			t.Fatal(err)
		}
		if s.ID != id || keeps.Load() != 10 {
			t.Errorf("derived again: same id %v, keep ran %d times", s.ID == id, keeps.Load())
		}
	})
	t.Run("pages", func(t *testing.T) {
		items, err := caches[2].Page(t.Context(), scope, id, 3, 10)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(strs(want[3:]), strs(items)); diff != "" {
			t.Errorf("items (-want +got):\n%s", diff)
		}
	})
	t.Run("empty result", func(t *testing.T) {
		s, err := caches[0].Derive(t.Context(), scope, base, "none", 5, func([]byte) bool { return false })
		if err != nil {
			t.Fatal(err)
		}
		items, err := caches[0].Page(t.Context(), scope, s.ID, 0, 10)
		if s.Count != 0 || len(s.First) != 0 || err != nil || len(items) != 0 {
			t.Errorf("Count %d First %d Page %d, %v", s.Count, len(s.First), len(items), err)
		}
	})
	t.Run("base gone", func(t *testing.T) {
		if err := e.rdb.Del(t.Context(), e.snapKey(scope, base.ID)).Err(); err != nil {
			t.Fatal(err)
		}
		if _, err := caches[0].Derive(t.Context(), scope, base, "odd", 0, even); !errors.Is(err, cache.ErrSnapshotGone) {
			t.Errorf("err %v, want ErrSnapshotGone", err)
		}
	})
	t.Run("other scope", func(t *testing.T) {
		other := cache.Scope{Tenant: "other", Account: scope.Account}
		if _, err := caches[0].Derive(t.Context(), other, base, "even", 0, even); !errors.Is(err, cache.ErrSnapshotGone) {
			t.Errorf("err %v, want ErrSnapshotGone", err)
		}
	})
}

// A caller that gives up must not fail the callers that joined its fill, nor cancel the fetch.
func TestCancelledCallerDoesNotFailOthers(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c, _ := e.cache(t, nil)
	joins := make(chan struct{}, 2)
	cache.OnJoin(c, func() { joins <- struct{}{} })
	started, release := make(chan struct{}), make(chan struct{})
	var fetchErr atomic.Value
	fetch := func(ctx context.Context) ([][]byte, bool, error) {
		close(started)
		<-release
		fetchErr.Store(fmt.Sprint(ctx.Err()))
		return items(2), false, nil
	}
	ctx, cancel := context.WithCancel(t.Context())
	leaderDone := make(chan error)
	go func() {
		_, err := c.List(ctx, scope, "users", policy, 0, fetch)
		leaderDone <- err
	}()
	<-started
	joined := make(chan cache.Snapshot)
	go func() {
		s, err := c.List(t.Context(), scope, "users", policy, 1, fetch)
		if err != nil {
			t.Error(err)
		}
		joined <- s
	}()
	// Both callers are in the one fill before it may end (else the second would find the
	// snapshot already made: a HIT, not a join).
	<-joins
	<-joins
	cancel()
	if err := <-leaderDone; !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled caller: %v", err)
	}
	close(release)
	s := <-joined
	if s.State != cache.Miss || s.Count != 2 || len(s.First) != 1 {
		t.Errorf("joined caller got %+v", s)
	}
	if got := fetchErr.Load(); got != "<nil>" {
		t.Errorf("fetch context: %v", got)
	}
}

// A waiter whose lock holder vanished takes over once the lock expires.
func TestLockTakeover(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c, _ := e.cache(t, nil)
	lock := e.rdb.Prefix + "{acct:" + scope.Account + "}:cache:" + scope.Tenant + ":l:users"
	if err := e.rdb.Set(t.Context(), lock, "a-dead-replica", 200*time.Millisecond).Err(); err != nil {
		t.Fatal(err)
	}
	f := &fetcher{items: items(1)}
	s, err := c.List(t.Context(), scope, "users", policy, 0, f.fetch)
	if err != nil {
		t.Fatal(err)
	}
	if s.State != cache.Miss || f.calls.Load() != 1 {
		t.Errorf("state %s, %d fetches", s.State, f.calls.Load())
	}
	if n, err := e.rdb.Exists(t.Context(), lock).Result(); err != nil || n != 0 {
		t.Errorf("lock left behind: %d, %v", n, err)
	}
}

// TestOrphanedLockReleasedWhenRedisReturns: Redis dies while a replica fetches under the fill
// lock and comes back with its data. Another replica that saw the outage does not wait for that
// lock, and the lock is released as soon as its holder's replica reaches Redis again, instead of
// making every replica wait out FillLockTTL.
func TestOrphanedLockReleasedWhenRedisReturns(t *testing.T) {
	t.Parallel()
	srv := redistest.StartServer(t)
	e := newEnvAt(t, srv.URL())
	c, _ := e.cache(t, func(o *cache.Options) { o.FillLockTTL = time.Minute })
	// Replica b keeps its own time: its down backoff ends while c's has not.
	bClock := newClock()
	b, _ := e.cache(t, func(o *cache.Options) {
		o.FillLockTTL, o.Now, o.DownBackoff = time.Minute, bClock.Now, 10*time.Millisecond
	})
	lock := e.rdb.Prefix + "{acct:" + scope.Account + "}:cache:" + scope.Tenant + ":l:org:1"
	started, release := make(chan struct{}), make(chan struct{})
	done := make(chan error, 1)
	go func() {
		v, _, err := c.Value(context.Background(), scope, "org:1", policy, func(context.Context) ([]byte, error) {
			close(started)
			<-release
			return []byte(`{"id":1}`), nil
		})
		if err == nil && string(v) != `{"id":1}` {
			err = fmt.Errorf("value %s", v)
		}
		done <- err
	}()
	<-started
	srv.Kill()
	close(release)
	if err := <-done; err != nil {
		t.Fatalf("the fill that lost Redis failed its caller: %v", err)
	}
	org3 := func(context.Context) ([]byte, error) { return []byte(`{"id":3}`), nil }
	if _, _, err := b.Value(t.Context(), scope, "org:3", policy, org3); err != nil {
		t.Fatalf("b during the outage: %v", err) // b fails open, and notes the outage
	}
	srv.Start()
	if n, err := e.rdb.Exists(t.Context(), lock).Result(); err != nil || n != 1 {
		t.Fatalf("the restarted Redis has no orphaned lock (%d, %v): the test proves nothing", n, err)
	}
	bClock.Advance(time.Minute)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	var bFetches atomic.Int64
	v, _, err := b.Value(ctx, scope, "org:1", policy, func(context.Context) ([]byte, error) {
		bFetches.Add(1)
		return []byte(`{"id":1}`), nil
	})
	if err != nil || string(v) != `{"id":1}` || bFetches.Load() != 1 {
		t.Fatalf("b waited for the orphaned lock: %s, %v, %d fetches", v, err, bFetches.Load())
	}
	e.clock.Advance(time.Minute) // past the down backoff: the next call tries Redis again
	if _, _, err := c.Value(t.Context(), scope, "org:2", policy, func(context.Context) ([]byte, error) {
		return []byte(`{"id":2}`), nil
	}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for e.rdb.Exists(t.Context(), lock).Val() == 1 {
		if time.Now().After(deadline) {
			t.Fatal("the orphaned fill lock is still held 5 s after Redis came back")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// bound is far below what a patient Redis client would take, far above what a 50ms op timeout needs.
const bound = 500 * time.Millisecond

func timed(t *testing.T, name string, f func()) {
	t.Helper()
	start := time.Now()
	f()
	if d := time.Since(start); d > bound {
		t.Errorf("%s took %s, want < %s", name, d, bound)
	}
}

func TestFailOpen(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		addr func(t testing.TB) string
	}{
		{"closed port", redistest.ClosedAddr},
		{"blackhole", redistest.Blackhole},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			clk := newClock()
			rc, h := client(t, urlWithHost(t, tt.addr(t)))
			var logs bytes.Buffer
			var logMu sync.Mutex
			c, err := cache.New(cache.Options{
				Client: rc, Now: clk.Now, OpTimeout: 50 * time.Millisecond, DownBackoff: time.Second,
				Logger: slog.New(slog.NewTextHandler(&lockedWriter{w: &logs, mu: &logMu}, nil)),
			})
			if err != nil {
				t.Fatal(err)
			}
			ctx := t.Context()
			f := &fetcher{items: [][]byte{[]byte(`{"secret-item":1}`), []byte(`{"i":2}`), []byte(`{"i":3}`)}}
			var s cache.Snapshot
			timed(t, "first List", func() {
				s, err = c.List(ctx, scope, "users", policy, 2, f.fetch)
			})
			if err != nil {
				t.Fatal(err)
			}
			if s.State != cache.Miss || s.Count != 3 || len(s.First) != 2 || f.calls.Load() != 1 {
				t.Fatalf("first List: %+v, %d fetches", s, f.calls.Load())
			}
			touched := h.touches()

			// Within DownBackoff: served in process, Redis untouched.
			clk.Advance(500 * time.Millisecond)
			timed(t, "second List", func() {
				s, err = c.List(ctx, scope, "users", policy, 1, f.fetch)
			})
			if err != nil || s.State != cache.Hit || f.calls.Load() != 1 || len(s.First) != 1 {
				t.Errorf("second List: %+v, %v, %d fetches", s, err, f.calls.Load())
			}
			var page [][]byte
			timed(t, "Page", func() { page, err = c.Page(ctx, scope, s.ID, 1, 5) })
			if diff := cmp.Diff(strs(f.items[1:]), strs(page)); err != nil || diff != "" {
				t.Errorf("Page: %v (-want +got):\n%s", err, diff)
			}
			if page, err = c.Page(ctx, scope, s.ID, 2, math.MaxInt); err != nil || len(page) != 1 {
				t.Errorf("huge local page: %d items, %v", len(page), err)
			}
			timed(t, "Page of a Redis snapshot", func() {
				_, err = c.Page(ctx, scope, "r0123456789abcdef0123456789abcdef", 0, 5)
			})
			if !errors.Is(err, cache.ErrSnapshotGone) {
				t.Errorf("Page of a Redis snapshot: %v", err)
			}
			var d cache.Snapshot
			timed(t, "Derive", func() {
				d, err = c.Derive(ctx, scope, s, "not-secret", 5, func(b []byte) bool { return !bytes.Contains(b, []byte("secret")) })
			})
			if err != nil || d.Count != 2 || d.State != cache.Hit {
				t.Errorf("Derive: %+v, %v", d, err)
			}
			var v []byte
			var calls int
			for range 2 {
				timed(t, "Value", func() {
					v, _, err = c.Value(ctx, scope, "org:1", policy, func(context.Context) ([]byte, error) {
						calls++
						return []byte(`{"org":1}`), nil
					})
				})
				if err != nil || string(v) != `{"org":1}` {
					t.Errorf("Value: %s, %v", v, err)
				}
			}
			if calls != 1 {
				t.Errorf("Value fetched %d times, want 1", calls)
			}
			if n := h.touches() - touched; n != 0 {
				t.Errorf("Redis touched %d times while marked down", n)
			}
			timed(t, "Invalidate", func() { err = c.Invalidate(ctx, scope, "users") })
			if err == nil {
				t.Error("Invalidate with Redis down reported success")
			}
			timed(t, "List after Invalidate", func() { s, err = c.List(ctx, scope, "users", policy, 0, f.fetch) })
			if err != nil || s.State != cache.Miss || f.calls.Load() != 2 {
				t.Errorf("List after Invalidate: %+v, %v, %d fetches", s, err, f.calls.Load())
			}

			// After the back-off Redis is tried again (and still fails fast).
			clk.Advance(time.Second)
			touched = h.touches()
			timed(t, "List after back-off", func() { s, err = c.List(ctx, scope, "users", policy, 0, f.fetch) })
			if err != nil || s.State != cache.Hit {
				t.Errorf("List after back-off: %+v, %v", s, err)
			}
			if h.touches() == touched {
				t.Error("Redis not retried after DownBackoff")
			}

			logMu.Lock()
			defer logMu.Unlock()
			if strings.Contains(logs.String(), "secret") {
				t.Errorf("logs leak item contents:\n%s", logs.String())
			}
			if n := strings.Count(logs.String(), "level=WARN"); n != 1 {
				t.Errorf("%d warnings, want 1 per outage:\n%s", n, logs.String())
			}
		})
	}
}

type lockedWriter struct {
	w  io.Writer
	mu *sync.Mutex
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func TestRecovery(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	px := redistest.NewProxy(t, redisAddr(t))
	rc, h := client(t, urlWithHost(t, px.Addr()))
	c, err := cache.New(cache.Options{
		Client: rc, Prefix: e.rdb.Prefix, Now: e.clock.Now, OpTimeout: 50 * time.Millisecond,
		DownBackoff: time.Second, PollInterval: 5 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	inRedis := func(key string) bool {
		t.Helper()
		n, err := e.rdb.Exists(ctx, e.headKey(scope, key)).Result()
		if err != nil {
			t.Fatal(err)
		}
		return n == 1
	}
	list := func(key string) cache.Snapshot {
		t.Helper()
		var s cache.Snapshot
		var err error
		timed(t, "List "+key, func() { s, err = c.List(ctx, scope, key, policy, 0, (&fetcher{items: items(2)}).fetch) })
		if err != nil {
			t.Fatal(err)
		}
		return s
	}

	if s := list("k1"); !inRedis("k1") || s.ID[0] != 'r' {
		t.Fatalf("k1 not written to Redis: %s", s.ID)
	}
	px.SetBlackout(true)
	if s := list("k2"); inRedis("k2") || s.ID[0] != 'l' || s.State != cache.Miss {
		t.Fatalf("k2 with Redis blackholed: %+v", s)
	}
	px.SetBlackout(false)
	touched := h.touches()
	if s := list("k3"); inRedis("k3") || s.ID[0] != 'l' {
		t.Errorf("k3 within DownBackoff: %+v", s)
	}
	if h.touches() != touched {
		t.Error("Redis touched within DownBackoff")
	}

	e.clock.Advance(time.Second)
	if s := list("k4"); !inRedis("k4") || s.ID[0] != 'r' {
		t.Errorf("k4 after recovery: %+v", s)
	}
	if s := list("k2"); !inRedis("k2") || s.ID[0] != 'r' || s.State != cache.Miss {
		t.Errorf("k2 after recovery: %+v", s)
	}
	if s := list("k1"); s.State != cache.Hit {
		t.Errorf("k1 after recovery: %+v", s)
	}
}

// A write that fails after a successful fetch must not fail the call.
func TestWriteFailureAfterFetch(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	px := redistest.NewProxy(t, redisAddr(t))
	rc, _ := client(t, urlWithHost(t, px.Addr()))
	c, err := cache.New(cache.Options{
		Client: rc, Prefix: e.rdb.Prefix, Now: e.clock.Now, OpTimeout: 50 * time.Millisecond,
		WriteTimeout: 50 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	s, err := c.List(t.Context(), scope, "users", policy, 1, func(context.Context) ([][]byte, bool, error) {
		px.SetBlackout(true) // Redis vanishes while the upstream answers
		return items(3), false, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if s.State != cache.Miss || s.Count != 3 || len(s.First) != 1 || s.ID[0] != 'l' {
		t.Fatalf("got %+v", s)
	}
	page, err := c.Page(t.Context(), scope, s.ID, 0, 10)
	if err != nil || len(page) != 3 {
		t.Errorf("Page: %d items, %v", len(page), err)
	}
}

// A panicking fetch or filter runs in a goroutine shared by many callers; it must become an error
// instead of crashing the process.
func TestPanicsBecomeErrors(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c, _ := e.cache(t, nil)
	_, err := c.List(t.Context(), scope, "users", policy, 0, func(context.Context) ([][]byte, bool, error) {
		panic("boom")
	})
	if err == nil {
		t.Error("List with a panicking fetch succeeded")
	}
	base, err := c.List(t.Context(), scope, "users", policy, 0, (&fetcher{items: items(2)}).fetch)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Derive(t.Context(), scope, base, "bad", 0, func([]byte) bool { panic("boom") }); err == nil {
		t.Error("Derive with a panicking filter succeeded")
	}
	// The lock was released: a good filter derives at once.
	if d, err := c.Derive(t.Context(), scope, base, "bad", 0, func([]byte) bool { return true }); err != nil || d.Count != 2 {
		t.Errorf("Derive after the panic: %+v, %v", d, err)
	}
}

// TestFlightGroups: a fill that fails for its caller (a background poller refused its budget)
// does not answer a caller of another flight group waiting on the same key: that caller fetches
// with its own context once the failed fill lets go of the lock. Callers of one group share the
// fill, failure included.
func TestFlightGroups(t *testing.T) {
	t.Parallel()
	refused := errors.New("background budget spent")
	for _, tt := range []struct {
		name        string
		second      string // the second caller's group; the first is "background"
		wantShared  bool   // the second caller gets the first fill's failure
		wantFetches int64  // by the second caller
	}{
		{"another group fetches for itself", "", false, 1},
		{"the same group shares the failure", "background", true, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			c, _ := e.cache(t, nil)
			started, release := make(chan struct{}), make(chan struct{})
			first := func(ctx context.Context) ([][]byte, bool, error) {
				close(started)
				<-release
				return nil, false, refused
			}
			second := &fetcher{items: items(3)}

			firstErr := make(chan error, 1)
			go func() {
				_, err := c.List(cache.WithFlightGroup(t.Context(), "background"), scope, "users", policy, 3, first)
				firstErr <- err
			}()
			<-started
			type outcome struct {
				s   cache.Snapshot
				err error
			}
			secondDone := make(chan outcome, 1)
			go func() {
				s, err := c.List(cache.WithFlightGroup(t.Context(), tt.second), scope, "users", policy, 3, second.fetch)
				secondDone <- outcome{s, err}
			}()
			// Let the second caller reach its wait (on the fill, or on the Redis lock) before the
			// first fill fails; had it not, it would fetch for itself in both cases.
			time.Sleep(200 * time.Millisecond)
			close(release)
			if err := <-firstErr; !errors.Is(err, refused) {
				t.Fatalf("first caller: %v, want its refusal", err)
			}
			got := <-secondDone
			if tt.wantShared {
				if !errors.Is(got.err, refused) {
					t.Errorf("second caller of the same group: %v, want the shared refusal", got.err)
				}
			} else if got.err != nil || got.s.Count != 3 {
				t.Errorf("second caller of another group: count %d, err %v; want its own fill", got.s.Count, got.err)
			}
			if n := second.calls.Load(); n != tt.wantFetches {
				t.Errorf("the second caller's fetch ran %d times, want %d", n, tt.wantFetches)
			}
		})
	}
}
