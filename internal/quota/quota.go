package quota

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// Window is the length of Podio's rate-limit window.
const Window = time.Hour

// Defaults for Options.
const (
	DefaultPrefix           = "dirgate:"
	DefaultGeneralLimit     = 1000
	DefaultRateLimitedLimit = 250
	DefaultReserve          = 0.2
	DefaultOpTimeout        = 50 * time.Millisecond
	DefaultDownBackoff      = time.Second
)

// Options configures a Budget. Zero values take the defaults named on each field.
type Options struct {
	// Client is the Redis the replicas share. Required.
	Client redis.UniversalClient
	// Prefix starts every key; default DefaultPrefix. It must not contain '{' or '}', which would
	// move the hash tag.
	Prefix string
	// Now is the clock; default time.Now. All time comes from here, including the time the Redis
	// scripts see, so tests can compress hours.
	Now func() time.Time
	// Logger receives the warning when Redis becomes unreachable; default discards.
	Logger *slog.Logger
	// GeneralLimit and RateLimitedLimit are calls per rolling hour; defaults 1000 and 250.
	GeneralLimit, RateLimitedLimit int
	// Reserve is the share of each limit kept for Interactive calls, in [0, 1); default 0.2.
	// Set NoReserve to use 0.
	Reserve float64
	// NoReserve makes a zero Reserve mean "no reserve" instead of the default.
	NoReserve bool
	// Replicas is the number of gateway replicas; while Redis is unreachable each uses
	// limit/Replicas calls locally, so that together they still stay under the limit. Default 1.
	Replicas int
	// OpTimeout bounds each Redis call; default 50ms.
	OpTimeout time.Duration
	// DownBackoff is how long the local budget is used after a Redis error before Redis is tried
	// again; default 1s.
	DownBackoff time.Duration
}

// Budget is the shared call budget. It is safe for concurrent use.
type Budget struct {
	client      redis.UniversalClient
	prefix      string
	now         func() time.Time
	log         *slog.Logger
	limits      map[Class]int
	reserve     float64
	replicas    int
	opTimeout   time.Duration
	downBackoff time.Duration

	// id makes this instance's sorted-set members unique across replicas; seq within it.
	id  string
	seq atomic.Uint64

	// downUntil is the Unix ms (on b.now's clock) before which Redis is skipped.
	downUntil atomic.Int64
	// down remembers that the last Redis outcome was a failure, so each outage logs once.
	down atomic.Bool

	local *localBudget
}

// ErrInvalid is returned (wrapped) for invalid arguments.
var ErrInvalid = errors.New("quota: invalid argument")

// New checks o and returns a Budget.
func New(o Options) (*Budget, error) {
	if o.Client == nil {
		return nil, errors.New("quota: Options.Client is required")
	}
	b := &Budget{
		client:      o.Client,
		prefix:      o.Prefix,
		now:         o.Now,
		log:         o.Logger,
		reserve:     o.Reserve,
		replicas:    o.Replicas,
		opTimeout:   o.OpTimeout,
		downBackoff: o.DownBackoff,
	}
	if b.prefix == "" {
		b.prefix = DefaultPrefix
	}
	for _, r := range b.prefix {
		if r == '{' || r == '}' {
			return nil, fmt.Errorf("quota: Options.Prefix %q must not contain '{' or '}'", b.prefix)
		}
	}
	if b.now == nil {
		b.now = time.Now
	}
	if b.log == nil {
		b.log = slog.New(slog.DiscardHandler)
	}
	general, rateLimited := o.GeneralLimit, o.RateLimitedLimit
	if general == 0 {
		general = DefaultGeneralLimit
	}
	if rateLimited == 0 {
		rateLimited = DefaultRateLimitedLimit
	}
	if general < 1 || rateLimited < 1 {
		return nil, fmt.Errorf("quota: limits must be at least 1 (general %d, rate limited %d)", general, rateLimited)
	}
	b.limits = map[Class]int{General: general, RateLimited: rateLimited}
	if b.reserve == 0 && !o.NoReserve {
		b.reserve = DefaultReserve
	}
	if !(b.reserve >= 0 && b.reserve < 1) {
		return nil, fmt.Errorf("quota: Options.Reserve %v outside [0, 1)", o.Reserve)
	}
	if b.replicas == 0 {
		b.replicas = 1
	}
	if b.replicas < 1 {
		return nil, fmt.Errorf("quota: Options.Replicas %d must be at least 1", o.Replicas)
	}
	if b.opTimeout == 0 {
		b.opTimeout = DefaultOpTimeout
	}
	if b.downBackoff == 0 {
		b.downBackoff = DefaultDownBackoff
	}
	if b.opTimeout < 0 || b.downBackoff < 0 {
		return nil, errors.New("quota: OpTimeout and DownBackoff must not be negative")
	}
	var id [6]byte
	_, _ = rand.Read(id[:])
	b.id = hex.EncodeToString(id[:])
	b.local = newLocalBudget()
	return b, nil
}

// Status is the state of one Key's budget.
type Status struct {
	// Classes holds General and RateLimited.
	Classes map[Class]ClassStatus
	// CooldownUntil is when the cooldown after Podio's 420 ends; zero when none.
	CooldownUntil time.Time
	// Reserve is the share of each limit kept for Interactive calls.
	Reserve float64
}

// ClassStatus is the state of one class of one Key's budget.
type ClassStatus struct {
	// Limit is calls per rolling hour. While Redis is unreachable it is this replica's local share.
	Limit int
	// Remaining is how many more Interactive calls of the class could be admitted now; for
	// RateLimited it is also bounded by General's, since those calls count against both.
	Remaining int
	// UsedLastHour counts the calls in the window, including phantoms recorded by Observe.
	UsedLastHour int
	// NextSlotAt is when the oldest counted call leaves the window (the next slot frees up);
	// zero if none used.
	NextSlotAt time.Time
}

// Admit counts one call of class c for key k when the budget allows it, atomically across
// replicas. Interactive calls may use the whole limit; Background calls only while the calls in
// the last hour are below limit*(1-Reserve). A call of class RateLimited also counts against
// General (both must allow it), and its Decision.Remaining is the smaller of the two. During a
// cooldown every call is refused with Cooldown set.
//
// Admit never fails because of Redis: when Redis is unreachable or slower than OpTimeout it
// decides from the local budget, and Decision.Limit and Remaining then describe this replica's
// share (limit/Replicas). It returns an error only for invalid arguments (ErrInvalid) or when ctx
// itself is done.
func (b *Budget) Admit(ctx context.Context, k Key, c Class, p Priority) (Decision, error) {
	if err := validate(k, c); err != nil {
		return Decision{}, err
	}
	if p != Interactive && p != Background {
		return Decision{}, fmt.Errorf("%w: priority %d", ErrInvalid, p)
	}
	nowMS := b.now().UnixMilli()
	classes := classesOf(c)
	member := b.id + ":" + strconv.FormatUint(b.seq.Add(1), 36)
	if b.redisUp(nowMS) {
		keys := []string{b.key(k, "cooldown")}
		// The cooldown known in process goes along: it must hold even if Redis lost its copy,
		// and one learned during an outage reaches the other replicas this way.
		args := []any{nowMS, nowMS - Window.Milliseconds(), member, b.local.cooldownUntil(k)}
		for _, cl := range classes {
			keys = append(keys, b.key(k, string(cl)))
			args = append(args, b.limits[cl], b.threshold(b.limits[cl], p))
		}
		res, err := b.run(ctx, admitScript, keys, args)
		if err == nil {
			d, perr := b.admitDecision(res, c)
			if perr == nil {
				if d.Allowed {
					// Remember our own spending, so an outage starts from it instead of from zero.
					b.local.record(k, classes, nowMS)
				}
				return d, nil
			}
			err = perr
		}
		if ctx.Err() != nil {
			return Decision{}, fmt.Errorf("quota: admit: %w", ctx.Err())
		}
		b.markDown(nowMS, err)
	}
	return b.local.admit(k, c, classes, nowMS, b.localLimits(p), b.retryRedisIn(nowMS)), nil
}

// admitDecision turns the admit script's reply {allowed, retry ms, cooldown, remaining} into a
// Decision.
func (b *Budget) admitDecision(res any, c Class) (Decision, error) {
	v, err := ints(res, 4)
	if err != nil {
		return Decision{}, err
	}
	return Decision{
		Allowed:    v[0] == 1,
		RetryAfter: ms(v[1]),
		Cooldown:   v[2] == 1,
		Limit:      b.limits[c],
		Remaining:  int(v[3]),
	}, nil
}

// Observe corrects the budget with Podio's X-Rate-Limit-Remaining after a call of class c:
// remaining becomes min(ours, Podio's). It records "phantom" calls at now so that
// limit - used <= remaining; they age out after an hour like real calls. The phantoms go to class
// c only: a later call of the other class is corrected by its own Observe.
//
// Observe never fails because of Redis: the correction is always applied to the local budget.
func (b *Budget) Observe(ctx context.Context, k Key, c Class, remaining int) error {
	if err := validate(k, c); err != nil {
		return err
	}
	if remaining < 0 {
		return fmt.Errorf("%w: negative remaining %d", ErrInvalid, remaining)
	}
	nowMS := b.now().UnixMilli()
	b.local.observe(k, c, nowMS, b.localLimit(b.limits[c]), remaining)
	if !b.redisUp(nowMS) {
		return nil
	}
	member := b.id + ":" + strconv.FormatUint(b.seq.Add(1), 36) + ":p"
	_, err := b.run(ctx, observeScript, []string{b.key(k, string(c))},
		[]any{nowMS, nowMS - Window.Milliseconds(), b.limits[c], remaining, member})
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("quota: observe: %w", ctx.Err())
		}
		b.markDown(nowMS, err)
	}
	return nil
}

// Cooldown records Podio's 420: no call for k (any class) until now+wait, on every replica. It
// only ever extends an existing cooldown. The cooldown is always kept in process too, so this
// replica honours it even if Redis dies; if Redis is unreachable, other replicas learn of it only
// from their own 420.
func (b *Budget) Cooldown(ctx context.Context, k Key, wait time.Duration) error {
	if err := validate(k, General); err != nil {
		return err
	}
	waitMS := wait.Milliseconds()
	if waitMS <= 0 {
		return nil
	}
	nowMS := b.now().UnixMilli()
	until := nowMS + waitMS
	b.local.setCooldown(k, nowMS, until)
	if !b.redisUp(nowMS) {
		return nil
	}
	_, err := b.run(ctx, cooldownScript, []string{b.key(k, "cooldown")}, []any{until, waitMS})
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("quota: cooldown: %w", ctx.Err())
		}
		b.markDown(nowMS, err)
	}
	return nil
}

// Status reports k's budget. While Redis is unreachable it reports this replica's local view,
// with each Limit being the local share.
func (b *Budget) Status(ctx context.Context, k Key) (Status, error) {
	if err := validate(k, General); err != nil {
		return Status{}, err
	}
	nowMS := b.now().UnixMilli()
	if b.redisUp(nowMS) {
		res, err := b.run(ctx, statusScript,
			[]string{b.key(k, "cooldown"), b.key(k, string(General)), b.key(k, string(RateLimited))},
			[]any{nowMS - Window.Milliseconds()})
		if err == nil {
			var v []int64
			if v, err = ints(res, 5); err == nil {
				until := max(v[0], b.local.cooldownUntil(k))
				gen := classStatus(b.limits[General], int(v[1]), v[2])
				rl := classStatus(b.limits[RateLimited], int(v[3]), v[4])
				rl.Remaining = min(rl.Remaining, gen.Remaining)
				return b.status(gen, rl, until, nowMS), nil
			}
		}
		if ctx.Err() != nil {
			return Status{}, fmt.Errorf("quota: status: %w", ctx.Err())
		}
		b.markDown(nowMS, err)
	}
	gen, rl, until := b.local.status(k, nowMS, b.localLimit(b.limits[General]), b.localLimit(b.limits[RateLimited]))
	return b.status(gen, rl, until, nowMS), nil
}

func (b *Budget) status(gen, rl ClassStatus, until, nowMS int64) Status {
	s := Status{Classes: map[Class]ClassStatus{General: gen, RateLimited: rl}, Reserve: b.reserve}
	if until > nowMS {
		s.CooldownUntil = time.UnixMilli(until).UTC()
	}
	return s
}

// classStatus builds a ClassStatus from a count and the oldest score (0 when none).
func classStatus(limit, used int, oldest int64) ClassStatus {
	s := ClassStatus{Limit: limit, UsedLastHour: used, Remaining: max(limit-used, 0)}
	if used > 0 {
		s.NextSlotAt = time.UnixMilli(oldest + Window.Milliseconds()).UTC()
	}
	return s
}

// threshold is how many calls in the window a call of priority p may find and still be admitted
// against limit: the whole limit for Interactive, the share above the reserve for Background.
func (b *Budget) threshold(limit int, p Priority) int {
	if p == Interactive {
		return limit
	}
	// The epsilon keeps 10*(1-0.2) from rounding up to 9 through floating-point noise.
	return int(math.Ceil(float64(limit)*(1-b.reserve) - 1e-9))
}

// localLimit is this replica's share of limit while Redis is unreachable. It rounds down, so the
// replicas together never exceed the limit; with more replicas than calls the share is zero.
func (b *Budget) localLimit(limit int) int { return limit / b.replicas }

// localLimits gives each class's local limit and threshold for priority p.
func (b *Budget) localLimits(p Priority) map[Class][2]int {
	m := make(map[Class][2]int, 2)
	for c, l := range b.limits {
		ll := b.localLimit(l)
		m[c] = [2]int{ll, b.threshold(ll, p)}
	}
	return m
}

func (b *Budget) key(k Key, suffix string) string {
	return b.prefix + "quota:{" + k.ClientID + ":" + strconv.FormatInt(k.UserID, 10) + "}:" + suffix
}

// run runs a script with OpTimeout.
func (b *Budget) run(ctx context.Context, s *redis.Script, keys []string, args []any) (any, error) {
	ctx, cancel := context.WithTimeout(ctx, b.opTimeout)
	defer cancel()
	res, err := s.Run(ctx, b.client, keys, args...).Result()
	if err != nil {
		return nil, fmt.Errorf("quota: redis: %w", err)
	}
	b.markUp()
	return res, nil
}

// redisUp reports whether Redis may be used now (no failure within DownBackoff).
func (b *Budget) redisUp(nowMS int64) bool { return nowMS >= b.downUntil.Load() }

// retryRedisIn is how long until Redis is tried again.
func (b *Budget) retryRedisIn(nowMS int64) time.Duration {
	return ms(max(b.downUntil.Load()-nowMS, 1))
}

// markDown records a Redis failure: Redis is skipped for DownBackoff. Only the first failure of an
// outage is logged.
func (b *Budget) markDown(nowMS int64, err error) {
	b.downUntil.Store(nowMS + b.downBackoff.Milliseconds())
	if b.down.CompareAndSwap(false, true) {
		b.log.Warn("quota: redis unavailable; using the local budget", "err", err.Error(), "retry_after", b.downBackoff)
	}
}

// markUp records a Redis success, logging the end of an outage.
func (b *Budget) markUp() {
	if b.down.Load() && b.down.CompareAndSwap(true, false) {
		b.log.Info("quota: redis reachable again")
	}
}

func validate(k Key, c Class) error {
	if k.ClientID == "" {
		return fmt.Errorf("%w: empty client id", ErrInvalid)
	}
	if c != General && c != RateLimited {
		return fmt.Errorf("%w: class %q", ErrInvalid, c)
	}
	return nil
}

// classesOf lists the budgets a call of class c counts against.
func classesOf(c Class) []Class {
	if c == RateLimited {
		return []Class{General, RateLimited}
	}
	return []Class{General}
}

func ms(n int64) time.Duration { return time.Duration(n) * time.Millisecond }

// ints reads a script's reply of n integers.
func ints(res any, n int) ([]int64, error) {
	arr, ok := res.([]any)
	if !ok || len(arr) != n {
		return nil, fmt.Errorf("quota: unexpected script reply %v", res)
	}
	v := make([]int64, n)
	for i, x := range arr {
		if v[i], ok = x.(int64); !ok {
			return nil, fmt.Errorf("quota: unexpected script reply %v", res)
		}
	}
	return v, nil
}

// admitScript: KEYS[1] cooldown, KEYS[2..] the class sets (General first).
// ARGV: now ms, cutoff ms (now-window; entries at or before it are gone), member, this replica's
// cooldown end (ms, 0 when none), then a (limit, threshold) pair per class set. Returns
// {allowed, retry ms, cooldown, remaining}. Everything is checked before anything is added, so a
// refused call leaves no trace. A longer cooldown known to the replica is written back.
var admitScript = redis.NewScript(`
local now = tonumber(ARGV[1])
local window = now - tonumber(ARGV[2])
local remaining = -1
local retry = 0
local allowed = 1
for i = 2, #KEYS do
  local key = KEYS[i]
  redis.call('ZREMRANGEBYSCORE', key, '-inf', ARGV[2])
  local used = redis.call('ZCARD', key)
  local limit = tonumber(ARGV[2 * i + 1])
  local thr = tonumber(ARGV[2 * i + 2])
  local rem = limit - used
  if rem < 0 then rem = 0 end
  if remaining < 0 or rem < remaining then remaining = rem end
  if used >= thr then
    allowed = 0
    -- The call fits once the entries up to this index have left the window.
    local idx = used - thr
    local e = redis.call('ZRANGE', key, idx, idx, 'WITHSCORES')
    local r = tonumber(e[2]) + window - now
    if r > retry then retry = r end
  end
end
local untilms = tonumber(redis.call('GET', KEYS[1]) or '0')
local localuntil = tonumber(ARGV[4])
if localuntil > untilms and localuntil > now then
  untilms = localuntil
  redis.call('SET', KEYS[1], ARGV[4], 'PX', localuntil - now)
end
if untilms > now then
  return {0, untilms - now, 1, 0}
end
if allowed == 0 then
  if retry < 1 then retry = 1 end
  return {0, retry, 0, remaining}
end
for i = 2, #KEYS do
  redis.call('ZADD', KEYS[i], now, ARGV[3])
  redis.call('PEXPIRE', KEYS[i], window)
end
return {1, 0, 0, remaining - 1}
`)

// observeScript: KEYS[1] the class set. ARGV: now ms, cutoff ms, limit, Podio's remaining,
// member prefix. Adds phantom calls at now until limit - used <= remaining; returns how many.
var observeScript = redis.NewScript(`
local now = tonumber(ARGV[1])
local window = now - tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[2])
local used = redis.call('ZCARD', KEYS[1])
local n = tonumber(ARGV[3]) - used - tonumber(ARGV[4])
if n <= 0 then return 0 end
for i = 1, n do
  redis.call('ZADD', KEYS[1], now, ARGV[5] .. i)
end
redis.call('PEXPIRE', KEYS[1], window)
return n
`)

// cooldownScript: KEYS[1] the cooldown key. ARGV: until ms, wait ms. Only ever extends.
var cooldownScript = redis.NewScript(`
local cur = tonumber(redis.call('GET', KEYS[1]) or '0')
if tonumber(ARGV[1]) <= cur then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
`)

// statusScript: KEYS[1] cooldown, KEYS[2] general set, KEYS[3] rate-limited set. ARGV: cutoff ms.
// Returns {cooldown until, general used, general oldest, rate-limited used, rate-limited oldest};
// it only reads, leaving trimming to Admit.
var statusScript = redis.NewScript(`
local out = {tonumber(redis.call('GET', KEYS[1]) or '0')}
for i = 2, 3 do
  local used = redis.call('ZCOUNT', KEYS[i], '(' .. ARGV[1], '+inf')
  local oldest = 0
  if used > 0 then
    local e = redis.call('ZRANGEBYSCORE', KEYS[i], '(' .. ARGV[1], '+inf', 'WITHSCORES', 'LIMIT', 0, 1)
    oldest = tonumber(e[2])
  end
  table.insert(out, used)
  table.insert(out, oldest)
end
return out
`)
