package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/bsm/redislock"
)

// Lock is a held distributed lock.
type Lock interface {
	// Release gives the lock up. It fails (harmlessly) if the lock already expired.
	Release(ctx context.Context) error
}

// ObtainRefreshLock tries once to take the account's refresh lock for ttl. It returns ErrLockHeld
// when another holder has it. The lock expires by itself after ttl, so a holder that dies does not
// block the account for longer than that.
func (s *Store) ObtainRefreshLock(ctx context.Context, accountID string, ttl time.Duration) (Lock, error) {
	if !validID(accountID) {
		return nil, notFound(accountID)
	}
	if ttl < time.Millisecond {
		return nil, fmt.Errorf("store: lock TTL %s is too short", ttl)
	}
	l, err := redislock.Obtain(ctx, s.rdb, s.lockKey(accountID), ttl, nil)
	if errors.Is(err, redislock.ErrNotObtained) {
		return nil, ErrLockHeld
	}
	if err != nil {
		return nil, fmt.Errorf("store: obtain refresh lock: %w", err)
	}
	return refreshLock{l}, nil
}

type refreshLock struct{ l *redislock.Lock }

// Release deletes the lock key if this holder still owns it.
func (r refreshLock) Release(ctx context.Context) error {
	if err := r.l.Release(ctx); err != nil {
		return fmt.Errorf("store: release refresh lock: %w", err)
	}
	return nil
}
