package store

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/dirgate/dirgate/unified"
)

// LinkToken is a pending account link: what a single-use link token stands for.
type LinkToken struct {
	Tenant      string    `json:"tenant"`
	RedirectURI string    `json:"redirect_uri"`
	AccountID   string    `json:"account_id,omitempty"` // set when re-linking an existing account
	ExpiresAt   time.Time `json:"expires_at"`
	// AppName, LogoURL and ReturnOrigin dress the hosted pages: the tenant's product name and
	// logo, and the origin of the window that opened the link as a popup (told the result).
	AppName      string `json:"app_name,omitempty"`
	LogoURL      string `json:"logo_url,omitempty"`
	ReturnOrigin string `json:"return_origin,omitempty"`
}

// OAuthState is what the OAuth state parameter of an authorization redirect stands for.
type OAuthState struct {
	LinkToken           LinkToken `json:"link_token"`
	RedirectURIForPodio string    `json:"redirect_uri_for_podio"`
}

// secretKey names a single-use secret by its SHA-256, so Redis never holds the secret itself.
func (s *Store) secretKey(kind, secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return s.prefix + kind + ":" + hex.EncodeToString(sum[:])
}

// PutLinkToken stores lt under token until lt.ExpiresAt (Redis TTL = ExpiresAt - now). A token
// already expired is unified.ErrInvalidInput.
func (s *Store) PutLinkToken(ctx context.Context, token string, lt LinkToken) error {
	return s.putUntil(ctx, "link", token, lt, lt.ExpiresAt)
}

// putUntil stores v under the secret token of kind until expires; an empty token or a time
// already past is unified.ErrInvalidInput.
func (s *Store) putUntil(ctx context.Context, kind, token string, v any, expires time.Time) error {
	if token == "" {
		return fmt.Errorf("store: empty %s token: %w", kind, unified.ErrInvalidInput)
	}
	ttl := expires.Sub(s.now())
	if ttl <= 0 {
		return fmt.Errorf("store: %s token already expired: %w", kind, unified.ErrInvalidInput)
	}
	return s.putSecret(ctx, kind, token, v, ttl)
}

// TakeLinkToken returns and deletes what token stands for (GETDEL: a token works once). A missing,
// used or expired token is unified.ErrNotFound.
func (s *Store) TakeLinkToken(ctx context.Context, token string) (LinkToken, error) {
	var lt LinkToken
	if err := s.takeSecret(ctx, "link", token, &lt); err != nil {
		return LinkToken{}, err
	}
	// Redis expiry has millisecond resolution and follows the server clock; the record's own
	// deadline is checked against ours too.
	if !s.now().Before(lt.ExpiresAt) {
		return LinkToken{}, fmt.Errorf("store: link token expired: %w", unified.ErrNotFound)
	}
	return lt, nil
}

// PeekLinkToken returns what token stands for without using it up: the link page shows it,
// and link previewers that fetch the page must not burn the token. A missing, used or expired
// token is unified.ErrNotFound.
func (s *Store) PeekLinkToken(ctx context.Context, token string) (LinkToken, error) {
	var lt LinkToken
	if token == "" {
		return LinkToken{}, fmt.Errorf("store: link: %w", unified.ErrNotFound)
	}
	b, err := s.rdb.Get(ctx, s.secretKey("link", token)).Bytes()
	if errors.Is(err, redis.Nil) {
		return LinkToken{}, fmt.Errorf("store: link: %w", unified.ErrNotFound)
	}
	if err != nil {
		return LinkToken{}, fmt.Errorf("store: peek link: %w", err)
	}
	if err := json.Unmarshal(b, &lt); err != nil {
		return LinkToken{}, fmt.Errorf("store: decode link: %w", err)
	}
	if !s.now().Before(lt.ExpiresAt) {
		return LinkToken{}, fmt.Errorf("store: link token expired: %w", unified.ErrNotFound)
	}
	return lt, nil
}

// PutState stores st under state for ttl.
func (s *Store) PutState(ctx context.Context, state string, st OAuthState, ttl time.Duration) error {
	if state == "" {
		return fmt.Errorf("store: empty OAuth state: %w", unified.ErrInvalidInput)
	}
	if ttl <= 0 {
		return fmt.Errorf("store: OAuth state TTL must be positive: %w", unified.ErrInvalidInput)
	}
	return s.putSecret(ctx, "state", state, st, ttl)
}

// TakeState returns and deletes what state stands for (single use). A missing, used or expired
// state is unified.ErrNotFound.
func (s *Store) TakeState(ctx context.Context, state string) (OAuthState, error) {
	var st OAuthState
	if err := s.takeSecret(ctx, "state", state, &st); err != nil {
		return OAuthState{}, err
	}
	return st, nil
}

func (s *Store) putSecret(ctx context.Context, kind, secret string, v any, ttl time.Duration) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("store: encode %s: %w", kind, err)
	}
	if ttl < time.Millisecond {
		ttl = time.Millisecond
	}
	if err := s.rdb.Set(ctx, s.secretKey(kind, secret), b, ttl).Err(); err != nil {
		return fmt.Errorf("store: put %s: %w", kind, err)
	}
	return nil
}

func (s *Store) takeSecret(ctx context.Context, kind, secret string, v any) error {
	if secret == "" {
		return fmt.Errorf("store: %s: %w", kind, unified.ErrNotFound)
	}
	b, err := s.rdb.GetDel(ctx, s.secretKey(kind, secret)).Bytes()
	if errors.Is(err, redis.Nil) {
		return fmt.Errorf("store: %s: %w", kind, unified.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("store: take %s: %w", kind, err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("store: decode %s: %w", kind, err)
	}
	return nil
}

// PickerSession is what a workspace-picker token stands for: whose account the picker lists, how
// it selects, and the only origin the selection is posted to.
type PickerSession struct {
	Tenant          string    `json:"tenant"`
	AccountID       string    `json:"account_id"`
	MultiSelect     bool      `json:"multi_select"`
	OrganizationIDs []string  `json:"organization_ids,omitempty"`
	ReturnOrigin    string    `json:"return_origin"`
	ExpiresAt       time.Time `json:"expires_at"`
}

// PutPickerSession stores ps under token until ps.ExpiresAt. An already expired session is
// unified.ErrInvalidInput.
func (s *Store) PutPickerSession(ctx context.Context, token string, ps PickerSession) error {
	return s.putUntil(ctx, "picker", token, ps, ps.ExpiresAt)
}

// GetPickerSession returns what token stands for. Unlike link tokens it is not consumed: the page
// and its data request both present it until it expires. A missing or expired token is
// unified.ErrNotFound.
func (s *Store) GetPickerSession(ctx context.Context, token string) (PickerSession, error) {
	var ps PickerSession
	if token == "" {
		return ps, fmt.Errorf("store: picker: %w", unified.ErrNotFound)
	}
	b, err := s.rdb.Get(ctx, s.secretKey("picker", token)).Bytes()
	if errors.Is(err, redis.Nil) {
		return ps, fmt.Errorf("store: picker: %w", unified.ErrNotFound)
	}
	if err != nil {
		return ps, fmt.Errorf("store: get picker: %w", err)
	}
	if err := json.Unmarshal(b, &ps); err != nil {
		return ps, fmt.Errorf("store: decode picker: %w", err)
	}
	if !s.now().Before(ps.ExpiresAt) {
		return PickerSession{}, fmt.Errorf("store: picker session expired: %w", unified.ErrNotFound)
	}
	return ps, nil
}
