package api

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/dirgate/dirgate/internal/events"
	"github.com/dirgate/dirgate/internal/membership"
	"github.com/dirgate/dirgate/internal/store"
	"github.com/dirgate/dirgate/unified"
)

// linkCookie binds the OAuth state to the browser that started the link, so a callback URL
// replayed in another browser links nothing.
const linkCookie = "dirgate_link"

// randomToken returns n random bytes, base64url-encoded.
func randomToken(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

type linkTokenRequest struct {
	RedirectURI         string       `json:"redirect_uri"`
	IntegratedAccountID string       `json:"integrated_account_id"`
	AppName             string       `json:"app_name"`
	LogoURL             string       `json:"logo_url"`
	ReturnOrigin        string       `json:"return_origin"`
	EndUser             *endUserJSON `json:"end_user"`
}

type linkTokenResponse struct {
	LinkToken string    `json:"link_token"`
	LinkURL   string    `json:"link_url"`
	ExpiresAt time.Time `json:"expires_at"`
}

// createLinkToken starts a browser link: a single-use token for GET /link/{link_token}.
func (s *Server) createLinkToken(c echo.Context) error {
	var req linkTokenRequest
	if err := bindJSON(c, &req); err != nil {
		return err
	}
	if req.RedirectURI != "" {
		if err := checkRedirectURI(req.RedirectURI); err != nil {
			return err
		}
	}
	if err := checkAppName(req.AppName); err != nil {
		return err
	}
	if req.LogoURL != "" {
		if _, err := logoOrigin(req.LogoURL); err != nil {
			return err
		}
	}
	origin, err := checkReturnOrigin(req.ReturnOrigin)
	if err != nil {
		return err
	}
	endUser, err := req.EndUser.toStore()
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	tenant := tenantOf(c)
	if req.IntegratedAccountID != "" {
		if _, err := s.store.GetAccount(ctx, tenant, req.IntegratedAccountID); err != nil {
			return err
		}
	}
	token := "lt_" + randomToken(32)
	expires := s.now().Add(s.linkTTL).UTC().Truncate(time.Second)
	if err := s.store.PutLinkToken(ctx, token, store.LinkToken{
		Tenant: tenant, RedirectURI: req.RedirectURI, AccountID: req.IntegratedAccountID, ExpiresAt: expires,
		AppName: req.AppName, LogoURL: req.LogoURL, ReturnOrigin: origin, EndUser: endUser,
	}); err != nil {
		return limitError(err)
	}
	return c.JSON(http.StatusCreated, linkTokenResponse{
		LinkToken: token, LinkURL: s.publicURL.JoinPath("link", token).String(), ExpiresAt: expires,
	})
}

// checkRedirectURI accepts an absolute http(s) URL without a fragment: where the browser goes
// back to after linking.
func checkRedirectURI(raw string) error {
	if raw == "" {
		return badRequest("redirect_uri is required")
	}
	if len(raw) > 2048 {
		return badRequest("redirect_uri is longer than 2048 characters")
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return badRequest("redirect_uri must be an absolute http or https URL")
	}
	if u.Fragment != "" || u.User != nil {
		return badRequest("redirect_uri must not carry a fragment or user info")
	}
	return nil
}

// checkAppName accepts a short, printable product name: it is shown on the link pages.
func checkAppName(name string) error {
	if !plainText(name, 100) {
		return badRequest("app_name must be at most 100 characters of text without control or direction-changing characters")
	}
	return nil
}

// logoOrigin checks a logo URL (absolute https, no user info, at most 2048 characters) and
// returns its origin: the only place the link page's policy lets images come from besides us.
func logoOrigin(raw string) (string, error) {
	if len(raw) > 2048 {
		return "", badRequest("logo_url is longer than 2048 characters")
	}
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "https" || u.Host == "" || u.User != nil || u.Opaque != "" {
		return "", badRequest("logo_url must be an absolute https URL without user info")
	}
	// The origin goes into a Content-Security-Policy source list: only host[:port] characters.
	if strings.ContainsAny(u.Host, " ;,'\"*") {
		return "", badRequest("logo_url has an invalid host")
	}
	return "https://" + strings.ToLower(u.Host), nil
}

// checkReturnOrigin accepts an origin (http or https scheme, host, optional port, nothing else)
// and returns it in lower case: the only target the link result is posted to.
func checkReturnOrigin(raw string) (string, error) {
	if raw == "" {
		return "", nil
	}
	const msg = "return_origin must be an origin such as https://app.example.com (scheme, host and optional port only)"
	if len(raw) > 2048 {
		return "", badRequest(msg)
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Hostname() == "" || u.User != nil ||
		u.Path != "" || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || strings.HasSuffix(raw, "#") ||
		strings.ContainsAny(u.Host, " ;,'\"*") {
		return "", badRequest(msg)
	}
	return u.Scheme + "://" + strings.ToLower(u.Host), nil
}

// callbackURL is the redirect URI registered with Podio for this gateway.
func (s *Server) callbackURL() string { return s.publicURL.JoinPath("link", "callback").String() }

// linkExpired answers the page for an unknown, used or expired link token.
func (s *Server) linkExpired(c echo.Context) error {
	return s.linkPage(c, http.StatusNotFound, "This link has expired or was already used",
		"Ask the application that sent you here for a new link.")
}

// linkIntroPage is the hosted link page: what is about to happen, and a Continue link.
var linkIntroPage = pageTemplate("link.html")

// showLink answers the hosted link page. It only reads the link token: link previewers and
// unfurlers fetch URLs they see, and must not use the token up before the person clicks.
// Continue is a plain link to /link/{token}/authorize, not a form: form-action 'self' would
// block the form's redirect on to Podio.
func (s *Server) showLink(c echo.Context) error {
	token := c.Param("link_token")
	lt, err := s.store.PeekLinkToken(c.Request().Context(), token)
	if errors.Is(err, unified.ErrNotFound) {
		return s.linkExpired(c)
	}
	if err != nil {
		return err
	}
	var opts pageOptions
	if lt.LogoURL != "" {
		origin, err := logoOrigin(lt.LogoURL)
		if err != nil {
			return err
		}
		opts.csp = map[string]string{"img-src": "'self' data: " + origin}
	}
	return renderPage(c, http.StatusOK, linkIntroPage, struct {
		Title, AppName, LogoURL, AuthorizeURL string
		Reauthorize                           bool
	}{
		Title: "Connect your Podio account", AppName: lt.AppName, LogoURL: lt.LogoURL,
		AuthorizeURL: s.publicURL.JoinPath("link", token, "authorize").String(), Reauthorize: lt.AccountID != "",
	}, opts)
}

// authorizeLink consumes a link token and sends the browser to Podio's authorize page with a
// fresh, single-use state bound to the link token and to this browser.
func (s *Server) authorizeLink(c echo.Context) error {
	ctx := c.Request().Context()
	lt, err := s.store.TakeLinkToken(ctx, c.Param("link_token"))
	if errors.Is(err, unified.ErrNotFound) {
		return s.linkExpired(c)
	}
	if err != nil {
		return err
	}
	state := randomToken(32)   // 256 bits, sent to Podio and back
	binding := randomToken(16) // 128 bits, kept in this browser's cookie
	if err := s.store.PutState(ctx, state+"."+binding, store.OAuthState{
		LinkToken: lt, RedirectURIForPodio: s.callbackURL(),
	}, s.linkTTL); err != nil {
		return err
	}
	authURL, err := s.podio.OAuth.AuthCodeURL(state, s.callbackURL())
	if err != nil {
		return err
	}
	c.SetCookie(&http.Cookie{
		Name: linkCookie, Value: binding, Path: "/link/", MaxAge: int(s.linkTTL.Seconds()),
		HttpOnly: true, Secure: s.publicURL.Scheme == "https", SameSite: http.SameSiteLaxMode,
	})
	return c.Redirect(http.StatusFound, authURL)
}

// linkCallback finishes a browser link: Podio sends the browser back here with code and state.
func (s *Server) linkCallback(c echo.Context) error {
	ctx := c.Request().Context()
	q := c.Request().URL.Query()
	state := q.Get("state")
	cookie, _ := c.Cookie(linkCookie)
	c.SetCookie(&http.Cookie{Name: linkCookie, Value: "", Path: "/link/", MaxAge: -1, HttpOnly: true,
		Secure: s.publicURL.Scheme == "https", SameSite: http.SameSiteLaxMode})
	if state == "" || cookie == nil || cookie.Value == "" {
		return s.linkPage(c, http.StatusBadRequest, "This link session is not valid",
			"It has expired, was already used, or was started in another browser. Ask for a new link.")
	}
	st, err := s.store.TakeState(ctx, state+"."+cookie.Value)
	if errors.Is(err, unified.ErrNotFound) {
		return s.linkPage(c, http.StatusBadRequest, "This link session is not valid",
			"It has expired, was already used, or was started in another browser. Ask for a new link.")
	}
	if err != nil {
		return err
	}
	lt := st.LinkToken
	fail := func(code, description string) error {
		if lt.RedirectURI == "" {
			return s.linkResult(c, lt, linkOutcome{Error: code, ErrorDescription: description})
		}
		return c.Redirect(http.StatusFound, withQuery(lt.RedirectURI, url.Values{
			"error": {code}, "error_description": {description},
		}))
	}
	if e := q.Get("error"); e != "" {
		if e != "access_denied" {
			e = "link_failed"
		}
		return fail(e, "The Podio user did not grant access.")
	}
	code := q.Get("code")
	if code == "" {
		return fail("link_failed", "Podio sent no authorization code.")
	}
	tok, err := s.podio.OAuth.Exchange(ctx, code, st.RedirectURIForPodio)
	if err != nil {
		s.log.WarnContext(ctx, "link: code exchange failed", "request_id", requestID(c), "err", err)
		return fail("link_failed", "Podio refused the authorization code.")
	}
	who, err := s.identify(ctx, tok)
	if err != nil {
		s.log.WarnContext(ctx, "link: reading the Podio user failed", "request_id", requestID(c), "err", err)
		return fail("link_failed", "Podio could not say who signed in.")
	}
	var acct store.Account
	if lt.AccountID != "" {
		prev, err := s.store.GetAccount(ctx, lt.Tenant, lt.AccountID)
		if errors.Is(err, unified.ErrNotFound) {
			return fail("link_failed", "The integrated account to re-authorize no longer exists.")
		}
		if err != nil {
			return err
		}
		if prev.PodioUserID != who.id {
			return fail("account_mismatch", "A different Podio user signed in than the one this account belongs to.")
		}
		acct, err = s.store.Reauthorize(ctx, lt.Tenant, lt.AccountID, credentialsOf(tok), who.name, who.email, who.id)
		if err != nil {
			return err
		}
		if lt.EndUser != nil {
			if acct, err = s.store.SetEndUser(ctx, lt.Tenant, lt.AccountID, lt.EndUser); err != nil {
				return err
			}
		}
		if prev.Status != store.StatusActive {
			s.emitAccount(ctx, events.IntegratedAccountReactivated, acct)
		}
	} else {
		acct, err = s.store.CreateAccount(ctx, store.Account{
			Tenant: lt.Tenant, Provider: providerPodio, Status: "active", GrantType: grantAuthorizationCode,
			PodioUserID: who.id, Name: who.name, Email: who.email, EndUser: lt.EndUser,
		}, credentialsOf(tok))
		if err != nil {
			return err
		}
		s.emitAccount(ctx, events.IntegratedAccountCreated, acct)
	}
	// The browser learns only a single-use code; the tenant's backend exchanges it for the account
	// (POST /link-results), so a replayed or forged redirect cannot attach another customer's
	// account.
	result := "lr_" + randomToken(32)
	if err := s.store.PutLinkResult(ctx, result, store.LinkResult{Tenant: lt.Tenant, AccountID: acct.ID, LinkToken: lt.Digest,
		Reauthorized: lt.AccountID != "", EndUser: lt.EndUser}, s.linkTTL); err != nil {
		return err
	}
	if lt.RedirectURI == "" {
		return s.linkResult(c, lt, linkOutcome{LinkResult: result, Name: acct.Name})
	}
	return c.Redirect(http.StatusFound, withQuery(lt.RedirectURI, url.Values{"link_result": {result}}))
}

// linkOutcome is how a browser link ended: a link result code to exchange for the account, or an
// error code and description (the same ones a redirect_uri receives).
type linkOutcome struct {
	LinkResult, Name        string
	Error, ErrorDescription string
}

// linkResultPage is the page a link without redirect_uri ends on.
var linkResultPage = pageTemplate("link-result.html")

// linkResult answers the success or error page of a link without redirect_uri. With a
// return_origin, link.js posts the outcome to the window that opened this one as a popup,
// addressed to that origin only; the page carries the message in data attributes because the
// policy allows no inline script.
func (s *Server) linkResult(c echo.Context, lt store.LinkToken, o linkOutcome) error {
	app := lt.AppName
	if app == "" {
		app = "the application that sent you here"
	}
	data := struct {
		Title, Detail, Retry, App string
		linkOutcome
		ReturnOrigin string
	}{linkOutcome: o, ReturnOrigin: lt.ReturnOrigin, App: app}
	status := http.StatusOK
	if o.Error == "" {
		data.Title = "Connected " + o.Name
		if lt.AccountID != "" {
			data.Detail = "Your Podio account is connected again."
		} else {
			data.Detail = "Your Podio account is connected."
		}
		return renderPage(c, status, linkResultPage, data, pageOptions{})
	}
	status = http.StatusBadRequest
	switch o.Error {
	case "access_denied":
		data.Title = "Access was not allowed"
		data.Detail = "You chose not to give access on Podio's page, so nothing was connected."
		data.Retry = "To try again, ask " + app + " for a new link and choose Allow."
	case "account_mismatch":
		data.Title = "A different Podio user signed in"
		data.Detail = "This link renews the connection of another Podio user. " + o.ErrorDescription
		data.Retry = "Sign out of Podio, ask " + app + " for a new link, and sign in as the user the account belongs to."
	default:
		data.Title = "Podio did not complete the connection"
		data.Detail = o.ErrorDescription
		data.Retry = "Close this window and try again: ask " + app + " for a new link."
	}
	return renderPage(c, status, linkResultPage, data, pageOptions{})
}

// withQuery adds params to an absolute URL, keeping the query it already has.
func withQuery(raw string, params url.Values) string {
	u, err := url.Parse(raw)
	if err != nil {
		return raw
	}
	q := u.Query()
	for k, vs := range params {
		q[k] = vs
	}
	u.RawQuery = q.Encode()
	return u.String()
}

// messagePage is a page that says one thing: a title and a sentence.
var messagePage = pageTemplate("message.html")

// linkPage answers a browser with a small HTML page (link errors have nowhere safe to redirect to).
func (s *Server) linkPage(c echo.Context, status int, title, detail string) error {
	return renderPage(c, status, messagePage, struct {
		Title, Detail string
		Error         bool
	}{title, detail, status >= 400}, pageOptions{})
}

// linkResultRequest is the body of POST /link-results.
type linkResultRequest struct {
	LinkResult string `json:"link_result"`
	// LinkToken, when given, must be the link token the result came from.
	LinkToken string `json:"link_token"`
}

// linkResultResponse is the answer of POST /link-results.
type linkResultResponse struct {
	IntegratedAccount accountJSON  `json:"integrated_account"`
	Reauthorized      bool         `json:"reauthorized"`
	EndUser           *endUserJSON `json:"end_user"`
}

// validLinkResult is the shape of a link result code: "lr_" and 43 base64url characters.
var validLinkResult = regexp.MustCompile(`^lr_[A-Za-z0-9_-]{43}$`)

// exchangeLinkResult answers POST /link-results: the tenant's backend learns which account a
// browser link made, once, and only for the tenant whose link token it was.
func (s *Server) exchangeLinkResult(c echo.Context) error {
	var req linkResultRequest
	if err := bindJSON(c, &req); err != nil {
		return err
	}
	if !validLinkResult.MatchString(req.LinkResult) {
		return newError(http.StatusBadRequest, "invalid_link_result", "link_result must be the lr_... code the browser came back with")
	}
	if req.LinkToken != "" && len(req.LinkToken) > 256 {
		return badRequest("link_token is too long")
	}
	ctx := c.Request().Context()
	tenant := tenantOf(c)
	r, err := s.store.TakeLinkResult(ctx, tenant, req.LinkResult, req.LinkToken)
	if errors.Is(err, unified.ErrNotFound) {
		return newError(http.StatusNotFound, "not_found", "link result not found: unknown, already exchanged, expired (after 10 minutes at most) or from another link token")
	}
	if err != nil {
		return err
	}
	a, err := s.store.GetAccount(ctx, tenant, r.AccountID)
	if err != nil {
		return err
	}
	out := s.toAccountJSON(a)
	return c.JSON(http.StatusOK, linkResultResponse{IntegratedAccount: out, Reauthorized: r.Reauthorized, EndUser: out.EndUser})
}

// endUserJSON is the tenant's reference to its own customer, as the API shows and takes it.
type endUserJSON struct {
	ID             string `json:"id"`
	OrganizationID string `json:"organization_id,omitempty"`
	Email          string `json:"email,omitempty"`
	Name           string `json:"name,omitempty"`
}

// maxEndUserField bounds each end_user field, in characters.
const maxEndUserField = 256

// toStore checks an end user given by the tenant; nil stays nil.
func (e *endUserJSON) toStore() (*store.EndUser, error) {
	if e == nil {
		return nil, nil
	}
	for _, f := range []struct{ name, v string }{
		{"id", e.ID}, {"organization_id", e.OrganizationID}, {"email", e.Email}, {"name", e.Name},
	} {
		if !plainText(f.v, maxEndUserField) {
			return nil, newError(http.StatusBadRequest, "invalid_end_user",
				fmt.Sprintf("end_user.%s must be at most %d characters of text without control or direction-changing characters", f.name, maxEndUserField))
		}
	}
	if strings.TrimSpace(e.ID) == "" {
		return nil, newError(http.StatusBadRequest, "invalid_end_user", "end_user.id is required: your own id of the customer")
	}
	if e.Email != "" {
		if !membership.ValidEmail(e.Email) {
			return nil, newError(http.StatusBadRequest, "invalid_end_user", "end_user.email must be an e-mail address such as ada@example.com")
		}
	}
	return &store.EndUser{ID: e.ID, OrganizationID: e.OrganizationID, Email: e.Email, Name: e.Name}, nil
}

func endUserOf(e *store.EndUser) *endUserJSON {
	if e == nil {
		return nil
	}
	return &endUserJSON{ID: e.ID, OrganizationID: e.OrganizationID, Email: e.Email, Name: e.Name}
}

// limitError answers a tenant at one of its storage limits with 429 and when to try again.
func limitError(err error) error {
	le, ok := errors.AsType[*store.LimitError](err)
	if !ok {
		return err
	}
	code := "too_many_" + strings.ReplaceAll(le.What, " ", "_")
	e := &Error{Status: http.StatusTooManyRequests, Code: code,
		Message: fmt.Sprintf("the tenant holds %d open %s, the most it may; use or let some expire first", le.Limit, le.What), Err: err}
	if !le.Until.IsZero() {
		e.RetryAfter = max(int(time.Until(le.Until).Seconds())+1, 1)
	}
	return e
}
