package api_test

import (
	"net/http"
	"strings"
	"testing"
)

// TestPagesAndUIFiles: the embedded files are served with their types, nothing outside them is,
// and pages carry the strict policy.
func TestPagesAndUIFiles(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	r := h.do("GET", "/ui/dirgate.css", "", nil)
	if r.status != http.StatusOK || !strings.HasPrefix(r.header.Get("Content-Type"), "text/css") ||
		r.header.Get("X-Content-Type-Options") != "nosniff" || !strings.Contains(string(r.body), "--accent") {
		t.Errorf("dirgate.css: %d %v", r.status, r.header)
	}
	for _, p := range []string{"/ui/nope.css", "/ui/", "/ui/..%2f..%2fgo.mod", "/ui/../templates/layout.html"} {
		if r := h.send(h.browser(), "GET", h.url, p, "", nil); r.status != http.StatusNotFound {
			t.Errorf("GET %s: %d", p, r.status)
		}
	}
	// An expired link shows the message page with the strict policy.
	r = h.do("GET", "/link/lt_nope", "", nil)
	csp := r.header.Get("Content-Security-Policy")
	if r.status != http.StatusNotFound || !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "script-src 'self'") ||
		!strings.Contains(string(r.body), `href="/ui/dirgate.css"`) || !strings.Contains(string(r.body), "expired") {
		t.Errorf("expired link page: %d %q %s", r.status, csp, r.body)
	}
}
