package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"golang.org/x/term"

	"pushbench/bench"
	"pushbench/proc"
	"pushbench/report"
	"pushbench/results"
	"pushbench/transport"
)

// compareServerLog is the file of a comparison's run folder that receives
// the server children's own output, one header line per cell.
const compareServerLog = "server.log"

// preset is a comparison matrix and its timing. The matrix is star-shaped,
// not a full cross product: a clients sweep at the centre rate and the
// smallest payload, and a rate × payload grid at the centre client count.
// Every transport (and every short-poll interval) runs at every point.
type preset struct {
	name       string
	transports []string
	intervals  []time.Duration // short-poll intervals, one variant each
	clients    []int
	rates      []float64
	payloads   []int
	// centreClients and centreRate are where the sweeps cross when the
	// lists contain them (otherwise the lists' middle values).
	centreClients int
	centreRate    float64

	warmup   time.Duration
	duration time.Duration // base measured window
	// minEvents stretches the window at low rates to hold at least this
	// many events per client: window = max(duration, minEvents ÷ rate).
	minEvents   int
	hold        time.Duration
	connectRate float64
	repeat      int
}

// presets returns the named presets. default shows the crossovers in about
// ten minutes on two cores; quick has the same shape, tiny, for CI.
func presets() map[string]preset {
	def := preset{
		name:          "default",
		transports:    slices.Clone(transport.Names()),
		intervals:     []time.Duration{time.Second, 100 * time.Millisecond},
		clients:       []int{1, 100, 1000},
		rates:         []float64{0.2, 1, 10, 100},
		payloads:      []int{64, 4096},
		centreClients: 100,
		centreRate:    1,
		warmup:        time.Second,
		duration:      10 * time.Second,
		minEvents:     3,
		connectRate:   1000,
		repeat:        1,
	}
	quick := def
	quick.name = "quick"
	quick.clients = []int{1, 10, 50}
	quick.rates = []float64{1, 100}
	quick.centreClients = 10
	quick.warmup = 200 * time.Millisecond
	quick.duration = time.Second
	quick.minEvents = 1
	return map[string]preset{"default": def, "quick": quick}
}

// plannedCell is one scenario of the plan; pass counts the repeats from 1.
type plannedCell struct {
	s    bench.Scenario // WithDefaults applied
	pass int
}

// name is the cell's name in bench.txt style, e.g.
// "transport=shortpoll-1s/clients=100/rate=1/payload=64".
func (c plannedCell) name() string {
	return report.CellName(results.Scenario{
		Transport: c.s.Transport, Clients: c.s.Clients, Rate: c.s.Rate, Payload: c.s.Payload,
		IntervalNs: intervalNs(c.s),
	})
}

func intervalNs(s bench.Scenario) int64 {
	if s.Transport == transport.ShortPoll {
		return int64(s.Interval)
	}
	return 0
}

// variantName is the transport with the short-poll interval, as in bench.txt.
func variantName(s bench.Scenario) string {
	if s.Transport == transport.ShortPoll {
		return s.Transport + "-" + s.Interval.String()
	}
	return s.Transport
}

// Estimates of a cell's wall time beyond its connect phase and its
// publishing run: starting and stopping the server child, confirming the
// subscriptions, the snapshots and the drain of a push transport (measured
// at 20–60 ms on a 2-core machine, more with many clients), and the report
// at the end.
const (
	cellOverhead   = 100 * time.Millisecond
	reportEstimate = 2 * time.Second
)

// cellEstimate is the expected wall time of one cell: connect at the
// connect rate, then whichever ends later of bench.Run's window-end
// snapshot (half an event interval before the window's end) and the
// arrival of the last event (the publisher stops after it; short polling
// fetches it up to one interval later).
func cellEstimate(s bench.Scenario) time.Duration {
	d := cellOverhead + time.Duration(float64(max(0, s.Clients-1))/s.ConnectRate*float64(time.Second))
	half := min(time.Duration(float64(time.Second)/s.Rate/2), s.Duration/2)
	var last time.Duration
	if n := s.Events(); n > 0 {
		last = time.Duration(float64(n-1) / s.Rate * float64(time.Second))
	}
	if s.Transport == transport.ShortPoll {
		last += s.Interval
	}
	return d + max(s.Warmup+s.Duration-half, last)
}

// coord is a point of the matrix without the transport.
type coord struct {
	clients int
	rate    float64
	payload int
}

// timing returns the warm-up and the measured window of the cells at
// rate. bench.Run counts bytes, requests and CPU between two snapshots
// taken half an event interval before each window boundary; these rules
// make that span exactly the window, with no event's traffic cut by it:
//
//   - The window is the base duration, stretched to hold minEvents events
//     at low rates, then rounded up to a whole number of event intervals
//     (so it ends on an event time) and of every short-poll interval.
//     Short-poll clients connect within a fraction of an interval of each
//     other and poll almost in step: a window of k intervals holds exactly
//     k polls per client, any other length over- or under-counts one.
//   - The warm-up is a whole number of event intervals, at least one, so
//     that the window starts on an event time and the first snapshot falls
//     midway between two events, after the publisher started. (With less
//     warm-up than half an interval, bench.Run takes the first snapshot
//     before starting the publisher and the span grows by the warm-up minus
//     half an interval, which biases the polling figures per event.)
//
// A rate whose event interval is not a whole number of nanoseconds is
// aligned to the short-poll intervals only, and its warm-up is at least
// one event interval rounded up to a millisecond; an alignment that would
// more than double the window is dropped.
func (p preset) timing(rate float64) (warmup, window time.Duration) {
	window = p.duration
	if !(rate > 0) {
		return p.warmup, window // Validate rejects the cell
	}
	if p.minEvents > 0 {
		window = max(window, ceilDuration(float64(p.minEvents)/rate, time.Millisecond))
	}
	ev := ceilDuration(1/rate, time.Millisecond)
	exact := false
	if ns := 1e9 / rate; ns < float64(maxWindow) && math.Abs(ns-math.Round(ns)) < 1e-3 {
		ev, exact = time.Duration(math.Round(ns)), true
	}
	// Align the window to the short-poll intervals and, if that does not
	// more than double it, to the event interval as well.
	var polls time.Duration
	if slices.Contains(p.transports, transport.ShortPoll) {
		for _, t := range p.intervals {
			polls = alignStep(polls, t, window)
		}
	}
	step := polls
	if exact {
		step = alignStep(polls, ev, window)
	}
	if step > 0 {
		window = roundUp(window, step)
	}
	return max(roundUp(p.warmup, ev), ev), min(window, maxWindow)
}

// alignStep returns the least common multiple of step and d (d if step is
// 0), or step alone if the multiple would more than double window.
func alignStep(step, d, window time.Duration) time.Duration {
	if step == 0 {
		return d
	}
	if l := lcm(step, d); roundUp(window, l) <= 2*window {
		return l
	}
	return step
}

// roundUp rounds d up to a multiple of unit.
func roundUp(d, unit time.Duration) time.Duration {
	if unit <= 0 || d%unit == 0 {
		return d
	}
	return (d/unit + 1) * unit
}

// lcm is the least common multiple of a and b, or maxWindow+1 if that is
// larger than maxWindow.
func lcm(a, b time.Duration) time.Duration {
	x, y := a, b
	for y != 0 {
		x, y = y, x%y
	}
	if a/x > maxWindow/b {
		return maxWindow + 1
	}
	return a / x * b
}

// maxWindow bounds a stretched window (a tiny --rates value would
// otherwise overflow time.Duration).
const maxWindow = 24 * time.Hour

// ceilDuration returns sec seconds rounded up to a multiple of unit; the
// tolerance keeps float error from adding a unit (3 ÷ 0.2 is
// 15.000000000000002).
func ceilDuration(sec float64, unit time.Duration) time.Duration {
	sec = min(sec, maxWindow.Seconds())
	n := math.Ceil(sec*float64(time.Second)/float64(unit) - 1e-6)
	return time.Duration(n) * unit
}

// centre returns want if vs contains it, else the middle of the sorted vs.
func centre[T int | float64](vs []T, want T) T {
	if slices.Contains(vs, want) {
		return want
	}
	s := slices.Clone(vs)
	slices.Sort(s)
	return s[(len(s)-1)/2]
}

// coords lists the matrix points in run order: the clients sweep (at the
// centre rate and the smallest payload), then the rate × payload grid at
// the centre client count, without duplicates.
func (p preset) coords() []coord {
	cc := centre(p.clients, p.centreClients)
	cr := centre(p.rates, p.centreRate)
	cp := slices.Min(p.payloads)
	var out []coord
	add := func(c coord) {
		if !slices.Contains(out, c) {
			out = append(out, c)
		}
	}
	for _, n := range sorted(p.clients) {
		add(coord{n, cr, cp})
	}
	for _, pl := range sorted(p.payloads) {
		for _, r := range sorted(p.rates) {
			add(coord{cc, r, pl})
		}
	}
	return out
}

func sorted[T int | float64](vs []T) []T {
	s := slices.Clone(vs)
	slices.Sort(s)
	return slices.Compact(s)
}

// plan lists every cell in run order: for each repeat, for each matrix
// point, every transport variant back to back (so that drift on a shared
// machine hits the transports of one point alike).
func (p preset) plan() []plannedCell {
	var cells []plannedCell
	for pass := 1; pass <= p.repeat; pass++ {
		for _, at := range p.coords() {
			for _, t := range p.transports {
				intervals := []time.Duration{0}
				if t == transport.ShortPoll {
					intervals = p.intervals
				}
				for _, iv := range intervals {
					s := bench.DefaultScenario()
					s.Transport = t
					s.Clients = at.clients
					s.Rate = at.rate
					s.Payload = at.payload
					s.Interval = iv
					s.Hold = p.hold
					s.ConnectRate = p.connectRate
					s.Warmup, s.Duration = p.timing(at.rate)
					s.Drain = 0 // WithDefaults: 5 s, plus two intervals for short polling
					cells = append(cells, plannedCell{s: s.WithDefaults(), pass: pass})
				}
			}
		}
	}
	return cells
}

// comparison is a parsed `pushbench compare`: the plan and where it goes.
type comparison struct {
	p       preset
	cells   []plannedCell
	out     string
	linkDir bool // out is the default location: point results/latest at it
	pin     bool
	dryRun  bool // print the plan only
	command []string
	// launch starts each cell's server (nil: a child process of this
	// executable, as DESIGN.md section 5 requires for the figures).
	launch proc.Launcher
}

// compareCmd is `pushbench compare`: a scenario matrix across transports,
// run cell by cell against a fresh server child each, written to a run
// folder with its report.
func compareCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c, err := parseCompare(args, stdout)
	if err != nil {
		return err
	}
	if c.dryRun {
		c.printPlan(stdout, c.estimate())
		return nil
	}
	return c.run(ctx, stdout, stderr)
}

// parseCompare parses the flags, builds and validates the plan and checks
// the output folder, all before any load.
func parseCompare(args []string, stdout io.Writer) (*comparison, error) {
	ps := presets()
	def, quickP := ps["default"], ps["quick"]
	fs := flag.NewFlagSet("compare", flag.ContinueOnError)
	quick := fs.Bool("quick", false, "the quick preset: the same shape, tiny (under 90 s; used by CI)")
	transports := fs.String("transports", "", "transports, comma-separated (preset: "+strings.Join(def.transports, ",")+")")
	clientsL := fs.String("clients", "", "client counts of the clients sweep (preset: "+joinInts(def.clients)+"; quick "+joinInts(quickP.clients)+")")
	rates := fs.String("rates", "", "events/s of the rate sweep (preset: "+joinFloats(def.rates)+"; quick "+joinFloats(quickP.rates)+")")
	payloads := fs.String("payloads", "", "payload sizes in bytes (preset: "+joinInts(def.payloads)+")")
	intervals := fs.String("intervals", "", "short-poll intervals, one variant each (preset: "+joinDurations(def.intervals)+")")
	duration := fs.Duration("duration", 0, fmt.Sprintf("base measured window (preset: %v; quick %v)", def.duration, quickP.duration))
	minEvents := fs.Int("min-events", 0, fmt.Sprintf("stretch the window at low rates to hold this many events per client (preset: %d; quick %d; 0: no stretch)", def.minEvents, quickP.minEvents))
	warmup := fs.Duration("warmup", 0, fmt.Sprintf("warm-up before each window (preset: %v; quick %v)", def.warmup, quickP.warmup))
	hold := fs.Duration("hold", 0, "long-poll hold timeout of the server (0: the server's default)")
	connectRate := fs.Float64("connect-rate", def.connectRate, "new subscriptions per second in each cell's connect phase")
	repeat := fs.Int("repeat", 1, "run the whole matrix this many times (repeats of a cell are summarised by their median)")
	pin := fs.Bool("pin", false, "pin each server child and the load generator to disjoint CPU sets")
	dryRun := fs.Bool("dry-run", false, "print the planned cells and the time estimate, run nothing")
	out := fs.String("out", "", "output folder, new or empty (default results/runs/<UTC stamp>, with results/latest pointing at it)")
	fs.Usage = func() {
		w := fs.Output()
		fmt.Fprintln(w, "usage: pushbench compare [--quick] [flags] [--out DIR]")
		fmt.Fprintln(w, "Runs a scenario matrix across transports, one cell at a time, each against its own server")
		fmt.Fprintln(w, "child, and writes results.jsonl, run.json and the report (summary.md, summary.csv, bench.txt,")
		fmt.Fprintln(w, "charts, index.html) into the output folder.")
		fmt.Fprintln(w)
		fmt.Fprintln(w, "The matrix is a star, not a full cross product: a clients sweep at the centre rate (1/s if")
		fmt.Fprintln(w, "listed, else the middle rate) and the smallest payload, and every rate × every payload at the")
		fmt.Fprintln(w, "centre client count (100 if listed, else the middle count; quick: 10). Every transport runs at")
		fmt.Fprintln(w, "every point, short polling once per interval. A list flag replaces the preset's list.")
		fmt.Fprintln(w)
		fmt.Fprintln(w, "Each cell's window is --duration, stretched to hold --min-events events per client at low")
		fmt.Fprintln(w, "rates and rounded up to whole event intervals and whole short-poll intervals; its warm-up is")
		fmt.Fprintln(w, "--warmup rounded up to whole event intervals (at least one). Both keep the counted span of")
		fmt.Fprintln(w, "bytes, requests and CPU equal to the window. --dry-run shows the resulting plan.")
		fmt.Fprintln(w)
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args, stdout); err != nil {
		return nil, err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })

	p := def
	if *quick {
		p = quickP
	}
	var err error
	if *transports != "" {
		if p.transports, err = parseTransports(*transports); err != nil {
			return nil, err
		}
	}
	if *clientsL != "" {
		if p.clients, err = parseList("clients", *clientsL, strconv.Atoi); err != nil {
			return nil, err
		}
	}
	if *rates != "" {
		if p.rates, err = parseList("rates", *rates, func(s string) (float64, error) { return strconv.ParseFloat(s, 64) }); err != nil {
			return nil, err
		}
	}
	if *payloads != "" {
		if p.payloads, err = parseList("payloads", *payloads, strconv.Atoi); err != nil {
			return nil, err
		}
	}
	if *intervals != "" {
		if p.intervals, err = parseList("intervals", *intervals, time.ParseDuration); err != nil {
			return nil, err
		}
		for _, iv := range p.intervals {
			if iv <= 0 {
				return nil, usagef("compare: --intervals: %v: a poll interval must be positive", iv)
			}
		}
	}
	if set["duration"] {
		if *duration <= 0 {
			return nil, usagef("compare: --duration %v: the measured window must be positive", *duration)
		}
		p.duration = *duration
	}
	if set["min-events"] {
		if *minEvents < 0 {
			return nil, usagef("compare: --min-events %d: must not be negative", *minEvents)
		}
		p.minEvents = *minEvents
	}
	if set["warmup"] {
		if *warmup < 0 {
			return nil, usagef("compare: --warmup %v: must not be negative", *warmup)
		}
		p.warmup = *warmup
	}
	if *hold < 0 {
		return nil, usagef("compare: --hold %v: must not be negative", *hold)
	}
	p.hold = *hold
	if !(*connectRate > 0) || math.IsInf(*connectRate, 0) {
		return nil, usagef("compare: --connect-rate %v: must be a positive number of connections per second", *connectRate)
	}
	p.connectRate = *connectRate
	if *repeat < 1 {
		return nil, usagef("compare: --repeat %d: need at least one pass", *repeat)
	}
	p.repeat = *repeat
	if *quick {
		p.name = "quick"
	}
	if set["transports"] || set["clients"] || set["rates"] || set["payloads"] || set["intervals"] ||
		set["duration"] || set["min-events"] || set["warmup"] || set["hold"] || set["connect-rate"] || set["repeat"] {
		p.name += " (with overrides)"
	}

	c := &comparison{p: p, cells: p.plan(), pin: *pin, command: append([]string{"pushbench", "compare"}, args...)}
	for _, cell := range c.cells {
		if err := cell.s.Validate(); err != nil {
			return nil, usagef("compare: cell %s: %s", cell.name(), strings.TrimPrefix(err.Error(), bench.ErrScenario.Error()+": "))
		}
	}
	if err := proc.CheckLimits(slices.Max(p.clients)); err != nil {
		return nil, usageError{fmt.Errorf("compare: %w", err)}
	}

	c.out = *out
	if c.out == "" {
		c.out = filepath.Join("results", "runs", time.Now().UTC().Format("20060102T150405Z"))
		c.linkDir = true
	}
	c.dryRun = *dryRun
	if err := checkEmptyDir(c.out); err != nil && !c.dryRun {
		return nil, usageError{fmt.Errorf("compare: --out %w", err)}
	}
	return c, nil
}

// parseTransports parses a comma-separated transport list into display
// order without duplicates.
func parseTransports(list string) ([]string, error) {
	names, err := parseList("transports", list, func(s string) (string, error) {
		if !slices.Contains(transport.Names(), s) {
			return "", fmt.Errorf("unknown transport (want %s)", strings.Join(transport.Names(), ", "))
		}
		return s, nil
	})
	if err != nil {
		return nil, err
	}
	var out []string
	for _, t := range transport.Names() {
		if slices.Contains(names, t) {
			out = append(out, t)
		}
	}
	return out, nil
}

// parseList parses a comma-separated list of flag name with parse,
// dropping duplicates.
func parseList[T comparable](name, list string, parse func(string) (T, error)) ([]T, error) {
	var out []T
	for _, f := range strings.Split(list, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			return nil, usagef("compare: --%s %q: empty list element", name, list)
		}
		v, err := parse(f)
		if err != nil {
			var ne *strconv.NumError
			if errors.As(err, &ne) {
				err = ne.Err
			}
			return nil, usagef("compare: --%s: %q: %v", name, f, err)
		}
		if !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	return out, nil
}

// checkEmptyDir accepts a folder that does not exist yet or is empty: a
// comparison never appends to an old run.
func checkEmptyDir(dir string) error {
	fi, err := os.Stat(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("%s: %v", dir, err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("%s is not a folder", dir)
	}
	f, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("%s: %v", dir, err)
	}
	defer f.Close()
	if names, _ := f.Readdirnames(1); len(names) > 0 {
		return fmt.Errorf("%s is not empty: a comparison never appends to an old run; give a new or empty folder", dir)
	}
	return nil
}

// compareConfig is run.json's config: the matrix, the flags, and every
// cell with its status, so that an interrupted or failed comparison says
// which cells it has.
type compareConfig struct {
	Preset        string       `json:"preset"`
	Transports    []string     `json:"transports"`
	Intervals     []string     `json:"shortpoll_intervals"`
	Clients       []int        `json:"clients"`
	Rates         []float64    `json:"rates"`
	Payloads      []int        `json:"payloads"`
	CentreClients int          `json:"centre_clients"`
	CentreRate    float64      `json:"centre_rate"`
	CentrePayload int          `json:"centre_payload"`
	Warmup        string       `json:"warmup"`
	Duration      string       `json:"duration"`
	MinEvents     int          `json:"min_events"`
	Hold          string       `json:"hold"`
	ConnectRate   float64      `json:"connect_rate"`
	Repeat        int          `json:"repeat"`
	Pin           bool         `json:"pin"`
	Estimate      string       `json:"estimate"`
	Cells         []cellStatus `json:"cells"`
}

// cellStatus is one planned cell in run.json.
type cellStatus struct {
	Cell     string `json:"cell"`
	Pass     int    `json:"pass"`
	Warmup   string `json:"warmup"`
	Duration string `json:"duration"`
	// Status: "planned", "running", "done" (a record; its checks may have
	// failed), "partial" (interrupted, record kept), "error" (no record)
	// or "not run" (after an interruption).
	Status string `json:"status"`
	Error  string `json:"error,omitempty"`
	Wall   string `json:"wall,omitempty"`
}

func (c *comparison) config(est time.Duration) compareConfig {
	p := c.p
	cfg := compareConfig{
		Preset:        p.name,
		Transports:    p.transports,
		Clients:       sorted(p.clients),
		Rates:         sorted(p.rates),
		Payloads:      sorted(p.payloads),
		CentreClients: centre(p.clients, p.centreClients),
		CentreRate:    centre(p.rates, p.centreRate),
		CentrePayload: slices.Min(p.payloads),
		Warmup:        p.warmup.String(),
		Duration:      p.duration.String(),
		MinEvents:     p.minEvents,
		Hold:          p.hold.String(),
		ConnectRate:   p.connectRate,
		Repeat:        p.repeat,
		Pin:           c.pin,
		Estimate:      est.Round(time.Second).String(),
	}
	if slices.Contains(p.transports, transport.ShortPoll) {
		for _, iv := range p.intervals {
			cfg.Intervals = append(cfg.Intervals, iv.String())
		}
	}
	for _, cell := range c.cells {
		cfg.Cells = append(cfg.Cells, cellStatus{
			Cell: cell.name(), Pass: cell.pass,
			Warmup: cell.s.Warmup.String(), Duration: cell.s.Duration.String(),
			Status: "planned",
		})
	}
	return cfg
}

// estimate is the expected wall time of the whole plan with its report.
func (c *comparison) estimate() time.Duration {
	var d time.Duration
	for _, cell := range c.cells {
		d += cellEstimate(cell.s)
	}
	return d + reportEstimate
}

// printPlan writes the plan as a table.
func (c *comparison) printPlan(w io.Writer, est time.Duration) {
	fmt.Fprintf(w, "pushbench compare: preset %s, %s, estimated %s; writing %s\n",
		c.p.name, report.Plural(len(c.cells), "cell"), fmtWall(est), c.out)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "cell\ttransport\tclients\tevents/s\tpayload B\twarm-up\twindow\test.\t")
	for i, cell := range c.cells {
		s := cell.s
		fmt.Fprintf(tw, "%d\t%s\t%d\t%s\t%d\t%v\t%v\t%s\t\n", i+1, variantName(s), s.Clients,
			strconv.FormatFloat(s.Rate, 'g', -1, 64), s.Payload, s.Warmup, s.Duration,
			fmtWall(cellEstimate(s)))
	}
	tw.Flush()
}

// run runs the plan cell by cell and writes the report.
func (c *comparison) run(ctx context.Context, stdout, stderr io.Writer) error {
	if err := os.MkdirAll(c.out, 0o755); err != nil {
		return fmt.Errorf("output folder: %w", err)
	}
	if c.linkDir {
		linkLatest(c.out)
	}
	logf, err := os.Create(filepath.Join(c.out, compareServerLog))
	if err != nil {
		return fmt.Errorf("server log: %w", err)
	}
	defer logf.Close()

	est := c.estimate()
	cfg := c.config(est)
	info := results.RunInfo{
		Preset:       c.p.name,
		Command:      c.command,
		Env:          buildEnvironment(),
		StartedAt:    time.Now().UTC().Format(time.RFC3339),
		CellsPlanned: len(c.cells),
	}
	runInfo := filepath.Join(c.out, results.RunInfoFile)
	writeInfo := func() error {
		raw, err := json.Marshal(cfg)
		if err != nil {
			return err
		}
		info.Config = raw
		return results.WriteRunInfo(runInfo, info)
	}
	if err := writeInfo(); err != nil {
		return err
	}
	c.printPlan(stdout, est)

	launch := c.launch
	if launch == nil {
		exe, err := os.Executable()
		if err != nil {
			return fmt.Errorf("find pushbench executable for the server child: %w", err)
		}
		launch = proc.ChildLauncher(exe, logf)
	}
	records := filepath.Join(c.out, results.RecordsFile)
	start := time.Now()
	var failed []string // cells whose run returned an error, with it
	recorded, badChecks := 0, 0
	interrupted := false
	for i, cell := range c.cells {
		if ctx.Err() != nil {
			interrupted = true
			for j := i; j < len(c.cells); j++ {
				cfg.Cells[j].Status = "not run"
			}
			break
		}
		st := &cfg.Cells[i]
		st.Status = "running"
		if err := writeInfo(); err != nil {
			return err
		}
		fmt.Fprintf(logf, "== cell %d/%d %s pass %d\n", i+1, len(c.cells), cell.name(), cell.pass)

		opt := bench.Options{Launch: launch, ServerLog: logf, Pin: c.pin}
		prog := newProgress(stderr, !isTerminal(stderr), cell.s)
		opt.Progress = prog.update
		t0 := time.Now()
		rec, _, runErr := bench.Run(ctx, cell.s, opt)
		prog.finish()
		st.Wall = time.Since(t0).Round(10 * time.Millisecond).String()
		tag := fmt.Sprintf("[%*d/%d %s]", len(strconv.Itoa(len(c.cells))), i+1, len(c.cells), fmtWall(time.Since(start)))

		if rec != nil {
			// Every cell runs this binary: give the records the run's
			// environment, whose commit is the one the binary was built
			// from, not whatever the work tree holds when the cell ends.
			rec.Env = info.Env
			if err := results.AppendRecord(records, *rec); err != nil {
				st.Status, st.Error = "error", err.Error()
				_ = writeInfo()
				return err
			}
			recorded++
			st.Status = "done"
			if rec.Partial {
				st.Status = "partial"
			} else {
				info.CellsDone++
			}
			if len(rec.FailedChecks()) > 0 {
				badChecks++
			}
			fmt.Fprintf(stdout, "%s %s\n", tag, report.Line(rec))
		}
		if runErr != nil {
			if ctx.Err() != nil {
				interrupted = true
				if rec == nil {
					st.Status = "not run"
				}
				for j := i + 1; j < len(c.cells); j++ {
					cfg.Cells[j].Status = "not run"
				}
				fmt.Fprintf(stderr, "pushbench compare: interrupted during cell %d/%d %s\n", i+1, len(c.cells), cell.name())
				break
			}
			if rec == nil {
				st.Status = "error"
			}
			st.Error = oneLine(runErr)
			failed = append(failed, fmt.Sprintf("%s: %s", cell.name(), st.Error))
			fmt.Fprintf(stderr, "%s %s: error: %s\n", tag, cell.name(), st.Error)
		}
		if err := writeInfo(); err != nil {
			return err
		}
	}
	if !interrupted {
		info.FinishedAt = time.Now().UTC().Format(time.RFC3339)
	}
	if err := writeInfo(); err != nil {
		return err
	}

	var reportErr error
	if recorded > 0 {
		reportErr = report.Report(c.out)
		if _, statErr := os.Stat(filepath.Join(c.out, report.IndexFile)); statErr == nil {
			fmt.Fprintf(stdout, "pushbench compare: %s of %d recorded in %s; report: %s\n",
				report.Plural(recorded, "cell"), len(c.cells), fmtWall(time.Since(start)), filepath.Join(c.out, report.IndexFile))
		}
	}
	if badChecks > 0 {
		fmt.Fprintf(stderr, "pushbench compare: %s failed self-checks (named in the lines above and in summary.md)\n", report.Plural(badChecks, "cell"))
	}

	var errs []error
	switch {
	case interrupted:
		kept := ""
		if n := recorded - info.CellsDone; n > 0 {
			kept = fmt.Sprintf(" and %d partial", n)
		}
		errs = append(errs, fmt.Errorf("interrupted: %d of %d cells done%s, results kept in %s", info.CellsDone, len(c.cells), kept, c.out))
	case len(failed) > 0:
		errs = append(errs, fmt.Errorf("%d of %d cells failed (first: %s)", len(failed), len(c.cells), failed[0]))
	}
	if recorded == 0 {
		errs = append(errs, errors.New("no cell recorded, so no report"))
	} else if reportErr != nil {
		errs = append(errs, fmt.Errorf("report of %s is incomplete: %s", c.out, oneLine(reportErr)))
	}
	if len(errs) > 0 {
		msgs := make([]string, len(errs))
		for i, e := range errs {
			msgs[i] = e.Error()
		}
		return errors.New(strings.Join(msgs, "; "))
	}
	return nil
}

// buildEnvironment is proc.Environment with the commit this binary was
// built from (Go stamps it into binaries built inside a git work tree),
// when it has one: the work tree may move on while a comparison runs.
func buildEnvironment() results.Env {
	env := proc.Environment()
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return env
	}
	var rev string
	modified := false
	for _, kv := range bi.Settings {
		switch kv.Key {
		case "vcs.revision":
			rev = kv.Value
		case "vcs.modified":
			modified = kv.Value == "true"
		}
	}
	if rev != "" {
		env.Commit = rev
		if modified {
			env.Commit += "-dirty"
		}
	}
	return env
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// fmtWall formats a wall time in whole seconds: 41s, 9m41s, 1h02m00s.
func fmtWall(d time.Duration) string {
	d = d.Round(time.Second)
	switch {
	case d < time.Minute:
		return d.String()
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds", d/time.Minute, d%time.Minute/time.Second)
	}
	return fmt.Sprintf("%dh%02dm%02ds", d/time.Hour, d%time.Hour/time.Minute, d%time.Minute/time.Second)
}

func joinInts(vs []int) string {
	s := make([]string, len(vs))
	for i, v := range vs {
		s[i] = strconv.Itoa(v)
	}
	return strings.Join(s, ",")
}

func joinFloats(vs []float64) string {
	s := make([]string, len(vs))
	for i, v := range vs {
		s[i] = strconv.FormatFloat(v, 'g', -1, 64)
	}
	return strings.Join(s, ",")
}

func joinDurations(vs []time.Duration) string {
	s := make([]string, len(vs))
	for i, v := range vs {
		s[i] = v.String()
	}
	return strings.Join(s, ",")
}
