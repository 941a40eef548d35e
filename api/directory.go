package api

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/dirgate/dirgate/adapters/podio"
	"github.com/dirgate/dirgate/internal/cache"
	"github.com/dirgate/dirgate/internal/store"
	"github.com/dirgate/dirgate/unified"
)

// The unified read API: /unified/user-directory/... Every list is read completely from Podio
// once, kept in the cache as an immutable snapshot sorted by id, and paged from there; a cursor
// names the snapshot and the offset, so a crawl is consistent however Podio changes meanwhile.

const (
	defaultLimit = 20
	maxLimit     = 100
	dirPrefix    = "/unified/user-directory"
)

// CacheTTLs say how long each kind of directory data is served from the cache.
type CacheTTLs struct {
	Me, Organizations, Workspaces, Users time.Duration
	// MaxStale bounds how old data may be when it is served because Podio failed.
	MaxStale time.Duration
}

func (t CacheTTLs) withDefaults() CacheTTLs {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&t.Me, 5*time.Minute)
	def(&t.Organizations, 10*time.Minute)
	def(&t.Workspaces, 10*time.Minute)
	def(&t.Users, 5*time.Minute)
	if t.MaxStale < 0 {
		t.MaxStale = 0
	}
	return t
}

func (s *Server) registerDirectory(e *echo.Echo, auth echo.MiddlewareFunc) {
	e.GET(dirPrefix+"/me", s.getMe, auth)
	e.PATCH(dirPrefix+"/me", s.updateMe, auth, s.idempotent)
	e.GET(dirPrefix+"/organizations", s.listOrganizations, auth)
	e.GET(dirPrefix+"/organizations/:id", s.getOrganization, auth)
	e.GET(dirPrefix+"/workspaces", s.listWorkspaces, auth)
	e.GET(dirPrefix+"/workspaces/:id", s.getWorkspace, auth)
	e.GET(dirPrefix+"/users", s.listUsers, auth)
	e.GET(dirPrefix+"/users/:id", s.getUser, auth)
	e.GET(dirPrefix+"/roles", s.listRoles, auth)
	e.GET(dirPrefix+"/roles/:id", s.getRole, auth)
}

// dirReader reads one account's directory through the cache: for a request (dirCall) or for the
// poller, which has no request.
type dirReader struct {
	s       *Server
	tenant  string
	account string
	// fresh ignores entries cached before the read began (Cache-Control: no-cache).
	fresh bool
	// noStale refuses stale entries when Podio fails: the poller would only compare old data.
	noStale bool
}

// dirCall is one request to the directory routes: whose account, and how to read it.
type dirCall struct {
	dirReader
	c            echo.Context
	ignoreRemote bool
	start        time.Time
}

// common query parameters of every directory route.
var dirCommonParams = []string{"integrated_account_id", "ignore_remote_data"}

// listParams are the query parameters every list route takes besides its filters.
var listParams = []string{"limit", "next_cursor"}

// newDirCall checks the query parameters and that the account exists and is the tenant's.
func (s *Server) newDirCall(c echo.Context, allowed ...string) (*dirCall, error) {
	d, err := s.dirQuery(c, allowed...)
	if err != nil {
		return nil, err
	}
	a, err := s.accountForRead(c.Request().Context(), d.tenant, d.account)
	if err != nil {
		if errors.Is(err, unified.ErrNotFound) {
			return nil, notFound("integrated account")
		}
		return nil, err
	}
	d.spend(a)
	return d, nil
}

// spend makes the request's Podio calls spend the account's budget and describes that budget.
func (d *dirCall) spend(a store.Account) {
	d.s.spendAs(d.c, a)
	d.s.rateLimitHeaders(d.c, a)
}

// dirQuery checks the query parameters and the Cache-Control header of a directory route.
// checkQuery refuses query parameters outside allowed, and repeated ones.
func checkQuery(c echo.Context, allowed []string) error {
	for k, v := range c.QueryParams() {
		if !slices.Contains(allowed, k) {
			return badRequest(fmt.Sprintf("unknown query parameter %q; this route takes: %s", k, strings.Join(allowed, ", ")))
		}
		if len(v) > 1 {
			return badRequest(fmt.Sprintf("query parameter %q is given more than once", k))
		}
	}
	return nil
}

func (s *Server) dirQuery(c echo.Context, allowed ...string) (*dirCall, error) {
	if err := checkQuery(c, append(allowed, dirCommonParams...)); err != nil {
		return nil, err
	}
	d := &dirCall{dirReader: dirReader{s: s, tenant: tenantOf(c), account: c.QueryParam("integrated_account_id")}, c: c, start: s.now()}
	if d.account == "" {
		return nil, badRequest("integrated_account_id is required")
	}
	var err error
	if d.ignoreRemote, err = flag(c, "ignore_remote_data"); err != nil {
		return nil, err
	}
	for _, v := range c.Request().Header.Values("Cache-Control") {
		for _, d2 := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(d2), "no-cache") {
				d.fresh = true
			}
		}
	}
	return d, nil
}

func (d *dirCall) ctx() context.Context { return d.c.Request().Context() }

func (d *dirReader) scope() cache.Scope { return cache.Scope{Tenant: d.tenant, Account: d.account} }

// directory is the account's Podio directory; its token source refreshes exactly once across
// replicas.
func (d *dirReader) directory() unified.Directory {
	pc := d.s.podio.WithTokenSource(d.s.creds.TokenSource(d.tenant, d.account))
	return podio.NewDirectory(pc, podio.DirectoryOptions{PageSize: d.s.podioPageSize})
}

func (d *dirReader) policy(ttl time.Duration) cache.Policy {
	p := cache.Policy{TTL: ttl, MaxStale: d.s.ttl.MaxStale, Fresh: d.fresh, Stale: staleAllowed}
	if d.noStale {
		p.MaxStale, p.Stale = 0, nil
	}
	return p
}

// staleAllowed says which failures may be masked by stale data: Podio being down, slow or out of
// quota, not answers about the data itself (404, 403) or the account (needs re-authorization).
func staleAllowed(err error) bool {
	switch {
	case errors.Is(err, context.Canceled), errors.Is(err, unified.ErrNotFound), errors.Is(err, unified.ErrNeedsReauth):
		return false
	}
	if errors.Is(err, unified.ErrRateLimited) {
		return true
	}
	if status := unified.ProviderStatus(err); status != 0 {
		return status >= 500
	}
	return true
}

// cacheHeaders reports where the data came from and how old it is.
func (d *dirCall) cacheHeaders(state cache.State, fetchedAt time.Time) {
	h := d.c.Response().Header()
	h.Set("X-Cache", string(state))
	d.s.metrics.CacheLookup(string(state))
	age := max(d.s.now().Sub(fetchedAt), 0)
	h.Set("Age", strconv.FormatInt(int64(age/time.Second), 10))
}

// value serves a single object through the cache.
func (d *dirCall) value(key string, ttl time.Duration, fetch func(context.Context, unified.Directory) (any, error), strip func([]byte) ([]byte, error)) error {
	b, snap, err := d.s.cache.Value(d.ctx(), d.scope(), key, d.policy(ttl), func(ctx context.Context) ([]byte, error) {
		v, err := fetch(ctx, d.directory())
		if err != nil {
			return nil, err
		}
		return json.Marshal(v)
	})
	if err != nil {
		return err
	}
	if d.ignoreRemote {
		if b, err = strip(b); err != nil {
			return err
		}
	}
	d.cacheHeaders(snap.State, snap.FetchedAt)
	return d.c.JSONBlob(http.StatusOK, b)
}

// listSpec describes one list route's data.
type listSpec struct {
	route   string // binds cursors
	key     string // cache key of the unfiltered list
	ttl     time.Duration
	fetch   func(context.Context) ([][]byte, bool, error)
	filters url.Values        // canonical filters; part of the cursor binding
	keep    func([]byte) bool // nil when the base list is served as is
	strip   func([]byte) ([]byte, error)
}

// parseLimit reads limit (1..100, default 20).
func parseLimit(c echo.Context) (int, error) { return limitParam(c, defaultLimit, maxLimit) }

// limitParam reads limit: 1..most, def when absent.
func limitParam(c echo.Context, def, most int) (int, error) {
	v := c.QueryParam("limit")
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > most {
		return 0, badRequest(fmt.Sprintf("limit must be an integer from 1 to %d", most))
	}
	return n, nil
}

// listPage is the envelope of every list.
type listPage struct {
	Result            []json.RawMessage `json:"result"`
	NextCursor        *string           `json:"next_cursor"`
	ResultCount       int               `json:"result_count"`
	IsPartialResponse bool              `json:"is_partial_response"`
}

func (d *dirCall) list(spec listSpec) error {
	limit, err := parseLimit(d.c)
	if err != nil {
		return err
	}
	bind := cursorBinding{tenant: d.tenant, account: d.account, route: spec.route, filters: spec.filters.Encode()}
	codec := cursorCodec{ring: d.s.ring, now: d.s.now}
	ctx := d.ctx()

	var (
		items     [][]byte
		snap      cache.Snapshot
		offset    int
		state     cache.State
		fetchedAt time.Time
		partial   bool
	)
	if raw := d.c.QueryParam("next_cursor"); raw != "" {
		cur, err := codec.open(bind, raw)
		if err != nil {
			return err
		}
		offset, state, fetchedAt, partial = cur.Offset, cache.Hit, time.UnixMilli(cur.FetchedAt), cur.Partial
		snap = cache.Snapshot{ID: cur.Snapshot}
		items, err = d.s.cache.Page(ctx, d.scope(), cur.Snapshot, offset, limit+1)
		if errors.Is(err, cache.ErrSnapshotGone) {
			// The list this crawl started on expired or was evicted: continue on the current list
			// after the last id served. Lists are sorted by id, so members present throughout the
			// crawl are still seen exactly once.
			if snap, offset, err = d.resume(spec, cur.LastID); err != nil {
				return err
			}
			state, fetchedAt, partial = snap.State, snap.FetchedAt, snap.Partial
			items, err = d.s.cache.Page(ctx, d.scope(), snap.ID, offset, limit+1)
		}
		if err != nil {
			return err
		}
	} else {
		if snap, err = d.snapshot(spec, d.policy(spec.ttl), limit+1); err != nil {
			return err
		}
		items, state, fetchedAt, partial = snap.First, snap.State, snap.FetchedAt, snap.Partial
	}

	page := listPage{Result: make([]json.RawMessage, 0, min(len(items), limit)), IsPartialResponse: partial}
	more := len(items) > limit
	if more {
		items = items[:limit]
	}
	for _, it := range items {
		if d.ignoreRemote {
			if it, err = spec.strip(it); err != nil {
				return err
			}
		}
		page.Result = append(page.Result, it)
	}
	page.ResultCount = len(page.Result)
	if more {
		last, err := idOf(items[len(items)-1])
		if err != nil {
			return err
		}
		next, err := codec.seal(bind, cursor{
			Snapshot: snap.ID, Offset: offset + len(items), LastID: last,
			Expires: d.s.now().Add(d.s.cursorTTL).Unix(), FetchedAt: fetchedAt.UnixMilli(), Partial: partial,
		})
		if err != nil {
			return err
		}
		page.NextCursor = &next
	}
	d.cacheHeaders(state, fetchedAt)
	return d.c.JSONBlob(http.StatusOK, page.appendJSON(nil))
}

// appendJSON appends the page as encoding/json would write it (c.JSON), without re-validating
// and compacting every item: items are our own json.Marshal output (encodeAll, strip), already
// compact and HTML-escaped, and that re-compaction was the largest CPU cost of a cached page.
func (p *listPage) appendJSON(dst []byte) []byte {
	n := 0
	for _, it := range p.Result {
		n += len(it) + 1
	}
	dst = slices.Grow(dst, n+128)
	dst = append(dst, `{"result":[`...)
	for i, it := range p.Result {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, it...)
	}
	dst = append(dst, `],"next_cursor":`...)
	if p.NextCursor == nil {
		dst = append(dst, "null"...)
	} else {
		c, _ := json.Marshal(*p.NextCursor) // a string always marshals
		dst = append(dst, c...)
	}
	dst = append(dst, `,"result_count":`...)
	dst = strconv.AppendInt(dst, int64(p.ResultCount), 10)
	dst = append(dst, `,"is_partial_response":`...)
	dst = strconv.AppendBool(dst, p.IsPartialResponse)
	return append(dst, "}\n"...)
}

// snapshot reads the route's list from the cache (filling it from Podio when needed) and, when
// the route has filters, the filtered list derived from it.
func (d *dirCall) snapshot(spec listSpec, p cache.Policy, first int) (cache.Snapshot, error) {
	return d.read(d.ctx(), spec, p, first)
}

// read is snapshot for any context.
func (d *dirReader) read(ctx context.Context, spec listSpec, p cache.Policy, first int) (cache.Snapshot, error) {
	baseFirst := first
	if spec.keep != nil {
		baseFirst = 0
	}
	snap, err := d.s.cache.List(ctx, d.scope(), spec.key, p, baseFirst, spec.fetch)
	if err != nil {
		return cache.Snapshot{}, err
	}
	if spec.keep == nil {
		return snap, nil
	}
	sum := sha256.Sum256([]byte(spec.route + "?" + spec.filters.Encode()))
	return d.s.cache.Derive(ctx, d.scope(), snap, hex.EncodeToString(sum[:12]), first, spec.keep)
}

// readAll reads every item of the route's list (see read).
func (d *dirReader) readAll(ctx context.Context, spec listSpec) ([][]byte, cache.Snapshot, error) {
	snap, err := d.read(ctx, spec, d.policy(spec.ttl), maxLimit*10)
	if err != nil {
		return nil, cache.Snapshot{}, err
	}
	items := snap.First
	if len(items) < snap.Count {
		if items, err = d.s.cache.Page(ctx, d.scope(), snap.ID, 0, snap.Count); err != nil {
			return nil, cache.Snapshot{}, err
		}
	}
	return items, snap, nil
}

// resume finds where a crawl continues on the current list: after the item with id lastID.
func (d *dirCall) resume(spec listSpec, lastID string) (cache.Snapshot, int, error) {
	p := d.policy(spec.ttl)
	p.Fresh = false
	snap, err := d.snapshot(spec, p, 0)
	if err != nil {
		return cache.Snapshot{}, 0, err
	}
	lo, hi := 0, snap.Count
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		it, err := d.s.cache.Page(d.ctx(), d.scope(), snap.ID, mid, 1)
		if err != nil {
			return cache.Snapshot{}, 0, err
		}
		if len(it) == 0 {
			hi = mid
			continue
		}
		id, err := idOf(it[0])
		if err != nil {
			return cache.Snapshot{}, 0, err
		}
		if unified.CompareIDs(id, lastID) <= 0 {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	return snap, lo, nil
}

func idOf(item []byte) (string, error) {
	var v struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(item, &v); err != nil {
		return "", fmt.Errorf("cached item: %w", err)
	}
	return v.ID, nil
}

// encodeAll marshals a list sorted by id.
func encodeAll[T any](items []T, id func(*T) string) ([][]byte, error) {
	slices.SortFunc(items, func(a, b T) int { return unified.CompareIDs(id(&a), id(&b)) })
	out := make([][]byte, len(items))
	for i := range items {
		b, err := json.Marshal(&items[i])
		if err != nil {
			return nil, err
		}
		out[i] = b
	}
	return out, nil
}

// stripper returns a function that removes remote_data from an encoded T.
func stripper[T any](clear func(*T)) func([]byte) ([]byte, error) {
	return func(b []byte) ([]byte, error) {
		var v T
		if err := json.Unmarshal(b, &v); err != nil {
			return nil, fmt.Errorf("cached item: %w", err)
		}
		clear(&v)
		return json.Marshal(&v)
	}
}

var (
	stripUser = stripper(func(u *unified.User) { u.RemoteData = nil })
	stripMe   = stripper(func(m *unified.Me) { m.RemoteData = nil })
	stripOrg  = stripper(func(o *unified.Organization) { o.RemoteData = nil })
	stripWS   = stripper(func(w *unified.Workspace) { w.RemoteData = nil })
)

// ---- me, organizations, workspaces ----

func (s *Server) getMe(c echo.Context) error {
	d, err := s.newDirCall(c)
	if err != nil {
		return err
	}
	return d.value("me", s.ttl.Me, func(ctx context.Context, dir unified.Directory) (any, error) {
		return dir.Me(ctx)
	}, stripMe)
}

func (d *dirReader) organizationsSpec() listSpec {
	return listSpec{route: "organizations", key: "orgs", ttl: d.s.ttl.Organizations, strip: stripOrg,
		fetch: func(ctx context.Context) ([][]byte, bool, error) {
			orgs, err := d.directory().Organizations(ctx)
			if err != nil {
				return nil, false, err
			}
			b, err := encodeAll(orgs, func(o *unified.Organization) string { return o.ID })
			return b, false, err
		}}
}

func (s *Server) listOrganizations(c echo.Context) error {
	d, err := s.newDirCall(c, listParams...)
	if err != nil {
		return err
	}
	return d.list(d.organizationsSpec())
}

func (s *Server) getOrganization(c echo.Context) error {
	d, err := s.newDirCall(c)
	if err != nil {
		return err
	}
	id := c.Param("id")
	return d.value("org:"+id, s.ttl.Organizations, func(ctx context.Context, dir unified.Directory) (any, error) {
		return dir.Organization(ctx, id)
	}, stripOrg)
}

func (s *Server) listWorkspaces(c echo.Context) error {
	d, err := s.newDirCall(c, append([]string{"organization_id"}, listParams...)...)
	if err != nil {
		return err
	}
	return d.list(d.workspacesSpec(c.QueryParam("organization_id")))
}

// workspacesSpec is the list of the organization's workspaces, or of all ("").
func (d *dirReader) workspacesSpec(org string) listSpec {
	spec := listSpec{route: "workspaces", key: "ws", ttl: d.s.ttl.Workspaces, strip: stripWS, filters: url.Values{}}
	if org != "" {
		spec.key = "ws:org:" + org
		spec.filters.Set("organization_id", org)
	}
	spec.fetch = func(ctx context.Context) ([][]byte, bool, error) {
		ws, err := d.directory().Workspaces(ctx, org)
		if err != nil {
			return nil, false, err
		}
		b, err := encodeAll(ws, func(w *unified.Workspace) string { return w.ID })
		return b, false, err
	}
	return spec
}

func (s *Server) getWorkspace(c echo.Context) error {
	d, err := s.newDirCall(c)
	if err != nil {
		return err
	}
	id := c.Param("id")
	return d.value("ws:"+id, s.ttl.Workspaces, func(ctx context.Context, dir unified.Directory) (any, error) {
		return dir.Workspace(ctx, id)
	}, stripWS)
}
