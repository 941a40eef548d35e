package upstream

import (
	"log/slog"
	"sync"
	"time"
)

// halfOpenRetryAfter is what callers refused while the half-open probe is in flight are told to
// wait: the probe's answer is usually known well within it.
const halfOpenRetryAfter = time.Second

type breakerState int

const (
	closed breakerState = iota
	open
	halfOpen
)

// outcome is what one call through the breaker tells it about Podio's health.
type outcome int

const (
	// neither: the call says nothing about Podio (the caller cancelled, or it was never sent).
	neither outcome = iota
	success
	failure
)

// breaker is a consecutive-failure circuit breaker: threshold failures in a row open it for
// openFor; then exactly one call is let through as a probe, whose success closes it and whose
// failure re-opens it. A probe that ends with neither outcome frees the slot for the next caller.
type breaker struct {
	threshold int
	openFor   time.Duration
	log       *slog.Logger

	mu        sync.Mutex
	state     breakerState
	failures  int
	openUntil time.Time
	probing   bool
}

// allow reports whether a call may go to Podio now. probe is true when the call is the half-open
// probe (its result must be reported with probe set); when !ok, retryAfter says how long to wait.
func (b *breaker) allow(now time.Time) (probe bool, retryAfter time.Duration, ok bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch b.state {
	case open:
		if now.Before(b.openUntil) {
			return false, b.openUntil.Sub(now), false
		}
		b.state = halfOpen
		b.log.Warn("upstream circuit half-open: probing podio")
		fallthrough
	case halfOpen:
		if b.probing {
			return false, halfOpenRetryAfter, false
		}
		b.probing = true
		return true, 0, true
	default:
		return false, 0, true
	}
}

// done records the outcome of a call that allow let through.
func (b *breaker) done(now time.Time, probe bool, o outcome) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if probe {
		b.probing = false
		switch o {
		case success:
			b.state, b.failures = closed, 0
			b.log.Warn("upstream circuit closed: podio answered the probe")
		case failure:
			b.state, b.openUntil = open, now.Add(b.openFor)
			b.log.Warn("upstream circuit re-opened: the probe failed", "open_for", b.openFor)
		}
		return
	}
	// Calls that started before the circuit opened and end after it say nothing the probe will
	// not: only calls made while closed move the count.
	if b.state != closed {
		return
	}
	switch o {
	case success:
		b.failures = 0
	case failure:
		b.failures++
		if b.failures >= b.threshold {
			b.state, b.openUntil = open, now.Add(b.openFor)
			b.log.Warn("upstream circuit opened", "consecutive_failures", b.failures, "open_for", b.openFor)
		}
	}
}
