package api_test

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/dirgate/dirgate/adapters/podio/podiosim"
)

// multiPlan is the answer to a multi-workspace dry run.
type multiPlan struct {
	Workspaces []struct {
		WorkspaceID string           `json:"workspace_id"`
		Add         []map[string]any `json:"add"`
		ChangeRole  []map[string]any `json:"change_role"`
		Remove      []map[string]any `json:"remove"`
		Unchanged   []map[string]any `json:"unchanged"`
		Conflicts   []map[string]any `json:"conflicts"`
	} `json:"workspaces"`
}

// adminWorkspaces returns the demo workspaces the linked person administers (elsewhere Podio
// refuses the writes) that have a few members, at least n of them.
func adminWorkspaces(t *testing.T, h *harness, tok, acct string, n int) []int {
	t.Helper()
	var out []int
	for _, sp := range []int{40001, 40002, 40003, 40004, 40006, 40007, 40008} {
		if ms := podioMembers(t, h, tok, acct, sp); ms[1000001].Role == "admin" && len(ms) > 4 {
			out = append(out, sp)
		}
	}
	if len(out) < n {
		t.Fatalf("the linked person administers %v; the test needs %d such workspaces", out, n)
	}
	return out[:n]
}

func TestMultiSyncPlansAndAppliesInOneJob(t *testing.T) {
	t.Parallel()
	h, tok, q := directorySetup(t, harnessOptions{jobs: true, sim: podiosim.Config{InvitedInSpaceMembersV2: true}})
	acct := q[len("integrated_account_id="):]
	spaces := adminWorkspaces(t, h, tok, acct, 2)
	ids := []string{fmt.Sprint(spaces[0]), fmt.Sprint(spaces[1])}
	path := dir + "/members/sync?" + q
	before := map[int]map[int64]wsMember{}
	for _, sp := range spaces {
		before[sp] = podioMembers(t, h, tok, acct, sp)
	}

	body := map[string]any{
		"workspace_ids": ids,
		"members": []map[string]any{
			{"email": "multi.one@example.com"},
			{"email": "Multi.Two@Example.com", "role": "admin"},
			{"user_id": "1000001", "role": "admin"}, // the linked person, admin of both: unchanged
		},
		"default_role": "light", "mode": "add_only", "dry_run": true,
	}
	var plan multiPlan
	r := h.do("POST", path, tok, body)
	r.json(t, &plan)
	if r.status != http.StatusOK || len(plan.Workspaces) != 2 {
		t.Fatalf("dry run: %d %s", r.status, r.body)
	}
	for i, p := range plan.Workspaces {
		if p.WorkspaceID != ids[i] {
			t.Errorf("plan %d is for workspace %s, want %s (request order)", i, p.WorkspaceID, ids[i])
		}
		var added []string
		for _, a := range p.Add {
			added = append(added, fmt.Sprint(a["email"], " ", a["role"]))
		}
		slices.Sort(added)
		if d := cmp.Diff([]string{"multi.one@example.com light", "multi.two@example.com admin"}, added); d != "" {
			t.Errorf("workspace %s adds (-want +got):\n%s", p.WorkspaceID, d)
		}
		if len(p.Unchanged) != 1 || len(p.ChangeRole)+len(p.Remove) != 0 {
			t.Errorf("workspace %s: plan %+v", p.WorkspaceID, p)
		}
	}
	for _, sp := range spaces {
		if len(podioMembers(t, h, tok, acct, sp)) != len(before[sp]) {
			t.Fatalf("the dry run changed workspace %d", sp)
		}
	}

	body["dry_run"] = false
	r = h.do("POST", path, tok, body)
	if r.status != http.StatusAccepted || !strings.HasPrefix(r.header.Get("Location"), "/jobs/job_") {
		t.Fatalf("sync: %d %s", r.status, r.body)
	}
	var job struct {
		ID    string `json:"id"`
		Type  string `json:"type"`
		Items []struct {
			Action         string `json:"action"`
			WorkspaceID    string `json:"workspace_id"`
			OrganizationID string `json:"organization_id"`
		} `json:"items"`
	}
	r.json(t, &job)
	perSpace := map[string]int{}
	for _, it := range job.Items {
		perSpace[it.WorkspaceID]++
		if it.Action != "add" || it.OrganizationID == "" {
			t.Errorf("item %+v", it)
		}
	}
	if job.Type != "workspace_sync" || len(job.Items) != 4 || perSpace[ids[0]] != 2 || perSpace[ids[1]] != 2 {
		t.Fatalf("one job with two adds per workspace expected: %s", r.body)
	}
	j := awaitJob(t, h, tok, job.ID)
	if j["status"] != "succeeded" {
		t.Fatalf("sync job: %v", j)
	}
	for _, sp := range spaces {
		after := podioMembers(t, h, tok, acct, sp)
		if m, ok := byMail(after, "multi.one@example.com"); !ok || m.Role != "light" {
			t.Errorf("workspace %d, multi.one: %+v (found %v)", sp, m, ok)
		}
		if m, ok := byMail(after, "multi.two@example.com"); !ok || m.Role != "admin" {
			t.Errorf("workspace %d, multi.two: %+v (found %v)", sp, m, ok)
		}
		if len(after) != len(before[sp])+2 {
			t.Errorf("workspace %d has %d members, want %d", sp, len(after), len(before[sp])+2)
		}
	}

	body["dry_run"] = true
	r = h.do("POST", path, tok, body)
	plan = multiPlan{}
	r.json(t, &plan)
	if r.status != http.StatusOK || len(plan.Workspaces) != 2 {
		t.Fatalf("second dry run: %d %s", r.status, r.body)
	}
	for _, p := range plan.Workspaces {
		if len(p.Add)+len(p.ChangeRole)+len(p.Remove) != 0 || len(p.Unchanged) != 3 {
			t.Errorf("a second run plans changes in %s: %+v", p.WorkspaceID, p)
		}
	}

	var jl struct {
		Results []map[string]any `json:"results"`
	}
	h.mustGet("/jobs?"+q, tok).json(t, &jl)
	if len(jl.Results) != 1 {
		t.Errorf("GET /jobs lists %d jobs, want the one", len(jl.Results))
	}
}

// TestMultiSyncFromSourceWorkspace: source_workspace_id's members are read once and planned into
// every target.
func TestMultiSyncFromSourceWorkspace(t *testing.T) {
	t.Parallel()
	h, tok, q := directorySetup(t, harnessOptions{jobs: true, sim: podiosim.Config{InvitedInSpaceMembersV2: true}})
	acct := q[len("integrated_account_id="):]
	spaces := adminWorkspaces(t, h, tok, acct, 3)
	src := podioMembers(t, h, tok, acct, spaces[0])
	r := h.do("POST", dir+"/members/sync?"+q, tok, map[string]any{
		"workspace_ids":       []string{fmt.Sprint(spaces[1]), fmt.Sprint(spaces[2])},
		"source_workspace_id": fmt.Sprint(spaces[0]), "mode": "add_only", "dry_run": true,
	})
	var plan multiPlan
	r.json(t, &plan)
	if r.status != http.StatusOK || len(plan.Workspaces) != 2 {
		t.Fatalf("dry run: %d %s", r.status, r.body)
	}
	for i, p := range plan.Workspaces {
		target := podioMembers(t, h, tok, acct, spaces[i+1])
		wantAdd := 0
		for id := range src {
			if _, ok := target[id]; !ok {
				wantAdd++
			}
		}
		if wantAdd == 0 {
			t.Fatalf("workspace %d already holds every member of %d: the test proves nothing", spaces[i+1], spaces[0])
		}
		if got := len(p.Add) + len(p.ChangeRole) + len(p.Unchanged) + len(p.Conflicts); len(p.Add) != wantAdd || got != len(src) {
			t.Errorf("workspace %s: %d adds (want %d), %d members accounted for (want %d)", p.WorkspaceID, len(p.Add), wantAdd, got, len(src))
		}
	}
}

func TestMultiSyncRefusals(t *testing.T) {
	t.Parallel()
	h, tok, q := directorySetup(t, harnessOptions{jobs: true, sim: podiosim.Config{InvitedInSpaceMembersV2: true}})
	acct := q[len("integrated_account_id="):]
	spaces := adminWorkspaces(t, h, tok, acct, 1)
	ws := fmt.Sprint(spaces[0])
	path := dir + "/members/sync?" + q
	members := []map[string]any{{"email": "refused@example.com"}}
	tooMany := make([]string, 51)
	for i := range tooMany {
		tooMany[i] = fmt.Sprint(40001 + i)
	}
	for _, tc := range []struct {
		name   string
		path   string
		body   map[string]any
		status int
		code   string
		msg    string
	}{
		{"no workspace_ids", path, map[string]any{"members": members, "mode": "add_only"}, 400, "invalid_request", "workspace_ids is required"},
		{"empty workspace_ids", path, map[string]any{"workspace_ids": []string{}, "members": members, "mode": "add_only"}, 400, "invalid_request", "workspace_ids is required"},
		{"duplicate", path, map[string]any{"workspace_ids": []string{ws, "40007", ws}, "members": members, "mode": "add_only"}, 400, "invalid_request",
			"workspace_ids[2]: workspace " + ws + " is listed twice"},
		{"too many", path, map[string]any{"workspace_ids": tooMany, "members": members, "mode": "add_only"}, 400, "invalid_request", "at most 50 workspace_ids"},
		{"not a number", path, map[string]any{"workspace_ids": []string{ws, "abc"}, "members": members, "mode": "add_only"}, 400, "invalid_request",
			`workspace_ids[1]: "abc" is not a workspace id`},
		{"zero", path, map[string]any{"workspace_ids": []string{"0"}, "members": members, "mode": "add_only"}, 400, "invalid_request", "is not a workspace id"},
		{"negative", path, map[string]any{"workspace_ids": []string{"-40001"}, "members": members, "mode": "add_only"}, 400, "invalid_request", "is not a workspace id"},
		{"leading zero", path, map[string]any{"workspace_ids": []string{"0" + ws}, "members": members, "mode": "add_only"}, 400, "invalid_request", "is not a workspace id"},
		{"source among targets", path, map[string]any{"workspace_ids": []string{"40007", ws}, "source_workspace_id": ws, "mode": "add_only"}, 400, "invalid_request",
			"source_workspace_id " + ws + " is one of workspace_ids"},
		{"members and source", path, map[string]any{"workspace_ids": []string{ws}, "members": members, "source_workspace_id": "40007", "mode": "add_only"}, 400,
			"invalid_request", "give either members or source_workspace_id"},
		{"bad mode", path, map[string]any{"workspace_ids": []string{ws}, "members": members, "mode": "replace"}, 400, "invalid_request", "mode must be"},
		{"bad e-mail", path, map[string]any{"workspace_ids": []string{ws}, "members": []map[string]any{{"email": "nope"}}, "mode": "add_only"}, 400,
			"invalid_request", `members[0]: "nope" is not an e-mail address`},
		{"unknown field", path, map[string]any{"workspace_ids": []string{ws}, "members": members, "mode": "add_only", "workspace_id": ws}, 400, "invalid_request", "unknown field"},
		{"no account", dir + "/members/sync", map[string]any{"workspace_ids": []string{ws}, "members": members, "mode": "add_only"}, 400, "invalid_request",
			"integrated_account_id is required"},
		// 49999 does not exist; 40005 (Board Room) is closed and the linked person is not in it,
		// so Podio answers 403. Both are named, after a workspace that would have been changed.
		{"unknown workspace", path, map[string]any{"workspace_ids": []string{ws, "49999"}, "members": members, "mode": "add_only"}, 404, "not_found",
			"workspace 49999 not found"},
		{"invisible workspace", path, map[string]any{"workspace_ids": []string{ws, "40005"}, "members": members, "mode": "mirror"}, 404, "not_found",
			"workspace 40005 not found, or not visible"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := h.do("POST", tc.path, tok, tc.body)
			var e struct {
				Error struct{ Code, Message string } `json:"error"`
			}
			r.json(t, &e)
			if r.status != tc.status || e.Error.Code != tc.code || !strings.Contains(e.Error.Message, tc.msg) {
				t.Errorf("%d %s, want %d %s with %q", r.status, r.body, tc.status, tc.code, tc.msg)
			}
		})
	}
	// More changes than one job holds: refused before anything is written.
	targets := []string{ws, "40007"}
	for _, sp := range []string{"40001", "40002", "40003", "40004"} {
		if len(targets) < 3 && sp != ws {
			targets = append(targets, sp)
		}
	}
	var many []map[string]any
	for i := range 3400 {
		many = append(many, map[string]any{"email": fmt.Sprintf("bulk%04d@example.com", i)})
	}
	if r := h.do("POST", path, tok, map[string]any{"workspace_ids": targets, "members": many, "mode": "add_only"}); r.status != http.StatusBadRequest ||
		r.errorCode(t) != "too_many_changes" {
		t.Errorf("a 10,200-change sync: %d %.300s", r.status, r.body)
	}
	if _, ok := byMail(podioMembers(t, h, tok, acct, spaces[0]), "refused@example.com"); ok {
		t.Error("a refused sync changed a workspace")
	}
	var jl struct {
		Results []map[string]any `json:"results"`
	}
	h.mustGet("/jobs?"+q, tok).json(t, &jl)
	if len(jl.Results) != 0 {
		t.Errorf("refused syncs started %d jobs", len(jl.Results))
	}
}
