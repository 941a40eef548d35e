package api_test

import (
	"math/rand/v2"
	"net/http"
	"strings"
	"testing"
)

// series are the samples /metrics serves (each histogram bucket, sum and count of each label set,
// and each counter), without their values.
func series(t *testing.T, h *harness) map[string]bool {
	t.Helper()
	r := h.send(http.DefaultClient, "GET", h.url, "/metrics", "", nil)
	if r.status != http.StatusOK {
		t.Fatalf("/metrics: %d", r.status)
	}
	out := map[string]bool{}
	for line := range strings.Lines(string(r.body)) {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			name := line[:strings.LastIndexByte(line, ' ')] // the value follows the last space
			out[name] = true
		}
	}
	return out
}

// tokenChars are the characters of an HTTP method (an RFC 9110 token).
const tokenChars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789!#$%&'*+-.^_`|~"

func randomString(rng *rand.Rand, alphabet string, n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = alphabet[rng.IntN(len(alphabet))]
	}
	return string(b)
}

// pathKinds are the escapes a made-up path may hold: none, harmless ones, a NUL and an encoded
// slash (which the proxy refuses).
var pathKinds = [][]string{nil, {"%7E", "%20", "%C3%A9"}, {"%00"}, {"%2F"}}

// randomPath is depth segments of made-up values (upper case and digits, never a word of any
// route) with escapes of kind.
func randomPath(rng *rand.Rand, depth, kind int) string {
	var b strings.Builder
	for range depth {
		b.WriteString("/")
		for range 1 + rng.IntN(40) {
			b.WriteString(randomString(rng, "ABCDEFGHJKLMNPQRSTUVWXYZ0123456789", 1+rng.IntN(5)))
		}
		if esc := pathKinds[kind]; esc != nil {
			b.WriteString(esc[rng.IntN(len(esc))])
		}
	}
	return b.String()
}

// TestMetricsSeriesStayBounded: made-up methods and paths, from anyone, on both listeners, add no
// series: every label comes from a closed set (standard methods or "other", route templates or
// "unmatched"/"proxy_root", known statuses or their class, Podio operations over a fixed
// vocabulary). Before, each new method was a new series, kept until the process died.
func TestMetricsSeriesStayBounded(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{allowPassword: true})
	tenant := h.token("tenant-metrics")
	acct := h.linkPassword("tenant-metrics", "admin@demo.example")
	scoped := "Bearer " + h.proxyToken(tenant, acct)
	api, root := h.url, h.replicas[0].proxyTS.URL
	known := []string{"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"}
	rng := rand.New(rand.NewPCG(17, 29))

	// send makes one request of a shape: listener, caller, known method or not, path depth.
	type shape struct {
		base, auth string
		method     int // index in known, or -1 for a made-up method
		depth      int
		kind       int // index in pathKinds
	}
	var long []string // made-up methods and paths too long for a log line
	send := func(s shape) {
		m := randomString(rng, tokenChars, 1+rng.IntN(3000))
		if s.method >= 0 {
			m = known[s.method]
		} else if len(m) > 40 {
			long = append(long, m[:40])
		}
		p := randomPath(rng, s.depth, s.kind)
		if len(p) > 60 {
			long = append(long, p[1:41])
		}
		h.send(http.DefaultClient, m, s.base, p, s.auth, nil)
	}
	var shapes []shape
	for _, base := range []string{api, root} {
		auths := []string{"", "Bearer " + tenant}
		if base == root {
			auths = []string{"", scoped}
		}
		for _, auth := range auths {
			for m := -1; m < len(known); m++ {
				for depth := 1; depth <= 4; depth++ {
					for kind := range pathKinds {
						shapes = append(shapes, shape{base, auth, m, depth, kind})
					}
				}
			}
		}
	}
	// One request of every shape makes every series these requests can make.
	for _, s := range shapes {
		send(s)
	}
	series(t, h) // the /metrics request's own series
	before := series(t, h)
	for i := range 1000 {
		s := shapes[rng.IntN(len(shapes))]
		if s.auth == scoped && i%4 != 0 {
			s.auth = "" // keep Podio's hourly quota for the rest of the suite
		}
		send(s)
	}
	after := series(t, h)
	var added []string
	for s := range after {
		if !before[s] {
			added = append(added, s)
		}
	}
	if len(added) > 0 || len(after) != len(before) {
		t.Errorf("1000 requests with made-up methods and paths changed the series from %d to %d; new ones: %q",
			len(before), len(after), added[:min(len(added), 8)])
	}
	logs := h.logs.String()
	for _, x := range long {
		if strings.Contains(logs, x) {
			t.Fatalf("a made-up method or path reached the log beyond the cap: %q", x)
		}
	}
}
