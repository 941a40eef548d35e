package quota_test

import (
	"errors"
	"log/slog"
	"math/rand/v2"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/redis/go-redis/v9"

	"github.com/dirgate/dirgate/internal/quota"
	"github.com/dirgate/dirgate/internal/redistest"
	"github.com/dirgate/dirgate/internal/store"
	"github.com/dirgate/dirgate/internal/testclock"
	"github.com/dirgate/dirgate/internal/testlog"
)

var acct = quota.Key{ClientID: "app", UserID: 42}

// t0 is a whole millisecond, so that RetryAfter values compare exactly.
var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// clock is the settable test clock.
type clock = testclock.Clock

func newClock() *clock { return testclock.New(t0) }

// client returns a Redis client built the way the gateway builds one, for rawURL.
func client(t *testing.T, rawURL string) redis.UniversalClient {
	t.Helper()
	c, err := store.NewRedisClient(store.RedisConfig{
		URL: rawURL, DialTimeout: redistest.DialTimeout(rawURL), ReadTimeout: 2 * time.Second, WriteTimeout: 2 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
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

// env is one test's Redis prefix and clock, shared by the Budgets it builds.
type env struct {
	rdb   *redistest.Redis
	clock *clock
}

func newEnv(t *testing.T) *env {
	t.Helper()
	return &env{rdb: redistest.New(t), clock: newClock()}
}

// budget builds a Budget on its own client to rawURL (the live Redis when empty).
func (e *env) budget(t *testing.T, rawURL string, mod func(*quota.Options)) *quota.Budget {
	t.Helper()
	if rawURL == "" {
		rawURL = redistest.URL()
	}
	// A generous Redis timeout: under a loaded -race run, the production 50 ms would send a test
	// meant for the Redis path to the local budget. Fail-open tests set their own.
	o := quota.Options{Client: client(t, rawURL), Prefix: e.rdb.Prefix, Now: e.clock.Now, OpTimeout: 5 * time.Second}
	if mod != nil {
		mod(&o)
	}
	b, err := quota.New(o)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// backends are the two ways a Budget decides: through Redis, and locally because Redis is down
// (one replica, so the local share is the whole limit). The semantics must be the same.
func backends(t *testing.T) []struct {
	name string
	url  func(t *testing.T) string
} {
	t.Helper()
	return []struct {
		name string
		url  func(t *testing.T) string
	}{
		{"redis", func(*testing.T) string { return redistest.URL() }},
		{"local", func(t *testing.T) string { return urlWithHost(t, redistest.ClosedAddr(t)) }},
	}
}

func admit(t *testing.T, b *quota.Budget, k quota.Key, c quota.Class, p quota.Priority) quota.Decision {
	t.Helper()
	d, err := b.Admit(t.Context(), k, c, p)
	if err != nil {
		t.Fatalf("Admit(%v, %s, %d): %v", k, c, p, err)
	}
	return d
}

func TestNewValidates(t *testing.T) {
	t.Parallel()
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	t.Cleanup(func() { _ = c.Close() })
	tests := []struct {
		name string
		o    quota.Options
	}{
		{"no client", quota.Options{}},
		{"negative general limit", quota.Options{Client: c, GeneralLimit: -1}},
		{"negative rate limited limit", quota.Options{Client: c, RateLimitedLimit: -5}},
		{"reserve 1", quota.Options{Client: c, Reserve: 1}},
		{"negative reserve", quota.Options{Client: c, Reserve: -0.1}},
		{"negative replicas", quota.Options{Client: c, Replicas: -1}},
		{"brace in prefix", quota.Options{Client: c, Prefix: "x{"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := quota.New(tt.o); err == nil {
				t.Error("New succeeded")
			}
		})
	}
	if _, err := quota.New(quota.Options{Client: c}); err != nil {
		t.Errorf("New with defaults: %v", err)
	}
}

func TestInvalidArguments(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	b := e.budget(t, "", nil)
	ctx := t.Context()
	tests := []struct {
		name string
		call func() error
	}{
		{"admit empty client id", func() error {
			_, err := b.Admit(ctx, quota.Key{UserID: 1}, quota.General, quota.Interactive)
			return err
		}},
		{"admit unknown class", func() error { _, err := b.Admit(ctx, acct, "other", quota.Interactive); return err }},
		{"admit unknown priority", func() error { _, err := b.Admit(ctx, acct, quota.General, 7); return err }},
		{"observe negative", func() error { return b.Observe(ctx, acct, quota.General, -1) }},
		{"observe unknown class", func() error { return b.Observe(ctx, acct, "x", 1) }},
		{"cooldown empty client id", func() error { return b.Cooldown(ctx, quota.Key{}, time.Second) }},
		{"status empty client id", func() error { _, err := b.Status(ctx, quota.Key{}); return err }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.call(); !errors.Is(err, quota.ErrInvalid) {
				t.Errorf("got %v, want ErrInvalid", err)
			}
		})
	}
}

func TestRollingWindow(t *testing.T) {
	t.Parallel()
	for _, be := range backends(t) {
		t.Run(be.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			b := e.budget(t, be.url(t), func(o *quota.Options) { o.GeneralLimit = 10 })
			// Ten calls over the first 27 minutes, at uneven offsets.
			for i := range 10 {
				e.clock.Set(t0.Add(time.Duration(i)*3*time.Minute + time.Duration(i)*7*time.Millisecond))
				want := quota.Decision{Allowed: true, Limit: 10, Remaining: 9 - i}
				if diff := cmp.Diff(want, admit(t, b, acct, quota.General, quota.Interactive)); diff != "" {
					t.Fatalf("call %d (-want +got):\n%s", i+1, diff)
				}
			}
			e.clock.Set(t0.Add(30 * time.Minute))
			want := quota.Decision{RetryAfter: 30 * time.Minute, Limit: 10}
			if diff := cmp.Diff(want, admit(t, b, acct, quota.General, quota.Interactive)); diff != "" {
				t.Fatalf("11th call (-want +got):\n%s", diff)
			}
			e.clock.Set(t0.Add(time.Hour - time.Millisecond))
			want = quota.Decision{RetryAfter: time.Millisecond, Limit: 10}
			if diff := cmp.Diff(want, admit(t, b, acct, quota.General, quota.Interactive)); diff != "" {
				t.Fatalf("1ms before the first call leaves (-want +got):\n%s", diff)
			}
			e.clock.Set(t0.Add(time.Hour))
			want = quota.Decision{Allowed: true, Limit: 10}
			if diff := cmp.Diff(want, admit(t, b, acct, quota.General, quota.Interactive)); diff != "" {
				t.Fatalf("when the first call leaves (-want +got):\n%s", diff)
			}
			// The second call was at 3m7ms: that is when the next slot frees up.
			want = quota.Decision{RetryAfter: 3*time.Minute + 7*time.Millisecond, Limit: 10}
			if diff := cmp.Diff(want, admit(t, b, acct, quota.General, quota.Interactive)); diff != "" {
				t.Fatalf("next call (-want +got):\n%s", diff)
			}
			// Another key has its own budget.
			other := quota.Key{ClientID: "app", UserID: 43}
			if d := admit(t, b, other, quota.General, quota.Interactive); !d.Allowed {
				t.Errorf("other key refused: %+v", d)
			}
		})
	}
}

// Random arrivals at three replicas over three simulated hours: no 60-minute window may hold more
// than the limit of admitted calls.
func TestNoWindowExceedsLimit(t *testing.T) {
	t.Parallel()
	const limit = 20
	e := newEnv(t)
	var budgets []*quota.Budget
	for range 3 {
		budgets = append(budgets, e.budget(t, "", func(o *quota.Options) {
			o.GeneralLimit = limit
			o.OpTimeout = 5 * time.Second // a slow CI machine must not fall back to the local budget
		}))
	}
	rng := rand.New(rand.NewPCG(1, 2))
	arrivals := make([]time.Duration, 1500)
	for i := range arrivals {
		arrivals[i] = time.Duration(rng.Int64N(int64(3 * time.Hour)))
	}
	slices.Sort(arrivals)
	var admitted []time.Duration
	for _, at := range arrivals {
		e.clock.Set(t0.Add(at))
		b := budgets[rng.IntN(len(budgets))]
		p := quota.Priority(rng.IntN(2))
		if admit(t, b, acct, quota.General, p).Allowed {
			admitted = append(admitted, at.Truncate(time.Millisecond))
		}
	}
	if len(admitted) < 2*limit {
		t.Fatalf("only %d calls admitted over 3 hours with limit %d/hour", len(admitted), limit)
	}
	for i, start := range admitted {
		n := 0
		for _, at := range admitted[i:] {
			if at >= start+time.Hour {
				break
			}
			n++
		}
		if n > limit {
			t.Fatalf("%d calls admitted in the hour from %v (limit %d)", n, start, limit)
		}
	}
}

func TestConcurrentAdmit(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	var budgets []*quota.Budget
	for range 3 {
		budgets = append(budgets, e.budget(t, "", func(o *quota.Options) {
			o.GeneralLimit = 100
			o.Replicas = 3
			o.OpTimeout = 5 * time.Second // a slow CI machine must not fall back to the local budget
		}))
	}
	var allowed atomic.Int64
	var wg sync.WaitGroup
	start := make(chan struct{})
	for _, b := range budgets {
		for range 50 {
			wg.Go(func() {
				<-start
				d, err := b.Admit(t.Context(), acct, quota.General, quota.Interactive)
				if err != nil {
					t.Error(err)
				}
				if d.Allowed {
					allowed.Add(1)
				}
			})
		}
	}
	close(start)
	wg.Wait()
	if got := allowed.Load(); got != 100 {
		t.Errorf("%d admitted, want 100", got)
	}
	n, err := e.rdb.ZCard(t.Context(), e.rdb.Key("quota:{app:42}:general")).Result()
	if err != nil || n != 100 {
		t.Errorf("Redis holds %d calls (%v), want 100", n, err)
	}
}

func TestRateLimitedConsumesGeneral(t *testing.T) {
	t.Parallel()
	type step struct {
		class     quota.Class
		allowed   bool
		remaining int
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"rate limited full", []step{
			{quota.RateLimited, true, 2}, // min(3-1, 5-1)
			{quota.RateLimited, true, 1},
			{quota.General, true, 2},
			{quota.RateLimited, true, 0},
			{quota.RateLimited, false, 0},
			{quota.General, true, 0}, // General still has room
			{quota.General, false, 0},
		}},
		{"general full refuses rate limited", []step{
			{quota.General, true, 4},
			{quota.General, true, 3},
			{quota.General, true, 2},
			{quota.General, true, 1},
			{quota.General, true, 0},
			{quota.RateLimited, false, 0},
		}},
	}
	for _, be := range backends(t) {
		for _, tt := range tests {
			t.Run(be.name+"/"+tt.name, func(t *testing.T) {
				t.Parallel()
				e := newEnv(t)
				b := e.budget(t, be.url(t), func(o *quota.Options) { o.GeneralLimit, o.RateLimitedLimit = 5, 3 })
				for i, s := range tt.steps {
					e.clock.Set(t0.Add(time.Duration(i) * time.Minute))
					d := admit(t, b, acct, s.class, quota.Interactive)
					if d.Allowed != s.allowed || d.Remaining != s.remaining {
						t.Fatalf("step %d (%s): got %+v, want allowed %v remaining %d", i, s.class, d, s.allowed, s.remaining)
					}
					if !d.Allowed {
						// Whichever budget is full, the first call counted in it frees the slot.
						if d.RetryAfter != time.Hour-time.Duration(i)*time.Minute {
							t.Errorf("step %d: RetryAfter %v", i, d.RetryAfter)
						}
					}
				}
			})
		}
	}
}

func TestReserve(t *testing.T) {
	t.Parallel()
	for _, be := range backends(t) {
		t.Run(be.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			b := e.budget(t, be.url(t), func(o *quota.Options) { o.GeneralLimit = 10 }) // default reserve 0.2: line at 8
			for i := range 7 {
				e.clock.Set(t0.Add(time.Duration(i) * time.Minute))
				admit(t, b, acct, quota.General, quota.Interactive)
			}
			steps := []struct {
				at   time.Duration
				p    quota.Priority
				want quota.Decision
			}{
				{7 * time.Minute, quota.Background, quota.Decision{Allowed: true, Limit: 10, Remaining: 2}},
				// 8 of 10 used: Background waits for the call at minute 0 to leave.
				{8 * time.Minute, quota.Background, quota.Decision{RetryAfter: 52 * time.Minute, Limit: 10, Remaining: 2}},
				{8 * time.Minute, quota.Interactive, quota.Decision{Allowed: true, Limit: 10, Remaining: 1}},
				// 9 used: the calls at minutes 0 and 1 must leave.
				{8 * time.Minute, quota.Background, quota.Decision{RetryAfter: 53 * time.Minute, Limit: 10, Remaining: 1}},
				{9 * time.Minute, quota.Interactive, quota.Decision{Allowed: true, Limit: 10, Remaining: 0}},
				{10 * time.Minute, quota.Interactive, quota.Decision{RetryAfter: 50 * time.Minute, Limit: 10}},
				// At minute 62 the calls at minutes 0 to 2 have left: 7 used.
				{62 * time.Minute, quota.Background, quota.Decision{Allowed: true, Limit: 10, Remaining: 2}},
			}
			for i, s := range steps {
				e.clock.Set(t0.Add(s.at))
				if diff := cmp.Diff(s.want, admit(t, b, acct, quota.General, s.p)); diff != "" {
					t.Fatalf("step %d (-want +got):\n%s", i, diff)
				}
			}
		})
	}
}

func TestNoReserve(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	b := e.budget(t, "", func(o *quota.Options) { o.GeneralLimit, o.NoReserve = 3, true })
	for i := range 3 {
		if d := admit(t, b, acct, quota.General, quota.Background); !d.Allowed {
			t.Fatalf("background call %d refused without a reserve: %+v", i, d)
		}
	}
}

func TestObserve(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		remaining int
		// admits: how many more calls are admitted after Observe.
		admits int
	}{
		{"lower than ours", 3, 3},
		{"equal to ours", 8, 8},
		{"higher than ours", 9, 8},
		{"zero", 0, 0},
	}
	for _, be := range backends(t) {
		for _, tt := range tests {
			t.Run(be.name+"/"+tt.name, func(t *testing.T) {
				t.Parallel()
				e := newEnv(t)
				b := e.budget(t, be.url(t), func(o *quota.Options) { o.GeneralLimit = 10 })
				admit(t, b, acct, quota.General, quota.Interactive)
				if d := admit(t, b, acct, quota.General, quota.Interactive); d.Remaining != 8 {
					t.Fatalf("Remaining %d after 2 calls", d.Remaining)
				}
				if err := b.Observe(t.Context(), acct, quota.General, tt.remaining); err != nil {
					t.Fatal(err)
				}
				e.clock.Advance(time.Minute)
				for i := range tt.admits {
					d := admit(t, b, acct, quota.General, quota.Interactive)
					if !d.Allowed || d.Remaining != tt.admits-i-1 {
						t.Fatalf("call %d after Observe: %+v", i, d)
					}
				}
				if d := admit(t, b, acct, quota.General, quota.Interactive); d.Allowed {
					t.Fatalf("call %d after Observe admitted: %+v", tt.admits, d)
				}
				// Phantoms age out like real calls.
				e.clock.Advance(time.Hour)
				if d := admit(t, b, acct, quota.General, quota.Interactive); !d.Allowed || d.Remaining != 9 {
					t.Errorf("an hour later: %+v", d)
				}
			})
		}
	}
}

func TestCooldownAcrossReplicas(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	a := e.budget(t, "", nil)
	b := e.budget(t, "", nil)
	ctx := t.Context()
	wait := 90*time.Second + 123*time.Millisecond
	if err := a.Cooldown(ctx, acct, wait); err != nil {
		t.Fatal(err)
	}
	ttl, err := e.rdb.PTTL(ctx, e.rdb.Key("quota:{app:42}:cooldown")).Result()
	if err != nil || ttl <= 0 || ttl > wait {
		t.Errorf("cooldown key TTL %v (%v), want in (0, %v]", ttl, err, wait)
	}
	check := func(name string, want time.Duration) {
		t.Helper()
		for i, x := range []*quota.Budget{a, b, e.budget(t, "", nil)} {
			for _, c := range []quota.Class{quota.General, quota.RateLimited} {
				d := admit(t, x, acct, c, quota.Interactive)
				w := quota.Decision{Cooldown: true, RetryAfter: want, Limit: map[quota.Class]int{quota.General: 1000, quota.RateLimited: 250}[c]}
				if diff := cmp.Diff(w, d); diff != "" {
					t.Errorf("%s: replica %d, %s (-want +got):\n%s", name, i, c, diff)
				}
			}
		}
	}
	check("at once", wait)
	e.clock.Advance(500 * time.Millisecond)
	check("500ms later", wait-500*time.Millisecond)
	if err := b.Cooldown(ctx, acct, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	check("after a shorter cooldown", wait-500*time.Millisecond)
	if err := b.Cooldown(ctx, acct, 0); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(wait - 500*time.Millisecond - time.Millisecond)
	check("1ms before the end", time.Millisecond)
	e.clock.Advance(time.Millisecond)
	for i, x := range []*quota.Budget{a, b} {
		if d := admit(t, x, acct, quota.General, quota.Interactive); !d.Allowed {
			t.Errorf("replica %d after the cooldown: %+v", i, d)
		}
	}
	// A longer cooldown extends it.
	if err := b.Cooldown(ctx, acct, time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := b.Cooldown(ctx, acct, 2*time.Minute); err != nil {
		t.Fatal(err)
	}
	if d := admit(t, e.budget(t, "", nil), acct, quota.General, quota.Interactive); !d.Cooldown || d.RetryAfter != 2*time.Minute {
		t.Errorf("after extending: %+v", d)
	}
}

func TestCooldownLocal(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	b := e.budget(t, urlWithHost(t, redistest.ClosedAddr(t)), nil)
	if err := b.Cooldown(t.Context(), acct, time.Minute); err != nil {
		t.Fatal(err)
	}
	if d := admit(t, b, acct, quota.RateLimited, quota.Background); !d.Cooldown || d.RetryAfter != time.Minute {
		t.Errorf("during the cooldown: %+v", d)
	}
	e.clock.Advance(time.Minute)
	if d := admit(t, b, acct, quota.RateLimited, quota.Background); !d.Allowed {
		t.Errorf("after the cooldown: %+v", d)
	}
}

func TestStatus(t *testing.T) {
	t.Parallel()
	for _, be := range backends(t) {
		t.Run(be.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			b := e.budget(t, be.url(t), func(o *quota.Options) { o.GeneralLimit, o.RateLimitedLimit = 10, 4 })
			ctx := t.Context()
			s, err := b.Status(ctx, acct)
			if err != nil {
				t.Fatal(err)
			}
			want := quota.Status{
				Classes: map[quota.Class]quota.ClassStatus{
					quota.General:     {Limit: 10, Remaining: 10},
					quota.RateLimited: {Limit: 4, Remaining: 4},
				},
				Reserve: 0.2,
			}
			if diff := cmp.Diff(want, s); diff != "" {
				t.Errorf("unused (-want +got):\n%s", diff)
			}
			for i, c := range []quota.Class{quota.General, quota.General, quota.General, quota.RateLimited} {
				e.clock.Set(t0.Add(time.Duration(i) * time.Minute))
				admit(t, b, acct, c, quota.Interactive)
			}
			if err := b.Cooldown(ctx, acct, 30*time.Second); err != nil {
				t.Fatal(err)
			}
			e.clock.Set(t0.Add(10 * time.Minute))
			want.Classes = map[quota.Class]quota.ClassStatus{
				quota.General:     {Limit: 10, Remaining: 6, UsedLastHour: 4, NextSlotAt: t0.Add(time.Hour)},
				quota.RateLimited: {Limit: 4, Remaining: 3, UsedLastHour: 1, NextSlotAt: t0.Add(63 * time.Minute)},
			}
			s, err = b.Status(ctx, acct)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want, s); diff != "" {
				t.Errorf("after the cooldown ended (-want +got):\n%s", diff)
			}
			// The calls at minutes 0 and 1 have left the window.
			e.clock.Set(t0.Add(61 * time.Minute))
			want.Classes[quota.General] = quota.ClassStatus{Limit: 10, Remaining: 8, UsedLastHour: 2, NextSlotAt: t0.Add(62 * time.Minute)}
			s, err = b.Status(ctx, acct)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want, s); diff != "" {
				t.Errorf("an hour on (-want +got):\n%s", diff)
			}
			if err := b.Cooldown(ctx, acct, time.Minute); err != nil {
				t.Fatal(err)
			}
			want.CooldownUntil = t0.Add(62 * time.Minute)
			if s, err = b.Status(ctx, acct); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want, s); diff != "" {
				t.Errorf("cooling down (-want +got):\n%s", diff)
			}
		})
	}
}

func TestKeys(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	b := e.budget(t, "", nil)
	admit(t, b, acct, quota.RateLimited, quota.Interactive)
	for _, name := range []string{"quota:{app:42}:general", "quota:{app:42}:rate_limited"} {
		ttl, err := e.rdb.PTTL(t.Context(), e.rdb.Key(name)).Result()
		if err != nil || ttl <= 0 || ttl > time.Hour {
			t.Errorf("%s: TTL %v (%v), want in (0, 1h]", name, ttl, err)
		}
	}
}

// syncBuffer is a log sink safe for concurrent writes.
type syncBuffer = testlog.Buffer

// timed runs f and fails when it does not return: against a blackholed Redis, a call that is not
// bounded by OpTimeout waits forever, so any finite bound tells the two apart. The bound is a
// liveness guard far above every OpTimeout used here, not a performance claim.
func timed(t *testing.T, what string, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		f()
	}()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		t.Fatalf("%s did not return: it waits on Redis beyond OpTimeout", what)
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
			e := newEnv(t)
			var logs syncBuffer
			b := e.budget(t, urlWithHost(t, tt.addr(t)), func(o *quota.Options) {
				o.GeneralLimit, o.Replicas = 10, 2
				o.OpTimeout, o.DownBackoff = 50*time.Millisecond, time.Second
				o.Logger = slog.New(slog.NewTextHandler(&logs, nil))
			})
			ctx := t.Context()
			for i := range 6 {
				if i == 3 {
					e.clock.Advance(2 * time.Second) // past DownBackoff: Redis is tried again
				}
				var d quota.Decision
				var err error
				timed(t, "Admit", func() { d, err = b.Admit(ctx, acct, quota.General, quota.Interactive) })
				if err != nil {
					t.Fatal(err)
				}
				if want := i < 5; d.Allowed != want || d.Limit != 5 {
					t.Errorf("call %d: %+v, want allowed %v (local share 5)", i, d, want)
				}
			}
			timed(t, "Observe", func() {
				if err := b.Observe(ctx, acct, quota.General, 100); err != nil {
					t.Error(err)
				}
			})
			timed(t, "Cooldown", func() {
				if err := b.Cooldown(ctx, acct, time.Minute); err != nil {
					t.Error(err)
				}
			})
			e.clock.Advance(2 * time.Second)
			var s quota.Status
			timed(t, "Status", func() {
				var err error
				if s, err = b.Status(ctx, acct); err != nil {
					t.Error(err)
				}
			})
			if g := s.Classes[quota.General]; g.Limit != 5 || g.UsedLastHour != 5 || !s.CooldownUntil.Equal(e.clock.Now().Add(58*time.Second)) {
				t.Errorf("local status: %+v", s)
			}
			if n := strings.Count(logs.String(), "level=WARN"); n != 1 {
				t.Errorf("%d warnings, want 1:\n%s", n, logs.String())
			}
		})
	}
}

// A cooldown learned while Redis was up holds when Redis dies, and Redis is used again once
// DownBackoff has passed.
func TestOutageAndRecovery(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	px := redistest.NewProxy(t, redisAddr(t))
	var logs syncBuffer
	b := e.budget(t, urlWithHost(t, px.Addr()), func(o *quota.Options) {
		// While Redis is up, every call must reach it: a loaded machine must not make the
		// budget fall back to its local share, so the bound is generous.
		o.OpTimeout, o.DownBackoff = 2*time.Second, time.Second
		o.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	})
	ctx := t.Context()
	inRedis := func() int64 {
		t.Helper()
		n, err := e.rdb.ZCard(ctx, e.rdb.Key("quota:{app:42}:general")).Result()
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	other := quota.Key{ClientID: "app", UserID: 7}
	if err := b.Cooldown(ctx, other, time.Minute); err != nil {
		t.Fatal(err)
	}
	if d := admit(t, b, acct, quota.General, quota.Interactive); !d.Allowed || inRedis() != 1 {
		t.Fatalf("with Redis: %+v, %d in Redis", d, inRedis())
	}

	px.SetBlackout(true)
	e.clock.Advance(time.Second)
	var d quota.Decision
	timed(t, "Admit with Redis blackholed", func() { d = admit(t, b, acct, quota.General, quota.Interactive) })
	if !d.Allowed || inRedis() != 1 {
		t.Errorf("blackholed: %+v, %d in Redis", d, inRedis())
	}
	if d := admit(t, b, other, quota.General, quota.Interactive); !d.Cooldown || d.RetryAfter != 59*time.Second {
		t.Errorf("cooldown during the outage: %+v", d)
	}

	// A 420 learned during the outage is recorded only in process for now.
	late := quota.Key{ClientID: "app", UserID: 8}
	if err := b.Cooldown(ctx, late, 5*time.Minute); err != nil {
		t.Fatal(err)
	}

	px.SetBlackout(false)
	if d := admit(t, b, acct, quota.General, quota.Interactive); !d.Allowed || inRedis() != 1 {
		t.Errorf("within DownBackoff: %+v, %d in Redis", d, inRedis())
	}
	e.clock.Advance(time.Second)
	if d := admit(t, b, acct, quota.General, quota.Interactive); !d.Allowed || inRedis() != 2 {
		t.Errorf("after DownBackoff: %+v, %d in Redis", d, inRedis())
	}
	// The replica that learned of the late 420 passes it on once Redis is back.
	if d := admit(t, b, late, quota.General, quota.Interactive); !d.Cooldown || d.RetryAfter != 5*time.Minute-time.Second {
		t.Errorf("late cooldown after recovery: %+v", d)
	}
	if d := admit(t, e.budget(t, "", nil), late, quota.General, quota.Interactive); !d.Cooldown || d.RetryAfter != 5*time.Minute-time.Second {
		t.Errorf("late cooldown on another replica: %+v", d)
	}
	if !strings.Contains(logs.String(), "reachable again") {
		t.Errorf("recovery not logged:\n%s", logs.String())
	}
}
