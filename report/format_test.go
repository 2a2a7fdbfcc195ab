package report

import (
	"math"
	"testing"
	"time"

	"pushbench/results"
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
