package api

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/dirgate/dirgate/adapters/podio"
	"github.com/dirgate/dirgate/internal/cache"
	"github.com/dirgate/dirgate/internal/changes"
	"github.com/dirgate/dirgate/internal/events"
	"github.com/dirgate/dirgate/internal/jobs"
	"github.com/dirgate/dirgate/internal/membership"
	"github.com/dirgate/dirgate/internal/store"
	"github.com/dirgate/dirgate/unified"
)

// registerMembership adds the membership write routes, sync, offboarding and jobs.
func (s *Server) registerMembership(e *echo.Echo, auth echo.MiddlewareFunc) {
	e.POST(dirPrefix+"/workspaces/:id/members", s.addMember, auth, s.idempotent)
	e.PATCH(dirPrefix+"/workspaces/:id/members/:user_id", s.changeMemberRole, auth, s.idempotent)
	e.DELETE(dirPrefix+"/workspaces/:id/members/:user_id", s.removeMember, auth, s.idempotent)
	e.DELETE(dirPrefix+"/organizations/:id/members/:user_id", s.removeOrgMember, auth, s.idempotent)
	e.POST(dirPrefix+"/workspaces/:id/members/sync", s.syncMembers, auth, s.idempotent)
	e.POST(dirPrefix+"/members/sync", s.syncWorkspaces, auth, s.idempotent)
	e.POST(dirPrefix+"/users/:id/offboard", s.offboard, auth, s.idempotent)
	e.GET("/jobs", s.listJobs, auth)
	e.GET("/jobs/:id", s.getJob, auth)
	e.POST("/jobs/:id/cancel", s.cancelJob, auth, s.idempotent)
	e.POST("/jobs/:id/undo", s.undoJob, auth, s.idempotent)
}

// writeCall is one membership write: the account (read from Redis: writes must not act on a
// stale record), its Podio client spending its budget interactively, and the request context.
type writeCall struct {
	s       *Server
	c       echo.Context
	tenant  string
	account store.Account
	pc      *podio.Client
}

func (w *writeCall) ctx() context.Context { return w.c.Request().Context() }

// newWriteCall checks the query (integrated_account_id and the allowed flags) and the account.
func (s *Server) newWriteCall(c echo.Context, allowed ...string) (*writeCall, error) {
	if err := checkQuery(c, append(allowed, "integrated_account_id")); err != nil {
		return nil, err
	}
	id := c.QueryParam("integrated_account_id")
	if id == "" {
		return nil, badRequest("integrated_account_id is required")
	}
	a, err := s.store.GetAccount(c.Request().Context(), tenantOf(c), id)
	if err != nil {
		return nil, accountError(err)
	}
	if a.GrantType == grantApp {
		return nil, newError(http.StatusForbidden, "forbidden_upstream", "an app-authorized account cannot manage members; link a person")
	}
	s.spendAs(c, a)
	pc := s.podio.WithTokenSource(s.creds.TokenSource(a.Tenant, a.ID))
	return &writeCall{s: s, c: c, tenant: tenantOf(c), account: a, pc: pc}, nil
}

func accountError(err error) error {
	if errors.Is(err, unified.ErrNotFound) {
		return notFound("integrated account")
	}
	return err
}

// flag reads a boolean query parameter ("true" or "false", default false).
func flag(c echo.Context, name string) (bool, error) {
	switch c.QueryParam(name) {
	case "", "false":
		return false, nil
	case "true":
		return true, nil
	}
	return false, badRequest(name + ` must be "true" or "false"`)
}

// pathID reads a positive numeric path parameter.
func pathID(c echo.Context, name, what string) (int64, error) {
	n, err := strconv.ParseInt(c.Param(name), 10, 64)
	if err != nil || n <= 0 {
		return 0, notFound(what)
	}
	return n, nil
}

// workspace reads the space (its organization is needed to invalidate the right lists); an
// unknown or invisible workspace answers 404.
func (w *writeCall) workspace(id int64) (*podio.Space, error) {
	sp, _, err := w.pc.Spaces.Get(w.ctx(), id)
	if err != nil {
		return nil, podioFailure(err)
	}
	return sp, nil
}

// invalidate drops the cached lists a membership change of user touches (see
// invalidateMembership).
func (w *writeCall) invalidate(org int64, spaces []int64, user int64) {
	w.s.invalidateMembership(w.ctx(), w.tenant, w.account, org, spaces, user)
}

// invalidateMembership drops the cached lists a membership change in the workspaces and the
// organization touches: their member lists, all users, the person, the workspace lists (their
// member_count, and the linked person's role and which workspaces they see), and (when the
// linked person is concerned) what they see. Unknown ids are 0 / absent.
func (s *Server) invalidateMembership(ctx context.Context, tenant string, a store.Account, org int64, spaces []int64, user int64) {
	keys := []string{"users", "user:" + strconv.FormatInt(user, 10), "ws"}
	for _, space := range spaces {
		keys = append(keys, "users:ws:"+strconv.FormatInt(space, 10), "ws:"+strconv.FormatInt(space, 10))
	}
	if org != 0 {
		o := strconv.FormatInt(org, 10)
		keys = append(keys, "users:org:"+o, "org:"+o, "ws:org:"+o)
	}
	if user == a.PodioUserID {
		keys = append(keys, "me", "orgs")
	}
	if err := s.cache.Invalidate(context.WithoutCancel(ctx), cache.Scope{Tenant: tenant, Account: a.ID}, keys...); err != nil {
		s.log.WarnContext(ctx, "membership write: cache invalidation failed; lists may be stale until their TTL", "err", err)
	}
}

// JobWritten is told of every write a membership job made: it invalidates what the write touched
// and reports it as an event at once (see ownWrite).
func (s *Server) JobWritten(ctx context.Context, j *jobs.Job, it *jobs.Item) {
	a, err := s.accountForRead(ctx, j.Tenant, j.Account)
	if err != nil {
		return
	}
	org, _ := strconv.ParseInt(it.OrganizationID, 10, 64)
	user, _ := strconv.ParseInt(it.UserID, 10, 64)
	var spaces []int64
	if ws, err := strconv.ParseInt(it.WorkspaceID, 10, 64); err == nil {
		spaces = []int64{ws}
	}
	s.invalidateMembership(ctx, j.Tenant, a, org, spaces, user)
	d := changes.MembershipData{WorkspaceID: it.WorkspaceID, OrganizationID: it.OrganizationID, UserID: it.UserID,
		Email: strings.ToLower(it.Email), Role: unified.WorkspaceRole(it.Role), PreviousRole: unified.WorkspaceRole(it.PriorRole)}
	switch it.Action {
	case membership.ActionAdd:
		// An invitation by e-mail names no user id: the poller reports the person once listed.
		d.PreviousRole = ""
		s.ownWrite(ctx, a, events.MembershipAdded, d)
	case membership.ActionChangeRole:
		if it.Role != it.PriorRole {
			s.ownWrite(ctx, a, events.MembershipRoleChanged, d)
		}
	case membership.ActionRemove:
		d.Role = ""
		s.ownWrite(ctx, a, events.MembershipRemoved, d)
	}
	// Ending an organization membership is reported by the poller: which workspace memberships it
	// ended is Podio's to say.
}

type addMemberBody struct {
	Email   string `json:"email"`
	UserID  string `json:"user_id"`
	Role    string `json:"role"`
	Message string `json:"message"`
}

// memberJSON answers the single membership writes.
type memberJSON struct {
	WorkspaceID string  `json:"workspace_id"`
	UserID      *string `json:"user_id"`
	Email       *string `json:"email"`
	Role        string  `json:"role"`
}

func (s *Server) addMember(c echo.Context) error {
	var in addMemberBody
	if err := bindJSON(c, &in); err != nil {
		return err
	}
	if (in.Email == "") == (in.UserID == "") {
		return badRequest("give exactly one of email and user_id")
	}
	if !membership.ValidRole(in.Role) {
		return newError(http.StatusBadRequest, "invalid_role", "role must be light, regular or admin")
	}
	req := &podio.AddSpaceMembersRequest{Role: in.Role, Message: in.Message}
	out := memberJSON{Role: in.Role}
	var uid int64
	if in.UserID != "" {
		n, err := strconv.ParseInt(in.UserID, 10, 64)
		if err != nil || n <= 0 {
			return badRequest("user_id must be a Podio user id")
		}
		uid, req.Users, out.UserID = n, []int64{n}, &in.UserID
	} else {
		mail := strings.ToLower(strings.TrimSpace(in.Email))
		if !membership.ValidEmail(mail) {
			return newError(http.StatusBadRequest, "invalid_email", "email is not a well-formed e-mail address")
		}
		req.Mails, out.Email = []string{mail}, &mail
	}
	w, err := s.newWriteCall(c)
	if err != nil {
		return err
	}
	space, err := pathID(c, "id", "workspace")
	if err != nil {
		return err
	}
	sp, err := w.workspace(space)
	if err != nil {
		return err
	}
	if _, err := w.pc.SpaceMembers.Add(w.ctx(), space, req); err != nil {
		return podioFailure(err)
	}
	// An invitation by e-mail names no user id yet: the poller reports the person once Podio
	// lists them.
	if uid != 0 {
		s.ownWrite(w.ctx(), w.account, events.MembershipAdded, changes.MembershipData{
			WorkspaceID: strconv.FormatInt(space, 10), WorkspaceName: sp.Name, OrganizationID: formatOrgID(sp.OrgID),
			UserID: strconv.FormatInt(uid, 10), Role: unified.WorkspaceRole(in.Role),
		})
	}
	w.invalidate(sp.OrgID, []int64{space}, uid)
	out.WorkspaceID = strconv.FormatInt(space, 10)
	return c.JSON(http.StatusCreated, out)
}

type roleBody struct {
	Role string `json:"role"`
}

// guardLastAdmin refuses (409 last_admin) a change that leaves the workspace without an
// administrator, unless force=true. It returns the members it read (none with force).
func (w *writeCall) guardLastAdmin(space, user int64, newRole string, force bool) ([]membership.Member, error) {
	if force {
		return nil, nil
	}
	members, err := membership.Members(w.ctx(), w.pc, space)
	if err != nil {
		return nil, podioFailure(err)
	}
	if membership.WouldOrphan(members, user, newRole) {
		return nil, newError(http.StatusConflict, "last_admin",
			"this is the workspace's last administrator; make someone else admin first, or pass force=true")
	}
	return members, nil
}

func (s *Server) changeMemberRole(c echo.Context) error {
	var in roleBody
	if err := bindJSON(c, &in); err != nil {
		return err
	}
	if !membership.ValidRole(in.Role) {
		return newError(http.StatusBadRequest, "invalid_role", "role must be light, regular or admin")
	}
	space, user, err := s.changeMember(c, in.Role, func(w *writeCall, space, user int64) error {
		_, err := w.pc.SpaceMembers.UpdateRole(w.ctx(), space, []int64{user}, in.Role)
		return err
	})
	if err != nil {
		return err
	}
	uid := strconv.FormatInt(user, 10)
	return c.JSON(http.StatusOK, memberJSON{WorkspaceID: strconv.FormatInt(space, 10), UserID: &uid, Role: in.Role})
}

func (s *Server) removeMember(c echo.Context) error {
	if _, _, err := s.changeMember(c, "", func(w *writeCall, space, user int64) error {
		_, err := w.pc.SpaceMembers.End(w.ctx(), space, []int64{user})
		return err
	}); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

// changeMember gives the workspace member of the path the role newRole ("" removes them) through
// apply, after the last-admin guard (force=true skips it), and invalidates the affected lists.
func (s *Server) changeMember(c echo.Context, newRole string, apply func(w *writeCall, space, user int64) error) (space, user int64, err error) {
	w, err := s.newWriteCall(c, "force")
	if err != nil {
		return 0, 0, err
	}
	force, err := flag(c, "force")
	if err != nil {
		return 0, 0, err
	}
	if space, err = pathID(c, "id", "workspace"); err != nil {
		return 0, 0, err
	}
	if user, err = pathID(c, "user_id", "workspace member"); err != nil {
		return 0, 0, err
	}
	sp, err := w.workspace(space)
	if err != nil {
		return 0, 0, err
	}
	members, err := w.guardLastAdmin(space, user, newRole, force)
	if err != nil {
		return 0, 0, err
	}
	if err := apply(w, space, user); err != nil {
		return 0, 0, podioFailure(err)
	}
	// The guard's read gives the prior role (not read with force=true).
	d := changes.MembershipData{WorkspaceID: strconv.FormatInt(space, 10), WorkspaceName: sp.Name,
		OrganizationID: formatOrgID(sp.OrgID), UserID: strconv.FormatInt(user, 10), Role: unified.WorkspaceRole(newRole)}
	prior := ""
	for _, m := range members {
		if m.UserID == user {
			prior, d.Name = m.Role, m.Name
			if len(m.Emails) > 0 {
				d.Email = strings.ToLower(m.Emails[0])
			}
		}
	}
	d.PreviousRole = unified.WorkspaceRole(prior)
	typ := events.MembershipRoleChanged
	if newRole == "" {
		typ = events.MembershipRemoved
	}
	if members == nil || prior != newRole {
		w.s.ownWrite(w.ctx(), w.account, typ, d)
	}
	w.invalidate(sp.OrgID, []int64{space}, user)
	return space, user, nil
}

// formatOrgID is an organization id as the unified model writes it ("" when unknown).
func formatOrgID(id int64) string {
	if id <= 0 {
		return ""
	}
	return strconv.FormatInt(id, 10)
}

// endMemberPreview is Podio's end_member_info in unified terms.
type endMemberPreview struct {
	OrganizationID string   `json:"organization_id"`
	UserID         string   `json:"user_id"`
	Promoted       []string `json:"workspaces_where_someone_is_promoted"`
	Removed        []string `json:"workspaces_left"`
	Deleted        []string `json:"workspaces_deleted"`
}

func spaceIDs(ms []*podio.SpaceMember) []string {
	out := []string{}
	for _, m := range ms {
		if m != nil && m.Space != nil {
			out = append(out, strconv.FormatInt(m.Space.SpaceID, 10))
		}
	}
	return out
}

func (s *Server) removeOrgMember(c echo.Context) error {
	w, err := s.newWriteCall(c, "dry_run")
	if err != nil {
		return err
	}
	dry, err := flag(c, "dry_run")
	if err != nil {
		return err
	}
	org, err := pathID(c, "id", "organization")
	if err != nil {
		return err
	}
	user, err := pathID(c, "user_id", "organization member")
	if err != nil {
		return err
	}
	info, _, err := w.pc.Orgs.EndMemberInfo(w.ctx(), org, user)
	if err != nil {
		return podioFailure(err)
	}
	if dry {
		return c.JSON(http.StatusOK, endMemberPreview{
			OrganizationID: strconv.FormatInt(org, 10), UserID: strconv.FormatInt(user, 10),
			Promoted: spaceIDs(info.ToPromote), Removed: spaceIDs(info.ToRemove), Deleted: spaceIDs(info.ToDelete),
		})
	}
	if _, err := w.pc.Orgs.EndMembership(w.ctx(), org, user); err != nil {
		return podioFailure(err)
	}
	// Ending the organization membership ended every workspace membership Podio's preview named;
	// what follows from it (promotions, deleted workspaces, the person leaving the directory) is
	// reported by the poller.
	var spaces []int64
	for _, group := range [][]*podio.SpaceMember{info.ToPromote, info.ToRemove, info.ToDelete} {
		for _, m := range group {
			if m != nil && m.Space != nil {
				spaces = append(spaces, m.Space.SpaceID)
				s.ownWrite(w.ctx(), w.account, events.MembershipRemoved, changes.MembershipData{
					WorkspaceID: strconv.FormatInt(m.Space.SpaceID, 10), WorkspaceName: m.Space.Name, OrganizationID: formatOrgID(org),
					UserID: strconv.FormatInt(user, 10), PreviousRole: unified.WorkspaceRole(m.Role),
				})
			}
		}
	}
	w.invalidate(org, spaces, user)
	return c.NoContent(http.StatusNoContent)
}

// JobClient gives the job executor an account's Podio client whose calls spend the account's
// budget as background work.
func (s *Server) JobClient(ctx context.Context, tenant, account string) (context.Context, *podio.Client, error) {
	a, err := s.accountForRead(ctx, tenant, account)
	if err != nil {
		return ctx, nil, err
	}
	ctx = s.spendInBackground(ctx, a)
	return ctx, s.podio.WithTokenSource(s.creds.TokenSource(tenant, account)), nil
}
