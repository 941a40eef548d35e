package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"

	"github.com/labstack/echo/v4"

	"github.com/dirgate/dirgate/internal/jobs"
	"github.com/dirgate/dirgate/internal/store"
	"github.com/dirgate/dirgate/unified"
)

// Error is an answer to the caller: an HTTP status plus the fields of the common error body.
type Error struct {
	Status     int
	Code       string
	Message    string
	RetryAfter int     // seconds; 0 = not sent
	Remote     *Remote // the upstream answer, when the error came from Podio
	// Err is the cause, for logs only; it never reaches the caller.
	Err error
}

// Remote is the upstream (Podio) answer carried in an error body.
type Remote struct {
	// Status is Podio's HTTP status; absent when Podio did not answer.
	Status int             `json:"status,omitempty"`
	Body   json.RawMessage `json:"body,omitempty"`
	// Reason says why there is no answer: "timeout" or "unreachable".
	Reason string `json:"reason,omitempty"`
}

func (e *Error) Error() string {
	if e.Err != nil {
		return e.Code + ": " + e.Message + ": " + e.Err.Error()
	}
	return e.Code + ": " + e.Message
}

func (e *Error) Unwrap() error { return e.Err }

// newError builds an answer with a status, a stable machine code and a message for people.
func newError(status int, code, message string) *Error {
	return &Error{Status: status, Code: code, Message: message}
}

func badRequest(message string) *Error {
	return newError(http.StatusBadRequest, "invalid_request", message)
}

func notFound(what string) *Error {
	return newError(http.StatusNotFound, "not_found", what+" not found")
}

// errorBody is the wire shape of every error.
type errorBody struct {
	Error errorFields `json:"error"`
}

type errorFields struct {
	Code       string  `json:"code"`
	Message    string  `json:"message"`
	RequestID  string  `json:"request_id"`
	RetryAfter *int    `json:"retry_after,omitempty"`
	Remote     *Remote `json:"remote,omitempty"`
}

// toError maps any error a handler or middleware returned to the answer the caller gets.
// This is the one place where errors become HTTP.
func toError(err error) *Error {
	if e, ok := errors.AsType[*Error](err); ok {
		return e
	}
	if he, ok := errors.AsType[*echo.HTTPError](err); ok {
		switch he.Code {
		case http.StatusNotFound:
			return newError(http.StatusNotFound, "not_found", "no such route")
		case http.StatusMethodNotAllowed:
			return newError(http.StatusMethodNotAllowed, "method_not_allowed", "method not allowed on this route")
		case http.StatusRequestEntityTooLarge:
			return newError(http.StatusRequestEntityTooLarge, "body_too_large", "request body too large")
		case http.StatusUnsupportedMediaType:
			return newError(http.StatusUnsupportedMediaType, "unsupported_media_type", "send application/json")
		case http.StatusServiceUnavailable:
			return newError(http.StatusServiceUnavailable, "unavailable", "service unavailable")
		}
		if he.Code >= 400 && he.Code < 500 {
			return &Error{Status: he.Code, Code: "invalid_request", Message: http.StatusText(he.Code), Err: err}
		}
		return &Error{Status: http.StatusInternalServerError, Code: "internal_error", Message: "internal error", Err: err}
	}
	if pe, ok := providerFirst(err); ok {
		return providerAnswer(err, pe)
	}
	switch {
	case errors.Is(err, unified.ErrNotFound):
		return &Error{Status: http.StatusNotFound, Code: "not_found", Message: "not found", Err: err}
	case errors.Is(err, unified.ErrNeedsReauth):
		return &Error{Status: http.StatusFailedDependency, Code: "needs_reauth",
			Message: "the integrated account must be linked again: Podio refused its credentials", Err: err}
	case errors.Is(err, unified.ErrInvalidInput):
		return &Error{Status: http.StatusBadRequest, Code: "invalid_request", Message: err.Error(), Err: err}
	case errors.Is(err, unified.ErrConflict):
		return &Error{Status: http.StatusConflict, Code: "conflict", Message: "the object was changed concurrently; retry", Err: err}
	}
	if tm, ok := errors.AsType[*jobs.TooManyJobsError](err); ok {
		return &Error{Status: http.StatusTooManyRequests, Code: "too_many_jobs", RetryAfter: 60, Err: err,
			Message: fmt.Sprintf("the tenant has %d unfinished jobs, the most it may; wait for some to finish or cancel them", tm.Max)}
	}
	if qe := quotaError(err); qe != nil {
		return qe
	}
	if store.Unavailable(err) && !errors.Is(err, context.DeadlineExceeded) {
		// A Redis call that timed out on its own (DIRGATE_REDIS_TIMEOUT) is about Redis; a request
		// that ran out of time fails its Redis calls too, and that answer is about the time (next).
		return &Error{Status: http.StatusServiceUnavailable, Code: "store_unavailable",
			Message: "dirgate's Redis is unreachable; try again shortly", RetryAfter: 1, Err: err}
	}
	if isTimeout(err) {
		return &Error{Status: http.StatusGatewayTimeout, Code: "upstream_timeout", Message: "Podio did not answer in time",
			Remote: &Remote{Reason: "timeout"}, Err: err}
	}
	if _, ok := errors.AsType[*url.Error](err); ok || errors.Is(err, errUpstreamUnavailable) {
		return &Error{Status: http.StatusBadGateway, Code: "upstream_unavailable", Message: "Podio could not be reached",
			Remote: &Remote{Reason: "unreachable"}, Err: err}
	}
	return &Error{Status: http.StatusInternalServerError, Code: "internal_error", Message: "internal error", Err: err}
}

// isTimeout reports a call that ran out of time: the request's deadline, or a network timeout
// talking to Podio.
func isTimeout(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	ne, ok := errors.AsType[net.Error](err)
	return ok && ne.Timeout()
}

// errUpstreamUnavailable marks network failures talking to Podio.
var errUpstreamUnavailable = errors.New("podio unreachable")

func remoteOf(pe unified.ProviderError) *Remote {
	if pe == nil {
		return nil
	}
	return &Remote{Status: pe.ProviderStatus(), Body: pe.ProviderBody()}
}

// providerFirst finds the provider's answer in err's tree, unless one of the unified sentinels
// comes first (in errors.Is order): what dirgate's own code said of a failure outranks the answer
// it wraps (an adapter's "not found" over Podio's 403, say).
func providerFirst(err error) (unified.ProviderError, bool) {
	var found unified.ProviderError
	walkErrors(err, func(e error) bool {
		if unified.IsSentinel(e) {
			return true
		}
		if pe, ok := e.(unified.ProviderError); ok {
			found = pe
			return true
		}
		return false
	})
	return found, found != nil
}

// walkErrors visits err's tree in the order errors.Is does, until visit returns true.
func walkErrors(err error, visit func(error) bool) bool {
	for err != nil {
		if visit(err) {
			return true
		}
		switch x := err.(type) {
		case interface{ Unwrap() []error }:
			for _, e := range x.Unwrap() {
				if walkErrors(e, visit) {
					return true
				}
			}
			return false
		case interface{ Unwrap() error }:
			err = x.Unwrap()
		default:
			return false
		}
	}
	return false
}

// providerAnswer is the answer to a failure the provider answered with pe.
func providerAnswer(err error, pe unified.ProviderError) *Error {
	if errors.Is(pe, unified.ErrRateLimited) {
		e := &Error{Status: http.StatusTooManyRequests, Code: "rate_limited", Message: "Podio's rate limit is exhausted", Err: err}
		if rl, ok := errors.AsType[unified.RateLimit](err); ok {
			if wait, known := rl.RetryAfter(); known {
				e.RetryAfter = max(int(wait.Seconds()), 1)
			}
		}
		e.Remote = remoteOf(pe)
		return e
	}
	e := &Error{Status: http.StatusBadGateway, Code: "upstream_error", Message: "Podio answered with an error", Err: err}
	switch pe.ProviderStatus() {
	case http.StatusServiceUnavailable:
		e.Status, e.Code, e.Message = http.StatusServiceUnavailable, "upstream_unavailable", "Podio is unavailable"
	case http.StatusGatewayTimeout:
		e.Status, e.Code, e.Message = http.StatusGatewayTimeout, "upstream_timeout", "Podio timed out"
	case http.StatusForbidden:
		e.Status, e.Code, e.Message = http.StatusForbidden, "forbidden_upstream", "Podio refused: "+pe.ProviderMessage()
	case http.StatusNotFound:
		e.Status, e.Code, e.Message = http.StatusNotFound, "not_found", "not found in Podio"
	}
	e.Remote = remoteOf(pe)
	return e
}

// handleError is echo's HTTPErrorHandler: it writes the common error body and logs server faults.
func (s *Server) handleError(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	e := toError(err)
	rid := requestID(c)
	if e.Status >= 500 {
		s.log.ErrorContext(c.Request().Context(), "request failed", "request_id", rid, "route", c.Path(),
			"status", e.Status, "code", e.Code, "err", e.Err)
	}
	body := errorBody{Error: errorFields{Code: e.Code, Message: e.Message, RequestID: rid, Remote: e.Remote}}
	if e.RetryAfter > 0 {
		ra := e.RetryAfter
		body.Error.RetryAfter = &ra
		c.Response().Header().Set("Retry-After", strconv.Itoa(ra))
	}
	if e.Status == http.StatusUnauthorized {
		c.Response().Header().Set("WWW-Authenticate", `Bearer realm="dirgate"`)
	}
	var werr error
	if c.Request().Method == http.MethodHead {
		werr = c.NoContent(e.Status)
	} else {
		werr = c.JSON(e.Status, body)
	}
	if werr != nil {
		s.log.WarnContext(c.Request().Context(), "writing error response", "request_id", rid, "err", werr)
	}
}
