package tenantauth

import (
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
	"time"

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

// Config configures a Verifier. Set exactly one of HS256Secret and PublicKeys.
type Config struct {
	// HS256Secret is a shared secret of at least MinSecretSize bytes.
	HS256Secret []byte
	// PublicKeys are *rsa.PublicKey (RS256, >= 2048 bits), *ecdsa.PublicKey (ES256, P-256) or
	// ed25519.PublicKey (EdDSA). Several keys (for rotation) may be given; a token is accepted
	// when any key of its algorithm verifies it.
	PublicKeys []crypto.PublicKey
	// Issuer and Audience are required to match the token's iss and aud when non-empty.
	Issuer, Audience string
	// Leeway is the clock skew allowed on exp, nbf and iat; zero means DefaultLeeway.
	Leeway time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
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
	// keys holds the verification keys for each accepted algorithm.
	keys map[string][]jwt.VerificationKey
}

// NewVerifier builds a Verifier. It fails when no key is configured, when the secret is shorter
// than MinSecretSize, when both a secret and public keys are given, or when a public key is of an
// unsupported type or too weak.
func NewVerifier(cfg Config) (*Verifier, error) {
	hasSecret := len(cfg.HS256Secret) > 0
	switch {
	case hasSecret && len(cfg.PublicKeys) > 0:
		return nil, errors.New("tenantauth: configure either an HS256 secret or public keys, not both")
	case !hasSecret && len(cfg.PublicKeys) == 0:
		return nil, errors.New("tenantauth: no verification key: configure an HS256 secret or public keys")
	case cfg.Leeway < 0:
		return nil, errors.New("tenantauth: leeway must not be negative")
	}
	keys := map[string][]jwt.VerificationKey{}
	if hasSecret {
		if len(cfg.HS256Secret) < MinSecretSize {
			return nil, fmt.Errorf("tenantauth: HS256 secret must be at least %d bytes", MinSecretSize)
		}
		keys[algHS256] = []jwt.VerificationKey{slices.Clone(cfg.HS256Secret)}
	}
	for i, k := range cfg.PublicKeys {
		alg, key, err := checkPublicKey(k)
		if err != nil {
			return nil, fmt.Errorf("tenantauth: public key %d: %w", i+1, err)
		}
		keys[alg] = append(keys[alg], key)
	}
	methods := make([]string, 0, len(keys))
	for alg := range keys {
		methods = append(methods, alg)
	}
	slices.Sort(methods)

	leeway := cfg.Leeway
	if leeway == 0 {
		leeway = DefaultLeeway
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	opts := []jwt.ParserOption{
		jwt.WithValidMethods(methods),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(leeway),
		jwt.WithTimeFunc(now),
	}
	if cfg.Issuer != "" {
		opts = append(opts, jwt.WithIssuer(cfg.Issuer))
	}
	if cfg.Audience != "" {
		opts = append(opts, jwt.WithAudience(cfg.Audience))
	}
	return &Verifier{parser: jwt.NewParser(opts...), issuer: cfg.Issuer, audience: cfg.Audience, keys: keys}, nil
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

// Verify checks raw (the token without the "Bearer " prefix) and returns its claims. Tokens over
// MaxTokenSize are refused before parsing. Every error wraps ErrInvalidToken; its message is a
// reason safe to show the caller.
func (v *Verifier) Verify(raw string) (Claims, error) {
	if len(raw) > MaxTokenSize {
		return Claims{}, fmt.Errorf("%w: %w", ErrInvalidToken, ErrTooLarge)
	}
	if raw == "" {
		return Claims{}, invalid("missing token")
	}
	var tc tokenClaims
	tok, err := v.parser.ParseWithClaims(raw, &tc, v.keyFor)
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
	c := Claims{Tenant: tc.Subject, ExpiresAt: tc.ExpiresAt.Time, Account: tc.Account}
	if tc.IssuedAt != nil {
		c.IssuedAt = tc.IssuedAt.Time
	}
	return c, nil
}

// keyFor returns only the keys of the token's algorithm, so one key type is never offered to
// another algorithm's verifier.
func (v *Verifier) keyFor(t *jwt.Token) (any, error) {
	keys := v.keys[t.Method.Alg()]
	if len(keys) == 0 {
		return nil, errAlgNotAllowed
	}
	return jwt.VerificationKeySet{Keys: keys}, nil
}

var errAlgNotAllowed = errors.New("algorithm not allowed")

// reason turns a golang-jwt error into a short message that contains no token data.
func (v *Verifier) reason(tok *jwt.Token, tc *tokenClaims, err error) string {
	if tok != nil && tok.Method != nil {
		if _, ok := v.keys[tok.Method.Alg()]; !ok {
			return "algorithm not allowed"
		}
	}
	switch {
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
// Ed25519) and "RSA PUBLIC KEY" (PKCS#1). Any other block type, an unsupported or weak key, or
// data without a single key is an error.
func ParsePublicKeys(pemData []byte) ([]crypto.PublicKey, error) {
	var keys []crypto.PublicKey
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
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return nil, errors.New("tenantauth: no PEM public key found")
	}
	return keys, nil
}
