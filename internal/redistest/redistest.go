// Package redistest gives tests a connection to a real Redis server, isolated by a key prefix
// that is deleted when the test ends.
//
// The server comes from DIRGATE_TEST_REDIS_URL (default redis://127.0.0.1:6379/9, database 9 so
// that a developer's own data in database 0 is never touched). When no server answers, the test is
// skipped on a developer machine but fails when CI=true: CI must never pass by skipping the tests
// that prove the Redis code paths.
package redistest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// DefaultURL is used when DIRGATE_TEST_REDIS_URL is unset.
const DefaultURL = "redis://127.0.0.1:6379/9"

// URL returns the Redis URL tests connect to.
func URL() string {
	if u := os.Getenv("DIRGATE_TEST_REDIS_URL"); u != "" {
		return u
	}
	return DefaultURL
}

// InCI reports whether the tests run under CI, where skipping a Redis test is a failure.
func InCI() bool {
	ci, _ := strconv.ParseBool(os.Getenv("CI"))
	return ci
}

// Redis is a client for one test, with the key prefix that test owns.
type Redis struct {
	*redis.Client
	// Prefix starts every key the test may create; all keys under it are deleted at cleanup.
	Prefix string
}

// Key returns the test's prefix followed by name.
func (r *Redis) Key(name string) string { return r.Prefix + name }

// Reachable reports whether the test Redis answers a PING within two seconds.
func Reachable() bool {
	opts, err := redis.ParseURL(URL())
	if err != nil {
		return false
	}
	opts.DialTimeout = time.Second
	c := redis.NewClient(opts)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	return c.Ping(ctx).Err() == nil
}

// New connects to the test Redis, registers cleanup of the test's keys, and returns the client.
// It skips the test when Redis is unreachable, or fails it when CI=true.
func New(t testing.TB) *Redis {
	t.Helper()
	return NewAt(t, URL())
}

// NewAt is New for the Redis at rawURL (a test's own Server, say).
func NewAt(t testing.TB, rawURL string) *Redis {
	t.Helper()
	opts, err := redis.ParseURL(rawURL)
	if err != nil {
		t.Fatalf("redistest: Redis URL %q: %v", rawURL, err)
	}
	opts.DialTimeout = time.Second
	opts.ReadTimeout = 2 * time.Second
	opts.WriteTimeout = 2 * time.Second
	c := redis.NewClient(opts)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := c.Ping(ctx).Err(); err != nil {
		_ = c.Close()
		msg := fmt.Sprintf("redistest: no Redis at %s (%v); set DIRGATE_TEST_REDIS_URL or start redis-server", opts.Addr, err)
		if InCI() {
			t.Fatal(msg + " [CI=true: Redis tests must not be skipped]")
		}
		t.Skip(msg)
	}
	r := &Redis{Client: c, Prefix: "dirgate-test:" + randomID() + ":"}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := r.DeleteAll(ctx); err != nil {
			t.Errorf("redistest: cleanup of %s*: %v", r.Prefix, err)
		}
		_ = c.Close()
	})
	return r
}

// DeleteAll removes every key under the test's prefix.
func (r *Redis) DeleteAll(ctx context.Context) error {
	iter := r.Scan(ctx, 0, r.Prefix+"*", 500).Iterator()
	var batch []string
	for iter.Next(ctx) {
		batch = append(batch, iter.Val())
		if len(batch) == 500 {
			if err := r.Del(ctx, batch...).Err(); err != nil {
				return fmt.Errorf("delete keys: %w", err)
			}
			batch = batch[:0]
		}
	}
	if err := iter.Err(); err != nil {
		return fmt.Errorf("scan keys: %w", err)
	}
	if len(batch) > 0 {
		if err := r.Del(ctx, batch...).Err(); err != nil {
			return fmt.Errorf("delete keys: %w", err)
		}
	}
	return nil
}

func randomID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// DialTimeout is the dial timeout for a test client of the Redis at rawURL: patient for the
// shared test Redis (on a loaded machine, CI under -race, its accept queue can fill for a moment),
// short for the fault tests' closed ports and blackholes, which should fail fast.
func DialTimeout(rawURL string) time.Duration {
	if rawURL == URL() {
		return 3 * time.Second
	}
	return 50 * time.Millisecond
}
