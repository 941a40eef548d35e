// Package upstream is the http.RoundTripper every call dirgate makes to the Podio API goes through
// (the Podio client's and the passthrough proxy's). Around one Base transport it
//
//   - spends the shared quota budget before each attempt and refuses, without calling Podio, the
//     calls the budget cannot afford (*BudgetError);
//   - learns from Podio's answers: X-Rate-Limit-Remaining is reported with Budget.Observe, and a
//     420 puts the key into a cooldown of the wait Podio names in its body ("Please wait N
//     seconds"), else Retry-After, else Options.DefaultCooldown;
//   - retries idempotent calls with a replayable body on network errors and on 502, 503 and 504,
//     with full-jitter exponential backoff, never past the request's deadline and never a 420
//     (Podio's wait is an hour, not a backoff);
//   - opens a circuit breaker after Options.FailureThreshold consecutive failures (network errors
//     and 5xx), refusing calls with *CircuitOpenError until a single half-open probe succeeds.
//
// Whose budget a call spends travels in the request context (WithCall). Requests without a Call,
// and requests to the OAuth token endpoint, pass straight to Base, untouched: a token exchange or
// refresh spends no user's budget, and must not be held back by a budget or a breaker that only
// authenticated calls can recover.
//
// Nothing here logs or puts into an error a header, a body or a query string: they carry tokens
// and personal data.
package upstream
