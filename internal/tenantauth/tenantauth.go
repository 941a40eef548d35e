package tenantauth

import (
	"cmp"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"
)

const (
	// MaxTokenSize is the largest token, in bytes, that Verify will parse.
	MaxTokenSize = 8 << 10
	// MinSecretSize is the shortest HS256 secret accepted, in bytes.
	MinSecretSize = 32
	// MinRSABits is the smallest RSA modulus accepted for RS256.
	MinRSABits = 2048
	// DefaultLeeway is the clock skew allowed on exp, nbf and iat when Config.Leeway is zero.
	DefaultLeeway = 30 * time.Second
	// DefaultMaxLifetime bounds exp - iat of a tenant token when Config.MaxLifetime is zero.
	DefaultMaxLifetime = 24 * time.Hour
	// MaxAccountLifetime bounds exp - iat of an account-scoped (proxy) token, which the gateway
	// mints itself for up to 30 days.
	MaxAccountLifetime = 30 * 24 * time.Hour
)

// Algorithm names, as they appear in a token's "alg" header.
const (
	algHS256 = "HS256"
	algRS256 = "RS256"
	algES256 = "ES256"
	algEdDSA = "EdDSA"
)

var (
	// ErrInvalidToken is wrapped by every error Verify returns.
	ErrInvalidToken = errors.New("invalid token")
	// ErrTooLarge is wrapped (together with ErrInvalidToken) when a token exceeds MaxTokenSize.
	ErrTooLarge = errors.New("token too large")
	// ErrExpired is wrapped (together with ErrInvalidToken) when a token's exp has passed.
	ErrExpired = errors.New("token expired")
)

// tenantIDPattern is the shape of a tenant id: see ValidTenantID.
var tenantIDPattern = regexp.MustCompile(`^[A-Za-z0-9._:@-]{1,128}$`)

// ValidTenantID reports whether s is a well-formed tenant id: 1–128 characters of
// [A-Za-z0-9._:@-]. The restriction keeps tenant ids safe in Redis keys, logs and URLs.
func ValidTenantID(s string) bool {
	return tenantIDPattern.MatchString(s)
}

// Config configures a Verifier. Set exactly one of HS256Secret, PublicKeys and JWKS.
//
// The HS256 secret is for single-tenant deployments: whoever holds it can sign for any tenant.
// With public keys (PEM or a JWK Set), each key signs only for the tenants KeyTenants gives its
// kid, tokens must name their key (kid), and Issuer and Audience are required.
type Config struct {
	// HS256Secret is a shared secret of at least MinSecretSize bytes.
	HS256Secret []byte
	// PublicKeys are keys by kid: *rsa.PublicKey (RS256, >= 2048 bits), *ecdsa.PublicKey (ES256,
	// P-256) or ed25519.PublicKey (EdDSA). Several keys (for rotation) may be given.
	PublicKeys []PublicKey
	// JWKS finds keys in a JWK Set (a file, or a URL kept fresh; see NewJWKS and ReadJWKS).
	JWKS keyfunc.Keyfunc
	// KeyTenants says, per kid, which tenants the key may sign for; a kid it does not name signs
	// for none. Required with PublicKeys or JWKS (see ParseKeyTenants).
	KeyTenants map[string]TenantSet
	// Issuer and Audience are required to match the token's iss and aud when non-empty; with
	// public keys both must be set.
	Issuer, Audience string
	// MaxLifetime bounds exp - iat of a tenant token; zero means DefaultMaxLifetime.
	MaxLifetime time.Duration
	// Leeway is the clock skew allowed on exp, nbf and iat; zero means DefaultLeeway.
	Leeway time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// PublicKey is a verification key and the id (kid) tokens name it by.
type PublicKey struct {
	ID  string
	Key crypto.PublicKey
}

// TenantSet is the tenants one key may sign for: exact ids, and prefixes (written with a
// trailing "*"; a lone "*" is every tenant).
type TenantSet struct {
	exact    map[string]bool
	prefixes []string
}

// Allows reports whether the set holds tenant.
func (s TenantSet) Allows(tenant string) bool {
	if s.exact[tenant] {
		return true
	}
	for _, p := range s.prefixes {
		if strings.HasPrefix(tenant, p) {
			return true
		}
	}
	return false
}

// ParseKeyTenants reads "kid=tenant,prefix-*;kid2=*": for each key id, the tenants it may sign
// for, as exact ids or prefixes ending in "*". Spaces around items are ignored.
func ParseKeyTenants(s string) (map[string]TenantSet, error) {
	out := map[string]TenantSet{}
	for entry := range strings.SplitSeq(s, ";") {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		kid, list, ok := strings.Cut(entry, "=")
		kid = strings.TrimSpace(kid)
		if !ok || kid == "" {
			return nil, fmt.Errorf("tenantauth: key tenants: %q is not kid=tenants", entry)
		}
		if _, dup := out[kid]; dup {
			return nil, fmt.Errorf("tenantauth: key tenants: kid %q is named twice", kid)
		}
		set := TenantSet{exact: map[string]bool{}}
		for item := range strings.SplitSeq(list, ",") {
			item = strings.TrimSpace(item)
			prefix, isPrefix := strings.CutSuffix(item, "*")
			switch {
			case isPrefix && (prefix == "" || ValidTenantID(prefix)):
				set.prefixes = append(set.prefixes, prefix)
			case !isPrefix && ValidTenantID(item):
				set.exact[item] = true
			default:
				return nil, fmt.Errorf("tenantauth: key tenants: kid %q: %q is not a tenant id or a prefix ending in *", kid, item)
			}
		}
		out[kid] = set
	}
	if len(out) == 0 {
		return nil, errors.New("tenantauth: key tenants: no kid=tenants entry")
	}
	return out, nil
}

// Claims are the facts a verified token establishes.
type Claims struct {
	// Tenant is the token's "sub": the tenant the caller acts for.
	Tenant string
	// ExpiresAt is the token's "exp".
	ExpiresAt time.Time
	// Account is the optional "acct" claim. A token that has it is account-scoped: valid only for
	// the proxy, and only for that integrated account.
	Account string
	// IssuedAt is the token's "iat" (zero when absent); revoking an account's proxy tokens
	// refuses those issued before a given time.
	IssuedAt time.Time
}

// tokenClaims is the JSON shape of the claims dirgate reads.
type tokenClaims struct {
	jwt.RegisteredClaims
	Account string `json:"acct,omitempty"`
}

// Verifier checks tenant JWTs. It is safe for concurrent use.
type Verifier struct {
	parser *jwt.Parser
	// issuer and audience are the configured requirements ("" when unchecked).
	issuer, audience string
	// secret is the HS256 secret (nil with public keys).
	secret []byte
	// byKID holds PEM keys; jwks finds keys of a JWK Set. tenants binds kids to tenants.
	byKID   map[string]PublicKey
	jwks    keyfunc.Keyfunc
	tenants map[string]TenantSet
	// maxLifetime bounds exp - iat of tenant tokens.
	maxLifetime time.Duration
	// methods are the accepted algorithms.
	methods []string
}

// NewVerifier builds a Verifier. It fails when no key is configured, when the secret is shorter
// than MinSecretSize, when both a secret and public keys are given, or when a public key is of an
// unsupported type or too weak.
func NewVerifier(cfg Config) (*Verifier, error) {
	hasSecret, hasPublic := len(cfg.HS256Secret) > 0, len(cfg.PublicKeys) > 0 || cfg.JWKS != nil
	switch {
	case hasSecret && hasPublic, len(cfg.PublicKeys) > 0 && cfg.JWKS != nil:
		return nil, errors.New("tenantauth: configure one of an HS256 secret, public keys or a JWK Set")
	case !hasSecret && !hasPublic:
		return nil, errors.New("tenantauth: no verification key: configure an HS256 secret or public keys")
	case cfg.Leeway < 0 || cfg.MaxLifetime < 0:
		return nil, errors.New("tenantauth: leeway and lifetime must not be negative")
	case hasPublic && (cfg.Issuer == "" || cfg.Audience == ""):
		return nil, errors.New("tenantauth: with public keys, the issuer and the audience are required")
	case hasPublic && len(cfg.KeyTenants) == 0:
		return nil, errors.New("tenantauth: with public keys, the tenants each key may sign for are required")
	}
	v := &Verifier{issuer: cfg.Issuer, audience: cfg.Audience, jwks: cfg.JWKS, tenants: cfg.KeyTenants,
		maxLifetime: cmp.Or(cfg.MaxLifetime, DefaultMaxLifetime)}
	methods := []string{algRS256, algES256, algEdDSA}
	if hasSecret {
		if len(cfg.HS256Secret) < MinSecretSize {
			return nil, fmt.Errorf("tenantauth: HS256 secret must be at least %d bytes", MinSecretSize)
		}
		v.secret = slices.Clone(cfg.HS256Secret)
		methods = []string{algHS256}
	}
	if len(cfg.PublicKeys) > 0 {
		v.byKID = map[string]PublicKey{}
		for i, k := range cfg.PublicKeys {
			if _, _, err := checkPublicKey(k.Key); err != nil {
				return nil, fmt.Errorf("tenantauth: public key %d: %w", i+1, err)
			}
			if k.ID == "" {
				return nil, fmt.Errorf("tenantauth: public key %d has no kid", i+1)
			}
			if _, dup := v.byKID[k.ID]; dup {
				return nil, fmt.Errorf("tenantauth: two public keys have kid %q", k.ID)
			}
			v.byKID[k.ID] = k
		}
	}

	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	opts := []jwt.ParserOption{
		jwt.WithValidMethods(methods),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(cmp.Or(cfg.Leeway, DefaultLeeway)),
		jwt.WithTimeFunc(now),
	}
	if cfg.Issuer != "" {
		opts = append(opts, jwt.WithIssuer(cfg.Issuer))
	}
	if cfg.Audience != "" {
		opts = append(opts, jwt.WithAudience(cfg.Audience))
	}
	v.parser, v.methods = jwt.NewParser(opts...), methods
	return v, nil
}

// checkPublicKey returns the algorithm a supported public key verifies, and the key in the form
// golang-jwt expects.
func checkPublicKey(k crypto.PublicKey) (alg string, key jwt.VerificationKey, err error) {
	switch k := k.(type) {
	case *rsa.PublicKey:
		if k == nil || k.N == nil {
			return "", nil, errors.New("empty RSA key")
		}
		if k.N.BitLen() < MinRSABits {
			return "", nil, fmt.Errorf("RSA key has %d bits, need at least %d", k.N.BitLen(), MinRSABits)
		}
		return algRS256, k, nil
	case *ecdsa.PublicKey:
		if k == nil || k.Curve != elliptic.P256() {
			return "", nil, errors.New("ECDSA key must use curve P-256 (ES256)")
		}
		return algES256, k, nil
	case ed25519.PublicKey:
		if len(k) != ed25519.PublicKeySize {
			return "", nil, errors.New("Ed25519 key has the wrong size")
		}
		return algEdDSA, k, nil
	case *ed25519.PublicKey:
		if k == nil || len(*k) != ed25519.PublicKeySize {
			return "", nil, errors.New("Ed25519 key has the wrong size")
		}
		return algEdDSA, *k, nil
	default:
		return "", nil, fmt.Errorf("unsupported key type %T (want RSA, ECDSA P-256 or Ed25519)", k)
	}
}

// Verify checks raw (the token without the "Bearer " prefix) and returns its claims; see
// VerifyContext.
func (v *Verifier) Verify(raw string) (Claims, error) {
	return v.VerifyContext(context.Background(), raw)
}

// VerifyContext checks raw (the token without the "Bearer " prefix) and returns its claims. ctx
// bounds a JWK Set refresh the token's unknown kid may cause. Tokens over MaxTokenSize are
// refused before parsing. Every error wraps ErrInvalidToken; its message is a reason safe to show
// the caller.
func (v *Verifier) VerifyContext(ctx context.Context, raw string) (Claims, error) {
	if len(raw) > MaxTokenSize {
		return Claims{}, fmt.Errorf("%w: %w", ErrInvalidToken, ErrTooLarge)
	}
	if raw == "" {
		return Claims{}, invalid("missing token")
	}
	var tc tokenClaims
	tok, err := v.parser.ParseWithClaims(raw, &tc, v.keyFor(ctx))
	if err != nil {
		reason := v.reason(tok, &tc, err)
		if reason == ErrExpired.Error() {
			return Claims{}, fmt.Errorf("%w: %w", ErrInvalidToken, ErrExpired)
		}
		return Claims{}, invalid(reason)
	}
	if !ValidTenantID(tc.Subject) {
		return Claims{}, invalid("sub is not a valid tenant id")
	}
	if tc.ExpiresAt == nil { // WithExpirationRequired guarantees it; keep the invariant local
		return Claims{}, invalid("exp is required")
	}
	if tc.IssuedAt == nil {
		return Claims{}, invalid("iat is required")
	}
	limit := v.maxLifetime
	if tc.Account != "" {
		limit = MaxAccountLifetime
	}
	if tc.ExpiresAt.Sub(tc.IssuedAt.Time) > limit {
		return Claims{}, invalid(fmt.Sprintf("token lifetime (exp - iat) exceeds %s", limit))
	}
	if v.secret == nil {
		// keyFor found the key by this kid.
		kid, _ := tok.Header["kid"].(string)
		if set, ok := v.tenants[kid]; !ok || !set.Allows(tc.Subject) {
			return Claims{}, invalid("the signing key may not sign for this tenant")
		}
	}
	return Claims{Tenant: tc.Subject, ExpiresAt: tc.ExpiresAt.Time, Account: tc.Account, IssuedAt: tc.IssuedAt.Time}, nil
}

// keyFor returns the key a token names: the HS256 secret, or the public key of its kid, which
// must be of the token's algorithm (so one key type is never offered to another algorithm's
// verifier) and strong enough.
func (v *Verifier) keyFor(ctx context.Context) jwt.Keyfunc {
	return func(t *jwt.Token) (any, error) {
		alg := t.Method.Alg()
		if v.secret != nil {
			if alg != algHS256 {
				return nil, errAlgNotAllowed
			}
			return v.secret, nil
		}
		kid, _ := t.Header["kid"].(string)
		if kid == "" {
			return nil, errNoKID
		}
		var key crypto.PublicKey
		if v.jwks != nil {
			k, err := v.jwks.KeyfuncCtx(ctx)(t)
			if err != nil {
				return nil, errUnknownKey
			}
			key = k
		} else {
			pk, ok := v.byKID[kid]
			if !ok {
				return nil, errUnknownKey
			}
			key = pk.Key
		}
		keyAlg, k, err := checkPublicKey(key)
		if err != nil || keyAlg != alg {
			return nil, errAlgNotAllowed
		}
		return k, nil
	}
}

var (
	errNoKID      = errors.New("kid is required")
	errUnknownKey = errors.New("unknown kid")
)

var errAlgNotAllowed = errors.New("algorithm not allowed")

// reason turns a golang-jwt error into a short message that contains no token data.
func (v *Verifier) reason(tok *jwt.Token, tc *tokenClaims, err error) string {
	if tok != nil && tok.Method != nil && !slices.Contains(v.methods, tok.Method.Alg()) {
		return "algorithm not allowed"
	}
	switch {
	case errors.Is(err, errNoKID):
		return "kid is required: name the signing key in the token header"
	case errors.Is(err, errUnknownKey):
		return "unknown signing key (kid)"
	case errors.Is(err, errAlgNotAllowed), errors.Is(err, jwt.ErrTokenUnverifiable):
		// ErrTokenUnverifiable: an alg golang-jwt does not know at all.
		return "algorithm not allowed"
	case errors.Is(err, jwt.ErrTokenMalformed):
		return "malformed token"
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return "signature invalid"
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		// golang-jwt does not say which claim is missing; only exp, iss and aud can be required.
		switch {
		case tc.ExpiresAt == nil:
			return "exp is required"
		case v.audience != "" && len(tc.Audience) == 0:
			return "audience mismatch"
		case v.issuer != "" && tc.Issuer == "":
			return "issuer mismatch"
		}
		return "required claim missing"
	case errors.Is(err, jwt.ErrTokenExpired):
		return "token expired"
	case errors.Is(err, jwt.ErrTokenNotValidYet):
		return "token not valid yet"
	case errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return "token issued in the future"
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return "audience mismatch"
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		return "issuer mismatch"
	case errors.Is(err, jwt.ErrInvalidType):
		return "malformed claim"
	default:
		return "token rejected"
	}
}

func invalid(reason string) error {
	return fmt.Errorf("%w: %s", ErrInvalidToken, reason)
}

// ParsePublicKeys reads every PEM block of pemData: "PUBLIC KEY" (PKIX: RSA, ECDSA P-256 or
// Ed25519) and "RSA PUBLIC KEY" (PKCS#1). A block's "kid" header names its key (as tokens name
// it); a block without one is named key-<n>, n counting blocks from 1. Any other block type, an
// unsupported or weak key, a kid used twice, or data without a single key is an error.
func ParsePublicKeys(pemData []byte) ([]PublicKey, error) {
	var keys []PublicKey
	seen := map[string]bool{}
	rest := pemData
	for n := 1; ; n++ {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		var (
			k   crypto.PublicKey
			err error
		)
		switch block.Type {
		case "PUBLIC KEY":
			k, err = x509.ParsePKIXPublicKey(block.Bytes)
		case "RSA PUBLIC KEY":
			k, err = x509.ParsePKCS1PublicKey(block.Bytes)
		default:
			return nil, fmt.Errorf("tenantauth: PEM block %d: unsupported type %q (want PUBLIC KEY or RSA PUBLIC KEY)", n, block.Type)
		}
		if err != nil {
			return nil, fmt.Errorf("tenantauth: PEM block %d (%s): %w", n, block.Type, err)
		}
		if _, _, err := checkPublicKey(k); err != nil {
			return nil, fmt.Errorf("tenantauth: PEM block %d: %w", n, err)
		}
		id := cmp.Or(strings.TrimSpace(block.Headers["kid"]), fmt.Sprintf("key-%d", n))
		if seen[id] {
			return nil, fmt.Errorf("tenantauth: PEM block %d: kid %q is used twice", n, id)
		}
		seen[id] = true
		keys = append(keys, PublicKey{ID: id, Key: k})
	}
	if len(keys) == 0 {
		return nil, errors.New("tenantauth: no PEM public key found")
	}
	return keys, nil
}
