package podio

import (
	"context"
	"encoding/json"
	"fmt"
)

// ContactsService handles user profiles (contacts), podio-api.md §3.3-3.4.
type ContactsService service

// File is a Podio file reference, e.g. a profile image or org logo.
type File struct {
	FileID                int64  `json:"file_id"`
	Link                  string `json:"link,omitempty"`
	ThumbnailLink         string `json:"thumbnail_link,omitempty"`
	HostedBy              string `json:"hosted_by,omitempty"`
	HostedByHumanizedName string `json:"hosted_by_humanized_name,omitempty"`
	LinkTarget            string `json:"link_target,omitempty"`
}

// Contact is a Podio profile (contact object). Multi-valued fields are JSON
// arrays even with one value.
type Contact struct {
	ProfileID int64 `json:"profile_id"`
	// UserID is zero for contacts that are not users.
	UserID     int64    `json:"user_id,omitempty"`
	Name       string   `json:"name,omitempty"`
	Avatar     int64    `json:"avatar,omitempty"`
	Image      *File    `json:"image,omitempty"`
	Link       string   `json:"link,omitempty"`
	Type       string   `json:"type,omitempty"`
	SpaceID    int64    `json:"space_id,omitempty"`
	OrgID      int64    `json:"org_id,omitempty"`
	LastSeenOn Time     `json:"last_seen_on"`
	Rights     []string `json:"rights,omitempty"`

	Mail     []string `json:"mail,omitempty"`
	Phone    []string `json:"phone,omitempty"`
	Title    []string `json:"title,omitempty"`
	Address  []string `json:"address,omitempty"`
	Location []string `json:"location,omitempty"`
	URL      []string `json:"url,omitempty"`
	Skill    []string `json:"skill,omitempty"`
	IM       []string `json:"im,omitempty"`

	Organization string `json:"organization,omitempty"`
	Department   string `json:"department,omitempty"`
	About        string `json:"about,omitempty"`
	Zip          string `json:"zip,omitempty"`
	City         string `json:"city,omitempty"`
	State        string `json:"state,omitempty"`
	Country      string `json:"country,omitempty"`
	Birthdate    Date   `json:"birthdate"`
	Skype        string `json:"skype,omitempty"`
	LinkedIn     string `json:"linkedin,omitempty"`
	Twitter      string `json:"twitter,omitempty"`
	IsEmployee   bool   `json:"is_employee,omitempty"`
	ExternalID   string `json:"external_id,omitempty"`
	// Raw is the object exactly as Podio sent it; the adapter returns it as remote_data.
	Raw json.RawMessage `json:"-"`
}

// UnmarshalJSON decodes the profile and keeps a copy of the JSON in Raw.
func (c *Contact) UnmarshalJSON(data []byte) error {
	type plain Contact
	return unmarshalRaw(data, (*plain)(c), &c.Raw)
}

// GetUser calls GET /contact/user/{user_id} and returns another user's
// profile.
func (s *ContactsService) GetUser(ctx context.Context, userID int64) (*Contact, *Response, error) {
	c := new(Contact)
	resp, err := (*service)(s).get(ctx, fmt.Sprintf("contact/user/%d", userID), c)
	if err != nil {
		return nil, resp, err
	}
	return c, resp, nil
}
