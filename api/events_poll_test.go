package api_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dirgate/dirgate/internal/events"
)

// accountEvents is the events object of an integrated account.
type accountEvents struct {
	Enabled       bool       `json:"enabled"`
	Interval      string     `json:"interval"`
	LastPollAt    *time.Time `json:"last_poll_at"`
	LastPollError *string    `json:"last_poll_error"`
}

func (h *harness) accountEvents(tok, acct string) accountEvents {
	h.t.Helper()
	var a struct{ Events accountEvents }
	r := h.do("GET", "/integrated-accounts/"+acct, tok, nil)
	if r.status != http.StatusOK {
		h.t.Fatalf("GET account: %d %s", r.status, r.body)
	}
	r.json(h.t, &a)
	return a.Events
}

// setEvents sends PATCH /integrated-accounts/{id} with the events object.
func (h *harness) setEvents(tok, acct string, events map[string]any) accountEvents {
	h.t.Helper()
	r := h.do("PATCH", "/integrated-accounts/"+acct, tok, map[string]any{"events": events})
	if r.status != http.StatusOK {
		h.t.Fatalf("PATCH events %v: %d %s", events, r.status, r.body)
	}
	var a struct{ Events accountEvents }
	r.json(h.t, &a)
	return a.Events
}

// awaitPoll waits until a poll of the account that ended at since or later has been recorded,
// and fails on a failed one unless failure is what the test waits for (wantErr).
func (h *harness) awaitPoll(tok, acct string, since time.Time, wantErr string) accountEvents {
	h.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		ev := h.accountEvents(tok, acct)
		switch {
		case wantErr == "" && ev.LastPollAt != nil && !ev.LastPollAt.Before(since):
			if ev.LastPollError != nil {
				h.t.Fatalf("poll failed: %s", *ev.LastPollError)
			}
			return ev
		case wantErr != "" && ev.LastPollError != nil && *ev.LastPollError == wantErr:
			return ev
		case wantErr != "" && ev.LastPollAt != nil && !ev.LastPollAt.Before(since):
			h.t.Fatalf("a poll succeeded; want it to fail with %s", wantErr)
		}
		if time.Now().After(deadline) {
			code := ""
			if ev.LastPollError != nil {
				code = *ev.LastPollError
			}
			h.t.Fatalf("no poll of %s since %v (want error %q): %+v (error %q)", acct, since, wantErr, ev, code)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// nextPoll moves the clock past the poll interval and every cache TTL, and waits for the poll.
func (h *harness) nextPoll(tok, acct string) {
	h.t.Helper()
	h.clock.Advance(11 * time.Minute)
	h.awaitPoll(tok, acct, h.clock.Now(), "")
}

// pollsLogged counts the polls of the account the replicas logged, all replicas together.
func (h *harness) pollsLogged(acct string) int {
	n := 0
	for _, line := range strings.Split(h.logs.String(), "\n") {
		if strings.Contains(line, `"msg":"events: account polled"`) && strings.Contains(line, `"integrated_account_id":"`+acct+`"`) {
			n++
		}
	}
	return n
}

// eventLog reads the account's directory events (not its account and job events), rendered as
// lines that name their type and key data.
func (h *harness) eventLog(tenant, acct string) []string {
	h.t.Helper()
	list, _, err := h.replicas[0].events.List(h.t.Context(), tenant, acct, "", 1000)
	if err != nil {
		h.t.Fatal(err)
	}
	out := []string{}
	for _, e := range list {
		if strings.HasPrefix(e.Type, "integrated_account.") || strings.HasPrefix(e.Type, "job.") {
			continue
		}
		out = append(out, renderEvent(h.t, e))
	}
	return out
}

func renderEvent(t *testing.T, e events.Event) string {
	t.Helper()
	var d struct {
		WorkspaceID    string `json:"workspace_id"`
		OrganizationID string `json:"organization_id"`
		UserID         string `json:"user_id"`
		Name           string `json:"name"`
		Role           string `json:"role"`
		PreviousRole   string `json:"previous_role"`
		Origin         string `json:"origin"`
		Changes        map[string]struct{ Old, New string }
	}
	if err := json.Unmarshal(e.Data, &d); err != nil {
		t.Fatalf("event %s data: %v", e.ID, err)
	}
	switch {
	case strings.HasPrefix(e.Type, "membership."):
		return fmt.Sprintf("%s %s/%s %s<-%s %s", e.Type, d.WorkspaceID, d.UserID, d.Role, d.PreviousRole, d.Origin)
	case strings.HasPrefix(e.Type, "workspace."):
		return fmt.Sprintf("%s %s %q org %s %s", e.Type, d.WorkspaceID, d.Name, d.OrganizationID, d.Origin)
	case e.Type == events.UserUpdated:
		var ch []string
		for f, c := range d.Changes {
			ch = append(ch, fmt.Sprintf("%s:%s->%s", f, c.Old, c.New))
		}
		slices.Sort(ch)
		return fmt.Sprintf("%s %s %s %s", e.Type, d.UserID, strings.Join(ch, ","), d.Origin)
	}
	return fmt.Sprintf("%s %s %q %s", e.Type, d.UserID, d.Name, d.Origin)
}

// newEvents returns the events after the first n.
func newEvents(all []string, n int) []string {
	if len(all) < n {
		return nil
	}
	return all[n:]
}

// TestPollerReportsOutOfBandChanges: with three replicas polling, changes made in Podio behind
// dirgate's back (members added, removed, re-roled, a person renamed, a person and a workspace
// appearing and disappearing) are reported once each, in order; a poll with nothing changed
// reports nothing; and exactly one replica polls per interval.
func TestPollerReportsOutOfBandChanges(t *testing.T) {
	t.Parallel()
	h, tok, q := directorySetup(t, harnessOptions{replicas: 3, poller: true})
	acct := strings.TrimPrefix(q, "integrated_account_id=")

	start := h.clock.Now()
	if ev := h.setEvents(tok, acct, map[string]any{"enabled": true, "interval": "2m"}); !ev.Enabled || ev.Interval != "2m" {
		t.Fatalf("enabled: %+v", ev)
	}
	h.awaitPoll(tok, acct, start, "")
	if got := h.eventLog("acme", acct); len(got) != 0 {
		t.Fatalf("the baseline poll reported %v", got)
	}

	// Round 1. The linked person joins the Board Room, a closed workspace they could not see:
	// it appears, with its members.
	h.simJSON("POST", "/_sim/spaces/40002/members", map[string]any{"user_id": 1000003, "role": "light"}, nil)
	h.simJSON("DELETE", "/_sim/spaces/40003/members/1000006", nil, nil)
	h.simJSON("PUT", "/_sim/spaces/40001/members/1000002", map[string]any{"role": "admin"}, nil)
	h.simJSON("PATCH", "/_sim/people/1000004", map[string]any{"name": "Henry O. Osei"}, nil)
	var nina struct {
		UserID int64 `json:"user_id"`
	}
	h.simJSON("POST", "/_sim/people", map[string]any{"name": "Nina Newcomer", "mail": "nina@northwind.example", "org_id": 3001}, &nina)
	h.simJSON("POST", "/_sim/spaces/40005/members", map[string]any{"user_id": 1000001, "role": "regular"}, nil)
	h.nextPoll(tok, acct)
	want := []string{
		`workspace.added 40005 "Board Room" org 3001 poll`,
		fmt.Sprintf(`user.added %d "Nina Newcomer" poll`, nina.UserID),
		"membership.added 40002/1000003 workspace_light<- poll",
		"membership.added 40005/1000001 workspace_regular<- poll",
		"membership.added 40005/1000003 workspace_admin<- poll",
		"membership.added 40005/1000004 workspace_regular<- poll",
		"membership.role_changed 40001/1000002 workspace_admin<-workspace_regular poll",
		"membership.removed 40003/1000006 <-workspace_light poll",
		"user.updated 1000004 name:Henry Osei->Henry O. Osei poll",
	}
	got := h.eventLog("acme", acct)
	if diff := slicesDiff(want, got); diff != "" {
		t.Fatalf("round 1 events:\n%s", diff)
	}

	// Round 2: the Board Room disappears again, and so does the new person.
	h.simJSON("DELETE", "/_sim/spaces/40005/members/1000001", nil, nil)
	h.simJSON("DELETE", fmt.Sprintf("/_sim/people/%d", nina.UserID), nil, nil)
	h.nextPoll(tok, acct)
	want2 := []string{
		"membership.removed 40005/1000001 <-workspace_regular poll",
		"membership.removed 40005/1000003 <-workspace_admin poll",
		"membership.removed 40005/1000004 <-workspace_regular poll",
		fmt.Sprintf(`user.removed %d "Nina Newcomer" poll`, nina.UserID),
		`workspace.removed 40005 "Board Room" org 3001 poll`,
	}
	if diff := slicesDiff(want2, newEvents(h.eventLog("acme", acct), len(want))); diff != "" {
		t.Fatalf("round 2 events:\n%s", diff)
	}

	// Round 3: nothing changed, nothing is reported.
	h.nextPoll(tok, acct)
	if extra := newEvents(h.eventLog("acme", acct), len(want)+len(want2)); len(extra) != 0 {
		t.Fatalf("a poll with no change reported %v", extra)
	}
	// Four intervals (the baseline and three rounds), three replicas racing: four polls.
	if n := h.pollsLogged(acct); n != 4 {
		t.Errorf("%d polls logged, want 4: one replica per interval", n)
	}
}

// slicesDiff describes how got differs from want, or "".
func slicesDiff(want, got []string) string {
	if slices.Equal(want, got) {
		return ""
	}
	return fmt.Sprintf("want:\n  %s\ngot:\n  %s", strings.Join(want, "\n  "), strings.Join(got, "\n  "))
}

// TestOwnWritesReportedOnce: membership writes through dirgate (single writes and a sync job)
// are reported at once; the next poll does not report them again, but does report what happened
// in Podio after one of them.
func TestOwnWritesReportedOnce(t *testing.T) {
	t.Parallel()
	h, tok, q := directorySetup(t, harnessOptions{replicas: 3, poller: true, jobs: true})
	acct := strings.TrimPrefix(q, "integrated_account_id=")
	start := h.clock.Now()
	h.setEvents(tok, acct, map[string]any{"enabled": true, "interval": "2m"})
	h.awaitPoll(tok, acct, start, "")

	ws := func(id int) string { return fmt.Sprintf("%s/workspaces/%d/members", dir, id) }
	if r := h.do("POST", ws(40001)+"?"+q, tok, map[string]any{"user_id": "1000003", "role": "light"}); r.status != http.StatusCreated {
		t.Fatalf("add: %d %s", r.status, r.body)
	}
	want := []string{"membership.added 40001/1000003 workspace_light<- dirgate"}
	if diff := slicesDiff(want, h.eventLog("acme", acct)); diff != "" {
		t.Fatalf("right after the add:\n%s", diff)
	}
	if r := h.do("PATCH", ws(40001)+"/1000003?"+q, tok, map[string]any{"role": "regular"}); r.status != http.StatusOK {
		t.Fatalf("change role: %d %s", r.status, r.body)
	}
	if r := h.do("DELETE", ws(40003)+"/1000006?"+q, tok, nil); r.status != http.StatusNoContent {
		t.Fatalf("remove: %d %s", r.status, r.body)
	}
	// Henry is added through dirgate, then made admin in Podio before the next poll.
	if r := h.do("POST", ws(40001)+"?"+q, tok, map[string]any{"user_id": "1000004", "role": "regular"}); r.status != http.StatusCreated {
		t.Fatalf("add: %d %s", r.status, r.body)
	}
	h.simJSON("PUT", "/_sim/spaces/40001/members/1000004", map[string]any{"role": "admin"}, nil)
	// A sync job adds him to Engineering.
	r := h.do("POST", ws(40003)+"/sync?"+q, tok, map[string]any{"members": []map[string]any{{"user_id": "1000004", "role": "light"}}, "mode": "add_only"})
	if r.status != http.StatusAccepted {
		t.Fatalf("sync: %d %s", r.status, r.body)
	}
	var job struct{ ID string }
	r.json(t, &job)
	if j := awaitJob(t, h, tok, job.ID); j["status"] != "succeeded" {
		t.Fatalf("sync job: %v", j)
	}
	want = append(want,
		"membership.role_changed 40001/1000003 workspace_regular<-workspace_light dirgate",
		"membership.removed 40003/1000006 <-workspace_light dirgate",
		"membership.added 40001/1000004 workspace_regular<- dirgate",
		"membership.added 40003/1000004 workspace_light<- dirgate",
	)
	if diff := slicesDiff(want, h.eventLog("acme", acct)); diff != "" {
		t.Fatalf("after the writes, before a poll:\n%s", diff)
	}

	h.nextPoll(tok, acct)
	want = append(want, "membership.role_changed 40001/1000004 workspace_admin<-workspace_regular poll")
	if diff := slicesDiff(want, h.eventLog("acme", acct)); diff != "" {
		t.Fatalf("after the poll (own writes must not come again):\n%s", diff)
	}
	h.nextPoll(tok, acct)
	if diff := slicesDiff(want, h.eventLog("acme", acct)); diff != "" {
		t.Fatalf("after a second poll:\n%s", diff)
	}
}

// TestPollerSpendsBackgroundBudget: with the background share of the budget spent (by
// interactive calls), a poll calls Podio not at all and records rate_limited, while interactive
// calls still go through; an hour later it succeeds. Accounts without events enabled, or with
// them turned off, are not polled.
func TestPollerSpendsBackgroundBudget(t *testing.T) {
	t.Parallel()
	// Background calls may use 80 (DIRGATE_QUOTA_RESERVE 0.2); a cold poll of the demo needs
	// about 25.
	const limit = 100
	h, tok, q := directorySetup(t, harnessOptions{poller: true, quotaGeneral: limit})
	acct := strings.TrimPrefix(q, "integrated_account_id=")
	other := h.linkPassword("acme", "member@demo.example")
	for range 80 {
		if r := h.get(h.url, dir+"/organizations/3001?"+q, tok, "Cache-Control", "no-cache"); r.status != http.StatusOK {
			t.Fatalf("interactive read: %d %s", r.status, r.body)
		}
	}
	before := totalCalls(h.sim.Calls())
	h.setEvents(tok, acct, map[string]any{"enabled": true, "interval": "2m"})
	ev := h.awaitPoll(tok, acct, time.Time{}, "rate_limited")
	if ev.LastPollAt != nil {
		t.Errorf("a refused poll was recorded as done: %+v", ev)
	}
	if n := totalCalls(h.sim.Calls()) - before; n != 0 {
		t.Errorf("the refused poll made %d Podio calls: %v", n, h.sim.Calls())
	}
	if r := h.get(h.url, dir+"/organizations/3002?"+q, tok, "Cache-Control", "no-cache"); r.status != http.StatusOK {
		t.Errorf("an interactive read within the reserve: %d %s", r.status, r.body)
	}

	// An hour later the budget has room again.
	h.clock.Advance(61 * time.Minute)
	h.awaitPoll(tok, acct, h.clock.Now(), "")
	if totalCalls(h.sim.Calls()) == before {
		t.Error("the poll made no Podio calls: the test proves nothing")
	}

	// The other account was never enabled: never polled.
	if ev := h.accountEvents(tok, other); ev.Enabled || ev.LastPollAt != nil || ev.LastPollError != nil || h.pollsLogged(other) != 0 {
		t.Errorf("an account without events was polled: %+v, %d polls", ev, h.pollsLogged(other))
	}
	// Turned off, the first one is not polled again, while the other, turned on, is.
	polls := h.pollsLogged(acct)
	if ev := h.setEvents(tok, acct, map[string]any{"enabled": false}); ev.Enabled {
		t.Fatalf("disabled: %+v", ev)
	}
	h.clock.Advance(11 * time.Minute)
	at := h.clock.Now()
	h.setEvents(tok, other, map[string]any{"enabled": true})
	h.awaitPoll(tok, other, at, "")
	if n := h.pollsLogged(acct); n != polls {
		t.Errorf("a disabled account was polled: %d polls, %d before disabling", n, polls)
	}
}

// TestEventsSetting: PATCH /integrated-accounts/{id} changes only events, checks them, and every
// account answer carries the events object.
func TestEventsSetting(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{allowPassword: true})
	tok := h.token("acme")
	acct := h.linkPassword("acme", "admin@demo.example")
	if ev := h.accountEvents(tok, acct); ev.Enabled || ev.Interval != "10m" || ev.LastPollAt != nil {
		t.Errorf("a new account's events: %+v, want disabled with the default interval", ev)
	}
	if ev := h.setEvents(tok, acct, map[string]any{"interval": "90s"}); ev.Enabled || ev.Interval != "1m30s" {
		t.Errorf("interval only: %+v", ev)
	}
	if ev := h.setEvents(tok, acct, map[string]any{"enabled": true}); !ev.Enabled || ev.Interval != "1m30s" {
		t.Errorf("enabled only: %+v, want the interval kept", ev)
	}
	var list struct {
		Data []struct{ Events accountEvents }
	}
	h.do("GET", "/integrated-accounts", tok, nil).json(t, &list)
	if len(list.Data) != 1 || !list.Data[0].Events.Enabled {
		t.Errorf("list: %+v", list)
	}
	for name, body := range map[string]any{
		"no events":          map[string]any{},
		"unknown field":      map[string]any{"events": map[string]any{"enabled": true}, "name": "x"},
		"unknown events key": map[string]any{"events": map[string]any{"enabled": true, "webhook": "x"}},
		"not a duration":     map[string]any{"events": map[string]any{"interval": "often"}},
		"below the minimum":  map[string]any{"events": map[string]any{"interval": "500ms"}},
		"negative":           map[string]any{"events": map[string]any{"interval": "-5m"}},
		"enabled not bool":   map[string]any{"events": map[string]any{"enabled": "yes"}},
	} {
		if r := h.do("PATCH", "/integrated-accounts/"+acct, tok, body); r.status != http.StatusBadRequest {
			t.Errorf("%s: %d %s", name, r.status, r.body)
		}
	}
	if r := h.do("PATCH", "/integrated-accounts/"+acct, h.token("other-tenant"), map[string]any{"events": map[string]any{"enabled": false}}); r.status != http.StatusNotFound {
		t.Errorf("another tenant: %d %s", r.status, r.body)
	}
	if ev := h.accountEvents(tok, acct); !ev.Enabled || ev.Interval != "1m30s" {
		t.Errorf("refused changes changed the account: %+v", ev)
	}
}
