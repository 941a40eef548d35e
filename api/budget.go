package api

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/dirgate/dirgate/internal/cache"
	"github.com/dirgate/dirgate/internal/quota"
	"github.com/dirgate/dirgate/internal/store"
	"github.com/dirgate/dirgate/internal/upstream"
)

// budgetKey is the Podio budget an account spends: Podio counts calls per user per API key.
func (s *Server) budgetKey(a store.Account) quota.Key {
	return quota.Key{ClientID: s.podio.OAuthConfig.ClientID, UserID: a.PodioUserID}
}

// spendAs makes the request's Podio calls spend the account's budget, as interactive calls.
func (s *Server) spendAs(c echo.Context, a store.Account) {
	ctx := upstream.WithCall(c.Request().Context(), upstream.Call{Key: s.budgetKey(a), Priority: quota.Interactive})
	c.SetRequest(c.Request().WithContext(ctx))
}

// spendInBackground makes ctx's Podio calls spend the account's budget as background work (jobs,
// the change poller). Its cache fills are a flight group of their own: a background fill the
// budget refuses must not answer an interactive request waiting on the same entry.
func (s *Server) spendInBackground(ctx context.Context, a store.Account) context.Context {
	ctx = upstream.WithCall(ctx, upstream.Call{Key: s.budgetKey(a), Priority: quota.Background})
	return cache.WithFlightGroup(ctx, quota.Background.String())
}

// rateLimitHeaders describes the account's general Podio budget with the IETF draft headers
// (draft-ietf-httpapi-ratelimit-headers): RateLimit-Policy: "general";q=<limit>;w=3600 and
// RateLimit: "general";r=<remaining>;t=<seconds until a call can be made>.
func (s *Server) rateLimitHeaders(c echo.Context, a store.Account) {
	if s.budget == nil {
		return
	}
	st, err := s.budget.Status(c.Request().Context(), s.budgetKey(a))
	if err != nil {
		return
	}
	g, ok := st.Classes[quota.General]
	if !ok {
		return
	}
	wait := time.Duration(0)
	if g.Remaining == 0 && !g.NextSlotAt.IsZero() {
		wait = g.NextSlotAt.Sub(s.now())
	}
	if !st.CooldownUntil.IsZero() {
		wait = max(wait, st.CooldownUntil.Sub(s.now()))
	}
	h := c.Response().Header()
	h.Set("RateLimit-Policy", fmt.Sprintf(`"general";q=%d;w=3600`, g.Limit))
	h.Set("RateLimit", fmt.Sprintf(`"general";r=%d;t=%d`, g.Remaining, ceilSeconds(wait)))
}

func ceilSeconds(d time.Duration) int {
	if d <= 0 {
		return 0
	}
	return int(math.Ceil(d.Seconds()))
}

// budgetJSON is the answer of GET /integrated-accounts/{id}/budget.
type budgetJSON struct {
	IntegratedAccountID string                     `json:"integrated_account_id"`
	Classes             map[string]budgetClassJSON `json:"classes"`
	CooldownUntil       *time.Time                 `json:"cooldown_until"`
	Reserve             float64                    `json:"reserve"`
}

type budgetClassJSON struct {
	Limit        int        `json:"limit"`
	Remaining    int        `json:"remaining"`
	UsedLastHour int        `json:"used_last_hour"`
	NextSlotAt   *time.Time `json:"next_slot_at"`
}

func (s *Server) getBudget(c echo.Context) error {
	a, err := s.accountForRead(c.Request().Context(), tenantOf(c), c.Param("id"))
	if err != nil {
		return err
	}
	if s.budget == nil {
		return newError(http.StatusNotImplemented, "not_configured", "no Podio budget is configured")
	}
	st, err := s.budget.Status(c.Request().Context(), s.budgetKey(a))
	if err != nil {
		return err
	}
	out := budgetJSON{IntegratedAccountID: a.ID, Classes: map[string]budgetClassJSON{}, Reserve: st.Reserve, CooldownUntil: optTime(st.CooldownUntil)}
	for cl, cs := range st.Classes {
		out.Classes[string(cl)] = budgetClassJSON{Limit: cs.Limit, Remaining: cs.Remaining, UsedLastHour: cs.UsedLastHour, NextSlotAt: optTime(cs.NextSlotAt)}
	}
	return c.JSON(http.StatusOK, out)
}

// quotaError maps the transport's refusals (made without calling Podio) to answers, or nil.
func quotaError(err error) *Error {
	if be, ok := errors.AsType[*upstream.BudgetError](err); ok {
		msg := "the Podio quota of this account is spent for now; dirgate did not call Podio"
		if be.Cooldown {
			msg = "Podio asked to wait (420); dirgate will not call it for this account until then"
		}
		return &Error{Status: http.StatusTooManyRequests, Code: "rate_limited", Message: msg, RetryAfter: max(ceilSeconds(be.RetryAfter), 1), Err: err}
	}
	if ce, ok := errors.AsType[*upstream.CircuitOpenError](err); ok {
		return &Error{Status: http.StatusServiceUnavailable, Code: "upstream_unavailable",
			Message: "Podio is failing; dirgate stopped calling it for a moment (circuit breaker open)", RetryAfter: max(ceilSeconds(ce.RetryAfter), 1), Err: err}
	}
	return nil
}

// podioRateLimited writes Podio's own 420 answer, for the proxy: SDKs handle it as Podio's.
func podioRateLimited(c echo.Context, retryAfter int) error {
	c.Response().Header().Set("Retry-After", fmt.Sprint(retryAfter))
	return c.JSON(statusPodioRateLimited, podioErrorBody{
		Error:       "rate_limit",
		Description: fmt.Sprintf("You have hit the rate limit. Please wait %d seconds before trying again", retryAfter),
		Parameters:  map[string]string{},
		Request:     podioErrorRequest{Method: c.Request().Method},
	})
}
