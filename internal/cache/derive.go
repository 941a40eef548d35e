package cache

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"

	"github.com/redis/go-redis/v9"
)

// Derive returns a snapshot holding the items of base for which keep is true, in order, computed
// once per (base, name) and cached for as long as base lives (other replicas reuse it; concurrent
// derivations coalesce like fills). name identifies the filter (e.g. a hash of canonical filters).
// State, FetchedAt, Partial and Err are base's. first as in List.
//
// A base whose snapshot is gone, or lives in an unreachable Redis, gives ErrSnapshotGone.
func (c *Cache) Derive(ctx context.Context, sc Scope, base Snapshot, name string, first int,
	keep func(item []byte) bool) (Snapshot, error) {
	if err := sc.validate(); err != nil {
		return Snapshot{}, err
	}
	if keep == nil || name == "" {
		return Snapshot{}, errors.New("cache: Derive needs a name and a keep function")
	}
	first = max(first, 0)
	var res result
	var err error
	switch snapshotKind(base.ID) {
	case localSnapshot:
		res, err = c.deriveLocal(ctx, sc, base.ID, name, keep)
	case redisSnapshot:
		res, err = c.deriveRedis(ctx, sc, base.ID, name, first, keep)
	default:
		return Snapshot{}, ErrSnapshotGone
	}
	if err != nil {
		return Snapshot{}, err
	}
	if want := min(first, res.count); len(res.items) < want {
		more, err := c.Page(ctx, sc, res.id, len(res.items), want-len(res.items))
		if err != nil {
			return Snapshot{}, fmt.Errorf("cache: read first items: %w", err)
		}
		res.items = append(res.items[:len(res.items):len(res.items)], more...)
	}
	s := res.snapshot(first)
	s.Partial, s.FetchedAt, s.State, s.Err = base.Partial, base.FetchedAt, base.State, base.Err
	return s, nil
}

func (c *Cache) deriveRedis(ctx context.Context, sc Scope, baseID, name string, first int,
	keep func([]byte) bool) (result, error) {
	if !c.redisUp() {
		return result{}, fmt.Errorf("%w: %w", ErrSnapshotGone, errRedisDown)
	}
	head, lock := c.derivedKey(sc, baseID, name), c.derivedLockKey(sc, baseID, name)
	h, _, _, err := c.claim(ctx, sc, head, "", kindList, first, "", "")
	if err != nil {
		if ctx.Err() != nil {
			return result{}, ctx.Err()
		}
		c.markDown(err)
		return result{}, fmt.Errorf("%w: %w", ErrSnapshotGone, errRedisDown)
	}
	if h != nil {
		return *h, nil
	}
	res, err := c.join(ctx, "d\x00"+sc.Tenant+"\x00"+sc.Account+"\x00"+baseID+"\x00"+name,
		func(fctx context.Context) result {
			res, ok := c.coordinate(fctx, sc, head, lock, kindList, first, "", func(token string) result {
				return c.derive(fctx, sc, baseID, name, keep, head, lock, token)
			})
			if !ok {
				return result{err: fmt.Errorf("%w: %w", ErrSnapshotGone, errRedisDown)}
			}
			return res
		})
	if err != nil {
		return result{}, err
	}
	return res, res.err
}

// derive computes and stores a derived snapshot while holding its lock (token).
func (c *Cache) derive(fctx context.Context, sc Scope, baseID, name string, keep func([]byte) bool,
	head, lock, token string) result {
	baseKey := c.snapKey(sc, baseID)
	opCtx, cancel := context.WithTimeout(fctx, c.writeTimeout)
	var rng *redis.StringSliceCmd
	var ttl *redis.DurationCmd
	_, err := c.rdb.Pipelined(opCtx, func(p redis.Pipeliner) error {
		rng = p.LRange(opCtx, baseKey, 1, -1)
		ttl = p.PTTL(opCtx, baseKey)
		return nil
	})
	cancel()
	if err != nil {
		c.markDown(err)
		return result{err: fmt.Errorf("%w: %w", ErrSnapshotGone, errRedisDown)}
	}
	if ttl.Val() == -2 { // PTTL's "no such key"
		if token != "" {
			c.release(fctx, lock, token)
		}
		return result{err: ErrSnapshotGone}
	}
	life := ttl.Val()
	if life <= 0 {
		life = c.snapshotTTL
	}
	items, err := c.filter(toBytes(rng.Val()), keep)
	if err != nil {
		if token != "" {
			c.release(fctx, lock, token)
		}
		return result{err: err}
	}
	res := result{id: newSnapshotID(redisSnapshot), count: len(items), items: items, fetchedAt: c.now(), state: Miss}
	if err := c.writeSnapshot(fctx, sc, &res, head, lock, token, life, life, kindList); err != nil {
		c.markDown(err)
		res.id = newSnapshotID(localSnapshot)
		c.keepDerived(sc, baseID, name, res, c.now().Add(life))
	}
	return res
}

// filter returns the items keep accepts, in order. A panic in keep becomes an error, since it would
// otherwise crash the process from singleflight's goroutine.
func (c *Cache) filter(items [][]byte, keep func([]byte) bool) (out [][]byte, err error) {
	defer func() {
		if v := recover(); v != nil {
			c.log.Error("cache: derive filter panicked", "stack", string(debug.Stack()))
			out, err = nil, errors.New("cache: derive filter panicked")
		}
	}()
	for _, it := range items {
		if keep(it) {
			out = append(out, it)
		}
	}
	return out, nil
}
