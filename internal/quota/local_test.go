package quota

import (
	"testing"
	"time"
)

// Keys with nothing in the window and no cooldown are dropped once enough accumulate, so an
// outage does not keep every account ever seen in memory.
func TestLocalSweep(t *testing.T) {
	t.Parallel()
	l := newLocalBudget()
	start := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC).UnixMilli()
	for i := range minSweepAt - 1 {
		l.record(Key{ClientID: "app", UserID: int64(i)}, []Class{General}, start)
	}
	l.setCooldown(Key{ClientID: "cool"}, start, start+2*Window.Milliseconds())
	later := start + Window.Milliseconds()
	l.record(Key{ClientID: "new"}, []Class{General}, later)
	l.mu.Lock()
	n := len(l.keys)
	l.mu.Unlock()
	if n != 2 {
		t.Errorf("%d keys after the sweep, want 2 (the cooling one and the new one)", n)
	}
	if got := l.cooldownUntil(Key{ClientID: "cool"}); got != start+2*Window.Milliseconds() {
		t.Errorf("cooldown lost in the sweep: %d", got)
	}
}
