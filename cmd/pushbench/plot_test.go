package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"pushbench/report"
	"pushbench/results"
)

func TestPlotCmdUsageErrors(t *testing.T) {
	t.Parallel()
	empty := t.TempDir()
	notDir := filepath.Join(empty, "file.txt")
	os.WriteFile(notDir, []byte("x"), 0o644)
	blank := t.TempDir()
	os.WriteFile(filepath.Join(blank, results.RecordsFile), nil, 0o644)
	corrupt := t.TempDir()
	os.WriteFile(filepath.Join(corrupt, results.RecordsFile), []byte("{not json\n"), 0o644)

	cases := []struct {
		name string
		args []string
		want string
	}{
		{"no DIR", nil, "missing DIR"},
		{"two DIRs", []string{empty, empty}, "one DIR expected"},
		{"missing DIR", []string{filepath.Join(empty, "nope")}, "no such file or directory"},
		{"not a folder", []string{notDir}, "is not a folder"},
		{"no results", []string{empty}, "no results.jsonl or result.json"},
		{"no records", []string{blank}, "no records"},
		{"corrupt records", []string{corrupt}, "record 1"},
		{"bad flag", []string{"--nope", empty}, "flag provided but not defined"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			var stdout, stderr bytes.Buffer
			err := plotCmd(context.Background(), c.args, &stdout, &stderr)
			if !errors.As(err, new(usageError)) {
				t.Fatalf("plotCmd(%q) = %v, want a usage error", c.args, err)
			}
			if msg := err.Error(); !strings.Contains(msg, c.want) || strings.Contains(msg, "\n") {
				t.Errorf("error %q: want one line mentioning %q", msg, c.want)
			}
			if stdout.Len() != 0 {
				t.Errorf("stdout = %q, want nothing", stdout.String())
			}
		})
	}
}

func TestPlotCmdHelp(t *testing.T) {
	t.Parallel()
	var stdout bytes.Buffer
	err := plotCmd(context.Background(), []string{"--help"}, &stdout, &bytes.Buffer{})
	if !errors.Is(err, flag.ErrHelp) || !strings.Contains(stdout.String(), "usage: pushbench plot [--readme FILE] DIR") {
		t.Errorf("--help: err %v, stdout %q", err, stdout.String())
	}
}

// TestPlotCmd draws the report of the comparison fixture of package results.
func TestPlotCmd(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	src := filepath.Join("..", "..", "report", "testdata", "compare")
	for _, name := range []string{results.RecordsFile, results.RunInfoFile} {
		data, err := os.ReadFile(filepath.Join(src, name))
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(dir, name), data, 0o644)
	}
	var stdout, stderr bytes.Buffer
	if err := plotCmd(context.Background(), []string{dir}, &stdout, &stderr); err != nil {
		t.Fatalf("plotCmd: %v (stderr %q)", err, stderr.String())
	}
	index := filepath.Join(dir, report.IndexFile)
	if got := strings.TrimSpace(stdout.String()); got != index {
		t.Errorf("stdout = %q, want the path of index.html %q", got, index)
	}
	for _, name := range []string{report.IndexFile, report.SummaryMarkdownFile, report.SummaryCSVFile,
		report.BenchTextFile, "latency-percentiles.png", "latency-percentiles.svg", "bytes-per-event.png"} {
		if fi, err := os.Stat(filepath.Join(dir, name)); err != nil || fi.Size() == 0 {
			t.Errorf("%s: missing or empty (%v)", name, err)
		}
	}
}
