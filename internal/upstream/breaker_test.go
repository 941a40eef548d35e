package upstream

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"
)

func TestBreaker(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	// Each step is one call: at offset from t0, allow is asked; if allowed, the call ends with o.
	type step struct {
		at        time.Duration
		o         outcome
		wantOK    bool
		wantProbe bool
		wantAfter time.Duration
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"threshold failures open", []step{
			{0, failure, true, false, 0},
			{0, failure, true, false, 0},
			{0, failure, true, false, 0},
			{time.Second, neither, false, false, 29 * time.Second},
		}},
		{"success resets the count", []step{
			{0, failure, true, false, 0},
			{0, failure, true, false, 0},
			{0, success, true, false, 0},
			{0, failure, true, false, 0},
			{0, failure, true, false, 0},
			{0, success, true, false, 0},
		}},
		{"neither does not count", []step{
			{0, failure, true, false, 0},
			{0, neither, true, false, 0},
			{0, failure, true, false, 0},
			{0, neither, true, false, 0},
			{0, success, true, false, 0},
		}},
		{"probe success closes", []step{
			{0, failure, true, false, 0},
			{0, failure, true, false, 0},
			{0, failure, true, false, 0},
			{30 * time.Second, success, true, true, 0},
			{30 * time.Second, failure, true, false, 0},
			{30 * time.Second, success, true, false, 0},
		}},
		{"probe failure re-opens", []step{
			{0, failure, true, false, 0},
			{0, failure, true, false, 0},
			{0, failure, true, false, 0},
			{40 * time.Second, failure, true, true, 0},
			{41 * time.Second, neither, false, false, 29 * time.Second},
			{70 * time.Second, success, true, true, 0},
		}},
		{"cancelled probe frees the slot", []step{
			{0, failure, true, false, 0},
			{0, failure, true, false, 0},
			{0, failure, true, false, 0},
			{30 * time.Second, neither, true, true, 0},
			{30 * time.Second, success, true, true, 0},
			{30 * time.Second, success, true, false, 0},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := &breaker{threshold: 3, openFor: 30 * time.Second, log: slog.New(slog.DiscardHandler)}
			for i, s := range tt.steps {
				now := t0.Add(s.at)
				probe, after, ok := b.allow(now)
				if ok != s.wantOK || probe != s.wantProbe || after != s.wantAfter {
					t.Fatalf("step %d: allow = (probe %v, retryAfter %v, ok %v), want (%v, %v, %v)",
						i, probe, after, ok, s.wantProbe, s.wantAfter, s.wantOK)
				}
				if ok {
					b.done(now, probe, s.o)
				}
			}
		})
	}
}

func TestBreakerHalfOpenAdmitsOneProbe(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	b := &breaker{threshold: 1, openFor: time.Minute, log: slog.New(slog.DiscardHandler)}
	b.done(t0, false, failure)
	now := t0.Add(time.Minute)
	probe, _, ok := b.allow(now)
	if !ok || !probe {
		t.Fatalf("first caller after OpenTimeout: probe %v ok %v, want a probe", probe, ok)
	}
	for i := range 3 {
		if _, after, ok := b.allow(now); ok || after != halfOpenRetryAfter {
			t.Fatalf("caller %d during the probe: ok %v retryAfter %v, want refused with %v", i, ok, after, halfOpenRetryAfter)
		}
	}
	b.done(now, true, success)
	if probe, _, ok := b.allow(now); !ok || probe {
		t.Fatalf("after the probe succeeded: probe %v ok %v, want closed", probe, ok)
	}
}

func TestBreakerLogsStateChanges(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	b := &breaker{threshold: 1, openFor: time.Minute, log: slog.New(slog.NewTextHandler(&buf, nil))}
	b.done(t0, false, failure)
	probe, _, _ := b.allow(t0.Add(time.Minute))
	b.done(t0.Add(time.Minute), probe, failure)
	probe, _, _ = b.allow(t0.Add(2 * time.Minute))
	b.done(t0.Add(2*time.Minute), probe, success)
	for _, want := range []string{"circuit opened", "half-open", "re-opened", "circuit closed"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, buf.String())
		}
	}
	for line := range strings.Lines(buf.String()) {
		if !strings.Contains(line, "level=WARN") {
			t.Errorf("state change not logged at Warn: %s", line)
		}
	}
}
