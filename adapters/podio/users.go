package podio

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
)

// UsersService handles the current user's account (podio-api.md §3).
type UsersService service

// UserMail is one e-mail address of a user account.
type UserMail struct {
	Mail     string `json:"mail"`
	Verified bool   `json:"verified"`
	Primary  bool   `json:"primary"`
	Disabled bool   `json:"disabled"`
}

// User is a Podio user account (GET /user/), also the "user" object embedded
// in member items, where only some fields are set.
type User struct {
	UserID      int64      `json:"user_id"`
	Mail        string     `json:"mail,omitempty"`
	Mails       []UserMail `json:"mails,omitempty"`
	Status      string     `json:"status,omitempty"`
	Locale      string     `json:"locale,omitempty"`
	Timezone    string     `json:"timezone,omitempty"`
	CreatedOn   Time       `json:"created_on"`
	ActivatedOn Time       `json:"activated_on"`
	Flags       []string   `json:"flags,omitempty"`
	Type        string     `json:"type,omitempty"`
	// ProfileID, Name, Avatar and Link appear in client models and in the
	// user object of some member items; UNCONFIRMED on GET /user/ itself.
	ProfileID int64  `json:"profile_id,omitempty"`
	Name      string `json:"name,omitempty"`
	Avatar    int64  `json:"avatar,omitempty"`
	Link      string `json:"link,omitempty"`
	// Invites is only in GET /user/status; its shape is undocumented.
	Invites json.RawMessage `json:"invites,omitempty"`
	// Raw is the object exactly as Podio sent it; the adapter returns it as remote_data.
	Raw json.RawMessage `json:"-"`
}

// UnmarshalJSON decodes the account and keeps a copy of the JSON in Raw.
func (u *User) UnmarshalJSON(data []byte) error {
	type plain User
	return unmarshalRaw(data, (*plain)(u), &u.Raw)
}

// Referral is the referral block of GET /user/status.
type Referral struct {
	Code   string `json:"code"`
	Status string `json:"status"`
}

// UserStatus is the answer of GET /user/status: the account, the own profile
// and counters. It is the cheapest call that yields both the user id and the
// display name.
type UserStatus struct {
	User               *User           `json:"user"`
	Profile            *Contact        `json:"profile"`
	Properties         json.RawMessage `json:"properties,omitempty"`
	Referral           *Referral       `json:"referral,omitempty"`
	Flags              []string        `json:"flags,omitempty"`
	Betas              []string        `json:"betas,omitempty"`
	InboxNew           int             `json:"inbox_new"`
	MessageUnreadCount int             `json:"message_unread_count"`
	CalendarCode       string          `json:"calendar_code,omitempty"`
	Mailbox            string          `json:"mailbox,omitempty"`
	// Raw is the object exactly as Podio sent it; the adapter returns it as remote_data.
	Raw json.RawMessage `json:"-"`
}

// UnmarshalJSON decodes the status and keeps a copy of the JSON in Raw.
func (s *UserStatus) UnmarshalJSON(data []byte) error {
	type plain UserStatus
	return unmarshalRaw(data, (*plain)(s), &s.Raw)
}

// Get calls GET /user/ and returns the current user's account.
func (s *UsersService) Get(ctx context.Context) (*User, *Response, error) {
	u := new(User)
	resp, err := (*service)(s).get(ctx, "user/", u)
	if err != nil {
		return nil, resp, err
	}
	return u, resp, nil
}

// Status calls GET /user/status and returns the current user's account,
// profile and counters.
func (s *UsersService) Status(ctx context.Context) (*UserStatus, *Response, error) {
	st := new(UserStatus)
	resp, err := (*service)(s).get(ctx, "user/status", st)
	if err != nil {
		return nil, resp, err
	}
	return st, resp, nil
}

// userUpdatePath is the operation that changes the current user's locale and time zone. It is
// UNCONFIRMED: podio-api.md does not document it and no developers.podio.com page was found; the
// official Ruby client's User.update sends the account's attributes to PUT /user/. Should Podio
// turn out to use another path, this is the one place to change.
const userUpdatePath = "user/"

// UserUpdate changes settings of the current user's account. Empty fields are not sent, so they
// stay as they are.
type UserUpdate struct {
	// Locale is a Podio locale such as "en_GB" or "da_DK".
	Locale string `json:"locale,omitempty"`
	// Timezone is an IANA time zone name such as "Europe/Copenhagen".
	Timezone string `json:"timezone,omitempty"`
}

// Update calls PUT /user/ (UNCONFIRMED, see userUpdatePath) to change the current user's locale
// and time zone. Podio lets a person change only their own account, so no user id is given.
func (s *UsersService) Update(ctx context.Context, body *UserUpdate) (*Response, error) {
	if body == nil || *body == (UserUpdate{}) {
		return nil, errors.New("podio: updating the user: nothing to change")
	}
	req, err := s.client.NewRequest(http.MethodPut, userUpdatePath, body)
	if err != nil {
		return nil, err
	}
	return s.client.Do(ctx, req, nil)
}

// ProfileUpdate changes fields of the current user's own profile (the contact object,
// podio-api.md §3.4). Fields left empty are not sent, so Podio keeps them; to clear a field use
// UpdateProfileField with a nil value. Multi-valued fields are lists, as Podio stores them.
type ProfileUpdate struct {
	Name         string   `json:"name,omitempty"`
	Title        []string `json:"title,omitempty"`
	Location     []string `json:"location,omitempty"`
	Phone        []string `json:"phone,omitempty"`
	Address      []string `json:"address,omitempty"`
	URL          []string `json:"url,omitempty"`
	Skill        []string `json:"skill,omitempty"`
	IM           []string `json:"im,omitempty"`
	About        string   `json:"about,omitempty"`
	Organization string   `json:"organization,omitempty"`
	Department   string   `json:"department,omitempty"`
	Zip          string   `json:"zip,omitempty"`
	City         string   `json:"city,omitempty"`
	State        string   `json:"state,omitempty"`
	Country      string   `json:"country,omitempty"`
	Skype        string   `json:"skype,omitempty"`
	LinkedIn     string   `json:"linkedin,omitempty"`
	Twitter      string   `json:"twitter,omitempty"`
}

// UpdateProfile calls PUT /user/profile/ to change fields of the current user's own profile;
// fields not given stay as they are.
func (s *UsersService) UpdateProfile(ctx context.Context, body *ProfileUpdate) (*Response, error) {
	if body == nil {
		return nil, errors.New("podio: updating the profile: nil request")
	}
	b, err := json.Marshal(body)
	if err != nil {
		return nil, fmt.Errorf("podio: encoding profile update: %w", err)
	}
	if string(b) == "{}" {
		return nil, errors.New("podio: updating the profile: nothing to change")
	}
	req, err := s.client.NewRequest(http.MethodPut, "user/profile/", body)
	if err != nil {
		return nil, err
	}
	return s.client.Do(ctx, req, nil)
}

// UpdateProfileField calls PUT /user/profile/{key} with {"value": value} to change one field of
// the current user's own profile; a nil value clears the field.
func (s *UsersService) UpdateProfileField(ctx context.Context, key string, value any) (*Response, error) {
	if key == "" {
		return nil, errors.New("podio: updating a profile field: no key")
	}
	body := struct {
		Value any `json:"value"`
	}{value}
	req, err := s.client.NewRequest(http.MethodPut, "user/profile/"+url.PathEscape(key), body)
	if err != nil {
		return nil, err
	}
	return s.client.Do(ctx, req, nil)
}
