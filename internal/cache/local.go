package cache

import (
	"context"
	"time"
)

// The in-process fallback used while Redis is down: entries keyed by "h:<key>" (and derived heads
// by "d:<base id>:<name>"), snapshots by their "l…" id, all within a scope. Expiry is checked on
// Options.Now; the LRUs bound memory.

// localKey names one local entry or snapshot within a scope.
type localKey struct{ tenant, account, name string }

// localEntry is a locally kept entry: all of its items are in res.
type localEntry struct {
	res     result
	kind    string
	expires time.Time
	snap    *localSnap // nil for a value
}

// localSnap is a locally kept snapshot.
type localSnap struct {
	items   [][]byte
	expires time.Time
}

// localEntry returns the live local entry for key, or nil.
func (c *Cache) localEntry(sc Scope, key, kind string) *localEntry {
	e := c.liveEntry(sc, localKey{sc.Tenant, sc.Account, "h:" + key})
	if e == nil || e.kind != kind {
		return nil
	}
	return e
}

// liveEntry returns an unexpired local entry, keeping its snapshot pageable while it is served.
func (c *Cache) liveEntry(sc Scope, k localKey) *localEntry {
	e, ok := c.entries.Get(k)
	if !ok {
		return nil
	}
	if !c.now().Before(e.expires) {
		c.entries.Remove(k)
		return nil
	}
	if e.snap != nil {
		// The snapshot LRU may have evicted it while the entry stayed.
		c.snaps.ContainsOrAdd(localKey{sc.Tenant, sc.Account, e.res.id}, e.snap)
	}
	return e
}

// keepLocal stores a fetched entry in process, giving it a local snapshot id.
func (c *Cache) keepLocal(r *request, res *result) {
	res.id = newSnapshotID(localSnapshot)
	expires := res.fetchedAt.Add(headTTL(r.p))
	e := &localEntry{kind: r.kind, expires: expires}
	if r.kind == kindList {
		e.snap = &localSnap{items: res.items, expires: expires.Add(c.snapshotTTL)}
		c.snaps.Add(localKey{r.sc.Tenant, r.sc.Account, res.id}, e.snap)
	}
	e.res = *res
	c.entries.Add(localKey{r.sc.Tenant, r.sc.Account, "h:" + r.key}, e)
}

// keepDerived stores a derived snapshot in process; it lives as long as its base.
func (c *Cache) keepDerived(sc Scope, baseID, name string, res result, expires time.Time) {
	snap := &localSnap{items: res.items, expires: expires}
	c.snaps.Add(localKey{sc.Tenant, sc.Account, res.id}, snap)
	c.entries.Add(localKey{sc.Tenant, sc.Account, "d:" + baseID + ":" + name},
		&localEntry{res: res, kind: kindList, expires: expires, snap: snap})
}

// localSnap returns an unexpired local snapshot, or nil.
func (c *Cache) localSnap(sc Scope, id string) *localSnap {
	k := localKey{sc.Tenant, sc.Account, id}
	s, ok := c.snaps.Get(k)
	if !ok {
		return nil
	}
	if !c.now().Before(s.expires) {
		c.snaps.Remove(k)
		return nil
	}
	return s
}

// deriveLocal is Derive for a base kept in process.
func (c *Cache) deriveLocal(ctx context.Context, sc Scope, baseID, name string, keep func([]byte) bool) (result, error) {
	k := localKey{sc.Tenant, sc.Account, "d:" + baseID + ":" + name}
	if e := c.liveEntry(sc, k); e != nil {
		return e.res, nil
	}
	res, err := c.join(ctx, "dl\x00"+sc.Tenant+"\x00"+sc.Account+"\x00"+baseID+"\x00"+name,
		func(context.Context) result {
			// Another flight may have finished between the check above and this one starting.
			if e := c.liveEntry(sc, k); e != nil {
				return e.res
			}
			base := c.localSnap(sc, baseID)
			if base == nil {
				return result{err: ErrSnapshotGone}
			}
			items, err := c.filter(base.items, keep)
			if err != nil {
				return result{err: err}
			}
			res := result{id: newSnapshotID(localSnapshot), count: len(items), items: items, fetchedAt: c.now(), state: Miss}
			c.keepDerived(sc, baseID, name, res, base.expires)
			return res
		})
	if err != nil {
		return result{}, err
	}
	return res, res.err
}
