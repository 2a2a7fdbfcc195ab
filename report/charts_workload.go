package report

import (
	"math"
	"slices"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"

	"pushbench/event"
	"pushbench/results"
)

// The charts of client-originated traffic (chat and game), drawn only when
// the run has such cells.

const (
	chatLatencyHow = "Median (left) and 99th percentile (right) send → receive latency against each client's send rate: from a message's " +
		"scheduled send time to its receipt by each member of its room, the sender included, so the way up, the server's fan-out and " +
		"the way down are all in it. Lower is better; a rising line means a transport's send path or delivery falls behind as messages come faster."
	upstreamHow = "What one message (for the game, one input) costs on its way up, per message sent in the window: the clients' upstream " +
		"bytes (left; the grey mark is the message itself, so the gap above it is headers and framing, and for polling the polls' own bytes " +
		"shared among the messages) and the upstream requests (right; POST /send per message, while a stream sends on the connection it " +
		"has: 0, drawn as a marker on the bottom edge). Lower is better."
	gameInputHow = "Median (left) and 99th percentile (right) input latency against the tick rate: from an input's scheduled send time to the " +
		"receipt of the first snapshot that acknowledged it. The dotted line is half a tick, 1/(2·tick): an input waits that long on average " +
		"for the next tick, so a transport's input latency sits above it by the trip up and the snapshot's delivery. Lower is better."
)

// workloadCharts adds the charts of the run's chat and game cells:
// chat-latency (chat), upstream-per-message (chat or game) and
// game-input-latency (a game with input latency).
func (m *matrix) workloadCharts(add func(name, howTo string, build func() (*figure, error))) {
	if m.hasKind(workloadChat) {
		add("chat-latency", chatLatencyHow, m.chatLatency)
	}
	if m.hasUpstream() {
		add("upstream-per-message", upstreamHow, m.upstreamPerMessage)
	}
	if slices.ContainsFunc(m.cells, func(c *cell) bool { return c.hasInputLatency() }) {
		add("game-input-latency", gameInputHow, m.gameInputLatency)
	}
}

// hasInputLatency reports whether a record of the cell measured input
// latency.
func (c *cell) hasInputLatency() bool {
	return slices.ContainsFunc(c.recs, func(r *results.Record) bool {
		return hasInputLatency(r) && results.StatusOf(r) != results.StatusError
	})
}

func (m *matrix) chatLatency() (*figure, error) {
	at, cells := m.slice(dimRate, func(c coord) bool { return c.Work.Kind == workloadChat })
	title := "Send → receive latency vs send rate — " + describe(at, dimRate)
	base := lineSpec{xLabel: at.Work.rateAxis(), yLabel: "send → receive latency (log scale)", x: dimRate,
		xTicks: tickNumber, yTicks: tickDuration}
	return m.percentilePanels(title, base, cells, p50, p99, nil)
}

func (m *matrix) gameInputLatency() (*figure, error) {
	at, cells := m.slice(dimRate, func(c coord) bool { return c.Work.Kind == workloadGame })
	cells = slices.DeleteFunc(cells, func(c *cell) bool { return !c.hasInputLatency() })
	title := "Game input latency vs tick rate — " + describe(at, dimRate)
	base := lineSpec{xLabel: at.Work.rateAxis(), yLabel: "input latency (log scale)", x: dimRate,
		xTicks: tickNumber, yTicks: tickDuration}
	halfTick := func(tick float64) float64 { return 1e9 / (2 * tick) }
	return m.percentilePanels(title, base, cells,
		inputLatency(func(l *results.Latency) int64 { return l.P50 }),
		inputLatency(func(l *results.Latency) int64 { return l.P99 }),
		&reference{label: "half a tick, 1/(2·tick)", y: halfTick})
}

// reference is a line drawn dotted on a chart for comparison, y of x.
type reference struct {
	label string
	y     func(x float64) float64
}

// percentilePanels draws the p50 (left) and p99 (right) of the cells
// against base.x, one line per variant, on one log scale; ref, if not nil,
// is drawn dotted through the x values on both.
func (m *matrix) percentilePanels(title string, base lineSpec, cells []*cell, p50f, p99f metric, ref *reference) (*figure, error) {
	if len(cells) == 0 {
		return &figure{title: title, panels: []*plot.Plot{noData("", "no results")}}, nil
	}
	p50s, p99s := base, base
	p50s.title, p50s.y = "median (p50)", p50f
	p99s.title, p99s.y = "99th percentile (p99)", p99f
	left, ls := m.linePanel(p50s, cells)
	right, rs := m.linePanel(p99s, cells)
	if !anyPositive(allYs(ls, rs)) {
		return &figure{title: title, panels: []*plot.Plot{noData("", "no latency recorded: every value is 0")}}, nil
	}
	xs := slices.DeleteFunc(distinct(cells, base.x), func(v float64) bool { return !(v > 0) || math.IsInf(v, 0) })
	var refYs []float64
	if ref != nil {
		for _, x := range xs {
			refYs = append(refYs, ref.y(x))
		}
	}
	lo, hi, floor := logRange(append(allYs(ls, rs), refYs...))
	for _, pn := range []struct {
		p    *plot.Plot
		spec lineSpec
		ss   []series
	}{{left, p50s, ls}, {right, p99s, rs}} {
		if err := m.finishLogLog(pn.p, pn.spec, pn.ss, lo, hi, floor); err != nil {
			return nil, err
		}
		if ref == nil || len(xs) == 0 {
			continue
		}
		pts := make(plotter.XYs, len(xs))
		for i := range xs {
			pts[i] = plotter.XY{X: xs[i], Y: refYs[i]}
		}
		xlo, xhi := pn.p.X.Min, pn.p.X.Max
		if len(pts) == 1 { // one x value: a short level mark across it
			pts = plotter.XYs{{X: xlo, Y: refYs[0]}, {X: xhi, Y: refYs[0]}}
		}
		l, err := plotter.NewLine(pts)
		if err != nil {
			return nil, err
		}
		l.LineStyle = payloadLineStyle
		pn.p.Add(l)
		pn.p.X.Min, pn.p.X.Max, pn.p.Y.Min, pn.p.Y.Max = xlo, xhi, lo, hi
	}
	fig := &figure{title: title, panels: []*plot.Plot{left, right}, legend: m.legendFor(variantsOf(ls, rs)), panelWidth: 5 * vg.Inch}
	if ref != nil {
		fig.legend = append(fig.legend, legendItem{label: ref.label, thumbs: []plot.Thumbnailer{lineThumb{payloadLineStyle}}})
	}
	return fig, nil
}

// messageSize is the size of one upstream message of a workload: a chat
// message is the payload, a game input the smallest upstream message.
func messageSize(at coord) float64 {
	if at.Work.Kind == workloadGame {
		return float64(event.UpstreamMinSize)
	}
	return float64(at.Payload)
}

// upstreamCells are the cells the upstream chart shows: for each
// client-originated workload of the run (chat, then game), the slice along
// its rate with the most points; keys are the slices' fixed coordinates.
func (m *matrix) upstreamCells() (keys []coord, cells []*cell) {
	for _, kind := range []string{workloadChat, workloadGame} {
		if !m.hasKind(kind) {
			continue
		}
		at, cs := m.slice(dimRate, func(c coord) bool { return c.Work.Kind == kind })
		if len(cs) > 0 {
			keys, cells = append(keys, at), append(cells, cs...)
		}
	}
	return keys, cells
}

func (m *matrix) upstreamPerMessage() (*figure, error) {
	keys, cells := m.upstreamCells()
	title := "Upstream cost per message sent"
	if len(cells) == 0 {
		return &figure{title: title, panels: []*plot.Plot{noData("", "no results")}}, nil
	}
	// One category per point (a workload at one rate), in order.
	var points []coord
	for _, c := range cells {
		at := withoutHTTP(c.at)
		if !slices.Contains(points, at) {
			points = append(points, at)
		}
	}
	slices.SortFunc(points, compareCoords)
	kinds := map[string]bool{}
	for _, p := range points {
		kinds[p.Work.Kind] = true
	}
	names := make([]string, len(points))
	for i, p := range points {
		names[i] = p.Work.rateTick(p.Rate)
		if len(kinds) > 1 {
			names[i] = p.Work.Kind + "\n" + names[i]
		}
	}
	// The title names what the points share: one slice's coordinates, or
	// the workloads.
	xLabel := ""
	if len(keys) == 1 {
		title += " — " + describe(keys[0], dimRate)
		xLabel = strings.TrimSuffix(keys[0].Work.rateAxis(), ", log scale)") + ")"
	} else {
		var ks []string
		for _, k := range keys {
			ks = append(ks, k.Work.Kind+" in "+roomsOf(k.Work.Room))
		}
		title += " — " + joinAnd(ks)
	}
	vs, groups := byVariant(cells)
	panel := func(yLabel string, f metric, ref func(at coord) float64) (*plot.Plot, error) {
		p := newPanel("", xLabel, yLabel)
		bars := &groupedBars{n: len(vs)}
		hi := 0.0
		for j, v := range vs {
			st := m.styleOf(v)
			for _, c := range groups[v] {
				y := c.value(f)
				if !finite(y) {
					continue
				}
				bars.bars = append(bars.bars, bar{cat: slices.Index(points, withoutHTTP(c.at)), slot: j, value: y, style: st})
				hi = math.Max(hi, y)
			}
		}
		p.Add(bars)
		if ref != nil {
			for i, at := range points {
				y := ref(at)
				l, err := plotter.NewLine(plotter.XYs{{X: float64(i) - groupWidth/2, Y: y}, {X: float64(i) + groupWidth/2, Y: y}})
				if err != nil {
					return nil, err
				}
				l.LineStyle = payloadLineStyle
				p.Add(l)
				hi = math.Max(hi, y)
			}
		}
		p.NominalX(names...)
		p.X.Min, p.X.Max = -0.5, float64(len(points))-0.5
		p.Y.Min, p.Y.Max = 0, math.Max(hi*1.12, 1)
		return p, nil
	}
	bytesPanel, err := panel("upstream bytes per message sent", func(r *results.Record) float64 { return r.Wire.UpBytesPerMessage }, messageSize)
	if err != nil {
		return nil, err
	}
	reqPanel, err := panel("upstream requests per message sent", func(r *results.Record) float64 { return r.RequestsPerMessage }, nil)
	if err != nil {
		return nil, err
	}
	var legend []legendItem
	for _, v := range vs {
		st := m.styleOf(v)
		legend = append(legend, legendItem{label: v.Label(), thumbs: []plot.Thumbnailer{boxThumb{st.color}, glyphThumb{whiteGlyph(st)}}})
	}
	itself := "the message itself"
	switch {
	case len(kinds) > 1:
		itself = "the message or input itself"
	case kinds[workloadGame]:
		itself = "the input itself"
	}
	legend = append(legend, legendItem{label: itself, thumbs: []plot.Thumbnailer{lineThumb{payloadLineStyle}}})
	return &figure{title: title, panels: []*plot.Plot{bytesPanel, reqPanel}, legend: legend, panelWidth: 5 * vg.Inch}, nil
}
