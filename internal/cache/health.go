package cache

import (
	"context"
	"time"
)

// redisUp reports whether Redis may be used now (no failure within DownBackoff).
func (c *Cache) redisUp() bool {
	return c.now().UnixNano() >= c.downUntil.Load()
}

// markDown records a Redis failure: Redis is skipped for DownBackoff. Only the first failure of an
// outage is logged, without any cached value.
func (c *Cache) markDown(err error) {
	c.downUntil.Store(c.now().Add(c.downBackoff).UnixNano())
	if c.down.CompareAndSwap(false, true) {
		c.downSince.Store(time.Now().UnixNano())
		c.log.Warn("cache: redis unavailable; serving without it", "err", err.Error(), "retry_after", c.downBackoff)
	}
}

// orphanedByOutage reports whether a fill lock held by another, taken lockAge ago, was taken
// before the last Redis outage this replica saw began. Its holder most likely lost Redis too and
// cannot write its result nor release the lock (until its own replica sees Redis again), so it is
// not waited for. Locks live at most FillLockTTL, so this only concerns the first moments after
// an outage. Both durations are wall time (the lock's in Redis, the outage's here): no clock skew.
func (c *Cache) orphanedByOutage(lockAge time.Duration) bool {
	since, until := c.downSince.Load(), c.upSince.Load()
	if lockAge <= 0 || since == 0 || until < since || time.Duration(until-since) < c.downBackoff {
		// No outage yet, still in one, or a blip shorter than DownBackoff (a slow reply) that
		// only this replica saw: the holder is most likely fine.
		return false
	}
	return lockAge > time.Since(time.Unix(0, since))
}

// markUp records a Redis success, logging the end of an outage and releasing the fill locks the
// outage orphaned.
func (c *Cache) markUp() {
	if c.down.Load() && c.down.CompareAndSwap(true, false) {
		c.upSince.Store(time.Now().UnixNano())
		c.log.Info("cache: redis reachable again")
	}
	if c.hasOrphans.Load() && c.releasing.CompareAndSwap(false, true) {
		go func() {
			defer c.releasing.Store(false)
			c.releaseOrphans()
		}()
	}
}

// maxOrphans bounds the orphaned fill locks remembered; beyond it, locks expire by their TTL.
const maxOrphans = 1024

// orphan remembers a fill lock this replica holds but could not release.
func (c *Cache) orphan(lock, token string) {
	c.orphanMu.Lock()
	defer c.orphanMu.Unlock()
	if c.orphans == nil {
		c.orphans = map[string]string{}
	}
	if len(c.orphans) < maxOrphans {
		c.orphans[lock] = token
		c.hasOrphans.Store(true)
	}
}

// releaseOrphans releases the orphaned fill locks (each only if still held with its token); those
// Redis fails to release stay remembered for the next recovery.
func (c *Cache) releaseOrphans() {
	c.orphanMu.Lock()
	batch := c.orphans
	c.orphans = nil
	c.hasOrphans.Store(false)
	c.orphanMu.Unlock()
	for lock, token := range batch {
		opCtx, cancel := context.WithTimeout(context.Background(), c.opTimeout)
		err := releaseScript.Run(opCtx, c.rdb, []string{lock}, token).Err()
		cancel()
		if err != nil {
			c.orphan(lock, token)
		}
	}
}
