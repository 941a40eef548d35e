package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/dirgate/dirgate/internal/config"
	"github.com/dirgate/dirgate/internal/crypt"
	"github.com/dirgate/dirgate/internal/redistest"
	"github.com/dirgate/dirgate/internal/store"
	"github.com/dirgate/dirgate/internal/webhooks"
)

func ringWith(t *testing.T, keys ...crypt.Key) *crypt.Ring {
	t.Helper()
	ring, err := crypt.NewRing(keys)
	if err != nil {
		t.Fatal(err)
	}
	return ring
}

// TestRotateKeysCommand: credentials sealed under the old key are re-sealed under the new one, so
// a ring holding only the new key reads them all afterwards.
func TestRotateKeysCommand(t *testing.T) {
	rdb := redistest.New(t)
	ctx := context.Background()
	oldKey, _ := crypt.GenerateKey("old")
	newKey, _ := crypt.GenerateKey("new")
	storeWith := func(keys ...crypt.Key) *store.Store {
		st, err := store.New(store.Options{Client: rdb.Client, Prefix: rdb.Prefix, Ring: ringWith(t, keys...)})
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	old := storeWith(oldKey)
	var ids []string
	for i := range 3 {
		a, err := old.CreateAccount(ctx, store.Account{Tenant: "tenant-a", Provider: "podio", Status: store.StatusActive,
			GrantType: "password", PodioUserID: int64(i + 1)},
			store.Credentials{AccessToken: "access-" + string(rune('a'+i)), RefreshToken: "refresh", Expiry: time.Now().Add(time.Hour)})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, a.ID)
	}
	hooks, err := webhooks.NewStore(webhooks.StoreOptions{Client: rdb.Client, Prefix: rdb.Prefix, Ring: ringWith(t, oldKey), AllowPrivate: true})
	if err != nil {
		t.Fatal(err)
	}
	hook, _, err := hooks.Create(ctx, "tenant-a", webhooks.NewWebhook{URL: "https://hooks.example.com/", Events: []string{"*"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range config.Vars() {
		t.Setenv(v.Name, "")
		os.Unsetenv(v.Name)
	}
	t.Setenv("DIRGATE_REDIS_URL", redistest.URL())
	t.Setenv("DIRGATE_REDIS_PREFIX", rdb.Prefix)
	t.Setenv("DIRGATE_ENCRYPTION_KEYS", newKey.String()+","+oldKey.String())

	var out, errOut bytes.Buffer
	if code := run(ctx, []string{"rotate-keys"}, &out, &errOut); code != 0 {
		t.Fatalf("rotate-keys exit code %d: %s", code, errOut.String())
	}
	if !strings.Contains(out.String(), "re-encrypted 3 records and 1 webhook secrets") {
		t.Errorf("rotate-keys said %q, want 3 records and 1 webhook secret", out.String())
	}
	var rec struct{ Secret string }
	if err := json.Unmarshal([]byte(rdb.Get(ctx, rdb.Prefix+"{wh:"+hook.ID+"}").Val()), &rec); err != nil {
		t.Fatal(err)
	}
	if kid, _ := crypt.SealedKeyID(rec.Secret); kid != "new" {
		t.Errorf("the webhook secret is sealed under %q, want the new key", kid)
	}
	onlyNew := storeWith(newKey)
	for i, id := range ids {
		_, c, err := onlyNew.LoadCredentials(ctx, "tenant-a", id)
		if err != nil || c.AccessToken != "access-"+string(rune('a'+i)) {
			t.Errorf("account %s under the new key only: %v (access %q)", id, err, c.AccessToken)
		}
	}
	if strings.Contains(out.String()+errOut.String(), newKey.String()) {
		t.Error("rotate-keys printed key material")
	}
	// A second run has nothing left to do.
	out.Reset()
	if code := run(ctx, []string{"rotate-keys"}, &out, io.Discard); code != 0 || !strings.Contains(out.String(), "re-encrypted 0 records and 0 webhook secrets") {
		t.Errorf("second run: exit %d, %q", code, out.String())
	}
}
