package main

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/dirgate/dirgate/internal/config"
)

// runRotateKeys implements "dirgate rotate-keys": re-encrypts every stored credential with the
// active (first) key of DIRGATE_ENCRYPTION_KEYS, online, while gateways keep serving.
func runRotateKeys(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("rotate-keys", "Re-encrypts every stored credential with the first key of DIRGATE_ENCRYPTION_KEYS.\nRun it after putting a new key first; remove the old key only afterwards.", stderr)
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
	fmt.Fprintf(stdout, "re-encrypted %d records with the active key\n", n)
	return nil
}
