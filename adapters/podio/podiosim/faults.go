package podiosim

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"
)

type faultState struct {
	f    Fault
	left int // remaining applications; <0 = until cleared
}

// Fault describes an injected failure for calls of Route ("*" = every Podio route; never /_sim/).
type Fault struct {
	Route     string `json:"route"`
	LatencyMS int    `json:"latency_ms,omitempty"` // added delay before answering (respects the request context)
	Status    int    `json:"status,omitempty"`     // 500, 502, 503 or 504 with a Podio error body
	Timeout   bool   `json:"timeout,omitempty"`    // never answer: hold until the request context ends (cap 60 s), then drop
	RateLimit bool   `json:"rate_limit,omitempty"` // forced 420 rate_limit answer
	Times     int    `json:"times,omitempty"`      // apply to the next N matching calls; 0 = until cleared
}

// AddFault installs f after validating it (known route or "*", a supported status, one outcome).
func (s *Server) AddFault(f Fault) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addFaultLocked(f)
}

// addFaultLocked validates and installs f. Caller holds s.mu.
func (s *Server) addFaultLocked(f Fault) error {
	if f.Route != "*" && !slices.ContainsFunc(s.routes, func(r *route) bool { return r.name == f.Route }) {
		return fmt.Errorf("podiosim: fault for unknown route %q", f.Route)
	}
	switch f.Status {
	case 0, 500, 502, 503, 504:
	default:
		return fmt.Errorf("podiosim: fault status %d not supported (500, 502, 503, 504)", f.Status)
	}
	outcomes := 0
	for _, b := range []bool{f.Status != 0, f.Timeout, f.RateLimit} {
		if b {
			outcomes++
		}
	}
	if outcomes > 1 {
		return errors.New("podiosim: a fault may have only one of status, timeout, rate_limit")
	}
	if f.LatencyMS < 0 || f.Times < 0 {
		return errors.New("podiosim: latency_ms and times must not be negative")
	}
	if outcomes == 0 && f.LatencyMS == 0 {
		return errors.New("podiosim: fault has no effect (set latency_ms, status, timeout or rate_limit)")
	}
	left := f.Times
	if left == 0 {
		left = -1
	}
	s.faults = append(s.faults, &faultState{f: f, left: left})
	return nil
}

// ClearFaults removes every installed fault.
func (s *Server) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = nil
}

// Faults lists the installed faults with Times set to the applications left (0 = until cleared).
func (s *Server) Faults() []Fault {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Fault, 0, len(s.faults))
	for _, fs := range s.faults {
		f := fs.f
		f.Times = max(fs.left, 0)
		out = append(out, f)
	}
	return out
}

// Routes lists the Podio route names the simulator serves.
func (s *Server) Routes() []string {
	out := make([]string, len(s.routes))
	for i, r := range s.routes {
		out[i] = r.name
	}
	return out
}

// faultEffect is the combined outcome of the faults matching one call.
type faultEffect struct {
	latency   time.Duration
	status    int
	timeout   bool
	rateLimit bool
}

// takeFaults consumes one application of every fault matching route. Caller holds s.mu.
func (s *Server) takeFaults(route string) faultEffect {
	var e faultEffect
	kept := s.faults[:0]
	for _, fs := range s.faults {
		if fs.f.Route == "*" || fs.f.Route == route {
			e.latency += time.Duration(fs.f.LatencyMS) * time.Millisecond
			if e.status == 0 && !e.timeout && !e.rateLimit {
				e.status, e.timeout, e.rateLimit = fs.f.Status, fs.f.Timeout, fs.f.RateLimit
			}
			if fs.left > 0 {
				fs.left--
				if fs.left == 0 {
					continue
				}
			}
		}
		kept = append(kept, fs)
	}
	clear(s.faults[len(kept):])
	s.faults = kept
	return e
}

// forcedRateLimitWait is the "Please wait N seconds" of a 420 forced by a fault, which has no
// window to count down.
const forcedRateLimitWait = 60

// faultCodes are the error strings of injected 5xx answers.
var faultCodes = map[int]string{500: "server_error", 502: "bad_gateway", 503: "unavailable", 504: "gateway_timeout"}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
