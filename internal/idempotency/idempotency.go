package idempotency

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// Defaults.
const (
	DefaultRetention      = 24 * time.Hour
	DefaultErrorRetention = time.Hour
	DefaultLease          = time.Minute
	// DefaultMaxKeys bounds the records one tenant holds at once (running and kept).
	DefaultMaxKeys = 10000
	// DefaultMaxBytes bounds the bytes of kept answers one tenant holds at once.
	DefaultMaxBytes = 64 << 20
)

// Outcome is what Begin found.
type Outcome int

const (
	// Claimed: the key is new; the caller runs the request, then calls Complete or Abandon.
	Claimed Outcome = iota
	// Replay: the key was used for the same request, whose answer is in Claim.Response.
	Replay
	// InProgress: the same request is running now (on this or another replica).
	InProgress
	// Mismatch: the key was used for another request (other route, query or body).
	Mismatch
	// Full: the key is new, but the tenant holds as many records (or answer bytes) as it may;
	// Claim.RetryAt says when the oldest one is forgotten.
	Full
)

// Response is a stored answer.
type Response struct {
	Status int         `json:"status"`
	Header http.Header `json:"header,omitempty"`
	Body   []byte      `json:"body,omitempty"`
}

// Claim is the result of Begin.
type Claim struct {
	Outcome  Outcome
	Response *Response // set for Replay
	RetryAt  time.Time // set for Full
	tenant   string
	key      string
	token    string
}

// Options configure a Store.
type Options struct {
	Client redis.UniversalClient
	Prefix string
	// Retention is how long an answer is replayed; default 24 h.
	Retention time.Duration
	// ErrorRetention is how long a 4xx answer is replayed (a refused request is cheap to send
	// again, and should not hold a tenant's storage for a day); default 1 h, at most Retention.
	ErrorRetention time.Duration
	// Lease bounds how long a running request holds its key; it should exceed the request
	// timeout. Default 1 minute.
	Lease time.Duration
	// MaxKeys and MaxBytes bound what one tenant holds at once: records (running or kept) and the
	// bytes of kept answers. A new key beyond either is refused (Full) until the oldest record
	// is forgotten. Defaults DefaultMaxKeys, DefaultMaxBytes.
	MaxKeys  int
	MaxBytes int64
	// Now is the clock the limits are counted with; default time.Now.
	Now func() time.Time
}

// Store keeps idempotency records in Redis.
type Store struct {
	rc        redis.UniversalClient
	prefix    string
	retention time.Duration
	errRet    time.Duration
	lease     time.Duration
	maxKeys   int
	maxBytes  int64
	now       func() time.Time
}

// New returns a Store.
func New(o Options) (*Store, error) {
	if o.Client == nil {
		return nil, errors.New("idempotency: Options.Client is required")
	}
	if o.Retention <= 0 {
		o.Retention = DefaultRetention
	}
	if o.ErrorRetention <= 0 {
		o.ErrorRetention = DefaultErrorRetention
	}
	if o.Lease <= 0 {
		o.Lease = DefaultLease
	}
	if o.MaxKeys <= 0 {
		o.MaxKeys = DefaultMaxKeys
	}
	if o.MaxBytes <= 0 {
		o.MaxBytes = DefaultMaxBytes
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Store{rc: o.Client, prefix: o.Prefix, retention: o.Retention, errRet: min(o.ErrorRetention, o.Retention),
		lease: o.Lease, maxKeys: o.MaxKeys, maxBytes: o.MaxBytes, now: o.Now}, nil
}

// Retention is how long answers are replayed.
func (s *Store) Retention() time.Duration { return s.retention }

// keys are the record of one key and the tenant's ledger (a sorted set of its records by
// expiry, and a hash of the kept answers' sizes with their total), all in the tenant's slot.
func (s *Store) keys(tenant, key string) (record, ledger, sizes, member string) {
	sum := sha256.Sum256([]byte(key))
	member = hex.EncodeToString(sum[:])
	base := s.prefix + "idem:{" + tenant + "}:"
	return base + member, base + "ledger", base + "sizes", member
}

// Fingerprint identifies a request: the same fingerprint means the same request. parts are
// hashed in order, each length-prefixed so that no two different lists collide.
func Fingerprint(parts ...[]byte) string {
	h := sha256.New()
	for _, p := range parts {
		fmt.Fprintf(h, "%d:", len(p))
		h.Write(p)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// The tenant's ledger is pruned of forgotten records at each claim (a bounded number at a time).
// KEYS[2] = ledger (member: key digest, score: expiry ms), KEYS[3] = sizes (member: key digest,
// value: kept bytes; field "total": their sum); ARGV[1] = now (ms).
const pruneLedger = `
local gone = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[1], 'LIMIT', 0, 500)
for _, m in ipairs(gone) do
  local size = redis.call('HGET', KEYS[3], m)
  if size then
    redis.call('HINCRBY', KEYS[3], 'total', -tonumber(size))
    redis.call('HDEL', KEYS[3], m)
  end
  redis.call('ZREM', KEYS[2], m)
end
`

// account records member ARGV[a] in the ledger until ARGV[b] (ms) with ARGV[c] bytes, and keeps
// the ledger as long as its newest record (relative to the caller's clock ARGV[1]).
const accountRecord = `
local function account(m, expires, size)
  local old = redis.call('HGET', KEYS[3], m)
  if old then redis.call('HINCRBY', KEYS[3], 'total', -tonumber(old)) end
  if tonumber(size) > 0 then
    redis.call('HSET', KEYS[3], m, size)
    redis.call('HINCRBY', KEYS[3], 'total', size)
  else
    redis.call('HDEL', KEYS[3], m)
  end
  redis.call('ZADD', KEYS[2], expires, m)
  local last = redis.call('ZRANGE', KEYS[2], -1, -1, 'WITHSCORES')
  local ttl = math.max(1, tonumber(last[2]) - tonumber(ARGV[1]))
  redis.call('PEXPIRE', KEYS[2], ttl)
  redis.call('PEXPIRE', KEYS[3], ttl)
end
`

// begin claims KEYS[1] (member ARGV[5]) for fingerprint ARGV[2] and token ARGV[3] for ARGV[4]
// ms, or returns the record's state, fingerprint and stored answer, or {'full', oldest expiry}
// when the tenant holds ARGV[6] records or ARGV[7] bytes.
var begin = redis.NewScript(pruneLedger + accountRecord + `
if redis.call('EXISTS', KEYS[1]) == 0 then
  if redis.call('ZSCORE', KEYS[2], ARGV[5]) == false and
     (redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[6]) or
      tonumber(redis.call('HGET', KEYS[3], 'total') or '0') >= tonumber(ARGV[7])) then
    local oldest = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
    return {'full', oldest[2] or ARGV[1]}
  end
  redis.call('HSET', KEYS[1], 'state', 'running', 'fp', ARGV[2], 'token', ARGV[3])
  redis.call('PEXPIRE', KEYS[1], ARGV[4])
  account(ARGV[5], tonumber(ARGV[1]) + tonumber(ARGV[4]), 0)
  return {'claimed'}
end
return redis.call('HMGET', KEYS[1], 'state', 'fp', 'resp')
`)

// complete stores answer ARGV[3] for ARGV[4] ms if token ARGV[2] still holds the claim.
var complete = redis.NewScript(accountRecord + `
if redis.call('HGET', KEYS[1], 'token') ~= ARGV[2] then return 0 end
redis.call('HSET', KEYS[1], 'state', 'done', 'resp', ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
account(ARGV[5], tonumber(ARGV[1]) + tonumber(ARGV[4]), string.len(ARGV[3]))
return 1
`)

// abandon deletes the claim if token ARGV[2] still holds it.
var abandon = redis.NewScript(`
if redis.call('HGET', KEYS[1], 'token') ~= ARGV[2] then return 0 end
redis.call('ZREM', KEYS[2], ARGV[3])
return redis.call('DEL', KEYS[1])
`)

// Key is the Idempotency-Key the claim is for.
func (c *Claim) Key() string { return c.key }

// Begin looks the tenant's key up for a request with the given fingerprint and claims it when new.
func (s *Store) Begin(ctx context.Context, tenant, key, fingerprint string) (*Claim, error) {
	var b [16]byte
	_, _ = rand.Read(b[:])
	c := &Claim{tenant: tenant, key: key, token: hex.EncodeToString(b[:])}
	record, ledger, sizes, member := s.keys(tenant, key)
	res, err := begin.Run(ctx, s.rc, []string{record, ledger, sizes}, s.now().UnixMilli(), fingerprint, c.token,
		s.lease.Milliseconds(), member, s.maxKeys, s.maxBytes).Slice()
	if err != nil {
		return nil, fmt.Errorf("idempotency: begin: %w", err)
	}
	if len(res) == 1 {
		c.Outcome = Claimed
		return c, nil
	}
	if len(res) == 2 && res[0] == "full" {
		c.Outcome = Full
		if ms, err := strconv.ParseInt(fmt.Sprint(res[1]), 10, 64); err == nil {
			c.RetryAt = time.UnixMilli(ms)
		}
		return c, nil
	}
	if len(res) != 3 {
		return nil, fmt.Errorf("idempotency: begin: unexpected reply %v", res)
	}
	state, _ := res[0].(string)
	fp, _ := res[1].(string)
	switch {
	case fp != fingerprint:
		c.Outcome = Mismatch
	case state == "done":
		raw, _ := res[2].(string)
		var r Response
		if err := json.Unmarshal([]byte(raw), &r); err != nil {
			return nil, fmt.Errorf("idempotency: stored answer: %w", err)
		}
		c.Outcome, c.Response = Replay, &r
	default:
		c.Outcome = InProgress
	}
	return c, nil
}

// Complete stores the answer to a claimed request: a 4xx for ErrorRetention, any other for
// Retention. It reports false when the claim was lost (its lease ran out and another request
// took the key).
func (s *Store) Complete(ctx context.Context, c *Claim, r Response) (bool, error) {
	raw, err := json.Marshal(r)
	if err != nil {
		return false, err
	}
	keep := s.retention
	if r.Status >= 400 {
		keep = s.errRet
	}
	record, ledger, sizes, member := s.keys(c.tenant, c.key)
	n, err := complete.Run(ctx, s.rc, []string{record, ledger, sizes}, s.now().UnixMilli(), c.token, raw,
		keep.Milliseconds(), member).Int()
	if err != nil {
		return false, fmt.Errorf("idempotency: complete: %w", err)
	}
	return n == 1, nil
}

// Abandon releases a claim without storing an answer: the next request with the key runs.
func (s *Store) Abandon(ctx context.Context, c *Claim) error {
	record, ledger, _, member := s.keys(c.tenant, c.key)
	if err := abandon.Run(ctx, s.rc, []string{record, ledger}, "", c.token, member).Err(); err != nil {
		return fmt.Errorf("idempotency: abandon: %w", err)
	}
	return nil
}
