// Package podio is a client for the parts of the Podio REST API that a user
// directory gateway needs: OAuth, the current user, contacts, organizations,
// organization members, spaces and space members.
//
// It is shaped like google/go-github: a Client holds the base URL, the HTTP
// client and one service per API area; every service method names the Podio
// operation it calls. Every non-2xx answer is turned into a typed error in one
// place, CheckResponse: *Error, or *RateLimitError for Podio's 420 answer.
//
// Usage:
//
//	c := podio.NewClient(nil, nil)
//	c.OAuthConfig = podio.OAuthConfig{ClientID: id, ClientSecret: secret}
//	tok, err := c.OAuth.PasswordGrant(ctx, user, password)
//	if err != nil { ... }
//	c = c.WithTokenSource(c.OAuth.TokenSource(tok))
//	me, _, err := c.Users.Get(ctx)
//
// Access tokens are sent as "Authorization: OAuth2 <token>". When Podio
// answers 401 with an expired or invalid token, Do asks the TokenSource for a
// fresh token once and repeats the request once; persisting a rotated refresh
// token is the TokenSource's job.
//
// Podio specifics the package respects (see podio-api.md): trailing slashes
// in paths are significant and copied verbatim, the rate-limit status is 420
// with the wait only in the body text, datetimes are "YYYY-MM-DD HH:MM:SS" in
// UTC (see Time), and only the organization member list and the v2 space
// member list are paged (see OrgsService.AllMembers and
// SpaceMembersService.All).
//
// Directory is the adapter on top of the client: it implements
// unified.Directory for one linked account, maps Podio objects to the unified
// model and keeps each object as sent (the Raw fields) as remote_data. It
// passes the conformance suite in unified/unifiedtest.
package podio
