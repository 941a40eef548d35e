package podiosim_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/dirgate/dirgate/adapters/podio/podiosim"
)

// profileOf finds the profile of userID in a member list item array (v1, v2 or org members).
func profileOf(t *testing.T, items []any, userID int64) map[string]any {
	t.Helper()
	for _, it := range items {
		p := it.(map[string]any)["profile"].(map[string]any)
		if num(p["user_id"]) == userID {
			return p
		}
	}
	t.Fatalf("user %d not in the list", userID)
	return nil
}

func TestUpdateProfileIsVisibleEverywhere(t *testing.T) {
	t.Parallel()
	h := setup(t, podiosim.Config{})
	admin, member := h.token(adminMail), h.token(memberMail)

	r := h.do("PUT", "/user/profile/", member, map[string]any{
		"title": []string{"Head of Marketing", "Board member"}, "location": "Copenhagen",
		"about": "Hello", "phone": nil,
	})
	if r.status != 204 || len(r.body) != 0 {
		t.Fatalf("PUT /user/profile/: %d %q", r.status, r.body)
	}
	wantTitle := []any{"Head of Marketing", "Board member"}
	check := func(where string, p map[string]any) {
		t.Helper()
		got := []any{p["title"], p["location"], p["about"], p["phone"], p["name"]}
		want := []any{wantTitle, []any{"Copenhagen"}, "Hello", []any{}, "Sam Taylor"}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s: title, location, about, phone, name (-want +got):\n%s", where, diff)
		}
	}
	check("GET /user/status", h.do("GET", "/user/status", member, nil).obj(t)["profile"].(map[string]any))
	check("GET /contact/user/{id}", h.do("GET", fmt.Sprintf("/contact/user/%d", memberID), admin, nil).obj(t))
	check("GET /org/{id}/member/", profileOf(t, h.do("GET", "/org/"+org1+"/member/", admin, nil).arr(t), memberID))
	check("GET /org/{id}/member/{user_id}", h.do("GET", fmt.Sprintf("/org/%s/member/%d", org1, memberID), admin, nil).obj(t)["profile"].(map[string]any))
	check("GET /space/{id}/member/", profileOf(t, h.do("GET", "/space/"+spaceSales+"/member/", admin, nil).arr(t), memberID))
	check("GET /space/{id}/member/v2/", profileOf(t, h.do("GET", "/space/"+spaceSales+"/member/v2/", admin, nil).arr(t), memberID))

	// One field at a time; null clears it.
	if r := h.do("PUT", "/user/profile/location", member, map[string]any{"value": []string{"Aarhus", "Remote"}}); r.status != 204 {
		t.Fatalf("PUT /user/profile/location: %d %s", r.status, r.body)
	}
	if r := h.do("PUT", "/user/profile/about", member, map[string]any{"value": nil}); r.status != 204 {
		t.Fatalf("PUT /user/profile/about: %d %s", r.status, r.body)
	}
	p := h.do("GET", "/user/status", member, nil).obj(t)["profile"].(map[string]any)
	if diff := cmp.Diff([]any{[]any{"Aarhus", "Remote"}, nil}, []any{p["location"], p["about"]}); diff != "" {
		t.Errorf("after field updates: location, about (-want +got):\n%s", diff)
	}
	// Nobody else changed.
	a := h.do("GET", "/user/status", admin, nil).obj(t)["profile"].(map[string]any)
	if diff := cmp.Diff([]any{[]any{"Operations Director"}, []any{}}, []any{a["title"], a["location"]}); diff != "" {
		t.Errorf("admin's profile changed (-want +got):\n%s", diff)
	}
	calls := h.sim.Calls()
	if calls[podiosim.RouteUpdateProfile] != 1 || calls[podiosim.RouteUpdateProfileField] != 2 {
		t.Errorf("calls = %v, want 1 profile update and 2 field updates", calls)
	}
}

func TestUpdateProfileValidation(t *testing.T) {
	t.Parallel()
	h := setup(t, podiosim.Config{})
	member := h.token(memberMail)
	tests := []struct {
		name, path string
		body       any
	}{
		{"unknown field", "/user/profile/", map[string]any{"nickname": "Sam"}},
		{"read-only field", "/user/profile/", map[string]any{"mail": []string{"x@y.example"}}},
		{"title not text", "/user/profile/", map[string]any{"title": 7}},
		{"title list with a number", "/user/profile/", map[string]any{"title": []any{"a", 1}}},
		{"empty value in a list", "/user/profile/", map[string]any{"location": []string{" "}}},
		{"about as a list", "/user/profile/", map[string]any{"about": []string{"x"}}},
		{"name cleared", "/user/profile/", map[string]any{"name": nil}},
		{"name empty", "/user/profile/", map[string]any{"name": ""}},
		{"too long", "/user/profile/", map[string]any{"title": strings.Repeat("x", 1001)}},
		{"not an object", "/user/profile/", "[1]"},
		{"no body", "/user/profile/", nil},
		{"bad json", "/user/profile/", "{oops"},
		{"field: unknown key", "/user/profile/nickname", map[string]any{"value": "x"}},
		{"field: no value", "/user/profile/title", map[string]any{}},
		{"field: extra member", "/user/profile/title", map[string]any{"value": "x", "other": 1}},
		{"field: read-only", "/user/profile/user_id", map[string]any{"value": 1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			checkPodioError(t, h.do("PUT", tc.path, member, tc.body), 400, "invalid_value")
		})
	}
	// A failing call changes nothing, also not the valid fields given with the bad one.
	checkPodioError(t, h.do("PUT", "/user/profile/", member, map[string]any{"title": "Changed", "nickname": "x"}), 400, "invalid_value")
	p := h.do("GET", "/user/status", member, nil).obj(t)["profile"].(map[string]any)
	if diff := cmp.Diff([]any{"Marketing Lead"}, p["title"]); diff != "" {
		t.Errorf("title after a refused update (-want +got):\n%s", diff)
	}
}

func TestUpdateUserLocaleAndTimezone(t *testing.T) {
	t.Parallel()
	h := setup(t, podiosim.Config{})
	member := h.token(memberMail)
	if r := h.do("PUT", "/user/", member, map[string]any{"locale": "da_DK", "timezone": "Europe/Copenhagen"}); r.status != 204 || len(r.body) != 0 {
		t.Fatalf("PUT /user/: %d %q", r.status, r.body)
	}
	if r := h.do("PUT", "/user", member, map[string]any{"timezone": "America/New_York"}); r.status != 204 {
		t.Fatalf("PUT /user (lenient slash): %d %s", r.status, r.body)
	}
	for _, path := range []string{"/user/", "/user/status"} {
		u := h.do("GET", path, member, nil).obj(t)
		if path == "/user/status" {
			u = u["user"].(map[string]any)
		}
		if diff := cmp.Diff([]any{"da_DK", "America/New_York"}, []any{u["locale"], u["timezone"]}); diff != "" {
			t.Errorf("%s: locale, timezone (-want +got):\n%s", path, diff)
		}
	}

	tests := []struct {
		name string
		body any
	}{
		{"bad locale", map[string]any{"locale": "english"}},
		{"locale lower case country", map[string]any{"locale": "en_gb"}},
		{"bad timezone", map[string]any{"timezone": "Mars/Olympus_Mons"}},
		{"Local is no zone", map[string]any{"timezone": "Local"}},
		{"empty timezone", map[string]any{"timezone": ""}},
		{"timezone not a string", map[string]any{"timezone": 1}},
		{"locale null", map[string]any{"locale": nil}},
		{"unknown field", map[string]any{"mail": "x@y.example"}},
		{"password is not served", map[string]any{"old_password": "demo", "new_password": "x"}},
		{"not an object", "[]"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			checkPodioError(t, h.do("PUT", "/user/", member, tc.body), 400, "invalid_value")
		})
	}
	// The locale of a refused call with a valid and an invalid field did not change.
	checkPodioError(t, h.do("PUT", "/user/", member, map[string]any{"locale": "en_US", "timezone": "Nowhere"}), 400, "invalid_value")
	if got := h.do("GET", "/user/", member, nil).obj(t)["locale"]; got != "da_DK" {
		t.Errorf("locale after a refused update = %v, want da_DK", got)
	}
}

func TestOwnAccountWritesAuthAndKnobs(t *testing.T) {
	t.Parallel()
	h := setup(t, podiosim.Config{UpdateProfileStatus: 200, UpdateUserStatus: 200})
	member := h.token(memberMail)
	if r := h.do("PUT", "/user/profile/", member, map[string]any{"title": "X"}); r.status != 200 || string(r.body) != "{}\n" {
		t.Errorf("profile with UpdateProfileStatus 200: %d %q", r.status, r.body)
	}
	if r := h.do("PUT", "/user/", member, map[string]any{"locale": "de_DE"}); r.status != 200 || string(r.body) != "{}\n" {
		t.Errorf("user with UpdateUserStatus 200: %d %q", r.status, r.body)
	}
	checkPodioError(t, h.do("PUT", "/user/profile/", "", map[string]any{"title": "X"}), 401, "invalid_token")

	// An app acts as no person: it has no profile to change.
	r := h.do("POST", "/oauth/token", "", tokenForm("grant_type", "app", "app_id", "5001", "app_token", "demo-app-token"))
	app, _ := r.obj(t)["access_token"].(string)
	if app == "" {
		t.Fatalf("app token: %d %s", r.status, r.body)
	}
	checkPodioError(t, h.do("PUT", "/user/profile/", app, map[string]any{"title": "X"}), 403, "forbidden")
	checkPodioError(t, h.do("PUT", "/user/", app, map[string]any{"locale": "da_DK"}), 403, "forbidden")

	// Faults key on the new route names.
	if err := h.sim.AddFault(podiosim.Fault{Route: podiosim.RouteUpdateUser, Status: 503, Times: 1}); err != nil {
		t.Fatal(err)
	}
	checkPodioError(t, h.do("PUT", "/user/", member, map[string]any{"locale": "da_DK"}), 503, "unavailable")
}
