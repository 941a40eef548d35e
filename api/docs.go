package api

import (
	"net/http"

	"github.com/labstack/echo/v4"
)

// The API docs page renders openapi.yaml with Redoc's standalone bundle, installed from npm at
// the version pinned in web/package.json and copied into ui/static by web/vendor.sh, so the page
// loads nothing from another origin and the gateway builds with Go alone.

var docsPage = pageTemplate("docs.html")

// docsPageData is what docs.html shows. Nonce reaches docs.js through a data attribute; Redoc
// hands it to styled-components, which puts it on every <style> element it injects.
type docsPageData struct {
	Title string
	Nonce string
}

// serveDocs answers GET /docs.
func serveDocs(c echo.Context) error {
	nonce := randomToken(16) // 128 bits, new for every answer
	return renderPage(c, http.StatusOK, docsPage, docsPageData{Title: "dirgate API", Nonce: nonce}, pageOptions{csp: map[string]string{
		// Redoc styles its components with styled-components, which injects <style> elements at
		// run time. A per-response nonce allows exactly those, instead of 'unsafe-inline'.
		"style-src": "'self' 'nonce-" + nonce + "'",
		// Redoc's search index runs in a Web Worker built from a blob: URL inside the bundle.
		// Without this directive workers fall back to script-src 'self' and search fails.
		"worker-src": "blob:",
	}})
}
