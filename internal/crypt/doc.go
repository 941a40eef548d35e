// Package crypt seals small secrets (OAuth tokens) with AES-256-GCM under a key ring.
//
// A sealed value is "<kid>.<base64url(nonce||ciphertext||tag)>": the key id travels with the
// ciphertext, so the ring can hold several keys while they are rotated. The first key of a Ring
// encrypts; every key decrypts, and Open reports a value sealed under any other key as stale so
// the caller re-encrypts it on its next write. The nonce is random (cipher.NewGCMWithRandomNonce).
//
// Callers pass additional authenticated data (AAD) naming where the value lives (tenant, account,
// field), so a ciphertext copied into another record fails to open. Errors never contain key
// material or plaintext.
package crypt
