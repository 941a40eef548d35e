package proxy

import (
	"net/http"
	"net/url"
	"strings"
	"unicode/utf8"
)

const (
	// maxPathLen bounds the escaped path; Podio paths are short, and a bound keeps the repeated
	// decoding in pathProblem cheap.
	maxPathLen = 2048
	// maxQueryLen bounds the raw query.
	maxQueryLen = 8 << 10
)

// Target checks the caller's path (escaped, as in r.URL.EscapedPath(), starting with "/") and raw
// query, and returns the upstream URL. Errors are *Error with Status 400.
//
// The decision is made once, on the escaped path, because net/http cleans some paths and not
// others, and Podio decodes what it receives. See the package documentation for the rules. The
// returned URL keeps the caller's escaping exactly (trailing slash included); its scheme, host and
// port only ever come from Options.Base.
func (f *Forwarder) Target(escapedPath, rawQuery string) (*url.URL, error) {
	if msg := pathProblem(escapedPath); msg != "" {
		return nil, invalidPath("the path " + msg)
	}
	if msg := queryProblem(rawQuery); msg != "" {
		return nil, invalidPath("the query string " + msg)
	}
	decoded, err := url.PathUnescape(escapedPath)
	if err != nil {
		// pathProblem has checked the encoding; this is a bug, so refuse rather than guess.
		return nil, &Error{Status: http.StatusBadRequest, Code: CodeInvalidPath, Message: "the path is not valid", Err: err}
	}
	u := &url.URL{
		Scheme:   f.base.Scheme,
		Host:     f.base.Host,
		Path:     f.base.Path + decoded[1:],
		RawPath:  f.baseEscaped + escapedPath[1:],
		RawQuery: rawQuery,
	}
	// Whatever the checks above missed, the upstream must be Podio, under the configured base,
	// with the caller's escaping; EscapedPath falls back to re-escaping Path when RawPath is not a
	// valid encoding of it, so compare against RawPath too.
	if u.Scheme != f.base.Scheme || u.Host != f.base.Host || u.User != nil ||
		!strings.HasPrefix(u.EscapedPath(), f.baseEscaped) || u.EscapedPath() != u.RawPath {
		return nil, invalidPath("the path cannot be forwarded")
	}
	return u, nil
}

func invalidPath(msg string) *Error {
	return &Error{Status: http.StatusBadRequest, Code: CodeInvalidPath, Message: msg}
}

// pathProblem says what is wrong with an escaped path, or "" if it may be forwarded. The messages
// never quote the path: it is attacker-controlled and would be reflected to the caller.
func pathProblem(p string) string {
	if p == "" || p[0] != '/' {
		return "must start with /"
	}
	if len(p) > maxPathLen {
		return "is too long"
	}
	// Level 0, the bytes as received: only characters that may appear unescaped in a path, and
	// well-formed percent-encoding. Everything else (space, '?', '#', '\', control characters,
	// non-ASCII) must have been escaped by the client; r.URL.EscapedPath() never yields them.
	for i := 0; i < len(p); i++ {
		c := p[i]
		if c == '%' {
			if i+2 >= len(p) || !isHex(p[i+1]) || !isHex(p[i+2]) {
				return "has an invalid percent-encoding"
			}
			i += 2
			continue
		}
		if !isPathByte(c) {
			return "has a character that must be percent-encoded"
		}
	}
	// Every decoding level must be harmless, not just the first: a server (or an SDK, or an
	// intermediate proxy) that decodes once more would otherwise turn %252e%252e into "..".
	// Each level is the previous one with one url.PathUnescape; the walk ends when nothing
	// changes or the text is no longer valid percent-encoding (then no decoder sees more escapes,
	// but levelProblem still refuses leftover %2e, %2f, %5c and encoded control characters).
	level := p
	for depth := 0; ; depth++ {
		if msg := levelProblem(level, depth); msg != "" {
			return msg
		}
		if !strings.Contains(level, "%") {
			return ""
		}
		next, err := url.PathUnescape(level)
		if err != nil || next == level {
			return ""
		}
		level = next
	}
}

// levelProblem checks one decoding level of a path (depth 0 is the path as received).
func levelProblem(s string, depth int) string {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c < 0x20 || c == 0x7f:
			return "has a control character" + encodedAt(depth)
		case c == '\\':
			return "has a backslash" + encodedAt(depth)
		case c == '%' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]):
			switch v := unhex(s[i+1])<<4 | unhex(s[i+2]); {
			case v < 0x20 || v == 0x7f:
				return "has an encoded control character" + encodedAt(depth)
			case v == '.':
				return "has an encoded dot (%2e)" + encodedAt(depth)
			case v == '/':
				return "has an encoded slash (%2f)" + encodedAt(depth)
			case v == '\\':
				return "has an encoded backslash (%5c)" + encodedAt(depth)
			}
		}
	}
	if depth > 0 && !utf8.ValidString(s) {
		// Overlong UTF-8 forms such as %c0%ae have been decoded to "." by some servers.
		return "decodes to invalid UTF-8"
	}
	if strings.Contains(s, "//") {
		return "has an empty segment (//)" + encodedAt(depth)
	}
	// No Podio path has ".." anywhere, so refuse the substring rather than only the segment: that
	// also covers "..;" and similar forms some servers treat as a parent segment.
	if strings.Contains(s, "..") {
		return "has a dot-dot (..)" + encodedAt(depth)
	}
	first := true
	for seg := range strings.SplitSeq(s[1:], "/") {
		if name, _, _ := strings.Cut(seg, ";"); name == "." {
			return "has a dot segment (.)" + encodedAt(depth)
		}
		// A first segment with a colon reads as a scheme or host:port ("/http:", "/evil.com:443")
		// to anything that reparses the path; Podio has no such path.
		if first && strings.Contains(seg, ":") {
			return "looks like an absolute URL (colon in the first segment)"
		}
		first = false
	}
	return ""
}

func encodedAt(depth int) string {
	if depth == 0 {
		return ""
	}
	return " after percent-decoding"
}

// queryProblem says what is wrong with a raw query, or "" if it may be forwarded verbatim.
func queryProblem(q string) string {
	if len(q) > maxQueryLen {
		return "is too long"
	}
	for i := 0; i < len(q); i++ {
		switch c := q[i]; {
		case c < 0x20 || c == 0x7f:
			return "has a control character"
		case c == ' ':
			return "has a space"
		case c == '#':
			// A raw '#' would end the query and start a fragment in the URL sent upstream.
			return "has a '#'"
		}
	}
	return ""
}

// isPathByte reports whether c may appear unescaped in an escaped path: RFC 3986 pchar plus "/"
// and the "[" "]" that net/url leaves alone. This is the set url.URL accepts in RawPath, so the
// caller's escaping survives unchanged.
func isPathByte(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	switch c {
	case '-', '.', '_', '~', // unreserved
		'!', '$', '&', '\'', '(', ')', '*', '+', ',', ';', '=', // sub-delims
		':', '@', '/', '[', ']':
		return true
	}
	return false
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case '0' <= c && c <= '9':
		return c - '0'
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10
	default:
		return c - 'A' + 10
	}
}
