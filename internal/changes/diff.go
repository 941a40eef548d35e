package changes

import (
	"maps"
	"slices"
	"time"

	"github.com/dirgate/dirgate/internal/events"
	"github.com/dirgate/dirgate/unified"
)

// Snapshot is what one poll saw of an account's directory. Ids are unified ids; roles are unified
// workspace role ids (workspace_admin, ...).
type Snapshot struct {
	// TakenAt is when the poll began.
	TakenAt       time.Time               `json:"taken_at"`
	Organizations map[string]Organization `json:"organizations"`
	Workspaces    map[string]Workspace    `json:"workspaces"`
	Users         map[string]User         `json:"users"`
	// Members is workspace id → user id → role.
	Members map[string]map[string]string `json:"members"`
	// MembersFetchedAt is, per workspace, when its member list was read from Podio (the cache's
	// fetch time, not the poll's); WorkspacesFetchedAt is the same for the workspace list.
	MembersFetchedAt    map[string]time.Time `json:"members_fetched_at"`
	WorkspacesFetchedAt time.Time            `json:"workspaces_fetched_at"`
}

// Organization is an organization in a Snapshot.
type Organization struct {
	Name string `json:"name"`
}

// Workspace is a workspace in a Snapshot.
type Workspace struct {
	Name           string `json:"name"`
	OrganizationID string `json:"organization_id"`
}

// User is a person in a Snapshot: the fields whose change is a user.updated event.
type User struct {
	Name   string `json:"name"`
	Email  string `json:"email"`
	Title  string `json:"title"`
	Status string `json:"status"`
}

// NewSnapshot returns an empty snapshot taken at at.
func NewSnapshot(at time.Time) *Snapshot {
	return &Snapshot{
		TakenAt: at, Organizations: map[string]Organization{}, Workspaces: map[string]Workspace{},
		Users: map[string]User{}, Members: map[string]map[string]string{}, MembersFetchedAt: map[string]time.Time{},
	}
}

// role is the user's role in the workspace, "" when not a member.
func (s *Snapshot) role(m Member) string {
	if s == nil {
		return ""
	}
	return s.Members[m.Workspace][m.User]
}

// fetchedAt is when the snapshot's member list of the workspace was read; for a workspace the
// snapshot does not hold, when the workspace list was.
func (s *Snapshot) fetchedAt(workspace string) time.Time {
	if t, ok := s.MembersFetchedAt[workspace]; ok {
		return t
	}
	return s.WorkspacesFetchedAt
}

// Member names one workspace membership.
type Member struct {
	Workspace, User string
}

func (m Member) field() string { return m.Workspace + "/" + m.User }

// Mark records a membership write made through dirgate whose event has been emitted.
type Mark struct {
	// Role is the role the write left (a unified workspace role id); "" when it removed the member.
	Role string `json:"role"`
	// At is when Podio had accepted the write; member lists read before it predate the write.
	At time.Time `json:"at"`
	// Expires is when the mark stops applying.
	Expires time.Time `json:"expires"`
}

// Origins of an event: a write made through dirgate, or a change the poller found.
const (
	OriginDirgate = "dirgate"
	OriginPoll    = "poll"
)

// WorkspaceData is the data of workspace.added and workspace.removed.
type WorkspaceData struct {
	WorkspaceID      string `json:"workspace_id"`
	Name             string `json:"name"`
	OrganizationID   string `json:"organization_id"`
	OrganizationName string `json:"organization_name,omitempty"`
	Origin           string `json:"origin"`
}

// UserData is the data of user.added and user.removed.
type UserData struct {
	UserID string `json:"user_id"`
	Name   string `json:"name"`
	Email  string `json:"email"`
	Title  string `json:"title,omitempty"`
	Status string `json:"status"`
	Origin string `json:"origin"`
}

// FieldChange is one changed field of a user.updated event.
type FieldChange struct {
	Old string `json:"old"`
	New string `json:"new"`
}

// UserUpdateData is the data of user.updated: the person as they are now and the fields that
// changed (name, email, title, status) with their old and new values.
type UserUpdateData struct {
	UserData
	Changes map[string]FieldChange `json:"changes"`
}

// MembershipData is the data of membership.added, membership.role_changed and
// membership.removed. Role is the role after the change (absent for removed), PreviousRole the
// one before (absent for added, and for writes through dirgate that did not read it). Names are
// given when known.
type MembershipData struct {
	WorkspaceID    string `json:"workspace_id"`
	WorkspaceName  string `json:"workspace_name,omitempty"`
	OrganizationID string `json:"organization_id,omitempty"`
	UserID         string `json:"user_id"`
	Name           string `json:"name,omitempty"`
	Email          string `json:"email,omitempty"`
	Role           string `json:"role,omitempty"`
	PreviousRole   string `json:"previous_role,omitempty"`
	Origin         string `json:"origin"`
}

// MembershipChange returns the event type of a membership going from role from to role to ("":
// not a member), and false when nothing changed.
func MembershipChange(from, to string) (string, bool) {
	switch {
	case from == to:
		return "", false
	case from == "":
		return events.MembershipAdded, true
	case to == "":
		return events.MembershipRemoved, true
	}
	return events.MembershipRoleChanged, true
}

// Change is one difference between two snapshots: an event to emit.
type Change struct {
	Type string
	// Data is a WorkspaceData, UserData, UserUpdateData or MembershipData.
	Data any
}

// Diff compares the snapshot cur with the previous one, old, and returns the changes in this
// order: workspaces added, users added, memberships added, role changes, memberships removed,
// users removed, workspaces removed, user updates; by id within each (memberships by workspace,
// then user). A nil old is the first poll: the baseline, with no changes.
//
// marks are the own writes not yet settled. A membership with a mark is compared from the
// mark's state (the consumer was told of it) when cur's member list of its workspace was read
// more than margin after the write; settled lists those marks (and expired ones), which the
// caller deletes once cur is saved. A mark whose write cur may predate gives no change and stays.
func Diff(old, cur *Snapshot, marks map[Member]Mark, margin time.Duration) (changes []Change, settled []Member) {
	type transition struct {
		m        Member
		from, to string
	}
	var trans []transition
	pairs := map[Member]bool{}
	for _, s := range []*Snapshot{old, cur} {
		if s == nil {
			continue
		}
		for ws, members := range s.Members {
			for u := range members {
				pairs[Member{ws, u}] = true
			}
		}
	}
	for m := range marks {
		pairs[m] = true
	}
	for _, m := range sortedMembers(pairs) {
		from, to := old.role(m), cur.role(m)
		if mk, ok := marks[m]; ok {
			switch {
			case !cur.TakenAt.Before(mk.Expires):
				settled = append(settled, m) // expired: compare as if it were not there
			case !cur.fetchedAt(m.Workspace).After(mk.At.Add(margin)):
				continue // cur may predate the write; wait for a list read after it
			default:
				from = mk.Role
				settled = append(settled, m)
			}
		}
		if from != to {
			trans = append(trans, transition{m, from, to})
		}
	}
	if old == nil {
		return nil, settled
	}

	wsData := func(s *Snapshot, id string) WorkspaceData {
		w := s.Workspaces[id]
		return WorkspaceData{WorkspaceID: id, Name: w.Name, OrganizationID: w.OrganizationID,
			OrganizationName: s.Organizations[w.OrganizationID].Name, Origin: OriginPoll}
	}
	userData := func(s *Snapshot, id string) UserData {
		u := s.Users[id]
		return UserData{UserID: id, Name: u.Name, Email: u.Email, Title: u.Title, Status: u.Status, Origin: OriginPoll}
	}
	// The workspace and person as last seen: now, or in old when they are gone.
	seen := func(m Member) MembershipData {
		d := MembershipData{WorkspaceID: m.Workspace, UserID: m.User, Origin: OriginPoll}
		for _, s := range []*Snapshot{old, cur} {
			if w, ok := s.Workspaces[m.Workspace]; ok {
				d.WorkspaceName, d.OrganizationID = w.Name, w.OrganizationID
			}
			if u, ok := s.Users[m.User]; ok {
				d.Name, d.Email = u.Name, u.Email
			}
		}
		return d
	}

	for _, id := range added(old.Workspaces, cur.Workspaces) {
		changes = append(changes, Change{events.WorkspaceAdded, wsData(cur, id)})
	}
	for _, id := range added(old.Users, cur.Users) {
		changes = append(changes, Change{events.UserAdded, userData(cur, id)})
	}
	for _, typ := range []string{events.MembershipAdded, events.MembershipRoleChanged, events.MembershipRemoved} {
		for _, t := range trans {
			if got, _ := MembershipChange(t.from, t.to); got != typ {
				continue
			}
			d := seen(t.m)
			d.Role = t.to
			if typ != events.MembershipAdded {
				d.PreviousRole = t.from
			}
			changes = append(changes, Change{typ, d})
		}
	}
	for _, id := range added(cur.Users, old.Users) {
		changes = append(changes, Change{events.UserRemoved, userData(old, id)})
	}
	for _, id := range added(cur.Workspaces, old.Workspaces) {
		changes = append(changes, Change{events.WorkspaceRemoved, wsData(old, id)})
	}
	for _, id := range sortedKeys(cur.Users) {
		was, ok := old.Users[id]
		if !ok {
			continue
		}
		now := cur.Users[id]
		diff := map[string]FieldChange{}
		for _, f := range []struct{ name, old, new string }{
			{"name", was.Name, now.Name}, {"email", was.Email, now.Email},
			{"title", was.Title, now.Title}, {"status", was.Status, now.Status},
		} {
			if f.old != f.new {
				diff[f.name] = FieldChange{Old: f.old, New: f.new}
			}
		}
		if len(diff) > 0 {
			changes = append(changes, Change{events.UserUpdated, UserUpdateData{UserData: userData(cur, id), Changes: diff}})
		}
	}
	return changes, settled
}

// added lists the keys of cur that are not in old, sorted.
func added[V any](old, cur map[string]V) []string {
	var out []string
	for _, id := range sortedKeys(cur) {
		if _, ok := old[id]; !ok {
			out = append(out, id)
		}
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	return slices.SortedFunc(maps.Keys(m), unified.CompareIDs)
}

func sortedMembers(set map[Member]bool) []Member {
	return slices.SortedFunc(maps.Keys(set), func(a, b Member) int {
		if c := unified.CompareIDs(a.Workspace, b.Workspace); c != 0 {
			return c
		}
		return unified.CompareIDs(a.User, b.User)
	})
}
