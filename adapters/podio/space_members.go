package podio

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"net/http"
	"net/url"
	"strconv"
)

// SpaceMembersService handles space memberships (podio-api.md §7).
type SpaceMembersService service

// Space roles.
const (
	RoleLight   = "light"
	RoleRegular = "regular"
	RoleAdmin   = "admin"
)

// SpaceMember is a space membership as returned by GET
// /space/{space_id}/member/ (user, profile, role) and GET
// /space/{space_id}/member/{user_id} (user, role and the dates).
type SpaceMember struct {
	User      *User    `json:"user,omitempty"`
	Profile   *Contact `json:"profile,omitempty"`
	Space     *Space   `json:"space,omitempty"`
	Role      string   `json:"role,omitempty"`
	Employee  bool     `json:"employee,omitempty"`
	IsPartner bool     `json:"is_partner,omitempty"`
	Grants    int      `json:"grants,omitempty"`
	InvitedOn Time     `json:"invited_on"`
	StartedOn Time     `json:"started_on"`
	// EndedOn is zero for an active membership.
	EndedOn Time `json:"ended_on"`
}

// SpaceMemberV2 is an item of GET /space/{space_id}/member/v2/.
type SpaceMemberV2 struct {
	// Profile is the member's profile. Podio's docs call the key "user",
	// clients decode "profile"; both are read, "profile" first.
	Profile  *Contact `json:"profile"`
	Employee bool     `json:"employee"`
	// Role may be empty (podio-api.md §7.1).
	Role string `json:"role"`
	// Grants is the number of grants the user has on the space.
	Grants int `json:"grants"`
	// Raw is the object exactly as Podio sent it; the adapter returns it as remote_data.
	Raw json.RawMessage `json:"-"`
}

// UnmarshalJSON reads "profile" and falls back to "user", and keeps a copy of
// the JSON in Raw.
func (m *SpaceMemberV2) UnmarshalJSON(data []byte) error {
	if isNull(data) {
		return nil
	}
	type plain SpaceMemberV2
	var v struct {
		plain
		User *Contact `json:"user"`
	}
	if err := json.Unmarshal(data, &v); err != nil {
		return err
	}
	*m = SpaceMemberV2(v.plain)
	if m.Profile == nil {
		m.Profile = v.User
	}
	m.Raw = bytes.Clone(data)
	return nil
}

// SpaceMembersOptions are the query parameters of GET
// /space/{space_id}/member/v2/. Zero values are not sent.
type SpaceMembersOptions struct {
	// Offset is the number of members to skip.
	Offset int
	// Limit is the page size (Podio's default is 100).
	Limit int
	// MemberType is one of employee, external, admin, regular, light, guest.
	MemberType string
	// Query is a free-text filter.
	Query string
}

func (o *SpaceMembersOptions) values() url.Values {
	v := url.Values{}
	if o == nil {
		return v
	}
	if o.Offset > 0 {
		v.Set("offset", strconv.Itoa(o.Offset))
	}
	if o.Limit > 0 {
		v.Set("limit", strconv.Itoa(o.Limit))
	}
	if o.MemberType != "" {
		v.Set("member_type", o.MemberType)
	}
	if o.Query != "" {
		v.Set("query", o.Query)
	}
	return v
}

// AddSpaceMembersRequest is the body of POST /space/{space_id}/member/.
type AddSpaceMembersRequest struct {
	// Role is given to every added user: light, regular or admin.
	Role string `json:"role,omitempty"`
	// Message is a personal note in the invitation.
	Message  string   `json:"message,omitempty"`
	Users    []int64  `json:"users,omitempty"`
	Profiles []int64  `json:"profiles,omitempty"`
	Mails    []string `json:"mails,omitempty"`
	// ExternalContacts maps a linked account id to external contact ids.
	ExternalContacts map[string][]int64 `json:"external_contacts,omitempty"`
	// ExternalUserInvite invites as external client rather than employee.
	ExternalUserInvite bool   `json:"external_user_invite,omitempty"`
	ContextRefType     string `json:"context_ref_type,omitempty"`
	ContextRefID       int64  `json:"context_ref_id,omitempty"`
	InviteContext      string `json:"invite_context,omitempty"`
}

// ListActive calls GET /space/{space_id}/member/ (v1) and returns all active
// members in one list; the endpoint has no documented paging.
func (s *SpaceMembersService) ListActive(ctx context.Context, spaceID int64) ([]*SpaceMember, *Response, error) {
	var members []*SpaceMember
	resp, err := (*service)(s).get(ctx, fmt.Sprintf("space/%d/member/", spaceID), &members)
	if err != nil {
		return nil, resp, err
	}
	return members, resp, nil
}

// List calls GET /space/{space_id}/member/v2/ and returns one page of
// members.
func (s *SpaceMembersService) List(ctx context.Context, spaceID int64, opts *SpaceMembersOptions) ([]*SpaceMemberV2, *Response, error) {
	var members []*SpaceMemberV2
	path := withQuery(fmt.Sprintf("space/%d/member/v2/", spaceID), opts.values())
	resp, err := (*service)(s).get(ctx, path, &members)
	if err != nil {
		return nil, resp, err
	}
	return members, resp, nil
}

// All walks GET /space/{space_id}/member/v2/ page by page, starting at
// opts.Offset with page size opts.Limit (zero means DefaultPageSize; see
// there for why a limit above the server's cap is dangerous). It advances
// the offset by the length of each page and stops after a page shorter than
// the limit. On failure it yields the error once and stops.
func (s *SpaceMembersService) All(ctx context.Context, spaceID int64, opts *SpaceMembersOptions) iter.Seq2[*SpaceMemberV2, error] {
	o := SpaceMembersOptions{}
	if opts != nil {
		o = *opts
	}
	o.Limit = pageSize(o.Limit)
	return paginate(o.Offset, o.Limit, func(offset int) ([]*SpaceMemberV2, error) {
		o.Offset = offset
		page, _, err := s.List(ctx, spaceID, &o)
		return page, err
	})
}

// Get calls GET /space/{space_id}/member/{user_id} and returns the user's
// active membership.
func (s *SpaceMembersService) Get(ctx context.Context, spaceID, userID int64) (*SpaceMember, *Response, error) {
	m := new(SpaceMember)
	resp, err := (*service)(s).get(ctx, fmt.Sprintf("space/%d/member/%d", spaceID, userID), m)
	if err != nil {
		return nil, resp, err
	}
	return m, resp, nil
}

// Add calls POST /space/{space_id}/member/ to add or invite users, profiles
// or e-mail addresses. Podio answers 403 when the org's user limit is
// reached.
func (s *SpaceMembersService) Add(ctx context.Context, spaceID int64, body *AddSpaceMembersRequest) (*Response, error) {
	if body == nil {
		return nil, errors.New("podio: adding space members: nil request")
	}
	req, err := s.client.NewRequest(http.MethodPost, fmt.Sprintf("space/%d/member/", spaceID), body)
	if err != nil {
		return nil, err
	}
	return s.client.Do(ctx, req, nil)
}

// UpdateRole calls PUT /space/{space_id}/member/{user_ids} to give every
// user in userIDs the role (light, regular or admin).
func (s *SpaceMembersService) UpdateRole(ctx context.Context, spaceID int64, userIDs []int64, role string) (*Response, error) {
	if len(userIDs) == 0 {
		return nil, errors.New("podio: updating space member role: no user ids")
	}
	body := struct {
		Role string `json:"role"`
	}{role}
	req, err := s.client.NewRequest(http.MethodPut, fmt.Sprintf("space/%d/member/%s", spaceID, joinIDs(userIDs)), body)
	if err != nil {
		return nil, err
	}
	return s.client.Do(ctx, req, nil)
}

// End calls DELETE /space/{space_id}/member/{user_ids} to end the
// memberships of userIDs, invited ones included.
func (s *SpaceMembersService) End(ctx context.Context, spaceID int64, userIDs []int64) (*Response, error) {
	if len(userIDs) == 0 {
		return nil, errors.New("podio: ending space memberships: no user ids")
	}
	req, err := s.client.NewRequest(http.MethodDelete, fmt.Sprintf("space/%d/member/%s", spaceID, joinIDs(userIDs)), nil)
	if err != nil {
		return nil, err
	}
	return s.client.Do(ctx, req, nil)
}
