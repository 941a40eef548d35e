package jobs

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strconv"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/dirgate/dirgate/internal/fairshare"
)

// TaskType is the asynq task type that runs a job; its payload is the job id.
const TaskType = "dirgate:job"

// Defaults.
const (
	DefaultQueue       = "dirgate"
	DefaultConcurrency = 4
	DefaultRetention   = 7 * 24 * time.Hour
	DefaultOwnerTTL    = 30 * time.Second
	DefaultMaxWait     = time.Minute
	DefaultMaxRetry    = 50
	DefaultMaxActive   = 20
	// DefaultTenantConcurrency leaves half of the default workers to other tenants.
	DefaultTenantConcurrency = 2
	// maxListed bounds GET /jobs: the most recent jobs of a tenant.
	maxListed = 200
)

// Options configures an Engine.
type Options struct {
	// Client is the Redis every replica shares; the queue lives there too.
	Client redis.UniversalClient
	// Prefix starts every key of job records (asynq keeps its own "asynq:{<queue>}:" keys).
	Prefix string
	// Queue is the asynq queue name; replicas of one deployment must share it. Default "dirgate".
	Queue string
	// Executors perform the items of each job type.
	Executors map[string]Executor
	// Concurrency is how many jobs one replica runs at once; default 4.
	Concurrency int
	// TenantConcurrency is how many jobs of one tenant one replica runs at once; default 2. A job
	// over it gives its worker back at once and is run later; that is not a failed run.
	TenantConcurrency int
	// Retention is how long a finished job stays readable; default 7 days.
	Retention time.Duration
	// MaxActive is how many unfinished jobs (queued, running, waiting) one tenant may have, on
	// all replicas together; default 20.
	MaxActive int
	// OwnerTTL is the life of the runner's fencing key, refreshed while it runs; default 30 s.
	OwnerTTL time.Duration
	// MaxWait caps how long a job waiting for quota sleeps before it looks again: the budget can
	// free up earlier than forecast (Podio's own count, another replica's reserve). Default 1 min.
	MaxWait time.Duration
	// MaxRetry is how many failed runs (crashes, Podio unreachable) a job survives before it is
	// marked failed. Waits for quota are not failures. Default 50 (with backoff up to 1 min).
	MaxRetry int
	// PollInterval is how often asynq looks for due retries and new tasks; default asynq's
	// (5 s and 1 s). Tests shorten it.
	PollInterval time.Duration
	// OnFinish is told once a job has succeeded or failed (not when canceled), after its final
	// record is saved; a replica that dies before telling leaves it to the next run of the task,
	// so it may, rarely, be told twice.
	OnFinish func(ctx context.Context, j *Job)
	// OnRunning is told +1 when this replica starts running a job and -1 when that run ends
	// (the running-jobs gauge); nil: nobody.
	OnRunning func(delta int)
	Now       func() time.Time
	Logger    *slog.Logger
}

// Engine submits, reads, cancels and runs jobs.
type Engine struct {
	rdb       redis.UniversalClient
	prefix    string
	queue     string
	executors map[string]Executor
	retention time.Duration
	ownerTTL  time.Duration
	maxWait   time.Duration
	maxRetry  int
	maxActive int
	slots     *fairshare.Slots
	onFinish  func(ctx context.Context, j *Job)
	onRunning func(delta int)
	now       func() time.Time
	log       *slog.Logger

	client    *asynq.Client
	inspector *asynq.Inspector
	server    *asynq.Server
}

// New returns an Engine. Start runs its workers.
func New(o Options) (*Engine, error) {
	if o.Client == nil {
		return nil, errors.New("jobs: Options.Client is required")
	}
	e := &Engine{
		rdb: o.Client, prefix: o.Prefix, queue: o.Queue, executors: o.Executors, retention: o.Retention,
		ownerTTL: o.OwnerTTL, maxWait: o.MaxWait, maxRetry: o.MaxRetry, now: o.Now, log: o.Logger,
		onFinish: o.OnFinish, onRunning: o.OnRunning, maxActive: o.MaxActive,
	}
	if e.maxActive <= 0 {
		e.maxActive = DefaultMaxActive
	}
	e.slots = fairshare.New(cmp.Or(max(o.TenantConcurrency, 0), DefaultTenantConcurrency))
	if e.queue == "" {
		e.queue = DefaultQueue
	}
	if e.retention <= 0 {
		e.retention = DefaultRetention
	}
	if e.ownerTTL <= 0 {
		e.ownerTTL = DefaultOwnerTTL
	}
	if e.maxWait <= 0 {
		e.maxWait = DefaultMaxWait
	}
	if e.maxRetry <= 0 {
		e.maxRetry = DefaultMaxRetry
	}
	if e.now == nil {
		e.now = time.Now
	}
	if e.log == nil {
		e.log = slog.New(slog.DiscardHandler)
	}
	e.client = asynq.NewClientFromRedisClient(o.Client)
	e.inspector = asynq.NewInspectorFromRedisClient(o.Client)
	cfg := asynq.Config{
		Concurrency:    max(o.Concurrency, 0),
		Queues:         map[string]int{e.queue: 1},
		RetryDelayFunc: e.retryDelay,
		IsFailure:      func(err error) bool { _, wait := errors.AsType[*WaitError](err); return !wait },
		Logger:         asynqLogger{e.log},
		LogLevel:       asynq.WarnLevel,
	}
	if cfg.Concurrency == 0 {
		cfg.Concurrency = DefaultConcurrency
	}
	if o.PollInterval > 0 {
		cfg.TaskCheckInterval, cfg.DelayedTaskCheckInterval = o.PollInterval, o.PollInterval
	}
	e.server = asynq.NewServerFromRedisClient(o.Client, cfg)
	return e, nil
}

// Start runs this replica's workers until Shutdown.
func (e *Engine) Start() error {
	mux := asynq.NewServeMux()
	mux.HandleFunc(TaskType, e.handle)
	if err := e.server.Start(mux); err != nil {
		return fmt.Errorf("jobs: start workers: %w", err)
	}
	return nil
}

// Shutdown stops the workers; jobs they were running go back to the queue for another replica.
func (e *Engine) Shutdown() { e.server.Shutdown() }

// Stop stops taking new jobs (the first step of a graceful shutdown).
func (e *Engine) Stop() { e.server.Stop() }

// jobTag is the start of every key of job id: they share its hash slot.
func (e *Engine) jobTag(id string) string { return e.prefix + "{job:" + id + "}" }

// jobKey is the job's record (see record.go).
func (e *Engine) jobKey(id string) string    { return e.jobTag(id) + ":rec" }
func (e *Engine) ownerKey(id string) string  { return e.jobTag(id) + ":owner" }
func (e *Engine) cancelKey(id string) string { return e.jobTag(id) + ":cancel" }

// reportedKey is set once OnFinish was told of the job's end.
func (e *Engine) reportedKey(id string) string { return e.jobTag(id) + ":reported" }
func (e *Engine) indexKey(tenant string) string {
	return e.prefix + "jobs:" + tenant
}

// Submit stores j as a new queued job and enqueues it. It sets ID, Status, the timestamps and
// every item's status. A tenant that has MaxActive unfinished jobs already is refused with
// *TooManyJobsError, and nothing is stored.
func (e *Engine) Submit(ctx context.Context, j *Job) error {
	if _, ok := e.executors[j.Type]; !ok {
		return fmt.Errorf("jobs: no executor for job type %q", j.Type)
	}
	now := e.now().UTC()
	j.ID, j.Status, j.CreatedAt, j.UpdatedAt = NewID(), Queued, now, now
	for i := range j.Items {
		j.Items[i].Status = ItemPending
	}
	fields, err := recordFields(j)
	if err != nil {
		return err
	}
	// Admitted first: a refused job leaves nothing behind.
	if err := e.admit(ctx, j); err != nil {
		return err
	}
	undo := func() {
		ctx := context.WithoutCancel(ctx)
		e.rdb.Del(ctx, e.jobKey(j.ID))
		e.rdb.ZRem(ctx, e.indexKey(j.Tenant), j.ID)
		e.rdb.ZRem(ctx, e.activeKey(j.Tenant), j.ID)
	}
	if err := e.rdb.HSet(ctx, e.jobKey(j.ID), fields...).Err(); err != nil {
		undo()
		return fmt.Errorf("jobs: save %s: %w", j.ID, err)
	}
	if err := e.rdb.ZAdd(ctx, e.indexKey(j.Tenant), redis.Z{Score: float64(now.UnixMilli()), Member: j.ID}).Err(); err != nil {
		undo()
		return fmt.Errorf("jobs: index %s: %w", j.ID, err)
	}
	if err := e.enqueue(ctx, j.ID, 0); err != nil {
		undo()
		return err
	}
	e.prune(ctx, j.Tenant)
	return nil
}

func (e *Engine) enqueue(ctx context.Context, id string, in time.Duration) error {
	opts := []asynq.Option{asynq.Queue(e.queue), asynq.TaskID(id), asynq.MaxRetry(e.maxRetry), asynq.Timeout(time.Hour)}
	if in > 0 {
		opts = append(opts, asynq.ProcessIn(in))
	}
	if _, err := e.client.EnqueueContext(ctx, asynq.NewTask(TaskType, []byte(id)), opts...); err != nil {
		return fmt.Errorf("jobs: enqueue %s: %w", id, err)
	}
	return nil
}

// Get returns the tenant's job id.
func (e *Engine) Get(ctx context.Context, tenant, id string) (*Job, error) {
	if !validID(id) {
		return nil, ErrNotFound
	}
	j, err := e.load(ctx, id, true)
	if err != nil {
		return nil, err
	}
	if j.Tenant != tenant {
		return nil, ErrNotFound
	}
	return e.settleOrphan(ctx, j), nil
}

// OrphanAfter is how long a job may stay queued without a task in the queue before it counts as
// never queued.
const OrphanAfter = time.Minute

// failQueuedScript replaces the state of a job that is still queued and never started.
// KEYS[1] = record; ARGV[1] = state JSON, ARGV[2] = TTL (ms).
var failQueuedScript = redis.NewScript(`
local cur = redis.call('HGET', KEYS[1], 'state')
if not cur then return 0 end
local s = cjson.decode(cur)
if s.status ~= 'queued' or s.started_at ~= nil then return 0 end
redis.call('HSET', KEYS[1], 'state', ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
`)

// settleOrphan fails a job that Submit saved but never queued (the replica died in between, or
// Redis failed it and the clean-up too): still queued, never started, older than OrphanAfter, and
// no task in the queue. Nothing was changed for such a job, and its caller got no 202 for it; left
// alone it would stay queued forever. Jobs are settled when read, so nothing needs to sweep.
func (e *Engine) settleOrphan(ctx context.Context, j *Job) *Job {
	if j.Status != Queued || j.StartedAt != nil || e.now().Sub(j.CreatedAt) < OrphanAfter {
		return j
	}
	_, err := e.inspector.GetTaskInfo(e.queue, j.ID)
	if !errors.Is(err, asynq.ErrTaskNotFound) && !errors.Is(err, asynq.ErrQueueNotFound) {
		return j // queued (pending, retrying, running), or the queue could not be read: not now
	}
	failed := *j
	now := e.now().UTC()
	failed.Status, failed.UpdatedAt, failed.FinishedAt = Failed, now, &now
	failed.Error = &Error{Code: "not_queued", Message: "the gateway stopped between accepting this job and queueing it; nothing was changed. Submit it again."}
	b, err := json.Marshal(stateOf(&failed))
	if err != nil {
		return j
	}
	ok, err := failQueuedScript.Run(ctx, e.rdb, []string{e.jobKey(j.ID)}, b, e.retention.Milliseconds()).Int()
	if err != nil {
		e.log.WarnContext(ctx, "jobs: settling a job that was never queued failed", "job", j.ID, "err", err)
		return j
	}
	if ok != 1 {
		// Another reader settled it, or it started after all: read it as it stands.
		if cur, err := e.load(ctx, j.ID, true); err == nil {
			return cur
		}
		return j
	}
	e.log.WarnContext(ctx, "jobs: a job was never queued; it is marked failed", "job", j.ID, "tenant", j.Tenant)
	e.deactivate(ctx, &failed)
	e.reportFinish(ctx, &failed)
	return &failed
}

// List returns the tenant's most recent jobs, newest first; account filters by integrated
// account when not empty.
func (e *Engine) List(ctx context.Context, tenant, account string) ([]*Job, error) {
	ids, err := e.rdb.ZRevRange(ctx, e.indexKey(tenant), 0, maxListed-1).Result()
	if err != nil {
		return nil, fmt.Errorf("jobs: list: %w", err)
	}
	out := []*Job{}
	var gone []any
	for _, id := range ids {
		j, err := e.load(ctx, id, true)
		if errors.Is(err, ErrNotFound) {
			gone = append(gone, id) // expired after its retention
			continue
		}
		if err != nil {
			return nil, err
		}
		if j.Tenant == tenant && (account == "" || j.Account == account) {
			out = append(out, e.settleOrphan(ctx, j))
		}
	}
	if len(gone) > 0 {
		e.rdb.ZRem(ctx, e.indexKey(tenant), gone...)
	}
	e.prune(ctx, tenant)
	// The index scores in milliseconds, and jobs submitted within one tie there (Redis then
	// orders them by id, which is random); the record's creation time is exact.
	slices.SortStableFunc(out, func(a, b *Job) int { return b.CreatedAt.Compare(a.CreatedAt) })
	return out, nil
}

// pruneBatch bounds one pass of prune. The jobs it looks at were created more than a retention
// ago; those still readable were unfinished a retention ago, so there are few of them (no more
// than the tenant's cap of unfinished jobs), and a pass of this size gets past them.
const pruneBatch = 200

// prune drops from the tenant's index the oldest ids whose records are gone: the index is
// ordered by creation, and a job is kept for a retention after it finishes, so only ids created
// more than a retention ago can be gone. Submit and List call it, so the index stays about as
// long as the tenant's jobs of one retention, however many it ever had.
func (e *Engine) prune(ctx context.Context, tenant string) {
	before := e.now().Add(-e.retention).UnixMilli()
	ids, err := e.rdb.ZRangeByScore(ctx, e.indexKey(tenant), &redis.ZRangeBy{
		Min: "-inf", Max: "(" + strconv.FormatInt(before, 10), Count: pruneBatch,
	}).Result()
	if err != nil || len(ids) == 0 {
		return
	}
	states := make([]*redis.StringCmd, len(ids))
	if _, err := e.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, id := range ids {
			states[i] = p.HGet(ctx, e.jobKey(id), fieldState)
		}
		return nil
	}); err != nil && !errors.Is(err, redis.Nil) {
		return
	}
	var gone []any
	for i, c := range states {
		b, err := c.Bytes()
		var st jobState
		switch {
		case errors.Is(err, redis.Nil):
			gone = append(gone, ids[i])
		case err == nil && json.Unmarshal(b, &st) == nil:
			j := &Job{}
			st.apply(j)
			if e.expired(j) {
				gone = append(gone, ids[i])
			}
		}
	}
	if len(gone) > 0 {
		if err := e.rdb.ZRem(ctx, e.indexKey(tenant), gone...).Err(); err != nil {
			e.log.WarnContext(ctx, "jobs: pruning the job index failed", "tenant", tenant, "err", err)
		}
	}
}

// Cancel asks the tenant's job id to stop before its next item; a job waiting for quota or for a
// retry is woken so that it stops now. It returns the job as it stands.
func (e *Engine) Cancel(ctx context.Context, tenant, id string) (*Job, error) {
	j, err := e.Get(ctx, tenant, id)
	if err != nil {
		return nil, err
	}
	if j.Status.Final() {
		return j, nil
	}
	if err := e.rdb.Set(ctx, e.cancelKey(id), "1", e.retention).Err(); err != nil {
		return nil, fmt.Errorf("jobs: cancel %s: %w", id, err)
	}
	j.CancelRequested = true
	// A task waiting for its retry time runs at once; one that is pending or active needs nothing.
	_ = e.inspector.RunTask(e.queue, id)
	return j, nil
}

// Wake makes waiting jobs of the queue run now instead of at their planned time (tests, and an
// operator who knows the budget is back).
func (e *Engine) Wake(ctx context.Context) {
	_, _ = e.inspector.RunAllRetryTasks(e.queue)
	_, _ = e.inspector.RunAllScheduledTasks(e.queue)
}

// retryDelay is asynq's RetryDelayFunc: a wait for quota sleeps until its time (at most
// MaxWait); other failures back off exponentially with jitter, up to a minute.
func (e *Engine) retryDelay(n int, err error, _ *asynq.Task) time.Duration {
	if we, ok := errors.AsType[*WaitError](err); ok {
		return min(max(we.Until.Sub(e.now()), 10*time.Millisecond), e.maxWait)
	}
	d := min(time.Second<<min(n, 6), time.Minute)
	return d/2 + rand.N(d/2+1)
}

// asynqLogger sends asynq's logs to slog.
type asynqLogger struct{ l *slog.Logger }

func (a asynqLogger) Debug(args ...any) { a.l.Debug("jobs: asynq", "msg", fmt.Sprint(args...)) }
func (a asynqLogger) Info(args ...any)  { a.l.Info("jobs: asynq", "msg", fmt.Sprint(args...)) }
func (a asynqLogger) Warn(args ...any)  { a.l.Warn("jobs: asynq", "msg", fmt.Sprint(args...)) }
func (a asynqLogger) Error(args ...any) { a.l.Error("jobs: asynq", "msg", fmt.Sprint(args...)) }
func (a asynqLogger) Fatal(args ...any) { a.l.Error("jobs: asynq fatal", "msg", fmt.Sprint(args...)) }
