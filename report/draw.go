package report

import (
	"bytes"
	"fmt"
	"image/color"
	"math"
	"strconv"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/text"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
	"gonum.org/v1/plot/vg/vgsvg"

	"pushbench/transport"
)

// Drawing infrastructure shared by every chart: transport styles, log axes
// that cannot panic, a legend beside the panels, and rendering to bytes.

// style is how one variant looks on every chart.
type style struct {
	color  color.RGBA
	glyph  draw.GlyphDrawer
	dashes []vg.Length
}

// glyphs draws each of the registry's markers.
var glyphs = map[transport.Marker]draw.GlyphDrawer{
	transport.Circle:   draw.CircleGlyph{},
	transport.Triangle: draw.PyramidGlyph{},
	transport.Square:   draw.BoxGlyph{},
	transport.Diamond:  diamondGlyph{},
	transport.Ring:     draw.RingGlyph{},
}

// transportStyle is a transport's colour and marker from the registry; ok
// is false for a name the registry does not know or a marker without a
// glyph (drawn as otherStyle).
func transportStyle(name string) (s style, ok bool) {
	info, known := transport.Lookup(name)
	g, drawn := glyphs[info.Marker]
	if !known || !drawn || info.Color.A == 0 {
		return otherStyle, false
	}
	return style{color: info.Color, glyph: g}, true
}

var otherStyle = style{color: color.RGBA{0x66, 0x66, 0x66, 0xFF}, glyph: draw.CrossGlyph{}}

// dashPatterns tell apart the short-poll intervals: the most common one is
// solid, the others dashed.
var dashPatterns = [][]vg.Length{
	{vg.Points(6), vg.Points(3)},
	{vg.Points(2), vg.Points(2)},
	{vg.Points(8), vg.Points(2), vg.Points(2), vg.Points(2)},
}

// styleOf returns the style of v; primary is the solid short-poll interval.
func (m *matrix) styleOf(v variant) style {
	s, _ := transportStyle(v.Transport)
	if transport.HasInterval(v.Transport) && v.IntervalNs != m.primaryInterval {
		// Rank the other intervals so each keeps its dash pattern.
		rank := 0
		for _, o := range m.variants {
			if o.Transport == v.Transport && o.IntervalNs != m.primaryInterval && o.IntervalNs > v.IntervalNs {
				rank++
			}
		}
		s.dashes = dashPatterns[rank%len(dashPatterns)]
	}
	return s
}

// diamondGlyph draws a filled diamond.
type diamondGlyph struct{}

func (diamondGlyph) DrawGlyph(c *draw.Canvas, sty draw.GlyphStyle, pt vg.Point) {
	r := sty.Radius * 1.25
	p := make(vg.Path, 0, 5)
	p.Move(vg.Point{X: pt.X, Y: pt.Y + r})
	p.Line(vg.Point{X: pt.X + r, Y: pt.Y})
	p.Line(vg.Point{X: pt.X, Y: pt.Y - r})
	p.Line(vg.Point{X: pt.X - r, Y: pt.Y})
	p.Close()
	c.Fill(p)
}

func (s style) line() draw.LineStyle {
	return draw.LineStyle{Color: s.color, Width: vg.Points(1.8), Dashes: s.dashes}
}

func (s style) glyphStyle() draw.GlyphStyle {
	return draw.GlyphStyle{Color: s.color, Radius: vg.Points(3.5), Shape: s.glyph}
}

// Fonts: Liberation Sans (built into gonum/plot) reads better on screen
// than the default serif.
func sans(size vg.Length) font.Font {
	return font.Font{Typeface: "Liberation", Variant: "Sans", Size: size}
}

var (
	gridColor    = color.Gray{Y: 0xDD}
	payloadColor = color.Gray{Y: 0x77}
)

// newPanel returns a plot with the project's look.
func newPanel(title, xLabel, yLabel string) *plot.Plot {
	p := plot.New()
	p.Title.Text = title
	p.Title.TextStyle.Font = sans(12)
	p.Title.Padding = vg.Points(6)
	p.X.Label.Text = xLabel
	p.Y.Label.Text = yLabel
	for _, a := range []*plot.Axis{&p.X, &p.Y} {
		a.Label.TextStyle.Font = sans(11)
		a.Tick.Label.Font = sans(10)
		a.Padding = vg.Points(4)
	}
	g := plotter.NewGrid()
	g.Vertical.Color = gridColor
	g.Horizontal.Color = gridColor
	g.Vertical.Dashes = nil
	g.Horizontal.Dashes = nil
	p.Add(g)
	return p
}

// logFloor is the value drawn for zeros and negative values on a log axis
// when there is no positive value to derive it from.
const logFloor = 1.0

// clampLog returns the values of vs made safe for a log axis: every value
// that is not positive and finite is replaced by floor, the bottom edge.
func clampLog(vs []float64, floor float64) []float64 {
	out := make([]float64, len(vs))
	for i, v := range vs {
		if !(v > 0) || math.IsInf(v, 0) {
			v = floor
		}
		out[i] = v
	}
	return out
}

// logRange returns axis bounds for the positive values of vs on a log
// axis, padded by a tenth of a decade on each side and at least 0.6 decade
// wide (so at least one 1-2-5 tick is labelled), and the floor at which
// non-positive values are drawn. It never returns min ≤ 0 or min == max.
func logRange(vs []float64) (lo, hi, floor float64) {
	lo, hi = math.Inf(1), math.Inf(-1)
	zero := false
	for _, v := range vs {
		if v > 0 && !math.IsInf(v, 0) {
			lo, hi = math.Min(lo, v), math.Max(hi, v)
		} else if !math.IsNaN(v) {
			zero = true
		}
	}
	if math.IsInf(lo, 1) { // nothing positive
		lo, hi = logFloor, logFloor
	}
	llo, lhi := math.Log10(lo), math.Log10(hi)
	if zero {
		llo -= 0.5 // room below the smallest value for the zeros
	}
	llo, lhi = llo-0.1, lhi+0.1
	if w := lhi - llo; w < 0.6 {
		llo -= (0.6 - w) / 2
		lhi += (0.6 - w) / 2
	}
	lo, hi = math.Pow(10, llo), math.Pow(10, lhi)
	floor = lo
	if zero {
		floor = math.Pow(10, llo+0.1) // just above the axis
	}
	return lo, hi, floor
}

// setLog makes a a log axis over [lo, hi] with ticks labelled by format.
func setLog(a *plot.Axis, lo, hi float64, format func(float64) string) {
	a.Scale = plot.LogScale{}
	a.Tick.Marker = logTicks{format: format}
	a.Min, a.Max = lo, hi
}

// setLogZero is setLog for data with zeros drawn at floor: the floor tick
// reads "0".
func setLogZero(a *plot.Axis, lo, hi, floor float64, hasZero bool, format func(float64) string) {
	setLog(a, lo, hi, format)
	if hasZero {
		a.Tick.Marker = logTicks{format: format, zeroAt: floor}
	}
}

// logTicks labels powers of ten; 1, 2 and 5 times them when the axis spans
// less than two decades; every multiple below 0.7 decade. at, if set,
// labels exactly those values instead (the levels of a scenario matrix).
// Unlike plot.LogTicks it labels ranges that do not start at a power of
// ten. zeroAt > 0 adds a tick labelled "0" there.
type logTicks struct {
	format func(float64) string
	at     []float64
	zeroAt float64
}

func (t logTicks) Ticks(lo, hi float64) []plot.Tick {
	if !(lo > 0) || !(hi > lo) {
		return nil
	}
	span := math.Log10(hi / lo)
	var ticks []plot.Tick
	nearZero := func(v float64) bool { return t.zeroAt > 0 && math.Abs(math.Log10(v/t.zeroAt)) < 0.15 }
	for e := math.Floor(math.Log10(lo)); e <= math.Ceil(math.Log10(hi)); e++ {
		base := math.Pow(10, e)
		for m := 1; m < 10; m++ {
			v := base * float64(m)
			if v < lo*(1-1e-9) || v > hi*(1+1e-9) {
				continue
			}
			tick := plot.Tick{Value: v}
			label := m == 1 || (span < 2 && (m == 2 || m == 5)) || span < 0.7
			if t.at != nil {
				label = false
			}
			if label && !nearZero(v) {
				tick.Label = t.format(v)
			}
			ticks = append(ticks, tick)
		}
	}
	for _, v := range t.at {
		if v >= lo && v <= hi {
			ticks = append(ticks, plot.Tick{Value: v, Label: t.format(v)})
		}
	}
	if t.zeroAt >= lo && t.zeroAt <= hi {
		ticks = append(ticks, plot.Tick{Value: t.zeroAt, Label: "0"})
	}
	return ticks
}

// Tick label formats: three significant digits, never an exponent.

func tickFloat(v float64) string {
	if v == 0 {
		return "0"
	}
	d := 2 - int(math.Floor(math.Log10(math.Abs(v))))
	return strconv.FormatFloat(roundTo(v, d), 'f', -1, 64)
}

func tickNumber(v float64) string {
	switch {
	case v >= 1e6:
		return tickFloat(v/1e6) + "M"
	case v >= 1e4:
		return tickFloat(v/1e3) + "k"
	}
	return tickFloat(v)
}

func tickDuration(ns float64) string {
	switch {
	case ns >= 1e9:
		return tickFloat(ns/1e9) + " s"
	case ns >= 1e6:
		return tickFloat(ns/1e6) + " ms"
	case ns >= 1e3:
		return tickFloat(ns/1e3) + " µs"
	}
	return tickFloat(ns) + " ns"
}

func tickBytes(b float64) string {
	switch {
	case b >= 1e6:
		return tickFloat(b/1e6) + " MB"
	case b >= 1e3:
		return tickFloat(b/1e3) + " kB"
	}
	return tickFloat(b) + " B"
}

func tickMicros(us float64) string { return tickDuration(us * 1e3) }

// legendItem is one entry of a figure's legend.
type legendItem struct {
	label  string
	thumbs []plot.Thumbnailer
}

// figure is one chart file: a title, one or more panels side by side, and
// a legend in its own column on the right, where it never covers data.
type figure struct {
	title  string
	panels []*plot.Plot
	legend []legendItem
	// panelWidth is the width of one panel; 0 means the default.
	panelWidth vg.Length
}

const (
	figureHeight      = 5.2 * vg.Inch
	defaultPanelWidth = 6.6 * vg.Inch
	minLegendWidth    = 1.4 * vg.Inch
	figPad            = 8 // points
)

// pngDPI is the resolution of the PNG charts: a 9 in wide chart is about
// 1000 pixels. Tests under the race detector lower it to save time.
var pngDPI = 110

func legendStyle() text.Style {
	return text.Style{Color: color.Black, Font: sans(11), Handler: plot.DefaultTextHandler}
}

const legendThumb = 30 // points

// legendWidth is the width of the legend column: its longest label.
func (f *figure) legendWidth() vg.Length {
	if len(f.legend) == 0 {
		return vg.Points(figPad)
	}
	sty := legendStyle()
	w := minLegendWidth
	for _, it := range f.legend {
		w = max(w, vg.Points(legendThumb+3*figPad)+sty.Width(" "+it.label))
	}
	return w
}

func (f *figure) size() (w, h vg.Length) {
	pw := f.panelWidth
	if pw == 0 {
		pw = defaultPanelWidth
	}
	n := max(len(f.panels), 1)
	return pw*vg.Length(n) + f.legendWidth(), figureHeight
}

func titleStyle() text.Style {
	return text.Style{Color: color.Black, Font: sans(15), XAlign: draw.XCenter, YAlign: draw.YTop, Handler: plot.DefaultTextHandler}
}

// draw draws the figure onto c.
func (f *figure) draw(c draw.Canvas) {
	c.SetColor(color.White)
	c.Fill(c.Rectangle.Path())

	pad := vg.Points(figPad)
	top := c.Max.Y - pad
	if f.title != "" {
		ts := titleStyle()
		c.FillText(ts, vg.Point{X: c.Center().X, Y: top}, f.title)
		top -= ts.Rectangle(f.title).Size().Y + pad
	}
	body := c
	body.Max.Y = top
	body.Min.Y += pad / 2

	lw := f.legendWidth()
	panels := draw.Crop(body, pad/2, -lw, 0, 0)
	dataTop := body.Max.Y
	if n := len(f.panels); n > 0 {
		w := (panels.Max.X - panels.Min.X) / vg.Length(n)
		for i, p := range f.panels {
			pc := panels
			pc.Min.X = panels.Min.X + w*vg.Length(i)
			pc.Max.X = pc.Min.X + w - pad
			dataTop = drawPanel(pc, p).Max.Y
		}
	}

	if len(f.legend) > 0 {
		l := plot.NewLegend()
		l.TextStyle = legendStyle()
		l.Top, l.Left = true, true
		l.ThumbnailWidth = vg.Points(legendThumb)
		l.Padding = vg.Points(5)
		for _, it := range f.legend {
			l.Add(it.label, it.thumbs...)
		}
		lc := body
		lc.Min.X = body.Max.X - lw + pad
		lc.Max.Y = dataTop // level with the top of the plotting area
		l.Draw(lc)
	}
}

// drawPanel draws p into c and returns its data area. It draws the axis
// labels itself: gonum/plot places the glyph box of a centred axis label
// at the arithmetic mid-range, which on a log axis lies near the top (or
// right) end and makes the plot reserve a wide empty margin there.
func drawPanel(c draw.Canvas, p *plot.Plot) draw.Canvas {
	xl, yl := p.X.Label.Text, p.Y.Label.Text
	p.X.Label.Text, p.Y.Label.Text = "", ""
	defer func() { p.X.Label.Text, p.Y.Label.Text = xl, yl }()
	xs, ys := p.X.Label.TextStyle, p.Y.Label.TextStyle
	inner := c
	if yl != "" {
		inner.Min.X += ys.Height(yl) + ys.FontExtents().Descent + p.Y.Label.Padding
	}
	if xl != "" {
		inner.Min.Y += xs.Height(xl) + xs.FontExtents().Descent + p.X.Label.Padding
	}
	p.Draw(inner)
	dc := p.DataCanvas(inner)
	if yl != "" {
		sty := ys
		sty.Rotation += math.Pi / 2
		sty.XAlign, sty.YAlign = draw.XCenter, draw.YBottom
		c.FillText(sty, vg.Point{X: c.Min.X + ys.Height(yl), Y: dc.Center().Y}, yl)
	}
	if xl != "" {
		sty := xs
		sty.XAlign, sty.YAlign = draw.XCenter, draw.YBottom
		c.FillText(sty, vg.Point{X: dc.Center().X, Y: c.Min.Y + xs.FontExtents().Descent}, xl)
	}
	return dc
}

// render draws f in format ("png" or "svg") and returns the encoded image.
// A panic inside gonum/plot comes back as an error: a chart that cannot
// be drawn must not take the report down or leave an empty file.
func (f *figure) render(format string) (data []byte, err error) {
	defer func() {
		if r := recover(); r != nil {
			data, err = nil, fmt.Errorf("draw %q as %s: %v", f.title, format, r)
		}
	}()
	w, h := f.size()
	var cw vg.CanvasWriterTo
	switch format {
	case "png":
		cw = vgimg.PngCanvas{Canvas: vgimg.NewWith(vgimg.UseWH(w, h), vgimg.UseDPI(pngDPI))}
	case "svg":
		cw = vgsvg.NewWith(vgsvg.UseWH(w, h), vgsvg.EmbedFonts(true))
	default:
		return nil, fmt.Errorf("draw %q: unknown format %q", f.title, format)
	}
	f.draw(draw.New(cw))
	var buf bytes.Buffer
	if _, err := cw.WriteTo(&buf); err != nil {
		return nil, fmt.Errorf("draw %q as %s: %w", f.title, format, err)
	}
	return buf.Bytes(), nil
}

// series is one variant's points on a panel.
type series struct {
	v      variant
	xs, ys []float64
}

// addSeries draws each series as a line with the variant's marker at every
// point (a lone point is just the marker). Points with NaN or infinite
// coordinates are dropped.
func addSeries(p *plot.Plot, m *matrix, ss []series) error {
	for _, s := range ss {
		pts := make(plotter.XYs, 0, len(s.xs))
		for i := range s.xs {
			if finite(s.xs[i]) && finite(s.ys[i]) {
				pts = append(pts, plotter.XY{X: s.xs[i], Y: s.ys[i]})
			}
		}
		if len(pts) == 0 {
			continue
		}
		st := m.styleOf(s.v)
		if len(pts) > 1 {
			l, err := plotter.NewLine(pts)
			if err != nil {
				return fmt.Errorf("line %s: %w", s.v.Label(), err)
			}
			l.LineStyle = st.line()
			p.Add(l)
		}
		sc, err := plotter.NewScatter(pts)
		if err != nil {
			return fmt.Errorf("points %s: %w", s.v.Label(), err)
		}
		sc.GlyphStyle = st.glyphStyle()
		p.Add(sc)
	}
	return nil
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

// legendFor returns legend entries for the variants, line and marker.
func (m *matrix) legendFor(vs []variant) []legendItem {
	var items []legendItem
	for _, v := range vs {
		st := m.styleOf(v)
		items = append(items, legendItem{label: v.Label(), thumbs: []plot.Thumbnailer{
			lineThumb{st.line()}, glyphThumb{st.glyphStyle()},
		}})
	}
	return items
}

// lineThumb and glyphThumb draw legend thumbnails without data.
type lineThumb struct{ draw.LineStyle }

func (t lineThumb) Thumbnail(c *draw.Canvas) {
	y := c.Center().Y
	c.StrokeLine2(t.LineStyle, c.Min.X, y, c.Max.X, y)
}

type glyphThumb struct{ draw.GlyphStyle }

func (t glyphThumb) Thumbnail(c *draw.Canvas) { c.DrawGlyphNoClip(t.GlyphStyle, c.Center()) }

type boxThumb struct{ color.Color }

func (t boxThumb) Thumbnail(c *draw.Canvas) {
	r := c.Rectangle
	r.Min.Y += vg.Points(1)
	r.Max.Y -= vg.Points(1)
	c.SetColor(t.Color)
	c.Fill(r.Path())
}

// noData returns a panel that says there is nothing to draw.
func noData(title, why string) *plot.Plot {
	p := newPanel(title, "", "")
	p.HideAxes()
	l, err := plotter.NewLabels(plotter.XYLabels{
		XYs:    []plotter.XY{{X: 0.5, Y: 0.5}},
		Labels: []string{why},
	})
	if err == nil {
		l.TextStyle[0].Font = sans(12)
		l.TextStyle[0].XAlign = draw.XCenter
		l.TextStyle[0].YAlign = draw.YCenter
		p.Add(l)
	}
	p.X.Min, p.X.Max, p.Y.Min, p.Y.Max = 0, 1, 0, 1
	return p
}
