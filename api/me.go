package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"
	_ "time/tzdata" // time zones are validated the same way on hosts without a zoneinfo database

	"github.com/labstack/echo/v4"

	"github.com/dirgate/dirgate/unified"
)

// PATCH /unified/user-directory/me: the linked person changes their own profile and settings.

// maxProfileText bounds title and location; Podio documents no limit.
const maxProfileText = 200

// localePattern is a locale such as en_GB or da_DK (language_COUNTRY).
var localePattern = regexp.MustCompile(`^[a-z]{2}_[A-Z]{2}$`)

// optString is a JSON member that may be absent; present tells absent from null.
type optString struct {
	present bool
	value   *string
}

func (o *optString) UnmarshalJSON(b []byte) error {
	o.present = true
	if bytes.Equal(bytes.TrimSpace(b), []byte("null")) {
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return errors.New("must be a string")
	}
	o.value = &s
	return nil
}

// updateMeRequest is the body of PATCH /me.
type updateMeRequest struct {
	Title    optString `json:"title"`
	Location optString `json:"location"`
	Locale   optString `json:"locale"`
	Timezone optString `json:"timezone"`
}

// validate turns the request into an update, or says what is wrong with it.
func (r updateMeRequest) validate() (unified.MeUpdate, error) {
	var u unified.MeUpdate
	fields := []struct {
		name  string
		in    optString
		out   **string
		check func(string) string // "" = valid, else why not
	}{
		{"title", r.Title, &u.Title, checkProfileText},
		{"location", r.Location, &u.Location, checkProfileText},
		{"locale", r.Locale, &u.Locale, checkLocale},
		{"timezone", r.Timezone, &u.Timezone, checkTimezone},
	}
	given := false
	for _, f := range fields {
		if !f.in.present {
			continue
		}
		given = true
		if f.in.value == nil {
			return u, badRequest(f.name + " must be a string, not null")
		}
		v := strings.TrimSpace(*f.in.value)
		if v == "" {
			return u, badRequest(f.name + " must not be empty")
		}
		if why := f.check(v); why != "" || !plainText(*f.in.value, maxProfileText) {
			if why == "" {
				why = checkProfileText(*f.in.value)
			}
			return u, badRequest(f.name + " " + why)
		}
		*f.out = &v
	}
	if !given {
		return u, badRequest("send at least one of title, location, locale, timezone")
	}
	return u, nil
}

func checkProfileText(v string) string {
	if !plainText(v, maxProfileText) {
		return fmt.Sprintf("must be at most %d characters of text without control or direction-changing characters", maxProfileText)
	}
	return ""
}

func checkLocale(v string) string {
	if !localePattern.MatchString(v) {
		return `must be a locale like "en_GB" or "da_DK"`
	}
	return ""
}

func checkTimezone(v string) string {
	// LoadLocation also takes "Local" (the server's own zone), which names no zone.
	if _, err := time.LoadLocation(v); err != nil || v == "Local" {
		return `must be an IANA time zone name like "Europe/Copenhagen"`
	}
	return ""
}

// updateMe changes the linked person's own title, location, locale or time zone in Podio, making
// only the Podio calls the fields need, and answers the updated /me read fresh from Podio. The
// cached /me (and the person's own /users/{id}) are invalidated whether or not every call
// succeeded, since part of the change may have been applied.
func (s *Server) updateMe(c echo.Context) error {
	d, err := s.dirQuery(c)
	if err != nil {
		return err
	}
	var req updateMeRequest
	if err := bindJSON(c, &req); err != nil {
		return err
	}
	upd, err := req.validate()
	if err != nil {
		return err
	}
	a, err := s.store.GetAccount(d.ctx(), d.tenant, d.account)
	if err != nil {
		if errors.Is(err, unified.ErrNotFound) {
			return notFound("integrated account")
		}
		return err
	}
	d.spend(a)
	updater, ok := d.directory().(unified.MeUpdater)
	if !ok {
		return newError(http.StatusNotImplemented, "not_supported", "this provider cannot change the linked person's profile")
	}
	uerr := updater.UpdateMe(d.ctx(), upd)
	s.invalidateMe(d.ctx(), d, strconv.FormatInt(a.PodioUserID, 10))
	if uerr != nil {
		return uerr
	}
	d.fresh = true
	return d.value("me", s.ttl.Me, func(ctx context.Context, dir unified.Directory) (any, error) {
		return dir.Me(ctx)
	}, stripMe)
}

// invalidateMe drops the cached reads that show the linked person's own profile. Member lists
// that embed it are left to their TTL. A failure is logged, not returned: Podio has changed, and
// the fresh read that follows replaces the cached /me anyway.
func (s *Server) invalidateMe(ctx context.Context, d *dirCall, userID string) {
	if err := s.cache.Invalidate(context.WithoutCancel(ctx), d.scope(), "me", "user:"+userID); err != nil {
		s.log.WarnContext(ctx, "invalidating the cached /me", "request_id", requestID(d.c), "err", err)
	}
}
