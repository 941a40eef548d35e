package podiosim

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// TestSweepForgetsOnlyDeadCredentials: a long-running simulator must not grow without bound, but
// a token that merely expired must keep answering expired_token (so clients refresh) rather than
// turning into an unknown token.
func TestSweepForgetsOnlyDeadCredentials(t *testing.T) {
	t.Parallel()
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s := New(Config{Now: func() time.Time { return base }})
	old, err := s.IssueToken("demo-client", "admin@demo.example")
	if err != nil {
		t.Fatal(err)
	}
	s.Advance(9 * time.Hour) // old's access token has expired, its refresh token lives on
	recent, _ := s.IssueToken("demo-client", "admin@demo.example")
	for range sweepEvery {
		if _, err := s.IssueToken("demo-client", "member@demo.example"); err != nil {
			t.Fatal(err)
		}
	}
	s.mu.Lock()
	_, oldKept := s.tokens[old.AccessToken]
	s.mu.Unlock()
	if !oldKept {
		t.Fatal("a token expired for one hour was swept; it must still answer expired_token")
	}
	req := httptest.NewRequest("GET", "/user/", nil)
	req.Header.Set("Authorization", "OAuth2 "+old.AccessToken)
	w := httptest.NewRecorder()
	s.ServeHTTP(w, req)
	if w.Code != http.StatusUnauthorized || w.Header().Get("WWW-Authenticate") == "" {
		t.Fatalf("expired token: %d %q, want 401 with WWW-Authenticate", w.Code, w.Header().Get("WWW-Authenticate"))
	}

	s.Advance(29 * 24 * time.Hour) // everything minted so far is dead now
	for range sweepEvery {
		_, _ = s.IssueToken("demo-client", "member@demo.example")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.tokens[recent.AccessToken]; ok {
		t.Error("an access token dead for 28 days survived the sweep")
	}
	if _, ok := s.refresh[recent.RefreshToken]; ok {
		t.Error("an expired refresh token survived the sweep")
	}
	if n := len(s.tokens); n > 2*sweepEvery {
		t.Errorf("%d access tokens kept after sweeping, want at most %d", n, 2*sweepEvery)
	}
}
