package report

import (
	"bytes"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"pushbench/results"
)

// The tests here recompute, from the records themselves, the figures the
// report shows. They use the report's number formatting (fmtDuration,
// fmtSig, fmtRatio) and nothing else of it.

// realLabels are the transports' names in the real run's tables.
var realLabels = map[string]string{
	"shortpoll": "short polling every 100 ms",
	"longpoll":  "long polling",
	"sse":       "SSE",
	"ws":        "WebSocket",
	"tcp":       "raw TCP (floor)",
}

// place is a cell of a run: a transport at one point of the matrix.
type place struct {
	transport string
	clients   int
	rate      float64
	payload   int
}

func placeOf(s results.Scenario) place {
	return place{s.Transport, s.Clients, s.Rate, s.Payload}
}

// benchName is the cell's name in bench.txt, written out by hand: short
// polling carries its interval.
func (p place) benchName(intervalNs int64) string {
	t := p.transport
	if t == "shortpoll" {
		t += "-" + strconv.FormatInt(intervalNs/1e6, 10) + "ms"
	}
	return fmt.Sprintf("transport=%s/clients=%d/rate=%s/payload=%d", t, p.clients, strconv.FormatFloat(p.rate, 'g', -1, 64), p.payload)
}

// byPlace groups records by cell, keeping their order.
func byPlace(recs []results.Record) map[place][]results.Record {
	out := map[place][]results.Record{}
	for _, r := range recs {
		out[placeOf(r.Scenario)] = append(out[placeOf(r.Scenario)], r)
	}
	return out
}

// medianOf is the middle value, or the mean of the two middle values.
func medianOf(vs []float64) float64 {
	s := slices.Sorted(slices.Values(vs))
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// of reads one figure from each record.
func of(recs []results.Record, f func(r results.Record) float64) []float64 {
	var vs []float64
	for _, r := range recs {
		vs = append(vs, f(r))
	}
	return vs
}

// withRange is how a table shows repeated figures: the median, and the
// smallest and largest in brackets when they read differently.
func withRange(vs []float64, format func(float64) string) string {
	s := format(medianOf(vs))
	if lo, hi := format(slices.Min(vs)), format(slices.Max(vs)); lo != hi {
		s += " [" + lo + "–" + hi + "]"
	}
	return s
}

// clean says whether a record's figures are clean, from its fields: it
// ran to its end, delivered every expected event once and in order, and
// passed every check. why lists its failed checks.
func clean(r results.Record) (ok bool, why string) {
	var failed []string
	for _, name := range slices.Sorted(maps.Keys(r.Checks)) {
		if !r.Checks[name].OK {
			failed = append(failed, "check "+name+" failed")
		}
	}
	ok = results.StatusOf(&r) == results.StatusOK && !r.Partial && r.Expected > 0 && r.Delivered == r.Expected &&
		r.Lost == 0 && r.Duplicates == 0 && r.OutOfOrder == 0 && len(failed) == 0
	return ok, strings.Join(failed, "; ")
}

// markdownTable returns the header and the rows of the first table in md.
func markdownTable(t *testing.T, md string) (header []string, rows [][]string) {
	t.Helper()
	split := func(line string) []string {
		cells := strings.Split(strings.TrimSuffix(strings.TrimPrefix(line, "|"), "|"), "|")
		for i := range cells {
			cells[i] = strings.TrimSpace(cells[i])
		}
		return cells
	}
	for line := range strings.Lines(md) {
		line = strings.TrimSuffix(line, "\n")
		switch {
		case !strings.HasPrefix(line, "|"), strings.HasPrefix(line, "|---"):
		case header == nil:
			header = split(line)
		default:
			rows = append(rows, split(line))
		}
	}
	if header == nil {
		t.Fatalf("no table in\n%s", md)
	}
	return header, rows
}

// TestReportRealRun checks summary.md's table and bench.txt of the
// recorded run against figures computed from its records: each repeated
// figure is the median of the two repeats with their range, a percentile
// the events cannot support is the bound "≤ max (max, n=…)", SSE and
// WebSocket carry their p50 and p99 as multiples of the raw TCP cell's,
// the cells with a failed check say so; bench.txt has one line per clean
// record (two samples for a clean cell) and lists the others on # lines.
func TestReportRealRun(t *testing.T) {
	t.Parallel()
	recs, info := readRealRun(t)
	cells := byPlace(recs)
	if len(recs) != 30 || len(cells) != 15 {
		t.Fatalf("%d records in %d cells, want 30 in 15 (two repeats of each)", len(recs), len(cells))
	}

	var md bytes.Buffer
	if err := WriteSummaryMarkdown(&md, recs, &info); err != nil {
		t.Fatal(err)
	}
	header, rows := markdownTable(t, md.String())
	col := func(name string) int {
		i := slices.Index(header, name)
		if i < 0 {
			t.Fatalf("summary.md's table has no column %q: %q", name, header)
		}
		return i
	}
	if len(rows) != len(cells) {
		t.Errorf("summary.md has %d rows, want one per cell (%d)", len(rows), len(cells))
	}
	p50 := func(r results.Record) float64 { return float64(r.Latency.P50) }
	p99 := func(r results.Record) float64 { return float64(r.Latency.P99) }
	bound := regexp.MustCompile(`^≤ (.+) \(max, n=(\d+) over 2 repeats\)$`)
	for _, row := range rows {
		clients, _ := strconv.Atoi(row[col("clients")])
		rate, _ := strconv.ParseFloat(row[col("rate (ev/s)")], 64)
		var at place
		for name, label := range realLabels {
			if label == row[col("transport")] {
				at = place{name, clients, rate, 64}
			}
		}
		rs := cells[at]
		if len(rs) != 2 {
			t.Errorf("row %q: %d records for %+v, want 2", row[:4], len(rs), at)
			continue
		}
		check := func(column, want string) {
			t.Helper()
			if got := row[col(column)]; got != want {
				t.Errorf("%s at %d clients, %g events/s: %s is %q, want %q", at.transport, clients, rate, column, got, want)
			}
		}
		check("p50", withRange(of(rs, p50), fmtDuration))
		check("max", withRange(of(rs, func(r results.Record) float64 { return float64(r.Latency.Max) }), fmtDuration))
		check("down B/event", withRange(of(rs, func(r results.Record) float64 { return r.Wire.DownBytesPerEvent }), fmtSig))
		check("server CPU/event", withRange(of(rs, func(r results.Record) float64 { return r.Server.CPUUsPerEvent * 1e3 }), fmtDuration))

		// A p99 needs 100 events, a p99.9 1000, the two repeats' together.
		events := rs[0].Events + rs[1].Events
		for _, q := range []struct {
			column string
			needs  uint64
			value  func(r results.Record) float64
		}{
			{"p99", 100, p99},
			{"p99.9", 1000, func(r results.Record) float64 { return float64(r.Latency.P999) }},
		} {
			got := row[col(q.column)]
			if events >= q.needs {
				check(q.column, withRange(of(rs, q.value), fmtDuration))
				continue
			}
			m := bound.FindStringSubmatch(got)
			if m == nil {
				t.Errorf("%+v: %s is %q, want the bound ≤ max (max, n=%d over 2 repeats)", at, q.column, got, events)
				continue
			}
			// The bound is the larger of the repeats' maxima, n both
			// repeats' events.
			most := fmtDuration(float64(max(rs[0].Latency.Max, rs[1].Latency.Max)))
			if m[1] != most || m[2] != strconv.FormatUint(events, 10) {
				t.Errorf("%+v: %s is %q; want ≤ %s (max, n=%d over 2 repeats)", at, q.column, got, most, events)
			}
		}

		floor := ""
		if at.transport == "sse" || at.transport == "ws" {
			tcp := cells[place{"tcp", clients, rate, 64}]
			floor = fmtRatio(medianOf(of(rs, p50))/medianOf(of(tcp, p50))) + " / "
			if events >= 100 && tcp[0].Events+tcp[1].Events >= 100 {
				floor += fmtRatio(medianOf(of(rs, p99)) / medianOf(of(tcp, p99)))
			} else {
				floor += "n<100" // a p99 multiple needs a p99 on both sides
			}
		}
		check("p50 / p99 × floor", floor)

		var why []string
		for _, r := range rs {
			if ok, w := clean(r); !ok {
				why = append(why, w)
			}
		}
		notes := ""
		if len(why) > 0 {
			notes = "**" + strings.Join(slices.Compact(why), "; ") + "**"
		}
		check("notes", notes)
	}

	// bench.txt: one line per clean record, in the cell's record order,
	// with the record's own figures; the others listed on # lines.
	var bench bytes.Buffer
	if err := WriteBenchText(&bench, recs); err != nil {
		t.Fatal(err)
	}
	wantP50 := map[string][]string{}
	var wantLeft []string
	for _, r := range recs {
		name := placeOf(r.Scenario).benchName(r.Scenario.IntervalNs)
		if ok, why := clean(r); ok {
			wantP50[name] = append(wantP50[name], strconv.FormatInt(r.Latency.P50, 10))
		} else {
			wantLeft = append(wantLeft, "#   "+name+": "+why)
		}
	}
	if len(wantLeft) != 4 {
		t.Errorf("%d records of the real run are not clean, want the 4 that failed publisher_on_schedule", len(wantLeft))
	}
	gotP50 := map[string][]string{}
	var gotLeft []string
	leftHeader := ""
	for line := range strings.Lines(bench.String()) {
		line = strings.TrimSuffix(line, "\n")
		switch {
		case strings.HasPrefix(line, "BenchmarkCompare/"):
			f := strings.Split(line, " \t ")
			if len(f) < 3 || f[1] != "1" {
				t.Errorf("bench.txt line without iteration count 1: %q", line)
				continue
			}
			name := strings.TrimPrefix(f[0], "BenchmarkCompare/")
			p50, _ := strings.CutSuffix(f[2], " p50-ns")
			gotP50[name] = append(gotP50[name], p50)
		case strings.HasPrefix(line, "# Left out"):
			leftHeader = line
		case strings.HasPrefix(line, "#"):
			gotLeft = append(gotLeft, line)
		}
	}
	for name, want := range wantP50 {
		if got := gotP50[name]; !slices.Equal(got, want) {
			t.Errorf("bench.txt: %s has p50-ns %v, want %v (one line per clean repeat)", name, got, want)
		}
	}
	for name, got := range gotP50 {
		if _, ok := wantP50[name]; !ok {
			t.Errorf("bench.txt has %s (%v), which has no clean record", name, got)
		}
	}
	slices.Sort(gotLeft)
	slices.Sort(wantLeft)
	if !slices.Equal(gotLeft, wantLeft) {
		t.Errorf("bench.txt lists as left out:\n%s\nwant:\n%s", strings.Join(gotLeft, "\n"), strings.Join(wantLeft, "\n"))
	}
	if want := fmt.Sprintf("# Left out (their figures are not clean): %d cells", len(wantLeft)); leftHeader != want {
		t.Errorf("bench.txt: %q, want %q", leftHeader, want)
	}
}
