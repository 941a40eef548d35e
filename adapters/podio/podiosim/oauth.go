package podiosim

import (
	"bytes"
	"encoding/json"
	"html/template"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// codeTTL is how long an authorization code can be exchanged.
const codeTTL = 10 * time.Minute

// authorizePage is the login/consent page. The form posts to the relative action "authorize" so
// the page works when the simulator is mounted under a path prefix.
var authorizePage = template.Must(template.New("authorize").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Podio simulator - authorize</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>*{box-sizing:border-box}body{font-family:sans-serif;max-width:28rem;margin:3rem auto;padding:0 1rem}label{display:block;margin:.6rem 0}
input[type=text],input[type=password]{width:100%}.error{color:#b00020}</style></head>
<body><h1>Authorize {{.ClientID}}</h1>
<p>The application <strong>{{.ClientID}}</strong> wants to access your Podio account.</p>
{{if .Error}}<p class="error" role="alert">{{.Error}}</p>{{end}}
<form method="post" action="authorize">
<input type="hidden" name="client_id" value="{{.ClientID}}">
<input type="hidden" name="redirect_uri" value="{{.RedirectURI}}">
<input type="hidden" name="state" value="{{.State}}">
<input type="hidden" name="scope" value="{{.Scope}}">
<input type="hidden" name="response_type" value="{{.ResponseType}}">
<label>E-mail <input type="text" name="username" value="{{.Username}}" autocomplete="username"></label>
<label>Password <input type="password" name="password" autocomplete="current-password"></label>
<button type="submit" name="decision" value="allow">Allow</button>
<button type="submit" name="decision" value="deny">Deny</button>
</form></body></html>
`))

var authorizeErrorPage = template.Must(template.New("authorize-error").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Podio simulator - error</title></head>
<body><h1>Authorization error</h1><p role="alert">{{.}}</p></body></html>
`))

type authorizeData struct {
	ClientID, RedirectURI, State, Scope, ResponseType, Username, Error string
}

func htmlReply(status int, t *template.Template, data any) reply {
	var buf bytes.Buffer
	if err := t.Execute(&buf, data); err != nil {
		return reply{status: http.StatusInternalServerError, html: []byte("template error")}
	}
	return reply{status: status, html: buf.Bytes()}
}

// checkRedirect validates client_id and redirect_uri: the URI must be absolute http(s) and its
// host the client's registered domain or a subdomain of it (any port).
func (s *Server) checkRedirect(clientID, redirectURI string) (*url.URL, string) {
	cl := s.ds.clients[clientID]
	if cl == nil {
		return nil, "Unknown client_id."
	}
	u, err := url.Parse(redirectURI)
	if redirectURI == "" || err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, "The redirect_uri is missing or not a valid absolute URL."
	}
	host := strings.ToLower(u.Hostname())
	for _, d := range cl.domains {
		if host == d || strings.HasSuffix(host, "."+d) {
			return u, ""
		}
	}
	return nil, "The redirect_uri is not on the domain registered for this client."
}

// redirectWith appends params, in order, to the redirect URI's existing query.
func redirectWith(u *url.URL, params [][2]string) reply {
	var b strings.Builder
	b.WriteString(u.RawQuery)
	for _, kv := range params {
		if b.Len() > 0 {
			b.WriteByte('&')
		}
		b.WriteString(url.QueryEscape(kv[0]) + "=" + url.QueryEscape(kv[1]))
	}
	target := *u
	target.RawQuery = b.String()
	return reply{status: http.StatusFound, header: http.Header{"Location": {target.String()}}}
}

func (c *call) authorizeData() authorizeData {
	v := func(k string) string { s, _ := c.last(k); return s }
	return authorizeData{
		ClientID: v("client_id"), RedirectURI: v("redirect_uri"), State: v("state"),
		Scope: v("scope"), ResponseType: v("response_type"), Username: v("username"),
	}
}

func (s *Server) getAuthorize(c *call) reply {
	d := c.authorizeData()
	if _, msg := s.checkRedirect(d.ClientID, d.RedirectURI); msg != "" {
		return htmlReply(http.StatusBadRequest, authorizeErrorPage, msg)
	}
	if d.ResponseType != "" && d.ResponseType != "code" {
		return htmlReply(http.StatusBadRequest, authorizeErrorPage, "Only response_type=code is supported by the simulator.")
	}
	d.Username = ""
	return htmlReply(http.StatusOK, authorizePage, d)
}

func (s *Server) postAuthorize(c *call) reply {
	d := c.authorizeData()
	u, msg := s.checkRedirect(d.ClientID, d.RedirectURI)
	if msg != "" {
		return htmlReply(http.StatusBadRequest, authorizeErrorPage, msg)
	}
	withState := func(params [][2]string) [][2]string {
		if d.State != "" {
			params = append(params, [2]string{"state", d.State})
		}
		return params
	}
	if decision, _ := c.last("decision"); decision != "allow" {
		return redirectWith(u, withState([][2]string{
			{"error_reason", "user_denied"}, {"error", "access_denied"},
			{"error_description", "The user denied your request."},
		}))
	}
	password, _ := c.last("password")
	p := s.ds.personByMail(d.Username)
	if p == nil || p.status != "active" || p.password == "" || p.password != password {
		d.Error = "Wrong e-mail or password."
		return htmlReply(http.StatusOK, authorizePage, d)
	}
	code := randomToken()
	s.codes[code] = &authCode{clientID: d.ClientID, redirectURI: d.RedirectURI, userID: p.userID, expires: c.now.Add(codeTTL)}
	return redirectWith(u, withState([][2]string{{"code", code}}))
}

// tokenParams reads the token request: form-encoded for /oauth/token, a JSON object for
// /oauth/token/v2 (numbers such as app_id are accepted as JSON numbers or strings).
type tokenParams map[string]string

func (s *Server) postToken(c *call) reply {
	p := tokenParams{}
	for k, vs := range c.form {
		p[k] = vs[len(vs)-1]
	}
	return s.token(c, p)
}

func (s *Server) postTokenV2(c *call) reply {
	var raw map[string]any
	dec := json.NewDecoder(bytes.NewReader(c.body))
	dec.UseNumber()
	if err := dec.Decode(&raw); err != nil {
		return errReply(http.StatusBadRequest, "invalid_request", "The request body must be a JSON object")
	}
	p := tokenParams{}
	for k, v := range raw {
		switch v := v.(type) {
		case string:
			p[k] = v
		case json.Number:
			p[k] = v.String()
		case bool:
			p[k] = strconv.FormatBool(v)
		}
	}
	return s.token(c, p)
}

func invalidGrant(desc string) reply { return errReply(http.StatusBadRequest, "invalid_grant", desc) }

func (s *Server) token(c *call, p tokenParams) reply {
	need := func(keys ...string) (reply, bool) {
		for _, k := range keys {
			if p[k] == "" {
				return errReply(http.StatusBadRequest, "invalid_request", "Missing parameter "+k), false
			}
		}
		return reply{}, true
	}
	if rep, ok := need("grant_type", "client_id", "client_secret"); !ok {
		return rep
	}
	cl := s.ds.clients[p["client_id"]]
	if cl == nil || cl.secret != p["client_secret"] {
		return errReply(http.StatusUnauthorized, "invalid_client", "Invalid client_id or client_secret")
	}
	var refType string
	var refID int64
	switch p["grant_type"] {
	case "authorization_code":
		if rep, ok := need("code", "redirect_uri"); !ok {
			return rep
		}
		code := s.codes[p["code"]]
		if code == nil || !c.now.Before(code.expires) {
			delete(s.codes, p["code"])
			return invalidGrant("The authorization code is invalid or expired")
		}
		if code.clientID != cl.id || code.redirectURI != p["redirect_uri"] {
			return invalidGrant("The redirect_uri or client does not match the authorization request")
		}
		delete(s.codes, p["code"]) // single use
		refType, refID = "user", code.userID
	case "refresh_token":
		if rep, ok := need("refresh_token"); !ok {
			return rep
		}
		rg := s.refresh[p["refresh_token"]]
		if rg == nil || rg.clientID != cl.id || !c.now.Before(rg.expires) {
			return invalidGrant("The refresh token is invalid or expired")
		}
		if s.cfg.DisableRefreshRotation {
			access := randomToken()
			s.tokens[access] = &accessToken{refType: rg.refType, refID: rg.refID, clientID: cl.id, expires: c.now.Add(s.cfg.AccessTokenTTL)}
			return s.tokenReply(access, p["refresh_token"], rg.refType, rg.refID)
		}
		delete(s.refresh, p["refresh_token"])
		refType, refID = rg.refType, rg.refID
	case "password":
		if rep, ok := need("username", "password"); !ok {
			return rep
		}
		u := s.ds.personByMail(p["username"])
		if u == nil || u.status != "active" || u.password == "" || u.password != p["password"] {
			return invalidGrant("Wrong username or password")
		}
		refType, refID = "user", u.userID
	case "app":
		if rep, ok := need("app_id", "app_token"); !ok {
			return rep
		}
		id, _ := parseID(p["app_id"])
		a := s.ds.apps[id]
		if a == nil || a.token != p["app_token"] {
			return invalidGrant("Invalid app_id or app_token")
		}
		refType, refID = "app", a.id
	default:
		return errReply(http.StatusBadRequest, "unsupported_grant_type", "Unsupported grant_type")
	}
	access, refresh := s.mintTokens(refType, refID, cl.id)
	return s.tokenReply(access, refresh, refType, refID)
}

func (s *Server) tokenReply(access, refresh, refType string, refID int64) reply {
	return okJSON(map[string]any{
		"access_token":  access,
		"token_type":    "bearer",
		"expires_in":    int(s.cfg.AccessTokenTTL / time.Second),
		"refresh_token": refresh,
		"scope":         "global:all",
		"ref":           map[string]any{"type": refType, "id": refID},
	})
}
