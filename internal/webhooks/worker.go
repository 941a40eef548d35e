package webhooks

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/dirgate/dirgate/internal/events"
	"github.com/dirgate/dirgate/internal/fairshare"
)

// TaskType is the asynq task type of a delivery; its payload is the webhook id and the event.
const TaskType = "dirgate:webhook"

// Defaults of Options.
const (
	DefaultQueue       = "dirgate-webhooks"
	DefaultRetryWindow = 24 * time.Hour
	DefaultBackoffBase = 10 * time.Second
	DefaultBackoffCap  = time.Hour
	DefaultTimeout     = 10 * time.Second
	DefaultConcurrency = 10
	// DefaultTenantConcurrency is the default of Options.TenantConcurrency.
	DefaultTenantConcurrency = 3
	DefaultHoldPoll          = 2 * time.Second
	DefaultHoldMax           = time.Minute
	DefaultUserAgent         = "dirgate-webhooks/1"
	// maxRetry only keeps asynq from giving up first: the retry window decides.
	maxRetry = 100000
	// excerptLen bounds the part of a receiver's answer kept in LastError.
	excerptLen = 200
)

// Options configure a Dispatcher and a Worker; replicas of one deployment must share Queue.
type Options struct {
	Store *Store
	// Queue is the asynq queue of deliveries; default "dirgate-webhooks".
	Queue string
	// RetryWindow is how long, from its creation, a delivery is retried; default 24 h.
	RetryWindow time.Duration
	// BackoffBase is the wait after the first failed attempt; it doubles with each failure up to
	// BackoffCap (with jitter). Defaults 10 s and 1 h.
	BackoffBase, BackoffCap time.Duration
	// Timeout bounds one attempt (connect, send, answer); default 10 s.
	Timeout time.Duration
	// Concurrency is how many deliveries one Worker makes at once; default 10.
	Concurrency int
	// TenantConcurrency is how many of them may be one tenant's; default 3. A tenant's further
	// deliveries wait (HoldPoll, not counted as attempts), so endpoints that hang take at most this
	// many of a replica's workers.
	TenantConcurrency int
	// PollInterval is how often asynq looks for new and due tasks; default asynq's (1 s, 5 s).
	PollInterval time.Duration
	// HoldPoll is how soon a delivery held back for an earlier event of its account, or for its
	// tenant's other deliveries in flight, looks again (one held for an earlier event is also woken
	// when that event's first attempt ends); default 2 s. HoldMax is how long an
	// earlier event that has not been attempted may hold the others (its task may be lost);
	// default 1 min.
	HoldPoll, HoldMax time.Duration
	UserAgent         string
	Logger            *slog.Logger
	// OnAttempt is told the outcome of each delivery attempt a Worker makes: "delivered",
	// "retrying" or "failed" (the retry window is over); nil: nobody.
	OnAttempt func(outcome string)
}

func (o Options) withDefaults() (Options, error) {
	if o.Store == nil {
		return o, errors.New("webhooks: Options.Store is required")
	}
	if o.Queue == "" {
		o.Queue = DefaultQueue
	}
	set := func(d *time.Duration, def time.Duration) {
		if *d <= 0 {
			*d = def
		}
	}
	set(&o.RetryWindow, DefaultRetryWindow)
	set(&o.BackoffBase, DefaultBackoffBase)
	set(&o.BackoffCap, DefaultBackoffCap)
	set(&o.Timeout, DefaultTimeout)
	set(&o.HoldPoll, DefaultHoldPoll)
	set(&o.HoldMax, DefaultHoldMax)
	if o.Concurrency <= 0 {
		o.Concurrency = DefaultConcurrency
	}
	if o.TenantConcurrency <= 0 {
		o.TenantConcurrency = DefaultTenantConcurrency
	}
	if o.UserAgent == "" {
		o.UserAgent = DefaultUserAgent
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o, nil
}

// recordTTL is how long a delivery record lives after its last change.
func (o Options) recordTTL() time.Duration { return o.RetryWindow + o.Store.retention }

func taskID(webhook, event string) string { return "wh:" + webhook + ":" + event }

type taskPayload struct {
	Webhook string       `json:"webhook"`
	Event   events.Event `json:"event"`
}

// Dispatcher turns events into deliveries: one per webhook of the event's tenant that subscribes
// to its type.
type Dispatcher struct {
	o      Options
	client *asynq.Client
}

// NewDispatcher returns a Dispatcher.
func NewDispatcher(o Options) (*Dispatcher, error) {
	o, err := o.withDefaults()
	if err != nil {
		return nil, err
	}
	return &Dispatcher{o: o, client: asynq.NewClientFromRedisClient(o.Store.rdb)}, nil
}

// Handle records and enqueues the event's deliveries (events.Consumer's Handle). It is
// idempotent: a delivery already recorded is not recorded again, one already enqueued is not
// enqueued again (the task id is webhook and event), and one already finished is left alone.
func (d *Dispatcher) Handle(ctx context.Context, e events.Event) error {
	if !events.ValidID(e.ID) {
		d.o.Logger.WarnContext(ctx, "webhooks: dropping an event without a valid id", "type", e.Type)
		return nil
	}
	recs, err := d.o.Store.records(ctx, e.Tenant)
	if err != nil {
		return err
	}
	var errs []error
	for _, r := range recs {
		if r.Matches(e.Type) {
			if err := d.dispatch(ctx, r.ID, e); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

func (d *Dispatcher) dispatch(ctx context.Context, id string, e events.Event) error {
	st := d.o.Store
	now := st.now()
	status, err := createScript.Run(ctx, st.rdb,
		[]string{st.deliveryKey(id, e.ID), st.indexKey(id), st.orderKey(id, e.Account)},
		e.ID, e.Type, e.Account, ms(now), d.o.recordTTL().Milliseconds(), indexScore(e.ID), maxListedDeliveries,
		orderMember(e.ID, now)).Text()
	if err != nil {
		return fmt.Errorf("webhooks: record delivery of %s to %s: %w", e.ID, id, err)
	}
	if status == Succeeded || status == Failed {
		return nil
	}
	payload, err := json.Marshal(taskPayload{Webhook: id, Event: e})
	if err != nil {
		return err
	}
	_, err = d.client.EnqueueContext(ctx, asynq.NewTask(TaskType, payload),
		asynq.Queue(d.o.Queue), asynq.TaskID(taskID(id, e.ID)), asynq.MaxRetry(maxRetry), asynq.Timeout(d.o.Timeout+30*time.Second))
	if err != nil && !errors.Is(err, asynq.ErrTaskIDConflict) {
		return fmt.Errorf("webhooks: enqueue delivery of %s to %s: %w", e.ID, id, err)
	}
	return nil
}

// Worker makes deliveries: an asynq server on the deliveries queue.
type Worker struct {
	o         Options
	server    *asynq.Server
	inspector *asynq.Inspector
	http      *http.Client
	slots     *fairshare.Slots
}

// NewWorker returns a Worker; Start runs it.
func NewWorker(o Options) (*Worker, error) {
	o, err := o.withDefaults()
	if err != nil {
		return nil, err
	}
	w := &Worker{o: o, inspector: asynq.NewInspectorFromRedisClient(o.Store.rdb), slots: fairshare.New(o.TenantConcurrency)}
	dialer := &net.Dialer{Timeout: o.Timeout, KeepAlive: 30 * time.Second, Control: dialControl(o.Store.allowPrivate)}
	w.http = &http.Client{
		Transport: &http.Transport{
			Proxy:                 nil, // a proxy would dial for us, past the address check
			DialContext:           dialer.DialContext,
			TLSHandshakeTimeout:   o.Timeout,
			ResponseHeaderTimeout: o.Timeout,
			MaxIdleConnsPerHost:   2,
			IdleConnTimeout:       90 * time.Second,
			ForceAttemptHTTP2:     true,
		},
		// A redirect is an answer like any other non-2xx: following it could lead anywhere.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	cfg := asynq.Config{
		Concurrency:    o.Concurrency,
		Queues:         map[string]int{o.Queue: 1},
		RetryDelayFunc: w.retryDelay,
		IsFailure:      func(err error) bool { return !errors.Is(err, errHeld) && !errors.Is(err, errTenantBusy) },
		// Let an attempt in flight finish on a graceful shutdown.
		ShutdownTimeout: o.Timeout + 2*time.Second,
		Logger:          asynqLogger{o.Logger},
		LogLevel:        asynq.WarnLevel,
	}
	if o.PollInterval > 0 {
		cfg.TaskCheckInterval, cfg.DelayedTaskCheckInterval = o.PollInterval, o.PollInterval
	}
	w.server = asynq.NewServerFromRedisClient(o.Store.rdb, cfg)
	return w, nil
}

// Start runs the worker until Shutdown.
func (w *Worker) Start() error {
	mux := asynq.NewServeMux()
	mux.HandleFunc(TaskType, w.process)
	if err := w.server.Start(mux); err != nil {
		return fmt.Errorf("webhooks: start worker: %w", err)
	}
	return nil
}

// Shutdown stops the worker after the attempts in flight (up to Timeout); deliveries it had not
// finished stay queued for any worker.
func (w *Worker) Shutdown() { w.server.Shutdown() }

// Wake makes deliveries waiting for a retry go now (tests, and an operator whose receiver is
// back).
func (w *Worker) Wake() {
	_, _ = w.inspector.RunAllRetryTasks(w.o.Queue)
	_, _ = w.inspector.RunAllScheduledTasks(w.o.Queue)
}

// errHeld says a delivery waits for an earlier event of its account; it is not a failure.
var errHeld = errors.New("webhooks: held back for an earlier event of the account")

// errTenantBusy says the tenant has TenantConcurrency deliveries in flight on this replica; the
// delivery waits without counting as a failure.
var errTenantBusy = errors.New("webhooks: the tenant has as many deliveries in flight as it may on this replica")

// retryError asks asynq to try again after a delay the worker chose (and recorded).
type retryError struct {
	after time.Duration
	msg   string
}

func (e *retryError) Error() string { return "webhooks: attempt failed: " + e.msg }

func (w *Worker) retryDelay(n int, err error, _ *asynq.Task) time.Duration {
	if errors.Is(err, errHeld) || errors.Is(err, errTenantBusy) {
		return w.o.HoldPoll
	}
	if re, ok := errors.AsType[*retryError](err); ok {
		return max(re.after, time.Millisecond)
	}
	// Redis trouble before an attempt: nothing was sent; look again soon.
	d := min(time.Second<<min(n, 6), time.Minute)
	return d/2 + rand.N(d/2+1)
}

// backoff is the wait after the n-th failed attempt: BackoffBase doubled n-1 times, at most
// BackoffCap, with jitter (between half and all of it).
func (w *Worker) backoff(n int) time.Duration {
	d := w.o.BackoffCap
	if shift := n - 1; shift < 40 {
		d = min(w.o.BackoffBase<<max(shift, 0), w.o.BackoffCap)
	}
	return d/2 + rand.N(d/2+1)
}

func (w *Worker) process(ctx context.Context, t *asynq.Task) error {
	var p taskPayload
	if err := json.Unmarshal(t.Payload(), &p); err != nil || p.Webhook == "" {
		w.o.Logger.ErrorContext(ctx, "webhooks: dropping an unreadable delivery task")
		return fmt.Errorf("webhooks: unreadable task: %w", asynq.SkipRetry)
	}
	st, e := w.o.Store, p.Event
	r, err := st.load(ctx, p.Webhook)
	if errors.Is(err, ErrNotFound) || (err == nil && r.Tenant != e.Tenant) {
		w.o.Logger.InfoContext(ctx, "webhooks: webhook deleted; dropping its delivery", "webhook", p.Webhook, "event", e.ID)
		return asynq.RevokeTask
	}
	if err != nil {
		return err
	}
	d, ok, err := st.delivery(ctx, r.ID, e.ID)
	if err != nil {
		return err
	}
	if !ok {
		w.o.Logger.WarnContext(ctx, "webhooks: delivery record expired; dropping the delivery", "webhook", r.ID, "event", e.ID)
		return asynq.RevokeTask
	}
	if d.Status != Pending {
		return nil // done by an earlier run of this task
	}
	now := st.now()
	deadline := d.CreatedAt.Add(w.o.RetryWindow)
	if d.Attempts == 0 {
		held, err := w.held(ctx, r.ID, e.Account, d.order, now)
		if err != nil {
			return err
		}
		if held {
			return errHeld
		}
	}
	if !now.Before(deadline) {
		if err := w.finish(ctx, r.ID, e, d.order, Failed, d.LastStatusCode, cmp.Or(d.LastError, "the retry window ended before an attempt"), time.Time{}); err != nil {
			return err
		}
		return fmt.Errorf("webhooks: retry window over: %w", asynq.SkipRetry)
	}
	if !w.slots.Take(e.Tenant, false) {
		return errTenantBusy
	}
	defer w.slots.Give(e.Tenant)
	n, err := beginScript.Run(ctx, st.rdb, []string{st.deliveryKey(r.ID, e.ID), st.orderKey(r.ID, e.Account)},
		ms(now), w.o.recordTTL().Milliseconds(), d.order).Int()
	if err != nil {
		return fmt.Errorf("webhooks: begin attempt: %w", err)
	}
	if n == 0 {
		return nil
	}
	code, failure := w.attempt(ctx, r, e, n)
	log := w.o.Logger.With("webhook", r.ID, "event", e.ID, "attempt", n, "status_code", code)
	if failure == "" {
		w.told("delivered")
		log.InfoContext(ctx, "webhooks: delivered")
		return w.finish(ctx, r.ID, e, d.order, Succeeded, code, "", time.Time{})
	}
	now = st.now()
	if !now.Before(deadline) {
		w.told("failed")
		log.WarnContext(ctx, "webhooks: delivery failed; the retry window is over", "err", failure)
		if err := w.finish(ctx, r.ID, e, d.order, Failed, code, failure, time.Time{}); err != nil {
			return err
		}
		return fmt.Errorf("webhooks: delivery failed after the retry window: %w", asynq.SkipRetry)
	}
	after := min(w.backoff(n), deadline.Sub(now))
	w.told("retrying")
	log.InfoContext(ctx, "webhooks: attempt failed; retrying", "err", failure, "retry_in", after.String())
	if err := w.finish(ctx, r.ID, e, d.order, Pending, code, failure, now.Add(after)); err != nil {
		return err
	}
	return &retryError{after: after, msg: failure}
}

// told tells OnAttempt of an attempt's outcome.
func (w *Worker) told(outcome string) {
	if w.o.OnAttempt != nil {
		w.o.OnAttempt(outcome)
	}
}

// held reports whether an earlier event of the account still waits for its first attempt to the
// webhook. An earlier event that has waited longer than HoldMax is taken out of the way.
func (w *Worker) held(ctx context.Context, id, account, member string, now time.Time) (bool, error) {
	if member == "" {
		return false, nil
	}
	st := w.o.Store
	for range 10 {
		head, err := st.rdb.ZRange(ctx, st.orderKey(id, account), 0, 0).Result()
		if err != nil {
			return false, fmt.Errorf("webhooks: read order: %w", err)
		}
		if len(head) == 0 || head[0] >= member {
			return false, nil
		}
		added, event, ok := parseOrderMember(head[0])
		if ok && now.Sub(added) <= w.o.HoldMax {
			return true, nil
		}
		w.o.Logger.WarnContext(ctx, "webhooks: an earlier event has waited too long for its first attempt; no longer holding later ones back",
			"webhook", id, "event", event)
		if err := st.rdb.ZRem(ctx, st.orderKey(id, account), head[0]).Err(); err != nil {
			return false, fmt.Errorf("webhooks: update order: %w", err)
		}
	}
	return false, nil
}

// finish saves the outcome of an attempt and wakes the account's next event, if one waits.
func (w *Worker) finish(ctx context.Context, id string, e events.Event, member, status string, code int, failure string, next time.Time) error {
	st := w.o.Store
	nextMS := ""
	if !next.IsZero() {
		nextMS = ms(next)
	}
	head, err := finishScript.Run(context.WithoutCancel(ctx), st.rdb, []string{st.deliveryKey(id, e.ID), st.orderKey(id, e.Account)},
		ms(st.now()), w.o.recordTTL().Milliseconds(), member, status, code, failure, nextMS).Text()
	if err != nil && !errors.Is(err, redis.Nil) {
		return fmt.Errorf("webhooks: save attempt: %w", err)
	}
	if _, ev, ok := parseOrderMember(head); ok {
		// It may be waiting for its next look; it can go now. (An error means it is already
		// queued or running.)
		_ = w.inspector.RunTask(w.o.Queue, taskID(id, ev))
	}
	return nil
}

// attempt POSTs the event to the webhook and returns the receiver's status code and, when the
// attempt failed, why.
func (w *Worker) attempt(ctx context.Context, r *record, e events.Event, n int) (int, string) {
	if !w.o.Store.allowHTTP && strings.HasPrefix(r.URL, "http:") {
		return 0, errPlainHTTP // made while http was allowed; not sent now that it is not
	}
	secrets, err := w.o.Store.secrets(r)
	if err != nil {
		// The key that sealed it left the ring; an operator can bring it back.
		w.o.Logger.ErrorContext(ctx, "webhooks: cannot open the webhook's secret", "webhook", r.ID, "err", err)
		return 0, "cannot sign the delivery: the webhook secret cannot be decrypted"
	}
	body, err := json.Marshal(e)
	if err != nil {
		return 0, "cannot encode the event"
	}
	ctx, cancel := context.WithTimeout(ctx, w.o.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.URL, bytes.NewReader(body))
	if err != nil {
		return 0, "cannot build the request"
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", w.o.UserAgent)
	req.Header.Set("Dirgate-Event-Id", e.ID)
	req.Header.Set("Dirgate-Event-Type", e.Type)
	req.Header.Set("Dirgate-Webhook-Id", r.ID)
	req.Header.Set("Dirgate-Attempt", strconv.Itoa(n))
	req.Header.Set(SignatureHeader, Sign(w.o.Store.now(), body, secrets...))
	res, err := w.http.Do(req)
	if err != nil {
		return 0, describe(err, w.o.Timeout)
	}
	defer res.Body.Close()
	excerpt, _ := io.ReadAll(io.LimitReader(res.Body, excerptLen))
	_, _ = io.Copy(io.Discard, io.LimitReader(res.Body, 64<<10)) // lets the connection be reused
	if res.StatusCode >= 200 && res.StatusCode < 300 {
		return res.StatusCode, ""
	}
	msg := "HTTP " + strconv.Itoa(res.StatusCode)
	if s := printable(excerpt); s != "" {
		msg += ": " + s
	}
	return res.StatusCode, msg
}

// describe says why a request got no answer, without the URL (which may hold a token of the
// receiver's).
func describe(err error, timeout time.Duration) string {
	if ue, ok := errors.AsType[*url.Error](err); ok {
		err = ue.Err
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return "no answer within " + timeout.String()
	}
	if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() {
		return "no answer within " + timeout.String()
	}
	return printable([]byte(err.Error()))
}

// printable keeps a short, single-line, valid UTF-8 excerpt.
func printable(b []byte) string {
	s := strings.ToValidUTF8(string(b), "?")
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
	s = strings.TrimSpace(s)
	if r := []rune(s); len(r) > excerptLen {
		s = string(r[:excerptLen]) + "..."
	}
	return s
}

// asynqLogger sends asynq's logs to slog.
type asynqLogger struct{ l *slog.Logger }

func (a asynqLogger) Debug(args ...any) { a.l.Debug("webhooks: asynq", "msg", fmt.Sprint(args...)) }
func (a asynqLogger) Info(args ...any)  { a.l.Info("webhooks: asynq", "msg", fmt.Sprint(args...)) }
func (a asynqLogger) Warn(args ...any)  { a.l.Warn("webhooks: asynq", "msg", fmt.Sprint(args...)) }
func (a asynqLogger) Error(args ...any) { a.l.Error("webhooks: asynq", "msg", fmt.Sprint(args...)) }
func (a asynqLogger) Fatal(args ...any) {
	a.l.Error("webhooks: asynq fatal", "msg", fmt.Sprint(args...))
}
