package membership

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Roles are the workspace roles Podio knows (podio-api.md §8).
var Roles = []string{"light", "regular", "admin"}

// ValidRole reports whether r is a workspace role.
func ValidRole(r string) bool { return slices.Contains(Roles, r) }

// Sync modes.
const (
	AddOnly = "add_only"
	Mirror  = "mirror"
)

// Member is a current workspace member.
type Member struct {
	UserID int64
	Emails []string
	Name   string
	Role   string
}

func (m Member) email() string {
	if len(m.Emails) > 0 {
		return strings.ToLower(m.Emails[0])
	}
	return ""
}

// Desired is one wanted member: by e-mail or user id, with a role ("" for the default role).
type Desired struct {
	Email  string `json:"email,omitempty"`
	UserID string `json:"user_id,omitempty"`
	Role   string `json:"role,omitempty"`
}

// Entry is one person in a plan.
type Entry struct {
	Email  string  `json:"email,omitempty"`
	UserID *string `json:"user_id"`
	Role   string  `json:"role"`
}

// RoleChange is a member whose role changes.
type RoleChange struct {
	Email  string `json:"email,omitempty"`
	UserID string `json:"user_id"`
	From   string `json:"from"`
	To     string `json:"to"`
}

// Conflict is a change the plan will not make, and why: last_admin (it would leave the workspace
// without an administrator) or linked_person (mirror never removes the linked person).
type Conflict struct {
	Email  string `json:"email,omitempty"`
	UserID string `json:"user_id"`
	Reason string `json:"reason"`
}

// Plan is what a sync would do to one workspace.
type Plan struct {
	WorkspaceID string       `json:"workspace_id"`
	Mode        string       `json:"mode"`
	Add         []Entry      `json:"add"`
	ChangeRole  []RoleChange `json:"change_role"`
	Remove      []Entry      `json:"remove"`
	Unchanged   []Entry      `json:"unchanged"`
	Conflicts   []Conflict   `json:"conflicts"`
}

// Empty reports whether the plan changes nothing.
func (p *Plan) Empty() bool { return len(p.Add) == 0 && len(p.ChangeRole) == 0 && len(p.Remove) == 0 }

// SyncSpec is a declarative membership for one workspace.
type SyncSpec struct {
	Members     []Desired
	DefaultRole string
	Mode        string
	// Linked is the Podio user id of the linked person, never removed by mirror.
	Linked int64
}

func ptr(s string) *string { return &s }

// PlanSync compares the current members with the spec. Matching is by user id when the desired
// entry has one, else by e-mail, case-insensitively, against every e-mail of a member. No change
// leaves the workspace without an administrator: such demotions and removals become conflicts.
func PlanSync(workspaceID string, current []Member, spec SyncSpec) (*Plan, error) {
	if spec.Mode != AddOnly && spec.Mode != Mirror {
		return nil, fmt.Errorf("mode must be %q or %q", AddOnly, Mirror)
	}
	if !ValidRole(spec.DefaultRole) {
		return nil, fmt.Errorf("default_role must be light, regular or admin")
	}
	p := &Plan{WorkspaceID: workspaceID, Mode: spec.Mode, Add: []Entry{}, ChangeRole: []RoleChange{}, Remove: []Entry{},
		Unchanged: []Entry{}, Conflicts: []Conflict{}}
	byID := map[int64]int{}
	byMail := map[string]int{}
	for i, m := range current {
		byID[m.UserID] = i
		for _, e := range m.Emails {
			byMail[strings.ToLower(e)] = i
		}
	}
	matched := map[int]bool{}
	seen := map[string]bool{}
	admins := 0
	for _, m := range current {
		if m.Role == "admin" {
			admins++
		}
	}
	var demotions []RoleChange
	for n, d := range spec.Members {
		role := d.Role
		if role == "" {
			role = spec.DefaultRole
		}
		if !ValidRole(role) {
			return nil, fmt.Errorf("members[%d]: role must be light, regular or admin", n)
		}
		idx, found := -1, false
		switch {
		case d.UserID != "":
			uid, err := strconv.ParseInt(d.UserID, 10, 64)
			if err != nil || uid <= 0 {
				return nil, fmt.Errorf("members[%d]: user_id must be a Podio user id", n)
			}
			idx, found = byID[uid]
			if seen["id:"+d.UserID] {
				return nil, fmt.Errorf("members[%d]: user %s is listed twice", n, d.UserID)
			}
			seen["id:"+d.UserID] = true
		case d.Email != "":
			mail := strings.ToLower(strings.TrimSpace(d.Email))
			if !ValidEmail(mail) {
				return nil, fmt.Errorf("members[%d]: %q is not an e-mail address", n, d.Email)
			}
			idx, found = byMail[mail]
			if seen["mail:"+mail] {
				return nil, fmt.Errorf("members[%d]: %s is listed twice", n, mail)
			}
			seen["mail:"+mail] = true
		default:
			return nil, fmt.Errorf("members[%d]: give an email or a user_id", n)
		}
		if !found {
			e := Entry{Email: strings.ToLower(strings.TrimSpace(d.Email)), Role: role}
			if d.UserID != "" {
				e.UserID = ptr(d.UserID)
			}
			p.Add = append(p.Add, e)
			continue
		}
		if matched[idx] {
			return nil, fmt.Errorf("members[%d]: the same person is listed twice", n)
		}
		matched[idx] = true
		m := current[idx]
		uid := strconv.FormatInt(m.UserID, 10)
		switch {
		case m.Role == role:
			p.Unchanged = append(p.Unchanged, Entry{Email: m.email(), UserID: ptr(uid), Role: role})
		case m.Role == "admin":
			demotions = append(demotions, RoleChange{Email: m.email(), UserID: uid, From: m.Role, To: role})
		default:
			if role == "admin" {
				admins++
			}
			p.ChangeRole = append(p.ChangeRole, RoleChange{Email: m.email(), UserID: uid, From: m.Role, To: role})
		}
	}
	var removals []Entry
	if spec.Mode == Mirror {
		for i, m := range current {
			if matched[i] {
				continue
			}
			uid := strconv.FormatInt(m.UserID, 10)
			if m.UserID == spec.Linked {
				p.Conflicts = append(p.Conflicts, Conflict{Email: m.email(), UserID: uid, Reason: "linked_person"})
				continue
			}
			removals = append(removals, Entry{Email: m.email(), UserID: ptr(uid), Role: m.Role})
		}
	}
	// Admins leave through demotions and removals; the last one stays, as a conflict.
	for _, d := range demotions {
		if admins <= 1 {
			p.Conflicts = append(p.Conflicts, Conflict{Email: d.Email, UserID: d.UserID, Reason: "last_admin"})
			continue
		}
		admins--
		p.ChangeRole = append(p.ChangeRole, d)
	}
	for _, r := range removals {
		if r.Role == "admin" {
			if admins <= 1 {
				p.Conflicts = append(p.Conflicts, Conflict{Email: r.Email, UserID: *r.UserID, Reason: "last_admin"})
				continue
			}
			admins--
		}
		p.Remove = append(p.Remove, r)
	}
	return p, nil
}

// ValidEmail is a deliberately simple check: one @, a non-empty local part, a dotted domain, no
// spaces or control characters.
func ValidEmail(s string) bool {
	at := strings.IndexByte(s, '@')
	if at <= 0 || at != strings.LastIndexByte(s, '@') || len(s) > 254 {
		return false
	}
	domain := s[at+1:]
	if !strings.Contains(domain, ".") || strings.HasPrefix(domain, ".") || strings.HasSuffix(domain, ".") {
		return false
	}
	for _, c := range s {
		if c <= ' ' || c == 0x7f {
			return false
		}
	}
	return true
}

// WouldOrphan reports whether giving member userID the role newRole ("" = removing them) leaves
// the workspace without an administrator.
func WouldOrphan(current []Member, userID int64, newRole string) bool {
	admins, target := 0, false
	for _, m := range current {
		if m.Role == "admin" {
			admins++
			if m.UserID == userID {
				target = true
			}
		}
	}
	return target && newRole != "admin" && admins <= 1
}
