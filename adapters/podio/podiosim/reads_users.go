package podiosim

import (
	"fmt"
	"strings"
)

// ---- users ----

func (s *Server) caller(c *call) (*person, reply, bool) {
	p := s.ds.people[c.callerID()]
	if p == nil {
		return nil, notFound("User"), false
	}
	return p, reply{}, true
}

func (s *Server) getUser(c *call) reply {
	p, rep, ok := s.caller(c)
	if !ok {
		return rep
	}
	return okJSON(userJSON(p))
}

type statusUserOut struct {
	userOut
	Invites int `json:"invites"`
}

func (s *Server) getUserStatus(c *call) reply {
	p, rep, ok := s.caller(c)
	if !ok {
		return rep
	}
	return okJSON(map[string]any{
		"user":                 statusUserOut{userOut: userJSON(p)},
		"profile":              profileJSON(p),
		"properties":           map[string]any{},
		"referral":             map[string]any{"code": fmt.Sprintf("ref%d", p.userID), "status": "active"},
		"flags":                []string{},
		"betas":                []string{},
		"inbox_new":            0,
		"message_unread_count": 0,
		"calendar_code":        fmt.Sprintf("cal%d", p.userID),
		"mailbox":              fmt.Sprintf("user%d", p.userID),
		"task_mail":            fmt.Sprintf("tasks+%d@podio.example", p.userID),
		"push":                 pushOut{Channel: fmt.Sprintf("/user/%d", p.userID), Signature: "sim", Timestamp: c.now.Unix(), ExpiresIn: 21600},
		"presence":             map[string]any{"ref_type": "user", "ref_id": p.userID, "user_id": p.userID, "signature": "sim"},
	})
}

// sharesOrg reports whether two people meet in some org (invited memberships included).
func (s *Server) sharesOrg(a, b int64) bool {
	if a == b {
		return true
	}
	for _, id := range s.ds.orgIDs {
		o := s.ds.orgs[id]
		if o.members[a] != nil && o.members[b] != nil {
			return true
		}
	}
	return false
}

func (s *Server) getContactUser(c *call) reply {
	ids, rep, ok := c.ids("user_id")
	if !ok {
		return rep
	}
	out := make([]any, 0, len(ids))
	for _, id := range ids {
		p := s.ds.people[id]
		if p == nil {
			return notFound("User")
		}
		if !s.sharesOrg(c.callerID(), id) {
			return forbidden("You do not share an organization with this user")
		}
		out = append(out, profileJSON(p))
	}
	if strings.Contains(c.params["user_id"], ",") {
		return okJSON(out)
	}
	return okJSON(out[0])
}
