package podio

import (
	"context"
	"encoding/json"
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
