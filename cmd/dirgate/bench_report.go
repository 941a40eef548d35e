package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
)

// benchChildEnv marks a process the bench started as "dirgate serve". The real binary ignores
// it; the test binary's TestMain runs the subcommand instead of the tests when it is set.
const benchChildEnv = "DIRGATE_BENCH_CHILD"

// serveChild is a "dirgate serve" process the bench started.
type serveChild struct {
	url  string
	pid  int
	stop func()
}

// startServeChild starts this executable as "dirgate serve" against simURL, on the bench's Redis
// under a prefix of its own (deleted with the bench's), and waits until it is ready.
func (b *bench) startServeChild(ctx context.Context, simURL string) (*serveChild, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := ln.Addr().String()
	ln.Close()
	cfg := b.benchConfig(simURL, b.prefix+"child:")
	vars := map[string]string{
		"DIRGATE_ADDR": addr, "DIRGATE_PUBLIC_URL": "http://" + addr,
		"DIRGATE_REDIS_URL": cfg.RedisURL, "DIRGATE_REDIS_PREFIX": cfg.RedisPrefix,
		"DIRGATE_JWT_HS256_SECRET": cfg.JWTSecret, "DIRGATE_ENCRYPTION_KEYS": cfg.EncryptionKeys,
		"DIRGATE_PODIO_CLIENT_ID": cfg.PodioClientID, "DIRGATE_PODIO_CLIENT_SECRET": cfg.PodioClientSecret,
		"DIRGATE_PODIO_API_URL": cfg.PodioAPIURL, "DIRGATE_PODIO_AUTH_URL": cfg.PodioAuthURL,
		"DIRGATE_ALLOW_PASSWORD_GRANT": "true", "DIRGATE_LOG_LEVEL": "error",
		"DIRGATE_QUOTA_GENERAL_LIMIT": strconv.Itoa(cfg.QuotaGeneral), "DIRGATE_QUOTA_RATE_LIMITED_LIMIT": strconv.Itoa(cfg.QuotaRateLimited),
		"DIRGATE_CACHE_TTL_USERS": "1h", "DIRGATE_CACHE_TTL_ORGANIZATIONS": "1h",
		benchChildEnv: "1",
	}
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "DIRGATE_") { // the parent's own gateway settings must not leak in
			env = append(env, kv)
		}
	}
	for k, v := range vars {
		env = append(env, k+"="+v)
	}
	cmd := exec.Command(exe, "serve")
	cmd.Env = env
	var stderr syncWriter
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s serve: %w", exe, err)
	}
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
	stop := func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-waited:
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			<-waited
		}
	}
	for deadline := time.Now().Add(30 * time.Second); ; {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/readyz", nil)
		if res, err := b.client.Do(req); err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				break
			}
		}
		select {
		case err := <-waited:
			waited <- err
			return nil, fmt.Errorf("the serve child exited (%v): %.500s", err, stderr.String())
		case <-ctx.Done():
			stop()
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			stop()
			return nil, fmt.Errorf("the serve child was not ready in 30 s: %.500s", stderr.String())
		}
	}
	return &serveChild{url: "http://" + addr, pid: cmd.Process.Pid, stop: stop}, nil
}

// cleanRedis deletes the bench's keys: its prefix, and the job and webhook queues asynq keeps
// outside it (the serve child runs workers).
func cleanRedis(ctx context.Context, rc redis.UniversalClient, prefix string) error {
	errs := []error{deletePrefix(ctx, rc, prefix)}
	for _, p := range []string{prefix, prefix + "child:"} {
		for _, q := range []string{"jobs", "webhooks"} {
			name := strings.TrimSuffix(p, ":") + ":" + q
			errs = append(errs, deletePrefix(ctx, rc, "asynq:{"+name+"}"), rc.SRem(ctx, "asynq:queues", name).Err())
		}
	}
	return errors.Join(errs...)
}

// goals compares the run with the goals of issue 10.
func (r *benchReport) goals() []benchGoalRow {
	var out []benchGoalRow
	add := func(goal, measured string, met bool) { out = append(out, benchGoalRow{goal, measured, met}) }
	row := func(target string, conc int) loadRow {
		for _, l := range r.CachedRead {
			if l.Target == target && l.Concurrency == conc {
				return l
			}
		}
		return loadRow{}
	}
	g4 := row("gateway", 4)
	add("cache hit p50 ≤ 0.5 ms at concurrency 4", fmt.Sprintf("%.3f ms", g4.P50MS), g4.Requests > 0 && g4.P50MS <= 0.5)
	add("cache hit p99 ≤ 2 ms at concurrency 4", fmt.Sprintf("%.3f ms", g4.P99MS), g4.Requests > 0 && g4.P99MS <= 2)
	best, bare := loadRow{}, loadRow{}
	for _, l := range r.CachedRead {
		if l.Target == "gateway" && l.RPS > best.RPS {
			best = l
		}
		if l.Target == "bare echo" && l.RPS > bare.RPS {
			bare = l
		}
	}
	add("≥ 10,000 cached req/s per replica (2 cores)", fmt.Sprintf("%.0f req/s (concurrency %d)", best.RPS, best.Concurrency), best.RPS >= 10000)
	share := 0.0
	if bare.RPS > 0 {
		share = best.RPS / bare.RPS
	}
	add("≥ half the bare Echo ceiling", fmt.Sprintf("%.0f%% of %.0f req/s", share*100, bare.RPS), share >= 0.5)
	add("≤ 2 Redis round trips per cached request", fmt.Sprintf("%.2f", r.RedisRoundTrips.PerRequest), r.RedisRoundTrips.Requests > 0 && r.RedisRoundTrips.PerRequest <= 2)
	add("proxy overhead p50 ≤ 1 ms", fmt.Sprintf("%.3f ms", r.Proxy.OverheadP50MS), r.Proxy.Samples > 0 && r.Proxy.OverheadP50MS <= 1)
	for _, c := range r.Crawl {
		if c.Target != "gateway" {
			continue
		}
		bound := int(math.Ceil(float64(c.Items)/100)) + 1
		add(fmt.Sprintf("full crawl at limit %d: upstream calls ≤ ceil(N/100)+1 = %d", c.Limit, bound),
			fmt.Sprintf("%d calls for N = %d", c.UpstreamCalls, c.Items), c.Items > 0 && c.UpstreamCalls <= bound)
	}
	add(fmt.Sprintf("%d identical cold requests over %d replicas: as many upstream calls as one", r.Cold.Requests, r.Cold.Replicas),
		fmt.Sprintf("%d calls (one request: %d)", r.Cold.UpstreamCalls, r.Cold.SingleRequest), r.Cold.Errors == 0 && r.Cold.UpstreamCalls <= r.Cold.SingleRequest)
	add(fmt.Sprintf("peak RSS ≤ 256 MiB crawling %d people", r.Memory.People), fmt.Sprintf("%.1f MiB", r.Memory.PeakRSSMiB),
		r.Memory.PeakRSSMiB > 0 && r.Memory.PeakRSSMiB <= 256)
	return out
}

// markdown renders the report.
func (r *benchReport) markdown() string {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	yes := func(ok bool) string {
		if ok {
			return "yes"
		}
		return "**no**"
	}
	p("## `dirgate bench` results\n\n")
	p("Command: `%s`%s. Started %s, took %s.\n\n", r.Command, map[bool]string{true: " (quick: small datasets, short runs)"}[r.Quick],
		r.Started.Format(time.RFC3339), r.Duration)
	m := r.Machine
	p("Machine: %s, %d cores (GOMAXPROCS %d), %s, %s. Load average (1/5/15 min) at start %s, at end %s. Redis: %s, %s.\n\n",
		m.CPU, m.Cores, m.GOMAXPROCS, m.GoVersion, m.OS, m.LoadStart, m.LoadEnd, m.RedisURL, m.RedisNote)
	p("Simulator, replicas, baselines and load generator share this machine; every figure below includes the load generator's own CPU use.\n\n")

	p("### Goals\n\n| goal | measured | met? |\n|---|---|---|\n")
	for _, g := range r.Goals {
		p("| %s | %s | %s |\n", g.Goal, g.Measured, yes(g.Met))
	}

	p("\n### 1. Cached unified read (users, limit 100) vs a bare Echo handler with the same bytes\n\n")
	p("| target | concurrency | requests | errors | not HIT | p50 ms | p99 ms | req/s |\n|---|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, l := range r.CachedRead {
		p("| %s | %d | %d | %d | %d | %.3f | %.3f | %.0f |\n", l.Target, l.Concurrency, l.Requests, l.Errors, l.NotHit, l.P50MS, l.P99MS, l.RPS)
	}
	p("\n\"not HIT\": gateway answers whose `X-Cache` was not `HIT`: a cache read slower than `DIRGATE_CACHE_TIMEOUT` (default 50 ms) fails open to the local cache or to Podio.\n")
	p("\n### 2. Full crawl of the large dataset (upstream latency %.0f ms) vs a naive pass-through\n\n", r.LatencyMS)
	p("| target | client limit | items | client pages | upstream calls | wall s |\n|---|---:|---:|---:|---:|---:|\n")
	for _, c := range r.Crawl {
		p("| %s | %d | %d | %d | %d | %.2f |\n", c.Target, c.Limit, c.Items, c.ClientPages, c.UpstreamCalls, c.WallS)
	}
	p("\nUpstream calls by operation:\n\n")
	for _, c := range r.Crawl {
		p("- %s, limit %d: %s\n", c.Target, c.Limit, routeCounts(c.CallsByRoute))
	}
	c := r.Cold
	p("\n### 3. Identical cold requests (workspaces of an organization) over %d replicas\n\n", c.Replicas)
	p("| requests | errors | distinct results | upstream calls | one cold request | naive (one per request) |\n|---:|---:|---:|---:|---:|---:|\n")
	p("| %d | %d | %d | %d | %d | %d |\n", c.Requests, c.Errors, c.DistinctResults, c.UpstreamCalls, c.SingleRequest, c.NaiveBaseline)
	p("\nUpstream calls by operation: %s.\n", routeCounts(c.CallsByRoute))
	x := r.Proxy
	p("\n### 4. Proxy overhead (`GET /org/` through `/proxy` vs straight at the simulator, no added latency, concurrency 1)\n\n")
	p("| samples | direct p50 | direct p99 | proxy p50 | proxy p99 | overhead p50 | overhead p99 |\n|---:|---:|---:|---:|---:|---:|---:|\n")
	p("| %d | %.3f ms | %.3f ms | %.3f ms | %.3f ms | %.3f ms | %.3f ms |\n", x.Samples, x.DirectP50MS, x.DirectP99MS, x.ProxyP50MS, x.ProxyP99MS, x.OverheadP50MS, x.OverheadP99MS)
	p("\nOverhead percentiles are of the paired differences (each proxied request minus the direct one just before it).\n")
	mm := r.Memory
	p("\n### 5. Memory\n\n| people | items crawled | upstream calls | peak RSS |\n|---:|---:|---:|---:|\n| %d | %d | %d | %.1f MiB |\n\n%s.\n",
		mm.People, mm.Items, mm.UpstreamCalls, mm.PeakRSSMiB, mm.How)
	rt := r.RedisRoundTrips
	p("\n### 6. Redis round trips per cached request (go-redis hook on the replica's client)\n\n")
	p("| requests | not HIT | commands | pipelines | round trips | per request |\n|---:|---:|---:|---:|---:|---:|\n| %d | %d | %d | %d | %d | %.2f |\n\n",
		rt.Requests, rt.NotHit, rt.Commands, rt.Pipelines, rt.RoundTrips, rt.PerRequest)
	p("Round trips by command: %s.\n\n", routeCounts(rt.ByName))
	return b.String()
}

// syncWriter keeps what a child process writes, for the error when it fails.
type syncWriter struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (w *syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.Write(p)
}

func (w *syncWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// routeCounts renders counts by name, sorted by name.
func routeCounts[N int | int64](m map[string]N) string {
	if len(m) == 0 {
		return "none"
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("`%s` %d", k, m[k]))
	}
	return strings.Join(parts, ", ")
}
