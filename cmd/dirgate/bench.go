package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/dirgate/dirgate/adapters/podio/podiosim"
	"github.com/dirgate/dirgate/api"
	"github.com/dirgate/dirgate/internal/config"
	"github.com/dirgate/dirgate/internal/crypt"
	"github.com/dirgate/dirgate/internal/tenantauth"
)

// benchJWTSecret signs the bench's tenant tokens; the bench's gateways live only as long as it.
const benchJWTSecret = "dirgate-bench-jwt-secret-not-for-production"

// benchSizes are the knobs --quick turns down.
type benchSizes struct {
	people      int           // people in the crawled "large" dataset
	memPeople   int           // people in the memory scenario's dataset
	loadFor     time.Duration // length of one load run
	proxySample int           // request pairs in the proxy overhead scenario
	rttSample   int           // cached requests whose Redis round trips are counted
	cold        int           // concurrent cold requests
}

func fullSizes() benchSizes {
	return benchSizes{people: 20000, memPeople: 100000, loadFor: 5 * time.Second, proxySample: 2000, rttSample: 2000, cold: 200}
}

func quickSizes() benchSizes {
	return benchSizes{people: 2000, memPeople: 10000, loadFor: 700 * time.Millisecond, proxySample: 200, rttSample: 200, cold: 200}
}

// benchReport is everything one bench run measured; it is the JSON output.
type benchReport struct {
	Command  string       `json:"command"`
	Quick    bool         `json:"quick"`
	Machine  benchMachine `json:"machine"`
	Started  time.Time    `json:"started"`
	Duration string       `json:"duration"`
	// LatencyMS is the simulator's added latency per Podio call in the crawl and cold scenarios.
	LatencyMS float64 `json:"upstream_latency_ms"`

	CachedRead      []loadRow      `json:"cached_read"`
	Crawl           []crawlRow     `json:"crawl"`
	Cold            coldRow        `json:"cold"`
	Proxy           proxyRow       `json:"proxy"`
	Memory          memoryRow      `json:"memory"`
	RedisRoundTrips roundTripRow   `json:"redis_round_trips"`
	Goals           []benchGoalRow `json:"goals"`
}

type benchMachine struct {
	CPU        string `json:"cpu"`
	Cores      int    `json:"cores"`
	GoVersion  string `json:"go_version"`
	OS         string `json:"os"`
	LoadStart  string `json:"load_at_start"`
	LoadEnd    string `json:"load_at_end"`
	RedisURL   string `json:"redis"`
	RedisNote  string `json:"redis_note"`
	GOMAXPROCS int    `json:"gomaxprocs"`
}

// loadRow is one closed-loop load run at a fixed concurrency.
type loadRow struct {
	Target      string `json:"target"` // "gateway" or "bare echo"
	Concurrency int    `json:"concurrency"`
	Requests    int    `json:"requests"`
	Errors      int    `json:"errors"`
	// NotHit counts gateway answers whose X-Cache was not HIT.
	NotHit int     `json:"not_hit"`
	P50MS  float64 `json:"p50_ms"`
	P99MS  float64 `json:"p99_ms"`
	RPS    float64 `json:"req_per_s"`
}

type crawlRow struct {
	Target        string  `json:"target"` // "gateway" or "naive pass-through"
	Limit         int     `json:"client_limit"`
	Items         int     `json:"items"`
	ClientPages   int     `json:"client_pages"`
	UpstreamCalls int     `json:"upstream_calls"`
	WallS         float64 `json:"wall_s"`
	// CallsByRoute breaks UpstreamCalls down by Podio operation.
	CallsByRoute map[string]int `json:"calls_by_route"`
}

type coldRow struct {
	Requests      int `json:"requests"`
	Replicas      int `json:"replicas"`
	Errors        int `json:"errors"`
	UpstreamCalls int `json:"upstream_calls"`
	SingleRequest int `json:"upstream_calls_one_cold_request"`
	NaiveBaseline int `json:"upstream_calls_naive"`
	// DistinctResults counts the different result lists the requests saw (1: all saw the same).
	DistinctResults int            `json:"distinct_results"`
	ResultCounts    []int          `json:"result_counts"` // result_count of each distinct result
	CallsByRoute    map[string]int `json:"calls_by_route"`
}

type proxyRow struct {
	Samples     int     `json:"samples"`
	DirectP50MS float64 `json:"direct_p50_ms"`
	DirectP99MS float64 `json:"direct_p99_ms"`
	ProxyP50MS  float64 `json:"proxy_p50_ms"`
	ProxyP99MS  float64 `json:"proxy_p99_ms"`
	// Overhead is the percentile of the paired differences (proxy minus direct, same iteration).
	OverheadP50MS float64 `json:"overhead_p50_ms"`
	OverheadP99MS float64 `json:"overhead_p99_ms"`
}

type memoryRow struct {
	People        int     `json:"people"`
	Items         int     `json:"items"`
	UpstreamCalls int     `json:"upstream_calls"`
	PeakRSSMiB    float64 `json:"peak_rss_mib"`
	How           string  `json:"how"`
}

type roundTripRow struct {
	Requests   int     `json:"requests"`
	Commands   int64   `json:"commands"`
	Pipelines  int64   `json:"pipelines"`
	RoundTrips int64   `json:"round_trips"`
	PerRequest float64 `json:"per_request"`
	// NotHit counts answers whose X-Cache was not HIT (the cache failed open to Podio).
	NotHit int `json:"not_hit"`
	// ByName counts the round trips by command (or pipeline of commands).
	ByName map[string]int64 `json:"by_name"`
}

type benchGoalRow struct {
	Goal     string `json:"goal"`
	Measured string `json:"measured"`
	Met      bool   `json:"met"`
}

// runBench implements "dirgate bench": simulator, gateway replicas and a load generator in one
// process, on one real Redis; every scenario is measured beside its baseline in the same run.
func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("bench", "Measures the gateway against its baselines (simulator, replicas and load generator in this process, on a real Redis) and prints a Markdown table.", stderr)
	quick := fs.Bool("quick", false, "CI-size run (under a minute): smaller datasets, shorter load runs")
	jsonOut := fs.String("json", "", "write the results as JSON to this file")
	mdOut := fs.String("markdown", "", "write the results as Markdown to this file (between the bench markers when the file has them)")
	latency := fs.Duration("latency", 50*time.Millisecond, "latency the simulator adds to every Podio call (crawl and cold scenarios)")
	redisURL := fs.String("redis-url", "", "Redis to run on (the bench writes under a random key prefix and deletes it afterwards); unset: a private redis-server on a free port, or the test Redis when redis-server is not installed")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	sizes := fullSizes()
	if *quick {
		sizes = quickSizes()
	}
	b := &bench{sizes: sizes, latency: *latency, redisURL: *redisURL, progress: stderr}
	redisNote := "given by --redis-url"
	if b.redisURL == "" {
		u, stop, err := startPrivateRedis(ctx)
		switch {
		case err == nil:
			defer stop()
			b.redisURL, redisNote = u, "a private redis-server started for the run (no other clients)"
		case errors.Is(err, exec.ErrNotFound):
			b.redisURL, redisNote = defaultBenchRedisURL(), "the shared test Redis (redis-server is not installed); other clients may load it"
		default:
			return err
		}
	}
	rep, err := b.run(ctx)
	rep.Machine.RedisNote = redisNote
	if err != nil {
		return err
	}
	rep.Quick = *quick
	rep.Command = "dirgate " + strings.Join(append([]string{"bench"}, args...), " ")
	md := rep.markdown()
	fmt.Fprint(stdout, md)
	if *jsonOut != "" {
		data, err := json.MarshalIndent(rep, "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(*jsonOut, append(data, '\n'), 0o644); err != nil {
			return err
		}
	}
	if *mdOut != "" {
		if err := writeBenchMarkdown(*mdOut, md); err != nil {
			return err
		}
	}
	return nil
}

// defaultBenchRedisURL is the shared test Redis (database 9) unless DIRGATE_TEST_REDIS_URL names another.
func defaultBenchRedisURL() string {
	if u := os.Getenv("DIRGATE_TEST_REDIS_URL"); u != "" {
		return u
	}
	return "redis://127.0.0.1:6379/9"
}

// Markers delimit the generated part of BENCHMARKS.md, so hand-written sections survive a re-run.
const (
	benchBegin = "<!-- dirgate bench: begin -->"
	benchEnd   = "<!-- dirgate bench: end -->"
)

// writeBenchMarkdown replaces the text between the markers of path with md, or writes the file
// when it does not exist or has no markers.
func writeBenchMarkdown(path, md string) error {
	block := benchBegin + "\n" + md + benchEnd + "\n"
	old, err := os.ReadFile(path)
	if err == nil {
		s := string(old)
		i, j := strings.Index(s, benchBegin), strings.Index(s, benchEnd)
		if i >= 0 && j > i {
			return os.WriteFile(path, []byte(s[:i]+block+strings.TrimPrefix(s[j+len(benchEnd):], "\n")), 0o644)
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return os.WriteFile(path, []byte(block), 0o644)
}

// bench holds one run's shared pieces.
type bench struct {
	sizes    benchSizes
	latency  time.Duration
	redisURL string
	progress io.Writer

	prefix string
	minter *tenantauth.Minter
	encKey string
	client *http.Client
	sim    *podiosim.Server
	simURL string
}

func (b *bench) logf(format string, args ...any) {
	fmt.Fprintf(b.progress, "bench: "+format+"\n", args...)
}

func (b *bench) run(ctx context.Context) (rep benchReport, err error) {
	start := time.Now()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	rep.Started = start.UTC().Truncate(time.Second)
	rep.LatencyMS = float64(b.latency) / float64(time.Millisecond)
	rep.Machine = machine()
	rep.Machine.RedisURL = redactedRedis(b.redisURL)

	var rnd [6]byte
	_, _ = rand.Read(rnd[:])
	b.prefix = "dirgate-bench:" + hex.EncodeToString(rnd[:]) + ":"
	if b.minter, err = tenantauth.NewMinter([]byte(benchJWTSecret), "", "", nil); err != nil {
		return rep, err
	}
	key, err := crypt.GenerateKey("bench")
	if err != nil {
		return rep, err
	}
	b.encKey = key.String()
	b.client = &http.Client{Transport: &http.Transport{MaxIdleConns: 512, MaxIdleConnsPerHost: 256, DisableCompression: true}}
	defer b.client.CloseIdleConnections()

	admin, err := redisClient(config.Config{RedisURL: b.redisURL, RedisTimeout: 2 * time.Second})
	if err != nil {
		return rep, fmt.Errorf("--redis-url: %w", err)
	}
	defer admin.Close()
	if err := admin.Ping(ctx).Err(); err != nil {
		return rep, fmt.Errorf("--redis-url: no Redis answers: %w", err)
	}
	defer func() {
		// Clean up even when the run was cancelled.
		if derr := cleanRedis(context.Background(), admin, b.prefix); derr != nil && err == nil {
			err = fmt.Errorf("cleaning up Redis keys %s*: %w", b.prefix, derr)
		}
	}()

	b.logf("generating the large dataset (%d people)", b.sizes.people)
	b.sim = podiosim.New(podiosim.Config{Dataset: podiosim.Large(podiosim.LargeOptions{People: b.sizes.people}), GeneralLimit: 1 << 30, RateLimitedLimit: 1 << 30})
	if b.simURL, err = serveBackground(ctx, b.sim); err != nil {
		return rep, err
	}
	reps := make([]*benchReplica, 3)
	for i := range reps {
		if reps[i], err = b.startReplica(ctx); err != nil {
			return rep, err
		}
		defer reps[i].close()
	}
	if err := b.setLatency(b.latency); err != nil {
		return rep, err
	}

	b.logf("scenario 2: full crawls (upstream latency %s)", b.latency)
	var warm string // an account whose users list the gateway crawl left cached
	for _, limit := range []int{20, 100} {
		row, acct, err := b.crawlGateway(ctx, reps[0], limit)
		if err != nil {
			return rep, fmt.Errorf("gateway crawl at limit %d: %w", limit, err)
		}
		rep.Crawl = append(rep.Crawl, row)
		if limit == 100 {
			warm = acct
		}
		if row, err = b.crawlNaive(ctx, limit); err != nil {
			return rep, fmt.Errorf("naive crawl at limit %d: %w", limit, err)
		}
		rep.Crawl = append(rep.Crawl, row)
	}

	b.logf("scenario 3: %d concurrent cold requests over %d replicas", b.sizes.cold, len(reps))
	if rep.Cold, err = b.coldRequests(ctx, reps); err != nil {
		return rep, fmt.Errorf("cold requests: %w", err)
	}

	b.logf("scenarios 1 and 6: cached reads")
	if rep.CachedRead, rep.RedisRoundTrips, err = b.cachedReads(ctx, reps[0], warm); err != nil {
		return rep, fmt.Errorf("cached reads: %w", err)
	}

	b.logf("scenario 4: proxy overhead (no added upstream latency)")
	if err := b.setLatency(0); err != nil {
		return rep, err
	}
	if rep.Proxy, err = b.proxyOverhead(ctx, reps[0], warm); err != nil {
		return rep, fmt.Errorf("proxy overhead: %w", err)
	}

	b.logf("scenario 5: peak RSS of a gateway process crawling %d people", b.sizes.memPeople)
	if rep.Memory, err = b.memory(ctx); err != nil {
		return rep, fmt.Errorf("memory: %w", err)
	}

	rep.Goals = rep.goals()
	rep.Machine.LoadEnd = loadAvg()
	rep.Duration = time.Since(start).Round(time.Second).String()
	return rep, nil
}

// setLatency makes every Podio call of the simulator take d longer (none for 0).
func (b *bench) setLatency(d time.Duration) error {
	b.sim.ClearFaults()
	if d <= 0 {
		return nil
	}
	return b.sim.AddFault(podiosim.Fault{Route: "*", LatencyMS: int(d / time.Millisecond)})
}

// serveBackground serves h on a fresh loopback listener until ctx ends and returns its base URL.
func serveBackground(ctx context.Context, h http.Handler) (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	go func() { _ = serveHTTP(ctx, ln, h, nil, 5*time.Second, defaultLimits()) }()
	return "http://" + ln.Addr().String(), nil
}

// benchReplica is one gateway replica serving on loopback, its Redis client counted by a hook.
type benchReplica struct {
	url   string
	hook  *countingHook
	gw    *gateway
	stop  context.CancelFunc
	close func()
}

// benchConfig is the gateway configuration of the bench's replicas and of its serve child.
func (b *bench) benchConfig(simURL, prefix string) config.Config {
	cfg, _ := config.Load(nil) // defaults only; cannot fail without variables
	cfg.RedisURL, cfg.RedisPrefix = b.redisURL, prefix
	cfg.JWTSecret, cfg.EncryptionKeys = benchJWTSecret, b.encKey
	cfg.PodioClientID, cfg.PodioClientSecret = "demo-client", "demo-secret"
	cfg.PodioAPIURL, cfg.PodioAuthURL = simURL+"/", simURL+"/"
	cfg.AllowPasswordGrant = true
	cfg.Replicas = 3
	// The bench measures the gateway, not Podio's hourly quota: the simulator's is lifted too.
	cfg.QuotaGeneral, cfg.QuotaRateLimited = 1<<30, 1<<30
	// Cached data must stay fresh for the whole run, or a cached-read scenario would measure refills.
	cfg.CacheTTLUsers, cfg.CacheTTLOrgs, cfg.CacheTTLWorkspaces = time.Hour, time.Hour, time.Hour
	cfg.LogLevel = "error"
	return cfg
}

func (b *bench) startReplica(ctx context.Context) (*benchReplica, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	cfg := b.benchConfig(b.simURL, b.prefix)
	cfg.Addr = ln.Addr().String()
	cfg.PublicURL = "http://" + cfg.Addr
	rc, err := redisClient(cfg)
	if err != nil {
		ln.Close()
		return nil, err
	}
	hook := &countingHook{}
	rc.AddHook(hook)
	gw, err := buildGateway(cfg, rc, slog.New(slog.DiscardHandler))
	if err != nil {
		ln.Close()
		rc.Close()
		return nil, err
	}
	sctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	// Only the API: the job workers and pollers would add Redis traffic of their own to the counts.
	go func() { _ = serveHTTP(sctx, ln, gw.api, nil, 5*time.Second, defaultLimits()); close(done) }()
	r := &benchReplica{url: "http://" + cfg.Addr, hook: hook, gw: gw, stop: stop}
	r.close = func() { stop(); <-done; gw.Close() }
	return r, nil
}

// countingHook counts the Redis round trips of a client: a command or a pipeline is one. While
// naming is on it also counts them by command name (a pipeline as "pipeline[a b ...]").
type countingHook struct {
	commands, pipelines atomic.Int64
	naming              atomic.Bool
	mu                  sync.Mutex
	names               map[string]int64
}

func (h *countingHook) name(n string) {
	if !h.naming.Load() {
		return
	}
	h.mu.Lock()
	if h.names == nil {
		h.names = map[string]int64{}
	}
	h.names[n]++
	h.mu.Unlock()
}

// startNaming clears the counts by name and turns naming on; stopNaming turns it off and returns them.
func (h *countingHook) startNaming() {
	h.mu.Lock()
	h.names = nil
	h.mu.Unlock()
	h.naming.Store(true)
}

func (h *countingHook) stopNaming() map[string]int64 {
	h.naming.Store(false)
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.names
}

func (h *countingHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *countingHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		h.commands.Add(1)
		h.name(cmd.Name())
		return next(ctx, cmd)
	}
}

func (h *countingHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		h.pipelines.Add(1)
		if h.naming.Load() {
			names := make([]string, len(cmds))
			for i, c := range cmds {
				names[i] = c.Name()
			}
			h.name("pipeline[" + strings.Join(names, " ") + "]")
		}
		return next(ctx, cmds)
	}
}

// link links admin@demo.example for a fresh tenant on r (password grant) and returns the tenant
// token and the integrated account id.
func (b *bench) link(ctx context.Context, baseURL, tenant string) (token, account string, err error) {
	if token, err = b.minter.Mint(tenant, time.Hour); err != nil {
		return "", "", err
	}
	body := `{"grant_type":"password","username":"admin@demo.example","password":"demo"}`
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, baseURL+"/integrated-accounts", strings.NewReader(body))
	if err != nil {
		return "", "", err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	var out struct {
		ID string `json:"id"`
	}
	if err := b.doJSON(req, &out); err != nil {
		return "", "", fmt.Errorf("link: %w", err)
	}
	return token, out.ID, nil
}

// doJSON sends req and decodes a 2xx JSON answer into v.
func (b *bench) doJSON(req *http.Request, v any) error {
	res, err := b.client.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	data, err := io.ReadAll(res.Body)
	if err != nil {
		return err
	}
	if res.StatusCode/100 != 2 {
		return fmt.Errorf("%s %s: status %d: %.200s", req.Method, req.URL.Path, res.StatusCode, data)
	}
	return json.Unmarshal(data, v)
}

func (b *bench) upstreamCalls() int {
	n := 0
	for _, c := range b.sim.Calls() {
		n += c
	}
	return n
}

// crawl follows next_cursor from the first page of first until the last page, counting items.
func (b *bench) crawl(ctx context.Context, first, token string) (items, pages int, err error) {
	next := first
	for next != "" {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, next, nil)
		if err != nil {
			return 0, 0, err
		}
		req.Header.Set("Authorization", "Bearer "+token)
		var page struct {
			Result     []json.RawMessage `json:"result"`
			NextCursor *string           `json:"next_cursor"`
		}
		if err := b.doJSON(req, &page); err != nil {
			return 0, 0, err
		}
		items += len(page.Result)
		pages++
		next = ""
		if page.NextCursor != nil {
			u, _ := url.Parse(first)
			q := u.Query()
			q.Set("next_cursor", *page.NextCursor)
			u.RawQuery = q.Encode()
			next = u.String()
		}
	}
	return items, pages, nil
}

func usersURL(base, account string, limit int) string {
	return fmt.Sprintf("%s/unified/user-directory/users?integrated_account_id=%s&limit=%d", base, url.QueryEscape(account), limit)
}

func (b *bench) crawlGateway(ctx context.Context, r *benchReplica, limit int) (crawlRow, string, error) {
	token, acct, err := b.link(ctx, r.url, fmt.Sprintf("bench-crawl-%d", limit))
	if err != nil {
		return crawlRow{}, "", err
	}
	b.sim.ResetCalls()
	start := time.Now()
	items, pages, err := b.crawl(ctx, usersURL(r.url, acct, limit), token)
	if err != nil {
		return crawlRow{}, "", err
	}
	return crawlRow{Target: "gateway", Limit: limit, Items: items, ClientPages: pages, UpstreamCalls: b.upstreamCalls(),
		WallS: time.Since(start).Seconds(), CallsByRoute: b.sim.Calls()}, acct, nil
}

// naiveHandler is the pass-through baseline: every client page is one Podio call (the org member
// list at the client's limit and offset), answered in the gateway's envelope.
func naiveHandler(simURL, podioToken string, client *http.Client) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		limit, offset := q.Get("limit"), q.Get("next_cursor")
		if offset == "" {
			offset = "0"
		}
		req, _ := http.NewRequestWithContext(r.Context(), http.MethodGet, simURL+"/org/3001/member/?limit="+url.QueryEscape(limit)+"&offset="+url.QueryEscape(offset), nil)
		req.Header.Set("Authorization", "OAuth2 "+podioToken)
		res, err := client.Do(req)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer res.Body.Close()
		var members []json.RawMessage
		if res.StatusCode != http.StatusOK || json.NewDecoder(res.Body).Decode(&members) != nil {
			http.Error(w, "podio: "+res.Status, http.StatusBadGateway)
			return
		}
		page := struct {
			Result     []json.RawMessage `json:"result"`
			NextCursor *string           `json:"next_cursor"`
		}{Result: members}
		var l, o int
		fmt.Sscan(limit, &l)
		fmt.Sscan(offset, &o)
		if l > 0 && len(members) == l {
			next := fmt.Sprint(o + l)
			page.NextCursor = &next
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(page)
	})
}

func (b *bench) crawlNaive(ctx context.Context, limit int) (crawlRow, error) {
	tok, err := b.sim.IssueToken("demo-client", "admin@demo.example")
	if err != nil {
		return crawlRow{}, err
	}
	nctx, cancel := context.WithCancel(ctx)
	defer cancel()
	base, err := serveBackground(nctx, naiveHandler(b.simURL, tok.AccessToken, b.client))
	if err != nil {
		return crawlRow{}, err
	}
	b.sim.ResetCalls()
	start := time.Now()
	items, pages, err := b.crawl(ctx, fmt.Sprintf("%s/users?limit=%d", base, limit), "unused")
	if err != nil {
		return crawlRow{}, err
	}
	return crawlRow{Target: "naive pass-through", Limit: limit, Items: items, ClientPages: pages, UpstreamCalls: b.upstreamCalls(),
		WallS: time.Since(start).Seconds(), CallsByRoute: b.sim.Calls()}, nil
}

// coldRequests sends identical requests for a list nobody has read yet, all at once, round-robin
// over the replicas, and counts the Podio calls they cause. One cold request on another tenant
// first measures what a single fill costs.
func (b *bench) coldRequests(ctx context.Context, reps []*benchReplica) (coldRow, error) {
	row := coldRow{Requests: b.sizes.cold, Replicas: len(reps)}
	path := func(acct string) string {
		return "/unified/user-directory/workspaces?integrated_account_id=" + url.QueryEscape(acct) + "&organization_id=3001&limit=100"
	}
	tok, acct, err := b.link(ctx, reps[0].url, "bench-cold-single")
	if err != nil {
		return row, err
	}
	b.sim.ResetCalls()
	if _, _, err := b.get(ctx, reps[0].url+path(acct), tok); err != nil {
		return row, err
	}
	row.SingleRequest = b.upstreamCalls()
	row.NaiveBaseline = row.SingleRequest * row.Requests

	if tok, acct, err = b.link(ctx, reps[0].url, "bench-cold"); err != nil {
		return row, err
	}
	b.sim.ResetCalls()
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		bodies = map[string]bool{}
		sizes  []int
		errs   atomic.Int64
		ready  = make(chan struct{})
	)
	// A client of its own: one connection per request, opened before the start signal.
	c := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: b.sizes.cold, DisableCompression: true}}
	defer c.CloseIdleConnections()
	for i := range row.Requests {
		r := reps[i%len(reps)]
		wg.Go(func() {
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, r.url+path(acct), nil)
			req.Header.Set("Authorization", "Bearer "+tok)
			<-ready
			res, err := c.Do(req)
			if err != nil {
				errs.Add(1)
				return
			}
			data, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode != http.StatusOK {
				errs.Add(1)
				return
			}
			// Bodies differ in their sealed next_cursor (random nonce); the results must not.
			var page struct {
				Result json.RawMessage `json:"result"`
				Count  int             `json:"result_count"`
			}
			if json.Unmarshal(data, &page) != nil {
				errs.Add(1)
				return
			}
			mu.Lock()
			if !bodies[string(page.Result)] {
				sizes = append(sizes, page.Count)
			}
			bodies[string(page.Result)] = true
			mu.Unlock()
		})
	}
	close(ready)
	wg.Wait()
	row.Errors = int(errs.Load())
	row.UpstreamCalls = b.upstreamCalls()
	row.DistinctResults = len(bodies)
	if len(bodies) > 1 {
		// Say where two of them differ: the same data filled twice should serialise the same.
		keys := slices.Collect(maps.Keys(bodies))
		a, z := keys[0], keys[1]
		i := 0
		for i < min(len(a), len(z)) && a[i] == z[i] {
			i++
		}
		lo := max(i-80, 0)
		b.logf("cold requests saw %d different results; first difference at byte %d:\n  %q\n  %q", len(bodies), i, a[lo:min(i+80, len(a))], z[lo:min(i+80, len(z))])
	}
	row.ResultCounts = sizes
	row.CallsByRoute = b.sim.Calls()
	return row, nil
}

// get sends an authenticated GET and returns the body and X-Cache of a 200 answer.
func (b *bench) get(ctx context.Context, u, token string) ([]byte, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, "", err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := b.client.Do(req)
	if err != nil {
		return nil, "", err
	}
	defer res.Body.Close()
	data, err := io.ReadAll(res.Body)
	if err != nil {
		return nil, "", err
	}
	if res.StatusCode != http.StatusOK {
		return nil, "", fmt.Errorf("GET %s: status %d: %.200s", req.URL.Path, res.StatusCode, data)
	}
	return data, res.Header.Get("X-Cache"), nil
}

// cachedReads measures the first users page (limit 100) of an account whose list is cached, at
// concurrency 1, 4 and 32, beside a bare Echo handler answering the same bytes; then counts the
// Redis round trips of sequential cached requests.
func (b *bench) cachedReads(ctx context.Context, r *benchReplica, acct string) ([]loadRow, roundTripRow, error) {
	token, err := b.minter.Mint("bench-crawl-100", time.Hour)
	if err != nil {
		return nil, roundTripRow{}, err
	}
	u := usersURL(r.url, acct, 100)
	// The crawl left the list cached; a read that fails open (slow Redis) answers MISS, so allow
	// a few before deciding the cache does not work.
	var body []byte
	for i := 0; ; i++ {
		data, state, err := b.get(ctx, u, token)
		if err != nil {
			return nil, roundTripRow{}, err
		}
		if strings.EqualFold(state, "hit") {
			body = data
			break
		}
		if i == 20 {
			return nil, roundTripRow{}, fmt.Errorf("the warm users page answered X-Cache %q 20 times, want HIT", state)
		}
	}
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	bare, err := serveBackground(cctx, api.Ceiling("/unified/user-directory/users", body))
	if err != nil {
		return nil, roundTripRow{}, err
	}
	bareURL := bare + "/unified/user-directory/users?limit=100"
	var rows []loadRow
	for _, conc := range []int{1, 4, 32} {
		for _, t := range []struct{ name, url string }{{"gateway", u}, {"bare echo", bareURL}} {
			row, err := b.load(ctx, t.url, token, conc, b.sizes.loadFor, len(body))
			if err != nil {
				return nil, roundTripRow{}, err
			}
			row.Target = t.name
			rows = append(rows, row)
		}
	}

	rt := roundTripRow{Requests: b.sizes.rttSample}
	c0, p0 := r.hook.commands.Load(), r.hook.pipelines.Load()
	r.hook.startNaming()
	for range rt.Requests {
		_, state, err := b.get(ctx, u, token)
		if err != nil {
			return nil, rt, err
		}
		if !strings.EqualFold(state, "hit") {
			rt.NotHit++
		}
	}
	rt.Commands, rt.Pipelines = r.hook.commands.Load()-c0, r.hook.pipelines.Load()-p0
	rt.ByName = r.hook.stopNaming()
	rt.RoundTrips = rt.Commands + rt.Pipelines
	rt.PerRequest = float64(rt.RoundTrips) / float64(rt.Requests)
	return rows, rt, nil
}

// load runs a closed loop: conc workers each send GET u (keep-alive) back to back for d. An
// answer that is not 200 with wantLen bytes is an error.
func (b *bench) load(ctx context.Context, u, token string, conc int, d time.Duration, wantLen int) (loadRow, error) {
	lat := make([][]time.Duration, conc)
	var errs, notHit atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	deadline := start.Add(d)
	for w := range conc {
		wg.Go(func() {
			buf := bytes.NewBuffer(make([]byte, 0, wantLen+512))
			for time.Now().Before(deadline) && ctx.Err() == nil {
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
				req.Header.Set("Authorization", "Bearer "+token)
				t0 := time.Now()
				res, err := b.client.Do(req)
				if err != nil {
					errs.Add(1)
					continue
				}
				buf.Reset()
				_, err = buf.ReadFrom(res.Body)
				res.Body.Close()
				lat[w] = append(lat[w], time.Since(t0))
				if x := res.Header.Get("X-Cache"); x != "" && !strings.EqualFold(x, "hit") {
					notHit.Add(1)
				}
				if err != nil || res.StatusCode != http.StatusOK || buf.Len() != wantLen {
					errs.Add(1)
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	all := slices.Concat(lat...)
	if len(all) == 0 {
		return loadRow{}, fmt.Errorf("no request finished against %s", u)
	}
	return loadRow{Concurrency: conc, Requests: len(all), Errors: int(errs.Load()), NotHit: int(notHit.Load()),
		P50MS: ms(percentile(all, 0.50)), P99MS: ms(percentile(all, 0.99)), RPS: float64(len(all)) / elapsed.Seconds()}, nil
}

// percentile returns the p-quantile (nearest rank) of ds, sorting it.
func percentile(ds []time.Duration, p float64) time.Duration {
	slices.Sort(ds)
	i := int(math.Ceil(p*float64(len(ds)))) - 1
	return ds[min(max(i, 0), len(ds)-1)]
}

func ms(d time.Duration) float64 { return math.Round(float64(d)/float64(time.Microsecond)) / 1000 }

// proxyOverhead times GET /org/ through the gateway's /proxy and straight at the simulator,
// alternating so that both see the same machine, and reports the paired differences.
func (b *bench) proxyOverhead(ctx context.Context, r *benchReplica, acct string) (proxyRow, error) {
	token, err := b.minter.Mint("bench-crawl-100", time.Hour)
	if err != nil {
		return proxyRow{}, err
	}
	ptok, err := b.sim.IssueToken("demo-client", "admin@demo.example")
	if err != nil {
		return proxyRow{}, err
	}
	timed := func(u, auth string) (time.Duration, error) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		req.Header.Set("Authorization", auth)
		t0 := time.Now()
		res, err := b.client.Do(req)
		if err != nil {
			return 0, err
		}
		_, err = io.Copy(io.Discard, res.Body)
		res.Body.Close()
		d := time.Since(t0)
		if err == nil && res.StatusCode != http.StatusOK {
			err = fmt.Errorf("GET %s: status %d", req.URL.Path, res.StatusCode)
		}
		return d, err
	}
	proxyURL, directURL := r.url+"/proxy/"+url.PathEscape(acct)+"/org/", b.simURL+"/org/"
	// Warm both connections and the account's token lookup.
	for range 20 {
		if _, err := timed(proxyURL, "Bearer "+token); err != nil {
			return proxyRow{}, err
		}
		if _, err := timed(directURL, "OAuth2 "+ptok.AccessToken); err != nil {
			return proxyRow{}, err
		}
	}
	n := b.sizes.proxySample
	direct, proxied, diff := make([]time.Duration, n), make([]time.Duration, n), make([]time.Duration, n)
	for i := range n {
		if direct[i], err = timed(directURL, "OAuth2 "+ptok.AccessToken); err != nil {
			return proxyRow{}, err
		}
		if proxied[i], err = timed(proxyURL, "Bearer "+token); err != nil {
			return proxyRow{}, err
		}
		diff[i] = proxied[i] - direct[i]
	}
	return proxyRow{Samples: n,
		DirectP50MS: ms(percentile(direct, 0.5)), DirectP99MS: ms(percentile(direct, 0.99)),
		ProxyP50MS: ms(percentile(proxied, 0.5)), ProxyP99MS: ms(percentile(proxied, 0.99)),
		OverheadP50MS: ms(percentile(diff, 0.5)), OverheadP99MS: ms(percentile(diff, 0.99))}, nil
}

// memory runs the gateway as a child process ("dirgate serve", this executable) against a
// simulator holding memPeople people, crawls every user through it at limit 100, and reads the
// child's peak resident set (VmHWM) from /proc.
func (b *bench) memory(ctx context.Context) (memoryRow, error) {
	row := memoryRow{People: b.sizes.memPeople}
	sim := podiosim.New(podiosim.Config{Dataset: podiosim.Large(podiosim.LargeOptions{People: b.sizes.memPeople}), GeneralLimit: 1 << 30, RateLimitedLimit: 1 << 30})
	mctx, cancel := context.WithCancel(ctx)
	defer cancel()
	simURL, err := serveBackground(mctx, sim)
	if err != nil {
		return row, err
	}
	child, err := b.startServeChild(mctx, simURL)
	if err != nil {
		return row, err
	}
	defer child.stop()

	token, acct, err := b.link(ctx, child.url, "bench-memory")
	if err != nil {
		return row, err
	}
	sim.ResetCalls()
	if row.Items, _, err = b.crawl(ctx, usersURL(child.url, acct, 100), token); err != nil {
		return row, err
	}
	for _, c := range sim.Calls() {
		row.UpstreamCalls += c
	}
	kib, err := vmHWM(child.pid)
	if err != nil {
		return row, err
	}
	row.PeakRSSMiB = math.Round(float64(kib)/1024*10) / 10
	row.How = "VmHWM of a separate `dirgate serve` process (only the gateway; simulator and load generator are in the bench process), read after a full crawl at limit 100"
	return row, nil
}

// vmHWM reads the peak resident set size of process pid, in KiB.
func vmHWM(pid int) (int64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("peak RSS: %w", err)
	}
	for line := range strings.Lines(string(data)) {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			var kib int64
			if _, err := fmt.Sscan(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), &kib); err != nil {
				return 0, fmt.Errorf("peak RSS: %q: %w", line, err)
			}
			return kib, nil
		}
	}
	return 0, errors.New("peak RSS: no VmHWM in /proc status")
}

// machine describes where the bench runs.
func machine() benchMachine {
	m := benchMachine{Cores: runtime.NumCPU(), GOMAXPROCS: runtime.GOMAXPROCS(0), GoVersion: runtime.Version(),
		OS: runtime.GOOS + "/" + runtime.GOARCH, LoadStart: loadAvg()}
	if data, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.Lines(string(data)) {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
	}
	return m
}

// loadAvg is the 1, 5 and 15 minute load averages, or "" where /proc has none.
func loadAvg() string {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(data))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}

// redactedRedis is the Redis URL without its password.
func redactedRedis(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable)"
	}
	return u.Redacted()
}

// deletePrefix deletes every key under prefix.
func deletePrefix(ctx context.Context, rc redis.UniversalClient, prefix string) error {
	var cursor uint64
	for {
		keys, next, err := rc.Scan(ctx, cursor, prefix+"*", 1000).Result()
		if err != nil {
			return err
		}
		if len(keys) > 0 {
			if err := rc.Unlink(ctx, keys...).Err(); err != nil {
				return err
			}
		}
		if cursor = next; cursor == 0 {
			return nil
		}
	}
}

// startPrivateRedis starts redis-server on a free loopback port, without persistence, in a
// temporary directory, and waits until it answers. stop ends it and removes the directory.
func startPrivateRedis(ctx context.Context) (string, func(), error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return "", nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	dir, err := os.MkdirTemp("", "dirgate-bench-redis-")
	if err != nil {
		return "", nil, err
	}
	cmd := exec.Command(bin, "--bind", "127.0.0.1", "--port", strconv.Itoa(port), "--dir", dir,
		"--save", "", "--appendonly", "no", "--logfile", filepath.Join(dir, "redis.log"))
	if err := cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return "", nil, fmt.Errorf("starting redis-server: %w", err)
	}
	stop := func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		os.RemoveAll(dir)
	}
	u := fmt.Sprintf("redis://127.0.0.1:%d/0", port)
	rc := redis.NewClient(&redis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", port), MaxRetries: -1})
	defer rc.Close()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if rc.Ping(ctx).Err() == nil {
			return u, stop, nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			stop()
			return "", nil, errors.New("the private redis-server did not answer within 10 s")
		}
	}
}
