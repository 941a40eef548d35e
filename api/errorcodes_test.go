package api_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/dirgate/dirgate"
)

// Every error code the API can answer is named in openapi.yaml's Error schema, so a caller
// reading the spec knows what to handle.
func TestErrorCodesDocumented(t *testing.T) {
	t.Parallel()
	doc, err := openapi3.NewLoader().LoadFromData(dirgate.OpenAPI)
	if err != nil {
		t.Fatal(err)
	}
	desc := doc.Components.Schemas["Error"].Value.Properties["error"].Value.Properties["code"].Value.Description
	files, _ := filepath.Glob("*.go")
	used := regexp.MustCompile(`(?:Code: |newError\(http\.Status[A-Za-z]+, )"([a-z_]+)"`)
	// limitError makes its codes from store.LimitError's What.
	codes := []string{"too_many_link_tokens", "too_many_picker_sessions"}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range used.FindAllSubmatch(b, -1) {
			codes = append(codes, string(m[1]))
		}
	}
	if len(codes) < 30 {
		t.Fatalf("found only %d codes in the sources; the pattern no longer matches how errors are made", len(codes))
	}
	for _, c := range codes {
		if !strings.Contains(desc, "`"+c+"`") {
			t.Errorf("error code %s is not in the Error schema's code description", c)
		}
	}
}
