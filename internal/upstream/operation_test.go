package upstream

import "testing"

func TestOperationNeverCarriesValues(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ method, path, want string }{
		{"get", "/org/3001/member/", "GET /org/{id}/member/"},
		{"GET", "/org/3001/member/mail/a%40b.example", "GET /org/{id}/member/mail/{id}"},
		{"PUT", "/space/12/member/1,2,3", "PUT /space/{id}/member/{id}"},
		{"GET", "/user/status", "GET /user/status"},
		{"GET", "/app/Zm9vYmFyYmF6cXV4eHl6enk/", "GET /app/{id}/"},
		{"GET", "/some/averyveryverylongsegmentthatlookslikeavalue", "GET /{id}/{id}"},
		{"BREW", "/org/", "OTHER /org/"},
		{"GET", "/org/1/2/3/4/5/6/7/8/9/10", "GET /org/{id}/{id}/{id}/{id}/{id}/{id}/{id}/..."},
		{"GET", "/space/12/member/v2/", "GET /space/{id}/member/v2/"},
	} {
		if got := Operation(tc.method, tc.path); got != tc.want {
			t.Errorf("Operation(%q, %q) = %q, want %q", tc.method, tc.path, got, tc.want)
		}
	}
}
