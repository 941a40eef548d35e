package main

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/dirgate/dirgate/internal/config"
	"github.com/dirgate/dirgate/internal/webhooks"
)

// runRotateKeys implements "dirgate rotate-keys": re-encrypts every stored credential and webhook
// secret with the active (first) key of DIRGATE_ENCRYPTION_KEYS, online, while gateways keep
// serving.
func runRotateKeys(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("rotate-keys", "Re-encrypts every stored credential and webhook secret with the first key of DIRGATE_ENCRYPTION_KEYS.\nRun it after putting a new key first; remove the old key only afterwards.", stderr)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg, err := config.Load(os.Environ())
	if err != nil {
		return usageError{fmt.Errorf("configuration: %w", err)}
	}
	if cfg.EncryptionKeys == "" {
		return usageError{fmt.Errorf("set DIRGATE_ENCRYPTION_KEYS (the new key first, then the old ones)")}
	}
	rc, err := redisClient(cfg)
	if err != nil {
		return err
	}
	defer rc.Close()
	st, err := newStore(cfg, rc)
	if err != nil {
		return usageError{err}
	}
	n, err := st.RotateKeys(ctx)
	if err != nil {
		return fmt.Errorf("rotating keys (%d records re-encrypted before the failure; safe to run again): %w", n, err)
	}
	ring, err := newRing(cfg)
	if err != nil {
		return usageError{err}
	}
	hooks, err := webhooks.NewStore(webhooks.StoreOptions{Client: rc, Prefix: cfg.RedisPrefix, Ring: ring})
	if err != nil {
		return usageError{err}
	}
	m, err := hooks.RotateKeys(ctx)
	if err != nil {
		return fmt.Errorf("rotating keys (%d records and %d webhook secrets re-encrypted before the failure; safe to run again): %w", n, m, err)
	}
	fmt.Fprintf(stdout, "re-encrypted %d records and %d webhook secrets with the active key\n", n, m)
	return nil
}
