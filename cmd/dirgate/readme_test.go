package main

import (
	"flag"
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/dirgate/dirgate/internal/config"
)

var update = flag.Bool("update", false, "rewrite generated README sections")

// configTable renders the serve configuration as a Markdown table, from config.Vars().
func configTable() string {
	var b strings.Builder
	b.WriteString("| variable | default | meaning |\n|---|---|---|\n")
	for _, v := range config.Vars() {
		def := "(unset)"
		if v.Default != "" {
			def = "`" + v.Default + "`"
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s |\n", v.Name, def, strings.ReplaceAll(v.Doc, "|", `\|`))
	}
	return b.String()
}

var configTableRE = regexp.MustCompile(`(?s)<!-- config-table:start -->\n.*<!-- config-table:end -->`)

// TestREADMEConfigTable keeps README's configuration table equal to the configuration the code
// reads. Run with -update to rewrite it.
func TestREADMEConfigTable(t *testing.T) {
	const path = "../../README.md"
	readme, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	want := "<!-- config-table:start -->\n" + configTable() + "<!-- config-table:end -->"
	got := configTableRE.Find(readme)
	if got == nil {
		t.Fatal("README.md has no config-table markers")
	}
	if string(got) == want {
		return
	}
	if *update {
		if err := os.WriteFile(path, configTableRE.ReplaceAll(readme, []byte(want)), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Errorf("README.md's configuration table is out of date; run: go test ./cmd/dirgate -run TestREADMEConfigTable -update")
}
