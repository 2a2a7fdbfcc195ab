package report

import (
	"fmt"
	"math"
	"slices"
	"strings"

	"pushbench/results"
	"pushbench/transport"
)

// The findings of client-originated traffic: at each of the run's chat
// and game headline points, what a message (an input) costs on its way up
// per transport, and for the game the input latency against half a tick.
// Every figure is the cell's, as the table shows it; a figure from a cell
// whose records are not clean carries ⚠ (the problem findings name it).

// workloadHead is the headline point of the run's cells of one workload
// kind (headlineOf over them); ok is false when the run has none.
func (m *matrix) workloadHead(kind string) (at coord, ok bool) {
	var cells []*cell
	for _, c := range m.cells {
		if c.at.Work.Kind == kind {
			cells = append(cells, c)
		}
	}
	if len(cells) == 0 {
		return coord{}, false
	}
	if m.head.Work.Kind == kind {
		return m.head, true
	}
	return headlineOf(cells), true
}

// workloadFindings are the findings of the run's chat and game cells.
func (m *matrix) workloadFindings() []string {
	var out []string
	add := func(s string) {
		if s != "" {
			out = append(out, s)
		}
	}
	for _, kind := range []string{workloadChat, workloadGame} {
		at, ok := m.workloadHead(kind)
		if !ok {
			continue
		}
		if at != m.head { // the headline's latency is a finding already
			add(m.latencyFinding(at, "At the "+kind+" headline"))
		}
		add(m.upstreamFinding(at))
		if kind == workloadGame {
			add(m.inputFinding(at))
		}
	}
	return out
}

// notClean reports whether a record of the cell has a problem that makes
// its figures not clean (issues: loss, a failed check, a partial run).
func (c *cell) notClean() bool {
	return slices.ContainsFunc(c.recs, func(r *results.Record) bool { return hasBad(issues(r)) })
}

// mark is the ⚠ after a figure of a cell that is not clean.
func (c *cell) mark() string {
	if c.notClean() {
		return " ⚠"
	}
	return ""
}

const notCleanNote = " ⚠ marks a figure from a cell whose records are not clean (named below)."

// workContext names what a workload's headline point holds besides its
// workload and rate, for a sentence: "100 clients, HTTP/1.1, browser
// headers"; the game adds its inputs and snapshots first.
func workContext(at coord) string {
	var parts []string
	if at.Work.Kind == workloadGame {
		switch {
		case at.Work.InputRate == at.Rate || at.Work.InputRate == inputPerTick:
			parts = append(parts, "an input per tick")
		case at.Work.InputRate > 0:
			parts = append(parts, perSecond(at.Work.InputRate, "input")+" per client")
		}
		parts = append(parts, at.Work.payloadText(at.Payload))
	}
	parts = append(parts, Plural(at.Clients, "client"))
	if at.Network != "" {
		parts = append(parts, at.Network+" network")
	}
	if !at.HTTP.isDefault() {
		parts = append(parts, at.HTTP.label())
	}
	return strings.Join(parts, ", ")
}

// workLead opens a sentence on a workload's point: "Chat in rooms of 10
// at 1 message/s per client (100 clients, HTTP/1.1, browser headers)".
func workLead(at coord) string {
	return fmt.Sprintf("%s in %s at %s (%s)", capFirst(at.Work.Kind), roomsOf(at.Work.Room), at.Work.rateText(at.Rate), workContext(at))
}

func upBytes(r *results.Record) float64 { return r.Wire.UpBytesPerMessage }
func upReqs(r *results.Record) float64  { return r.RequestsPerMessage }
func upSent(r *results.Record) float64  { return float64(r.Sent) }
func inputP50(r *results.Record) float64 {
	return inputLatency(func(l *results.Latency) int64 { return l.P50 })(r)
}
func inputP99(r *results.Record) float64 {
	return inputLatency(func(l *results.Latency) int64 { return l.P99 })(r)
}

// fmtByteCount writes a byte count in bytes, grouped from 1,000 up: 153
// B, 1,120 B (a message's cost reads best unscaled).
func fmtByteCount(v float64) string {
	if math.Abs(v) >= 1000 && math.Abs(v) < 1e12 {
		return commaInt(int(math.Round(v))) + " B"
	}
	return fmtSig(v) + " B"
}

// requestsText writes upstream requests per message for a sentence: "1
// request", "1.5 requests".
func requestsText(v float64) string {
	if fmtSig(v) == "1" {
		return "1 request"
	}
	return fmtSig(v) + " requests"
}

// upstreamFinding says what one message (input) cost on its way up at a
// chat or game point, per transport, cheapest first: "Chat in rooms of 10
// at 1 message/s per client (100 clients, HTTP/1.1, browser headers): a
// 128 B message costs 153 B up over WebSocket, ... and 1,120 B (1 request)
// over short polling every 1 s." Cells that sent nothing are left out.
func (m *matrix) upstreamFinding(at coord) string {
	var cells, floors []*cell
	for _, c := range m.at(at) {
		if !(c.value(upSent) > 0) || !(c.value(upBytes) > 0) {
			continue
		}
		if c.isFloor() {
			floors = append(floors, c)
		} else {
			cells = append(cells, c)
		}
	}
	if len(cells) == 0 {
		return ""
	}
	slices.SortStableFunc(cells, func(a, b *cell) int { return compareFloat(a.value(upBytes), b.value(upBytes)) })
	marked, polls := false, false
	var parts []string
	for i, c := range cells {
		s := fmtByteCount(c.value(upBytes))
		if i == 0 {
			s += " up"
		}
		if r := c.value(upReqs); r > 0 {
			s += " (" + requestsText(r) + ")"
		}
		parts = append(parts, s+c.mark()+" over "+c.v.Label())
		marked = marked || c.notClean()
		polls = polls || transport.IsPoll(c.v.Transport)
	}
	noun := map[string]string{workloadChat: "message", workloadGame: "input"}[at.Work.Kind]
	size := messageSize(at)
	s := fmt.Sprintf("%s: a %s B %s costs %s.", workLead(at), fmtSig(size), noun, joinAnd(parts))
	if best := cells[0]; best.value(upBytes) >= size {
		s += fmt.Sprintf(" The leanest, %s, adds %s to the %s itself", best.v.Label(), fmtByteCount(best.value(upBytes)-size), noun)
		if worst := cells[len(cells)-1]; worst != best && worst.value(upBytes) > best.value(upBytes) {
			s += fmt.Sprintf("; %s costs %s as much", worst.v.Label(), fmtRatio(worst.value(upBytes)/best.value(upBytes)))
		}
		s += "."
	}
	for _, f := range floors {
		s += fmt.Sprintf(" Over %s, with no HTTP, it takes %s%s.", f.v.Label(), fmtByteCount(f.value(upBytes)), f.mark())
		marked = marked || f.notClean()
	}
	if polls {
		s += " Up bytes are per " + noun + " sent; polling's include its polls."
	}
	if marked {
		s += notCleanNote
	}
	return s
}

// inputFinding gives the game's input latency per transport at a point,
// lowest p50 first, beside half a tick: "Game input latency at 20
// ticks/s (...), p50 / p99: 27 ms / 40 ms over WebSocket, ...; half a tick
// is 25 ms."
func (m *matrix) inputFinding(at coord) string {
	cells := slices.DeleteFunc(m.at(at), func(c *cell) bool { return !c.hasInputLatency() || !(c.value(inputP50) > 0) })
	if len(cells) == 0 || !(at.Rate > 0) {
		return ""
	}
	slices.SortStableFunc(cells, func(a, b *cell) int { return compareFloat(a.value(inputP50), b.value(inputP50)) })
	contenders := slices.DeleteFunc(slices.Clone(cells), func(c *cell) bool { return c.isFloor() })
	p99def := metricByUnit("input-p99-ns")
	marked := false
	var parts []string
	for _, c := range cells {
		parts = append(parts, fmt.Sprintf("%s / %s%s over %s", fmtDuration(c.value(inputP50)), c.show(p99def), c.mark(), c.v.Label()))
		marked = marked || c.notClean()
	}
	half := 1e9 / (2 * at.Rate)
	s := fmt.Sprintf("Game input latency in %s at %s (%s), p50 / p99: %s; half a tick is %s, the average wait for the next tick.",
		roomsOf(at.Work.Room), at.Work.rateText(at.Rate), workContext(at), joinAnd(parts), fmtDuration(half))
	if len(contenders) > 0 && contenders[0].value(inputP50) > half {
		best := contenders[0]
		s += fmt.Sprintf(" The lowest p50, %s's, is half a tick plus %s.", best.v.Label(), fmtDuration(best.value(inputP50)-half))
	}
	if marked {
		s += notCleanNote
	}
	return s
}
