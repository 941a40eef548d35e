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
	"time"

	"github.com/redis/go-redis/v9"
)

// Defaults.
const (
	DefaultRetention = 24 * time.Hour
	DefaultLease     = time.Minute
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
	key      string
	token    string
}

// Options configure a Store.
type Options struct {
	Client redis.UniversalClient
	Prefix string
	// Retention is how long an answer is replayed; default 24 h.
	Retention time.Duration
	// Lease bounds how long a running request holds its key; it should exceed the request
	// timeout. Default 1 minute.
	Lease time.Duration
}

// Store keeps idempotency records in Redis.
type Store struct {
	rc        redis.UniversalClient
	prefix    string
	retention time.Duration
	lease     time.Duration
}

// New returns a Store.
func New(o Options) (*Store, error) {
	if o.Client == nil {
		return nil, errors.New("idempotency: Options.Client is required")
	}
	if o.Retention <= 0 {
		o.Retention = DefaultRetention
	}
	if o.Lease <= 0 {
		o.Lease = DefaultLease
	}
	return &Store{rc: o.Client, prefix: o.Prefix, retention: o.Retention, lease: o.Lease}, nil
}

// Retention is how long answers are replayed.
func (s *Store) Retention() time.Duration { return s.retention }

func (s *Store) recordKey(tenant, key string) string {
	sum := sha256.Sum256([]byte(key))
	return s.prefix + "idem:{" + tenant + "}:" + hex.EncodeToString(sum[:])
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

// begin claims KEYS[1] for fingerprint ARGV[1] and token ARGV[2] for ARGV[3] ms, or returns the
// record's state, fingerprint and stored answer.
var begin = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('HSET', KEYS[1], 'state', 'running', 'fp', ARGV[1], 'token', ARGV[2])
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
  return {'claimed'}
end
return redis.call('HMGET', KEYS[1], 'state', 'fp', 'resp')
`)

// complete stores answer ARGV[2] for ARGV[3] ms if token ARGV[1] still holds the claim.
var complete = redis.NewScript(`
if redis.call('HGET', KEYS[1], 'token') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'state', 'done', 'resp', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
`)

// abandon deletes the claim if token ARGV[1] still holds it.
var abandon = redis.NewScript(`
if redis.call('HGET', KEYS[1], 'token') ~= ARGV[1] then return 0 end
return redis.call('DEL', KEYS[1])
`)

// Begin looks the tenant's key up for a request with the given fingerprint and claims it when new.
func (s *Store) Begin(ctx context.Context, tenant, key, fingerprint string) (*Claim, error) {
	var b [16]byte
	_, _ = rand.Read(b[:])
	c := &Claim{key: s.recordKey(tenant, key), token: hex.EncodeToString(b[:])}
	res, err := begin.Run(ctx, s.rc, []string{c.key}, fingerprint, c.token, s.lease.Milliseconds()).Slice()
	if err != nil {
		return nil, fmt.Errorf("idempotency: begin: %w", err)
	}
	if len(res) == 1 {
		c.Outcome = Claimed
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

// Complete stores the answer to a claimed request. It reports false when the claim was lost
// (its lease ran out and another request took the key).
func (s *Store) Complete(ctx context.Context, c *Claim, r Response) (bool, error) {
	raw, err := json.Marshal(r)
	if err != nil {
		return false, err
	}
	n, err := complete.Run(ctx, s.rc, []string{c.key}, c.token, raw, s.retention.Milliseconds()).Int()
	if err != nil {
		return false, fmt.Errorf("idempotency: complete: %w", err)
	}
	return n == 1, nil
}

// Abandon releases a claim without storing an answer: the next request with the key runs.
func (s *Store) Abandon(ctx context.Context, c *Claim) error {
	if err := abandon.Run(ctx, s.rc, []string{c.key}, c.token).Err(); err != nil {
		return fmt.Errorf("idempotency: abandon: %w", err)
	}
	return nil
}
