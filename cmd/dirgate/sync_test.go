package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

const syncTestToken = "tok-Secret-4711.abcdef"

// answer is one canned gateway response.
type answer struct {
	status int
	body   string
}

// recorded is one request the fake gateway received.
type recorded struct {
	method, path, query, auth, key string
	body                           map[string]any
}

// fakeGateway implements the routes "dirgate sync" calls (both sync routes share the syncs answers) with canned answers, in order (the
// last one repeats), and records every request. Requests without the test token get 401.
type fakeGateway struct {
	srv     *httptest.Server
	mu      sync.Mutex
	reqs    []recorded
	syncs   []answer    // POST .../members/sync, for one or several workspaces
	jobs    []answer    // GET /jobs/{id}
	onJobGT func(n int) // called before answering the n-th GET /jobs (1-based)
	nSync   int
	nJob    int
}

func newFakeGateway(t *testing.T, syncs, jobs []answer) *fakeGateway {
	t.Helper()
	g := &fakeGateway{syncs: syncs, jobs: jobs}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /unified/user-directory/workspaces/{ws}/members/sync", func(w http.ResponseWriter, r *http.Request) {
		g.serve(w, r, func() answer { g.nSync++; return pick(g.syncs, g.nSync) })
	})
	mux.HandleFunc("POST /unified/user-directory/members/sync", func(w http.ResponseWriter, r *http.Request) {
		g.serve(w, r, func() answer { g.nSync++; return pick(g.syncs, g.nSync) })
	})
	mux.HandleFunc("GET /jobs/{id}", func(w http.ResponseWriter, r *http.Request) {
		g.serve(w, r, func() answer {
			g.nJob++
			if g.onJobGT != nil {
				g.onJobGT(g.nJob)
			}
			return pick(g.jobs, g.nJob)
		})
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		g.serve(w, r, func() answer { return answer{404, `{"error":{"code":"not_found","message":"no route"}}`} })
	})
	g.srv = httptest.NewServer(mux)
	t.Cleanup(g.srv.Close)
	return g
}

func pick(as []answer, n int) answer {
	if len(as) == 0 {
		return answer{500, `{"error":{"code":"internal","message":"no canned answer"}}`}
	}
	return as[min(n, len(as))-1]
}

func (g *fakeGateway) serve(w http.ResponseWriter, r *http.Request, next func() answer) {
	g.mu.Lock()
	defer g.mu.Unlock()
	rec := recorded{method: r.Method, path: r.URL.Path, query: r.URL.RawQuery, auth: r.Header.Get("Authorization"), key: r.Header.Get("Idempotency-Key")}
	if _, ok := r.Header["Idempotency-Key"]; ok && rec.key == "" {
		rec.key = "(empty)"
	}
	if data, _ := io.ReadAll(r.Body); len(data) > 0 {
		if err := json.Unmarshal(data, &rec.body); err != nil {
			rec.body = map[string]any{"unparsable": string(data)}
		}
	}
	g.reqs = append(g.reqs, rec)
	a := answer{401, `{"error":{"code":"unauthorized","message":"bad token","request_id":"req_1"}}`}
	if rec.auth == "Bearer "+syncTestToken {
		a = next()
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(a.status)
	io.WriteString(w, a.body)
}

func (g *fakeGateway) requests() []recorded {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]recorded(nil), g.reqs...)
}

// syncRun is one run of "dirgate sync" against a fake gateway.
type syncRun struct {
	code           int
	stdout, stderr string
}

// runSyncTest runs the command with the token in DIRGATE_TOKEN, no wait between polls, UTC
// times and the given terminal answer; it fails the test if the token shows in any output.
func runSyncTest(t *testing.T, ctx context.Context, tty bool, args ...string) syncRun {
	t.Helper()
	r := &syncRunner{
		getenv: func(k string) string {
			if k == "DIRGATE_TOKEN" {
				return syncTestToken
			}
			return ""
		},
		client:     &http.Client{Timeout: 10 * time.Second},
		interval:   0,
		isTerminal: func(io.Writer) bool { return tty },
		newKey:     newIdempotencyKey,
		loc:        time.UTC,
	}
	var stdout, stderr bytes.Buffer
	code := exitCode("sync", r.run(ctx, args, &stdout, &stderr), &stderr)
	res := syncRun{code, stdout.String(), stderr.String()}
	if strings.Contains(res.stdout+res.stderr, syncTestToken) {
		t.Errorf("the token appears in the output:\nstdout:\n%s\nstderr:\n%s", res.stdout, res.stderr)
	}
	return res
}

func writeCSV(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "members.csv")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

const membersCSV = "Email,ROLE\na@x.com,admin\nb@x.com,\n"

func syncArgs(g *fakeGateway, file string, extra ...string) []string {
	return append([]string{"--gateway", g.srv.URL + "/", "--account", "ia_1", "--workspace", "40001", "--file", file}, extra...)
}

const testPlan = `{"workspace_id":"40001","mode":"add_only",
 "add":[{"email":"a@x.com","user_id":"1000002","role":"admin"},{"email":"b@x.com","user_id":null,"role":"regular"}],
 "change_role":[{"email":"c@x.com","user_id":"1000003","from":"light","to":"regular"}],
 "remove":[{"email":"d@x.com","user_id":"1000004","role":"regular"}],
 "unchanged":[{"email":"e@x.com","user_id":"1000005","role":"admin"}],
 "conflicts":[{"email":"f@x.com","user_id":"1000006","reason":"last_admin"}]}`

// jobJSON renders a job with the given status and progress, and items.
func jobJSON(status string, total, done, failed int, waitUntil string, items string, jobErr string) string {
	wu := "null"
	if waitUntil != "" {
		wu = `"` + waitUntil + `"`
	}
	if items == "" {
		items = "[]"
	}
	if jobErr == "" {
		jobErr = "null"
	}
	return `{"id":"job_1","type":"workspace_sync","status":"` + status + `","integrated_account_id":"ia_1",
	 "created_at":"2026-03-01T12:00:00Z","updated_at":"2026-03-01T12:00:00Z","started_at":null,"finished_at":null,
	 "wait_until":` + wu + `,"progress":{"total":` + itoa(total) + `,"done":` + itoa(done) + `,"failed":` + itoa(failed) + `},
	 "items":` + items + `,"error":` + jobErr + `}`
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

func TestParseMembersCSV(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		in   string
		want []syncMember
		errs []string // substrings of the error, in order
	}{
		{name: "header case and blank lines", in: "\n EMAIL , Role \n\na@x.com, Admin\n  \n,\nb@x.com\r\nc@x.com,light\n",
			want: []syncMember{{"a@x.com", "admin"}, {"b@x.com", ""}, {"c@x.com", "light"}}},
		{name: "byte-order mark and extra columns", in: "\ufeffname,email\nAnn,a@x.com\n",
			want: []syncMember{{"a@x.com", ""}}},
		{name: "invalid rows with line numbers",
			in: "email,role\na@x.com,admin\n\nnot-an-email,light\nc@x.com,boss\nA@X.COM,regular\n,regular\nAnn <g@x.com>\n",
			errs: []string{"5 errors", `line 4: "not-an-email" is not an email address`, `line 5: role "boss"`,
				"line 6: duplicate email A@X.COM (first on line 2)", "line 7: email is empty", `line 8: "Ann <g@x.com>" is not`}},
		// The gateway's plan refuses a domain without a dot; the CLI says so before calling it.
		{name: "address the gateway refuses", in: "email\na@b\n", errs: []string{`line 2: "a@b" is not an email address`}},
		{name: "no email column", in: "mail,role\na@x.com,admin\n", errs: []string{"line 1: the header row has no email column"}},
		{name: "email column twice", in: "email,Email\na@x.com,b@x.com\n", errs: []string{"line 1: the header names column email twice"}},
		{name: "empty file", in: "\n\n", errs: []string{"the file is empty"}},
		{name: "header only", in: "email,role\n", errs: []string{"no members"}},
		{name: "bad quoting", in: "email\na@x.com\nb@x\"y.com\n", errs: []string{"line 3:"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := parseMembersCSV(strings.NewReader(tc.in))
			if tc.errs == nil {
				if err != nil {
					t.Fatal(err)
				}
				if d := cmp.Diff(tc.want, got); d != "" {
					t.Errorf("members (-want +got):\n%s", d)
				}
				return
			}
			if err == nil {
				t.Fatalf("no error; members %v", got)
			}
			rest := err.Error()
			for _, s := range tc.errs {
				i := strings.Index(rest, s)
				if i < 0 {
					t.Fatalf("error lacks %q (in order):\n%s", s, err)
				}
				rest = rest[i+len(s):]
			}
		})
	}
}

func TestSyncUsageAndCSVErrors(t *testing.T) {
	t.Parallel()
	g := newFakeGateway(t, []answer{{200, testPlan}}, nil)
	good := writeCSV(t, membersCSV)
	bad := writeCSV(t, "email,role\na@x.com,admin\nb@x.com,owner\n")
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"bad csv", syncArgs(g, bad), "line 3: role \"owner\""},
		{"missing file", syncArgs(g, filepath.Join(t.TempDir(), "nope.csv")), "nope.csv"},
		{"bad mode", syncArgs(g, good, "--mode", "replace"), "--mode must be add_only or mirror"},
		{"bad default role", syncArgs(g, good, "--default-role", "owner"), "--default-role"},
		{"no gateway", []string{"--account", "ia_1", "--workspace", "1", "--file", good}, "--gateway"},
		{"gateway not http", []string{"--gateway", "ftp://h", "--account", "ia_1", "--workspace", "1", "--file", good}, "--gateway"},
		{"no account", []string{"--gateway", g.srv.URL, "--workspace", "1", "--file", good}, "--account is required"},
		{"token with a newline", syncArgs(g, good, "--token", "a\nb"), "control characters"},
		{"stray argument", append(syncArgs(g, good), "extra"), "unexpected arguments"},
		{"empty workspace id", []string{"--gateway", g.srv.URL, "--account", "ia_1", "--workspace", "40001,,40003", "--file", good}, "--workspace has an empty id"},
		{"workspace twice", []string{"--gateway", g.srv.URL, "--account", "ia_1", "--workspace", "40001", "--workspace", "40003,40001", "--file", good},
			"--workspace names 40001 twice"},
		{"no workspace", []string{"--gateway", g.srv.URL, "--account", "ia_1", "--file", good}, "--workspace is required"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := runSyncTest(t, t.Context(), false, tc.args...)
			if res.code != 2 || !strings.Contains(res.stderr, tc.want) {
				t.Errorf("exit %d, stderr:\n%s\nwant exit 2 and %q", res.code, res.stderr, tc.want)
			}
		})
	}
	if n := len(g.requests()); n != 0 {
		t.Errorf("usage errors made %d gateway requests, want 0", n)
	}
}

func TestSyncDryRun(t *testing.T) {
	t.Parallel()
	g := newFakeGateway(t, []answer{{200, testPlan}}, nil)
	res := runSyncTest(t, t.Context(), false, syncArgs(g, writeCSV(t, membersCSV), "--dry-run", "--mode", "mirror", "--default-role", "light", "--message", "Welcome")...)
	if res.code != 0 {
		t.Fatalf("exit %d; stderr:\n%s", res.code, res.stderr)
	}
	for _, want := range []string{
		"Plan for workspace 40001 (mode add_only):",
		"  add          2\n  change_role  1\n  remove       1\n  unchanged    1\n  conflicts    1\n",
		"+ a@x.com (user 1000002) as admin",
		"+ b@x.com (not yet a Podio user) as regular",
		"~ c@x.com (user 1000003): light -> regular",
		"- d@x.com (user 1000004), now regular",
		"! f@x.com (user 1000006): last_admin",
		"Dry run: nothing was changed.",
	} {
		if !strings.Contains(res.stdout, want) {
			t.Errorf("stdout lacks %q:\n%s", want, res.stdout)
		}
	}
	if strings.Contains(res.stdout, "e@x.com") {
		t.Errorf("unchanged members are listed without --verbose:\n%s", res.stdout)
	}
	reqs := g.requests()
	if len(reqs) != 1 {
		t.Fatalf("%d requests, want the dry-run POST only: %+v", len(reqs), reqs)
	}
	r := reqs[0]
	if r.method != "POST" || r.path != "/unified/user-directory/workspaces/40001/members/sync" || r.query != "integrated_account_id=ia_1" {
		t.Errorf("request %s %s?%s", r.method, r.path, r.query)
	}
	if r.key != "" {
		t.Errorf("a dry run sent Idempotency-Key %q", r.key)
	}
	wantBody := map[string]any{
		"members":      []any{map[string]any{"email": "a@x.com", "role": "admin"}, map[string]any{"email": "b@x.com"}},
		"default_role": "light", "mode": "mirror", "message": "Welcome", "dry_run": true,
	}
	if d := cmp.Diff(wantBody, r.body); d != "" {
		t.Errorf("body (-want +got):\n%s", d)
	}

	res = runSyncTest(t, t.Context(), false, syncArgs(g, writeCSV(t, membersCSV), "--dry-run", "--verbose")...)
	if !strings.Contains(res.stdout, "= e@x.com (user 1000005), admin") {
		t.Errorf("--verbose does not list unchanged members:\n%s", res.stdout)
	}
	if got := g.requests()[1].body; got["message"] != nil || got["default_role"] != "regular" || got["mode"] != "add_only" {
		t.Errorf("defaults: body %v, want no message, default_role regular, mode add_only", got)
	}
}

// fullRun is a job going queued → running → waiting_for_quota → succeeded, with a repeated
// state that must not print a second line.
var fullRun = []answer{
	{200, jobJSON("running", 4, 1, 0, "", "", "")},
	{200, jobJSON("running", 4, 1, 0, "", "", "")},
	{200, jobJSON("waiting_for_quota", 4, 2, 0, "2026-03-01T12:00:05Z", "", "")},
	{200, jobJSON("running", 4, 3, 0, "", "", "")},
	{200, jobJSON("succeeded", 4, 4, 0, "", `[{"action":"add","workspace_id":"40001","user_id":null,"email":"b@x.com","role":"regular","status":"done","error":null}]`, "")},
}

func TestSyncFollowsJob(t *testing.T) {
	t.Parallel()
	g := newFakeGateway(t, []answer{{200, testPlan}, {202, jobJSON("queued", 4, 0, 0, "", "", "")}}, fullRun)
	res := runSyncTest(t, t.Context(), false, syncArgs(g, writeCSV(t, membersCSV))...)
	if res.code != 0 {
		t.Fatalf("exit %d; stdout:\n%s\nstderr:\n%s", res.code, res.stdout, res.stderr)
	}
	var progress []string
	for l := range strings.Lines(res.stdout) {
		if strings.HasPrefix(l, "[") {
			progress = append(progress, strings.TrimSuffix(l, "\n"))
		}
	}
	want := []string{
		"[..............................] 0/4 queued",
		"[#######.......................] 1/4 running",
		"[###############...............] 2/4 waiting_for_quota: waiting for Podio quota until 12:00:05",
		"[######################........] 3/4 running",
		"[##############################] 4/4 succeeded",
	}
	if d := cmp.Diff(want, progress); d != "" {
		t.Errorf("progress lines (-want +got):\n%s\nstdout:\n%s", d, res.stdout)
	}
	if !strings.Contains(res.stdout, "Started job job_1.") || !strings.Contains(res.stdout, "Job job_1 succeeded: 4 done, 0 failed, of 4.") {
		t.Errorf("stdout:\n%s", res.stdout)
	}
	if strings.Contains(res.stdout, "\r") {
		t.Errorf("carriage returns in non-terminal output:\n%q", res.stdout)
	}

	reqs := g.requests()
	var posts, gets []recorded
	for _, r := range reqs {
		switch {
		case r.method == "POST":
			posts = append(posts, r)
		case r.method == "GET" && r.path == "/jobs/job_1":
			gets = append(gets, r)
		default:
			t.Errorf("unexpected request %s %s", r.method, r.path)
		}
		if r.auth != "Bearer "+syncTestToken {
			t.Errorf("%s %s: Authorization %q", r.method, r.path, r.auth)
		}
	}
	if len(posts) != 2 || len(gets) != len(fullRun) {
		t.Fatalf("%d POSTs and %d GETs, want 2 and %d", len(posts), len(gets), len(fullRun))
	}
	if posts[0].body["dry_run"] != true || posts[0].key != "" {
		t.Errorf("first POST: dry_run %v, key %q; want the plan first", posts[0].body["dry_run"], posts[0].key)
	}
	if posts[1].body["dry_run"] != false || !regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`).MatchString(posts[1].key) {
		t.Errorf("second POST: dry_run %v, Idempotency-Key %q; want false and a UUID", posts[1].body["dry_run"], posts[1].key)
	}
	delete(posts[0].body, "dry_run")
	delete(posts[1].body, "dry_run")
	if d := cmp.Diff(posts[0].body, posts[1].body); d != "" {
		t.Errorf("the real run's body differs from the plan's beyond dry_run:\n%s", d)
	}
}

func TestSyncProgressBarOnTerminal(t *testing.T) {
	t.Parallel()
	g := newFakeGateway(t, []answer{{200, testPlan}, {202, jobJSON("queued", 4, 0, 0, "", "", "")}}, fullRun)
	res := runSyncTest(t, t.Context(), true, syncArgs(g, writeCSV(t, membersCSV))...)
	if res.code != 0 {
		t.Fatalf("exit %d; stderr:\n%s", res.code, res.stderr)
	}
	_, bar, ok := strings.Cut(res.stdout, "Started job job_1.\n")
	bar, _, ok2 := strings.Cut(bar, "\nJob job_1 succeeded")
	if !ok || !ok2 {
		t.Fatalf("stdout:\n%q", res.stdout)
	}
	if strings.Contains(bar, "\n") {
		t.Errorf("the progress bar spans lines:\n%q", bar)
	}
	// One redraw per poll, repeated states included: the bar is a single line rewritten in place.
	if n := strings.Count(bar, "\r["); n != 1+len(fullRun) {
		t.Errorf("%d redraws, want %d:\n%q", n, 1+len(fullRun), bar)
	}
	if !strings.Contains(bar, "\r[###############...............] 2/4 waiting_for_quota: waiting for Podio quota until 12:00:05\x1b[K") {
		t.Errorf("no quota wait in the bar:\n%q", bar)
	}
}

func TestSyncExitCodes(t *testing.T) {
	t.Parallel()
	queued := answer{202, jobJSON("queued", 2, 0, 0, "", "", "")}
	failedItem := `[{"action":"add","workspace_id":"40001","user_id":"1000002","email":"a@x.com","role":"admin","status":"failed",
		"error":{"code":"forbidden_upstream","message":"Podio says no"}},
		{"action":"add","workspace_id":"40001","user_id":null,"email":"b@x.com","role":"regular","status":"done","error":null}]`
	leaky := `{"error":{"code":"forbidden","message":"token ` + syncTestToken + ` may not sync\u001b[2J","request_id":"req_42"}}`
	for _, tc := range []struct {
		name        string
		syncs, jobs []answer
		want        int
		out         []string // in stdout+stderr
	}{
		{name: "job failed", syncs: []answer{{200, testPlan}, queued},
			jobs: []answer{{200, jobJSON("failed", 2, 0, 0, "", "", `{"code":"needs_reauth","message":"link the account again"}`)}},
			want: 1, out: []string{"Job job_1 failed", "Job error: needs_reauth: link the account again"}},
		{name: "job canceled", syncs: []answer{{200, testPlan}, queued},
			jobs: []answer{{200, jobJSON("canceled", 2, 1, 0, "", "", "")}}, want: 1, out: []string{"job job_1 canceled"}},
		{name: "an item failed", syncs: []answer{{200, testPlan}, queued},
			jobs: []answer{{200, jobJSON("succeeded", 2, 1, 1, "", failedItem, "")}},
			want: 1, out: []string{"Failed items (1):\n  add a@x.com (user 1000002) as admin: forbidden_upstream: Podio says no", "1 of its items failed"}},
		{name: "gateway error on the plan", syncs: []answer{{403, leaky}}, want: 3,
			out: []string{"planning the sync: the gateway answered 403 forbidden: token [token] may not sync", "(request_id req_42)"}},
		{name: "gateway error on the start", syncs: []answer{{200, testPlan}, {422, `{"error":{"code":"invalid_request","message":"too many members"}}`}},
			want: 3, out: []string{"starting the sync: the gateway answered 422 invalid_request: too many members"}},
		{name: "no error body", syncs: []answer{{500, "oops"}}, want: 3, out: []string{"the gateway answered 500 Internal Server Error"}},
		{name: "start without job id", syncs: []answer{{200, testPlan}, {202, `{}`}}, want: 3, out: []string{"no job id"}},
		{name: "job disappears", syncs: []answer{{200, testPlan}, queued},
			jobs: []answer{{404, `{"error":{"code":"not_found","message":"no such job"}}`}}, want: 3,
			out: []string{"following job job_1: the gateway answered 404 not_found: no such job"}},
		{name: "empty plan", syncs: []answer{{200, `{"workspace_id":"40001","mode":"add_only","add":[],"change_role":[],"remove":[],"unchanged":[{"email":"a@x.com","user_id":"1","role":"admin"}],"conflicts":[]}`}},
			want: 0, out: []string{"Nothing to change."}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			g := newFakeGateway(t, tc.syncs, tc.jobs)
			res := runSyncTest(t, t.Context(), false, syncArgs(g, writeCSV(t, membersCSV))...)
			if res.code != tc.want {
				t.Errorf("exit %d, want %d; stdout:\n%s\nstderr:\n%s", res.code, tc.want, res.stdout, res.stderr)
			}
			for _, s := range tc.out {
				if !strings.Contains(res.stdout+res.stderr, s) {
					t.Errorf("output lacks %q; stdout:\n%s\nstderr:\n%s", s, res.stdout, res.stderr)
				}
			}
			if strings.Contains(res.stdout+res.stderr, "\x1b[2J") {
				t.Errorf("a gateway-supplied escape sequence reached the output")
			}
			if tc.name == "empty plan" && len(g.requests()) != 1 {
				t.Errorf("an empty plan still started a job: %d requests", len(g.requests()))
			}
		})
	}
}

func TestSyncGatewayUnreachableOrTokenRejected(t *testing.T) {
	t.Parallel()
	g := newFakeGateway(t, []answer{{200, testPlan}}, nil)
	res := runSyncTest(t, t.Context(), false, syncArgs(g, writeCSV(t, membersCSV), "--token", "wrong-token", "--dry-run")...)
	if res.code != 3 || !strings.Contains(res.stderr, "401 unauthorized: bad token") || strings.Contains(res.stderr+res.stdout, "wrong-token") {
		t.Errorf("wrong --token: exit %d, stderr:\n%s", res.code, res.stderr)
	}
	g.srv.Close()
	res = runSyncTest(t, t.Context(), false, syncArgs(g, writeCSV(t, membersCSV), "--dry-run")...)
	if res.code != 3 || !strings.Contains(res.stderr, "planning the sync:") {
		t.Errorf("closed gateway: exit %d, stderr:\n%s", res.code, res.stderr)
	}
}

// TestSyncRetriesStartWithOneKey: transient answers to the start are retried with the same
// Idempotency-Key, so the gateway can answer a retry with the first job.
func TestSyncRetriesStartWithOneKey(t *testing.T) {
	t.Parallel()
	busy := answer{409, `{"error":{"code":"idempotency_in_progress","message":"a request with this key is running"}}`}
	g := newFakeGateway(t,
		[]answer{{200, testPlan}, {503, `{"error":{"code":"store_unavailable","message":"redis"}}`}, busy, {202, jobJSON("queued", 1, 0, 0, "", "", "")}},
		[]answer{{503, `{"error":{"code":"upstream_unavailable","message":"later"}}`}, {200, jobJSON("succeeded", 1, 1, 0, "", "", "")}})
	res := runSyncTest(t, t.Context(), false, syncArgs(g, writeCSV(t, membersCSV))...)
	if res.code != 0 {
		t.Fatalf("exit %d; stderr:\n%s", res.code, res.stderr)
	}
	var keys []string
	for _, r := range g.requests() {
		if r.method == "POST" && r.body["dry_run"] == false {
			keys = append(keys, r.key)
		}
	}
	if len(keys) != 3 || keys[0] == "" || keys[1] != keys[0] || keys[2] != keys[0] {
		t.Errorf("start attempts carried keys %q, want three equal non-empty keys", keys)
	}

	// A gateway that stays unavailable is given up on after maxAttempts, with exit code 3.
	g = newFakeGateway(t, []answer{{200, testPlan}, {503, `{"error":{"code":"store_unavailable","message":"redis"}}`}}, nil)
	res = runSyncTest(t, t.Context(), false, syncArgs(g, writeCSV(t, membersCSV))...)
	if n := len(g.requests()); res.code != 3 || n != 1+maxAttempts {
		t.Errorf("exit %d after %d requests, want 3 after %d", res.code, n, 1+maxAttempts)
	}
}

// TestSyncInterruptDoesNotCancel: Ctrl-C while following stops polling, says how to follow the
// job, and sends nothing that would cancel it.
func TestSyncInterruptDoesNotCancel(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	g := newFakeGateway(t, []answer{{200, testPlan}, {202, jobJSON("queued", 4, 0, 0, "", "", "")}},
		[]answer{{200, jobJSON("running", 4, 1, 0, "", "", "")}})
	g.onJobGT = func(n int) {
		if n == 2 {
			cancel()
		}
	}
	res := runSyncTest(t, ctx, true, syncArgs(g, writeCSV(t, membersCSV))...)
	if res.code != exitInterrupted {
		t.Errorf("exit %d, want %d; stderr:\n%s", res.code, exitInterrupted, res.stderr)
	}
	for _, want := range []string{"Stopped following job job_1; it keeps running", `-H "Authorization: Bearer $DIRGATE_TOKEN" ` + g.srv.URL + "/jobs/job_1", "the job was not canceled"} {
		if !strings.Contains(res.stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, res.stderr)
		}
	}
	for _, r := range g.requests() {
		if r.method != "GET" && r.method != "POST" || r.method == "POST" && !strings.HasSuffix(r.path, "/members/sync") {
			t.Errorf("unexpected request after interrupt: %s %s", r.method, r.path)
		}
	}
	if n := len(g.requests()); n != 4 {
		t.Errorf("%d requests, want 2 POSTs and 2 GETs, then no more polling", n)
	}
}

// TestSyncInterruptBeforeTheJob: Ctrl-C during the plan or the start is reported as an
// interruption (130), not as a gateway error.
func TestSyncInterruptBeforeTheJob(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	g := newFakeGateway(t, []answer{{200, testPlan}}, nil)
	res := runSyncTest(t, ctx, false, syncArgs(g, writeCSV(t, membersCSV))...)
	if res.code != exitInterrupted || !strings.Contains(res.stderr, "nothing was started") {
		t.Errorf("exit %d, want %d; stderr:\n%s", res.code, exitInterrupted, res.stderr)
	}
}

// TestSyncSeveralWorkspaces: --workspace repeated or comma-separated uses the multi-workspace
// route, prints one plan per workspace, starts one job, and names the workspace of a failed item.
func TestSyncSeveralWorkspaces(t *testing.T) {
	t.Parallel()
	plan2 := strings.Replace(testPlan, `"workspace_id":"40001"`, `"workspace_id":"40003"`, 1)
	empty := `{"workspace_id":"40006","mode":"add_only","add":[],"change_role":[],"remove":[],"unchanged":[],"conflicts":[]}`
	plans := `{"workspaces":[` + testPlan + `,` + plan2 + `,` + empty + `]}`
	items := `[{"action":"add","workspace_id":"40001","user_id":null,"email":"b@x.com","role":"regular","status":"done","error":null},
		{"action":"add","workspace_id":"40003","user_id":null,"email":"b@x.com","role":"regular","status":"failed",
		 "error":{"code":"forbidden_upstream","message":"Podio says no"}}]`
	g := newFakeGateway(t, []answer{{200, plans}, {202, jobJSON("queued", 2, 0, 0, "", "", "")}},
		[]answer{{200, jobJSON("succeeded", 2, 1, 1, "", items, "")}})
	args := []string{"--gateway", g.srv.URL, "--account", "ia_1", "--workspace", "40001, 40003", "--workspace", "40006",
		"--file", writeCSV(t, membersCSV)}
	res := runSyncTest(t, t.Context(), false, args...)
	if res.code != 1 {
		t.Fatalf("exit %d, want 1 (an item failed); stdout:\n%s\nstderr:\n%s", res.code, res.stdout, res.stderr)
	}
	for _, want := range []string{
		"Plan for workspace 40001 (mode add_only):", "Plan for workspace 40003 (mode add_only):", "Plan for workspace 40006 (mode add_only):",
		"Started job job_1.",
		"Failed items (1):\n  add b@x.com (not yet a Podio user) as regular in workspace 40003: forbidden_upstream: Podio says no",
	} {
		if !strings.Contains(res.stdout, want) {
			t.Errorf("stdout lacks %q:\n%s", want, res.stdout)
		}
	}
	var posts []recorded
	for _, r := range g.requests() {
		if r.method == "POST" {
			posts = append(posts, r)
		}
	}
	if len(posts) != 2 {
		t.Fatalf("%d POSTs, want the plan and the start", len(posts))
	}
	for i, r := range posts {
		if r.path != "/unified/user-directory/members/sync" || r.query != "integrated_account_id=ia_1" {
			t.Errorf("POST %d: %s?%s", i, r.path, r.query)
		}
		if d := cmp.Diff([]any{"40001", "40003", "40006"}, r.body["workspace_ids"]); d != "" {
			t.Errorf("POST %d: workspace_ids (-want +got):\n%s", i, d)
		}
		if r.body["dry_run"] != (i == 0) || (i == 1) != (r.key != "") {
			t.Errorf("POST %d: dry_run %v, Idempotency-Key %q", i, r.body["dry_run"], r.key)
		}
	}

	// Nothing to change in any workspace: no job.
	g = newFakeGateway(t, []answer{{200, `{"workspaces":[` + empty + `,` + strings.Replace(empty, "40006", "40007", 1) + `]}`}}, nil)
	res = runSyncTest(t, t.Context(), false, "--gateway", g.srv.URL, "--account", "ia_1", "--workspace", "40006,40007", "--file", writeCSV(t, membersCSV))
	if res.code != 0 || !strings.Contains(res.stdout, "Nothing to change.") || len(g.requests()) != 1 {
		t.Errorf("empty plans: exit %d, %d requests; stdout:\n%s", res.code, len(g.requests()), res.stdout)
	}
}
