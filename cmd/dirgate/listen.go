package main

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/dirgate/dirgate/internal/config"
	"github.com/dirgate/dirgate/internal/events"
)

// serverLimits are the deadlines and sizes of a listener's http.Server: what keeps a client
// that trickles a request, stops reading an answer or idles on a keep-alive connection from
// holding a goroutine and a connection forever.
type serverLimits struct {
	// Read bounds reading a whole request (headers and body); Write bounds an answer from the end
	// of the request headers (streamed answers extend it chunk by chunk, see
	// api.Options.StreamTimeout); Idle bounds a keep-alive connection waiting for its next request.
	Read, Write, Idle time.Duration
	// MaxHeaderBytes bounds the request line and headers (larger: 431).
	MaxHeaderBytes int
}

// limitsFrom reads the limits from the configuration.
func limitsFrom(cfg config.Config) serverLimits {
	return serverLimits{Read: cfg.HTTPReadTimeout, Write: cfg.HTTPWriteTimeout, Idle: cfg.HTTPIdleTimeout,
		MaxHeaderBytes: cfg.HTTPMaxHeaderBytes}
}

// defaultLimits are the configuration's defaults, for listeners with no configuration of their
// own (the simulator, the bench's servers).
func defaultLimits() serverLimits {
	cfg, _ := config.Load(nil)
	return limitsFrom(cfg)
}

// maxReadHeaderTimeout bounds reading the request line and headers, within Read.
const maxReadHeaderTimeout = 10 * time.Second

// serveHTTP serves h on ln with the given limits until ctx ends, then shuts down gracefully: drain
// (if not nil) runs first (readiness turns false), then in-flight requests get up to grace to
// finish.
func serveHTTP(ctx context.Context, ln net.Listener, h http.Handler, drain func(), grace time.Duration, lim serverLimits) error {
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: min(maxReadHeaderTimeout, lim.Read),
		ReadTimeout:       lim.Read,
		WriteTimeout:      lim.Write,
		IdleTimeout:       lim.Idle,
		MaxHeaderBytes:    lim.MaxHeaderBytes,
		// The server's own complaints (a TLS probe, a broken client) carry client addresses
		// and raw input; they are not the gateway's log.
		ErrorLog: log.New(io.Discard, "", 0),
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
func serveAll(ctx context.Context, gw *gateway, ln, proxyLn net.Listener, grace time.Duration, lim serverLimits) error {
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
		errs[0] = serveHTTP(ctx, ln, gw.api, gw.api.Drain, grace, lim)
		cancel()
	})
	if proxyLn != nil {
		wg.Go(func() {
			errs[1] = serveHTTP(ctx, proxyLn, gw.api.ProxyRoot(), nil, grace, lim)
			cancel()
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}
