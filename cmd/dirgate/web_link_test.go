package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/dirgate/dirgate/internal/browsertest"
)

// devServer is a "dirgate dev" started in-process, as its banner describes it.
type devServer struct {
	gateway, sim, token string
}

// startDev runs "dirgate dev" until the test ends and reads its banner.
func startDev(t *testing.T) devServer {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var stdout syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"dev", "--addr", freeAddr(t), "--sim-addr", freeAddr(t), "--proxy-addr", freeAddr(t)}, &stdout, io.Discard)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			t.Error("dev did not stop")
		}
	})
	banner := waitFor(t, &stdout, regexp.MustCompile(`(?s)(.*# --- end ---)`))
	field := func(re string) string {
		m := regexp.MustCompile(re).FindStringSubmatch(banner)
		if m == nil {
			t.Fatalf("banner has no %s:\n%s", re, banner)
		}
		return m[1]
	}
	return devServer{
		gateway: field(`(?m)^  gateway\s+(http://\S+)`),
		sim:     field(`(?m)^  Podio simulator\s+(http://\S+)`),
		token:   field(`export DIRGATE_TOKEN='([^']+)'`),
	}
}

// call sends a JSON request with the dev tenant's token and decodes the answer into out.
func (d devServer) call(t *testing.T, method, path string, body, out any) int {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequestWithContext(t.Context(), method, d.gateway+path, rd)
	req.Header.Set("Authorization", "Bearer "+d.token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: %d %s: %v", method, path, res.StatusCode, b, err)
		}
	}
	return res.StatusCode
}

// linkURL creates a link token without redirect_uri, so the flow ends on dirgate's own pages.
func (d devServer) linkURL(t *testing.T) string {
	t.Helper()
	var lt struct {
		LinkURL string `json:"link_url"`
	}
	if st := d.call(t, "POST", "/link-tokens", map[string]any{"app_name": "Acme HR", "end_user": map[string]any{"id": "customer-7"}}, &lt); st != http.StatusCreated || lt.LinkURL == "" {
		t.Fatalf("POST /link-tokens: %d %+v", st, lt)
	}
	return lt.LinkURL
}

// origins records the origin of every request Chromium makes.
type origins struct {
	mu   sync.Mutex
	seen map[string]bool
}

func (o *origins) listen(ctx context.Context) {
	chromedp.ListenTarget(ctx, func(ev any) {
		e, ok := ev.(*network.EventRequestWillBeSent)
		if !ok {
			return
		}
		u, err := url.Parse(e.Request.URL)
		if err != nil || u.Scheme == "data" || u.Scheme == "about" {
			return
		}
		o.mu.Lock()
		defer o.mu.Unlock()
		o.seen[u.Scheme+"://"+u.Host] = true
	})
}

// TestBrowserLinkFlow is the hosted link flow as a person goes through it in Chromium against
// "dirgate dev": the link page, Continue, the simulator's sign-in and consent, Allow, and the
// success page. The page carries only a single-use link result, which the tenant's backend
// exchanges (POST /link-results) for the new account; that account then answers on
// /unified/user-directory/me, and the result cannot be exchanged twice.
// Denying consent ends on the error page. Chromium may talk to the gateway and Podio only.
func TestBrowserLinkFlow(t *testing.T) {
	ctx := browsertest.New(t)
	dev := startDev(t)
	seen := &origins{seen: map[string]bool{}}
	seen.listen(ctx)

	signIn := func(ctx context.Context, decision, shot string) chromedp.Tasks {
		return chromedp.Tasks{
			chromedp.WaitVisible(`#continue`, chromedp.ByQuery),
			chromedp.Click(`#continue`, chromedp.ByQuery),
			chromedp.WaitVisible(`input[name=username]`, chromedp.ByQuery),
			chromedp.SendKeys(`input[name=username]`, "admin@demo.example", chromedp.ByQuery),
			chromedp.SendKeys(`input[name=password]`, "demo", chromedp.ByQuery),
			chromedp.ActionFunc(func(context.Context) error {
				if shot != "" {
					browsertest.Screenshot(t, ctx, shot)
					browsertest.CheckPage(t, ctx, "Podio sign-in (the simulator's)")
				}
				return nil
			}),
			chromedp.Click(`button[value=`+decision+`]`, chromedp.ByQuery),
		}
	}

	// Allow: the success page.
	var heading, result, title string
	var hasResult bool
	browsertest.Run(t, ctx,
		network.Enable(),
		chromedp.Navigate(dev.linkURL(t)),
		chromedp.Text(`h1`, &heading, chromedp.ByQuery),
	)
	if heading != "Connect your Podio account to Acme HR" {
		t.Errorf("link page heading %q", heading)
	}
	browsertest.Screenshot(t, ctx, "link-page")
	browsertest.CheckPage(t, ctx, "link page")
	browsertest.Run(t, ctx, chromedp.EmulateViewport(375, 740))
	browsertest.Screenshot(t, ctx, "link-page-narrow")
	browsertest.Run(t, ctx, chromedp.EmulateViewport(1280, 900))
	browsertest.Run(t, ctx,
		signIn(ctx, "allow", "podio-consent"),
		chromedp.WaitVisible(`h1.ok`, chromedp.ByQuery),
		chromedp.AttributeValue(`#link-result`, "data-link-result", &result, &hasResult, chromedp.ByQuery),
		chromedp.Text(`h1`, &title, chromedp.ByQuery),
	)
	browsertest.Screenshot(t, ctx, "link-success")
	browsertest.CheckPage(t, ctx, "link success page")
	if !strings.HasPrefix(result, "lr_") || !strings.HasPrefix(title, "Connected ") {
		t.Fatalf("success page: heading %q, link result %q", title, result)
	}
	var body string
	browsertest.Run(t, ctx, chromedp.OuterHTML(`html`, &body, chromedp.ByQuery))
	if strings.Contains(body, "ia_") {
		t.Errorf("the success page names the account: %s", body)
	}
	var exchanged struct {
		IntegratedAccount struct {
			ID      string
			EndUser struct{ ID string } `json:"end_user"`
		} `json:"integrated_account"`
	}
	if st := dev.call(t, "POST", "/link-results", map[string]any{"link_result": result}, &exchanged); st != http.StatusOK ||
		exchanged.IntegratedAccount.EndUser.ID != "customer-7" {
		t.Fatalf("POST /link-results: %d %+v", st, exchanged)
	}
	accountID := exchanged.IntegratedAccount.ID
	if st := dev.call(t, "POST", "/link-results", map[string]any{"link_result": result}, nil); st != http.StatusNotFound {
		t.Errorf("a second exchange: %d, want 404", st)
	}
	var me map[string]any
	if st := dev.call(t, "GET", "/unified/user-directory/me?integrated_account_id="+url.QueryEscape(accountID), nil, &me); st != http.StatusOK {
		t.Fatalf("/unified/user-directory/me for the linked account: %d %v", st, me)
	}

	// Deny: the error page, and no account.
	var errCode, errTitle string
	browsertest.Run(t, ctx,
		chromedp.Navigate(dev.linkURL(t)),
		signIn(ctx, "deny", ""),
		chromedp.WaitVisible(`#error-code`, chromedp.ByQuery),
		chromedp.Text(`#error-code`, &errCode, chromedp.ByQuery),
		chromedp.Text(`h1`, &errTitle, chromedp.ByQuery),
	)
	browsertest.Screenshot(t, ctx, "link-error")
	browsertest.CheckPage(t, ctx, "link error page")
	if errCode != "access_denied" || errTitle != "Access was not allowed" {
		t.Errorf("error page: %q %q", errTitle, errCode)
	}
	var list struct{ Data []map[string]any }
	dev.call(t, "GET", "/integrated-accounts", nil, &list)
	if len(list.Data) != 1 {
		t.Errorf("after one allowed and one denied link the tenant has %d accounts, want 1", len(list.Data))
	}

	seen.mu.Lock()
	defer seen.mu.Unlock()
	if !seen.seen[dev.gateway] || !seen.seen[dev.sim] {
		t.Errorf("requests seen from origins %v: want the gateway %s and the simulator %s", seen.seen, dev.gateway, dev.sim)
	}
	for o := range seen.seen {
		if o != dev.gateway && o != dev.sim {
			t.Errorf("Chromium requested another origin: %s", o)
		}
	}
}

// hostPage is an embedding product's page on its own origin: it links through dirgate.js
// (Dirgate.link) and shows the Promise's outcome in #result, and it keeps every message its window
// receives, with the sender's origin, in #messages. %[1]s is the gateway, %[2]s the link_url.
const hostPage = `<!doctype html><html lang="en"><title>host</title>
<script src="%[1]s/ui/dirgate.js"></script>
<body><button id="open" type="button">Link Podio</button><pre id="messages"></pre><pre id="result"></pre>
<script>
var got = [];
window.addEventListener("message", function (e) {
  got.push({origin: e.origin, data: e.data});
  document.getElementById("messages").textContent = JSON.stringify(got);
});
document.getElementById("open").addEventListener("click", function () {
  Dirgate.link(%[2]q).then(
    function (a) { document.getElementById("result").textContent = JSON.stringify(a); },
    function (e) { document.getElementById("result").textContent = JSON.stringify({error: e.code, description: e.description}); });
});
</script></body></html>`

// TestBrowserLinkPopup: a product on another origin calls Dirgate.link(link_url) from a click (the
// link token has its return_origin). After Allow, the Promise resolves with the new account and the
// host's window received exactly one dirgate:linked message, from the gateway's origin. After Deny,
// the Promise rejects with access_denied after one dirgate:link-failed message.
func TestBrowserLinkPopup(t *testing.T) {
	ctx := browsertest.New(t)
	dev := startDev(t)
	host := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, hostPage, html.EscapeString(dev.gateway), r.URL.Query().Get("link"))
	}))
	t.Cleanup(host.Close)

	type message struct {
		Origin string         `json:"origin"`
		Data   map[string]any `json:"data"`
	}
	// link runs one popup round: Continue, sign in, the decision; it returns the host's #result,
	// the messages its window received and, after Allow, the link result the popup holds.
	link := func(t *testing.T, decision string) (result map[string]any, got []message, linkResult string) {
		var lt struct {
			LinkURL string `json:"link_url"`
		}
		if st := dev.call(t, "POST", "/link-tokens", map[string]any{"app_name": "Acme HR", "return_origin": host.URL}, &lt); st != http.StatusCreated {
			t.Fatalf("POST /link-tokens: %d", st)
		}
		browsertest.Run(t, ctx,
			chromedp.Navigate(host.URL+"/?link="+url.QueryEscape(lt.LinkURL)),
			chromedp.WaitVisible(`#open`, chromedp.ByQuery),
		)
		popup := browsertest.Popup(t, ctx, dev.gateway+"/link/", chromedp.Click(`#open`, chromedp.ByQuery))
		defer func() { _ = chromedp.Cancel(popup) }()
		done := `#close` // shown once the message is posted
		if decision == "deny" {
			done = `#error-code`
		}
		browsertest.Run(t, popup,
			chromedp.WaitVisible(`#continue`, chromedp.ByQuery),
			chromedp.Click(`#continue`, chromedp.ByQuery),
			chromedp.WaitVisible(`input[name=username]`, chromedp.ByQuery),
			chromedp.SendKeys(`input[name=username]`, "admin@demo.example", chromedp.ByQuery),
			chromedp.SendKeys(`input[name=password]`, "demo", chromedp.ByQuery),
			chromedp.Click(`button[value=`+decision+`]`, chromedp.ByQuery),
			chromedp.WaitVisible(done, chromedp.ByQuery),
		)
		if decision == "allow" {
			var ok bool
			browsertest.Run(t, popup, chromedp.AttributeValue(`#link-result`, "data-link-result", &linkResult, &ok, chromedp.ByQuery))
		}

		var res, messages string
		browsertest.Run(t, ctx,
			page.BringToFront(),
			chromedp.Poll(`document.getElementById("result").textContent !== ""`, nil, chromedp.WithPollingTimeout(time.Minute)),
			// A message the page sends itself arrives after any the popup sent before it.
			chromedp.Evaluate(`window.postMessage("sentinel", location.origin)`, nil),
			chromedp.Poll(`got.some(m => m.data === "sentinel")`, nil, chromedp.WithPollingTimeout(time.Minute)),
			chromedp.Text(`#result`, &res, chromedp.ByQuery),
			chromedp.Evaluate(`JSON.stringify(got.filter(m => m.data !== "sentinel"))`, &messages),
		)
		if err := json.Unmarshal([]byte(res), &result); err != nil {
			t.Fatalf("result %q: %v", res, err)
		}
		if err := json.Unmarshal([]byte(messages), &got); err != nil {
			t.Fatalf("messages %q: %v", messages, err)
		}
		return result, got, linkResult
	}

	t.Run("allow", func(t *testing.T) {
		result, got, linkResult := link(t, "allow")
		if len(got) != 1 || got[0].Origin != dev.gateway || got[0].Data["type"] != "dirgate:linked" ||
			got[0].Data["link_result"] != linkResult || got[0].Data["name"] == "" || len(got[0].Data) != 3 {
			t.Errorf("the host received %+v, want one dirgate:linked message for %s from %s", got, linkResult, dev.gateway)
		}
		if !strings.HasPrefix(linkResult, "lr_") || result["link_result"] != linkResult || result["name"] == "" || len(result) != 2 {
			t.Errorf("Dirgate.link resolved with %v, want {link_result: %s, name}", result, linkResult)
		}
		// The host's backend learns the account.
		var ex struct {
			IntegratedAccount struct{ ID string } `json:"integrated_account"`
		}
		if st := dev.call(t, "POST", "/link-results", map[string]any{"link_result": linkResult}, &ex); st != http.StatusOK ||
			!strings.HasPrefix(ex.IntegratedAccount.ID, "ia_") {
			t.Errorf("exchanging the popup's link result: %d %+v", st, ex)
		}
	})
	t.Run("deny", func(t *testing.T) {
		result, got, _ := link(t, "deny")
		if len(got) != 1 || got[0].Origin != dev.gateway || got[0].Data["type"] != "dirgate:link-failed" || got[0].Data["error"] != "access_denied" {
			t.Errorf("the host received %+v, want one dirgate:link-failed message (access_denied) from %s", got, dev.gateway)
		}
		if result["error"] != "access_denied" || result["description"] == "" || result["description"] == nil {
			t.Errorf("Dirgate.link rejected with %v, want code access_denied and a description", result)
		}
	})
}
