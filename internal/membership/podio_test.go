package membership_test

import (
	"context"
	"net/http/httptest"
	"testing"

	"github.com/dirgate/dirgate/adapters/podio"
	"github.com/dirgate/dirgate/adapters/podio/podiosim"
	"github.com/dirgate/dirgate/internal/jobs"
	"github.com/dirgate/dirgate/internal/membership"
)

// TestHoldsTellsWritten: when a resumed job finds that a started write took effect (its replica
// died before recording it), the caches the write touched are told, as if the write had just
// been made; a write that did not take effect tells nobody.
func TestHoldsTellsWritten(t *testing.T) {
	ts := httptest.NewServer(podiosim.New(podiosim.Config{}))
	defer ts.Close()
	pc, err := podio.NewClient(ts.Client(), nil).WithBaseURL(ts.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	if pc, err = pc.WithAuthURL(ts.URL + "/"); err != nil {
		t.Fatal(err)
	}
	pc.OAuthConfig = podio.OAuthConfig{ClientID: "demo-client", ClientSecret: "demo-secret"}
	tok, err := pc.OAuth.PasswordGrant(t.Context(), "admin@demo.example", "demo")
	if err != nil {
		t.Fatal(err)
	}
	pc = pc.WithTokenSource(podio.StaticTokenSource(tok))
	var told []string
	x := &membership.Executor{
		Client:  func(ctx context.Context, _, _ string) (context.Context, *podio.Client, error) { return ctx, pc, nil },
		Written: func(_ context.Context, _ *jobs.Job, it *jobs.Item) { told = append(told, it.Email) },
	}
	j := &jobs.Job{Tenant: "acme", Account: "a1"}
	// member@demo.example is a member of 40001; nobody@example.com is not.
	in := &jobs.Item{Action: membership.ActionAdd, WorkspaceID: "40001", Email: "member@demo.example", Role: "regular"}
	out := &jobs.Item{Action: membership.ActionAdd, WorkspaceID: "40001", Email: "nobody@example.com", Role: "regular"}
	if ok, err := x.Holds(t.Context(), j, in); !ok || err != nil {
		t.Fatalf("Holds(member) = %v, %v", ok, err)
	}
	if ok, err := x.Holds(t.Context(), j, out); ok || err != nil {
		t.Fatalf("Holds(non-member) = %v, %v", ok, err)
	}
	if len(told) != 1 || told[0] != "member@demo.example" {
		t.Errorf("Written told of %v, want only the write that took effect", told)
	}
}
