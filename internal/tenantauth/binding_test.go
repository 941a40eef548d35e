package tenantauth

import (
	"context"
	"crypto"
	"encoding/json"
	"encoding/pem"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/MicahParks/jwkset"
	"github.com/golang-jwt/jwt/v5"
)

func TestParseKeyTenants(t *testing.T) {
	t.Parallel()
	got, err := ParseKeyTenants(" kid1 = tenant-a, acme-* ; kid2=*;kid3=x.y@z")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		kid, tenant string
		want        bool
	}{
		{"kid1", "tenant-a", true}, {"kid1", "acme-eu", true}, {"kid1", "acme", false}, {"kid1", "tenant-ab", false},
		{"kid1", "globex", false}, {"kid2", "anyone", true}, {"kid3", "x.y@z", true}, {"kid3", "x.y@z2", false},
		{"unknown", "tenant-a", false},
	} {
		if ok := got[tc.kid].Allows(tc.tenant); ok != tc.want {
			t.Errorf("%s signs for %s: %v, want %v", tc.kid, tc.tenant, ok, tc.want)
		}
	}
	for _, bad := range []string{"", ";", "kid1", "=a", "kid1=a b", "kid1=a;kid1=b", "kid1=a/b", "kid1=", "kid1=a**"} {
		if _, err := ParseKeyTenants(bad); err == nil {
			t.Errorf("ParseKeyTenants(%q) accepted", bad)
		}
	}
}

// TestKeyBoundToTenants: a key signs only for the tenants its kid is given; outside them the
// token is refused without saying which tenants the key has.
func TestKeyBoundToTenants(t *testing.T) {
	t.Parallel()
	k := keys(t)
	tenants, err := ParseKeyTenants("a=acme,acme-*;b=globex")
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{Issuer: "https://idp", Audience: "dirgate", KeyTenants: tenants, PublicKeys: []PublicKey{
		{ID: "a", Key: &k.rsa.PublicKey}, {ID: "b", Key: &k.rsa2.PublicKey}, {ID: "c", Key: &k.ec.PublicKey},
	}}
	v := newVerifier(t, cfg)
	for _, tc := range []struct {
		kid    string
		key    any
		method jwt.SigningMethod
		sub    string
		ok     bool
	}{
		{"a", k.rsa, jwt.SigningMethodRS256, "acme", true},
		{"a", k.rsa, jwt.SigningMethodRS256, "acme-eu", true},
		{"a", k.rsa, jwt.SigningMethodRS256, "globex", false},
		{"b", k.rsa2, jwt.SigningMethodRS256, "globex", true},
		{"b", k.rsa2, jwt.SigningMethodRS256, "acme", false},
		{"c", k.ec, jwt.SigningMethodES256, "acme", false}, // a kid with no entry signs for nobody
	} {
		_, err := v.Verify(signK(t, tc.method, tc.key, tc.kid, pubClaims(jwt.MapClaims{"sub": tc.sub})))
		if tc.ok && err != nil {
			t.Errorf("key %s for %s: %v", tc.kid, tc.sub, err)
		}
		if !tc.ok {
			if !errors.Is(err, ErrInvalidToken) || err.Error() != "invalid token: the signing key may not sign for this tenant" {
				t.Errorf("key %s for %s: %v, want refused", tc.kid, tc.sub, err)
			}
		}
	}
}

func TestParsePublicKeysKidHeader(t *testing.T) {
	t.Parallel()
	k := keys(t)
	named := pkixPEM(t, &k.rsa.PublicKey)
	b, _ := pem.Decode(named)
	b.Headers = map[string]string{"kid": "idp-2026"}
	data := append(pem.EncodeToMemory(b), pkixPEM(t, &k.ec.PublicKey)...)
	got, err := ParsePublicKeys(data)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].ID != "idp-2026" || got[1].ID != "key-2" {
		t.Fatalf("kids = %+v", got)
	}
	if _, err := ParsePublicKeys(append(pem.EncodeToMemory(b), pem.EncodeToMemory(b)...)); err == nil || !strings.Contains(err.Error(), "used twice") {
		t.Errorf("a kid used twice: %v", err)
	}
}

// jwksJSON is a JWK Set of keys by kid.
func jwksJSON(t *testing.T, keys map[string]crypto.PublicKey) []byte {
	t.Helper()
	var set jwkset.JWKSMarshal
	for kid, key := range keys {
		j, err := jwkset.NewJWKFromKey(key, jwkset.JWKOptions{Metadata: jwkset.JWKMetadataOptions{KID: kid}})
		if err != nil {
			t.Fatal(err)
		}
		set.Keys = append(set.Keys, j.Marshal())
	}
	b, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestJWKSFile(t *testing.T) {
	t.Parallel()
	k := keys(t)
	kf, err := ReadJWKS(jwksJSON(t, map[string]crypto.PublicKey{"e1": &k.ec.PublicKey, "weak": &k.rsaWeak.PublicKey}))
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{Issuer: "https://idp", Audience: "dirgate", JWKS: kf, KeyTenants: map[string]TenantSet{
		"e1": {exact: map[string]bool{"acme": true}}, "weak": {prefixes: []string{""}},
	}}
	v := newVerifier(t, cfg)
	if _, err := v.Verify(signK(t, jwt.SigningMethodES256, k.ec, "e1", pubClaims(nil))); err != nil {
		t.Fatalf("a JWKS key: %v", err)
	}
	if _, err := v.Verify(signK(t, jwt.SigningMethodES256, k.ec, "e1", pubClaims(jwt.MapClaims{"sub": "globex"}))); err == nil {
		t.Error("the JWKS key signed for a tenant outside its binding")
	}
	// A key too weak to trust is refused, even from the JWK Set.
	if _, err := v.Verify(signK(t, jwt.SigningMethodRS256, k.rsaWeak, "weak", pubClaims(nil))); err == nil || !strings.Contains(err.Error(), "algorithm not allowed") {
		t.Errorf("a 1024-bit key from the JWK Set: %v", err)
	}
	for _, bad := range []string{"", "{}", `{"keys":[]}`, "not json"} {
		if _, err := ReadJWKS([]byte(bad)); err == nil {
			t.Errorf("ReadJWKS(%q) accepted", bad)
		}
	}
}

// TestJWKSURL: keys come from a local JWK Set server; a key rotated in later is found when a
// token names it; a redirect is not followed; http is refused off loopback.
func TestJWKSURL(t *testing.T) {
	t.Parallel()
	k := keys(t)
	var (
		mu      sync.Mutex
		current = map[string]crypto.PublicKey{"r1": &k.rsa.PublicKey}
		fetches atomic.Int32
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fetches.Add(1)
		mu.Lock()
		defer mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(jwksJSON(t, current))
	}))
	t.Cleanup(srv.Close)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)

	kf, err := NewJWKS(ctx, srv.URL+"/jwks.json", nil)
	if err != nil {
		t.Fatal(err)
	}
	all := TenantSet{prefixes: []string{""}}
	v := newVerifier(t, Config{Issuer: "https://idp", Audience: "dirgate", JWKS: kf, KeyTenants: map[string]TenantSet{"r1": all, "r2": all}})
	if _, err := v.VerifyContext(ctx, signK(t, jwt.SigningMethodRS256, k.rsa, "r1", pubClaims(nil))); err != nil {
		t.Fatalf("a key from the URL: %v", err)
	}
	// The provider rotates a new key in: the first token naming it makes the gateway read the
	// set again.
	mu.Lock()
	current = map[string]crypto.PublicKey{"r1": &k.rsa.PublicKey, "r2": &k.rsa2.PublicKey}
	mu.Unlock()
	before := fetches.Load()
	if _, err := v.VerifyContext(ctx, signK(t, jwt.SigningMethodRS256, k.rsa2, "r2", pubClaims(nil))); err != nil {
		t.Fatalf("a key rotated in: %v", err)
	}
	if fetches.Load() == before {
		t.Error("the rotated key was verified without reading the set again")
	}

	// A redirect is not followed, even to a server with the right keys.
	redirect := httptest.NewServer(http.RedirectHandler(srv.URL+"/jwks.json", http.StatusFound))
	t.Cleanup(redirect.Close)
	beforeRedirect := fetches.Load()
	if _, err := NewJWKS(ctx, redirect.URL, nil); err == nil {
		t.Error("a redirecting JWK Set URL was accepted")
	}
	if fetches.Load() != beforeRedirect {
		t.Error("the redirect was followed")
	}
	for _, bad := range []string{"http://idp.example.com/jwks.json", "ftp://127.0.0.1/jwks", "https://user:pw@idp.example/jwks", "/jwks.json"} {
		if _, err := NewJWKS(ctx, bad, nil); err == nil || strings.Contains(err.Error(), "pw") {
			t.Errorf("NewJWKS(%q): %v", bad, err)
		}
	}
}
