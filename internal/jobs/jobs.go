package jobs

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Status is a job's state.
type Status string

// Job states.
const (
	Queued          Status = "queued"
	Running         Status = "running"
	WaitingForQuota Status = "waiting_for_quota"
	Succeeded       Status = "succeeded"
	Failed          Status = "failed"
	Canceled        Status = "canceled"
)

// Final reports whether the job will not change any more.
func (s Status) Final() bool { return s == Succeeded || s == Failed || s == Canceled }

// ItemStatus is one item's state.
type ItemStatus string

// Item states. Started means the write may or may not have reached Podio: the runner that finds
// it asks the executor before writing again.
const (
	ItemPending ItemStatus = "pending"
	ItemStarted ItemStatus = "started"
	ItemDone    ItemStatus = "done"
	ItemFailed  ItemStatus = "failed"
	ItemSkipped ItemStatus = "skipped"
)

// Error describes why an item or a job failed.
type Error struct {
	Code    string          `json:"code"`
	Message string          `json:"message"`
	Remote  json.RawMessage `json:"remote,omitempty"`
}

// Item is one step of a job: one Podio write. Its fields are interpreted by the job type's
// executor.
type Item struct {
	Action         string     `json:"action"`
	WorkspaceID    string     `json:"workspace_id,omitempty"`
	OrganizationID string     `json:"organization_id,omitempty"`
	UserID         string     `json:"user_id,omitempty"`
	Email          string     `json:"email,omitempty"`
	Role           string     `json:"role,omitempty"`
	PriorRole      string     `json:"prior_role,omitempty"`
	Status         ItemStatus `json:"status"`
	Error          *Error     `json:"error,omitempty"`
}

// Job is a unit of long work owned by a tenant and run against one integrated account.
type Job struct {
	ID         string          `json:"id"`
	Tenant     string          `json:"tenant"`
	Account    string          `json:"integrated_account_id"`
	Type       string          `json:"type"`
	Status     Status          `json:"status"`
	CreatedAt  time.Time       `json:"created_at"`
	UpdatedAt  time.Time       `json:"updated_at"`
	StartedAt  *time.Time      `json:"started_at,omitempty"`
	FinishedAt *time.Time      `json:"finished_at,omitempty"`
	WaitUntil  *time.Time      `json:"wait_until,omitempty"`
	Params     json.RawMessage `json:"params,omitempty"`
	// RequestID is the id of the request that submitted the job: logs about the job carry it, and
	// an internal failure tells the caller to quote it.
	RequestID string `json:"request_id,omitempty"`
	Items     []Item `json:"items"`
	Error     *Error `json:"error,omitempty"`
	// CancelRequested is set from the cancel key when the job is read; it is not stored.
	CancelRequested bool `json:"-"`
	// Attempts counts the runs that ended early (crash, transient errors), for diagnostics.
	Attempts int `json:"attempts"`
}

// Progress counts the job's items.
type Progress struct {
	Total  int `json:"total"`
	Done   int `json:"done"`
	Failed int `json:"failed"`
}

// Progress returns the job's item counts; skipped items count as done.
func (j *Job) Progress() Progress {
	p := Progress{Total: len(j.Items)}
	for _, it := range j.Items {
		switch it.Status {
		case ItemDone, ItemSkipped:
			p.Done++
		case ItemFailed:
			p.Failed++
		}
	}
	return p
}

// NewID returns a random job id: "job_" and 26 base32 characters.
func NewID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return "job_" + strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b[:]))
}

func validID(id string) bool {
	if !strings.HasPrefix(id, "job_") || len(id) != 30 {
		return false
	}
	for _, c := range id[4:] {
		if !(c >= 'a' && c <= 'z' || c >= '2' && c <= '7') {
			return false
		}
	}
	return true
}

// Executor performs the items of one job type.
type Executor interface {
	// Do performs the item's write. A nil error means it took effect. Wrap errors with Wait
	// (the budget is spent: nothing was written) or Permanent (the item fails, the job goes on);
	// any other error ends this run and the job is retried later from this item.
	Do(ctx context.Context, j *Job, it *Item) error
	// Holds reports whether the item's effect is already in place; it is asked about items a
	// previous run started but did not record as done. Errors as for Do.
	Holds(ctx context.Context, j *Job, it *Item) (bool, error)
}

// WaitError says the Podio budget is spent until Until; nothing was written.
type WaitError struct {
	Until time.Time
	Err   error
}

func (e *WaitError) Error() string {
	return fmt.Sprintf("jobs: wait until %s: %v", e.Until.Format(time.RFC3339), e.Err)
}
func (e *WaitError) Unwrap() error { return e.Err }

// Wait wraps err: the job waits (waiting_for_quota) until until, then goes on with this item.
func Wait(until time.Time, err error) error { return &WaitError{Until: until, Err: err} }

// PermanentError is an item failure that retrying will not fix (Podio refused the write).
type PermanentError struct {
	Item Error
	Err  error
}

func (e *PermanentError) Error() string { return "jobs: " + e.Item.Message }
func (e *PermanentError) Unwrap() error { return e.Err }

// Permanent wraps err as the item's failure, described by item.
func Permanent(item Error, err error) error { return &PermanentError{Item: item, Err: err} }

// ErrNotFound: no such job for this tenant.
var ErrNotFound = errors.New("jobs: not found")
