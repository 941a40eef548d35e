package cache

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/redis/go-redis/v9"
	"golang.org/x/sync/singleflight"
)

// DefaultPrefix starts every key when Options.Prefix is empty.
const DefaultPrefix = "dirgate:"

// Defaults for the zero values of Options.
const (
	DefaultOpTimeout    = 50 * time.Millisecond
	DefaultWriteTimeout = 2 * time.Second
	DefaultPollInterval = 25 * time.Millisecond
	DefaultFillLockTTL  = 30 * time.Second
	DefaultDownBackoff  = time.Second
	DefaultSnapshotTTL  = time.Hour
	DefaultLocalEntries = 128
)

// ErrSnapshotGone reports that a snapshot id no longer names a readable snapshot: it expired, was
// evicted, belongs to another scope, or lived in an unreachable Redis.
var ErrSnapshotGone = errors.New("cache: snapshot gone")

// errRedisDown marks failures caused by Redis being unreachable; it never leaves the package except
// wrapped in ErrSnapshotGone or an Invalidate error.
var errRedisDown = errors.New("cache: redis unavailable")

// Options configures a Cache. Zero durations and sizes take the defaults above.
type Options struct {
	// Client is the Redis connection (required). Build it with store.NewRedisClient so that
	// per-operation context deadlines are honoured.
	Client redis.UniversalClient
	// Prefix starts every key; default "dirgate:". It must match the store's prefix so that
	// deleting an account deletes its cache.
	Prefix string
	// Now is the clock; default time.Now.
	Now func() time.Time
	// Logger receives Redis availability changes; default discards.
	Logger *slog.Logger
	// OpTimeout bounds each small Redis operation (head read, page read, lock); default 50ms.
	OpTimeout time.Duration
	// WriteTimeout bounds writing or reading a whole snapshot; default 2s.
	WriteTimeout time.Duration
	// PollInterval is how often a waiter checks whether another replica's fill finished; default 25ms.
	PollInterval time.Duration
	// FillLockTTL is the lifetime of the cross-replica fill lock (it is released when the fill ends);
	// default 30s. A waiter whose lock holder vanished takes over when the lock expires. A fetch
	// whose callers all gave up runs for at most this long.
	FillLockTTL time.Duration
	// DownBackoff: after a Redis error, Redis is skipped for this long; default 1s.
	DownBackoff time.Duration
	// SnapshotTTL is how long a snapshot stays readable after its entry stops being served
	// (the lifetime of a cursor); default 1h.
	SnapshotTTL time.Duration
	// LocalEntries bounds the in-process fallback (entries and snapshots); default 128.
	LocalEntries int
}

// Scope namespaces every key: <prefix>{acct:<Account>}:cache:<Tenant>:...
type Scope struct{ Tenant, Account string }

func (sc Scope) validate() error {
	if sc.Tenant == "" {
		return errors.New("cache: scope has no tenant")
	}
	// The account is the hash tag; a brace in it would move the key to another slot.
	if sc.Account == "" || strings.ContainsAny(sc.Account, "{}") {
		return errors.New("cache: scope has an invalid account id")
	}
	return nil
}

// Policy says how fresh a caller needs an entry to be.
type Policy struct {
	// TTL: an entry younger than this is served as HIT.
	TTL time.Duration
	// MaxStale: beyond TTL an entry may still be served STALE for this long when the refresh fails
	// with an error Stale accepts.
	MaxStale time.Duration
	// Fresh ignores a cached entry fetched before the call began (Cache-Control: no-cache). A fill
	// that is already in flight (here or on another replica) is joined: still coalesced.
	Fresh bool
	// Stale reports whether a fetch error allows serving a stale entry (nil: never).
	Stale func(error) bool
}

// State says where a snapshot came from.
type State string

// The states of a Snapshot.
const (
	// Hit: a cached entry young enough for the policy.
	Hit State = "HIT"
	// Miss: fetched by this call or by a fill it joined.
	Miss State = "MISS"
	// Stale: an old entry served because the refresh failed.
	Stale State = "STALE"
)

// Snapshot describes one immutable cached list (or single value). Callers must not modify the
// byte slices in First: they may be shared with other callers.
type Snapshot struct {
	// ID is opaque and names the immutable item list; pass it to Page. It is empty for a Value,
	// which has no list to page.
	ID string
	// Count is the number of items.
	Count int
	// Partial is as returned by the fetch.
	Partial bool
	// FetchedAt is when the upstream fetch that produced it began.
	FetchedAt time.Time
	// State is HIT, MISS (fetched by this call or a fill it joined) or STALE.
	State State
	// Err is, for STALE, the fetch error that was masked (for logs).
	Err error
	// First holds items [0, first) where first is the List argument (fewer if Count is smaller).
	First [][]byte
}

// Cache is the Redis snapshot cache. It is safe for concurrent use.
type Cache struct {
	rdb          redis.UniversalClient
	prefix       string
	now          func() time.Time
	log          *slog.Logger
	opTimeout    time.Duration
	writeTimeout time.Duration
	pollInterval time.Duration
	lockTTL      time.Duration
	downBackoff  time.Duration
	snapshotTTL  time.Duration

	flights singleflight.Group
	// joined, when set (tests only), is called once a caller has joined a flight.
	joined func()
	// downUntil is the UnixNano (on c.now's clock) before which Redis is skipped.
	downUntil atomic.Int64
	// down remembers that the last Redis outcome was a failure, so each outage logs once.
	down atomic.Bool
	// downSince and upSince are the wall times (UnixNano) the last outage began and ended.
	downSince atomic.Int64
	upSince   atomic.Int64

	// orphans are fill locks (key: token) this replica took but could not release, because Redis
	// failed while it fetched. A Redis that comes back with its data (persistence, failover) still
	// has them: they are released as soon as Redis answers again, so that other replicas do not
	// wait out FillLockTTL for a fill that is over.
	orphanMu   sync.Mutex
	orphans    map[string]string
	hasOrphans atomic.Bool
	releasing  atomic.Bool

	entries *lru.Cache[localKey, *localEntry]
	snaps   *lru.Cache[localKey, *localSnap]
}

// New returns a Cache. It does not contact Redis.
func New(o Options) (*Cache, error) {
	if o.Client == nil {
		return nil, errors.New("cache: Options.Client is required")
	}
	if o.Prefix == "" {
		o.Prefix = DefaultPrefix
	}
	if strings.ContainsAny(o.Prefix, "{}") {
		// A brace in the prefix would change which part of a key Redis Cluster hashes.
		return nil, fmt.Errorf("cache: prefix %q must not contain { or }", o.Prefix)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.LocalEntries <= 0 {
		o.LocalEntries = DefaultLocalEntries
	}
	// Plain LRUs with expiry checked on Options.Now: the expirable LRU of golang-lru v2 runs a
	// goroutine per instance that can never be stopped, on the wall clock.
	entries, err := lru.New[localKey, *localEntry](o.LocalEntries)
	if err != nil {
		return nil, fmt.Errorf("cache: local entries: %w", err)
	}
	snaps, err := lru.New[localKey, *localSnap](o.LocalEntries)
	if err != nil {
		return nil, fmt.Errorf("cache: local snapshots: %w", err)
	}
	return &Cache{
		rdb:          o.Client,
		prefix:       o.Prefix,
		now:          o.Now,
		log:          o.Logger,
		opTimeout:    orDefault(o.OpTimeout, DefaultOpTimeout),
		writeTimeout: orDefault(o.WriteTimeout, DefaultWriteTimeout),
		pollInterval: orDefault(o.PollInterval, DefaultPollInterval),
		lockTTL:      orDefault(o.FillLockTTL, DefaultFillLockTTL),
		downBackoff:  orDefault(o.DownBackoff, DefaultDownBackoff),
		snapshotTTL:  orDefault(o.SnapshotTTL, DefaultSnapshotTTL),
		entries:      entries,
		snaps:        snaps,
	}, nil
}

func orDefault(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

// Item kinds stored in a head's "k" field.
const (
	kindList  = "l"
	kindValue = "v"
)

// fetchFunc is the common shape of List's and Value's fetch.
type fetchFunc func(ctx context.Context) (items [][]byte, partial bool, value []byte, err error)

// request is one List or Value call.
type request struct {
	sc    Scope
	key   string
	kind  string
	p     Policy
	first int
	fetch fetchFunc
}

// result is an entry or a fill's outcome: the snapshot's description plus its first items (all of
// them when the fetch ran in this process).
type result struct {
	id        string
	count     int
	partial   bool
	fetchedAt time.Time
	value     []byte
	items     [][]byte
	state     State
	err       error
}

func (r *result) snapshot(first int) Snapshot {
	s := Snapshot{ID: r.id, Count: r.count, Partial: r.partial, FetchedAt: r.fetchedAt, State: r.state, Err: r.err}
	if n := min(first, len(r.items)); n > 0 {
		s.First = r.items[:n:n]
	}
	return s
}

// List returns the snapshot for key, filling it with fetch on a miss. first > 0 asks for the
// first items too: on a HIT this costs one Redis round trip in total.
//
// The fetch of a fill is shared by every caller that joins it and runs with the first caller's
// context values but not its cancellation (see the package doc).
func (c *Cache) List(ctx context.Context, sc Scope, key string, p Policy, first int,
	fetch func(ctx context.Context) (items [][]byte, partial bool, err error)) (Snapshot, error) {
	if fetch == nil {
		return Snapshot{}, errors.New("cache: List needs a fetch function")
	}
	r := &request{sc: sc, key: key, kind: kindList, p: p, first: max(first, 0),
		fetch: func(ctx context.Context) ([][]byte, bool, []byte, error) {
			items, partial, err := fetch(ctx)
			return items, partial, nil, err
		}}
	res, err := c.get(ctx, r)
	if err != nil {
		return Snapshot{}, err
	}
	return res.snapshot(r.first), nil
}

// Value is List for a single JSON value (stored inline in the head; State/FetchedAt in the
// returned Snapshot; the value in First[0]). The Snapshot's ID is empty and its Count is 1.
func (c *Cache) Value(ctx context.Context, sc Scope, key string, p Policy,
	fetch func(ctx context.Context) ([]byte, error)) ([]byte, Snapshot, error) {
	if fetch == nil {
		return nil, Snapshot{}, errors.New("cache: Value needs a fetch function")
	}
	r := &request{sc: sc, key: key, kind: kindValue, p: p, first: 1,
		fetch: func(ctx context.Context) ([][]byte, bool, []byte, error) {
			v, err := fetch(ctx)
			return nil, false, v, err
		}}
	res, err := c.get(ctx, r)
	if err != nil {
		return nil, Snapshot{}, err
	}
	s := res.snapshot(0)
	s.ID = ""
	s.First = [][]byte{res.value}
	return res.value, s, nil
}

// get serves r from Redis or the local fallback, filling on a miss.
func (c *Cache) get(ctx context.Context, r *request) (result, error) {
	if err := r.sc.validate(); err != nil {
		return result{}, err
	}
	if r.key == "" {
		return result{}, errors.New("cache: empty key")
	}
	start := c.now()
	var seen *result // the entry found, if any: for STALE, and so a fill can tell a newer one
	fromRedis := false
	if c.redisUp() {
		h, _, _, err := c.claim(ctx, r.sc, c.headKey(r.sc, r.key), "", r.kind, r.first, "", "")
		switch {
		case err == nil:
			fromRedis = true
			seen = h
		case ctx.Err() != nil:
			return result{}, ctx.Err()
		default:
			c.markDown(err)
		}
	}
	if !fromRedis {
		if e := c.localEntry(r.sc, r.key, r.kind); e != nil {
			seen = &e.res
		}
	}
	if seen != nil && servable(seen, r.p, start, c.now()) {
		res := *seen
		res.state = Hit
		return res, nil
	}

	seenID := ""
	if seen != nil && fromRedis {
		seenID = seen.id
	}
	res, err := c.join(ctx, "h\x00"+flightGroup(ctx)+"\x00"+r.kind+"\x00"+r.sc.Tenant+"\x00"+r.sc.Account+"\x00"+r.key,
		func(fctx context.Context) result { return c.fill(fctx, r, seenID) })
	if err != nil {
		return result{}, err
	}
	if res.err != nil {
		if r.p.Stale != nil && seen != nil && r.p.Stale(res.err) && c.now().Sub(seen.fetchedAt) <= r.p.TTL+r.p.MaxStale {
			st := *seen
			st.state = Stale
			st.err = res.err
			return st, nil
		}
		return result{}, fmt.Errorf("cache: fill: %w", res.err)
	}
	// A fill joined through Redis carries only the leader's first items; read what this caller
	// asked for beyond them.
	if r.kind == kindList {
		if want := min(r.first, res.count); len(res.items) < want {
			more, err := c.Page(ctx, r.sc, res.id, len(res.items), want-len(res.items))
			if err != nil {
				return result{}, fmt.Errorf("cache: read first items: %w", err)
			}
			res.items = append(res.items[:len(res.items):len(res.items)], more...)
		}
	}
	return res, nil
}

// servable reports whether an entry may be served as HIT under p for a call that began at start.
func servable(e *result, p Policy, start, now time.Time) bool {
	if now.Sub(e.fetchedAt) >= p.TTL {
		return false
	}
	// Heads keep microseconds, so compare at that precision: a fill that began in the same
	// microsecond as the call counts as not older.
	return !(p.Fresh && e.fetchedAt.Before(start.Truncate(time.Microsecond)))
}

// flightGroupKey carries a caller's flight group (WithFlightGroup).
type flightGroupKey struct{}

// WithFlightGroup puts ctx's calls in a flight group. A fill runs with its first caller's context
// values, so its outcome can depend on who asked: a caller whose upstream calls spend a smaller
// budget (background work) may be refused where another would not. Callers in different groups
// therefore never join one fill in this process; they still coordinate through the Redis fill
// lock, so a miss costs one fetch across groups, and when that fetch fails, the waiter of the
// other group takes the lock and fetches with its own context instead of receiving the failure.
// The default group is "".
func WithFlightGroup(ctx context.Context, group string) context.Context {
	return context.WithValue(ctx, flightGroupKey{}, group)
}

func flightGroup(ctx context.Context) string {
	g, _ := ctx.Value(flightGroupKey{}).(string)
	return g
}

// join runs fill once per flight key and waits for it or for ctx. The fill gets a context that
// keeps ctx's values but not its cancellation, so one caller giving up does not fail the others.
func (c *Cache) join(ctx context.Context, flight string, fill func(fctx context.Context) result) (result, error) {
	fctx := context.WithoutCancel(ctx)
	if d, ok := ctx.Deadline(); ok {
		fctx = context.WithValue(fctx, leaderDeadline{}, d)
	}
	ch := c.flights.DoChan(flight, func() (any, error) { return fill(fctx), nil })
	if c.joined != nil {
		c.joined() // tests: the caller is in the flight now
	}
	select {
	case v := <-ch:
		return v.Val.(result), nil
	case <-ctx.Done():
		return result{}, ctx.Err()
	}
}

// leaderDeadline carries the fill leader's own deadline to the detached fetch.
type leaderDeadline struct{}

// fetchContext bounds a detached fetch by the later of the leader's deadline and the lock TTL:
// long enough for the leader, and short enough that an abandoned fetch ends.
func (c *Cache) fetchContext(fctx context.Context) (context.Context, context.CancelFunc) {
	d := time.Now().Add(c.lockTTL)
	if ld, ok := fctx.Value(leaderDeadline{}).(time.Time); ok && ld.After(d) {
		d = ld
	}
	return context.WithDeadline(fctx, d)
}

// fill produces a new entry for r: through Redis when it is up, else directly.
func (c *Cache) fill(fctx context.Context, r *request, seenID string) result {
	if c.redisUp() {
		head, lock := c.headKey(r.sc, r.key), c.lockKey(r.sc, r.key)
		res, ok := c.coordinate(fctx, r.sc, head, lock, r.kind, r.first, seenID, func(token string) result {
			res := c.produce(fctx, r)
			if res.err != nil {
				if token != "" {
					c.release(fctx, lock, token)
				}
				return res
			}
			if err := c.writeEntry(fctx, r, &res, head, lock, token); err != nil {
				c.markDown(err)
				c.keepLocal(r, &res)
			}
			return res
		})
		if ok {
			return res
		}
	}
	res := c.produce(fctx, r)
	if res.err == nil {
		c.keepLocal(r, &res)
	}
	return res
}

// coordinate is the cross-replica part of a fill: it takes the fill lock and runs produce, or
// waits for the holder's result. ok is false when Redis failed before produce ran, so the caller
// may produce without Redis. produce gets the lock token, or "" when it runs without the lock
// because holders kept it for too long.
func (c *Cache) coordinate(fctx context.Context, sc Scope, head, lock, kind string, first int, seenID string,
	produce func(token string) result) (res result, ok bool) {
	token := randomHex()
	// Wall time: this bounds real waiting on other replicas, not cache ages. Two lock lifetimes
	// cover a holder that vanished plus one that took over.
	giveUp := time.Now().Add(2 * c.lockTTL)
	for {
		h, locked, lockAge, err := c.claim(fctx, sc, head, lock, kind, first, seenID, token)
		if err != nil {
			c.markDown(err)
			return result{}, false
		}
		if h != nil {
			h.state = Miss
			return *h, true
		}
		if locked {
			return produce(token), true
		}
		if time.Now().After(giveUp) || c.orphanedByOutage(lockAge) {
			return produce(""), true
		}
		t := time.NewTimer(c.pollInterval)
		select {
		case <-t.C:
		case <-fctx.Done():
			t.Stop()
			return result{err: fctx.Err()}, true
		}
	}
}

// produce runs r's fetch and describes the outcome as a new Redis snapshot.
func (c *Cache) produce(fctx context.Context, r *request) (res result) {
	fetchCtx, cancel := c.fetchContext(fctx)
	defer cancel()
	res.fetchedAt = c.now().Truncate(time.Microsecond)
	res.state = Miss
	defer func() {
		// A panic in a shared fetch would otherwise crash the process from singleflight's goroutine.
		if v := recover(); v != nil {
			c.log.Error("cache: fetch panicked", "stack", string(debug.Stack()))
			res = result{err: errors.New("cache: fetch panicked")}
		}
	}()
	items, partial, value, err := r.fetch(fetchCtx)
	if err != nil {
		return result{err: err}
	}
	res.id = newSnapshotID(redisSnapshot)
	res.partial = partial
	if r.kind == kindValue {
		res.count, res.value, res.items = 1, value, [][]byte{value}
	} else {
		res.count, res.items = len(items), items
	}
	return res
}

// headTTL is how long a head lives: TTL+MaxStale, but long enough for waiters on other replicas to
// see a fill's result even when the policy caches nothing.
func headTTL(p Policy) time.Duration {
	return max(p.TTL+p.MaxStale, time.Second)
}

// Page returns items [offset, offset+n) of a snapshot (fewer at the end). ErrSnapshotGone when the
// snapshot expired, was evicted, belongs to another scope, or lived in an unreachable Redis.
// One Redis round trip.
func (c *Cache) Page(ctx context.Context, sc Scope, snapshotID string, offset, n int) ([][]byte, error) {
	if err := sc.validate(); err != nil {
		return nil, err
	}
	if offset < 0 || n < 0 {
		return nil, fmt.Errorf("cache: invalid page offset %d, size %d", offset, n)
	}
	switch snapshotKind(snapshotID) {
	case localSnapshot:
		s := c.localSnap(sc, snapshotID)
		if s == nil {
			return nil, ErrSnapshotGone
		}
		if offset >= len(s.items) {
			return nil, nil
		}
		end := len(s.items)
		if n < end-offset { // not offset+n < end: that could overflow
			end = offset + n
		}
		out := s.items[offset:end]
		return out[:len(out):len(out)], nil
	case redisSnapshot:
	default:
		return nil, ErrSnapshotGone
	}
	if !c.redisUp() {
		return nil, fmt.Errorf("%w: %w", ErrSnapshotGone, errRedisDown)
	}
	key := c.snapKey(sc, snapshotID)
	opCtx, cancel := context.WithTimeout(ctx, c.opTimeout)
	defer cancel()
	var rng *redis.StringSliceCmd
	var exists *redis.IntCmd
	_, err := c.rdb.Pipelined(opCtx, func(p redis.Pipeliner) error {
		if n > 0 {
			// Index 0 is the header, so item i is at i+1.
			end := int64(offset) + int64(n)
			if end < int64(offset) {
				end = -1 // overflowed: to the end
			}
			rng = p.LRange(opCtx, key, int64(offset)+1, end)
		}
		exists = p.Exists(opCtx, key)
		return nil
	})
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		c.markDown(err)
		return nil, fmt.Errorf("%w: %w", ErrSnapshotGone, errRedisDown)
	}
	c.markUp()
	if exists.Val() == 0 {
		return nil, ErrSnapshotGone
	}
	if rng == nil {
		return nil, nil
	}
	return toBytes(rng.Val()), nil
}

// Invalidate drops the entries for keys (their snapshots stay readable for open cursors). A fill
// that began before the invalidation does not install its result afterwards. When Redis is
// unreachable, only the local entries are dropped and an error is returned.
func (c *Cache) Invalidate(ctx context.Context, sc Scope, keys ...string) error {
	if err := sc.validate(); err != nil {
		return err
	}
	if len(keys) == 0 {
		return nil
	}
	heads := make([]string, len(keys))
	for i, k := range keys {
		c.entries.Remove(localKey{sc.Tenant, sc.Account, "h:" + k})
		heads[i] = c.headKey(sc, k)
	}
	if !c.redisUp() {
		return fmt.Errorf("cache: invalidate: %w", errRedisDown)
	}
	opCtx, cancel := context.WithTimeout(ctx, c.opTimeout)
	defer cancel()
	err := invalidateScript.Run(opCtx, c.rdb, heads, micros(c.now()), c.lockTTL.Milliseconds()).Err()
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		c.markDown(err)
		return fmt.Errorf("cache: invalidate: %w: %w", errRedisDown, err)
	}
	c.markUp()
	return nil
}

// Snapshot id kinds: the first character of an id.
const (
	redisSnapshot = 'r'
	localSnapshot = 'l'
)

// newSnapshotID returns a random id: kind followed by 32 hex digits.
func newSnapshotID(kind byte) string { return string(kind) + randomHex() }

func randomHex() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+).
	return hex.EncodeToString(b[:])
}

// snapshotKind returns the kind of a well-formed id, or 0.
func snapshotKind(id string) byte {
	if len(id) != 33 || (id[0] != redisSnapshot && id[0] != localSnapshot) {
		return 0
	}
	for _, ch := range []byte(id[1:]) {
		if !(ch >= '0' && ch <= '9' || ch >= 'a' && ch <= 'f') {
			return 0
		}
	}
	return id[0]
}

func micros(t time.Time) int64 { return t.UnixMicro() }

func toBytes(ss []string) [][]byte {
	out := make([][]byte, len(ss))
	for i, s := range ss {
		out[i] = []byte(s)
	}
	return out
}
