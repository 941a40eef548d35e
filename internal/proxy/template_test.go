package proxy

import "testing"

func TestTemplate(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"/org/":                                 "/org/",
		"/org/3001/member/":                     "/org/{id}/member/",
		"/space/40001/member/1000002,1000003":   "/space/{id}/member/{id}",
		"/org/3001/member/mail/ada%40x.example": "/org/{id}/member/mail/{value}",
		"/user/status":                          "/user/status",
		"/item/app/12/filter/":                  "/item/app/{id}/filter/",
	} {
		if got := Template(in); got != want {
			t.Errorf("Template(%q) = %q, want %q", in, got, want)
		}
	}
	if got := Template("/" + string(make([]byte, 1000))); len(got) > maxTemplate+3 {
		t.Errorf("long path template has %d bytes", len(got))
	}
}
