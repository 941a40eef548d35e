package proxy_test

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"

	"github.com/dirgate/dirgate/internal/proxy"
)

// hostileInput is a path and query that Target must refuse; Forward is checked against the same
// table in proxy_test.go.
type hostileInput struct {
	name, path, query string
}

var hostileInputs = []hostileInput{
	{name: "empty", path: ""},
	{name: "relative", path: "org/"},
	{name: "double slash start", path: "//org/"},
	{name: "double slash", path: "/org//3001"},
	{name: "double slash end", path: "/org/3001//"},
	{name: "dot segment", path: "/org/./3001"},
	{name: "dot segment end", path: "/org/."},
	{name: "dot only", path: "/."},
	{name: "dot dot segment", path: "/org/../user/"},
	{name: "dot dot start", path: "/../user/"},
	{name: "dot dot end", path: "/org/.."},
	{name: "dot dot inside a name", path: "/org/a..b"},
	{name: "dot semicolon", path: "/org/.;x/3001"},
	{name: "encoded dot dot", path: "/%2e%2e/user/"},
	{name: "encoded dot dot upper", path: "/org/%2E%2E/user/"},
	{name: "half encoded dot dot", path: "/org/.%2e/user/"},
	{name: "encoded dot", path: "/org/%2e/3001"},
	{name: "double encoded dot dot", path: "/%252e%252e/user/"},
	{name: "triple encoded dot dot", path: "/%25252e%25252e/user/"},
	{name: "encoded slash", path: "/org%2f3001"},
	{name: "encoded slash upper", path: "/org%2F3001"},
	{name: "double encoded slash", path: "/org/%252f3001"},
	{name: "backslash", path: "/org\\3001"},
	{name: "encoded backslash", path: "/org%5c3001"},
	{name: "encoded backslash upper", path: "/org%5C..%5Cuser"},
	{name: "double encoded backslash", path: "/org/%255c"},
	{name: "raw NUL", path: "/org/\x00"},
	{name: "raw CRLF", path: "/org/\r\nX-Injected: 1"},
	{name: "raw tab", path: "/org/\t3001"},
	{name: "raw DEL", path: "/org/\x7f"},
	{name: "encoded NUL", path: "/org/%00"},
	{name: "encoded CRLF", path: "/org/%0d%0aX-Injected:%201"},
	{name: "encoded unit separator", path: "/org/%1F"},
	{name: "encoded DEL", path: "/org/%7f"},
	{name: "double encoded NUL", path: "/org/%2500"},
	{name: "double encoded CRLF", path: "/org/%250d%250a"},
	{name: "absolute URL", path: "/http://evil.example/"},
	{name: "absolute URL https single slash", path: "/https:/evil.example/"},
	{name: "host and port", path: "/evil.example:443/x"},
	{name: "encoded colon in first segment", path: "/evil.example%3a443/x"},
	{name: "too long", path: "/org/" + strings.Repeat("a", 2044)},
	{name: "truncated escape", path: "/org/%"},
	{name: "short escape", path: "/org/%2"},
	{name: "non-hex escape", path: "/org/%zz"},
	{name: "raw space", path: "/org/ 3001"},
	{name: "raw question mark", path: "/org/?x"},
	{name: "raw hash", path: "/org/#x"},
	{name: "raw non-ASCII", path: "/org/é"},
	{name: "raw quote", path: `/org/"x"`},
	{name: "overlong UTF-8 dot dot", path: "/%c0%ae%c0%ae/user/"},
	{name: "query with space", path: "/org/", query: "a=b c"},
	{name: "query with CRLF", path: "/org/", query: "a=b\r\nX-Injected: 1"},
	{name: "query with NUL", path: "/org/", query: "a=\x00"},
	{name: "query with hash", path: "/org/", query: "a=b#frag"},
	{name: "query too long", path: "/org/", query: "q=" + strings.Repeat("a", 8191)},
}

func newForwarder(t testing.TB, base string) *proxy.Forwarder {
	t.Helper()
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	f, err := proxy.New(proxy.Options{Base: u})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func TestTargetRefusesHostileInput(t *testing.T) {
	t.Parallel()
	for _, base := range []string{"https://api.podio.com/", "http://127.0.0.1:8081/podio/"} {
		f := newForwarder(t, base)
		for _, tc := range hostileInputs {
			t.Run(base+" "+tc.name, func(t *testing.T) {
				u, err := f.Target(tc.path, tc.query)
				if err == nil {
					t.Fatalf("Target(%q, %q) = %s, want an error", tc.path, tc.query, u)
				}
				pe, ok := errors.AsType[*proxy.Error](err)
				if !ok {
					t.Fatalf("error %v (%T) is not a *proxy.Error", err, err)
				}
				if pe.Status != http.StatusBadRequest || pe.Code != proxy.CodeInvalidPath {
					t.Errorf("got %d %s, want 400 invalid_path", pe.Status, pe.Code)
				}
				if tc.path != "" && len(tc.path) > 3 && strings.Contains(pe.Message, tc.path) {
					t.Errorf("message %q quotes the path", pe.Message)
				}
			})
		}
	}
}

func TestTargetBuildsUpstreamURL(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, base, path, query string
		want                    string
	}{
		{name: "collection keeps trailing slash", base: "https://api.podio.com/", path: "/org/", want: "https://api.podio.com/org/"},
		{name: "object without slash", base: "https://api.podio.com/", path: "/org/3001", want: "https://api.podio.com/org/3001"},
		{name: "base with path", base: "http://127.0.0.1:8081/podio/", path: "/org/3001/member/",
			query: "limit=5&offset=2", want: "http://127.0.0.1:8081/podio/org/3001/member/?limit=5&offset=2"},
		{name: "base without trailing slash", base: "http://127.0.0.1:8081/podio", path: "/user/status",
			want: "http://127.0.0.1:8081/podio/user/status"},
		{name: "escaping kept", base: "https://api.podio.com/", path: "/org/3001/member/mail/ada%40example.com",
			want: "https://api.podio.com/org/3001/member/mail/ada%40example.com"},
		{name: "raw at sign kept", base: "https://api.podio.com/", path: "/org/3001/member/mail/ada@example.com",
			want: "https://api.podio.com/org/3001/member/mail/ada@example.com"},
		{name: "encoded space", base: "https://api.podio.com/", path: "/space/url%20x", want: "https://api.podio.com/space/url%20x"},
		{name: "encoded UTF-8", base: "https://api.podio.com/", path: "/org/3001/member/mail/jos%C3%A9@example.com",
			want: "https://api.podio.com/org/3001/member/mail/jos%C3%A9@example.com"},
		{name: "dot inside a name", base: "https://api.podio.com/", path: "/org/3001/member/mail/a.b@example.com",
			want: "https://api.podio.com/org/3001/member/mail/a.b@example.com"},
		{name: "dot file name", base: "https://api.podio.com/", path: "/x/.well-known", want: "https://api.podio.com/x/.well-known"},
		{name: "colon after first segment", base: "https://api.podio.com/", path: "/space/url:x", want: "https://api.podio.com/space/url:x"},
		{name: "encoded percent", base: "https://api.podio.com/", path: "/x/100%25", want: "https://api.podio.com/x/100%25"},
		{name: "root", base: "https://api.podio.com/", path: "/", want: "https://api.podio.com/"},
		{name: "query verbatim", base: "https://api.podio.com/", path: "/org/url",
			query: "url=https%3A%2F%2Fpodio.com%2Facme&x=%zz&y=a+b&z=..%2F", want: "https://api.podio.com/org/url?url=https%3A%2F%2Fpodio.com%2Facme&x=%zz&y=a+b&z=..%2F"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			u, err := newForwarder(t, tc.base).Target(tc.path, tc.query)
			if err != nil {
				t.Fatalf("Target(%q, %q): %v", tc.path, tc.query, err)
			}
			if diff := cmp.Diff(tc.want, u.String()); diff != "" {
				t.Errorf("URL (-want +got):\n%s", diff)
			}
		})
	}
}

func TestNewRefusesBadOptions(t *testing.T) {
	t.Parallel()
	mustParse := func(s string) *url.URL {
		u, err := url.Parse(s)
		if err != nil {
			t.Fatal(err)
		}
		return u
	}
	tests := []struct {
		name string
		opts proxy.Options
	}{
		{name: "no base", opts: proxy.Options{}},
		{name: "relative base", opts: proxy.Options{Base: mustParse("/podio/")}},
		{name: "other scheme", opts: proxy.Options{Base: mustParse("ftp://api.podio.com/")}},
		{name: "user info", opts: proxy.Options{Base: mustParse("https://user:secret@api.podio.com/")}},
		{name: "query", opts: proxy.Options{Base: mustParse("https://api.podio.com/?a=b")}},
		{name: "fragment", opts: proxy.Options{Base: mustParse("https://api.podio.com/#x")}},
		{name: "negative MaxBody", opts: proxy.Options{Base: mustParse("https://api.podio.com/"), MaxBody: -1}},
		{name: "negative ReplayBuffer", opts: proxy.Options{Base: mustParse("https://api.podio.com/"), ReplayBuffer: -1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if _, err := proxy.New(tc.opts); err == nil {
				t.Fatal("New succeeded, want an error")
			} else if strings.Contains(err.Error(), "secret") {
				t.Errorf("error %q contains the base URL's password", err)
			}
		})
	}
}

// fullyDecode applies url.PathUnescape until nothing changes or the text stops being a valid
// encoding: what a server that keeps decoding would end up with.
func fullyDecode(s string) string {
	for strings.Contains(s, "%") {
		next, err := url.PathUnescape(s)
		if err != nil || next == s {
			break
		}
		s = next
	}
	return s
}

func FuzzTarget(f *testing.F) {
	for _, tc := range hostileInputs {
		f.Add(tc.path, tc.query)
	}
	f.Add("/org/3001/member/", "limit=5&offset=2")
	f.Add("/org/3001/member/mail/ada%40example.com", "")
	f.Add("/%2525252e%2525252e/", "")
	f.Add("/a/%2e%2e%2f%2e%2e%2f/b", "")

	bases := []*proxy.Forwarder{
		newForwarder(f, "https://api.podio.com/"),
		newForwarder(f, "http://127.0.0.1:8081/podio/"),
	}
	f.Fuzz(func(t *testing.T, path, query string) {
		for _, fw := range bases {
			u, err := fw.Target(path, query)
			if err != nil {
				pe, ok := errors.AsType[*proxy.Error](err)
				if !ok || pe.Status != http.StatusBadRequest || pe.Code != proxy.CodeInvalidPath {
					t.Fatalf("Target(%q, %q) error %v, want *proxy.Error 400 invalid_path", path, query, err)
				}
				continue
			}
			base, _ := fw.Target("/", "")
			if u.Scheme != base.Scheme || u.Host != base.Host || u.User != nil {
				t.Fatalf("Target(%q, %q) = %s: scheme/host differ from the base %s", path, query, u, base)
			}
			if !strings.HasPrefix(u.EscapedPath(), base.EscapedPath()) {
				t.Fatalf("Target(%q, %q) = %s: path is not under the base path %s", path, query, u, base.EscapedPath())
			}
			decoded := fullyDecode(u.EscapedPath())
			for _, bad := range []string{"..", "//", `\`} {
				if strings.Contains(decoded, bad) {
					t.Fatalf("Target(%q, %q) = %s: fully decoded path %q contains %q", path, query, u, decoded, bad)
				}
			}
			if !utf8.ValidString(decoded) || strings.ContainsFunc(decoded, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
				t.Fatalf("Target(%q, %q) = %s: fully decoded path %q is invalid UTF-8 or has control characters", path, query, u, decoded)
			}
			back, err := url.Parse(u.String())
			if err != nil {
				t.Fatalf("Target(%q, %q) = %s does not parse: %v", path, query, u, err)
			}
			if back.Scheme != u.Scheme || back.Host != u.Host || back.EscapedPath() != u.EscapedPath() || back.RawQuery != query {
				t.Fatalf("Target(%q, %q) = %s parses back as %s", path, query, u, back)
			}
		}
	})
}
