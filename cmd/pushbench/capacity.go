package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"pushbench/capacity"
)

// capacityCmd is `pushbench capacity`: how many clients (or events/s) each
// transport holds under a latency objective, to the machine's ceiling.
func capacityCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("capacity", flag.ContinueOnError)
	build := capacity.AddFlags(fs)
	out := fs.String("out", "", "output folder, new or empty (default results/runs/<stamp>-capacity)")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: pushbench capacity --transport T [flags]")
		fmt.Fprintln(fs.Output(), "Steps the clients up (doubling, then bisecting) until a step misses the objective; writes capacity.json, results.jsonl and a report.")
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args, stdout); err != nil {
		return err
	}
	cfg, err := build()
	if err == nil {
		err = capacity.Execute(ctx, cfg, *out, append([]string{"pushbench", "capacity"}, args...), stdout, stderr)
	}
	return capacityErr("capacity", err)
}

// compareCapacity runs `pushbench compare --preset capacity` (with --out,
// --transports and --dry-run) as a capacity search; handled is false for
// any other preset.
func compareCapacity(ctx context.Context, args []string, stdout, stderr io.Writer) (handled bool, err error) {
	if !capacity.IsPreset(args) {
		return false, nil
	}
	fs := flag.NewFlagSet("compare", flag.ContinueOnError)
	build, out, dry := capacity.PresetFlags(fs)
	if err := parseFlags(fs, args, stdout); err != nil {
		return true, usagef("compare --preset capacity takes --out, --transports and --dry-run only: %v", err)
	}
	cfg, err := build()
	switch {
	case err != nil:
	case *dry:
		err = capacity.DryRun(stdout, cfg)
	default:
		err = capacity.Execute(ctx, cfg, *out, append([]string{"pushbench", "compare"}, args...), stdout, stderr)
	}
	return true, capacityErr("compare", err)
}

// capacityErr makes a capacity.ErrUsage a usage error (one line, exit 2).
func capacityErr(cmd string, err error) error {
	if errors.Is(err, capacity.ErrUsage) {
		return usagef("%s: %s", cmd, strings.TrimPrefix(err.Error(), capacity.ErrUsage.Error()+": "))
	}
	return err
}
