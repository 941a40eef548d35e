// Package browsertest drives Debian's headless Chromium from Go tests (chromedp), the way a person
// uses dirgate's pages, and keeps screenshots of them for people to look at.
//
// Chromium runs with the flags a closed network needs: it must make no request of its own (no
// component updates, no background networking), so every request it makes is one a page made.
package browsertest

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/target"
	"github.com/chromedp/chromedp"
)

// ExecPath finds Chromium: $DIRGATE_CHROMIUM, else chromium or chromium-browser on PATH.
func ExecPath() string {
	if p := os.Getenv("DIRGATE_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// New starts a headless Chromium for the test (closed at cleanup) and returns a context of its
// first tab. Without Chromium the test is skipped, or fails when CI=true.
func New(t testing.TB) context.Context {
	t.Helper()
	path := ExecPath()
	if path == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("Chromium is required under CI=true (.ci/run installs Debian's chromium)")
		}
		t.Skip("Chromium not installed (apt-get install chromium, or set DIRGATE_CHROMIUM)")
	}
	// A profile of its own, removed once Chromium has exited (t.TempDir would race its last writes).
	profile, err := os.MkdirTemp("", "dirgate-chromium-")
	if err != nil {
		t.Fatal(err)
	}
	// Third-party cookies blocked, as in browsers that block them (Safari, Firefox's strict mode,
	// Chrome's setting): dirgate's pages must work without cookies from other sites.
	if err := blockThirdPartyCookies(profile); err != nil {
		_ = os.RemoveAll(profile)
		t.Fatal(err)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.UserDataDir(profile),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-default-apps", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("metrics-recording-only", true),
		chromedp.Flag("password-store", "basic"),
		chromedp.WindowSize(1280, 900),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	var copts []chromedp.ContextOption
	if os.Getenv("DIRGATE_CHROMEDP_DEBUG") != "" {
		// Every DevTools message, for a test that hangs on the browser.
		copts = append(copts, chromedp.WithDebugf(t.Logf))
	}
	ctx, cancelCtx := chromedp.NewContext(actx, copts...)
	// Start the browser now, so that a test's first action is not charged with the start-up.
	stop := func() {
		_ = chromedp.Cancel(ctx) // closes the browser and waits for it
		cancelCtx()
		cancelAlloc()
		_ = os.RemoveAll(profile)
	}
	if err := chromedp.Run(ctx); err != nil {
		stop()
		t.Fatalf("starting Chromium (%s): %v", path, err)
	}
	t.Cleanup(stop)
	return ctx
}

// attach attaches ctx's tab, if no action has run in it yet, with ctx itself. chromedp ties a tab's
// event loop to the context of the first Run in it: attached under a deadline, the loop stops when
// that Run returns, and every later action in the tab waits forever for its answer (this is what
// made actions in a popup, attached with chromedp.WithTargetID, hang).
func attach(ctx context.Context) error {
	if c := chromedp.FromContext(ctx); c != nil && c.Target == nil {
		return chromedp.Run(ctx)
	}
	return nil
}

// blockThirdPartyCookies sets the profile's cookie setting to "block third-party cookies" (the
// setting a person chooses in chrome://settings/cookies), before Chromium first reads it.
func blockThirdPartyCookies(profile string) error {
	dir := filepath.Join(profile, "Default")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	// cookie_controls_mode 1 is "block third-party cookies"; block_third_party_cookies is the
	// older spelling of the same setting.
	prefs := `{"profile":{"cookie_controls_mode":1,"block_third_party_cookies":true}}`
	return os.WriteFile(filepath.Join(dir, "Preferences"), []byte(prefs), 0o600)
}

// Popup runs click in ctx's tab and returns a context driving the window it opens on a URL that
// starts with prefix, attached and brought to the front (a background window is not painted: no
// clicks, no screenshots). The window is closed when the test ends.
func Popup(t testing.TB, ctx context.Context, prefix string, click chromedp.Action) context.Context {
	t.Helper()
	// WaitNewTarget also reports targets whose info changes: a window of an earlier Popup on the
	// same prefix (closing, say) would be taken for the new one, and driving it then hangs. Only
	// a target that did not exist before the click is the new window.
	before, err := chromedp.Targets(ctx)
	if err != nil {
		t.Fatalf("browser: listing windows: %v", err)
	}
	known := map[target.ID]bool{}
	for _, info := range before {
		known[info.TargetID] = true
	}
	ch := chromedp.WaitNewTarget(ctx, func(info *target.Info) bool {
		return !known[info.TargetID] && strings.HasPrefix(info.URL, prefix)
	})
	Run(t, ctx, click)
	var id target.ID
	select {
	case id = <-ch:
	case <-time.After(20 * time.Second):
		Screenshot(t, ctx, filepath.Base(t.Name())+"-no-popup")
		t.Fatalf("no window opened on %s", prefix)
	}
	pctx, cancel := chromedp.NewContext(ctx, chromedp.WithTargetID(id))
	t.Cleanup(cancel)
	Run(t, pctx, page.BringToFront())
	return pctx
}

// guard bounds one Run or CheckPage: it only stops a hang. It is not a speed requirement: the
// accessibility tree of the API docs page (every operation of openapi.yaml) has taken over 30 s
// to compute on a loaded CI machine running the -race suite.
const guard = 2 * time.Minute

// Run runs actions in ctx with a deadline of guard, failing the test (after a screenshot named
// "<test>-failure") when they fail.
func Run(t testing.TB, ctx context.Context, actions ...chromedp.Action) {
	t.Helper()
	if err := attach(ctx); err != nil {
		t.Fatalf("browser: attaching the tab: %v", err)
	}
	rctx, cancel := context.WithTimeout(ctx, guard)
	defer cancel()
	if err := chromedp.Run(rctx, actions...); err != nil {
		Screenshot(t, ctx, filepath.Base(t.Name())+"-failure")
		t.Fatalf("browser: %v", err)
	}
}

// Dir is where screenshots go: $DIRGATE_SCREENSHOTS, else artifacts/screenshots at the module
// root (ignored by git).
func Dir() string {
	if d := os.Getenv("DIRGATE_SCREENSHOTS"); d != "" {
		return d
	}
	dir, _ := os.Getwd()
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return filepath.Join(d, "artifacts", "screenshots")
		}
		if filepath.Dir(d) == d {
			return filepath.Join(dir, "artifacts", "screenshots")
		}
	}
}

// Screenshot saves the whole page of ctx's tab as Dir()/name.png and logs where.
func Screenshot(t testing.TB, ctx context.Context, name string) {
	t.Helper()
	var png []byte
	if err := attach(ctx); err != nil {
		t.Logf("screenshot %s: %v", name, err)
		return
	}
	sctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	// Quality 100 makes a PNG; below it chromedp asks Chromium for a JPEG.
	if err := chromedp.Run(sctx, chromedp.FullScreenshot(&png, 100)); err != nil {
		t.Logf("screenshot %s: %v", name, err)
		return
	}
	dir := Dir()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Logf("screenshot %s: %v", name, err)
		return
	}
	path := filepath.Join(dir, name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Logf("screenshot %s: %v", name, err)
		return
	}
	t.Logf("screenshot: %s", path)
}
