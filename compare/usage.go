package compare

import (
	"fmt"
	"io"

	"pushbench/transport"
)

// Usage writes what `pushbench compare --help` says before its flags.
func Usage(w io.Writer) {
	fmt.Fprintln(w, "usage: pushbench compare [--quick] [flags] [--out DIR]")
	fmt.Fprintf(w, "Transports:\n%s", transport.Usage())
	fmt.Fprintln(w, "Runs a scenario matrix across transports, one cell at a time, each against its own server")
	fmt.Fprintln(w, "child, and writes results.jsonl, run.json and the report (summary.md, summary.csv, bench.txt,")
	fmt.Fprintln(w, "charts, index.html) into the output folder.")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "The matrix is a star, not a full cross product: a clients sweep at the centre rate (10/s if")
	fmt.Fprintln(w, "listed, else the middle rate) and the smallest payload, and every rate × every payload at the")
	fmt.Fprintln(w, "centre client count (100 if listed, else the middle count; quick: 10). Every transport runs at")
	fmt.Fprintln(w, "every point, short polling once per interval. A list flag replaces the preset's list.")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Each cell's window is --duration, stretched to hold --min-events events per client at low")
	fmt.Fprintln(w, "rates and rounded up to whole event intervals and whole short-poll intervals; its warm-up is")
	fmt.Fprintln(w, "--warmup rounded up to whole event intervals (at least one). Both keep the counted span of")
	fmt.Fprintln(w, "bytes, requests and CPU equal to the window. --dry-run shows the resulting plan.")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "With --agents (and --agents-file, --local-share) every cell's clients are split over")
	fmt.Fprintln(w, "load-generator agents (pushbench agent), each a process with its own open-files budget; with")
	fmt.Fprintln(w, "--server-host IP each cell's server child listens where agents on other hosts reach it. The")
	fmt.Fprintln(w, "cells' records are the exact merge of their shares (docs/agents.md).")
	fmt.Fprintln(w)
}
