// Package events records change events (membership, users, workspaces, account lifecycle, jobs)
// and hands them to whoever delivers them.
//
// An event is appended once, atomically, to two Redis streams:
//
//	P events:{<tenant>}     the tenant's feed (GET /events), trimmed to the retention period
//	P events:dispatch       every tenant's events, read by the webhook dispatcher through a
//	                        consumer group, so that each event is handed over once even with many
//	                        replicas, and one a dying replica had read is claimed by another
//	P events:members:<group> hash: each consumer's last heartbeat (Unix ms), so that members
//	                        left by processes that ended without leaving can be removed
//
// Event ids are the feed stream's ids ("evt_" + "<ms>-<seq>"), so they order events within a
// tenant and serve as the feed's `after` cursor.
package events
