package changes

import (
	"context"
	"errors"
	"log/slog"
	"time"
)

// ErrStop, returned by a PollFunc, unschedules the account: it was deleted, or its events were
// turned off.
var ErrStop = errors.New("changes: stop polling this account")

// PollFunc polls one account and returns the interval until its next poll (also on failure, when
// it knows it; zero otherwise).
type PollFunc func(ctx context.Context, t Target) (interval time.Duration, err error)

// Defaults for the zero values of PollerOptions.
const (
	DefaultTick       = 5 * time.Second
	DefaultLeaseTTL   = 5 * time.Minute
	DefaultRetryAfter = time.Minute
	DefaultBatch      = 50
)

// PollerOptions configure a Poller.
type PollerOptions struct {
	Store *Store
	Poll  PollFunc
	// Tick is how often the poller looks for due accounts; default 5 s.
	Tick time.Duration
	// LeaseTTL bounds one poll: the lease is held this long at most, and the poll's context ends
	// a little before; default 5 min.
	LeaseTTL time.Duration
	// RetryAfter is the wait after a failed poll when it is shorter than the interval; default 1 min.
	RetryAfter time.Duration
	// Batch is how many due accounts one tick reads; default 50.
	Batch  int
	Now    func() time.Time
	Logger *slog.Logger
}

// Poller polls the accounts that are due, on every replica, each account by one replica at a time
// and once per interval (see the package doc).
type Poller struct {
	store      *Store
	poll       PollFunc
	tick       time.Duration
	leaseTTL   time.Duration
	retryAfter time.Duration
	batch      int
	now        func() time.Time
	log        *slog.Logger
}

// NewPoller returns a Poller; Run starts it.
func NewPoller(o PollerOptions) (*Poller, error) {
	if o.Store == nil || o.Poll == nil {
		return nil, errors.New("changes: PollerOptions.Store and Poll are required")
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&o.Tick, DefaultTick)
	def(&o.LeaseTTL, DefaultLeaseTTL)
	def(&o.RetryAfter, DefaultRetryAfter)
	if o.Batch <= 0 {
		o.Batch = DefaultBatch
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return &Poller{store: o.Store, poll: o.Poll, tick: o.Tick, leaseTTL: o.LeaseTTL, retryAfter: o.RetryAfter,
		batch: o.Batch, now: o.Now, log: o.Logger}, nil
}

// Run polls due accounts every tick until ctx ends.
func (p *Poller) Run(ctx context.Context) {
	t := time.NewTicker(p.tick)
	defer t.Stop()
	for {
		p.RunDue(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// RunDue polls the accounts due now that no other replica is polling, one after the other, and
// returns how many it polled.
func (p *Poller) RunDue(ctx context.Context) int {
	targets, err := p.store.Due(ctx, p.now(), p.batch)
	if err != nil {
		if ctx.Err() == nil {
			p.log.WarnContext(ctx, "events: reading the due accounts failed", "err", err)
		}
		return 0
	}
	n := 0
	for _, t := range targets {
		if ctx.Err() != nil {
			break
		}
		if p.pollOne(ctx, t) {
			n++
		}
	}
	return n
}

// pollOne polls t if this replica gets its lease and t is still due once it holds it.
func (p *Poller) pollOne(ctx context.Context, t Target) bool {
	release, ok, err := p.store.lease(ctx, t.Account, p.leaseTTL)
	if err != nil || !ok {
		return false
	}
	defer release()
	// Another replica may have polled it between our reading of the schedule and our lease: it
	// moved the due time on before releasing its lease.
	due, scheduled, err := p.store.DueAt(ctx, t)
	if err != nil || !scheduled || due.After(p.now()) {
		return false
	}
	pctx, cancel := context.WithTimeout(ctx, p.leaseTTL*9/10)
	interval, err := p.poll(pctx, t)
	cancel()
	switch {
	case errors.Is(err, ErrStop):
		if err := p.store.Unschedule(ctx, t); err != nil {
			p.log.WarnContext(ctx, "events: unscheduling an account failed", "integrated_account_id", t.Account, "err", err)
		}
		return true
	case ctx.Err() != nil:
		// Shutting down: the account stays due, for another replica once the lease is released.
		return true
	}
	next := interval
	if err != nil {
		p.log.WarnContext(ctx, "events: poll failed", "integrated_account_id", t.Account, "err", err)
		if next <= 0 || next > p.retryAfter {
			next = p.retryAfter
		}
	}
	if next <= 0 {
		next = p.retryAfter
	}
	if err := p.store.reschedule(ctx, t, p.now().Add(next)); err != nil {
		p.log.WarnContext(ctx, "events: rescheduling an account failed", "integrated_account_id", t.Account, "err", err)
	}
	return true
}
