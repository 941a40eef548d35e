package podiosim

import (
	"fmt"
	"time"
)

// dt marshals as a Podio datetime ("YYYY-MM-DD HH:MM:SS", UTC) or null when zero.
type dt time.Time

// MarshalJSON implements json.Marshaler.
func (t dt) MarshalJSON() ([]byte, error) {
	if time.Time(t).IsZero() {
		return []byte("null"), nil
	}
	return []byte(`"` + time.Time(t).UTC().Format(datetimeLayout) + `"`), nil
}

type imageOut struct {
	FileID        int64  `json:"file_id"`
	Link          string `json:"link"`
	ThumbnailLink string `json:"thumbnail_link"`
	HostedBy      string `json:"hosted_by"`
}

func image(fileID int64) *imageOut {
	if fileID == 0 {
		return nil
	}
	l := fmt.Sprintf("https://files.podio.com/%d", fileID)
	return &imageOut{FileID: fileID, Link: l, ThumbnailLink: l, HostedBy: "podio"}
}

func avatarPtr(fileID int64) *int64 {
	if fileID == 0 {
		return nil
	}
	return &fileID
}

// profileOut is the contact object of podio-api.md §3.4; mail, title, phone and location are
// always arrays. The other editable fields appear only when set.
type profileOut struct {
	ProfileID    int64     `json:"profile_id"`
	UserID       int64     `json:"user_id"`
	Type         string    `json:"type"`
	Name         string    `json:"name"`
	Avatar       *int64    `json:"avatar"`
	Image        *imageOut `json:"image"`
	Mail         []string  `json:"mail"`
	Title        []string  `json:"title"`
	Phone        []string  `json:"phone"`
	Location     []string  `json:"location"`
	Address      []string  `json:"address,omitempty"`
	URL          []string  `json:"url,omitempty"`
	Skill        []string  `json:"skill,omitempty"`
	IM           []string  `json:"im,omitempty"`
	About        string    `json:"about,omitempty"`
	Organization string    `json:"organization,omitempty"`
	Department   string    `json:"department,omitempty"`
	Zip          string    `json:"zip,omitempty"`
	City         string    `json:"city,omitempty"`
	State        string    `json:"state,omitempty"`
	Country      string    `json:"country,omitempty"`
	Skype        string    `json:"skype,omitempty"`
	LinkedIn     string    `json:"linkedin,omitempty"`
	Twitter      string    `json:"twitter,omitempty"`
	Link         string    `json:"link"`
	IsEmployee   bool      `json:"is_employee"`
	LastSeenOn   dt        `json:"last_seen_on"`
	Rights       []string  `json:"rights"`
}

// minimalProfileOut is what Podio shows for invitees: no picture, title, phone or activity.
type minimalProfileOut struct {
	ProfileID int64    `json:"profile_id"`
	UserID    int64    `json:"user_id"`
	Type      string   `json:"type"`
	Name      string   `json:"name"`
	Avatar    *int64   `json:"avatar"`
	Mail      []string `json:"mail"`
}

func arr(v string) []string {
	if v == "" {
		return []string{}
	}
	return []string{v}
}

// orEmpty renders a multi-valued field that is always present: [] rather than null.
func orEmpty(v []string) []string {
	if v == nil {
		return []string{}
	}
	return v
}

func profileJSON(p *person) any {
	if p.invitee() {
		return minimalProfileOut{ProfileID: p.profileID, UserID: p.userID, Type: "user", Name: p.name, Mail: arr(p.mail)}
	}
	return profileOut{
		ProfileID: p.profileID, UserID: p.userID, Type: "user", Name: p.name,
		Avatar: avatarPtr(p.avatar), Image: image(p.avatar),
		Mail: arr(p.mail), Title: orEmpty(p.title), Phone: orEmpty(p.phone), Location: orEmpty(p.location),
		Address: p.address, URL: p.url, Skill: p.skill, IM: p.im,
		About: p.about, Organization: p.organization, Department: p.department, Zip: p.zip, City: p.city,
		State: p.state, Country: p.country, Skype: p.skype, LinkedIn: p.linkedin, Twitter: p.twitter,
		Link:       fmt.Sprintf("https://podio.com/users/%d", p.userID),
		IsEmployee: p.employee, LastSeenOn: dt(p.lastSeenOn), Rights: []string{"view"},
	}
}

type userMailOut struct {
	Mail     string `json:"mail"`
	Verified bool   `json:"verified"`
	Primary  bool   `json:"primary"`
	Disabled bool   `json:"disabled"`
}

// userOut is the account object of GET /user/ (podio-api.md §3.1).
type userOut struct {
	UserID      int64         `json:"user_id"`
	ProfileID   int64         `json:"profile_id"`
	Name        string        `json:"name"`
	Mail        string        `json:"mail"`
	Mails       []userMailOut `json:"mails"`
	Status      string        `json:"status"`
	Locale      string        `json:"locale"`
	Timezone    string        `json:"timezone"`
	CreatedOn   dt            `json:"created_on"`
	ActivatedOn dt            `json:"activated_on"`
	Flags       []string      `json:"flags"`
	Type        string        `json:"type"`
	Avatar      *int64        `json:"avatar"`
	Link        string        `json:"link"`
}

func userJSON(p *person) userOut {
	return userOut{
		UserID: p.userID, ProfileID: p.profileID, Name: p.name, Mail: p.mail,
		Mails:  []userMailOut{{Mail: p.mail, Verified: !p.invitee(), Primary: true}},
		Status: p.status, Locale: p.locale, Timezone: p.timezone,
		CreatedOn: dt(p.createdOn), ActivatedOn: dt(p.activatedOn), Flags: []string{}, Type: "user",
		Avatar: avatarPtr(p.avatar), Link: fmt.Sprintf("https://podio.com/users/%d", p.userID),
	}
}

// memberUserOut is the "user" of org member items: at least user_id and mail (§5.1, §5.2).
type memberUserOut struct {
	UserID int64  `json:"user_id"`
	Mail   string `json:"mail"`
	Status string `json:"status"`
}

// bylineOut is a created_by byline (podio-api.md §4.2).
type bylineOut struct {
	Type       string    `json:"type"`
	ID         int64     `json:"id"`
	AvatarType string    `json:"avatar_type"`
	AvatarID   *int64    `json:"avatar_id"`
	Image      *imageOut `json:"image"`
	Name       string    `json:"name"`
	URL        string    `json:"url"`
	Avatar     *int64    `json:"avatar"`
	LastSeenOn dt        `json:"last_seen_on"`
}

func (s *Server) byline(userID int64) bylineOut {
	b := bylineOut{Type: "user", ID: userID, AvatarType: "file", URL: fmt.Sprintf("https://podio.com/users/%d", userID)}
	if p := s.ds.people[userID]; p != nil {
		b.Name, b.AvatarID, b.Avatar, b.Image, b.LastSeenOn = p.name, avatarPtr(p.avatar), avatarPtr(p.avatar), image(p.avatar), dt(p.lastSeenOn)
	}
	return b
}

// orgOut is the organization object (podio-api.md §4.1, §4.2).
type orgOut struct {
	OrgID          int64     `json:"org_id"`
	Name           string    `json:"name"`
	URL            string    `json:"url"`
	URLLabel       string    `json:"url_label"`
	Status         string    `json:"status"`
	Type           string    `json:"type"`
	Premium        bool      `json:"premium"`
	Role           *string   `json:"role"`
	Rights         []string  `json:"rights"`
	Logo           *int64    `json:"logo"`
	Image          *imageOut `json:"image"`
	UserLimit      int       `json:"user_limit"`
	Domains        []string  `json:"domains"`
	Rank           int       `json:"rank"`
	Tier           string    `json:"tier"`
	Segment        string    `json:"segment"`
	SalesAgentID   *int64    `json:"sales_agent_id"`
	TrialExpiredOn dt        `json:"trial_expired_on"`
	MemberCount    int       `json:"member_count"`
	ContactCount   int       `json:"contact_count"`
	GrantsCount    int       `json:"grants_count"`
	AllowAddSpace  bool      `json:"allow_add_space"`
	CreateRight    bool      `json:"create_right"`
	CreatedOn      dt        `json:"created_on"`
	CreatedBy      bylineOut `json:"created_by"`
}

func (s *Server) orgJSON(o *org, callerID int64) orgOut {
	active := 0
	for _, m := range o.members {
		if !m.invited {
			active++
		}
	}
	logo := 70000000 + o.id
	out := orgOut{
		OrgID: o.id, Name: o.name, URL: "https://podio.com/" + o.label, URLLabel: o.label,
		Status: "active", Type: "premium", Premium: true, Logo: &logo, Image: image(logo),
		UserLimit: o.userLimit, Domains: []string{o.label + ".example"}, Rank: 1, Tier: "premium",
		Segment: "business", MemberCount: active, ContactCount: active, AllowAddSpace: true,
		CreatedOn: dt(o.createdOn), CreatedBy: s.byline(o.createdBy), Rights: []string{"view"},
	}
	if m := o.members[callerID]; m != nil {
		role := m.role
		out.Role = &role
		if m.role == "admin" {
			out.Rights = []string{"view", "update", "add_space", "add_member", "delete_member"}
		} else {
			out.Rights = []string{"view", "add_space"}
		}
		out.CreateRight = true
	}
	return out
}

type orgRefOut struct {
	OrgID   int64  `json:"org_id"`
	Name    string `json:"name"`
	URL     string `json:"url"`
	Logo    int64  `json:"logo"`
	Premium bool   `json:"premium"`
	Type    string `json:"type"`
}

// spaceOut is the space object (podio-api.md §6.2). Name is a pointer so all_spaces can hide it.
type spaceOut struct {
	SpaceID         int64     `json:"space_id"`
	Name            *string   `json:"name"`
	Description     string    `json:"description"`
	URL             string    `json:"url"`
	URLLabel        string    `json:"url_label"`
	OrgID           int64     `json:"org_id"`
	Org             orgRefOut `json:"org"`
	Role            *string   `json:"role"`
	Rights          []string  `json:"rights"`
	Privacy         string    `json:"privacy"`
	AutoJoin        bool      `json:"auto_join"`
	PostOnNewApp    bool      `json:"post_on_new_app"`
	PostOnNewMember bool      `json:"post_on_new_member"`
	Subscribed      bool      `json:"subscribed"`
	Premium         bool      `json:"premium"`
	Archived        bool      `json:"archived"`
	IsOverdue       bool      `json:"is_overdue"`
	Top             bool      `json:"top"`
	Type            string    `json:"type"`
	MemberCount     int       `json:"member_count"`
	ContactCount    int       `json:"contact_count"`
	AppCount        int       `json:"app_count"`
	Rank            int       `json:"rank"`
	CreatedOn       dt        `json:"created_on"`
	CreatedBy       bylineOut `json:"created_by"`
	LastActivityOn  dt        `json:"last_activity_on"`
	Owner           refOut    `json:"owner"`
	Push            pushOut   `json:"push"`
}

type refOut struct {
	Type string `json:"type"`
	ID   int64  `json:"id"`
}

type pushOut struct {
	Channel   string `json:"channel"`
	Signature string `json:"signature"`
	Timestamp int64  `json:"timestamp"`
	ExpiresIn int    `json:"expires_in"`
}

// spaceRights are illustrative right names per role (the real list is UNCONFIRMED).
var spaceRights = map[string][]string{
	"admin":   {"view", "add_app", "add_member", "update", "delete", "add_task", "add_status"},
	"regular": {"view", "add_app", "add_member", "add_task", "add_status"},
	"light":   {"view", "add_task", "add_status"},
	"":        {"view", "join"},
}

func (s *Server) spaceJSON(sp *space, callerID int64, now time.Time) spaceOut {
	o := s.ds.orgs[sp.orgID]
	name := sp.name
	active := 0
	for _, m := range sp.members {
		if !m.invited {
			active++
		}
	}
	out := spaceOut{
		SpaceID: sp.id, Name: &name, Description: sp.description,
		URL: "https://podio.com/" + o.label + "/" + sp.label, URLLabel: sp.label, OrgID: o.id,
		Org:     orgRefOut{OrgID: o.id, Name: o.name, URL: "https://podio.com/" + o.label, Logo: 70000000 + o.id, Premium: true, Type: "premium"},
		Privacy: sp.privacy, PostOnNewApp: true, PostOnNewMember: true, Premium: true, Archived: sp.archived,
		Type: "regular", MemberCount: active, ContactCount: active, AppCount: 3, Rank: 1,
		CreatedOn: dt(sp.createdOn), CreatedBy: s.byline(sp.createdBy), LastActivityOn: dt(sp.lastActivity),
		Owner: refOut{Type: "user", ID: sp.createdBy},
		Push:  pushOut{Channel: fmt.Sprintf("/space/%d", sp.id), Signature: "sim", Timestamp: now.Unix(), ExpiresIn: 21600},
	}
	role := ""
	if m := sp.members[callerID]; m != nil && !m.invited {
		role = m.role
		out.Role = &role
		out.Subscribed = true
	}
	out.Rights = append([]string(nil), spaceRights[role]...)
	return out
}
