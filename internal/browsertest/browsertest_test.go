package browsertest_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/target"
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
	ch := chromedp.WaitNewTarget(ctx, func(info *target.Info) bool { return strings.HasPrefix(info.URL, popupSrv.URL) })
	browsertest.Run(t, ctx, chromedp.Click("#open", chromedp.ByID))
	var id target.ID
	select {
	case id = <-ch:
	case <-time.After(20 * time.Second):
		t.Fatal("no popup opened")
	}
	pctx, cancel := chromedp.NewContext(ctx, chromedp.WithTargetID(id))
	defer cancel()
	var out string
	browsertest.Run(t, pctx, page.BringToFront(), chromedp.WaitVisible("#b", chromedp.ByID))
	browsertest.Run(t, pctx, chromedp.Click("#b", chromedp.ByID))
	browsertest.Run(t, pctx, chromedp.Text("#out", &out, chromedp.ByID))
	if out != "pressed" {
		t.Errorf("popup text %q, want pressed", out)
	}
}
