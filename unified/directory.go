package unified

import (
	"cmp"
	"context"
	"slices"
	"strings"
)

// Directory reads one linked account's user directory from a provider. Lists are complete (the
// adapter walks every provider page), hold each id once and are sorted by CompareIDs; callers
// cache and page them. Ids are the provider's ids as strings; an id that cannot name an object answers
// ErrNotFound. Errors wrap the sentinels of this package or the adapter's typed upstream errors.
type Directory interface {
	// Me is the linked person with the organizations they belong to.
	Me(ctx context.Context) (*Me, error)
	// Organizations lists the linked person's organizations.
	Organizations(ctx context.Context) ([]Organization, error)
	// Organization returns one organization of the linked person.
	Organization(ctx context.Context, id string) (*Organization, error)
	// Workspaces lists the workspaces visible to the linked person in one organization, or in
	// all of their organizations when organizationID is "".
	Workspaces(ctx context.Context, organizationID string) ([]Workspace, error)
	// Workspace returns one workspace.
	Workspace(ctx context.Context, id string) (*Workspace, error)
	// OrganizationUsers lists the members of an organization, invited ones included. When the
	// provider refuses the complete list to the linked person, the adapter may answer what the
	// person can see, with Partial set.
	OrganizationUsers(ctx context.Context, organizationID string) (UserList, error)
	// WorkspaceUsers lists the members of a workspace.
	WorkspaceUsers(ctx context.Context, workspaceID string) (UserList, error)
	// User returns one person the linked person can see.
	User(ctx context.Context, id string) (*User, error)
}

// MeUpdate is a change to the linked person's own profile and settings. Nil fields stay as they
// are.
type MeUpdate struct {
	// Title replaces the person's job title(s).
	Title *string
	// Location replaces the person's location(s).
	Location *string
	// Locale is a locale such as "en_GB".
	Locale *string
	// Timezone is an IANA time zone name such as "Europe/Copenhagen".
	Timezone *string
}

// MeUpdater is the optional capability of a Directory to change the linked person's own profile
// and settings (providers let a person change only their own). Find it by type assertion.
type MeUpdater interface {
	// UpdateMe makes only the provider calls the fields given need. Input the provider refuses
	// wraps ErrInvalidInput. The change is not atomic: when an error is returned, part of it may
	// have been applied.
	UpdateMe(ctx context.Context, u MeUpdate) error
}

// UserList is a complete list of users, or the visible part of one when Partial is set.
type UserList struct {
	Users   []User
	Partial bool
}

// CompareIDs orders ids numerically when both are decimal numbers without leading zeros (as
// Podio's are), else as strings. It is the order of every list dirgate serves, so that a crawl can
// resume after the last id it saw.
func CompareIDs(a, b string) int {
	if isNumber(a) && isNumber(b) {
		if c := cmp.Compare(len(a), len(b)); c != 0 {
			return c
		}
	}
	return strings.Compare(a, b)
}

func isNumber(s string) bool {
	if s == "" || (len(s) > 1 && s[0] == '0') {
		return false
	}
	for i := range len(s) {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// MergeUsers merges users that appear in several lists (several organizations or workspaces)
// into one entry per id, ordered by CompareIDs. The first occurrence gives the profile fields,
// later ones fill those it lacks; roles, workspaces, e-mails and remote data are united without
// duplicates. An active status wins over the others.
func MergeUsers(lists ...[]User) []User {
	byID := make(map[string]int)
	var out []User
	for _, l := range lists {
		for _, u := range l {
			i, ok := byID[u.ID]
			if !ok {
				byID[u.ID] = len(out)
				u.Roles = slices.Clone(u.Roles)
				u.Workspaces = slices.Clone(u.Workspaces)
				u.Emails = slices.Clone(u.Emails)
				u.RemoteData = slices.Clone(u.RemoteData)
				out = append(out, u)
				continue
			}
			mergeUser(&out[i], u)
		}
	}
	slices.SortFunc(out, func(a, b User) int { return CompareIDs(a.ID, b.ID) })
	return out
}

func mergeUser(dst *User, src User) {
	fill(&dst.FirstName, src.FirstName)
	fill(&dst.LastName, src.LastName)
	fill(&dst.Title, src.Title)
	fill(&dst.Avatar, src.Avatar)
	fill(&dst.IsEmployee, src.IsEmployee)
	fill(&dst.Timezone, src.Timezone)
	fill(&dst.Locale, src.Locale)
	fill(&dst.LastActiveAt, src.LastActiveAt)
	fill(&dst.CreatedAt, src.CreatedAt)
	if dst.Name == "" {
		dst.Name = src.Name
	}
	if src.Status == StatusActive || dst.Status == "" {
		dst.Status = src.Status
	}
	for _, r := range src.Roles {
		if !slices.ContainsFunc(dst.Roles, func(x UserRole) bool { return sameRole(x, r) }) {
			dst.Roles = append(dst.Roles, r)
		}
	}
	if src.Workspaces != nil && dst.Workspaces == nil {
		dst.Workspaces = []UserWorkspace{}
	}
	for _, w := range src.Workspaces {
		if !slices.ContainsFunc(dst.Workspaces, func(x UserWorkspace) bool { return x.ID == w.ID }) {
			dst.Workspaces = append(dst.Workspaces, w)
		}
	}
	for _, e := range src.Emails {
		if !slices.ContainsFunc(dst.Emails, func(x Email) bool { return strings.EqualFold(x.Email, e.Email) }) {
			dst.Emails = append(dst.Emails, e)
		}
	}
	for _, rd := range src.RemoteData {
		if !slices.ContainsFunc(dst.RemoteData, func(x RemoteData) bool { return x.Path == rd.Path }) {
			dst.RemoteData = append(dst.RemoteData, rd)
		}
	}
}

func sameRole(a, b UserRole) bool {
	return a.ID == b.ID && deref(a.OrganizationID) == deref(b.OrganizationID) && deref(a.WorkspaceID) == deref(b.WorkspaceID)
}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

func fill[T any](dst **T, src *T) {
	if *dst == nil && src != nil {
		*dst = src
	}
}

// SplitName derives first and last names from a full name: the first word and the rest. Both
// are nil for an empty name, and the last name is nil for a single word. Podio keeps only a full
// name, so this is a best effort.
func SplitName(name string) (first, last *string) {
	f := strings.Fields(name)
	if len(f) == 0 {
		return nil, nil
	}
	first = &f[0]
	if len(f) > 1 {
		l := strings.Join(f[1:], " ")
		last = &l
	}
	return first, last
}
