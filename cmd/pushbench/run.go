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
	"pushbench/browser"
	"pushbench/proc"
	"pushbench/report"
	"pushbench/results"
	"pushbench/transport"
)

// runCmd is `pushbench run`: one scenario against a server child (or a
// running --server), written to --out and summarised on stdout.
func runCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	scenario := bench.ScenarioFlags(fs)
	out := fs.String("out", "", "output folder (default results/runs/<stamp>-<transport>)")
	server := fs.String("server", "", "URL of a running `pushbench serve` (default: start one as a child process)")
	pin := fs.Bool("pin", false, "pin the server child and the load generator to disjoint CPU sets")
	quiet := fs.Bool("quiet", false, "no progress on stderr")
	serverCmd := fs.String("server-cmd", "", "pushbench binary to start as the server child (default: this executable)")
	token := fs.String("token", "", "with --server: the bearer token it was started with (serve --token); a --server not on loopback needs it")
	agentFlags := bench.AddAgentFlags(fs)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: pushbench run [flags]")
		fmt.Fprintln(fs.Output(), "Runs one scenario: connect, warm-up, measured window, drain; writes result.json, latency.hgrm and latency.hdr.")
		fmt.Fprintf(fs.Output(), "Transports:\n%s", transport.Usage())
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args, stdout); err != nil {
		return err
	}
	s, err := scenario()
	if err != nil {
		return usagef("run: %v", err)
	}
	if err := s.Validate(); err != nil {
		return usageError{fmt.Errorf("run: %w", err)}
	}
	if s.Client == bench.ClientBrowser {
		if _, err := browser.FindChromium(s.Chromium); err != nil {
			return usageError{fmt.Errorf("run: --client browser: %w", err)}
		}
	}
	// The progress display and the child server's messages share stderr.
	errw := &proc.SyncWriter{W: stderr}
	opt := bench.Options{Server: *server, Pin: *pin, Token: *token}
	as, err := agentFlags()
	if err != nil {
		return usagef("run: %v", err)
	}
	as.Apply(&opt)
	if !*quiet {
		opt.ServerLog = errw // the child's own messages (errors, its stop line)
	}
	if *server != "" {
		set := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
		if *serverCmd != "" || set["hold"] || set["ring"] {
			return usagef("run: --server-cmd, --hold and --ring configure the child server; they do not apply with --server")
		}
		if *pin {
			return usagef("run: --pin needs the server as a child process; it cannot pin a server given with --server")
		}
		if s.Workload != bench.WorkloadBroadcast {
			return usagef("run: the %s workload needs its own server child (it sizes the rooms); --server runs broadcast only", s.Workload)
		}
		if err := bench.CheckServer(ctx, *server, *token); err != nil {
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
