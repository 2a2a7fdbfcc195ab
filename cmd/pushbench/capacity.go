package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"pushbench/capacity"
	"pushbench/compare"
	"pushbench/proc"
	"pushbench/results"
)

// capacityCmd is `pushbench capacity`: how many clients (or events/s) each
// transport holds under a latency objective, to the machine's ceiling.
func capacityCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("capacity", flag.ContinueOnError)
	build := capacity.AddFlags(fs)
	out := fs.String("out", "", "output folder (default results/runs/<stamp>-capacity)")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: pushbench capacity --transport T [flags]")
		fmt.Fprintln(fs.Output(), "Steps the clients up (doubling, then bisecting) until a step misses the objective; writes capacity.json, results.jsonl and a report.")
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args, stdout); err != nil {
		return err
	}
	cfg, err := build()
	if err != nil {
		return usagef("capacity: %s", strings.TrimPrefix(err.Error(), capacity.ErrUsage.Error()+": "))
	}
	return runCapacity(ctx, cfg, *out, append([]string{"pushbench", "capacity"}, args...), stdout, stderr)
}

// runCapacity runs a capacity search into out (a fresh folder).
func runCapacity(ctx context.Context, cfg capacity.Config, out string, command []string, stdout, stderr io.Writer) error {
	if out == "" {
		out = filepath.Join("results", "runs", time.Now().UTC().Format("20060102T150405Z")+"-capacity")
	}
	if err := compare.CheckEmptyDir(out); err != nil {
		return usageError{fmt.Errorf("capacity: --out %w", err)}
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	logf, err := os.Create(filepath.Join(out, compare.ServerLogFile))
	if err != nil {
		return err
	}
	defer logf.Close()
	cfg.Out, cfg.Command, cfg.Log = out, command, &proc.SyncWriter{W: stderr}
	cfg.ServerLog = logf
	c, runErr := capacity.Run(ctx, cfg)
	if c != nil {
		for _, t := range c.Transports {
			fmt.Fprintf(stdout, "%s: %s\n", t.Transport, t.Summary)
		}
		fmt.Fprintf(stdout, "pushbench capacity: wrote %s\n", filepath.Join(out, results.CapacityFile))
	}
	return runErr
}

// compareCapacity runs `pushbench compare --preset capacity` (with --out,
// --transports and --dry-run) as a capacity search; handled is false for
// any other preset.
func compareCapacity(ctx context.Context, args []string, stdout, stderr io.Writer) (handled bool, err error) {
	isCap := false
	for i, a := range args {
		v, ok := strings.CutPrefix(strings.TrimLeft(a, "-"), "preset=")
		if !ok && (a == "--preset" || a == "-preset") && i+1 < len(args) {
			v, ok = args[i+1], true
		}
		isCap = isCap || (ok && v == capacity.Preset)
	}
	if !isCap {
		return false, nil
	}
	fs := flag.NewFlagSet("compare", flag.ContinueOnError)
	fs.String("preset", "", "")
	out := fs.String("out", "", "output folder")
	trs := fs.String("transports", "", "transports, comma-separated")
	dry := fs.Bool("dry-run", false, "print the search and its bound, run nothing")
	if err := parseFlags(fs, args, stdout); err != nil {
		return true, usagef("compare --preset capacity takes --out, --transports and --dry-run only: %v", err)
	}
	cfg := capacity.PresetConfig()
	if *trs != "" {
		if cfg.Transports, err = compare.ParseTransports(*trs); err != nil {
			return true, usageError{err}
		}
	}
	if *dry {
		ceiling, why, err := proc.Ceiling()
		if err != nil {
			return true, err
		}
		fmt.Fprintf(stdout, "pushbench compare --preset capacity: %s; each of %s from %d clients, doubling to the first failure or the ceiling (%d: %s), then bisecting to 5%%\n",
			cfg.Objective, strings.Join(cfg.Transports, ", "), cfg.Min, ceiling, why)
		return true, nil
	}
	return true, runCapacity(ctx, cfg, *out, append([]string{"pushbench", "compare"}, args...), stdout, stderr)
}
