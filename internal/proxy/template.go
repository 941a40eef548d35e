package proxy

import "strings"

// maxTemplate bounds the length of a logged path template.
const maxTemplate = 256

// Template turns a Podio path into its template for logs and metrics: segments that start with a
// digit (ids, comma-separated id lists) become "{id}", and every other segment that is not a
// plain word of at most 40 letters, "_" or "-" (an e-mail address, a slug, anything encoded)
// becomes "{value}". "/org/3001/member/" gives "/org/{id}/member/".
// Logs keep routes, not identifiers or personal data.
func Template(escapedPath string) string {
	segs := strings.Split(escapedPath, "/")
	for i, s := range segs {
		switch {
		case s == "":
		case s[0] >= '0' && s[0] <= '9':
			segs[i] = "{id}"
		case !isWord(s):
			segs[i] = "{value}"
		}
	}
	t := strings.Join(segs, "/")
	if len(t) > maxTemplate {
		t = t[:maxTemplate] + "..."
	}
	return t
}

// isWord reports whether s is 1-40 ASCII letters, "_" or "-": the shape of Podio's fixed path
// segments ("org", "member", "end_member_info").
func isWord(s string) bool {
	if len(s) > 40 {
		return false
	}
	for i := range len(s) {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}
