package api

import (
	"bytes"
	"embed"
	"html/template"
	"io/fs"
	"maps"
	"net/http"
	"path"
	"slices"
	"strings"

	"github.com/labstack/echo/v4"
)

// The pages people see (link, picker, docs) are built from ui/: templates/ holds html/template
// files (each defines "content" for the "layout" of layout.html), static/ the files served under
// /ui/. Everything is embedded: pages make no request to any other origin.

//go:embed ui
var uiFiles embed.FS

// uiStatic is the static/ folder, served at /ui/.
var uiStatic, _ = fs.Sub(uiFiles, "ui/static")

// pageCSP is the Content-Security-Policy of every page: only this origin's scripts, styles,
// images and fetches; no inline script or style, no framing, no plugins, forms post only here.
// A page widens it through pageOptions, one directive at a time.
const pageCSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
	"font-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// pageOptions adjust one page's answer.
type pageOptions struct {
	// csp replaces directives of pageCSP by name, e.g. {"img-src": "'self' data: https:"}; a
	// directive pageCSP lacks (worker-src) is added at the end.
	csp map[string]string
}

// csp builds the policy with the page's replacements.
func (o pageOptions) policy() string {
	if len(o.csp) == 0 {
		return pageCSP
	}
	parts := strings.Split(pageCSP, "; ")
	seen := make(map[string]bool, len(o.csp))
	for i, p := range parts {
		name, _, _ := strings.Cut(p, " ")
		if v, ok := o.csp[name]; ok {
			parts[i] = name + " " + v
			seen[name] = true
		}
	}
	for _, name := range slices.Sorted(maps.Keys(o.csp)) {
		if !seen[name] {
			parts = append(parts, name+" "+o.csp[name])
		}
	}
	return strings.Join(parts, "; ")
}

// pageTemplate parses layout.html with the named page template.
func pageTemplate(name string) *template.Template {
	return template.Must(template.New(name).ParseFS(uiFiles, "ui/templates/layout.html", "ui/templates/"+name))
}

// setPageHeaders gives a page its security headers: the policy, no sniffing, no referrer, no
// caching (pages carry one-time tokens), and no cross-origin opener tricks.
func setPageHeaders(h http.Header, o pageOptions) {
	h.Set("Content-Security-Policy", o.policy())
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Frame-Options", "DENY")
}

// renderPage answers an HTML page: t executed with data (which must have a Title), with the
// page headers. The page is rendered before anything is written, so a template error is a 500,
// not half a page.
func renderPage(c echo.Context, status int, t *template.Template, data any, o pageOptions) error {
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout", data); err != nil {
		return err
	}
	setPageHeaders(c.Response().Header(), o)
	return c.HTMLBlob(status, buf.Bytes())
}

// serveUI serves the embedded static files under /ui/.
func serveUI(c echo.Context) error {
	name := path.Clean(strings.TrimPrefix(c.Param("*"), "/"))
	b, err := fs.ReadFile(uiStatic, name)
	if err != nil || name == "." {
		return notFound("file")
	}
	h := c.Response().Header()
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "public, max-age=300")
	h.Set("Cross-Origin-Resource-Policy", "cross-origin") // dirgate.js is loaded by embedding products
	ct := "application/octet-stream"
	switch path.Ext(name) {
	case ".css":
		ct = "text/css; charset=utf-8"
	case ".js":
		ct = "text/javascript; charset=utf-8"
	case ".svg":
		ct = "image/svg+xml"
	case ".png":
		ct = "image/png"
	case ".txt":
		ct = "text/plain; charset=utf-8" // licence notices of bundled third-party code
	}
	return c.Blob(http.StatusOK, ct, b)
}
