package report

import (
	"errors"
	"fmt"
	"image/color"
	"math"
	"slices"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	"pushbench/results"
)

// chart is one chart of a report: Name.png and Name.svg in the run folder.
type chart struct {
	Name  string // file name without extension
	Title string // what it shows, naming the scenario slice
	HowTo string // one line on how to read it
	fig   *figure
}

// charts builds every chart of the report. A chart that cannot be built
// is replaced by a panel that says why, and the reason is returned among
// errs, so the file set is always complete.
func (m *matrix) charts() (charts []chart, errs []error) {
	add := func(name, howTo string, build func() (*figure, error)) {
		howTo = forWork(m.head.Work, howTo) // a chat's or game's words in a run of them
		f, err := safeBuild(build)
		if err != nil {
			errs = append(errs, fmt.Errorf("chart %s: %w", name, err))
			f = &figure{title: name, panels: []*plot.Plot{noData("", "could not draw this chart: "+err.Error())}}
		}
		charts = append(charts, chart{Name: name, Title: f.title, HowTo: howTo, fig: f})
	}
	const latencyHow = "Read up from a percentile to its delivery latency; lower is better. " +
		"Each step right is ten times rarer (x = 1/(1−q)), so the right end is the tail a busy client sees. " +
		"A curve ends at the highest percentile its independent events support (1/(1−q) ≤ events): a cell of 10 events stops at 90%."
	for _, lc := range m.latencyCoords() {
		add(lc.name, latencyHow, func() (*figure, error) { return m.latencyPercentiles(lc.at, lc.what) })
	}
	m.workloadCharts(add)
	if rtts := slices.DeleteFunc(distinct(m.cells, dimRTT), func(v float64) bool { return v <= 0 }); len(rtts) > 1 {
		add("latency-vs-rtt",
			"Median (left) and 99th percentile (right) delivery latency against the emulated network's round-trip time; the dotted line is RTT/2, the one-way delay no transport can beat. Push transports should ride it; polling pays its interval or a second trip on top.",
			m.latencyVsRTT)
	}
	if len(m.limitedCells()) > 0 {
		add("link-time-per-event",
			"Time each delivered event keeps the emulated link busy: its wire bytes down and up (headers, framing and all) at the link's bandwidth in each direction, by network. On a thin link every header byte is waiting time; polling pays a request per event up. Lower is better.",
			m.linkTimePerEvent)
	}
	if pts := m.crossoverPoints(); len(pts) > 1 {
		add("longpoll-vs-websocket",
			"Long polling's median latency as a multiple of WebSocket's, against the event interval in round trips (interval ÷ RTT), one point per network and rate. Above 1 on the x axis events are rarer than a round trip and long polling keeps up (near 1×); below it each answer opens a blind window of one RTT while the next poll travels, and long polling falls behind.",
			m.crossoverChart)
	}
	add("latency-vs-clients",
		"Median (left) and 99th percentile (right) delivery latency as clients grow, same scale on both; lower is better, a rising line means the transport does not scale.",
		m.latencyVsClients)
	add("bytes-per-event",
		"Bytes on the wire (down + up, all headers and framing) per delivered event; the grey line is the event itself, so the gap above it is overhead. Lower is better.",
		m.bytesPerEvent)
	add("requests-per-event",
		"HTTP requests per delivered event: polling pays one request per poll, push one per connection. Zero is drawn on the bottom edge. Lower is better.",
		m.requestsPerEvent)
	add("cpu-per-event",
		"Server CPU time (user + sys, publisher excluded) per delivered event. Lower is better; polling's cost per event falls as more events share each poll.",
		m.cpuPerEvent)
	add("idle-cost-per-conn",
		"Server CPU per connection per second of holding it with nothing published, measured before each window: polling pays it on every poll, push transports only keep a socket. Lower is better.",
		m.idleCostPerConn)
	add("memory-per-conn",
		"Server resident memory per connected client: (RSS with all clients − RSS before) ÷ clients. Runs with fewer than 10 clients are left out when larger ones exist (a few connections vanish in page-size noise); bars below zero are noise too. Lower is better.",
		m.memoryPerConn)
	return charts, errs
}

// safeBuild runs build, turning a panic into an error.
func safeBuild(build func() (*figure, error)) (f *figure, err error) {
	defer func() {
		if r := recover(); r != nil {
			f, err = nil, fmt.Errorf("panic: %v", r)
		}
	}()
	return build()
}

// latencyCoord is a scenario whose latency distribution gets a chart.
type latencyCoord struct {
	name string
	what string // why this scenario, for the title
	at   coord
}

// latencyCoords returns the headline scenario and, where the matrix has
// them, the same scenario with the most clients and with the highest rate.
func (m *matrix) latencyCoords() []latencyCoord {
	hasHist := func(at coord) int {
		n := 0
		for _, c := range m.at(at) {
			if c.recs[0].Histogram != "" {
				n++
			}
		}
		return n
	}
	// The points of the cells that speak HTTP: the floor's own points
	// join them (m.at), unless the run has nothing else.
	var coords []coord
	for _, floors := range []bool{false, true} {
		for _, c := range m.cells {
			if c.isFloor() == floors && !slices.Contains(coords, c.at) {
				coords = append(coords, c.at)
			}
		}
		if len(coords) > 0 {
			break
		}
	}
	if len(coords) == 0 {
		return []latencyCoord{{name: "latency-percentiles", what: "headline", at: m.head}}
	}
	// The headline if it has histograms, else the scenario with the most
	// of them.
	head := slices.MaxFunc(coords, func(a, b coord) int {
		if c := cmpBool(hasHist(a) > 0, hasHist(b) > 0); c != 0 {
			return c
		}
		if c := cmpBool(a == m.head, b == m.head); c != 0 {
			return c
		}
		if c := hasHist(a) - hasHist(b); c != 0 {
			return c
		}
		return -compareCoords(a, b)
	})
	out := []latencyCoord{{name: "latency-percentiles", what: "headline", at: head}}
	pick := func(name, what string, keep func(coord) bool, better func(a, b coord) int) {
		var cand []coord
		for _, c := range coords {
			if keep(c) && hasHist(c) > 0 {
				cand = append(cand, c)
			}
		}
		if len(cand) == 0 {
			return
		}
		best := slices.MaxFunc(cand, better)
		for _, o := range out {
			if o.at == best {
				return
			}
		}
		out = append(out, latencyCoord{name: name, what: what, at: best})
	}
	pick("latency-percentiles-most-clients", "most clients",
		func(c coord) bool {
			return c.Work == head.Work && c.Rate == head.Rate && c.Payload == head.Payload && c.HTTP == head.HTTP
		},
		func(a, b coord) int { return a.Clients - b.Clients })
	pick("latency-percentiles-highest-rate", "highest rate",
		func(c coord) bool {
			return dimRate.without(c).Work == dimRate.without(head).Work && c.Clients == head.Clients && c.Payload == head.Payload && c.HTTP == head.HTTP
		},
		func(a, b coord) int { return compareFloat(a.Rate, b.Rate) })
	return out
}

func cmpBool(a, b bool) int {
	switch {
	case a == b:
		return 0
	case a:
		return 1
	}
	return -1
}

func compareFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// mergedHistogram merges the histograms of a cell's records (repeats).
// events is the number of independent events the cell's latencies rest on
// (repeats add theirs); 0 when a record does not say.
func (c *cell) events() uint64 {
	var n uint64
	for _, r := range c.recs {
		if results.StatusOf(r) == results.StatusError {
			continue
		}
		if r.Events == 0 && r.Status == "" {
			return 0 // written before the count was kept: unknown
		}
		n += r.Events
	}
	return n
}

// supports reports whether every measured repeat of the cell rests on
// enough independent events for a percentile that needs that many: the
// figure shown is the median of the repeats' own percentiles, so each must
// be one (true when the count is unknown: records from before it was
// kept).
func (c *cell) supports(needs uint64) bool {
	if needs == 0 || c.events() == 0 && !c.known() {
		return true
	}
	for _, r := range c.recs {
		if results.StatusOf(r) != results.StatusError && r.Events < needs {
			return false
		}
	}
	return true
}

// known reports whether the cell's records say how many events they rest on.
func (c *cell) known() bool {
	for _, r := range c.recs {
		if r.Events == 0 && r.Status == "" {
			return false
		}
	}
	return true
}

func (c *cell) mergedHistogram() (*hdrhistogram.Histogram, error) {
	var h *hdrhistogram.Histogram
	for _, r := range c.recs {
		if r.Histogram == "" {
			continue
		}
		rh, err := results.DecodeHistogram(r.Histogram)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", CellName(r.Scenario), err)
		}
		if h == nil {
			h = rh
			continue
		}
		if err := results.MergeInto(h, rh); err != nil {
			return nil, fmt.Errorf("%s: %w", CellName(r.Scenario), err)
		}
	}
	return h, nil
}

// percentileLabels label the x axis of the percentile charts at x = 1/(1−q).
var percentileLabels = []struct {
	x     float64
	label string
}{
	{1, "0%"}, {2, "50%"}, {10, "90%"}, {100, "99%"}, {1e3, "99.9%"},
	{1e4, "99.99%"}, {1e5, "99.999%"}, {1e6, "99.9999%"},
}

// maxInverse bounds the percentile axis at 99.9999%.
const maxInverse = 1e6

// percentileCurve samples h at x = 1/(1−q) from 1 to min(count, 10⁶), 24
// points per decade. q = 100% is not drawn: its x is infinite.
// percentileCurve samples h's percentiles up to 1/(1−q) = events (every
// value when events is 0: the sample size is unknown).
func percentileCurve(h *hdrhistogram.Histogram, events uint64) (xs, ys []float64) {
	n := float64(h.TotalCount())
	if n == 0 {
		return nil, nil
	}
	if events > 0 {
		n = math.Min(n, float64(events))
	}
	xmax := math.Min(n, maxInverse)
	const perDecade = 24
	steps := int(math.Ceil(math.Log10(xmax) * perDecade))
	for k := 0; k <= steps; k++ {
		x := math.Min(math.Pow(10, float64(k)/perDecade), xmax)
		xs = append(xs, x)
		ys = append(ys, float64(h.ValueAtPercentile(100*(1-1/x))))
		if x == xmax {
			break
		}
	}
	return xs, ys
}

func (m *matrix) latencyPercentiles(at coord, what string) (*figure, error) {
	title := capFirst(at.Work.latencyNoun()) + " percentiles — " + describe(at)
	if what != "headline" {
		title += " (" + what + ")"
	}
	type curve struct {
		v      variant
		xs, ys []float64
		marks  plotter.XYs
	}
	var curves []curve
	var errs []error
	var allY []float64
	xmax := 10.0
	for _, c := range m.at(at) {
		h, err := c.mergedHistogram()
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if h == nil || h.TotalCount() == 0 {
			continue
		}
		xs, ys := percentileCurve(h, c.events())
		cv := curve{v: c.v, xs: xs, ys: ys}
		for _, pl := range percentileLabels {
			if pl.x <= xs[len(xs)-1] {
				cv.marks = append(cv.marks, plotter.XY{X: pl.x, Y: float64(h.ValueAtPercentile(100 * (1 - 1/pl.x)))})
			}
		}
		curves = append(curves, cv)
		allY = append(allY, ys...)
		xmax = math.Max(xmax, xs[len(xs)-1])
	}
	if len(curves) == 0 {
		why := "no latency histogram recorded for this scenario"
		if len(errs) > 0 {
			why = "latency histograms unreadable"
		}
		return &figure{title: title, panels: []*plot.Plot{noData("", why)}}, errors.Join(errs...)
	}
	p := newPanel("", "percentile (x = 1/(1−q), log scale)", at.Work.latencyNoun()+" (log scale)")
	lo, hi, floor := logRange(allY)
	var vs []variant
	for _, cv := range curves {
		st := m.styleOf(cv.v)
		pts := make(plotter.XYs, len(cv.xs))
		ys := clampLog(cv.ys, floor)
		for i := range cv.xs {
			pts[i] = plotter.XY{X: cv.xs[i], Y: ys[i]}
		}
		if len(pts) > 1 {
			l, err := plotter.NewLine(pts)
			if err != nil {
				return nil, err
			}
			l.LineStyle = st.line()
			p.Add(l)
		}
		for i := range cv.marks {
			cv.marks[i].Y = clampLog([]float64{cv.marks[i].Y}, floor)[0]
		}
		sc, err := plotter.NewScatter(cv.marks)
		if err != nil {
			return nil, err
		}
		sc.GlyphStyle = st.glyphStyle()
		p.Add(sc)
		vs = append(vs, cv.v)
	}
	setLog(&p.Y, lo, hi, tickDuration)
	p.X.Scale = plot.LogScale{}
	p.X.Min, p.X.Max = 1, xmax
	p.X.Tick.Marker = plot.TickerFunc(func(min, max float64) []plot.Tick {
		var ticks []plot.Tick
		for _, pl := range percentileLabels {
			if pl.x >= min && pl.x <= max*(1+1e-9) {
				ticks = append(ticks, plot.Tick{Value: pl.x, Label: pl.label})
			}
		}
		return ticks
	})
	return &figure{title: title, panels: []*plot.Plot{p}, legend: m.legendFor(vs)}, errors.Join(errs...)
}

// lineChart builds a log-log panel of metric y against dimension x for the
// cells, one line per variant, and returns it with the variants drawn and
// the y values (before clamping) for shared ranges.
type lineSpec struct {
	title          string
	xLabel, yLabel string
	x              dim
	y              metric
	xTicks, yTicks func(float64) string
}

func (m *matrix) linePanel(spec lineSpec, cells []*cell) (*plot.Plot, []series) {
	p := newPanel(spec.title, spec.xLabel, spec.yLabel)
	vs, groups := byVariant(cells)
	var ss []series
	for _, v := range vs {
		s := series{v: v}
		cs := groups[v]
		slices.SortFunc(cs, func(a, b *cell) int { return compareFloat(spec.x.of(a.at), spec.x.of(b.at)) })
		for _, c := range cs {
			s.xs = append(s.xs, spec.x.of(c.at))
			s.ys = append(s.ys, c.value(spec.y))
		}
		ss = append(ss, s)
	}
	return p, ss
}

// finishLogLog adds the series to p with both axes logarithmic; ylo, yhi
// and floor come from logRange over every panel that shares the y axis.
// The x axis is labelled at the matrix levels the series use.
func (m *matrix) finishLogLog(p *plot.Plot, spec lineSpec, ss []series, ylo, yhi, floor float64) error {
	var xs []float64
	zero := false
	for i := range ss {
		xs = append(xs, ss[i].xs...)
		zero = zero || slices.ContainsFunc(ss[i].ys, func(v float64) bool { return v <= 0 })
		ss[i].ys = clampLog(ss[i].ys, floor)
	}
	xlo, xhi, xfloor := logRange(xs)
	for i := range ss {
		ss[i].xs = clampLog(ss[i].xs, xfloor) // a rate or client count of 0
	}
	if err := addSeries(p, m, ss); err != nil {
		return err
	}
	setLog(&p.X, xlo, xhi, spec.xTicks)
	slices.Sort(xs)
	p.X.Tick.Marker = logTicks{format: spec.xTicks, at: slices.Compact(xs)}
	setLogZero(&p.Y, ylo, yhi, floor, zero, spec.yTicks)
	return nil
}

func anyPositive(vs []float64) bool {
	return slices.ContainsFunc(vs, func(v float64) bool { return v > 0 && !math.IsInf(v, 0) })
}

func allYs(sss ...[]series) []float64 {
	var ys []float64
	for _, ss := range sss {
		for _, s := range ss {
			ys = append(ys, s.ys...)
		}
	}
	return ys
}

func variantsOf(sss ...[]series) []variant {
	var vs []variant
	for _, ss := range sss {
		for _, s := range ss {
			if !slices.Contains(vs, s.v) {
				vs = append(vs, s.v)
			}
		}
	}
	slices.SortFunc(vs, compareVariants)
	return vs
}

func (m *matrix) latencyVsClients() (*figure, error) {
	at, cells := m.slice(dimClients, nil)
	title := capFirst(at.Work.latencyNoun()) + " vs clients — " + describe(at, dimClients)
	base := lineSpec{xLabel: "clients (log scale)", yLabel: at.Work.latencyNoun() + " (log scale)", x: dimClients,
		xTicks: tickNumber, yTicks: tickDuration}
	p50, p99 := base, base
	p50.title, p50.y = "median (p50)", func(r *results.Record) float64 { return float64(r.Latency.P50) }
	p99.title, p99.y = "99th percentile (p99)", func(r *results.Record) float64 { return float64(r.Latency.P99) }
	left, ls := m.linePanel(p50, cells)
	right, rs := m.linePanel(p99, cells)
	if !anyPositive(allYs(ls, rs)) {
		return &figure{title: title, panels: []*plot.Plot{noData("", "no latency recorded: every value is 0")}}, nil
	}
	lo, hi, floor := logRange(allYs(ls, rs))
	if err := m.finishLogLog(left, p50, ls, lo, hi, floor); err != nil {
		return nil, err
	}
	if err := m.finishLogLog(right, p99, rs, lo, hi, floor); err != nil {
		return nil, err
	}
	return &figure{title: title, panels: []*plot.Plot{left, right}, legend: m.legendFor(variantsOf(ls, rs)),
		panelWidth: 5 * vg.Inch}, nil
}

var payloadLineStyle = draw.LineStyle{Color: payloadColor, Width: vg.Points(1.2), Dashes: []vg.Length{vg.Points(1), vg.Points(3)}}

// limitedCells are the cells at the headline workload, spoken the
// headline way, on a network with a bandwidth limit.
func (m *matrix) limitedCells() []*cell {
	var out []*cell
	for _, c := range m.cells {
		n := c.recs[0].Scenario.Network
		if (n.DownBps > 0 || n.UpBps > 0) && c.at.Work == m.head.Work && c.at.Clients == m.head.Clients && c.at.Rate == m.head.Rate && c.at.Payload == m.head.Payload &&
			c.at.HTTP == m.head.HTTP {
			out = append(out, c)
		}
	}
	return m.withFloors(out)
}

// linkTime is the time r's wire bytes per event take on its network's
// links, in ms (a direction without a limit costs nothing here).
func linkTime(r *results.Record) float64 {
	n := r.Scenario.Network
	var sec float64
	if n.DownBps > 0 {
		sec += r.Wire.DownBytesPerEvent * 8 / float64(n.DownBps)
	}
	if n.UpBps > 0 {
		sec += r.Wire.UpBytesPerEvent * 8 / float64(n.UpBps)
	}
	return sec * 1e3
}

func (m *matrix) linkTimePerEvent() (*figure, error) {
	cells := m.limitedCells()
	title := forWork(m.head.Work, "Link time per delivered event") + " — " + describe(coord{Work: m.head.Work, Clients: m.head.Clients, Rate: m.head.Rate, Payload: m.head.Payload, HTTP: m.head.HTTP}, dimRTT)
	var nets []string
	for _, c := range cells {
		if !slices.Contains(nets, c.at.Network) {
			nets = append(nets, c.at.Network)
		}
	}
	slices.SortFunc(nets, func(a, b string) int {
		return compareCoords(coord{Network: a, RTTNs: rttOf(cells, a)}, coord{Network: b, RTTNs: rttOf(cells, b)})
	})
	vs, groups := byVariant(cells)
	p := newPanel("", "network", "link time per event (ms)")
	bars := &groupedBars{n: len(vs)}
	hi := 0.0
	for j, v := range vs {
		st := m.styleOf(v)
		for _, c := range groups[v] {
			ms := c.value(linkTime)
			if !finite(ms) {
				continue
			}
			bars.bars = append(bars.bars, bar{cat: slices.Index(nets, c.at.Network), slot: j, value: ms, style: st})
			hi = math.Max(hi, ms)
		}
	}
	p.Add(bars)
	p.NominalX(nets...)
	p.X.Min, p.X.Max = -0.5, float64(len(nets))-0.5
	p.Y.Min, p.Y.Max = 0, math.Max(hi*1.1, 0.001)
	var legend []legendItem
	for _, v := range vs {
		st := m.styleOf(v)
		legend = append(legend, legendItem{label: v.Label(), thumbs: []plot.Thumbnailer{boxThumb{st.color}, glyphThumb{whiteGlyph(st)}}})
	}
	return &figure{title: title, panels: []*plot.Plot{p}, legend: legend}, nil
}

func rttOf(cells []*cell, network string) int64 {
	for _, c := range cells {
		if c.at.Network == network {
			return c.at.RTTNs
		}
	}
	return 0
}

// crossoverPoint is long polling against WebSocket at one point of the
// matrix: the event interval in round trips and the p50 ratio.
type crossoverPoint struct {
	at            coord
	intervalInRTT float64
	ratio         float64
}

// crossoverPoints pairs long polling with WebSocket at every point with
// an emulated RTT, spoken the headline way, sorted by interval ÷ RTT: the
// broadcast's, whose rate is the interval between events.
func (m *matrix) crossoverPoints() []crossoverPoint {
	var out []crossoverPoint
	for _, c := range m.cells {
		if c.v.Transport != "longpoll" || c.at.RTTNs <= 0 || !(c.at.Rate > 0) || !c.at.Work.isBroadcast() ||
			c.at.Clients != m.head.Clients || c.at.Payload != m.head.Payload || c.at.HTTP != m.head.HTTP {
			continue // one workload: only the interval and the RTT vary
		}
		ws := m.find(variant{Transport: "ws"}, c.at)
		if ws == nil || !(ws.value(p50) > 0) || !(c.value(p50) > 0) {
			continue
		}
		out = append(out, crossoverPoint{at: c.at, intervalInRTT: 1e9 / c.at.Rate / float64(c.at.RTTNs), ratio: c.value(p50) / ws.value(p50)})
	}
	slices.SortFunc(out, func(a, b crossoverPoint) int { return compareFloat(a.intervalInRTT, b.intervalInRTT) })
	return out
}

func (m *matrix) crossoverChart() (*figure, error) {
	pts := m.crossoverPoints()
	title := "Where long polling crosses WebSocket — " + describe(coord{Clients: m.head.Clients, Payload: m.head.Payload, HTTP: m.head.HTTP}, dimRate, dimRTT)
	p := newPanel("", "event interval ÷ RTT (log scale)", "long polling p50 ÷ WebSocket p50")
	xy := make(plotter.XYs, len(pts))
	var xs []float64
	for i, pt := range pts {
		xy[i] = plotter.XY{X: pt.intervalInRTT, Y: pt.ratio}
		xs = append(xs, pt.intervalInRTT)
	}
	xlo, xhi, _ := logRange(xs)
	setLog(&p.X, xlo, xhi, tickNumber)
	st, _ := transportStyle("longpoll")
	sc, err := plotter.NewScatter(xy)
	if err != nil {
		return nil, err
	}
	sc.GlyphStyle = st.glyphStyle()
	p.Add(sc)
	one, err := plotter.NewLine(plotter.XYs{{X: xlo, Y: 1}, {X: xhi, Y: 1}})
	if err != nil {
		return nil, err
	}
	one.LineStyle = payloadLineStyle
	p.Add(one)
	p.Y.Min = 0
	p.X.Min, p.X.Max = xlo, xhi
	return &figure{title: title, panels: []*plot.Plot{p}, legend: m.legendFor([]variant{{Transport: "longpoll"}})}, nil
}

// latencyVsRTT draws p50 and p99 against the emulated RTT (networks with
// an RTT only), with the physical floor RTT/2.
func (m *matrix) latencyVsRTT() (*figure, error) {
	at, cells := m.slice(dimRTT, func(c coord) bool { return c.RTTNs > 0 })
	title := capFirst(at.Work.latencyNoun()) + " vs network round-trip time — " + describe(at, dimRTT)
	base := lineSpec{xLabel: "round-trip time (ms, log scale)", yLabel: at.Work.latencyNoun() + " (log scale)", x: dimRTT,
		xTicks: tickNumber, yTicks: tickDuration}
	p50s, p99s := base, base
	p50s.title, p50s.y = "median (p50)", p50
	p99s.title, p99s.y = "99th percentile (p99)", p99
	left, ls := m.linePanel(p50s, cells)
	right, rs := m.linePanel(p99s, cells)
	rtts := distinct(cells, dimRTT)
	var floorYs []float64
	for _, r := range rtts {
		floorYs = append(floorYs, r*1e6/2)
	}
	if !anyPositive(allYs(ls, rs)) {
		return &figure{title: title, panels: []*plot.Plot{noData("", "no latency recorded: every value is 0")}}, nil
	}
	lo, hi, floor := logRange(append(allYs(ls, rs), floorYs...))
	for _, pn := range []struct {
		p    *plot.Plot
		spec lineSpec
		ss   []series
	}{{left, p50s, ls}, {right, p99s, rs}} {
		if err := m.finishLogLog(pn.p, pn.spec, pn.ss, lo, hi, floor); err != nil {
			return nil, err
		}
		pts := make(plotter.XYs, len(rtts))
		for i, r := range rtts {
			pts[i] = plotter.XY{X: r, Y: floorYs[i]}
		}
		ref, err := plotter.NewLine(pts)
		if err != nil {
			return nil, err
		}
		ref.LineStyle = payloadLineStyle
		xlo, xhi := pn.p.X.Min, pn.p.X.Max
		pn.p.Add(ref)
		pn.p.X.Min, pn.p.X.Max, pn.p.Y.Min, pn.p.Y.Max = xlo, xhi, lo, hi
	}
	return &figure{title: title, panels: []*plot.Plot{left, right}, legend: m.legendFor(variantsOf(ls, rs)),
		panelWidth: 5 * vg.Inch}, nil
}

func (m *matrix) bytesPerEvent() (*figure, error) {
	payloads := distinct(m.cells, dimPayload)
	if len(payloads) > 2 { // the smallest and the largest tell the story
		payloads = []float64{payloads[0], payloads[len(payloads)-1]}
	}
	spec := lineSpec{xLabel: "event rate (events/s, log scale)", yLabel: "wire bytes per delivered event (log scale)",
		x: dimRate, xTicks: tickNumber, yTicks: tickBytes,
		y: func(r *results.Record) float64 { return r.Wire.DownBytesPerEvent + r.Wire.UpBytesPerEvent }}
	fig := &figure{title: "Wire bytes per delivered event vs event rate"}
	var kind workKey
	var all [][]series
	for i, pl := range payloads {
		at, cells := m.slice(dimRate, func(c coord) bool { return float64(c.Payload) == pl })
		spec := spec
		spec.title = describe(at, dimRate)
		spec.xLabel, spec.yLabel = at.Work.rateAxis(), forWork(at.Work, spec.yLabel)
		// The title in the panels' words when they share a workload.
		if i == 0 {
			kind = at.Work
		} else if at.Work.Kind != kind.Kind {
			kind = workKey{}
		}
		p, ss := m.linePanel(spec, cells)
		if !anyPositive(allYs(ss)) {
			fig.panels = append(fig.panels, noData(spec.title, "no bytes counted: every value is 0"))
			continue
		}
		lo, hi, floor := logRange(append(allYs(ss), pl))
		if err := m.finishLogLog(p, spec, ss, lo, hi, floor); err != nil {
			return nil, err
		}
		ref, err := plotter.NewLine(plotter.XYs{{X: p.X.Min, Y: pl}, {X: p.X.Max, Y: pl}})
		if err != nil {
			return nil, err
		}
		ref.LineStyle = payloadLineStyle
		xlo, xhi := p.X.Min, p.X.Max
		p.Add(ref)
		p.X.Min, p.X.Max, p.Y.Min, p.Y.Max = xlo, xhi, lo, hi // keep the ranges explicit
		fig.panels = append(fig.panels, p)
		all = append(all, ss)
	}
	fig.title = forWork(kind, fig.title)
	fig.legend = m.legendFor(variantsOf(all...))
	fig.legend = append(fig.legend, legendItem{label: "event payload", thumbs: []plot.Thumbnailer{lineThumb{payloadLineStyle}}})
	if len(fig.panels) > 1 {
		fig.panelWidth = 5 * vg.Inch
	}
	return fig, nil
}

// perEventVsRate draws one metric against event rate at the headline
// payload.
func (m *matrix) perEventVsRate(title string, spec lineSpec) (*figure, error) {
	spec.x, spec.xLabel, spec.xTicks = dimRate, "event rate (events/s, log scale)", tickNumber
	return m.lineChart(title, spec)
}

// lineChart draws spec.y against spec.x, one line per variant, at the
// headline payload and the slice of the matrix with the most x values.
// The words of a broadcast in title and labels follow the slice's
// workload (forWork).
func (m *matrix) lineChart(title string, spec lineSpec) (*figure, error) {
	at, cells := m.slice(spec.x, func(c coord) bool { return c.Payload == m.head.Payload })
	if spec.x == dimRate {
		spec.xLabel = at.Work.rateAxis()
	}
	spec.yLabel = forWork(at.Work, spec.yLabel)
	title = forWork(at.Work, title) + " — " + describe(at, spec.x)
	p, ss := m.linePanel(spec, cells)
	if !anyPositive(allYs(ss)) {
		return &figure{title: title, panels: []*plot.Plot{noData("", "every value is 0")}}, nil
	}
	lo, hi, floor := logRange(allYs(ss))
	if err := m.finishLogLog(p, spec, ss, lo, hi, floor); err != nil {
		return nil, err
	}
	return &figure{title: title, panels: []*plot.Plot{p}, legend: m.legendFor(variantsOf(ss))}, nil
}

func (m *matrix) requestsPerEvent() (*figure, error) {
	return m.perEventVsRate("HTTP requests per delivered event vs event rate", lineSpec{
		yLabel: "requests per delivered event (log scale)", yTicks: tickNumber,
		y: func(r *results.Record) float64 { return r.RequestsPerEvent },
	})
}

func (m *matrix) cpuPerEvent() (*figure, error) {
	return m.perEventVsRate("Server CPU per delivered event vs event rate", lineSpec{
		yLabel: "server CPU time per delivered event (log scale)", yTicks: tickMicros,
		y: func(r *results.Record) float64 { return r.Server.CPUUsPerEvent },
	})
}

func (m *matrix) idleCostPerConn() (*figure, error) {
	return m.lineChart("Idle cost: server CPU per connection per second, nothing published", lineSpec{
		x: dimClients, xLabel: "clients (log scale)", xTicks: tickNumber,
		yLabel: "server CPU per connection-second (log scale)", yTicks: tickMicros,
		y: func(r *results.Record) float64 { return r.Server.IdleCPUUsPerConnS },
	})
}

func (m *matrix) memoryPerConn() (*figure, error) {
	at, cells := m.slice(dimClients, nil)
	title := "Server memory per connection — " + describe(at, dimClients)
	// With a handful of clients, RSS growth is page-size noise that would
	// set the scale; show those cells only when there is nothing else.
	if many := slices.DeleteFunc(slices.Clone(cells), func(c *cell) bool { return c.at.Clients < minClientsForMemory }); len(many) > 0 && len(many) < len(cells) {
		cells = many
		title += fmt.Sprintf(" (cells with ≥ %d clients)", minClientsForMemory)
	}
	if len(cells) == 0 {
		return &figure{title: title, panels: []*plot.Plot{noData("", "no results")}}, nil
	}
	clients := distinct(cells, dimClients)
	vs, groups := byVariant(cells)
	p := newPanel("", "clients", "server RSS per connection (KiB)")
	names := make([]string, len(clients))
	for i, c := range clients {
		names[i] = tickNumber(c)
	}
	bars := &groupedBars{n: len(vs)}
	lo, hi := 0.0, 0.0
	for j, v := range vs {
		st := m.styleOf(v)
		for _, c := range groups[v] {
			i := slices.Index(clients, float64(c.at.Clients))
			kib := c.value(func(r *results.Record) float64 { return r.Server.RSSBytesPerConn }) / 1024
			if !finite(kib) {
				continue
			}
			bars.bars = append(bars.bars, bar{cat: i, slot: j, value: kib, style: st})
			lo, hi = math.Min(lo, kib), math.Max(hi, kib)
		}
	}
	p.Add(bars)
	p.NominalX(names...)
	p.X.Min, p.X.Max = -0.5, float64(len(clients))-0.5
	if hi == lo {
		hi = 1
	}
	p.Y.Min, p.Y.Max = lo, hi+(hi-lo)*0.1
	if lo < 0 {
		p.Y.Min -= (hi - lo) * 0.05
	}
	var legend []legendItem
	for _, v := range vs {
		st := m.styleOf(v)
		legend = append(legend, legendItem{label: v.Label(), thumbs: []plot.Thumbnailer{boxThumb{st.color}, glyphThumb{whiteGlyph(st)}}})
	}
	return &figure{title: title, panels: []*plot.Plot{p}, legend: legend}, nil
}

// minClientsForMemory is the smallest client count whose memory per
// connection the chart shows when larger ones exist.
const minClientsForMemory = 10

// whiteGlyph is the variant's marker in white, drawn on its bars.
func whiteGlyph(st style) draw.GlyphStyle {
	g := st.glyphStyle()
	g.Color = color.White
	return g
}

// groupedBars draws bars grouped by category: bar slot j of n in
// category i sits at x = i + (j − (n−1)/2)·w, with the variant's marker in
// white near its top so that colour is not the only cue.
type groupedBars struct {
	n    int
	bars []bar
}

type bar struct {
	cat, slot int
	value     float64
	style     style
}

const groupWidth = 0.8 // share of a category the bars fill

func (g *groupedBars) Plot(c draw.Canvas, p *plot.Plot) {
	trX, trY := p.Transforms(&c)
	w := groupWidth / float64(max(g.n, 1))
	for _, b := range g.bars {
		x := float64(b.cat) + (float64(b.slot)-float64(g.n-1)/2)*w
		x0, x1 := trX(x-w/2*0.92), trX(x+w/2*0.92)
		y0, y1 := trY(0), trY(b.value)
		rect := vg.Rectangle{Min: vg.Point{X: x0, Y: min(y0, y1)}, Max: vg.Point{X: x1, Y: max(y0, y1)}}
		c.SetColor(b.style.color)
		c.Fill(rect.Path())
		gy := y1 - vg.Points(7)
		if b.value < 0 {
			gy = y1 + vg.Points(7)
		}
		if math.Abs(float64(y1-y0)) > float64(vg.Points(14)) {
			c.DrawGlyphNoClip(whiteGlyph(b.style), vg.Point{X: (x0 + x1) / 2, Y: gy})
		} else { // too short to hold the marker: put it above the bar
			c.DrawGlyphNoClip(b.style.glyphStyle(), vg.Point{X: (x0 + x1) / 2, Y: y1 + vg.Points(7)})
		}
	}
}
