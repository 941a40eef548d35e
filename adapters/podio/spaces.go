package podio

import (
	"context"
	"encoding/json"
	"fmt"
)

// SpacesService handles spaces (workspaces), podio-api.md §6.
type SpacesService service

// Reference is a simple typed reference, e.g. a space owner.
type Reference struct {
	Type string `json:"type"`
	ID   int64  `json:"id"`
}

// Push is the push-channel block Podio attaches to some objects.
type Push struct {
	Channel   string `json:"channel,omitempty"`
	Signature string `json:"signature,omitempty"`
	Timestamp int64  `json:"timestamp,omitempty"`
	ExpiresIn int    `json:"expires_in,omitempty"`
}

// Space is a Podio space (workspace). Space entries embedded in other
// answers carry only some fields.
type Space struct {
	SpaceID     int64         `json:"space_id"`
	Name        string        `json:"name"`
	Description string        `json:"description,omitempty"`
	URL         string        `json:"url,omitempty"`
	URLLabel    string        `json:"url_label,omitempty"`
	OrgID       int64         `json:"org_id,omitempty"`
	Org         *Organization `json:"org,omitempty"`
	// Role is the current user's role in the space: admin, regular or light.
	Role            string     `json:"role,omitempty"`
	Rights          []string   `json:"rights,omitempty"`
	Privacy         string     `json:"privacy,omitempty"`
	AutoJoin        bool       `json:"auto_join,omitempty"`
	PostOnNewApp    bool       `json:"post_on_new_app,omitempty"`
	PostOnNewMember bool       `json:"post_on_new_member,omitempty"`
	Subscribed      bool       `json:"subscribed,omitempty"`
	Premium         bool       `json:"premium,omitempty"`
	Archived        bool       `json:"archived,omitempty"`
	IsOverdue       bool       `json:"is_overdue,omitempty"`
	Top             bool       `json:"top,omitempty"`
	Type            string     `json:"type,omitempty"`
	MemberCount     int        `json:"member_count,omitempty"`
	ContactCount    int        `json:"contact_count,omitempty"`
	AppCount        int        `json:"app_count,omitempty"`
	Rank            int        `json:"rank,omitempty"`
	CreatedOn       Time       `json:"created_on"`
	LastActivityOn  Time       `json:"last_activity_on"`
	CreatedBy       *ByLine    `json:"created_by,omitempty"`
	Owner           *Reference `json:"owner,omitempty"`
	Push            *Push      `json:"push,omitempty"`
	// Raw is the object exactly as Podio sent it; the adapter returns it as remote_data.
	Raw json.RawMessage `json:"-"`
}

// UnmarshalJSON decodes the space and keeps a copy of the JSON in Raw.
func (s *Space) UnmarshalJSON(data []byte) error {
	type plain Space
	return unmarshalRaw(data, (*plain)(s), &s.Raw)
}

// Get calls GET /space/{space_id}.
func (s *SpacesService) Get(ctx context.Context, spaceID int64) (*Space, *Response, error) {
	sp := new(Space)
	resp, err := (*service)(s).get(ctx, fmt.Sprintf("space/%d", spaceID), sp)
	if err != nil {
		return nil, resp, err
	}
	return sp, resp, nil
}
