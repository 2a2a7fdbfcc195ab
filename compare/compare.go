// Package compare plans and runs a comparison: the presets, the scenario
// matrix, the alignment of each cell's window, the cell loop (each cell
// against a fresh server child) and run.json, the record of what was
// planned and what happened to each cell. cmd/pushbench only parses the
// flags into a Comparison.
package compare

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"golang.org/x/term"

	"pushbench/bench"
	"pushbench/browser"
	"pushbench/netem"
	"pushbench/proc"
	"pushbench/report"
	"pushbench/results"
	"pushbench/transport"
	"pushbench/webhttp"
)

// ServerLogFile is the file of a comparison's run folder that receives
// the server children's own output, one header line per cell.
const ServerLogFile = "server.log"

// preset is a comparison matrix and its timing. The matrix is star-shaped,
// not a full cross product: a clients sweep at the centre rate and the
// smallest payload, and a rate × payload grid at the centre client count.
// Every transport (and every short-poll interval) runs at every point.
type Preset struct {
	Name       string
	Transports []string
	Intervals  []time.Duration // short-poll intervals, one variant each
	Clients    []int
	Rates      []float64
	Payloads   []int
	// centreClients and centreRate are where the sweeps cross when the
	// lists contain them (otherwise the lists' middle values).
	CentreClients int
	CentreRate    float64

	Warmup   time.Duration
	Duration time.Duration // base measured window
	// minEvents stretches the window at low rates to hold at least this
	// many events per client: window = max(duration, minEvents ÷ rate).
	MinEvents int
	// Networks are the emulated networks, each a dimension of the matrix
	// (none: loopback only).
	Networks []netem.Profile
	// HTTP are the ways of speaking HTTP, each a dimension of the matrix
	// (none: webhttp.Browser). A variant a transport cannot run (HTTP/2
	// for an upgrade) is skipped for that transport.
	HTTP []webhttp.Options
	// Workload is every cell's (bench.WorkloadBroadcast when empty). For
	// chat the rate sweep is each client's messages per second, for the
	// game the ticks per second; Room is the clients per room, and
	// InputRate the game clients' inputs per second (0: the tick rate).
	Workload  string
	Room      int
	InputRate float64
	// ClientKinds are who subscribes, each a dimension of the matrix
	// (none: bench.ClientGo): go, browser. A browser cell skips the
	// transports a page cannot run (tcp); Browsers is its Chromium
	// processes (0: bench.Scenario.BrowserCount's default).
	ClientKinds []string
	Browsers    int
	// CutEvery and SSERetry are every cell's stream cuts and SSE retry
	// (bench.Scenario): a cell of a transport that is not a stream (or
	// not SSE, for the retry) runs without them.
	CutEvery, SSERetry time.Duration
	// Idle is each cell's idle interval (0: the scenario's default).
	Idle        time.Duration
	Hold        time.Duration
	ConnectRate float64
	Repeat      int
}

// Presets returns the named presets. default shows the crossovers in
// about ten minutes on two cores, with its headline cells (100 and 1000
// clients at 10 events/s, 10 s windows) resting on 100 independent events
// each, enough for a p99; quick has the same shape, tiny, for CI.
func Presets() map[string]Preset {
	def := Preset{
		Name:          "default",
		Transports:    slices.Clone(transport.Names()),
		Intervals:     []time.Duration{time.Second, 100 * time.Millisecond},
		Clients:       []int{1, 100, 1000},
		Rates:         []float64{1, 10, 100},
		Payloads:      []int{64, 4096},
		CentreClients: 100,
		CentreRate:    10,
		HTTP:          []webhttp.Options{webhttp.Browser()},
		Warmup:        time.Second,
		Duration:      10 * time.Second,
		MinEvents:     3,
		ConnectRate:   1000,
		Repeat:        1,
	}
	quick := def
	quick.Name = "quick"
	quick.Clients = []int{1, 10, 50}
	quick.Rates = []float64{1, 100}
	quick.CentreClients = 10
	quick.Warmup = 200 * time.Millisecond
	quick.Duration = time.Second
	quick.MinEvents = 1
	quick.Idle = 200 * time.Millisecond
	// networks: every transport over every network profile, at 10
	// clients and 1 and 10 events/s: where each transport stands against
	// the RTT and the link (5 s windows keep 60 cells near 10 minutes;
	// their p99s rest on 50 events or fewer and say so).
	networks := def
	networks.Name = "networks"
	networks.Intervals = []time.Duration{time.Second}
	networks.Clients = []int{10}
	networks.Rates = []float64{1, 10}
	networks.Payloads = []int{64}
	networks.CentreClients = 10
	networks.Duration = 5 * time.Second
	for _, n := range netem.Names() {
		p, _ := netem.Lookup(n)
		networks.Networks = append(networks.Networks, p)
	}
	// overhead: Kaazing's table with measured bytes. Short polling once
	// a second and the push transports at one event a second, 100
	// clients, the smallest event, over HTTP/1.1 and HTTP/2, without and
	// with TLS, browser headers; Go's headers over plain HTTP/1.1 as the
	// baseline of every earlier run. 21 cells, about 6 minutes.
	overhead := def
	overhead.Name = "overhead"
	overhead.Intervals = []time.Duration{time.Second}
	overhead.Clients = []int{100}
	overhead.Rates = []float64{1}
	overhead.Payloads = []int{64}
	overhead.CentreClients = 100
	overhead.CentreRate = 1
	overhead.MinEvents = 10
	overhead.HTTP = nil
	for _, h := range []string{webhttp.HTTP1, webhttp.HTTP2} {
		for _, tls := range []bool{false, true} {
			o := webhttp.Browser()
			o.HTTP, o.TLS = h, tls
			overhead.HTTP = append(overhead.HTTP, o)
		}
	}
	overhead.HTTP = append([]webhttp.Options{webhttp.Default()}, overhead.HTTP...)
	// chat: 100 clients in rooms of 10, each sending 0.2, 1 or 5
	// messages a second of 128 B: send → receive latency, and what a
	// message costs upstream on each transport. 15 cells, about 4 minutes.
	chat := def
	chat.Name = "chat"
	chat.Workload = bench.WorkloadChat
	chat.Room = 10
	chat.Intervals = []time.Duration{time.Second}
	chat.Clients = []int{100}
	chat.Rates = []float64{0.2, 1, 5}
	chat.CentreRate = 1
	chat.Payloads = []int{128}
	chat.MinEvents = 0
	// game: 100 clients in rooms of 10, a snapshot of 512 B per room at
	// 10, 20 and 60 ticks a second, every client sending an input per
	// tick: snapshot latency, and input latency against the tick rate.
	game := chat
	game.Name = "game"
	game.Workload = bench.WorkloadGame
	game.Rates = []float64{10, 20, 60}
	game.CentreRate = 20
	game.Payloads = []int{512}
	// browser: every transport measured by the Go clients and by pages in
	// headless Chromium, 6 pages (one browser) and 24 (four), 10 events/s
	// of 64 B, browser headers over HTTP/1.1: what a browser adds to
	// latency and what its pages cost. 18 cells, about 7 minutes.
	browser := def
	browser.Name = BrowserPreset
	browser.ClientKinds = []string{bench.ClientGo, bench.ClientBrowser}
	browser.Intervals = []time.Duration{time.Second}
	browser.Clients = []int{6, 24}
	browser.CentreClients = 6
	browser.Rates = []float64{10}
	browser.Payloads = []int{64}
	return map[string]Preset{"default": def, "quick": quick, "networks": networks, "overhead": overhead, "chat": chat, "game": game, BrowserPreset: browser}
}

// BrowserPreset is the name of the preset that measures browser pages
// beside Go clients (its run fills the README's browser block).
const BrowserPreset = report.BrowserPreset

// Cell is one scenario of the plan; pass counts the repeats from 1.
type Cell struct {
	S    bench.Scenario // WithDefaults applied
	Pass int
}

// Name is the cell's name in bench.txt style, e.g.
// "transport=shortpoll-1s/clients=100/rate=1/payload=64".
func (c Cell) Name() string {
	return report.CellName(c.S.Record())
}

// NetworkNames lists the profiles' names.
func NetworkNames(ps []netem.Profile) []string {
	var out []string
	for _, p := range ps {
		out = append(out, p.Name)
	}
	return out
}

// networkDescriptions describes each profile with its values, for run.json.
func networkDescriptions(ps []netem.Profile) []string {
	var out []string
	for _, p := range ps {
		out = append(out, p.String())
	}
	return out
}

// applyWorkload sets the workload of a cell at rate: the rate is a chat
// client's messages per second, or the game's ticks per second.
func (p Preset) applyWorkload(s *bench.Scenario, rate float64) {
	s.Workload = cmp.Or(p.Workload, bench.WorkloadBroadcast)
	s.Room = p.Room
	switch s.Workload {
	case bench.WorkloadChat:
		s.SendRate = rate
	case bench.WorkloadGame:
		s.Tick = rate
		s.InputRate = cmp.Or(p.InputRate, rate)
	}
}

// httpDescriptions names each way of speaking HTTP by its bench.txt
// suffix, "default" for Go's plain HTTP/1.1.
func httpDescriptions(hs []webhttp.Options) []string {
	var out []string
	for _, h := range hs {
		d := strings.TrimPrefix(h.Suffix(), "/")
		if d == "" {
			d = "default"
		}
		out = append(out, d)
	}
	return out
}

// hasIntervals reports whether a transport of p polls on an interval grid.
func (p Preset) hasIntervals() bool {
	return slices.ContainsFunc(p.Transports, transport.HasInterval)
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

// browserOverhead is what a browser cell adds besides its page loads.
const browserOverhead = 8 * time.Second

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
	if transport.HasInterval(s.Transport) {
		last += s.Interval
	}
	if s.Network.Emulated() {
		d += time.Duration(bench.ProbeRounds+3) * s.Network.RTT // the probe, the connect and the drain
	}
	if s.Client == bench.ClientBrowser {
		// Chromium's start, a page load each, and the wait for the
		// browsers to settle (measured here: 4 to 8 s).
		d += browserOverhead + time.Duration(s.Clients)*100*time.Millisecond
	}
	return d + s.Idle + max(s.Warmup+s.Duration-half, last)
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
func (p Preset) Timing(rate float64) (warmup, window time.Duration) {
	window = p.Duration
	if !(rate > 0) {
		return p.Warmup, window // Validate rejects the cell
	}
	if p.MinEvents > 0 {
		window = max(window, ceilDuration(float64(p.MinEvents)/rate, time.Millisecond))
	}
	ev := ceilDuration(1/rate, time.Millisecond)
	exact := false
	if ns := 1e9 / rate; ns < float64(maxWindow) && math.Abs(ns-math.Round(ns)) < 1e-3 {
		ev, exact = time.Duration(math.Round(ns)), true
	}
	// Align the window to the short-poll intervals and, if that does not
	// more than double it, to the event interval as well.
	var polls time.Duration
	if p.hasIntervals() {
		for _, t := range p.Intervals {
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
	return max(roundUp(p.Warmup, ev), ev), min(window, maxWindow)
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
func (p Preset) coords() []coord {
	cc := centre(p.Clients, p.CentreClients)
	cr := centre(p.Rates, p.CentreRate)
	cp := slices.Min(p.Payloads)
	var out []coord
	add := func(c coord) {
		if !slices.Contains(out, c) {
			out = append(out, c)
		}
	}
	for _, n := range sorted(p.Clients) {
		add(coord{n, cr, cp})
	}
	for _, pl := range sorted(p.Payloads) {
		for _, r := range sorted(p.Rates) {
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
func (p Preset) Plan() []Cell {
	var cells []Cell
	networks := p.Networks
	if len(networks) == 0 {
		networks = []netem.Profile{{Name: netem.Loopback}}
	}
	variants := p.HTTP
	if len(variants) == 0 {
		variants = []webhttp.Options{webhttp.Browser()}
	}
	for pass := 1; pass <= p.Repeat; pass++ {
		for _, nw := range networks {
			for _, at := range p.coords() {
				for _, ck := range p.clientKinds() {
					for _, h := range variants {
						p.planPoint(&cells, pass, nw, h, at, ck)
					}
				}
			}
		}
	}
	return cells
}

// clientKinds is ClientKinds, bench.ClientGo when empty.
func (p Preset) clientKinds() []string {
	if len(p.ClientKinds) == 0 {
		return []string{bench.ClientGo}
	}
	return p.ClientKinds
}

// planPoint adds every transport variant at one point of one network,
// spoken one way (h); a transport that cannot run h is left out.
func (p Preset) planPoint(cells *[]Cell, pass int, nw netem.Profile, h webhttp.Options, at coord, client string) {
	for _, t := range p.Transports {
		if h.Validate(t) != nil {
			continue
		}
		if client == bench.ClientBrowser && (!slices.Contains(browser.Transports, t) || (h.HTTP == webhttp.HTTP2 && !h.TLS)) {
			continue // a page has no API for raw TCP; a browser speaks h2 only over TLS
		}
		intervals := []time.Duration{0}
		if transport.HasInterval(t) {
			intervals = p.Intervals
		}
		for _, iv := range intervals {
			s := bench.DefaultScenario()
			s.Transport = t
			s.Clients = at.clients
			s.Rate = at.rate
			s.Payload = at.payload
			s.Interval = iv
			s.Hold = p.Hold
			s.Idle = p.Idle
			s.ConnectRate = p.ConnectRate
			s.Warmup, s.Duration = p.Timing(at.rate)
			s.Drain = 0 // WithDefaults: 5 s, plus two intervals for short polling
			s.Network = nw
			s.HTTP = h
			p.applyWorkload(&s, at.rate)
			if info, _ := transport.Lookup(t); info.Floor {
				// The floor sends no HTTP headers and never compresses:
				// only TLS changes it, so it runs once per TLS setting.
				s.HTTP = webhttp.Default()
				s.HTTP.TLS = h.TLS
			}
			if client == bench.ClientBrowser {
				s.Client, s.Browsers = client, p.Browsers
			}
			if transport.IsStream(t) {
				s.CutEvery = p.CutEvery
				if t == transport.SSE {
					s.SSERetry = p.SSERetry
				}
			}
			cell := Cell{S: s.WithDefaults(), Pass: pass}
			if slices.ContainsFunc(*cells, func(c Cell) bool { return c.Pass == pass && c.S == cell.S }) {
				continue
			}
			*cells = append(*cells, cell)
		}
	}
}

// comparison is a parsed `pushbench compare`: the plan and where it goes.
type Comparison struct {
	P       Preset
	Cells   []Cell
	Out     string
	LinkDir bool // out is the default location: point results/latest at it
	Pin     bool
	DryRun  bool // print the plan only
	Command []string
	// launch starts each cell's server (nil: a child process of this
	// executable, as design.md section 5 requires for the figures).
	Launch proc.Launcher
	// Agents spread every cell's clients over load-generator agents.
	Agents bench.AgentSetup
}

// CheckEmptyDir accepts a folder that does not exist yet or is empty: a
// comparison never appends to an old run.
func CheckEmptyDir(dir string) error {
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

// Config is run.json's config: the matrix, the flags, and every
// cell with its status, so that an interrupted or failed comparison says
// which cells it has.
type Config struct {
	Preset        string       `json:"preset"`
	Transports    []string     `json:"transports"`
	Intervals     []string     `json:"shortpoll_intervals"`
	Networks      []string     `json:"networks,omitempty"`
	HTTP          []string     `json:"http_variants,omitempty"` // webhttp.Options.Suffix of each, "default" for none
	Workload      string       `json:"workload,omitempty"`      // chat or game ("": broadcast)
	Room          int          `json:"room,omitempty"`          // clients per room (chat, game)
	ClientKinds   []string     `json:"client_kinds,omitempty"`  // go, browser ("": go only)
	Browsers      int          `json:"browsers,omitempty"`      // Chromium processes per browser cell (0: one per 6 pages)
	CutEvery      string       `json:"cut_every,omitempty"`     // the server's stream cuts
	SSERetry      string       `json:"sse_retry,omitempty"`     // the SSE retry field
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
	Cells         []CellStatus `json:"cells"`
}

// cellStatus is one planned cell in run.json.
type CellStatus struct {
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

func (c *Comparison) config(est time.Duration) Config {
	p := c.P
	cfg := Config{
		Preset:        p.Name,
		Transports:    p.Transports,
		Clients:       sorted(p.Clients),
		Rates:         sorted(p.Rates),
		Payloads:      sorted(p.Payloads),
		CentreClients: centre(p.Clients, p.CentreClients),
		CentreRate:    centre(p.Rates, p.CentreRate),
		CentrePayload: slices.Min(p.Payloads),
		Networks:      networkDescriptions(p.Networks),
		HTTP:          httpDescriptions(p.HTTP),
		Workload:      p.Workload,
		Room:          p.Room,
		ClientKinds:   p.ClientKinds,
		Browsers:      p.Browsers,
		Warmup:        p.Warmup.String(),
		Duration:      p.Duration.String(),
		MinEvents:     p.MinEvents,
		Hold:          p.Hold.String(),
		ConnectRate:   p.ConnectRate,
		Repeat:        p.Repeat,
		Pin:           c.Pin,
		Estimate:      est.Round(time.Second).String(),
	}
	if p.CutEvery > 0 {
		cfg.CutEvery = p.CutEvery.String()
	}
	if p.SSERetry > 0 {
		cfg.SSERetry = p.SSERetry.String()
	}
	if p.hasIntervals() {
		for _, iv := range p.Intervals {
			cfg.Intervals = append(cfg.Intervals, iv.String())
		}
	}
	for _, cell := range c.Cells {
		cfg.Cells = append(cfg.Cells, CellStatus{
			Cell: cell.Name(), Pass: cell.Pass,
			Warmup: cell.S.Warmup.String(), Duration: cell.S.Duration.String(),
			Status: "planned",
		})
	}
	return cfg
}

// estimate is the expected wall time of the whole plan with its report.
func (c *Comparison) Estimate() time.Duration {
	var d time.Duration
	for _, cell := range c.Cells {
		d += cellEstimate(cell.S)
	}
	return d + reportEstimate
}

// printPlan writes the plan as a table.
func (c *Comparison) PrintPlan(w io.Writer, est time.Duration) {
	fmt.Fprintf(w, "pushbench compare: preset %s, %s, estimated %s; writing %s\n",
		c.P.Name, report.Plural(len(c.Cells), "cell"), FmtWall(est), c.Out)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "cell\ttransport\tclient\thttp\tnetwork\tclients\tevents/s\tpayload B\twarm-up\twindow\test.\t")
	for i, cell := range c.Cells {
		s := cell.S
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%d\t%s\t%d\t%v\t%v\t%s\t\n", i+1, transport.VariantName(s.Transport, s.Interval),
			cmp.Or(s.Client, bench.ClientGo), httpDescriptions([]webhttp.Options{s.HTTP})[0], s.Record().Network.Name, s.Clients,
			strconv.FormatFloat(s.Rate, 'g', -1, 64), s.Payload, s.Warmup, s.Duration,
			FmtWall(cellEstimate(s)))
	}
	tw.Flush()
}

// run runs the plan cell by cell and writes the report.
func (c *Comparison) Run(ctx context.Context, stdout, stderr io.Writer) error {
	if err := os.MkdirAll(c.Out, 0o755); err != nil {
		return fmt.Errorf("output folder: %w", err)
	}
	if c.LinkDir {
		results.LinkLatest(c.Out)
	}
	logf, err := os.Create(filepath.Join(c.Out, ServerLogFile))
	if err != nil {
		return fmt.Errorf("server log: %w", err)
	}
	defer logf.Close()

	est := c.Estimate()
	cfg := c.config(est)
	info := results.RunInfo{
		Preset:       c.P.Name,
		Command:      c.Command,
		Env:          proc.BuildEnvironment(),
		StartedAt:    time.Now().UTC().Format(time.RFC3339),
		CellsPlanned: len(c.Cells),
	}
	runInfo := filepath.Join(c.Out, results.RunInfoFile)
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
	c.PrintPlan(stdout, est)

	launch := c.Launch
	if launch == nil {
		exe, err := os.Executable()
		if err != nil {
			return fmt.Errorf("find pushbench executable for the server child: %w", err)
		}
		launch = proc.ChildLauncher(exe, logf)
	}
	records := filepath.Join(c.Out, results.RecordsFile)
	start := time.Now()
	var failed []string // cells whose run returned an error, with it
	recorded, badChecks := 0, 0
	interrupted := false
	for i, cell := range c.Cells {
		if ctx.Err() != nil {
			interrupted = true
			for j := i; j < len(c.Cells); j++ {
				cfg.Cells[j].Status = "not run"
			}
			break
		}
		st := &cfg.Cells[i]
		st.Status = "running"
		if err := writeInfo(); err != nil {
			return err
		}
		fmt.Fprintf(logf, "== cell %d/%d %s pass %d\n", i+1, len(c.Cells), cell.Name(), cell.Pass)

		opt := bench.Options{Launch: launch, ServerLog: logf, Pin: c.Pin}
		c.Agents.Apply(&opt)
		prog := bench.NewDisplay(stderr, !isTerminal(stderr), cell.S)
		opt.Progress = prog.Update
		t0 := time.Now()
		rec, _, runErr := bench.Run(ctx, cell.S, opt)
		prog.Finish()
		st.Wall = time.Since(t0).Round(10 * time.Millisecond).String()
		tag := fmt.Sprintf("[%*d/%d %s]", len(strconv.Itoa(len(c.Cells))), i+1, len(c.Cells), FmtWall(time.Since(start)))

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
			switch results.StatusOf(rec) {
			case results.StatusOK:
				st.Status = "done"
				info.CellsDone++
			default:
				st.Status = results.StatusOf(rec) // partial or failed, record kept
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
				for j := i + 1; j < len(c.Cells); j++ {
					cfg.Cells[j].Status = "not run"
				}
				fmt.Fprintf(stderr, "pushbench compare: interrupted during cell %d/%d %s\n", i+1, len(c.Cells), cell.Name())
				break
			}
			st.Error = report.OneLine(runErr)
			if rec == nil {
				// No measurement: the cell still gets a record, so that
				// every report shows it with its reason.
				st.Status = "error"
				stub := results.Record{
					Schema: results.Schema, Scenario: cell.S.Record(), Status: results.StatusError,
					Error: st.Error, Env: info.Env, Checks: map[string]results.Check{},
					StartedAt: t0.UTC().Format(time.RFC3339), FinishedAt: time.Now().UTC().Format(time.RFC3339),
				}
				if err := results.AppendRecord(records, stub); err != nil {
					return err
				}
				recorded++
			}
			failed = append(failed, fmt.Sprintf("%s: %s", cell.Name(), st.Error))
			fmt.Fprintf(stderr, "%s %s: error: %s\n", tag, cell.Name(), st.Error)
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
		reportErr = report.Report(c.Out)
		if _, statErr := os.Stat(filepath.Join(c.Out, report.IndexFile)); statErr == nil {
			fmt.Fprintf(stdout, "pushbench compare: %s of %d recorded in %s; report: %s\n",
				report.Plural(recorded, "cell"), len(c.Cells), FmtWall(time.Since(start)), filepath.Join(c.Out, report.IndexFile))
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
			kept = fmt.Sprintf(" and %d partial, failed or errored (kept with their status)", n)
		}
		errs = append(errs, fmt.Errorf("interrupted: %d of %d cells done%s, results kept in %s", info.CellsDone, len(c.Cells), kept, c.Out))
	case len(failed) > 0:
		errs = append(errs, fmt.Errorf("%d of %d cells failed (first: %s)", len(failed), len(c.Cells), failed[0]))
	}
	if recorded == 0 {
		errs = append(errs, errors.New("no cell recorded, so no report"))
	} else if reportErr != nil {
		errs = append(errs, fmt.Errorf("report of %s is incomplete: %s", c.Out, report.OneLine(reportErr)))
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

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// FmtWall formats a wall time in whole seconds: 41s, 9m41s, 1h02m00s.
func FmtWall(d time.Duration) string {
	d = d.Round(time.Second)
	switch {
	case d < time.Minute:
		return d.String()
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds", d/time.Minute, d%time.Minute/time.Second)
	}
	return fmt.Sprintf("%dh%02dm%02ds", d/time.Hour, d%time.Hour/time.Minute, d%time.Minute/time.Second)
}
