// Package changes detects changes to an account's Podio directory by polling, and keeps what the
// detection needs in Redis: the schedule of accounts to poll, the last snapshot of each, and the
// marks that keep a change dirgate made itself from being reported a second time.
//
// A poll takes a Snapshot (organizations, workspaces, users, workspace memberships; the api package
// reads it through the directory cache), Diff compares it with the last one, the caller emits one
// event per Change, and only then is the new snapshot saved: a poll that fails part-way is diffed
// again by the next one, so a change is reported at least once (possibly twice), never lost.
//
// Exactly one replica polls an account per interval: every replica's Poller reads the accounts
// that are due from one sorted set, takes the account's lease (SET NX PX) and, holding it, checks
// again that the account is still due before polling; after the poll it moves the due time on by
// the interval. A replica that dies mid-poll loses the lease when it expires, and the account is
// polled again when next due.
//
// A membership write made through dirgate emits its event at once and leaves a Mark: the state
// the write left (the role, or none). When a poll meets a membership with a mark, the consumer has
// already been told of that state, so the poll reports only what differs from it, and consumes the
// mark. Marks apply to member lists read from Podio after the write (the cache's fetch time), so a
// list cached from before the write does not undo it.
//
// Keys (prefix P; account keys carry the account's hash tag, so deleting an account deletes them):
//
//	Pchanges:due                     sorted set of "<tenant>/<account>" by next due time (ms)
//	P{acct:<id>}:changes:lease       the replica polling the account now
//	P{acct:<id>}:changes:snapshot    the last snapshot (JSON)
//	P{acct:<id>}:changes:marks       hash "<workspace>/<user>" → Mark (JSON)
package changes
