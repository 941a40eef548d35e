package api_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"net/http"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/dirgate/dirgate/internal/tenantauth"
)

// TestSigningKeyBoundToTenant: with public keys, a key signs only for the tenants it is bound to;
// its token for another tenant, and a token signed with the HS256 secret, are refused with 401.
func TestSigningKeyBoundToTenant(t *testing.T) {
	t.Parallel()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tenants, err := tenantauth.ParseKeyTenants("idp-a=acme,acme-*")
	if err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, harnessOptions{jwt: &tenantauth.Config{
		PublicKeys: []tenantauth.PublicKey{{ID: "idp-a", Key: pub}},
		KeyTenants: tenants, Issuer: "https://idp.example", Audience: "dirgate",
	}})
	sign := func(sub string) string {
		t.Helper()
		now := time.Now()
		tok := jwt.NewWithClaims(jwt.SigningMethodEdDSA, jwt.MapClaims{
			"sub": sub, "iss": "https://idp.example", "aud": "dirgate", "iat": now.Unix(), "exp": now.Add(time.Hour).Unix(),
		})
		tok.Header["kid"] = "idp-a"
		s, err := tok.SignedString(priv)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	for _, tenant := range []string{"acme", "acme-eu"} {
		if r := h.do("GET", "/integrated-accounts", sign(tenant), nil); r.status != http.StatusOK {
			t.Fatalf("%s with its key: %d %s", tenant, r.status, r.body)
		}
	}
	for name, tok := range map[string]string{"another tenant": sign("globex"), "the HS256 secret": h.token("acme")} {
		if r := h.do("GET", "/integrated-accounts", tok, nil); r.status != http.StatusUnauthorized {
			t.Errorf("%s: %d %s, want 401", name, r.status, r.body)
		}
	}
}
