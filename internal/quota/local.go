package quota

import (
	"slices"
	"sync"
	"time"
)

// localBudget is the in-process budget used while Redis is unreachable: the same rolling window as
// the Redis scripts, over this replica's own calls. It also holds every cooldown this replica has
// learned of.
type localBudget struct {
	mu   sync.Mutex
	keys map[Key]*localKey
	// sweepAt is the number of keys at which stale ones are dropped next, bounding memory for
	// accounts that stopped calling; it doubles with the live keys so sweeps stay amortised O(1).
	sweepAt int
}

// localKey is one Key's local state.
type localKey struct {
	// calls holds the times (Unix ms, ascending) of the calls in the window, per class.
	calls    map[Class][]int64
	cooldown int64 // Unix ms; 0 when none
}

// minSweepAt is the smallest localBudget.sweepAt.
const minSweepAt = 1024

func newLocalBudget() *localBudget {
	return &localBudget{keys: make(map[Key]*localKey), sweepAt: minSweepAt}
}

// get returns k's state, creating it. The caller holds l.mu.
func (l *localBudget) get(k Key, nowMS int64) *localKey {
	s, ok := l.keys[k]
	if ok {
		return s
	}
	if len(l.keys) >= l.sweepAt {
		l.sweep(nowMS)
		l.sweepAt = max(minSweepAt, 2*len(l.keys))
	}
	s = &localKey{calls: make(map[Class][]int64, 2)}
	l.keys[k] = s
	return s
}

// sweep drops keys with no call in the window and no running cooldown. The caller holds l.mu.
func (l *localBudget) sweep(nowMS int64) {
	for k, s := range l.keys {
		empty := s.cooldown <= nowMS
		for c := range s.calls {
			if len(s.trim(c, nowMS)) > 0 {
				empty = false
			}
		}
		if empty {
			delete(l.keys, k)
		}
	}
}

// trim drops class c's calls that have left the window and returns the rest.
func (s *localKey) trim(c Class, nowMS int64) []int64 {
	cutoff := nowMS - Window.Milliseconds()
	calls := s.calls[c]
	i := 0
	for i < len(calls) && calls[i] <= cutoff {
		i++
	}
	if i > 0 {
		calls = slices.Delete(calls, 0, i)
		s.calls[c] = calls
	}
	return calls
}

// add records n calls of class c at nowMS, keeping the times sorted even if the clock stepped back.
func (s *localKey) add(c Class, nowMS int64, n int) {
	calls := s.calls[c]
	i, _ := slices.BinarySearch(calls, nowMS+1)
	calls = slices.Insert(calls, i, slices.Repeat([]int64{nowMS}, n)...)
	s.calls[c] = calls
}

func (l *localBudget) cooldownUntil(k Key) int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	if s, ok := l.keys[k]; ok {
		return s.cooldown
	}
	return 0
}

func (l *localBudget) setCooldown(k Key, nowMS, untilMS int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.get(k, nowMS)
	s.cooldown = max(s.cooldown, untilMS)
}

// record counts a call admitted through Redis.
func (l *localBudget) record(k Key, classes []Class, nowMS int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.get(k, nowMS)
	for _, c := range classes {
		s.trim(c, nowMS)
		s.add(c, nowMS, 1)
	}
}

// admit is Admit against the local budget. limits maps each class to {limit, threshold} for the
// call's priority;
// redisIn is how long until Redis is tried again, the RetryAfter when a zero share refuses
// everything.
func (l *localBudget) admit(k Key, c Class, classes []Class, nowMS int64, limits map[Class][2]int, redisIn time.Duration) Decision {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.get(k, nowMS)
	d := Decision{Allowed: true, Limit: limits[c][0], Remaining: -1}
	for _, cl := range classes {
		calls := s.trim(cl, nowMS)
		limit, thr := limits[cl][0], limits[cl][1]
		rem := max(limit-len(calls), 0)
		if d.Remaining < 0 || rem < d.Remaining {
			d.Remaining = rem
		}
		if len(calls) >= thr {
			d.Allowed = false
			retry := redisIn
			if idx := len(calls) - thr; idx < len(calls) {
				retry = ms(calls[idx] + Window.Milliseconds() - nowMS)
			}
			d.RetryAfter = max(d.RetryAfter, retry, time.Millisecond)
		}
	}
	if s.cooldown > nowMS {
		return Decision{Cooldown: true, RetryAfter: ms(s.cooldown - nowMS), Limit: d.Limit}
	}
	if !d.Allowed {
		return d
	}
	for _, cl := range classes {
		s.add(cl, nowMS, 1)
	}
	d.Remaining--
	return d
}

// observe adds phantom calls so that limit - used <= remaining in the local window.
func (l *localBudget) observe(k Key, c Class, nowMS int64, limit, remaining int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.get(k, nowMS)
	if n := limit - len(s.trim(c, nowMS)) - remaining; n > 0 {
		s.add(c, nowMS, n)
	}
}

// status reports k's local state with the local limits.
func (l *localBudget) status(k Key, nowMS int64, genLimit, rlLimit int) (gen, rl ClassStatus, cooldown int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	s, ok := l.keys[k]
	if !ok {
		return classStatus(genLimit, 0, 0), classStatus(rlLimit, 0, 0), 0
	}
	one := func(c Class, limit int) ClassStatus {
		calls := s.trim(c, nowMS)
		var oldest int64
		if len(calls) > 0 {
			oldest = calls[0]
		}
		return classStatus(limit, len(calls), oldest)
	}
	gen, rl = one(General, genLimit), one(RateLimited, rlLimit)
	rl.Remaining = min(rl.Remaining, gen.Remaining)
	return gen, rl, s.cooldown
}
