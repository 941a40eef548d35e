package store

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/dirgate/dirgate/unified"
)

// Refresh is the outcome of an account's token refreshes. The last successful one is
// Account.LastRefreshedAt.
type Refresh struct {
	// LastAttemptAt is when the last refresh ended, successfully or not; zero if never.
	LastAttemptAt time.Time
	// LastError is a short code for why the last refresh failed ("" when it succeeded).
	LastError string
	// ConsecutiveFailures counts the failed refreshes since the last success.
	ConsecutiveFailures int64
}

// Credentials are an account's OAuth tokens in plaintext. They exist only in memory; Redis holds
// them sealed. String hides the tokens.
type Credentials struct {
	AccessToken, RefreshToken string
	// Expiry is when AccessToken expires; zero if unknown.
	Expiry time.Time
	Scope  string
}

// String describes the credentials without the tokens.
func (c Credentials) String() string {
	return fmt.Sprintf("store.Credentials{access=%s refresh=%s expiry=%s scope=%q}",
		redacted(c.AccessToken), redacted(c.RefreshToken), c.Expiry.Format(time.RFC3339), c.Scope)
}

// GoString is String, so that %#v does not print the tokens either.
func (c Credentials) GoString() string { return c.String() }

func redacted(s string) string {
	if s == "" {
		return "<empty>"
	}
	return "<redacted>"
}

// aad binds a sealed field to its tenant, account and field name.
func aad(tenant, id, field string) []byte {
	return []byte("dirgate/v1|" + tenant + "|" + id + "|" + field)
}

// sealCredentials returns the hash fields holding c, sealed with the active key.
func (s *Store) sealCredentials(tenant, id string, c Credentials) ([]any, error) {
	at, err := s.ring.Seal([]byte(c.AccessToken), aad(tenant, id, fAccessToken))
	if err != nil {
		return nil, fmt.Errorf("store: sealing credentials: %w", err)
	}
	rt, err := s.ring.Seal([]byte(c.RefreshToken), aad(tenant, id, fRefreshToken))
	if err != nil {
		return nil, fmt.Errorf("store: sealing credentials: %w", err)
	}
	return []any{fAccessToken, at, fRefreshToken, rt, fAccessExpiry, formatTime(c.Expiry), fScope, c.Scope}, nil
}

// LoadCredentials returns the account and its decrypted credentials.
func (s *Store) LoadCredentials(ctx context.Context, tenant, id string) (Account, Credentials, error) {
	a, h, err := s.load(ctx, tenant, id)
	if err != nil {
		return Account{}, Credentials{}, err
	}
	c, _, err := s.openCredentials(tenant, id, h)
	if err != nil {
		return Account{}, Credentials{}, err
	}
	return a, c, nil
}

// openCredentials decrypts the sealed fields of a record; stale reports that at least one was
// sealed under a key other than the active one.
func (s *Store) openCredentials(tenant, id string, h map[string]string) (Credentials, bool, error) {
	at, stale1, err := s.ring.Open(h[fAccessToken], aad(tenant, id, fAccessToken))
	if err != nil {
		return Credentials{}, false, fmt.Errorf("store: account %q: access token: %w", id, err)
	}
	rt, stale2, err := s.ring.Open(h[fRefreshToken], aad(tenant, id, fRefreshToken))
	if err != nil {
		return Credentials{}, false, fmt.Errorf("store: account %q: refresh token: %w", id, err)
	}
	exp, err := parseTime(h[fAccessExpiry])
	if err != nil {
		return Credentials{}, false, fmt.Errorf("store: account %q: corrupt field %s: %w", id, fAccessExpiry, err)
	}
	return Credentials{AccessToken: string(at), RefreshToken: string(rt), Expiry: exp, Scope: h[fScope]}, stale1 || stale2, nil
}

// SaveCredentials replaces the credentials if the stored Version still equals expectVersion
// (else an error wrapping unified.ErrConflict, and nothing is written). Both tokens are sealed
// with the active key; the version is incremented, the status becomes active, and
// LastRefreshedAt is set to now when refreshed is true. The write is one Lua script, so it is
// never partial.
func (s *Store) SaveCredentials(ctx context.Context, tenant, id string, expectVersion int64, c Credentials, refreshed bool) (Account, error) {
	if expectVersion < 0 {
		return Account{}, fmt.Errorf("store: negative version: %w", unified.ErrInvalidInput)
	}
	if c.AccessToken == "" {
		return Account{}, fmt.Errorf("store: credentials have no access token: %w", unified.ErrInvalidInput)
	}
	sealed, err := s.sealCredentials(tenant, id, c)
	if err != nil {
		return Account{}, err
	}
	now := formatTime(s.now())
	fields := append(sealed, fStatus, StatusActive, fUpdatedAt, now)
	if refreshed {
		fields = append(fields, fLastRefreshed, now, fRefreshAt, now, fRefreshErr, "", fRefreshFails, "0")
	}
	a, _, err := s.update(ctx, tenant, id, expectVersion, true, fields)
	return a, err
}

// Reauthorize replaces the credentials unconditionally after a successful re-link, updates the
// identity fields, makes the account active and increments its version.
func (s *Store) Reauthorize(ctx context.Context, tenant, id string, c Credentials, name, email string, podioUserID int64) (Account, error) {
	if c.AccessToken == "" {
		return Account{}, fmt.Errorf("store: credentials have no access token: %w", unified.ErrInvalidInput)
	}
	sealed, err := s.sealCredentials(tenant, id, c)
	if err != nil {
		return Account{}, err
	}
	fields := append(sealed,
		fStatus, StatusActive,
		fName, name,
		fEmail, email,
		fPodioUserID, strconv.FormatInt(podioUserID, 10),
		fUpdatedAt, formatTime(s.now()),
	)
	a, _, err := s.update(ctx, tenant, id, -1, true, fields)
	return a, err
}

// refreshFailureScript records a failed refresh: KEYS[1] = record; ARGV[1] = tenant, ARGV[2] =
// time, ARGV[3] = error code. It counts the failure in the same write, so concurrent replicas do
// not lose counts.
var refreshFailureScript = redis.NewScript(`
local t = redis.call('HGET', KEYS[1], 'tenant')
if not t or t ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'refresh_last_attempt_at', ARGV[2], 'refresh_last_error', ARGV[3])
redis.call('HINCRBY', KEYS[1], 'refresh_failures', 1)
return 1
`)

// RecordRefreshFailure records that refreshing the account's token failed at at, for errCode (a
// short code, never an upstream message that could quote a secret), and counts it in
// Refresh.ConsecutiveFailures. A successful refresh (SaveCredentials with refreshed) clears both.
func (s *Store) RecordRefreshFailure(ctx context.Context, tenant, id string, at time.Time, errCode string) error {
	if !validTenant(tenant) || !validID(id) {
		return notFound(id)
	}
	n, err := refreshFailureScript.Run(ctx, s.rdb, []string{s.recKey(id)}, tenant, formatTime(at), errCode).Int()
	if err != nil {
		return fmt.Errorf("store: account %q: recording refresh failure: %w", id, err)
	}
	if n == 0 {
		return notFound(id)
	}
	return nil
}
