package redistest_test

import (
	"context"
	"testing"

	"github.com/dirgate/dirgate/internal/redistest"
)

// TestIsolationAndCleanup proves the harness talks to a real server, that two tests get disjoint
// prefixes, and that DeleteAll removes exactly the test's own keys.
func TestIsolationAndCleanup(t *testing.T) {
	ctx := context.Background()
	a := redistest.New(t)
	b := redistest.New(t)
	if a.Prefix == b.Prefix {
		t.Fatalf("two clients share prefix %q", a.Prefix)
	}
	if err := a.Set(ctx, a.Key("k"), "a", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if err := b.Set(ctx, b.Key("k"), "b", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if err := a.DeleteAll(ctx); err != nil {
		t.Fatal(err)
	}
	if n := a.Exists(ctx, a.Key("k")).Val(); n != 0 {
		t.Errorf("a's key survived DeleteAll")
	}
	if got := b.Get(ctx, b.Key("k")).Val(); got != "b" {
		t.Errorf("b's key = %q after a.DeleteAll, want %q", got, "b")
	}
	// A real server runs Lua; miniredis-only shortcuts would not prove the production path.
	v, err := a.Eval(ctx, "return redis.call('INCRBY', KEYS[1], ARGV[1])", []string{a.Key("n")}, 41).Int()
	if err != nil || v != 41 {
		t.Fatalf("EVAL = %d, %v; want 41", v, err)
	}
}

// TestServerSurvivesKill proves a test's own server comes back with its data after a SIGKILL,
// which the Redis outage tests rely on.
func TestServerSurvivesKill(t *testing.T) {
	ctx := context.Background()
	s := redistest.StartServer(t)
	r := redistest.NewAt(t, s.URL())
	if err := r.Set(ctx, r.Key("k"), "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	s.Kill()
	if err := r.Ping(ctx).Err(); err == nil {
		t.Fatal("PING answered after Kill")
	}
	s.Start()
	if got, err := r.Get(ctx, r.Key("k")).Result(); err != nil || got != "v" {
		t.Fatalf("GET after restart = %q, %v; want %q", got, err, "v")
	}
}
