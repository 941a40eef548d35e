package browsertest_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/dirgate/dirgate/internal/browsertest"
)

func TestBrowserRendersAndScreenshots(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `<!doctype html><title>probe</title><button id="b">press</button><p id="out"></p>`+
			`<script>document.getElementById("b").onclick=()=>{document.getElementById("out").textContent="pressed"}</script>`)
	}))
	defer srv.Close()
	t.Setenv("DIRGATE_SCREENSHOTS", t.TempDir())
	ctx := browsertest.New(t)
	var title, out string
	browsertest.Run(t, ctx,
		chromedp.Navigate(srv.URL),
		chromedp.Title(&title),
		chromedp.Click("#b", chromedp.ByID),
		chromedp.Text("#out", &out, chromedp.ByID),
	)
	if title != "probe" || out != "pressed" {
		t.Errorf("title %q, text %q", title, out)
	}
	browsertest.Screenshot(t, ctx, "probe")
	if fi, err := os.Stat(filepath.Join(browsertest.Dir(), "probe.png")); err != nil || fi.Size() == 0 {
		t.Errorf("no screenshot: %v", err)
	}
}

// TestPopupAcrossRuns: a window opened by a page, attached by target id, answers actions over
// several Runs. chromedp ties a tab's event loop to the context of its first Run; Run used to give
// that first Run its own deadline, and every later action in the popup then waited forever.
func TestPopupAcrossRuns(t *testing.T) {
	popupSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `<!doctype html><title>popup</title><button id="b">press</button><p id="out"></p>`+
			`<script>document.getElementById("b").onclick=()=>{document.getElementById("out").textContent="pressed"}</script>`)
	}))
	defer popupSrv.Close()
	opener := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `<!doctype html><title>opener</title><button id="open">open</button>`+
			`<script>document.getElementById("open").onclick=()=>{window.open(%q, "p", "popup")}</script>`, popupSrv.URL)
	}))
	defer opener.Close()
	t.Setenv("DIRGATE_SCREENSHOTS", t.TempDir())
	ctx := browsertest.New(t)
	browsertest.Run(t, ctx, chromedp.Navigate(opener.URL), chromedp.WaitVisible("#open", chromedp.ByID))
	pctx := browsertest.Popup(t, ctx, popupSrv.URL, chromedp.Click("#open", chromedp.ByID))
	var out string
	browsertest.Run(t, pctx, chromedp.WaitVisible("#b", chromedp.ByID))
	browsertest.Run(t, pctx, chromedp.Click("#b", chromedp.ByID))
	browsertest.Run(t, pctx, chromedp.Text("#out", &out, chromedp.ByID))
	if out != "pressed" {
		t.Errorf("popup text %q, want pressed", out)
	}
}

// TestThirdPartyCookiesBlocked: a cookie set by a frame from another site is not sent back to that
// site, so a page that works in these tests does not rely on cookies from other sites. (This
// Chromium blocks them by default too; with cookie_controls_mode 0 in the profile the frame's
// second request carries the cookie and this test fails.)
func TestThirdPartyCookiesBlocked(t *testing.T) {
	var mu sync.Mutex
	sent := map[string]string{} // the Cookie header of each numbered request to the embedded site
	embedded := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/favicon.ico" { // Chromium asks for it on top-level visits
			http.NotFound(w, r)
			return
		}
		mu.Lock()
		sent[r.URL.Path] = r.Header.Get("Cookie")
		mu.Unlock()
		http.SetCookie(w, &http.Cookie{Name: "probe", Value: "1", Path: "/", Secure: true, SameSite: http.SameSiteNoneMode})
		fmt.Fprint(w, `<!doctype html><title>embedded</title>`)
	}))
	defer embedded.Close()
	// 127.0.0.1 and localhost are different sites: the frame below is a third party.
	frameURL := strings.Replace(embedded.URL, "127.0.0.1", "localhost", 1)
	top := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `<!doctype html><title>top</title><iframe id="f" src=%q></iframe>`, frameURL+"/"+r.URL.Query().Get("n"))
	}))
	defer top.Close()
	ctx := browsertest.New(t)
	browsertest.Run(t, ctx,
		chromedp.Navigate(top.URL+"/?n=1"), chromedp.WaitReady("#f", chromedp.ByID),
		chromedp.Navigate(top.URL+"/?n=2"), chromedp.WaitReady("#f", chromedp.ByID),
		// The same site, visited directly, is a first party: its cookie comes back. (So the
		// cookie itself is one Chromium accepts, and only the frame's requests go without it.)
		chromedp.Navigate(frameURL+"/3"), chromedp.Navigate(frameURL+"/4"),
	)
	// Each page has loaded once its request was answered; wait for the last to be recorded.
	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		n := len(sent)
		mu.Unlock()
		if n >= 4 || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(sent) != 4 {
		t.Fatalf("the embedded site got %q, want requests for /1 to /4", sent)
	}
	if sent["/2"] != "" {
		t.Errorf("the third-party frame's second request carried cookies %q: third-party cookies are not blocked", sent["/2"])
	}
	if sent["/4"] != "probe=1" {
		t.Errorf("the first-party visit carried cookies %q, want probe=1: the probe cookie is never stored, so the check above proves nothing", sent["/4"])
	}
}

// recorder is a testing.TB that keeps the errors reported to it instead of failing the test.
type recorder struct {
	testing.TB
	errs []string
}

func (r *recorder) Errorf(format string, args ...any) {
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}

func TestCheckPage(t *testing.T) {
	pages := map[string]string{
		"/good": `<!doctype html><html lang="en"><meta name="viewport" content="width=device-width">
<title>good</title><label for="q">Search</label><input id="q"><button>Go</button>
<img alt="Logo" src="data:image/gif;base64,R0lGODlhAQABAAAAACw="><input type="checkbox" aria-label="Sales">
<pre style="overflow-x:auto">` + strings.Repeat("wide ", 200) + `</pre></html>`,
		"/bad": `<!doctype html><html><meta name="viewport" content="width=device-width">
<input id="q"><button></button><img src="data:image/gif;base64,R0lGODlhAQABAAAAACw=" width="20" height="20">
<div style="width:600px">wide</div></html>`,
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, pages[r.URL.Path])
	}))
	defer srv.Close()
	ctx := browsertest.New(t)

	browsertest.Run(t, ctx, chromedp.Navigate(srv.URL+"/good"))
	good := &recorder{TB: t}
	browsertest.CheckPage(good, ctx, "good")
	if len(good.errs) != 0 {
		t.Errorf("a good page fails the check: %q", good.errs)
	}

	browsertest.Run(t, ctx, chromedp.Navigate(srv.URL+"/bad"))
	bad := &recorder{TB: t}
	browsertest.CheckPage(bad, ctx, "bad")
	all := strings.Join(bad.errs, "\n")
	for _, want := range []string{"no lang", "no title", `role "textbox"`, `role "button"`, `role "image"`, "div (608 px)"} {
		if !strings.Contains(all, want) {
			t.Errorf("the bad page's failures miss %q:\n%s", want, all)
		}
	}
	// The viewport is the window's again.
	var w int
	browsertest.Run(t, ctx, chromedp.Evaluate(`window.innerWidth`, &w))
	if w <= browsertest.PhoneWidth {
		t.Errorf("viewport %d px wide after the check, want the window's", w)
	}
}
