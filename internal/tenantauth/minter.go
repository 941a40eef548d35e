package tenantauth

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Minter issues HS256 tenant tokens that a Verifier with the same secret accepts. It serves
// development and the "dirgate token" command; production tenants usually bring their own issuer.
type Minter struct {
	secret           []byte
	issuer, audience string
	now              func() time.Time
}

// NewMinter returns a Minter signing with secret (at least MinSecretSize bytes). issuer and
// audience are set as iss and aud when non-empty; now is the clock (nil means time.Now).
func NewMinter(secret []byte, issuer, audience string, now func() time.Time) (*Minter, error) {
	if len(secret) < MinSecretSize {
		return nil, fmt.Errorf("tenantauth: HS256 secret must be at least %d bytes", MinSecretSize)
	}
	if now == nil {
		now = time.Now
	}
	return &Minter{secret: slices.Clone(secret), issuer: issuer, audience: audience, now: now}, nil
}

// Mint returns a token for tenant valid for ttl, with sub, iat, exp, a random jti, and iss/aud
// when the Minter has them.
func (m *Minter) Mint(tenant string, ttl time.Duration) (string, error) {
	return m.mint(tenant, "", ttl)
}

// MintAccount returns an account-scoped token: Mint's claims plus "acct" naming one integrated
// account. The gateway accepts it only on the proxy, and only for that account.
func (m *Minter) MintAccount(tenant, account string, ttl time.Duration) (string, error) {
	if account == "" || len(account) > 128 {
		return "", errors.New("tenantauth: account id must be 1-128 characters")
	}
	return m.mint(tenant, account, ttl)
}

func (m *Minter) mint(tenant, account string, ttl time.Duration) (string, error) {
	if !ValidTenantID(tenant) {
		return "", errors.New("tenantauth: invalid tenant id (1-128 characters of A-Z a-z 0-9 . _ : @ -)")
	}
	if ttl <= 0 {
		return "", errors.New("tenantauth: token ttl must be positive")
	}
	var jti [16]byte
	if _, err := rand.Read(jti[:]); err != nil {
		return "", fmt.Errorf("tenantauth: jti: %w", err)
	}
	now := m.now()
	claims := tokenClaims{RegisteredClaims: jwt.RegisteredClaims{
		Subject:   tenant,
		Issuer:    m.issuer,
		IssuedAt:  jwt.NewNumericDate(now),
		ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
		ID:        hex.EncodeToString(jti[:]),
	}, Account: account}
	if m.audience != "" {
		claims.Audience = jwt.ClaimStrings{m.audience}
	}
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(m.secret)
	if err != nil {
		return "", fmt.Errorf("tenantauth: sign: %w", err)
	}
	return s, nil
}
