package webhooks_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dirgate/dirgate/internal/webhooks"
)

func TestSignAndVerify(t *testing.T) {
	t.Parallel()
	const secret = "whsec_test-secret"
	body := []byte(`{"id":"evt_1-0","type":"user.added"}`)
	at := time.Unix(1_700_000_000, 0)
	header := webhooks.Sign(at, body, secret)

	// The documented construction, computed independently: HMAC-SHA256(secret, "<t>.<body>").
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(strconv.FormatInt(at.Unix(), 10) + "." + string(body)))
	if want := "t=1700000000,v1=" + hex.EncodeToString(m.Sum(nil)); header != want {
		t.Fatalf("Sign = %q, want %q", header, want)
	}

	// During a secret rotation's overlap both secrets sign, the new one first; each verifies.
	both := webhooks.Sign(at, body, "whsec_new", secret)
	if !strings.HasPrefix(both, "t=1700000000,v1=") || strings.Count(both, ",v1=") != 2 || !strings.HasSuffix(both, header[len("t=1700000000"):]) {
		t.Errorf("Sign with two secrets = %q", both)
	}
	for _, s := range []string{"whsec_new", secret} {
		if err := webhooks.Verify(s, both, body, at, webhooks.DefaultTolerance); err != nil {
			t.Errorf("Verify with %s: %v", s, err)
		}
	}

	tests := []struct {
		name   string
		secret string
		header string
		body   []byte
		now    time.Time
		want   error
	}{
		{"valid", secret, header, body, at.Add(time.Minute), nil},
		{"valid, receiver clock behind", secret, header, body, at.Add(-4 * time.Minute), nil},
		{"a second v1 (secret rotation) matches", secret, header + ",v1=" + hex.EncodeToString(make([]byte, 32)), body, at, nil},
		{"tampered body", secret, header, []byte(`{"id":"evt_1-0","type":"user.removed"}`), at, webhooks.ErrBadSignature},
		{"wrong secret", "whsec_other", header, body, at, webhooks.ErrBadSignature},
		{"replayed later", secret, header, body, at.Add(6 * time.Minute), webhooks.ErrStaleSignature},
		{"from the future", secret, header, body, at.Add(-6 * time.Minute), webhooks.ErrStaleSignature},
		{"no timestamp", secret, "v1=00", body, at, webhooks.ErrMalformedSignature},
		{"no signature", secret, "t=1700000000", body, at, webhooks.ErrMalformedSignature},
		{"not hex", secret, "t=1700000000,v1=zz", body, at, webhooks.ErrMalformedSignature},
		{"garbage", secret, "nonsense", body, at, webhooks.ErrMalformedSignature},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := webhooks.Verify(tc.secret, tc.header, tc.body, tc.now, webhooks.DefaultTolerance)
			if !errors.Is(err, tc.want) {
				t.Errorf("Verify = %v, want %v", err, tc.want)
			}
		})
	}
}
