package main

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/dirgate/dirgate/internal/events"
)

// serveHTTP serves h on ln until ctx ends, then shuts down gracefully: drain (if not nil) runs
// first (readiness turns false), then in-flight requests get up to grace to finish.
func serveHTTP(ctx context.Context, ln net.Listener, h http.Handler, drain func(), grace time.Duration) error {
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	}
	if drain != nil {
		drain()
	}
	sctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shut down %s: %w", ln.Addr(), err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve %s: %w", ln.Addr(), err)
	}
	return nil
}

// consumerName names this process in the events consumer group: host, pid and a random part (a
// restarted process is a new member; the old one's unacknowledged events are claimed).
func consumerName() string {
	host, _ := os.Hostname()
	var b [4]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%s-%d-%s", cmp.Or(host, "dirgate"), os.Getpid(), hex.EncodeToString(b[:]))
}

// serveAll serves the API on ln and, when proxyLn is not nil, the root proxy listener on it, until
// ctx ends or either fails; both then shut down gracefully. The job workers and the change poller
// run meanwhile.
func serveAll(ctx context.Context, gw *gateway, ln, proxyLn net.Listener, grace time.Duration) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if gw.jobs != nil {
		if err := gw.jobs.Start(); err != nil {
			return err
		}
		// Jobs this replica was running go back to the queue for another replica.
		defer gw.jobs.Shutdown()
	}
	if gw.hookWorker != nil {
		if err := gw.hookWorker.Start(); err != nil {
			return err
		}
		// Attempts in flight finish; queued deliveries wait in Redis for any replica.
		defer gw.hookWorker.Shutdown()
	}
	var wg sync.WaitGroup
	if gw.poller != nil {
		// A poll cut short by shutdown leaves its account due, for another replica.
		wg.Go(func() { gw.poller.Run(ctx) })
	}
	if gw.hookDispatcher != nil && gw.events != nil {
		// This replica's member of the consumer group: each event reaches one replica's
		// dispatcher, and one a dead replica had taken is claimed by another.
		c := &events.Consumer{Log: gw.events, Group: "webhooks", Name: consumerName(), Handle: gw.hookDispatcher.Handle}
		wg.Go(func() { _ = c.Run(ctx) })
	}
	errs := make([]error, 2)
	wg.Go(func() {
		errs[0] = serveHTTP(ctx, ln, gw.api, gw.api.Drain, grace)
		cancel()
	})
	if proxyLn != nil {
		wg.Go(func() {
			errs[1] = serveHTTP(ctx, proxyLn, gw.api.ProxyRoot(), nil, grace)
			cancel()
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}
