package idempotency_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dirgate/dirgate/internal/idempotency"
	"github.com/dirgate/dirgate/internal/redistest"
)

func newStore(t *testing.T, o idempotency.Options) (*idempotency.Store, *redistest.Redis) {
	t.Helper()
	rdb := redistest.New(t)
	o.Client, o.Prefix = rdb, rdb.Prefix
	s, err := idempotency.New(o)
	if err != nil {
		t.Fatal(err)
	}
	return s, rdb
}

func TestBeginCompleteReplay(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t, idempotency.Options{})
	ctx := context.Background()
	fp := idempotency.Fingerprint([]byte("POST"), []byte("/x"), []byte(`{"a":1}`))

	c, err := s.Begin(ctx, "acme", "k1", fp)
	if err != nil || c.Outcome != idempotency.Claimed {
		t.Fatalf("first Begin: %+v %v", c, err)
	}
	again, err := s.Begin(ctx, "acme", "k1", fp)
	if err != nil || again.Outcome != idempotency.InProgress {
		t.Fatalf("Begin while running: %+v %v; want InProgress", again, err)
	}
	other, err := s.Begin(ctx, "acme", "k1", idempotency.Fingerprint([]byte("POST"), []byte("/x"), []byte(`{"a":2}`)))
	if err != nil || other.Outcome != idempotency.Mismatch {
		t.Fatalf("Begin with another body: %+v %v; want Mismatch", other, err)
	}
	want := idempotency.Response{Status: 201, Header: http.Header{"Location": {"/jobs/j1"}}, Body: []byte(`{"id":"j1"}`)}
	if ok, err := s.Complete(ctx, c, want); !ok || err != nil {
		t.Fatalf("Complete: %v %v", ok, err)
	}
	r, err := s.Begin(ctx, "acme", "k1", fp)
	if err != nil || r.Outcome != idempotency.Replay || r.Response == nil {
		t.Fatalf("Begin after Complete: %+v %v; want Replay", r, err)
	}
	if r.Response.Status != 201 || string(r.Response.Body) != `{"id":"j1"}` || r.Response.Header.Get("Location") != "/jobs/j1" {
		t.Errorf("replayed %+v", r.Response)
	}
	if m, _ := s.Begin(ctx, "acme", "k1", "other"); m.Outcome != idempotency.Mismatch {
		t.Errorf("a done key with another fingerprint: %v, want Mismatch", m.Outcome)
	}
	// Keys are the tenant's: the same key of another tenant is a new request.
	if o, _ := s.Begin(ctx, "globex", "k1", fp); o.Outcome != idempotency.Claimed {
		t.Errorf("another tenant's key: %v, want Claimed", o.Outcome)
	}
}

func TestAbandonFreesTheKey(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t, idempotency.Options{})
	ctx := context.Background()
	c, _ := s.Begin(ctx, "acme", "k", "fp")
	if err := s.Abandon(ctx, c); err != nil {
		t.Fatal(err)
	}
	if n, _ := s.Begin(ctx, "acme", "k", "fp"); n.Outcome != idempotency.Claimed {
		t.Fatalf("after Abandon: %v, want Claimed", n.Outcome)
	}
}

func TestLeaseAndRetentionExpire(t *testing.T) {
	t.Parallel()
	s, rdb := newStore(t, idempotency.Options{Lease: 200 * time.Millisecond, Retention: 300 * time.Millisecond})
	ctx := context.Background()
	stale, _ := s.Begin(ctx, "acme", "k", "fp")
	// A replica that died mid-request holds the key only for the lease.
	time.Sleep(300 * time.Millisecond)
	next, _ := s.Begin(ctx, "acme", "k", "fp")
	if next.Outcome != idempotency.Claimed {
		t.Fatalf("after the lease: %v, want Claimed", next.Outcome)
	}
	// The request whose lease ran out cannot store or drop its successor's claim.
	if ok, _ := s.Complete(ctx, stale, idempotency.Response{Status: 500}); ok {
		t.Error("a lost claim completed")
	}
	if err := s.Abandon(ctx, stale); err != nil {
		t.Fatal(err)
	}
	if ok, _ := s.Complete(ctx, next, idempotency.Response{Status: 204}); !ok {
		t.Fatal("the live claim did not complete (the stale Abandon dropped it?)")
	}
	// One record, beside the tenant's ledger, and nothing outlives the retention.
	keys, _ := rdb.Keys(ctx, rdb.Prefix+"idem:*").Result()
	records := 0
	for _, k := range keys {
		if !strings.HasSuffix(k, ":ledger") && !strings.HasSuffix(k, ":sizes") {
			records++
		}
		if ttl := rdb.PTTL(ctx, k).Val(); ttl <= 0 || ttl > 300*time.Millisecond {
			t.Errorf("%s: TTL %v, want at most the retention (300ms)", k, ttl)
		}
	}
	if records != 1 {
		t.Fatalf("keys %v, want one record", keys)
	}
}

// Concurrent first requests with one key: exactly one claims it.
func TestOneClaimUnderRace(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t, idempotency.Options{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	counts := map[idempotency.Outcome]int{}
	for range 20 {
		wg.Go(func() {
			c, err := s.Begin(context.Background(), "acme", "race", "fp")
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			counts[c.Outcome]++
			mu.Unlock()
		})
	}
	wg.Wait()
	if counts[idempotency.Claimed] != 1 || counts[idempotency.InProgress] != 19 {
		t.Errorf("outcomes %v, want 1 claimed and 19 in progress", counts)
	}
}

func TestFingerprintIsUnambiguous(t *testing.T) {
	if idempotency.Fingerprint([]byte("ab"), []byte("c")) == idempotency.Fingerprint([]byte("a"), []byte("bc")) {
		t.Error("different part lists share a fingerprint")
	}
}

// fakeClock is a settable clock for the limits.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// TestTenantLimits: a tenant holds at most MaxKeys records and MaxBytes of kept answers, counted
// atomically across concurrent claims; a place comes back when a record is abandoned or
// forgotten; keys already held still answer; other tenants are not affected.
func TestTenantLimits(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	clock := &fakeClock{t: time.Now()}
	s, rdb := newStore(t, idempotency.Options{MaxKeys: 3, MaxBytes: 1000, Retention: time.Hour, ErrorRetention: time.Minute, Now: clock.Now})
	claim := func(tenant, key string) *idempotency.Claim {
		t.Helper()
		c, err := s.Begin(ctx, tenant, key, "fp-"+key)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}

	// Concurrent claims of distinct keys: exactly MaxKeys win.
	var wg sync.WaitGroup
	var mu sync.Mutex
	var won []*idempotency.Claim
	full := 0
	for i := range 12 {
		wg.Go(func() {
			c := claim("acme", "k"+string(rune('a'+i)))
			mu.Lock()
			defer mu.Unlock()
			switch c.Outcome {
			case idempotency.Claimed:
				won = append(won, c)
			case idempotency.Full:
				full++
				if c.RetryAt.Before(clock.Now()) {
					t.Errorf("RetryAt %v is in the past", c.RetryAt)
				}
			default:
				t.Errorf("outcome %v", c.Outcome)
			}
		})
	}
	wg.Wait()
	if len(won) != 3 || full != 9 {
		t.Fatalf("%d claimed, %d refused; want 3 and 9", len(won), full)
	}
	// Held keys still answer; another tenant is not counted with acme.
	if c := claim("acme", "fresh"); c.Outcome != idempotency.Full {
		t.Fatalf("a fourth key: %v, want Full", c.Outcome)
	}
	if c := claim("globex", "fresh"); c.Outcome != idempotency.Claimed {
		t.Fatalf("another tenant: %v, want Claimed", c.Outcome)
	}
	if _, err := s.Complete(ctx, won[0], idempotency.Response{Status: 201, Body: []byte(`{}`)}); err != nil {
		t.Fatal(err)
	}
	if c, _ := s.Begin(ctx, "acme", won[0].Key(), "fp-"+won[0].Key()); c.Outcome != idempotency.Replay {
		t.Fatalf("a kept key at the limit: %v, want Replay", c.Outcome)
	}
	// Abandoning a claim gives its place back.
	if err := s.Abandon(ctx, won[1]); err != nil {
		t.Fatal(err)
	}
	if c := claim("acme", "after-abandon"); c.Outcome != idempotency.Claimed {
		t.Fatalf("after an abandon: %v, want Claimed", c.Outcome)
	}
	// Forgotten records (past their retention or lease) give their places back.
	clock.Advance(2 * time.Hour)
	big := claim("acme", "big")
	if big.Outcome != idempotency.Claimed {
		t.Fatalf("after the retention: %v, want Claimed", big.Outcome)
	}
	// Bytes: one answer over MaxBytes fills the tenant's budget; a 4xx is kept for ErrorRetention.
	if _, err := s.Complete(ctx, big, idempotency.Response{Status: 400, Body: make([]byte, 1200)}); err != nil {
		t.Fatal(err)
	}
	if c := claim("acme", "after-big"); c.Outcome != idempotency.Full {
		t.Fatalf("over the byte budget: %v, want Full", c.Outcome)
	}
	sum := sha256.Sum256([]byte("big"))
	if ttl := rdb.PTTL(ctx, rdb.Prefix+"idem:{acme}:"+hex.EncodeToString(sum[:])).Val(); ttl > time.Minute || ttl <= 0 {
		t.Fatalf("a kept 4xx lives %v; want at most the error retention (1m)", ttl)
	}
	clock.Advance(2 * time.Minute)
	if c := claim("acme", "after-big"); c.Outcome != idempotency.Claimed {
		t.Fatalf("after the 4xx was forgotten: %v, want Claimed", c.Outcome)
	}
}
