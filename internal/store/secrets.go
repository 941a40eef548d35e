package store

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
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
	// EndUser is the tenant's own reference to the customer the link is for; the account it
	// makes carries it.
	EndUser *EndUser `json:"end_user,omitempty"`
	// Digest is the link token's SHA-256 (hex), set when the token is taken: the link result
	// names the link token it came from without holding the token.
	Digest string `json:"digest,omitempty"`
}

// OAuthState is what the OAuth state parameter of an authorization redirect stands for.
type OAuthState struct {
	LinkToken           LinkToken `json:"link_token"`
	RedirectURIForPodio string    `json:"redirect_uri_for_podio"`
}

// secretKey names a single-use secret by its SHA-256, so Redis never holds the secret itself.
func (s *Store) secretKey(kind, secret string) string {
	return s.prefix + kind + ":" + Digest(secret)
}

// Digest is the SHA-256 (hex) of a secret token: what Redis holds in its place.
func Digest(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// LimitError says a tenant holds as many of something as it may (Limit); the oldest frees up at
// Until.
type LimitError struct {
	What  string // "link tokens" or "picker sessions"
	Limit int
	Until time.Time
}

func (e *LimitError) Error() string {
	return fmt.Sprintf("store: the tenant holds %d open %s, the most it may", e.Limit, e.What)
}

// PutLinkToken stores lt under token until lt.ExpiresAt (Redis TTL = ExpiresAt - now). A token
// already expired is unified.ErrInvalidInput; a tenant holding Options.MaxOpen open link tokens
// gets a *LimitError, and nothing is stored.
func (s *Store) PutLinkToken(ctx context.Context, token string, lt LinkToken) error {
	return s.putOpen(ctx, "link", "link tokens", lt.Tenant, token, lt, lt.ExpiresAt)
}

// openKey is the sorted set of a tenant's open secrets of kind: digest -> expiry (Unix ms).
func (s *Store) openKey(tenant, kind string) string {
	return s.prefix + "tenant:" + tenant + ":open:" + kind
}

// reserveScript counts a new open secret against its tenant's limit, atomically across replicas.
// KEYS[1] = open set; ARGV[1] = now (ms), ARGV[2] = its expiry (ms), ARGV[3] = digest, ARGV[4] =
// limit. Returns {1} when reserved, {0, expiry of the oldest} when the tenant is at its limit.
var reserveScript = redis.NewScript(`
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[4]) then
  local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  return {0, oldest[2]}
end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[3])
local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
-- Relative to the caller's clock: Redis's own may differ.
redis.call('PEXPIRE', KEYS[1], math.max(1, tonumber(last[2]) - tonumber(ARGV[1])))
return {1}
`)

// putOpen stores v under the secret token of kind until expires, counted against the tenant's
// limit of open ones (what names them in a *LimitError). The count is reserved first, so the
// limit holds however many replicas store at once; a failed write gives the place back.
func (s *Store) putOpen(ctx context.Context, kind, what, tenant, token string, v any, expires time.Time) error {
	if token == "" {
		return fmt.Errorf("store: empty %s token: %w", kind, unified.ErrInvalidInput)
	}
	if !validTenant(tenant) {
		return fmt.Errorf("store: %s: invalid tenant id: %w", kind, unified.ErrInvalidInput)
	}
	now := s.now()
	ttl := expires.Sub(now)
	if ttl <= 0 {
		return fmt.Errorf("store: %s token already expired: %w", kind, unified.ErrInvalidInput)
	}
	digest := Digest(token)
	res, err := reserveScript.Run(ctx, s.rdb, []string{s.openKey(tenant, kind)},
		now.UnixMilli(), expires.UnixMilli(), digest, s.maxOpen).Slice()
	if err != nil {
		return fmt.Errorf("store: %s: counting open ones: %w", kind, err)
	}
	if ok, _ := res[0].(int64); ok != 1 {
		le := &LimitError{What: what, Limit: s.maxOpen}
		if len(res) > 1 {
			if ms, err := strconv.ParseInt(fmt.Sprint(res[1]), 10, 64); err == nil {
				le.Until = time.UnixMilli(ms)
			}
		}
		return le
	}
	if err := s.putSecret(ctx, kind, token, v, ttl); err != nil {
		s.rdb.ZRem(context.WithoutCancel(ctx), s.openKey(tenant, kind), digest)
		return err
	}
	return nil
}

// TakeLinkToken returns and deletes what token stands for (GETDEL: a token works once). A missing,
// used or expired token is unified.ErrNotFound. The returned token carries its Digest.
func (s *Store) TakeLinkToken(ctx context.Context, token string) (LinkToken, error) {
	var lt LinkToken
	if err := s.takeSecret(ctx, "link", token, &lt); err != nil {
		return LinkToken{}, err
	}
	lt.Digest = Digest(token)
	// Used up: it no longer counts against the tenant (an error only leaves it counted until it
	// would have expired).
	_ = s.rdb.ZRem(ctx, s.openKey(lt.Tenant, "link"), lt.Digest).Err()
	// Redis expiry has millisecond resolution and follows the server clock; the record's own
	// deadline is checked against ours too.
	if !s.now().Before(lt.ExpiresAt) {
		return LinkToken{}, fmt.Errorf("store: link token expired: %w", unified.ErrNotFound)
	}
	return lt, nil
}

// LinkResult is what a link result code stands for: the account a browser link made or renewed,
// for the tenant whose link token it was.
type LinkResult struct {
	Tenant    string `json:"tenant"`
	AccountID string `json:"account_id"`
	// LinkToken is the Digest of the link token the link came from.
	LinkToken    string   `json:"link_token"`
	Reauthorized bool     `json:"reauthorized,omitempty"`
	EndUser      *EndUser `json:"end_user,omitempty"`
}

// PutLinkResult stores r under the single-use code for ttl.
func (s *Store) PutLinkResult(ctx context.Context, code string, r LinkResult, ttl time.Duration) error {
	if code == "" || ttl <= 0 {
		return fmt.Errorf("store: link result needs a code and a positive TTL: %w", unified.ErrInvalidInput)
	}
	return s.putSecret(ctx, "linkres", code, r, ttl)
}

// takeLinkResultScript deletes and returns a link result only for its own tenant (and link
// token, when one is named): a code presented by anyone else stays usable by its owner.
// KEYS[1] = record; ARGV[1] = tenant, ARGV[2] = link token digest or "".
var takeLinkResultScript = redis.NewScript(`
local v = redis.call('GET', KEYS[1])
if not v then return false end
local r = cjson.decode(v)
if r.tenant ~= ARGV[1] or (ARGV[2] ~= '' and r.link_token ~= ARGV[2]) then return false end
redis.call('DEL', KEYS[1])
return v
`)

// TakeLinkResult returns and deletes the tenant's link result code; with linkToken (not ""), only
// if it came from that link token. An unknown, used or expired code, or one of another tenant or
// link token, is unified.ErrNotFound (and stays as it was).
func (s *Store) TakeLinkResult(ctx context.Context, tenant, code, linkToken string) (LinkResult, error) {
	if code == "" || !validTenant(tenant) {
		return LinkResult{}, fmt.Errorf("store: link result: %w", unified.ErrNotFound)
	}
	digest := ""
	if linkToken != "" {
		digest = Digest(linkToken)
	}
	b, err := takeLinkResultScript.Run(ctx, s.rdb, []string{s.secretKey("linkres", code)}, tenant, digest).Text()
	if errors.Is(err, redis.Nil) {
		return LinkResult{}, fmt.Errorf("store: link result: %w", unified.ErrNotFound)
	}
	if err != nil {
		return LinkResult{}, fmt.Errorf("store: take link result: %w", err)
	}
	var r LinkResult
	if err := json.Unmarshal([]byte(b), &r); err != nil {
		return LinkResult{}, fmt.Errorf("store: decode link result: %w", err)
	}
	return r, nil
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
// unified.ErrInvalidInput; a tenant holding Options.MaxOpen unexpired picker sessions gets a
// *LimitError, and nothing is stored.
func (s *Store) PutPickerSession(ctx context.Context, token string, ps PickerSession) error {
	return s.putOpen(ctx, "picker", "picker sessions", ps.Tenant, token, ps, ps.ExpiresAt)
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
