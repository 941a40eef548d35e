package crypt_test

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/dirgate/dirgate/internal/crypt"
)

func mustKey(t *testing.T, id string) crypt.Key {
	t.Helper()
	k, err := crypt.GenerateKey(id)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func mustRing(t *testing.T, keys ...crypt.Key) *crypt.Ring {
	t.Helper()
	r, err := crypt.NewRing(keys)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func aad(tenant, acct, field string) []byte {
	return []byte("dirgate/v1|" + tenant + "|" + acct + "|" + field)
}

func TestRoundTrip(t *testing.T) {
	t.Parallel()
	r := mustRing(t, mustKey(t, "k1"))
	for _, pt := range [][]byte{[]byte("secret-access-token"), {}, bytes.Repeat([]byte{0xff}, 4096)} {
		a := aad("t1", "ia_1", "access_token")
		s1, err := r.Seal(pt, a)
		if err != nil {
			t.Fatal(err)
		}
		s2, _ := r.Seal(pt, a)
		if s1 == s2 {
			t.Error("two seals of the same plaintext are equal: nonce not random")
		}
		if !strings.HasPrefix(s1, "k1.") {
			t.Errorf("sealed value %q does not start with the key id", s1)
		}
		if len(pt) > 4 && strings.Contains(s1, string(pt)) {
			t.Error("sealed value contains the plaintext")
		}
		got, stale, err := r.Open(s1, a)
		if err != nil || stale || !bytes.Equal(got, pt) {
			t.Errorf("Open = %q, %v, %v; want plaintext, false, nil", got, stale, err)
		}
	}
}

// TestAADBinding proves a ciphertext only opens in the record and field it was sealed for.
func TestAADBinding(t *testing.T) {
	t.Parallel()
	r := mustRing(t, mustKey(t, "k1"))
	sealed, err := r.Seal([]byte("tok"), aad("tenant-a", "ia_1", "refresh_token"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		aad  []byte
	}{
		{"other tenant", aad("tenant-b", "ia_1", "refresh_token")},
		{"other account", aad("tenant-a", "ia_2", "refresh_token")},
		{"other field", aad("tenant-a", "ia_1", "access_token")},
		{"no aad", nil},
		{"arbitrary aad", []byte("x")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pt, _, err := r.Open(sealed, tt.aad)
			if !errors.Is(err, crypt.ErrDecrypt) {
				t.Fatalf("Open with %s = %q, %v; want ErrDecrypt", tt.name, pt, err)
			}
		})
	}
}

func TestRotation(t *testing.T) {
	t.Parallel()
	oldKey, newKey := mustKey(t, "old"), mustKey(t, "new")
	oldRing := mustRing(t, oldKey)
	rotated := mustRing(t, newKey, oldKey)
	a := aad("t", "ia_1", "access_token")

	sealedOld, _ := oldRing.Seal([]byte("v1"), a)
	pt, stale, err := rotated.Open(sealedOld, a)
	if err != nil || !stale || string(pt) != "v1" {
		t.Fatalf("rotated ring opening old value = %q, stale=%v, %v; want v1, true, nil", pt, stale, err)
	}
	if rotated.ActiveID() != "new" {
		t.Fatalf("ActiveID = %q", rotated.ActiveID())
	}
	sealedNew, _ := rotated.Seal([]byte("v2"), a)
	if id, _ := crypt.SealedKeyID(sealedNew); id != "new" {
		t.Fatalf("new write sealed with %q, want the active key", id)
	}
	if _, stale, err := rotated.Open(sealedNew, a); err != nil || stale {
		t.Fatalf("Open(new) stale=%v err=%v", stale, err)
	}
	// The old ring has never heard of the new key.
	if _, _, err := oldRing.Open(sealedNew, a); !errors.Is(err, crypt.ErrUnknownKey) {
		t.Fatalf("old ring Open(new) err = %v, want ErrUnknownKey", err)
	}
	// Same id, different secret: authentication fails.
	impostor := mustRing(t, crypt.Key{ID: "new", Secret: bytes.Repeat([]byte{1}, 32)})
	if _, _, err := impostor.Open(sealedNew, a); !errors.Is(err, crypt.ErrDecrypt) {
		t.Fatalf("wrong secret err = %v, want ErrDecrypt", err)
	}
}

func TestOpenRejects(t *testing.T) {
	t.Parallel()
	r := mustRing(t, mustKey(t, "k1"))
	a := aad("t", "ia_1", "access_token")
	sealed, _ := r.Seal([]byte("some-token-value"), a)
	_, body, _ := strings.Cut(sealed, ".")
	raw, _ := base64.RawURLEncoding.DecodeString(body)
	flip := func(i int) string {
		b := bytes.Clone(raw)
		b[i] ^= 1
		return "k1." + base64.RawURLEncoding.EncodeToString(b)
	}
	tests := []struct {
		name   string
		sealed string
		want   error
	}{
		{"unknown key id", "k9." + body, crypt.ErrUnknownKey},
		{"tampered nonce", flip(0), crypt.ErrDecrypt},
		{"tampered ciphertext", flip(len(raw) / 2), crypt.ErrDecrypt},
		{"tampered tag", flip(len(raw) - 1), crypt.ErrDecrypt},
		{"truncated", "k1." + base64.RawURLEncoding.EncodeToString(raw[:20]), crypt.ErrDecrypt},
		{"no separator", "k1" + body, crypt.ErrDecrypt},
		{"bad base64", "k1.***", crypt.ErrDecrypt},
		{"empty", "", crypt.ErrDecrypt},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pt, _, err := r.Open(tt.sealed, a)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Open = %q, %v; want %v", pt, err, tt.want)
			}
			if strings.Contains(err.Error(), "some-token-value") {
				t.Fatalf("error leaks plaintext: %v", err)
			}
		})
	}
}

func TestParseKeys(t *testing.T) {
	t.Parallel()
	secret := bytes.Repeat([]byte{0xfb}, 32) // 0xfb makes std and url alphabets differ
	std := base64.StdEncoding.EncodeToString(secret)
	rawURL := base64.RawURLEncoding.EncodeToString(secret)
	short := base64.StdEncoding.EncodeToString(secret[:16])
	t.Run("valid", func(t *testing.T) {
		for _, spec := range []string{
			"k1:" + std,
			"k1:" + strings.TrimRight(std, "="),
			"k1:" + rawURL,
			"k1:" + base64.URLEncoding.EncodeToString(secret),
			" k1 : " + std + " ",
		} {
			keys, err := crypt.ParseKeys(spec)
			if err != nil || len(keys) != 1 || keys[0].ID != "k1" || !bytes.Equal(keys[0].Secret, secret) {
				t.Errorf("ParseKeys(%q) = %v, %v", spec, keys, err)
			}
		}
		keys, err := crypt.ParseKeys("a:" + std + ",b_2-x:" + rawURL)
		if err != nil || len(keys) != 2 || keys[0].ID != "a" || keys[1].ID != "b_2-x" {
			t.Fatalf("two keys: %v, %v", keys, err)
		}
	})
	bad := []struct{ name, spec string }{
		{"empty", ""},
		{"blank", "  "},
		{"no colon", "k1" + std},
		{"empty entry", "k1:" + std + ","},
		{"bad id", "k 1:" + std},
		{"id too long", strings.Repeat("k", 33) + ":" + std},
		{"empty id", ":" + std},
		{"duplicate id", "k1:" + std + ",k1:" + rawURL},
		{"short key", "k1:" + short},
		{"not base64", "k1:!!!notbase64!!!"},
		{"empty secret", "k1:"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			keys, err := crypt.ParseKeys(tt.spec)
			if err == nil {
				t.Fatalf("ParseKeys(%q) = %v, want error", tt.spec, keys)
			}
			if strings.Contains(err.Error(), std) || strings.Contains(err.Error(), rawURL) || strings.Contains(err.Error(), short) {
				t.Fatalf("error leaks key material: %v", err)
			}
		})
	}
}

func TestKeyStringRoundTrip(t *testing.T) {
	t.Parallel()
	k := mustKey(t, "gen")
	keys, err := crypt.ParseKeys(k.String())
	if err != nil || !bytes.Equal(keys[0].Secret, k.Secret) {
		t.Fatalf("ParseKeys(k.String()) = %v, %v", keys, err)
	}
	if s := fmt.Sprintf("%#v", k); strings.Contains(s, base64.StdEncoding.EncodeToString(k.Secret)) {
		t.Fatalf("%%#v leaks the secret: %s", s)
	}
	if _, err := crypt.GenerateKey("bad id"); err == nil {
		t.Fatal("GenerateKey accepted an invalid id")
	}
}

func TestNewRingErrors(t *testing.T) {
	t.Parallel()
	good := mustKey(t, "k1")
	tests := []struct {
		name string
		keys []crypt.Key
	}{
		{"none", nil},
		{"duplicate", []crypt.Key{good, good}},
		{"short secret", []crypt.Key{{ID: "k", Secret: make([]byte, 16)}}},
		{"long secret", []crypt.Key{{ID: "k", Secret: make([]byte, 33)}}},
		{"bad id", []crypt.Key{{ID: "k.1", Secret: make([]byte, 32)}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := crypt.NewRing(tt.keys); err == nil {
				t.Fatal("NewRing succeeded")
			}
		})
	}
}
