package podiosim

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"strings"
	"time"
)

type accessToken struct {
	refType  string // "user" or "app"
	refID    int64
	clientID string
	expires  time.Time
}

type refreshGrant struct {
	refType  string
	refID    int64
	clientID string
	expires  time.Time
}

type authCode struct {
	clientID, redirectURI string
	userID                int64
	expires               time.Time
}

// Token is what IssueToken mints: the same values the password grant would return.
type Token struct {
	AccessToken  string
	RefreshToken string
	ExpiresIn    int
	UserID       int64
}

// IssueToken mints tokens for the active person with the given e-mail, as if the password grant
// had succeeded for clientID, without an HTTP round trip or a password.
func (s *Server) IssueToken(clientID, email string) (Token, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ds.clients[clientID] == nil {
		return Token{}, fmt.Errorf("podiosim: unknown client %q", clientID)
	}
	p := s.ds.personByMail(email)
	if p == nil || p.status != "active" {
		return Token{}, fmt.Errorf("podiosim: no active person with mail %q", email)
	}
	access, refresh := s.mintTokens("user", p.userID, clientID)
	return Token{AccessToken: access, RefreshToken: refresh, ExpiresIn: int(s.cfg.AccessTokenTTL / time.Second), UserID: p.userID}, nil
}

// UserID looks up a person's user id by e-mail (case-insensitive).
func (s *Server) UserID(email string) (int64, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p := s.ds.personByMail(email); p != nil {
		return p.userID, true
	}
	return 0, false
}

// authenticate finds the access token of the call: Authorization "OAuth2 <t>" or "Bearer <t>", or
// the legacy oauth_token query/form parameter. Caller holds s.mu.
func (s *Server) authenticate(c *call) (*accessToken, reply, bool) {
	raw := ""
	if h := c.r.Header.Get("Authorization"); h != "" {
		scheme, t, _ := strings.Cut(strings.TrimSpace(h), " ")
		if strings.EqualFold(scheme, "OAuth2") || strings.EqualFold(scheme, "Bearer") {
			raw = strings.TrimSpace(t)
		}
	} else if vs := c.form["oauth_token"]; len(vs) > 0 {
		raw = vs[len(vs)-1]
	}
	if raw == "" {
		return nil, errReply(http.StatusUnauthorized, "invalid_token", "No access token was given"), false
	}
	tok := s.tokens[raw]
	if tok == nil {
		return nil, errReply(http.StatusUnauthorized, "invalid_token", "The access token is not valid"), false
	}
	if !c.now.Before(tok.expires) {
		rep := errReply(http.StatusUnauthorized, "unauthorized", "expired_token")
		rep.header = http.Header{"Www-Authenticate": {`Bearer realm="podio", error="expired_token"`}}
		return nil, rep, false
	}
	return tok, reply{}, true
}

// mintTokens issues an access token and a refresh token. Caller holds s.mu.
// sweepEvery is how many mints pass between sweeps of dead credentials.
const sweepEvery = 1024

// sweepLocked forgets credentials that can no longer matter, so that a long-running simulator does
// not grow without bound. Expired access tokens are kept for as long as a refresh token lives, so
// that a client holding an old one still gets expired_token (not invalid_token) back. Caller holds s.mu.
func (s *Server) sweepLocked(now time.Time) {
	for k, t := range s.tokens {
		if now.After(t.expires.Add(s.cfg.RefreshTokenTTL)) {
			delete(s.tokens, k)
		}
	}
	for k, g := range s.refresh {
		if now.After(g.expires) {
			delete(s.refresh, k)
		}
	}
	for k, c := range s.codes {
		if now.After(c.expires) {
			delete(s.codes, k)
		}
	}
}

func (s *Server) mintTokens(refType string, refID int64, clientID string) (access, refresh string) {
	now := s.now()
	if s.minted++; s.minted%sweepEvery == 0 {
		s.sweepLocked(now)
	}
	access, refresh = randomToken(), randomToken()
	s.tokens[access] = &accessToken{refType: refType, refID: refID, clientID: clientID, expires: now.Add(s.cfg.AccessTokenTTL)}
	s.refresh[refresh] = &refreshGrant{refType: refType, refID: refID, clientID: clientID, expires: now.Add(s.cfg.RefreshTokenTTL)}
	return access, refresh
}

func randomToken() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	return hex.EncodeToString(b)
}
