package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"pushbench/report"
	"pushbench/results"
)

// plotCmd is `pushbench plot DIR`: it redraws the charts, summary.md,
// summary.csv, bench.txt and index.html of a run folder from its saved
// results, without running anything, and prints where index.html is.
func plotCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("plot", flag.ContinueOnError)
	readme := fs.String("readme", "", "instead of redrawing, write the README's measured-figures block from DIR into this README file (between its reference-run markers); - prints it")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: pushbench plot [--readme FILE] DIR")
		fmt.Fprintln(fs.Output(), "Redraws the report of a run folder from its results.jsonl (or result.json) and run.json:")
		fmt.Fprintln(fs.Output(), "charts as PNG and SVG, summary.md, summary.csv, bench.txt, one .hgrm per cell and index.html.")
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args, stdout); err != nil {
		return err
	}
	switch fs.NArg() {
	case 0:
		return usagef("plot: missing DIR, the run folder to draw (e.g. results/latest)")
	case 1:
	default:
		return usagef("plot: one DIR expected, got %d arguments", fs.NArg())
	}
	dir := fs.Arg(0)
	if fi, err := os.Stat(dir); err != nil {
		return usagef("plot: %s", report.OneLine(err))
	} else if !fi.IsDir() {
		return usagef("plot: %s is not a folder", dir)
	}
	if *readme != "" {
		return writeReadme(*readme, dir, stdout)
	}
	// Check the input first, so that a wrong folder is a one-line usage
	// error rather than a half-written report.
	recs, err := results.ReadRunRecords(dir)
	if err != nil && !errors.Is(err, results.ErrTruncated) {
		return usagef("plot: %s", report.OneLine(err))
	}
	if len(recs) == 0 {
		return usagef("plot: %s: no records to draw", dir)
	}
	if err := ctx.Err(); err != nil {
		return err
	}

	err = report.Report(dir)
	index := filepath.Join(dir, report.IndexFile)
	if _, statErr := os.Stat(index); statErr == nil {
		fmt.Fprintln(stdout, index)
	}
	if err != nil {
		return fmt.Errorf("report of %s is incomplete: %s", dir, report.OneLine(err))
	}
	return nil
}

// writeReadme writes the README block generated from the run folder dir
// into the README at path, or to stdout for "-".
func writeReadme(path, dir string, stdout io.Writer) error {
	if err := report.UpdateReadme(path, dir, stdout); err != nil {
		return usagef("plot: --readme: %s", report.OneLine(err))
	}
	return nil
}
