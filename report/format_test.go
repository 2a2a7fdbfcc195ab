package report

import (
	"fmt"
	"math"
	"testing"
	"time"

	"pushbench/results"
	"pushbench/transport"
)

func TestFormat(t *testing.T) {
	t.Parallel()
	cases := []struct{ got, want string }{
		{fmtSig(0), "0"},
		{fmtSig(0.021349), "0.0213"},
		{fmtSig(1.2449), "1.24"},
		{fmtSig(9.996), "10"},
		{fmtSig(37.25), "37.2"},
		{fmtSig(512), "512"},
		{fmtSig(999.6), "1000"},
		{fmtSig(12345.4), "12,345"},
		{fmtSig(-1234567), "-1,234,567"},
		{fmtSig(math.NaN()), "n/a"},
		{fmtDuration(850), "850 ns"},
		{fmtDuration(183_400), "183 µs"},
		{fmtDuration(1_240_000), "1.24 ms"},
		{fmtDuration(2.5e9), "2.5 s"},
		{fmtBytes(64), "64 B"},
		{fmtBytes(2430), "2.37 KiB"},
		{fmtBytes(1.5 * 1024 * 1024), "1.5 MiB"},
		{fmtPercent(0.125), "12.5%"},
		{rateLabel(1), "1 event/s"},
		{rateLabel(0.2), "0.2 events/s"},
		{tickNumber(1000), "1000"},
		{tickNumber(20000), "20k"},
		{tickNumber(0.01), "0.01"},
		{tickDuration(100_000), "100 µs"},
		{tickBytes(4000), "4 kB"},
		{benchValue(239337471), "239337471"},
		{benchValue(73.333333333), "73.3333"},
		{benchValue(0.000123456789), "0.000123457"},
		{benchValue(math.Inf(1)), "0"},
	}
	for i, c := range cases {
		if c.got != c.want {
			t.Errorf("case %d: got %q, want %q", i, c.got, c.want)
		}
	}
}

func TestCellName(t *testing.T) {
	t.Parallel()
	cases := []struct {
		s          results.Scenario
		name, stem string
	}{
		{results.Scenario{Transport: "ws", Clients: 100, Rate: 10, Payload: 64, IntervalNs: int64(time.Second)},
			"transport=ws/clients=100/rate=10/payload=64", "ws-c100-r10-p64"},
		{results.Scenario{Transport: "shortpoll", Clients: 1, Rate: 0.2, Payload: 4096, IntervalNs: int64(100 * time.Millisecond)},
			"transport=shortpoll-100ms/clients=1/rate=0.2/payload=4096", "shortpoll-100ms-c1-r0.2-p4096"},
	}
	for _, c := range cases {
		if got := CellName(c.s); got != c.name {
			t.Errorf("CellName = %q, want %q", got, c.name)
		}
		if got := cellFileStem(c.s); got != c.stem {
			t.Errorf("cellFileStem = %q, want %q", got, c.stem)
		}
	}
}

func TestLineNamesFiguresAndFailedChecks(t *testing.T) {
	rec := &results.Record{
		Scenario: results.Scenario{Transport: "shortpoll", IntervalNs: int64(time.Second), Clients: 3, Rate: 10, Payload: 64, DurationNs: int64(time.Second), Schedule: "constant"},
		Latency:  results.Latency{P50: 150_000, P99: 2_500_000, P999: 3_000_000, Max: 1_200_000_000},
		Wire:     results.Wire{DownBytesPerEvent: 284.4, UpBytesPerEvent: 0},
		Requests: 30, RequestsPerEvent: 1, EmptyShare: 0.5,
		Server:         results.Server{CPUUsPerEvent: 14.5, RSSBytesPerConn: 25.5 * 1024},
		DeliveriesPerS: 30,
		Lost:           4,
		Partial:        true,
		Checks: map[string]results.Check{
			"no_loss": {OK: false}, "client_cpu": {OK: false}, "bytes_agree": {OK: true},
		},
	}
	got := Line(rec)
	want := "shortpoll-1s c=3 r=10/s P=64 1s: p50 150 µs, p99 2.5 ms, p99.9 3 ms, max 1.2 s, down 284 B/event, up 0 B/event, requests 1/event, " +
		"server CPU 14.5 µs/event, client CPU 0/event, server RSS 25.5 KiB/conn, deliveries 30/s | lost 4 dup 0 reorder 0 | FAILED CHECKS: client_cpu, no_loss | PARTIAL"
	if got != want {
		t.Errorf("Line =\n%s\nwant\n%s", got, want)
	}
}

// TestEveryTransportHasAStyle: every registered transport is drawn in its
// own colour and marker, none as the grey cross of an unknown name.
func TestEveryTransportHasAStyle(t *testing.T) {
	for _, m := range transport.Markers {
		if _, ok := glyphs[m]; !ok {
			t.Errorf("marker %q has no glyph", m)
		}
	}
	seen := map[string]string{}
	for _, tr := range transport.All() {
		st, ok := transportStyle(tr.Name)
		if !ok {
			t.Errorf("%s has no chart style", tr.Name)
			continue
		}
		key := fmt.Sprintf("%v %T", st.color, st.glyph)
		if other, dup := seen[key]; dup {
			t.Errorf("%s and %s look the same on a chart", tr.Name, other)
		}
		seen[key] = tr.Name
	}
}
