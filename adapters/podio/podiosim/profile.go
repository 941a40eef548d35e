package podiosim

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"time"
)

// Own-account writes: PUT /user/profile/, PUT /user/profile/{key} (podio-api.md §3.3, Podio's
// "Update profile" and "Update profile field") and PUT /user/ (UNCONFIRMED, see updateUser).
// A person can change only their own profile and settings: none of these routes names a user.

// profileField says how one contact field (§3.4) is written.
type profileField struct {
	multi    bool // an array of strings; a single string is taken as a one-element array
	readOnly bool // part of the contact object, but not something a person sets
	required bool // may not be null or empty (name)
}

// profileFields are the contact fields PUT /user/profile/ knows. The editable ones are the text
// fields of §3.4; identity, picture, rights, activity and the e-mail addresses are read-only here.
var profileFields = map[string]profileField{
	"name":     {required: true},
	"title":    {multi: true},
	"location": {multi: true},
	"phone":    {multi: true},
	"address":  {multi: true},
	"url":      {multi: true},
	"skill":    {multi: true},
	"im":       {multi: true},

	"about": {}, "organization": {}, "department": {}, "zip": {}, "city": {}, "state": {},
	"country": {}, "skype": {}, "linkedin": {}, "twitter": {},

	"profile_id": {readOnly: true}, "user_id": {readOnly: true}, "type": {readOnly: true},
	"avatar": {readOnly: true}, "image": {readOnly: true}, "link": {readOnly: true},
	"mail": {readOnly: true}, "last_seen_on": {readOnly: true}, "rights": {readOnly: true},
	"is_employee": {readOnly: true}, "space_id": {readOnly: true}, "org_id": {readOnly: true},
	"external_id": {readOnly: true}, "birthdate": {readOnly: true},
}

// maxProfileValue bounds one text value; Podio's own limit is not documented.
const maxProfileValue = 1000

// profileChange is one validated field update: nil values clear the field.
type profileChange struct {
	key    string
	values []string // multi-valued fields
	value  *string  // single-valued fields
}

// parseProfileValue validates the JSON value for key. Null clears a field ("To delete a field set
// the value of the field to null", Update profile).
func parseProfileValue(key string, raw json.RawMessage) (profileChange, reply, bool) {
	f, known := profileFields[key]
	switch {
	case !known:
		return profileChange{}, invalidValue(fmt.Sprintf("Unknown profile field %q", key)), false
	case f.readOnly:
		return profileChange{}, invalidValue(fmt.Sprintf("The profile field %q cannot be updated", key)), false
	}
	ch := profileChange{key: key}
	raw = bytes.TrimSpace(raw)
	if bytes.Equal(raw, []byte("null")) {
		if f.required {
			return ch, invalidValue(fmt.Sprintf("Invalid value for %s: it is required", key)), false
		}
		return ch, reply{}, true
	}
	want := "a string"
	if f.multi {
		want = "a string or a list of strings"
	}
	bad := invalidValue(fmt.Sprintf("Invalid value for %s: expected %s", key, want))
	var one string
	if err := json.Unmarshal(raw, &one); err == nil {
		if strings.TrimSpace(one) == "" && f.required {
			return ch, invalidValue(fmt.Sprintf("Invalid value for %s: it is required", key)), false
		}
		if len(one) > maxProfileValue {
			return ch, invalidValue(fmt.Sprintf("Invalid value for %s: too long", key)), false
		}
		if f.multi {
			ch.values = arr(one)
		} else {
			ch.value = &one
		}
		return ch, reply{}, true
	}
	if !f.multi || raw[0] != '[' {
		return ch, bad, false
	}
	var many []string
	if err := json.Unmarshal(raw, &many); err != nil {
		return ch, bad, false
	}
	for _, v := range many {
		if strings.TrimSpace(v) == "" || len(v) > maxProfileValue {
			return ch, invalidValue(fmt.Sprintf("Invalid value for %s: values must be non-empty and short", key)), false
		}
	}
	ch.values = many
	if ch.values == nil {
		ch.values = []string{}
	}
	return ch, reply{}, true
}

// apply writes the change into p. Slices are replaced, never edited, so dataset clones that share
// them stay independent.
func (ch profileChange) apply(p *person) {
	if ch.key == "name" {
		p.name = *ch.value
		return
	}
	multi := map[string]*[]string{
		"title": &p.title, "location": &p.location, "phone": &p.phone, "address": &p.address,
		"url": &p.url, "skill": &p.skill, "im": &p.im,
	}
	if dst, ok := multi[ch.key]; ok {
		*dst = slices.Clone(ch.values)
		return
	}
	single := map[string]*string{
		"about": &p.about, "organization": &p.organization, "department": &p.department, "zip": &p.zip,
		"city": &p.city, "state": &p.state, "country": &p.country, "skype": &p.skype,
		"linkedin": &p.linkedin, "twitter": &p.twitter,
	}
	if dst, ok := single[ch.key]; ok {
		*dst = ""
		if ch.value != nil {
			*dst = *ch.value
		}
	}
}

// decodeObject decodes a JSON object body into its raw members.
func decodeObject(c *call) (map[string]json.RawMessage, reply, bool) {
	var in map[string]json.RawMessage
	if rep, ok := decodeBody(c, &in); !ok {
		return nil, rep, false
	}
	if in == nil {
		return nil, invalidValue("The request body must be a JSON object"), false
	}
	return in, reply{}, true
}

// callerWithObject is the calling person and the JSON object body of a write on their own account.
func (s *Server) callerWithObject(c *call) (*person, map[string]json.RawMessage, reply, bool) {
	p, rep, ok := s.caller(c)
	if !ok {
		return nil, nil, rep, false
	}
	in, rep, ok := decodeObject(c)
	if !ok {
		return nil, nil, rep, false
	}
	return p, in, reply{}, true
}

// updateProfile implements PUT /user/profile/: fields not given stay as they are, null clears a
// field. Every field is checked before anything changes.
func (s *Server) updateProfile(c *call) reply {
	p, in, rep, ok := s.callerWithObject(c)
	if !ok {
		return rep
	}
	changes := make([]profileChange, 0, len(in))
	for _, key := range slices.Sorted(maps.Keys(in)) {
		ch, rep, ok := parseProfileValue(key, in[key])
		if !ok {
			return rep
		}
		changes = append(changes, ch)
	}
	for _, ch := range changes {
		ch.apply(p)
	}
	return successReply(s.cfg.UpdateProfileStatus, http.StatusNoContent)
}

// updateProfileField implements PUT /user/profile/{key} with {"value": ...}.
func (s *Server) updateProfileField(c *call) reply {
	p, in, rep, ok := s.callerWithObject(c)
	if !ok {
		return rep
	}
	for k := range in {
		if k != "value" {
			return invalidValue(fmt.Sprintf("Unknown parameter %q: the body is {\"value\": ...}", k))
		}
	}
	raw, found := in["value"]
	if !found {
		return invalidValue("value is required")
	}
	ch, rep, ok := parseProfileValue(c.params["key"], raw)
	if !ok {
		return rep
	}
	ch.apply(p)
	return successReply(s.cfg.UpdateProfileStatus, http.StatusNoContent)
}

// localePattern is the shape of Podio locales (en_GB, da_DK). Which locales Podio accepts is
// UNCONFIRMED; the simulator takes any language_COUNTRY pair.
var localePattern = regexp.MustCompile(`^[a-z]{2}_[A-Z]{2}$`)

// updateUser implements PUT /user/ with {locale?, timezone?}. UNCONFIRMED: podio-api.md does not
// document it and no developers.podio.com page for it was found; the official Ruby client calls
// PUT /user/ ("update") with the account's attributes, whose model lists locale and timezone. The
// simulator accepts exactly those two; anything else (mail and password changes included) is 400.
func (s *Server) updateUser(c *call) reply {
	p, in, rep, ok := s.callerWithObject(c)
	if !ok {
		return rep
	}
	var locale, timezone *string
	for _, key := range slices.Sorted(maps.Keys(in)) {
		var v string
		if json.Unmarshal(in[key], &v) != nil {
			if key == "locale" || key == "timezone" {
				return invalidValue(fmt.Sprintf("Invalid value for %s: expected a string", key))
			}
		}
		switch key {
		case "locale":
			if !localePattern.MatchString(v) {
				return invalidValue(fmt.Sprintf("Invalid value for locale: %q is not a locale", v))
			}
			locale = &v
		case "timezone":
			if !validTimezone(v) {
				return invalidValue(fmt.Sprintf("Invalid value for timezone: %q is not a time zone", v))
			}
			timezone = &v
		default:
			return invalidValue(fmt.Sprintf("Unknown or unsupported field %q", key))
		}
	}
	if locale != nil {
		p.locale = *locale
	}
	if timezone != nil {
		p.timezone = *timezone
	}
	return successReply(s.cfg.UpdateUserStatus, http.StatusNoContent)
}

// validTimezone accepts IANA zone names; "Local" names the simulator's machine, not a zone.
func validTimezone(name string) bool {
	if name == "" || name == "Local" {
		return false
	}
	_, err := time.LoadLocation(name)
	return err == nil
}
