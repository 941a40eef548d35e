package changes_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/dirgate/dirgate/internal/changes"
	"github.com/dirgate/dirgate/internal/events"
	"github.com/dirgate/dirgate/internal/redistest"
	"github.com/dirgate/dirgate/internal/testclock"
)

// clock is the settable test clock.
type clock = testclock.Clock

func newStore(t *testing.T) (*changes.Store, *redistest.Redis) {
	t.Helper()
	r := redistest.New(t)
	s, err := changes.New(changes.Options{Client: r.Client, Prefix: r.Prefix, MarkMargin: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return s, r
}

// TestPollerOnePollPerInterval: three pollers on one schedule race for every due account, round
// after round; each account is polled exactly once per interval.
func TestPollerOnePollPerInterval(t *testing.T) {
	t.Parallel()
	st, _ := newStore(t)
	clk := testclock.New(t0)
	ctx := t.Context()
	var targets []changes.Target
	for i := range 5 {
		tg := changes.Target{Tenant: "acme", Account: fmt.Sprintf("ia_%d", i)}
		targets = append(targets, tg)
		if err := st.Schedule(ctx, tg, clk.Now(), false); err != nil {
			t.Fatal(err)
		}
	}
	var mu sync.Mutex
	polls := map[string]int{}
	var pollers []*changes.Poller
	for range 3 {
		p, err := changes.NewPoller(changes.PollerOptions{Store: st, Now: clk.Now, Poll: func(_ context.Context, tg changes.Target) (time.Duration, error) {
			mu.Lock()
			defer mu.Unlock()
			polls[tg.Account]++
			return time.Minute, nil
		}})
		if err != nil {
			t.Fatal(err)
		}
		pollers = append(pollers, p)
	}
	for round := 1; round <= 20; round++ {
		var wg sync.WaitGroup
		for _, p := range pollers {
			wg.Go(func() { p.RunDue(ctx) })
		}
		wg.Wait()
		for _, tg := range targets {
			if polls[tg.Account] != round {
				t.Fatalf("round %d: %s polled %d times in all, want %d", round, tg.Account, polls[tg.Account], round)
			}
		}
		// Not yet due again: nobody polls.
		clk.Advance(59 * time.Second)
		for _, p := range pollers {
			if n := p.RunDue(ctx); n != 0 {
				t.Fatalf("round %d: %d polls before the interval passed", round, n)
			}
		}
		clk.Advance(time.Second)
	}
}

// TestPollerOutcomes: ErrStop unschedules and forgets the snapshot; a failed poll is retried after
// RetryAfter when that is sooner than the interval; an account scheduled again keeps an earlier
// due time when asked to.
func TestPollerOutcomes(t *testing.T) {
	t.Parallel()
	st, _ := newStore(t)
	clk := testclock.New(t0)
	ctx := t.Context()
	stop, fail := changes.Target{Tenant: "acme", Account: "ia_stop"}, changes.Target{Tenant: "acme", Account: "ia_fail"}
	for _, tg := range []changes.Target{stop, fail} {
		if err := st.Schedule(ctx, tg, clk.Now(), false); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := st.Commit(ctx, stop.Account, changes.NewSnapshot(t0), nil); err != nil {
		t.Fatal(err)
	}
	p, err := changes.NewPoller(changes.PollerOptions{Store: st, Now: clk.Now, RetryAfter: time.Minute,
		Poll: func(_ context.Context, tg changes.Target) (time.Duration, error) {
			if tg == stop {
				return 0, changes.ErrStop
			}
			return 10 * time.Minute, errors.New("podio is down")
		}})
	if err != nil {
		t.Fatal(err)
	}
	if n := p.RunDue(ctx); n != 2 {
		t.Fatalf("polled %d, want 2", n)
	}
	if _, scheduled, _ := st.DueAt(ctx, stop); scheduled {
		t.Error("ErrStop left the account scheduled")
	}
	if snap, _ := st.Snapshot(ctx, stop.Account); snap != nil {
		t.Error("ErrStop left the snapshot")
	}
	if due, _, _ := st.DueAt(ctx, fail); !due.Equal(t0.Add(time.Minute)) {
		t.Errorf("failed poll due again at %v, want %v", due, t0.Add(time.Minute))
	}
	if err := st.Schedule(ctx, fail, t0.Add(time.Hour), true); err != nil {
		t.Fatal(err)
	}
	if due, _, _ := st.DueAt(ctx, fail); !due.Equal(t0.Add(time.Minute)) {
		t.Errorf("sooner scheduling moved the due time to %v", due)
	}
}

// TestCommit: the first commit is a baseline; a commit whose emission fails saves nothing, so the
// next one reports the same changes again; settled marks are deleted, unless marked again meanwhile.
func TestCommit(t *testing.T) {
	t.Parallel()
	st, r := newStore(t)
	ctx := t.Context()
	const acct = "ia_1"
	var emitted []string
	emit := func(_ context.Context, c changes.Change) error {
		emitted = append(emitted, c.Type)
		return nil
	}
	res, err := st.Commit(ctx, acct, world(t0, map[string]map[string]string{"10": {"1": "workspace_admin"}}), emit)
	if err != nil || !res.Baseline || len(emitted) != 0 {
		t.Fatalf("baseline: %+v %v, emitted %v", res, err, emitted)
	}

	next := world(t0.Add(time.Hour), map[string]map[string]string{"10": {"1": "workspace_admin", "2": "workspace_light", "3": "workspace_light"}})
	failing := func(_ context.Context, c changes.Change) error {
		if len(emitted) == 1 {
			return errors.New("redis is down")
		}
		emitted = append(emitted, c.Type)
		return nil
	}
	if res, err := st.Commit(ctx, acct, next, failing); err == nil || res.Emitted != 1 {
		t.Fatalf("failing emit: %+v %v", res, err)
	}
	if snap, _ := st.Snapshot(ctx, acct); snap == nil || !snap.TakenAt.Equal(t0) {
		t.Fatalf("a failed commit saved its snapshot: %+v", snap)
	}
	emitted = nil
	if res, err := st.Commit(ctx, acct, next, emit); err != nil || res.Emitted != 2 || len(emitted) != 2 {
		t.Fatalf("retry: %+v %v, emitted %v (want both changes again)", res, err, emitted)
	}

	// Marks: user 2's removal was made through dirgate (settled here); user 3's is marked again
	// while the poll emits, by a write that the poll has not seen.
	write := t0.Add(90 * time.Minute)
	mk := changes.Mark{Role: "", At: write, Expires: write.Add(time.Hour)}
	for _, u := range []string{"2", "3"} {
		if err := st.PutMark(ctx, acct, changes.Member{Workspace: "10", User: u}, mk, time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	later := world(write.Add(time.Minute), map[string]map[string]string{"10": {"1": "workspace_admin", "3": "workspace_light"}})
	later.Users["4"] = changes.User{Name: "Dee"}
	remark := changes.Mark{Role: "workspace_admin", At: write.Add(2 * time.Minute), Expires: write.Add(time.Hour)}
	emitted = nil
	if _, err := st.Commit(ctx, acct, later, func(_ context.Context, c changes.Change) error {
		emitted = append(emitted, c.Type)
		return st.PutMark(ctx, acct, changes.Member{Workspace: "10", User: "3"}, remark, time.Hour)
	}); err != nil {
		t.Fatal(err)
	}
	// User 4 appeared; user 2's removal was reported by dirgate; user 3 is still there although
	// dirgate said it removed them: the consumer hears of it.
	if want := []string{events.UserAdded, events.MembershipAdded}; fmt.Sprint(emitted) != fmt.Sprint(want) {
		t.Errorf("emitted %v, want %v", emitted, want)
	}
	marks, err := st.Marks(ctx, acct)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := marks[changes.Member{Workspace: "10", User: "2"}]; ok || len(marks) != 1 || !marks[changes.Member{Workspace: "10", User: "3"}].At.Equal(remark.At) {
		t.Errorf("marks after commit: %+v; want only user 3's new mark", marks)
	}
	if ttl := r.PTTL(ctx, r.Prefix+"{acct:"+acct+"}:changes:marks").Val(); ttl <= 0 || ttl > time.Hour {
		t.Errorf("marks TTL = %v", ttl)
	}
}
