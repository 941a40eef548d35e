// Package quota keeps one Podio call budget per (client id, user) shared by every gateway replica,
// so that together they never exceed Podio's hourly limits and never provoke a 420.
//
// # Why a rolling window
//
// Podio allows about 1000 calls per hour per user and API key (250 for operations it marks "rate
// limited"), answers 420 when the limit is exceeded, and never says when its window resets. A fixed
// hourly bucket could admit up to twice the limit across a bucket boundary, so the budget is an
// exact rolling window: no more than Limit admitted calls in any 60-minute interval.
//
// # Redis layout
//
// Each admitted call is one member of a sorted set (score = time in milliseconds) per Key and
// Class; the cooldown after a 420 is a plain key holding the instant it ends. All keys of one Key
// share a hash tag so one Lua script can read and update them together in Redis Cluster:
//
//	<prefix>quota:{<clientID>:<userID>}:general       sorted set of admitted calls
//	<prefix>quota:{<clientID>:<userID>}:rate_limited  sorted set of admitted rate-limited calls
//	<prefix>quota:{<clientID>:<userID>}:cooldown      cooldown end (Unix ms), PEXPIRE = the wait
//
// Every script takes the current time as an argument instead of calling Redis TIME, so all time
// comes from Options.Now and tests can compress hours.
//
// # When Redis is unreachable
//
// A quota check must never fail a call or hold it for long because Redis is slow or down. After a
// Redis error the Budget uses an in-process rolling window with Limit/Replicas calls per class for
// Options.DownBackoff, then tries Redis again. Calls admitted through Redis and cooldowns are also
// recorded in process, so a replica that has already spent its share, or learned of a 420, keeps
// honouring that when Redis disappears.
package quota
