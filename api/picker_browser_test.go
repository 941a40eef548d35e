package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"html"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	cdppage "github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"github.com/google/go-cmp/cmp"

	"github.com/dirgate/dirgate/internal/browsertest"
	"github.com/dirgate/dirgate/unified"
)

// requestLog records the URL of every request Chromium makes in the targets it listens to.
type requestLog struct {
	mu   sync.Mutex
	urls []string
}

func (l *requestLog) add(u string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.urls = append(l.urls, u)
}

// listen records the network requests of ctx's target (network.Enable must run in it).
func (l *requestLog) listen(ctx context.Context) {
	chromedp.ListenTarget(ctx, func(ev any) {
		if e, ok := ev.(*network.EventRequestWillBeSent); ok {
			l.add(e.Request.URL)
		}
	})
}

// foreign returns the recorded URLs whose origin is none of allowed.
func (l *requestLog) foreign(allowed ...string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, raw := range l.urls {
		u, err := url.Parse(raw)
		if err != nil || !slices.Contains(allowed, u.Scheme+"://"+u.Host) {
			out = append(out, raw)
		}
	}
	return out
}

// popupEntries records what a popup loaded (its document and every resource), read from the
// Resource Timing API: the popup's first requests happen before the test can attach to it.
func popupEntries(l *requestLog) chromedp.Action {
	return chromedp.ActionFunc(func(ctx context.Context) error {
		var names []string
		if err := chromedp.Evaluate(`performance.getEntries().filter(e => e.entryType === "navigation" || e.entryType === "resource").map(e => e.name)`, &names).Do(ctx); err != nil {
			return err
		}
		for _, n := range names {
			l.add(n)
		}
		return nil
	})
}

// TestPickerInBrowser: a product on another origin embeds dirgate.js, opens the picker on a click,
// the person searches, selects two workspaces with the keyboard and confirms, and the product gets
// exactly those two. Cancel rejects the promise with "canceled", closing the window with "closed".
// A page on a third origin that opens a picker meant for the product gets nothing. Chromium
// requests nothing outside the three origins.
func TestPickerInBrowser(t *testing.T) {
	h, tok, q := directorySetup(t, harnessOptions{})
	acct := strings.TrimPrefix(q, "integrated_account_id=")
	ctx := browsertest.New(t)

	// The expected selection, from the unified API.
	var wsPage page
	h.mustGet(dir+"/workspaces?limit=100&"+q, tok).json(t, &wsPage)
	type choice struct {
		ID             string `json:"id"`
		Name           string `json:"name"`
		OrganizationID string `json:"organization_id"`
	}
	var want []choice
	for _, raw := range wsPage.Result {
		var w unified.Workspace
		if err := json.Unmarshal(raw, &w); err != nil {
			t.Fatal(err)
		}
		if w.Name == "Sales" || w.Name == "Research" {
			want = append(want, choice{w.ID, w.Name, w.Organization.ID})
		}
	}
	if len(want) != 2 {
		t.Fatalf("demo workspaces Sales and Research: %+v", want)
	}

	host := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		fmt.Fprintf(w, `<!doctype html><title>host</title><script src="%s/ui/dirgate.js"></script>
<button id="pick">Choose workspaces</button><pre id="out"></pre>
<script>
window.msgs = [];
window.addEventListener("message", function (e) { window.msgs.push({origin: e.origin, data: e.data}); });
document.getElementById("pick").addEventListener("click", function () {
  Dirgate.pickWorkspaces(%q).then(
    function (ws) { document.getElementById("out").textContent = JSON.stringify(ws); },
    function (e) { document.getElementById("out").textContent = "error: " + e.code; });
});
</script>`, html.EscapeString(h.url), r.URL.Query().Get("picker"))
	}))
	defer host.Close()
	third := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		fmt.Fprintf(w, `<!doctype html><title>third</title><button id="open">Open</button>
<script>
window.msgs = [];
window.addEventListener("message", function (e) { window.msgs.push({origin: e.origin, data: e.data}); });
document.getElementById("open").addEventListener("click", function () { window.popup = window.open(%q, "p", "popup"); });
</script>`, r.URL.Query().Get("picker"))
	}))
	defer third.Close()

	pickerURL, _ := h.newPicker(tok, map[string]any{"integrated_account_id": acct, "multi_select": true, "return_origin": host.URL})
	reqs := &requestLog{}
	reqs.listen(ctx)
	browsertest.Run(t, ctx, network.Enable(), chromedp.Navigate(host.URL+"/?picker="+url.QueryEscape(pickerURL)), chromedp.WaitReady("#pick", chromedp.ByID))

	pctx := browsertest.Popup(t, ctx, h.url+"/picker/", chromedp.Click("#pick", chromedp.ByID))
	browsertest.Run(t, pctx, chromedp.WaitVisible(".picker-item", chromedp.ByQuery))
	browsertest.Screenshot(t, pctx, "picker-popup")
	var n int
	browsertest.Run(t, pctx,
		// Search, then take the only match with ArrowDown and Space.
		chromedp.SendKeys("#picker-search", "Sal", chromedp.ByID),
		chromedp.Evaluate(`document.querySelectorAll(".picker-item:not([hidden])").length`, &n),
	)
	if n != 1 {
		t.Fatalf("search \"Sal\" shows %d workspaces, want 1", n)
	}
	browsertest.Run(t, pctx,
		chromedp.KeyEvent(kb.ArrowDown),
		chromedp.KeyEvent(" "),
		// Search again, and take Research with ArrowDown and Enter.
		chromedp.SendKeys("#picker-search", kb.Backspace+kb.Backspace+kb.Backspace+"research", chromedp.ByID),
		chromedp.KeyEvent(kb.ArrowDown),
		chromedp.KeyEvent(kb.Enter),
		chromedp.SendKeys("#picker-search", strings.Repeat(kb.Backspace, 8), chromedp.ByID),
		chromedp.Evaluate(`document.querySelectorAll(".picker-item input:checked").length`, &n),
	)
	if n != 2 {
		t.Fatalf("%d workspaces checked, want 2", n)
	}
	browsertest.Screenshot(t, pctx, "picker-popup-selected")
	browsertest.Run(t, pctx, chromedp.EmulateViewport(375, 740))
	browsertest.Screenshot(t, pctx, "picker-popup-narrow")
	browsertest.Run(t, pctx, popupEntries(reqs), chromedp.Click("#picker-confirm", chromedp.ByID))

	var out string
	browsertest.Run(t, ctx,
		cdppage.BringToFront(),
		chromedp.Poll(`document.getElementById("out").textContent !== ""`, nil, chromedp.WithPollingTimeout(time.Minute)),
		chromedp.Text("#out", &out, chromedp.ByID),
	)
	browsertest.Screenshot(t, ctx, "picker-host")
	var got []choice
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("host page shows %q", out)
	}
	byID := func(a, b choice) int { return unified.CompareIDs(a.ID, b.ID) }
	slices.SortFunc(got, byID)
	slices.SortFunc(want, byID)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("host received (-want +got):\n%s", diff)
	}
	// What reached the host's window, as sent: exactly one message, from the gateway's origin,
	// with nothing but the type and the chosen workspaces.
	type message struct {
		Origin string `json:"origin"`
		Data   struct {
			Type       string   `json:"type"`
			Workspaces []choice `json:"workspaces"`
		} `json:"data"`
	}
	var raw []json.RawMessage
	browsertest.Run(t, ctx,
		chromedp.Evaluate(`window.postMessage("sentinel", location.origin)`, nil),
		chromedp.Poll(`window.msgs.some(m => m.data === "sentinel")`, nil, chromedp.WithPollingTimeout(time.Minute)),
		chromedp.Evaluate(`window.msgs.filter(m => m.data !== "sentinel")`, &raw),
	)
	if len(raw) != 1 {
		t.Fatalf("the host received %d messages, want 1: %s", len(raw), raw)
	}
	var msg message
	dec := json.NewDecoder(strings.NewReader(string(raw[0])))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&msg); err != nil {
		t.Fatalf("the host received %s: %v", raw[0], err)
	}
	slices.SortFunc(msg.Data.Workspaces, byID)
	if msg.Origin != h.url || msg.Data.Type != "dirgate:workspaces-selected" || !cmp.Equal(want, msg.Data.Workspaces) {
		t.Errorf("the host received %s, want one dirgate:workspaces-selected message from %s with %+v", raw[0], h.url, want)
	}

	// outcome opens a new picker from the host page, does act in its window, and returns what the
	// host page shows once the promise has settled.
	outcome := func(act func(popup context.Context)) string {
		t.Helper()
		u, _ := h.newPicker(tok, map[string]any{"integrated_account_id": acct, "return_origin": host.URL})
		browsertest.Run(t, ctx, chromedp.Navigate(host.URL+"/?picker="+url.QueryEscape(u)), chromedp.WaitReady("#pick", chromedp.ByID))
		act(browsertest.Popup(t, ctx, h.url+"/picker/", chromedp.Click("#pick", chromedp.ByID)))
		var out string
		browsertest.Run(t, ctx,
			cdppage.BringToFront(),
			chromedp.Poll(`document.getElementById("out").textContent !== ""`, nil, chromedp.WithPollingTimeout(time.Minute)),
			chromedp.Text("#out", &out, chromedp.ByID),
		)
		return out
	}
	// Cancel: the promise rejects with "canceled".
	if out := outcome(func(popup context.Context) {
		browsertest.Run(t, popup, chromedp.WaitVisible("#picker-cancel", chromedp.ByID), chromedp.Click("#picker-cancel", chromedp.ByID))
	}); out != "error: canceled" {
		t.Errorf("after Cancel the host shows %q, want error: canceled", out)
	}
	// The person closes the window: the promise rejects with "closed".
	if out := outcome(func(popup context.Context) {
		browsertest.Run(t, popup, chromedp.WaitVisible(".picker-item", chromedp.ByQuery))
		if err := chromedp.Cancel(popup); err != nil { // closes the window
			t.Fatal(err)
		}
	}); out != "error: closed" {
		t.Errorf("after the window was closed the host shows %q, want error: closed", out)
	}

	// A third origin opens a picker whose return origin is the host's: the choice is not posted
	// to it.
	thirdURL, _ := h.newPicker(tok, map[string]any{"integrated_account_id": acct, "return_origin": host.URL})
	tctx, cancel := chromedp.NewContext(ctx)
	defer cancel()
	reqs.listen(tctx)
	browsertest.Run(t, tctx, network.Enable(), chromedp.Navigate(third.URL+"/?picker="+url.QueryEscape(thirdURL)), chromedp.WaitReady("#open", chromedp.ByID))
	p2 := browsertest.Popup(t, tctx, h.url+"/picker/", chromedp.Click("#open", chromedp.ByID))
	browsertest.Run(t, p2,
		chromedp.WaitVisible(".picker-item", chromedp.ByQuery),
		chromedp.Focus(".picker-item input", chromedp.ByQuery),
		chromedp.KeyEvent(kb.Enter),
		popupEntries(reqs),
		chromedp.Click("#picker-confirm", chromedp.ByID),
	)
	var msgs []any
	browsertest.Run(t, tctx,
		// The picker's window has gone, but the browser may not have brought this tab back to
		// the front; a background tab runs no animation frames, and Poll waits for them.
		cdppage.BringToFront(),
		// Once the picker has closed, a message the page sends itself is the last one to arrive.
		chromedp.Poll(`window.popup.closed`, nil, chromedp.WithPollingTimeout(time.Minute)),
		chromedp.Evaluate(`window.postMessage("sentinel", location.origin)`, nil),
		chromedp.Poll(`window.msgs.some(m => m.data === "sentinel")`, nil, chromedp.WithPollingTimeout(time.Minute)),
		chromedp.Evaluate(`window.msgs.filter(m => m.data !== "sentinel")`, &msgs),
	)
	if len(msgs) != 0 {
		t.Errorf("the third origin received %v", msgs)
	}

	if f := reqs.foreign(h.url, host.URL, third.URL); len(f) > 0 {
		t.Errorf("Chromium requested other origins: %v", f)
	}
	if !slices.ContainsFunc(reqs.urls, func(u string) bool { return strings.HasSuffix(u, "/data") }) {
		t.Errorf("the request log missed the picker's data request: %v", reqs.urls)
	}
}
