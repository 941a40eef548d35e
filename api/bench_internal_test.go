package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/dirgate/dirgate/internal/crypt"
	"github.com/dirgate/dirgate/internal/tenantauth"
)

// BenchmarkAuthMiddleware measures what every API request pays before its handler: parsing the
// Authorization header and verifying an HS256 tenant token in the Echo middleware.
func BenchmarkAuthMiddleware(b *testing.B) {
	secret := []byte("bench-secret-0123456789-0123456789-0123")
	v, err := tenantauth.NewVerifier(tenantauth.Config{HS256Secret: secret})
	if err != nil {
		b.Fatal(err)
	}
	m, err := tenantauth.NewMinter(secret, "", "", nil)
	if err != nil {
		b.Fatal(err)
	}
	tok, err := m.Mint("bench-tenant", time.Hour)
	if err != nil {
		b.Fatal(err)
	}
	s := &Server{verifier: v}
	e := echo.New()
	h := s.requireTenant(func(c echo.Context) error {
		if tenantOf(c) != "bench-tenant" {
			b.Fatalf("tenant %q", tenantOf(c))
		}
		return nil
	})
	req := httptest.NewRequest(http.MethodGet, "/unified/user-directory/users", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	b.ReportAllocs()
	for b.Loop() {
		c := e.NewContext(req, httptest.NewRecorder())
		if err := h(c); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCursorSealOpen measures one next_cursor issued and one accepted: a page of a crawl
// does both.
func BenchmarkCursorSealOpen(b *testing.B) {
	key, err := crypt.GenerateKey("k1")
	if err != nil {
		b.Fatal(err)
	}
	ring, err := crypt.NewRing([]crypt.Key{key})
	if err != nil {
		b.Fatal(err)
	}
	now := time.Now()
	cc := cursorCodec{ring: ring, now: func() time.Time { return now }}
	bind := cursorBinding{tenant: "bench-tenant", account: "ia_0123456789abcdef", route: "users", filters: ""}
	cur := cursor{Snapshot: "r0123456789abcdef01234567", Offset: 1200, LastID: "3001:1234567",
		Expires: now.Add(time.Hour).Unix(), FetchedAt: now.UnixMilli()}
	b.ReportAllocs()
	for b.Loop() {
		raw, err := cc.seal(bind, cur)
		if err != nil {
			b.Fatal(err)
		}
		got, err := cc.open(bind, raw)
		if err != nil || got.Offset != cur.Offset {
			b.Fatalf("open: %+v, %v", got, err)
		}
	}
}

// BenchmarkListPageJSON measures writing a cached users page of 100 items of about 1 KiB each:
// the hand-written encoding the handler uses, beside encoding/json (what c.JSON did), which
// re-validates and compacts every item.
func BenchmarkListPageJSON(b *testing.B) {
	items := make([]json.RawMessage, 100)
	for i := range items {
		items[i] = fmt.Appendf(nil, `{"id":"%d","name":"Person %d","emails":[{"email":"person.%d@company001.example","type":"work"}],"status":"active","is_employee":true,"roles":[{"id":"org:3001:regular","scope":"organization","organization_id":"3001"}],"remote_data":[{"path":"/org/3001/member/","data":{"profile":{"user_id":%d,"name":"Person %d","mail":["person.%d@company001.example"],"title":["Engineer"],"phone":["+1 555 0100"],"avatar":null,"last_seen_on":"2026-01-02 03:04:05"},"user":{"user_id":%d,"mail":"person.%d@company001.example","status":"active"},"role":"regular","employee":true,"grants":0}}]}`, i, i, i, i, i, i, i, i)
	}
	cur := "v1.k1." + strings.Repeat("A", 160)
	p := listPage{Result: items, NextCursor: &cur, ResultCount: len(items)}
	b.Run("appendJSON", func(b *testing.B) {
		b.ReportAllocs()
		var buf []byte
		for b.Loop() {
			buf = p.appendJSON(buf[:0])
		}
		b.SetBytes(int64(len(buf)))
	})
	b.Run("encoding-json", func(b *testing.B) {
		b.ReportAllocs()
		var buf bytes.Buffer
		for b.Loop() {
			buf.Reset()
			if err := json.NewEncoder(&buf).Encode(p); err != nil {
				b.Fatal(err)
			}
		}
		b.SetBytes(int64(buf.Len()))
	})
}
