package jobs

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
)

// errLostOwnership ends a run whose fencing key another runner holds now.
var errLostOwnership = errors.New("jobs: another runner owns this job")

// releaseScript deletes the owner key if the caller still holds it.
var releaseScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`)

// run is one runner's hold on a job.
type run struct {
	e     *Engine
	j     *Job
	token string
}

// save records the job's state and the items named by their index: what changed, never the
// whole job, so that a save costs the same in a job of ten items or ten thousand.
func (r *run) save(ctx context.Context, items ...int) error {
	r.j.UpdatedAt = r.e.now().UTC()
	st, err := json.Marshal(stateOf(r.j))
	if err != nil {
		return fmt.Errorf("jobs: encode: %w", err)
	}
	args := make([]any, 0, 5+2*len(items))
	ttl := int64(0)
	if r.j.Status.Final() {
		ttl = r.e.retention.Milliseconds()
	}
	// The save must land even when the task's context just ended (shutdown): the item it records
	// has happened.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	args = append(args, r.token, r.e.ownerTTL.Milliseconds(), ttl, fieldState, st)
	for _, i := range items {
		b, err := json.Marshal(&r.j.Items[i])
		if err != nil {
			return fmt.Errorf("jobs: encode: %w", err)
		}
		args = append(args, itemField(i), b)
	}
	ok, err := saveScript.Run(ctx, r.e.rdb, []string{r.e.jobKey(r.j.ID), r.e.ownerKey(r.j.ID)}, args...).Int()
	if err != nil {
		return fmt.Errorf("jobs: save %s: %w", r.j.ID, err)
	}
	if ok != 1 {
		return errLostOwnership
	}
	if r.j.Status.Final() {
		r.e.deactivate(ctx, r.j)
	}
	return nil
}

// handle is the asynq handler: it runs the job from its first unfinished item.
func (e *Engine) handle(ctx context.Context, t *asynq.Task) error {
	id := string(t.Payload())
	j, err := e.load(ctx, id, false)
	if errors.Is(err, ErrNotFound) {
		return fmt.Errorf("jobs: %s: %w", id, asynq.SkipRetry) // expired or never saved
	}
	if err != nil {
		return err
	}
	if j.Status.Final() {
		// A runner that died between its final save and the report.
		e.deactivate(ctx, j)
		if full, err := e.load(ctx, id, true); err == nil {
			e.reportFinish(ctx, full)
		}
		return nil
	}
	ex := e.executors[j.Type]
	if ex == nil {
		return fmt.Errorf("jobs: %s: no executor for type %q", id, j.Type)
	}
	if j.WaitUntil != nil && e.now().Before(*j.WaitUntil) && !j.CancelRequested {
		return Wait(*j.WaitUntil, errors.New("budget not back yet")) // woken early: sleep on
	}
	// asynq archives a task that ends its last try with any error, a wait included: on its last
	// try a job runs even over its tenant's slots.
	retried, _ := asynq.GetRetryCount(ctx)
	maxRetry, _ := asynq.GetMaxRetry(ctx)
	if !e.slots.Take(j.Tenant, retried >= maxRetry) {
		return Wait(e.now().Add(busyDelay), errTenantBusy) // the worker goes to another job now
	}
	defer e.slots.Give(j.Tenant)
	var tok [16]byte
	_, _ = rand.Read(tok[:])
	r := &run{e: e, j: j, token: hex.EncodeToString(tok[:])}
	ok, err := e.rdb.SetNX(ctx, e.ownerKey(id), r.token, e.ownerTTL).Result()
	if err != nil {
		return fmt.Errorf("jobs: own %s: %w", id, err)
	}
	if !ok {
		return errLostOwnership // a previous runner's key has not expired yet: retry later
	}
	defer releaseScript.Run(context.WithoutCancel(ctx), e.rdb, []string{e.ownerKey(id)}, r.token)
	// Owned: read the items, which no other runner changes now.
	full, err := e.load(ctx, id, true)
	if err != nil {
		return fmt.Errorf("jobs: %s: %w", id, err)
	}
	r.j = full
	if e.onRunning != nil {
		e.onRunning(1)
		defer e.onRunning(-1)
	}
	stop := r.keepOwning(ctx)
	defer stop()

	err = r.items(ctx, ex)
	if err == nil {
		e.reportFinish(ctx, r.j)
	}
	if err == nil || errors.Is(err, errLostOwnership) {
		return err
	}
	if _, wait := errors.AsType[*WaitError](err); wait {
		return err
	}
	// A failed run: the job is retried from its current item, unless this was the last try.
	r.j.Attempts++
	if retried >= maxRetry {
		// The error itself names internals (Redis or network addresses): it goes to the log, and
		// the caller gets what it can act on, and the request id to quote.
		e.log.ErrorContext(ctx, "jobs: giving up on a job", "job", id, "request_id", j.RequestID, "runs", retried+1, "err", err)
		r.finish(Failed, &Error{Code: "gave_up", Message: gaveUpMessage(retried+1, j.RequestID)})
	}
	if serr := r.save(ctx); serr != nil {
		e.log.WarnContext(ctx, "jobs: save after a failed run", "job", id, "err", serr)
	} else if r.j.Status.Final() {
		e.reportFinish(ctx, r.j)
	}
	e.log.WarnContext(ctx, "jobs: run ended early; it will be retried", "job", id, "err", err)
	return err
}

// keepOwning extends the fencing key while a long item runs; the returned func stops it.
func (r *run) keepOwning(ctx context.Context) func() {
	ctx, cancel := context.WithCancel(ctx)
	go func() {
		t := time.NewTicker(r.e.ownerTTL / 3)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				r.e.rdb.Eval(ctx, `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end return 0`,
					[]string{r.e.ownerKey(r.j.ID)}, r.token, r.e.ownerTTL.Milliseconds())
			}
		}
	}()
	return cancel
}

// reportFinish tells OnFinish of a succeeded or failed job, unless it was told already.
func (e *Engine) reportFinish(ctx context.Context, j *Job) {
	if e.onFinish == nil || (j.Status != Succeeded && j.Status != Failed) {
		return
	}
	if n, err := e.rdb.Exists(ctx, e.reportedKey(j.ID)).Result(); err == nil && n > 0 {
		return // told already
	}
	e.onFinish(ctx, j)
	if err := e.rdb.Set(context.WithoutCancel(ctx), e.reportedKey(j.ID), "1", e.retention).Err(); err != nil {
		e.log.WarnContext(ctx, "jobs: recording the finish report failed; it may be reported again", "job", j.ID, "err", err)
	}
}

func (r *run) finish(s Status, jerr *Error) {
	now := r.e.now().UTC()
	r.j.Status, r.j.FinishedAt, r.j.WaitUntil, r.j.Error = s, &now, nil, jerr
}

// items runs the job's unfinished items in order.
func (r *run) items(ctx context.Context, ex Executor) error {
	j := r.j
	if j.StartedAt == nil {
		now := r.e.now().UTC()
		j.StartedAt = &now
	}
	j.Status, j.WaitUntil = Running, nil
	if err := r.save(ctx); err != nil {
		return err
	}
	for i := range j.Items {
		it := &j.Items[i]
		if it.Status != ItemPending && it.Status != ItemStarted {
			continue
		}
		if canceled, err := r.e.rdb.Exists(ctx, r.e.cancelKey(j.ID)).Result(); err != nil {
			return fmt.Errorf("jobs: read cancel flag: %w", err)
		} else if canceled == 1 {
			r.finish(Canceled, nil)
			return r.save(ctx)
		}
		if it.Status == ItemStarted {
			// A previous run may have written this item before it died: ask Podio.
			holds, err := ex.Holds(ctx, j, it)
			if err != nil {
				if r.itemFailed(it, err) {
					if err := r.save(ctx, i); err != nil {
						return err
					}
					continue
				}
				return r.pause(ctx, err, i)
			}
			if holds {
				it.Status = ItemDone
				if err := r.save(ctx, i); err != nil {
					return err
				}
				continue
			}
		}
		it.Status = ItemStarted
		if err := r.save(ctx, i); err != nil {
			return err
		}
		err := ex.Do(ctx, j, it)
		switch {
		case err == nil:
			it.Status, it.Error = ItemDone, nil
		case r.itemFailed(it, err):
		default:
			if _, wait := errors.AsType[*WaitError](err); wait {
				it.Status = ItemPending // the budget refused before calling Podio: nothing was written
			}
			return r.pause(ctx, err, i)
		}
		if err := r.save(ctx, i); err != nil {
			return err
		}
	}
	p := j.Progress()
	if p.Failed > 0 {
		r.finish(Failed, &Error{Code: "items_failed", Message: fmt.Sprintf("%d of %d steps failed", p.Failed, p.Total)})
	} else {
		r.finish(Succeeded, nil)
	}
	return r.save(ctx)
}

// itemFailed records a permanent failure on it and reports whether err was one.
func (r *run) itemFailed(it *Item, err error) bool {
	pe, ok := errors.AsType[*PermanentError](err)
	if !ok {
		return false
	}
	e := pe.Item
	it.Status, it.Error = ItemFailed, &e
	return true
}

// pause saves the job before a run ends early: waiting for quota (item i goes back to pending),
// or retried after an error.
func (r *run) pause(ctx context.Context, err error, i int) error {
	if we, ok := errors.AsType[*WaitError](err); ok {
		until := we.Until.UTC()
		r.j.Status, r.j.WaitUntil = WaitingForQuota, &until
		if serr := r.save(ctx, i); serr != nil {
			return serr
		}
	}
	return err
}

// gaveUpMessage is what a caller reads about a job that failed runs times in a row for reasons
// outside its items (Podio or dirgate's storage unreachable).
func gaveUpMessage(runs int, requestID string) string {
	msg := fmt.Sprintf("stopped after %d runs that failed for a temporary reason (Podio or the gateway's storage unreachable); the steps not marked done were not made. Submit the job again later", runs)
	if requestID != "" {
		msg += "; if it keeps failing, give your operator request id " + requestID
	}
	return msg + "."
}
