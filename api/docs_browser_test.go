package api_test

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	cdppage "github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/dirgate/dirgate/internal/browsertest"
)

// pageWatch records what a page does that a self-contained, strictly-policed page must not:
// requests to another origin, console errors, uncaught exceptions, CSP violations.
type pageWatch struct {
	mu       sync.Mutex
	origin   string
	requests []string
	problems []string
}

// watchPage starts recording ctx's tab; call before navigating.
func watchPage(ctx context.Context, origin string) (*pageWatch, chromedp.Action) {
	w := &pageWatch{origin: origin}
	chromedp.ListenTarget(ctx, func(ev any) {
		w.mu.Lock()
		defer w.mu.Unlock()
		switch ev := ev.(type) {
		case *network.EventRequestWillBeSent:
			w.requests = append(w.requests, ev.Request.URL)
		case *runtime.EventConsoleAPICalled:
			if ev.Type == runtime.APITypeError || ev.Type == runtime.APITypeAssert {
				var args []string
				for _, a := range ev.Args {
					args = append(args, string(a.Value)+a.Description)
				}
				w.problems = append(w.problems, "console."+string(ev.Type)+": "+strings.Join(args, " "))
			}
		case *runtime.EventExceptionThrown:
			w.problems = append(w.problems, "exception: "+ev.ExceptionDetails.Error())
		case *log.EventEntryAdded:
			// Chromium reports CSP violations ("Refused to apply inline style...") here.
			// Chromium asks for /favicon.ico by itself (no page links one); its 404 is not the page's.
			if ev.Entry.Source == log.SourceNetwork && strings.HasSuffix(ev.Entry.URL, "/favicon.ico") {
				return
			}
			if ev.Entry.Level == log.LevelError || ev.Entry.Level == log.LevelWarning {
				w.problems = append(w.problems, fmt.Sprintf("log %s/%s: %s %s", ev.Entry.Source, ev.Entry.Level, ev.Entry.Text, ev.Entry.URL))
			}
		}
	})
	// The listener is added by the browser, before any page script, so the policy does not
	// apply to it; it sees every violation the page causes, including those in workers' parents.
	const record = `window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", function (e) {
  window.__cspViolations.push(e.violatedDirective + " " + e.blockedURI + " " + (e.sourceFile || "") + ":" + e.lineNumber);
});`
	return w, chromedp.ActionFunc(func(ctx context.Context) error {
		if err := network.Enable().Do(ctx); err != nil {
			return err
		}
		if err := log.Enable().Do(ctx); err != nil {
			return err
		}
		_, err := cdppage.AddScriptToEvaluateOnNewDocument(record).Do(ctx)
		return err
	})
}

// check fails t for any request outside w.origin (data: and blob: stay in the page) and any
// recorded problem, plus the violations the page itself saw.
func (w *pageWatch) check(t *testing.T, ctx context.Context) {
	t.Helper()
	var violations []string
	browsertest.Run(t, ctx, chromedp.Evaluate(`window.__cspViolations || []`, &violations))
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, raw := range w.requests {
		u, err := url.Parse(raw)
		if err != nil {
			t.Errorf("request to unparsable URL %q", raw)
			continue
		}
		if u.Scheme == "data" || u.Scheme == "blob" {
			continue
		}
		if u.Scheme+"://"+u.Host != w.origin {
			t.Errorf("request to another origin: %s", raw)
		}
	}
	if len(w.requests) == 0 {
		t.Error("no requests recorded: is the network listener working?")
	}
	for _, p := range w.problems {
		t.Errorf("%s", p)
	}
	for _, v := range violations {
		t.Errorf("CSP violation: %s", v)
	}
}

// TestDocsInBrowser: /docs renders openapi.yaml's title and operations with the embedded Redoc,
// search works (its worker is allowed), and the page requests nothing from elsewhere and breaks
// no rule of its policy.
func TestDocsInBrowser(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	spec := loadSpec(t)
	title := spec.Info.Title
	summary := spec.Paths.Find("/link-tokens").Post.Summary // "Start a browser link"
	ctx := browsertest.New(t)
	w, enable := watchPage(ctx, h.url)

	hasText := func(sel, text string) string {
		return fmt.Sprintf(`Array.from(document.querySelectorAll(%q)).some(e => e.textContent.includes(%q))`, sel, text)
	}
	var docTitle string
	browsertest.Run(t, ctx,
		enable,
		chromedp.Navigate(h.url+"/docs"),
		// Redoc's heading of the API: "<title> (<version>)".
		chromedp.Poll(hasText("#redoc h1", title+" ("+spec.Info.Version+")"), nil),
		chromedp.Poll(hasText("#redoc h2", summary), nil),
		chromedp.Poll(hasText("#redoc [role=menuitem], #redoc label", summary), nil),
		chromedp.Title(&docTitle),
	)
	if docTitle != "dirgate API" {
		t.Errorf("document title %q", docTitle)
	}
	viewportScreenshot(t, ctx, "docs")
	browsertest.CheckPage(t, ctx, "docs")

	// Search runs in Redoc's worker: results prove the worker-src widening is the right one.
	browsertest.Run(t, ctx,
		chromedp.SendKeys(`#redoc input[placeholder="Search..."]`, "browser link", chromedp.ByQuery),
		chromedp.Poll(hasText(`#redoc [data-role="search:results"]`, summary), nil),
	)

	// A phone-sized viewport still renders (Redoc collapses its menu).
	browsertest.Run(t, ctx,
		chromedp.EmulateViewport(390, 844),
		chromedp.Navigate(h.url+"/docs"),
		chromedp.Poll(hasText("#redoc h2", summary), nil),
	)
	viewportScreenshot(t, ctx, "docs-narrow")
	w.check(t, ctx)
}

// viewportScreenshot saves what the window shows as browsertest.Dir()/name.png: the whole docs
// page is too tall for a full-page screenshot.
func viewportScreenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	var png []byte
	browsertest.Run(t, ctx, chromedp.CaptureScreenshot(&png))
	dir := browsertest.Dir()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", path)
}
