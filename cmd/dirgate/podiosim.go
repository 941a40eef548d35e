package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"github.com/dirgate/dirgate/adapters/podio/podiosim"
)

// runPodioSim implements "dirgate podio-sim": the simulator as a standalone HTTP server.
func runPodioSim(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("podio-sim", "Serves the in-memory Podio API simulator (API, OAuth pages and the /_sim/ control API).", stderr)
	addr := fs.String("addr", "127.0.0.1:8081", "listen address")
	dataset := fs.String("dataset", "demo", "dataset preset: demo or large")
	seed := fs.Int64("seed", 1, "seed of the large dataset generator")
	orgs := fs.Int("orgs", 1, "organizations in the large dataset")
	spaces := fs.Int("spaces", 200, "spaces in the large dataset")
	people := fs.Int("people", 20000, "people in the large dataset")
	accessTTL := fs.Duration("access-token-ttl", 8*time.Hour, "access token lifetime")
	noRotation := fs.Bool("no-refresh-rotation", false, "keep refresh tokens valid after use (default: rotate)")
	generalLimit := fs.Int("general-limit", 1000, "calls per hour per (user, client) for general operations")
	rateLimitedLimit := fs.Int("rate-limited-limit", 250, "calls per hour per (user, client) for rate-limited operations")
	var rateLimited stringList
	fs.Var(&rateLimited, "rate-limited-route", `route in the "rate limited" class, e.g. "GET /org/{org_id}/member/" (repeatable)`)
	retryAfter := fs.Bool("retry-after", false, "send a Retry-After header with 420 responses (real Podio documents none)")
	maxPage := fs.Int("max-page-size", 100, "largest limit honoured by paged lists")
	strict := fs.Bool("strict-slashes", false, `answer 404 for "/user" and "/org" without their trailing slash`)
	var faults stringList
	fs.Var(&faults, "fault", `fault to install at start-up, as JSON, e.g. '{"route":"*","latency_ms":50}' (repeatable)`)
	if err := parseFlags(fs, args); err != nil {
		return err
	}

	var ds *podiosim.Dataset
	switch *dataset {
	case "large":
		ds = podiosim.Large(podiosim.LargeOptions{Seed: *seed, Orgs: *orgs, Spaces: *spaces, People: *people})
	default:
		var err error
		if ds, err = podiosim.DatasetByName(*dataset); err != nil {
			return usageError{err}
		}
	}
	cfg := podiosim.Config{
		Dataset:                ds,
		AccessTokenTTL:         *accessTTL,
		DisableRefreshRotation: *noRotation,
		GeneralLimit:           *generalLimit,
		RateLimitedLimit:       *rateLimitedLimit,
		RateLimitedRoutes:      rateLimited,
		RetryAfterHeader:       *retryAfter,
		MaxPageSize:            *maxPage,
		StrictSlashes:          *strict,
	}
	sim := podiosim.New(cfg)
	for _, raw := range faults {
		var f podiosim.Fault
		dec := json.NewDecoder(strings.NewReader(raw))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&f); err != nil {
			return usageError{fmt.Errorf("--fault %q: %w", raw, err)}
		}
		if err := sim.AddFault(f); err != nil {
			return usageError{fmt.Errorf("--fault %q: %w", raw, err)}
		}
	}

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	base := "http://" + ln.Addr().String()
	fmt.Fprintf(stdout, "Podio simulator (dataset %s) listening on %s\n", *dataset, base)
	fmt.Fprintf(stdout, "  OAuth client: demo-client / demo-secret; people: admin@demo.example / demo (org admin), member@demo.example / demo\n")
	fmt.Fprintf(stdout, "  try: curl -s -d grant_type=password -d client_id=demo-client -d client_secret=demo-secret -d username=admin@demo.example -d password=demo %s/oauth/token\n", base)
	fmt.Fprintf(stdout, "  control API: %s/_sim/routes, %s/_sim/state, %s/_sim/calls\n", base, base, base)
	return serveHTTP(ctx, ln, sim, nil, 5*time.Second, defaultLimits())
}

// stringList is a repeatable string flag.
type stringList []string

func (l *stringList) String() string     { return strings.Join(*l, ", ") }
func (l *stringList) Set(v string) error { *l = append(*l, v); return nil }

var _ flag.Value = (*stringList)(nil)
