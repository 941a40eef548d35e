package podio

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// Ref names who a token acts as ("ref" in the token response): type "user"
// with the user id for user flows; for app auth presumably "app" with the app
// id (UNCONFIRMED, podio-api.md §2.2).
type Ref struct {
	Type string
	ID   int64
}

// Token is a Podio OAuth token.
//
// Its String and GoString methods hide the secrets, so a Token printed with
// fmt by mistake does not leak them.
type Token struct {
	AccessToken  string
	RefreshToken string
	// TokenType is what Podio sends ("bearer"); requests use the OAuth2
	// scheme regardless.
	TokenType string
	// Expiry is when the access token expires, computed from expires_in with
	// the local clock; zero if unknown.
	Expiry time.Time
	// Scope is the granted scope string, e.g. "global:all".
	Scope string
	// Ref is who the token acts as.
	Ref Ref
}

// String describes the token without its secrets.
func (t Token) String() string {
	return fmt.Sprintf("podio.Token{type=%q ref=%s:%d scope=%q expiry=%s access=%s refresh=%s}",
		t.TokenType, t.Ref.Type, t.Ref.ID, t.Scope, t.Expiry.Format(time.RFC3339),
		mask(t.AccessToken), mask(t.RefreshToken))
}

// GoString is String, so that %#v does not print the secrets either.
func (t Token) GoString() string { return t.String() }

func mask(s string) string {
	if s == "" {
		return "<empty>"
	}
	return "<redacted>"
}

// TokenSource supplies access tokens to a Client. It is implemented by the
// caller, who decides where tokens live and how concurrent refreshes are
// coordinated (a rotated refresh token must be persisted before it is used).
type TokenSource interface {
	// Token returns the current token.
	Token(ctx context.Context) (*Token, error)
	// Refresh is called once when Podio says the token stale has expired. It
	// must return a fresh token; if another caller already replaced stale, it
	// may return that replacement instead of refreshing again.
	Refresh(ctx context.Context, stale *Token) (*Token, error)
}

// ErrCannotRefresh is returned by the Refresh method of a StaticTokenSource.
var ErrCannotRefresh = errors.New("podio: token source cannot refresh")

// StaticTokenSource returns a TokenSource that always returns t and cannot
// refresh it; meant for tests and scripts.
func StaticTokenSource(t *Token) TokenSource {
	return staticTokenSource{t: t}
}

type staticTokenSource struct{ t *Token }

func (s staticTokenSource) Token(context.Context) (*Token, error) { return s.t, nil }

func (s staticTokenSource) Refresh(context.Context, *Token) (*Token, error) {
	return nil, ErrCannotRefresh
}

// TokenSource returns an in-memory TokenSource that starts with t and
// refreshes it through the OAuth service (refresh_token grant), keeping the
// rotated refresh token. Concurrent refreshes of the same stale token result
// in one call to Podio. It keeps nothing outside the process: a gateway with
// several replicas needs its own shared store and lock instead.
func (s *OAuthService) TokenSource(t *Token) TokenSource {
	cp := *t
	return &memoryTokenSource{oauth: s, tok: &cp}
}

type memoryTokenSource struct {
	oauth *OAuthService

	mu  sync.Mutex
	tok *Token
}

func (m *memoryTokenSource) Token(context.Context) (*Token, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	cp := *m.tok
	return &cp, nil
}

func (m *memoryTokenSource) Refresh(ctx context.Context, stale *Token) (*Token, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if stale != nil && stale.AccessToken != m.tok.AccessToken {
		// Someone else refreshed while this caller's request was in flight.
		cp := *m.tok
		return &cp, nil
	}
	fresh, err := m.oauth.Refresh(ctx, m.tok.RefreshToken)
	if err != nil {
		return nil, err
	}
	m.tok = fresh
	cp := *fresh
	return &cp, nil
}
