// Package tenantauth authenticates gateway callers by JWT.
//
// A caller presents "Authorization: Bearer <JWT>". The token's "sub" claim is the tenant id; "exp"
// and "iat" are required and exp - iat is capped (Config.MaxLifetime, 24 h by default; account
// tokens 30 days); "iss" and "aud" are checked when configured; "nbf" is checked by the library. Accepted signing algorithms are pinned to the configured key types, so a token can
// never choose how it is verified (no "none", no HS256 signed with a public key). Tokens larger
// than [MaxTokenSize] are refused before any parsing.
//
// A [Verifier] takes either one HS256 shared secret or public keys (RS256, ES256, EdDSA) from a
// PEM file or a JWK Set (a file, or a URL kept fresh), never both. The secret is for
// single-tenant deployments: it signs for any tenant. A public key signs only for the tenants
// bound to its kid ([ParseKeyTenants]); tokens must name their key, and iss and aud are required. A [Minter] issues HS256 tokens for development and the "dirgate token" command.
//
// Every error from [Verifier.Verify] wraps [ErrInvalidToken] and carries a short reason that is
// safe to show the caller; it never contains the token, a key or a secret.
package tenantauth
