package api_test

import (
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dirgate/dirgate/adapters/podio/podiosim"
)

// jobView is a job as GET /jobs/{id} shows it.
type jobView struct {
	ID              string     `json:"id"`
	Status          string     `json:"status"`
	WaitUntil       *time.Time `json:"wait_until"`
	CancelRequested bool       `json:"cancel_requested"`
	Progress        struct {
		Total, Done, Failed int
	} `json:"progress"`
	Items []struct {
		Action string `json:"action"`
		Status string `json:"status"`
		UserID string `json:"user_id"`
		Email  string `json:"email"`
		Role   string `json:"role"`
	} `json:"items"`
}

func (j jobView) final() bool {
	return j.Status == "succeeded" || j.Status == "failed" || j.Status == "canceled"
}

// jobOn reads the job on the replica at base.
func jobOn(t *testing.T, h *harness, base, tok, id string) jobView {
	t.Helper()
	r := h.call(h.browser(), "GET", base, "/jobs/"+id, tok, nil)
	if r.status != http.StatusOK {
		t.Fatalf("GET /jobs/%s on %s: %d %s", id, base, r.status, r.body)
	}
	var j jobView
	r.json(t, &j)
	return j
}

// awaitJobOn polls the job on the replica at base until until(job) holds; it fails the test when
// the job ends (or a generous deadline passes) first.
func awaitJobOn(t *testing.T, h *harness, base, tok, id, what string, until func(jobView) bool) jobView {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		j := jobOn(t, h, base, tok, id)
		if until(j) {
			return j
		}
		if j.final() || time.Now().After(deadline) {
			t.Fatalf("job %s is %s (%+v), never %s", id, j.Status, j.Progress, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// budgetView is GET /integrated-accounts/{id}/budget.
type budgetView struct {
	Classes map[string]struct {
		Limit        int `json:"limit"`
		Remaining    int `json:"remaining"`
		UsedLastHour int `json:"used_last_hour"`
	} `json:"classes"`
	CooldownUntil *time.Time `json:"cooldown_until"`
	Reserve       float64    `json:"reserve"`
}

func budgetOf(t *testing.T, h *harness, tok, acct string) budgetView {
	t.Helper()
	r := h.do("GET", "/integrated-accounts/"+acct+"/budget", tok, nil)
	if r.status != http.StatusOK {
		t.Fatalf("budget: %d %s", r.status, r.body)
	}
	var b budgetView
	r.json(t, &b)
	return b
}

// submitSync starts a sync job on the replica at base and returns its id.
func submitSync(t *testing.T, h *harness, base, tok, q string, space int, body map[string]any) string {
	t.Helper()
	r := h.call(h.browser(), "POST", base, fmt.Sprintf("%s/workspaces/%d/members/sync?%s", dir, space, q), tok, body)
	if r.status != http.StatusAccepted {
		t.Fatalf("sync: %d %s", r.status, r.body)
	}
	var j jobView
	r.json(t, &j)
	return j.ID
}

// newcomers is a sync body adding n people who are not in Podio yet, by e-mail, as light members.
func newcomers(prefix string, n int) (map[string]any, []string) {
	var mails []string
	var members []map[string]any
	for i := range n {
		mail := fmt.Sprintf("%s.%02d@example.com", prefix, i)
		mails = append(mails, mail)
		members = append(members, map[string]any{"email": mail})
	}
	return map[string]any{"members": members, "default_role": "light", "mode": "add_only"}, mails
}

// no420s fails the test if the simulator ever answered 420, or the gateway saw one.
func no420s(t *testing.T, h *harness) {
	t.Helper()
	if got := h.sim.RateLimitedCalls(); len(got) != 0 {
		t.Errorf("Podio answered 420: %v", got)
	}
	if strings.Contains(h.logs.String(), "podio rate limited the key") {
		t.Error("the gateway logged a 420 from Podio")
	}
}

// quotaJobSetup links an account on a gateway and a simulator that both allow limit general calls
// an hour and keep the same time, with jobs. Both quota windows are empty when it returns. space
// is a workspace the linked person administers (Sales).
func quotaJobSetup(t *testing.T, limit int) (h *harness, tok, q, acct string, space int) {
	t.Helper()
	h, tok, q = directorySetup(t, harnessOptions{
		quotaGeneral: limit, simOnGatewayClock: true, jobs: true,
		sim: podiosim.Config{GeneralLimit: limit, InvitedInSpaceMembersV2: true},
	})
	acct = strings.TrimPrefix(q, "integrated_account_id=")
	space = 40001
	if podioMembers(t, h, tok, acct, space)[1000001].Role != "admin" {
		t.Fatalf("the linked person does not administer %d", space)
	}
	// Past every window: linking and the lookup above no longer count, in dirgate or in Podio.
	h.clock.Advance(61 * time.Minute)
	if b := budgetOf(t, h, tok, acct).Classes["general"]; b.Limit != limit || b.Remaining != limit {
		t.Fatalf("budget after the window passed: %+v", b)
	}
	return h, tok, q, acct, space
}

// spendInteractive makes n interactive Podio calls through the proxy, each of which must succeed.
func spendInteractive(t *testing.T, h *harness, tok, acct string, n int) {
	t.Helper()
	for i := range n {
		if r := h.do("GET", "/proxy/"+acct+"/org/", tok, nil); r.status != http.StatusOK {
			t.Fatalf("interactive call %d of %d: %d %s", i+1, n, r.status, r.body)
		}
	}
}

// TestSyncWaitsForQuota: a sync larger than the background budget left waits for quota instead of
// failing or provoking a 420; interactive reads keep working meanwhile; once the (compressed)
// hour has passed the job finishes with every member added, and Podio never answered 420.
func TestSyncWaitsForQuota(t *testing.T) {
	t.Parallel()
	const limit = 40
	background := limit * 8 / 10 // the default reserve is 20%
	h, tok, q, acct, space := quotaJobSetup(t, limit)

	const spent = 6
	spendInteractive(t, h, tok, acct, spent)
	if b := budgetOf(t, h, tok, acct).Classes["general"]; b.UsedLastHour != spent {
		t.Fatalf("after %d calls the budget shows %+v", spent, b)
	}
	// More adds than the background budget has left, even before the sync's own reads.
	n := background - spent + 6
	body, mails := newcomers("waiting", n)
	id := submitSync(t, h, h.url, tok, q, space, body)

	j := awaitJobOn(t, h, h.url, tok, id, "waiting_for_quota", func(j jobView) bool { return j.Status == "waiting_for_quota" })
	if j.WaitUntil == nil || !j.WaitUntil.After(h.clock.Now()) {
		t.Errorf("waiting job's wait_until %v is not in the future (now %v)", j.WaitUntil, h.clock.Now())
	}
	if j.Progress.Total != n || j.Progress.Done == 0 || j.Progress.Done >= n || j.Progress.Failed != 0 {
		t.Errorf("waiting job's progress %+v, want some of %d done", j.Progress, n)
	}
	done := j.Progress.Done

	// The reserve serves interactive reads while the job waits: through the proxy, and a
	// unified read that must reach Podio.
	if r := h.do("GET", "/proxy/"+acct+"/org/", tok, nil); r.status != http.StatusOK {
		t.Errorf("proxy read while the job waits: %d %s", r.status, r.body)
	}
	if r := h.get(h.url, dir+"/organizations/3001?"+q, tok, "Cache-Control", "no-cache"); r.status != http.StatusOK {
		t.Errorf("unified read while the job waits: %d %s", r.status, r.body)
	}
	if j := jobOn(t, h, h.url, tok, id); j.Status != "waiting_for_quota" || j.Progress.Done != done {
		t.Errorf("after the interactive reads the job is %s with %d done, want still waiting with %d", j.Status, j.Progress.Done, done)
	}
	no420s(t, h)

	h.clock.Advance(61 * time.Minute)
	j = awaitJobOn(t, h, h.url, tok, id, "finished", jobView.final)
	if j.Status != "succeeded" || j.Progress.Done != n || j.WaitUntil != nil {
		t.Fatalf("job after the window: %s %+v wait_until %v", j.Status, j.Progress, j.WaitUntil)
	}
	members := podioMembers(t, h, tok, acct, space)
	for _, mail := range mails {
		if m, ok := byMail(members, mail); !ok || m.Role != "light" {
			t.Errorf("%s in Podio: %+v (found %v)", mail, m, ok)
		}
	}
	// Each add went to Podio once: none was refused and retried.
	if got := h.sim.Calls()[podiosim.RouteAddSpaceMember]; got != n {
		t.Errorf("Podio saw %d adds for %d members", got, n)
	}
	no420s(t, h)
}

// TestJobsSpendOnlyBackgroundBudget: a job that needs more calls than limit*(1-reserve) stops at
// that line: while it waits the whole reserve is left, and interactive calls can spend all of it.
func TestJobsSpendOnlyBackgroundBudget(t *testing.T) {
	t.Parallel()
	const limit = 40
	h, tok, q, acct, space := quotaJobSetup(t, limit)
	b := budgetOf(t, h, tok, acct)
	if b.Reserve != 0.2 {
		t.Fatalf("reserve %v, want the default 0.2", b.Reserve)
	}
	reserve := limit - limit*8/10

	n := limit // more than the background share on its own
	body, _ := newcomers("background", n)
	id := submitSync(t, h, h.url, tok, q, space, body)
	j := awaitJobOn(t, h, h.url, tok, id, "waiting_for_quota", func(j jobView) bool { return j.Status == "waiting_for_quota" })
	done := j.Progress.Done

	// The job spent the background share to the last call, and none of the reserve.
	if g := budgetOf(t, h, tok, acct).Classes["general"]; g.Remaining != reserve || g.UsedLastHour != limit-reserve {
		t.Fatalf("while the job waits the budget shows %+v, want exactly the reserve (%d) left", g, reserve)
	}
	// All of it is there for interactive calls; the one after is refused by dirgate, not Podio.
	spendInteractive(t, h, tok, acct, reserve)
	r := h.get(h.url, dir+"/organizations/3001?"+q, tok, "Cache-Control", "no-cache")
	if r.status != http.StatusTooManyRequests || r.errorCode(t) != "rate_limited" || strings.Contains(string(r.body), `"remote"`) {
		t.Errorf("interactive call beyond the limit: %d %s", r.status, r.body)
	}
	if j := jobOn(t, h, h.url, tok, id); j.Status != "waiting_for_quota" || j.Progress.Done != done {
		t.Errorf("the job moved while only the reserve was spent: %s, %d done (was %d)", j.Status, j.Progress.Done, done)
	}
	no420s(t, h)

	h.clock.Advance(61 * time.Minute)
	if j := awaitJobOn(t, h, h.url, tok, id, "finished", jobView.final); j.Status != "succeeded" || j.Progress.Done != n {
		t.Fatalf("job after the window: %s %+v", j.Status, j.Progress)
	}
	no420s(t, h)
}

// roles maps user id to role.
func roles(ms map[int64]wsMember) map[string]string {
	out := map[string]string{}
	for id, m := range ms {
		out[strconv.FormatInt(id, 10)] = m.Role
	}
	return out
}

// syncPlan is the dry-run answer of a sync.
type syncPlan struct {
	Add []struct {
		UserID *string `json:"user_id"`
		Role   string  `json:"role"`
	} `json:"add"`
	ChangeRole []struct {
		UserID string `json:"user_id"`
		From   string `json:"from"`
		To     string `json:"to"`
	} `json:"change_role"`
	Remove []struct {
		UserID *string `json:"user_id"`
		Role   string  `json:"role"`
	} `json:"remove"`
	Unchanged []struct {
		UserID *string `json:"user_id"`
		Role   string  `json:"role"`
	} `json:"unchanged"`
	Conflicts []struct {
		UserID string `json:"user_id"`
		Reason string `json:"reason"`
	} `json:"conflicts"`
}

func (p syncPlan) changes() int { return len(p.Add) + len(p.ChangeRole) + len(p.Remove) }

// mirrorFrom runs a mirror sync of target from source: the dry run must plan exactly the source's
// members and roles (removing the others, except the linked person), the job must make the
// target's membership the source's (the linked person kept when the source lacks them), and a
// second dry run must plan nothing. It returns the finished job.
func mirrorFrom(t *testing.T, h *harness, tok, q string, source, target int) jobView {
	t.Helper()
	acct := strings.TrimPrefix(q, "integrated_account_id=")
	const linked = "1000001"
	src, tgt := roles(podioMembers(t, h, tok, acct, source)), roles(podioMembers(t, h, tok, acct, target))
	if tgt[linked] != "admin" {
		t.Fatalf("the linked person is %q in the target, want admin", tgt[linked])
	}
	want := maps.Clone(src)
	var wantConflicts []string
	if _, ok := src[linked]; !ok {
		want[linked] = tgt[linked]
		wantConflicts = []string{linked + " linked_person"}
	}
	path := fmt.Sprintf("%s/workspaces/%d/members/sync?%s", dir, target, q)
	body := map[string]any{"source_workspace_id": strconv.Itoa(source), "mode": "mirror", "dry_run": true}

	r := h.do("POST", path, tok, body)
	if r.status != http.StatusOK {
		t.Fatalf("dry run: %d %s", r.status, r.body)
	}
	var plan syncPlan
	r.json(t, &plan)
	planned := map[string]string{}
	for _, a := range plan.Add {
		if a.UserID == nil {
			t.Errorf("a member of the source is added without a user id: %+v", a)
			continue
		}
		planned[*a.UserID] = a.Role
	}
	for _, c := range plan.ChangeRole {
		planned[c.UserID] = c.To
	}
	for _, u := range plan.Unchanged {
		planned[*u.UserID] = u.Role
	}
	if !maps.Equal(planned, src) {
		t.Errorf("the plan's members %v, want the source's %v", planned, src)
	}
	var removed, wantRemoved, conflicts []string
	for _, rm := range plan.Remove {
		removed = append(removed, *rm.UserID)
	}
	for id := range tgt {
		if _, ok := src[id]; !ok && id != linked {
			wantRemoved = append(wantRemoved, id)
		}
	}
	for _, c := range plan.Conflicts {
		conflicts = append(conflicts, c.UserID+" "+c.Reason)
	}
	slices.Sort(removed)
	slices.Sort(wantRemoved)
	if !slices.Equal(removed, wantRemoved) || !slices.Equal(conflicts, wantConflicts) {
		t.Errorf("removals %v, conflicts %v; want %v, %v", removed, conflicts, wantRemoved, wantConflicts)
	}
	if plan.changes() == 0 {
		t.Fatal("the source and the target already agree: the test proves nothing")
	}
	if !maps.Equal(roles(podioMembers(t, h, tok, acct, target)), tgt) {
		t.Fatal("the dry run changed the target")
	}

	body["dry_run"] = false
	r = h.do("POST", path, tok, body)
	if r.status != http.StatusAccepted {
		t.Fatalf("sync: %d %s", r.status, r.body)
	}
	var job jobView
	r.json(t, &job)
	j := awaitJobOn(t, h, h.url, tok, job.ID, "finished", jobView.final)
	if j.Status != "succeeded" || j.Progress.Done != plan.changes() {
		t.Fatalf("sync job: %s %+v (%d planned changes): %+v", j.Status, j.Progress, plan.changes(), j.Items)
	}
	if got := roles(podioMembers(t, h, tok, acct, target)); !maps.Equal(got, want) {
		t.Errorf("after the sync the target is %v, want %v", got, want)
	}
	body["dry_run"] = true
	r = h.do("POST", path, tok, body)
	r.json(t, &plan)
	if r.status != http.StatusOK || plan.changes() != 0 {
		t.Errorf("a second dry run plans changes: %d %s", r.status, r.body)
	}
	return j
}

// TestSyncFromSourceWorkspace: a mirror sync from another workspace plans exactly the source's
// members and roles, and applying it makes the target's membership the source's, except that
// the linked person stays. Bad sources are refused with 4xx.
func TestSyncFromSourceWorkspace(t *testing.T) {
	t.Parallel()
	h, tok, q := directorySetup(t, harnessOptions{jobs: true, sim: podiosim.Config{InvitedInSpaceMembersV2: true}})
	const (
		sales, marketing, engineering, board = 40001, 40002, 40003, 40005
		research, community                  = 40006, 40008
	)
	// The linked person administers Sales and Engineering.
	t.Run("mirror", func(t *testing.T) { mirrorFrom(t, h, tok, q, sales, engineering) })

	t.Run("linked person not in the source", func(t *testing.T) {
		// Community is open, so the linked person can read it without being a member.
		h.simJSON("DELETE", fmt.Sprintf("/_sim/spaces/%d/members/1000001", community), nil, nil)
		mirrorFrom(t, h, tok, q, community, research)
	})

	t.Run("linked person demoted", func(t *testing.T) {
		// The linked person is a regular member of Marketing: the job demotes them in Engineering,
		// and must do so last, while it still has the rights for every other change.
		j := mirrorFrom(t, h, tok, q, marketing, engineering)
		if last := j.Items[len(j.Items)-1]; last.Action != "change_role" || last.UserID != "1000001" || last.Role != "regular" {
			t.Errorf("the job's last step is %+v, want the linked person's demotion", last)
		}
	})

	// Bad sources, for a target the linked person still administers.
	path := fmt.Sprintf("%s/workspaces/%d/members/sync?%s", dir, research, q)
	for _, tc := range []struct {
		name   string
		body   map[string]any
		status int
		code   string
	}{
		{"same as target", map[string]any{"source_workspace_id": strconv.Itoa(research), "mode": "mirror"}, 400, "invalid_request"},
		{"not a number", map[string]any{"source_workspace_id": "sales", "mode": "mirror"}, 400, "invalid_request"},
		{"zero", map[string]any{"source_workspace_id": "0", "mode": "mirror"}, 400, "invalid_request"},
		{"negative", map[string]any{"source_workspace_id": "-40001", "mode": "mirror"}, 400, "invalid_request"},
		{"a JSON number", map[string]any{"source_workspace_id": sales, "mode": "mirror"}, 400, "invalid_request"},
		{"and members", map[string]any{"source_workspace_id": strconv.Itoa(sales), "members": []map[string]any{{"email": "a@example.com"}}, "mode": "mirror"}, 400, "invalid_request"},
		{"unknown", map[string]any{"source_workspace_id": "49999", "mode": "mirror"}, 404, "not_found"},
		// The Board Room is closed and the linked person is not in it: Podio refuses to list it.
		{"not visible", map[string]any{"source_workspace_id": strconv.Itoa(board), "mode": "mirror"}, 403, "forbidden_upstream"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, dry := range []bool{true, false} {
				tc.body["dry_run"] = dry
				r := h.do("POST", path, tok, tc.body)
				if r.status != tc.status || r.errorCode(t) != tc.code || !strings.Contains(string(r.body), "source") {
					t.Errorf("dry_run %v: %d %s, want %d %s", dry, r.status, r.body, tc.status, tc.code)
				}
			}
		})
	}
}

// TestJobsAcrossReplicas: a job submitted on one replica is visible on every replica, its items
// run exactly once, another replica can cancel it, and other tenants cannot see it.
func TestJobsAcrossReplicas(t *testing.T) {
	t.Parallel()
	h, tok, q := directorySetup(t, harnessOptions{replicas: 3, jobs: true, sim: podiosim.Config{InvitedInSpaceMembersV2: true}})
	acct := strings.TrimPrefix(q, "integrated_account_id=")
	const space = 40001
	other := h.token("globex")
	rep := func(i int) string { return h.replicas[i].ts.URL }

	h.sim.ResetCalls()
	const n = 8
	body, mails := newcomers("replicas", n)
	id := submitSync(t, h, rep(0), tok, q, space, body)
	for i := range h.replicas {
		if j := jobOn(t, h, rep(i), tok, id); j.ID != id || j.Progress.Total != n {
			t.Errorf("replica %d shows %+v", i, j)
		}
		var list struct {
			Results []jobView `json:"results"`
		}
		r := h.call(h.browser(), "GET", rep(i), "/jobs?"+q, tok, nil)
		r.json(t, &list)
		if r.status != http.StatusOK || len(list.Results) != 1 || list.Results[0].ID != id {
			t.Errorf("GET /jobs on replica %d: %d %s", i, r.status, r.body)
		}
	}
	if j := awaitJobOn(t, h, rep(2), tok, id, "finished", jobView.final); j.Status != "succeeded" || j.Progress.Done != n {
		t.Fatalf("job: %s %+v", j.Status, j.Progress)
	}
	// Three replicas with four workers each: still one Podio write per item.
	if got := h.sim.Calls()[podiosim.RouteAddSpaceMember]; got != n {
		t.Errorf("Podio saw %d adds for %d items", got, n)
	}
	members := podioMembers(t, h, tok, acct, space)
	for _, mail := range mails {
		if _, ok := byMail(members, mail); !ok {
			t.Errorf("%s was not added", mail)
		}
	}

	t.Run("other tenant", func(t *testing.T) {
		for i := range h.replicas {
			if r := h.call(h.browser(), "GET", rep(i), "/jobs/"+id, other, nil); r.status != http.StatusNotFound || r.errorCode(t) != "not_found" {
				t.Errorf("replica %d: another tenant reads the job: %d %s", i, r.status, r.body)
			}
			if r := h.call(h.browser(), "POST", rep(i), "/jobs/"+id+"/cancel", other, nil); r.status != http.StatusNotFound || r.errorCode(t) != "not_found" {
				t.Errorf("replica %d: another tenant cancels the job: %d %s", i, r.status, r.body)
			}
			var list struct {
				Results []jobView `json:"results"`
			}
			h.call(h.browser(), "GET", rep(i), "/jobs?"+q, other, nil).json(t, &list)
			if len(list.Results) != 0 {
				t.Errorf("replica %d lists another tenant's jobs: %+v", i, list.Results)
			}
		}
	})

	t.Run("cancel elsewhere", func(t *testing.T) {
		// Slow adds keep the job running long enough to cancel it from another replica.
		if err := h.sim.AddFault(podiosim.Fault{Route: podiosim.RouteAddSpaceMember, LatencyMS: 200}); err != nil {
			t.Fatal(err)
		}
		defer h.sim.ClearFaults()
		h.sim.ResetCalls()
		const n = 30
		body, _ := newcomers("canceled", n)
		id := submitSync(t, h, rep(0), tok, q, space, body)
		awaitJobOn(t, h, rep(1), tok, id, "running with an item done", func(j jobView) bool { return j.Progress.Done > 0 })
		r := h.call(h.browser(), "POST", rep(2), "/jobs/"+id+"/cancel", tok, nil)
		var j jobView
		r.json(t, &j)
		if r.status != http.StatusAccepted || !j.CancelRequested {
			t.Fatalf("cancel on replica 2: %d %s", r.status, r.body)
		}
		j = awaitJobOn(t, h, rep(1), tok, id, "finished", jobView.final)
		if j.Status != "canceled" || j.Progress.Done == 0 || j.Progress.Done >= n || j.CancelRequested {
			t.Fatalf("canceled job: %s %+v cancel_requested %v", j.Status, j.Progress, j.CancelRequested)
		}
		// The job stopped between items: every add Podio saw is a done item, the rest never ran.
		if got := h.sim.Calls()[podiosim.RouteAddSpaceMember]; got != j.Progress.Done {
			t.Errorf("Podio saw %d adds, the job reports %d done", got, j.Progress.Done)
		}
		for _, it := range j.Items[j.Progress.Done:] {
			if it.Status != "pending" {
				t.Errorf("item after the cancel: %+v", it)
			}
		}
		for i := range h.replicas {
			if j := jobOn(t, h, rep(i), tok, id); j.Status != "canceled" {
				t.Errorf("replica %d shows the canceled job as %s", i, j.Status)
			}
		}
		if r := h.call(h.browser(), "POST", rep(0), "/jobs/"+id+"/cancel", tok, nil); r.status != http.StatusConflict || r.errorCode(t) != "job_finished" {
			t.Errorf("second cancel: %d %s", r.status, r.body)
		}
	})
}

// A tenant at its cap of unfinished jobs is refused with 429 too_many_jobs and Retry-After, and
// nothing is stored; once a job finishes, the next one is accepted.
func TestJobCapAnswers429(t *testing.T) {
	t.Parallel()
	h, tok, q := directorySetup(t, harnessOptions{jobs: true, jobMaxActive: 1, sim: podiosim.Config{InvitedInSpaceMembersV2: true}})
	const space = 40001
	// The first job stays unfinished while the second is submitted.
	if err := h.sim.AddFault(podiosim.Fault{Route: podiosim.RouteAddSpaceMember, LatencyMS: 1500, Times: 1}); err != nil {
		t.Fatal(err)
	}
	first, _ := newcomers("cap-a", 1)
	id := submitSync(t, h, h.url, tok, q, space, first)
	second, _ := newcomers("cap-b", 1)
	r := h.call(h.browser(), "POST", h.url, fmt.Sprintf("%s/workspaces/%d/members/sync?%s", dir, space, q), tok, second)
	if r.status != http.StatusTooManyRequests || r.errorCode(t) != "too_many_jobs" || r.header.Get("Retry-After") != "60" {
		t.Fatalf("second job at the cap: %d %s (Retry-After %q), want 429 too_many_jobs", r.status, r.body, r.header.Get("Retry-After"))
	}
	var list struct {
		Results []jobView `json:"results"`
	}
	h.call(h.browser(), "GET", h.url, "/jobs?"+q, tok, nil).json(t, &list)
	if len(list.Results) != 1 || list.Results[0].ID != id {
		t.Errorf("jobs listed after the refusal: %+v", list.Results)
	}
	awaitJobOn(t, h, h.url, tok, id, "finished", jobView.final)
	submitSync(t, h, h.url, tok, q, space, second)
}
