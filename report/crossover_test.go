package report

import (
	"strings"
	"testing"

	"pushbench/results"
)

// TestCrossover: long polling against WebSocket by event interval in
// round trips: the chart's points and the finding's numbers.
func TestCrossover(t *testing.T) {
	rec := func(tr, network string, rttMs int64, rate float64, p50Ms int64) results.Record {
		return results.Record{
			Status: results.StatusOK, Events: 100, Expected: 1000, Delivered: 1000,
			Scenario: results.Scenario{Transport: tr, Clients: 10, Rate: rate, Payload: 64,
				Network: results.Network{Name: network, RTTNs: rttMs * 1e6}},
			Latency: results.Latency{P50: p50Ms * 1e6, P99: p50Ms * 2e6, Max: p50Ms * 3e6},
		}
	}
	recs := []results.Record{
		rec("longpoll", "fast", 20, 10, 11), rec("ws", "fast", 20, 10, 10), // 5 RTTs apart: 1.1×
		rec("longpoll", "slow", 200, 10, 200), rec("ws", "slow", 200, 10, 100), // 0.5 RTTs: 2×
		rec("longpoll", "slower", 400, 10, 500), rec("ws", "slower", 400, 10, 200), // 0.25 RTTs: 2.5×
	}
	// Another workload (1000 clients) at the same interval is not mixed in.
	other := rec("longpoll", "fast", 20, 10, 90)
	other.Scenario.Clients = 1000
	otherWS := rec("ws", "fast", 20, 10, 30)
	otherWS.Scenario.Clients = 1000
	// Nor is the same workload spoken another way (over TLS): one way of
	// speaking HTTP, the headline's.
	var overTLS []results.Record
	for _, r := range recs[:2] {
		r.Scenario.TLS = true
		r.Latency.P50 *= 3
		overTLS = append(overTLS, r)
	}
	m := newMatrix(append(append(recs, other, otherWS, rec("longpoll", "fast", 20, 10, 11), rec("ws", "fast", 20, 10, 10)), overTLS...))
	pts := m.crossoverPoints()
	if len(pts) != 3 || pts[0].intervalInRTT != 0.25 || pts[0].ratio != 2.5 || pts[2].intervalInRTT != 5 || pts[2].ratio != 1.1 {
		t.Fatalf("points %+v", pts)
	}
	want := "Long polling keeps up with WebSocket (p50 within 1.25×) from events 5 round trips apart (fast, 10 events/s), and falls behind when they come closer: 2× WebSocket's p50 at 0.5 round trips (slow, 10 events/s), up to 2.5× at 0.25 round trips (slower)."
	if got := m.crossoverFinding(); got != want {
		t.Errorf("finding\n got %s\nwant %s", got, want)
	}
	// The table gets a network column once a cell is on one.
	if h := header(m.hasNetworks(), m.hasHTTPVariants(), m.hasWorkloads()); h[1] != "network" || h[2] != "http" {
		t.Errorf("header %v, want a network and an http column", h)
	}
	for _, r := range rows(m) {
		if c := r.cells(); len(c) != len(header(true, true, false)) || c[1] == "" || c[2] == "" {
			t.Errorf("row %v: %d cells for %d columns", c, len(c), len(header(true, true, false)))
		}
	}
	charts, errs := m.charts()
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	var names []string
	for _, c := range charts {
		names = append(names, c.Name)
	}
	if !strings.Contains(strings.Join(names, " "), "longpoll-vs-websocket") || !strings.Contains(strings.Join(names, " "), "latency-vs-rtt") {
		t.Errorf("charts %v, want the crossover and latency-vs-rtt", names)
	}
}

// TestLinkTime: an event's wire bytes at the link's rate each way.
func TestLinkTime(t *testing.T) {
	r := &results.Record{
		Scenario: results.Scenario{Network: results.Network{Name: "4g", DownBps: 1_600_000, UpBps: 768_000}},
		Wire:     results.Wire{DownBytesPerEvent: 200, UpBytesPerEvent: 96},
	}
	// 200 B × 8 ÷ 1.6 Mbit/s = 1 ms down; 96 B × 8 ÷ 768 kbit/s = 1 ms up.
	if got := linkTime(r); got != 2 {
		t.Errorf("linkTime = %v ms, want 2", got)
	}
	r.Scenario.Network.UpBps = 0 // no limit up: no time there
	if got := linkTime(r); got != 1 {
		t.Errorf("linkTime = %v ms, want 1", got)
	}
}
