package api

import (
	"encoding/json"
	"net/http"
	"strings"
	"time"

	"github.com/dirgate/dirgate/internal/crypt"
)

// cursor is where a crawl stands. It travels to the caller sealed (AES-GCM under the key ring),
// so it can be neither read nor forged, and the additional data binds it to one tenant, account,
// route and set of filters.
type cursor struct {
	Snapshot  string `json:"s"` // the immutable cached list being paged through
	Offset    int    `json:"o"` // index of the next item in that list
	LastID    string `json:"k"` // id of the last item served: where to resume if the list is gone
	Expires   int64  `json:"x"` // unix seconds
	FetchedAt int64  `json:"f"` // unix milliseconds: when the list was read from Podio
	Partial   bool   `json:"p,omitempty"`
}

// cursorBinding is what a cursor is valid for.
type cursorBinding struct {
	tenant, account, route, filters string
}

func (b cursorBinding) aad() []byte {
	return []byte("dirgate/cursor/v1|" + b.tenant + "|" + b.account + "|" + b.route + "|" + b.filters)
}

// maxCursorLen bounds what is accepted before any decoding.
const maxCursorLen = 1024

// cursorCodec seals and opens cursors.
type cursorCodec struct {
	ring *crypt.Ring
	now  func() time.Time
}

func (cc cursorCodec) seal(b cursorBinding, c cursor) (string, error) {
	pt, err := json.Marshal(c)
	if err != nil {
		return "", err
	}
	return cc.ring.Seal(pt, b.aad())
}

// open verifies and decodes a cursor. Every failure is the same 400 invalid_cursor, so a caller
// learns nothing about why a forged cursor failed.
func (cc cursorCodec) open(b cursorBinding, raw string) (cursor, error) {
	bad := func(msg string) error { return newError(http.StatusBadRequest, "invalid_cursor", msg) }
	if len(raw) > maxCursorLen || strings.TrimSpace(raw) == "" {
		return cursor{}, bad("next_cursor is not a cursor this gateway issued")
	}
	pt, _, err := cc.ring.Open(raw, b.aad())
	if err != nil {
		return cursor{}, bad("next_cursor is not valid for this route, account and filters; send the same filters as on the first page, or start again without a cursor")
	}
	var c cursor
	if err := json.Unmarshal(pt, &c); err != nil || c.Offset < 0 {
		return cursor{}, bad("next_cursor is not a cursor this gateway issued")
	}
	if cc.now().Unix() >= c.Expires {
		return cursor{}, bad("next_cursor has expired; start again from the first page")
	}
	return c, nil
}
