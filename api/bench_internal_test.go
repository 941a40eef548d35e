package api

import (
	"net/http"
	"net/http/httptest"
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
