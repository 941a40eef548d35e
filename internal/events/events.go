package events

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Event types.
const (
	UserAdded                    = "user.added"
	UserRemoved                  = "user.removed"
	UserUpdated                  = "user.updated"
	MembershipAdded              = "membership.added"
	MembershipRemoved            = "membership.removed"
	MembershipRoleChanged        = "membership.role_changed"
	WorkspaceAdded               = "workspace.added"
	WorkspaceRemoved             = "workspace.removed"
	IntegratedAccountCreated     = "integrated_account.created"
	IntegratedAccountNeedsReauth = "integrated_account.needs_reauth"
	IntegratedAccountReactivated = "integrated_account.reactivated"
	IntegratedAccountDeleted     = "integrated_account.deleted"
	JobSucceeded                 = "job.succeeded"
	JobFailed                    = "job.failed"
)

const (
	defaultRetention = 7 * 24 * time.Hour
	maxListBatch     = 500
	idPrefix         = "evt_"
	// Fields of a dispatch stream entry.
	fieldEvent, fieldID = "e", "id"
)

// Types lists every event type, for validation of subscriptions.
var Types = []string{
	UserAdded, UserRemoved, UserUpdated, MembershipAdded, MembershipRemoved, MembershipRoleChanged,
	WorkspaceAdded, WorkspaceRemoved, IntegratedAccountCreated, IntegratedAccountNeedsReauth,
	IntegratedAccountReactivated, IntegratedAccountDeleted, JobSucceeded, JobFailed,
}

// Event is one change, as delivered to webhooks and listed by the feed. It never carries a
// credential.
type Event struct {
	ID        string          `json:"id"`
	Type      string          `json:"type"`
	CreatedAt time.Time       `json:"created_at"`
	Tenant    string          `json:"tenant_id"`
	Account   string          `json:"integrated_account_id"`
	Data      json.RawMessage `json:"data"`
}

// ErrInvalidCursor is returned by List for an `after` that is not an event id.
var ErrInvalidCursor = errors.New("events: after is not an event id")

// Options configure a Log.
type Options struct {
	Client redis.UniversalClient
	Prefix string
	// Retention is how long events stay in the feed and in the dispatch stream; default 7 days.
	Retention time.Duration
	Now       func() time.Time
	Logger    *slog.Logger
}

// Log appends events and reads them back.
type Log struct {
	rc        redis.UniversalClient
	prefix    string
	retention time.Duration
	now       func() time.Time
	log       *slog.Logger
}

// New returns a Log.
func New(o Options) (*Log, error) {
	if o.Client == nil {
		return nil, errors.New("events: Options.Client is required")
	}
	if o.Retention <= 0 {
		o.Retention = defaultRetention
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return &Log{rc: o.Client, prefix: o.Prefix, retention: o.Retention, now: o.Now, log: o.Logger}, nil
}

// Both streams share the {events} hash tag: the append script writes them together.
func (l *Log) feedKey(tenant string) string { return l.prefix + "{events}:t:" + tenant }
func (l *Log) dispatchKey() string          { return l.prefix + "{events}:dispatch" }

// Retention is how long events are kept.
func (l *Log) Retention() time.Duration { return l.retention }

// appendScript adds the event ARGV[1] to the tenant feed KEYS[1] and to the dispatch stream
// KEYS[2], trimming both to the last ARGV[2] ms (by Redis's clock, which also makes the stream
// ids), and keeps an idle feed for that long; it returns the feed id.
var appendScript = redis.NewScript(`
local t = redis.call('TIME')
local minid = tostring(tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) - tonumber(ARGV[2]))
local id = redis.call('XADD', KEYS[1], 'MINID', '~', minid, '*', 'e', ARGV[1])
redis.call('XADD', KEYS[2], 'MINID', '~', minid, '*', 'id', id, 'e', ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return id
`)

// Emit records an event of type typ for the tenant's account with data (marshalled to JSON) and
// returns it with its id.
func (l *Log) Emit(ctx context.Context, tenant, account, typ string, data any) (Event, error) {
	raw, err := json.Marshal(data)
	if err != nil {
		return Event{}, fmt.Errorf("events: data of %s: %w", typ, err)
	}
	e := Event{Type: typ, CreatedAt: l.now().UTC().Truncate(time.Millisecond), Tenant: tenant, Account: account, Data: raw}
	body, err := json.Marshal(e)
	if err != nil {
		return Event{}, err
	}
	id, err := appendScript.Run(ctx, l.rc, []string{l.feedKey(tenant), l.dispatchKey()}, body, l.retention.Milliseconds()).Text()
	if err != nil {
		return Event{}, fmt.Errorf("events: append %s: %w", typ, err)
	}
	e.ID = idPrefix + id
	return e, nil
}

var validID = regexp.MustCompile(`^evt_[0-9]{1,20}-[0-9]{1,20}$`)

// ValidID reports whether s has the form of an event id: "evt_" and a Redis stream id, both of
// whose parts fit in 64 bits (Redis refuses a larger one, and that refusal is not the caller's
// to see as a server fault).
func ValidID(s string) bool {
	if !validID.MatchString(s) {
		return false
	}
	ms, seq, _ := strings.Cut(strings.TrimPrefix(s, idPrefix), "-")
	_, err1 := strconv.ParseUint(ms, 10, 64)
	_, err2 := strconv.ParseUint(seq, 10, 64)
	return err1 == nil && err2 == nil
}

func decode(id string, values map[string]any) (Event, error) {
	raw, _ := values[fieldEvent].(string)
	var e Event
	if err := json.Unmarshal([]byte(raw), &e); err != nil {
		return Event{}, fmt.Errorf("events: entry %s: %w", id, err)
	}
	e.ID = idPrefix + id
	return e, nil
}

// List returns up to limit of the tenant's events after the event id after ("" from the oldest
// kept), only the account's when account is not "", oldest first; more reports whether the feed
// holds later events.
func (l *Log) List(ctx context.Context, tenant, account, after string, limit int) (list []Event, more bool, err error) {
	start := "-"
	if after != "" {
		if !ValidID(after) {
			return nil, false, ErrInvalidCursor
		}
		start = "(" + strings.TrimPrefix(after, idPrefix)
	}
	list = []Event{}
	for {
		batch, err := l.rc.XRangeN(ctx, l.feedKey(tenant), start, "+", int64(max(limit+1, min(maxListBatch, 4*limit)))).Result()
		if err != nil {
			return nil, false, fmt.Errorf("events: list: %w", err)
		}
		for _, m := range batch {
			start = "(" + m.ID
			e, err := decode(m.ID, m.Values)
			if err != nil {
				l.log.WarnContext(ctx, "events: skipping an unreadable entry", "err", err)
				continue
			}
			if account != "" && e.Account != account {
				continue
			}
			if len(list) == limit {
				return list, true, nil
			}
			list = append(list, e)
		}
		if len(batch) == 0 {
			return list, false, nil
		}
	}
}

// Consumer reads the dispatch stream as one member of a consumer group: every event is handed to
// one consumer of the group, and one whose consumer died before acknowledging it is handed to
// another after ClaimAfter.
type Consumer struct {
	Log   *Log
	Group string
	Name  string // unique per replica
	// Handle is called for each event; an error leaves the event unacknowledged, to be handed
	// over again (after ClaimAfter). Handle must therefore be idempotent.
	Handle func(ctx context.Context, e Event) error
	// Block is how long one read waits for new events; default 1 s.
	Block time.Duration
	// ClaimAfter is how long an event may stay unacknowledged before another consumer takes it;
	// default 30 s.
	ClaimAfter time.Duration
	// ForgetAfter is how long another member of the group may be idle, holding no events, before
	// it is removed from the group; default 1 h. Names are unique per process, so such a member
	// belongs to a process that ended without leaving (a crash, a kill); without this the group
	// would keep one member per process start.
	ForgetAfter time.Duration
}

// membersKey is the hash of the group's consumers' heartbeats: name -> Unix ms of the last one.
func (c *Consumer) membersKey() string { return c.Log.prefix + "{events}:members:" + c.Group }

// heartbeat records that this consumer is alive. Redis's own idle time of a consumer cannot say
// so: before Redis 7.2 a read that finds nothing does not reset it.
func (c *Consumer) heartbeat(ctx context.Context) {
	if err := c.Log.rc.HSet(ctx, c.membersKey(), c.Name, time.Now().UnixMilli()).Err(); err != nil && ctx.Err() == nil {
		c.Log.log.WarnContext(ctx, "events: recording the consumer's heartbeat failed", "err", err)
	}
}

// leave removes this consumer from the group when it ends holding no events; one that holds some
// stays, so that another consumer can claim them (and forgets it later).
func (c *Consumer) leave(ctx context.Context, key string) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	_ = c.Log.rc.HDel(ctx, c.membersKey(), c.Name).Err()
	members, err := c.Log.rc.XInfoConsumers(ctx, key, c.Group).Result()
	if err != nil {
		return
	}
	for _, m := range members {
		if m.Name == c.Name && m.Pending == 0 {
			_ = c.Log.rc.XGroupDelConsumer(ctx, key, c.Group, c.Name).Err()
		}
	}
}

// forgetIdle removes the other members of the group that hold no events and show no sign of life
// for longer than after: no heartbeat that recent or, for one without a heartbeat (it left, or
// predates heartbeats), no delivery that recent. A live consumer's heartbeat is never that old.
func (c *Consumer) forgetIdle(ctx context.Context, key string, after time.Duration) {
	members, err := c.Log.rc.XInfoConsumers(ctx, key, c.Group).Result()
	if err != nil {
		return // no group yet, or Redis is away: the next round tries again
	}
	beats, err := c.Log.rc.HGetAll(ctx, c.membersKey()).Result()
	if err != nil {
		return
	}
	now := time.Now()
	for _, m := range members {
		if m.Name == c.Name || m.Pending > 0 {
			continue
		}
		if ms, ok := beats[m.Name]; ok {
			at, err := strconv.ParseInt(ms, 10, 64)
			if err == nil && now.Sub(time.UnixMilli(at)) < after {
				continue
			}
		} else if m.Idle < after {
			continue
		}
		if err := c.Log.rc.XGroupDelConsumer(ctx, key, c.Group, m.Name).Err(); err != nil {
			if ctx.Err() == nil {
				c.Log.log.WarnContext(ctx, "events: removing an idle consumer failed", "consumer", m.Name, "err", err)
			}
			continue
		}
		_ = c.Log.rc.HDel(ctx, c.membersKey(), m.Name).Err()
	}
}

// Run consumes until ctx ends.
func (c *Consumer) Run(ctx context.Context) error {
	block := c.Block
	if block <= 0 {
		block = time.Second
	}
	claimAfter := c.ClaimAfter
	if claimAfter <= 0 {
		claimAfter = 30 * time.Second
	}
	key := c.Log.dispatchKey()
	rc := c.Log.rc
	if err := rc.XGroupCreateMkStream(ctx, key, c.Group, "0").Err(); err != nil && !strings.Contains(err.Error(), "BUSYGROUP") {
		return fmt.Errorf("events: create group: %w", err)
	}
	// A member from the start (Redis adds one only at its first delivery), so that XINFO
	// CONSUMERS lists every running consumer; leave removes it again.
	_ = rc.XGroupCreateConsumer(ctx, key, c.Group, c.Name).Err()
	forgetAfter := c.ForgetAfter
	if forgetAfter <= 0 {
		forgetAfter = time.Hour
	}
	defer c.leave(context.WithoutCancel(ctx), key)
	beatEvery := min(claimAfter/2, forgetAfter/4)
	lastClaim, lastBeat, lastForget := time.Time{}, time.Time{}, time.Time{}
	for ctx.Err() == nil {
		var msgs []redis.XMessage
		if time.Since(lastBeat) >= beatEvery {
			lastBeat = time.Now()
			c.heartbeat(ctx)
		}
		if time.Since(lastForget) >= forgetAfter/4 {
			lastForget = time.Now()
			c.forgetIdle(ctx, key, forgetAfter)
		}
		if time.Since(lastClaim) >= claimAfter/2 {
			lastClaim = time.Now()
			claimed, _, err := rc.XAutoClaim(ctx, &redis.XAutoClaimArgs{Stream: key, Group: c.Group, Consumer: c.Name,
				MinIdle: claimAfter, Start: "0-0", Count: 100}).Result()
			if err == nil {
				msgs = append(msgs, claimed...)
			} else if ctx.Err() == nil {
				c.Log.log.WarnContext(ctx, "events: claiming stale events failed", "err", err)
			}
		}
		streams, err := rc.XReadGroup(ctx, &redis.XReadGroupArgs{Group: c.Group, Consumer: c.Name,
			Streams: []string{key, ">"}, Count: 100, Block: block}).Result()
		switch {
		case err == nil:
			for _, s := range streams {
				msgs = append(msgs, s.Messages...)
			}
		case errors.Is(err, redis.Nil) || ctx.Err() != nil:
		default:
			if strings.Contains(err.Error(), "NOGROUP") {
				// The stream was deleted (tests clean Redis up); create the group again.
				_ = rc.XGroupCreateMkStream(ctx, key, c.Group, "0").Err()
			} else {
				c.Log.log.WarnContext(ctx, "events: reading the dispatch stream failed", "err", err)
			}
			select {
			case <-ctx.Done():
			case <-time.After(block):
			}
		}
		for _, m := range msgs {
			id, _ := m.Values[fieldID].(string)
			e, err := decode(id, m.Values)
			if err == nil {
				if err = c.Handle(ctx, e); err != nil {
					c.Log.log.WarnContext(ctx, "events: handling failed; it will be handed over again", "event", e.ID, "err", err)
					continue
				}
			} else {
				c.Log.log.WarnContext(ctx, "events: dropping an unreadable dispatch entry", "err", err)
			}
			if err := rc.XAck(context.WithoutCancel(ctx), key, c.Group, m.ID).Err(); err != nil {
				c.Log.log.WarnContext(ctx, "events: acknowledging failed; the event will be handed over again", "err", err)
			}
		}
	}
	return nil
}
