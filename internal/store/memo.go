package store

import (
	"context"
	"log/slog"
	"sync/atomic"

	lru "github.com/hashicorp/golang-lru/v2"
)

// Memo keeps, in memory, the last value a replica read from the store for each key, so that
// reads Podio can answer go on while Redis is unreachable. It is a fallback, never a cache: a
// value is used only after reading the store failed because Redis could not be reached.
// Writes (anything that must happen once across replicas) still need Redis.
type Memo[T any] struct {
	c    *lru.Cache[string, T]
	log  *slog.Logger
	what string
	// down is set while fallbacks are being served, so each outage logs once.
	down atomic.Bool
}

// NewMemo returns a Memo of at most size entries; what names the values in its log lines.
func NewMemo[T any](size int, what string, log *slog.Logger) *Memo[T] {
	c, err := lru.New[string, T](size)
	if err != nil {
		panic("store: NewMemo: " + err.Error()) // size <= 0 is a programming error
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Memo[T]{c: c, log: log, what: what}
}

// Remember records v as the last value read for key.
func (m *Memo[T]) Remember(ctx context.Context, key string, v T) {
	m.c.Add(key, v)
	if m.down.CompareAndSwap(true, false) {
		m.log.InfoContext(ctx, "store reachable again; "+m.what+" read from Redis")
	}
}

// Forget drops key: its record is gone or no longer usable.
func (m *Memo[T]) Forget(key string) { m.c.Remove(key) }

// Fallback returns the last value read for key when err (the store's failure to read it) says
// Redis is unreachable (Unavailable) and the caller is still waiting.
func (m *Memo[T]) Fallback(ctx context.Context, key string, err error) (T, bool) {
	var zero T
	if !Unavailable(err) || ctx.Err() != nil {
		return zero, false
	}
	v, ok := m.c.Get(key)
	if !ok {
		return zero, false
	}
	if m.down.CompareAndSwap(false, true) {
		m.log.WarnContext(ctx, "store unreachable; serving the last "+m.what+" read by this replica", "err", err)
	}
	return v, true
}
