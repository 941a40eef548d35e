package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/dirgate/dirgate/internal/config"
	"github.com/dirgate/dirgate/internal/tenantauth"
)

// runToken implements "dirgate token": mints a tenant JWT with the configured HS256 secret, or
// the dev secret when none is configured.
func runToken(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("token", "Mints a tenant token (HS256) with DIRGATE_JWT_HS256_SECRET, or the dev-mode secret when it is unset.\nWith --account it mints an account-scoped token, valid only for the proxy and that account.", stderr)
	tenant := fs.String("tenant", "", "tenant id (the token's sub); required")
	account := fs.String("account", "", "integrated account id: mint an account-scoped proxy token")
	ttl := fs.Duration("ttl", time.Hour, "lifetime")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if !tenantauth.ValidTenantID(*tenant) {
		return usageError{fmt.Errorf("--tenant is required: 1-128 characters of A-Z a-z 0-9 . _ : @ -")}
	}
	if *ttl <= 0 {
		return usageError{fmt.Errorf("--ttl must be positive")}
	}
	cfg, err := config.Load(os.Environ())
	if err != nil {
		return usageError{fmt.Errorf("configuration: %w", err)}
	}
	secret := cfg.JWTSecret
	if secret == "" {
		secret = devJWTSecret
		fmt.Fprintln(stderr, "dirgate token: DIRGATE_JWT_HS256_SECRET is unset; using the dev-mode secret (accepted by `dirgate dev` only)")
	}
	m, err := tenantauth.NewMinter([]byte(secret), cfg.JWTIssuer, cfg.JWTAudience, nil)
	if err != nil {
		return usageError{fmt.Errorf("DIRGATE_JWT_HS256_SECRET: %w", err)}
	}
	limit := cfg.JWTMaxLifetime
	if *account != "" {
		limit = tenantauth.MaxAccountLifetime
	}
	if *ttl > limit {
		return usageError{fmt.Errorf("--ttl %s is longer than the gateway accepts (%s; DIRGATE_JWT_MAX_LIFETIME for tenant tokens)", *ttl, limit)}
	}
	var tok string
	if *account != "" {
		tok, err = m.MintAccount(*tenant, *account, *ttl)
	} else {
		tok, err = m.Mint(*tenant, *ttl)
	}
	if err != nil {
		return usageError{err}
	}
	fmt.Fprintln(stdout, tok)
	return nil
}
