package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"

	"github.com/dirgate/dirgate/internal/metrics"
	"github.com/dirgate/dirgate/internal/proxy"
	"github.com/dirgate/dirgate/internal/tenantauth"
	"github.com/dirgate/dirgate/unified"
)

// The passthrough proxy: Podio calls the unified schema does not cover, sent with the linked
// account's credentials so the caller never holds a Podio token. Two entrances:
//
//   - ANY /proxy/{integrated_account_id}/{podio path} on the API listener, authenticated with a
//     tenant token (Bearer or OAuth2 scheme) or an account-scoped token for that account;
//   - the root listener (ProxyRoot), which serves Podio's paths at its root for SDKs that drop a
//     path prefix; the account comes from an account-scoped token.

const (
	// maxProxyTokenTTL bounds account-scoped tokens minted by the API.
	maxProxyTokenTTL = 30 * 24 * time.Hour
	// defaultProxyTokenTTL is used when the request names no ttl.
	defaultProxyTokenTTL = time.Hour
)

// proxyCaller is who a proxy call acts for.
type proxyCaller struct {
	tenant, account string
}

// proxyAuth reads "Authorization: Bearer <jwt>" or "Authorization: OAuth2 <jwt>" (the scheme
// Podio SDKs send) and verifies the token.
func (s *Server) proxyAuth(r *http.Request) (tenantauth.Claims, error) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return tenantauth.Claims{}, newError(http.StatusUnauthorized, "unauthorized", "missing Authorization: Bearer <token> (or OAuth2 <token>)")
	}
	if len(h) > maxAuthHeader {
		return tenantauth.Claims{}, newError(http.StatusUnauthorized, "unauthorized", "token too large")
	}
	scheme, raw, ok := strings.Cut(h, " ")
	if !ok || (!strings.EqualFold(scheme, "Bearer") && !strings.EqualFold(scheme, "OAuth2")) || raw == "" {
		return tenantauth.Claims{}, newError(http.StatusUnauthorized, "unauthorized", "use Authorization: Bearer <token> or OAuth2 <token>")
	}
	claims, err := s.verifier.VerifyContext(r.Context(), strings.TrimSpace(raw))
	if err != nil {
		return tenantauth.Claims{}, &Error{Status: http.StatusUnauthorized, Code: tokenErrorCode(err), Message: err.Error(), Err: err}
	}
	return claims, nil
}

// tokenErrorCode tells an expired token from other refusals, so the root listener can answer
// like Podio does for an expired token.
func tokenErrorCode(err error) string {
	if errors.Is(err, tenantauth.ErrExpired) {
		return "expired_token"
	}
	return "unauthorized"
}

// checkProxyAccount confirms the account is the tenant's and the token not revoked for it.
func (s *Server) checkProxyAccount(c echo.Context, claims tenantauth.Claims, account string) error {
	a, err := s.accountForRead(c.Request().Context(), claims.Tenant, account)
	if errors.Is(err, unified.ErrNotFound) {
		if claims.Account != "" {
			// The account a scoped token names is gone: the token is as good as revoked.
			return newError(http.StatusUnauthorized, "expired_token", "the integrated account of this token no longer exists")
		}
		return notFound("integrated account")
	}
	if err != nil {
		return err
	}
	if claims.Account != "" && !a.ProxyTokensNotBefore.IsZero() && claims.IssuedAt.Before(a.ProxyTokensNotBefore) {
		return newError(http.StatusUnauthorized, "expired_token", "this proxy token was revoked")
	}
	s.spendAs(c, a)
	return nil
}

// proxyByPath serves ANY /proxy/{integrated_account_id}/{podio path}.
func (s *Server) proxyByPath(c echo.Context) error {
	claims, err := s.proxyAuth(c.Request())
	if err != nil {
		return err
	}
	account := c.Param("id")
	if claims.Account != "" && claims.Account != account {
		// A scoped token reaches its own account only; say so as for any unknown account.
		return notFound("integrated account")
	}
	c.Set(ctxTenant, claims.Tenant)
	if err := s.checkProxyAccount(c, claims, account); err != nil {
		return err
	}
	if !strings.HasPrefix(c.Request().RequestURI, "/") {
		return newError(http.StatusBadRequest, "invalid_path", "absolute request targets are not proxied")
	}
	// The Podio path is taken from the escaped path, after "/proxy/{id}".
	prefix := "/proxy/" + account
	escaped := c.Request().URL.EscapedPath()
	if !strings.HasPrefix(escaped, prefix+"/") {
		return newError(http.StatusBadRequest, "invalid_path", "the Podio path must follow /proxy/{integrated_account_id}/")
	}
	return s.forward(c, proxyCaller{tenant: claims.Tenant, account: account}, escaped[len(prefix):])
}

// proxyRoot serves the root listener: Podio's paths, the account from an account-scoped token.
func (s *Server) proxyRoot(c echo.Context) error {
	claims, err := s.proxyAuth(c.Request())
	if err != nil {
		return err
	}
	if claims.Account == "" {
		return newError(http.StatusUnauthorized, "unauthorized", "the root proxy listener needs an account-scoped token (POST /integrated-accounts/{id}/proxy-tokens)")
	}
	c.Set(ctxTenant, claims.Tenant)
	if err := s.checkProxyAccount(c, claims, claims.Account); err != nil {
		return err
	}
	if !strings.HasPrefix(c.Request().RequestURI, "/") {
		return newError(http.StatusBadRequest, "invalid_path", "absolute request targets are not proxied")
	}
	return s.forward(c, proxyCaller{tenant: claims.Tenant, account: claims.Account}, c.Request().URL.EscapedPath())
}

// forward sends one call to Podio and logs it.
func (s *Server) forward(c echo.Context, who proxyCaller, podioPath string) error {
	start := s.now()
	tokens := s.creds.TokenSource(who.tenant, who.account)
	res, err := s.proxy.Forward(c.Response(), c.Request(), podioPath, tokens)
	status := res.Status
	var pe *proxy.Error
	var qe *Error
	if err != nil && !res.Written {
		if qe = quotaError(err); qe != nil {
			status = qe.Status
			if qe.Status == http.StatusTooManyRequests {
				status = statusPodioRateLimited
			}
		} else if e, ok := errors.AsType[*proxy.Error](err); ok {
			pe = e
			status = e.Status
		} else {
			status = toError(err).Status
		}
	}
	s.log.InfoContext(c.Request().Context(), "proxy",
		"request_id", requestID(c), "tenant", who.tenant, "account", who.account,
		"method", metrics.LogMethod(c.Request().Method), "path", proxy.Template(podioPath), "status", status,
		"upstream_calls", res.Upstream, "duration_ms", s.now().Sub(start).Milliseconds())
	c.Set(ctxProxyLogged, true)
	switch {
	case err == nil:
		return nil
	case res.Written:
		// Podio's answer was being copied when a connection failed. Abort the response, so that
		// the caller sees a broken answer rather than a silently truncated one (as
		// httputil.ReverseProxy does).
		s.log.WarnContext(c.Request().Context(), "proxy: copying Podio's answer", "request_id", requestID(c), "err", err)
		panic(http.ErrAbortHandler)
	case qe != nil && qe.Status == http.StatusTooManyRequests:
		// dirgate's own rate limiting answers in Podio's form, so SDKs handle it as Podio's 420.
		return podioRateLimited(c, qe.RetryAfter)
	case qe != nil:
		return qe
	case pe != nil:
		return &Error{Status: pe.Status, Code: pe.Code, Message: pe.Message, Err: pe.Err}
	}
	return err
}

// ctxProxyLogged marks requests the proxy logged itself.
const ctxProxyLogged = "dirgate.proxy_logged"

// ProxyRoot is the handler of the root proxy listener (DIRGATE_PROXY_ADDR): Podio's API paths at
// the root, for SDKs configured with this listener as their API URL and an account-scoped token
// as their access token. Errors dirgate answers itself have Podio's error body.
func (s *Server) ProxyRoot() http.Handler {
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.Logger.SetOutput(io.Discard)
	e.HTTPErrorHandler = s.handlePodioError
	onRootListener := func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			c.Set(ctxListener, routeProxyRoot)
			return next(c)
		}
	}
	// No withTimeout: the forwarder bounds the wait for Podio's answer and the streaming of it.
	e.Use(onRootListener, withRequestID, s.logRequests, middleware.Recover())
	e.Any("/*", s.proxyRoot)
	e.Any("/", s.proxyRoot)
	return e
}

// podioErrorBody is Podio's error shape (podio-api.md §9.1).
type podioErrorBody struct {
	Error       string            `json:"error"`
	Description string            `json:"error_description"`
	Detail      *string           `json:"error_detail"`
	Parameters  map[string]string `json:"error_parameters"`
	Propagate   bool              `json:"error_propagate"`
	Request     podioErrorRequest `json:"request"`
}

type podioErrorRequest struct {
	URL         string `json:"url"`
	QueryString string `json:"query_string"`
	Method      string `json:"method"`
}

// handlePodioError answers the root listener's own errors the way Podio would, so SDK error
// handling (expired token, not found, rate limit) keeps working.
func (s *Server) handlePodioError(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	e := toError(err)
	if e.Status >= 500 {
		s.log.ErrorContext(c.Request().Context(), "proxy request failed", "request_id", requestID(c), "status", e.Status, "code", e.Code, "err", e.Err)
	}
	body := podioErrorBody{Error: e.Code, Description: e.Message, Parameters: map[string]string{},
		Request: podioErrorRequest{URL: proxy.Template(c.Request().URL.EscapedPath()), Method: metrics.LogMethod(c.Request().Method)}}
	h := c.Response().Header()
	switch {
	case e.Code == "expired_token":
		body.Error, body.Description = "unauthorized", "expired_token"
		h.Set("WWW-Authenticate", `Bearer realm="podio", error="expired_token"`)
	case e.Status == http.StatusUnauthorized:
		body.Error = "invalid_token"
		h.Set("WWW-Authenticate", `Bearer realm="podio", error="invalid_token"`)
	case e.Code == "needs_reauth":
		// The SDK's credentials are fine; the account behind them must be linked again.
		e.Status, body.Error = http.StatusUnauthorized, "invalid_token"
	case e.Status == http.StatusTooManyRequests:
		e.Status, body.Error = statusPodioRateLimited, "rate_limit"
		body.Description = fmt.Sprintf("You have hit the rate limit. Please wait %d seconds before trying again", max(e.RetryAfter, 1))
	}
	if e.RetryAfter > 0 {
		h.Set("Retry-After", fmt.Sprint(e.RetryAfter))
	}
	b, _ := json.Marshal(body)
	if werr := c.JSONBlob(e.Status, b); werr != nil {
		s.log.WarnContext(c.Request().Context(), "writing error response", "request_id", requestID(c), "err", werr)
	}
}

// statusPodioRateLimited is Podio's rate-limit status.
const statusPodioRateLimited = 420

// proxyTokenRequest is the body of POST /integrated-accounts/{id}/proxy-tokens.
type proxyTokenRequest struct {
	// TTL is a duration ("1h", "90m") or a number of seconds.
	TTL json.RawMessage `json:"ttl"`
}

type proxyTokenJSON struct {
	Token               string    `json:"token"`
	TokenType           string    `json:"token_type"`
	IntegratedAccountID string    `json:"integrated_account_id"`
	ExpiresAt           time.Time `json:"expires_at"`
}

func parseTTL(raw json.RawMessage) (time.Duration, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return defaultProxyTokenTTL, nil
	}
	var secs int64
	if err := json.Unmarshal(raw, &secs); err == nil {
		return time.Duration(secs) * time.Second, nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return 0, errors.New("not a duration")
	}
	return time.ParseDuration(s)
}

// createProxyToken mints an account-scoped token for the proxy.
func (s *Server) createProxyToken(c echo.Context) error {
	var req proxyTokenRequest
	if c.Request().ContentLength != 0 {
		if err := bindJSON(c, &req); err != nil {
			return err
		}
	}
	ttl, err := parseTTL(req.TTL)
	if err != nil || ttl < time.Minute || ttl > maxProxyTokenTTL {
		return badRequest(fmt.Sprintf("ttl must be a duration from 1m to %s (e.g. \"1h\") or a number of seconds", maxProxyTokenTTL))
	}
	tenant, id := tenantOf(c), c.Param("id")
	if _, err := s.store.GetAccount(c.Request().Context(), tenant, id); err != nil {
		return err
	}
	if s.minter == nil {
		return newError(http.StatusNotImplemented, "not_configured",
			"dirgate holds no HS256 secret to sign with (DIRGATE_JWT_HS256_SECRET): mint account-scoped tokens with your own issuer, adding the claim \"acct\": \""+id+"\"")
	}
	tok, err := s.minter.MintAccount(tenant, id, ttl)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, proxyTokenJSON{Token: tok, TokenType: "Bearer", IntegratedAccountID: id, ExpiresAt: s.now().Add(ttl).UTC().Truncate(time.Second)})
}

// revokeProxyTokens revokes every account-scoped token of the account issued until now.
func (s *Server) revokeProxyTokens(c echo.Context) error {
	// Tokens carry their issue time in whole seconds: revoke through the end of this second.
	at := s.now().Truncate(time.Second).Add(time.Second)
	if _, err := s.store.RevokeProxyTokens(c.Request().Context(), tenantOf(c), c.Param("id"), at); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}
