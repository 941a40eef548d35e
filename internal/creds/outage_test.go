package creds_test

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/dirgate/dirgate/internal/creds"
	"github.com/dirgate/dirgate/internal/redistest"
	"github.com/dirgate/dirgate/internal/store"
)

// switchable fails every Redis command while down is set, as an unreachable Redis would.
type switchable struct{ down atomic.Bool }

var errUnreachable = &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}

func (s *switchable) DialHook(next redis.DialHook) redis.DialHook {
	return func(ctx context.Context, network, addr string) (net.Conn, error) { return next(ctx, network, addr) }
}

func (s *switchable) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if s.down.Load() {
			return errUnreachable
		}
		return next(ctx, cmd)
	}
}

func (s *switchable) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if s.down.Load() {
			return errUnreachable
		}
		return next(ctx, cmds)
	}
}

// TestStoreOutageServesLastKnownToken: while the store's Redis is unreachable, an account whose
// token this replica read before keeps getting it until it expires; others fail, and everything
// reads from Redis again when it returns.
func TestStoreOutageServesLastKnownToken(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 1)
	seen, tok := e.newAccount(t, "acme")
	unseen, _ := e.newAccount(t, "acme")
	opts, err := redis.ParseURL(redistest.URL())
	if err != nil {
		t.Fatal(err)
	}
	rc := redis.NewClient(opts)
	t.Cleanup(func() { rc.Close() })
	sw := &switchable{}
	rc.AddHook(sw)
	st, err := store.New(store.Options{Client: rc, Prefix: e.prefix, Ring: e.ring, Now: e.sim.Now})
	if err != nil {
		t.Fatal(err)
	}
	m := creds.New(creds.Options{
		Store: st, Refresher: e.refresher(t), Now: e.sim.Now,
		Logger: slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	ctx := t.Context()
	if got, err := m.TokenSource("acme", seen.ID).Token(ctx); err != nil || got.AccessToken != tok.AccessToken {
		t.Fatalf("Token with Redis up: %v", err)
	}

	sw.down.Store(true)
	for range 3 {
		got, err := m.TokenSource("acme", seen.ID).Token(ctx)
		if err != nil || got.AccessToken != tok.AccessToken {
			t.Fatalf("Token with Redis down, for an account read before: %v", err)
		}
	}
	if _, err := m.TokenSource("acme", unseen.ID).Token(ctx); !errors.Is(err, errUnreachable) {
		t.Errorf("Token with Redis down, for an account never read: %v; want the store's error", err)
	}
	if _, err := m.TokenSource("other", seen.ID).Token(ctx); err == nil {
		t.Error("another tenant got the account's last known token")
	}
	if n := strings.Count(e.logs.String(), "store unreachable"); n != 1 {
		t.Errorf("the outage was logged %d times, want once", n)
	}
	e.sim.Advance(time.Duration(tok.ExpiresIn+1) * time.Second)
	if _, err := m.TokenSource("acme", seen.ID).Token(ctx); err == nil {
		t.Error("an expired last known token was served")
	}

	sw.down.Store(false)
	if _, err := m.TokenSource("acme", seen.ID).Token(ctx); err != nil {
		t.Fatalf("Token after Redis returned: %v", err)
	}
	if !strings.Contains(e.logs.String(), "store reachable again") {
		t.Error("the end of the outage was not logged")
	}
	e.assertNoSecretsLogged(t, tok.AccessToken, tok.RefreshToken)
}
