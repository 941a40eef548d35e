package podio

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/dirgate/dirgate/unified"
)

// StatusRateLimited is the status Podio answers with when a rate limit is
// exceeded (420, not 429).
const StatusRateLimited = 420

// ErrorRequest is the echo of the failed call that Podio puts in an error
// body.
type ErrorRequest struct {
	URL         string `json:"url"`
	QueryString string `json:"query_string"`
	Method      string `json:"method"`
}

// Error is a non-2xx answer from Podio (podio-api.md §9.1). Bodies that are
// not Podio JSON (an HTML page from a proxy, say) still produce an *Error,
// with only the status fields set.
type Error struct {
	// Response is the HTTP response that carried the error; its body has
	// been read (see Body).
	Response *http.Response `json:"-"`
	// StatusCode is the HTTP status.
	StatusCode int `json:"-"`
	// Code is Podio's machine code ("error"), e.g. "not_found".
	Code string `json:"error"`
	// Description is "error_description": text, or a sub-code such as
	// "expired_token".
	Description string `json:"error_description"`
	// Detail is "error_detail" as sent (string, object or null).
	Detail json.RawMessage `json:"error_detail,omitempty"`
	// Parameters is "error_parameters" as sent.
	Parameters json.RawMessage `json:"error_parameters,omitempty"`
	// Propagate is "error_propagate": whether Description may be shown to
	// end users.
	Propagate bool `json:"error_propagate"`
	// Request is Podio's echo of the call.
	Request ErrorRequest `json:"request"`
	// RequestID is the x-podio-request-id header, if any.
	RequestID string `json:"-"`
	// Body is the raw error body, truncated to 64 KiB. It is never part of
	// Error().
	Body []byte `json:"-"`
}

// Error describes the failure without the body.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("podio: ")
	if e.Response != nil && e.Response.Request != nil && e.Response.Request.URL != nil {
		fmt.Fprintf(&b, "%s %s: ", e.Response.Request.Method, e.Response.Request.URL.Path)
	}
	fmt.Fprintf(&b, "%d", e.StatusCode)
	switch {
	case e.Code != "":
		b.WriteString(" " + e.Code)
	case http.StatusText(e.StatusCode) != "":
		b.WriteString(" " + http.StatusText(e.StatusCode))
	}
	if e.Description != "" {
		b.WriteString(": " + e.Description)
	}
	return b.String()
}

// IsExpiredToken reports whether the access token must be refreshed: status
// 401 and error_description "expired_token" or error "invalid_token"
// (podio-api.md §2.4).
func (e *Error) IsExpiredToken() bool {
	return e != nil && e.StatusCode == http.StatusUnauthorized &&
		(e.Description == "expired_token" || e.Code == "invalid_token")
}

// IsInvalidGrant reports whether a code, password or refresh token was
// refused (error "invalid_grant"); the user has to authenticate again.
func (e *Error) IsInvalidGrant() bool {
	return e != nil && e.Code == "invalid_grant"
}

// IsForbidden reports whether Podio answered 403.
func (e *Error) IsForbidden() bool {
	return e != nil && e.StatusCode == http.StatusForbidden
}

// IsNotFound reports whether Podio answered 404.
func (e *Error) IsNotFound() bool {
	return e != nil && e.StatusCode == http.StatusNotFound
}

// IsRateLimited reports whether Podio answered 420.
func (e *Error) IsRateLimited() bool {
	return e != nil && e.StatusCode == StatusRateLimited
}

// The provider-neutral contract: an *Error is a unified.ProviderError and matches the unified
// sentinel its answer stands for; a *RateLimitError is a unified.RateLimit.
var (
	_ unified.ProviderError = (*Error)(nil)
	_ unified.RateLimit     = (*RateLimitError)(nil)
)

// Is matches the unified sentinels: 404 unified.ErrNotFound, 403 unified.ErrForbidden, 420
// unified.ErrRateLimited, a refused grant (invalid_grant) unified.ErrNeedsReauth, 5xx
// unified.ErrUpstream.
func (e *Error) Is(target error) bool {
	switch target {
	case unified.ErrNotFound:
		return e.IsNotFound()
	case unified.ErrForbidden:
		return e.IsForbidden()
	case unified.ErrRateLimited:
		return e.IsRateLimited()
	case unified.ErrNeedsReauth:
		return e.IsInvalidGrant()
	case unified.ErrUpstream:
		return e.StatusCode >= 500
	}
	return false
}

// ProviderStatus is the HTTP status Podio answered.
func (e *Error) ProviderStatus() int { return e.StatusCode }

// ProviderBody is Podio's error body when it is JSON, else nil.
func (e *Error) ProviderBody() []byte {
	if json.Valid(e.Body) {
		return e.Body
	}
	return nil
}

// ProviderMessage is Podio's error_description.
func (e *Error) ProviderMessage() string { return e.Description }

// Is matches unified.ErrRateLimited, also without an underlying *Error.
func (e *RateLimitError) Is(target error) bool { return target == unified.ErrRateLimited }

// RetryAfter is how long Podio asked to wait, and whether it said.
func (e *RateLimitError) RetryAfter() (time.Duration, bool) { return e.Wait, e.WaitKnown }

// RateLimitError is Podio's 420 answer. It unwraps to the underlying *Error.
type RateLimitError struct {
	// Err is the Podio error body.
	Err *Error
	// Rate is the rate-limit state reported with the answer.
	Rate Rate
	// Wait is how long Podio asked to wait: parsed from the description
	// ("Please wait N seconds"), else from a Retry-After header. Podio
	// exposes no reset time, so Wait may be unknown (zero, WaitKnown false).
	Wait time.Duration
	// WaitKnown reports whether Wait came from the answer.
	WaitKnown bool
}

// Error describes the rate limit.
func (e *RateLimitError) Error() string {
	msg := "rate limited"
	if e.Err != nil {
		msg = e.Err.Error()
	}
	if e.WaitKnown {
		return fmt.Sprintf("%s (wait %s)", msg, e.Wait)
	}
	return msg + " (wait unknown)"
}

// Unwrap returns the underlying *Error.
func (e *RateLimitError) Unwrap() error {
	if e.Err == nil {
		return nil
	}
	return e.Err
}

var waitPattern = regexp.MustCompile(`(?i)wait\s+(\d+)\s+second`)

// CheckResponse returns nil for a 2xx answer and otherwise the typed error
// the answer stands for: *RateLimitError for 420, *Error for everything
// else. It reads the body (up to 64 KiB) and leaves a re-readable copy in
// r.Body.
func CheckResponse(r *http.Response) error {
	if r.StatusCode >= 200 && r.StatusCode <= 299 {
		return nil
	}
	var data []byte
	if r.Body != nil {
		data, _ = io.ReadAll(io.LimitReader(r.Body, maxErrorBody))
		r.Body = io.NopCloser(bytes.NewReader(data))
	}
	return errorFromBody(r, data)
}

// errorFromBody builds the typed error for a failed answer whose body has
// been read. The OAuth service uses it for token-endpoint errors too, so that
// every Podio error has the same shape.
func errorFromBody(r *http.Response, data []byte) error {
	e := &Error{
		Response:   r,
		StatusCode: r.StatusCode,
		RequestID:  r.Header.Get(headerRequestID),
		Body:       data,
	}
	if len(bytes.TrimSpace(data)) > 0 {
		// A body that is not a Podio error object leaves the fields empty.
		var body Error
		if json.Unmarshal(data, &body) == nil {
			e.Code = body.Code
			e.Description = body.Description
			e.Detail = body.Detail
			e.Parameters = body.Parameters
			e.Propagate = body.Propagate
			e.Request = body.Request
		}
	}
	if r.StatusCode != StatusRateLimited {
		return e
	}
	rl := &RateLimitError{Err: e, Rate: parseRate(r)}
	if m := waitPattern.FindStringSubmatch(e.Description); m != nil {
		if n, err := strconv.Atoi(m[1]); err == nil {
			rl.Wait, rl.WaitKnown = time.Duration(n)*time.Second, true
		}
	}
	if !rl.WaitKnown {
		rl.Wait, rl.WaitKnown = retryAfter(r)
	}
	return rl
}

// retryAfter parses a Retry-After header (seconds or an HTTP date, the latter
// measured from the response's Date header so no local clock is involved).
func retryAfter(r *http.Response) (time.Duration, bool) {
	v := strings.TrimSpace(r.Header.Get(headerRetryAfter))
	if v == "" {
		return 0, false
	}
	if n, err := strconv.Atoi(v); err == nil && n >= 0 {
		return time.Duration(n) * time.Second, true
	}
	at, err := http.ParseTime(v)
	if err != nil {
		return 0, false
	}
	now, err := http.ParseTime(r.Header.Get("Date"))
	if err != nil {
		return 0, false
	}
	return max(at.Sub(now), 0), true
}
