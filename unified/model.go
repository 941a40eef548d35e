package unified

import (
	"encoding/json"
	"time"
)

// User statuses.
const (
	StatusActive   = "active"
	StatusInactive = "inactive"
	StatusInvited  = "invited"
	StatusDeleted  = "deleted"
)

// Workspace statuses.
const (
	WorkspaceActive   = "active"
	WorkspaceArchived = "archived"
)

// Scopes a role applies in.
const (
	ScopeOrganization = "organization"
	ScopeWorkspace    = "workspace"
)

// User is a person in the directory. Optional fields are pointers and encode as null when the
// provider does not say; Workspaces is nil (null) when the listing that produced the user does not
// know the person's workspaces, and empty when it knows there are none.
type User struct {
	ID           string          `json:"id"`
	Name         string          `json:"name"`
	FirstName    *string         `json:"first_name"`
	LastName     *string         `json:"last_name"`
	Emails       []Email         `json:"emails"`
	Status       string          `json:"status"`
	Title        *string         `json:"title"`
	Avatar       *string         `json:"avatar"`
	IsEmployee   *bool           `json:"is_employee"`
	Timezone     *string         `json:"timezone"`
	Locale       *string         `json:"locale"`
	Roles        []UserRole      `json:"roles"`
	Workspaces   []UserWorkspace `json:"workspaces"`
	LastActiveAt *time.Time      `json:"last_active_at"`
	CreatedAt    *time.Time      `json:"created_at"`
	RemoteData   []RemoteData    `json:"remote_data,omitempty"`
}

// Email is one address of a user.
type Email struct {
	Email     string `json:"email"`
	Type      string `json:"type"` // "work" for Podio addresses
	IsPrimary bool   `json:"is_primary"`
}

// UserRole is a role a user holds in one organization or workspace. ID is a Role.ID from the
// catalog (Roles).
type UserRole struct {
	ID             string  `json:"id"`
	Name           string  `json:"name"`
	ApplicableIn   string  `json:"applicable_in"`
	OrganizationID *string `json:"organization_id,omitempty"`
	WorkspaceID    *string `json:"workspace_id,omitempty"`
}

// UserWorkspace is a workspace a user belongs to, with the user's role there (a Role.ID).
type UserWorkspace struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	Role string `json:"role"`
}

// Me is the linked person: the User fields plus the organizations they belong to.
type Me struct {
	User
	Organizations []MeOrganization `json:"organizations"`
}

// MeOrganization is an organization of the linked person, with their role there (a Role.ID).
type MeOrganization struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	Role string `json:"role"`
}

// Organization is a provider organization as the linked person sees it. Role is the linked
// person's role (a Role.ID).
type Organization struct {
	ID          string       `json:"id"`
	Name        string       `json:"name"`
	URL         *string      `json:"url"`
	Status      string       `json:"status"`
	PricingPlan *string      `json:"pricing_plan"`
	Role        *string      `json:"role"`
	MemberCount *int         `json:"member_count"`
	CreatedAt   *time.Time   `json:"created_at"`
	RemoteData  []RemoteData `json:"remote_data,omitempty"`
}

// Workspace is a workspace (a Podio space). Role is the linked person's role (a Role.ID), null
// when they are not a member.
type Workspace struct {
	ID           string       `json:"id"`
	Name         string       `json:"name"`
	Description  *string      `json:"description"`
	URL          *string      `json:"url"`
	Status       string       `json:"status"`
	Privacy      *string      `json:"privacy"`
	Organization OrgRef       `json:"organization"`
	Role         *string      `json:"role"`
	MemberCount  *int         `json:"member_count"`
	CreatedAt    *time.Time   `json:"created_at"`
	RemoteData   []RemoteData `json:"remote_data,omitempty"`
}

// OrgRef names an organization.
type OrgRef struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// Role is an entry of the role catalog.
type Role struct {
	ID           string   `json:"id"`
	Name         string   `json:"name"`
	Description  string   `json:"description"`
	ApplicableIn string   `json:"applicable_in"`
	Permissions  []string `json:"permissions"`
}

// RemoteData is one raw provider object an item was built from: the provider path it came from
// (e.g. "/org/3001/member/") and the object exactly as the provider sent it.
type RemoteData struct {
	Path string          `json:"path"`
	Data json.RawMessage `json:"data"`
}
