package cache_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/dirgate/dirgate/internal/cache"
	"github.com/dirgate/dirgate/internal/redistest"
)

// benchItems are n JSON items shaped like cached unified users.
func benchItems(n int) [][]byte {
	items := make([][]byte, n)
	for i := range items {
		items[i] = fmt.Appendf(nil, `{"id":"%d","name":"Person %d","emails":[{"email":"person.%d@company001.example","type":"work"}],"status":"active","is_employee":true,"roles":[{"id":"org:3001:regular","scope":"organization","organization_id":"3001"}],"remote_data":[]}`, 1000+i, i, i)
	}
	return items
}

func benchCache(b *testing.B) *cache.Cache {
	r := redistest.New(b) // skips or fails (CI) without Redis
	c, err := cache.New(cache.Options{Client: r.Client, Prefix: r.Prefix, OpTimeout: time.Second})
	if err != nil {
		b.Fatal(err)
	}
	return c
}

// BenchmarkListHit measures a cached first page: the head and the first 101 items (what a
// users page of limit 100 asks for) read in one round trip and decoded.
func BenchmarkListHit(b *testing.B) {
	c := benchCache(b)
	ctx := context.Background()
	sc := cache.Scope{Tenant: "bench", Account: "ia_bench"}
	p := cache.Policy{TTL: time.Hour}
	items := benchItems(1000)
	fetch := func(context.Context) ([][]byte, bool, error) { return items, false, nil }
	if _, err := c.List(ctx, sc, "users", p, 101, fetch); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		s, err := c.List(ctx, sc, "users", p, 101, fetch)
		if err != nil || s.State != cache.Hit || len(s.First) != 101 {
			b.Fatalf("state %s, %d items, %v", s.State, len(s.First), err)
		}
	}
}

// BenchmarkListFill measures encoding and writing a fetched list of 1,000 items as a new
// snapshot (a miss): lock, MULTI with the list and the head, and the first page read back.
func BenchmarkListFill(b *testing.B) {
	c := benchCache(b)
	ctx := context.Background()
	sc := cache.Scope{Tenant: "bench", Account: "ia_bench"}
	items := benchItems(1000)
	fetch := func(context.Context) ([][]byte, bool, error) { return items, false, nil }
	// Fresh with a TTL: every call ignores the entry the previous one wrote, so each one fills.
	p := cache.Policy{TTL: time.Hour, Fresh: true}
	b.ReportAllocs()
	for b.Loop() {
		s, err := c.List(ctx, sc, "users", p, 101, fetch)
		if err != nil || s.State != cache.Miss || s.Count != 1000 {
			b.Fatalf("state %s, %d items, %v", s.State, s.Count, err)
		}
	}
}
