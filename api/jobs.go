package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/dirgate/dirgate/internal/jobs"
	"github.com/dirgate/dirgate/internal/membership"
	"github.com/dirgate/dirgate/unified"
)

// maxSyncMembers bounds one sync request.
const maxSyncMembers = 5000

// maxJobItems bounds one sync job (a sync of several workspaces multiplies its members).
const maxJobItems = 10000

// jobJSON is a job as the API shows it.
type jobJSON struct {
	ID              string        `json:"id"`
	Type            string        `json:"type"`
	Status          jobs.Status   `json:"status"`
	Account         string        `json:"integrated_account_id"`
	CreatedAt       time.Time     `json:"created_at"`
	UpdatedAt       time.Time     `json:"updated_at"`
	StartedAt       *time.Time    `json:"started_at"`
	FinishedAt      *time.Time    `json:"finished_at"`
	WaitUntil       *time.Time    `json:"wait_until"`
	CancelRequested bool          `json:"cancel_requested"`
	Progress        jobs.Progress `json:"progress"`
	Items           []jobs.Item   `json:"items"`
	Error           *jobs.Error   `json:"error"`
}

func toJobJSON(j *jobs.Job) jobJSON {
	return jobJSON{
		ID: j.ID, Type: j.Type, Status: j.Status, Account: j.Account, CreatedAt: j.CreatedAt, UpdatedAt: j.UpdatedAt,
		StartedAt: j.StartedAt, FinishedAt: j.FinishedAt, WaitUntil: j.WaitUntil, CancelRequested: j.CancelRequested && !j.Status.Final(),
		Progress: j.Progress(), Items: j.Items, Error: j.Error,
	}
}

func (s *Server) jobsEngine() (*jobs.Engine, error) {
	if s.jobs == nil {
		return nil, newError(http.StatusNotImplemented, "not_configured", "no job engine is configured")
	}
	return s.jobs, nil
}

func jobError(err error) error {
	if errors.Is(err, jobs.ErrNotFound) {
		return notFound("job")
	}
	return err
}

func (s *Server) submit(c echo.Context, j *jobs.Job) error {
	en, err := s.jobsEngine()
	if err != nil {
		return err
	}
	if err := en.Submit(c.Request().Context(), j); err != nil {
		return err
	}
	s.metrics.JobSubmitted(j.Type)
	c.Response().Header().Set("Location", "/jobs/"+j.ID)
	return c.JSON(http.StatusAccepted, toJobJSON(j))
}

// pathJob reads the tenant's job named by the path.
func (s *Server) pathJob(c echo.Context) (*jobs.Job, error) {
	en, err := s.jobsEngine()
	if err != nil {
		return nil, err
	}
	j, err := en.Get(c.Request().Context(), tenantOf(c), c.Param("id"))
	if err != nil {
		return nil, jobError(err)
	}
	return j, nil
}

func (s *Server) getJob(c echo.Context) error {
	j, err := s.pathJob(c)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, toJobJSON(j))
}

func (s *Server) listJobs(c echo.Context) error {
	if err := checkQuery(c, []string{"integrated_account_id"}); err != nil {
		return err
	}
	if err := accountFilter(c.QueryParam("integrated_account_id"), c.QueryParams().Has("integrated_account_id")); err != nil {
		return err
	}
	en, err := s.jobsEngine()
	if err != nil {
		return err
	}
	list, err := en.List(c.Request().Context(), tenantOf(c), c.QueryParam("integrated_account_id"))
	if err != nil {
		return err
	}
	out := make([]jobJSON, 0, len(list))
	for _, j := range list {
		out = append(out, toJobJSON(j))
	}
	return c.JSON(http.StatusOK, map[string]any{"results": out})
}

func (s *Server) cancelJob(c echo.Context) error {
	en, err := s.jobsEngine()
	if err != nil {
		return err
	}
	j, err := en.Cancel(c.Request().Context(), tenantOf(c), c.Param("id"))
	if err != nil {
		return jobError(err)
	}
	if j.Status.Final() {
		return newError(http.StatusConflict, "job_finished", "the job has already finished ("+string(j.Status)+")")
	}
	return c.JSON(http.StatusAccepted, toJobJSON(j))
}

type syncBody struct {
	Members           []membership.Desired `json:"members"`
	SourceWorkspaceID string               `json:"source_workspace_id"`
	DefaultRole       string               `json:"default_role"`
	Mode              string               `json:"mode"`
	Message           string               `json:"message"`
	DryRun            bool                 `json:"dry_run"`
}

// check validates what the request says on its own, before any Podio call, and fills in the
// default role. Planning against an empty workspace checks the mode, the roles, the addresses
// and duplicates: with many target workspaces a bad request must not cost a Podio call each.
func (in *syncBody) check() error {
	if in.DefaultRole == "" {
		in.DefaultRole = "regular"
	}
	if len(in.Members) > maxSyncMembers {
		return badRequest(fmt.Sprintf("at most %d members per sync", maxSyncMembers))
	}
	if (len(in.Members) == 0) == (in.SourceWorkspaceID == "") {
		return badRequest("give either members or source_workspace_id")
	}
	if in.SourceWorkspaceID != "" {
		if _, ok := workspaceID(in.SourceWorkspaceID); !ok {
			return badRequest("source_workspace_id must be a workspace id")
		}
	}
	if _, err := membership.PlanSync("", nil, membership.SyncSpec{Members: in.Members, DefaultRole: in.DefaultRole, Mode: in.Mode}); err != nil {
		return badRequest(err.Error())
	}
	return nil
}

// workspaceID parses a workspace id as the API writes them: a positive decimal integer without
// sign or leading zeros, so that an id compares equal to the one plans and jobs show.
func workspaceID(s string) (int64, bool) {
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil && n > 0 && strconv.FormatInt(n, 10) == s
}

// syncDesired is the wanted membership: the request's members, or the source workspace's
// members (read once, whatever the number of targets).
func (w *writeCall) syncDesired(in *syncBody) ([]membership.Desired, error) {
	if in.SourceWorkspaceID == "" {
		return in.Members, nil
	}
	src, _ := workspaceID(in.SourceWorkspaceID)
	members, err := membership.Members(w.ctx(), w.pc, src)
	if err != nil {
		// Say which workspace Podio refused or could not find: the path names another one.
		e := *toError(podioFailure(err))
		if e.Status == http.StatusNotFound || e.Status == http.StatusForbidden {
			e.Message = "source workspace " + in.SourceWorkspaceID + ": " + e.Message
		}
		return nil, &e
	}
	desired := make([]membership.Desired, 0, len(members))
	for _, m := range members {
		desired = append(desired, membership.Desired{UserID: strconv.FormatInt(m.UserID, 10), Role: m.Role})
	}
	return desired, nil
}

// planWorkspace plans the sync of one workspace to desired and returns the plan with the job
// items that apply it. Both sync routes plan through here.
func (w *writeCall) planWorkspace(space int64, desired []membership.Desired, in *syncBody) (*membership.Plan, []jobs.Item, error) {
	sp, err := w.workspace(space)
	if err != nil {
		return nil, nil, err
	}
	current, err := membership.Members(w.ctx(), w.pc, space)
	if err != nil {
		return nil, nil, podioFailure(err)
	}
	plan, err := membership.PlanSync(strconv.FormatInt(space, 10), current, membership.SyncSpec{
		Members: desired, DefaultRole: in.DefaultRole, Mode: in.Mode, Linked: w.account.PodioUserID,
	})
	if err != nil {
		return nil, nil, badRequest(err.Error())
	}
	org := strconv.FormatInt(sp.OrgID, 10)
	items := []jobs.Item{}
	for _, a := range plan.Add {
		it := jobs.Item{Action: membership.ActionAdd, WorkspaceID: plan.WorkspaceID, OrganizationID: org, Email: a.Email, Role: a.Role}
		if a.UserID != nil {
			it.UserID = *a.UserID
		}
		items = append(items, it)
	}
	// The linked person's own role change comes last in the workspace: every write of the job is
	// made with their rights, and once demoted from admin Podio refuses the role changes and
	// removals after it.
	linked := strconv.FormatInt(w.account.PodioUserID, 10)
	var own []jobs.Item
	for _, ch := range plan.ChangeRole {
		it := jobs.Item{Action: membership.ActionChangeRole, WorkspaceID: plan.WorkspaceID, OrganizationID: org, UserID: ch.UserID,
			Email: ch.Email, Role: ch.To, PriorRole: ch.From}
		if ch.UserID == linked {
			own = append(own, it)
			continue
		}
		items = append(items, it)
	}
	for _, r := range plan.Remove {
		items = append(items, jobs.Item{Action: membership.ActionRemove, WorkspaceID: plan.WorkspaceID, OrganizationID: org, UserID: *r.UserID,
			Email: r.Email, PriorRole: r.Role})
	}
	return plan, append(items, own...), nil
}

// submitSync starts the job that applies a sync's items. Its type is workspace_sync whatever
// the number of workspaces: each item names its workspace, and the executor needs no more.
func (s *Server) submitSync(c echo.Context, w *writeCall, in *syncBody, items []jobs.Item) error {
	if len(items) > maxJobItems {
		// The job record is rewritten after every item: a huge one would be slow to run and read.
		return newError(http.StatusBadRequest, "too_many_changes",
			fmt.Sprintf("the sync would make %d changes; at most %d fit in one job: split it", len(items), maxJobItems))
	}
	params, _ := json.Marshal(membership.Params{Message: in.Message})
	return s.submit(c, &jobs.Job{Tenant: w.tenant, Account: w.account.ID, Type: membership.JobWorkspaceSync, Params: params, Items: items})
}

// syncMembers plans (dry_run) or starts (202, a job) a declarative membership sync.
func (s *Server) syncMembers(c echo.Context) error {
	var in syncBody
	if err := bindJSON(c, &in); err != nil {
		return err
	}
	if err := in.check(); err != nil {
		return err
	}
	w, err := s.newWriteCall(c)
	if err != nil {
		return err
	}
	space, err := pathID(c, "id", "workspace")
	if err != nil {
		return err
	}
	if in.SourceWorkspaceID == strconv.FormatInt(space, 10) {
		return badRequest("source_workspace_id must be another workspace's id")
	}
	desired, err := w.syncDesired(&in)
	if err != nil {
		return err
	}
	plan, items, err := w.planWorkspace(space, desired, &in)
	if err != nil {
		return err
	}
	if in.DryRun {
		return c.JSON(http.StatusOK, plan)
	}
	return s.submitSync(c, w, &in, items)
}

// maxSyncWorkspaces bounds the workspaces of one multi-workspace sync.
const maxSyncWorkspaces = 50

// multiSyncBody is a sync of the same membership into several workspaces.
type multiSyncBody struct {
	syncBody
	WorkspaceIDs []string `json:"workspace_ids"`
}

// multiSyncPlan answers a multi-workspace dry run: one plan per workspace, in request order.
type multiSyncPlan struct {
	Workspaces []*membership.Plan `json:"workspaces"`
}

// syncWorkspaces plans (dry_run) or starts (202, one job) the sync of several workspaces to the
// same membership. Every workspace is planned before anything is submitted, so an unknown one
// (404 naming it) leaves all of them unchanged.
func (s *Server) syncWorkspaces(c echo.Context) error {
	var in multiSyncBody
	if err := bindJSON(c, &in); err != nil {
		return err
	}
	switch n := len(in.WorkspaceIDs); {
	case n == 0:
		return badRequest(fmt.Sprintf("workspace_ids is required: 1 to %d workspace ids", maxSyncWorkspaces))
	case n > maxSyncWorkspaces:
		return badRequest(fmt.Sprintf("at most %d workspace_ids per sync", maxSyncWorkspaces))
	}
	spaces := make([]int64, 0, len(in.WorkspaceIDs))
	for i, id := range in.WorkspaceIDs {
		n, ok := workspaceID(id)
		if !ok {
			return badRequest(fmt.Sprintf("workspace_ids[%d]: %q is not a workspace id (a positive integer)", i, id))
		}
		if slices.Contains(spaces, n) {
			return badRequest(fmt.Sprintf("workspace_ids[%d]: workspace %s is listed twice", i, id))
		}
		spaces = append(spaces, n)
	}
	if err := in.check(); err != nil {
		return err
	}
	if slices.Contains(in.WorkspaceIDs, in.SourceWorkspaceID) {
		return badRequest(fmt.Sprintf("source_workspace_id %s is one of workspace_ids; it must be another workspace", in.SourceWorkspaceID))
	}
	w, err := s.newWriteCall(c)
	if err != nil {
		return err
	}
	desired, err := w.syncDesired(&in.syncBody)
	if err != nil {
		return err
	}
	out := multiSyncPlan{Workspaces: make([]*membership.Plan, 0, len(spaces))}
	items := []jobs.Item{}
	for _, space := range spaces {
		plan, its, err := w.planWorkspace(space, desired, &in.syncBody)
		if err != nil {
			return namedWorkspace(space, err)
		}
		out.Workspaces = append(out.Workspaces, plan)
		items = append(items, its...)
	}
	if in.DryRun {
		return c.JSON(http.StatusOK, out)
	}
	return s.submitSync(c, w, &in.syncBody, items)
}

// namedWorkspace turns Podio's 404 or 403 for one of several workspaces into a 404 that says
// which; other errors pass unchanged.
func namedWorkspace(space int64, err error) error {
	pe, ok := errors.AsType[unified.ProviderError](err)
	if !ok || !errors.Is(pe, unified.ErrNotFound) && !errors.Is(pe, unified.ErrForbidden) {
		return err
	}
	return &Error{Status: http.StatusNotFound, Code: "not_found", Remote: remoteOf(pe), Err: err,
		Message: fmt.Sprintf("workspace %d not found, or not visible to the linked person", space)}
}

type offboardBody struct {
	OrganizationID         string `json:"organization_id"`
	RemoveFromOrganization bool   `json:"remove_from_organization"`
	DryRun                 bool   `json:"dry_run"`
}

// offboardMembership is one workspace membership in an offboarding plan.
type offboardMembership struct {
	WorkspaceID string `json:"workspace_id"`
	Role        string `json:"role"`
	Reason      string `json:"reason,omitempty"`
}

// offboardPlan is what offboarding a person does.
type offboardPlan struct {
	UserID                 string               `json:"user_id"`
	Email                  string               `json:"email,omitempty"`
	OrganizationID         string               `json:"organization_id"`
	RemoveFromOrganization bool                 `json:"remove_from_organization"`
	Remove                 []offboardMembership `json:"remove"`
	// Conflicts are memberships not ended one by one: last_admin (Podio would have to promote
	// someone) and only_member (the workspace would be deleted). Ending the organization
	// membership ends them the way Podio's preview says.
	Conflicts []offboardMembership `json:"conflicts"`
}

func (s *Server) offboard(c echo.Context) error {
	var in offboardBody
	if err := bindJSON(c, &in); err != nil {
		return err
	}
	org, err := strconv.ParseInt(in.OrganizationID, 10, 64)
	if err != nil || org <= 0 {
		return badRequest("organization_id is required")
	}
	w, err := s.newWriteCall(c)
	if err != nil {
		return err
	}
	user, err := pathID(c, "id", "user")
	if err != nil {
		return err
	}
	if user == w.account.PodioUserID {
		return newError(http.StatusConflict, "linked_person", "the linked person cannot offboard themself")
	}
	member, _, err := w.pc.Orgs.GetMember(w.ctx(), org, user)
	if err != nil {
		return podioFailure(err)
	}
	info, _, err := w.pc.Orgs.EndMemberInfo(w.ctx(), org, user)
	if err != nil {
		return podioFailure(err)
	}
	plan := offboardPlan{UserID: strconv.FormatInt(user, 10), OrganizationID: in.OrganizationID,
		RemoveFromOrganization: in.RemoveFromOrganization, Remove: []offboardMembership{}, Conflicts: []offboardMembership{}}
	if member.Profile != nil && len(member.Profile.Mail) > 0 {
		plan.Email = strings.ToLower(member.Profile.Mail[0])
	}
	lastAdmin := map[string]bool{}
	for _, id := range spaceIDs(info.ToPromote) {
		lastAdmin[id] = true
	}
	for _, m := range info.ToRemove {
		if m == nil || m.Space == nil {
			continue
		}
		om := offboardMembership{WorkspaceID: strconv.FormatInt(m.Space.SpaceID, 10), Role: m.Role}
		if lastAdmin[om.WorkspaceID] {
			om.Reason = "last_admin"
			plan.Conflicts = append(plan.Conflicts, om)
		} else {
			plan.Remove = append(plan.Remove, om)
		}
	}
	for _, m := range info.ToDelete {
		if m != nil && m.Space != nil {
			plan.Conflicts = append(plan.Conflicts, offboardMembership{WorkspaceID: strconv.FormatInt(m.Space.SpaceID, 10), Role: m.Role, Reason: "only_member"})
		}
	}
	if in.DryRun {
		return c.JSON(http.StatusOK, plan)
	}
	params, _ := json.Marshal(plan)
	j := &jobs.Job{Tenant: w.tenant, Account: w.account.ID, Type: membership.JobOffboard, Params: params, Items: []jobs.Item{}}
	for _, m := range plan.Remove {
		j.Items = append(j.Items, jobs.Item{Action: membership.ActionRemove, WorkspaceID: m.WorkspaceID, OrganizationID: in.OrganizationID,
			UserID: plan.UserID, Email: plan.Email, PriorRole: m.Role})
	}
	if in.RemoveFromOrganization {
		j.Items = append(j.Items,
			jobs.Item{Action: membership.ActionEndOrg, OrganizationID: in.OrganizationID, UserID: plan.UserID, Email: plan.Email},
			jobs.Item{Action: membership.ActionVerify, OrganizationID: in.OrganizationID, UserID: plan.UserID, Email: plan.Email})
	}
	return s.submit(c, j)
}

// undoJob re-adds the person an offboarding job removed, with their prior roles: by user id
// while they are still in the organization, else invited again by e-mail.
func (s *Server) undoJob(c echo.Context) error {
	j, err := s.pathJob(c)
	if err != nil {
		return err
	}
	if j.Type != membership.JobOffboard {
		return newError(http.StatusConflict, "not_undoable", "only offboarding jobs can be undone")
	}
	if !j.Status.Final() {
		return newError(http.StatusConflict, "job_running", "the job has not finished; cancel it or wait")
	}
	var plan offboardPlan
	if err := json.Unmarshal(j.Params, &plan); err != nil {
		return fmt.Errorf("undo: job parameters: %w", err)
	}
	orgEnded := false
	for _, it := range j.Items {
		if it.Action == membership.ActionEndOrg && it.Status == jobs.ItemDone {
			orgEnded = true
		}
	}
	u := &jobs.Job{Tenant: j.Tenant, Account: j.Account, Type: membership.JobUndoOffboard, Items: []jobs.Item{}}
	readd := func(ws, role string) {
		it := jobs.Item{Action: membership.ActionAdd, WorkspaceID: ws, OrganizationID: plan.OrganizationID, Role: role, Email: plan.Email, PriorRole: role}
		if !orgEnded || plan.Email == "" {
			it.UserID = plan.UserID
		}
		u.Items = append(u.Items, it)
	}
	if orgEnded {
		// Ending the organization membership ended every workspace membership, whatever the
		// single removals did; only_member workspaces were deleted with it.
		for _, m := range plan.Remove {
			readd(m.WorkspaceID, m.Role)
		}
		for _, m := range plan.Conflicts {
			if m.Reason == "last_admin" {
				readd(m.WorkspaceID, m.Role)
			}
		}
	} else {
		for _, it := range j.Items {
			if it.Action == membership.ActionRemove && it.Status == jobs.ItemDone {
				readd(it.WorkspaceID, it.PriorRole)
			}
		}
	}
	if len(u.Items) == 0 {
		return newError(http.StatusConflict, "nothing_to_undo", "the job removed no membership")
	}
	if _, err := s.store.GetAccount(c.Request().Context(), j.Tenant, j.Account); err != nil {
		return accountError(err)
	}
	return s.submit(c, u)
}
