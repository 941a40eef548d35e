package api_test

import (
	"bytes"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/dirgate/dirgate/adapters/podio/podiosim"
	"github.com/dirgate/dirgate/unified"
)

// meFields is what PATCH /me changes, as GET /me shows it.
func meFields(m unified.Me) []string {
	deref := func(p *string) string {
		if p == nil {
			return "<nil>"
		}
		return *p
	}
	return []string{deref(m.Title), deref(m.Locale), deref(m.Timezone)}
}

// writeCalls is how often the simulator's own-account writes were called.
func writeCalls(h *harness) map[string]int {
	c := h.sim.Calls()
	return map[string]int{
		podiosim.RouteUpdateProfile: c[podiosim.RouteUpdateProfile],
		podiosim.RouteUpdateUser:    c[podiosim.RouteUpdateUser],
	}
}

func TestUpdateMe(t *testing.T) {
	t.Parallel()
	h, tok, q := directorySetup(t, harnessOptions{})

	// Warm the cache: /me and the admin's own /users/{id}.
	var before unified.Me
	h.mustGet(dir+"/me?"+q, tok).json(t, &before)
	if r := h.mustGet(dir+"/me?"+q, tok); r.header.Get("X-Cache") != "HIT" {
		t.Fatalf("second GET /me: X-Cache %q, want HIT", r.header.Get("X-Cache"))
	}
	h.mustGet(dir+"/users/1000001?"+q, tok)
	if diff := cmp.Diff([]string{"Operations Director", "en_GB", "Europe/London"}, meFields(before)); diff != "" {
		t.Fatalf("/me before (-want +got):\n%s", diff)
	}

	h.sim.ResetCalls()
	r := h.do("PATCH", dir+"/me?"+q, tok, map[string]any{
		"title": "Chief Operating Officer", "location": " Copenhagen ", "locale": "da_DK", "timezone": "Europe/Copenhagen",
	})
	if r.status != http.StatusOK {
		t.Fatalf("PATCH /me: %d %s", r.status, r.body)
	}
	want := []string{"Chief Operating Officer", "da_DK", "Europe/Copenhagen"}
	var after unified.Me
	r.json(t, &after)
	if diff := cmp.Diff(want, meFields(after)); diff != "" {
		t.Errorf("PATCH /me answer (-want +got):\n%s", diff)
	}
	if after.ID != "1000001" || len(after.Organizations) != 2 || r.header.Get("X-Cache") != "MISS" {
		t.Errorf("PATCH /me answer: id %s, %d organizations, X-Cache %q; want the full /me read fresh", after.ID, len(after.Organizations), r.header.Get("X-Cache"))
	}
	// The unified model has no location; Podio's profile in remote_data shows it, trimmed.
	if !bytes.Contains(r.body, []byte(`"location":["Copenhagen"]`)) {
		t.Errorf("remote_data does not show the new location: %.400s", r.body)
	}
	if diff := cmp.Diff(map[string]int{podiosim.RouteUpdateProfile: 1, podiosim.RouteUpdateUser: 1}, writeCalls(h)); diff != "" {
		t.Errorf("Podio writes (-want +got):\n%s", diff)
	}

	// A following GET /me shows the change from the cache, and so does a fresh read.
	for _, hdr := range [][]string{nil, {"Cache-Control", "no-cache"}} {
		r := h.mustGet(dir+"/me?"+q, tok, hdr...)
		var m unified.Me
		r.json(t, &m)
		if diff := cmp.Diff(want, meFields(m)); diff != "" {
			t.Errorf("GET /me %v (X-Cache %s) (-want +got):\n%s", hdr, r.header.Get("X-Cache"), diff)
		}
	}
	// The person's own cached /users/{id} was dropped, not served stale.
	var u unified.User
	ur := h.mustGet(dir+"/users/1000001?"+q, tok)
	ur.json(t, &u)
	if ur.header.Get("X-Cache") != "MISS" || u.Title == nil || *u.Title != "Chief Operating Officer" {
		t.Errorf("GET /users/1000001 after PATCH: X-Cache %s, title %v", ur.header.Get("X-Cache"), u.Title)
	}

	// Only the Podio operation the fields need is called.
	for _, tc := range []struct {
		body map[string]any
		want map[string]int
	}{
		{map[string]any{"title": "COO"}, map[string]int{podiosim.RouteUpdateProfile: 1, podiosim.RouteUpdateUser: 0}},
		{map[string]any{"location": "Aarhus"}, map[string]int{podiosim.RouteUpdateProfile: 1, podiosim.RouteUpdateUser: 0}},
		{map[string]any{"timezone": "UTC"}, map[string]int{podiosim.RouteUpdateProfile: 0, podiosim.RouteUpdateUser: 1}},
		{map[string]any{"locale": "en_US"}, map[string]int{podiosim.RouteUpdateProfile: 0, podiosim.RouteUpdateUser: 1}},
	} {
		h.sim.ResetCalls()
		if r := h.do("PATCH", dir+"/me?ignore_remote_data=true&"+q, tok, tc.body); r.status != http.StatusOK || bytes.Contains(r.body, []byte("remote_data")) {
			t.Errorf("PATCH %v: %d %.300s", tc.body, r.status, r.body)
		}
		if diff := cmp.Diff(tc.want, writeCalls(h)); diff != "" {
			t.Errorf("PATCH %v: Podio writes (-want +got):\n%s", tc.body, diff)
		}
	}
	var m unified.Me
	h.mustGet(dir+"/me?"+q, tok).json(t, &m)
	if diff := cmp.Diff([]string{"COO", "en_US", "UTC"}, meFields(m)); diff != "" {
		t.Errorf("GET /me after single-field updates (-want +got):\n%s", diff)
	}
}

func TestUpdateMeRefusesBadInput(t *testing.T) {
	t.Parallel()
	h, tok, q := directorySetup(t, harnessOptions{})
	other := h.linkPassword("globex", "admin@demo.example")
	tests := []struct {
		name   string
		path   string
		body   string
		status int
		code   string
	}{
		{"no fields", dir + "/me?" + q, `{}`, 400, "invalid_request"},
		{"unknown field", dir + "/me?" + q, `{"title":"x","nickname":"y"}`, 400, "invalid_request"},
		{"empty title", dir + "/me?" + q, `{"title":""}`, 400, "invalid_request"},
		{"blank location", dir + "/me?" + q, `{"location":"   "}`, 400, "invalid_request"},
		{"null title", dir + "/me?" + q, `{"title":null}`, 400, "invalid_request"},
		{"number title", dir + "/me?" + q, `{"title":7}`, 400, "invalid_request"},
		{"title list", dir + "/me?" + q, `{"title":["a"]}`, 400, "invalid_request"},
		{"long title", dir + "/me?" + q, `{"title":"` + strings.Repeat("é", 201) + `"}`, 400, "invalid_request"},
		{"locale with a dash", dir + "/me?" + q, `{"locale":"en-GB"}`, 400, "invalid_request"},
		{"locale language only", dir + "/me?" + q, `{"locale":"en"}`, 400, "invalid_request"},
		{"empty locale", dir + "/me?" + q, `{"locale":""}`, 400, "invalid_request"},
		{"unknown zone", dir + "/me?" + q, `{"timezone":"Europe/Atlantis"}`, 400, "invalid_request"},
		{"Local is no zone", dir + "/me?" + q, `{"timezone":"Local"}`, 400, "invalid_request"},
		{"zone path", dir + "/me?" + q, `{"timezone":"../etc/passwd"}`, 400, "invalid_request"},
		{"good field, bad field", dir + "/me?" + q, `{"title":"CEO","timezone":"Nowhere"}`, 400, "invalid_request"},
		{"not JSON", dir + "/me?" + q, `{"title":`, 400, "invalid_request"},
		{"array body", dir + "/me?" + q, `["title"]`, 400, "invalid_request"},
		{"two values", dir + "/me?" + q, `{"title":"a"}{"title":"b"}`, 400, "invalid_request"},
		{"no account", dir + "/me", `{"title":"x"}`, 400, "invalid_request"},
		{"unknown query parameter", dir + "/me?dry_run=1&" + q, `{"title":"x"}`, 400, "invalid_request"},
		{"another tenant's account", dir + "/me?integrated_account_id=" + other, `{"title":"x"}`, 404, "not_found"},
		{"unknown account", dir + "/me?integrated_account_id=ia_nope", `{"title":"x"}`, 404, "not_found"},
	}
	h.sim.ResetCalls()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := h.send(h.browser(), "PATCH", h.url, tc.path, "Bearer "+tok, []byte(tc.body))
			if r.status != tc.status || r.errorCode(t) != tc.code {
				t.Errorf("%d %s, want %d %s", r.status, r.body, tc.status, tc.code)
			}
		})
	}
	if r := h.send(h.browser(), "PATCH", h.url, dir+"/me?"+q, "Bearer "+tok, []byte(`{"title":"x"}`), "Content-Type", "text/plain"); r.status != http.StatusUnsupportedMediaType {
		t.Errorf("text/plain body: %d %s, want 415", r.status, r.body)
	}
	if r := h.send(h.browser(), "PATCH", h.url, dir+"/me?"+q, "", []byte(`{"title":"x"}`)); r.status != http.StatusUnauthorized {
		t.Errorf("no tenant token: %d %s, want 401", r.status, r.body)
	}
	if diff := cmp.Diff(map[string]int{podiosim.RouteUpdateProfile: 0, podiosim.RouteUpdateUser: 0}, writeCalls(h)); diff != "" {
		t.Errorf("refused requests reached Podio (-want +got):\n%s", diff)
	}
	var m unified.Me
	h.mustGet(dir+"/me?"+q, tok).json(t, &m)
	if diff := cmp.Diff([]string{"Operations Director", "en_GB", "Europe/London"}, meFields(m)); diff != "" {
		t.Errorf("/me changed by refused requests (-want +got):\n%s", diff)
	}
}

// TestUpdateMeUpstreamErrors: Podio's refusals map like reads do, and a failure part-way still
// drops the cached /me. (Podio refusing a value as input is the caller's 400; the adapter's
// TestDirectoryUpdateMe covers that, since the simulator refuses nothing the API lets through.)
func TestUpdateMeUpstreamErrors(t *testing.T) {
	t.Parallel()
	h, tok, q := directorySetup(t, harnessOptions{})

	// App-grant accounts act as no person: Podio's 403 is forbidden_upstream.
	r := h.do("POST", "/integrated-accounts", tok, map[string]any{"grant_type": "app", "app_id": 5001, "app_token": "demo-app-token"})
	if r.status != http.StatusCreated {
		t.Fatalf("demo app grant: %d %s", r.status, r.body)
	}
	var a struct{ ID string }
	r.json(t, &a)
	if r := h.do("PATCH", dir+"/me?integrated_account_id="+a.ID, tok, map[string]any{"title": "x"}); r.status != 403 || r.errorCode(t) != "forbidden_upstream" {
		t.Errorf("app account: %d %s, want 403 forbidden_upstream", r.status, r.body)
	}

	// PUT /user/ fails (500: not retried) after PUT /user/profile/ succeeded.
	h.mustGet(dir+"/me?"+q, tok) // cache /me
	if err := h.sim.AddFault(podiosim.Fault{Route: podiosim.RouteUpdateUser, Status: 500, Times: 1}); err != nil {
		t.Fatal(err)
	}
	r = h.do("PATCH", dir+"/me?"+q, tok, map[string]any{"title": "Half done", "timezone": "Asia/Tokyo"})
	if r.status != http.StatusBadGateway || r.errorCode(t) != "upstream_error" {
		t.Errorf("PUT /user/ failing: %d %.300s, want 502 upstream_error", r.status, r.body)
	}
	// The title was saved before the failure; the cached /me must not hide it.
	var m unified.Me
	mr := h.mustGet(dir+"/me?"+q, tok)
	mr.json(t, &m)
	if mr.header.Get("X-Cache") != "MISS" || cmp.Diff([]string{"Half done", "en_GB", "Europe/London"}, meFields(m)) != "" {
		t.Errorf("GET /me after a partial update: X-Cache %s, %v", mr.header.Get("X-Cache"), meFields(m))
	}
}
