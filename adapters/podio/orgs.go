package podio

import (
	"context"
	"encoding/json"
	"fmt"
	"iter"
	"net/http"
	"net/url"
	"strconv"
)

// OrgsService handles organizations and their members (podio-api.md §4-5).
type OrgsService service

// ByLine is a short reference to who created something.
type ByLine struct {
	Type       string `json:"type,omitempty"`
	ID         int64  `json:"id"`
	AvatarType string `json:"avatar_type,omitempty"`
	AvatarID   int64  `json:"avatar_id,omitempty"`
	Image      *File  `json:"image,omitempty"`
	Name       string `json:"name,omitempty"`
	URL        string `json:"url,omitempty"`
	Avatar     int64  `json:"avatar,omitempty"`
	LastSeenOn Time   `json:"last_seen_on"`
}

// Organization is a Podio organization. Items of GET /org/ also carry the
// spaces the user belongs to; the "org" reference inside a space carries only
// a few fields.
type Organization struct {
	OrgID          int64    `json:"org_id"`
	Name           string   `json:"name"`
	URL            string   `json:"url,omitempty"`
	URLLabel       string   `json:"url_label,omitempty"`
	Status         string   `json:"status,omitempty"`
	Logo           int64    `json:"logo,omitempty"`
	Image          *File    `json:"image,omitempty"`
	UserLimit      int      `json:"user_limit,omitempty"`
	Type           string   `json:"type,omitempty"`
	Segment        string   `json:"segment,omitempty"`
	Tier           string   `json:"tier,omitempty"`
	SalesAgentID   int64    `json:"sales_agent_id,omitempty"`
	Domains        []string `json:"domains,omitempty"`
	Role           string   `json:"role,omitempty"`
	Rights         []string `json:"rights,omitempty"`
	Premium        bool     `json:"premium,omitempty"`
	Rank           int      `json:"rank,omitempty"`
	MemberCount    int      `json:"member_count,omitempty"`
	ContactCount   int      `json:"contact_count,omitempty"`
	TrialExpiredOn Time     `json:"trial_expired_on"`
	CreatedOn      Time     `json:"created_on"`
	CreatedBy      *ByLine  `json:"created_by,omitempty"`
	// Spaces is set in GET /org/ items: the spaces of the org the current
	// user is a member of.
	Spaces []*Space `json:"spaces,omitempty"`
	// Raw is the object exactly as Podio sent it; the adapter returns it as remote_data.
	Raw json.RawMessage `json:"-"`
}

// UnmarshalJSON decodes the organization and keeps a copy of the JSON in Raw.
func (o *Organization) UnmarshalJSON(data []byte) error {
	type plain Organization
	return unmarshalRaw(data, (*plain)(o), &o.Raw)
}

// OrgMemberSpaces counts a member's space memberships in an org (the
// "spaces" object of GET /org/{org_id}/member/{user_id}).
type OrgMemberSpaces struct {
	Invited int `json:"invited"`
	Started int `json:"started"`
}

// OrgMember is a member of an organization. The list (GET
// /org/{org_id}/member/) sets SpaceMemberships; the single member calls set
// Spaces and Tier instead (podio-api.md §5.1-5.2, CONFLICT noted there).
// Invited members carry only minimal user and profile data.
type OrgMember struct {
	User     *User    `json:"user"`
	Profile  *Contact `json:"profile"`
	Employee bool     `json:"employee"`
	// Role is the org role, "regular" or "admin"; empty when Podio sends
	// none.
	Role string `json:"role,omitempty"`
	// Admin is in client models but not in the docs (UNCONFIRMED).
	Admin bool `json:"admin,omitempty"`
	// SpaceMemberships is the number of spaces in the org (list items).
	SpaceMemberships int `json:"space_memberships,omitempty"`
	// Tier is set by the single member calls, e.g. "gold".
	Tier string `json:"tier,omitempty"`
	// Spaces is set by the single member calls.
	Spaces *OrgMemberSpaces `json:"spaces,omitempty"`
	// Raw is the object exactly as Podio sent it; the adapter returns it as remote_data.
	Raw json.RawMessage `json:"-"`
}

// UnmarshalJSON decodes the member and keeps a copy of the JSON in Raw.
func (m *OrgMember) UnmarshalJSON(data []byte) error {
	type plain OrgMember
	return unmarshalRaw(data, (*plain)(m), &m.Raw)
}

// EndMemberInfo previews what ending an org membership does to the spaces
// (GET /org/{org_id}/member/{user_id}/end_member_info).
type EndMemberInfo struct {
	ToPromote []*SpaceMember `json:"to_promote"`
	ToRemove  []*SpaceMember `json:"to_remove"`
	ToDelete  []*SpaceMember `json:"to_delete"`
}

// OrgMembersOptions are the query parameters of GET /org/{org_id}/member/.
// Zero values are not sent.
type OrgMembersOptions struct {
	// Offset is the number of members to skip.
	Offset int
	// Limit is the page size; Podio documents no default or maximum.
	Limit int
	// Query is a free-text filter.
	Query string
	// SortBy is "name" (Podio's default) or "last_seen_on".
	SortBy string
	// SortDesc sorts descending (sent as sort_desc=1).
	SortDesc bool
	// MemberType is one of employee, external, admin, regular, guest,
	// premium.
	MemberType string
}

func (o *OrgMembersOptions) values() url.Values {
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
	if o.Query != "" {
		v.Set("query", o.Query)
	}
	if o.SortBy != "" {
		v.Set("sort_by", o.SortBy)
	}
	if o.SortDesc {
		v.Set("sort_desc", "1")
	}
	if o.MemberType != "" {
		v.Set("member_type", o.MemberType)
	}
	return v
}

// withQuery appends encoded query values to a path.
func withQuery(path string, v url.Values) string {
	if len(v) == 0 {
		return path
	}
	return path + "?" + v.Encode()
}

// List calls GET /org/ and returns the current user's organizations, each
// with the spaces the user belongs to.
func (s *OrgsService) List(ctx context.Context) ([]*Organization, *Response, error) {
	var orgs []*Organization
	resp, err := (*service)(s).get(ctx, "org/", &orgs)
	if err != nil {
		return nil, resp, err
	}
	return orgs, resp, nil
}

// Get calls GET /org/{org_id}.
func (s *OrgsService) Get(ctx context.Context, orgID int64) (*Organization, *Response, error) {
	org := new(Organization)
	resp, err := (*service)(s).get(ctx, fmt.Sprintf("org/%d", orgID), org)
	if err != nil {
		return nil, resp, err
	}
	return org, resp, nil
}

// ListMembers calls GET /org/{org_id}/member/ and returns one page of
// members, invited ones included. Only org admins may call it.
func (s *OrgsService) ListMembers(ctx context.Context, orgID int64, opts *OrgMembersOptions) ([]*OrgMember, *Response, error) {
	var members []*OrgMember
	path := withQuery(fmt.Sprintf("org/%d/member/", orgID), opts.values())
	resp, err := (*service)(s).get(ctx, path, &members)
	if err != nil {
		return nil, resp, err
	}
	return members, resp, nil
}

// DefaultPageSize is the page size the iterators use when the options leave
// Limit at zero. 100 is the documented default of the v2 space member list.
//
// A positive Limit is sent as given, so the page size is the caller's choice.
// Choose it with care: Podio documents no maximum limit for either paged
// list, and the walk ends at the first page shorter than the limit, so a
// server that silently capped a larger limit would end the walk early without
// an error.
const DefaultPageSize = 100

// pageSize is the limit an iterator requests.
func pageSize(limit int) int {
	if limit <= 0 {
		return DefaultPageSize
	}
	return limit
}

// AllMembers walks GET /org/{org_id}/member/ page by page, starting at
// opts.Offset with page size opts.Limit (zero means DefaultPageSize; see
// there for why a limit above the server's cap is dangerous). It advances the
// offset by the length of each page and stops after a page shorter than the
// limit (podio-api.md §5.1). On failure it yields the error once and stops.
// Members added or removed during the walk can shift pages.
func (s *OrgsService) AllMembers(ctx context.Context, orgID int64, opts *OrgMembersOptions) iter.Seq2[*OrgMember, error] {
	o := OrgMembersOptions{}
	if opts != nil {
		o = *opts
	}
	o.Limit = pageSize(o.Limit)
	return paginate(o.Offset, o.Limit, func(offset int) ([]*OrgMember, error) {
		o.Offset = offset
		page, _, err := s.ListMembers(ctx, orgID, &o)
		return page, err
	})
}

// paginate drives an offset/limit walk for the iterators.
func paginate[T any](offset, limit int, fetch func(offset int) ([]T, error)) iter.Seq2[T, error] {
	return func(yield func(T, error) bool) {
		for {
			page, err := fetch(offset)
			if err != nil {
				var zero T
				yield(zero, err)
				return
			}
			for _, item := range page {
				if !yield(item, nil) {
					return
				}
			}
			if len(page) < limit {
				return
			}
			offset += len(page)
		}
	}
}

// GetMember calls GET /org/{org_id}/member/{user_id}.
func (s *OrgsService) GetMember(ctx context.Context, orgID, userID int64) (*OrgMember, *Response, error) {
	m := new(OrgMember)
	resp, err := (*service)(s).get(ctx, fmt.Sprintf("org/%d/member/%d", orgID, userID), m)
	if err != nil {
		return nil, resp, err
	}
	return m, resp, nil
}

// GetMemberByMail calls GET /org/{org_id}/member/mail/{mail}; the address is
// path-escaped.
func (s *OrgsService) GetMemberByMail(ctx context.Context, orgID int64, mail string) (*OrgMember, *Response, error) {
	m := new(OrgMember)
	resp, err := (*service)(s).get(ctx, fmt.Sprintf("org/%d/member/mail/%s", orgID, url.PathEscape(mail)), m)
	if err != nil {
		return nil, resp, err
	}
	return m, resp, nil
}

// EndMemberInfo calls GET /org/{org_id}/member/{user_id}/end_member_info,
// the preview of EndMembership.
func (s *OrgsService) EndMemberInfo(ctx context.Context, orgID, userID int64) (*EndMemberInfo, *Response, error) {
	info := new(EndMemberInfo)
	resp, err := (*service)(s).get(ctx, fmt.Sprintf("org/%d/member/%d/end_member_info", orgID, userID), info)
	if err != nil {
		return nil, resp, err
	}
	return info, resp, nil
}

// EndMembership calls DELETE /org/{org_id}/member/{user_id}. This ends the
// user's membership of every space in the org; see EndMemberInfo.
func (s *OrgsService) EndMembership(ctx context.Context, orgID, userID int64) (*Response, error) {
	req, err := s.client.NewRequest(http.MethodDelete, fmt.Sprintf("org/%d/member/%d", orgID, userID), nil)
	if err != nil {
		return nil, err
	}
	return s.client.Do(ctx, req, nil)
}

// ListSpaces calls GET /org/{org_id}/space/ and returns the org's spaces
// visible to the current user.
func (s *OrgsService) ListSpaces(ctx context.Context, orgID int64) ([]*Space, *Response, error) {
	var spaces []*Space
	resp, err := (*service)(s).get(ctx, fmt.Sprintf("org/%d/space/", orgID), &spaces)
	if err != nil {
		return nil, resp, err
	}
	return spaces, resp, nil
}

// ListAllSpaces calls GET /org/{org_id}/all_spaces/, the admin view of all
// spaces (names hidden where the admin is not a member).
func (s *OrgsService) ListAllSpaces(ctx context.Context, orgID int64) ([]*Space, *Response, error) {
	var spaces []*Space
	resp, err := (*service)(s).get(ctx, fmt.Sprintf("org/%d/all_spaces/", orgID), &spaces)
	if err != nil {
		return nil, resp, err
	}
	return spaces, resp, nil
}
