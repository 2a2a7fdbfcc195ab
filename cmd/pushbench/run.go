package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"pushbench/bench"
	"pushbench/netem"
	"pushbench/proc"
	"pushbench/report"
	"pushbench/results"
	"pushbench/transport"
	"pushbench/webhttp"
)

// runCmd is `pushbench run`: one scenario against a server child (or a
// running --server), written to --out and summarised on stdout.
func runCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	def := bench.DefaultScenario()
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	transportName := fs.String("transport", def.Transport, "transport: "+transport.List())
	clientsN := fs.Int("clients", def.Clients, "concurrent subscribers")
	rate := fs.Float64("rate", def.Rate, "events per second (open loop, published by the server)")
	payload := fs.Int("payload", def.Payload, "bytes per encoded event")
	interval := fs.Duration("interval", def.Interval, "short-polling interval T")
	duration := fs.Duration("duration", def.Duration, "measured window")
	warmup := fs.Duration("warmup", def.Warmup, "warm-up before the window (not recorded)")
	out := fs.String("out", "", "output folder (default results/runs/<stamp>-<transport>)")
	server := fs.String("server", "", "URL of a running `pushbench serve` on loopback (default: start one as a child process)")
	hold := fs.Duration("hold", 0, "long-poll hold timeout of the child server (0: its default)")
	connectRate := fs.Float64("connect-rate", def.ConnectRate, "new subscriptions per second in the connect phase")
	drain := fs.Duration("drain", 0, "bound on the wait for in-flight events after the window (0: 5s, plus 2 intervals for shortpoll)")
	schedule := fs.String("schedule", def.Schedule, "event schedule: constant or poisson")
	ring := fs.Int("ring", 0, "ring size K of the child server (0: 1024, or 4 poll intervals' worth of events for shortpoll)")
	spin := fs.Duration("spin", def.Spin, "publisher spin before each event against late timer wake-ups (0: none; its CPU is not charged to the server)")
	pin := fs.Bool("pin", false, "pin the server child and the load generator to disjoint CPU sets")
	quiet := fs.Bool("quiet", false, "no progress on stderr")
	serverCmd := fs.String("server-cmd", "", "pushbench binary to start as the server child (default: this executable)")
	network := netem.AddFlags(fs)
	httpOpts := webhttp.AddFlags(fs, def.HTTP)
	pad := fs.String("pad", "", "event padding: x, or text that compresses like real data (default: text with --compress, else x)")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: pushbench run [flags]")
		fmt.Fprintln(fs.Output(), "Runs one scenario: connect, warm-up, measured window, drain; writes result.json, latency.hgrm and latency.hdr.")
		fmt.Fprintf(fs.Output(), "Transports:\n%s", transport.Usage())
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args, stdout); err != nil {
		return err
	}

	s := bench.Scenario{
		Transport:   *transportName,
		Clients:     *clientsN,
		Rate:        *rate,
		Payload:     *payload,
		Interval:    *interval,
		Hold:        *hold,
		ConnectRate: *connectRate,
		Warmup:      *warmup,
		Duration:    *duration,
		Drain:       *drain,
		Schedule:    *schedule,
		Ring:        *ring,
		Spin:        *spin,
		Pad:         *pad,
	}
	var err error
	if s.HTTP, err = httpOpts(); err != nil {
		return usagef("run: %v", err)
	}
	s = s.WithDefaults()
	if s.Network, err = network(); err != nil {
		return usagef("run: %v", err)
	}
	if err := s.Validate(); err != nil {
		return usageError{fmt.Errorf("run: %w", err)}
	}
	// The progress display and the child server's messages share stderr.
	errw := &proc.SyncWriter{W: stderr}
	opt := bench.Options{Server: *server, Pin: *pin}
	if !*quiet {
		opt.ServerLog = errw // the child's own messages (errors, its stop line)
	}
	if *server != "" {
		if *serverCmd != "" || *hold != 0 || *ring != 0 {
			return usagef("run: --server-cmd, --hold and --ring configure the child server; they do not apply with --server")
		}
		if *pin {
			return usagef("run: --pin needs the server as a child process; it cannot pin a server given with --server")
		}
		if err := bench.CheckServer(ctx, *server); err != nil {
			return usageError{fmt.Errorf("run: --server: %w", err)}
		}
	}
	if *serverCmd != "" {
		opt.Launch = proc.ChildLauncher(*serverCmd, opt.ServerLog)
	}

	dir := *out
	defaultDir := dir == ""
	if defaultDir {
		dir = filepath.Join("results", "runs", time.Now().Format("20060102-150405")+"-"+s.Transport)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("output folder: %w", err)
	}

	prog := bench.NewDisplay(errw, *quiet, s)
	opt.Progress = prog.Update
	rec, hist, runErr := bench.Run(ctx, s, opt)
	prog.Finish()
	if rec == nil {
		if errors.Is(runErr, proc.ErrLimits) || errors.Is(runErr, bench.ErrScenario) {
			return usageError{fmt.Errorf("run: %w", runErr)}
		}
		return runErr
	}

	if err := results.WriteRun(dir, rec, hist); err != nil {
		return errors.Join(runErr, err)
	}
	if defaultDir {
		results.LinkLatest(dir)
	}
	fmt.Fprintln(stdout, report.Line(rec))
	if !*quiet {
		fmt.Fprintf(errw, "pushbench run: wrote %s\n", dir)
	}
	return runErr
}
