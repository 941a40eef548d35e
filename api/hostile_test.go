package api_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"unicode"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/dirgate/dirgate/adapters/podio/podiosim"
)

// hostileStrings are values for path and query parameters: empty, huge, overflowing, of the wrong
// type, with control characters, traversal and injection attempts.
var hostileStrings = []string{
	"", " ", strings.Repeat("a", 8000), "99999999999999999999999999", "-1", "0", "1e400", "NaN",
	"-9223372036854775809", "0x10", "\x00", "a\x01b\x1f", "\r\nX-Injected: 1", "../../../etc/passwd",
	"%00", "%ff%fe", "' OR 1=1--", `{"a":1}`, "[]", "null", "true", "\u202e\ufeff", "\xff\xfe",
	"🙂", "*", "evt_99999999999999999999-0", "cur_" + strings.Repeat("A", 200),
}

// hostileJSON are values for body fields.
var hostileJSON = []string{
	`""`, `" "`, `null`, `true`, `0`, `-1`, `1.5`, `99999999999999999999999999`, `1e400`, `-1e400`,
	`[]`, `{}`, `[[[[[[[[[[]]]]]]]]]]`, `"` + strings.Repeat("a", 70000) + `"`, `"\u0000"`, `"a\u0001\u001fb"`,
	`"\r\nX-Injected: 1"`, `"../../etc/passwd"`, `"javascript:alert(1)"`, `"http://169.254.169.254/"`,
	`["a",1,null,{}]`, `{"$ne":null}`, `"\ud800"`, `"🙂"`,
}

// hostileBodies replace a whole request body.
var hostileBodies = []string{
	``, `null`, `[]`, `"text"`, `42`, `{`, `{"a":1}{"b":2}`, `{"unknown_field":1}`, `{"a":1,"a":2}`,
	strings.Repeat("[", 100000) + strings.Repeat("]", 100000), `{"x":"` + strings.Repeat("a", 2<<20) + `"}`,
	"\xff\xfe{}",
}

// TestHostileInputNeverFails walks openapi.yaml and sends, for every operation, hostile values for
// each parameter and body field in turn (the others valid), and hostile whole bodies. No answer
// is a 5xx; every 4xx is documented for its operation and, on JSON routes, in the error shape
// (the harness checks each response against openapi.yaml).
func TestHostileInputNeverFails(t *testing.T) {
	t.Parallel()
	h, tok, q := directorySetup(t, harnessOptions{jobs: true, webhooks: true, sim: podiosim.Config{InvitedInSpaceMembersV2: true}})
	acct := strings.TrimPrefix(q, "integrated_account_id=")
	c := h.browser()

	type op struct {
		method, path string
		op           *openapi3.Operation
		params       openapi3.Parameters
	}
	var ops []op
	for path, item := range h.spec.Paths.Map() {
		for method, o := range item.Operations() {
			ops = append(ops, op{method, path, o, append(slices.Clone(item.Parameters), o.Parameters...)})
		}
	}
	// Deletes last, so that earlier operations still find what they read.
	slices.SortFunc(ops, func(a, b op) int {
		if (a.method == http.MethodDelete) != (b.method == http.MethodDelete) {
			if a.method == http.MethodDelete {
				return 1
			}
			return -1
		}
		return strings.Compare(a.method+a.path, b.method+b.path)
	})

	sent := 0
	for _, o := range ops {
		params := map[string]*openapi3.Parameter{}
		var names []string
		for _, p := range o.params {
			params[p.Value.In+":"+p.Value.Name] = p.Value
			names = append(names, p.Value.In+":"+p.Value.Name)
		}
		slices.Sort(names)
		valid := func(p *openapi3.Parameter) (string, bool) {
			return validParam(o.path, p, acct)
		}
		// build sends the operation with the valid values, one parameter replaced.
		// send sends the operation; refuse says the answer must be a 4xx (the value can never be
		// right: text with control or direction-changing characters).
		send := func(replace, value string, body []byte, what string, refuse bool) {
			t.Helper()
			path := o.path
			query := url.Values{}
			header := []string{}
			for _, k := range names {
				p := params[k]
				v, ok := valid(p)
				if k == replace {
					v, ok = value, true
				}
				if !ok {
					continue
				}
				switch p.In {
				case "path":
					esc := url.PathEscape(v)
					if p.Name == "podio_path" && k != replace {
						esc = v
					}
					path = strings.ReplaceAll(path, "{"+p.Name+"}", esc)
				case "query":
					query.Set(p.Name, v)
				case "header":
					if p.Name != "Authorization" {
						header = append(header, p.Name, v)
					}
				}
			}
			auth := "Bearer " + tok
			if strings.HasPrefix(o.path, "/metrics") {
				auth = ""
			}
			raw := path
			if len(query) > 0 {
				raw += "?" + query.Encode()
			}
			r := h.send(c, strings.ToUpper(o.method), h.url, raw, auth, body, header...)
			sent++
			if r.status >= 500 || refuse && r.status < 400 {
				t.Errorf("%s %s with %s: %d %.300s", o.method, o.path, what, r.status, r.body)
				return
			}
			// The proxy passes Podio's own answers through, in Podio's error shape.
			podios := strings.HasPrefix(o.path, "/proxy/") && r.header.Get("X-Request-Id") != "" && strings.Contains(string(r.body), `"error_description"`)
			if r.status >= 400 && o.method != http.MethodHead && !podios && strings.HasPrefix(r.header.Get("Content-Type"), "application/json") {
				var e struct {
					Error struct{ Code, Message string } `json:"error"`
				}
				if json.Unmarshal(r.body, &e) != nil || e.Error.Code == "" || e.Error.Message == "" {
					t.Errorf("%s %s with %s: %d not in the error shape: %.300s", o.method, o.path, what, r.status, r.body)
				}
			}
		}

		baseBody := validBody(h.spec, o.op, acct)
		for _, k := range names {
			if k == "header:Authorization" {
				continue
			}
			for _, v := range hostileStrings {
				if strings.HasPrefix(k, "path:") && v == "" {
					continue // an empty segment is another route, not a value of this one
				}
				if strings.HasPrefix(k, "header:") && strings.IndexFunc(v, func(r rune) bool { return r < 0x20 }) >= 0 {
					continue // not a header value a client can send
				}
				send(k, v, baseBody, fmt.Sprintf("%s = %.40q", k, v), !strings.HasPrefix(k, "header:") && strings.IndexFunc(v, hiddenRune) >= 0)
			}
		}
		if baseBody == nil {
			continue
		}
		var fields map[string]json.RawMessage
		if err := json.Unmarshal(baseBody, &fields); err == nil {
			for _, name := range bodyFields(h.spec, o.op) {
				for _, v := range hostileJSON {
					mutated := map[string]json.RawMessage{}
					for k, f := range fields {
						mutated[k] = f
					}
					mutated[name] = json.RawMessage(v)
					b, err := json.Marshal(mutated)
					if err != nil {
						// A value encoding/json will not re-encode (1e400, a lone surrogate): splice it.
						b = []byte(`{"` + name + `":` + v + `}`)
					}
					var str string
					hidden := json.Unmarshal([]byte(v), &str) == nil && strings.IndexFunc(str, hiddenRune) >= 0
					send("", "", b, fmt.Sprintf("body.%s = %.40s", name, v), hidden)
				}
				without := map[string]json.RawMessage{}
				for k, f := range fields {
					if k != name {
						without[k] = f
					}
				}
				b, _ := json.Marshal(without)
				send("", "", b, "body without "+name, false)
			}
		}
		for _, b := range hostileBodies {
			send("", "", []byte(b), fmt.Sprintf("body %.40q", b), false)
		}
	}
	if sent < 1000 {
		t.Fatalf("only %d requests sent: the walk missed the document", sent)
	}
	t.Logf("%d hostile requests over %d operations", sent, len(ops))
}

// hiddenRune is a character no text field or filter takes: a control character, a
// direction-changing mark or the byte order mark.
func hiddenRune(r rune) bool {
	return unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r) || r == '\ufeff'
}

// validParam is a value of parameter p that the gateway accepts for path, so that the parameter
// being replaced is the one refused. ok is false for optional parameters left out.
func validParam(path string, p *openapi3.Parameter, acct string) (string, bool) {
	switch p.Name {
	case "integrated_account_id":
		return acct, true
	case "user_id":
		return "1000002", true
	case "podio_path":
		return "user/status", true
	case "file":
		return "dirgate.js", true
	case "id":
		switch {
		case strings.HasPrefix(path, "/integrated-accounts/"):
			return acct, true
		case strings.Contains(path, "/workspaces/"):
			return "40001", true
		case strings.Contains(path, "/organizations/"):
			return "3001", true
		case strings.Contains(path, "/users/"):
			return "1000002", true
		case strings.Contains(path, "/roles/"):
			return "admin", true
		case strings.HasPrefix(path, "/jobs/"):
			return "job_00000000000000000000000000", true
		case strings.HasPrefix(path, "/webhooks/"):
			return "wh_00000000000000000000000000", true
		}
		return "1", true
	case "link_token", "token":
		return "lt_unknown", true
	}
	return "", p.Required
}

// validBody is a request body of the operation's JSON schema built from its required fields (nil
// when the operation takes none).
func validBody(doc *openapi3.T, op *openapi3.Operation, acct string) []byte {
	if op.RequestBody == nil || op.RequestBody.Value == nil {
		return nil
	}
	mt := op.RequestBody.Value.Content.Get("application/json")
	if mt == nil || mt.Schema == nil {
		return nil
	}
	v := sample(mt.Schema.Value, acct, 0)
	b, _ := json.Marshal(v)
	return b
}

// sample is a plausible value of schema s: its example, default or first enum value, else a
// value of its type with every required property.
func sample(s *openapi3.Schema, acct string, depth int) any {
	if s == nil || depth > 4 {
		return nil
	}
	switch {
	case s.Example != nil:
		return s.Example
	case s.Default != nil:
		return s.Default
	case len(s.Enum) > 0:
		return s.Enum[0]
	case len(s.OneOf) > 0:
		return sample(s.OneOf[0].Value, acct, depth+1)
	case len(s.AnyOf) > 0:
		return sample(s.AnyOf[0].Value, acct, depth+1)
	case len(s.AllOf) > 0:
		out := map[string]any{}
		for _, a := range s.AllOf {
			if m, ok := sample(a.Value, acct, depth+1).(map[string]any); ok {
				for k, v := range m {
					out[k] = v
				}
			}
		}
		return out
	}
	switch {
	case s.Type.Is("object"):
		out := map[string]any{}
		for _, name := range s.Required {
			if p := s.Properties[name]; p != nil {
				out[name] = sample(p.Value, acct, depth+1)
			}
		}
		return out
	case s.Type.Is("array"):
		if s.Items == nil {
			return []any{}
		}
		return []any{sample(s.Items.Value, acct, depth+1)}
	case s.Type.Is("integer"), s.Type.Is("number"):
		if s.Min != nil {
			return *s.Min
		}
		return 1
	case s.Type.Is("boolean"):
		return false
	case s.Type.Is("string"):
		switch s.Format {
		case "email":
			return "hostile@example.com"
		case "uri":
			return "https://app.example/done"
		}
		return "x"
	}
	return nil
}

// bodyFields are the top-level property names of the operation's JSON body schema.
func bodyFields(doc *openapi3.T, op *openapi3.Operation) []string {
	mt := op.RequestBody.Value.Content.Get("application/json")
	seen := map[string]bool{}
	var walk func(s *openapi3.Schema)
	walk = func(s *openapi3.Schema) {
		if s == nil {
			return
		}
		for name := range s.Properties {
			seen[name] = true
		}
		for _, group := range []openapi3.SchemaRefs{s.AllOf, s.OneOf, s.AnyOf} {
			for _, r := range group {
				walk(r.Value)
			}
		}
	}
	walk(mt.Schema.Value)
	var out []string
	for name := range seen {
		out = append(out, name)
	}
	slices.Sort(out)
	return out
}
