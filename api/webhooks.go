package api

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/dirgate/dirgate/internal/webhooks"
)

func (s *Server) registerWebhooks(e *echo.Echo, auth echo.MiddlewareFunc) {
	// No Idempotency-Key on POST: a kept answer would hold the secret, which must exist only sealed.
	e.POST("/webhooks", s.createWebhook, auth)
	e.GET("/webhooks", s.listWebhooks, auth)
	e.GET("/webhooks/:id", s.getWebhook, auth)
	e.DELETE("/webhooks/:id", s.deleteWebhook, auth)
	e.POST("/webhooks/:id/rotate-secret", s.rotateWebhookSecret, auth)
	e.GET("/webhooks/:id/deliveries", s.listDeliveries, auth)
}

// webhookJSON is a webhook as the API shows it; never with its secret, except once in
// createdWebhookJSON.
type webhookJSON struct {
	ID          string    `json:"id"`
	URL         string    `json:"url"`
	Events      []string  `json:"events"`
	Description string    `json:"description"`
	CreatedAt   time.Time `json:"created_at"`
	// PreviousSecretExpiresAt is when a rotated-out secret stops signing; null when none does.
	PreviousSecretExpiresAt *time.Time `json:"previous_secret_expires_at"`
}

type createdWebhookJSON struct {
	webhookJSON
	Secret string `json:"secret"`
}

func toWebhookJSON(w webhooks.Webhook) webhookJSON {
	return webhookJSON{ID: w.ID, URL: w.URL, Events: w.Events, Description: w.Description, CreatedAt: w.CreatedAt,
		PreviousSecretExpiresAt: w.PreviousSecretExpiresAt}
}

type deliveryJSON struct {
	EventID        string     `json:"event_id"`
	EventType      string     `json:"event_type"`
	Account        string     `json:"integrated_account_id"`
	Status         string     `json:"status"`
	Attempts       int        `json:"attempts"`
	LastStatusCode *int       `json:"last_status_code"`
	LastError      *string    `json:"last_error"`
	LastAttemptAt  *time.Time `json:"last_attempt_at"`
	NextAttemptAt  *time.Time `json:"next_attempt_at"`
	CreatedAt      time.Time  `json:"created_at"`
	UpdatedAt      time.Time  `json:"updated_at"`
}

func toDeliveryJSON(d webhooks.Delivery) deliveryJSON {
	out := deliveryJSON{EventID: d.EventID, EventType: d.EventType, Account: d.Account, Status: d.Status, Attempts: d.Attempts,
		LastAttemptAt: d.LastAttemptAt, NextAttemptAt: d.NextAttemptAt, CreatedAt: d.CreatedAt, UpdatedAt: d.UpdatedAt}
	if d.LastStatusCode != 0 {
		out.LastStatusCode = &d.LastStatusCode
	}
	if d.LastError != "" {
		out.LastError = &d.LastError
	}
	return out
}

func (s *Server) webhookStore() (*webhooks.Store, error) {
	if s.webhooks == nil {
		return nil, newError(http.StatusNotImplemented, "not_configured", "webhooks are not configured")
	}
	return s.webhooks, nil
}

// webhookError maps the webhooks package's errors to answers.
func webhookError(err error) error {
	if errors.Is(err, webhooks.ErrNotFound) {
		return notFound("webhook")
	}
	if errors.Is(err, webhooks.ErrConflict) {
		return newError(http.StatusConflict, "conflict", "the webhook changed while its secret was rotated; try again")
	}
	if errors.Is(err, webhooks.ErrTooMany) {
		return newError(http.StatusConflict, "too_many_webhooks", fmt.Sprintf("a tenant has at most %d webhooks; delete one first", webhooks.MaxPerTenant))
	}
	if ie, ok := errors.AsType[*webhooks.InvalidError](err); ok {
		if ie.Field == "url" {
			return newError(http.StatusBadRequest, "invalid_webhook_url", "url: "+ie.Reason)
		}
		return badRequest(ie.Field + ": " + ie.Reason)
	}
	return err
}

type createWebhookBody struct {
	URL         string   `json:"url"`
	Events      []string `json:"events"`
	Description string   `json:"description"`
}

func (s *Server) createWebhook(c echo.Context) error {
	st, err := s.webhookStore()
	if err != nil {
		return err
	}
	var in createWebhookBody
	if err := bindJSON(c, &in); err != nil {
		return err
	}
	w, secret, err := st.Create(c.Request().Context(), tenantOf(c), webhooks.NewWebhook{URL: in.URL, Events: in.Events, Description: in.Description})
	if err != nil {
		return webhookError(err)
	}
	c.Response().Header().Set("Location", "/webhooks/"+w.ID)
	// The secret is in this answer only: no cache may keep it.
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.JSON(http.StatusCreated, createdWebhookJSON{webhookJSON: toWebhookJSON(w), Secret: secret})
}

type rotateSecretBody struct {
	// OverlapSeconds is how long the current secret keeps signing next to the new one; nil is
	// the default (24 h).
	OverlapSeconds *int64 `json:"overlap_seconds"`
}

func (s *Server) rotateWebhookSecret(c echo.Context) error {
	st, err := s.webhookStore()
	if err != nil {
		return err
	}
	var in rotateSecretBody
	if err := bindOptionalJSON(c, &in); err != nil {
		return err
	}
	overlap := webhooks.DefaultSecretOverlap
	if in.OverlapSeconds != nil {
		max := int64(webhooks.MaxSecretOverlap / time.Second)
		if *in.OverlapSeconds < 0 || *in.OverlapSeconds > max {
			return badRequest(fmt.Sprintf("overlap_seconds: between 0 and %d (7 days)", max))
		}
		overlap = time.Duration(*in.OverlapSeconds) * time.Second
	}
	w, secret, err := st.RotateSecret(c.Request().Context(), tenantOf(c), c.Param("id"), overlap)
	if err != nil {
		return webhookError(err)
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.JSON(http.StatusOK, createdWebhookJSON{webhookJSON: toWebhookJSON(w), Secret: secret})
}

func (s *Server) listWebhooks(c echo.Context) error {
	st, err := s.webhookStore()
	if err != nil {
		return err
	}
	list, err := st.List(c.Request().Context(), tenantOf(c))
	if err != nil {
		return err
	}
	out := make([]webhookJSON, 0, len(list))
	for _, w := range list {
		out = append(out, toWebhookJSON(w))
	}
	return c.JSON(http.StatusOK, map[string]any{"data": out})
}

func (s *Server) getWebhook(c echo.Context) error {
	st, err := s.webhookStore()
	if err != nil {
		return err
	}
	w, err := st.Get(c.Request().Context(), tenantOf(c), c.Param("id"))
	if err != nil {
		return webhookError(err)
	}
	return c.JSON(http.StatusOK, toWebhookJSON(w))
}

func (s *Server) deleteWebhook(c echo.Context) error {
	st, err := s.webhookStore()
	if err != nil {
		return err
	}
	if err := st.Delete(c.Request().Context(), tenantOf(c), c.Param("id")); err != nil {
		return webhookError(err)
	}
	return c.NoContent(http.StatusNoContent)
}

func (s *Server) listDeliveries(c echo.Context) error {
	st, err := s.webhookStore()
	if err != nil {
		return err
	}
	list, err := st.Deliveries(c.Request().Context(), tenantOf(c), c.Param("id"))
	if err != nil {
		return webhookError(err)
	}
	out := make([]deliveryJSON, 0, len(list))
	for _, d := range list {
		out = append(out, toDeliveryJSON(d))
	}
	return c.JSON(http.StatusOK, map[string]any{"data": out})
}
