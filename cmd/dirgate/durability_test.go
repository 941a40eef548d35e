package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dirgate/dirgate/adapters/podio/podiosim"
	"github.com/dirgate/dirgate/internal/crypt"
	"github.com/dirgate/dirgate/internal/redistest"
	"github.com/dirgate/dirgate/internal/tenantauth"
)

// The durability test's world: a workspace that admin@demo.example (user 1000001) administers, in
// an organization with room for 200 invitees (the demo dataset's organizations allow 100 and 50
// users, so Podio would refuse most of the invitations there).
const (
	duraSpace   = 40001
	duraMembers = 200
	duraRole    = "light"
	duraSecret  = "durability-test-secret-0123456789-0123456789"
)

// TestJobSurvivesKilledReplica proves the durability requirement end to end with real processes:
// replica A runs a 200-member sync, is killed with SIGKILL halfway, and replica B (a fresh process
// on the same Redis) finishes the job; Podio saw every add-member write exactly once and the
// workspace holds all 200 people with the requested role.
//
// Recovery takes about a minute, most of it asynq's: the dead worker's 30 s lease must expire,
// then the recoverer (every minute in asynq v0.26) requeues tasks whose lease expired at least
// 30 s earlier. The job's fencing key (30 s) has expired by then.
func TestJobSurvivesKilledReplica(t *testing.T) {
	if testing.Short() {
		t.Skip("builds dirgate, kills a replica and waits about a minute for asynq to hand the job over")
	}
	t.Parallel()
	rdb := redistest.New(t) // skips without Redis, fails under CI=true
	// buildGateway names the queue after the prefix; asynq keeps its keys outside the prefix.
	queue := strings.TrimSuffix(rdb.Prefix, ":") + ":jobs"
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		iter := rdb.Scan(ctx, 0, "asynq:{"+queue+"}*", 1000).Iterator()
		for iter.Next(ctx) {
			rdb.Del(ctx, iter.Val())
		}
		rdb.SRem(ctx, "asynq:queues", queue)
	})
	bin := buildDirgate(t)

	// Quota never interferes: the simulator's hourly limits and the gateway's budget are far
	// above the few hundred calls the test makes.
	sim := podiosim.New(podiosim.Config{
		Dataset:                 podiosim.Large(podiosim.LargeOptions{Orgs: 1, Spaces: 1, People: 20}),
		InvitedInSpaceMembersV2: true, // invitees are listed, so the resumed run can see them
		GeneralLimit:            1_000_000, RateLimitedLimit: 1_000_000,
	})
	adds := &heldAdds{next: sim, hold: 40 * time.Millisecond, applied: map[string]int{}}
	simTS := httptest.NewServer(adds)
	t.Cleanup(simTS.Close)
	if st := simState(t, simTS.URL); st.role(duraSpace, 1000001) != "admin" {
		t.Fatalf("user 1000001 is not an admin of workspace %d; the test needs one it administers", duraSpace)
	}

	key, err := crypt.GenerateKey("k1")
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{
		"DIRGATE_REDIS_URL":                redistest.URL(),
		"DIRGATE_REDIS_PREFIX":             rdb.Prefix,
		"DIRGATE_JWT_HS256_SECRET":         duraSecret,
		"DIRGATE_ENCRYPTION_KEYS":          key.String(),
		"DIRGATE_PODIO_API_URL":            simTS.URL + "/",
		"DIRGATE_PODIO_AUTH_URL":           simTS.URL + "/",
		"DIRGATE_PODIO_CLIENT_ID":          "demo-client",
		"DIRGATE_PODIO_CLIENT_SECRET":      "demo-secret",
		"DIRGATE_ALLOW_PASSWORD_GRANT":     "true",
		"DIRGATE_QUOTA_GENERAL_LIMIT":      "1000000",
		"DIRGATE_QUOTA_RATE_LIMITED_LIMIT": "1000000",
		// Warnings and errors only: a log printed on failure is not buried under the polls.
		"DIRGATE_LOG_LEVEL": "warn",
	}
	a := startReplica(t, bin, "A", env)

	m, err := tenantauth.NewMinter([]byte(duraSecret), "", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := m.Mint("tenant-durability", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	var acct struct{ ID string }
	if st, body := callJSON(t, "POST", a.url+"/integrated-accounts", tok,
		map[string]any{"grant_type": "password", "username": "admin@demo.example", "password": "demo"}, &acct); st != http.StatusCreated {
		t.Fatalf("link: %d %s", st, body)
	}

	var want []string
	var members []map[string]string
	for i := range duraMembers {
		mail := fmt.Sprintf("dura-%03d@example.com", i+1)
		want = append(want, mail)
		members = append(members, map[string]string{"email": mail})
	}
	before := sim.Calls()[podiosim.RouteAddSpaceMember]
	var job struct{ ID string }
	path := fmt.Sprintf("/unified/user-directory/workspaces/%d/members/sync?integrated_account_id=%s", duraSpace, acct.ID)
	if st, body := callJSON(t, "POST", a.url+path, tok,
		map[string]any{"members": members, "default_role": duraRole, "mode": "add_only"}, &job); st != http.StatusAccepted || job.ID == "" {
		t.Fatalf("sync: %d %s", st, body)
	}

	// Halfway: once A has done at least half the items, catch its next write in flight (applied
	// by Podio, the answer withheld) and kill A without warning.
	var j jobView
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(10 * time.Millisecond) {
		j = getJob(t, a.url, tok, job.ID)
		if j.Status.final() || j.Progress.Done >= duraMembers {
			t.Fatalf("the job finished before it could be interrupted (%s, %+v); make the held answers slower", j.Status, j.Progress)
		}
		if j.Progress.Done >= duraMembers/2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the job never got halfway on replica A: %s %+v", j.Status, j.Progress)
		}
	}
	trapped := make(chan string, 1)
	adds.trapNext(trapped)
	var inFlight string
	select {
	case inFlight = <-trapped:
	case <-time.After(time.Minute):
		t.Fatal("replica A made no further add-member call after the halfway mark")
	}
	a.kill(t)
	killedAt := time.Now()
	callsAtKill := sim.Calls()[podiosim.RouteAddSpaceMember] - before
	if callsAtKill >= duraMembers {
		t.Fatalf("replica A made all %d writes before it died; nothing was left to resume", callsAtKill)
	}

	b := startReplica(t, bin, "B", env)
	atKill := getJob(t, b.url, tok, job.ID)
	if atKill.Status.final() || atKill.Progress.Done < duraMembers/2 || atKill.Progress.Done >= duraMembers {
		t.Fatalf("the job as A left it: %s %+v; want unfinished, at least half done", atKill.Status, atKill.Progress)
	}
	// The write in flight is recorded as started, not done: the resumed run must ask Podio.
	i := slices.IndexFunc(atKill.Items, func(it itemView) bool { return it.Email == inFlight })
	if i < 0 || atKill.Items[i].Status != "started" || adds.count(inFlight) != 1 {
		t.Fatalf("the write in flight for %s (applied %d times): item %d of the job is not started: %+v", inFlight, adds.count(inFlight), i, atKill.Items)
	}
	t.Logf("replica A killed at %d/%d done, %d add-member calls made, the write for %s applied but unanswered",
		atKill.Progress.Done, duraMembers, callsAtKill, inFlight)

	var resumed time.Duration
	for deadline := killedAt.Add(3 * time.Minute); ; time.Sleep(200 * time.Millisecond) {
		j = getJob(t, b.url, tok, job.ID)
		if resumed == 0 && !j.UpdatedAt.Equal(atKill.UpdatedAt) {
			resumed = time.Since(killedAt)
		}
		if j.Status.final() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("replica B did not finish the job within 3 min of the kill: %s %+v (updated %s)", j.Status, j.Progress, j.UpdatedAt)
		}
	}
	t.Logf("replica B resumed the job %s after the kill and finished it %s after the kill",
		resumed.Round(time.Second), time.Since(killedAt).Round(time.Second))

	if j.Status != "succeeded" || j.Progress != (progressView{Total: duraMembers, Done: duraMembers}) {
		t.Errorf("job: %s %+v, error %s; want succeeded with %d of %d done", j.Status, j.Progress, j.Error, duraMembers, duraMembers)
	}
	// No write repeated: Podio counted exactly one add-member call per person...
	if got := sim.Calls()[podiosim.RouteAddSpaceMember] - before; got != duraMembers {
		t.Errorf("Podio counted %d add-member calls, want %d (one per person)", got, duraMembers)
	}
	for _, mail := range want {
		if n := adds.count(mail); n != 1 {
			t.Errorf("%s was added %d times, want once", mail, n)
		}
	}
	// ...and none missing: every person is in the workspace with the requested role.
	st := simState(t, simTS.URL)
	got := map[string]string{}
	for _, mem := range st.members(duraSpace) {
		if mail := st.mail(mem.UserID); strings.HasPrefix(mail, "dura-") {
			got[mail] = mem.Role
		}
	}
	for _, mail := range want {
		if role, ok := got[mail]; !ok || role != duraRole {
			t.Errorf("%s in workspace %d: role %q (member %v), want %q", mail, duraSpace, role, ok, duraRole)
		}
	}
	if len(got) != duraMembers {
		t.Errorf("workspace %d holds %d dura-* people, want %d", duraSpace, len(got), duraMembers)
	}
}

// heldAdds is the Podio the replicas talk to: the simulator, except that the answer to each
// add-member call is held back for a while after the simulator has applied the write, so that a
// sync takes seconds, and one answer can be withheld until the caller is gone (trapNext). A
// replica killed then has made the write but never heard of it: the case where a careless resume
// writes twice. (The simulator's own latency fault delays before the write and counts the call
// even when the caller dies waiting, so its call counter could not tell a repeat from a write
// that never happened.) It also counts applied writes per e-mail address.
type heldAdds struct {
	next http.Handler
	hold time.Duration

	mu      sync.Mutex
	applied map[string]int
	trap    chan<- string
}

var addMemberPath = regexp.MustCompile(`^/space/[0-9]+/member/$`)

func (h *heldAdds) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || !addMemberPath.MatchString(r.URL.EscapedPath()) {
		h.next.ServeHTTP(w, r)
		return
	}
	body, _ := io.ReadAll(r.Body)
	r.Body = io.NopCloser(bytes.NewReader(body))
	rec := httptest.NewRecorder()
	h.next.ServeHTTP(rec, r)
	var in struct {
		Mails []string `json:"mails"`
	}
	_ = json.Unmarshal(body, &in)
	h.mu.Lock()
	var trap chan<- string
	if rec.Code < 300 {
		for _, m := range in.Mails {
			h.applied[strings.ToLower(m)]++
		}
		if len(in.Mails) > 0 {
			trap, h.trap = h.trap, nil
		}
	}
	h.mu.Unlock()
	hold := time.After(h.hold)
	if trap != nil {
		trap <- in.Mails[0]
		hold = time.After(time.Minute) // until the caller is killed; the cap only unblocks a broken test
	}
	select {
	case <-hold:
	case <-r.Context().Done():
		return // the caller is gone: the write stands, the answer is lost
	}
	for k, v := range rec.Header() {
		w.Header()[k] = v
	}
	w.WriteHeader(rec.Code)
	_, _ = w.Write(rec.Body.Bytes())
}

// trapNext withholds the answer to the next applied add-member call until its caller is gone, and
// sends the call's e-mail address to c once the write is applied.
func (h *heldAdds) trapNext(c chan<- string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.trap = c
}

func (h *heldAdds) count(mail string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.applied[strings.ToLower(mail)]
}

// buildDirgate builds the dirgate binary into a temporary directory.
func buildDirgate(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "dirgate")
	cmd := exec.CommandContext(t.Context(), "go", "build", "-o", bin, "./cmd/dirgate")
	cmd.Dir = filepath.Join("..", "..")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// replicaProc is a "dirgate serve" process.
type replicaProc struct {
	name   string
	cmd    *exec.Cmd
	url    string
	stderr *syncBuffer
	exited chan struct{}
}

// startReplica starts "dirgate serve" with env (and a listen address of its own) and waits until
// it listens. The process is killed at cleanup; its log is printed if the test failed.
func startReplica(t *testing.T, bin, name string, env map[string]string) *replicaProc {
	t.Helper()
	addr := freeAddr(t)
	cmd := exec.Command(bin, "serve")
	// The parent's DIRGATE_* variables must not leak into the replica's configuration.
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "DIRGATE_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.Env = append(cmd.Env, "DIRGATE_ADDR="+addr, "DIRGATE_PUBLIC_URL=http://"+addr)
	p := &replicaProc{name: name, cmd: cmd, url: "http://" + addr, stderr: &syncBuffer{}, exited: make(chan struct{})}
	var stdout syncBuffer
	cmd.Stdout, cmd.Stderr = &stdout, p.stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start replica %s: %v", name, err)
	}
	go func() {
		_ = cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill() // an error only says it has already exited
		<-p.exited
		if t.Failed() {
			t.Logf("replica %s stderr:\n%s", name, p.stderr.String())
		}
	})
	for deadline := time.Now().Add(30 * time.Second); !strings.Contains(stdout.String(), "dirgate listening on"); time.Sleep(20 * time.Millisecond) {
		select {
		case <-p.exited:
			t.Fatalf("replica %s exited during start-up: %v", name, cmd.ProcessState)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("replica %s did not start listening within 30 s", name)
		}
	}
	return p
}

// kill sends SIGKILL and waits until the process is gone.
func (p *replicaProc) kill(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Kill(); err != nil {
		t.Fatalf("kill replica %s: %v", p.name, err)
	}
	select {
	case <-p.exited:
	case <-time.After(10 * time.Second):
		t.Fatalf("replica %s still runs 10 s after SIGKILL", p.name)
	}
}

// callJSON sends a JSON request with a tenant token and decodes a JSON answer into out.
func callJSON(t *testing.T, method, url, token string, in, out any) (int, string) {
	t.Helper()
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			t.Fatal(err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	c := &http.Client{Timeout: 30 * time.Second}
	res, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("%s %s: read: %v", method, url, err)
	}
	if out != nil && res.StatusCode < 300 {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: answer is not JSON (%v): %s", method, url, err, b)
		}
	}
	return res.StatusCode, string(b)
}

type jobStatus string

func (s jobStatus) final() bool { return s == "succeeded" || s == "failed" || s == "canceled" }

type progressView struct{ Total, Done, Failed int }

// jobView is GET /jobs/{id} as the test reads it.
type jobView struct {
	Status    jobStatus       `json:"status"`
	UpdatedAt time.Time       `json:"updated_at"`
	Progress  progressView    `json:"progress"`
	Error     json.RawMessage `json:"error"`
	Items     []itemView      `json:"items"`
}

type itemView struct {
	Email  string `json:"email"`
	Status string `json:"status"`
}

func getJob(t *testing.T, base, token, id string) jobView {
	t.Helper()
	var j jobView
	if st, body := callJSON(t, "GET", base+"/jobs/"+id, token, nil, &j); st != http.StatusOK {
		t.Fatalf("GET /jobs/%s on %s: %d %s", id, base, st, body)
	}
	return j
}

// simWorld is the simulator's /_sim/state, as much as the test reads.
type simWorld struct {
	Orgs []struct {
		Spaces []simSpace `json:"spaces"`
	} `json:"orgs"`
	People []struct {
		UserID int64  `json:"user_id"`
		Mail   string `json:"mail"`
	} `json:"people"`
}

type simSpace struct {
	SpaceID int64       `json:"space_id"`
	Members []simMember `json:"members"`
}

type simMember struct {
	UserID int64  `json:"user_id"`
	Role   string `json:"role"`
}

func simState(t *testing.T, simURL string) simWorld {
	t.Helper()
	res, err := http.Get(simURL + "/_sim/state")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var w simWorld
	if err := json.NewDecoder(res.Body).Decode(&w); err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("simulator state: %d %v", res.StatusCode, err)
	}
	return w
}

func (w simWorld) members(space int64) []simMember {
	for _, o := range w.Orgs {
		if i := slices.IndexFunc(o.Spaces, func(s simSpace) bool { return s.SpaceID == space }); i >= 0 {
			return o.Spaces[i].Members
		}
	}
	return nil
}

func (w simWorld) role(space, user int64) string {
	for _, m := range w.members(space) {
		if m.UserID == user {
			return m.Role
		}
	}
	return ""
}

func (w simWorld) mail(user int64) string {
	for _, p := range w.People {
		if p.UserID == user {
			return p.Mail
		}
	}
	return ""
}
