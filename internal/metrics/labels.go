package metrics

import (
	"net/http"
	"strconv"
	"strings"
)

// Label values come from closed sets: whatever a caller sends (a made-up method, a 200 KiB path, a
// status Podio invents) maps onto a value known in advance, so no request can add a series.

// MethodOther is the method label of every method outside the standard ones.
const MethodOther = "other"

// Method is the label of an HTTP method: the method itself when it is one of RFC 9110's (and
// PATCH), else MethodOther.
func Method(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return m
	}
	return MethodOther
}

// knownStatus are the codes labelled as themselves: the ones dirgate answers and Podio documents
// (podio-api.md §9.2, 420 included). Any other code is labelled by its class.
var knownStatus = map[int]bool{
	200: true, 201: true, 202: true, 204: true, 206: true,
	301: true, 302: true, 303: true, 304: true, 307: true, 308: true,
	400: true, 401: true, 402: true, 403: true, 404: true, 405: true, 406: true, 408: true,
	409: true, 410: true, 411: true, 412: true, 413: true, 414: true, 415: true, 416: true,
	420: true, 422: true, 424: true, 428: true, 429: true, 431: true,
	500: true, 501: true, 502: true, 503: true, 504: true,
}

// Status is the label of an HTTP status: the code when it is a known one, else its class
// ("2xx" … "5xx"), or "other" outside 100–599.
func Status(code int) string {
	switch {
	case knownStatus[code]:
		return strconv.Itoa(code)
	case code >= 100 && code <= 599:
		return strconv.Itoa(code/100) + "xx"
	}
	return "other"
}

// maxLoggedMethod bounds the method as written to a log line.
const maxLoggedMethod = 16

// LogMethod is a method as a log line may carry it: a standard method as is; anything else cut to
// a few printable ASCII characters (the rest replaced), so a made-up method of any size or content
// stays a short, harmless hint.
func LogMethod(m string) string {
	if Method(m) != MethodOther {
		return m
	}
	var b strings.Builder
	for i := 0; i < len(m) && b.Len() < maxLoggedMethod; i++ {
		c := m[i]
		if c < 0x21 || c > 0x7e {
			c = '?'
		}
		b.WriteByte(c)
	}
	if len(m) > maxLoggedMethod {
		b.WriteString("...")
	}
	return b.String()
}
