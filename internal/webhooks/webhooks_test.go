package webhooks_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/dirgate/dirgate/internal/crypt"
	"github.com/dirgate/dirgate/internal/events"
	"github.com/dirgate/dirgate/internal/redistest"
	"github.com/dirgate/dirgate/internal/testclock"
	"github.com/dirgate/dirgate/internal/webhooks"
)

// clock is real time plus an offset the test moves.
type clock = testclock.Offset

// resolver answers from a fixed table; other names do not resolve.
type resolver map[string][]netip.Addr

func (r resolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	if a, ok := r[host]; ok {
		return a, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
}

type env struct {
	t     *testing.T
	rdb   *redistest.Redis
	k1    crypt.Key
	ring  *crypt.Ring
	clock *clock
	store *webhooks.Store
	log   *events.Log
	queue string
}

func newKey(t *testing.T, id string) crypt.Key {
	t.Helper()
	k, err := crypt.GenerateKey(id)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func newRing(t *testing.T, keys ...crypt.Key) *crypt.Ring {
	t.Helper()
	r, err := crypt.NewRing(keys)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func newEnv(t *testing.T, allowPrivate bool, res webhooks.Resolver) *env {
	t.Helper()
	e := &env{t: t, rdb: redistest.New(t), clock: &clock{}}
	e.k1 = newKey(t, "k1")
	e.ring = newRing(t, e.k1)
	e.store = e.newStore(e.ring, allowPrivate, res)
	var err error
	if e.log, err = events.New(events.Options{Client: e.rdb, Prefix: e.rdb.Prefix, Now: e.clock.Now}); err != nil {
		t.Fatal(err)
	}
	e.queue = strings.ReplaceAll(e.rdb.Prefix, ":", "-") + "webhooks"
	t.Cleanup(func() {
		ctx := context.Background()
		iter := e.rdb.Scan(ctx, 0, "asynq:{"+e.queue+"}*", 1000).Iterator()
		for iter.Next(ctx) {
			e.rdb.Del(ctx, iter.Val())
		}
		e.rdb.SRem(ctx, "asynq:queues", e.queue)
	})
	return e
}

func (e *env) newStore(ring *crypt.Ring, allowPrivate bool, res webhooks.Resolver) *webhooks.Store {
	e.t.Helper()
	s, err := webhooks.NewStore(webhooks.StoreOptions{Client: e.rdb, Prefix: e.rdb.Prefix, Ring: ring,
		AllowPrivate: allowPrivate, AllowHTTP: true, Resolver: res, Now: e.clock.Now})
	if err != nil {
		e.t.Fatal(err)
	}
	return s
}

func (e *env) options(s *webhooks.Store, tune func(*webhooks.Options)) webhooks.Options {
	o := webhooks.Options{Store: s, Queue: e.queue, BackoffBase: 20 * time.Millisecond, BackoffCap: 100 * time.Millisecond,
		Timeout: 5 * time.Second, PollInterval: 20 * time.Millisecond, HoldPoll: 50 * time.Millisecond}
	if tune != nil {
		tune(&o)
	}
	return o
}

func (e *env) dispatcher(s *webhooks.Store) *webhooks.Dispatcher {
	e.t.Helper()
	d, err := webhooks.NewDispatcher(e.options(s, nil))
	if err != nil {
		e.t.Fatal(err)
	}
	return d
}

// startWorker runs a worker on the test's queue until the test ends.
func (e *env) startWorker(s *webhooks.Store, tune func(*webhooks.Options)) *webhooks.Worker {
	e.t.Helper()
	w, err := webhooks.NewWorker(e.options(s, tune))
	if err != nil {
		e.t.Fatal(err)
	}
	if err := w.Start(); err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(w.Shutdown)
	return w
}

// emit records an event and hands it to the dispatcher, as the events consumer would.
func (e *env) emit(d *webhooks.Dispatcher, tenant, account, typ string, data any) events.Event {
	e.t.Helper()
	ev, err := e.log.Emit(context.Background(), tenant, account, typ, data)
	if err != nil {
		e.t.Fatal(err)
	}
	if err := d.Handle(context.Background(), ev); err != nil {
		e.t.Fatal(err)
	}
	return ev
}

// delivery waits until the webhook's delivery of event satisfies ok.
func (e *env) delivery(tenant, webhook, event string, ok func(webhooks.Delivery) bool) webhooks.Delivery {
	e.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	var last webhooks.Delivery
	for time.Now().Before(deadline) {
		list, err := e.store.Deliveries(context.Background(), tenant, webhook)
		if err != nil {
			e.t.Fatal(err)
		}
		for _, d := range list {
			if d.EventID == event {
				last = d
				if ok(d) {
					return d
				}
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	e.t.Fatalf("delivery of %s to %s never reached the expected state; last %+v", event, webhook, last)
	return last
}

// receiver is a webhook endpoint that records what it gets.
type receiver struct {
	*httptest.Server
	mu       sync.Mutex
	requests []received
	// answer picks the status of the n-th request (1-based); nil answers 204.
	answer func(n int) int
}

type received struct {
	header http.Header
	body   []byte
}

func newReceiver(t *testing.T, answer func(n int) int) *receiver {
	r := &receiver{answer: answer}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.requests = append(r.requests, received{header: req.Header.Clone(), body: body})
		n := len(r.requests)
		r.mu.Unlock()
		status := http.StatusNoContent
		if r.answer != nil {
			status = r.answer(n)
		}
		w.WriteHeader(status)
		if status >= 300 {
			fmt.Fprint(w, "receiver says no\n(line two)")
		}
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *receiver) got() []received {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]received(nil), r.requests...)
}

func (r *receiver) eventIDs() []string {
	var ids []string
	for _, q := range r.got() {
		ids = append(ids, q.header.Get("Dirgate-Event-Id"))
	}
	return ids
}

func TestWebhookStoreCRUD(t *testing.T) {
	t.Parallel()
	e := newEnv(t, true, nil)
	ctx := context.Background()
	w, secret, err := e.store.Create(ctx, "acme", webhooks.NewWebhook{URL: "https://hooks.example.com/in",
		Events: []string{events.UserAdded, events.UserAdded, events.MembershipAdded}, Description: "ours"})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(secret, "whsec_") || len(secret) != len("whsec_")+43 {
		t.Errorf("secret %q: want whsec_ and 43 base64url characters", secret)
	}
	if len(w.Events) != 2 || !w.Matches(events.UserAdded) || w.Matches(events.UserRemoved) {
		t.Errorf("events %v: duplicates must go, only the given types match", w.Events)
	}
	got, err := e.store.Get(ctx, "acme", w.ID)
	if err != nil || got.URL != w.URL || got.Description != "ours" || !got.CreatedAt.Equal(w.CreatedAt) {
		t.Errorf("Get = %+v, %v; want %+v", got, err, w)
	}
	if _, err := e.store.Get(ctx, "globex", w.ID); !errors.Is(err, webhooks.ErrNotFound) {
		t.Errorf("another tenant's Get: %v, want ErrNotFound", err)
	}
	if err := e.store.Delete(ctx, "globex", w.ID); !errors.Is(err, webhooks.ErrNotFound) {
		t.Errorf("another tenant's Delete: %v, want ErrNotFound", err)
	}
	if _, err := e.store.Deliveries(ctx, "globex", w.ID); !errors.Is(err, webhooks.ErrNotFound) {
		t.Errorf("another tenant's Deliveries: %v, want ErrNotFound", err)
	}
	all, _, err := e.store.Create(ctx, "acme", webhooks.NewWebhook{URL: "http://127.0.0.1:9/", Events: []string{"*"}})
	if err != nil || !all.Matches(events.JobFailed) {
		t.Fatalf("wildcard webhook: %+v %v", all, err)
	}
	if list, err := e.store.List(ctx, "acme"); err != nil || len(list) != 2 || list[0].ID != w.ID || list[1].ID != all.ID {
		t.Errorf("List = %v, %v; want both, oldest first", list, err)
	}
	if list, _ := e.store.List(ctx, "globex"); len(list) != 0 {
		t.Errorf("another tenant lists %v", list)
	}

	// The secret is stored sealed, never in plain text.
	keys, _ := e.rdb.Keys(ctx, e.rdb.Prefix+"*").Result()
	for _, k := range keys {
		if v, _ := e.rdb.Get(ctx, k).Result(); strings.Contains(v, secret) || strings.Contains(v, strings.TrimPrefix(secret, "whsec_")) {
			t.Errorf("Redis key %s holds the secret in plain text", k)
		}
	}

	if err := e.store.Delete(ctx, "acme", w.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := e.store.Get(ctx, "acme", w.ID); !errors.Is(err, webhooks.ErrNotFound) {
		t.Errorf("Get after Delete: %v", err)
	}
	if _, err := e.store.Get(ctx, "acme", "wh_../../x"); !errors.Is(err, webhooks.ErrNotFound) {
		t.Errorf("Get of a malformed id: %v", err)
	}

	// At most MaxPerTenant webhooks.
	for i := range webhooks.MaxPerTenant - 1 {
		if _, _, err := e.store.Create(ctx, "initech", webhooks.NewWebhook{URL: fmt.Sprintf("https://h%d.example.com/", i), Events: []string{"*"}}); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := e.store.Create(ctx, "initech", webhooks.NewWebhook{URL: "https://last.example.com/", Events: []string{"*"}}); err != nil {
		t.Fatalf("webhook number %d: %v", webhooks.MaxPerTenant, err)
	}
	if _, _, err := e.store.Create(ctx, "initech", webhooks.NewWebhook{URL: "https://over.example.com/", Events: []string{"*"}}); !errors.Is(err, webhooks.ErrTooMany) {
		t.Errorf("one webhook too many: %v, want ErrTooMany", err)
	}
}

func TestWebhookStoreValidation(t *testing.T) {
	t.Parallel()
	e := newEnv(t, true, nil)
	tests := []struct {
		name  string
		in    webhooks.NewWebhook
		field string
	}{
		{"no url", webhooks.NewWebhook{Events: []string{"*"}}, "url"},
		{"ftp", webhooks.NewWebhook{URL: "ftp://x.example.com/", Events: []string{"*"}}, "url"},
		{"no events", webhooks.NewWebhook{URL: "https://x.example.com/"}, "events"},
		{"unknown type", webhooks.NewWebhook{URL: "https://x.example.com/", Events: []string{"user.exploded"}}, "events"},
		{"wildcard with others", webhooks.NewWebhook{URL: "https://x.example.com/", Events: []string{"*", events.UserAdded}}, "events"},
		{"long description", webhooks.NewWebhook{URL: "https://x.example.com/", Events: []string{"*"}, Description: strings.Repeat("é", webhooks.MaxDescription+1)}, "description"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := e.store.Create(context.Background(), "acme", tc.in)
			if ie, ok := errors.AsType[*webhooks.InvalidError](err); !ok || ie.Field != tc.field {
				t.Errorf("Create: %v, want an InvalidError on %s", err, tc.field)
			}
		})
	}
}

// Without AllowPrivate, a URL whose host is or resolves to an internal address is refused.
func TestWebhookCreateRefusesInternalTargets(t *testing.T) {
	t.Parallel()
	res := resolver{
		"hooks.example.com":    {netip.MustParseAddr("93.184.216.34")},
		"internal.example.com": {netip.MustParseAddr("10.1.2.3")},
		"mixed.example.com":    {netip.MustParseAddr("93.184.216.34"), netip.MustParseAddr("127.0.0.1")},
		"metadata.example.com": {netip.MustParseAddr("169.254.169.254")},
	}
	e := newEnv(t, false, res)
	for _, tc := range []struct{ url, reason string }{
		{"http://127.0.0.1:8080/", "loopback"},
		{"http://[::1]/", "loopback"},
		{"http://10.0.0.1/", "private"},
		{"http://169.254.169.254/latest/meta-data/", "link-local"},
		{"http://[fd12::1]/", "private"},
		{"https://internal.example.com/", "private"},
		{"https://mixed.example.com/", "loopback"},
		{"https://metadata.example.com/", "link-local"},
		{"https://nowhere.example.com/", "does not resolve"},
	} {
		_, _, err := e.store.Create(context.Background(), "acme", webhooks.NewWebhook{URL: tc.url, Events: []string{"*"}})
		if ie, ok := errors.AsType[*webhooks.InvalidError](err); !ok || ie.Field != "url" || !strings.Contains(ie.Reason, tc.reason) {
			t.Errorf("Create(%s): %v, want an invalid url (%s)", tc.url, err, tc.reason)
		}
	}
	if _, _, err := e.store.Create(context.Background(), "acme", webhooks.NewWebhook{URL: "https://hooks.example.com/in", Events: []string{"*"}}); err != nil {
		t.Errorf("public host refused: %v", err)
	}
	lax := e.newStore(e.ring, true, res)
	if _, _, err := lax.Create(context.Background(), "acme", webhooks.NewWebhook{URL: "http://127.0.0.1:8080/", Events: []string{"*"}}); err != nil {
		t.Errorf("loopback refused with AllowPrivate: %v", err)
	}
}

// The delivery dialer checks the address it connects to: a name that passed the check at creation
// but resolves to loopback when delivering (DNS rebinding) is refused, and nothing reaches it.
func TestWebhookDeliveryRefusesInternalAddresses(t *testing.T) {
	t.Parallel()
	rcv := newReceiver(t, nil)
	_, port, _ := net.SplitHostPort(rcv.Listener.Addr().String())
	// At creation "localhost" looks public; the dialer resolves it for real (127.0.0.1).
	e := newEnv(t, false, resolver{"localhost": {netip.MustParseAddr("93.184.216.34")}})
	w, _, err := e.store.Create(context.Background(), "acme", webhooks.NewWebhook{URL: "http://localhost:" + port + "/hook", Events: []string{"*"}})
	if err != nil {
		t.Fatal(err)
	}
	e.startWorker(e.store, nil)
	ev := e.emit(e.dispatcher(e.store), "acme", "a1", events.UserAdded, map[string]string{"user_id": "1"})
	d := e.delivery("acme", w.ID, ev.ID, func(d webhooks.Delivery) bool { return d.Attempts >= 2 })
	if d.Status != webhooks.Pending || d.LastStatusCode != 0 || !strings.Contains(d.LastError, "loopback") {
		t.Errorf("delivery %+v: want pending, no status code, a loopback refusal", d)
	}
	if strings.Contains(d.LastError, "/hook") {
		t.Errorf("last error %q repeats the URL", d.LastError)
	}
	if n := len(rcv.got()); n != 0 {
		t.Errorf("the loopback receiver got %d requests", n)
	}
}

func TestWebhookDeliveryIsSignedAndIdempotent(t *testing.T) {
	t.Parallel()
	e := newEnv(t, true, nil)
	rcv := newReceiver(t, nil)
	other := newReceiver(t, nil)
	ctx := context.Background()
	w, secret, err := e.store.Create(ctx, "acme", webhooks.NewWebhook{URL: rcv.URL + "/in?k=v", Events: []string{events.UserAdded}})
	if err != nil {
		t.Fatal(err)
	}
	// Another type, another tenant: neither gets the event.
	if _, _, err := e.store.Create(ctx, "acme", webhooks.NewWebhook{URL: other.URL, Events: []string{events.UserRemoved}}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.store.Create(ctx, "globex", webhooks.NewWebhook{URL: other.URL, Events: []string{"*"}}); err != nil {
		t.Fatal(err)
	}
	d := e.dispatcher(e.store)
	e.startWorker(e.store, nil)
	ev := e.emit(d, "acme", "a1", events.UserAdded, map[string]string{"user_id": "42"})
	// The consumer may hand an event over again: still one delivery.
	if err := d.Handle(ctx, ev); err != nil {
		t.Fatal(err)
	}
	e.delivery("acme", w.ID, ev.ID, func(d webhooks.Delivery) bool { return d.Status == webhooks.Succeeded })
	if err := d.Handle(ctx, ev); err != nil { // and once more, after the delivery
		t.Fatal(err)
	}
	sentinel := e.emit(d, "acme", "a1", events.UserAdded, nil)
	e.delivery("acme", w.ID, sentinel.ID, func(d webhooks.Delivery) bool { return d.Status == webhooks.Succeeded })

	got := rcv.got()
	if len(got) != 2 || got[0].header.Get("Dirgate-Event-Id") != ev.ID {
		t.Fatalf("receiver got events %v, want %s once then %s", rcv.eventIDs(), ev.ID, sentinel.ID)
	}
	req := got[0]
	if err := webhooks.Verify(secret, req.header.Get("Dirgate-Signature"), req.body, time.Now(), webhooks.DefaultTolerance); err != nil {
		t.Errorf("signature: %v", err)
	}
	for h, want := range map[string]string{"Content-Type": "application/json", "Dirgate-Event-Type": events.UserAdded,
		"Dirgate-Webhook-Id": w.ID, "User-Agent": webhooks.DefaultUserAgent, "Dirgate-Attempt": "1"} {
		if req.header.Get(h) != want {
			t.Errorf("header %s = %q, want %q", h, req.header.Get(h), want)
		}
	}
	var body events.Event
	if err := json.Unmarshal(req.body, &body); err != nil || body.ID != ev.ID || body.Tenant != "acme" || body.Account != "a1" ||
		string(body.Data) != `{"user_id":"42"}` || !body.CreatedAt.Equal(ev.CreatedAt) {
		t.Errorf("body %s (%v), want event %+v", req.body, err, ev)
	}
	if n := len(other.got()); n != 0 {
		t.Errorf("webhooks of another type or tenant got %d requests", n)
	}
}

// First attempts of one account's events are made in event order, even with many workers.
func TestWebhookDeliveriesKeepAccountOrder(t *testing.T) {
	t.Parallel()
	e := newEnv(t, true, nil)
	rcv := newReceiver(t, nil)
	w, _, err := e.store.Create(context.Background(), "acme", webhooks.NewWebhook{URL: rcv.URL, Events: []string{"*"}})
	if err != nil {
		t.Fatal(err)
	}
	e.startWorker(e.store, func(o *webhooks.Options) { o.Concurrency = 8 })
	d := e.dispatcher(e.store)
	want := map[string][]string{}
	var last events.Event
	for i := range 30 {
		acct := fmt.Sprintf("a%d", i%3)
		last = e.emit(d, "acme", acct, events.MembershipAdded, map[string]int{"i": i})
		want[acct] = append(want[acct], last.ID)
	}
	for _, ids := range want {
		for _, id := range ids {
			e.delivery("acme", w.ID, id, func(d webhooks.Delivery) bool { return d.Status == webhooks.Succeeded })
		}
	}
	got := map[string][]string{}
	for _, q := range rcv.got() {
		var ev events.Event
		if err := json.Unmarshal(q.body, &ev); err != nil {
			t.Fatal(err)
		}
		got[ev.Account] = append(got[ev.Account], ev.ID)
	}
	for acct, ids := range want {
		if fmt.Sprint(got[acct]) != fmt.Sprint(ids) {
			t.Errorf("account %s: received %v, want %v", acct, got[acct], ids)
		}
	}
}

// An earlier event whose task is lost holds the account's later events back only for HoldMax.
func TestWebhookLostEarlierEventStopsHoldingAfterHoldMax(t *testing.T) {
	t.Parallel()
	e := newEnv(t, true, nil)
	rcv := newReceiver(t, nil)
	w, _, err := e.store.Create(context.Background(), "acme", webhooks.NewWebhook{URL: rcv.URL, Events: []string{"*"}})
	if err != nil {
		t.Fatal(err)
	}
	d := e.dispatcher(e.store)
	lost := e.emit(d, "acme", "a1", events.UserAdded, nil)
	insp := asynq.NewInspectorFromRedisClient(e.rdb.Client)
	if err := insp.DeleteTask(e.queue, "wh:"+w.ID+":"+lost.ID); err != nil {
		t.Fatalf("losing the first task: %v", err)
	}
	next := e.emit(d, "acme", "a1", events.UserAdded, nil)
	e.startWorker(e.store, nil)

	// The later event is held back (asynq holds it as a retry, not a failure)...
	deadline := time.Now().Add(20 * time.Second)
	for {
		info, err := insp.GetTaskInfo(e.queue, "wh:"+w.ID+":"+next.ID)
		if err == nil && info.State == asynq.TaskStateRetry && info.Retried == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the later event was never held back: %+v %v", info, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if n := len(rcv.got()); n != 0 {
		t.Fatalf("delivered %d events while the earlier one still held them", n)
	}
	// ...until the earlier one has waited longer than HoldMax.
	e.clock.Advance(webhooks.DefaultHoldMax + time.Second)
	e.delivery("acme", w.ID, next.ID, func(d webhooks.Delivery) bool { return d.Status == webhooks.Succeeded })
	if ids := rcv.eventIDs(); len(ids) != 1 || ids[0] != next.ID {
		t.Errorf("receiver got %v, want only %s", ids, next.ID)
	}
}

func TestWebhookRotateKeys(t *testing.T) {
	t.Parallel()
	e := newEnv(t, true, nil)
	rcv := newReceiver(t, nil)
	w, secret, err := e.store.Create(context.Background(), "acme", webhooks.NewWebhook{URL: rcv.URL, Events: []string{"*"}})
	if err != nil {
		t.Fatal(err)
	}
	// A new key first, the old one still there: rotation seals with the new key.
	k2 := newKey(t, "k2")
	both := newRing(t, k2, e.k1)
	if n, err := e.newStore(both, true, nil).RotateKeys(context.Background()); err != nil || n != 1 {
		t.Fatalf("RotateKeys = %d, %v; want 1", n, err)
	}
	if n, err := e.newStore(both, true, nil).RotateKeys(context.Background()); err != nil || n != 0 {
		t.Fatalf("second RotateKeys = %d, %v; want 0", n, err)
	}
	// With the old key gone, deliveries are still signed with the same secret.
	onlyNew := e.newStore(newRing(t, k2), true, nil)
	e.startWorker(onlyNew, nil)
	ev := e.emit(e.dispatcher(onlyNew), "acme", "a1", events.UserAdded, nil)
	e.delivery("acme", w.ID, ev.ID, func(d webhooks.Delivery) bool { return d.Status == webhooks.Succeeded })
	req := rcv.got()[0]
	if err := webhooks.Verify(secret, req.header.Get("Dirgate-Signature"), req.body, time.Now(), webhooks.DefaultTolerance); err != nil {
		t.Errorf("signature after rotation: %v", err)
	}
}
