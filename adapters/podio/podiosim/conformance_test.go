package podiosim_test

import (
	"net/url"
	"strings"
	"testing"

	"github.com/dirgate/dirgate/adapters/podio/podiosim"
)

// Shapes pinned to podio-api.md (section numbers in the names).
var (
	userShape3_1 = shape{
		"user_id": "number", "mail": "string", "mails": "array", "status": "string", "locale": "string",
		"timezone": "string", "created_on": "datetime", "activated_on": "datetime", "flags": "array",
	}
	profileShape3_4 = shape{
		"profile_id": "number", "user_id": "number", "name": "string", "type": "string", "avatar": "number|null",
		"mail": "array", "title": "array", "phone": "array", "link": "string", "last_seen_on": "datetime|null",
	}
	orgShape4_2 = shape{
		"org_id": "number", "name": "string", "url": "string", "url_label": "string", "status": "string",
		"type": "string", "premium": "bool", "role": "string", "rights": "array", "logo": "number", "image": "object",
		"user_limit": "number", "domains": "array", "rank": "number", "tier": "string", "trial_expired_on": "null",
		"created_on": "datetime", "created_by": "object", "member_count": "number",
	}
	spaceShape6_2 = shape{
		"space_id": "number", "name": "string", "url": "string", "url_label": "string", "org_id": "number",
		"org": "object", "role": "string|null", "rights": "array", "privacy": "string", "auto_join": "bool",
		"archived": "bool", "member_count": "number", "created_on": "datetime", "created_by": "object",
		"last_activity_on": "datetime", "owner": "object", "push": "object", "type": "string",
	}
	orgMemberItemShape5_1 = shape{
		"user": "object", "profile": "object", "employee": "bool", "role": "string|null",
		"space_memberships": "number", "admin": "bool",
	}
	orgMemberShape5_2 = shape{
		"user": "object", "profile": "object", "employee": "bool", "role": "string|null", "tier": "string", "spaces": "object",
	}
	endInfoShape5_4       = shape{"to_promote": "array", "to_remove": "array", "to_delete": "array"}
	spaceMemberV1Shape7_1 = shape{"user": "object", "profile": "object", "role": "string"}
	spaceMemberV2Shape7_1 = shape{"profile": "object", "employee": "bool", "role": "string", "grants": "number"}
	membershipShape7_1    = shape{"user": "object", "role": "string", "invited_on": "datetime", "started_on": "datetime", "ended_on": "null"}
	userStatusShape3_2    = shape{
		"user": "object", "profile": "object", "properties": "object", "referral": "object", "flags": "array",
		"betas": "array", "inbox_new": "number", "message_unread_count": "number", "calendar_code": "string", "mailbox": "string",
	}
	tokenShape2_2 = shape{
		"access_token": "string", "token_type": "string", "expires_in": "number", "refresh_token": "string",
		"scope": "string", "ref": "object",
	}
)

func TestConformance(t *testing.T) {
	t.Parallel()
	h := setup(t, podiosim.Config{})
	admin, member := h.token(adminMail), h.token(memberMail)

	tests := []struct {
		name, method, path string
		tok                string
		body               any
		status             int
		code               string // Podio error code when status >= 400
		obj                shape  // shape of the object, or of every array element when array
		array              bool
		minLen             int
	}{
		// users
		{name: "user", method: "GET", path: "/user/", tok: admin, status: 200, obj: userShape3_1},
		{name: "user lenient slash", method: "GET", path: "/user", tok: admin, status: 200, obj: userShape3_1},
		{name: "user status", method: "GET", path: "/user/status", tok: member, status: 200, obj: userStatusShape3_2},
		{name: "user status with slash", method: "GET", path: "/user/status/", tok: member, status: 404, code: "not_found"},
		{name: "contact", method: "GET", path: "/contact/user/1000002", tok: admin, status: 200, obj: profileShape3_4},
		{name: "contacts comma list", method: "GET", path: "/contact/user/1000001,1000002", tok: admin, status: 200, obj: profileShape3_4, array: true, minLen: 2},
		{name: "contact unknown", method: "GET", path: "/contact/user/999", tok: admin, status: 404, code: "not_found"},
		{name: "contact bad id", method: "GET", path: "/contact/user/12x", tok: admin, status: 400, code: "invalid_value"},
		// organizations
		{name: "orgs", method: "GET", path: "/org/", tok: admin, status: 200, obj: orgShape4_2, array: true, minLen: 2},
		{name: "orgs lenient", method: "GET", path: "/org", tok: member, status: 200, obj: orgShape4_2, array: true, minLen: 1},
		{name: "org", method: "GET", path: "/org/" + org1, tok: member, status: 200, obj: orgShape4_2},
		{name: "org not member", method: "GET", path: "/org/" + org2, tok: member, status: 403, code: "forbidden"},
		{name: "org unknown", method: "GET", path: "/org/9999", tok: admin, status: 404, code: "not_found"},
		{name: "org trailing slash", method: "GET", path: "/org/" + org1 + "/", tok: admin, status: 404, code: "not_found"},
		// org members
		{name: "org members", method: "GET", path: "/org/" + org1 + "/member/", tok: admin, status: 200, obj: orgMemberItemShape5_1, array: true, minLen: 10},
		{name: "org members no slash", method: "GET", path: "/org/" + org1 + "/member", tok: admin, status: 404, code: "not_found"},
		{name: "org members non-admin", method: "GET", path: "/org/" + org1 + "/member/", tok: member, status: 403, code: "forbidden"},
		{name: "org members bad sort", method: "GET", path: "/org/" + org1 + "/member/?sort_by=age", tok: admin, status: 400, code: "invalid_value"},
		{name: "org members bad member_type", method: "GET", path: "/org/" + org1 + "/member/?member_type=boss", tok: admin, status: 400, code: "invalid_value"},
		{name: "org members bad sort_desc", method: "GET", path: "/org/" + org1 + "/member/?sort_desc=maybe", tok: admin, status: 400, code: "invalid_value"},
		{name: "org members sort_desc true", method: "GET", path: "/org/" + org1 + "/member/?sort_desc=true&sort_by=last_seen_on", tok: admin, status: 200, obj: orgMemberItemShape5_1, array: true, minLen: 10},
		{name: "org member", method: "GET", path: "/org/" + org1 + "/member/1000002", tok: admin, status: 200, obj: orgMemberShape5_2},
		{name: "org member self", method: "GET", path: "/org/" + org1 + "/member/1000002", tok: member, status: 200, obj: orgMemberShape5_2},
		{name: "org member other non-admin", method: "GET", path: "/org/" + org1 + "/member/1000001", tok: member, status: 403, code: "forbidden"},
		{name: "org member not in org", method: "GET", path: "/org/" + org2 + "/member/1000002", tok: admin, status: 404, code: "not_found"},
		{name: "org member by mail", method: "GET", path: "/org/" + org1 + "/member/mail/member%40demo.example", tok: admin, status: 200, obj: orgMemberShape5_2},
		{name: "org member by mail unknown", method: "GET", path: "/org/" + org1 + "/member/mail/nobody%40demo.example", tok: admin, status: 404, code: "not_found"},
		{name: "end member info", method: "GET", path: "/org/" + org1 + "/member/1000002/end_member_info", tok: admin, status: 200, obj: endInfoShape5_4},
		{name: "end member info non-admin", method: "GET", path: "/org/" + org1 + "/member/1000001/end_member_info", tok: member, status: 403, code: "forbidden"},
		// spaces
		{name: "org spaces", method: "GET", path: "/org/" + org1 + "/space/", tok: member, status: 200, obj: spaceShape6_2, array: true, minLen: 3},
		{name: "org spaces no slash", method: "GET", path: "/org/" + org1 + "/space", tok: member, status: 404, code: "not_found"},
		{name: "all spaces", method: "GET", path: "/org/" + org1 + "/all_spaces/", tok: admin, status: 200, array: true, minLen: 5},
		{name: "all spaces non-admin", method: "GET", path: "/org/" + org1 + "/all_spaces/", tok: member, status: 403, code: "forbidden"},
		{name: "space", method: "GET", path: "/space/" + spaceSales, tok: member, status: 200, obj: spaceShape6_2},
		{name: "space archived", method: "GET", path: "/space/" + spaceArch, tok: admin, status: 200, obj: spaceShape6_2},
		{name: "space not member", method: "GET", path: "/space/" + spaceBoard, tok: admin, status: 403, code: "forbidden"},
		{name: "space open to org member", method: "GET", path: "/space/" + spaceComm, tok: admin, status: 200, obj: spaceShape6_2},
		{name: "space unknown", method: "GET", path: "/space/1", tok: admin, status: 404, code: "not_found"},
		{name: "space bad id", method: "GET", path: "/space/1x", tok: admin, status: 400, code: "invalid_value"},
		// space members
		{name: "space members v1", method: "GET", path: "/space/" + spaceSales + "/member/", tok: member, status: 200, obj: spaceMemberV1Shape7_1, array: true, minLen: 2},
		{name: "space members v2", method: "GET", path: "/space/" + spaceSales + "/member/v2/", tok: member, status: 200, obj: spaceMemberV2Shape7_1, array: true, minLen: 2},
		{name: "space members v2 no slash", method: "GET", path: "/space/" + spaceSales + "/member/v2", tok: member, status: 404, code: "not_found"},
		{name: "space members v2 bad limit", method: "GET", path: "/space/" + spaceSales + "/member/v2/?limit=0", tok: member, status: 400, code: "invalid_value"},
		{name: "space member", method: "GET", path: "/space/" + spaceSales + "/member/1000002", tok: admin, status: 200, obj: membershipShape7_1},
		{name: "space member not member", method: "GET", path: "/space/" + spaceSales + "/member/1000003", tok: admin, status: 404, code: "not_found"},
		// method and path errors
		{name: "unknown path", method: "GET", path: "/nope/", tok: admin, status: 404, code: "not_found"},
		{name: "wrong method", method: "POST", path: "/org/", tok: admin, status: 405, code: "method_not_allowed"},
		{name: "wrong method on member", method: "PATCH", path: "/space/" + spaceSales + "/member/1000002", tok: admin, status: 405, code: "method_not_allowed"},
		// auth
		{name: "no token", method: "GET", path: "/user/", status: 401, code: "invalid_token"},
		{name: "unknown token", method: "GET", path: "/user/", tok: "not-a-token", status: 401, code: "invalid_token"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := h.do(tc.method, tc.path, tc.tok, tc.body)
			if r.header.Get("X-Podio-Request-Id") == "" {
				t.Error("X-Podio-Request-Id missing")
			}
			if r.header.Get("X-Rate-Limit-Limit") == "" || r.header.Get("X-Rate-Limit-Remaining") == "" {
				t.Error("X-Rate-Limit-* headers missing")
			}
			if tc.status >= 400 {
				e := checkPodioError(t, r, tc.status, tc.code)
				req := e["request"].(map[string]any)
				path, query, _ := strings.Cut(tc.path, "?")
				path, _ = url.PathUnescape(path) // request.url echoes the decoded path
				if req["method"] != tc.method || req["url"] != h.url+path || req["query_string"] != query {
					t.Errorf("request echo = %v, want %s %s%s ?%s", req, tc.method, h.url, path, query)
				}
				return
			}
			if r.status != tc.status {
				t.Fatalf("status = %d, want %d; body %s", r.status, tc.status, r.body)
			}
			if ct := r.header.Get("Content-Type"); ct != "application/json; charset=utf-8" {
				t.Errorf("Content-Type = %q", ct)
			}
			if !tc.array {
				checkShape(t, tc.path, r.obj(t), tc.obj)
				return
			}
			items := r.arr(t)
			if len(items) < tc.minLen {
				t.Fatalf("got %d items, want at least %d", len(items), tc.minLen)
			}
			for _, it := range items {
				m, ok := it.(map[string]any)
				if !ok {
					t.Fatalf("item is not an object: %v", it)
				}
				checkShape(t, tc.path, m, tc.obj)
			}
		})
	}
}
