package api

import (
	"io"
	"net/http"

	"github.com/labstack/echo/v4"
)

// Ceiling returns a bare Echo server answering GET path with body as JSON from memory: no
// middleware, no authentication, no Redis. The bench command measures it beside the gateway as
// the most any Echo handler can do on the machine, so the gateway's figures can be judged against
// the machine rather than in the abstract.
func Ceiling(path string, body []byte) http.Handler {
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.Logger.SetOutput(io.Discard)
	e.GET(path, func(c echo.Context) error {
		return c.JSONBlob(http.StatusOK, body)
	})
	return e
}
