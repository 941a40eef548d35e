package main

import (
	"context"
	"encoding/json"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/dirgate/dirgate/internal/redistest"
)

// TestMain lets the bench's memory scenario start this test binary as "dirgate serve": with
// benchChildEnv set it runs the subcommand named by its arguments instead of the tests.
func TestMain(m *testing.M) {
	if os.Getenv(benchChildEnv) == "1" {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
		stop()
		os.Exit(code)
	}
	os.Exit(m.Run())
}

// TestBenchQuick runs "dirgate bench --quick" against the test Redis and checks that every
// scenario and its baseline produced sane figures, and that the outputs agree.
func TestBenchQuick(t *testing.T) {
	if testing.Short() {
		t.Skip("the quick bench takes about half a minute")
	}
	redistest.New(t) // skips or fails (CI) without Redis
	dir := t.TempDir()
	jsonPath, mdPath := filepath.Join(dir, "bench.json"), filepath.Join(dir, "BENCHMARKS.md")
	// The generated part replaces the text between the markers and nothing else.
	if err := os.WriteFile(mdPath, []byte("# kept above\n"+benchBegin+"\nold\n"+benchEnd+"\n# kept below\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr strings.Builder
	code := run(t.Context(), []string{"bench", "--quick", "--json", jsonPath, "--markdown", mdPath, "--redis-url", redistest.URL()}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("bench exit code %d; stderr:\n%s", code, stderr.String())
	}
	data, err := os.ReadFile(jsonPath)
	if err != nil {
		t.Fatal(err)
	}
	var rep benchReport
	if err := json.Unmarshal(data, &rep); err != nil {
		t.Fatal(err)
	}

	// 1. Gateway and bare Echo at concurrency 1, 4 and 32, every request answered in full.
	for _, target := range []string{"gateway", "bare echo"} {
		for _, conc := range []int{1, 4, 32} {
			var found bool
			for _, l := range rep.CachedRead {
				if l.Target != target || l.Concurrency != conc {
					continue
				}
				found = true
				if l.Requests < conc || l.Errors != 0 || l.P50MS <= 0 || l.P99MS < l.P50MS || l.RPS <= 0 {
					t.Errorf("cached read %s at %d: implausible %+v", target, conc, l)
				}
			}
			if !found {
				t.Errorf("no cached read row for %s at concurrency %d", target, conc)
			}
		}
	}
	// 2. Both crawls see every person; the gateway needs Podio's page size per call, the naive
	// pass-through one call per client page.
	var crawls int
	for _, c := range rep.Crawl {
		crawls++
		if c.Items != quickSizes().people || c.WallS <= 0 {
			t.Errorf("crawl %+v: want %d items and a wall time", c, quickSizes().people)
		}
		switch c.Target {
		case "gateway":
			if c.UpstreamCalls < c.Items/100 || c.UpstreamCalls > c.Items/100+2 {
				t.Errorf("gateway crawl at limit %d made %d upstream calls for %d items", c.Limit, c.UpstreamCalls, c.Items)
			}
		case "naive pass-through":
			if c.UpstreamCalls != c.ClientPages {
				t.Errorf("naive crawl at limit %d: %d upstream calls for %d client pages", c.Limit, c.UpstreamCalls, c.ClientPages)
			}
		default:
			t.Errorf("unknown crawl target %q", c.Target)
		}
	}
	if crawls != 4 {
		t.Errorf("%d crawl rows, want gateway and naive at limits 20 and 100", crawls)
	}
	// 3. Every cold request answered, with at most one fill per replica; results differ only
	// between separate fills.
	if c := rep.Cold; c.Requests != 200 || c.Replicas != 3 || c.Errors != 0 || c.DistinctResults < 1 || c.DistinctResults > c.UpstreamCalls || c.SingleRequest < 1 ||
		c.UpstreamCalls < c.SingleRequest || c.UpstreamCalls > c.Replicas*c.SingleRequest || c.NaiveBaseline != 200*c.SingleRequest {
		t.Errorf("cold requests: %+v", c)
	}
	// 4. Both sides timed; the proxied request cannot be faster than the work it adds to.
	if p := rep.Proxy; p.Samples == 0 || p.DirectP50MS <= 0 || p.ProxyP50MS <= 0 || p.ProxyP99MS < p.ProxyP50MS {
		t.Errorf("proxy overhead: %+v", p)
	}
	// 5. A real peak RSS of the serve child, after it served every person.
	if m := rep.Memory; m.People != quickSizes().memPeople || m.Items != m.People || m.PeakRSSMiB < 5 || m.PeakRSSMiB > 4096 || m.How == "" {
		t.Errorf("memory: %+v", m)
	}
	// 6. A cached request reads Redis at least once (the account) and a handful of times at most.
	if rt := rep.RedisRoundTrips; rt.Requests == 0 || rt.PerRequest < 1 || rt.PerRequest > 10 || len(rt.ByName) == 0 {
		t.Errorf("redis round trips: %+v", rt)
	}
	if len(rep.Goals) < 10 {
		t.Errorf("%d goals, want every goal of issue 10", len(rep.Goals))
	}
	if rep.Machine.Cores == 0 || rep.Machine.GoVersion == "" || rep.Machine.LoadStart == "" {
		t.Errorf("machine: %+v", rep.Machine)
	}

	md, err := os.ReadFile(mdPath)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"# kept above\n", "# kept below\n", "### Goals", "### 1. ", "### 2. ", "### 3. ", "### 4. ", "### 5. ", "### 6. ", "| gateway | 4 |", "| bare echo | 32 |", "| naive pass-through | 20 |"} {
		if !strings.Contains(string(md), want) {
			t.Errorf("BENCHMARKS.md lacks %q:\n%s", want, md)
		}
	}
	if strings.Contains(string(md), "\nold\n") {
		t.Error("the old generated part was not replaced")
	}
	if !strings.Contains(stdout.String(), "### Goals") {
		t.Errorf("stdout has no Markdown table:\n%s", stdout.String())
	}
	if strings.Contains(stdout.String()+stderr.String()+string(data), benchJWTSecret) {
		t.Error("the bench prints its JWT secret")
	}
}
