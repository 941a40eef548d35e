package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/dirgate/dirgate/adapters/podio"
	"github.com/dirgate/dirgate/internal/events"
	"github.com/dirgate/dirgate/internal/store"
	"github.com/dirgate/dirgate/unified"
)

// accountJSON is an integrated account as callers see it: never a token.
type accountJSON struct {
	ID                   string     `json:"id"`
	Provider             string     `json:"provider"`
	Status               string     `json:"status"`
	GrantType            string     `json:"grant_type"`
	PodioUserID          *string    `json:"podio_user_id"`
	PodioAppID           *string    `json:"podio_app_id,omitempty"`
	Name                 string     `json:"name"`
	Email                string     `json:"email"`
	CreatedAt            time.Time  `json:"created_at"`
	UpdatedAt            time.Time  `json:"updated_at"`
	LastRefreshedAt      *time.Time `json:"last_refreshed_at"`
	AccessTokenExpiresAt *time.Time `json:"access_token_expires_at"`
	// Events is the account's change detection (see changes.go).
	Events accountEventsJSON `json:"events"`
	// EndUser is the tenant's own reference to its customer (POST /link-tokens, PATCH); null if
	// none.
	EndUser *endUserJSON `json:"end_user"`
}

func (s *Server) toAccountJSON(a store.Account) accountJSON {
	out := accountJSON{
		ID: a.ID, Provider: a.Provider, Status: a.Status, GrantType: a.GrantType,
		Name: a.Name, Email: a.Email, CreatedAt: a.CreatedAt.UTC(), UpdatedAt: a.UpdatedAt.UTC(),
		LastRefreshedAt: optTime(a.LastRefreshedAt), AccessTokenExpiresAt: optTime(a.AccessExpiry),
		Events: s.eventsJSON(a), EndUser: endUserOf(a.EndUser),
	}
	ref := strconv.FormatInt(a.PodioUserID, 10)
	if a.GrantType == grantApp {
		out.PodioAppID = &ref
	} else {
		out.PodioUserID = &ref
	}
	return out
}

func optTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	u := t.UTC()
	return &u
}

const (
	grantAuthorizationCode = "authorization_code"
	grantPassword          = "password"
	grantApp               = "app"
	providerPodio          = "podio"
)

// createAccountRequest is the body of POST /integrated-accounts.
type createAccountRequest struct {
	GrantType string       `json:"grant_type"`
	Username  string       `json:"username"`
	Password  string       `json:"password"`
	AppID     *int64       `json:"app_id"`
	AppToken  string       `json:"app_token"`
	EndUser   *endUserJSON `json:"end_user"`
}

// createAccount links an account server-side with Podio's password or app grant.
func (s *Server) createAccount(c echo.Context) error {
	var req createAccountRequest
	if err := bindJSON(c, &req); err != nil {
		return err
	}
	endUser, err := req.EndUser.toStore()
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	var (
		tok     *podio.Token
		profile podioIdentity
	)
	switch req.GrantType {
	case grantPassword:
		if !s.allowPasswordGrant {
			return newError(http.StatusForbidden, "grant_type_disabled",
				"the password grant is disabled; set DIRGATE_ALLOW_PASSWORD_GRANT=true to enable it")
		}
		if strings.TrimSpace(req.Username) == "" || req.Password == "" {
			return badRequest("username and password are required for grant_type password")
		}
		if req.AppID != nil || req.AppToken != "" {
			return badRequest("app_id and app_token belong to grant_type app")
		}
		tok, err = s.podio.OAuth.PasswordGrant(ctx, req.Username, req.Password)
		if err != nil {
			return grantError(err)
		}
		if profile, err = s.identify(ctx, tok); err != nil {
			return err
		}
	case grantApp:
		if req.AppID == nil || *req.AppID <= 0 || req.AppToken == "" {
			return badRequest("app_id (a positive integer) and app_token are required for grant_type app")
		}
		if req.Username != "" || req.Password != "" {
			return badRequest("username and password belong to grant_type password")
		}
		tok, err = s.podio.OAuth.AppGrant(ctx, *req.AppID, req.AppToken)
		if err != nil {
			return grantError(err)
		}
		// An app token cannot read a user profile; the app is the identity.
		profile = podioIdentity{id: *req.AppID, name: fmt.Sprintf("Podio app %d", *req.AppID)}
	case "":
		return badRequest(`grant_type is required: "password" or "app" (browser linking uses POST /link-tokens)`)
	default:
		return badRequest(fmt.Sprintf("unsupported grant_type %q: use \"password\" or \"app\"", req.GrantType))
	}
	a, err := s.store.CreateAccount(ctx, store.Account{
		Tenant: tenantOf(c), Provider: providerPodio, Status: "active", GrantType: req.GrantType,
		PodioUserID: profile.id, Name: profile.name, Email: profile.email, EndUser: endUser,
	}, credentialsOf(tok))
	if err != nil {
		return err
	}
	s.emitAccount(ctx, events.IntegratedAccountCreated, a)
	return c.JSON(http.StatusCreated, s.toAccountJSON(a))
}

// grantError turns a refused token call into a caller error; other failures pass through.
func grantError(err error) error {
	if errors.Is(err, unified.ErrNeedsReauth) || unified.ProviderStatus(err) == http.StatusUnauthorized {
		return &Error{Status: http.StatusBadRequest, Code: "invalid_grant", Message: "Podio refused the credentials", Err: err}
	}
	return podioFailure(err)
}

// podioFailure marks a failure to reach Podio (rather than a Podio answer) as such.
func podioFailure(err error) error {
	if unified.ProviderStatus(err) != 0 || errors.Is(err, unified.ErrRateLimited) {
		return err
	}
	return fmt.Errorf("%w: %w", errUpstreamUnavailable, err)
}

// podioIdentity is who a Podio token acts as.
type podioIdentity struct {
	id          int64
	name, email string
}

// identify reads GET /user/status with a fresh token: the cheapest call naming the person.
func (s *Server) identify(ctx context.Context, tok *podio.Token) (podioIdentity, error) {
	st, _, err := s.podio.WithTokenSource(podio.StaticTokenSource(tok)).Users.Status(ctx)
	if err != nil {
		return podioIdentity{}, podioFailure(err)
	}
	id := podioIdentity{}
	if st.User != nil {
		id.id, id.email = st.User.UserID, st.User.Mail
	}
	if st.Profile != nil {
		id.name = st.Profile.Name
		if id.id == 0 {
			id.id = st.Profile.UserID
		}
	}
	if id.id == 0 {
		return podioIdentity{}, fmt.Errorf("%w: /user/status named no user", errUpstreamUnavailable)
	}
	return id, nil
}

func credentialsOf(t *podio.Token) store.Credentials {
	return store.Credentials{AccessToken: t.AccessToken, RefreshToken: t.RefreshToken, Expiry: t.Expiry, Scope: t.Scope}
}

func (s *Server) listAccounts(c echo.Context) error {
	if err := checkQuery(c, []string{"end_user_id"}); err != nil {
		return err
	}
	q := c.QueryParams()
	endUserID := q.Get("end_user_id")
	if q.Has("end_user_id") && (endUserID == "" || !plainText(endUserID, maxEndUserField)) {
		return badRequest("end_user_id must be the id given as end_user.id")
	}
	accts, err := s.store.ListAccounts(c.Request().Context(), tenantOf(c))
	if err != nil {
		return err
	}
	out := make([]accountJSON, 0, len(accts))
	for _, a := range accts {
		if endUserID != "" && (a.EndUser == nil || a.EndUser.ID != endUserID) {
			continue
		}
		out = append(out, s.toAccountJSON(a))
	}
	return c.JSON(http.StatusOK, map[string]any{"data": out})
}

func (s *Server) getAccount(c echo.Context) error {
	a, err := s.store.GetAccount(c.Request().Context(), tenantOf(c), c.Param("id"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, s.toAccountJSON(a))
}

func (s *Server) deleteAccount(c echo.Context) error {
	ctx := c.Request().Context()
	a, err := s.store.GetAccount(ctx, tenantOf(c), c.Param("id"))
	if err != nil {
		return err
	}
	if err := s.store.DeleteAccount(ctx, tenantOf(c), c.Param("id")); err != nil {
		return err
	}
	s.known.Forget(tenantOf(c) + "/" + c.Param("id"))
	s.emitAccount(ctx, events.IntegratedAccountDeleted, a)
	return c.NoContent(http.StatusNoContent)
}

// checkAccount calls Podio with the account's stored credentials (refreshing them when needed,
// exactly once across replicas) and answers the account as it stands afterwards: the "test
// connection" of an onboarding screen.
func (s *Server) checkAccount(c echo.Context) error {
	ctx := c.Request().Context()
	tenant, id := tenantOf(c), c.Param("id")
	a, err := s.store.GetAccount(ctx, tenant, id)
	if err != nil {
		return err
	}
	s.spendAs(c, a)
	ctx = c.Request().Context()
	ts := s.creds.TokenSource(tenant, id)
	if a.GrantType == grantApp {
		// App tokens cannot read users: check that a current token can be had (refreshing it if
		// it is about to expire).
		if _, err := ts.Token(ctx); err != nil {
			return podioFailure(err)
		}
	} else if _, _, err := s.podio.WithTokenSource(ts).Users.Status(ctx); err != nil {
		return podioFailure(err)
	}
	if a, err = s.store.GetAccount(ctx, tenant, id); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, s.toAccountJSON(a))
}

// accountForRead reads the account for a call that only reads from Podio. While Redis is
// unreachable it answers with the last record this replica read, so that such reads go on; a
// revocation or deletion made before the outage and not yet seen by this replica is then missed
// until Redis is back (README: Redis outages).
func (s *Server) accountForRead(ctx context.Context, tenant, id string) (store.Account, error) {
	key := tenant + "/" + id
	a, err := s.store.GetAccount(ctx, tenant, id)
	if err != nil {
		if known, ok := s.known.Fallback(ctx, key, err); ok {
			return known, nil
		}
		if errors.Is(err, unified.ErrNotFound) {
			s.known.Forget(key)
		}
		return a, err
	}
	s.known.Remember(ctx, key, a)
	return a, nil
}
