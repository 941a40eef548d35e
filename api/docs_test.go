package api_test

import (
	"encoding/json"
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestDocsPage: /docs loads the embedded bundle and docs.js, with the strict policy widened only
// by this answer's style nonce and blob: workers.
func TestDocsPage(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	r := h.do("GET", "/docs", "", nil)
	body := string(r.body)
	if r.status != http.StatusOK || !strings.HasPrefix(r.header.Get("Content-Type"), "text/html") {
		t.Fatalf("GET /docs: %d %v", r.status, r.header)
	}
	for _, s := range []string{`<script src="/ui/redoc.standalone.js"></script>`, `<script src="/ui/docs.js"></script>`,
		`data-spec-url="/openapi.yaml"`, `href="/ui/docs.css"`} {
		if !strings.Contains(body, s) {
			t.Errorf("page lacks %s", s)
		}
	}
	if strings.Contains(body, "<script>") || strings.Contains(body, "style=") {
		t.Errorf("page has inline script or style:\n%s", body)
	}
	m := regexp.MustCompile(`data-nonce="([A-Za-z0-9_-]{22})"`).FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no nonce in page:\n%s", body)
	}
	csp := r.header.Get("Content-Security-Policy")
	for _, d := range []string{"default-src 'none'", "script-src 'self';", "style-src 'self' 'nonce-" + m[1] + "' 'sha256-",
		"connect-src 'self';", "font-src 'self';", "worker-src blob:", "frame-ancestors 'none'"} {
		if !strings.Contains(csp+";", d) {
			t.Errorf("policy lacks %q: %s", d, csp)
		}
	}
	if strings.Contains(csp, "unsafe") || strings.Contains(csp, "http") {
		t.Errorf("policy allows more than it should: %s", csp)
	}
	if again := h.do("GET", "/docs", "", nil); strings.Contains(string(again.body), m[1]) {
		t.Error("the nonce is reused across answers")
	}
	for _, f := range []struct{ path, ctype, want string }{
		{"/ui/redoc.standalone.js", "text/javascript", "redoc.standalone.js.LICENSE.txt"},
		{"/ui/docs.js", "text/javascript", "Redoc.init"},
		{"/ui/docs.css", "text/css", "#redoc"},
		{"/ui/redoc.standalone.js.LICENSE.txt", "text/plain", "ReDoc"},
		{"/ui/redoc.LICENSE.txt", "text/plain", "MIT License"},
	} {
		r := h.do("GET", f.path, "", nil)
		if r.status != http.StatusOK || !strings.HasPrefix(r.header.Get("Content-Type"), f.ctype) ||
			!strings.Contains(string(r.body), f.want) {
			t.Errorf("GET %s: %d %q", f.path, r.status, r.header.Get("Content-Type"))
		}
	}
}

// TestDocsBundleMatchesPinnedVersion: the committed Redoc bundle is the version web/package.json
// pins (exactly, no range) and web/package-lock.json resolved, so a version bump without
// `npm run vendor`, or a vendored bundle without a bump, fails here.
func TestDocsBundleMatchesPinnedVersion(t *testing.T) {
	t.Parallel()
	var pkg struct {
		Dependencies map[string]string `json:"dependencies"`
	}
	readJSON(t, "../web/package.json", &pkg)
	want := pkg.Dependencies["redoc"]
	if !regexp.MustCompile(`^\d+\.\d+\.\d+$`).MatchString(want) {
		t.Fatalf("web/package.json pins redoc %q; want an exact version", want)
	}
	var lock struct {
		Packages map[string]struct {
			Version string `json:"version"`
		} `json:"packages"`
	}
	readJSON(t, "../web/package-lock.json", &lock)
	if got := lock.Packages["node_modules/redoc"].Version; got != want {
		t.Errorf("package-lock.json has redoc %q, package.json pins %q (run npm install in web/)", got, want)
	}
	bundle, err := os.ReadFile("ui/static/redoc.standalone.js")
	if err != nil {
		t.Fatal(err)
	}
	// Redoc prints its version on its error screen; the string is in every 2.x bundle.
	m := regexp.MustCompile(`" ReDoc Version: ","([^"]+)"`).FindSubmatch(bundle)
	if m == nil {
		t.Fatal("no version string in api/ui/static/redoc.standalone.js")
	}
	if string(m[1]) != want {
		t.Errorf("committed bundle is redoc %s, package.json pins %s (run npm run vendor in web/)", m[1], want)
	}
	// vendor.sh replaces the one URL the bundle would load from another origin.
	if strings.Contains(string(bundle), "cdn.redoc.ly") {
		t.Error("the committed bundle still loads Redocly's logo from cdn.redoc.ly (copy it with web/vendor.sh)")
	}
	notice, err := os.ReadFile("ui/static/redoc.standalone.js.LICENSE.txt")
	if err != nil || !strings.Contains(string(notice), `Version: "`+want+`"`) {
		t.Errorf("licence notice missing or of another version: %v", err)
	}
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}
