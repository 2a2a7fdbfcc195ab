package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"math"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"pushbench/bench"
	"pushbench/browser"
	"pushbench/capacity"
	"pushbench/compare"
	"pushbench/netem"
	"pushbench/proc"
)

// compareCmd is `pushbench compare`: a scenario matrix across transports,
// run cell by cell against a fresh server child each, written to a run
// folder with its report.
func compareCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if handled, err := compareCapacity(ctx, args, stdout, stderr); handled {
		return err
	}
	c, err := parseCompare(args, stdout)
	if err != nil {
		return err
	}
	if c.DryRun {
		c.PrintPlan(stdout, c.Estimate())
		return nil
	}
	return c.Run(ctx, stdout, stderr)
}

// parseCompare parses the flags, builds and validates the plan and checks
// the output folder, all before any load.
func parseCompare(args []string, stdout io.Writer) (*compare.Comparison, error) {
	ps := compare.Presets()
	def, quickP := ps["default"], ps["quick"]
	fs := flag.NewFlagSet("compare", flag.ContinueOnError)
	quick := fs.Bool("quick", false, "the quick preset: the same shape, tiny (under 90 s; used by CI); --preset quick")
	preset := fs.String("preset", "default", "preset: "+strings.Join(slices.Sorted(maps.Keys(ps)), ", ")+" (networks: every transport over every network profile, ~10 min; overhead: Kaazing's table measured, ~4 min; chat, game: client-originated traffic, ~4 min each; browser: Go clients against Chromium pages, ~7 min; capacity: every transport to its edge, ≤ 20 min, takes --out, --transports and --dry-run only)")
	network := netem.AddFlags(fs)
	httpFlags := compare.AddHTTPFlags(fs)
	workFlags := compare.AddWorkloadFlags(fs)
	clientFlags := compare.AddClientFlags(fs)
	agentFlags := bench.AddAgentFlags(fs)
	networks := fs.String("networks", "", "network profiles, comma-separated, each a dimension of the matrix (preset: loopback; networks: "+strings.Join(compare.NetworkNames(ps["networks"].Networks), ",")+")")
	transports := fs.String("transports", "", "transports, comma-separated (preset: "+strings.Join(def.Transports, ",")+")")
	clientsL := fs.String("clients", "", "client counts of the clients sweep (preset: "+compare.JoinInts(def.Clients)+"; quick "+compare.JoinInts(quickP.Clients)+")")
	rates := fs.String("rates", "", "events/s of the rate sweep (preset: "+compare.JoinFloats(def.Rates)+"; quick "+compare.JoinFloats(quickP.Rates)+")")
	payloads := fs.String("payloads", "", "payload sizes in bytes (preset: "+compare.JoinInts(def.Payloads)+")")
	intervals := fs.String("intervals", "", "short-poll intervals, one variant each (preset: "+compare.JoinDurations(def.Intervals)+")")
	duration := fs.Duration("duration", 0, fmt.Sprintf("base measured window (preset: %v; quick %v)", def.Duration, quickP.Duration))
	minEvents := fs.Int("min-events", 0, fmt.Sprintf("stretch the window at low rates to hold this many events per client (preset: %d; quick %d; 0: no stretch)", def.MinEvents, quickP.MinEvents))
	warmup := fs.Duration("warmup", 0, fmt.Sprintf("warm-up before each window (preset: %v; quick %v)", def.Warmup, quickP.Warmup))
	hold := fs.Duration("hold", 0, "long-poll hold timeout of the server (0: the server's default)")
	connectRate := fs.Float64("connect-rate", def.ConnectRate, "new subscriptions per second in each cell's connect phase")
	repeat := fs.Int("repeat", 1, "run the whole matrix this many times (repeats of a cell are summarised by their median)")
	pin := fs.Bool("pin", false, "pin each server child and the load generator to disjoint CPU sets")
	dryRun := fs.Bool("dry-run", false, "print the planned cells and the time estimate, run nothing")
	out := fs.String("out", "", "output folder, new or empty (default results/runs/<UTC stamp>, with results/latest pointing at it)")
	fs.Usage = func() {
		w := fs.Output()
		compare.Usage(w)
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args, stdout); err != nil {
		return nil, err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })

	p, ok := ps[*preset]
	if !ok {
		return nil, usagef("compare: --preset %q: unknown (want %s)", *preset, strings.Join(slices.Sorted(slices.Values(append(slices.Collect(maps.Keys(ps)), capacity.Preset))), ", "))
	}
	if *quick {
		if *preset != "default" {
			return nil, usagef("compare: --quick is --preset quick; give one of them")
		}
		p = quickP
	}
	var err error
	if *networks != "" {
		if p.Networks, err = compare.ParseList("networks", *networks, netem.Lookup); err != nil {
			return nil, usagef("compare: %v", err)
		}
	}
	if set["network"] || set["rtt"] || set["jitter"] || set["down-bandwidth"] || set["up-bandwidth"] {
		if *networks != "" {
			return nil, usagef("compare: --networks lists profiles; --network with --rtt, --jitter and the bandwidths gives one, not both")
		}
		nw, err := network()
		if err != nil {
			return nil, usagef("compare: %v", err)
		}
		p.Networks = []netem.Profile{nw}
	}
	if *transports != "" {
		if p.Transports, err = compare.ParseTransports("transports", *transports); err != nil {
			return nil, usagef("compare: %v", err)
		}
	}
	if *clientsL != "" {
		if p.Clients, err = compare.ParseList("clients", *clientsL, strconv.Atoi); err != nil {
			return nil, usagef("compare: %v", err)
		}
	}
	if *rates != "" {
		if p.Rates, err = compare.ParseList("rates", *rates, func(s string) (float64, error) { return strconv.ParseFloat(s, 64) }); err != nil {
			return nil, usagef("compare: %v", err)
		}
	}
	if *payloads != "" {
		if p.Payloads, err = compare.ParseList("payloads", *payloads, strconv.Atoi); err != nil {
			return nil, usagef("compare: %v", err)
		}
	}
	if *intervals != "" {
		if p.Intervals, err = compare.ParseList("intervals", *intervals, time.ParseDuration); err != nil {
			return nil, usagef("compare: %v", err)
		}
		for _, iv := range p.Intervals {
			if iv <= 0 {
				return nil, usagef("compare: --intervals: %v: a poll interval must be positive", iv)
			}
		}
	}
	if set["duration"] {
		if *duration <= 0 {
			return nil, usagef("compare: --duration %v: the measured window must be positive", *duration)
		}
		p.Duration = *duration
	}
	if set["min-events"] {
		if *minEvents < 0 {
			return nil, usagef("compare: --min-events %d: must not be negative", *minEvents)
		}
		p.MinEvents = *minEvents
	}
	if set["warmup"] {
		if *warmup < 0 {
			return nil, usagef("compare: --warmup %v: must not be negative", *warmup)
		}
		p.Warmup = *warmup
	}
	if *hold < 0 {
		return nil, usagef("compare: --hold %v: must not be negative", *hold)
	}
	p.Hold = *hold
	if !(*connectRate > 0) || math.IsInf(*connectRate, 0) {
		return nil, usagef("compare: --connect-rate %v: must be a positive number of connections per second", *connectRate)
	}
	p.ConnectRate = *connectRate
	if *repeat < 1 {
		return nil, usagef("compare: --repeat %d: need at least one pass", *repeat)
	}
	p.Repeat = *repeat
	httpSet, err := httpFlags.Apply(&p)
	if err != nil {
		return nil, usageError{err}
	}
	workSet, err := workFlags.Apply(&p)
	if err != nil {
		return nil, usageError{err}
	}
	clientSet, err := clientFlags.Apply(&p)
	if err != nil {
		return nil, usageError{err}
	}
	if slices.Contains(p.ClientKinds, bench.ClientBrowser) {
		if _, err := browser.FindChromium(""); err != nil {
			return nil, usageError{fmt.Errorf("compare: --client browser: %w", err)}
		}
	}
	if httpSet || workSet || clientSet || set["networks"] || set["network"] || set["rtt"] || set["jitter"] || set["down-bandwidth"] || set["up-bandwidth"] || set["transports"] || set["clients"] || set["rates"] || set["payloads"] || set["intervals"] ||
		set["duration"] || set["min-events"] || set["warmup"] || set["hold"] || set["connect-rate"] || set["repeat"] {
		p.Name += " (with overrides)"
	}

	c := &compare.Comparison{P: p, Cells: p.Plan(), Pin: *pin, Command: append([]string{"pushbench", "compare"}, args...)}
	if c.Agents, err = agentFlags(); err != nil {
		return nil, usagef("compare: %v", err)
	}
	for _, cell := range c.Cells {
		if err := errors.Join(cell.S.Validate(), c.Agents.CheckCell(cell.S)); err != nil {
			return nil, usagef("compare: cell %s: %s", cell.Name(), strings.TrimPrefix(err.Error(), bench.ErrScenario.Error()+": "))
		}
	}
	if len(c.Agents.Agents) == 0 {
		err = proc.CheckLimits(slices.Max(p.Clients))
	} else if err = proc.CheckLimits(c.Agents.LocalShare); err == nil {
		err = c.Agents.Check(context.Background(), slices.Max(p.Clients))
	}
	if err != nil {
		return nil, usageError{fmt.Errorf("compare: %w", err)}
	}

	c.Out = *out
	if c.Out == "" {
		c.Out = filepath.Join("results", "runs", time.Now().UTC().Format("20060102T150405Z"))
		c.LinkDir = true
	}
	c.DryRun = *dryRun
	if err := compare.CheckEmptyDir(c.Out); err != nil && !c.DryRun {
		return nil, usageError{fmt.Errorf("compare: --out %w", err)}
	}
	return c, nil
}
