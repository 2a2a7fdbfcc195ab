package report

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"pushbench/results"
)

// known is a hand-built record with round figures, so that what the
// findings must say can be worked out by hand.
type known struct {
	transport string
	clients   int
	rate      float64
	p50, p99  float64 // µs
	down, up  float64 // wire bytes per delivered event
	cpu       float64 // server CPU µs per delivered event
	rssKiB    float64 // server RSS per connection
}

// knownTable is a star around 10 clients, 10 events/s, 64 B (the
// headline: 10 of its 16 records sit at 10 clients and 10 at 10 events/s),
// with 100 clients and 100 events/s as the other arms. WebSocket at the
// headline ran twice: its figures there are the medians of two repeats.
var knownTable = []known{
	{"shortpoll", 10, 10, 50_000, 96_000, 200, 100, 200, 12},
	{"longpoll", 10, 10, 1_000, 3_000, 190, 90, 100, 8},
	{"sse", 10, 10, 600, 1_600, 80, 0, 25, 16},
	{"ws", 10, 10, 460, 1_000, 60, 0, 18, 20},
	{"ws", 10, 10, 500, 1_400, 60, 0, 22, 24},
	{"tcp", 10, 10, 400, 800, 58, 0, 15, 18},

	{"shortpoll", 100, 10, 50_000, 99_000, 200, 100, 60, 10},
	{"longpoll", 100, 10, 2_000, 5_000, 190, 90, 40, 8},
	{"sse", 100, 10, 900, 2_000, 80, 0, 10, 16},
	{"ws", 100, 10, 800, 2_500, 60, 0, 9, 32},
	{"tcp", 100, 10, 700, 1_500, 58, 0, 8, 14},

	{"shortpoll", 10, 100, 50_000, 99_000, 100, 20, 30, 12},
	{"longpoll", 10, 100, 600, 2_000, 190, 90, 90, 8},
	{"sse", 10, 100, 500, 1_500, 81, 0, 20, 16},
	{"ws", 10, 100, 450, 1_200, 60, 0, 15, 20},
	{"tcp", 10, 100, 400, 1_000, 58, 0, 12, 18},
}

// knownRecords builds knownTable's records: 100 s windows, so even the
// 10 events/s cells hold 1000 events and every p99 is a figure.
func knownRecords() []results.Record {
	const window = 100 * time.Second
	var recs []results.Record
	for _, k := range knownTable {
		events := uint64(k.rate * window.Seconds())
		s := results.Scenario{Transport: k.transport, Clients: k.clients, Rate: k.rate, Payload: 64, DurationNs: int64(window)}
		if k.transport == "shortpoll" {
			s.IntervalNs = int64(100 * time.Millisecond)
		}
		recs = append(recs, results.Record{
			Schema: results.Schema, Scenario: s, Status: results.StatusOK,
			Latency: results.Latency{
				P50: int64(k.p50 * 1e3), P90: int64(k.p99 * 1e3), P99: int64(k.p99 * 1e3),
				P999: int64(k.p99 * 1e3), Max: int64(k.p99 * 1e3), Count: int64(events) * int64(k.clients),
			},
			Events: events, Expected: events * uint64(k.clients), Delivered: events * uint64(k.clients),
			Wire:   results.Wire{DownBytesPerEvent: k.down, UpBytesPerEvent: k.up},
			Server: results.Server{CPUUsPerEvent: k.cpu, RSSBytesPerConn: k.rssKiB * 1024},
			Checks: map[string]results.Check{"no_loss": {OK: true, Detail: "lost 0"}},
		})
	}
	return recs
}

// finding is one line of summary.md's "What this run shows"; bad ones are
// in bold.
type shownFinding struct {
	text string
	bad  bool
}

// findingsIn returns the findings of summary.md.
func findingsIn(t *testing.T, md string) []shownFinding {
	t.Helper()
	_, rest, ok := strings.Cut(md, "\n## What this run shows\n\n")
	if !ok {
		t.Fatalf("summary.md has no findings:\n%s", md)
	}
	section, _, _ := strings.Cut(rest, "\n\n")
	var out []shownFinding
	for line := range strings.Lines(section) {
		text := strings.TrimPrefix(strings.TrimSuffix(line, "\n"), "- ")
		bold := strings.HasPrefix(text, "**") && strings.HasSuffix(text, "**")
		out = append(out, shownFinding{strings.TrimSuffix(strings.TrimPrefix(text, "**"), "**"), bold})
	}
	return out
}

func summaryOf(t *testing.T, recs []results.Record, info *results.RunInfo) string {
	t.Helper()
	var b bytes.Buffer
	if err := WriteSummaryMarkdown(&b, recs, info); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// knownFindings computes, from recs, the findings knownRecords must give:
// every figure is recomputed here from the records (medians of repeats
// included) and formatted as the report formats it.
func knownFindings(t *testing.T, recs []results.Record) []string {
	t.Helper()
	cell := byPlace(recs)
	med := func(tr string, clients int, rate float64, f func(r results.Record) float64) float64 {
		rs := cell[place{tr, clients, rate, 64}]
		if len(rs) == 0 {
			t.Fatalf("no %s record at %d clients, %g events/s", tr, clients, rate)
		}
		return medianOf(of(rs, f))
	}
	p50 := func(r results.Record) float64 { return float64(r.Latency.P50) }
	p99 := func(r results.Record) float64 { return float64(r.Latency.P99) }
	bytesPerEvent := func(r results.Record) float64 { return r.Wire.DownBytesPerEvent + r.Wire.UpBytesPerEvent }
	cpu := func(r results.Record) float64 { return r.Server.CPUUsPerEvent * 1e3 }
	rss := func(r results.Record) float64 { return r.Server.RSSBytesPerConn }

	// ascending asserts that the figures are in the order the sentence
	// lists them (best first), so the order is checked too.
	ascending := func(what string, vs ...float64) {
		t.Helper()
		if !slices.IsSorted(vs) {
			t.Fatalf("%s: %v are not in the order the finding lists them; fix knownTable", what, vs)
		}
	}

	// Bytes: short polling against the leanest push transport (WebSocket:
	// 60 B against SSE's 80 and 81) at the lowest and highest rate.
	sp10, ws10 := med("shortpoll", 10, 10, bytesPerEvent), med("ws", 10, 10, bytesPerEvent) // 300 B, 60 B: 5×
	sp100, ws100 := med("shortpoll", 10, 100, bytesPerEvent), med("ws", 10, 100, bytesPerEvent)
	ascending("bytes at 10/s", ws10, med("sse", 10, 10, bytesPerEvent))
	ascending("bytes at 100/s", ws100, med("sse", 10, 100, bytesPerEvent))
	if !(sp100/ws100 < sp10/ws10) {
		t.Fatal("the factor must fall with the rate for the batching clause")
	}

	// p99 at the headline, best first: WebSocket (median of 1 and 1.4 ms),
	// SSE, long polling, short polling; then the worst ÷ the best (80×).
	hWS, hSSE, hLP, hSP := med("ws", 10, 10, p99), med("sse", 10, 10, p99), med("longpoll", 10, 10, p99), med("shortpoll", 10, 10, p99)
	ascending("p99 at the headline", hWS, hSSE, hLP, hSP)

	// The floor's p50 and p99 and SSE's and WebSocket's multiples of them.
	f50, f99 := med("tcp", 10, 10, p50), med("tcp", 10, 10, p99)

	// p99 at the most clients, best first.
	mSSE, mWS, mLP, mSP := med("sse", 100, 10, p99), med("ws", 100, 10, p99), med("longpoll", 100, 10, p99), med("shortpoll", 100, 10, p99)
	ascending("p99 at 100 clients", mSSE, mWS, mLP, mSP)

	// Server CPU at the headline: WebSocket (median of 18 and 22 µs) is
	// the cheapest, short polling the dearest.
	cWS, cSP := med("ws", 10, 10, cpu), med("shortpoll", 10, 10, cpu)
	ascending("CPU at the headline", cWS, med("sse", 10, 10, cpu), med("longpoll", 10, 10, cpu), cSP)

	// Memory at the most clients: long polling to WebSocket.
	rLP, rWS := med("longpoll", 100, 10, rss), med("ws", 100, 10, rss)
	ascending("RSS at 100 clients", rLP, med("shortpoll", 100, 10, rss), med("sse", 100, 10, rss), rWS)

	return []string{
		fmt.Sprintf("At 10 events/s and 10 clients (64 B payload), short polling every 100 ms moves %s the wire bytes per delivered event of WebSocket (%s vs %s, down + up). "+
			"At 100 events/s the factor is %s (%s vs %s per event): each poll then carries a batch of events.",
			fmtRatio(sp10/ws10), fmtBytes(sp10), fmtBytes(ws10), fmtRatio(sp100/ws100), fmtBytes(sp100), fmtBytes(ws100)),
		fmt.Sprintf("At the headline scenario (10 clients, 10 events/s, 64 B payload), p99 delivery latency is %s for WebSocket, %s for SSE, %s for long polling and %s for short polling every 100 ms. "+
			"The p99 of short polling every 100 ms is %s that of WebSocket.",
			fmtDuration(hWS), fmtDuration(hSSE), fmtDuration(hLP), fmtDuration(hSP), fmtRatio(hSP/hWS)),
		fmt.Sprintf("The floor at 10 clients, 10 events/s, 64 B payload — raw TCP (floor), the same event bytes over a bare TCP connection from the same publisher and hub — delivers with p50 %s and p99 %s. "+
			"Push transports' p50 / p99 as multiples of the floor: SSE %s / %s and WebSocket %s / %s.",
			fmtDuration(f50), fmtDuration(f99),
			fmtRatio(med("sse", 10, 10, p50)/f50), fmtRatio(hSSE/f99), fmtRatio(med("ws", 10, 10, p50)/f50), fmtRatio(hWS/f99)),
		fmt.Sprintf("With the most clients (100 clients, 10 events/s, 64 B payload), p99 delivery latency is %s for SSE, %s for WebSocket, %s for long polling and %s for short polling every 100 ms. "+
			"The p99 of short polling every 100 ms is %s that of SSE.",
			fmtDuration(mSSE), fmtDuration(mWS), fmtDuration(mLP), fmtDuration(mSP), fmtRatio(mSP/mSSE)),
		fmt.Sprintf("At 10 clients, 10 events/s, 64 B payload, server CPU per delivered event ranges from %s (WebSocket) to %s (short polling every 100 ms), %s.",
			fmtDuration(cWS), fmtDuration(cSP), fmtRatio(cSP/cWS)),
		fmt.Sprintf("At 100 clients, 10 events/s, 64 B payload, server memory per connection ranges from %s (long polling) to %s (WebSocket), %s.",
			fmtBytes(rLP), fmtBytes(rWS), fmtRatio(rWS/rLP)),
	}
}

// TestReportFindings checks every number of every finding against the
// records: the bytes ratio at the lowest and highest rate, each
// transport's p99 at the headline and at the most clients (best first)
// and the worst ÷ best, the floor's p50 and p99 and each push transport's
// multiple of them, and the CPU and memory ranges; then the sentence on
// the cells' health, and with a loss and reconnects, those counts.
func TestReportFindings(t *testing.T) {
	t.Parallel()
	t.Run("clean", func(t *testing.T) {
		t.Parallel()
		recs := knownRecords()
		want := append(knownFindings(t, recs),
			fmt.Sprintf("All %d cells delivered every expected event exactly once, in order, and passed every self-check.", len(recs)))
		got := findingsIn(t, summaryOf(t, recs, nil))
		checkFindings(t, got, want, nil)
		// A reader's check of the arithmetic above, on a few of them.
		for _, s := range []string{"moves 5× the wire bytes per delivered event of WebSocket (300 B vs 60 B, down + up)",
			"1.2 ms for WebSocket", "is 80× that of WebSocket", "SSE 1.5× / 2× and WebSocket 1.2× / 1.5×",
			"from 20 µs (WebSocket) to 200 µs (short polling every 100 ms), 10×", "from 8 KiB (long polling) to 32 KiB (WebSocket), 4×", "All 16 cells"} {
			if !strings.Contains(strings.Join(want, "\n"), s) {
				t.Errorf("the expected findings lack %q:\n%s", s, strings.Join(want, "\n"))
			}
		}
	})
	t.Run("loss and reconnects", func(t *testing.T) {
		t.Parallel()
		recs := knownRecords()
		var lossy results.Record
		for i := range recs {
			r := &recs[i]
			switch placeOf(r.Scenario) {
			case place{"longpoll", 100, 10, 64}:
				r.Lost, r.Delivered = 5, r.Expected-5
				r.Checks = map[string]results.Check{"no_loss": {OK: false, Detail: "lost 5"}}
				lossy = *r
			case place{"sse", 100, 10, 64}:
				r.Reconnects = 4
			}
		}
		// Loss changes none of the figures the findings quote.
		want := append(knownFindings(t, recs),
			fmt.Sprintf("Long polling, 100 clients, 10 events/s, 64 B payload: lost %s of %s (%s%%); check no_loss failed.",
				fmtSig(float64(lossy.Lost)), fmtSig(float64(lossy.Expected)), fmtSig(100*float64(lossy.Lost)/float64(lossy.Expected))),
			"To note: SSE at 100 clients, 10 events/s, 64 B payload (4 reconnects).")
		got := findingsIn(t, summaryOf(t, recs, nil))
		checkFindings(t, got, want, []int{6})
		if !strings.Contains(want[6], "lost 5 of 100,000 (0.005%)") {
			t.Errorf("expected %q to read lost 5 of 100,000 (0.005%%)", want[6])
		}
	})
}

// checkFindings compares the findings with want, sentence by sentence;
// bad lists the indexes that must be in bold.
func checkFindings(t *testing.T, got []shownFinding, want []string, bad []int) {
	t.Helper()
	for i := range max(len(got), len(want)) {
		switch {
		case i >= len(got):
			t.Errorf("finding %d is missing, want:\n%s", i+1, want[i])
		case i >= len(want):
			t.Errorf("finding %d is extra:\n%s", i+1, got[i].text)
		case got[i].text != want[i]:
			t.Errorf("finding %d:\n got: %s\nwant: %s", i+1, got[i].text, want[i])
		case got[i].bad != slices.Contains(bad, i):
			t.Errorf("finding %d in bold: %v, want %v: %s", i+1, got[i].bad, slices.Contains(bad, i), got[i].text)
		}
	}
}

// TestReportErroredCell: a record that measured nothing (status "error":
// only its scenario and why) shows in summary.md as a row of "—" with its
// reason, is left out of bench.txt and listed there, and is a problem
// finding, so the findings do not say that every cell passed; nor do they
// when run.json planned more cells than there are records.
func TestReportErroredCell(t *testing.T) {
	t.Parallel()
	const reason = "server child exited before the window: exit status 2"
	clean := knownRecords()
	errored := results.Record{
		Scenario: results.Scenario{Transport: "ws", Clients: 100, Rate: 100, Payload: 64},
		Status:   results.StatusError,
		Error:    reason,
	}
	recs := append(slices.Clone(clean), errored)

	md := summaryOf(t, recs, nil)
	header, rows := markdownTable(t, md)
	var row []string
	for _, r := range rows {
		if slices.Equal(r[:4], []string{"WebSocket", "100", "100", "64 B"}) {
			row = r
		}
	}
	if row == nil {
		t.Fatalf("summary.md has no row for the errored cell:\n%s", md)
	}
	for i, name := range header {
		want := "—"
		switch name {
		case "transport", "clients", "rate (ev/s)", "payload":
			continue
		case "p50 / p99 × floor":
			want = ""
		case "notes":
			want = "**no result: " + reason + "**"
		}
		if row[i] != want {
			t.Errorf("errored cell's %s is %q, want %q", name, row[i], want)
		}
	}

	// The errored cell is a bad finding and nothing claims that all cells
	// passed; the figures of the other cells are as without it.
	want := append(knownFindings(t, clean), "WebSocket, 100 clients, 100 events/s, 64 B payload: no result: "+reason+".")
	checkFindings(t, findingsIn(t, md), want, []int{6})

	var bench bytes.Buffer
	if err := WriteBenchText(&bench, recs); err != nil {
		t.Fatal(err)
	}
	name := "transport=ws/clients=100/rate=100/payload=64"
	lines := strings.Split(strings.TrimSuffix(bench.String(), "\n"), "\n")
	benchmarks := 0
	for _, l := range lines {
		if strings.HasPrefix(l, "BenchmarkCompare/") {
			benchmarks++
		}
		if strings.HasPrefix(l, "BenchmarkCompare/"+name+" ") {
			t.Errorf("bench.txt has the errored cell: %s", l)
		}
	}
	if benchmarks != len(clean) {
		t.Errorf("bench.txt has %d benchmark lines, want one per clean record (%d)", benchmarks, len(clean))
	}
	if tail := lines[len(lines)-2:]; !slices.Equal(tail, []string{
		"# Left out (their figures are not clean): 1 cell",
		"#   " + name + ": no result: " + reason,
	}) {
		t.Errorf("bench.txt ends with\n%s\nwant the errored cell listed as left out", strings.Join(tail, "\n"))
	}

	// A run that planned one more cell than it recorded, read by Report
	// from its folder: the findings say so and claim no more than the
	// recorded cells.
	dir := t.TempDir()
	for _, r := range clean {
		if err := results.AppendRecord(filepath.Join(dir, results.RecordsFile), r); err != nil {
			t.Fatal(err)
		}
	}
	info := results.RunInfo{Preset: "test", StartedAt: "2026-01-15T10:00:00Z", CellsPlanned: len(clean) + 1, CellsDone: len(clean)}
	if err := results.WriteRunInfo(filepath.Join(dir, results.RunInfoFile), info); err != nil {
		t.Fatal(err)
	}
	if err := Report(dir); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(dir, SummaryMarkdownFile))
	if err != nil {
		t.Fatal(err)
	}
	n := len(clean)
	want = append(knownFindings(t, clean),
		fmt.Sprintf("All %d recorded cells delivered every expected event exactly once, in order, and passed every self-check.", n),
		fmt.Sprintf("1 of the %d planned cells have no record (the run was interrupted or stopped early; run.json lists each cell's status): what this report says covers the %d that do.", n+1, n))
	got := findingsIn(t, string(data))
	checkFindings(t, got, want, []int{7})
	for _, f := range got {
		if strings.HasPrefix(f.text, fmt.Sprintf("All %d cells", n)) || strings.HasPrefix(f.text, fmt.Sprintf("All %d cells", n+1)) {
			t.Errorf("a run missing a planned cell claims: %s", f.text)
		}
	}
	if !strings.Contains(string(data), fmt.Sprintf("- Cells: %d of %d done\n", n, n+1)) {
		t.Errorf("summary.md does not say %d of %d cells were done", n, n+1)
	}
}
