package podiosim_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/dirgate/dirgate/adapters/podio/podiosim"
)

// BenchmarkOrgMembersPageLarge measures one page of the org member list on the large dataset, the
// hot path of a directory sync.
func BenchmarkOrgMembersPageLarge(b *testing.B) {
	sim := podiosim.New(podiosim.Config{Dataset: podiosim.Large(podiosim.LargeOptions{}), GeneralLimit: 1 << 30})
	tok, err := sim.IssueToken("demo-client", "admin@demo.example")
	if err != nil {
		b.Fatal(err)
	}
	req := httptest.NewRequest("GET", "/org/3001/member/?limit=100&offset=5000", nil)
	req.Header.Set("Authorization", "OAuth2 "+tok.AccessToken)
	for b.Loop() {
		w := httptest.NewRecorder()
		sim.ServeHTTP(w, req)
		if w.Code != http.StatusOK {
			b.Fatal(w.Code)
		}
	}
}
