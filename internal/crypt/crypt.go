package crypt

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
)

// KeySize is the size of an AES-256 key in bytes.
const KeySize = 32

// maxKeyIDLen bounds a key id; ids are stored in front of every ciphertext.
const maxKeyIDLen = 32

var (
	// ErrUnknownKey is returned by Open when the value was sealed under a key id the ring does
	// not hold.
	ErrUnknownKey = errors.New("crypt: unknown key id")
	// ErrDecrypt is returned by Open when the value is malformed, was tampered with, or was sealed
	// with other additional data (for example copied from another record).
	ErrDecrypt = errors.New("crypt: cannot decrypt")
)

// Key is one AES-256 key of a Ring.
type Key struct {
	// ID names the key; it matches [A-Za-z0-9_-]{1,32} and is stored with each ciphertext.
	ID string
	// Secret is exactly KeySize bytes.
	Secret []byte
}

// String returns the key in the spec form ParseKeys reads, "kid:<base64>". It contains the secret:
// use it only to print a freshly generated key.
func (k Key) String() string {
	return k.ID + ":" + base64.StdEncoding.EncodeToString(k.Secret)
}

// GoString hides the secret, so that %#v of a Key (or of a struct holding one) does not leak it.
func (k Key) GoString() string {
	return fmt.Sprintf("crypt.Key{ID:%q, Secret:<redacted>}", k.ID)
}

// ValidKeyID reports whether id is usable as a key id: 1 to 32 characters of [A-Za-z0-9_-].
func ValidKeyID(id string) bool {
	if id == "" || len(id) > maxKeyIDLen {
		return false
	}
	for _, c := range []byte(id) {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}

// GenerateKey returns a new random key with the given id.
func GenerateKey(id string) (Key, error) {
	if !ValidKeyID(id) {
		return Key{}, fmt.Errorf("crypt: key id %q: must be 1-32 characters of A-Z a-z 0-9 _ -", id)
	}
	secret := make([]byte, KeySize)
	if _, err := rand.Read(secret); err != nil {
		return Key{}, fmt.Errorf("crypt: generating key: %w", err)
	}
	return Key{ID: id, Secret: secret}, nil
}

// ParseKeys reads a key ring spec: comma-separated "kid:<base64 of 32 bytes>" entries, the first
// being the active (encrypting) key. Standard and URL-safe base64 are accepted, padded or not.
// Errors name the entry and its id, never the key material.
func ParseKeys(spec string) ([]Key, error) {
	if strings.TrimSpace(spec) == "" {
		return nil, errors.New("crypt: no keys: expected \"kid:<base64 32-byte key>[,kid2:...]\"")
	}
	var keys []Key
	seen := map[string]bool{}
	for i, entry := range strings.Split(spec, ",") {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			return nil, fmt.Errorf("crypt: key %d: empty entry", i+1)
		}
		id, b64, ok := strings.Cut(entry, ":")
		if !ok {
			return nil, fmt.Errorf("crypt: key %d: expected \"kid:<base64>\"", i+1)
		}
		id = strings.TrimSpace(id)
		if !ValidKeyID(id) {
			return nil, fmt.Errorf("crypt: key %d: invalid key id (1-32 characters of A-Z a-z 0-9 _ -)", i+1)
		}
		if seen[id] {
			return nil, fmt.Errorf("crypt: key %d (%s): duplicate key id", i+1, id)
		}
		seen[id] = true
		secret, err := decodeBase64(strings.TrimSpace(b64))
		if err != nil {
			return nil, fmt.Errorf("crypt: key %d (%s): not valid base64", i+1, id)
		}
		if len(secret) != KeySize {
			return nil, fmt.Errorf("crypt: key %d (%s): decodes to %d bytes, want %d", i+1, id, len(secret), KeySize)
		}
		keys = append(keys, Key{ID: id, Secret: secret})
	}
	return keys, nil
}

// decodeBase64 accepts standard and URL-safe alphabets, with or without padding.
func decodeBase64(s string) ([]byte, error) {
	if s == "" {
		return nil, errors.New("empty")
	}
	unpadded := strings.TrimRight(s, "=")
	if strings.ContainsAny(unpadded, "-_") {
		return base64.RawURLEncoding.DecodeString(unpadded)
	}
	return base64.RawStdEncoding.DecodeString(unpadded)
}

// Ring is a set of keys: the first encrypts, all decrypt. It is safe for concurrent use.
type Ring struct {
	active string
	aeads  map[string]cipher.AEAD
	ids    []string
}

// NewRing builds a ring from keys; keys[0] is the active key. It fails on an empty list, a
// duplicate or invalid id, or a secret that is not 32 bytes.
func NewRing(keys []Key) (*Ring, error) {
	if len(keys) == 0 {
		return nil, errors.New("crypt: key ring needs at least one key")
	}
	r := &Ring{active: keys[0].ID, aeads: make(map[string]cipher.AEAD, len(keys))}
	for i, k := range keys {
		if !ValidKeyID(k.ID) {
			return nil, fmt.Errorf("crypt: key %d: invalid key id", i+1)
		}
		if _, dup := r.aeads[k.ID]; dup {
			return nil, fmt.Errorf("crypt: key %d (%s): duplicate key id", i+1, k.ID)
		}
		if len(k.Secret) != KeySize {
			return nil, fmt.Errorf("crypt: key %d (%s): secret is %d bytes, want %d", i+1, k.ID, len(k.Secret), KeySize)
		}
		block, err := aes.NewCipher(k.Secret)
		if err != nil {
			return nil, fmt.Errorf("crypt: key %d (%s): %w", i+1, k.ID, err)
		}
		aead, err := cipher.NewGCMWithRandomNonce(block)
		if err != nil {
			return nil, fmt.Errorf("crypt: key %d (%s): %w", i+1, k.ID, err)
		}
		r.aeads[k.ID] = aead
		r.ids = append(r.ids, k.ID)
	}
	return r, nil
}

// ActiveID returns the id of the key that Seal uses.
func (r *Ring) ActiveID() string { return r.active }

// KeyIDs returns the ids of every key in the ring, the active one first.
func (r *Ring) KeyIDs() []string { return append([]string(nil), r.ids...) }

// Seal encrypts plaintext with the active key and a random nonce, authenticating aad, and returns
// "<kid>.<base64url(nonce||ciphertext||tag)>".
func (r *Ring) Seal(plaintext, aad []byte) (string, error) {
	aead := r.aeads[r.active]
	ct := aead.Seal(nil, nil, plaintext, aad)
	return r.active + "." + base64.RawURLEncoding.EncodeToString(ct), nil
}

// Open decrypts a value made by Seal with the same aad. stale reports that it was sealed under a
// key other than the active one, so the caller should seal it again on its next write.
func (r *Ring) Open(sealed string, aad []byte) (plaintext []byte, stale bool, err error) {
	id, body, ok := strings.Cut(sealed, ".")
	if !ok || !ValidKeyID(id) {
		return nil, false, fmt.Errorf("%w: malformed sealed value", ErrDecrypt)
	}
	aead, ok := r.aeads[id]
	if !ok {
		return nil, false, fmt.Errorf("%w %q", ErrUnknownKey, id)
	}
	ct, err := base64.RawURLEncoding.DecodeString(body)
	if err != nil {
		return nil, false, fmt.Errorf("%w: malformed sealed value", ErrDecrypt)
	}
	if len(ct) < aead.NonceSize()+aead.Overhead() {
		return nil, false, fmt.Errorf("%w: sealed value too short", ErrDecrypt)
	}
	pt, err := aead.Open(nil, nil, ct, aad)
	if err != nil {
		// The AEAD error says nothing more useful; do not wrap it so no detail leaks.
		return nil, false, fmt.Errorf("%w: authentication failed (wrong key, wrong record or tampered)", ErrDecrypt)
	}
	return pt, id != r.active, nil
}

// SealedKeyID returns the key id a sealed value names, without decrypting it.
func SealedKeyID(sealed string) (string, bool) {
	id, _, ok := strings.Cut(sealed, ".")
	if !ok || !ValidKeyID(id) {
		return "", false
	}
	return id, true
}
