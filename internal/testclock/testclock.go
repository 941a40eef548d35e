// Package testclock is the settable clock tests give to code that takes a clock (Now func), so
// that expiry, backoff and rate windows are tested without sleeping.
package testclock

import (
	"sync"
	"sync/atomic"
	"time"
)

// Clock stands still until a test moves it. It is safe for concurrent use.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// New returns a Clock showing t.
func New(t time.Time) *Clock { return &Clock{t: t} }

// Now is the clock's time; pass c.Now where a clock is taken.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// Set puts the clock at t.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

// Offset is real time plus an offset a test moves: for code that also waits on real timers
// (Redis expiry, queues), where a clock standing still would never let them fire.
type Offset struct{ off atomic.Int64 }

// Now is real time plus the offset.
func (c *Offset) Now() time.Time { return time.Now().Add(time.Duration(c.off.Load())) }

// Advance adds d to the offset.
func (c *Offset) Advance(d time.Duration) { c.off.Add(int64(d)) }
