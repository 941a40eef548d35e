package jobs

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// TooManyJobsError refuses a submission: the tenant already has Max unfinished jobs (queued,
// running or waiting).
type TooManyJobsError struct{ Max int }

func (e *TooManyJobsError) Error() string {
	return fmt.Sprintf("jobs: the tenant has %d unfinished jobs, the most it may have", e.Max)
}

// activeKey is the sorted set of the tenant's unfinished job ids, scored by admission time (ms).
// The tenant comes last so that no tenant id makes one tenant's key another's.
func (e *Engine) activeKey(tenant string) string { return e.prefix + "jobs-active:" + tenant }

// admitScript adds a job to its tenant's unfinished jobs unless they are at the cap: one key, so
// that concurrent submissions on any number of replicas never get past it.
// KEYS[1] = active set; ARGV[1] = job id, ARGV[2] = now (ms), ARGV[3] = cap.
var admitScript = redis.NewScript(`
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then return 0 end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
return 1
`)

// admit counts j among its tenant's unfinished jobs, or refuses it with *TooManyJobsError.
// Entries of jobs that finished without leaving the set (their runner died between the final
// save and the removal) are found and dropped when the cap is reached, then admission is tried
// again.
func (e *Engine) admit(ctx context.Context, j *Job) error {
	for try := 0; ; try++ {
		ok, err := admitScript.Run(ctx, e.rdb, []string{e.activeKey(j.Tenant)}, j.ID, e.now().UnixMilli(), e.maxActive).Int()
		if err != nil {
			return fmt.Errorf("jobs: admit %s: %w", j.ID, err)
		}
		if ok == 1 {
			return nil
		}
		if try > 0 || e.heal(ctx, j.Tenant) == 0 {
			return &TooManyJobsError{Max: e.maxActive}
		}
	}
}

// deactivate removes a finished job from its tenant's unfinished jobs.
func (e *Engine) deactivate(ctx context.Context, j *Job) {
	if err := e.rdb.ZRem(context.WithoutCancel(ctx), e.activeKey(j.Tenant), j.ID).Err(); err != nil {
		// The next submission that meets the cap drops it (heal).
		e.log.WarnContext(ctx, "jobs: removing a finished job from the unfinished ones failed", "job", j.ID, "err", err)
	}
}

// heal drops from the tenant's unfinished jobs those that are not: finished, gone, or never
// queued (settled as not_queued). It returns how many it dropped. A job admitted less than
// OrphanAfter ago without a record yet is being submitted: it stays.
func (e *Engine) heal(ctx context.Context, tenant string) int {
	members, err := e.rdb.ZRangeWithScores(ctx, e.activeKey(tenant), 0, -1).Result()
	if err != nil {
		return 0
	}
	var drop []any
	for _, m := range members {
		id, _ := m.Member.(string)
		settled := e.now().Sub(time.UnixMilli(int64(m.Score))) >= OrphanAfter
		j, err := e.load(ctx, id, false)
		switch {
		case errors.Is(err, ErrNotFound):
			if settled {
				drop = append(drop, id)
			}
		case err != nil:
		case j.Status.Final():
			drop = append(drop, id)
		case j.Status == Queued && settled:
			if full, err := e.load(ctx, id, true); err == nil && e.settleOrphan(ctx, full).Status.Final() {
				drop = append(drop, id)
			}
		}
	}
	if len(drop) == 0 {
		return 0
	}
	if err := e.rdb.ZRem(ctx, e.activeKey(tenant), drop...).Err(); err != nil {
		return 0
	}
	return len(drop)
}

// busyDelay is how long a job whose tenant has all its slots on this replica waits before it is
// offered again (on any replica); asynq adds its own poll interval.
const busyDelay = time.Second

// errTenantBusy: the tenant runs TenantConcurrency jobs on this replica already.
var errTenantBusy = errors.New("jobs: the tenant runs as many jobs as it may on this replica")
