package browsertest_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

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
