package report

import (
	"cmp"
	"fmt"
	"image/color"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	"pushbench/results"
)

// CapacityMarkdownFile is the capacity search's table, written beside
// capacity.json.
const CapacityMarkdownFile = "capacity.md"

// readCapacity reads dir's capacity.json; nil when there is none.
func readCapacity(dir string) (*results.Capacity, error) {
	c, err := results.ReadCapacity(filepath.Join(dir, results.CapacityFile))
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &c, nil
}

// capacityUnit is what a capacity search counts.
func capacityUnit(c *results.Capacity) string {
	if c.Dimension == "rate" {
		return "events/s"
	}
	return "clients"
}

// capacityObjective says the objective in words.
func capacityObjective(c *results.Capacity) string {
	s := "p99 ≤ " + fmtDuration(float64(c.P99Ns))
	if c.P50Ns > 0 {
		s += ", p50 ≤ " + fmtDuration(float64(c.P50Ns))
	}
	return s + ", no loss, sound checks passing"
}

// CapacityMarkdown is capacity.md: each transport's capacity under the
// objective, the first failing step and why, and the ratios between the
// transports whose edge was found.
func CapacityMarkdown(c *results.Capacity) string {
	unit := capacityUnit(c)
	var b strings.Builder
	b.WriteString("# Capacity\n\n")
	fixed := fmt.Sprintf("%s events/s of %d B", fmtRate(c.Rate), c.Payload)
	if c.Rate == 1 {
		fixed = fmt.Sprintf("one event a second of %d B", c.Payload)
	}
	if c.Dimension == "rate" {
		fixed = fmt.Sprintf("%d clients, events of %d B", c.Clients, c.Payload)
	}
	fmt.Fprintf(&b, "The most %s each transport holds at %s under the objective %s. Each step is a full measured cell (results.jsonl has every step's record); the search steps up geometrically until a step fails, then bisects to within 5%%. The ceiling is %d %s: %s.\n\n",
		unit, fixed, capacityObjective(c), c.Ceiling, unit, c.CeilingWhy)
	if c.Clipped {
		fmt.Fprintf(&b, "--max-clients %d was above the ceiling and clipped to it.\n\n", c.MaxAsked)
	}
	fmt.Fprintf(&b, "| transport | capacity (%s) | at the edge: p50 | p99 | deliveries/s | first failure | why it failed | steps |\n", unit)
	b.WriteString("|---|---:|---:|---:|---:|---:|---|---:|\n")
	for _, t := range c.Transports {
		capa := fmt.Sprintf("%d", t.MaxClients)
		switch {
		case t.AtCeiling:
			capa = fmt.Sprintf("≥ %d (the ceiling: edge not reached)", t.MaxClients)
		case t.AtMax:
			capa = fmt.Sprintf("≥ %d (--max: edge not reached)", t.MaxClients)
		case t.Interrupted:
			capa += " (interrupted)"
		}
		var p50, p99 string = "—", "—"
		for _, st := range t.Steps {
			if st.Value == t.MaxClients && st.Pass {
				p50, p99 = fmtDuration(float64(st.P50Ns)), fmtDuration(float64(st.P99Ns))
			}
		}
		ff, why := "—", "—"
		if t.FirstFail != nil {
			ff, why = fmt.Sprintf("%d", t.FirstFail.Value), t.FirstFail.Reason
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %.0f | %s | %s | %d |\n", transportLabel(t.Transport), capa, p50, p99, t.EdgeDeliveriesPerS, ff, why, len(t.Steps))
	}
	if r := capacityRatios(c); r != "" {
		b.WriteString("\n" + r + "\n")
	}
	return b.String()
}

// capacityRatios names each transport's capacity against the largest
// found (a transport at the ceiling or --max counts as at least its
// value).
func capacityRatios(c *results.Capacity) string {
	best, bestName := 0, ""
	for _, t := range c.Transports {
		if t.MaxClients > best {
			best, bestName = t.MaxClients, transportLabel(t.Transport)
		}
	}
	if best == 0 {
		return ""
	}
	var parts []string
	for _, t := range c.Transports {
		if label := transportLabel(t.Transport); label != bestName {
			parts = append(parts, fmt.Sprintf("%s holds %.2g× of it (%d)", label, float64(t.MaxClients)/float64(best), t.MaxClients))
		}
	}
	if len(parts) == 0 {
		return ""
	}
	return fmt.Sprintf("Against %s's %d %s: %s.", bestName, best, capacityUnit(c), strings.Join(parts, "; "))
}

// capacityChart draws p50 and p99 against the searched value, one colour
// per transport (p99 solid, p50 dashed), the objective as a horizontal
// line and each transport's edge as a ring around its last passing step.
func capacityChart(c *results.Capacity) (*figure, error) {
	unit := capacityUnit(c)
	p := newPanel("", unit+" (log)", "latency (log)")
	var xs, ys []float64
	var legend []legendItem
	for _, t := range c.Transports {
		st, ok := transportStyle(t.Transport)
		if !ok {
			st = style{color: color.RGBA{R: 80, G: 80, B: 80, A: 255}, glyph: draw.CircleGlyph{}}
		}
		var p50s, p99s plotter.XYs
		steps := slices.SortedFunc(slices.Values(t.Steps), func(a, b results.CapacityStep) int { return cmp.Compare(a.Value, b.Value) })
		for _, s := range steps {
			if s.P99Ns <= 0 {
				continue
			}
			p99s = append(p99s, plotter.XY{X: float64(s.Value), Y: float64(s.P99Ns)})
			p50s = append(p50s, plotter.XY{X: float64(s.Value), Y: math.Max(1e3, float64(s.P50Ns))})
			xs = append(xs, float64(s.Value))
			ys = append(ys, float64(s.P99Ns), math.Max(1e3, float64(s.P50Ns)))
		}
		if len(p99s) == 0 {
			continue
		}
		for i, pts := range []plotter.XYs{p99s, p50s} {
			l, sc, err := plotter.NewLinePoints(pts)
			if err != nil {
				return nil, err
			}
			l.LineStyle = st.line()
			if i == 1 {
				l.LineStyle.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
			}
			sc.GlyphStyle = st.glyphStyle()
			p.Add(l, sc)
		}
		for _, s := range steps {
			if s.Value == t.MaxClients && s.Pass {
				ring, err := plotter.NewScatter(plotter.XYs{{X: float64(s.Value), Y: float64(s.P99Ns)}})
				if err != nil {
					return nil, err
				}
				ring.GlyphStyle = draw.GlyphStyle{Color: st.color, Radius: vg.Points(9), Shape: draw.RingGlyph{}}
				p.Add(ring)
			}
		}
		label := fmt.Sprintf("%s: %d", transportLabel(t.Transport), t.MaxClients)
		if t.AtCeiling || t.AtMax {
			label = fmt.Sprintf("%s: ≥ %d", transportLabel(t.Transport), t.MaxClients)
		}
		legend = append(legend, legendItem{label: label, thumbs: []plot.Thumbnailer{lineThumb{st.line()}, glyphThumb{st.glyphStyle()}}})
	}
	if len(xs) == 0 {
		return &figure{title: "capacity", panels: []*plot.Plot{noData("", "no step measured a latency")}}, nil
	}
	obj := float64(c.P99Ns)
	ys = append(ys, obj)
	xlo, xhi, _ := logRange(xs)
	ylo, yhi, _ := logRange(ys)
	line, err := plotter.NewLine(plotter.XYs{{X: xlo, Y: obj}, {X: xhi, Y: obj}})
	if err != nil {
		return nil, err
	}
	line.LineStyle = draw.LineStyle{Color: color.RGBA{R: 200, A: 255}, Width: vg.Points(1.5), Dashes: []vg.Length{vg.Points(6), vg.Points(4)}}
	p.Add(line)
	setLog(&p.X, xlo, xhi, tickNumber)
	setLog(&p.Y, ylo, yhi, tickDuration)
	legend = append(legend, legendItem{label: "objective " + fmtDuration(obj), thumbs: []plot.Thumbnailer{lineThumb{line.LineStyle}}},
		legendItem{label: "p99 solid, p50 dashed; ring: the edge", thumbs: nil})
	title := fmt.Sprintf("Latency against %s: each transport to its edge under %s", unit, capacityObjective(c))
	return &figure{title: title, panels: []*plot.Plot{p}, legend: legend}, nil
}

// capacityHowTo is the chart's reading line.
const capacityHowTo = "Each point is one step of the search: a full measured cell. Lines climb as clients are added; where a transport's p99 line crosses the objective (the red dashed line) is its edge, ringed at the last passing step. A transport at the machine's ceiling has no edge on this machine."
