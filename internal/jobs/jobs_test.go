package jobs_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/dirgate/dirgate/internal/jobs"
	"github.com/dirgate/dirgate/internal/redistest"
	"github.com/dirgate/dirgate/internal/testclock"
	"github.com/dirgate/dirgate/internal/testlog"
)

// clock is a settable clock shared by the engines of a test.
type clock = testclock.Offset

// recorder is an executor that counts each item's writes; its behaviour per item comes from fail.
type recorder struct {
	mu     sync.Mutex
	writes map[string]int
	// effect holds the items whose write took effect (what Podio would show).
	effect map[string]bool
	// script, when set, decides Do's outcome for an item before anything is written.
	script func(it *jobs.Item) error
}

func newRecorder() *recorder { return &recorder{writes: map[string]int{}, effect: map[string]bool{}} }

func (r *recorder) Do(ctx context.Context, j *jobs.Job, it *jobs.Item) error {
	if r.script != nil {
		if err := r.script(it); err != nil {
			return err
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.writes[j.ID+"/"+it.UserID]++
	r.effect[j.ID+"/"+it.UserID] = true
	return nil
}

func (r *recorder) Holds(ctx context.Context, j *jobs.Job, it *jobs.Item) (bool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.effect[j.ID+"/"+it.UserID], nil
}

func (r *recorder) count(key string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.writes[key]
}

type env struct {
	rdb   *redistest.Redis
	queue string
	clock *clock
}

func newEnv(t *testing.T) *env {
	t.Helper()
	rdb := redistest.New(t)
	e := &env{rdb: rdb, queue: "dirgate-test-" + rdb.Prefix[len("dirgate-test:"):len(rdb.Prefix)-1], clock: &clock{}}
	t.Cleanup(func() {
		// asynq keeps its own keys: remove this test's queue.
		ctx := context.Background()
		iter := rdb.Scan(ctx, 0, "asynq:{"+e.queue+"}*", 1000).Iterator()
		for iter.Next(ctx) {
			rdb.Del(ctx, iter.Val())
		}
		rdb.SRem(ctx, "asynq:queues", e.queue)
	})
	return e
}

// engine starts a replica's engine; it is shut down at the end of the test.
func (e *env) engine(t *testing.T, ex jobs.Executor, mod func(*jobs.Options)) *jobs.Engine {
	t.Helper()
	opts, err := redis.ParseURL(redistest.URL())
	if err != nil {
		t.Fatal(err)
	}
	c := redis.NewClient(opts)
	o := jobs.Options{
		Client: c, Prefix: e.rdb.Prefix, Queue: e.queue, Executors: map[string]jobs.Executor{"test": ex},
		Now: e.clock.Now, PollInterval: 50 * time.Millisecond, MaxWait: 100 * time.Millisecond, OwnerTTL: 2 * time.Second,
	}
	if mod != nil {
		mod(&o)
	}
	en, err := jobs.New(o)
	if err != nil {
		t.Fatal(err)
	}
	if err := en.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { en.Shutdown(); c.Close() })
	return en
}

// submitter returns an engine that submits and reads but runs nothing (no workers).
func (e *env) submitter(t *testing.T, ex jobs.Executor, mod func(*jobs.Options)) *jobs.Engine {
	t.Helper()
	opts, err := redis.ParseURL(redistest.URL())
	if err != nil {
		t.Fatal(err)
	}
	c := redis.NewClient(opts)
	t.Cleanup(func() { c.Close() })
	o := jobs.Options{Client: c, Prefix: e.rdb.Prefix, Queue: e.queue, Executors: map[string]jobs.Executor{"test": ex}, Now: e.clock.Now}
	if mod != nil {
		mod(&o)
	}
	en, err := jobs.New(o)
	if err != nil {
		t.Fatal(err)
	}
	return en
}

func items(n int) []jobs.Item {
	out := make([]jobs.Item, n)
	for i := range out {
		out[i] = jobs.Item{Action: "add", UserID: fmt.Sprint(1000 + i)}
	}
	return out
}

// await polls the job until it is final or within has passed.
func await(t *testing.T, en *jobs.Engine, tenant, id string, within time.Duration, until func(*jobs.Job) bool) *jobs.Job {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		j, err := en.Get(t.Context(), tenant, id)
		if err != nil {
			t.Fatal(err)
		}
		if until(j) {
			return j
		}
		if time.Now().After(deadline) {
			t.Fatalf("job %s still %s (progress %+v) after %v", id, j.Status, j.Progress(), within)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func final(j *jobs.Job) bool { return j.Status.Final() }

func TestJobRunsEveryItemOnce(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	rec := newRecorder()
	// Two replicas share the queue: each job runs on one of them, each item once.
	a := e.engine(t, rec, nil)
	e.engine(t, rec, nil)
	var ids []string
	for range 6 {
		j := &jobs.Job{Tenant: "acme", Account: "ia_1", Type: "test", Items: items(5)}
		if err := a.Submit(t.Context(), j); err != nil {
			t.Fatal(err)
		}
		if j.Status != jobs.Queued || j.ID == "" {
			t.Fatalf("submitted job: %+v", j)
		}
		ids = append(ids, j.ID)
	}
	for _, id := range ids {
		j := await(t, a, "acme", id, 20*time.Second, final)
		if j.Status != jobs.Succeeded || j.Progress() != (jobs.Progress{Total: 5, Done: 5}) || j.StartedAt == nil || j.FinishedAt == nil {
			t.Errorf("job %s: %s %+v", id, j.Status, j.Progress())
		}
		for _, it := range j.Items {
			if n := rec.count(id + "/" + it.UserID); n != 1 {
				t.Errorf("job %s item %s written %d times", id, it.UserID, n)
			}
		}
	}
	list, err := a.List(t.Context(), "acme", "ia_1")
	if err != nil || len(list) != 6 || list[0].ID != ids[5] {
		t.Errorf("List = %d jobs, %v; want 6, newest first", len(list), err)
	}
	if _, err := a.Get(t.Context(), "other", ids[0]); !errors.Is(err, jobs.ErrNotFound) {
		t.Errorf("another tenant read the job: %v", err)
	}
	if list, _ := a.List(t.Context(), "other", ""); len(list) != 0 {
		t.Errorf("another tenant lists %d jobs", len(list))
	}
}

func TestPermanentFailures(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	rec := newRecorder()
	rec.script = func(it *jobs.Item) error {
		if it.UserID == "1001" {
			return jobs.Permanent(jobs.Error{Code: "forbidden_upstream", Message: "no"}, errors.New("403"))
		}
		return nil
	}
	en := e.engine(t, rec, nil)
	j := &jobs.Job{Tenant: "acme", Account: "ia_1", Type: "test", Items: items(5)}
	if err := en.Submit(t.Context(), j); err != nil {
		t.Fatal(err)
	}
	got := await(t, en, "acme", j.ID, 20*time.Second, final)
	if got.Status != jobs.Failed || got.Error == nil || got.Error.Code != "items_failed" {
		t.Errorf("job: %s %+v", got.Status, got.Error)
	}
	if p := got.Progress(); p != (jobs.Progress{Total: 5, Done: 4, Failed: 1}) {
		t.Errorf("progress %+v", p)
	}
	if it := got.Items[1]; it.Status != jobs.ItemFailed || it.Error == nil || it.Error.Code != "forbidden_upstream" {
		t.Errorf("item 1001: %+v", it)
	}
}

// TestResumeAfterCrash: a runner died with one item written but not recorded and another
// started but not written. The next runner asks before writing: nothing repeats, nothing is lost.
func TestResumeAfterCrash(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	rec := newRecorder()
	opts, err := redis.ParseURL(redistest.URL())
	if err != nil {
		t.Fatal(err)
	}
	c := redis.NewClient(opts)
	t.Cleanup(func() { c.Close() })
	// A replica that only submits (no workers), so the record can be set up as the dead runner
	// left it before any worker sees it.
	sub, err := jobs.New(jobs.Options{Client: c, Prefix: e.rdb.Prefix, Queue: e.queue, Executors: map[string]jobs.Executor{"test": rec}})
	if err != nil {
		t.Fatal(err)
	}
	j := &jobs.Job{Tenant: "acme", Account: "ia_1", Type: "test", Items: items(4)}
	if err := sub.Submit(t.Context(), j); err != nil {
		t.Fatal(err)
	}
	j.Status = jobs.Running
	j.Items[0].Status = jobs.ItemDone
	j.Items[1].Status = jobs.ItemStarted // written: Podio has it
	rec.effect[j.ID+"/1001"] = true
	j.Items[2].Status = jobs.ItemStarted // the runner died before the write
	if err := sub.Put(t.Context(), j); err != nil {
		t.Fatal(err)
	}
	en := e.engine(t, rec, nil)
	got := await(t, en, "acme", j.ID, 20*time.Second, final)
	if got.Status != jobs.Succeeded || got.Progress().Done != 4 {
		t.Fatalf("resumed job: %s %+v", got.Status, got.Progress())
	}
	for user, want := range map[string]int{"1000": 0, "1001": 0, "1002": 1, "1003": 1} {
		if n := rec.count(j.ID + "/" + user); n != want {
			t.Errorf("item %s written %d times after the resume, want %d", user, n, want)
		}
	}
}

func TestWaitingForQuota(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	rec := newRecorder()
	var budget atomic.Int64
	budget.Store(2)
	resume := e.clock.Now().Add(time.Hour)
	rec.script = func(it *jobs.Item) error {
		if budget.Add(-1) < 0 {
			if e.clock.Now().Before(resume) {
				return jobs.Wait(resume, errors.New("budget spent"))
			}
		}
		return nil
	}
	en := e.engine(t, rec, nil)
	j := &jobs.Job{Tenant: "acme", Account: "ia_1", Type: "test", Items: items(4)}
	if err := en.Submit(t.Context(), j); err != nil {
		t.Fatal(err)
	}
	w := await(t, en, "acme", j.ID, 20*time.Second, func(j *jobs.Job) bool { return j.Status == jobs.WaitingForQuota })
	if w.WaitUntil == nil || !w.WaitUntil.Equal(resume.UTC()) || w.Progress().Done != 2 {
		t.Fatalf("waiting job: until %v, progress %+v", w.WaitUntil, w.Progress())
	}
	e.clock.Advance(time.Hour)
	got := await(t, en, "acme", j.ID, 20*time.Second, final)
	if got.Status != jobs.Succeeded || got.Progress().Done != 4 {
		t.Errorf("job after the wait: %s %+v", got.Status, got.Progress())
	}
	for _, it := range got.Items {
		if n := rec.count(j.ID + "/" + it.UserID); n != 1 {
			t.Errorf("item %s written %d times", it.UserID, n)
		}
	}
}

func TestCancel(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	rec := newRecorder()
	rec.script = func(it *jobs.Item) error {
		if it.UserID == "1001" {
			return jobs.Wait(e.clock.Now().Add(time.Hour), errors.New("budget spent"))
		}
		return nil
	}
	en := e.engine(t, rec, nil)
	j := &jobs.Job{Tenant: "acme", Account: "ia_1", Type: "test", Items: items(3)}
	if err := en.Submit(t.Context(), j); err != nil {
		t.Fatal(err)
	}
	await(t, en, "acme", j.ID, 20*time.Second, func(j *jobs.Job) bool { return j.Status == jobs.WaitingForQuota })
	if _, err := en.Cancel(t.Context(), "other", j.ID); !errors.Is(err, jobs.ErrNotFound) {
		t.Errorf("another tenant canceled the job: %v", err)
	}
	c, err := en.Cancel(t.Context(), "acme", j.ID)
	if err != nil || !c.CancelRequested {
		t.Fatalf("Cancel: %+v, %v", c, err)
	}
	got := await(t, en, "acme", j.ID, 20*time.Second, final)
	if got.Status != jobs.Canceled || got.Progress().Done != 1 {
		t.Errorf("canceled job: %s %+v", got.Status, got.Progress())
	}
}

// TestOnFinishReportedOnce: OnFinish hears of each succeeded or failed job once, on whichever
// replica ran it, and never of a canceled one.
func TestOnFinishReportedOnce(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	var mu sync.Mutex
	told := map[string][]jobs.Status{}
	onFinish := func(o *jobs.Options) {
		o.OnFinish = func(_ context.Context, j *jobs.Job) {
			mu.Lock()
			defer mu.Unlock()
			told[j.ID] = append(told[j.ID], j.Status)
		}
	}
	rec := newRecorder()
	rec.script = func(it *jobs.Item) error {
		if it.UserID == "bad" {
			return jobs.Permanent(jobs.Error{Code: "forbidden_upstream", Message: "no"}, errors.New("403"))
		}
		if it.UserID == "slow" {
			time.Sleep(300 * time.Millisecond)
		}
		return nil
	}
	en := e.engine(t, rec, onFinish)
	e.engine(t, rec, onFinish) // a second replica
	ok := &jobs.Job{Tenant: "acme", Account: "a1", Type: "test", Items: items(3)}
	bad := &jobs.Job{Tenant: "acme", Account: "a1", Type: "test", Items: []jobs.Item{{Action: "add", UserID: "bad"}}}
	canceled := &jobs.Job{Tenant: "acme", Account: "a1", Type: "test", Items: []jobs.Item{{Action: "add", UserID: "slow"}, {Action: "add", UserID: "slow"}}}
	for _, j := range []*jobs.Job{ok, bad, canceled} {
		if err := en.Submit(t.Context(), j); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := en.Cancel(t.Context(), "acme", canceled.ID); err != nil {
		t.Fatal(err)
	}
	for _, j := range []*jobs.Job{ok, bad, canceled} {
		await(t, en, "acme", j.ID, 20*time.Second, final)
	}
	time.Sleep(200 * time.Millisecond) // let a (wrong) second report arrive
	mu.Lock()
	defer mu.Unlock()
	want := map[string][]jobs.Status{ok.ID: {jobs.Succeeded}, bad.ID: {jobs.Failed}}
	if len(told) != 2 || fmt.Sprint(told[ok.ID]) != fmt.Sprint(want[ok.ID]) || fmt.Sprint(told[bad.ID]) != fmt.Sprint(want[bad.ID]) {
		t.Errorf("OnFinish heard %v, want %v (and nothing of the canceled job)", told, want)
	}
}

// TestNeverQueuedJobIsSettled: a job whose replica died between saving it and queueing it is
// failed (not_queued) when read a minute later, and reported once; a job that waits in the queue
// as long is left alone.
func TestNeverQueuedJobIsSettled(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	var mu sync.Mutex
	var reported []string
	en := e.engine(t, newRecorder(), func(o *jobs.Options) {
		o.OnFinish = func(_ context.Context, j *jobs.Job) {
			mu.Lock()
			defer mu.Unlock()
			reported = append(reported, j.ID+" "+string(j.Status))
		}
	})
	ctx := t.Context()

	// What Submit had saved when its replica died: the record and the index entry, no task.
	orphan := jobs.Job{ID: jobs.NewID(), Tenant: "acme", Account: "ia_1", Type: "test", Status: jobs.Queued,
		CreatedAt: e.clock.Now().UTC(), UpdatedAt: e.clock.Now().UTC(), Items: items(2)}
	if err := en.Put(ctx, &orphan); err != nil {
		t.Fatal(err)
	}
	if err := e.rdb.ZAdd(ctx, e.rdb.Prefix+"jobs:acme", redis.Z{Score: 1, Member: orphan.ID}).Err(); err != nil {
		t.Fatal(err)
	}
	// A job in the queue that no worker takes yet (the queue is paused).
	if err := asynq.NewInspectorFromRedisClient(e.rdb).PauseQueue(e.queue); err != nil {
		t.Fatal(err)
	}
	waiting := &jobs.Job{Tenant: "acme", Account: "ia_1", Type: "test", Items: items(1)}
	if err := en.Submit(ctx, waiting); err != nil {
		t.Fatal(err)
	}

	// Within the first minute nothing is decided.
	if j, err := en.Get(ctx, "acme", orphan.ID); err != nil || j.Status != jobs.Queued {
		t.Fatalf("fresh orphan: %v %v, want queued", j, err)
	}
	e.clock.Advance(jobs.OrphanAfter + time.Second)
	list, err := en.List(ctx, "acme", "")
	if err != nil {
		t.Fatal(err)
	}
	for _, j := range list {
		if j.ID == orphan.ID && (j.Status != jobs.Failed || j.Error == nil || j.Error.Code != "not_queued" || j.FinishedAt == nil) {
			t.Errorf("listed orphan: status %s, error %+v", j.Status, j.Error)
		}
	}
	j, err := en.Get(ctx, "acme", orphan.ID)
	if err != nil || j.Status != jobs.Failed || j.Error.Code != "not_queued" {
		t.Fatalf("orphan after a minute: %+v %v, want failed not_queued", j, err)
	}
	if w, err := en.Get(ctx, "acme", waiting.ID); err != nil || w.Status != jobs.Queued {
		t.Errorf("a job waiting in its queue: %+v %v, want still queued", w, err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(reported) != 1 || reported[0] != orphan.ID+" failed" {
		t.Errorf("OnFinish heard %v, want the orphan's failure once", reported)
	}
}

// A job that gives up shows a stable code and a message without the internal error, which goes to
// the log with the request id.
func TestGivingUpDoesNotLeakTheError(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	rec := newRecorder()
	const internal = "dial tcp 10.9.8.7:6379: connect: connection refused"
	rec.script = func(*jobs.Item) error { return errors.New(internal) }
	var logs testlog.Buffer
	a := e.engine(t, rec, func(o *jobs.Options) {
		o.MaxRetry = 1
		o.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	})
	j := &jobs.Job{Tenant: "acme", Account: "ia_1", Type: "test", Items: items(1), RequestID: "req-give-up-1"}
	if err := a.Submit(t.Context(), j); err != nil {
		t.Fatal(err)
	}
	got := await(t, a, "acme", j.ID, 20*time.Second, final)
	if got.Status != jobs.Failed || got.Error == nil || got.Error.Code != "gave_up" {
		t.Fatalf("job %s %+v, want failed with gave_up", got.Status, got.Error)
	}
	if strings.Contains(got.Error.Message, "10.9.8.7") || strings.Contains(got.Error.Message, "dial tcp") || !strings.Contains(got.Error.Message, "req-give-up-1") {
		t.Errorf("message %q: want the request id and no internal error", got.Error.Message)
	}
	if l := logs.String(); !strings.Contains(l, internal) || !strings.Contains(l, "request_id=req-give-up-1") {
		t.Errorf("the log does not carry the error with the request id:\n%s", l)
	}
}
