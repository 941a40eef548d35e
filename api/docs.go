package api

import (
	"net/http"

	"github.com/labstack/echo/v4"
)

// The API docs page renders openapi.yaml with Redoc's standalone bundle, installed from npm at
// the version pinned in web/package.json and copied into ui/static by web/vendor.sh, so the page
// loads nothing from another origin and the gateway builds with Go alone.

var docsPage = pageTemplate("docs.html")

// redocStyleHashes are the CSP hashes of the <style> elements redoc.standalone.js (2.5.4)
// inserts when it loads: an empty one, and one of fixed rules.
const redocStyleHashes = "'sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=' 'sha256-QMIg+bpjm3JdElJ388KYke01izlUW0UoNOeKjpMxdgc='"

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
		// Two <style> elements are added while the bundle loads, before docs.js can hand Redoc
		// the nonce; their fixed contents are allowed by hash (bundle-specific: a new Redoc
		// version that changes them fails TestDocsInBrowser with the new hashes in the message).
		"style-src": "'self' 'nonce-" + nonce + "' " + redocStyleHashes,
		// Redoc's search index runs in a Web Worker built from a blob: URL inside the bundle.
		// Without this directive workers fall back to script-src 'self' and search fails.
		"worker-src": "blob:",
	}})
}
