package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"pushbench/bench"
	"pushbench/proc"
	"pushbench/report"
	"pushbench/results"
)

// Files a `pushbench run` writes into its output folder beside result.json.
const (
	latencyHGRM  = "latency.hgrm"  // percentile distribution, µs
	latencyHDR   = "latency.hdr"   // HdrHistogram V2 compressed base64 snapshot, ns
	baselineJSON = "baseline.json" // []bench.Baseline (back to back, paced), with --baseline
)

// baselineRounds is the number of back-to-back ping-pong round trips of
// --baseline.
const baselineRounds = 10000

// runCmd is `pushbench run`: one scenario against a server child (or a
// running --server), written to --out and summarised on stdout.
func runCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	def := bench.DefaultScenario()
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	transport := fs.String("transport", def.Transport, "transport: shortpoll, longpoll, sse or ws")
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
	baseline := fs.Bool("baseline", false, "also measure a raw TCP ping-pong on loopback first (writes baseline.json)")
	serverCmd := fs.String("server-cmd", "", "pushbench binary to start as the server child (default: this executable)")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: pushbench run [flags]")
		fmt.Fprintln(fs.Output(), "Runs one scenario: connect, warm-up, measured window, drain; writes result.json, latency.hgrm and latency.hdr.")
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args, stdout); err != nil {
		return err
	}

	s := bench.Scenario{
		Transport:   *transport,
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
	}.WithDefaults()
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

	var base []bench.Baseline
	if *baseline {
		// Back to back (the classic ping-pong), then paced like the
		// events (at most 10 ms apart, about 2 s in all), so that the
		// second also pays the wake-ups from idle a delivery pays.
		gap := min(time.Duration(float64(time.Second)/s.Rate), 10*time.Millisecond)
		paced := int(min(1000, max(100, 2*time.Second/gap)))
		for _, c := range []struct {
			rounds int
			gap    time.Duration
		}{{baselineRounds, 0}, {paced, gap}} {
			b, err := bench.PingPong(ctx, c.rounds, s.Payload, c.gap)
			if err != nil {
				return err
			}
			base = append(base, b)
		}
		if err := writeJSON(filepath.Join(dir, baselineJSON), base); err != nil {
			return err
		}
	}

	prog := newProgress(errw, *quiet, s)
	opt.Progress = prog.update
	rec, hist, runErr := bench.Run(ctx, s, opt)
	prog.finish()
	if rec == nil {
		if errors.Is(runErr, proc.ErrLimits) || errors.Is(runErr, bench.ErrScenario) {
			return usageError{fmt.Errorf("run: %w", runErr)}
		}
		return runErr
	}

	if err := writeRun(dir, rec, hist); err != nil {
		return errors.Join(runErr, err)
	}
	if defaultDir {
		linkLatest(dir)
	}
	fmt.Fprintln(stdout, report.Line(rec))
	for _, b := range base {
		how := "back to back"
		if b.GapNs > 0 {
			how = "every " + time.Duration(b.GapNs).String()
		}
		fmt.Fprintf(stdout, "baseline: TCP ping-pong on loopback, %d B %s: one-way p50 %s (RTT p50 %s, p99 %s; %d rounds); %s p50 is %.1f× that\n",
			b.Size, how, fmtDur(b.OneWayP50), fmtDur(b.RTT.P50), fmtDur(b.RTT.P99), b.Rounds,
			s.Transport, float64(rec.Latency.P50)/float64(max(1, b.OneWayP50)))
	}
	if !*quiet {
		fmt.Fprintf(errw, "pushbench run: wrote %s\n", dir)
	}
	return runErr
}

// writeRun writes result.json, latency.hgrm and latency.hdr into dir.
func writeRun(dir string, rec *results.Record, hist *hdrhistogram.Histogram) error {
	if err := results.WriteRecord(filepath.Join(dir, results.ResultFile), *rec); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, latencyHDR), []byte(rec.Histogram+"\n"), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", latencyHDR, err)
	}
	f, err := os.Create(filepath.Join(dir, latencyHGRM))
	if err != nil {
		return err
	}
	if err := results.WriteHGRM(f, hist); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// linkLatest points results/latest at dir (best effort: a missing link
// costs nothing but convenience).
func linkLatest(dir string) {
	latest := filepath.Join("results", "latest")
	rel, err := filepath.Rel("results", dir)
	if err != nil {
		return
	}
	tmp := latest + ".tmp"
	os.Remove(tmp)
	if os.Symlink(rel, tmp) == nil {
		if err := os.Rename(tmp, latest); err != nil {
			os.Remove(tmp)
		}
	}
}

func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

func fmtDur(ns int64) string {
	return time.Duration(ns).Round(100 * time.Nanosecond).String()
}

// progress shows a run's progress on stderr: a progress bar when stderr is
// a terminal, otherwise a plain line every plainEvery and at each phase
// change.
type progress struct {
	w     io.Writer
	bar   *progressbar.ProgressBar
	plain bool

	mu    sync.Mutex
	last  time.Time
	phase bench.Phase
}

const plainEvery = 5 * time.Second

// newProgress returns the progress display of scenario s on w (nothing
// when quiet). w may be a *proc.SyncWriter around the real stderr.
func newProgress(w io.Writer, quiet bool, s bench.Scenario) *progress {
	p := &progress{w: w}
	if quiet {
		return p
	}
	under := w
	if sw, ok := w.(*proc.SyncWriter); ok {
		under = sw.W
	}
	f, ok := under.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		p.plain = true
		return p
	}
	total := time.Duration(float64(s.Clients)/s.ConnectRate*float64(time.Second)) + s.Warmup + s.Duration
	p.bar = progressbar.NewOptions64(total.Milliseconds(),
		progressbar.OptionSetWriter(w),
		progressbar.OptionSetWidth(30),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionSetPredictTime(false),
		progressbar.OptionClearOnFinish(),
		progressbar.OptionSetDescription("start"),
	)
	return p
}

func (p *progress) update(pr bench.Progress) {
	p.mu.Lock()
	defer p.mu.Unlock()
	desc := fmt.Sprintf("%-7s %d/%d clients  %d/%d events  %s elapsed  %s left",
		pr.Phase, pr.Connected, pr.Clients, pr.Events, pr.TotalEvents,
		pr.Elapsed.Round(100*time.Millisecond), pr.Remaining.Round(100*time.Millisecond))
	switch {
	case p.bar != nil:
		total := (pr.Elapsed + pr.Remaining).Milliseconds()
		if pr.Phase == bench.PhaseDrain || pr.Phase == bench.PhaseDone {
			total = pr.Elapsed.Milliseconds()
		}
		if total > p.bar.GetMax64() || pr.Phase == bench.PhaseDrain {
			p.bar.ChangeMax64(max(1, total))
		}
		p.bar.Describe(desc)
		_ = p.bar.Set64(min(pr.Elapsed.Milliseconds(), p.bar.GetMax64()))
	case p.plain:
		now := time.Now()
		if pr.Phase == p.phase && now.Sub(p.last) < plainEvery {
			return
		}
		p.phase, p.last = pr.Phase, now
		fmt.Fprintf(p.w, "pushbench run: %s\n", strings.Join(strings.Fields(desc), " "))
	}
}

func (p *progress) finish() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.bar != nil {
		_ = p.bar.Finish()
		p.bar = nil
	}
}
