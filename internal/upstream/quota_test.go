package upstream

import (
	"errors"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/dirgate/dirgate/internal/quota"
	"github.com/dirgate/dirgate/internal/redistest"
)

var _ Budget = (*quota.Budget)(nil)

// TestWithQuotaBudget runs the transport over the real Redis-backed budget: what Podio's 420
// teaches one call stops the next ones before they reach Podio.
func TestWithQuotaBudget(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name         string
		handler      http.HandlerFunc
		calls        int
		wantServer   int32
		wantCooldown bool
		wantAfter    time.Duration
	}{
		{"limit spent", status(200), 3, 2, false, quota.Window},
		{"420 cools the key down", func(w http.ResponseWriter, _ *http.Request) {
			w.WriteHeader(420)
			io.WriteString(w, `{"error":"rate_limit","error_description":"You have hit the rate limit. Please wait 600 seconds before trying again"}`)
		}, 2, 1, true, 10 * time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rdb := redistest.New(t)
			clk := newClock()
			b, err := quota.New(quota.Options{Client: rdb.Client, Prefix: rdb.Prefix, Now: clk.Now, GeneralLimit: 2, NoReserve: true})
			if err != nil {
				t.Fatal(err)
			}
			srv := newServer(t, tt.handler)
			tr := New(testOptions(Options{Budget: b, Now: clk.Now}))
			ctx := WithCall(t.Context(), Call{Key: testKey, Priority: quota.Interactive})
			var last error
			for range tt.calls {
				resp, err := do(t, tr, ctx, http.MethodGet, srv.URL+"/user/status", nil, nil)
				if err == nil {
					io.ReadAll(resp.Body)
				}
				last = err
			}
			be, ok := errors.AsType[*BudgetError](last)
			if !ok {
				t.Fatalf("last call: err = %v, want *BudgetError", last)
			}
			if be.Cooldown != tt.wantCooldown || be.RetryAfter <= 0 || be.RetryAfter > tt.wantAfter {
				t.Errorf("BudgetError = %+v, want Cooldown %v and 0 < RetryAfter <= %v", *be, tt.wantCooldown, tt.wantAfter)
			}
			if got := srv.calls.Load(); got != tt.wantServer {
				t.Errorf("server calls = %d, want %d", got, tt.wantServer)
			}
		})
	}
}
