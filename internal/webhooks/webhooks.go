package webhooks

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/redis/go-redis/v9"

	"github.com/dirgate/dirgate/internal/crypt"
	"github.com/dirgate/dirgate/internal/events"
)

// Limits and defaults.
const (
	// MaxPerTenant is how many webhooks one tenant may have.
	MaxPerTenant = 20
	// MaxDescription bounds a webhook's description, in characters.
	MaxDescription = 500
	// AllEvents subscribes to every event type.
	AllEvents = "*"
	// DefaultRetention is how long a finished delivery stays listed; default of StoreOptions.
	DefaultRetention = 7 * 24 * time.Hour
	// maxListedDeliveries bounds a webhook's delivery list.
	maxListedDeliveries = 100
	secretPrefix        = "whsec_"
)

// ErrNotFound is returned for a webhook that does not exist or belongs to another tenant.
var ErrNotFound = errors.New("webhooks: webhook not found")

// ErrTooMany is returned by Create when the tenant already has MaxPerTenant webhooks.
var ErrTooMany = fmt.Errorf("webhooks: a tenant has at most %d webhooks", MaxPerTenant)

// ErrConflict is returned by RotateSecret when the webhook kept changing under it.
var ErrConflict = errors.New("webhooks: the webhook changed meanwhile; try again")

// Secret rotation: the previous secret keeps signing deliveries for an overlap window.
const (
	DefaultSecretOverlap = 24 * time.Hour
	MaxSecretOverlap     = 7 * 24 * time.Hour
)

// InvalidError is a refused webhook definition; Field names the input ("url", "events",
// "description").
type InvalidError struct {
	Field, Reason string
}

func (e *InvalidError) Error() string { return "webhooks: invalid " + e.Field + ": " + e.Reason }

// Webhook is a tenant's subscription. Its secret is never part of it: Create returns it once.
type Webhook struct {
	ID          string    `json:"id"`
	Tenant      string    `json:"tenant"`
	URL         string    `json:"url"`
	Events      []string  `json:"events"`
	Description string    `json:"description"`
	CreatedAt   time.Time `json:"created_at"`
	// PreviousSecretExpiresAt is set while a rotated-out secret still signs deliveries.
	PreviousSecretExpiresAt *time.Time `json:"previous_secret_expires_at,omitempty"`
}

// Matches reports whether the webhook subscribes to events of type typ.
func (w Webhook) Matches(typ string) bool {
	return slices.Contains(w.Events, AllEvents) || slices.Contains(w.Events, typ)
}

// record is a webhook as stored.
type record struct {
	Webhook
	// Secret is sealed with the key ring, bound to tenant and id.
	Secret string `json:"secret"`
	// PreviousSecret, sealed and bound likewise (as the previous one), signs deliveries too until
	// PreviousSecretExpiresAt.
	PreviousSecret string `json:"previous_secret,omitempty"`
}

// NewWebhook is what a tenant asks for.
type NewWebhook struct {
	URL         string
	Events      []string
	Description string
}

// StoreOptions configure a Store.
type StoreOptions struct {
	Client redis.UniversalClient
	Prefix string
	// Ring seals webhook secrets.
	Ring *crypt.Ring
	// AllowPrivate lets webhooks target loopback, private, link-local and other internal
	// addresses (dev mode, tests). Off in production: see the package doc.
	AllowPrivate bool
	// AllowHTTP lets webhooks use plain http URLs (dev mode, tests); by default only https is
	// accepted, at creation and again when delivering.
	AllowHTTP bool
	// Resolver resolves webhook hosts when they are created; nil means net.DefaultResolver.
	Resolver Resolver
	// Retention is how long a delivery stays listed after its retry window; default 7 days.
	Retention time.Duration
	Now       func() time.Time
}

// Store keeps webhooks and their deliveries in Redis.
type Store struct {
	rdb          redis.UniversalClient
	prefix       string
	ring         *crypt.Ring
	allowPrivate bool
	allowHTTP    bool
	resolver     Resolver
	retention    time.Duration
	now          func() time.Time
}

// NewStore returns a Store.
func NewStore(o StoreOptions) (*Store, error) {
	if o.Client == nil || o.Ring == nil {
		return nil, errors.New("webhooks: StoreOptions.Client and Ring are required")
	}
	if strings.ContainsAny(o.Prefix, "{}") {
		return nil, fmt.Errorf("webhooks: prefix %q must not contain { or }", o.Prefix)
	}
	if o.Resolver == nil {
		o.Resolver = net.DefaultResolver
	}
	if o.Retention <= 0 {
		o.Retention = DefaultRetention
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Store{rdb: o.Client, prefix: o.Prefix, ring: o.Ring, allowPrivate: o.AllowPrivate,
		allowHTTP: o.AllowHTTP, resolver: o.Resolver, retention: o.Retention, now: o.Now}, nil
}

func (s *Store) hookKey(id string) string { return s.prefix + "{wh:" + id + "}" }
func (s *Store) deliveryKey(id, event string) string {
	return s.hookKey(id) + ":d:" + event
}
func (s *Store) indexKey(id string) string { return s.hookKey(id) + ":deliveries" }
func (s *Store) orderKey(id, account string) string {
	return s.hookKey(id) + ":order:" + account
}
func (s *Store) tenantKey(tenant string) string { return s.prefix + "tenant:" + tenant + ":webhooks" }

var idEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return "wh_" + strings.ToLower(idEncoding.EncodeToString(b[:]))
}

var validID = regexp.MustCompile(`^wh_[a-z2-7]{26}$`)

// newSecret returns "whsec_" and 32 random bytes in unpadded base64url.
func newSecret() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return secretPrefix + base64.RawURLEncoding.EncodeToString(b[:])
}

func aad(tenant, id string) []byte { return []byte("webhook-secret\x00" + tenant + "\x00" + id) }

// previousAAD binds a rotated-out secret: it cannot be swapped in as the current one.
func previousAAD(tenant, id string) []byte {
	return []byte("webhook-previous-secret\x00" + tenant + "\x00" + id)
}

var knownTypes = func() map[string]bool {
	m := map[string]bool{}
	for _, t := range events.Types {
		m[t] = true
	}
	return m
}()

// normalizeEvents checks the subscribed types: known ones, or "*" alone; duplicates dropped.
func normalizeEvents(in []string) ([]string, error) {
	bad := func(reason string) error { return &InvalidError{Field: "events", Reason: reason} }
	if len(in) == 0 {
		return nil, bad(`give at least one event type, or ["*"] for all`)
	}
	var out []string
	for _, t := range in {
		switch {
		case t == AllEvents:
			if len(in) > 1 && slices.ContainsFunc(in, func(x string) bool { return x != AllEvents }) {
				return nil, bad(`"*" stands for every type; give it alone`)
			}
		case !knownTypes[t]:
			return nil, bad(fmt.Sprintf("unknown event type %q (known: %s)", t, strings.Join(events.Types, ", ")))
		}
		if !slices.Contains(out, t) {
			out = append(out, t)
		}
	}
	return out, nil
}

// Create validates in, stores a new webhook for tenant and returns it with its secret, which is
// shown this once. A URL that is refused is an *InvalidError with Field "url".
func (s *Store) Create(ctx context.Context, tenant string, in NewWebhook) (Webhook, string, error) {
	u, err := parseURL(in.URL, s.allowHTTP)
	if err != nil {
		return Webhook{}, "", err
	}
	types, err := normalizeEvents(in.Events)
	if err != nil {
		return Webhook{}, "", err
	}
	if utf8.RuneCountInString(in.Description) > MaxDescription || !utf8.ValidString(in.Description) ||
		strings.IndexFunc(in.Description, func(r rune) bool { return unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r) }) >= 0 {
		return Webhook{}, "", &InvalidError{Field: "description", Reason: fmt.Sprintf("at most %d characters of text without control or direction-changing characters", MaxDescription)}
	}
	if !s.allowPrivate {
		if err := checkHost(ctx, s.resolver, u.Hostname()); err != nil {
			return Webhook{}, "", err
		}
	}
	now := s.now().UTC().Truncate(time.Millisecond)
	w := Webhook{ID: newID(), Tenant: tenant, URL: u.String(), Events: types, Description: in.Description, CreatedAt: now}
	secret := newSecret()
	sealed, err := s.ring.Seal([]byte(secret), aad(tenant, w.ID))
	if err != nil {
		return Webhook{}, "", fmt.Errorf("webhooks: seal: %w", err)
	}
	b, err := json.Marshal(record{Webhook: w, Secret: sealed})
	if err != nil {
		return Webhook{}, "", err
	}
	// The record first, then its place in the tenant's index (scored in microseconds: webhooks
	// made in one millisecond still list in creation order), counted and taken in one script:
	// concurrent creates cannot pass the cap, and an id in the index without a record is one
	// being deleted (records drops it).
	if err := s.rdb.Set(ctx, s.hookKey(w.ID), b, 0).Err(); err != nil {
		return Webhook{}, "", fmt.Errorf("webhooks: save: %w", err)
	}
	added, err := addScript.Run(ctx, s.rdb, []string{s.tenantKey(tenant)}, s.now().UnixMicro(), w.ID, MaxPerTenant).Int()
	if err != nil || added == 0 {
		s.rdb.Del(context.WithoutCancel(ctx), s.hookKey(w.ID))
		if err != nil {
			return Webhook{}, "", fmt.Errorf("webhooks: index: %w", err)
		}
		return Webhook{}, "", ErrTooMany
	}
	return w, secret, nil
}

// addScript adds ARGV[2] with score ARGV[1] to the sorted set KEYS[1] unless it holds ARGV[3]
// members already; 1 if added.
var addScript = redis.NewScript(`
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then return 0 end
redis.call('ZADD', KEYS[1], ARGV[1], ARGV[2])
return 1
`)

// load reads a webhook record whoever its tenant. A previous secret whose overlap is over is
// left out.
func (s *Store) load(ctx context.Context, id string) (*record, error) {
	if !validID.MatchString(id) {
		return nil, ErrNotFound
	}
	b, err := s.rdb.Get(ctx, s.hookKey(id)).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("webhooks: read %s: %w", id, err)
	}
	var r record
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("webhooks: decode %s: %w", id, err)
	}
	s.expirePrevious(&r)
	return &r, nil
}

func (s *Store) expirePrevious(r *record) {
	if r.PreviousSecretExpiresAt != nil && !s.now().Before(*r.PreviousSecretExpiresAt) {
		r.PreviousSecret, r.PreviousSecretExpiresAt = "", nil
	}
}

// secret opens a record's secret.
func (s *Store) secret(r *record) (string, error) {
	pt, _, err := s.ring.Open(r.Secret, aad(r.Tenant, r.ID))
	if err != nil {
		return "", fmt.Errorf("webhooks: secret of %s: %w", r.ID, err)
	}
	return string(pt), nil
}

// secrets opens the secrets that sign a delivery now: the current one, then the previous one
// while its overlap lasts.
func (s *Store) secrets(r *record) ([]string, error) {
	cur, err := s.secret(r)
	if err != nil {
		return nil, err
	}
	if r.PreviousSecret == "" {
		return []string{cur}, nil
	}
	prev, _, err := s.ring.Open(r.PreviousSecret, previousAAD(r.Tenant, r.ID))
	if err != nil {
		return nil, fmt.Errorf("webhooks: previous secret of %s: %w", r.ID, err)
	}
	return []string{cur, string(prev)}, nil
}

// RotateSecret gives the tenant's webhook id a new secret and returns the webhook and that
// secret, shown this once. For overlap (at most MaxSecretOverlap; 0 ends it at once) deliveries
// are signed with both the new and the current secret, so the receiver can switch at its pace;
// a secret rotated out earlier stops signing now.
func (s *Store) RotateSecret(ctx context.Context, tenant, id string, overlap time.Duration) (Webhook, string, error) {
	if overlap < 0 || overlap > MaxSecretOverlap {
		return Webhook{}, "", &InvalidError{Field: "overlap_seconds", Reason: fmt.Sprintf("between 0 and %d", int(MaxSecretOverlap.Seconds()))}
	}
	if !validID.MatchString(id) {
		return Webhook{}, "", ErrNotFound
	}
	for range 5 {
		old, err := s.rdb.Get(ctx, s.hookKey(id)).Result()
		if errors.Is(err, redis.Nil) {
			return Webhook{}, "", ErrNotFound
		}
		if err != nil {
			return Webhook{}, "", fmt.Errorf("webhooks: read %s: %w", id, err)
		}
		var r record
		if err := json.Unmarshal([]byte(old), &r); err != nil {
			return Webhook{}, "", fmt.Errorf("webhooks: decode %s: %w", id, err)
		}
		if r.Tenant != tenant {
			return Webhook{}, "", ErrNotFound
		}
		cur, err := s.secret(&r)
		if err != nil {
			return Webhook{}, "", err
		}
		r.PreviousSecret, r.PreviousSecretExpiresAt = "", nil
		if overlap > 0 {
			if r.PreviousSecret, err = s.ring.Seal([]byte(cur), previousAAD(r.Tenant, r.ID)); err != nil {
				return Webhook{}, "", fmt.Errorf("webhooks: seal: %w", err)
			}
			until := s.now().UTC().Add(overlap).Truncate(time.Millisecond)
			r.PreviousSecretExpiresAt = &until
		}
		secret := newSecret()
		if r.Secret, err = s.ring.Seal([]byte(secret), aad(r.Tenant, r.ID)); err != nil {
			return Webhook{}, "", fmt.Errorf("webhooks: seal: %w", err)
		}
		b, err := json.Marshal(r)
		if err != nil {
			return Webhook{}, "", err
		}
		n, err := replaceScript.Run(ctx, s.rdb, []string{s.hookKey(id)}, old, b).Int()
		if err != nil {
			return Webhook{}, "", fmt.Errorf("webhooks: rotate secret of %s: %w", id, err)
		}
		if n == 1 {
			return r.Webhook, secret, nil
		}
		// Changed meanwhile (another rotation, a key rotation, a delete): look again.
	}
	return Webhook{}, "", ErrConflict
}

// Get returns the tenant's webhook id.
func (s *Store) Get(ctx context.Context, tenant, id string) (Webhook, error) {
	r, err := s.load(ctx, id)
	if err != nil {
		return Webhook{}, err
	}
	if r.Tenant != tenant {
		return Webhook{}, ErrNotFound
	}
	return r.Webhook, nil
}

// List returns the tenant's webhooks, oldest first.
func (s *Store) List(ctx context.Context, tenant string) ([]Webhook, error) {
	recs, err := s.records(ctx, tenant)
	if err != nil {
		return nil, err
	}
	out := make([]Webhook, 0, len(recs))
	for _, r := range recs {
		out = append(out, r.Webhook)
	}
	return out, nil
}

// records reads the tenant's webhook records, oldest first.
func (s *Store) records(ctx context.Context, tenant string) ([]*record, error) {
	ids, err := s.rdb.ZRange(ctx, s.tenantKey(tenant), 0, -1).Result()
	if err != nil {
		return nil, fmt.Errorf("webhooks: list: %w", err)
	}
	if len(ids) == 0 {
		return nil, nil
	}
	cmds := make([]*redis.StringCmd, len(ids))
	if _, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, id := range ids {
			cmds[i] = p.Get(ctx, s.hookKey(id))
		}
		return nil
	}); err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("webhooks: list: %w", err)
	}
	var out []*record
	var gone []any
	for i, c := range cmds {
		b, err := c.Bytes()
		if errors.Is(err, redis.Nil) {
			gone = append(gone, ids[i]) // deleted (a delete that failed half-way leaves this)
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("webhooks: list: %w", err)
		}
		var r record
		if json.Unmarshal(b, &r) == nil && r.Tenant == tenant {
			s.expirePrevious(&r)
			out = append(out, &r)
		}
	}
	if len(gone) > 0 {
		// Else they would count towards the cap for ever.
		s.rdb.ZRem(ctx, s.tenantKey(tenant), gone...)
	}
	return out, nil
}

// Delete removes the tenant's webhook id and its delivery list. Deliveries still queued are dropped
// when their turn comes; their records expire.
func (s *Store) Delete(ctx context.Context, tenant, id string) error {
	if _, err := s.Get(ctx, tenant, id); err != nil {
		return err
	}
	// The webhook's own keys share a slot; the tenant index is elsewhere, hence two calls.
	if err := s.rdb.Del(ctx, s.hookKey(id), s.indexKey(id)).Err(); err != nil {
		return fmt.Errorf("webhooks: delete %s: %w", id, err)
	}
	if err := s.rdb.ZRem(ctx, s.tenantKey(tenant), id).Err(); err != nil {
		return fmt.Errorf("webhooks: delete %s: %w", id, err)
	}
	return nil
}

// RotateKeys seals again, with the active key, every webhook secret sealed under another key, so
// that old keys can leave the ring. It returns how many it re-sealed.
func (s *Store) RotateKeys(ctx context.Context) (int, error) {
	var ids []string
	each := func(ctx context.Context, c redis.Cmdable) error {
		it := c.Scan(ctx, 0, globEscape(s.prefix+"{wh:")+"*", 500).Iterator()
		for it.Next(ctx) {
			id, ok := strings.CutPrefix(it.Val(), s.prefix+"{wh:")
			if id, ok = strings.CutSuffix(id, "}"); ok && validID.MatchString(id) {
				ids = append(ids, id)
			}
		}
		return it.Err()
	}
	var err error
	if cc, ok := s.rdb.(*redis.ClusterClient); ok {
		err = cc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error { return each(ctx, c) })
	} else {
		err = each(ctx, s.rdb)
	}
	if err != nil {
		return 0, fmt.Errorf("webhooks: rotate keys: scan: %w", err)
	}
	n := 0
	var errs []error
	for _, id := range ids {
		done, err := s.rotateOne(ctx, id)
		if err != nil {
			errs = append(errs, err)
		} else if done {
			n++
		}
	}
	if len(errs) > 0 {
		return n, fmt.Errorf("webhooks: rotate keys: %d webhook(s) failed: %w", len(errs), errors.Join(errs...))
	}
	return n, nil
}

// replaceScript sets KEYS[1] to ARGV[2] if it still holds ARGV[1].
var replaceScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'KEEPTTL')
  return 1
end
return 0
`)

func (s *Store) rotateOne(ctx context.Context, id string) (bool, error) {
	old, err := s.rdb.Get(ctx, s.hookKey(id)).Result()
	if errors.Is(err, redis.Nil) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("webhook %s: read: %w", id, err)
	}
	var r record
	if err := json.Unmarshal([]byte(old), &r); err != nil {
		return false, fmt.Errorf("webhook %s: decode: %w", id, err)
	}
	s.expirePrevious(&r)
	active := func(sealed string) bool {
		kid, ok := crypt.SealedKeyID(sealed)
		return sealed == "" || ok && kid == s.ring.ActiveID()
	}
	if active(r.Secret) && active(r.PreviousSecret) {
		return false, nil
	}
	secrets, err := s.secrets(&r)
	if err != nil {
		return false, err
	}
	if r.Secret, err = s.ring.Seal([]byte(secrets[0]), aad(r.Tenant, r.ID)); err != nil {
		return false, err
	}
	if len(secrets) > 1 {
		if r.PreviousSecret, err = s.ring.Seal([]byte(secrets[1]), previousAAD(r.Tenant, r.ID)); err != nil {
			return false, err
		}
	}
	b, err := json.Marshal(r)
	if err != nil {
		return false, err
	}
	// Written only if unchanged since read: a secret rotation or a delete meanwhile wins, and the
	// next run of the key rotation seals what it left.
	n, err := replaceScript.Run(ctx, s.rdb, []string{s.hookKey(id)}, old, b).Int()
	if err != nil {
		return false, fmt.Errorf("webhook %s: write: %w", id, err)
	}
	return n == 1, nil
}

// globEscape escapes the characters SCAN MATCH treats specially.
func globEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`*?[]\`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}
