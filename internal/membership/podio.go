package membership

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/dirgate/dirgate/adapters/podio"
	"github.com/dirgate/dirgate/internal/jobs"
	"github.com/dirgate/dirgate/internal/upstream"
	"github.com/dirgate/dirgate/unified"
)

// Members lists the workspace's current members (every page of GET /space/{id}/member/v2/).
func Members(ctx context.Context, pc *podio.Client, spaceID int64) ([]Member, error) {
	var out []Member
	for m, err := range pc.SpaceMembers.All(ctx, spaceID, nil) {
		if err != nil {
			return nil, err
		}
		if m.Profile == nil || m.Profile.UserID == 0 {
			continue
		}
		out = append(out, Member{UserID: m.Profile.UserID, Emails: m.Profile.Mail, Name: m.Profile.Name, Role: m.Role})
	}
	return out, nil
}

// Job types this package executes.
const (
	JobWorkspaceSync = "workspace_sync"
	JobOffboard      = "offboard"
	JobUndoOffboard  = "undo_offboard"
)

// Item actions.
const (
	ActionAdd        = "add"
	ActionChangeRole = "change_role"
	ActionRemove     = "remove"
	ActionEndOrg     = "end_organization_membership"
	ActionVerify     = "verify_removed"
)

// Params are the job parameters the executor reads.
type Params struct {
	Message string `json:"message,omitempty"`
}

// ClientFor returns the account's Podio client and a context whose calls spend the account's
// budget as background work (above the reserve only).
type ClientFor func(ctx context.Context, tenant, account string) (context.Context, *podio.Client, error)

// Executor performs membership items; it implements jobs.Executor.
type Executor struct {
	Client ClientFor
	// Written, when set, is told of each write that took effect (to invalidate caches).
	Written func(ctx context.Context, j *jobs.Job, it *jobs.Item)
	// DefaultCooldown is the wait after a 420 that names none.
	DefaultCooldown time.Duration
	Now             func() time.Time
}

var _ jobs.Executor = (*Executor)(nil)

func id(s string) (int64, error) {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("membership: bad id %q", s)
	}
	return n, nil
}

// Do performs one item and, when it took effect, tells Written.
func (x *Executor) Do(ctx context.Context, j *jobs.Job, it *jobs.Item) error {
	err := x.do(ctx, j, it)
	if err == nil && x.Written != nil && it.Action != ActionVerify {
		x.Written(ctx, j, it)
	}
	return err
}

func (x *Executor) do(ctx context.Context, j *jobs.Job, it *jobs.Item) error {
	ctx, pc, err := x.Client(ctx, j.Tenant, j.Account)
	if err != nil {
		return x.classify(err)
	}
	var p Params
	if len(j.Params) > 0 {
		_ = json.Unmarshal(j.Params, &p)
	}
	switch it.Action {
	case ActionAdd:
		space, err := id(it.WorkspaceID)
		if err != nil {
			return jobs.Permanent(jobs.Error{Code: "invalid_item", Message: err.Error()}, err)
		}
		body := &podio.AddSpaceMembersRequest{Role: it.Role, Message: p.Message}
		if it.UserID != "" {
			uid, err := id(it.UserID)
			if err != nil {
				return jobs.Permanent(jobs.Error{Code: "invalid_item", Message: err.Error()}, err)
			}
			body.Users = []int64{uid}
		} else {
			body.Mails = []string{it.Email}
		}
		_, err = pc.SpaceMembers.Add(ctx, space, body)
		return x.classify(err)
	case ActionChangeRole, ActionRemove:
		space, err1 := id(it.WorkspaceID)
		uid, err2 := id(it.UserID)
		if err := errors.Join(err1, err2); err != nil {
			return jobs.Permanent(jobs.Error{Code: "invalid_item", Message: err.Error()}, err)
		}
		if it.Action == ActionChangeRole {
			_, err = pc.SpaceMembers.UpdateRole(ctx, space, []int64{uid}, it.Role)
		} else {
			_, err = pc.SpaceMembers.End(ctx, space, []int64{uid})
			if notFound(err) {
				return nil // already gone: what the item wants
			}
		}
		return x.classify(err)
	case ActionEndOrg:
		org, err1 := id(it.OrganizationID)
		uid, err2 := id(it.UserID)
		if err := errors.Join(err1, err2); err != nil {
			return jobs.Permanent(jobs.Error{Code: "invalid_item", Message: err.Error()}, err)
		}
		_, err = pc.Orgs.EndMembership(ctx, org, uid)
		if notFound(err) {
			return nil
		}
		return x.classify(err)
	case ActionVerify:
		gone, err := x.orgMemberGone(ctx, pc, it)
		if err != nil {
			return err
		}
		if !gone {
			return jobs.Permanent(jobs.Error{Code: "still_member", Message: "Podio still lists the person as a member of the organization"}, nil)
		}
		return nil
	}
	return jobs.Permanent(jobs.Error{Code: "invalid_item", Message: "unknown action " + it.Action}, nil)
}

// Holds reports whether the item's effect is already in Podio.
func (x *Executor) Holds(ctx context.Context, j *jobs.Job, it *jobs.Item) (bool, error) {
	ok, err := x.holds(ctx, j, it)
	if ok && err == nil && x.Written != nil && it.Action != ActionVerify {
		// The write of a replica that died took effect; its caches were never told.
		x.Written(ctx, j, it)
	}
	return ok, err
}

func (x *Executor) holds(ctx context.Context, j *jobs.Job, it *jobs.Item) (bool, error) {
	ctx, pc, err := x.Client(ctx, j.Tenant, j.Account)
	if err != nil {
		return false, x.classify(err)
	}
	switch it.Action {
	case ActionAdd, ActionChangeRole, ActionRemove:
		space, err := id(it.WorkspaceID)
		if err != nil {
			return false, jobs.Permanent(jobs.Error{Code: "invalid_item", Message: err.Error()}, err)
		}
		if it.Action == ActionAdd && it.UserID == "" {
			members, err := Members(ctx, pc, space)
			if err != nil {
				return false, x.classify(err)
			}
			for _, m := range members {
				for _, e := range m.Emails {
					if strings.EqualFold(e, it.Email) {
						return true, nil
					}
				}
			}
			return false, nil
		}
		uid, err := id(it.UserID)
		if err != nil {
			return false, jobs.Permanent(jobs.Error{Code: "invalid_item", Message: err.Error()}, err)
		}
		m, _, err := pc.SpaceMembers.Get(ctx, space, uid)
		active := err == nil && m != nil && m.EndedOn.IsZero()
		if err != nil && !notFound(err) {
			return false, x.classify(err)
		}
		switch it.Action {
		case ActionAdd:
			return active, nil
		case ActionChangeRole:
			return active && m.Role == it.Role, nil
		default:
			return !active, nil
		}
	case ActionEndOrg:
		return x.orgMemberGone(ctx, pc, it)
	}
	return false, nil // verification is a read: run it again
}

func (x *Executor) orgMemberGone(ctx context.Context, pc *podio.Client, it *jobs.Item) (bool, error) {
	org, err1 := id(it.OrganizationID)
	uid, err2 := id(it.UserID)
	if err := errors.Join(err1, err2); err != nil {
		return false, jobs.Permanent(jobs.Error{Code: "invalid_item", Message: err.Error()}, err)
	}
	_, _, err := pc.Orgs.GetMember(ctx, org, uid)
	if notFound(err) {
		return true, nil
	}
	if err != nil {
		return false, x.classify(err)
	}
	return false, nil
}

func notFound(err error) bool {
	_, answered := errors.AsType[unified.ProviderError](err)
	return answered && errors.Is(err, unified.ErrNotFound)
}

func (x *Executor) now() time.Time {
	if x.Now != nil {
		return x.Now()
	}
	return time.Now()
}

// classify turns a Podio call's error into what the job engine needs: a wait (budget spent or
// Podio's 420), a permanent item failure (Podio refused), or nil / a transient error (retried).
func (x *Executor) classify(err error) error {
	if err == nil {
		return nil
	}
	if be, ok := errors.AsType[*upstream.BudgetError](err); ok {
		return jobs.Wait(x.now().Add(be.RetryAfter), err)
	}
	if errors.Is(err, unified.ErrRateLimited) {
		wait := x.DefaultCooldown
		if rl, ok := errors.AsType[unified.RateLimit](err); ok {
			if w, known := rl.RetryAfter(); known {
				wait = w
			}
		}
		return jobs.Wait(x.now().Add(max(wait, time.Second)), err)
	}
	if errors.Is(err, unified.ErrNeedsReauth) {
		return jobs.Permanent(jobs.Error{Code: "needs_reauth", Message: "the integrated account must be linked again"}, err)
	}
	if pe, ok := errors.AsType[unified.ProviderError](err); ok && pe.ProviderStatus() >= 400 && pe.ProviderStatus() < 500 && pe.ProviderStatus() != http.StatusUnauthorized {
		ie := jobs.Error{Code: "upstream_error", Message: "Podio refused: " + pe.ProviderMessage(), Remote: pe.ProviderBody()}
		switch {
		case errors.Is(pe, unified.ErrForbidden):
			ie.Code = "forbidden_upstream"
		case errors.Is(pe, unified.ErrNotFound):
			ie.Code = "not_found"
		}
		return jobs.Permanent(ie, err)
	}
	return err
}
