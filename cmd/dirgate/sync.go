package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/dirgate/dirgate/internal/membership"
)

// Exit codes of "dirgate sync" beyond 0 (succeeded), 1 (job failed or canceled, or an item failed)
// and 2 (usage or CSV errors).
const (
	exitGateway     = 3   // the gateway answered an error or could not be reached
	exitInterrupted = 130 // Ctrl-C while following the job; the job keeps running
)

// syncRunner is "dirgate sync": an HTTP client of the gateway's workspace sync and jobs routes.
// Its fields are what tests replace.
type syncRunner struct {
	getenv     func(string) string
	client     *http.Client
	interval   time.Duration // between job polls and between retries
	isTerminal func(io.Writer) bool
	newKey     func() string
	loc        *time.Location // for "waiting for Podio quota until HH:MM:SS"
}

// runSync implements "dirgate sync" with the real environment, terminal and a one-second poll.
func runSync(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	r := &syncRunner{
		getenv:     os.Getenv,
		client:     &http.Client{Timeout: 5 * time.Minute},
		interval:   time.Second,
		isTerminal: isCharDevice,
		newKey:     newIdempotencyKey,
		loc:        time.Local,
	}
	return r.run(ctx, args, stdout, stderr)
}

// isCharDevice reports whether w is a character device, which is how a terminal looks to
// os.Stat. golang.org/x/term is in the module graph but not in go.sum, so it is not used.
func isCharDevice(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// newIdempotencyKey returns a random UUID (version 4): one per run, so that a retried POST of
// the same run is answered with the first job instead of starting a second one.
func newIdempotencyKey() string {
	var b [16]byte
	rand.Read(b[:]) // crypto/rand.Read never fails.
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// syncFlags are the parsed, validated flags of one run.
type syncFlags struct {
	gateway, token, account, file string
	workspaces                    workspaceList
	mode, defaultRole, message    string
	dryRun, verbose               bool
}

// workspaceList is the repeatable --workspace flag; each value may hold several comma-separated
// ids.
type workspaceList []string

func (l *workspaceList) String() string { return strings.Join(*l, ",") }

func (l *workspaceList) Set(v string) error {
	for id := range strings.SplitSeq(v, ",") {
		*l = append(*l, strings.TrimSpace(id))
	}
	return nil
}

// syncMember is one row of the members CSV and one element of the request's members.
type syncMember struct {
	Email string `json:"email"`
	Role  string `json:"role,omitempty"`
}

// syncRequest is the body of POST .../workspaces/{id}/members/sync, and with WorkspaceIDs of
// POST .../members/sync (several workspaces).
type syncRequest struct {
	WorkspaceIDs []string     `json:"workspace_ids,omitempty"`
	Members      []syncMember `json:"members"`
	DefaultRole  string       `json:"default_role"`
	Mode         string       `json:"mode"`
	Message      string       `json:"message,omitempty"`
	DryRun       bool         `json:"dry_run"`
}

// syncPlan is the gateway's answer to a dry run.
type syncPlan struct {
	WorkspaceID string `json:"workspace_id"`
	Mode        string `json:"mode"`
	Add         []struct {
		Email  string  `json:"email"`
		UserID *string `json:"user_id"`
		Role   string  `json:"role"`
	} `json:"add"`
	ChangeRole []struct {
		Email  string  `json:"email"`
		UserID *string `json:"user_id"`
		From   string  `json:"from"`
		To     string  `json:"to"`
	} `json:"change_role"`
	Remove []struct {
		Email  string  `json:"email"`
		UserID *string `json:"user_id"`
		Role   string  `json:"role"`
	} `json:"remove"`
	Unchanged []struct {
		Email  string  `json:"email"`
		UserID *string `json:"user_id"`
		Role   string  `json:"role"`
	} `json:"unchanged"`
	Conflicts []struct {
		Email  string  `json:"email"`
		UserID *string `json:"user_id"`
		Reason string  `json:"reason"`
	} `json:"conflicts"`
}

// apiError is the error object of the gateway's error body and of a job or job item.
type apiError struct {
	Code      string `json:"code"`
	Message   string `json:"message"`
	RequestID string `json:"request_id,omitempty"`
}

// job is the gateway's Job, as far as the CLI reads it.
type job struct {
	ID        string     `json:"id"`
	Status    string     `json:"status"`
	WaitUntil *time.Time `json:"wait_until"`
	Progress  struct {
		Total  int `json:"total"`
		Done   int `json:"done"`
		Failed int `json:"failed"`
	} `json:"progress"`
	Items []struct {
		Action      string    `json:"action"`
		WorkspaceID string    `json:"workspace_id"`
		UserID      *string   `json:"user_id"`
		Email       string    `json:"email"`
		Role        string    `json:"role"`
		Status      string    `json:"status"`
		Error       *apiError `json:"error"`
	} `json:"items"`
	Error *apiError `json:"error"`
}

// multiPlan is the gateway's answer to a dry run over several workspaces.
type multiPlan struct {
	Workspaces []syncPlan `json:"workspaces"`
}

func (j *job) final() bool {
	switch j.Status {
	case "succeeded", "failed", "canceled":
		return true
	}
	return false
}

func (r *syncRunner) run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	f, err := r.parseFlags(args, stderr)
	if err != nil {
		return err
	}
	members, err := readMembersFile(f.file)
	if err != nil {
		return err
	}
	c := &gatewayClient{r: r, base: strings.TrimRight(f.gateway, "/"), token: f.token}
	req := syncRequest{Members: members, DefaultRole: f.defaultRole, Mode: f.mode, Message: f.message, DryRun: true}
	// One workspace keeps its own route; several go to the route that plans them all and starts
	// one job for all.
	syncPath := "/unified/user-directory/workspaces/" + url.PathEscape(f.workspaces[0]) + "/members/sync"
	if len(f.workspaces) > 1 {
		syncPath, req.WorkspaceIDs = "/unified/user-directory/members/sync", f.workspaces
	}
	syncPath += "?integrated_account_id=" + url.QueryEscape(f.account)

	var plans multiPlan
	var answer any = &plans
	if req.WorkspaceIDs == nil {
		plans.Workspaces = make([]syncPlan, 1)
		answer = &plans.Workspaces[0]
	}
	if err := c.do(ctx, http.MethodPost, syncPath, req, "", http.StatusOK, answer); err != nil {
		if ctx.Err() != nil {
			return exitError{exitInterrupted, errors.New("interrupted before the plan arrived; nothing was started")}
		}
		return c.fail(err, "planning the sync")
	}
	changes := 0
	for i := range plans.Workspaces {
		p := &plans.Workspaces[i]
		if i > 0 {
			fmt.Fprintln(stdout)
		}
		printPlan(stdout, p, f.verbose, c.clean)
		changes += len(p.Add) + len(p.ChangeRole) + len(p.Remove)
	}
	if f.dryRun {
		fmt.Fprintln(stdout, "\nDry run: nothing was changed.")
		return nil
	}
	if changes == 0 {
		fmt.Fprintln(stdout, "\nNothing to change.")
		return nil
	}

	req.DryRun = false
	var j job
	if err := c.do(ctx, http.MethodPost, syncPath, req, r.newKey(), http.StatusAccepted, &j); err != nil {
		if ctx.Err() != nil {
			// The gateway may have accepted the start before the answer was lost.
			return exitError{exitInterrupted, errors.New("interrupted while starting the sync; a job may have started")}
		}
		return c.fail(err, "starting the sync")
	}
	if j.ID == "" {
		return exitError{exitGateway, errors.New("starting the sync: the gateway's answer has no job id")}
	}
	fmt.Fprintf(stdout, "\nStarted job %s.\n", c.clean(j.ID))
	return r.follow(ctx, c, &j, stdout, stderr)
}

func (r *syncRunner) parseFlags(args []string, stderr io.Writer) (syncFlags, error) {
	fs := newFlagSet("sync", "Makes the members of Podio workspaces match a CSV file (columns email, role), through the gateway:\n"+
		"prints the plan, then (unless --dry-run) starts a sync job and follows it until it ends.\n"+
		"The token is read from DIRGATE_TOKEN when --token is not given; prefer the variable, flags show in ps.\n"+
		"Exit codes: 0 succeeded, 1 job failed or canceled or an item failed, 2 usage or CSV errors,\n"+
		"3 gateway errors, 130 interrupted (a started job keeps running).", stderr)
	var f syncFlags
	fs.StringVar(&f.gateway, "gateway", "", "gateway base URL, e.g. http://127.0.0.1:8080; required")
	fs.StringVar(&f.token, "token", "", "tenant token (default: $DIRGATE_TOKEN)")
	fs.StringVar(&f.account, "account", "", "integrated account id; required")
	fs.Var(&f.workspaces, "workspace", "workspace id; required. Repeat it or separate ids with commas to sync several workspaces (up to 50) in one job")
	fs.StringVar(&f.file, "file", "", "members CSV: a header row, column email (required) and role (light, regular, admin); required")
	fs.StringVar(&f.mode, "mode", "add_only", "add_only (add and change roles) or mirror (also remove members not in the file)")
	fs.StringVar(&f.defaultRole, "default-role", "regular", "role of rows without one: light, regular or admin")
	fs.StringVar(&f.message, "message", "", "message for the invitation Podio sends to new members")
	fs.BoolVar(&f.dryRun, "dry-run", false, "print the plan only; change nothing")
	fs.BoolVar(&f.verbose, "verbose", false, "list unchanged members too, not only their count")
	if err := parseFlags(fs, args); err != nil {
		return f, err
	}
	if f.token == "" {
		f.token = r.getenv("DIRGATE_TOKEN")
	}
	var problems []string
	u, err := url.Parse(f.gateway)
	if f.gateway == "" || err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		problems = append(problems, "--gateway must be an http(s) URL such as http://127.0.0.1:8080")
	}
	switch {
	case f.token == "":
		problems = append(problems, "set DIRGATE_TOKEN (or --token) to a tenant token")
	case strings.IndexFunc(f.token, func(c rune) bool { return c <= ' ' || c > '~' }) >= 0:
		problems = append(problems, "the token contains spaces or control characters") // never print it
	}
	if f.account == "" {
		problems = append(problems, "--account is required")
	}
	switch {
	case len(f.workspaces) == 0:
		problems = append(problems, "--workspace is required")
	case slices.Contains(f.workspaces, ""):
		problems = append(problems, "--workspace has an empty id")
	default:
		seen := map[string]bool{}
		for _, id := range f.workspaces {
			if seen[id] {
				problems = append(problems, "--workspace names "+id+" twice")
			}
			seen[id] = true
		}
	}
	if f.file == "" {
		problems = append(problems, "--file is required")
	}
	if f.mode != "add_only" && f.mode != "mirror" {
		problems = append(problems, "--mode must be add_only or mirror")
	}
	if !membership.ValidRole(f.defaultRole) {
		problems = append(problems, "--default-role must be light, regular or admin")
	}
	if len(problems) > 0 {
		return f, usageError{errors.New(strings.Join(problems, "; "))}
	}
	return f, nil
}

// readMembersFile reads and validates the members CSV at path.
func readMembersFile(path string) ([]syncMember, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, usageError{err}
	}
	defer f.Close()
	members, err := parseMembersCSV(f)
	if err != nil {
		return nil, usageError{fmt.Errorf("%s: %w", path, err)}
	}
	return members, nil
}

// csvErrors lists every invalid row of a members CSV, so one run shows them all.
type csvErrors []string

func (e csvErrors) Error() string {
	if len(e) == 1 {
		return e[0]
	}
	return fmt.Sprintf("%d errors:\n  %s", len(e), strings.Join(e, "\n  "))
}

// parseMembersCSV reads a header row (names case-insensitive; email required, role optional,
// other columns ignored) and one member per row. Blank lines are skipped. Every problem is
// reported with its line number; duplicate emails (case-insensitive) are problems too, because
// the file would not say which role is meant.
func parseMembersCSV(in io.Reader) ([]syncMember, error) {
	cr := csv.NewReader(in)
	cr.FieldsPerRecord = -1
	cr.TrimLeadingSpace = true
	var (
		errs      csvErrors
		members   []syncMember
		emailCol  = -1
		roleCol   = -1
		header    = false
		firstLine = map[string]int{}
	)
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if pe, ok := errors.AsType[*csv.ParseError](err); ok {
			errs = append(errs, fmt.Sprintf("line %d: %v", pe.Line, pe.Err))
			if errors.Is(pe.Err, csv.ErrQuote) || errors.Is(pe.Err, csv.ErrBareQuote) {
				break // the rest of the file is read as one quoted field; more errors would mislead
			}
			continue
		}
		if err != nil {
			return nil, err
		}
		line, _ := cr.FieldPos(0)
		blank := true
		for i := range rec {
			rec[i] = strings.TrimSpace(rec[i])
			if rec[i] != "" {
				blank = false
			}
		}
		if blank {
			continue
		}
		if !header {
			header = true
			rec[0] = strings.TrimSpace(strings.TrimPrefix(rec[0], "\ufeff")) // spreadsheets write a byte-order mark
			for i, name := range rec {
				switch strings.ToLower(name) {
				case "email":
					if emailCol >= 0 {
						errs = append(errs, fmt.Sprintf("line %d: the header names column email twice", line))
					}
					emailCol = i
				case "role":
					if roleCol >= 0 {
						errs = append(errs, fmt.Sprintf("line %d: the header names column role twice", line))
					}
					roleCol = i
				}
			}
			if emailCol < 0 {
				return nil, csvErrors(append(errs, fmt.Sprintf("line %d: the header row has no email column (want a header such as: email,role)", line)))
			}
			continue
		}
		var m syncMember
		if emailCol < len(rec) {
			m.Email = rec[emailCol]
		}
		if roleCol >= 0 && roleCol < len(rec) {
			m.Role = strings.ToLower(rec[roleCol])
		}
		switch {
		case m.Email == "":
			errs = append(errs, fmt.Sprintf("line %d: email is empty", line))
			continue
		case !membership.ValidEmail(m.Email):
			errs = append(errs, fmt.Sprintf("line %d: %q is not an email address", line, m.Email))
			continue
		}
		if m.Role != "" && !membership.ValidRole(m.Role) {
			errs = append(errs, fmt.Sprintf("line %d: role %q is not light, regular or admin", line, rec[roleCol]))
			continue
		}
		key := strings.ToLower(m.Email)
		if first, dup := firstLine[key]; dup {
			errs = append(errs, fmt.Sprintf("line %d: duplicate email %s (first on line %d)", line, m.Email, first))
			continue
		}
		firstLine[key] = line
		members = append(members, m)
	}
	if len(errs) > 0 {
		return nil, errs
	}
	if !header {
		return nil, errors.New("the file is empty; it needs a header row (email,role) and one member per row")
	}
	if len(members) == 0 {
		// In mirror mode an empty list would remove everyone; that is never what an empty file means.
		return nil, errors.New("the file has a header but no members")
	}
	return members, nil
}

// gatewayClient makes the gateway calls of one run.
type gatewayClient struct {
	r     *syncRunner
	base  string
	token string
}

// gatewayError is a non-2xx answer of the gateway, or its unreadable answer.
type gatewayError struct {
	status int
	body   apiError
}

func (e *gatewayError) Error() string {
	if e.body.Code == "" {
		return fmt.Sprintf("the gateway answered %d %s", e.status, http.StatusText(e.status))
	}
	s := fmt.Sprintf("the gateway answered %d %s: %s", e.status, e.body.Code, e.body.Message)
	if e.body.RequestID != "" {
		s += " (request_id " + e.body.RequestID + ")"
	}
	return s
}

// retryable reports whether the same request may be sent again: the gateway was briefly
// unavailable, or (Idempotency-Key) the first attempt of this request is still running.
func (e *gatewayError) retryable() bool {
	switch e.status {
	case http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	case http.StatusConflict:
		return e.body.Code == "idempotency_in_progress"
	}
	return false
}

// maxAttempts bounds the tries of one gateway call on transient failures.
const maxAttempts = 3

// do sends method path with body as JSON (when not nil) and the Idempotency-Key key (when not
// empty), and decodes a want-status answer into out. Transport failures and transient gateway
// answers are retried with the same body and key, so a retried start never starts two jobs.
func (c *gatewayClient) do(ctx context.Context, method, path string, body any, key string, want int, out any) error {
	var payload []byte
	if body != nil {
		var err error
		if payload, err = json.Marshal(body); err != nil {
			return err
		}
	}
	var err error
	for attempt := 1; ; attempt++ {
		err = c.once(ctx, method, path, payload, key, want, out)
		var ge *gatewayError
		transient := err != nil && ctx.Err() == nil && (!errors.As(err, &ge) || ge.retryable())
		if !transient || attempt == maxAttempts {
			return err
		}
		if werr := c.r.wait(ctx, time.Duration(attempt)*c.r.interval); werr != nil {
			return werr
		}
	}
}

func (c *gatewayClient) once(ctx context.Context, method, path string, payload []byte, key string, want int, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, bytes.NewReader(payload))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Accept", "application/json")
	if payload != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	resp, err := c.r.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != want {
		ge := &gatewayError{status: resp.StatusCode}
		var eb struct {
			Error apiError `json:"error"`
		}
		if json.Unmarshal(data, &eb) == nil {
			ge.body = eb.Error
		}
		return ge
	}
	if err := json.Unmarshal(data, out); err != nil {
		return &gatewayError{status: resp.StatusCode, body: apiError{Code: "unreadable_response", Message: err.Error()}}
	}
	return nil
}

// fail turns a gateway call's error into the command's error: exit code 3, and nothing the
// gateway sent is printed unfiltered.
func (c *gatewayClient) fail(err error, doing string) error {
	return exitError{exitGateway, fmt.Errorf("%s: %s", doing, c.clean(err.Error()))}
}

// clean makes a gateway-supplied string safe to print: no token, no control characters (a
// carriage return or an escape sequence would rewrite the terminal).
func (c *gatewayClient) clean(s string) string {
	if c.token != "" {
		s = strings.ReplaceAll(s, c.token, "[token]")
	}
	return strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return ' '
		}
		return r
	}, s)
}

// wait blocks for d or until ctx ends.
func (r *syncRunner) wait(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// follow polls the job every interval until it is final, showing progress, then prints the
// outcome and failed items. Cancelling ctx (Ctrl-C) stops following; it never cancels the job.
func (r *syncRunner) follow(ctx context.Context, c *gatewayClient, j *job, stdout, stderr io.Writer) error {
	tty := r.isTerminal(stdout)
	last := ""
	for {
		line := progressLine(j, r.loc, c.clean)
		switch {
		case tty:
			fmt.Fprintf(stdout, "\r%s\x1b[K", line)
		case line != last:
			fmt.Fprintln(stdout, line)
		}
		last = line
		if j.final() {
			break
		}
		err := r.wait(ctx, r.interval)
		if err == nil {
			var next job
			if err = c.do(ctx, http.MethodGet, "/jobs/"+url.PathEscape(j.ID), nil, "", http.StatusOK, &next); err == nil {
				*j = next
				continue
			}
		}
		if tty {
			fmt.Fprintln(stdout)
		}
		if ctx.Err() != nil {
			fmt.Fprintf(stderr, "Stopped following job %[1]s; it keeps running in the gateway. Follow it with:\n"+
				"  curl -s -H \"Authorization: Bearer $DIRGATE_TOKEN\" %[2]s/jobs/%[1]s\n", c.clean(j.ID), c.clean(c.base))
			return exitError{exitInterrupted, errors.New("interrupted; the job was not canceled")}
		}
		return c.fail(err, "following job "+c.clean(j.ID))
	}
	if tty {
		fmt.Fprintln(stdout)
	}
	return printOutcome(stdout, j, c.clean)
}

// progressLine is one line of progress: a bar of done+failed of total, the status, and the
// quota wait when the job waits for Podio's quota.
func progressLine(j *job, loc *time.Location, clean func(string) string) string {
	const width = 30
	p := j.Progress
	filled := 0
	if p.Total > 0 {
		filled = min(width, (p.Done+p.Failed)*width/p.Total)
	}
	s := fmt.Sprintf("[%s%s] %d/%d %s", strings.Repeat("#", filled), strings.Repeat(".", width-filled), p.Done+p.Failed, p.Total, clean(j.Status))
	if p.Failed > 0 {
		s += fmt.Sprintf(" (%d failed)", p.Failed)
	}
	if j.Status == "waiting_for_quota" && j.WaitUntil != nil {
		s += ": waiting for Podio quota until " + j.WaitUntil.In(loc).Format(time.TimeOnly)
	}
	return s
}

// printOutcome prints how the job ended and each failed item (with its workspace when the job
// spans several), and returns an error (exit 1) unless the job succeeded with no failed item.
func printOutcome(w io.Writer, j *job, clean func(string) string) error {
	several := false
	for _, it := range j.Items {
		several = several || it.WorkspaceID != j.Items[0].WorkspaceID
	}
	var failed []string
	for _, it := range j.Items {
		if it.Status != "failed" {
			continue
		}
		s := fmt.Sprintf("  %s %s%s", clean(it.Action), clean(it.Email), userSuffix(it.UserID, clean))
		if it.Role != "" {
			s += " as " + clean(it.Role)
		}
		if several {
			s += " in workspace " + clean(it.WorkspaceID)
		}
		if it.Error != nil {
			s += ": " + clean(it.Error.Code) + ": " + clean(it.Error.Message)
		}
		failed = append(failed, s)
	}
	fmt.Fprintf(w, "Job %s %s: %d done, %d failed, of %d.\n", clean(j.ID), clean(j.Status), j.Progress.Done, j.Progress.Failed, j.Progress.Total)
	if j.Error != nil {
		fmt.Fprintf(w, "Job error: %s: %s\n", clean(j.Error.Code), clean(j.Error.Message))
	}
	if len(failed) > 0 {
		fmt.Fprintf(w, "Failed items (%d):\n%s\n", len(failed), strings.Join(failed, "\n"))
	}
	switch {
	case j.Status != "succeeded":
		return fmt.Errorf("job %s %s", clean(j.ID), clean(j.Status))
	case len(failed) > 0 || j.Progress.Failed > 0:
		return fmt.Errorf("job %s succeeded, but %d of its items failed", clean(j.ID), max(len(failed), j.Progress.Failed))
	}
	return nil
}

func userSuffix(id *string, clean func(string) string) string {
	if id == nil {
		return " (not yet a Podio user)"
	}
	return " (user " + clean(*id) + ")"
}

// printPlan prints the counts per section, then one line per planned change; unchanged members
// only as a count unless verbose.
func printPlan(w io.Writer, p *syncPlan, verbose bool, clean func(string) string) {
	fmt.Fprintf(w, "Plan for workspace %s (mode %s):\n", clean(p.WorkspaceID), clean(p.Mode))
	for _, s := range []struct {
		name string
		n    int
	}{{"add", len(p.Add)}, {"change_role", len(p.ChangeRole)}, {"remove", len(p.Remove)}, {"unchanged", len(p.Unchanged)}, {"conflicts", len(p.Conflicts)}} {
		fmt.Fprintf(w, "  %-12s %d\n", s.name, s.n)
	}
	section := func(name string, n int, line func(i int) string) {
		if n == 0 {
			return
		}
		fmt.Fprintf(w, "\n%s:\n", name)
		for i := range n {
			fmt.Fprintln(w, "  "+line(i))
		}
	}
	section("add", len(p.Add), func(i int) string {
		a := p.Add[i]
		return fmt.Sprintf("+ %s%s as %s", clean(a.Email), userSuffix(a.UserID, clean), clean(a.Role))
	})
	section("change_role", len(p.ChangeRole), func(i int) string {
		c := p.ChangeRole[i]
		return fmt.Sprintf("~ %s%s: %s -> %s", clean(c.Email), userSuffix(c.UserID, clean), clean(c.From), clean(c.To))
	})
	section("remove", len(p.Remove), func(i int) string {
		r := p.Remove[i]
		return fmt.Sprintf("- %s%s, now %s", clean(r.Email), userSuffix(r.UserID, clean), clean(r.Role))
	})
	if verbose {
		section("unchanged", len(p.Unchanged), func(i int) string {
			u := p.Unchanged[i]
			return fmt.Sprintf("= %s%s, %s", clean(u.Email), userSuffix(u.UserID, clean), clean(u.Role))
		})
	}
	section("conflicts", len(p.Conflicts), func(i int) string {
		c := p.Conflicts[i]
		return fmt.Sprintf("! %s%s: %s", clean(c.Email), userSuffix(c.UserID, clean), clean(c.Reason))
	})
}
