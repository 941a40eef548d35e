// Package tenantauth authenticates gateway callers by JWT.
//
// A caller presents "Authorization: Bearer <JWT>". The token's "sub" claim is the tenant id; "exp"
// is required; "iss" and "aud" are checked when configured; "nbf" and "iat" are checked by the
// library. Accepted signing algorithms are pinned to the configured key types, so a token can
// never choose how it is verified (no "none", no HS256 signed with a public key). Tokens larger
// than [MaxTokenSize] are refused before any parsing.
//
// A [Verifier] takes either one HS256 shared secret or a set of public keys (RS256, ES256, EdDSA),
// never both. A [Minter] issues HS256 tokens for development and the "dirgate token" command.
//
// Every error from [Verifier.Verify] wraps [ErrInvalidToken] and carries a short reason that is
// safe to show the caller; it never contains the token, a key or a secret.
package tenantauth
