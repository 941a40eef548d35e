package unified

import "errors"

// Sentinel errors shared by adapters, internal packages and the API layer. Wrap them with %w and
// match them with errors.Is; the api package maps each to one HTTP answer.
var (
	// ErrNotFound: the object does not exist, or belongs to another tenant (never revealed).
	ErrNotFound = errors.New("not found")
	// ErrNeedsReauth: the integrated account's credentials were refused by the provider; the
	// account must be linked again.
	ErrNeedsReauth = errors.New("integrated account needs re-authorization")
	// ErrRateLimited: the provider's quota is exhausted.
	ErrRateLimited = errors.New("rate limited")
	// ErrConflict: a concurrent writer changed the object first.
	ErrConflict = errors.New("conflict")
	// ErrInvalidInput: the caller's input is malformed.
	ErrInvalidInput = errors.New("invalid input")
	// ErrUpstream: the provider failed in a way the caller cannot fix.
	ErrUpstream = errors.New("upstream error")
)
