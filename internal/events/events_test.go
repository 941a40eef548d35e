package events_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/dirgate/dirgate/internal/events"
	"github.com/dirgate/dirgate/internal/redistest"
)

func newLog(t *testing.T) (*events.Log, *redistest.Redis) {
	t.Helper()
	rdb := redistest.New(t)
	l, err := events.New(events.Options{Client: rdb, Prefix: rdb.Prefix})
	if err != nil {
		t.Fatal(err)
	}
	return l, rdb
}

func TestEmitAndList(t *testing.T) {
	t.Parallel()
	l, _ := newLog(t)
	ctx := context.Background()
	var ids []string
	for i := range 5 {
		acct := "a1"
		if i%2 == 1 {
			acct = "a2"
		}
		e, err := l.Emit(ctx, "acme", acct, events.MembershipAdded, map[string]int{"n": i})
		if err != nil {
			t.Fatal(err)
		}
		if !events.ValidID(e.ID) || e.Tenant != "acme" || e.CreatedAt.IsZero() {
			t.Fatalf("emitted %+v", e)
		}
		ids = append(ids, e.ID)
	}
	if _, err := l.Emit(ctx, "globex", "g1", events.UserAdded, nil); err != nil {
		t.Fatal(err)
	}

	all, more, err := l.List(ctx, "acme", "", "", 10)
	if err != nil || more || len(all) != 5 {
		t.Fatalf("List: %d events, more %v, %v", len(all), more, err)
	}
	for i, e := range all {
		var d struct{ N int }
		if e.ID != ids[i] || json.Unmarshal(e.Data, &d) != nil || d.N != i {
			t.Errorf("event %d = %+v, want id %s and n %d", i, e, ids[i], i)
		}
	}
	// Pages follow `after`; an account filter keeps only its events.
	page, more, _ := l.List(ctx, "acme", "", ids[1], 2)
	if len(page) != 2 || page[0].ID != ids[2] || page[1].ID != ids[3] || !more {
		t.Errorf("page after %s: %v more %v", ids[1], page, more)
	}
	a2, more, _ := l.List(ctx, "acme", "a2", "", 10)
	if len(a2) != 2 || a2[0].ID != ids[1] || a2[1].ID != ids[3] || more {
		t.Errorf("account a2: %v", a2)
	}
	if g, _, _ := l.List(ctx, "globex", "", "", 10); len(g) != 1 || g[0].Account != "g1" {
		t.Errorf("tenants are not separate: %v", g)
	}
	if _, _, err := l.List(ctx, "acme", "", "nope", 10); err != events.ErrInvalidCursor {
		t.Errorf("bad after: %v", err)
	}
}

// Every event reaches exactly one consumer of a group, and an event whose consumer died before
// acknowledging it is handed to another.
func TestConsumersShareTheDispatchStream(t *testing.T) {
	t.Parallel()
	l, _ := newLog(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	// A consumer takes the first event and dies without acknowledging it.
	dying, die := context.WithCancel(ctx)
	dead := &events.Consumer{Log: l, Group: "webhooks", Name: "dead", Block: 50 * time.Millisecond,
		Handle: func(context.Context, events.Event) error { die(); return fmt.Errorf("died") }}
	first, err := l.Emit(ctx, "acme", "a1", events.UserUpdated, map[string]int{"i": -1})
	if err != nil {
		t.Fatal(err)
	}
	_ = dead.Run(dying) // returns once Handle has "died"
	want := []string{first.ID}

	var mu sync.Mutex
	seen := map[string][]string{}
	var wg sync.WaitGroup
	for i := range 3 {
		name := fmt.Sprintf("c%d", i)
		c := &events.Consumer{Log: l, Group: "webhooks", Name: name, Block: 50 * time.Millisecond, ClaimAfter: 300 * time.Millisecond,
			Handle: func(_ context.Context, e events.Event) error {
				mu.Lock()
				defer mu.Unlock()
				seen[e.ID] = append(seen[e.ID], name)
				return nil
			}}
		wg.Go(func() { _ = c.Run(ctx) })
	}
	for i := range 30 {
		e, err := l.Emit(ctx, "acme", "a1", events.UserUpdated, map[string]int{"i": i})
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, e.ID)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		n := len(seen)
		mu.Unlock()
		if n == len(want) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d events handled", n, len(want))
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	for _, id := range want {
		if len(seen[id]) != 1 {
			t.Errorf("event %s handled by %v, want exactly one consumer", id, seen[id])
		}
	}
}

// A consumer that ends holding no events leaves the group. Members left behind by processes that
// ended without leaving are removed once they show no sign of life for ForgetAfter: no heartbeat,
// or none that recent. One that still holds events stays, for another consumer to claim them.
func TestConsumersLeaveTheGroup(t *testing.T) {
	t.Parallel()
	l, rdb := newLog(t)
	ctx := context.Background()
	key := rdb.Prefix + "{events}:dispatch"
	beats := rdb.Prefix + "{events}:members:webhooks"
	if err := rdb.XGroupCreateMkStream(ctx, key, "webhooks", "0").Err(); err != nil {
		t.Fatal(err)
	}
	// "ghost" ended without leaving; "holder" ended holding an event; "sleeper" is alive (its
	// heartbeat is fresh) but has had nothing delivered for a while.
	for _, name := range []string{"ghost", "sleeper"} {
		if err := rdb.XGroupCreateConsumer(ctx, key, "webhooks", name).Err(); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := l.Emit(ctx, "acme", "a1", events.UserUpdated, map[string]int{"i": 1}); err != nil {
		t.Fatal(err)
	}
	if err := rdb.XReadGroup(ctx, &redis.XReadGroupArgs{Group: "webhooks", Consumer: "holder", Streams: []string{key, ">"}, Count: 1}).Err(); err != nil {
		t.Fatal(err)
	}
	members := func() []string {
		t.Helper()
		ms, err := rdb.XInfoConsumers(ctx, key, "webhooks").Result()
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, m := range ms {
			names = append(names, m.Name)
		}
		slices.Sort(names)
		return names
	}
	waitFor := func(want ...string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for !slices.Equal(members(), want) {
			if time.Now().After(deadline) {
				t.Fatalf("group members %v, want %v", members(), want)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	const forget = 2 * time.Second
	time.Sleep(forget + 200*time.Millisecond) // every member is now idle for longer than forget
	if err := rdb.HSet(ctx, beats, "sleeper", time.Now().UnixMilli()).Err(); err != nil {
		t.Fatal(err)
	}

	run, stop := context.WithCancel(ctx)
	live := &events.Consumer{Log: l, Group: "webhooks", Name: "live", Block: 50 * time.Millisecond,
		ClaimAfter: time.Hour, ForgetAfter: forget,
		Handle: func(context.Context, events.Event) error { return nil }}
	done := make(chan struct{})
	go func() { _ = live.Run(run); close(done) }()
	// The first round forgets the ghost only; the sleeper goes once its heartbeat is stale.
	waitFor("holder", "live", "sleeper")
	waitFor("holder", "live")
	if n, err := rdb.HExists(ctx, beats, "sleeper").Result(); err != nil || n {
		t.Errorf("the forgotten sleeper's heartbeat is still kept (%v, %v)", n, err)
	}
	stop()
	<-done
	if got := members(); !slices.Equal(got, []string{"holder"}) {
		t.Errorf("after the live consumer ended, members %v, want [holder]", got)
	}
}
