package webhooks_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dirgate/dirgate/internal/events"
	"github.com/dirgate/dirgate/internal/webhooks"
)

// Concurrent creates cannot pass the cap: exactly MaxPerTenant of them succeed.
func TestWebhookCapHoldsUnderConcurrentCreates(t *testing.T) {
	t.Parallel()
	e := newEnv(t, true, nil)
	const tries = 2 * webhooks.MaxPerTenant
	var ok, refused atomic.Int32
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range tries {
		wg.Go(func() {
			<-start
			_, _, err := e.store.Create(context.Background(), "acme", webhooks.NewWebhook{URL: fmt.Sprintf("https://h%d.example.com/", i), Events: []string{"*"}})
			switch {
			case err == nil:
				ok.Add(1)
			case errors.Is(err, webhooks.ErrTooMany):
				refused.Add(1)
			default:
				t.Error(err)
			}
		})
	}
	close(start)
	wg.Wait()
	list, err := e.store.List(context.Background(), "acme")
	if ok.Load() != webhooks.MaxPerTenant || refused.Load() != tries-webhooks.MaxPerTenant || err != nil || len(list) != webhooks.MaxPerTenant {
		t.Errorf("%d created, %d refused, %d listed (%v); want %d, %d, %d", ok.Load(), refused.Load(), len(list), err,
			webhooks.MaxPerTenant, tries-webhooks.MaxPerTenant, webhooks.MaxPerTenant)
	}
	// A refused create leaves no record behind.
	keys, _ := e.rdb.Keys(context.Background(), e.rdb.Prefix+"{wh:*}").Result()
	if len(keys) != webhooks.MaxPerTenant {
		t.Errorf("%d webhook records stored, want %d", len(keys), webhooks.MaxPerTenant)
	}
}

// A rotated secret keeps signing, next to the new one, for the overlap; then only the new one
// signs. Rotating with no overlap ends the old secret at once.
func TestWebhookSecretRotation(t *testing.T) {
	t.Parallel()
	e := newEnv(t, true, nil)
	rcv := newReceiver(t, nil)
	ctx := context.Background()
	w, first, err := e.store.Create(ctx, "acme", webhooks.NewWebhook{URL: rcv.URL, Events: []string{"*"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.store.RotateSecret(ctx, "globex", w.ID, time.Hour); !errors.Is(err, webhooks.ErrNotFound) {
		t.Errorf("another tenant rotated the secret: %v", err)
	}
	for _, bad := range []time.Duration{-time.Second, webhooks.MaxSecretOverlap + time.Second} {
		if _, _, err := e.store.RotateSecret(ctx, "acme", w.ID, bad); !errors.As(err, new(*webhooks.InvalidError)) {
			t.Errorf("overlap %s: %v, want refused", bad, err)
		}
	}
	rotated, second, err := e.store.RotateSecret(ctx, "acme", w.ID, time.Hour)
	if err != nil || second == first || !strings.HasPrefix(second, "whsec_") || rotated.PreviousSecretExpiresAt == nil {
		t.Fatalf("RotateSecret = %+v, %q, %v", rotated, second, err)
	}
	if got, _ := e.store.Get(ctx, "acme", w.ID); got.PreviousSecretExpiresAt == nil || !got.PreviousSecretExpiresAt.Equal(*rotated.PreviousSecretExpiresAt) {
		t.Errorf("Get after rotation: %+v", got)
	}
	e.startWorker(e.store, nil)
	d := e.dispatcher(e.store)
	verify := func(ev events.Event, secret string) error {
		t.Helper()
		e.delivery("acme", w.ID, ev.ID, func(d webhooks.Delivery) bool { return d.Status == webhooks.Succeeded })
		for _, q := range rcv.got() {
			if q.header.Get("Dirgate-Event-Id") == ev.ID {
				return webhooks.Verify(secret, q.header.Get(webhooks.SignatureHeader), q.body, e.clock.Now(), webhooks.DefaultTolerance)
			}
		}
		t.Fatalf("event %s not received", ev.ID)
		return nil
	}
	during := e.emit(d, "acme", "a1", events.UserAdded, nil)
	for _, s := range []string{first, second} {
		if err := verify(during, s); err != nil {
			t.Errorf("during the overlap, a delivery does not verify with %s...: %v", s[:10], err)
		}
	}

	e.clock.Advance(time.Hour + time.Second)
	if got, _ := e.store.Get(ctx, "acme", w.ID); got.PreviousSecretExpiresAt != nil {
		t.Errorf("the overlap is over, yet the webhook shows %v", got.PreviousSecretExpiresAt)
	}
	after := e.emit(d, "acme", "a1", events.UserAdded, nil)
	if err := verify(after, second); err != nil {
		t.Errorf("after the overlap, the new secret: %v", err)
	}
	if err := verify(after, first); !errors.Is(err, webhooks.ErrBadSignature) {
		t.Errorf("after the overlap, the old secret still verifies: %v", err)
	}

	_, third, err := e.store.RotateSecret(ctx, "acme", w.ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	now := e.emit(d, "acme", "a1", events.UserAdded, nil)
	if err := verify(now, third); err != nil {
		t.Errorf("after a rotation without overlap, the new secret: %v", err)
	}
	if err := verify(now, second); !errors.Is(err, webhooks.ErrBadSignature) {
		t.Errorf("a rotation without overlap left the old secret signing: %v", err)
	}
	// Neither secret is stored in the clear.
	keys, _ := e.rdb.Keys(ctx, e.rdb.Prefix+"*").Result()
	for _, k := range keys {
		if v, _ := e.rdb.Get(ctx, k).Result(); strings.Contains(v, strings.TrimPrefix(second, "whsec_")) || strings.Contains(v, strings.TrimPrefix(third, "whsec_")) {
			t.Errorf("Redis key %s holds a secret in plain text", k)
		}
	}
}

// The previous secret survives a key rotation, sealed with the new key.
func TestWebhookRotateKeysKeepsPreviousSecret(t *testing.T) {
	t.Parallel()
	e := newEnv(t, true, nil)
	rcv := newReceiver(t, nil)
	ctx := context.Background()
	w, first, err := e.store.Create(ctx, "acme", webhooks.NewWebhook{URL: rcv.URL, Events: []string{"*"}})
	if err != nil {
		t.Fatal(err)
	}
	_, second, err := e.store.RotateSecret(ctx, "acme", w.ID, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	k2 := newKey(t, "k2")
	if n, err := e.newStore(newRing(t, k2, e.k1), true, nil).RotateKeys(ctx); err != nil || n != 1 {
		t.Fatalf("RotateKeys = %d, %v", n, err)
	}
	onlyNew := e.newStore(newRing(t, k2), true, nil)
	e.startWorker(onlyNew, nil)
	ev := e.emit(e.dispatcher(onlyNew), "acme", "a1", events.UserAdded, nil)
	e.delivery("acme", w.ID, ev.ID, func(d webhooks.Delivery) bool { return d.Status == webhooks.Succeeded })
	q := rcv.got()[0]
	for _, s := range []string{first, second} {
		if err := webhooks.Verify(s, q.header.Get(webhooks.SignatureHeader), q.body, e.clock.Now(), webhooks.DefaultTolerance); err != nil {
			t.Errorf("after the key rotation, %s... does not verify: %v", s[:10], err)
		}
	}
}

// The client does not follow a redirect: the target it names gets nothing, and the delivery is a
// failed attempt with the redirect's status.
func TestWebhookDeliveryDoesNotFollowRedirects(t *testing.T) {
	t.Parallel()
	e := newEnv(t, true, nil)
	elsewhere := newReceiver(t, nil)
	redirector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, elsewhere.URL+"/stolen", http.StatusTemporaryRedirect)
	}))
	t.Cleanup(redirector.Close)
	w := e.hook("acme", redirector.URL)
	e.startWorker(e.store, nil)
	ev := e.emit(e.dispatcher(e.store), "acme", "a1", events.UserAdded, nil)
	d := e.delivery("acme", w.ID, ev.ID, func(d webhooks.Delivery) bool { return d.Attempts >= 1 && d.LastStatusCode != 0 })
	if d.Status != webhooks.Pending || d.LastStatusCode != http.StatusTemporaryRedirect {
		t.Errorf("delivery %+v: want pending after a 307", d)
	}
	if n := len(elsewhere.got()); n != 0 {
		t.Errorf("the redirect was followed: its target got %d requests", n)
	}
}

// A webhook made while http was allowed is not delivered over http once it no longer is.
func TestWebhookHTTPRefusedAtDelivery(t *testing.T) {
	t.Parallel()
	e := newEnv(t, true, nil)
	rcv := newReceiver(t, nil)
	w := e.hook("acme", rcv.URL)
	strict, err := webhooks.NewStore(webhooks.StoreOptions{Client: e.rdb, Prefix: e.rdb.Prefix, Ring: e.ring, AllowPrivate: true, Now: e.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := strict.Create(context.Background(), "acme", webhooks.NewWebhook{URL: rcv.URL, Events: []string{"*"}}); !errors.As(err, new(*webhooks.InvalidError)) {
		t.Errorf("an http webhook created without AllowHTTP: %v", err)
	}
	e.startWorker(strict, nil)
	ev := e.emit(e.dispatcher(strict), "acme", "a1", events.UserAdded, nil)
	d := e.delivery("acme", w.ID, ev.ID, func(d webhooks.Delivery) bool { return d.Attempts >= 1 })
	if d.Status != webhooks.Pending || !strings.Contains(d.LastError, "https") {
		t.Errorf("delivery %+v: want a failed attempt saying https is required", d)
	}
	if n := len(rcv.got()); n != 0 {
		t.Errorf("the http receiver got %d requests", n)
	}
}

// One tenant's hanging endpoints hold at most TenantConcurrency of a replica's workers: another
// tenant's delivery goes through while they hang. Without the cap, tenant A's twenty deliveries
// would take all ten workers until their timeout.
func TestWebhookTenantCannotTakeAllWorkers(t *testing.T) {
	t.Parallel()
	e := newEnv(t, true, nil)
	release := make(chan struct{})
	var inFlight, peak atomic.Int32
	arrived := make(chan struct{}, 100)
	tarpit := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := inFlight.Add(1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		arrived <- struct{}{}
		select {
		case <-release:
		case <-r.Context().Done():
		}
		inFlight.Add(-1)
	}))
	t.Cleanup(tarpit.Close)
	good := newReceiver(t, nil)
	ctx := context.Background()
	for i := range webhooks.MaxPerTenant {
		if _, _, err := e.store.Create(ctx, "tenant-a", webhooks.NewWebhook{URL: fmt.Sprintf("%s/hook%d", tarpit.URL, i), Events: []string{"*"}}); err != nil {
			t.Fatal(err)
		}
	}
	wb, _, err := e.store.Create(ctx, "tenant-b", webhooks.NewWebhook{URL: good.URL, Events: []string{"*"}})
	if err != nil {
		t.Fatal(err)
	}
	const perTenant = 3
	e.startWorker(e.store, func(o *webhooks.Options) {
		o.Concurrency, o.TenantConcurrency, o.Timeout = 10, perTenant, time.Minute
	})
	t.Cleanup(func() { close(release) }) // before the worker's shutdown waits for them
	d := e.dispatcher(e.store)
	e.emit(d, "tenant-a", "a1", events.UserAdded, nil) // twenty deliveries, all hanging
	for range perTenant {
		<-arrived
	}
	ev := e.emit(d, "tenant-b", "b1", events.UserAdded, nil)
	// Tenant A's requests still hang (nothing released them, their timeout is a minute away).
	e.delivery("tenant-b", wb.ID, ev.ID, func(d webhooks.Delivery) bool { return d.Status == webhooks.Succeeded })
	if p := peak.Load(); p > perTenant {
		t.Errorf("tenant A had %d deliveries in flight at once on one worker, want at most %d", p, perTenant)
	}
	if n := inFlight.Load(); n != perTenant {
		t.Errorf("%d of tenant A's deliveries in flight, want %d (they hang until released)", n, perTenant)
	}
}

// hook creates a webhook for every event type, failing the test if it cannot.
func (e *env) hook(tenant, url string) webhooks.Webhook {
	e.t.Helper()
	w, _, err := e.store.Create(context.Background(), tenant, webhooks.NewWebhook{URL: url, Events: []string{"*"}})
	if err != nil {
		e.t.Fatal(err)
	}
	return w
}
