package podio

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/dirgate/dirgate/adapters/podio/podiosim"
	"github.com/dirgate/dirgate/unified"
)

// BenchmarkOrgMemberPageToUsers measures turning one page of GET /org/{org_id}/member/ (100
// members of the simulator's large dataset, as Podio's JSON) into unified users: decoding,
// mapping and the sort-and-merge a directory listing does.
func BenchmarkOrgMemberPageToUsers(b *testing.B) {
	sim := podiosim.New(podiosim.Config{Dataset: podiosim.Large(podiosim.LargeOptions{People: 2000}), GeneralLimit: 1 << 30})
	tok, err := sim.IssueToken("demo-client", "admin@demo.example")
	if err != nil {
		b.Fatal(err)
	}
	req := httptest.NewRequest(http.MethodGet, "/org/3001/member/?limit=100&offset=500", nil)
	req.Header.Set("Authorization", "OAuth2 "+tok.AccessToken)
	w := httptest.NewRecorder()
	sim.ServeHTTP(w, req)
	if w.Code != http.StatusOK {
		b.Fatalf("simulator answered %d", w.Code)
	}
	page := w.Body.Bytes()
	b.SetBytes(int64(len(page)))
	b.ReportAllocs()
	for b.Loop() {
		var members []*OrgMember
		if err := json.Unmarshal(page, &members); err != nil {
			b.Fatal(err)
		}
		users := make([]unified.User, 0, len(members))
		for _, m := range members {
			if u, ok := orgMemberUser(m, "3001", "/org/3001/member/"); ok {
				users = append(users, u)
			}
		}
		if got := unified.MergeUsers(users); len(got) != 100 {
			b.Fatalf("%d users, want 100", len(got))
		}
	}
}
