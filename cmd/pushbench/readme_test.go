package main

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"pushbench/report"
)

var updateReadme = flag.Bool("update", false, "rewrite README.md's generated blocks from docs/reference, docs/reference-overhead, docs/reference-browser, docs/reference-capacity and docs/reference-agents")

// TestReadmeMatchesReference: the README's measured figures are exactly
// what `pushbench plot --readme README.md DIR` generates from the committed
// reference runs — the default comparison in docs/reference and the
// overhead preset in docs/reference-overhead — so they cannot drift from
// them.
func TestReadmeMatchesReference(t *testing.T) {
	root := filepath.Join("..", "..")
	readmePath := filepath.Join(root, "README.md")
	for _, ref := range []struct {
		dir    string
		charts []string
	}{
		{"reference", []string{"latency-percentiles.png", "bytes-per-event.png"}},
		{"reference-overhead", nil},
		{"reference-browser", nil},
		{"reference-capacity", []string{"capacity.png"}},
		{"reference-agents", nil},
	} {
		dir := filepath.Join(root, "docs", ref.dir)
		if *updateReadme {
			var out bytes.Buffer
			if err := plotCmd(t.Context(), []string{"--readme", readmePath, dir}, &out, &out); err != nil {
				t.Fatal(err)
			}
		}
		readme, err := os.ReadFile(readmePath)
		if err != nil {
			t.Fatal(err)
		}
		want, err := report.ReadmeBlock(string(readme), dir, "docs/"+ref.dir)
		if err != nil {
			t.Fatalf("docs/%s: %v", ref.dir, err)
		}
		if string(readme) != want {
			got := string(readme)
			i := 0
			for i < len(got) && i < len(want) && got[i] == want[i] {
				i++
			}
			line := strings.Count(got[:i], "\n") + 1
			t.Errorf("README.md line %d differs from the run in docs/%s; regenerate with `go run ./cmd/pushbench plot --readme README.md docs/%s` (or this test with -update)", line, ref.dir, ref.dir)
		}
		for _, chart := range ref.charts {
			if _, err := os.Stat(filepath.Join(dir, chart)); err != nil {
				t.Errorf("the README shows docs/%s/%s: %v", ref.dir, chart, err)
			}
		}
	}
}

// TestCLIStaysThin: the CLI only parses flags and calls packages; the
// logic lives in those (design.md section 1). 700 non-test lines is the
// budget.
func TestCLIStaysThin(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	lines := 0
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		lines += bytes.Count(b, []byte("\n"))
	}
	if lines >= 700 {
		t.Errorf("cmd/pushbench has %d non-test lines, the budget is under 700: move logic into a package", lines)
	}
}
