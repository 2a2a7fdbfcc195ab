package report

import (
	"cmp"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"pushbench/results"
	"pushbench/transport"
)

// transportLabel is a transport's name for readers (the registry's label;
// an unknown name stays as it is).
func transportLabel(t string) string {
	if info, ok := transport.Lookup(t); ok {
		return info.Label
	}
	return t
}

// variant is one line on a chart: a transport and, for short polling, its
// poll interval (short polling at 1 s and at 100 ms are different lines).
type variant struct {
	Transport  string
	IntervalNs int64 // short polling only; 0 for the other transports
}

func variantOf(s results.Scenario) variant {
	v := variant{Transport: s.Transport}
	if transport.HasInterval(s.Transport) {
		v.IntervalNs = s.IntervalNs
	}
	return v
}

// Name is the variant's value of the `transport=` key in bench.txt and
// file names: the transport, with "-<interval>" for short polling.
func (v variant) Name() string {
	return transport.VariantName(v.Transport, time.Duration(v.IntervalNs))
}

// Label is the variant's name for readers.
func (v variant) Label() string {
	if transport.HasInterval(v.Transport) && v.IntervalNs > 0 {
		return transportLabel(v.Transport) + " every " + fmtDuration(float64(v.IntervalNs))
	}
	return transportLabel(v.Transport)
}

func compareVariants(a, b variant) int {
	if c := cmp.Compare(transport.Rank(a.Transport), transport.Rank(b.Transport)); c != 0 {
		return c
	}
	if c := strings.Compare(a.Transport, b.Transport); c != 0 {
		return c
	}
	return cmp.Compare(b.IntervalNs, a.IntervalNs) // slow interval first
}

// CellName names the scenario cell of s the way bench.txt does, e.g.
// "transport=ws/clients=100/rate=10/payload=64" or, for short polling,
// "transport=shortpoll-1s/clients=100/rate=10/payload=64".
//
// An emulated network adds its key after the transport
// ("transport=ws/network=4g/clients=..."), so that benchstat -col
// /transport still compares the transports of one network.
//
// How HTTP was spoken follows the payload, only where it is not the
// default (webhttp.Options.Suffix, then "/pad=text" or "/pad=x" when the
// padding is not the default for the compression setting), so that
// results from before these options existed keep their names:
// "transport=sse/clients=100/rate=1/payload=64/http=2/tls=on/headers=browser".
//
// A workload other than broadcast follows the payload with its settings
// (workSuffix); rate stays the record's (for chat, messages per second
// over all rooms):
// "transport=ws/clients=100/rate=100/payload=128/workload=chat/room=10/send-rate=1".
func CellName(s results.Scenario) string {
	nw := ""
	if n := networkOf(s); n != "" {
		nw = "/network=" + n
	}
	return fmt.Sprintf("transport=%s%s/clients=%d/rate=%s/payload=%d%s%s",
		variantOf(s).Name(), nw, s.Clients, fmtRate(s.Rate), s.Payload, workSuffix(s), httpOf(s).suffix())
}

// networkOf is the scenario's network name, "" for none (loopback).
func networkOf(s results.Scenario) string {
	if s.Network.Name == "" || s.Network.Name == "loopback" {
		return ""
	}
	return s.Network.Name
}

// cellFileStem names the cell of s in file names, e.g. "ws-c100-r10-p64",
// with the short form of the workload (workStem) and of the HTTP options
// that are not the default after it: "sse-c100-r1-p64-h2-tls-br-gz"
// (httpKey.stem), "ws-c100-r100-p128-chat-r10-s1-br".
func cellFileStem(s results.Scenario) string {
	nw := ""
	if n := networkOf(s); n != "" {
		nw = "-" + n
	}
	return fmt.Sprintf("%s%s-c%d-r%s-p%d%s%s", variantOf(s).Name(), nw, s.Clients, fmtRate(s.Rate), s.Payload, workStem(s), httpOf(s).stem())
}

// fmtRate writes an event rate the shortest exact way: 0.2, 1, 10.
func fmtRate(r float64) string {
	return strconv.FormatFloat(r, 'g', -1, 64)
}

// coord is a point of the scenario matrix, without the transport: the
// network (its name and RTT, "" for loopback), the workload (what drives
// the traffic, its clients, rate and payload), and how HTTP was spoken.
//
// Rate is the rate the workload sweeps (sweepRate): a broadcast's events
// per second, a chat client's messages per second, the game's ticks per
// second.
type coord struct {
	Network string
	RTTNs   int64
	Work    workKey
	Clients int
	Rate    float64
	Payload int
	HTTP    httpKey
}

func coordOf(s results.Scenario) coord {
	return coord{Network: networkOf(s), RTTNs: s.Network.RTTNs, Work: workOf(s), Clients: s.Clients, Rate: sweepRate(s), Payload: s.Payload, HTTP: httpOf(s)}
}

// floorKey is where the floor cell for a point sits: the floor speaks no
// HTTP, so a comparison runs it once per TLS setting, with the other
// options at their defaults (httpKey.floor).
func floorKey(at coord) coord {
	at.HTTP = at.HTTP.floor()
	return at
}

// cell is one scenario cell: every record of one variant at one coord
// (several when the comparison repeated it).
type cell struct {
	v    variant
	at   coord
	recs []*results.Record
}

// metric reads one number of a record.
type metric func(r *results.Record) float64

// value returns the median of m over the cell's records: repeats of a cell
// are summarised by their median, which one outlier cannot drag.
func (c *cell) value(m metric) float64 {
	return median(c.values(m))
}

// values returns m of every record of the cell that measured something (a
// cell that ended in an error has no figures).
func (c *cell) values(m metric) []float64 {
	vs := make([]float64, 0, len(c.recs))
	for _, r := range c.recs {
		if results.StatusOf(r) != results.StatusError {
			vs = append(vs, m(r))
		}
	}
	return vs
}

func median(vs []float64) float64 {
	if len(vs) == 0 {
		return math.NaN()
	}
	s := slices.Clone(vs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// matrix indexes the cells of a set of records.
type matrix struct {
	cells    []*cell // in variant order, then clients, rate, payload
	variants []variant
	head     coord // the headline coordinates, see headline
	// primaryInterval is the most common short-poll interval.
	primaryInterval int64
	// planned is how many records the run planned (run.json; 0: unknown).
	planned int
}

func newMatrix(recs []results.Record) *matrix {
	m := &matrix{}
	byKey := map[struct {
		v  variant
		at coord
	}]*cell{}
	for i := range recs {
		r := &recs[i]
		k := struct {
			v  variant
			at coord
		}{variantOf(r.Scenario), coordOf(r.Scenario)}
		c := byKey[k]
		if c == nil {
			c = &cell{v: k.v, at: k.at}
			byKey[k] = c
			m.cells = append(m.cells, c)
		}
		c.recs = append(c.recs, r)
	}
	slices.SortFunc(m.cells, func(a, b *cell) int {
		if c := compareVariants(a.v, b.v); c != 0 {
			return c
		}
		return compareCoords(a.at, b.at)
	})
	intervals := map[int64]int{}
	for _, c := range m.cells {
		if len(m.variants) == 0 || m.variants[len(m.variants)-1] != c.v {
			m.variants = append(m.variants, c.v)
		}
		if transport.HasInterval(c.v.Transport) {
			intervals[c.v.IntervalNs]++
		}
	}
	m.primaryInterval = mostCommon(intervals, func(tied []int64) int64 { return slices.Max(tied) })
	m.head = m.headline()
	return m
}

func compareCoords(a, b coord) int {
	if c := compareWork(a.Work, b.Work); c != 0 {
		return c
	}
	if c := cmp.Compare(a.RTTNs, b.RTTNs); c != 0 {
		return c
	}
	if c := cmp.Compare(a.Network, b.Network); c != 0 {
		return c
	}
	if c := cmp.Compare(a.Clients, b.Clients); c != 0 {
		return c
	}
	if c := cmp.Compare(a.Rate, b.Rate); c != 0 {
		return c
	}
	if c := cmp.Compare(a.Payload, b.Payload); c != 0 {
		return c
	}
	return compareHTTP(a.HTTP, b.HTTP)
}

// headline picks the coordinates the report leads with: the workload
// most cells have (ties to broadcast, then chat), and among its cells, in
// each dimension the value most cells share (in a star-shaped matrix, its
// centre; in a full grid, the middle value). Ties go to the middle value
// for clients and rate and to the smallest payload.
func (m *matrix) headline() coord { return headlineOf(m.cells) }

// headlineOf is headline over some of the matrix's cells (workloadHead).
func headlineOf(cells []*cell) coord {
	work := headlineWork(cells)
	clients := map[int]int{}
	rates := map[float64]int{}
	payloads := map[int]int{}
	// The network: loopback when the run has it, else the one with the
	// shortest RTT.
	head := coord{Network: "-"}
	var ofWork []*cell
	for _, c := range cells {
		if dimRate.without(c.at).Work != work {
			continue
		}
		ofWork = append(ofWork, c)
		clients[c.at.Clients]++
		rates[c.at.Rate]++
		payloads[c.at.Payload]++
		if head.Network == "-" || c.at.Network == "" || (head.Network != "" && c.at.RTTNs < head.RTTNs) {
			head.Network, head.RTTNs = c.at.Network, c.at.RTTNs
		}
	}
	if head.Network == "-" {
		head.Network = ""
	}
	rate := mostCommon(rates, middle[float64])
	if work.InputRate == inputPerTick {
		work.InputRate = rate
	}
	return coord{
		Network: head.Network,
		RTTNs:   head.RTTNs,
		Work:    work,
		Clients: mostCommon(clients, middle[int]),
		Rate:    rate,
		Payload: mostCommon(payloads, func(tied []int) int { return slices.Min(tied) }),
		HTTP:    headlineHTTP(ofWork),
	}
}

// headlineWork is the workload most cells have, with its rate free
// (dimRate.without: a game's input per tick is inputPerTick); ties go to
// the first in compareWork's order (broadcast).
func headlineWork(cells []*cell) workKey {
	counts := map[workKey]int{}
	for _, c := range cells {
		counts[dimRate.without(c.at).Work]++
	}
	if len(counts) == 0 {
		return workKey{}
	}
	keys := slices.Collect(maps.Keys(counts))
	return slices.MinFunc(keys, func(a, b workKey) int {
		if c := cmp.Compare(counts[b], counts[a]); c != 0 {
			return c
		}
		return compareWork(a, b)
	})
}

// headlineHTTP is the way of speaking HTTP most cells share, not counting
// the floor's (it speaks none); ties go to the one closest to the
// defaults (compareHTTP).
func headlineHTTP(cells []*cell) httpKey {
	counts := map[httpKey]int{}
	for _, c := range cells {
		if !c.isFloor() {
			counts[c.at.HTTP]++
		}
	}
	if len(counts) == 0 {
		for _, c := range cells {
			counts[c.at.HTTP]++
		}
	}
	if len(counts) == 0 {
		return defaultHTTP
	}
	keys := slices.Collect(maps.Keys(counts))
	return slices.MinFunc(keys, func(a, b httpKey) int {
		if c := cmp.Compare(counts[b], counts[a]); c != 0 {
			return c
		}
		return compareHTTP(a, b)
	})
}

func (c *cell) isFloor() bool { return isFloor(c.v.Transport) }

// mostCommon returns the key with the highest count, resolving ties with
// tie (which gets the tied keys sorted ascending); the zero value if counts
// is empty.
func mostCommon[K cmp.Ordered](counts map[K]int, tie func(sorted []K) K) K {
	best := 0
	var tied []K
	for k, n := range counts {
		switch {
		case n > best:
			best, tied = n, []K{k}
		case n == best:
			tied = append(tied, k)
		}
	}
	if len(tied) == 0 {
		var zero K
		return zero
	}
	slices.Sort(tied)
	return tie(tied)
}

func middle[K any](sorted []K) K { return sorted[(len(sorted)-1)/2] }

// find returns the cell of v at at, or nil.
func (m *matrix) find(v variant, at coord) *cell {
	for _, c := range m.cells {
		if c.v == v && c.at == at {
			return c
		}
	}
	return nil
}

// at returns the cells at one coordinate, in variant order, with the
// floor cell that goes with it (withFloors).
func (m *matrix) at(at coord) []*cell {
	var out []*cell
	for _, c := range m.cells {
		if c.at == at {
			out = append(out, c)
		}
	}
	return m.withFloors(out)
}

// withFloors adds to cells, for every point of theirs without a floor
// cell, the floor cell measured at that point's floor key (floorKey): a
// comparison that speaks HTTP with browser headers, or HTTP/2, runs the
// floor only once per TLS setting, and every variant compares with it.
// The order of cells is kept, added floors go last.
func (m *matrix) withFloors(cells []*cell) []*cell {
	var points []coord
	for _, c := range cells {
		if !slices.Contains(points, c.at) {
			points = append(points, c.at)
		}
	}
	out := cells
	for _, at := range points {
		if slices.ContainsFunc(out, func(c *cell) bool { return c.isFloor() && c.at == at }) {
			continue
		}
		fk := floorKey(at)
		if fk == at {
			continue
		}
		for _, c := range m.cells {
			if c.isFloor() && c.at == fk && !slices.Contains(out, c) {
				out = append(out, c)
			}
		}
	}
	return out
}

// dim is a dimension of the matrix that a chart can put on its x axis.
type dim int

const (
	dimClients dim = iota
	dimRate
	dimPayload
	dimRTT // the emulated network, by its RTT in ms
)

func (d dim) of(at coord) float64 {
	switch d {
	case dimClients:
		return float64(at.Clients)
	case dimRate:
		return at.Rate
	case dimRTT:
		return float64(at.RTTNs) / 1e6
	}
	return float64(at.Payload)
}

// without zeroes dimension d of at, leaving the coordinates that define a
// slice along d.
func (d dim) without(at coord) coord {
	switch d {
	case dimClients:
		at.Clients = 0
	case dimRate:
		if at.Work.Kind == workloadGame && at.Work.InputRate == at.Rate {
			at.Work.InputRate = inputPerTick // the inputs follow the tick rate
		}
		at.Rate = 0
	case dimRTT:
		at.Network, at.RTTNs = "", 0
	default:
		at.Payload = 0
	}
	return at
}

// with sets dimension d of a slice's coordinates at to v, undoing
// without: the point of the slice at v (a game's input per tick follows
// the tick rate). Not for dimRTT, whose network name without dropped.
func (d dim) with(at coord, v float64) coord {
	switch d {
	case dimClients:
		at.Clients = int(v)
	case dimRate:
		at.Rate = v
		if at.Work.InputRate == inputPerTick {
			at.Work.InputRate = v
		}
	case dimPayload:
		at.Payload = int(v)
	}
	return at
}

// slice chooses the cells for a chart with dimension x on its x axis: it
// fixes the other dimensions at the values that give the most distinct x
// values (so the line is as long as the data allows), preferring the
// headline values on ties, then more cells. keep, if not nil, limits the
// candidates. It returns the fixed coordinates (x zeroed) and the cells.
func (m *matrix) slice(x dim, keep func(coord) bool) (coord, []*cell) {
	type group struct {
		xs         map[float64]bool
		cells      []*cell
		contenders int
	}
	groups := map[coord]*group{}
	var keys []coord
	for _, c := range m.cells {
		if keep != nil && !keep(c.at) {
			continue
		}
		k := x.without(c.at)
		g := groups[k]
		if g == nil {
			g = &group{xs: map[float64]bool{}}
			groups[k] = g
			keys = append(keys, k)
		}
		g.xs[x.of(c.at)] = true
		g.cells = append(g.cells, c)
		if !c.isFloor() {
			g.contenders++
		}
	}
	if len(keys) == 0 {
		return coord{}, nil
	}
	// A slice of the floor alone (the floor at its own HTTP key) is a
	// candidate only when there is nothing else: the floor joins the
	// slice of the variant it goes with (withFloors).
	if withContenders := slices.DeleteFunc(slices.Clone(keys), func(k coord) bool { return groups[k].contenders == 0 }); len(withContenders) > 0 {
		keys = withContenders
	}
	head := x.without(m.head)
	matches := func(k coord) int {
		n := 0
		if k.Clients == head.Clients {
			n++
		}
		if k.Rate == head.Rate {
			n++
		}
		if k.Payload == head.Payload {
			n++
		}
		if k.Network == head.Network {
			n += 3 // the headline network first: every other chart is about it
		}
		if k.HTTP == head.HTTP {
			n += 3 // and the headline way of speaking HTTP
		}
		if k.Work == head.Work {
			n += 3 // and the headline workload
		}
		return n
	}
	best := slices.MaxFunc(keys, func(a, b coord) int {
		ga, gb := groups[a], groups[b]
		if c := cmp.Compare(len(ga.xs), len(gb.xs)); c != 0 {
			return c
		}
		if c := cmp.Compare(matches(a), matches(b)); c != 0 {
			return c
		}
		if c := cmp.Compare(len(ga.cells), len(gb.cells)); c != 0 {
			return c
		}
		return -compareCoords(a, b) // deterministic: the smaller coordinates
	})
	return best, m.withFloors(slices.Clone(groups[best].cells))
}

// distinct returns the sorted distinct values of d over the cells.
func distinct(cells []*cell, d dim) []float64 {
	var vs []float64
	for _, c := range cells {
		vs = append(vs, d.of(c.at))
	}
	slices.Sort(vs)
	return slices.Compact(vs)
}

// byVariant groups cells by variant, keeping variant order.
func byVariant(cells []*cell) (vs []variant, groups map[variant][]*cell) {
	groups = map[variant][]*cell{}
	for _, c := range cells {
		if _, ok := groups[c.v]; !ok {
			vs = append(vs, c.v)
		}
		groups[c.v] = append(groups[c.v], c)
	}
	slices.SortFunc(vs, compareVariants)
	return vs, groups
}

// describe names the fixed coordinates of a slice for a title, skipping
// the dimension on the x axis, e.g. "100 clients, 64 B payload"; a
// workload other than broadcast first: "chat in rooms of 10, 100 clients,
// 1 message/s per client, 128 B messages".
func describe(at coord, x ...dim) string {
	var parts []string
	if w := at.Work.describePart(at.Rate); w != "" {
		parts = append(parts, w)
	}
	if !slices.Contains(x, dimClients) {
		parts = append(parts, Plural(at.Clients, "client"))
	}
	if !slices.Contains(x, dimRate) {
		parts = append(parts, at.Work.rateText(at.Rate))
	}
	if !slices.Contains(x, dimPayload) {
		parts = append(parts, at.Work.payloadText(at.Payload))
	}
	if at.Network != "" && !slices.Contains(x, dimRTT) {
		parts = append(parts, at.Network+" network")
	}
	if !at.HTTP.isDefault() {
		parts = append(parts, at.HTTP.label())
	}
	return strings.Join(parts, ", ")
}

// describeCell is describe for the cell of transport t at at: a floor
// cell's HTTP options read as the floor's (httpKey.floorLabel).
func describeCell(t string, at coord) string {
	if !isFloor(t) {
		return describe(at)
	}
	label := at.HTTP.floorLabel()
	at.HTTP = defaultHTTP
	if label != defaultHTTP.floorLabel() {
		return describe(at) + ", " + label
	}
	return describe(at)
}

// Plural returns "1 word" or "n words".
func Plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return strconv.Itoa(n) + " " + word + "s"
}
