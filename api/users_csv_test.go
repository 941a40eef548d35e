package api_test

import (
	"bytes"
	"encoding/csv"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dirgate/dirgate/adapters/podio/podiosim"
)

// wantUserCSVHeader is the documented column order (openapi.yaml, listUsers).
var wantUserCSVHeader = []string{
	"id", "name", "first_name", "last_name", "email", "emails", "status", "title", "is_employee",
	"timezone", "locale", "last_active_at", "created_at",
	"organization_ids", "organization_roles", "workspace_ids", "workspace_roles", "avatar",
}

// getCSV asks for path as CSV and fails unless the answer is a CSV file.
func (h *harness) getCSV(path, token string, header ...string) (response, [][]string) {
	h.t.Helper()
	r := h.get(h.url, path, token, append([]string{"Accept", "text/csv"}, header...)...)
	if r.status != http.StatusOK {
		h.t.Fatalf("GET %s as CSV: %d %s", path, r.status, r.body)
	}
	if ct := r.header.Get("Content-Type"); ct != "text/csv; charset=utf-8" {
		h.t.Fatalf("GET %s as CSV: Content-Type %q", path, ct)
	}
	recs, err := csv.NewReader(bytes.NewReader(r.body)).ReadAll()
	if err != nil {
		h.t.Fatalf("GET %s as CSV: body does not parse: %v\n%.500s", path, err, r.body)
	}
	if len(recs) == 0 || !slices.Equal(recs[0], wantUserCSVHeader) {
		h.t.Fatalf("GET %s as CSV: header row %q, want %q", path, recs, wantUserCSVHeader)
	}
	return r, recs
}

// csvIDs is the id column of the data rows.
func csvIDs(recs [][]string) []string {
	var ids []string
	for _, rec := range recs[1:] {
		ids = append(ids, rec[0])
	}
	return ids
}

// csvRow returns the cells of the row with the given id, keyed by column.
func csvRow(t *testing.T, recs [][]string, id string) map[string]string {
	t.Helper()
	for _, rec := range recs[1:] {
		if rec[0] == id {
			row := map[string]string{}
			for i, col := range recs[0] {
				row[col] = rec[i]
			}
			return row
		}
	}
	t.Fatalf("no CSV row for user %s", id)
	return nil
}

// TestUsersCSVMatchesJSONCrawl: the CSV of a filtered list holds the same users, in the same
// order, as a JSON crawl of the same filters, with the JSON's values flattened into cells.
func TestUsersCSVMatchesJSONCrawl(t *testing.T) {
	t.Parallel()
	h, tok, q := directorySetup(t, harnessOptions{})
	all := usersOf(t, h.mustGet(dir+"/users?organization_id=3001&limit=100&"+q, tok))
	// Cut at the median last activity, so that the filter keeps some users and drops others.
	var seen []time.Time
	for _, u := range all {
		if u.LastActiveAt != nil {
			seen = append(seen, *u.LastActiveAt)
		}
	}
	if len(seen) < 2 {
		t.Fatalf("%d users of org 3001 have a last activity: too few to filter", len(seen))
	}
	slices.SortFunc(seen, time.Time.Compare)
	cut := url.QueryEscape(seen[len(seen)/2].Format(time.RFC3339))

	for _, filter := range []string{
		"organization_id=3001&inactive_since=" + cut,
		"organization_id=3001",
		"workspace_id=40001",
		"status=active",
		"",
	} {
		t.Run(filter, func(t *testing.T) {
			want, _ := h.crawl(dir+"/users?"+filter+"&"+q, tok, 3, nil)
			r, recs := h.getCSV(dir+"/users?"+filter+"&"+q, tok)
			if got := csvIDs(recs); !slices.Equal(got, want) {
				t.Errorf("CSV ids %v, want the JSON crawl's %v", got, want)
			}
			if len(want) == 0 {
				t.Fatal("the filter matches nobody in the demo: the test proves nothing")
			}
			if cd := r.header.Get("Content-Disposition"); cd != `attachment; filename="users.csv"` {
				t.Errorf("Content-Disposition %q", cd)
			}
			// The crawl filled the cache: the CSV is served from it, with the JSON's cache headers.
			if xc, age := r.header.Get("X-Cache"), r.header.Get("Age"); xc != "HIT" || age == "" {
				t.Errorf("X-Cache %q Age %q, want HIT and an age", xc, age)
			}
			if p := r.header.Get("X-Partial-Response"); p != "false" {
				t.Errorf("X-Partial-Response %q", p)
			}
			if v := r.header.Values("Vary"); !slices.Contains(v, "Accept") {
				t.Errorf("Vary %q, want Accept", v)
			}
			if bytes.Contains(r.body, []byte("/member/")) || bytes.Contains(r.body, []byte("remote_data")) {
				t.Error("the CSV exports remote_data")
			}
		})
	}

	// The inactive_since filter keeps some of the organization and drops others.
	_, stale := h.getCSV(dir+"/users?organization_id=3001&inactive_since="+cut+"&"+q, tok)
	if n := len(stale) - 1; n == 0 || n >= len(all) {
		t.Errorf("inactive_since kept %d of %d users: the filter is not exercised", n, len(all))
	}

	// Cells carry the JSON's values.
	_, recs := h.getCSV(dir+"/users?organization_id=3001&"+q, tok)
	checked := 0
	for _, u := range all {
		row := csvRow(t, recs, u.ID)
		var emails, orgRoles []string
		for _, e := range u.Emails {
			emails = append(emails, e.Email)
		}
		for _, r := range u.Roles {
			orgRoles = append(orgRoles, *r.OrganizationID+":"+r.ID)
		}
		lastActive := ""
		if u.LastActiveAt != nil {
			lastActive = u.LastActiveAt.UTC().Format(time.RFC3339)
			checked++
		}
		want := map[string]string{
			"name": u.Name, "status": u.Status, "emails": strings.Join(emails, ";"), "last_active_at": lastActive,
			"organization_ids": "3001", "organization_roles": strings.Join(orgRoles, ";"), "workspace_ids": "",
		}
		if len(u.Emails) > 0 {
			want["email"] = u.Emails[0].Email
		}
		for col, v := range want {
			if row[col] != v {
				t.Errorf("user %s: %s = %q, want %q", u.ID, col, row[col], v)
			}
		}
	}
	if checked == 0 {
		t.Error("no user in org 3001 has a last_active_at: the column is not exercised")
	}

	// A workspace list's rows carry the workspace and its role.
	ws := usersOf(t, h.mustGet(dir+"/users?workspace_id=40001&limit=100&"+q, tok))
	_, wsRecs := h.getCSV(dir+"/users?workspace_id=40001&"+q, tok)
	for _, u := range ws {
		row := csvRow(t, wsRecs, u.ID)
		if row["workspace_ids"] != "40001" || row["workspace_roles"] != "40001:"+u.Workspaces[0].Role {
			t.Errorf("workspace user %s: workspace_ids %q workspace_roles %q", u.ID, row["workspace_ids"], row["workspace_roles"])
		}
	}
}

// TestUsersCSVStreamsTheWholeList: a list far longer than one read chunk comes out whole, in
// order, from one Podio walk; a repeat is served from the cache without Podio.
func TestUsersCSVStreamsTheWholeList(t *testing.T) {
	t.Parallel()
	ds := podiosim.Large(podiosim.LargeOptions{People: 1234, Spaces: 3})
	h, tok, q := directorySetup(t, harnessOptions{sim: podiosim.Config{Dataset: ds}})
	org := h.simState().Orgs[0].OrgID
	want := h.simState().orgMembers(org)
	path := dir + "/users?organization_id=" + strconv.FormatInt(org, 10) + "&" + q

	h.sim.ResetCalls()
	r, recs := h.getCSV(path, tok)
	if got := csvIDs(recs); !slices.Equal(got, want) {
		t.Fatalf("CSV has %d users, want the %d members in id order", len(got), len(want))
	}
	if r.header.Get("X-Cache") != "MISS" {
		t.Errorf("cold CSV: X-Cache %q", r.header.Get("X-Cache"))
	}
	if got, bound := listCalls(h.sim.Calls()), (len(want)+99)/100+1; got > bound {
		t.Errorf("cold CSV made %d Podio list calls, want at most %d", got, bound)
	}
	h.sim.ResetCalls()
	r, recs = h.getCSV(path, tok)
	if !slices.Equal(csvIDs(recs), want) || r.header.Get("X-Cache") != "HIT" {
		t.Errorf("repeat CSV: %d users, X-Cache %q", len(recs)-1, r.header.Get("X-Cache"))
	}
	if calls := totalCalls(h.sim.Calls()); calls != 0 {
		t.Errorf("repeat CSV within the TTL made %d Podio calls", calls)
	}
	if crawled, _ := h.crawl(path, tok, 100, nil); !slices.Equal(crawled, want) {
		t.Errorf("JSON crawl differs from the CSV")
	}
}

// TestUsersCSVDefusesFormulas: cells that a spreadsheet would run as a formula get a leading
// apostrophe; others are written as they are, quoted by the CSV rules where needed.
func TestUsersCSVDefusesFormulas(t *testing.T) {
	t.Parallel()
	h, tok, q := directorySetup(t, harnessOptions{})
	people := []struct {
		name, mail, title string
		wantName          string
		wantMail          string
		wantTitle         string
	}{
		{name: `=HYPERLINK("http://evil.example","x")`, mail: "f1@evil.example", title: "=1+1",
			wantName: `'=HYPERLINK("http://evil.example","x")`, wantMail: "f1@evil.example", wantTitle: "'=1+1"},
		{name: "+1 555 0100", mail: "-f2@evil.example", title: "@SUM(A1)",
			wantName: "'+1 555 0100", wantMail: "'-f2@evil.example", wantTitle: "'@SUM(A1)"},
		{name: "-2+3", mail: "f3@evil.example", title: "\t=cmd",
			wantName: "'-2+3", wantMail: "f3@evil.example", wantTitle: "'\t=cmd"},
		{name: "@Mention", mail: "f4@evil.example", title: "\r=cmd",
			wantName: "'@Mention", wantMail: "f4@evil.example", wantTitle: "'\r=cmd"},
		{name: `Smith, "Jo" = fine`, mail: "f5@evil.example", title: "Head of A=B",
			wantName: `Smith, "Jo" = fine`, wantMail: "f5@evil.example", wantTitle: "Head of A=B"},
	}
	ids := make([]string, len(people))
	for i, p := range people {
		var out struct {
			UserID int64 `json:"user_id"`
		}
		h.simJSON("POST", "/_sim/people", map[string]any{"name": p.name, "mail": p.mail, "title": p.title, "org_id": 3001, "employee": true}, &out)
		ids[i] = strconv.FormatInt(out.UserID, 10)
	}
	r, recs := h.getCSV(dir+"/users?organization_id=3001&"+q, tok)
	for i, p := range people {
		row := csvRow(t, recs, ids[i])
		if row["name"] != p.wantName || row["email"] != p.wantMail || row["emails"] != p.wantMail || row["title"] != p.wantTitle {
			t.Errorf("user %q: name %q email %q emails %q title %q, want %q %q %q %q", p.name,
				row["name"], row["email"], row["emails"], row["title"], p.wantName, p.wantMail, p.wantMail, p.wantTitle)
		}
	}
	// The raw bytes agree: no line of the file starts a cell with a bare formula character.
	for rec := range strings.SplitSeq(string(r.body), "\n") {
		for cell := range strings.SplitSeq(rec, ",") {
			if cell = strings.TrimPrefix(cell, `"`); cell != "" && strings.ContainsRune("=+-@", rune(cell[0])) {
				t.Errorf("a cell starts with %q: %q", cell[0], rec)
			}
		}
	}
}

// TestUsersListAcceptNegotiation: CSV only when the client prefers it to JSON.
func TestUsersListAcceptNegotiation(t *testing.T) {
	t.Parallel()
	h, tok, q := directorySetup(t, harnessOptions{})
	path := dir + "/users?organization_id=3001&" + q
	for _, tc := range []struct {
		accept string // "" sends no Accept
		csv    bool
	}{
		{"", false},
		{"*/*", false},
		{"*", false},
		{"application/json", false},
		{"text/html", false},
		{"application/json, text/csv", false},
		{"text/csv, application/json", false},
		{"text/csv;q=0.5, application/json", false},
		{"text/csv;q=0", false},
		{"text/csv;q=nonsense", false},
		{"text/*, application/json", false},
		{"text/csv", true},
		{"TEXT/CSV", true},
		{"text/csv; charset=utf-8", true},
		{"text/*", true},
		{"text/csv, */*;q=0.1", true},
		{"application/json;q=0.9, text/csv", true},
		{"text/csv;q=0.2, application/json;q=0.1", true},
		{"text/csv, application/json;q=0", true},
	} {
		var r response
		if tc.accept == "" {
			r = h.mustGet(path, tok)
		} else {
			r = h.mustGet(path, tok, "Accept", tc.accept)
		}
		ct := r.header.Get("Content-Type")
		switch {
		case tc.csv && ct != "text/csv; charset=utf-8":
			t.Errorf("Accept %q: Content-Type %q, want CSV", tc.accept, ct)
		case !tc.csv:
			var pg page
			if !strings.HasPrefix(ct, "application/json") {
				t.Errorf("Accept %q: Content-Type %q, want JSON", tc.accept, ct)
			} else if r.json(t, &pg); pg.ResultCount == 0 {
				t.Errorf("Accept %q: empty JSON page", tc.accept)
			}
		}
	}
	// Other lists are JSON whatever the client asks for.
	if ct := h.mustGet(dir+"/organizations?"+q, tok, "Accept", "text/csv").header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("/organizations with Accept: text/csv: %q", ct)
	}
}

// TestUsersCSVErrorsStayJSON: a CSV request that fails gets the usual JSON error, and paging
// parameters are refused since a CSV answer is always the whole list.
func TestUsersCSVErrorsStayJSON(t *testing.T) {
	t.Parallel()
	h, tok, q := directorySetup(t, harnessOptions{breakerFailures: 1000})
	other := h.linkPassword("globex", "admin@demo.example")
	var pg page
	h.mustGet(dir+"/users?organization_id=3002&limit=1&"+q, tok).json(t, &pg)
	if pg.NextCursor == nil {
		t.Fatal("no cursor to send")
	}
	for _, tc := range []struct {
		path, token string
		status      int
		code        string
	}{
		{dir + "/users?organization_id=3001", tok, 400, "invalid_request"},
		{dir + "/users?organization_id=3001&" + q, "", 401, "unauthorized"},
		{dir + "/users?limit=10&" + q, tok, 400, "invalid_request"},
		{dir + "/users?organization_id=3002&next_cursor=" + url.QueryEscape(*pg.NextCursor) + "&" + q, tok, 400, "invalid_request"},
		{dir + "/users?inactive_since=yesterday&" + q, tok, 400, "invalid_request"},
		{dir + "/users?format=csv&" + q, tok, 400, "invalid_request"},
		{dir + "/users?integrated_account_id=" + other, tok, 404, "not_found"},
		{dir + "/users?organization_id=9999&" + q, tok, 404, "not_found"},
		{"fault", tok, 503, "upstream_unavailable"}, // Podio fails and nothing is cached
	} {
		if tc.path == "fault" {
			if err := h.sim.AddFault(podiosim.Fault{Route: podiosim.RouteOrgMembers, Status: 503}); err != nil {
				t.Fatal(err)
			}
			tc.path = dir + "/users?organization_id=3001&" + q
		}
		r := h.get(h.url, tc.path, tc.token, "Accept", "text/csv")
		if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
			t.Errorf("GET %s: Content-Type %q, want a JSON error", tc.path, ct)
			continue
		}
		if r.status != tc.status || r.errorCode(t) != tc.code {
			t.Errorf("GET %s: %d %s, want %d %s", tc.path, r.status, r.body, tc.status, tc.code)
		}
	}
	var e struct{ Error struct{ Message string } }
	h.get(h.url, dir+"/users?limit=10&"+q, tok, "Accept", "text/csv").json(t, &e)
	if !strings.Contains(e.Error.Message, "whole filtered list") {
		t.Errorf("limit with CSV: message %q does not say why", e.Error.Message)
	}
}
