package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"pushbench/compare"
	"pushbench/proc"
	"pushbench/report"
	"pushbench/results"
	"pushbench/transport"
)

func TestCompareBadFlags(t *testing.T) {
	t.Parallel()
	full := t.TempDir()
	if err := os.WriteFile(filepath.Join(full, results.RecordsFile), []byte("{}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(full, "file.txt")
	if err := os.WriteFile(file, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}

	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		t.Fatal(err)
	}
	hardFiles := rl.Max // as many clients as descriptors: the harness's own do not fit

	tests := []struct {
		name string
		args []string // --out is added unless given
		want string   // substring of the one-line error
	}{
		{"unknown transport", []string{"--transports", "sse,pigeon"}, `"pigeon": unknown transport`},
		{"negative rate", []string{"--rates", "1,-5"}, "rate -5"},
		{"zero rate", []string{"--rates", "0"}, "rate 0"},
		{"rate not a number", []string{"--rates", "fast"}, `"fast": invalid syntax`},
		{"empty list element", []string{"--clients", "1,,10"}, "empty list element"},
		{"zero clients", []string{"--clients", "0,10"}, "at least one client"},
		{"payload below minimum", []string{"--payloads", "10"}, "below the minimum"},
		{"zero interval", []string{"--intervals", "1s,0s"}, "must be positive"},
		{"agent unreachable", []string{"--agents", "127.0.0.1:1"}, "agent 127.0.0.1:1 is unreachable"},
		{"more agents than clients", []string{"--agents", "127.0.0.1:1,127.0.0.1:2", "--clients", "1,10"}, "clients=1/rate=10/payload=64/headers=browser: 1 clients left for 2 agents"},
		{"agents with chat", []string{"--agents", "127.0.0.1:1", "--preset", "chat"}, "agents run the broadcast workload"},
		{"agents with a network", []string{"--agents", "127.0.0.1:1", "--network", "lan"}, "agents reach the server over the real network"},
		{"bad interval", []string{"--intervals", "soon"}, `"soon": time: invalid duration`},
		{"bad duration", []string{"--duration", "fast"}, "invalid value"},
		{"zero duration", []string{"--duration", "0s"}, "must be positive"},
		{"negative warm-up", []string{"--warmup", "-1s"}, "must not be negative"},
		{"negative hold", []string{"--hold", "-1s"}, "must not be negative"},
		{"zero connect rate", []string{"--connect-rate", "0"}, "connect-rate 0"},
		{"zero repeat", []string{"--repeat", "0"}, "at least one pass"},
		{"negative min events", []string{"--min-events", "-1"}, "must not be negative"},
		{"payload above maximum", []string{"--payloads", "64,100000000"}, "above the maximum"},
		{"non-empty out", []string{"--out", full}, "is not empty"},
		{"out is a file", []string{"--out", file}, "is not a folder"},
		{"unknown flag", []string{"--bogus"}, "bogus"},
		{"positional argument", []string{"extra"}, `unexpected argument "extra"`},
		{"tls maybe", []string{"--tls", "off,maybe"}, `--tls: "maybe": want on or off`},
		{"http 3", []string{"--http", "1.1,3"}, `http "3"`},
		{"unknown header profile", []string{"--headers", "curl"}, `headers "curl"`},
		{"cookie too short", []string{"--cookie-bytes", "2"}, "cookie bytes 2"},
		{"unknown workload", []string{"--workload", "chess"}, `--workload "chess"`},
		{"room 0", []string{"--preset", "chat", "--room", "0"}, "--room 0"},
		{"game snapshot too small", []string{"--preset", "game", "--payloads", "128"}, "needs at least 492 bytes"},
	}
	if hardFiles <= 1<<24 { // else the delivery tracking limit comes first
		tests = append(tests, struct {
			name string
			args []string
			want string
		}{"too many clients for the machine", []string{"--clients", strconv.FormatUint(hardFiles, 10)}, "open files"})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			out := filepath.Join(t.TempDir(), "run")
			args := tt.args
			if !slices.Contains(args, "--out") {
				args = append([]string{"--out", out}, args...)
			}
			var stdout, stderr bytes.Buffer
			err := compareCmd(context.Background(), args, &stdout, &stderr)
			if !errors.As(err, new(usageError)) {
				t.Fatalf("compareCmd(%q) = %v, want a usage error", args, err)
			}
			code := pushbench(context.Background(), append([]string{"compare"}, args...), &stdout, &stderr)
			msg := stderr.String()
			if code != 2 {
				t.Errorf("exit code %d, want 2 (stderr %q)", code, msg)
			}
			if strings.Count(msg, "\n") != 1 || !strings.Contains(msg, tt.want) {
				t.Errorf("stderr %q, want one line containing %q", msg, tt.want)
			}
			if stdout.Len() != 0 {
				t.Errorf("stdout %q, want nothing", stdout.String())
			}
			if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("--out %s was created (%v); a usage error must come before anything is written", out, err)
			}
		})
	}
}

func TestCompareHelp(t *testing.T) {
	t.Parallel()
	var stdout, stderr bytes.Buffer
	if code := pushbench(context.Background(), []string{"compare", "--help"}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit code %d, want 0 (stderr %q)", code, stderr.String())
	}
	for _, flag := range []string{"-quick", "-transports", "-clients", "-rates", "-payloads", "-intervals",
		"-duration", "-warmup", "-hold", "-connect-rate", "-repeat", "-pin", "-out", "-dry-run", "-min-events"} {
		if !strings.Contains(stdout.String(), flag+" ") && !strings.Contains(stdout.String(), flag+"\n") {
			t.Errorf("--help does not show %s:\n%s", flag, stdout.String())
		}
	}
}

// planLine describes one planned cell for the plan tests.
func planLine(c compare.Cell) string {
	s := c.S
	return fmt.Sprintf("%s c=%d r=%g p=%d warmup=%v window=%v", transport.VariantName(s.Transport, s.Interval), s.Clients, s.Rate, s.Payload, s.Warmup, s.Duration)
}

// expandPlan lists the cells of points × variants, in that nesting.
func expandPlan(points []string, variants []string) []string {
	var out []string
	for _, p := range points {
		for _, v := range variants {
			out = append(out, v+" "+p)
		}
	}
	return out
}

var allVariants = []string{"shortpoll-1s", "shortpoll-100ms", "longpoll", "sse", "ws", "tcp"}

func TestComparePlans(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		args []string
		want []string
	}{
		{
			// The clients sweep at 10/s and 64 B, then every rate × both
			// payloads at 100 clients; (100, 10/s, 64 B) once.
			name: "default",
			want: expandPlan([]string{
				"c=1 r=10 p=64 warmup=1s window=10s",
				"c=100 r=10 p=64 warmup=1s window=10s",
				"c=1000 r=10 p=64 warmup=1s window=10s",
				"c=100 r=1 p=64 warmup=1s window=10s",
				"c=100 r=100 p=64 warmup=1s window=10s",
				"c=100 r=1 p=4096 warmup=1s window=10s",
				"c=100 r=10 p=4096 warmup=1s window=10s",
				"c=100 r=100 p=4096 warmup=1s window=10s",
			}, allVariants),
		},
		{
			name: "quick",
			args: []string{"--quick"},
			want: expandPlan([]string{
				"c=1 r=1 p=64 warmup=1s window=1s",
				"c=10 r=1 p=64 warmup=1s window=1s",
				"c=50 r=1 p=64 warmup=1s window=1s",
				"c=10 r=100 p=64 warmup=200ms window=1s",
				"c=10 r=1 p=4096 warmup=1s window=1s",
				"c=10 r=100 p=4096 warmup=200ms window=1s",
			}, allVariants),
		},
		{
			// Overrides: the centre is the middle value when the preset's
			// is not listed; transports keep display order; repeats run
			// the whole matrix again.
			name: "overrides",
			args: []string{"--quick", "--transports", "ws,longpoll", "--clients", "5,2,3", "--rates", "4,2",
				"--payloads", "100", "--duration", "500ms", "--warmup", "0s", "--repeat", "2"},
			want: slices.Concat(
				expandPlan([]string{
					"c=2 r=2 p=100 warmup=500ms window=500ms",
					"c=3 r=2 p=100 warmup=500ms window=500ms",
					"c=5 r=2 p=100 warmup=500ms window=500ms",
					"c=3 r=4 p=100 warmup=250ms window=500ms",
				}, []string{"longpoll", "ws"}),
				expandPlan([]string{
					"c=2 r=2 p=100 warmup=500ms window=500ms",
					"c=3 r=2 p=100 warmup=500ms window=500ms",
					"c=5 r=2 p=100 warmup=500ms window=500ms",
					"c=3 r=4 p=100 warmup=250ms window=500ms",
				}, []string{"longpoll", "ws"})),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := parseCompare(append(tt.args, "--dry-run"), io.Discard)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, cell := range c.Cells {
				got = append(got, planLine(cell))
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("plan:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

// inProcess parses args into a comparison whose servers run in this
// process (the test binary is no pushbench to start as a child).
func inProcess(t *testing.T, args ...string) *compare.Comparison {
	t.Helper()
	c, err := parseCompare(args, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	c.Launch = proc.InProcess(nil)
	return c
}

// tinyArgs is a two-cell comparison of well under a second per cell.
var tinyArgs = []string{"--transports", "sse,ws", "--clients", "2", "--rates", "20", "--payloads", "64",
	"--warmup", "100ms", "--duration", "300ms"}

func readRunInfo(t *testing.T, dir string) (results.RunInfo, compare.Config) {
	t.Helper()
	info, err := results.ReadRunInfo(filepath.Join(dir, results.RunInfoFile))
	if err != nil {
		t.Fatal(err)
	}
	var cfg compare.Config
	if err := json.Unmarshal(info.Config, &cfg); err != nil {
		t.Fatalf("run.json config: %v", err)
	}
	return info, cfg
}

func TestCompareRunsCells(t *testing.T) {
	if testing.Short() {
		t.Skip("runs two short cells")
	}
	t.Parallel()
	out := filepath.Join(t.TempDir(), "run")
	c := inProcess(t, append([]string{"--out", out}, tinyArgs...)...)
	var stdout, stderr bytes.Buffer
	if err := c.Run(context.Background(), &stdout, &stderr); err != nil {
		t.Fatalf("run: %v\nstderr: %s", err, stderr.String())
	}
	recs, err := results.ReadRecords(filepath.Join(out, results.RecordsFile))
	if err != nil || len(recs) != 2 {
		t.Fatalf("results.jsonl: %v, %d records; want 2", err, len(recs))
	}
	for i, want := range []string{"sse", "ws"} {
		if s := recs[i].Scenario; s.Transport != want || s.Clients != 2 || s.Rate != 20 || s.DurationNs != int64(300*time.Millisecond) {
			t.Errorf("record %d: scenario %+v, want %s with 2 clients at 20/s for 300ms", i, s, want)
		}
	}
	info, cfg := readRunInfo(t, out)
	if info.CellsPlanned != 2 || info.CellsDone != 2 || info.FinishedAt == "" || info.Env.GoVersion == "" {
		t.Errorf("run.json: planned %d, done %d, finished %q, Go %q; want 2, 2, a time, a version",
			info.CellsPlanned, info.CellsDone, info.FinishedAt, info.Env.GoVersion)
	}
	if info.Command[0] != "pushbench" || info.Command[1] != "compare" {
		t.Errorf("run.json command %q", info.Command)
	}
	for _, cs := range cfg.Cells {
		if cs.Status != "done" || cs.Error != "" {
			t.Errorf("run.json cell %s: status %q, error %q; want done", cs.Cell, cs.Status, cs.Error)
		}
	}
	for _, f := range []string{report.IndexFile, report.SummaryMarkdownFile, report.SummaryCSVFile, report.BenchTextFile,
		"sse-c2-r20-p64-br.hgrm", "ws-c2-r20-p64-br.hgrm", compare.ServerLogFile} {
		if fi, err := os.Stat(filepath.Join(out, f)); err != nil || fi.Size() == 0 {
			t.Errorf("%s: missing or empty (%v)", f, err)
		}
	}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	var cells []string
	for _, l := range lines {
		if strings.HasPrefix(l, "[") {
			cells = append(cells, l)
		}
	}
	if len(cells) != 2 || !strings.Contains(cells[0], "] sse c=2 r=20/s P=64") || !strings.Contains(cells[1], "] ws c=2 r=20/s P=64") {
		t.Errorf("summary lines %q, want one per cell", cells)
	}
	if last := lines[len(lines)-1]; !strings.HasSuffix(last, filepath.Join(out, report.IndexFile)) {
		t.Errorf("last line %q, want the report's path", last)
	}
}

// cancelOn cancels a context when what it is written contains a string.
type cancelOn struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	s      string
	cancel context.CancelFunc
}

func (c *cancelOn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.buf.Write(p)
	if strings.Contains(c.buf.String(), c.s) {
		c.cancel()
	}
	return len(p), nil
}

func TestCompareInterrupted(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a short cell")
	}
	t.Parallel()
	out := filepath.Join(t.TempDir(), "run")
	c := inProcess(t, append([]string{"--out", out}, tinyArgs...)...)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stdout := &cancelOn{s: "[1/2", cancel: cancel} // Ctrl-C as the first cell finishes
	var stderr bytes.Buffer
	err := c.Run(ctx, stdout, &stderr)
	if err == nil || errors.As(err, new(usageError)) || !strings.Contains(err.Error(), "interrupted: 1 of 2 cells done") {
		t.Fatalf("run = %v, want an interruption error", err)
	}
	recs, rerr := results.ReadRecords(filepath.Join(out, results.RecordsFile))
	if rerr != nil || len(recs) != 1 {
		t.Fatalf("results.jsonl: %v, %d records; want the finished cell", rerr, len(recs))
	}
	info, cfg := readRunInfo(t, out)
	if info.CellsDone != 1 || info.FinishedAt != "" {
		t.Errorf("run.json: done %d, finished %q; want 1 and not finished", info.CellsDone, info.FinishedAt)
	}
	if got := []string{cfg.Cells[0].Status, cfg.Cells[1].Status}; !slices.Equal(got, []string{"done", "not run"}) {
		t.Errorf("run.json cell statuses %q, want done, not run", got)
	}
	if _, err := os.Stat(filepath.Join(out, report.IndexFile)); err != nil {
		t.Errorf("no report after the interruption: %v", err)
	}
}

func TestCompareDefaultOutLinksLatest(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a short cell")
	}
	t.Chdir(t.TempDir())
	c := inProcess(t, slices.Concat(tinyArgs, []string{"--transports", "ws"})...)
	if !strings.HasPrefix(c.Out, filepath.Join("results", "runs")+string(filepath.Separator)) {
		t.Fatalf("default out %q, want results/runs/<stamp>", c.Out)
	}
	if err := c.Run(context.Background(), io.Discard, io.Discard); err != nil {
		t.Fatal(err)
	}
	link, err := os.Readlink(filepath.Join("results", "latest"))
	if err != nil || link != filepath.Join("runs", filepath.Base(c.Out)) {
		t.Fatalf("results/latest -> %q (%v), want runs/%s", link, err, filepath.Base(c.Out))
	}
	if _, err := os.Stat(filepath.Join("results", "latest", report.IndexFile)); err != nil {
		t.Error(err)
	}
}
