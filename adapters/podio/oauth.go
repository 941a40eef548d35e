package podio

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"golang.org/x/oauth2"
)

// OAuthConfig is a Podio API key.
type OAuthConfig struct {
	ClientID     string
	ClientSecret string
}

// OAuthService handles Podio's OAuth 2 endpoints (podio-api.md §2). Token
// calls are form-encoded POSTs to <BaseURL>oauth/token with the client
// credentials in the body; the exchange and refresh calls are made by
// golang.org/x/oauth2.
type OAuthService service

const tokenPath = "oauth/token"

// oauth2Config builds the x/oauth2 configuration from the client's settings.
func (s *OAuthService) oauth2Config(redirectURI string) (*oauth2.Config, error) {
	tokenURL, err := resolve(s.client.BaseURL, tokenPath)
	if err != nil {
		return nil, err
	}
	authURL, err := resolve(s.client.AuthURL, "oauth/authorize")
	if err != nil {
		return nil, err
	}
	return &oauth2.Config{
		ClientID:     s.client.OAuthConfig.ClientID,
		ClientSecret: s.client.OAuthConfig.ClientSecret,
		RedirectURL:  redirectURI,
		Endpoint: oauth2.Endpoint{
			AuthURL:   authURL.String(),
			TokenURL:  tokenURL.String(),
			AuthStyle: oauth2.AuthStyleInParams,
		},
	}, nil
}

// oauth2Context makes x/oauth2 use the client's HTTP client.
func (s *OAuthService) oauth2Context(ctx context.Context) context.Context {
	return context.WithValue(ctx, oauth2.HTTPClient, s.client.client)
}

// AuthCodeURL returns the browser URL of GET https://podio.com/oauth/authorize
// (on AuthURL) for the server-side flow: client_id, redirect_uri,
// response_type=code and state.
func (s *OAuthService) AuthCodeURL(state, redirectURI string) (string, error) {
	conf, err := s.oauth2Config(redirectURI)
	if err != nil {
		return "", err
	}
	return conf.AuthCodeURL(state), nil
}

// Exchange calls POST /oauth/token with grant_type=authorization_code.
func (s *OAuthService) Exchange(ctx context.Context, code, redirectURI string) (*Token, error) {
	conf, err := s.oauth2Config(redirectURI)
	if err != nil {
		return nil, err
	}
	t, err := conf.Exchange(s.oauth2Context(ctx), code)
	if err != nil {
		return nil, tokenError("exchanging authorization code", err)
	}
	return s.fromOAuth2(t), nil
}

// Refresh calls POST /oauth/token with grant_type=refresh_token. The
// returned token always carries a refresh token: the new one if Podio
// rotated it, else refreshToken. Store it; the old one may now be invalid.
func (s *OAuthService) Refresh(ctx context.Context, refreshToken string) (*Token, error) {
	if refreshToken == "" {
		return nil, errors.New("podio: refreshing token: no refresh token")
	}
	conf, err := s.oauth2Config("")
	if err != nil {
		return nil, err
	}
	t, err := conf.TokenSource(s.oauth2Context(ctx), &oauth2.Token{RefreshToken: refreshToken}).Token()
	if err != nil {
		return nil, tokenError("refreshing token", err)
	}
	tok := s.fromOAuth2(t)
	if tok.RefreshToken == "" {
		tok.RefreshToken = refreshToken
	}
	return tok, nil
}

// PasswordGrant calls POST /oauth/token with grant_type=password.
func (s *OAuthService) PasswordGrant(ctx context.Context, username, password string) (*Token, error) {
	conf, err := s.oauth2Config("")
	if err != nil {
		return nil, err
	}
	t, err := conf.PasswordCredentialsToken(s.oauth2Context(ctx), username, password)
	if err != nil {
		return nil, tokenError("password grant", err)
	}
	return s.fromOAuth2(t), nil
}

// AppGrant calls POST /oauth/token with grant_type=app (app_id, app_token).
// x/oauth2 has no app grant, so this is a direct form POST that goes through
// CheckResponse like every API call.
func (s *OAuthService) AppGrant(ctx context.Context, appID int64, appToken string) (*Token, error) {
	u, err := resolve(s.client.BaseURL, tokenPath)
	if err != nil {
		return nil, err
	}
	form := url.Values{
		"grant_type":    {"app"},
		"app_id":        {strconv.FormatInt(appID, 10)},
		"app_token":     {appToken},
		"client_id":     {s.client.OAuthConfig.ClientID},
		"client_secret": {s.client.OAuthConfig.ClientSecret},
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), strings.NewReader(form.Encode()))
	if err != nil {
		return nil, fmt.Errorf("podio: app grant: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	if s.client.UserAgent != "" {
		req.Header.Set("User-Agent", s.client.UserAgent)
	}
	resp, err := s.client.client.Do(req)
	if err != nil {
		if cerr := ctx.Err(); cerr != nil {
			return nil, cerr
		}
		return nil, fmt.Errorf("podio: app grant: %w", err)
	}
	defer resp.Body.Close()
	if err := CheckResponse(resp); err != nil {
		return nil, fmt.Errorf("podio: app grant: %w", err)
	}
	var body struct {
		AccessToken  string          `json:"access_token"`
		TokenType    string          `json:"token_type"`
		ExpiresIn    int64           `json:"expires_in"`
		RefreshToken string          `json:"refresh_token"`
		Scope        string          `json:"scope"`
		Ref          json.RawMessage `json:"ref"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&body); err != nil {
		return nil, fmt.Errorf("podio: app grant: decoding token response: %w", err)
	}
	if body.AccessToken == "" {
		return nil, errors.New("podio: app grant: response has no access_token")
	}
	tok := &Token{
		AccessToken:  body.AccessToken,
		RefreshToken: body.RefreshToken,
		TokenType:    body.TokenType,
		Scope:        body.Scope,
	}
	if body.ExpiresIn > 0 {
		tok.Expiry = s.client.now().Add(time.Duration(body.ExpiresIn) * time.Second)
	}
	var ref map[string]any
	if json.Unmarshal(body.Ref, &ref) == nil {
		tok.Ref = parseRef(ref)
	}
	return tok, nil
}

// fromOAuth2 converts an x/oauth2 token, reading Podio's extra fields.
func (s *OAuthService) fromOAuth2(t *oauth2.Token) *Token {
	tok := &Token{
		AccessToken:  t.AccessToken,
		RefreshToken: t.RefreshToken,
		TokenType:    t.TokenType,
		Expiry:       t.Expiry,
	}
	if t.ExpiresIn > 0 {
		// Expiry on the client's clock, so that callers comparing it with the same clock agree.
		tok.Expiry = s.client.now().Add(time.Duration(t.ExpiresIn) * time.Second)
	}
	if s, ok := t.Extra("scope").(string); ok {
		tok.Scope = s
	}
	if ref, ok := t.Extra("ref").(map[string]any); ok {
		tok.Ref = parseRef(ref)
	}
	return tok
}

func parseRef(ref map[string]any) Ref {
	var r Ref
	r.Type, _ = ref["type"].(string)
	switch id := ref["id"].(type) {
	case float64:
		if id == math.Trunc(id) {
			r.ID = int64(id)
		}
	case string:
		r.ID, _ = strconv.ParseInt(id, 10, 64)
	}
	return r
}

// tokenError maps an x/oauth2 failure into the package's error types. A
// RetrieveError becomes an *Error (or *RateLimitError) built by the same code
// as every API error; its text includes the response body, so it is not
// wrapped.
func tokenError(op string, err error) error {
	if re, ok := errors.AsType[*oauth2.RetrieveError](err); ok && re.Response != nil {
		perr := errorFromBody(re.Response, re.Body)
		if e, ok := errors.AsType[*Error](perr); ok {
			// x/oauth2 also understands form-encoded error bodies.
			if e.Code == "" {
				e.Code = re.ErrorCode
			}
			if e.Description == "" {
				e.Description = re.ErrorDescription
			}
		}
		return fmt.Errorf("podio: %s: %w", op, perr)
	}
	return fmt.Errorf("podio: %s: %w", op, err)
}
