// Package store keeps every piece of dirgate state in Redis: integrated accounts with their
// encrypted credentials, single-use link tokens and OAuth state, and the per-account refresh lock.
// (The cache, quota, jobs, events, changes, idempotency and webhooks packages keep their own keys
// under the same prefix, on the client NewRedisClient builds; the asynq queues that run jobs and
// webhook deliveries use asynq's own key names.)
//
// # Keys
//
// All keys start with Options.Prefix (default "dirgate:"). An account's keys share the hash tag
// {acct:<id>} so they live in one Cluster slot and a Lua script may touch them together:
//
//	<prefix>{acct:<id>}:rec     hash: the account record and its sealed credentials
//	<prefix>{acct:<id>}:lock    the refresh lock (bsm/redislock)
//	<prefix>{acct:<id>}:cache:* reserved for cached directory data
//	<prefix>tenant:<tenant>:accts  set: the tenant's account ids
//	<prefix>link:<sha256 hex>   a pending link token (JSON), with a TTL
//	<prefix>state:<sha256 hex>  pending OAuth state (JSON), with a TTL
//
// # Credentials
//
// Access and refresh tokens are sealed with the crypt.Ring, with the additional data
// "dirgate/v1|<tenant>|<account id>|<field>", so Redis holds only ciphertext and a ciphertext
// copied into another record does not decrypt. Every credential write is a compare-and-set on the
// record's Version in one Lua script; that is what keeps a slow replica from overwriting a newer,
// rotated refresh token.
//
// # Tenants
//
// Every account operation takes the tenant. An account owned by another tenant is reported as
// unified.ErrNotFound, exactly like a missing one.
package store
