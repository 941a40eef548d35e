package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/alicebob/miniredis/v2"

	"github.com/dirgate/dirgate/adapters/podio/podiosim"
	"github.com/dirgate/dirgate/internal/config"
	"github.com/dirgate/dirgate/internal/tenantauth"
)

// Dev-only secrets, documented in README.md. dev mode is for one machine; never use them elsewhere
// (serve refuses to start without secrets of its own, and these are public).
const (
	devJWTSecret     = "dirgate-dev-jwt-secret-not-for-production"
	devEncryptionKey = "dev:ZGlyZ2F0ZS1kZXYtb25seS1lbmNyeXB0aW9uLWtleSE=" // base64 of "dirgate-dev-only-encryption-key!"
	devTenant        = "demo-tenant"
)

// runDev implements "dirgate dev": an embedded Redis-compatible server, the Podio simulator and the
// gateway in one process, with nothing installed but Go.
func runDev(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("dev", "Runs the gateway, the Podio simulator (demo dataset) and an embedded Redis in one process.", stderr)
	addr := fs.String("addr", "127.0.0.1:8080", "gateway listen address")
	simAddr := fs.String("sim-addr", "127.0.0.1:8081", "Podio simulator listen address")
	proxyAddr := fs.String("proxy-addr", "127.0.0.1:8082", "root proxy listener address (Podio's paths at the root, for Podio SDKs)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}

	mr := miniredis.NewMiniRedis()
	if err := mr.StartAddr("127.0.0.1:0"); err != nil {
		return fmt.Errorf("embedded redis: %w", err)
	}
	defer mr.Close()
	stopClock := runMiniredisClock(mr)
	defer stopClock()

	simLn, err := net.Listen("tcp", *simAddr)
	if err != nil {
		return fmt.Errorf("listen on --sim-addr %s: %w", *simAddr, err)
	}
	gwLn, err := net.Listen("tcp", *addr)
	if err != nil {
		simLn.Close()
		return fmt.Errorf("listen on --addr %s: %w", *addr, err)
	}
	proxyLn, err := net.Listen("tcp", *proxyAddr)
	if err != nil {
		simLn.Close()
		gwLn.Close()
		return fmt.Errorf("listen on --proxy-addr %s: %w", *proxyAddr, err)
	}
	simURL := "http://" + simLn.Addr().String()
	gwURL := "http://" + gwLn.Addr().String()

	cfg, err := config.Load(nil)
	if err != nil {
		return err
	}
	cfg.Addr = gwLn.Addr().String()
	cfg.ProxyAddr = proxyLn.Addr().String()
	cfg.PublicURL = gwURL
	cfg.RedisURL = "redis://" + mr.Addr() + "/0"
	cfg.JWTSecret = devJWTSecret
	cfg.EncryptionKeys = devEncryptionKey
	cfg.PodioClientID, cfg.PodioClientSecret = "demo-client", "demo-secret"
	cfg.PodioAPIURL, cfg.PodioAuthURL = simURL+"/", simURL+"/"
	cfg.AllowPasswordGrant = true
	// Webhook receivers in dev mode run on this machine.
	cfg.AllowPrivateHooks, cfg.AllowHTTPHooks = true, true

	log := newLogger(stderr, cfg.LogLevel)
	rc, err := redisClient(cfg)
	if err != nil {
		return err
	}
	gw, err := buildGateway(cfg, rc, log)
	if err != nil {
		rc.Close()
		return err
	}
	defer gw.Close()
	minter, err := tenantauth.NewMinter([]byte(devJWTSecret), "", "", nil)
	if err != nil {
		return err
	}
	token, err := minter.Mint(devTenant, 24*time.Hour)
	if err != nil {
		return err
	}
	printDevBanner(stdout, gwURL, simURL, "http://"+proxyLn.Addr().String(), token)

	var wg sync.WaitGroup
	errs := make([]error, 2)
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	wg.Go(func() {
		errs[0] = serveHTTP(runCtx, simLn, podiosim.New(podiosim.Config{}), nil, 5*time.Second, defaultLimits())
		cancel()
	})
	wg.Go(func() {
		errs[1] = serveAll(runCtx, gw, gwLn, proxyLn, cfg.ShutdownTimeout, limitsFrom(cfg))
		cancel()
	})
	wg.Wait()
	return errors.Join(errs...)
}

// runMiniredisClock makes the embedded server's key expiry and TIME follow the wall clock:
// miniredis only moves time when told to, and link tokens, OAuth states and locks rely on TTLs.
func runMiniredisClock(mr *miniredis.Miniredis) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	last := time.Now()
	mr.SetTime(last)
	wg.Go(func() {
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case now := <-t.C:
				mr.SetTime(now)
				mr.FastForward(now.Sub(last))
				last = now
			}
		}
	})
	return func() { close(done); wg.Wait() }
}

// printDevBanner prints the ready token and a shell block that works as printed.
func printDevBanner(w io.Writer, gwURL, simURL, proxyURL, token string) {
	fmt.Fprintf(w, `dirgate dev is running (embedded Redis, Podio simulator, gateway). Dev-only secrets: never use them elsewhere.

  gateway         %[1]s   (OpenAPI: %[1]s/openapi.yaml, API docs: %[1]s/docs)
  Podio simulator %[2]s   (control API: %[2]s/_sim/state)
  root proxy      %[5]s   (Podio's paths, for Podio SDKs with an account-scoped token)
  tenant          %[4]s

Copy and paste:

# --- dirgate dev quickstart ---
export DIRGATE_TOKEN='%[3]s'
# Link the demo Podio admin server-side (password grant; enabled in dev mode) and keep its id:
LINKED=$(curl -s -X POST %[1]s/integrated-accounts -H "Authorization: Bearer $DIRGATE_TOKEN" -H 'Content-Type: application/json' -d '{"grant_type":"password","username":"admin@demo.example","password":"demo"}')
echo "$LINKED"
export DIRGATE_ACCOUNT=$(echo "$LINKED" | sed -n 's/^{"id":"\([^"]*\)".*/\1/p')
# List the tenant's integrated accounts:
curl -s %[1]s/integrated-accounts -H "Authorization: Bearer $DIRGATE_TOKEN"
# List the users of the linked person's organizations, 5 per page (pass next_cursor for the next page):
curl -s "%[1]s/unified/user-directory/users?integrated_account_id=$DIRGATE_ACCOUNT&limit=5&ignore_remote_data=true" -H "Authorization: Bearer $DIRGATE_TOKEN"
# List the workspaces of organization 3001 (a workspace picker's data):
curl -s "%[1]s/unified/user-directory/workspaces?integrated_account_id=$DIRGATE_ACCOUNT&organization_id=3001&ignore_remote_data=true" -H "Authorization: Bearer $DIRGATE_TOKEN"
# Or link in a browser: create a link token, then open its link_url (sign in as admin@demo.example / demo):
curl -s -X POST %[1]s/link-tokens -H "Authorization: Bearer $DIRGATE_TOKEN" -H 'Content-Type: application/json' -d '{"app_name":"My App"}'
# Call any Podio API through the proxy; dirgate adds the account's Podio credentials:
curl -s %[1]s/proxy/$DIRGATE_ACCOUNT/org/ -H "Authorization: Bearer $DIRGATE_TOKEN"
# --- end ---

Mint another tenant's token with: go run ./cmd/dirgate token --tenant other-tenant
`, gwURL, simURL, token, devTenant, proxyURL)
}
