package jobs_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/dirgate/dirgate/internal/jobs"
)

func redisZ(at time.Time, id string) redis.Z {
	return redis.Z{Score: float64(at.UnixMilli()), Member: id}
}

// TestActiveCapHoldsUnderConcurrentSubmits: forty submissions at once on two replicas, for a
// tenant that may have five unfinished jobs: five are taken, the others refused with
// TooManyJobsError, and nothing of a refused one is stored. Another tenant is not affected.
func TestActiveCapHoldsUnderConcurrentSubmits(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	const limit = 5
	// No workers: every job taken stays queued.
	capped := func(o *jobs.Options) { o.MaxActive = limit }
	a, b := e.submitter(t, newRecorder(), capped), e.submitter(t, newRecorder(), capped)
	var taken, refused atomic.Int32
	var wg sync.WaitGroup
	for i := range 40 {
		en := []*jobs.Engine{a, b}[i%2]
		wg.Go(func() {
			err := en.Submit(t.Context(), &jobs.Job{Tenant: "acme", Account: "ia_1", Type: "test", Items: items(2)})
			var tm *jobs.TooManyJobsError
			switch {
			case err == nil:
				taken.Add(1)
			case errors.As(err, &tm) && tm.Max == limit:
				refused.Add(1)
			default:
				t.Errorf("Submit: %v", err)
			}
		})
	}
	wg.Wait()
	if taken.Load() != limit || refused.Load() != 40-limit {
		t.Errorf("%d submissions taken, %d refused; want %d and %d", taken.Load(), refused.Load(), limit, 40-limit)
	}
	ctx := t.Context()
	var records int
	iter := e.rdb.Scan(ctx, 0, e.rdb.Prefix+"{job:*}:rec", 1000).Iterator()
	for iter.Next(ctx) {
		records++
	}
	if records != limit {
		t.Errorf("%d job records stored, want %d", records, limit)
	}
	if list, err := a.List(ctx, "acme", ""); err != nil || len(list) != limit {
		t.Errorf("List: %d jobs, %v; want %d", len(list), err, limit)
	}
	if err := a.Submit(ctx, &jobs.Job{Tenant: "other", Account: "ia_2", Type: "test", Items: items(1)}); err != nil {
		t.Errorf("another tenant's submission: %v", err)
	}
}

// gate is an executor whose writes wait until the test opens the gate; started hears of every
// write that began.
type gate struct {
	open    chan struct{}
	started chan string
}

func newGate() *gate { return &gate{open: make(chan struct{}), started: make(chan string, 100)} }

func (g *gate) Do(ctx context.Context, j *jobs.Job, it *jobs.Item) error {
	g.started <- j.Tenant + " " + j.ID
	select {
	case <-g.open:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (g *gate) Holds(ctx context.Context, j *jobs.Job, it *jobs.Item) (bool, error) {
	return false, nil
}

// TestFinishedJobsFreeTheCap: a tenant at its cap is refused until one of its jobs finishes. A
// finished job that its runner failed to take off the unfinished ones (it died in between) does
// not hold the cap either.
func TestFinishedJobsFreeTheCap(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	g := newGate()
	en := e.engine(t, g, func(o *jobs.Options) { o.MaxActive = 2 })
	ctx := t.Context()
	var ids []string
	for range 2 {
		j := &jobs.Job{Tenant: "acme", Account: "ia_1", Type: "test", Items: items(1)}
		if err := en.Submit(ctx, j); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, j.ID)
	}
	var tm *jobs.TooManyJobsError
	if err := en.Submit(ctx, &jobs.Job{Tenant: "acme", Account: "ia_1", Type: "test", Items: items(1)}); !errors.As(err, &tm) {
		t.Fatalf("a third job while two run: %v, want TooManyJobsError", err)
	}
	close(g.open)
	for _, id := range ids {
		await(t, en, "acme", id, 20*time.Second, final)
	}
	active := e.rdb.Prefix + "jobs-active:acme"
	if n := e.rdb.ZCard(ctx, active).Val(); n != 0 {
		t.Errorf("%d jobs still counted as unfinished after both finished", n)
	}
	// As a runner that died after its final save leaves it.
	for _, id := range ids {
		e.rdb.ZAdd(ctx, active, redisZ(e.clock.Now(), id))
	}
	for range 2 {
		if err := en.Submit(ctx, &jobs.Job{Tenant: "acme", Account: "ia_1", Type: "test", Items: items(1)}); err != nil {
			t.Errorf("a job after the others finished: %v", err)
		}
	}
}

// TestOneTenantCannotTakeEveryWorker: with tenant A's ten large jobs running (their writes wait
// until released), tenant B's job starts at once, and A never runs more than its two slots on
// the replica. Without the per-tenant slots A's jobs would take all four workers and B would
// wait for them. A job put back to wait for a slot has not failed a run: asynq counts no retry.
func TestOneTenantCannotTakeEveryWorker(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	g := newGate()
	const perTenant = 2
	en := e.engine(t, g, func(o *jobs.Options) { o.Concurrency, o.TenantConcurrency = 4, perTenant })
	ctx := t.Context()
	var ids []string
	for range 10 {
		j := &jobs.Job{Tenant: "a", Account: "ia_a", Type: "test", Items: items(3)}
		if err := en.Submit(ctx, j); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, j.ID)
	}
	runningA := map[string]bool{}
	next := func(what string) string {
		t.Helper()
		select {
		case s := <-g.started:
			return s
		case <-time.After(30 * time.Second):
			t.Fatalf("%s never started; tenant A runs %d jobs", what, len(runningA))
			return ""
		}
	}
	for len(runningA) < perTenant {
		runningA[next("tenant A's jobs")] = true
	}
	b := &jobs.Job{Tenant: "b", Account: "ia_b", Type: "test", Items: items(1)}
	if err := en.Submit(ctx, b); err != nil {
		t.Fatal(err)
	}
	for {
		s := next("tenant B's job")
		if s == "b "+b.ID {
			break
		}
		runningA[s] = true
	}
	if len(runningA) > perTenant {
		t.Errorf("tenant A ran %d jobs at once on one replica, want at most %d", len(runningA), perTenant)
	}
	// A's other jobs go back and forth between the workers and asynq's retry set meanwhile.
	insp := asynq.NewInspectorFromRedisClient(e.rdb)
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		waiting, err := insp.ListRetryTasks(e.queue)
		if err != nil || time.Now().After(deadline) {
			t.Fatalf("no job of A waits for a slot: %v", err)
		}
		for _, ti := range waiting {
			if ti.Retried != 0 {
				t.Errorf("job %s waiting for a slot counts %d failed runs, want 0", ti.ID, ti.Retried)
			}
		}
		if len(waiting) > 0 {
			break
		}
	}
	ids = append(ids, b.ID)
	close(g.open)
	for _, id := range ids {
		tenant := "a"
		if id == b.ID {
			tenant = "b"
		}
		if j := await(t, en, tenant, id, 60*time.Second, final); j.Status != jobs.Succeeded || j.Attempts != 0 {
			t.Errorf("job %s: %s after %d failed runs; want succeeded, waiting for a slot is no failure", id, j.Status, j.Attempts)
		}
	}
}
