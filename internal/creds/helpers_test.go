package creds_test

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/dirgate/dirgate/adapters/podio"
	"github.com/dirgate/dirgate/adapters/podio/podiosim"
	"github.com/dirgate/dirgate/internal/creds"
	"github.com/dirgate/dirgate/internal/crypt"
	"github.com/dirgate/dirgate/internal/redistest"
	"github.com/dirgate/dirgate/internal/store"
	"github.com/dirgate/dirgate/internal/testlog"
)

const tokenRoute = "POST /oauth/token"

// env is one simulated Podio and N gateway "replicas": each with its own Redis client and
// store.Store, all on the same Redis server and key prefix, sharing the encryption keys.
type env struct {
	sim    *podiosim.Server
	url    string
	hc     *http.Client
	stores []*store.Store
	prefix string
	ring   *crypt.Ring
	redis  *redistest.Redis
	logs   *syncBuffer
}

type syncBuffer = testlog.Buffer

func newEnv(t *testing.T, replicas int) *env {
	t.Helper()
	sim := podiosim.New(podiosim.Config{GeneralLimit: 1 << 30}) // refresh rotation is on by default
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	tr := &http.Transport{MaxIdleConns: 500, MaxIdleConnsPerHost: 500}
	t.Cleanup(tr.CloseIdleConnections)
	k, err := crypt.GenerateKey("k1")
	if err != nil {
		t.Fatal(err)
	}
	ring, err := crypt.NewRing([]crypt.Key{k})
	if err != nil {
		t.Fatal(err)
	}
	e := &env{sim: sim, url: srv.URL, hc: &http.Client{Transport: tr, Timeout: 30 * time.Second}, logs: &syncBuffer{}, ring: ring}
	for i := range replicas {
		r := redistest.New(t) // its own connection pool; only the first one's prefix is used
		if i == 0 {
			e.redis, e.prefix = r, r.Prefix
		}
		s, err := store.New(store.Options{Client: r.Client, Prefix: e.prefix, Ring: ring, Now: sim.Now})
		if err != nil {
			t.Fatal(err)
		}
		e.stores = append(e.stores, s)
	}
	return e
}

// podioClient returns a Podio client for the simulator taking tokens from ts.
func (e *env) podioClient(t *testing.T, ts podio.TokenSource) *podio.Client {
	t.Helper()
	c := podio.NewClient(e.hc, ts)
	c.OAuthConfig = podio.OAuthConfig{ClientID: "demo-client", ClientSecret: "demo-secret"}
	c, err := c.WithBaseURL(e.url + "/")
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// simRefresher refreshes through the real Podio client against the simulator. x/oauth2 computes
// Expiry from the process clock; it is moved onto the simulator's clock, which the tests advance.
type simRefresher struct {
	oauth *podio.OAuthService
	sim   *podiosim.Server
}

func (r simRefresher) Refresh(ctx context.Context, refreshToken string) (*podio.Token, error) {
	tok, err := r.oauth.Refresh(ctx, refreshToken)
	if err != nil {
		return nil, err
	}
	if !tok.Expiry.IsZero() {
		tok.Expiry = r.sim.Now().Add(time.Until(tok.Expiry))
	}
	return tok, nil
}

func (e *env) refresher(t *testing.T) simRefresher {
	return simRefresher{oauth: e.podioClient(t, nil).OAuth, sim: e.sim}
}

// manager builds replica i's Manager; opts may set Margin, LockTTL, LockWait or Refresher.
func (e *env) manager(t *testing.T, i int, opts creds.Options) *creds.Manager {
	t.Helper()
	opts.Store = e.stores[i]
	if opts.Refresher == nil {
		opts.Refresher = e.refresher(t)
	}
	opts.Now = e.sim.Now
	opts.Logger = slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	return creds.New(opts)
}

// newAccount links admin@demo.example with freshly issued tokens.
func (e *env) newAccount(t *testing.T, tenant string) (store.Account, podiosim.Token) {
	t.Helper()
	tok, err := e.sim.IssueToken("demo-client", "admin@demo.example")
	if err != nil {
		t.Fatal(err)
	}
	a, err := e.stores[0].CreateAccount(t.Context(), store.Account{
		Tenant: tenant, GrantType: "password", PodioUserID: tok.UserID, Name: "Admin", Email: "admin@demo.example",
	}, store.Credentials{
		AccessToken: tok.AccessToken, RefreshToken: tok.RefreshToken,
		Expiry: e.sim.Now().Add(time.Duration(tok.ExpiresIn) * time.Second), Scope: "global:all",
	})
	if err != nil {
		t.Fatal(err)
	}
	return a, tok
}

func (e *env) tokenCalls() int { return e.sim.Calls()[tokenRoute] }

func (e *env) load(t *testing.T, tenant, id string) (store.Account, store.Credentials) {
	t.Helper()
	a, c, err := e.stores[0].LoadCredentials(t.Context(), tenant, id)
	if err != nil {
		t.Fatal(err)
	}
	return a, c
}

// assertNoSecretsLogged fails if any of the secrets appears in the captured logs.
func (e *env) assertNoSecretsLogged(t *testing.T, secrets ...string) {
	t.Helper()
	logs := e.logs.String()
	for _, s := range secrets {
		if s != "" && strings.Contains(logs, s) {
			t.Errorf("a token value appears in the logs")
		}
	}
}
