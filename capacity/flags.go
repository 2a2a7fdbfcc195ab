package capacity

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"pushbench/bench"
	"pushbench/compare"
	"pushbench/proc"
	"pushbench/results"
	"pushbench/transport"
)

// ErrUsage marks bad flags: one line, exit 2.
var ErrUsage = errors.New("usage")

// AddFlags defines `pushbench capacity`'s flags on fs; after parsing, the
// returned function builds the Config (Out, Command and the launcher are
// the caller's), or a one-line error wrapping ErrUsage.
func AddFlags(fs *flag.FlagSet) func() (Config, error) {
	def := bench.DefaultScenario()
	tr := fs.String("transport", "", "the transport to search (or --transports)")
	trs := fs.String("transports", "", "transports to search, comma-separated, one search each (default: --transport)")
	dim := fs.String("dimension", DimClients, "what to search: clients (at --rate) or rate (events/s at --clients)")
	p99 := fs.Duration("slo-p99", 100*time.Millisecond, "objective: a step passes when its p99 is at most this (and nothing is lost, and the sound checks pass)")
	p50 := fs.Duration("slo-p50", 0, "objective on p50 too (0: none)")
	rate := fs.Float64("rate", 1, "events per second (clients dimension)")
	clients := fs.Int("clients", 100, "clients (rate dimension)")
	payload := fs.Int("payload", 64, "bytes per event")
	minV := fs.Int("min-clients", 0, "first step (default: 100 clients, or 10 events/s)")
	maxV := fs.Int("max-clients", 0, "last step (default and limit: the machine's ceiling, or the publisher's limit for rate)")
	growth := fs.Float64("growth", 2, "geometric step before the first failure")
	duration := fs.Duration("duration", 10*time.Second, "each step's measured window")
	warmup := fs.Duration("warmup", time.Second, "each step's warm-up")
	interval := fs.Duration("interval", def.Interval, "short-polling interval")
	connectRate := fs.Float64("connect-rate", def.ConnectRate, "new subscriptions per second in each step's connect phase")
	return func() (Config, error) {
		bad := func(format string, args ...any) (Config, error) {
			return Config{}, fmt.Errorf("%w: %s", ErrUsage, fmt.Sprintf(format, args...))
		}
		switch {
		case *trs != "" && *tr != "":
			return bad("give --transport or --transports, not both")
		case *trs == "" && *tr == "":
			return bad("--transport T or --transports a,b: what to search (%s)", transport.List())
		}
		// Trimmed, checked, without duplicates, in the registry's order.
		flag := "transports"
		if *tr != "" {
			flag = "transport"
		}
		names, err := compare.ParseTransports(flag, *trs+*tr)
		if err != nil {
			return bad("%v", err)
		}
		switch {
		case *dim != DimClients && *dim != DimRate:
			return bad("--dimension %q: want clients or rate", *dim)
		case *p99 <= 0 || *p50 < 0:
			return bad("--slo-p99 %v, --slo-p50 %v: the objective must be positive", *p99, *p50)
		case *duration <= 0 || *warmup < 0:
			return bad("--duration %v, --warmup %v: want a positive window", *duration, *warmup)
		case !(*growth > 1):
			return bad("--growth %v: want more than 1", *growth)
		case *minV < 0 || *maxV < 0:
			return bad("--min-clients %d, --max-clients %d: must not be negative", *minV, *maxV)
		}
		s := def
		s.Payload, s.Rate, s.Clients = *payload, *rate, *clients
		s.Duration, s.Warmup, s.Interval, s.ConnectRate = *duration, *warmup, *interval, *connectRate
		s.Spin = 0
		cfg := Config{Transports: names, Dimension: *dim, Objective: Objective{P99: *p99, P50: *p50}, Base: s,
			Min: *minV, Max: *maxV, Growth: *growth}
		if cfg.Min == 0 {
			cfg.Min = 100
			if *dim == DimRate {
				cfg.Min = 10
			}
		}
		if cfg.Max != 0 && cfg.Max < cfg.Min {
			return bad("--max-clients %d is below --min-clients %d", cfg.Max, cfg.Min)
		}
		if *dim == DimClients {
			ceiling, why, err := proc.Ceiling()
			if err != nil {
				return Config{}, err
			}
			if cfg.Min > ceiling {
				return bad("--min-clients %d is above the machine's ceiling of %d clients (%s)", cfg.Min, ceiling, why)
			}
		}
		// Check one step's scenario now, so that a bad payload or rate is
		// a usage error before anything runs.
		probe := s
		probe.Transport = names[0]
		if *dim == DimRate {
			probe.Rate = float64(cfg.Min)
		} else {
			probe.Clients = cfg.Min
		}
		if err := probe.WithDefaults().Validate(); err != nil {
			return bad("%v", strings.TrimPrefix(err.Error(), bench.ErrScenario.Error()+": "))
		}
		return cfg, nil
	}
}

// Preset is `pushbench compare --preset capacity`: every transport to its
// edge at one event a second of 64 B, p99 ≤ 100 ms, from 100 clients up
// to the machine's ceiling (at most 20 minutes on two cores).
const Preset = "capacity"

// PresetConfig is the capacity preset's search.
func PresetConfig() Config {
	s := bench.DefaultScenario()
	s.Rate, s.Payload = 1, 64
	s.Duration, s.Warmup, s.Spin = 10*time.Second, time.Second, 0
	return Config{
		Transports: transport.Names(), Dimension: DimClients,
		Objective: Objective{P99: 100 * time.Millisecond}, Base: s,
		Min: 100, Growth: 2,
	}
}

// IsPreset reports whether compare's args ask for the capacity preset.
func IsPreset(args []string) bool {
	for i, a := range args {
		v, ok := strings.CutPrefix(strings.TrimLeft(a, "-"), "preset=")
		if !ok && (a == "--preset" || a == "-preset") && i+1 < len(args) {
			v, ok = args[i+1], true
		}
		if ok && v == Preset {
			return true
		}
	}
	return false
}

// PresetFlags defines what `compare --preset capacity` takes besides the
// preset: --out, --transports and --dry-run; the returned function builds
// the preset's Config after parsing.
func PresetFlags(fs *flag.FlagSet) (build func() (Config, error), out *string, dryRun *bool) {
	fs.String("preset", "", "the preset")
	out = fs.String("out", "", "output folder")
	trs := fs.String("transports", "", "transports, comma-separated")
	dryRun = fs.Bool("dry-run", false, "print the search and its bound, run nothing")
	return func() (Config, error) {
		cfg := PresetConfig()
		if *trs != "" {
			names, err := compare.ParseTransports("transports", *trs)
			if err != nil {
				return cfg, fmt.Errorf("%w: %s", ErrUsage, err.Error())
			}
			cfg.Transports = names
		}
		return cfg, nil
	}, out, dryRun
}

// DryRun says what a search would do.
func DryRun(w io.Writer, cfg Config) error {
	ceiling, why, err := proc.Ceiling()
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "pushbench capacity: %s; each of %s from %d clients, doubling to the first failure or the ceiling (%d: %s), then bisecting to 5%%\n",
		cfg.Objective, strings.Join(cfg.Transports, ", "), cfg.Min, ceiling, why)
	return err
}

// Execute runs a search into out (a new or empty folder; "": a stamped
// one under results/runs), with the servers' output in its server.log,
// progress on stderr and each transport's outcome on stdout.
func Execute(ctx context.Context, cfg Config, out string, command []string, stdout, stderr io.Writer) error {
	if out == "" {
		out = filepath.Join("results", "runs", time.Now().UTC().Format("20060102T150405Z")+"-capacity")
	}
	if err := compare.CheckEmptyDir(out); err != nil {
		return fmt.Errorf("%w: --out %s", ErrUsage, err.Error())
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	logf, err := os.Create(filepath.Join(out, compare.ServerLogFile))
	if err != nil {
		return err
	}
	defer logf.Close()
	cfg.Out, cfg.Command, cfg.Log, cfg.ServerLog = out, command, &proc.SyncWriter{W: stderr}, logf
	c, runErr := Run(ctx, cfg)
	if c != nil {
		for _, t := range c.Transports {
			fmt.Fprintf(stdout, "%s: %s\n", t.Transport, t.Summary)
		}
		fmt.Fprintf(stdout, "pushbench capacity: wrote %s\n", filepath.Join(out, results.CapacityFile))
	}
	return runErr
}
