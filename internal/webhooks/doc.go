// Package webhooks delivers change events to tenants' HTTPS endpoints: signed, at least once,
// retried with exponential backoff for a bounded window, and in event order per account where
// possible.
//
// A tenant subscribes a URL to some event types (or "*"). The webhook's secret is generated here,
// shown once, and stored sealed with the credential key ring. Every delivery is a POST of the
// event's JSON with the header
//
//	Dirgate-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>
//
// (see Sign and Verify). RotateSecret replaces the secret; for an overlap window the replaced one
// signs too, as a second v1 value, so receivers switch at their own pace.
//
// The path of an event: events.Log.Emit appends it to the dispatch stream; an events.Consumer
// (group "webhooks", one member per replica) hands it to exactly one replica's Dispatcher.Handle,
// which records one delivery per matching webhook and enqueues one asynq task for it, with a task
// id derived from webhook and event, so an event handed over twice is enqueued once. A Worker (an
// asynq server on its own queue, on every replica) runs each task on one replica at a time: it
// POSTs, records the attempt, and on failure lets asynq retry after a backoff it chooses, until
// the retry window (measured from the delivery's creation) is over and the delivery is marked
// failed. Tasks and records live in Redis, so a restart loses nothing. A task whose webhook was
// deleted is dropped.
//
// Order: the first attempts of one account's events to one webhook are made one at a time, in
// event order; a later event waits (without counting as a failure) while an earlier one has not
// had its first attempt, and is woken when it has. Retries do not hold later events back, so one
// failing event does not stall the account for the whole retry window, and an earlier event that
// stays unattempted for HoldMax (its task lost) stops holding the others.
//
// Targets: URLs must be https (http too with AllowHTTP) without credentials. Unless AllowPrivate, a
// URL whose host is or resolves to a loopback, private, link-local, unspecified or multicast
// address, or to any block of IANA's special-purpose address registries (the special table), is
// refused when the webhook is created, and the delivery dialer refuses such addresses again at
// connection time (after DNS resolution, which defeats DNS rebinding). Refusals name the kind of
// address, never the address. Redirects are not followed and no HTTP proxy is used.
//
// Fairness: a Worker runs at most TenantConcurrency deliveries of one tenant at once; the others
// wait without counting as attempts.
//
// Cap: a tenant has at most MaxPerTenant webhooks, counted and added in one script.
//
// Keys (prefix P; every key of one webhook shares the {wh:<id>} hash tag):
//
//	P{wh:<id>}                     the webhook (JSON; the secret sealed)
//	Ptenant:<tenant>:webhooks      sorted set of the tenant's webhook ids by creation time (µs)
//	P{wh:<id>}:d:<event id>        one delivery (hash), kept for the retry window plus Retention
//	P{wh:<id>}:deliveries          sorted set of the newest deliveries' event ids, by event order
//	P{wh:<id>}:order:<account>     the account's events waiting for their first attempt
package webhooks
