package unified

import "slices"

// Role ids of the catalog. Podio's organization roles are admin and regular; its workspace roles
// are admin, regular and light (podio-api.md §8).
const (
	RoleOrganizationAdmin   = "organization_admin"
	RoleOrganizationRegular = "organization_regular"
	RoleWorkspaceAdmin      = "workspace_admin"
	RoleWorkspaceRegular    = "workspace_regular"
	RoleWorkspaceLight      = "workspace_light"
)

var roles = []Role{
	{ID: RoleOrganizationAdmin, Name: "Organization admin", ApplicableIn: ScopeOrganization,
		Description: "Manages the organization: its members, admins and workspaces. Being an organization admin does not make someone a workspace admin.",
		Permissions: []string{"organization.read", "organization.members.read", "organization.members.manage", "organization.workspaces.manage"}},
	{ID: RoleOrganizationRegular, Name: "Organization member", ApplicableIn: ScopeOrganization,
		Description: "A member of the organization, with access to the workspaces they belong to.",
		Permissions: []string{"organization.read"}},
	{ID: RoleWorkspaceAdmin, Name: "Workspace admin", ApplicableIn: ScopeWorkspace,
		Description: "Everything a regular member can do, plus changing member roles, removing members and changing workspace settings.",
		Permissions: []string{"workspace.read", "items.write", "comments.write", "tasks.write", "apps.create", "members.invite", "data.export", "reports.create", "members.manage", "workspace.settings"}},
	{ID: RoleWorkspaceRegular, Name: "Workspace member", ApplicableIn: ScopeWorkspace,
		Description: "Everything a light member can do, plus creating apps, inviting members, exporting and creating reports.",
		Permissions: []string{"workspace.read", "items.write", "comments.write", "tasks.write", "apps.create", "members.invite", "data.export", "reports.create"}},
	{ID: RoleWorkspaceLight, Name: "Light member", ApplicableIn: ScopeWorkspace,
		Description: "Sees activity, adds and edits items, uploads files, comments and creates tasks; cannot create apps, invite people, export or create reports.",
		Permissions: []string{"workspace.read", "items.write", "comments.write", "tasks.write"}},
}

// Roles returns the role catalog: every role a user can hold, across scopes, in a fixed order.
// The result is a copy.
func Roles() []Role {
	out := make([]Role, len(roles))
	for i, r := range roles {
		r.Permissions = slices.Clone(r.Permissions)
		out[i] = r
	}
	return out
}

// RoleByID returns the catalog role with the given id.
func RoleByID(id string) (Role, bool) {
	for _, r := range roles {
		if r.ID == id {
			r.Permissions = slices.Clone(r.Permissions)
			return r, true
		}
	}
	return Role{}, false
}

// OrganizationRole returns the catalog role id for a provider organization role ("admin" or
// "regular"), or "" for none.
func OrganizationRole(providerRole string) string {
	switch providerRole {
	case "admin":
		return RoleOrganizationAdmin
	case "regular", "light":
		// Podio's organization model also lists "light"; it grants no more than regular.
		return RoleOrganizationRegular
	}
	return ""
}

// WorkspaceRole returns the catalog role id for a provider workspace role ("admin", "regular" or
// "light"), or "" for none.
func WorkspaceRole(providerRole string) string {
	switch providerRole {
	case "admin":
		return RoleWorkspaceAdmin
	case "regular":
		return RoleWorkspaceRegular
	case "light":
		return RoleWorkspaceLight
	}
	return ""
}

// NewUserRole builds a UserRole from a catalog id; the organization and workspace ids may be "".
func NewUserRole(id, organizationID, workspaceID string) UserRole {
	r, _ := RoleByID(id)
	ur := UserRole{ID: id, Name: r.Name, ApplicableIn: r.ApplicableIn}
	if organizationID != "" {
		ur.OrganizationID = &organizationID
	}
	if workspaceID != "" {
		ur.WorkspaceID = &workspaceID
	}
	return ur
}
