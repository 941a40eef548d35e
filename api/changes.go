package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/dirgate/dirgate/internal/changes"
	"github.com/dirgate/dirgate/internal/events"
	"github.com/dirgate/dirgate/internal/store"
	"github.com/dirgate/dirgate/unified"
)

// Change detection: the per-account poller (PollAccount, run by a changes.Poller on every
// replica), its opt-in (PATCH /integrated-accounts/{id}), and the events of membership writes
// made through dirgate, which are emitted at once and marked so that the poller does not report
// them again.

const (
	defaultEventsInterval    = 10 * time.Minute
	defaultEventsMinInterval = time.Minute
	// markSlack is added to how long a mark of an own write is kept: a poll may start late.
	markSlack = 5 * time.Minute
)

// accountEventsJSON is the events object of an integrated account.
type accountEventsJSON struct {
	Enabled       bool       `json:"enabled"`
	Interval      string     `json:"interval"`
	LastPollAt    *time.Time `json:"last_poll_at"`
	LastPollError *string    `json:"last_poll_error"`
}

func (s *Server) eventsJSON(a store.Account) accountEventsJSON {
	out := accountEventsJSON{Enabled: a.Events.Enabled, Interval: formatInterval(s.intervalOf(a)), LastPollAt: optTime(a.Events.LastPollAt)}
	if a.Events.LastPollError != "" {
		code := a.Events.LastPollError
		out.LastPollError = &code
	}
	return out
}

// intervalOf is the account's poll interval.
func (s *Server) intervalOf(a store.Account) time.Duration {
	if a.Events.Interval > 0 {
		return a.Events.Interval
	}
	return s.eventsInterval
}

// formatInterval writes a duration the way people write it: 10m, 1h30m, 90s.
func formatInterval(d time.Duration) string {
	out := d.String()
	if strings.HasSuffix(out, "m0s") {
		out = strings.TrimSuffix(out, "0s")
	}
	if strings.HasSuffix(out, "h0m") {
		out = strings.TrimSuffix(out, "0m")
	}
	return out
}

// patchAccountBody is the body of PATCH /integrated-accounts/{id}: events and end_user can be
// changed. EndUser is raw to tell an absent field (unchanged) from null (cleared).
type patchAccountBody struct {
	Events *struct {
		Enabled  *bool   `json:"enabled"`
		Interval *string `json:"interval"`
	} `json:"events"`
	EndUser json.RawMessage `json:"end_user"`
}

// patchAccount turns the account's change detection on or off and sets its interval. Turning it
// on makes the account due at once: its first poll is the baseline.
func (s *Server) patchAccount(c echo.Context) error {
	var in patchAccountBody
	if err := bindJSON(c, &in); err != nil {
		return err
	}
	if in.Events == nil && in.EndUser == nil {
		return badRequest("give events or end_user: the fields that can be changed")
	}
	var endUser *store.EndUser
	if in.EndUser != nil && string(in.EndUser) != "null" {
		var e endUserJSON
		if err := strictJSON(in.EndUser, &e); err != nil {
			return newError(http.StatusBadRequest, "invalid_end_user", "end_user must be an object {id, organization_id, email, name} or null")
		}
		var err error
		if endUser, err = e.toStore(); err != nil {
			return err
		}
	}
	if in.Events != nil && (s.changes == nil || s.events == nil) {
		return newError(http.StatusNotImplemented, "not_configured", "change events are not configured on this gateway")
	}
	ctx := c.Request().Context()
	tenant, id := tenantOf(c), c.Param("id")
	a, err := s.store.GetAccount(ctx, tenant, id)
	if err != nil {
		return accountError(err)
	}
	was := a.Events.Enabled
	enabled, interval := was, a.Events.Interval
	if in.Events != nil {
		if in.Events.Enabled != nil {
			enabled = *in.Events.Enabled
		}
		if in.Events.Interval != nil {
			d, err := time.ParseDuration(*in.Events.Interval)
			if err != nil || d < s.eventsMinInterval {
				return badRequest(fmt.Sprintf("events.interval must be a duration such as \"10m\" of at least %s", formatInterval(s.eventsMinInterval)))
			}
			interval = d
		}
	}
	// Everything is checked: now write.
	if in.EndUser != nil {
		if a, err = s.store.SetEndUser(ctx, tenant, id, endUser); err != nil {
			return accountError(err)
		}
	}
	if in.Events == nil {
		return c.JSON(http.StatusOK, s.toAccountJSON(a))
	}
	if a, err = s.store.SetEvents(ctx, tenant, id, enabled, interval); err != nil {
		return accountError(err)
	}
	t := changes.Target{Tenant: tenant, Account: id}
	switch {
	case enabled && !was:
		err = s.changes.Schedule(ctx, t, s.now(), false)
	case enabled:
		// A shorter interval brings the next poll forward; a longer one applies after it.
		err = s.changes.Schedule(ctx, t, s.now().Add(s.intervalOf(a)), true)
	default:
		err = s.changes.Unschedule(ctx, t)
	}
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, s.toAccountJSON(a))
}

// PollAccount polls one account for the changes.Poller: it reads the account's directory through
// the cache, spending only the background budget, and emits the changes since the last poll. It
// answers changes.ErrStop for an account deleted or no longer enabled.
func (s *Server) PollAccount(ctx context.Context, t changes.Target) (time.Duration, error) {
	if s.changes == nil || s.events == nil {
		return 0, changes.ErrStop
	}
	a, err := s.store.GetAccount(ctx, t.Tenant, t.Account)
	if errors.Is(err, unified.ErrNotFound) {
		return 0, changes.ErrStop
	}
	if err != nil {
		return 0, err
	}
	if !a.Events.Enabled {
		return 0, changes.ErrStop
	}
	interval := s.intervalOf(a)
	if a.Status != store.StatusActive {
		// Podio would refuse the credentials; the account is polled again once linked again.
		s.recordPoll(ctx, a, a.Status)
		return interval, nil
	}
	ctx = s.spendInBackground(ctx, a)
	snap, err := s.takeSnapshot(ctx, a)
	var res changes.Result
	if err == nil {
		res, err = s.changes.Commit(ctx, a.ID, snap, func(ctx context.Context, ch changes.Change) error {
			_, err := s.events.Emit(ctx, a.Tenant, a.ID, ch.Type, ch.Data)
			return err
		})
	}
	if err != nil {
		s.recordPoll(ctx, a, toError(err).Code)
		return interval, err
	}
	s.log.InfoContext(ctx, "events: account polled", "tenant", a.Tenant, "integrated_account_id", a.ID,
		"baseline", res.Baseline, "events", res.Emitted)
	s.recordPoll(ctx, a, "")
	return interval, nil
}

func (s *Server) recordPoll(ctx context.Context, a store.Account, errCode string) {
	if err := s.store.RecordPoll(context.WithoutCancel(ctx), a.Tenant, a.ID, s.now(), errCode); err != nil && !errors.Is(err, unified.ErrNotFound) {
		s.log.WarnContext(ctx, "events: recording a poll failed", "integrated_account_id", a.ID, "err", err)
	}
}

// snapshotItem is the part of a cached directory item a snapshot keeps (remote_data is skipped).
type snapshotItem struct {
	ID           string                  `json:"id"`
	Name         string                  `json:"name"`
	Emails       []unified.Email         `json:"emails"`
	Title        *string                 `json:"title"`
	Status       string                  `json:"status"`
	Organization unified.OrgRef          `json:"organization"`
	Workspaces   []unified.UserWorkspace `json:"workspaces"`
}

func (it *snapshotItem) user() changes.User {
	u := changes.User{Name: it.Name, Status: it.Status}
	if len(it.Emails) > 0 {
		u.Email = it.Emails[0].Email
	}
	if it.Title != nil {
		u.Title = *it.Title
	}
	return u
}

// decodeItems decodes the cached items of a list.
func decodeItems(items [][]byte) ([]snapshotItem, error) {
	out := make([]snapshotItem, len(items))
	for i, b := range items {
		if err := json.Unmarshal(b, &out[i]); err != nil {
			return nil, fmt.Errorf("cached item: %w", err)
		}
	}
	return out, nil
}

// takeSnapshot reads the account's organizations, workspaces, users and every workspace's members
// through the cache, as the directory routes do, refusing stale entries. A workspace whose member
// list Podio no longer shows (404, or 403: the linked person lost access) is left out, as gone.
func (s *Server) takeSnapshot(ctx context.Context, a store.Account) (*changes.Snapshot, error) {
	r := &dirReader{s: s, tenant: a.Tenant, account: a.ID, noStale: true}
	snap := changes.NewSnapshot(s.now())
	read := func(spec listSpec) ([]snapshotItem, time.Time, error) {
		raw, cs, err := r.readAll(ctx, spec)
		if err != nil {
			return nil, time.Time{}, err
		}
		items, err := decodeItems(raw)
		return items, cs.FetchedAt, err
	}
	orgs, _, err := read(r.organizationsSpec())
	if err != nil {
		return nil, err
	}
	for _, o := range orgs {
		snap.Organizations[o.ID] = changes.Organization{Name: o.Name}
	}
	wss, fetched, err := read(r.workspacesSpec(""))
	if err != nil {
		return nil, err
	}
	snap.WorkspacesFetchedAt = fetched
	for _, w := range wss {
		snap.Workspaces[w.ID] = changes.Workspace{Name: w.Name, OrganizationID: w.Organization.ID}
	}
	users, _, err := read(r.usersSpec("", ""))
	if err != nil {
		return nil, err
	}
	for _, u := range users {
		snap.Users[u.ID] = u.user()
	}
	for _, ws := range slices.SortedFunc(maps.Keys(snap.Workspaces), unified.CompareIDs) {
		members, fetched, err := read(r.usersSpec("", ws))
		if gone(err) {
			delete(snap.Workspaces, ws)
			continue
		}
		if err != nil {
			return nil, err
		}
		roles := map[string]string{}
		for _, m := range members {
			for _, w := range m.Workspaces {
				if w.ID == ws {
					roles[m.ID] = w.Role
				}
			}
			// Someone in a workspace but in none of the organization member lists the linked
			// person can read is still a person of the directory.
			if _, ok := snap.Users[m.ID]; !ok {
				snap.Users[m.ID] = m.user()
			}
		}
		snap.Members[ws], snap.MembersFetchedAt[ws] = roles, fetched
	}
	return snap, nil
}

// gone reports a workspace that Podio no longer shows the linked person.
func gone(err error) bool {
	return errors.Is(err, unified.ErrNotFound) || errors.Is(err, unified.ErrForbidden)
}

// markTTL is how long the mark of an own write applies: long enough for the next two polls to
// read member lists cached after the write.
func (s *Server) markTTL(a store.Account) time.Duration {
	return 2*s.intervalOf(a) + max(s.ttl.Users, s.ttl.Workspaces, s.ttl.Organizations) + markSlack
}

// ownWrite reports a membership write Podio accepted: it emits the event typ at once and marks
// the membership with the state the write left, so that the poller does not report it again. A
// failed emission leaves no mark: the poller then reports the change (when events are enabled).
func (s *Server) ownWrite(ctx context.Context, a store.Account, typ string, d changes.MembershipData) {
	if s.events == nil || d.UserID == "" || d.WorkspaceID == "" {
		return
	}
	ctx = context.WithoutCancel(ctx)
	d.Origin = changes.OriginDirgate
	if _, err := s.events.Emit(ctx, a.Tenant, a.ID, typ, d); err != nil {
		s.log.WarnContext(ctx, "events: emitting a membership write failed", "integrated_account_id", a.ID, "type", typ, "err", err)
		return
	}
	if s.changes == nil {
		return
	}
	role := d.Role
	if typ == events.MembershipRemoved {
		role = ""
	}
	now, ttl := s.now(), s.markTTL(a)
	m := changes.Member{Workspace: d.WorkspaceID, User: d.UserID}
	if err := s.changes.PutMark(ctx, a.ID, m, changes.Mark{Role: role, At: now, Expires: now.Add(ttl)}, ttl); err != nil {
		s.log.WarnContext(ctx, "events: marking a membership write failed; the poller may report it again",
			"integrated_account_id", a.ID, "type", typ, "err", err)
	}
}
