package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/dirgate/dirgate/internal/crypt"
	"github.com/dirgate/dirgate/unified"
)

// DefaultPrefix starts every key when Options.Prefix is empty.
const DefaultPrefix = "dirgate:"

// Options configures a Store.
type Options struct {
	// Client is the Redis connection (standalone, Sentinel or Cluster; see NewRedisClient).
	Client redis.UniversalClient
	// Prefix starts every key; default "dirgate:".
	Prefix string
	// Ring seals and opens credentials.
	Ring *crypt.Ring
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// MaxOpen is how many unexpired link tokens, and separately picker sessions, one tenant may
	// hold at once; 0 means DefaultMaxOpen.
	MaxOpen int
}

// DefaultMaxOpen is Options.MaxOpen's default.
const DefaultMaxOpen = 1000

// Store is dirgate's Redis-backed state. It is safe for concurrent use.
type Store struct {
	rdb     redis.UniversalClient
	prefix  string
	ring    *crypt.Ring
	now     func() time.Time
	maxOpen int
}

// New returns a Store. It does not contact Redis; see Ping.
func New(opts Options) (*Store, error) {
	if opts.Client == nil {
		return nil, errors.New("store: Options.Client is required")
	}
	if opts.Ring == nil {
		return nil, errors.New("store: Options.Ring is required")
	}
	if opts.Prefix == "" {
		opts.Prefix = DefaultPrefix
	}
	if strings.ContainsAny(opts.Prefix, "{}") {
		// A brace in the prefix would change which part of a key Redis Cluster hashes.
		return nil, fmt.Errorf("store: prefix %q must not contain { or }", opts.Prefix)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.MaxOpen <= 0 {
		opts.MaxOpen = DefaultMaxOpen
	}
	return &Store{rdb: opts.Client, prefix: opts.Prefix, ring: opts.Ring, now: opts.Now, maxOpen: opts.MaxOpen}, nil
}

// Ping checks that Redis answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.rdb.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("store: ping redis: %w", err)
	}
	return nil
}

func (s *Store) recKey(id string) string  { return s.prefix + "{acct:" + id + "}:rec" }
func (s *Store) lockKey(id string) string { return s.prefix + "{acct:" + id + "}:lock" }

// accountKeyPattern matches every key of one account (record, lock, cache entries).
func (s *Store) accountKeyPattern(id string) string {
	return globEscape(s.prefix+"{acct:"+id+"}:") + "*"
}

func (s *Store) tenantKey(tenant string) string { return s.prefix + "tenant:" + tenant + ":accts" }

// globEscape escapes the characters SCAN MATCH treats specially.
func globEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch r {
		case '*', '?', '[', ']', '\\':
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// scan calls fn for every key matching pattern, on every master when the client is a Cluster.
func (s *Store) scan(ctx context.Context, pattern string, fn func(key string) error) error {
	each := func(ctx context.Context, c redis.Cmdable) error {
		it := c.Scan(ctx, 0, pattern, 500).Iterator()
		for it.Next(ctx) {
			if err := fn(it.Val()); err != nil {
				return err
			}
		}
		return it.Err()
	}
	if cc, ok := s.rdb.(*redis.ClusterClient); ok {
		return cc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error { return each(ctx, c) })
	}
	return each(ctx, s.rdb)
}

// notFound is the error for a missing account or one owned by another tenant.
func notFound(id string) error {
	return fmt.Errorf("store: account %q: %w", id, unified.ErrNotFound)
}
