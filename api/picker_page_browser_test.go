package api_test

import (
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/dirgate/dirgate/internal/browsertest"
)

// TestPickerPageInBrowser: the picker in a real browser tab, used with the keyboard: search,
// select two workspaces (Space, then Enter), confirm; without an opener the page says what was
// chosen. Chromium requests nothing but the gateway. (The popup and postMessage path is
// TestPickerInBrowser.)
func TestPickerPageInBrowser(t *testing.T) {
	h, tok, q := directorySetup(t, harnessOptions{})
	acct := strings.TrimPrefix(q, "integrated_account_id=")
	pickerURL, _ := h.newPicker(tok, map[string]any{"integrated_account_id": acct, "multi_select": true, "return_origin": "https://app.example.com"})
	ctx := browsertest.New(t)

	var mu sync.Mutex
	var requested []string
	chromedp.ListenTarget(ctx, func(ev any) {
		if e, ok := ev.(*network.EventRequestWillBeSent); ok {
			mu.Lock()
			requested = append(requested, e.Request.URL)
			mu.Unlock()
		}
	})
	browsertest.Run(t, ctx, network.Enable(), chromedp.Navigate(pickerURL), chromedp.WaitVisible(".picker-item", chromedp.ByQuery))
	browsertest.Screenshot(t, ctx, "picker")
	browsertest.CheckPage(t, ctx, "picker")

	var shown, checked int
	browsertest.Run(t, ctx,
		chromedp.SendKeys("#picker-search", "Sal", chromedp.ByID),
		chromedp.Evaluate(`document.querySelectorAll(".picker-item:not([hidden])").length`, &shown),
	)
	if shown != 1 {
		t.Fatalf(`search "Sal" shows %d workspaces, want 1`, shown)
	}
	browsertest.Run(t, ctx,
		chromedp.KeyEvent(kb.ArrowDown),
		chromedp.KeyEvent(" "),
		chromedp.Focus("#picker-search", chromedp.ByID),
		chromedp.SendKeys("#picker-search", kb.Backspace+kb.Backspace+kb.Backspace+"research", chromedp.ByID),
		chromedp.KeyEvent(kb.ArrowDown),
		chromedp.KeyEvent(kb.Enter),
		chromedp.Focus("#picker-search", chromedp.ByID),
		chromedp.SendKeys("#picker-search", strings.Repeat(kb.Backspace, 8), chromedp.ByID),
		chromedp.Evaluate(`document.querySelectorAll(".picker-item input:checked").length`, &checked),
	)
	if checked != 2 {
		t.Fatalf("%d workspaces checked, want 2", checked)
	}
	browsertest.Screenshot(t, ctx, "picker-selected")
	browsertest.CheckPage(t, ctx, "picker, two selected")

	var done string
	browsertest.Run(t, ctx,
		chromedp.Click("#picker-confirm", chromedp.ByID),
		chromedp.WaitVisible("#picker-done", chromedp.ByID),
		chromedp.Text("#picker-done", &done, chromedp.ByID),
	)
	if !strings.Contains(done, "Sales") || !strings.Contains(done, "Research") {
		t.Errorf("done page says %q, want Sales and Research", done)
	}
	browsertest.CheckPage(t, ctx, "picker, done")
	browsertest.Run(t, ctx, chromedp.EmulateViewport(375, 740))
	browsertest.Screenshot(t, ctx, "picker-narrow")
	browsertest.Run(t, ctx, emulation.ClearDeviceMetricsOverride())

	// A picker link that is not (or no longer) valid shows a page that says so.
	var gone string
	browsertest.Run(t, ctx, chromedp.Navigate(h.url+"/picker/not-a-session"), chromedp.Text("h1", &gone, chromedp.ByQuery))
	if gone == "" {
		t.Error("an unknown picker session shows no heading")
	}
	browsertest.CheckPage(t, ctx, "picker, unknown session")

	gw, _ := url.Parse(h.url)
	mu.Lock()
	defer mu.Unlock()
	for _, raw := range requested {
		if u, err := url.Parse(raw); err != nil || (u.Scheme != "data" && u.Host != gw.Host) {
			t.Errorf("Chromium requested %s, outside the gateway", raw)
		}
	}
}
