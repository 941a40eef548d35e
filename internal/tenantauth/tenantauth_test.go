package tenantauth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/go-cmp/cmp"
)

// t0 is the fixed clock of these tests.
var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func clock() time.Time { return t0 }

const secret = "0123456789abcdef0123456789abcdef" // 32 bytes

// testKeys holds one key pair of each kind, generated once (RSA generation is slow).
type testKeys struct {
	rsa, rsa2 *rsa.PrivateKey
	rsaWeak   *rsa.PrivateKey
	ec        *ecdsa.PrivateKey
	ecP384    *ecdsa.PrivateKey
	ed        ed25519.PrivateKey
}

var keysOnce = sync.OnceValues(func() (*testKeys, error) {
	var k testKeys
	var err error
	if k.rsa, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		return nil, err
	}
	if k.rsa2, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		return nil, err
	}
	if k.rsaWeak, err = rsa.GenerateKey(rand.Reader, 1024); err != nil {
		return nil, err
	}
	if k.ec, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
		return nil, err
	}
	if k.ecP384, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader); err != nil {
		return nil, err
	}
	if _, k.ed, err = ed25519.GenerateKey(rand.Reader); err != nil {
		return nil, err
	}
	return &k, nil
})

func keys(t *testing.T) *testKeys {
	t.Helper()
	k, err := keysOnce()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func sign(t *testing.T, m jwt.SigningMethod, key any, claims jwt.MapClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(m, claims).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// good returns valid claims for tenant "acme" at t0, with extra merged in (a nil value deletes).
func good(extra jwt.MapClaims) jwt.MapClaims {
	c := jwt.MapClaims{"sub": "acme", "exp": t0.Add(time.Hour).Unix(), "iat": t0.Unix()}
	for k, v := range extra {
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
	}
	return c
}

// pub is a public-key configuration: keys named k1, k2... in order, the issuer and audience
// pubClaims carries, and every kid allowed to sign for every tenant.
func pub(keys ...crypto.PublicKey) Config {
	c := Config{Issuer: "https://idp", Audience: "dirgate", KeyTenants: map[string]TenantSet{}}
	for i, k := range keys {
		id := "k" + strconv.Itoa(i+1)
		c.PublicKeys = append(c.PublicKeys, PublicKey{ID: id, Key: k})
		c.KeyTenants[id] = TenantSet{prefixes: []string{""}}
	}
	return c
}

// pubClaims are good claims for a pub configuration.
func pubClaims(extra jwt.MapClaims) jwt.MapClaims {
	c := good(jwt.MapClaims{"iss": "https://idp", "aud": "dirgate"})
	for k, v := range extra {
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
	}
	return c
}

// signK signs claims with a kid header ("" for none).
func signK(t *testing.T, m jwt.SigningMethod, key any, kid string, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(m, claims)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func newVerifier(t *testing.T, cfg Config) *Verifier {
	t.Helper()
	if cfg.Now == nil {
		cfg.Now = clock
	}
	v, err := NewVerifier(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func pkixPEM(t *testing.T, pub crypto.PublicKey) []byte {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

func TestVerifyAcceptsEachKeyType(t *testing.T) {
	t.Parallel()
	k := keys(t)
	exp := t0.Add(time.Hour)
	for name, tc := range map[string]struct {
		cfg    Config
		method jwt.SigningMethod
		key    any
		kid    string
	}{
		"HS256": {Config{HS256Secret: []byte(secret)}, jwt.SigningMethodHS256, []byte(secret), ""},
		"RS256": {pub(&k.rsa.PublicKey), jwt.SigningMethodRS256, k.rsa, "k1"},
		"ES256": {pub(&k.ec.PublicKey), jwt.SigningMethodES256, k.ec, "k1"},
		"EdDSA": {pub(k.ed.Public()), jwt.SigningMethodEdDSA, k.ed, "k1"},
		"EdDSA pointer key": {
			pub(func() *ed25519.PublicKey { p := k.ed.Public().(ed25519.PublicKey); return &p }()),
			jwt.SigningMethodEdDSA, k.ed, "k1",
		},
		"RS256 second key of a set": {
			pub(&k.rsa2.PublicKey, &k.rsa.PublicKey), jwt.SigningMethodRS256, k.rsa, "k2",
		},
		"ES256 in a mixed set": {
			pub(&k.rsa.PublicKey, &k.ec.PublicKey, k.ed.Public()), jwt.SigningMethodES256, k.ec, "k2",
		},
		"issuer and audience": {
			Config{HS256Secret: []byte(secret), Issuer: "https://idp", Audience: "dirgate"}, jwt.SigningMethodHS256, []byte(secret), "",
		},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			v := newVerifier(t, tc.cfg)
			tok := signK(t, tc.method, tc.key, tc.kid, good(jwt.MapClaims{"iss": "https://idp", "aud": []string{"other", "dirgate"}, "acct": "ia_x"}))
			got, err := v.Verify(tok)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			want := Claims{Tenant: "acme", ExpiresAt: exp, Account: "ia_x", IssuedAt: t0}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("claims (-want +got):\n%s", diff)
			}
		})
	}
}

func TestVerifyKeySetTwoKeys(t *testing.T) {
	t.Parallel()
	k := keys(t)
	v := newVerifier(t, pub(&k.rsa.PublicKey, &k.rsa2.PublicKey))
	for kid, key := range map[string]*rsa.PrivateKey{"k1": k.rsa, "k2": k.rsa2} {
		if _, err := v.Verify(signK(t, jwt.SigningMethodRS256, key, kid, pubClaims(nil))); err != nil {
			t.Errorf("token signed with key %s: %v", kid, err)
		}
	}
	other, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(signK(t, jwt.SigningMethodRS256, other, "k1", pubClaims(nil))); !errors.Is(err, ErrInvalidToken) {
		t.Errorf("token signed with a key outside the set: err = %v, want ErrInvalidToken", err)
	}
	// A token names its key: the first key's signature under the second's kid does not verify.
	if _, err := v.Verify(signK(t, jwt.SigningMethodRS256, k.rsa, "k2", pubClaims(nil))); !errors.Is(err, ErrInvalidToken) {
		t.Errorf("a signature under another key's kid: err = %v, want ErrInvalidToken", err)
	}
}

func TestVerifyRejects(t *testing.T) {
	t.Parallel()
	k := keys(t)
	rsaPEM := pkixPEM(t, &k.rsa.PublicKey)
	hsV := Config{HS256Secret: []byte(secret)}
	rsV := pub(&k.rsa.PublicKey)
	hs := func(c jwt.MapClaims) string { return sign(t, jwt.SigningMethodHS256, []byte(secret), c) }
	none := sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, good(nil))
	b64 := base64.RawURLEncoding.EncodeToString

	for name, tc := range map[string]struct {
		cfg    Config
		token  string
		reason string
	}{
		"alg none against HS":                  {hsV, none, "algorithm not allowed"},
		"alg none against RS":                  {rsV, none, "algorithm not allowed"},
		"HS256 signed with RSA public key PEM": {rsV, sign(t, jwt.SigningMethodHS256, rsaPEM, good(nil)), "algorithm not allowed"},
		"HS256 signed with RSA public key DER": {rsV, sign(t, jwt.SigningMethodHS256, x509.MarshalPKCS1PublicKey(&k.rsa.PublicKey), good(nil)), "algorithm not allowed"},
		"RS256 against HS verifier":            {hsV, sign(t, jwt.SigningMethodRS256, k.rsa, good(nil)), "algorithm not allowed"},
		"ES256 against RS verifier":            {rsV, signK(t, jwt.SigningMethodES256, k.ec, "k1", pubClaims(nil)), "algorithm not allowed"},
		"RS256 without kid":                    {rsV, sign(t, jwt.SigningMethodRS256, k.rsa, pubClaims(nil)), "kid is required: name the signing key in the token header"},
		"RS256 with an unknown kid":            {rsV, signK(t, jwt.SigningMethodRS256, k.rsa, "k9", pubClaims(nil)), "unknown signing key (kid)"},
		"RS256 without iss":                    {rsV, signK(t, jwt.SigningMethodRS256, k.rsa, "k1", pubClaims(jwt.MapClaims{"iss": nil})), "issuer mismatch"},
		"RS256 without aud":                    {rsV, signK(t, jwt.SigningMethodRS256, k.rsa, "k1", pubClaims(jwt.MapClaims{"aud": nil})), "audience mismatch"},
		"HS384 against HS verifier":            {hsV, sign(t, jwt.SigningMethodHS384, []byte(secret), good(nil)), "algorithm not allowed"},
		"unknown alg":                          {hsV, b64([]byte(`{"alg":"XX99","typ":"JWT"}`)) + "." + b64([]byte(`{"sub":"acme"}`)) + ".c2ln", "algorithm not allowed"},
		"wrong secret":                         {hsV, sign(t, jwt.SigningMethodHS256, []byte(strings.Repeat("z", 32)), good(nil)), "signature invalid"},
		"wrong RSA key":                        {rsV, signK(t, jwt.SigningMethodRS256, k.rsa2, "k1", pubClaims(nil)), "signature invalid"},
		"missing iat":                          {hsV, hs(good(jwt.MapClaims{"iat": nil})), "iat is required"},
		"lifetime over the cap":                {hsV, hs(good(jwt.MapClaims{"iat": t0.Add(-time.Hour).Unix(), "exp": t0.Add(24 * time.Hour).Unix()})), "token lifetime (exp - iat) exceeds 24h0m0s"},
		"account token over its cap":           {hsV, hs(good(jwt.MapClaims{"acct": "ia_x", "exp": t0.Add(31 * 24 * time.Hour).Unix()})), "token lifetime (exp - iat) exceeds 720h0m0s"},
		"tampered payload":                     {hsV, tamper(t, hs(good(nil))), "signature invalid"},
		"missing exp":                          {hsV, hs(good(jwt.MapClaims{"exp": nil})), "exp is required"},
		"expired":                              {hsV, hs(good(jwt.MapClaims{"exp": t0.Add(-time.Minute).Unix()})), "token expired"},
		"not yet valid":                        {hsV, hs(good(jwt.MapClaims{"nbf": t0.Add(time.Minute).Unix()})), "token not valid yet"},
		"issued in the future":                 {hsV, hs(good(jwt.MapClaims{"iat": t0.Add(time.Minute).Unix()})), "token issued in the future"},
		"exp not a number":                     {hsV, hs(good(jwt.MapClaims{"exp": "tomorrow"})), "malformed token"},
		"wrong audience":                       {Config{HS256Secret: []byte(secret), Audience: "dirgate"}, hs(good(jwt.MapClaims{"aud": "someone-else"})), "audience mismatch"},
		"missing audience":                     {Config{HS256Secret: []byte(secret), Audience: "dirgate"}, hs(good(nil)), "audience mismatch"},
		"wrong issuer":                         {Config{HS256Secret: []byte(secret), Issuer: "https://idp"}, hs(good(jwt.MapClaims{"iss": "https://evil"})), "issuer mismatch"},
		"missing issuer":                       {Config{HS256Secret: []byte(secret), Issuer: "https://idp"}, hs(good(nil)), "issuer mismatch"},
		"empty sub":                            {hsV, hs(good(jwt.MapClaims{"sub": ""})), "sub is not a valid tenant id"},
		"no sub":                               {hsV, hs(good(jwt.MapClaims{"sub": nil})), "sub is not a valid tenant id"},
		"sub too long":                         {hsV, hs(good(jwt.MapClaims{"sub": strings.Repeat("a", 129)})), "sub is not a valid tenant id"},
		"sub with slash":                       {hsV, hs(good(jwt.MapClaims{"sub": "acme/../x"})), "sub is not a valid tenant id"},
		"sub with space":                       {hsV, hs(good(jwt.MapClaims{"sub": "acme corp"})), "sub is not a valid tenant id"},
		"sub with newline":                     {hsV, hs(good(jwt.MapClaims{"sub": "acme\nlevel=error"})), "sub is not a valid tenant id"},
		"sub a number":                         {hsV, hs(good(jwt.MapClaims{"sub": 42})), "malformed token"},
		"empty":                                {hsV, "", "missing token"},
		"garbage":                              {hsV, "not-a-jwt", "malformed token"},
		"two segments":                         {hsV, "a.b", "malformed token"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			v := newVerifier(t, tc.cfg)
			_, err := v.Verify(tc.token)
			if !errors.Is(err, ErrInvalidToken) {
				t.Fatalf("err = %v, want ErrInvalidToken", err)
			}
			if want := "invalid token: " + tc.reason; err.Error() != want {
				t.Errorf("err = %q, want %q", err, want)
			}
			if tc.token != "" && strings.Contains(err.Error(), tc.token) {
				t.Errorf("the error repeats the token")
			}
		})
	}
}

// tamper swaps the payload of a signed token for another tenant's, keeping the signature.
func tamper(t *testing.T, tok string) string {
	t.Helper()
	parts := strings.Split(tok, ".")
	parts[1] = base64.RawURLEncoding.EncodeToString([]byte(`{"sub":"victim","exp":` + strconv.FormatInt(t0.Add(time.Hour).Unix(), 10) + `}`))
	return strings.Join(parts, ".")
}

func TestVerifyLeeway(t *testing.T) {
	t.Parallel()
	hs := func(exp time.Time) string {
		return sign(t, jwt.SigningMethodHS256, []byte(secret), good(jwt.MapClaims{"exp": exp.Unix()}))
	}
	for name, tc := range map[string]struct {
		leeway time.Duration
		exp    time.Time
		ok     bool
	}{
		"default 30s covers 20s of skew": {0, t0.Add(-20 * time.Second), true},
		"default 30s stops at 40s":       {0, t0.Add(-40 * time.Second), false},
		"configured 1m covers 50s":       {time.Minute, t0.Add(-50 * time.Second), true},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			v := newVerifier(t, Config{HS256Secret: []byte(secret), Leeway: tc.leeway})
			_, err := v.Verify(hs(tc.exp))
			if (err == nil) != tc.ok {
				t.Errorf("err = %v, want ok=%v", err, tc.ok)
			}
		})
	}
}

// TestVerifyOversized checks that tokens over 8 KiB are refused before parsing: a token that is
// valid apart from its size, and 9 KiB of base64 that would otherwise be parsed, both fail with
// ErrTooLarge; a valid token of exactly MaxTokenSize bytes passes.
func TestVerifyOversized(t *testing.T) {
	t.Parallel()
	v := newVerifier(t, Config{HS256Secret: []byte(secret)})
	fill := strings.Repeat("A", 9<<10)
	valid := sign(t, jwt.SigningMethodHS256, []byte(secret), good(jwt.MapClaims{"pad": fill}))
	garbage := "eyJhbGciOiJIUzI1NiJ9." + fill + ".sig"
	for name, tok := range map[string]string{"valid but large": valid, "9 KiB base64": garbage} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			_, err := v.Verify(tok)
			if !errors.Is(err, ErrTooLarge) || !errors.Is(err, ErrInvalidToken) {
				t.Fatalf("err = %v, want ErrTooLarge wrapping ErrInvalidToken", err)
			}
			if err.Error() != "invalid token: token too large" {
				t.Errorf("err = %q", err)
			}
		})
	}
	t.Run("at the limit", func(t *testing.T) {
		t.Parallel()
		// The largest valid token not over the limit is accepted (base64 grows in steps, so
		// "largest" is within a few bytes of MaxTokenSize).
		var tok string
		for n := MaxTokenSize*3/4 - 200; ; n++ {
			next := sign(t, jwt.SigningMethodHS256, []byte(secret), good(jwt.MapClaims{"pad": strings.Repeat("a", n)}))
			if len(next) > MaxTokenSize {
				break
			}
			tok = next
		}
		if len(tok) < MaxTokenSize-4 {
			t.Fatalf("test setup: token of %d bytes", len(tok))
		}
		if _, err := v.Verify(tok); err != nil {
			t.Errorf("valid token of %d bytes: %v", len(tok), err)
		}
		// Exactly MaxTokenSize bytes is parsed (and fails as malformed), one more is too large.
		if _, err := v.Verify(fill[:MaxTokenSize]); err == nil || errors.Is(err, ErrTooLarge) {
			t.Errorf("%d bytes: err = %v, want a parse failure", MaxTokenSize, err)
		}
		if _, err := v.Verify(fill[:MaxTokenSize+1]); !errors.Is(err, ErrTooLarge) {
			t.Errorf("%d bytes: err = %v, want ErrTooLarge", MaxTokenSize+1, err)
		}
	})
}

func TestNewVerifierRefuses(t *testing.T) {
	t.Parallel()
	k := keys(t)
	for name, tc := range map[string]struct {
		cfg  Config
		want string
	}{
		"no key":          {Config{}, "no verification key"},
		"short secret":    {Config{HS256Secret: []byte(secret[:31])}, "at least 32 bytes"},
		"both kinds":      {func() Config { c := pub(&k.rsa.PublicKey); c.HS256Secret = []byte(secret); return c }(), "one of"},
		"public, no iss":  {func() Config { c := pub(&k.rsa.PublicKey); c.Issuer = ""; return c }(), "issuer"},
		"public, no aud":  {func() Config { c := pub(&k.rsa.PublicKey); c.Audience = ""; return c }(), "audience"},
		"public, unbound": {func() Config { c := pub(&k.rsa.PublicKey); c.KeyTenants = nil; return c }(), "tenants each key may sign for"},
		"duplicate kid":   {func() Config { c := pub(&k.rsa.PublicKey, &k.rsa2.PublicKey); c.PublicKeys[1].ID = "k1"; return c }(), "two public keys"},
		"weak RSA":        {pub(&k.rsaWeak.PublicKey), "1024 bits"},
		"P-384":           {pub(&k.ecP384.PublicKey), "P-256"},
		"private key":     {pub(k.rsa), "unsupported key type"},
		"byte slice":      {pub([]byte(secret)), "unsupported key type"},
		"short ed25519":   {pub(ed25519.PublicKey(make([]byte, 10))), "wrong size"},
		"nil RSA":         {pub((*rsa.PublicKey)(nil)), "empty RSA key"},
		"negative leeway": {Config{HS256Secret: []byte(secret), Leeway: -time.Second}, "leeway"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			v, err := NewVerifier(tc.cfg)
			if err == nil || v != nil {
				t.Fatalf("NewVerifier = %v, %v; want an error", v, err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %q, want it to mention %q", err, tc.want)
			}
			if strings.Contains(err.Error(), secret[:16]) {
				t.Errorf("the error contains the secret")
			}
		})
	}
}

// TestVerifierCopiesSecret checks that changing the caller's slice afterwards has no effect.
func TestVerifierCopiesSecret(t *testing.T) {
	t.Parallel()
	s := []byte(secret)
	v := newVerifier(t, Config{HS256Secret: s})
	tok := sign(t, jwt.SigningMethodHS256, []byte(secret), good(nil))
	for i := range s {
		s[i] = 'x'
	}
	if _, err := v.Verify(tok); err != nil {
		t.Errorf("Verify after the caller changed its slice: %v", err)
	}
}

func TestValidTenantID(t *testing.T) {
	t.Parallel()
	for s, want := range map[string]bool{
		"acme":                   true,
		"A-z_0.9:x@example.com":  true,
		strings.Repeat("a", 128): true,
		"":                       false,
		strings.Repeat("a", 129): false,
		"a b":                    false,
		"a/b":                    false,
		"a*":                     false,
		"é":                      false,
		"a\n":                    false,
		"{acct}":                 false,
	} {
		if got := ValidTenantID(s); got != want {
			t.Errorf("ValidTenantID(%q) = %v, want %v", s, got, want)
		}
	}
}

func TestMinterRoundTrip(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct{ iss, aud string }{
		"plain":               {"", ""},
		"issuer and audience": {"dirgate-dev", "dirgate"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			m, err := NewMinter([]byte(secret), tc.iss, tc.aud, clock)
			if err != nil {
				t.Fatal(err)
			}
			tok, err := m.Mint("tenant-1", 5*time.Minute)
			if err != nil {
				t.Fatal(err)
			}
			v := newVerifier(t, Config{HS256Secret: []byte(secret), Issuer: tc.iss, Audience: tc.aud})
			got, err := v.Verify(tok)
			if err != nil {
				t.Fatalf("Verify(minted): %v", err)
			}
			if diff := cmp.Diff(Claims{Tenant: "tenant-1", ExpiresAt: t0.Add(5 * time.Minute), IssuedAt: t0}, got); diff != "" {
				t.Errorf("claims (-want +got):\n%s", diff)
			}

			var rc jwt.RegisteredClaims
			if _, _, err := jwt.NewParser().ParseUnverified(tok, &rc); err != nil {
				t.Fatal(err)
			}
			if rc.ID == "" || rc.IssuedAt == nil || !rc.IssuedAt.Equal(t0) || rc.Issuer != tc.iss {
				t.Errorf("registered claims = %+v, want jti, iat=%v, iss=%q", rc, t0, tc.iss)
			}
			tok2, _ := m.Mint("tenant-1", 5*time.Minute)
			var rc2 jwt.RegisteredClaims
			if _, _, err := jwt.NewParser().ParseUnverified(tok2, &rc2); err != nil {
				t.Fatal(err)
			}
			if rc2.ID == rc.ID {
				t.Errorf("two tokens share jti %q", rc.ID)
			}
		})
	}
	t.Run("account-scoped", func(t *testing.T) {
		t.Parallel()
		m, _ := NewMinter([]byte(secret), "", "", clock)
		tok, err := m.MintAccount("tenant-1", "ia_123", time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		got, err := newVerifier(t, Config{HS256Secret: []byte(secret)}).Verify(tok)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(Claims{Tenant: "tenant-1", Account: "ia_123", ExpiresAt: t0.Add(time.Minute), IssuedAt: t0}, got); diff != "" {
			t.Errorf("claims (-want +got):\n%s", diff)
		}
		if _, err := m.MintAccount("tenant-1", "", time.Minute); err == nil {
			t.Error("MintAccount accepted an empty account id")
		}
	})
	t.Run("expires", func(t *testing.T) {
		t.Parallel()
		m, _ := NewMinter([]byte(secret), "", "", clock)
		tok, _ := m.Mint("tenant-1", time.Minute)
		later := func() time.Time { return t0.Add(2 * time.Minute) }
		v := newVerifier(t, Config{HS256Secret: []byte(secret), Now: later})
		if _, err := v.Verify(tok); err == nil || err.Error() != "invalid token: token expired" {
			t.Errorf("minted token after its ttl: err = %v, want token expired", err)
		}
	})
	t.Run("other verifier secret", func(t *testing.T) {
		t.Parallel()
		m, _ := NewMinter([]byte(secret), "", "", clock)
		tok, _ := m.Mint("tenant-1", time.Minute)
		v := newVerifier(t, Config{HS256Secret: []byte(strings.Repeat("q", 32))})
		if _, err := v.Verify(tok); !errors.Is(err, ErrInvalidToken) {
			t.Errorf("err = %v, want ErrInvalidToken", err)
		}
	})
}

func TestMinterRefuses(t *testing.T) {
	t.Parallel()
	if _, err := NewMinter([]byte(secret[:31]), "", "", nil); err == nil {
		t.Error("NewMinter accepted a 31-byte secret")
	}
	m, err := NewMinter([]byte(secret), "", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		tenant string
		ttl    time.Duration
	}{
		"bad tenant":   {"a b", time.Minute},
		"empty tenant": {"", time.Minute},
		"zero ttl":     {"acme", 0},
		"negative ttl": {"acme", -time.Minute},
	} {
		if tok, err := m.Mint(tc.tenant, tc.ttl); err == nil {
			t.Errorf("%s: Mint = %q, want an error", name, tok)
		}
	}
}

func TestParsePublicKeys(t *testing.T) {
	t.Parallel()
	k := keys(t)
	pkcs1 := pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: x509.MarshalPKCS1PublicKey(&k.rsa.PublicKey)})
	edPub := k.ed.Public().(ed25519.PublicKey)
	privDER, err := x509.MarshalPKCS8PrivateKey(k.ec)
	if err != nil {
		t.Fatal(err)
	}
	join := func(parts ...[]byte) []byte {
		var b []byte
		for _, p := range parts {
			b = append(b, p...)
		}
		return b
	}

	for name, tc := range map[string]struct {
		pem     []byte
		want    []crypto.PublicKey
		wantErr string
	}{
		"PKIX RSA":     {pem: pkixPEM(t, &k.rsa.PublicKey), want: []crypto.PublicKey{&k.rsa.PublicKey}},
		"PKCS#1 RSA":   {pem: pkcs1, want: []crypto.PublicKey{&k.rsa.PublicKey}},
		"PKIX EC":      {pem: pkixPEM(t, &k.ec.PublicKey), want: []crypto.PublicKey{&k.ec.PublicKey}},
		"PKIX Ed25519": {pem: pkixPEM(t, edPub), want: []crypto.PublicKey{edPub}},
		"several blocks with text between": {
			pem:  join([]byte("# rotation: new key first\n"), pkixPEM(t, &k.rsa2.PublicKey), []byte("old key:\n"), pkcs1, pkixPEM(t, edPub)),
			want: []crypto.PublicKey{&k.rsa2.PublicKey, &k.rsa.PublicKey, edPub},
		},
		"garbage":             {pem: []byte("this is not PEM"), wantErr: "no PEM public key found"},
		"empty":               {pem: nil, wantErr: "no PEM public key found"},
		"bad DER":             {pem: pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: []byte("garbage")}), wantErr: "PEM block 1 (PUBLIC KEY)"},
		"bad PKCS#1 DER":      {pem: pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: []byte("garbage")}), wantErr: "PEM block 1 (RSA PUBLIC KEY)"},
		"private key block":   {pem: pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: privDER}), wantErr: `unsupported type "PRIVATE KEY"`},
		"weak RSA":            {pem: pkixPEM(t, &k.rsaWeak.PublicKey), wantErr: "1024 bits"},
		"P-384":               {pem: pkixPEM(t, &k.ecP384.PublicKey), wantErr: "P-256"},
		"good then bad block": {pem: join(pkcs1, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte("x")})), wantErr: "PEM block 2"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			got, err := ParsePublicKeys(tc.pem)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %d keys, want %d", len(got), len(tc.want))
			}
			var keys []crypto.PublicKey
			for i := range got {
				eq, ok := got[i].Key.(interface{ Equal(crypto.PublicKey) bool })
				if !ok || !eq.Equal(tc.want[i]) {
					t.Errorf("key %d = %T, not the expected %T", i, got[i].Key, tc.want[i])
				}
				if want := "key-" + strconv.Itoa(i+1); got[i].ID != want {
					t.Errorf("key %d is named %q, want %q", i, got[i].ID, want)
				}
				keys = append(keys, got[i].Key)
			}
			// The parsed keys work in a verifier.
			if _, err := NewVerifier(pub(keys...)); err != nil {
				t.Errorf("NewVerifier(parsed keys): %v", err)
			}
		})
	}
}
