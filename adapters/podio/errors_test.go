package podio_test

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/dirgate/dirgate/adapters/podio"
	"github.com/dirgate/dirgate/unified"
)

func podioAnswer(status int, body string, header http.Header) error {
	if header == nil {
		header = http.Header{}
	}
	return podio.CheckResponse(&http.Response{StatusCode: status, Header: header, Body: io.NopCloser(strings.NewReader(body))})
}

// Podio's answers match the provider-neutral contract: the sentinel each stands for, and
// nothing else, through wrapping too.
func TestErrorsMatchTheUnifiedContract(t *testing.T) {
	t.Parallel()
	sentinels := []error{unified.ErrNotFound, unified.ErrForbidden, unified.ErrRateLimited, unified.ErrNeedsReauth,
		unified.ErrUpstream, unified.ErrConflict, unified.ErrInvalidInput}
	for _, tc := range []struct {
		name   string
		err    error
		want   error // nil: none
		status int
	}{
		{"404", podioAnswer(404, `{"error":"not_found","error_description":"Object not found"}`, nil), unified.ErrNotFound, 404},
		{"403", podioAnswer(403, `{"error":"forbidden","error_description":"no access"}`, nil), unified.ErrForbidden, 403},
		{"420", podioAnswer(420, `{"error":"rate_limit","error_description":"Please wait 30 seconds"}`, nil), unified.ErrRateLimited, 420},
		{"invalid_grant", podioAnswer(400, `{"error":"invalid_grant","error_description":"refresh token expired"}`, nil), unified.ErrNeedsReauth, 400},
		{"500", podioAnswer(500, `oops`, nil), unified.ErrUpstream, 500},
		{"503", podioAnswer(503, ``, nil), unified.ErrUpstream, 503},
		{"400 other", podioAnswer(400, `{"error":"invalid_value","error_description":"bad"}`, nil), nil, 400},
	} {
		err := fmt.Errorf("context: %w", tc.err)
		for _, s := range sentinels {
			if got := errors.Is(err, s); got != (s == tc.want) {
				t.Errorf("%s: errors.Is(%v) = %v", tc.name, s, got)
			}
		}
		pe, ok := errors.AsType[unified.ProviderError](err)
		if !ok || pe.ProviderStatus() != tc.status || unified.ProviderStatus(err) != tc.status {
			t.Errorf("%s: ProviderError %v %v", tc.name, pe, ok)
		}
	}
	rl, ok := errors.AsType[unified.RateLimit](podioAnswer(420, `{"error":"rate_limit","error_description":"Please wait 30 seconds"}`, nil))
	if wait, known := rl.RetryAfter(); !ok || !known || wait != 30*time.Second {
		t.Errorf("RateLimit: %v %v %v", ok, wait, known)
	}
	pe, _ := errors.AsType[unified.ProviderError](podioAnswer(403, `{"error":"forbidden","error_description":"no access"}`, nil))
	if pe.ProviderMessage() != "no access" || string(pe.ProviderBody()) == "" {
		t.Errorf("403: message %q body %q", pe.ProviderMessage(), pe.ProviderBody())
	}
	if pe, _ := errors.AsType[unified.ProviderError](podioAnswer(502, `<html>bad gateway</html>`, nil)); pe.ProviderBody() != nil {
		t.Errorf("a body that is not JSON is shown: %q", pe.ProviderBody())
	}
	if unified.ProviderStatus(errors.New("dial tcp: refused")) != 0 {
		t.Error("a network error has a provider status")
	}
}
