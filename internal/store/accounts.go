package store

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/dirgate/dirgate/unified"
)

// Account statuses.
const (
	StatusActive      = "active"
	StatusNeedsReauth = "needs_reauth"
	StatusRevoked     = "revoked"
)

// Account is an integrated account: one tenant's link to one Podio identity. It never holds the
// tokens themselves; see Credentials.
type Account struct {
	ID, Tenant string
	// Status is StatusActive, StatusNeedsReauth or StatusRevoked.
	Status string
	// Provider is "podio".
	Provider string
	// GrantType is "authorization_code", "password" or "app".
	GrantType string
	// PodioUserID is the token's ref id: the user id, or the app id for app grants.
	PodioUserID          int64
	Name, Email          string
	CreatedAt, UpdatedAt time.Time
	// LastRefreshedAt is when the access token was last refreshed; zero if never.
	LastRefreshedAt time.Time
	// AccessExpiry is when the current access token expires; zero if unknown.
	AccessExpiry time.Time
	// Version is the credential version, incremented by every credential write; SaveCredentials
	// compares it.
	Version int64
	// ProxyTokensNotBefore revokes the account's proxy tokens issued before it; zero if never.
	ProxyTokensNotBefore time.Time
	// Refresh is how the last token refresh went (written by internal/creds).
	Refresh Refresh
	// Events is the account's change-detection setting and the outcome of its last poll. Records
	// written before it existed read as disabled.
	Events Events
	// EndUser is the tenant's own reference to the customer the account belongs to; nil if none.
	EndUser *EndUser
}

// EndUser is a tenant's reference to its own customer: opaque to dirgate, stored with the account
// so the tenant can find the account of a customer and check a link result against the session
// it started the link in.
type EndUser struct {
	ID             string `json:"id"`
	OrganizationID string `json:"organization_id,omitempty"`
	Email          string `json:"email,omitempty"`
	Name           string `json:"name,omitempty"`
}

// endUserFields are the record fields holding e ("" for all when e is nil: cleared).
func endUserFields(e *EndUser) []any {
	var v EndUser
	if e != nil {
		v = *e
	}
	return []any{fEndUserID, v.ID, fEndUserOrg, v.OrganizationID, fEndUserEmail, v.Email, fEndUserName, v.Name}
}

// Events is an account's change detection (the poller): whether it runs, how often, and how its
// last poll went.
type Events struct {
	Enabled bool
	// Interval between polls; zero means the gateway's default.
	Interval time.Duration
	// LastPollAt is when the last successful poll finished; zero if none.
	LastPollAt time.Time
	// LastPollError is a short code for why the last poll failed ("" when it succeeded).
	LastPollError string
}

// Record hash fields.
const (
	fTenant        = "tenant"
	fStatus        = "status"
	fProvider      = "provider"
	fGrantType     = "grant_type"
	fPodioUserID   = "podio_user_id"
	fName          = "name"
	fEmail         = "email"
	fCreatedAt     = "created_at"
	fUpdatedAt     = "updated_at"
	fLastRefreshed = "last_refreshed_at"
	fAccessExpiry  = "access_expiry"
	fVersion       = "version"
	fProxyNBF      = "proxy_tokens_not_before"
	fEventsEnabled = "events_enabled"
	fEventsIntvl   = "events_interval_ms"
	fEventsPollAt  = "events_last_poll_at"
	fEventsPollErr = "events_last_poll_error"
	fRefreshAt     = "refresh_last_attempt_at"
	fRefreshErr    = "refresh_last_error"
	fRefreshFails  = "refresh_failures"
	fEndUserID     = "end_user_id"
	fEndUserOrg    = "end_user_organization_id"
	fEndUserEmail  = "end_user_email"
	fEndUserName   = "end_user_name"
	fScope         = "scope"
	fAccessToken   = "access_token"
	fRefreshToken  = "refresh_token"
)

var idEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

// NewAccountID returns a new random account id: "ia_" and 26 lowercase base32 characters
// (128 random bits).
func NewAccountID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+).
	return "ia_" + strings.ToLower(idEncoding.EncodeToString(b[:]))
}

// ValidAccountID reports whether id can name an integrated account (see validID).
func ValidAccountID(id string) bool { return validID(id) }

// validID accepts ids that are safe inside a key and its hash tag: 1-64 of [A-Za-z0-9_-].
func validID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for _, c := range []byte(id) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// validTenant mirrors tenantauth.ValidTenantID: 1-128 of [A-Za-z0-9._:@-].
func validTenant(t string) bool {
	if t == "" || len(t) > 128 {
		return false
	}
	for _, c := range []byte(t) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("._:@-", c) >= 0) {
			return false
		}
	}
	return true
}

func validStatus(s string) bool {
	return s == StatusActive || s == StatusNeedsReauth || s == StatusRevoked
}

func formatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

func parseTime(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	return time.Parse(time.RFC3339Nano, s)
}

// decodeAccount reads the non-secret fields of a record hash.
func decodeAccount(id string, h map[string]string) (Account, error) {
	a := Account{
		ID:        id,
		Tenant:    h[fTenant],
		Status:    h[fStatus],
		Provider:  h[fProvider],
		GrantType: h[fGrantType],
		Name:      h[fName],
		Email:     h[fEmail],
	}
	var err error
	bad := func(field string, e error) error {
		return fmt.Errorf("store: account %q: corrupt field %s: %w", id, field, e)
	}
	if v := h[fPodioUserID]; v != "" {
		if a.PodioUserID, err = strconv.ParseInt(v, 10, 64); err != nil {
			return Account{}, bad(fPodioUserID, err)
		}
	}
	if a.Version, err = strconv.ParseInt(h[fVersion], 10, 64); err != nil {
		return Account{}, bad(fVersion, err)
	}
	if h[fEndUserID] != "" {
		a.EndUser = &EndUser{ID: h[fEndUserID], OrganizationID: h[fEndUserOrg], Email: h[fEndUserEmail], Name: h[fEndUserName]}
	}
	a.Events.Enabled = h[fEventsEnabled] == "1"
	a.Events.LastPollError = h[fEventsPollErr]
	a.Refresh.LastError = h[fRefreshErr]
	if v := h[fRefreshFails]; v != "" {
		if a.Refresh.ConsecutiveFailures, err = strconv.ParseInt(v, 10, 64); err != nil {
			return Account{}, bad(fRefreshFails, err)
		}
	}
	if v := h[fEventsIntvl]; v != "" {
		ms, err := strconv.ParseInt(v, 10, 64)
		if err != nil || ms < 0 {
			return Account{}, bad(fEventsIntvl, fmt.Errorf("not a duration in milliseconds: %q", v))
		}
		a.Events.Interval = time.Duration(ms) * time.Millisecond
	}
	for _, f := range []struct {
		name string
		dst  *time.Time
	}{{fCreatedAt, &a.CreatedAt}, {fUpdatedAt, &a.UpdatedAt}, {fLastRefreshed, &a.LastRefreshedAt}, {fAccessExpiry, &a.AccessExpiry},
		{fProxyNBF, &a.ProxyTokensNotBefore}, {fEventsPollAt, &a.Events.LastPollAt},
		{fRefreshAt, &a.Refresh.LastAttemptAt}} {
		if *f.dst, err = parseTime(h[f.name]); err != nil {
			return Account{}, bad(f.name, err)
		}
	}
	return a, nil
}

// createScript writes a new record unless the key exists. KEYS[1] = record; ARGV = field/value pairs.
var createScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV))
return 1
`)

// updateScript is the one write path for existing records: it checks the tenant, optionally the
// version (compare-and-set), writes the given fields, optionally bumps the version, and returns
// the whole record. KEYS[1] = record; ARGV[1] = tenant, ARGV[2] = expected version or "",
// ARGV[3] = "1" to bump the version, ARGV[4..] = field/value pairs.
var updateScript = redis.NewScript(`
local t = redis.call('HGET', KEYS[1], 'tenant')
if not t or t ~= ARGV[1] then return {'notfound'} end
local v = tonumber(redis.call('HGET', KEYS[1], 'version') or '0')
if ARGV[2] ~= '' and v ~= tonumber(ARGV[2]) then return {'conflict'} end
local args = {}
for i = 4, #ARGV do args[#args + 1] = ARGV[i] end
if ARGV[3] == '1' then
  args[#args + 1] = 'version'
  args[#args + 1] = tostring(v + 1)
end
if #args > 0 then redis.call('HSET', KEYS[1], unpack(args)) end
local r = redis.call('HGETALL', KEYS[1])
table.insert(r, 1, 'ok')
return r
`)

// update runs updateScript. expectVersion < 0 means no version check.
func (s *Store) update(ctx context.Context, tenant, id string, expectVersion int64, bump bool, fields []any) (Account, map[string]string, error) {
	if !validTenant(tenant) || !validID(id) {
		return Account{}, nil, notFound(id)
	}
	args := make([]any, 0, 3+len(fields))
	ev := ""
	if expectVersion >= 0 {
		ev = strconv.FormatInt(expectVersion, 10)
	}
	b := "0"
	if bump {
		b = "1"
	}
	args = append(args, tenant, ev, b)
	args = append(args, fields...)
	res, err := updateScript.Run(ctx, s.rdb, []string{s.recKey(id)}, args...).StringSlice()
	if err != nil {
		return Account{}, nil, fmt.Errorf("store: account %q: write: %w", id, err)
	}
	if len(res) == 0 {
		return Account{}, nil, fmt.Errorf("store: account %q: write: empty script reply", id)
	}
	switch res[0] {
	case "ok":
	case "notfound":
		return Account{}, nil, notFound(id)
	case "conflict":
		return Account{}, nil, fmt.Errorf("store: account %q: credentials changed since version %d: %w", id, expectVersion, unified.ErrConflict)
	default:
		return Account{}, nil, fmt.Errorf("store: account %q: write: unexpected script reply", id)
	}
	h := make(map[string]string, (len(res)-1)/2)
	for i := 1; i+1 < len(res); i += 2 {
		h[res[i]] = res[i+1]
	}
	a, err := decodeAccount(id, h)
	return a, h, err
}

// CreateAccount stores a new account with its credentials. An empty a.ID gets NewAccountID();
// Status defaults to active and Provider to "podio". Version is set to 1 and CreatedAt/UpdatedAt to
// now. An existing id is unified.ErrConflict.
func (s *Store) CreateAccount(ctx context.Context, a Account, c Credentials) (Account, error) {
	if a.ID == "" {
		a.ID = NewAccountID()
	}
	if !validID(a.ID) {
		return Account{}, fmt.Errorf("store: account id must be 1-64 of A-Z a-z 0-9 _ -: %w", unified.ErrInvalidInput)
	}
	if !validTenant(a.Tenant) {
		return Account{}, fmt.Errorf("store: invalid tenant id: %w", unified.ErrInvalidInput)
	}
	if a.Status == "" {
		a.Status = StatusActive
	}
	if !validStatus(a.Status) {
		return Account{}, fmt.Errorf("store: invalid status %q: %w", a.Status, unified.ErrInvalidInput)
	}
	if a.Provider == "" {
		a.Provider = "podio"
	}
	if c.AccessToken == "" {
		return Account{}, fmt.Errorf("store: credentials have no access token: %w", unified.ErrInvalidInput)
	}
	now := s.now().UTC()
	a.CreatedAt, a.UpdatedAt = now, now
	a.Version = 1
	a.AccessExpiry = c.Expiry
	sealed, err := s.sealCredentials(a.Tenant, a.ID, c)
	if err != nil {
		return Account{}, err
	}
	fields := append([]any{
		fTenant, a.Tenant,
		fStatus, a.Status,
		fProvider, a.Provider,
		fGrantType, a.GrantType,
		fPodioUserID, strconv.FormatInt(a.PodioUserID, 10),
		fName, a.Name,
		fEmail, a.Email,
		fCreatedAt, formatTime(a.CreatedAt),
		fUpdatedAt, formatTime(a.UpdatedAt),
		fLastRefreshed, formatTime(a.LastRefreshedAt),
		fVersion, "1",
	}, sealed...)
	if a.EndUser != nil {
		fields = append(fields, endUserFields(a.EndUser)...)
	}
	created, err := createScript.Run(ctx, s.rdb, []string{s.recKey(a.ID)}, fields...).Int()
	if err != nil {
		return Account{}, fmt.Errorf("store: create account: %w", err)
	}
	if created == 0 {
		return Account{}, fmt.Errorf("store: account %q already exists: %w", a.ID, unified.ErrConflict)
	}
	// The index is a separate key (another Cluster slot), written after the record; readers skip
	// index entries without a record, so a crash in between leaves nothing visible half-made.
	if err := s.rdb.SAdd(ctx, s.tenantKey(a.Tenant), a.ID).Err(); err != nil {
		_ = s.rdb.Del(context.WithoutCancel(ctx), s.recKey(a.ID)).Err()
		return Account{}, fmt.Errorf("store: create account: index: %w", err)
	}
	return a, nil
}

// load reads a record and checks its tenant.
func (s *Store) load(ctx context.Context, tenant, id string) (Account, map[string]string, error) {
	if !validTenant(tenant) || !validID(id) {
		return Account{}, nil, notFound(id)
	}
	h, err := s.rdb.HGetAll(ctx, s.recKey(id)).Result()
	if err != nil {
		return Account{}, nil, fmt.Errorf("store: account %q: read: %w", id, err)
	}
	if len(h) == 0 || h[fTenant] != tenant {
		return Account{}, nil, notFound(id)
	}
	a, err := decodeAccount(id, h)
	return a, h, err
}

// GetAccount returns the tenant's account id.
func (s *Store) GetAccount(ctx context.Context, tenant, id string) (Account, error) {
	a, _, err := s.load(ctx, tenant, id)
	return a, err
}

// ListAccounts returns the tenant's accounts sorted by CreatedAt, then ID.
func (s *Store) ListAccounts(ctx context.Context, tenant string) ([]Account, error) {
	if !validTenant(tenant) {
		return nil, nil
	}
	ids, err := s.rdb.SMembers(ctx, s.tenantKey(tenant)).Result()
	if err != nil {
		return nil, fmt.Errorf("store: list accounts: %w", err)
	}
	cmds := make([]*redis.MapStringStringCmd, 0, len(ids))
	pipe := s.rdb.Pipeline()
	var valid []string
	for _, id := range ids {
		if !validID(id) {
			continue
		}
		valid = append(valid, id)
		cmds = append(cmds, pipe.HGetAll(ctx, s.recKey(id)))
	}
	if len(cmds) > 0 {
		if _, err := pipe.Exec(ctx); err != nil {
			return nil, fmt.Errorf("store: list accounts: %w", err)
		}
	}
	out := make([]Account, 0, len(cmds))
	for i, cmd := range cmds {
		h := cmd.Val()
		if len(h) == 0 || h[fTenant] != tenant {
			continue // deleted meanwhile, or a stale index entry
		}
		a, err := decodeAccount(valid[i], h)
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	slices.SortFunc(out, func(x, y Account) int {
		if c := x.CreatedAt.Compare(y.CreatedAt); c != 0 {
			return c
		}
		return strings.Compare(x.ID, y.ID)
	})
	return out, nil
}

// DeleteAccount removes the account's record (and with it the credentials), every other key of
// the account (lock, cache entries) and its tenant index entry.
func (s *Store) DeleteAccount(ctx context.Context, tenant, id string) error {
	if _, _, err := s.load(ctx, tenant, id); err != nil {
		return err
	}
	// The record goes first: once it is gone the account is gone for every reader.
	if err := s.rdb.Del(ctx, s.recKey(id)).Err(); err != nil {
		return fmt.Errorf("store: delete account %q: %w", id, err)
	}
	var keys []string
	if err := s.scan(ctx, s.accountKeyPattern(id), func(k string) error {
		keys = append(keys, k)
		return nil
	}); err != nil {
		return fmt.Errorf("store: delete account %q: scan: %w", id, err)
	}
	// All keys of the account share its hash tag, so one DEL is fine on Cluster too.
	for chunk := range slices.Chunk(keys, 500) {
		if err := s.rdb.Del(ctx, chunk...).Err(); err != nil {
			return fmt.Errorf("store: delete account %q: %w", id, err)
		}
	}
	if err := s.rdb.SRem(ctx, s.tenantKey(tenant), id).Err(); err != nil {
		return fmt.Errorf("store: delete account %q: index: %w", id, err)
	}
	return nil
}

// SetStatus sets the account's status (active, needs_reauth or revoked). It does not change the
// credentials or their version.
func (s *Store) SetStatus(ctx context.Context, tenant, id, status string) (Account, error) {
	return s.setStatus(ctx, tenant, id, status, -1)
}

// SetStatusIfVersion is SetStatus guarded by the credential version: when the stored Version is no
// longer expectVersion (the credentials were replaced meanwhile, for example by a re-link) it
// writes nothing and returns an error wrapping unified.ErrConflict. The refresh path uses it to
// mark an account needs_reauth without undoing a concurrent Reauthorize.
func (s *Store) SetStatusIfVersion(ctx context.Context, tenant, id, status string, expectVersion int64) (Account, error) {
	if expectVersion < 0 {
		return Account{}, fmt.Errorf("store: negative version: %w", unified.ErrInvalidInput)
	}
	return s.setStatus(ctx, tenant, id, status, expectVersion)
}

func (s *Store) setStatus(ctx context.Context, tenant, id, status string, expectVersion int64) (Account, error) {
	if !validStatus(status) {
		return Account{}, fmt.Errorf("store: invalid status %q: %w", status, unified.ErrInvalidInput)
	}
	a, _, err := s.update(ctx, tenant, id, expectVersion, false, []any{fStatus, status, fUpdatedAt, formatTime(s.now())})
	return a, err
}

// RevokeProxyTokens revokes every proxy token of the account issued before at (they carry their
// issue time), by recording at in the account record.
func (s *Store) RevokeProxyTokens(ctx context.Context, tenant, id string, at time.Time) (Account, error) {
	a, _, err := s.update(ctx, tenant, id, -1, false, []any{fProxyNBF, formatTime(at), fUpdatedAt, formatTime(s.now())})
	return a, err
}

// SetEndUser replaces the account's end user (nil clears it). It does not change the credentials
// or their version.
func (s *Store) SetEndUser(ctx context.Context, tenant, id string, e *EndUser) (Account, error) {
	if e != nil && e.ID == "" {
		return Account{}, fmt.Errorf("store: an end user needs an id: %w", unified.ErrInvalidInput)
	}
	a, _, err := s.update(ctx, tenant, id, -1, false, append(endUserFields(e), fUpdatedAt, formatTime(s.now())))
	return a, err
}

// SetEvents turns the account's change detection on or off and sets its poll interval (zero: the
// gateway's default). It keeps the last poll's outcome and does not change the credentials or
// their version.
func (s *Store) SetEvents(ctx context.Context, tenant, id string, enabled bool, interval time.Duration) (Account, error) {
	if interval < 0 {
		return Account{}, fmt.Errorf("store: negative events interval: %w", unified.ErrInvalidInput)
	}
	on := ""
	if enabled {
		on = "1"
	}
	a, _, err := s.update(ctx, tenant, id, -1, false, []any{
		fEventsEnabled, on, fEventsIntvl, strconv.FormatInt(interval.Milliseconds(), 10), fUpdatedAt, formatTime(s.now()),
	})
	return a, err
}

// RecordPoll records the outcome of a poll of the account: at is when a successful one finished
// (errCode ""); a failed one keeps the last success time and records errCode. It leaves UpdatedAt
// alone: polling does not change the account.
func (s *Store) RecordPoll(ctx context.Context, tenant, id string, at time.Time, errCode string) error {
	fields := []any{fEventsPollErr, errCode}
	if errCode == "" {
		fields = append(fields, fEventsPollAt, formatTime(at))
	}
	_, _, err := s.update(ctx, tenant, id, -1, false, fields)
	return err
}

// ErrLockHeld is returned by ObtainRefreshLock when another holder has the lock.
var ErrLockHeld = errors.New("store: lock held by another holder")
