package unified

import (
	"errors"
	"time"
)

// Sentinel errors shared by adapters, internal packages and the API layer. Wrap them with %w and
// match them with errors.Is; the api package maps each to one HTTP answer. A provider's own error
// types match them too (their Is method), so callers never need the adapter's types.
var (
	// ErrNotFound: the object does not exist, or belongs to another tenant (never revealed).
	ErrNotFound = errors.New("not found")
	// ErrForbidden: the provider refused the linked person access to the object.
	ErrForbidden = errors.New("forbidden by the provider")
	// ErrNeedsReauth: the integrated account's credentials were refused by the provider; the
	// account must be linked again.
	ErrNeedsReauth = errors.New("integrated account needs re-authorization")
	// ErrRateLimited: the provider's quota is exhausted. The error may also be a RateLimit,
	// which says how long to wait.
	ErrRateLimited = errors.New("rate limited")
	// ErrConflict: a concurrent writer changed the object first.
	ErrConflict = errors.New("conflict")
	// ErrInvalidInput: the caller's input is malformed.
	ErrInvalidInput = errors.New("invalid input")
	// ErrUpstream: the provider failed (an answer of 5xx) in a way the caller cannot fix.
	ErrUpstream = errors.New("upstream error")
)

// IsSentinel reports whether err is one of the sentinels above itself (not an error wrapping one).
func IsSentinel(err error) bool {
	switch err {
	case ErrNotFound, ErrForbidden, ErrNeedsReauth, ErrRateLimited, ErrConflict, ErrInvalidInput, ErrUpstream:
		return true
	}
	return false
}

// ProviderError is implemented by an error that is the provider's answer to a call. Find it with
// errors.As; what it means is told by the sentinels it matches with errors.Is.
type ProviderError interface {
	error
	// ProviderStatus is the HTTP status the provider answered.
	ProviderStatus() int
	// ProviderBody is the provider's answer when it is JSON fit to show the caller; else nil.
	ProviderBody() []byte
	// ProviderMessage is the provider's short description of the failure, for people; may be "".
	ProviderMessage() string
}

// RateLimit is implemented by a rate-limit error that knows how long the provider asked to wait.
type RateLimit interface {
	error
	// RetryAfter is the wait, and whether the provider said it.
	RetryAfter() (time.Duration, bool)
}

// ProviderStatus is the status of the provider's answer in err's tree, or 0 when there is none.
func ProviderStatus(err error) int {
	if pe, ok := errors.AsType[ProviderError](err); ok {
		return pe.ProviderStatus()
	}
	return 0
}
