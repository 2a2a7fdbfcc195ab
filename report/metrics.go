package report

import (
	"fmt"
	"pushbench/results"
	"pushbench/transport"
)

// metricDef is one figure of a record, defined once for every place that
// shows it: bench.txt (unit, direction), the summary tables (column) and
// the one-line summary (line). Values are in the unit's base (ns, bytes,
// counts), so the same number goes to bench.txt and, formatted, to people.
type metricDef struct {
	// unit is the bench.txt unit ("" = not in bench.txt). Units with
	// "ns" are rescaled by benchstat (p99-ns is shown as p99-sec), units
	// with "B" are binary-scaled.
	unit string
	// higher: higher is better (benchstat assumes lower otherwise).
	higher bool
	// column is the summary table's header ("" = not a table column).
	column string
	// line is the label in the one-line summary ("" = not in it); lineUnit
	// follows the value there ("/event", "/conn").
	line, lineUnit string
	value          func(r *results.Record) float64
	// format writes the value for people.
	format func(v float64) string
	// applies says whether the figure means something for r's transport
	// (nil: always); where it does not, tables leave the cell empty.
	applies func(r *results.Record) bool
	// needs is the number of independent events a percentile needs to be
	// a figure: 1/(1−q). Below it the value is only bounded by the
	// maximum, and is shown so.
	needs uint64
	// sample is what a percentile rests on: the independent values and
	// their maximum (nil: the record's events and its latency maximum).
	sample func(r *results.Record) (n uint64, maxNs int64)
	// upstream marks the figures of client-originated traffic (chat,
	// game): a table column only when the run has such a cell, and in
	// bench.txt only for the records it applies to, so broadcast results
	// keep their lines.
	upstream bool
}

// sampleOf is what m's percentile rests on in r (metricDef.sample).
func (m metricDef) sampleOf(r *results.Record) (n uint64, maxNs int64) {
	if m.sample != nil {
		return m.sample(r)
	}
	return r.Events, r.Latency.Max
}

// inBench reports whether bench.txt has m for r.
func (m metricDef) inBench(r *results.Record) bool {
	return m.unit != "" && (!m.upstream || m.applies == nil || m.applies(r))
}

func hasInputLatency(r *results.Record) bool { return isGame(r) && r.InputLatency != nil }

func inputLatency(f func(l *results.Latency) int64) func(r *results.Record) float64 {
	return func(r *results.Record) float64 {
		if r.InputLatency == nil {
			return 0
		}
		return float64(f(r.InputLatency))
	}
}

// inputSample is what the input latency's percentiles rest on: every
// input acknowledged in the window is one value.
func inputSample(r *results.Record) (uint64, int64) {
	if r.InputLatency == nil {
		return 0, 0
	}
	return uint64(max(r.InputLatency.Count, 0)), r.InputLatency.Max
}

func hasIdle(r *results.Record) bool { return r.Scenario.IdleNs > 0 }

func polls(r *results.Record) bool { return r.Requests > 0 && transport.IsPoll(r.Scenario.Transport) }

func ns(f func(r *results.Record) int64) func(r *results.Record) float64 {
	return func(r *results.Record) float64 { return float64(f(r)) }
}

// metrics is the table of figures, in the order bench.txt, the summary
// table and the one-line summary show them.
var metrics = []metricDef{
	{unit: "p50-ns", column: "p50", line: "p50", value: ns(func(r *results.Record) int64 { return r.Latency.P50 }), format: fmtDuration},
	{unit: "p90-ns", needs: 10, value: ns(func(r *results.Record) int64 { return r.Latency.P90 }), format: fmtDuration},
	{unit: "p99-ns", column: "p99", line: "p99", needs: 100, value: ns(func(r *results.Record) int64 { return r.Latency.P99 }), format: fmtDuration},
	{unit: "p99.9-ns", column: "p99.9", line: "p99.9", needs: 1000, value: ns(func(r *results.Record) int64 { return r.Latency.P999 }), format: fmtDuration},
	{unit: "max-ns", column: "max", line: "max", value: ns(func(r *results.Record) int64 { return r.Latency.Max }), format: fmtDuration},
	{unit: "mean-ns", value: func(r *results.Record) float64 { return r.Latency.Mean }, format: fmtDuration},
	{unit: "down-B/event", column: "down B/event", line: "down", lineUnit: "B/event",
		value: func(r *results.Record) float64 { return r.Wire.DownBytesPerEvent }, format: fmtSig},
	{unit: "up-B/event", column: "up B/event", line: "up", lineUnit: "B/event",
		value: func(r *results.Record) float64 { return r.Wire.UpBytesPerEvent }, format: fmtSig},
	{unit: "req/event", column: "req/event", line: "requests", lineUnit: "/event",
		value: func(r *results.Record) float64 { return r.RequestsPerEvent }, format: fmtSig},
	{unit: "empty/req", column: "empty polls", value: func(r *results.Record) float64 { return r.EmptyShare },
		format: fmtPercent, applies: polls},
	{unit: "srv-cpu-ns/event", column: "server CPU/event", line: "server CPU", lineUnit: "/event",
		value: func(r *results.Record) float64 { return r.Server.CPUUsPerEvent * 1e3 }, format: fmtDuration},
	{unit: "srv-cpu-net-ns/event", column: "net of idle", line: "net of idle",
		value: func(r *results.Record) float64 { return r.Server.CPUUsPerEventNet * 1e3 }, format: fmtDuration, applies: hasIdle},
	{unit: "srv-idle-cpu-ns/conn-s", column: "idle CPU/conn·s", line: "idle", lineUnit: "/conn·s",
		value: func(r *results.Record) float64 { return r.Server.IdleCPUUsPerConnS * 1e3 }, format: fmtDuration, applies: hasIdle},
	{unit: "cli-cpu-ns/event", line: "client CPU", lineUnit: "/event",
		value: func(r *results.Record) float64 { return r.Client.CPUUsPerEvent * 1e3 }, format: fmtDuration},
	{unit: "srv-rss-B/conn", column: "server RSS/conn", line: "server RSS", lineUnit: "/conn",
		value: func(r *results.Record) float64 { return r.Server.RSSBytesPerConn }, format: fmtBytes},
	{unit: "srv-rss-loaded-B/conn", value: func(r *results.Record) float64 { return r.Server.RSSBytesPerConnLoaded }, format: fmtBytes},
	{unit: "kernel-sock-B/conn", value: func(r *results.Record) float64 { return r.Server.KernelSocketBytesPerConn }, format: fmtBytes},
	{unit: "srv-heap-B/conn", value: func(r *results.Record) float64 { return r.Server.HeapBytesPerConn }, format: fmtBytes},
	{unit: "srv-goroutines/conn", value: func(r *results.Record) float64 { return r.Server.GoroutinesPerConn }, format: fmtSig},
	{unit: "deliveries/s", higher: true, column: "deliveries/s", line: "deliveries", lineUnit: "/s",
		value: func(r *results.Record) float64 { return r.DeliveriesPerS }, format: fmtSig},
	{unit: "lost/expected", value: lostShare, format: fmtPercent},
	{unit: "pub-lag-p99-ns", column: "pub lag p99", value: func(r *results.Record) float64 { return float64(r.Publisher.LagP99Ns) }, format: fmtDuration},
	// The upstream of chat and game: messages (inputs) sent in the window,
	// what each cost upstream (bytes, and requests: POST /send, 0 on a
	// stream), how late the senders started, and the game's input latency.
	{unit: "sent-msgs", column: "sent", line: "sent", upstream: true, applies: isUpstream,
		value: func(r *results.Record) float64 { return float64(r.Sent) }, format: fmtSig},
	{unit: "up-B/msg", column: "up B/msg", line: "upstream", lineUnit: "B/msg", upstream: true, applies: isUpstream,
		value: func(r *results.Record) float64 { return r.Wire.UpBytesPerMessage }, format: fmtSig},
	{unit: "req/msg", column: "req/msg", line: "upstream requests", lineUnit: "/msg", upstream: true, applies: isUpstream,
		value: func(r *results.Record) float64 { return r.RequestsPerMessage }, format: fmtSig},
	{unit: "send-lag-p99-ns", column: "send lag p99", line: "send lag p99", upstream: true, applies: isUpstream,
		value: func(r *results.Record) float64 { return float64(r.SendLagP99Ns) }, format: fmtDuration},
	{unit: "input-p50-ns", column: "input p50", line: "input p50", upstream: true, applies: hasInputLatency,
		value: inputLatency(func(l *results.Latency) int64 { return l.P50 }), format: fmtDuration},
	{unit: "input-p99-ns", column: "input p99", line: "input p99", upstream: true, applies: hasInputLatency, needs: 100, sample: inputSample,
		value: inputLatency(func(l *results.Latency) int64 { return l.P99 }), format: fmtDuration},
	{column: "events", value: func(r *results.Record) float64 { return float64(r.Events) }, format: fmtSig,
		applies: func(r *results.Record) bool { return r.Events > 0 }},
}

func lostShare(r *results.Record) float64 {
	if r.Expected == 0 {
		return 0
	}
	return float64(r.Lost) / float64(r.Expected)
}

// show formats m for r: "" where it does not apply, "—" for a cell that
// measured nothing, and a percentile that rests on fewer independent
// events than it needs as the bound it is: "≤ 3.2 ms (max, n=10)".
func (m metricDef) show(r *results.Record) string {
	switch {
	case results.StatusOf(r) == results.StatusError:
		return "—"
	case m.applies != nil && !m.applies(r):
		return ""
	}
	if n, most := m.sampleOf(r); m.needs > 0 && n > 0 && n < m.needs {
		return fmt.Sprintf("≤ %s (max, n=%d)", fmtDuration(float64(most)), n)
	}
	return m.format(m.value(r))
}

// columns are the metrics that are summary-table columns, in order; the
// upstream figures only when the run has chat or game cells (upstream).
func columns(upstream bool) []metricDef {
	var out []metricDef
	for _, m := range metrics {
		if m.column != "" && (upstream || !m.upstream) {
			out = append(out, m)
		}
	}
	return out
}
