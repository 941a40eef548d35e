package podiosim_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/dirgate/dirgate/adapters/podio/podiosim"
)

// Demo ids the tests rely on (stable by construction of the demo dataset).
const (
	org1        = "3001"
	org2        = "3002"
	spaceSales  = "40001" // admin@ admin, member@ regular
	spaceMktg   = "40002" // member@ admin, admin@ regular
	spaceEng    = "40003" // admin@ admin, member@ light
	spaceArch   = "40004" // archived
	spaceBoard  = "40005" // admin@ not a member
	spaceComm   = "40008" // open, org 2
	adminMail   = "admin@demo.example"
	memberMail  = "member@demo.example"
	adminUserID = 1000001
	memberID    = 1000002
)

var datetimeRE = regexp.MustCompile(`^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$`)

type harness struct {
	t   *testing.T
	sim *podiosim.Server
	url string
}

func setup(t *testing.T, cfg podiosim.Config) *harness {
	t.Helper()
	sim := podiosim.New(cfg)
	ts := httptest.NewServer(sim)
	t.Cleanup(ts.Close)
	return &harness{t: t, sim: sim, url: ts.URL}
}

// token returns a valid access token for a demo person.
func (h *harness) token(mail string) string {
	h.t.Helper()
	tok, err := h.sim.IssueToken("demo-client", mail)
	if err != nil {
		h.t.Fatalf("IssueToken(%s): %v", mail, err)
	}
	return tok.AccessToken
}

type resp struct {
	status int
	header http.Header
	body   []byte
}

func (r resp) json(t *testing.T) any {
	t.Helper()
	var v any
	if err := json.Unmarshal(r.body, &v); err != nil {
		t.Fatalf("body is not JSON (%v): %s", err, r.body)
	}
	return v
}

func (r resp) obj(t *testing.T) map[string]any {
	t.Helper()
	m, ok := r.json(t).(map[string]any)
	if !ok {
		t.Fatalf("body is not a JSON object: %s", r.body)
	}
	return m
}

func (r resp) arr(t *testing.T) []any {
	t.Helper()
	a, ok := r.json(t).([]any)
	if !ok {
		t.Fatalf("body is not a JSON array: %s", r.body)
	}
	return a
}

// do sends a request; token "" sends no Authorization header. body may be a string (sent as is,
// form-encoded when it does not start with '{') or any value (JSON-encoded).
func (h *harness) do(method, path, token string, body any) resp {
	h.t.Helper()
	var rd io.Reader
	ct := ""
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
		ct = "application/x-www-form-urlencoded"
		if strings.HasPrefix(b, "{") {
			ct = "application/json"
		}
	default:
		buf, err := json.Marshal(b)
		if err != nil {
			h.t.Fatal(err)
		}
		rd, ct = bytes.NewReader(buf), "application/json"
	}
	req, err := http.NewRequest(method, h.url+path, rd)
	if err != nil {
		h.t.Fatal(err)
	}
	if ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	if token != "" {
		req.Header.Set("Authorization", "OAuth2 "+token)
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := client.Do(req)
	if err != nil {
		h.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		h.t.Fatal(err)
	}
	return resp{status: res.StatusCode, header: res.Header, body: b}
}

// shape maps a JSON key to its expected kind: string, number, bool, null, object, array,
// datetime, or alternatives joined with "|" (e.g. "datetime|null").
type shape map[string]string

func kindOf(v any) []string {
	switch x := v.(type) {
	case nil:
		return []string{"null"}
	case string:
		if datetimeRE.MatchString(x) {
			return []string{"string", "datetime"}
		}
		return []string{"string"}
	case float64:
		return []string{"number"}
	case bool:
		return []string{"bool"}
	case map[string]any:
		return []string{"object"}
	case []any:
		return []string{"array"}
	}
	return []string{"unknown"}
}

func checkShape(t *testing.T, where string, obj map[string]any, want shape) {
	t.Helper()
	keys := make([]string, 0, len(want))
	for k := range want {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v, ok := obj[k]
		if !ok {
			t.Errorf("%s: key %q missing in %v", where, k, obj)
			continue
		}
		kinds := kindOf(v)
		okKind := false
		for _, alt := range strings.Split(want[k], "|") {
			for _, kd := range kinds {
				okKind = okKind || alt == kd
			}
		}
		if !okKind {
			t.Errorf("%s: key %q = %#v, want kind %s", where, k, v, want[k])
		}
	}
}

func checkPodioError(t *testing.T, r resp, status int, code string) map[string]any {
	t.Helper()
	if r.status != status {
		t.Fatalf("status = %d, want %d; body %s", r.status, status, r.body)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json; charset=utf-8" {
		t.Errorf("Content-Type = %q", ct)
	}
	e := r.obj(t)
	checkShape(t, "error body", e, errorShape)
	if e["error"] != code {
		t.Errorf("error = %v, want %q (description %v)", e["error"], code, e["error_description"])
	}
	return e
}

var errorShape = shape{
	"error": "string", "error_description": "string", "error_detail": "null",
	"error_parameters": "object", "error_propagate": "bool", "request": "object",
}

func num(v any) int64 {
	f, _ := v.(float64)
	return int64(f)
}
