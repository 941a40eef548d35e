package browsertest

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/accessibility"
	"github.com/chromedp/cdproto/dom"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// PhoneWidth is the narrowest viewport dirgate's pages are checked at, in CSS pixels (an iPhone
// SE or mini held upright).
const PhoneWidth = 375

// namedRoles are the roles a person operates or must be told about: each needs an accessible name
// (what a screen reader says for it).
var namedRoles = []string{
	"button", "checkbox", "combobox", "image", "img", "link", "listbox", "menuitem", "radio",
	"searchbox", "slider", "spinbutton", "switch", "textbox",
}

// CheckPage fails the test where the page in ctx's tab falls short of what every dirgate page
// promises:
//   - the document states its language and has a title;
//   - every control, link and image has an accessible name, as Chromium computes it for screen
//     readers (a <label>, aria-label, alt text or the element's text);
//   - at PhoneWidth nothing is wider than the viewport, so the page never scrolls sideways.
//
// name says which page, in the failures. The viewport is back to the window's size afterwards.
func CheckPage(t testing.TB, ctx context.Context, name string) {
	t.Helper()
	if err := attach(ctx); err != nil {
		t.Fatalf("%s: attaching the tab: %v", name, err)
	}
	rctx, cancel := context.WithTimeout(ctx, guard)
	defer cancel()

	var doc struct {
		Lang  string `json:"lang"`
		Title string `json:"title"`
	}
	var nodes []*accessibility.Node
	var wide []string
	err := chromedp.Run(rctx,
		chromedp.Evaluate(`({lang: document.documentElement.lang, title: document.title})`, &doc),
		chromedp.ActionFunc(func(ctx context.Context) error {
			var err error
			nodes, err = accessibility.GetFullAXTree().Do(ctx)
			return err
		}),
		chromedp.EmulateViewport(PhoneWidth, 740),
		// Let the page lay itself out at the new width before measuring.
		chromedp.Evaluate(`new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))`, nil,
			func(p *runtime.EvaluateParams) *runtime.EvaluateParams { return p.WithAwaitPromise(true) }),
		chromedp.Evaluate(overflowing, &wide),
		emulation.ClearDeviceMetricsOverride(),
	)
	if err != nil {
		t.Fatalf("%s: checking the page: %v", name, err)
	}
	if strings.TrimSpace(doc.Lang) == "" {
		t.Errorf("%s: <html> has no lang", name)
	}
	if strings.TrimSpace(doc.Title) == "" {
		t.Errorf("%s: the page has no title", name)
	}
	for _, n := range nodes {
		if n.Ignored {
			continue
		}
		role := axString(n.Role)
		if slices.Contains(namedRoles, role) && strings.TrimSpace(axString(n.Name)) == "" {
			var html string
			_ = chromedp.Run(rctx, chromedp.ActionFunc(func(ctx context.Context) error {
				var err error
				html, err = dom.GetOuterHTML().WithBackendNodeID(n.BackendDOMNodeID).Do(ctx)
				return err
			}))
			if len(html) > 160 {
				html = html[:160] + "…"
			}
			t.Errorf("%s: an element of role %q has no accessible name: %s", name, role, html)
		}
	}
	if len(wide) > 0 {
		t.Errorf("%s: at %d px wide these overflow the viewport: %s", name, PhoneWidth, strings.Join(wide, ", "))
	}
}

// overflowing lists (as tag#id.class) the visible elements that reach past the right edge of the
// viewport, outermost first, or nothing when the page fits. Elements inside a box that scrolls
// or clips sideways on purpose (overflow-x auto, scroll or hidden) are fine.
const overflowing = `(function () {
  var out = [], vw = document.documentElement.clientWidth;
  function scrolls(e) {
    for (var p = e.parentElement; p; p = p.parentElement) {
      var o = getComputedStyle(p).overflowX;
      if (o === "auto" || o === "scroll" || o === "hidden") return true;
    }
    return false;
  }
  document.querySelectorAll("body *").forEach(function (e) {
    var r = e.getBoundingClientRect();
    if (r.width === 0 || r.height === 0 || r.right <= vw + 1 || scrolls(e)) return;
    var p = e.parentElement, r2 = p && p.getBoundingClientRect();
    if (r2 && r2.right > vw + 1 && !scrolls(p)) return; // report the outermost only
    out.push(e.tagName.toLowerCase() + (e.id ? "#" + e.id : "") + (e.className && typeof e.className === "string" ? "." + e.className.trim().split(/\s+/).join(".") : "") + " (" + Math.round(r.right) + " px)");
  });
  if (out.length === 0 && document.documentElement.scrollWidth > vw + 1) out.push("the document (" + document.documentElement.scrollWidth + " px)");
  return out;
})()`

// axString is the text of an accessibility value ("" for none).
func axString(v *accessibility.Value) string {
	if v == nil || len(v.Value) == 0 {
		return ""
	}
	var s string
	if err := json.Unmarshal(v.Value, &s); err != nil {
		return string(v.Value)
	}
	return s
}
