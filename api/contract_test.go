package api_test

import (
	"flag"
	"fmt"
	"os"
	"slices"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/dirgate/dirgate"
	"github.com/dirgate/dirgate/internal/redistest"
)

// exercised records every openapi.yaml operation some test's response was validated against.
var exercised = &operationSet{seen: map[string]bool{}}

type operationSet struct {
	mu   sync.Mutex
	seen map[string]bool
}

func (s *operationSet) record(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seen[id] = true
}

func (s *operationSet) missing(doc *openapi3.T) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			if !s.seen[op.OperationID] {
				out = append(out, fmt.Sprintf("%s %s (%s)", method, path, op.OperationID))
			}
		}
	}
	slices.Sort(out)
	return out
}

// TestMain runs the package's tests and then the contract check: every response was validated
// against openapi.yaml as it arrived (see validating), and here every operation the document
// describes must have been exercised by some test. The check applies to full runs only (no -run,
// -skip or -short), and needs Redis, since most tests do.
func TestMain(m *testing.M) {
	flag.Parse()
	code := m.Run()
	full := flag.Lookup("test.run").Value.String() == "" && flag.Lookup("test.skip").Value.String() == "" && !testing.Short()
	if code == 0 && full && (redistest.Reachable() || redistest.InCI()) {
		doc, err := openapi3.NewLoader().LoadFromData(dirgate.OpenAPI)
		if err != nil {
			fmt.Fprintln(os.Stderr, "contract: openapi.yaml:", err)
			os.Exit(1)
		}
		if missing := exercised.missing(doc); len(missing) > 0 {
			fmt.Fprintln(os.Stderr, "contract: no test exercised these openapi.yaml operations:")
			for _, m := range missing {
				fmt.Fprintln(os.Stderr, "  ", m)
			}
			code = 1
		}
	}
	os.Exit(code)
}
