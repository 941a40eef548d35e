// Package jobs runs long membership work (syncs, offboarding, undo) as durable jobs on every
// replica, with hibiken/asynq as the Redis-based queue.
//
// A job is a list of items, each one Podio write. The job record (in Redis, owned by a tenant) is
// the source of truth for progress: an item is marked started before its write and done after it,
// so a replica that dies mid-job loses nothing, and the replica that resumes it asks the executor
// whether a started item's effect already holds before writing again: no completed step repeats.
//
// Exactly one replica runs a job: asynq hands a task to one worker under a lease, and the runner
// also holds a fencing key in Redis; every save checks it, so a runner that lost its lease (a
// paused or partitioned process) stops instead of writing over its successor.
//
// A job that meets a spent Podio budget does not fail: it is saved as waiting_for_quota and asynq
// runs it again when the budget allows (the executor says when, see Wait). Such waits are not
// counted as failures.
//
// Tenants share the queue, within limits: a replica runs at most TenantConcurrency jobs of one
// tenant at once (a job over it gives its worker back at once and is offered again a moment
// later, which is not a failed run), and a tenant has at most MaxActive unfinished jobs on all
// replicas (Submit refuses more with *TooManyJobsError, atomically, storing nothing). A finished
// job stays readable for Retention, then is gone.
//
// Submit saves the job, then queues it. A job whose replica died in between (no task in the
// queue a minute later) is marked failed, with error code not_queued, when it is next read.
//
// A job's record is a hash with a field per item (see record.go), so marking an item started or
// done writes that item and the job's small state, never the whole job.
//
// Keys (prefix P):
//
//	P{job:<id>}:rec             the job record (hash: head, state, i:<n> per item)
//	P{job:<id>}:owner           the fencing key of the runner
//	P{job:<id>}:cancel          set by Cancel; the runner stops before its next item
//	Pjobs:<tenant>              sorted set of the tenant's job ids by creation time
//	Pjobs-active:<tenant>       sorted set of the tenant's unfinished job ids (the MaxActive cap)
package jobs
