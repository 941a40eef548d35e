package api

import (
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/dirgate/dirgate/internal/cache"
	"github.com/dirgate/dirgate/unified"
)

// GET /users with Accept: text/csv: the whole filtered list as one CSV file, for spreadsheets and
// audits (e.g. accounts inactive since a date). It reads the same snapshot a JSON crawl would and
// streams it in chunks, so memory stays bounded however large the organization is.

// csvChunk is how many items are read from the snapshot per round trip while streaming.
const csvChunk = 500

// userCSVColumns is the CSV header row. remote_data is never exported: it is Podio's raw object,
// not a column.
var userCSVColumns = []string{
	"id", "name", "first_name", "last_name", "email", "emails", "status", "title", "is_employee",
	"timezone", "locale", "last_active_at", "created_at",
	"organization_ids", "organization_roles", "workspace_ids", "workspace_roles", "avatar",
}

// csvUser is the part of an encoded unified.User that becomes a row; decoding it skips
// remote_data.
type csvUser struct {
	ID           string                  `json:"id"`
	Name         string                  `json:"name"`
	FirstName    *string                 `json:"first_name"`
	LastName     *string                 `json:"last_name"`
	Emails       []unified.Email         `json:"emails"`
	Status       string                  `json:"status"`
	Title        *string                 `json:"title"`
	Avatar       *string                 `json:"avatar"`
	IsEmployee   *bool                   `json:"is_employee"`
	Timezone     *string                 `json:"timezone"`
	Locale       *string                 `json:"locale"`
	Roles        []unified.UserRole      `json:"roles"`
	Workspaces   []unified.UserWorkspace `json:"workspaces"`
	LastActiveAt *time.Time              `json:"last_active_at"`
	CreatedAt    *time.Time              `json:"created_at"`
}

// userCSVRow flattens a user into the cells of userCSVColumns. Lists are ';'-joined; scoped roles
// are "<organization or workspace id>:<role id>".
func userCSVRow(item []byte) ([]string, error) {
	var u csvUser
	if err := json.Unmarshal(item, &u); err != nil {
		return nil, fmt.Errorf("cached item: %w", err)
	}
	var primary string
	emails := make([]string, 0, len(u.Emails))
	for _, e := range u.Emails {
		emails = append(emails, e.Email)
		if e.IsPrimary && primary == "" {
			primary = e.Email
		}
	}
	if primary == "" && len(emails) > 0 {
		primary = emails[0]
	}
	var orgIDs, orgRoles, wsIDs, wsRoles []string
	addOnce := func(list []string, v string) []string {
		if v == "" || slices.Contains(list, v) {
			return list
		}
		return append(list, v)
	}
	for _, r := range u.Roles {
		if r.OrganizationID != nil {
			orgIDs = addOnce(orgIDs, *r.OrganizationID)
		}
		switch {
		case r.ApplicableIn == unified.ScopeOrganization && r.OrganizationID != nil:
			orgRoles = addOnce(orgRoles, *r.OrganizationID+":"+r.ID)
		case r.ApplicableIn == unified.ScopeWorkspace && r.WorkspaceID != nil:
			wsIDs = addOnce(wsIDs, *r.WorkspaceID)
			wsRoles = addOnce(wsRoles, *r.WorkspaceID+":"+r.ID)
		}
	}
	for _, w := range u.Workspaces {
		wsIDs = addOnce(wsIDs, w.ID)
		if w.Role != "" {
			wsRoles = addOnce(wsRoles, w.ID+":"+w.Role)
		}
	}
	row := []string{
		u.ID, u.Name, deref(u.FirstName), deref(u.LastName), primary, strings.Join(emails, ";"), u.Status,
		deref(u.Title), boolCell(u.IsEmployee), deref(u.Timezone), deref(u.Locale),
		timeCell(u.LastActiveAt), timeCell(u.CreatedAt),
		strings.Join(orgIDs, ";"), strings.Join(orgRoles, ";"), strings.Join(wsIDs, ";"), strings.Join(wsRoles, ";"),
		deref(u.Avatar),
	}
	for i := range row {
		row[i] = csvCell(row[i])
	}
	return row, nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func boolCell(b *bool) string {
	if b == nil {
		return ""
	}
	return strconv.FormatBool(*b)
}

func timeCell(t *time.Time) string {
	if t == nil {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

// csvCell defuses CSV (formula) injection: spreadsheets run a cell that starts with = + - @ (or a
// tab or CR before one) as a formula, so such cells get a leading apostrophe and read as text.
// Names and titles come from Podio users, so anyone in an organization could plant one.
func csvCell(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

// prefersCSV reports whether the request's Accept header ranks text/csv above application/json.
// No Accept, */*, and ties stay JSON: CSV is only for callers that ask for it.
func prefersCSV(r *http.Request) bool {
	accept := r.Header.Values("Accept")
	if len(accept) == 0 {
		return false
	}
	return acceptQuality(accept, "text", "csv") > acceptQuality(accept, "application", "json")
}

// acceptQuality is the weight Accept gives typ/sub: the q of the most specific media range that
// matches it (RFC 9110 §12.5.1), 0 when none does. Ranges that do not parse are ignored.
func acceptQuality(accept []string, typ, sub string) float64 {
	best, q := -1, 0.0
	for _, h := range accept {
		for rng := range strings.SplitSeq(h, ",") {
			rng = strings.TrimSpace(rng)
			if rng == "" {
				continue
			}
			mt, params, err := mime.ParseMediaType(rng)
			if err != nil {
				continue
			}
			t, s, _ := strings.Cut(mt, "/")
			if t == "*" && s == "" {
				s = "*" // "*" as some clients send it
			}
			var specificity int
			switch {
			case t == typ && s == sub:
				specificity = 2
			case t == typ && s == "*":
				specificity = 1
			case t == "*" && s == "*":
				specificity = 0
			default:
				continue
			}
			w := 1.0
			if v, ok := params["q"]; ok {
				if w, err = strconv.ParseFloat(v, 64); err != nil || w < 0 || w > 1 {
					continue
				}
			}
			if specificity > best {
				best, q = specificity, w
			}
		}
	}
	return q
}

// usersCSV streams every user of spec's (filtered) snapshot as CSV. Everything that can fail
// before the first byte (filters, account, Podio, the cache) still answers the JSON error; a
// failure after it aborts the connection, so a client never takes a cut-off file for a whole one.
func (d *dirCall) usersCSV(spec listSpec) error {
	for _, p := range listParams {
		if d.c.QueryParams().Has(p) {
			return badRequest("limit and next_cursor page the JSON list; a CSV answer (Accept: text/csv) is always the whole filtered list, so leave them out")
		}
	}
	snap, err := d.snapshot(spec, d.policy(spec.ttl), csvChunk)
	if err != nil {
		return err
	}

	res := d.c.Response()
	h := res.Header()
	h.Set("Content-Type", "text/csv; charset=utf-8")
	h.Set("Content-Disposition", `attachment; filename="users.csv"`)
	h.Set("X-Partial-Response", strconv.FormatBool(snap.Partial))
	d.cacheHeaders(snap.State, snap.FetchedAt)
	res.WriteHeader(http.StatusOK)
	// From here the list streams: as long as the client takes each chunk in time, however long
	// the whole takes (DIRGATE_HTTP_STREAM_TIMEOUT per chunk instead of the request timeout).
	streamContext(d.c)
	streamChunk(d.c, d.s.streamTimeout)

	// LF line ends (encoding/csv's default): with CRLF, encoding/csv drops a lone CR inside a cell.
	w := csv.NewWriter(res)
	if err := w.Write(userCSVColumns); err != nil {
		return d.abortCSV(err)
	}
	items, offset := snap.First, 0
	for len(items) > 0 {
		streamChunk(d.c, d.s.streamTimeout)
		for _, it := range items {
			row, err := userCSVRow(it)
			if err != nil {
				return d.abortCSV(err)
			}
			if err := w.Write(row); err != nil {
				return d.abortCSV(err)
			}
		}
		if w.Flush(); w.Error() != nil {
			return d.abortCSV(w.Error())
		}
		res.Flush()
		offset += len(items)
		if offset >= snap.Count {
			break
		}
		last := items[len(items)-1]
		items, err = d.s.cache.Page(d.ctx(), d.scope(), snap.ID, offset, csvChunk)
		if errors.Is(err, cache.ErrSnapshotGone) {
			// Expired or evicted mid-stream: go on with the current list after the last id
			// written, as a cursor crawl would; members present throughout still appear once.
			var lastID string
			if lastID, err = idOf(last); err == nil {
				if snap, offset, err = d.resume(spec, lastID); err == nil {
					items, err = d.s.cache.Page(d.ctx(), d.scope(), snap.ID, offset, csvChunk)
				}
			}
		}
		if err != nil {
			return d.abortCSV(err)
		}
	}
	w.Flush()
	if err := w.Error(); err != nil {
		return d.abortCSV(err)
	}
	return nil
}

// abortCSV ends a CSV answer that failed after its status was sent. The status cannot change any
// more, and ending the body normally would pass a cut-off list for a whole one; aborting the
// handler resets the connection (or the HTTP/2 stream) instead, so the client sees the failure.
func (d *dirCall) abortCSV(err error) error {
	d.s.log.WarnContext(d.ctx(), "users CSV aborted mid-stream", "request_id", requestID(d.c), "err", err)
	panic(http.ErrAbortHandler)
}
