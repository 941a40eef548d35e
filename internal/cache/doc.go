// Package cache keeps a linked account's directory reads (lists of users, workspaces and
// organizations, and single objects) in Redis for every gateway replica.
//
// # Snapshots
//
// A cached list is an immutable snapshot: a Redis list of JSON items under a random id. An entry
// (the "head") points at the current snapshot; a refresh writes a new snapshot and moves the head,
// while the old snapshot stays readable for Options.SnapshotTTL, so a client paging through it by
// offset sees one consistent list however the data changes meanwhile. A snapshot and the head that
// points at it are written in one MULTI/EXEC, so no reader ever sees a head pointing at a
// half-written list.
//
// # Keys
//
// Every key lives in the account's hash slot ({acct:<id>}, see package store), under the prefix
// store reserves for this package, so deleting an account deletes its cache:
//
//	<prefix>{acct:<A>}:cache:<T>:h:<key>            head (hash: id, n, p, t, k, v); TTL = TTL+MaxStale
//	<prefix>{acct:<A>}:cache:<T>:l:<key>            fill lock (SET NX PX, token-checked release)
//	<prefix>{acct:<A>}:cache:<T>:s:<snapshot id>    snapshot list: a header element, then the items
//	<prefix>{acct:<A>}:cache:<T>:d:<base id>:<name> head of a derived (filtered) snapshot
//	<prefix>{acct:<A>}:cache:<T>:dl:<base id>:<name> lock for computing a derived snapshot
//
// <T> is the tenant with '%' and ':' percent-encoded, so that one tenant's keys can never spell
// another tenant's. The snapshot list starts with a header element, which makes an empty snapshot
// an existing key: Page can tell "no items" from "gone". Head fields: id (snapshot id), n (count),
// p (partial, "1"/"0"), t (when the fetch began, Unix microseconds), k ("l" list, "v" value), v
// (the inline value). Invalidate replaces a head with a tombstone holding only t, which keeps a
// fill that began before the invalidation from installing its older result.
//
// Lua scripts read keys they derive from others (the snapshot a head names); all of them share the
// account's hash slot, so this works on Redis Cluster too.
//
// # Fills
//
// A miss is filled once: callers in one process share one fill (singleflight), and replicas share
// a Redis fill lock. The lock winner fetches, writes the snapshot and releases the lock in the same
// transaction; the others poll the head every Options.PollInterval until a new head appears
// (served as MISS) or the lock is free again (they take it and fetch themselves). The fetch runs
// detached from the caller's cancellation, so one caller giving up does not fail the others that
// joined the fill, and the result still lands in the cache for the next request; it is bounded by
// the later of the leader's deadline and Options.FillLockTTL.
//
// When the fetch fails with an error Policy.Stale accepts and an entry no older than
// TTL+MaxStale exists, that entry is served as STALE.
//
// # Failing open
//
// The cache never makes a read fail because Redis is slow or down. Every Redis operation runs under
// a short deadline (Options.OpTimeout, or Options.WriteTimeout for whole snapshots); the first
// failure marks Redis down for Options.DownBackoff, during which Redis is not touched at all:
// fetches run directly (still coalesced in-process), and their results are kept in a small
// in-process LRU that serves hits and pages (snapshot ids starting with "l" instead of "r"). After
// the back-off the next call tries Redis again. A failed write after a successful fetch never fails
// the call. Snapshots that live in an unreachable Redis are reported as ErrSnapshotGone.
//
// Item contents never appear in logs or errors.
package cache
