package api

import (
	"context"
	"errors"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/dirgate/dirgate/internal/events"
	"github.com/dirgate/dirgate/internal/jobs"
	"github.com/dirgate/dirgate/internal/store"
)

// emit records a change event. A failure is logged, not returned: the change it reports has
// already happened in Podio or in dirgate, and the caller's answer must say so.
func (s *Server) emit(ctx context.Context, tenant, account, typ string, data any) {
	if s.events == nil {
		return
	}
	if _, err := s.events.Emit(context.WithoutCancel(ctx), tenant, account, typ, data); err != nil {
		s.log.ErrorContext(ctx, "events: an event was not recorded", "type", typ, "tenant", tenant, "account", account, "err", err)
	}
}

// emitAccount records an account lifecycle event; its data is the account as the API shows it
// (no credential).
func (s *Server) emitAccount(ctx context.Context, typ string, a store.Account) {
	s.emit(ctx, a.Tenant, a.ID, typ, s.toAccountJSON(a))
}

// AccountNeedsReauth records integrated_account.needs_reauth; the credential manager calls it
// when Podio refuses an account's refresh token.
func (s *Server) AccountNeedsReauth(ctx context.Context, a store.Account) {
	s.emitAccount(ctx, events.IntegratedAccountNeedsReauth, a)
}

// JobFinished records job.succeeded or job.failed; the job engine calls it once per job.
func (s *Server) JobFinished(ctx context.Context, j *jobs.Job) {
	typ := events.JobSucceeded
	if j.Status == jobs.Failed {
		typ = events.JobFailed
	}
	out := toJobJSON(j)
	out.Items = nil // the feed carries the outcome; GET /jobs/{id} has the items
	s.emit(ctx, j.Tenant, j.Account, typ, out)
}

const (
	defaultEventsLimit = 100
	maxEventsLimit     = 500
)

// eventsPage is GET /events.
type eventsPage struct {
	Results []events.Event `json:"results"`
	// NextAfter is the `after` of the next call: the last event returned, or the caller's
	// `after` when there was none, so that a poller can always send it back.
	NextAfter *string `json:"next_after"`
	HasMore   bool    `json:"has_more"`
}

func (s *Server) listEvents(c echo.Context) error {
	if err := checkQuery(c, []string{"integrated_account_id", "after", "limit"}); err != nil {
		return err
	}
	if err := accountFilter(c.QueryParam("integrated_account_id"), c.QueryParams().Has("integrated_account_id")); err != nil {
		return err
	}
	if s.events == nil {
		return newError(http.StatusNotImplemented, "not_configured", "no event log is configured")
	}
	limit, err := limitParam(c, defaultEventsLimit, maxEventsLimit)
	if err != nil {
		return err
	}
	after := c.QueryParam("after")
	list, more, err := s.events.List(c.Request().Context(), tenantOf(c), c.QueryParam("integrated_account_id"), after, limit)
	if errors.Is(err, events.ErrInvalidCursor) {
		return newError(http.StatusBadRequest, "invalid_cursor", "after must be an event id (evt_...)")
	}
	if err != nil {
		return err
	}
	page := eventsPage{Results: list, HasMore: more}
	if n := len(list); n > 0 {
		page.NextAfter = &list[n-1].ID
	} else if after != "" {
		page.NextAfter = &after
	}
	return c.JSON(http.StatusOK, page)
}
