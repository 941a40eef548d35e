package changes

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Defaults for the zero values of Options.
const (
	DefaultPrefix      = "dirgate:"
	DefaultSnapshotTTL = 7 * 24 * time.Hour
	DefaultMarkMargin  = 5 * time.Second
)

// Options configure a Store.
type Options struct {
	Client redis.UniversalClient
	// Prefix starts every key; it must be the store's, so that deleting an account deletes its keys.
	Prefix string
	// SnapshotTTL is how long a snapshot is kept after the last poll that saved it; a later poll
	// then starts from a new baseline. Default 7 days.
	SnapshotTTL time.Duration
	// MarkMargin is how much later than a write a member list must have been read to be trusted
	// to include it: the replicas' clocks may differ by this much. Default 5 s.
	MarkMargin time.Duration
}

// Store keeps the poll schedule, snapshots and marks in Redis. It is safe for concurrent use.
type Store struct {
	rc          redis.UniversalClient
	prefix      string
	snapshotTTL time.Duration
	margin      time.Duration
}

// New returns a Store. It does not contact Redis.
func New(o Options) (*Store, error) {
	if o.Client == nil {
		return nil, errors.New("changes: Options.Client is required")
	}
	if o.Prefix == "" {
		o.Prefix = DefaultPrefix
	}
	if strings.ContainsAny(o.Prefix, "{}") {
		return nil, fmt.Errorf("changes: prefix %q must not contain { or }", o.Prefix)
	}
	if o.SnapshotTTL <= 0 {
		o.SnapshotTTL = DefaultSnapshotTTL
	}
	if o.MarkMargin <= 0 {
		o.MarkMargin = DefaultMarkMargin
	}
	return &Store{rc: o.Client, prefix: o.Prefix, snapshotTTL: o.SnapshotTTL, margin: o.MarkMargin}, nil
}

// Target is an account to poll.
type Target struct {
	Tenant, Account string
}

func (t Target) member() string { return t.Tenant + "/" + t.Account }

func parseTarget(member string) (Target, bool) {
	tenant, account, ok := strings.Cut(member, "/")
	return Target{Tenant: tenant, Account: account}, ok && tenant != "" && account != ""
}

func (s *Store) dueKey() string { return s.prefix + "changes:due" }
func (s *Store) acctKey(account, k string) string {
	return s.prefix + "{acct:" + account + "}:changes:" + k
}

// Schedule makes the account due at at. With sooner, a due time already earlier is kept (an
// account being enabled again keeps its place); without, at replaces it.
func (s *Store) Schedule(ctx context.Context, t Target, at time.Time, sooner bool) error {
	z := redis.ZAddArgs{LT: sooner, Members: []redis.Z{{Score: float64(at.UnixMilli()), Member: t.member()}}}
	if err := s.rc.ZAddArgs(ctx, s.dueKey(), z).Err(); err != nil {
		return fmt.Errorf("changes: schedule %s: %w", t.Account, err)
	}
	return nil
}

// Unschedule stops polling the account and forgets its snapshot, so that polling it again starts
// from a new baseline. Marks stay: they expire on their own.
func (s *Store) Unschedule(ctx context.Context, t Target) error {
	if err := s.rc.ZRem(ctx, s.dueKey(), t.member()).Err(); err != nil {
		return fmt.Errorf("changes: unschedule %s: %w", t.Account, err)
	}
	if err := s.rc.Del(ctx, s.acctKey(t.Account, "snapshot")).Err(); err != nil {
		return fmt.Errorf("changes: forget the snapshot of %s: %w", t.Account, err)
	}
	return nil
}

// DueAt returns when the account is next due; false when it is not scheduled.
func (s *Store) DueAt(ctx context.Context, t Target) (time.Time, bool, error) {
	ms, err := s.rc.ZScore(ctx, s.dueKey(), t.member()).Result()
	if errors.Is(err, redis.Nil) {
		return time.Time{}, false, nil
	}
	if err != nil {
		return time.Time{}, false, fmt.Errorf("changes: due time of %s: %w", t.Account, err)
	}
	return time.UnixMilli(int64(ms)), true, nil
}

// Due returns up to limit accounts due at now, earliest first.
func (s *Store) Due(ctx context.Context, now time.Time, limit int) ([]Target, error) {
	members, err := s.rc.ZRangeByScore(ctx, s.dueKey(), &redis.ZRangeBy{
		Min: "-inf", Max: fmt.Sprint(now.UnixMilli()), Count: int64(limit),
	}).Result()
	if err != nil {
		return nil, fmt.Errorf("changes: due accounts: %w", err)
	}
	out := make([]Target, 0, len(members))
	for _, m := range members {
		if t, ok := parseTarget(m); ok {
			out = append(out, t)
		}
	}
	return out, nil
}

// reschedule moves a scheduled account's due time to at; an account unscheduled meanwhile stays
// unscheduled.
func (s *Store) reschedule(ctx context.Context, t Target, at time.Time) error {
	z := redis.ZAddArgs{XX: true, Members: []redis.Z{{Score: float64(at.UnixMilli()), Member: t.member()}}}
	if err := s.rc.ZAddArgs(ctx, s.dueKey(), z).Err(); err != nil {
		return fmt.Errorf("changes: reschedule %s: %w", t.Account, err)
	}
	return nil
}

// releaseScript deletes KEYS[1] if it still holds ARGV[1].
var releaseScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`)

// lease takes the account's poll lease for ttl; release gives it back (if still held).
func (s *Store) lease(ctx context.Context, account string, ttl time.Duration) (release func(), ok bool, err error) {
	var b [16]byte
	_, _ = rand.Read(b[:])
	token := hex.EncodeToString(b[:])
	key := s.acctKey(account, "lease")
	ok, err = s.rc.SetNX(ctx, key, token, ttl).Result()
	if err != nil {
		return nil, false, fmt.Errorf("changes: lease %s: %w", account, err)
	}
	if !ok {
		return nil, false, nil
	}
	return func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		defer cancel()
		_ = releaseScript.Run(ctx, s.rc, []string{key}, token).Err()
	}, true, nil
}

// Snapshot returns the account's last snapshot; nil when there is none.
func (s *Store) Snapshot(ctx context.Context, account string) (*Snapshot, error) {
	b, err := s.rc.Get(ctx, s.acctKey(account, "snapshot")).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("changes: read the snapshot of %s: %w", account, err)
	}
	snap := NewSnapshot(time.Time{})
	if err := json.Unmarshal(b, snap); err != nil {
		return nil, fmt.Errorf("changes: the snapshot of %s: %w", account, err)
	}
	return snap, nil
}

func (s *Store) saveSnapshot(ctx context.Context, account string, snap *Snapshot) error {
	b, err := json.Marshal(snap)
	if err != nil {
		return fmt.Errorf("changes: encode the snapshot of %s: %w", account, err)
	}
	if err := s.rc.Set(ctx, s.acctKey(account, "snapshot"), b, s.snapshotTTL).Err(); err != nil {
		return fmt.Errorf("changes: save the snapshot of %s: %w", account, err)
	}
	return nil
}

// putMarkScript sets field ARGV[1] of the hash KEYS[1] to ARGV[2] and makes the hash live at least
// ARGV[3] ms more.
var putMarkScript = redis.NewScript(`
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
local ttl = tonumber(redis.call('PTTL', KEYS[1]))
if ttl < tonumber(ARGV[3]) then redis.call('PEXPIRE', KEYS[1], ARGV[3]) end
return 1
`)

// PutMark records that a write through dirgate left the membership m in the state mk, whose
// event has been emitted. ttl bounds how long the hash of marks is kept in Redis; mk.Expires is
// when the mark stops applying.
func (s *Store) PutMark(ctx context.Context, account string, m Member, mk Mark, ttl time.Duration) error {
	b, err := json.Marshal(mk)
	if err != nil {
		return err
	}
	if err := putMarkScript.Run(ctx, s.rc, []string{s.acctKey(account, "marks")}, m.field(), b, ttl.Milliseconds()).Err(); err != nil {
		return fmt.Errorf("changes: mark a write of %s: %w", account, err)
	}
	return nil
}

// storedMark is a mark with the value it was read as, so that it is deleted only if unchanged.
type storedMark struct {
	mark Mark
	raw  string
}

func (s *Store) marks(ctx context.Context, account string) (map[Member]storedMark, error) {
	h, err := s.rc.HGetAll(ctx, s.acctKey(account, "marks")).Result()
	if err != nil {
		return nil, fmt.Errorf("changes: read the marks of %s: %w", account, err)
	}
	out := make(map[Member]storedMark, len(h))
	for f, v := range h {
		ws, user, ok := strings.Cut(f, "/")
		var mk Mark
		if !ok || json.Unmarshal([]byte(v), &mk) != nil {
			continue
		}
		out[Member{ws, user}] = storedMark{mark: mk, raw: v}
	}
	return out, nil
}

// Marks returns the account's marks.
func (s *Store) Marks(ctx context.Context, account string) (map[Member]Mark, error) {
	stored, err := s.marks(ctx, account)
	if err != nil {
		return nil, err
	}
	out := make(map[Member]Mark, len(stored))
	for m, sm := range stored {
		out[m] = sm.mark
	}
	return out, nil
}

// deleteMarksScript deletes the fields ARGV[1], ARGV[3], ... of the hash KEYS[1] whose values are
// still ARGV[2], ARGV[4], ...: a write marked again meanwhile keeps its new mark.
var deleteMarksScript = redis.NewScript(`
local n = 0
for i = 1, #ARGV, 2 do
  if redis.call('HGET', KEYS[1], ARGV[i]) == ARGV[i + 1] then
    n = n + redis.call('HDEL', KEYS[1], ARGV[i])
  end
end
return n
`)

// Result is the outcome of Commit.
type Result struct {
	// Baseline: there was no previous snapshot, so nothing was compared or emitted.
	Baseline bool
	// Emitted counts the changes emitted (all of them when Commit returns nil).
	Emitted int
}

// Commit compares cur with the account's last snapshot (see Diff), hands every change to emit in
// order, and then saves cur and deletes the marks it settled. When emit fails, Commit stops and
// saves nothing: the next poll compares against the same snapshot and reports those changes again.
func (s *Store) Commit(ctx context.Context, account string, cur *Snapshot, emit func(context.Context, Change) error) (Result, error) {
	old, err := s.Snapshot(ctx, account)
	if err != nil {
		return Result{}, err
	}
	stored, err := s.marks(ctx, account)
	if err != nil {
		return Result{}, err
	}
	marks := make(map[Member]Mark, len(stored))
	for m, sm := range stored {
		marks[m] = sm.mark
	}
	changes, settled := Diff(old, cur, marks, s.margin)
	res := Result{Baseline: old == nil}
	for _, c := range changes {
		if err := emit(ctx, c); err != nil {
			return res, fmt.Errorf("changes: emit %s: %w", c.Type, err)
		}
		res.Emitted++
	}
	if err := s.saveSnapshot(ctx, account, cur); err != nil {
		return res, err
	}
	if len(settled) > 0 {
		args := make([]any, 0, 2*len(settled))
		for _, m := range settled {
			args = append(args, m.field(), stored[m].raw)
		}
		// A mark left behind is applied again by the next poll, which may repeat one change
		// (at-least-once), until it is settled or expires.
		_ = deleteMarksScript.Run(ctx, s.rc, []string{s.acctKey(account, "marks")}, args...).Err()
	}
	return res, nil
}
