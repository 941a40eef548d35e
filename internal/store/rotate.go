package store

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/dirgate/dirgate/internal/crypt"
	"github.com/dirgate/dirgate/unified"
)

// maxRotateAttempts bounds the compare-and-set retries for one record.
const maxRotateAttempts = 10

// RotateKeys re-encrypts, with the active key, every account record that has a credential sealed
// under another key, while the gateway keeps serving. Each record is rewritten through the same
// version compare-and-set as SaveCredentials and retried on conflict. It returns how many records
// were re-encrypted; records that cannot be (for example sealed under a key no longer in the ring)
// are reported together in the error, after every other record was handled.
//
// A re-encryption does not change the plaintext, so it does not increment Version: a refresh that
// read the record before the rotation can still store its rotated refresh token.
func (s *Store) RotateKeys(ctx context.Context) (int, error) {
	var ids []string
	pattern := globEscape(s.prefix+"{acct:") + "*" + globEscape("}:rec")
	if err := s.scan(ctx, pattern, func(k string) error {
		id := strings.TrimSuffix(strings.TrimPrefix(k, s.prefix+"{acct:"), "}:rec")
		if validID(id) {
			ids = append(ids, id)
		}
		return nil
	}); err != nil {
		return 0, fmt.Errorf("store: rotate keys: scan: %w", err)
	}
	rotated := 0
	var errs []error
	for _, id := range ids {
		done, err := s.rotateOne(ctx, id)
		if err != nil {
			if ctx.Err() != nil {
				return rotated, fmt.Errorf("store: rotate keys: %w", ctx.Err())
			}
			errs = append(errs, err)
			continue
		}
		if done {
			rotated++
		}
	}
	if len(errs) > 0 {
		return rotated, fmt.Errorf("store: rotate keys: %d record(s) failed: %w", len(errs), errors.Join(errs...))
	}
	return rotated, nil
}

// rotateOne re-seals one record if needed; it reports whether it wrote.
func (s *Store) rotateOne(ctx context.Context, id string) (bool, error) {
	for range maxRotateAttempts {
		h, err := s.rdb.HGetAll(ctx, s.recKey(id)).Result()
		if err != nil {
			return false, fmt.Errorf("account %q: read: %w", id, err)
		}
		if len(h) == 0 {
			return false, nil // deleted meanwhile
		}
		if s.sealedWithActive(h[fAccessToken]) && s.sealedWithActive(h[fRefreshToken]) {
			return false, nil
		}
		a, err := decodeAccount(id, h)
		if err != nil {
			return false, err
		}
		c, _, err := s.openCredentials(a.Tenant, id, h)
		if err != nil {
			return false, err
		}
		sealed, err := s.sealCredentials(a.Tenant, id, c)
		if err != nil {
			return false, err
		}
		// Only the two ciphertexts are rewritten: expiry and scope are already right for this
		// version, and rewriting them could not change anything the version check allows.
		_, _, err = s.update(ctx, a.Tenant, id, a.Version, false, sealed[:4])
		switch {
		case err == nil:
			return true, nil
		case errors.Is(err, unified.ErrConflict):
			continue // a refresh wrote meanwhile (already with the active key); look again
		case errors.Is(err, unified.ErrNotFound):
			return false, nil
		default:
			return false, err
		}
	}
	return false, fmt.Errorf("account %q: still changing after %d attempts: %w", id, maxRotateAttempts, unified.ErrConflict)
}

func (s *Store) sealedWithActive(sealed string) bool {
	kid, ok := crypt.SealedKeyID(sealed)
	return ok && kid == s.ring.ActiveID()
}
