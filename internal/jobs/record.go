package jobs

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// A job record is one Redis hash, so that recording one item's progress writes that item and a
// few small fields, whatever the size of the job:
//
//	head    what is fixed at submission (jobHead)
//	state   what changes as the job runs (jobState); its size does not grow with the items
//	i:<n>   item n (Item)
//
// Every value is JSON.
const (
	fieldHead  = "head"
	fieldState = "state"
)

func itemField(n int) string { return "i:" + strconv.Itoa(n) }

// jobHead is the part of a record written once, by Submit.
type jobHead struct {
	ID        string          `json:"id"`
	Tenant    string          `json:"tenant"`
	Account   string          `json:"integrated_account_id"`
	Type      string          `json:"type"`
	CreatedAt time.Time       `json:"created_at"`
	RequestID string          `json:"request_id,omitempty"`
	Params    json.RawMessage `json:"params,omitempty"`
	Items     int             `json:"items"`
}

// jobState is the part of a record every save writes.
type jobState struct {
	Status     Status     `json:"status"`
	UpdatedAt  time.Time  `json:"updated_at"`
	StartedAt  *time.Time `json:"started_at,omitempty"`
	FinishedAt *time.Time `json:"finished_at,omitempty"`
	WaitUntil  *time.Time `json:"wait_until,omitempty"`
	Error      *Error     `json:"error,omitempty"`
	Attempts   int        `json:"attempts"`
}

func stateOf(j *Job) jobState {
	return jobState{Status: j.Status, UpdatedAt: j.UpdatedAt, StartedAt: j.StartedAt, FinishedAt: j.FinishedAt,
		WaitUntil: j.WaitUntil, Error: j.Error, Attempts: j.Attempts}
}

func (s jobState) apply(j *Job) {
	j.Status, j.UpdatedAt, j.StartedAt, j.FinishedAt = s.Status, s.UpdatedAt, s.StartedAt, s.FinishedAt
	j.WaitUntil, j.Error, j.Attempts = s.WaitUntil, s.Error, s.Attempts
}

// recordFields is the whole record of j as HSET field, value pairs.
func recordFields(j *Job) ([]any, error) {
	head, err := json.Marshal(jobHead{ID: j.ID, Tenant: j.Tenant, Account: j.Account, Type: j.Type, CreatedAt: j.CreatedAt,
		RequestID: j.RequestID, Params: j.Params, Items: len(j.Items)})
	if err != nil {
		return nil, fmt.Errorf("jobs: encode: %w", err)
	}
	state, err := json.Marshal(stateOf(j))
	if err != nil {
		return nil, fmt.Errorf("jobs: encode: %w", err)
	}
	out := make([]any, 0, 4+2*len(j.Items))
	out = append(out, fieldHead, head, fieldState, state)
	for i := range j.Items {
		b, err := json.Marshal(&j.Items[i])
		if err != nil {
			return nil, fmt.Errorf("jobs: encode: %w", err)
		}
		out = append(out, itemField(i), b)
	}
	return out, nil
}

// decodeRecord builds a job from its record's fields; items are decoded only when withItems.
func decodeRecord(id string, f map[string]string, withItems bool) (*Job, error) {
	h, ok := f[fieldHead]
	if !ok {
		return nil, ErrNotFound
	}
	var head jobHead
	if err := json.Unmarshal([]byte(h), &head); err != nil {
		return nil, fmt.Errorf("jobs: decode %s: %w", id, err)
	}
	var st jobState
	if err := json.Unmarshal([]byte(f[fieldState]), &st); err != nil {
		return nil, fmt.Errorf("jobs: decode %s: %w", id, err)
	}
	j := &Job{ID: head.ID, Tenant: head.Tenant, Account: head.Account, Type: head.Type, CreatedAt: head.CreatedAt,
		RequestID: head.RequestID, Params: head.Params}
	st.apply(j)
	if !withItems {
		return j, nil
	}
	j.Items = make([]Item, head.Items)
	seen := 0
	for k, v := range f {
		n, isItem := strings.CutPrefix(k, "i:")
		if !isItem {
			continue
		}
		i, err := strconv.Atoi(n)
		if err != nil || i < 0 || i >= len(j.Items) {
			return nil, fmt.Errorf("jobs: decode %s: unexpected field %q", id, k)
		}
		if err := json.Unmarshal([]byte(v), &j.Items[i]); err != nil {
			return nil, fmt.Errorf("jobs: decode %s: %w", id, err)
		}
		seen++
	}
	if seen != len(j.Items) {
		return nil, fmt.Errorf("jobs: decode %s: %d of %d items are missing", id, len(j.Items)-seen, len(j.Items))
	}
	return j, nil
}

// load reads job id: all of it, or (withItems false) without its items, which is what deciding
// whether to run it needs. A finished job past its retention is not found, even before Redis
// has expired it.
func (e *Engine) load(ctx context.Context, id string, withItems bool) (*Job, error) {
	var all *redis.MapStringStringCmd
	var some *redis.SliceCmd
	var cancel *redis.IntCmd
	if _, err := e.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		if withItems {
			all = p.HGetAll(ctx, e.jobKey(id))
		} else {
			some = p.HMGet(ctx, e.jobKey(id), fieldHead, fieldState)
		}
		cancel = p.Exists(ctx, e.cancelKey(id))
		return nil
	}); err != nil {
		return nil, fmt.Errorf("jobs: read %s: %w", id, err)
	}
	f := map[string]string{}
	if withItems {
		f = all.Val()
	} else {
		for i, name := range []string{fieldHead, fieldState} {
			if s, ok := some.Val()[i].(string); ok {
				f[name] = s
			}
		}
	}
	j, err := decodeRecord(id, f, withItems)
	if err != nil {
		return nil, err
	}
	if e.expired(j) {
		return nil, ErrNotFound
	}
	j.CancelRequested = cancel.Val() == 1
	return j, nil
}

// expired reports a finished job past its retention.
func (e *Engine) expired(j *Job) bool {
	return j.Status.Final() && j.FinishedAt != nil && !e.now().Before(j.FinishedAt.Add(e.retention))
}

// saveScript writes fields of the record only while the caller owns the job, and extends the
// ownership. It never creates a record: one that is gone stays gone.
// KEYS[1] = record, KEYS[2] = owner; ARGV[1] = token, ARGV[2] = owner TTL (ms), ARGV[3] = record
// TTL (ms; 0 sets none), ARGV[4...] = field, value pairs.
var saveScript = redis.NewScript(`
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return 0 end
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 4))
if tonumber(ARGV[3]) > 0 then redis.call('PEXPIRE', KEYS[1], ARGV[3]) end
redis.call('PEXPIRE', KEYS[2], ARGV[2])
return 1
`)
