package jobs

import "context"

// Put writes j's whole record as it stands, the way a runner that died would have left it.
func (e *Engine) Put(ctx context.Context, j *Job) error {
	fields, err := recordFields(j)
	if err != nil {
		return err
	}
	return e.rdb.HSet(ctx, e.jobKey(j.ID), fields...).Err()
}

// RecordKey is the Redis key of job id's record.
func (e *Engine) RecordKey(id string) string { return e.jobKey(id) }
