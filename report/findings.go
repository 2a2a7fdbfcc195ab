package report

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"

	"pushbench/results"
	"pushbench/transport"
)

// finding is one sentence of "what this run shows", computed from the data.
type finding struct {
	text string
	bad  bool
}

// findings computes the headline statements of a run: the bytes overhead of
// polling at low and high rates, the latency of each transport at the
// headline scenario and at the most clients, the CPU and memory cost, and
// every cell whose numbers are not clean. A statement whose data is
// missing is left out.
func (m *matrix) findings() []finding {
	var out []finding
	add := func(format string, args ...any) {
		out = append(out, finding{text: capFirst(fmt.Sprintf(format, args...))})
	}
	// Chat and game: what a message costs on its way up, and the game's
	// input latency; first when the run is about them.
	work := m.workloadFindings()
	if !m.head.Work.isBroadcast() {
		for _, s := range work {
			add("%s", s)
		}
		work = nil
	}
	if s := m.bytesFinding(); s != "" {
		add("%s", s)
	}
	if s := m.pollOverheadFinding(); s != "" {
		add("%s", s)
	}
	if s := m.latencyFinding(m.head, "At the headline scenario"); s != "" {
		add("%s", s)
	}
	if s := m.floorFinding(m.head); s != "" {
		add("%s", s)
	}
	for _, s := range work {
		add("%s", s)
	}
	if at, cells := m.slice(dimClients, nil); len(cells) > 0 {
		most := distinct(cells, dimClients)
		top := at
		top.Clients = int(most[len(most)-1])
		if top != m.head {
			if s := m.latencyFinding(top, "With the most clients"); s != "" {
				add("%s", s)
			}
		}
	}
	if s := m.costFinding(m.head, forWork(m.head.Work, "server CPU per delivered event"), func(r *results.Record) float64 { return r.Server.CPUUsPerEvent * 1e3 }, fmtDuration); s != "" {
		add("%s", s)
	}
	if at, cells := m.slice(dimClients, nil); len(cells) > 0 {
		most := distinct(cells, dimClients)
		at.Clients = int(most[len(most)-1])
		if s := m.costFinding(at, "server memory per connection", func(r *results.Record) float64 { return r.Server.RSSBytesPerConn }, fmtBytes); s != "" {
			add("%s", s)
		}
	}
	if s := m.crossoverFinding(); s != "" {
		add("%s", s)
	}
	out = append(out, m.problemFindings()...)
	return out
}

// crossoverFinding names where long polling keeps up with WebSocket and
// where it falls behind, from the measured pairs.
func (m *matrix) crossoverFinding() string {
	pts := m.crossoverPoints()
	if len(pts) < 2 {
		return ""
	}
	var behind, keeps []crossoverPoint
	for _, pt := range pts {
		switch {
		case pt.ratio >= 1.5:
			behind = append(behind, pt)
		case pt.ratio <= 1.25:
			keeps = append(keeps, pt)
		}
	}
	if len(behind) == 0 || len(keeps) == 0 {
		return ""
	}
	worst := slices.MaxFunc(behind, func(a, b crossoverPoint) int { return compareFloat(a.ratio, b.ratio) })
	lastBehind := slices.MaxFunc(behind, func(a, b crossoverPoint) int { return compareFloat(a.intervalInRTT, b.intervalInRTT) })
	firstKeeps := slices.MinFunc(keeps, func(a, b crossoverPoint) int { return compareFloat(a.intervalInRTT, b.intervalInRTT) })
	return fmt.Sprintf("Long polling keeps up with WebSocket (p50 within 1.25×) from events %s round trips apart (%s, %s), and falls behind when they come closer: %s WebSocket's p50 at %s round trips (%s, %s), up to %s at %s round trips (%s).",
		fmtSig(firstKeeps.intervalInRTT), firstKeeps.at.Network, rateLabel(firstKeeps.at.Rate),
		fmtRatio(lastBehind.ratio), fmtSig(lastBehind.intervalInRTT), lastBehind.at.Network, rateLabel(lastBehind.at.Rate),
		fmtRatio(worst.ratio), fmtSig(worst.intervalInRTT), worst.at.Network)
}

// bytesFinding compares short polling with the leanest push transport at the
// lowest and the highest event rate of the headline payload.
func (m *matrix) bytesFinding() string {
	at, cells := m.slice(dimRate, func(c coord) bool { return c.Payload == m.head.Payload })
	if len(cells) == 0 {
		return ""
	}
	rates := distinct(cells, dimRate)
	perEvent := func(r *results.Record) float64 { return r.Wire.DownBytesPerEvent + r.Wire.UpBytesPerEvent }
	compare := func(rate float64) (poll, push *cell, ratio float64) {
		here := dimRate.with(at, rate)
		// The poll side: the first polling transport in display order
		// (at the most common interval); the push side: the leanest
		// contender that streams.
		for _, t := range transport.All() {
			switch {
			case t.IsPoll() && poll == nil:
				v := variant{Transport: t.Name}
				if t.Interval {
					v.IntervalNs = m.primaryInterval
				}
				poll = m.find(v, here)
			case t.Kind == transport.Stream && !t.Floor:
				c := m.find(variant{Transport: t.Name}, here)
				if c != nil && c.value(perEvent) > 0 && (push == nil || c.value(perEvent) < push.value(perEvent)) {
					push = c
				}
			}
		}
		if poll == nil || push == nil {
			return nil, nil, math.NaN()
		}
		return poll, push, poll.value(perEvent) / push.value(perEvent)
	}
	lo := rates[0]
	poll, push, ratio := compare(lo)
	if poll == nil || !(ratio > 0) || math.IsInf(ratio, 0) {
		return ""
	}
	w := at.Work
	where := ""
	if !w.isBroadcast() {
		where = ", " + w.Kind + " in " + roomsOf(w.Room)
	}
	s := fmt.Sprintf("At %s and %s (%s%s), %s moves %s the wire bytes per delivered %s of %s (%s vs %s, down + up).",
		w.rateText(lo), Plural(at.Clients, "client"), w.payloadText(at.Payload), where, poll.v.Label(), fmtRatio(ratio), w.eventNoun(), push.v.Label(),
		fmtBytes(poll.value(perEvent)), fmtBytes(push.value(perEvent)))
	if hi := rates[len(rates)-1]; hi != lo {
		if poll2, push2, ratio2 := compare(hi); poll2 != nil && poll2.v == poll.v && ratio2 > 0 && !math.IsInf(ratio2, 0) {
			s += fmt.Sprintf(" At %s the factor is %s (%s vs %s per %s)", w.rateText(hi), fmtRatio(ratio2),
				fmtBytes(poll2.value(perEvent)), fmtBytes(push2.value(perEvent)), w.eventNoun())
			if ratio2 < ratio {
				s += ": each poll then carries a batch of events."
			} else {
				s += "."
			}
		}
	}
	return s
}

// pollOverheadFinding gives the bytes of one short poll with nothing to
// deliver (the idle interval's figure: headers, framing, TLS records and
// the answer "[]"), up + down, for every way of speaking HTTP at the
// headline point, beside Kaazing's 871 B. Cells whose records are not
// clean, or that measured no idle poll, are left out.
func (m *matrix) pollOverheadFinding() string {
	var parts []string
	at := m.head
	var keys []httpKey
	for _, c := range m.cells {
		if c.v.Transport == transport.ShortPoll && c.v.IntervalNs == m.primaryInterval && withoutHTTP(c.at) == withoutHTTP(at) {
			keys = append(keys, c.at.HTTP)
		}
	}
	slices.SortFunc(keys, compareHTTP)
	for _, k := range keys {
		at.HTTP = k
		c := m.find(variant{Transport: transport.ShortPoll, IntervalNs: m.primaryInterval}, at)
		used, clean, _ := pickRecords(c)
		if !clean {
			continue
		}
		p := ohPick{c: c, used: used, clean: clean}
		up, down, _ := p.pollFigures()
		if math.IsNaN(up) {
			continue
		}
		parts = append(parts, fmt.Sprintf("%s B (%s)", fmtSig(up+down), k.label()))
	}
	if len(parts) == 0 {
		return ""
	}
	s := fmt.Sprintf("With nothing to deliver, a short poll costs %s on the wire, up + down: request and response headers, framing, TLS records where on, and the 2-byte answer `[]`. Kaazing's classic table assumed %d B of headers per poll",
		joinAnd(parts), KaazingHeaderBytes)
	if m.hasOverhead() {
		s += "; " + OverheadMarkdownFile + " has its table with measured bytes"
	}
	return s + "."
}

// latencyFinding lists p99 delivery latency per transport at one scenario,
// best first.
func (m *matrix) latencyFinding(at coord, lead string) string {
	cells := slices.DeleteFunc(m.contenders(at), func(c *cell) bool { return !(c.value(p99) > 0) })
	if len(cells) < 2 {
		return ""
	}
	slices.SortStableFunc(cells, func(a, b *cell) int { return compareFloat(a.value(p99), b.value(p99)) })
	var parts []string
	for _, c := range cells {
		parts = append(parts, fmt.Sprintf("%s for %s", c.p99Text(), c.v.Label()))
	}
	best, worst := cells[0], cells[len(cells)-1]
	s := fmt.Sprintf("%s (%s), p99 %s is %s.", lead, describe(at), at.Work.latencyNoun(), joinAnd(parts))
	if b := best.value(p99); b > 0 && worst.value(p99)/b >= 2 && best.supports(100) && worst.supports(100) {
		s += fmt.Sprintf(" The p99 of %s is %s that of %s.", worst.v.Label(), fmtRatio(worst.value(p99)/b), best.v.Label())
	}
	return s
}

// contenders returns the cells at one coordinate whose transport is not the
// floor, in variant order.
func (m *matrix) contenders(at coord) []*cell {
	return slices.DeleteFunc(m.at(at), func(c *cell) bool { return isFloor(c.v.Transport) })
}

func isFloor(name string) bool {
	t, _ := transport.Lookup(name)
	return t.Floor
}

// floorFinding gives the floor's latency at one scenario and each push
// contender's p50 and p99 as a multiple of it: how far above the least a
// push transport can cost on this machine (same publisher, hub, clients
// and harness) it sits.
func (m *matrix) floorFinding(at coord) string {
	floor, f50, f99 := m.floorAt(at)
	if floor == nil {
		return ""
	}
	var parts []string
	for _, c := range m.contenders(at) {
		if t, _ := transport.Lookup(c.v.Transport); t.Kind != transport.Stream || !(c.value(p50) > 0) {
			continue
		}
		if c.supports(100) && floor.supports(100) {
			parts = append(parts, fmt.Sprintf("%s %s / %s", c.v.Label(), fmtRatio(c.value(p50)/f50), fmtRatio(c.value(p99)/f99)))
		} else {
			parts = append(parts, fmt.Sprintf("%s %s / too few events for a p99", c.v.Label(), fmtRatio(c.value(p50)/f50)))
		}
	}
	what := "the same event bytes over a bare TCP connection from the same publisher and hub"
	if !at.Work.isBroadcast() {
		what = "the same " + at.Work.Kind + " over bare TCP connections through the same hub"
	}
	s := fmt.Sprintf("The floor at %s — %s, %s — delivers with p50 %s and p99 %s.",
		describe(at), floor.v.Label(), what, fmtDuration(f50), floor.p99Text())
	if len(parts) > 0 {
		s += fmt.Sprintf(" Push transports' p50 / p99 as multiples of the floor: %s.", joinAnd(parts))
	}
	return s
}

func p50(r *results.Record) float64 { return float64(r.Latency.P50) }
func p99(r *results.Record) float64 { return float64(r.Latency.P99) }

// p99Text is the cell's p99 for a sentence: the median, or the bound the
// table gives when the events do not support a p99.
func (c *cell) p99Text() string {
	if c.supports(100) {
		return fmtDuration(c.value(p99))
	}
	return c.show(metricByUnit("p99-ns"))
}

// floorAt returns the floor cell at a point with its p50 and p99, or nil
// when there is none (or it has no latency).
func (m *matrix) floorAt(at coord) (floor *cell, f50, f99 float64) {
	for _, c := range m.at(at) {
		if isFloor(c.v.Transport) {
			floor = c
		}
	}
	if floor == nil {
		return nil, 0, 0
	}
	f50, f99 = floor.value(p50), floor.value(p99)
	if !(f50 > 0 && f99 > 0) {
		return nil, 0, 0
	}
	return floor, f50, f99
}

// costFinding states the cheapest and the dearest transport for one metric
// at one scenario.
func (m *matrix) costFinding(at coord, what string, f metric, format func(float64) string) string {
	cells := slices.DeleteFunc(m.contenders(at), func(c *cell) bool { return math.IsNaN(c.value(f)) })
	if len(cells) < 2 {
		return ""
	}
	slices.SortStableFunc(cells, func(a, b *cell) int { return compareFloat(a.value(f), b.value(f)) })
	lo, hi := cells[0], cells[len(cells)-1]
	if !(lo.value(f) > 0) || lo.value(f) == hi.value(f) {
		return ""
	}
	return fmt.Sprintf("At %s, %s ranges from %s (%s) to %s (%s), %s.", describe(at), what,
		format(lo.value(f)), lo.v.Label(), format(hi.value(f)), hi.v.Label(), fmtRatio(hi.value(f)/lo.value(f)))
}

// problemFindings names every cell with a problem; no problem is a finding too.
func (m *matrix) problemFindings() []finding {
	var out []finding
	var warned []string
	n := 0
	for _, c := range m.cells {
		for _, r := range c.recs {
			n++
			is := issues(r)
			if hasBad(is) {
				out = append(out, finding{text: capFirst(fmt.Sprintf("%s, %s: %s.", c.v.Label(), describeCell(c.v.Transport, c.at), issueText(is))), bad: true})
			} else if len(is) > 0 {
				warned = append(warned, fmt.Sprintf("%s at %s (%s)", c.v.Label(), describeCell(c.v.Transport, c.at), issueText(is)))
			}
		}
	}
	if len(out) > maxProblemFindings {
		out = []finding{{text: summariseProblems(m, len(out), n), bad: true}}
	}
	if len(out) == 0 {
		what := fmt.Sprintf("All %d cells", n)
		if n == 1 {
			what = "The cell"
		}
		if m.planned > n {
			what = fmt.Sprintf("All %d recorded cells", n)
		}
		out = append(out, finding{text: what + " delivered every expected event exactly once, in order, and passed every self-check."})
	}
	if m.planned > n {
		out = append(out, finding{text: fmt.Sprintf("%d of the %d planned cells have no record (the run was interrupted or stopped early; run.json lists each cell's status): what this report says covers the %d that do.",
			m.planned-n, m.planned, n), bad: true})
	}
	if len(warned) > 0 {
		out = append(out, finding{text: "To note: " + strings.Join(warned, "; ") + "."})
	}
	return out
}

// maxProblemFindings is how many problem cells are named one by one; past
// it they are counted by kind, so the charts stay near the top of the page
// (the failed checks are listed in full in their own section anyway).
const maxProblemFindings = 4

// summariseProblems counts the problem cells by kind of problem.
func summariseProblems(m *matrix, cells, total int) string {
	counts := map[string]int{}
	for _, c := range m.cells {
		for _, r := range c.recs {
			for _, x := range issues(r) {
				if x.bad {
					counts[problemKind(x.text)]++
				}
			}
		}
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(counts)) {
		parts = append(parts, fmt.Sprintf("%s in %s", k, Plural(counts[k], "cell")))
	}
	return fmt.Sprintf("%d of %d cells have problems: %s. Each one is named in the table's notes and under Failed checks.",
		cells, total, strings.Join(parts, ", "))
}

// problemKind turns an issue's text into its kind, without the numbers:
// "check X failed", "loss", "duplicates", "out of order", ...
func problemKind(text string) string {
	switch {
	case strings.HasPrefix(text, "check "):
		return text
	case strings.HasPrefix(text, "lost "):
		return "loss"
	case strings.HasSuffix(text, " duplicates"):
		return "duplicates"
	case strings.HasSuffix(text, " out of order"):
		return "reordering"
	}
	return text
}

// capFirst starts a sentence with a capital letter.
func capFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// joinAnd joins "a", "b", "c" as "a, b and c".
func joinAnd(parts []string) string {
	switch len(parts) {
	case 0:
		return ""
	case 1:
		return parts[0]
	}
	return strings.Join(parts[:len(parts)-1], ", ") + " and " + parts[len(parts)-1]
}
