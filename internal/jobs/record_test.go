package jobs_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/dirgate/dirgate/internal/jobs"
)

// argBytes is a go-redis hook that adds up, per job, the argument bytes of the commands that
// name one of its keys: what a replica sends Redis for that job.
type argBytes struct {
	mu  sync.Mutex
	per map[string]int
}

func (h *argBytes) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *argBytes) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		h.count(cmd)
		return next(ctx, cmd)
	}
}

func (h *argBytes) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		for _, c := range cmds {
			h.count(c)
		}
		return next(ctx, cmds)
	}
}

func (h *argBytes) count(cmd redis.Cmder) {
	n, job := 0, ""
	for _, a := range cmd.Args() {
		var s string
		switch v := a.(type) {
		case string:
			s = v
		case []byte:
			s = string(v)
		default:
			s = fmt.Sprint(v)
		}
		n += len(s)
		if _, rest, ok := strings.Cut(s, "{job:"); ok && job == "" {
			job, _, _ = strings.Cut(rest, "}")
		}
	}
	if job == "" {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.per[job] += n
}

func (h *argBytes) of(id string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.per[id]
}

// TestItemWritesDoNotGrowWithTheJob: running a job sends Redis the same bytes per item whether
// it has ten items or a thousand; a runner that rewrote the whole record on every item would send
// a hundred times more per item for the larger one.
func TestItemWritesDoNotGrowWithTheJob(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	rec := newRecorder()
	hook := &argBytes{per: map[string]int{}}
	// The submitting replica has no workers and is not counted: a submission writes every item
	// once, which is not the point here.
	sub := e.submitter(t, rec, nil)
	e.engine(t, rec, func(o *jobs.Options) { o.Client.AddHook(hook) })

	perItem := map[int]float64{}
	for _, n := range []int{10, 1000} {
		j := &jobs.Job{Tenant: "acme", Account: "ia_1", Type: "test", Items: items(n)}
		if err := sub.Submit(t.Context(), j); err != nil {
			t.Fatal(err)
		}
		got := await(t, sub, "acme", j.ID, 60*time.Second, final)
		if got.Status != jobs.Succeeded || got.Progress().Done != n {
			t.Fatalf("job of %d items: %s %+v", n, got.Status, got.Progress())
		}
		perItem[n] = float64(hook.of(j.ID)) / float64(n)
		t.Logf("job of %d items: %d bytes sent, %.0f per item", n, hook.of(j.ID), perItem[n])
	}
	if perItem[10] == 0 || perItem[1000] > 1.5*perItem[10] {
		t.Errorf("bytes sent per item: %.0f in a job of 10 items, %.0f in a job of 1000; want about the same", perItem[10], perItem[1000])
	}
}

// TestFinishedJobsExpire: a finished job's record gets the retention as its TTL; once the
// retention has passed (on the engine's clock) the job reads as not found, and the tenant's
// index drops it, and any other id whose record is gone, when the tenant next submits, without
// anyone listing. A job created long ago that finished recently stays.
func TestFinishedJobsExpire(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	const retention = time.Hour
	en := e.engine(t, newRecorder(), func(o *jobs.Options) { o.Retention = retention })
	ctx := t.Context()
	index := e.rdb.Prefix + "jobs:acme"

	old := &jobs.Job{Tenant: "acme", Account: "ia_1", Type: "test", Items: items(2)}
	if err := en.Submit(ctx, old); err != nil {
		t.Fatal(err)
	}
	await(t, en, "acme", old.ID, 20*time.Second, final)
	if ttl := e.rdb.PTTL(ctx, en.RecordKey(old.ID)).Val(); ttl <= 0 || ttl > retention {
		t.Errorf("a finished job's record has TTL %v, want up to %v", ttl, retention)
	}

	e.clock.Advance(retention + time.Second)
	if _, err := en.Get(ctx, "acme", old.ID); !errors.Is(err, jobs.ErrNotFound) {
		t.Errorf("Get of a job finished a retention ago: %v, want not found", err)
	}
	// A job created two retentions ago that finished a minute ago, and an id whose record is gone.
	now := e.clock.Now().UTC()
	created, finished := now.Add(-2*retention), now.Add(-time.Minute)
	long := &jobs.Job{ID: jobs.NewID(), Tenant: "acme", Account: "ia_1", Type: "test", Status: jobs.Succeeded,
		CreatedAt: created, UpdatedAt: finished, StartedAt: &created, FinishedAt: &finished, Items: items(1)}
	long.Items[0].Status = jobs.ItemDone
	if err := en.Put(ctx, long); err != nil {
		t.Fatal(err)
	}
	lost := jobs.NewID()
	for _, id := range []string{long.ID, lost} {
		if err := e.rdb.ZAdd(ctx, index, redis.Z{Score: float64(created.UnixMilli()), Member: id}).Err(); err != nil {
			t.Fatal(err)
		}
	}

	fresh := &jobs.Job{Tenant: "acme", Account: "ia_1", Type: "test", Items: items(1)}
	if err := en.Submit(ctx, fresh); err != nil {
		t.Fatal(err)
	}
	for id, want := range map[string]bool{old.ID: false, lost: false, long.ID: true, fresh.ID: true} {
		_, err := e.rdb.ZScore(ctx, index, id).Result()
		if in := err == nil; in != want {
			t.Errorf("job %s in the index: %v, want %v (%v)", id, in, want, err)
		}
	}
	if _, err := en.Get(ctx, "acme", long.ID); err != nil {
		t.Errorf("a job finished a minute ago: %v", err)
	}
}
