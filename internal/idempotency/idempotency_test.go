package idempotency_test

import (
	"context"
	"net/http"
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
	keys, _ := rdb.Keys(ctx, rdb.Prefix+"idem:*").Result()
	if len(keys) != 1 {
		t.Fatalf("keys %v", keys)
	}
	if ttl := rdb.PTTL(ctx, keys[0]).Val(); ttl <= 0 || ttl > 300*time.Millisecond {
		t.Errorf("stored answer TTL %v, want the retention (300ms)", ttl)
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
