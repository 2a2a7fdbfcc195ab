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

var updateReadme = flag.Bool("update", false, "rewrite README.md's reference block from docs/reference")

// TestReadmeMatchesReference: the README's measured figures are exactly
// what `pushbench plot --readme README.md docs/reference` generates from
// the committed reference run, so they cannot drift from it.
func TestReadmeMatchesReference(t *testing.T) {
	root := filepath.Join("..", "..")
	readmePath := filepath.Join(root, "README.md")
	if *updateReadme {
		var out bytes.Buffer
		if err := plotCmd(t.Context(), []string{"--readme", readmePath, filepath.Join(root, "docs", "reference")}, &out, &out); err != nil {
			t.Fatal(err)
		}
	}
	section, err := report.ReadmeSection(filepath.Join(root, "docs", "reference"), "docs/reference")
	if err != nil {
		t.Fatalf("the reference run: %v", err)
	}
	readme, err := os.ReadFile(readmePath)
	if err != nil {
		t.Fatal(err)
	}
	want, err := report.ReplaceReadmeSection(string(readme), section)
	if err != nil {
		t.Fatal(err)
	}
	if string(readme) != want {
		got := string(readme)
		i := 0
		for i < len(got) && i < len(want) && got[i] == want[i] {
			i++
		}
		line := strings.Count(got[:i], "\n") + 1
		t.Errorf("README.md line %d differs from the reference run; regenerate with `go run ./cmd/pushbench plot --readme README.md docs/reference` (or this test with -update)", line)
	}
	for _, chart := range []string{"latency-percentiles.png", "bytes-per-event.png"} {
		if _, err := os.Stat(filepath.Join(root, "docs", "reference", chart)); err != nil {
			t.Errorf("the README shows docs/reference/%s: %v", chart, err)
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
