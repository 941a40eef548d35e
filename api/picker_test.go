package api_test

import (
	"encoding/json"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/dirgate/dirgate/unified"
)

// pickerWS and pickerOrg are the picker's data as a test reads it.
type pickerWS struct {
	ID             string  `json:"id"`
	Name           string  `json:"name"`
	OrganizationID string  `json:"organization_id"`
	Role           *string `json:"role"`
	RoleName       *string `json:"role_name"`
	MemberCount    *int    `json:"member_count"`
}

type pickerOrg struct {
	ID         string     `json:"id"`
	Name       string     `json:"name"`
	Role       *string    `json:"role"`
	Workspaces []pickerWS `json:"workspaces"`
}

type pickerDataBody struct {
	MultiSelect   bool        `json:"multi_select"`
	Organizations []pickerOrg `json:"organizations"`
}

// newPicker creates a picker session and returns its url.
func (h *harness) newPicker(tok string, body map[string]any) (url string, expires time.Time) {
	h.t.Helper()
	r := h.do("POST", "/picker-sessions", tok, body)
	if r.status != http.StatusCreated {
		h.t.Fatalf("POST /picker-sessions: %d %s", r.status, r.body)
	}
	var s struct {
		URL       string    `json:"url"`
		ExpiresAt time.Time `json:"expires_at"`
	}
	r.json(h.t, &s)
	return s.URL, s.ExpiresAt
}

func TestPickerSessionCreation(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{allowPassword: true})
	tok := h.token("acme")
	acct := h.linkPassword("acme", "admin@demo.example")
	other := h.linkPassword("globex", "member@demo.example")

	for name, tc := range map[string]struct {
		token  string
		body   map[string]any
		status int
	}{
		"no account":          {tok, map[string]any{"return_origin": "https://app.example.com"}, 400},
		"no origin":           {tok, map[string]any{"integrated_account_id": acct}, 400},
		"origin with path":    {tok, map[string]any{"integrated_account_id": acct, "return_origin": "https://app.example.com/cb"}, 400},
		"origin with query":   {tok, map[string]any{"integrated_account_id": acct, "return_origin": "https://app.example.com?x=1"}, 400},
		"origin with hash":    {tok, map[string]any{"integrated_account_id": acct, "return_origin": "https://app.example.com#"}, 400},
		"origin with user":    {tok, map[string]any{"integrated_account_id": acct, "return_origin": "https://u:p@app.example.com"}, 400},
		"not http":            {tok, map[string]any{"integrated_account_id": acct, "return_origin": "javascript://app.example.com"}, 400},
		"wildcard":            {tok, map[string]any{"integrated_account_id": acct, "return_origin": "*"}, 400},
		"relative":            {tok, map[string]any{"integrated_account_id": acct, "return_origin": "//app.example.com"}, 400},
		"empty org id":        {tok, map[string]any{"integrated_account_id": acct, "return_origin": "https://a.example", "organization_ids": []string{""}}, 400},
		"unknown field":       {tok, map[string]any{"integrated_account_id": acct, "return_origin": "https://a.example", "origin": "x"}, 400},
		"unknown account":     {tok, map[string]any{"integrated_account_id": "acct_nope", "return_origin": "https://a.example"}, 404},
		"other tenant's":      {tok, map[string]any{"integrated_account_id": other, "return_origin": "https://a.example"}, 404},
		"owner of the other":  {h.token("globex"), map[string]any{"integrated_account_id": acct, "return_origin": "https://a.example"}, 404},
		"no token":            {"", map[string]any{"integrated_account_id": acct, "return_origin": "https://a.example"}, 401},
		"trailing slash okay": {tok, map[string]any{"integrated_account_id": acct, "return_origin": "https://App.Example.com:443/"}, 201},
	} {
		t.Run(name, func(t *testing.T) {
			r := h.do("POST", "/picker-sessions", tc.token, tc.body)
			if r.status != tc.status {
				t.Fatalf("status %d, want %d: %s", r.status, tc.status, r.body)
			}
		})
	}

	start := h.clock.Now()
	u, exp := h.newPicker(tok, map[string]any{"integrated_account_id": acct, "return_origin": "https://App.Example.com:443"})
	m := regexp.MustCompile(`^` + regexp.QuoteMeta(h.url) + `/picker/([A-Za-z0-9_-]{43})$`).FindStringSubmatch(u)
	if m == nil {
		t.Fatalf("url %q: want %s/picker/<43 base64url chars>", u, h.url)
	}
	if d := exp.Sub(start); d < 14*time.Minute || d > 15*time.Minute+time.Second {
		t.Errorf("expires_at %s after creation, want 15m", d)
	}
	// The origin is stored as browsers report it, and the token never reaches the logs.
	page := h.do("GET", "/picker/"+m[1], "", nil)
	if !strings.Contains(string(page.body), `data-return-origin="https://app.example.com"`) {
		t.Errorf("page does not carry the normalized origin: %s", page.body)
	}
	if strings.Contains(h.logs.String(), m[1]) {
		t.Error("the picker token is in the logs")
	}
	u2, _ := h.newPicker(tok, map[string]any{"integrated_account_id": acct, "return_origin": "https://app.example.com"})
	if u2 == u {
		t.Error("two sessions got the same url")
	}
}

func TestPickerPageAndData(t *testing.T) {
	t.Parallel()
	h, tok, q := directorySetup(t, harnessOptions{})
	acct := strings.TrimPrefix(q, "integrated_account_id=")

	// The truth: the unified workspace list of the same account.
	var want []pickerWS
	var wsPage page
	h.mustGet(dir+"/workspaces?limit=100&"+q, tok).json(t, &wsPage)
	for _, raw := range wsPage.Result {
		var w unified.Workspace
		if err := json.Unmarshal(raw, &w); err != nil {
			t.Fatal(err)
		}
		pw := pickerWS{ID: w.ID, Name: w.Name, OrganizationID: w.Organization.ID, Role: w.Role, MemberCount: w.MemberCount}
		if w.Role != nil {
			r, _ := unified.RoleByID(*w.Role)
			pw.RoleName = &r.Name
		}
		want = append(want, pw)
	}

	u, _ := h.newPicker(tok, map[string]any{"integrated_account_id": acct, "multi_select": true, "return_origin": "http://127.0.0.1:9999"})
	path := strings.TrimPrefix(u, h.url)

	r := h.do("GET", path, "", nil)
	csp := r.header.Get("Content-Security-Policy")
	body := string(r.body)
	if r.status != http.StatusOK || !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "script-src 'self';") ||
		!strings.Contains(csp, "frame-ancestors 'none'") || r.header.Get("Cache-Control") != "no-store" {
		t.Fatalf("page: %d, CSP %q, Cache-Control %q", r.status, csp, r.header.Get("Cache-Control"))
	}
	for _, s := range []string{`src="/ui/picker.js"`, `href="/ui/picker.css"`, `data-multi="true"`, `data-return-origin="http://127.0.0.1:9999"`,
		`<label for="picker-search"`, `data-source="` + path + `/data"`, `name="viewport"`} {
		if !strings.Contains(body, s) {
			t.Errorf("page lacks %s", s)
		}
	}
	if regexp.MustCompile(`<script>|<script [^>]*>[^<]|style=`).MatchString(body) {
		t.Errorf("page has inline script or style: %s", body)
	}
	for _, f := range []string{"/ui/picker.js", "/ui/picker.css", "/ui/dirgate.js"} {
		if r := h.do("GET", f, "", nil); r.status != http.StatusOK || len(r.body) == 0 {
			t.Errorf("%s: %d", f, r.status)
		}
	}

	var got pickerDataBody
	r = h.do("GET", path+"/data", "", nil)
	if r.status != http.StatusOK {
		t.Fatalf("data: %d %s", r.status, r.body)
	}
	r.json(t, &got)
	if !got.MultiSelect || len(got.Organizations) != 2 || got.Organizations[0].Name != "Bluefin Labs" || got.Organizations[1].Name != "Northwind Traders" {
		t.Fatalf("organizations: %+v", got.Organizations)
	}
	var flat []pickerWS
	for _, o := range got.Organizations {
		for _, w := range o.Workspaces {
			if w.OrganizationID != o.ID {
				t.Errorf("workspace %s listed under org %s", w.ID, o.ID)
			}
			flat = append(flat, w)
		}
		if !slices.IsSortedFunc(o.Workspaces, func(a, b pickerWS) int { return strings.Compare(strings.ToLower(a.Name), strings.ToLower(b.Name)) }) {
			t.Errorf("workspaces of %s are not sorted by name", o.Name)
		}
	}
	byID := func(a, b pickerWS) int { return unified.CompareIDs(a.ID, b.ID) }
	slices.SortFunc(flat, byID)
	slices.SortFunc(want, byID)
	if diff := cmp.Diff(want, flat); diff != "" {
		t.Errorf("picker workspaces vs /workspaces (-want +got):\n%s", diff)
	}
	sales := slices.IndexFunc(flat, func(w pickerWS) bool { return w.Name == "Sales" })
	if sales < 0 || flat[sales].RoleName == nil || *flat[sales].RoleName == "" || flat[sales].OrganizationID != "3001" {
		t.Errorf("Sales: %+v", flat)
	}

	t.Run("organization filter", func(t *testing.T) {
		u, _ := h.newPicker(tok, map[string]any{"integrated_account_id": acct, "organization_ids": []string{"3002"}, "return_origin": "https://a.example"})
		var got pickerDataBody
		h.do("GET", strings.TrimPrefix(u, h.url)+"/data", "", nil).json(t, &got)
		if got.MultiSelect || len(got.Organizations) != 1 || got.Organizations[0].ID != "3002" || len(got.Organizations[0].Workspaces) == 0 {
			t.Errorf("filtered: %+v", got)
		}
	})

	t.Run("unknown token", func(t *testing.T) {
		r := h.do("GET", "/picker/nope", "", nil)
		if r.status != http.StatusNotFound || !strings.Contains(r.header.Get("Content-Security-Policy"), "default-src 'none'") ||
			!strings.Contains(string(r.body), "expired") {
			t.Errorf("unknown page: %d %s", r.status, r.body)
		}
		if r := h.do("GET", "/picker/nope/data", "", nil); r.status != http.StatusNotFound || r.errorCode(t) != "not_found" {
			t.Errorf("unknown data: %d %s", r.status, r.body)
		}
	})

	t.Run("expired", func(t *testing.T) {
		u, _ := h.newPicker(tok, map[string]any{"integrated_account_id": acct, "return_origin": "https://a.example"})
		p := strings.TrimPrefix(u, h.url)
		if r := h.do("GET", p+"/data", "", nil); r.status != http.StatusOK {
			t.Fatalf("fresh: %d", r.status)
		}
		h.clock.Advance(15*time.Minute + time.Second)
		r := h.do("GET", p, "", nil)
		if r.status != http.StatusNotFound || !strings.Contains(r.header.Get("Content-Security-Policy"), "default-src 'none'") ||
			!strings.Contains(string(r.body), "expired") || strings.Contains(string(r.body), "picker.js") {
			t.Errorf("expired page: %d %s", r.status, r.body)
		}
		if r := h.do("GET", p+"/data", "", nil); r.status != http.StatusNotFound {
			t.Errorf("expired data: %d %s", r.status, r.body)
		}
	})

	t.Run("deleted account", func(t *testing.T) {
		acct2 := h.linkPassword("acme", "member@demo.example")
		u, _ := h.newPicker(tok, map[string]any{"integrated_account_id": acct2, "return_origin": "https://a.example"})
		if r := h.do("DELETE", "/integrated-accounts/"+acct2, tok, nil); r.status != http.StatusNoContent {
			t.Fatalf("delete: %d %s", r.status, r.body)
		}
		if r := h.do("GET", strings.TrimPrefix(u, h.url)+"/data", "", nil); r.status != http.StatusNotFound {
			t.Errorf("data of a deleted account: %d %s", r.status, r.body)
		}
	})
}
