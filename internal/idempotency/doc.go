// Package idempotency remembers the answers to write requests sent with an Idempotency-Key, so
// that a client retrying after a lost answer gets the first answer instead of a second write.
//
// A key is scoped to a tenant. Its record lives in Redis, shared by every replica:
//
//	P idem:{<tenant>}:<sha256 of the key>   hash: state (running|done), fp, token, resp
//
// Begin claims a key for one request (state running, a short lease so that a replica that dies
// mid-request does not block the key for a day); Complete stores the answer for the retention
// period (24 h by default); Abandon forgets a claim whose answer must not be replayed (a server
// fault the client should retry). Complete and Abandon act only for the request that holds the
// claim (its token), so a request whose lease ran out cannot overwrite its successor's answer.
package idempotency
