package webhooks

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/dirgate/dirgate/internal/events"
)

// Delivery statuses.
const (
	Pending   = "pending"
	Succeeded = "succeeded"
	Failed    = "failed"
)

// Delivery is one event on its way to one webhook.
type Delivery struct {
	EventID   string
	EventType string
	Account   string
	// Status is Pending, Succeeded or Failed.
	Status   string
	Attempts int
	// LastStatusCode is the receiver's HTTP status at the last attempt; 0 when it did not answer
	// (or before the first attempt).
	LastStatusCode int
	// LastError says why the last attempt failed ("" after a success): a network error or the
	// status with a short excerpt of the answer. It never holds the URL.
	LastError     string
	LastAttemptAt *time.Time
	// NextAttemptAt is when a pending delivery is tried again after a failure.
	NextAttemptAt *time.Time
	CreatedAt     time.Time
	UpdatedAt     time.Time
	// order is the delivery's entry in its account's order set.
	order string
}

// Hash fields of a delivery record.
const (
	fEventID, fEventType, fAccount, fStatus = "event_id", "event_type", "account", "status"
	fAttempts, fCode, fError                = "attempts", "last_status_code", "last_error"
	fLastAttempt, fNext, fCreated, fUpdated = "last_attempt_at", "next_attempt_at", "created_at", "updated_at"
	fOrder                                  = "order"
)

// Deliveries returns the newest deliveries (at most 100) of the tenant's webhook id, newest event
// first.
func (s *Store) Deliveries(ctx context.Context, tenant, id string) ([]Delivery, error) {
	if _, err := s.Get(ctx, tenant, id); err != nil {
		return nil, err
	}
	evs, err := s.rdb.ZRevRange(ctx, s.indexKey(id), 0, maxListedDeliveries-1).Result()
	if err != nil {
		return nil, fmt.Errorf("webhooks: deliveries: %w", err)
	}
	cmds := make([]*redis.MapStringStringCmd, len(evs))
	if _, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, ev := range evs {
			cmds[i] = p.HGetAll(ctx, s.deliveryKey(id, ev))
		}
		return nil
	}); err != nil {
		return nil, fmt.Errorf("webhooks: deliveries: %w", err)
	}
	out := []Delivery{}
	var gone []any
	for i, c := range cmds {
		h := c.Val()
		if len(h) == 0 {
			gone = append(gone, evs[i]) // expired
			continue
		}
		out = append(out, decodeDelivery(h))
	}
	if len(gone) > 0 {
		s.rdb.ZRem(ctx, s.indexKey(id), gone...)
	}
	return out, nil
}

// delivery reads one delivery record; ok is false when there is none.
func (s *Store) delivery(ctx context.Context, id, event string) (d Delivery, ok bool, err error) {
	h, err := s.rdb.HGetAll(ctx, s.deliveryKey(id, event)).Result()
	if err != nil {
		return Delivery{}, false, fmt.Errorf("webhooks: read delivery: %w", err)
	}
	if len(h) == 0 {
		return Delivery{}, false, nil
	}
	return decodeDelivery(h), true, nil
}

func decodeDelivery(h map[string]string) Delivery {
	d := Delivery{EventID: h[fEventID], EventType: h[fEventType], Account: h[fAccount], Status: h[fStatus], LastError: h[fError], order: h[fOrder]}
	d.Attempts, _ = strconv.Atoi(h[fAttempts])
	d.LastStatusCode, _ = strconv.Atoi(h[fCode])
	d.CreatedAt = msTime(h[fCreated])
	d.UpdatedAt = msTime(h[fUpdated])
	if t := msTime(h[fLastAttempt]); !t.IsZero() {
		d.LastAttemptAt = &t
	}
	if t := msTime(h[fNext]); !t.IsZero() {
		d.NextAttemptAt = &t
	}
	return d
}

func msTime(s string) time.Time {
	ms, err := strconv.ParseInt(s, 10, 64)
	if err != nil || ms <= 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms).UTC()
}

func ms(t time.Time) string { return strconv.FormatInt(t.UnixMilli(), 10) }

// eventOrder splits an event id ("evt_<ms>-<seq>") into its stream position.
func eventOrder(id string) (msPart, seq uint64, ok bool) {
	a, b, ok := strings.Cut(strings.TrimPrefix(id, "evt_"), "-")
	if !ok || !events.ValidID(id) {
		return 0, 0, false
	}
	m, err1 := strconv.ParseUint(a, 10, 64)
	s, err2 := strconv.ParseUint(b, 10, 64)
	return m, s, err1 == nil && err2 == nil
}

// indexScore orders deliveries by event: the stream milliseconds, then the sequence (below 1000
// in practice; larger ones share the last slot).
func indexScore(id string) float64 {
	m, s, _ := eventOrder(id)
	return float64(m)*1000 + float64(min(s, 999))
}

// orderMember is an event's entry in an account's order set: fixed-width position (so that the
// set's lexical order is event order), then when it was added, then the event id.
func orderMember(id string, added time.Time) string {
	m, s, _ := eventOrder(id)
	return fmt.Sprintf("%020d-%020d|%d|%s", m, s, added.UnixMilli(), id)
}

// parseOrderMember returns the added time and event id of an order set entry.
func parseOrderMember(m string) (added time.Time, event string, ok bool) {
	parts := strings.SplitN(m, "|", 3)
	if len(parts) != 3 {
		return time.Time{}, "", false
	}
	return msTime(parts[1]), parts[2], true
}

// createScript records a delivery unless it exists, and returns its status ("new" when created).
// KEYS: record, index, order set. ARGV: event id, type, account, now ms, ttl ms, index score,
// index size, order member.
var createScript = redis.NewScript(`
local st = redis.call('HGET', KEYS[1], 'status')
if st then return st end
redis.call('HSET', KEYS[1], 'event_id', ARGV[1], 'event_type', ARGV[2], 'account', ARGV[3],
  'status', 'pending', 'attempts', 0, 'created_at', ARGV[4], 'updated_at', ARGV[4], 'order', ARGV[8])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
redis.call('ZADD', KEYS[2], ARGV[6], ARGV[1])
redis.call('ZREMRANGEBYRANK', KEYS[2], 0, -(tonumber(ARGV[7]) + 1))
redis.call('PEXPIRE', KEYS[2], ARGV[5])
redis.call('ZADD', KEYS[3], 0, ARGV[8])
redis.call('PEXPIRE', KEYS[3], ARGV[5])
return 'new'
`)

// beginScript counts an attempt of a pending delivery and returns the attempt number (0 when the
// delivery is missing or no longer pending). A delivery past its first attempt leaves the order
// set, in case the process that made the first attempt died before saying so.
// KEYS: record, order set. ARGV: now ms, ttl ms, order member.
var beginScript = redis.NewScript(`
if redis.call('HGET', KEYS[1], 'status') ~= 'pending' then return 0 end
local n = redis.call('HINCRBY', KEYS[1], 'attempts', 1)
redis.call('HSET', KEYS[1], 'last_attempt_at', ARGV[1], 'updated_at', ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
if n > 1 then redis.call('ZREM', KEYS[2], ARGV[3]) end
return n
`)

// finishScript saves the outcome of an attempt, takes the event out of the order set and returns
// the set's new head (the next event that may go), or false.
// KEYS: record, order set. ARGV: now ms, ttl ms, order member, status, code, error, next ms.
var finishScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('HSET', KEYS[1], 'status', ARGV[4], 'last_status_code', ARGV[5], 'last_error', ARGV[6],
    'next_attempt_at', ARGV[7], 'updated_at', ARGV[1])
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
redis.call('ZREM', KEYS[2], ARGV[3])
local head = redis.call('ZRANGE', KEYS[2], 0, 0)
return head[1]
`)
