package api_test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/dirgate/dirgate/adapters/podio/podiosim"
	"github.com/dirgate/dirgate/internal/redistest"
	"github.com/dirgate/dirgate/internal/tenantauth"
)

// podioJS installs the pinned podio-js (testdata/podio-js/package-lock.json) into a cache
// directory keyed by the lock file, once, and returns the directory holding check.js.
func podioJS(t *testing.T) string {
	t.Helper()
	for _, tool := range []string{"node", "npm"} {
		if _, err := exec.LookPath(tool); err != nil {
			if redistest.InCI() {
				t.Fatalf("%s is required under CI=true (.ci/run installs nodejs and npm)", tool)
			}
			t.Skipf("%s not installed", tool)
		}
	}
	src := filepath.Join("testdata", "podio-js")
	lock, err := os.ReadFile(filepath.Join(src, "package-lock.json"))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(lock)
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	dir := filepath.Join(cache, "dirgate-test", "podio-js-"+hex.EncodeToString(sum[:8]))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"package.json", "package-lock.json", "check.js"} {
		b, err := os.ReadFile(filepath.Join(src, f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "podio-js", "package.json")); err != nil {
		cmd := exec.CommandContext(t.Context(), "npm", "ci", "--no-audit", "--no-fund", "--ignore-scripts")
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("npm ci: %v\n%s", err, out)
		}
	}
	return dir
}

// TestPodioSDKThroughRootListener points the official Podio SDK for JavaScript (podio-js, which
// replaces its API URL's path with the request path) at the root proxy listener, with an
// account-scoped token as its access token, and checks reads, writes, Podio's error classes, 420
// and an expired token, as the SDK reports them.
func TestPodioSDKThroughRootListener(t *testing.T) {
	t.Parallel()
	dir := podioJS(t)
	h, tok, acct := proxySetup(t, harnessOptions{})
	scoped := h.proxyToken(tok, acct)
	past, _ := tenantauth.NewMinter([]byte(testJWTSecret), "", "", func() time.Time { return time.Now().Add(-2 * time.Hour) })
	expired, _ := past.MintAccount("acme", acct, time.Hour)
	member, _ := h.sim.UserID("member@demo.example")
	if err := h.sim.AddFault(podiosim.Fault{Route: podiosim.RouteUserStatus, RateLimit: true, Times: 1}); err != nil {
		t.Fatal(err)
	}

	cmd := exec.CommandContext(t.Context(), "node", "check.js", h.replicas[0].proxyTS.URL, scoped, expired, strconv.FormatInt(member, 10))
	cmd.Dir = dir
	out, err := cmd.Output()
	if err != nil {
		stderr := ""
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("node check.js: %v\n%s%s", err, out, stderr)
	}
	type outcome struct {
		OK     bool            `json:"ok"`
		Error  string          `json:"error"`
		Status int             `json:"status"`
		Body   json.RawMessage `json:"body"`
	}
	var got map[string]outcome
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("check.js output: %v\n%s", err, out)
	}
	var orgs, members []any
	_ = json.Unmarshal(got["orgs"].Body, &orgs)
	_ = json.Unmarshal(got["members"].Body, &members)
	if !got["orgs"].OK || len(orgs) != 2 {
		t.Errorf("GET /org/: %+v", got["orgs"])
	}
	if !got["members"].OK || len(members) != 5 {
		t.Errorf("GET /org/3001/member/ with limit 5: %+v", got["members"])
	}
	for _, k := range []string{"add", "update", "end"} {
		if !got[k].OK {
			t.Errorf("%s: %+v", k, got[k])
		}
	}
	for k, want := range map[string]struct {
		class  string
		status int
	}{
		"notFound":    {"PodioNotFoundError", 404},
		"badRequest":  {"PodioBadRequestError", 400},
		"rateLimited": {"PodioRateLimitError", 420},
		"expired":     {"PodioAuthorizationError", 401},
	} {
		if got[k].OK || got[k].Error != want.class || got[k].Status != want.status {
			t.Errorf("%s: the SDK saw %+v, want %s %d", k, got[k], want.class, want.status)
		}
	}
	var body struct {
		ErrorDescription string `json:"error_description"`
	}
	_ = json.Unmarshal(got["expired"].Body, &body)
	if body.ErrorDescription != "expired_token" {
		t.Errorf("expired token body: %s", got["expired"].Body)
	}
}
