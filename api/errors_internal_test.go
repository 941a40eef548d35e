package api

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/dirgate/dirgate/adapters/podio"
	"github.com/dirgate/dirgate/unified"
)

// toError reads provider errors through the unified contract only; what dirgate's own code said
// (a sentinel it wrapped first) outranks the provider's answer beneath it.
func TestToErrorThroughTheContract(t *testing.T) {
	t.Parallel()
	resp := func(status int, body string) error {
		return podio.CheckResponse(&http.Response{StatusCode: status, Header: http.Header{}, Body: io.NopCloser(strings.NewReader(body))})
	}
	p404 := resp(404, `{"error":"not_found"}`)
	for _, tc := range []struct {
		name         string
		err          error
		status       int
		code         string
		remote       bool
		retryAfter   int
		messageHolds string
	}{
		{"provider 404", fmt.Errorf("call: %w", p404), 404, "not_found", true, 0, "in Podio"},
		{"adapter's not found over it", fmt.Errorf("read: %w: %w", unified.ErrNotFound, p404), 404, "not_found", false, 0, "not found"},
		{"403", resp(403, `{"error":"forbidden","error_description":"no access"}`), 403, "forbidden_upstream", true, 0, "no access"},
		{"420", resp(420, `{"error":"rate_limit","error_description":"Please wait 42 seconds"}`), 429, "rate_limited", true, 42, "rate limit"},
		{"503", resp(503, ``), 503, "upstream_unavailable", true, 0, "unavailable"},
		{"504", resp(504, ``), 504, "upstream_timeout", true, 0, "timed out"},
		{"400", resp(400, `{"error":"invalid_value"}`), 502, "upstream_error", true, 0, "error"},
		{"reauth of ours", fmt.Errorf("creds: %w", unified.ErrNeedsReauth), 424, "needs_reauth", false, 0, "linked again"},
	} {
		e := toError(tc.err)
		if e.Status != tc.status || e.Code != tc.code || (e.Remote != nil) != tc.remote || e.RetryAfter != tc.retryAfter || !strings.Contains(e.Message, tc.messageHolds) {
			t.Errorf("%s: %d %s %q remote=%v retry=%d", tc.name, e.Status, e.Code, e.Message, e.Remote != nil, e.RetryAfter)
		}
	}
}
