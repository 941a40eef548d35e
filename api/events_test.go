package api_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/dirgate/dirgate/adapters/podio/podiosim"
)

// feedEvent is an event as GET /events shows it.
type feedEvent struct {
	ID      string         `json:"id"`
	Type    string         `json:"type"`
	Tenant  string         `json:"tenant_id"`
	Account string         `json:"integrated_account_id"`
	Data    map[string]any `json:"data"`
}

type feedPage struct {
	Results   []feedEvent `json:"results"`
	NextAfter *string     `json:"next_after"`
	HasMore   bool        `json:"has_more"`
}

// feed reads the tenant's events (query: extra parameters).
func feed(t *testing.T, h *harness, tok, query string) feedPage {
	t.Helper()
	r := h.do("GET", "/events?"+query, tok, nil)
	if r.status != http.StatusOK {
		t.Fatalf("GET /events?%s: %d %s", query, r.status, r.body)
	}
	var p feedPage
	r.json(t, &p)
	return p
}

func types(evs []feedEvent) []string {
	var out []string
	for _, e := range evs {
		out = append(out, e.Type)
	}
	return out
}

// TestAccountLifecycleEvents: linking, a refused refresh, re-linking and deleting an account
// each record their event once, with the account (never a credential) as data.
func TestAccountLifecycleEvents(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{sim: podiosim.Config{AccessTokenTTL: time.Hour}})
	p := h.person()
	_, loc := p.finish(p.authorize(p.startLink("tenant-a", appRedirect, ""), "admin@demo.example", "demo", "allow"))
	id := h.linked("tenant-a", loc)
	tok := h.token("tenant-a")

	h.sim.Advance(29 * 24 * time.Hour)
	h.clock.Advance(29 * 24 * time.Hour)
	// Two calls: the account is marked needs_reauth once.
	for range 2 {
		if r := h.do("POST", "/integrated-accounts/"+id+"/check", tok, nil); r.status != http.StatusFailedDependency {
			t.Fatalf("check with refused credentials: %d %s", r.status, r.body)
		}
	}
	p2 := h.person()
	if _, loc = p2.finish(p2.authorize(p2.startLink("tenant-a", appRedirect, id), "admin@demo.example", "demo", "allow")); h.linked("tenant-a", loc) != id {
		t.Fatalf("re-link: %v", loc)
	}
	_, creds, err := h.replicas[0].store.LoadCredentials(t.Context(), "tenant-a", id)
	if err != nil {
		t.Fatal(err)
	}
	if r := h.do("DELETE", "/integrated-accounts/"+id, tok, nil); r.status != http.StatusNoContent {
		t.Fatalf("delete: %d %s", r.status, r.body)
	}

	page := feed(t, h, tok, "")
	want := []string{"integrated_account.created", "integrated_account.needs_reauth", "integrated_account.reactivated", "integrated_account.deleted"}
	if fmt.Sprint(types(page.Results)) != fmt.Sprint(want) {
		t.Fatalf("events %v, want %v", types(page.Results), want)
	}
	status := []string{"active", "needs_reauth", "active", "active"}
	for i, e := range page.Results {
		if e.Tenant != "tenant-a" || e.Account != id || e.Data["id"] != id || e.Data["status"] != status[i] {
			t.Errorf("event %d = %+v", i, e)
		}
	}
	raw := h.do("GET", "/events", tok, nil).body
	for _, secret := range []string{creds.AccessToken, creds.RefreshToken, "demo-secret", `"access_token"`, `"refresh_token"`, `"password"`} {
		if strings.Contains(string(raw), secret) {
			t.Errorf("the feed holds a credential (%.12q...): %s", secret, raw)
		}
	}
	// Another tenant sees none of it.
	if other := feed(t, h, h.token("tenant-b"), ""); len(other.Results) != 0 {
		t.Errorf("another tenant sees %v", types(other.Results))
	}
}

// TestEventsFeed: paging with after and limit, the account filter, job events, bad input.
func TestEventsFeed(t *testing.T) {
	t.Parallel()
	h, tok, q := directorySetup(t, harnessOptions{jobs: true, sim: podiosim.Config{InvitedInSpaceMembersV2: true}})
	acct := q[len("integrated_account_id="):]
	second := h.linkPassword("acme", "member@demo.example")

	// A sync job: its end is an event of the account.
	r := h.do("POST", fmt.Sprintf("%s/workspaces/%d/members/sync?%s", dir, 40001, q), tok,
		map[string]any{"members": []map[string]any{{"email": "feed.one@example.com"}}, "mode": "add_only"})
	var job struct{ ID string }
	r.json(t, &job)
	if r.status != http.StatusAccepted {
		t.Fatalf("sync: %d %s", r.status, r.body)
	}
	awaitJob(t, h, tok, job.ID)
	var all feedPage
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if all = feed(t, h, tok, ""); len(all.Results) == 3 || time.Now().After(deadline) {
			break
		}
	}
	want := []string{"integrated_account.created", "integrated_account.created", "job.succeeded"}
	if fmt.Sprint(types(all.Results)) != fmt.Sprint(want) || all.HasMore || *all.NextAfter != all.Results[2].ID {
		t.Fatalf("feed %v has_more %v; want %v", types(all.Results), all.HasMore, want)
	}
	if d := all.Results[2].Data; d["id"] != job.ID || d["status"] != "succeeded" || all.Results[2].Account != acct {
		t.Errorf("job event %+v", all.Results[2])
	}

	// Pages.
	p1 := feed(t, h, tok, "limit=2")
	if len(p1.Results) != 2 || !p1.HasMore || *p1.NextAfter != all.Results[1].ID {
		t.Fatalf("first page %+v", p1)
	}
	p2 := feed(t, h, tok, "limit=2&after="+*p1.NextAfter)
	if len(p2.Results) != 1 || p2.Results[0].ID != all.Results[2].ID || p2.HasMore {
		t.Fatalf("second page %+v", p2)
	}
	// Caught up: nothing new, and next_after stays where the caller is.
	p3 := feed(t, h, tok, "after="+*p2.NextAfter)
	if len(p3.Results) != 0 || p3.NextAfter == nil || *p3.NextAfter != *p2.NextAfter {
		t.Fatalf("caught-up page %+v", p3)
	}
	// One account's events.
	if mine := feed(t, h, tok, "integrated_account_id="+second); len(mine.Results) != 1 || mine.Results[0].Account != second {
		t.Errorf("account filter: %v", mine.Results)
	}

	for _, bad := range []string{"after=evt_x", "after=123", "limit=0", "limit=501", "limit=x", "cursor=1",
		"after=evt_99999999999999999999-0", "after=evt_1-99999999999999999999"} {
		if r := h.do("GET", "/events?"+bad, tok, nil); r.status != http.StatusBadRequest {
			t.Errorf("GET /events?%s: %d %s", bad, r.status, r.body)
		}
	}
	if r := h.do("GET", "/events", "", nil); r.status != http.StatusUnauthorized {
		t.Errorf("without a token: %d", r.status)
	}
}
