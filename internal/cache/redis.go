package cache

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// pushBatch is how many items one RPUSH carries when a snapshot is written.
const pushBatch = 500

// snapshotHeader is element 0 of every snapshot list; it makes an empty snapshot an existing key.
const snapshotHeader = "dirgate:snapshot:v1"

// tenantEscaper makes the tenant part of a key unambiguous: without it, tenant "a:h:b" with key
// "c" and tenant "a" with key "b:h:c" would share a key.
var tenantEscaper = strings.NewReplacer("%", "%25", ":", "%3A")

// base is the start of every key of the scope.
func (c *Cache) base(sc Scope) string {
	return c.prefix + "{acct:" + sc.Account + "}:cache:" + tenantEscaper.Replace(sc.Tenant) + ":"
}

func (c *Cache) headKey(sc Scope, key string) string { return c.base(sc) + "h:" + key }
func (c *Cache) lockKey(sc Scope, key string) string { return c.base(sc) + "l:" + key }
func (c *Cache) snapKey(sc Scope, id string) string  { return c.base(sc) + "s:" + id }
func (c *Cache) derivedKey(sc Scope, baseID, name string) string {
	return c.base(sc) + "d:" + baseID + ":" + name
}
func (c *Cache) derivedLockKey(sc Scope, baseID, name string) string {
	return c.base(sc) + "dl:" + baseID + ":" + name
}

// claimScript reads a head and, when it is absent or still the one the caller saw, tries to take
// the fill lock: "has someone else filled this, and if not, may I?" in one round trip.
// KEYS[1] = head, KEYS[2] = lock (only used when ARGV[4] ~= ”).
// ARGV[1] = snapshot key prefix, ARGV[2] = how many first items to return, ARGV[3] = the head id
// the caller saw ("" for none), ARGV[4] = lock token ("" to only read), ARGV[5] = lock TTL (ms),
// ARGV[6] = expected kind.
// Reply: {id, n, p, t, k, v, {items}, locked, lock ms left}; id is nil when no usable new head
// exists; lock ms left is the PTTL of a lock someone else holds (else 0).
// The snapshot key is built from the head's id rather than declared: it shares the head's hash
// slot, which is what Redis Cluster requires.
var claimScript = redis.NewScript(`
local h = redis.call('HMGET', KEYS[1], 'id', 'n', 'p', 't', 'k', 'v')
if h[1] and h[5] == ARGV[6] and h[1] ~= ARGV[3] then
  local items = {}
  local first = tonumber(ARGV[2])
  if first > 0 and h[5] == 'l' and tonumber(h[2]) > 0 then
    items = redis.call('LRANGE', ARGV[1] .. h[1], 1, first)
  end
  return {h[1], h[2], h[3], h[4], h[5], h[6], items, 0, 0}
end
local locked, left = 0, 0
if ARGV[4] ~= '' then
  if redis.call('SET', KEYS[2], ARGV[4], 'NX', 'PX', ARGV[5]) then
    locked = 1
  else
    left = redis.call('PTTL', KEYS[2])
  end
end
return {false, false, false, false, false, false, {}, locked, left}
`)

// setHeadScript installs a head unless a newer one (or a newer tombstone) exists, and releases the
// fill lock if the caller holds it. It runs inside the MULTI that writes the snapshot.
// KEYS[1] = head, KEYS[2] = lock; ARGV[1] = t (Unix µs), ARGV[2] = head TTL (ms), ARGV[3] = lock
// token or "", ARGV[4..] = field/value pairs.
var setHeadScript = redis.NewScript(`
if ARGV[3] ~= '' and redis.call('GET', KEYS[2]) == ARGV[3] then
  redis.call('DEL', KEYS[2])
end
local cur = redis.call('HGET', KEYS[1], 't')
if cur and tonumber(cur) > tonumber(ARGV[1]) then return 0 end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 't', ARGV[1], unpack(ARGV, 4))
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
`)

// releaseScript deletes the lock only if the caller still holds it.
// KEYS[1] = lock; ARGV[1] = token.
var releaseScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`)

// invalidateScript replaces heads with tombstones that carry only the invalidation time, so a
// fill that began earlier cannot install its result (see setHeadScript).
// KEYS = heads; ARGV[1] = t (Unix µs), ARGV[2] = tombstone TTL (ms).
var invalidateScript = redis.NewScript(`
for _, k in ipairs(KEYS) do
  redis.call('DEL', k)
  redis.call('HSET', k, 't', ARGV[1])
  redis.call('PEXPIRE', k, ARGV[2])
end
return #KEYS
`)

// claim runs claimScript under OpTimeout. It returns the head when one of the expected kind exists
// and differs from seenID, else whether the lock was taken (only tried when token is set) and, when
// another holds it, how long ago that holder took it.
func (c *Cache) claim(ctx context.Context, sc Scope, head, lock, kind string, first int, seenID, token string) (*result, bool, time.Duration, error) {
	opCtx, cancel := context.WithTimeout(ctx, c.opTimeout)
	defer cancel()
	keys := []string{head}
	if token != "" {
		keys = append(keys, lock)
	}
	v, err := claimScript.Run(opCtx, c.rdb, keys,
		c.base(sc)+"s:", first, seenID, token, c.lockTTL.Milliseconds(), kind).Slice()
	if err != nil {
		return nil, false, 0, fmt.Errorf("cache: read head: %w", err)
	}
	c.markUp()
	h, locked, left, err := parseClaim(v)
	var age time.Duration
	if left > 0 {
		age = c.lockTTL - left
	}
	return h, locked, age, err
}

// parseClaim decodes claimScript's reply.
func parseClaim(v []any) (*result, bool, time.Duration, error) {
	bad := errors.New("cache: read head: unexpected script reply")
	if len(v) != 9 {
		return nil, false, 0, bad
	}
	locked, _ := v[7].(int64)
	left, _ := v[8].(int64)
	id, _ := v[0].(string)
	if id == "" {
		return nil, locked == 1, time.Duration(left) * time.Millisecond, nil
	}
	ns, _ := v[1].(string)
	ts, _ := v[3].(string)
	n, err := strconv.Atoi(ns)
	if err != nil || n < 0 {
		return nil, false, 0, bad
	}
	t, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return nil, false, 0, bad
	}
	r := &result{id: id, count: n, fetchedAt: time.UnixMicro(t)}
	r.partial = v[2] == "1"
	if s, ok := v[5].(string); ok {
		r.value = []byte(s)
		r.items = [][]byte{r.value}
	}
	if items, ok := v[6].([]any); ok && len(items) > 0 {
		r.items = make([][]byte, len(items))
		for i, it := range items {
			s, _ := it.(string)
			r.items[i] = []byte(s)
		}
	}
	return r, false, 0, nil
}

// writeEntry stores a fetched entry and releases the lock (token) in one transaction.
func (c *Cache) writeEntry(fctx context.Context, r *request, res *result, head, lock, token string) error {
	life := headTTL(r.p)
	return c.writeSnapshot(fctx, r.sc, res, head, lock, token, life, life+c.snapshotTTL, r.kind)
}

// writeSnapshot writes res's snapshot list (for kind list) and its head in one MULTI/EXEC, so no
// reader sees a head pointing at a half-written list, and no list is left without a TTL.
func (c *Cache) writeSnapshot(fctx context.Context, sc Scope, res *result, head, lock, token string,
	headLife, snapLife time.Duration, kind string) error {
	opCtx, cancel := context.WithTimeout(fctx, c.writeTimeout)
	defer cancel()
	args := []any{micros(res.fetchedAt), max(headLife.Milliseconds(), 1), token,
		"id", res.id, "n", res.count, "p", bool01(res.partial), "k", kind}
	if kind == kindValue {
		args = append(args, "v", res.value)
	}
	_, err := c.rdb.TxPipelined(opCtx, func(p redis.Pipeliner) error {
		if kind == kindList {
			sk := c.snapKey(sc, res.id)
			p.RPush(opCtx, sk, snapshotHeader)
			for i := 0; i < len(res.items); i += pushBatch {
				batch := res.items[i:min(i+pushBatch, len(res.items))]
				vals := make([]any, len(batch))
				for j, it := range batch {
					vals[j] = it
				}
				p.RPush(opCtx, sk, vals...)
			}
			p.PExpire(opCtx, sk, snapLife)
		}
		// EVAL, not EVALSHA: inside MULTI a missing script could not fall back.
		setHeadScript.Eval(opCtx, p, []string{head, lock}, args...)
		return nil
	})
	if err != nil {
		if token != "" {
			c.orphan(lock, token)
		}
		return fmt.Errorf("cache: write snapshot: %w", err)
	}
	c.markUp()
	return nil
}

// release gives the fill lock up after a failed fill, so waiters take over at once instead of
// when it expires.
func (c *Cache) release(fctx context.Context, lock, token string) {
	opCtx, cancel := context.WithTimeout(fctx, c.opTimeout)
	defer cancel()
	if err := releaseScript.Run(opCtx, c.rdb, []string{lock}, token).Err(); err != nil {
		c.orphan(lock, token)
		c.markDown(err)
		return
	}
	c.markUp()
}

func bool01(b bool) string {
	if b {
		return "1"
	}
	return "0"
}
