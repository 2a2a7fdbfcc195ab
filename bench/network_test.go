package bench

import (
	"context"
	"net/url"
	"strings"
	"testing"
	"time"

	"pushbench/netem"
	"pushbench/proc"
	"pushbench/transport"
)

// inProcessEmulator puts a netem.Emulator of this process in front of the
// server (the real harness starts `pushbench emulate` as a child).
func inProcessEmulator(_ context.Context, serverURL string, p netem.Profile) (*proc.Server, error) {
	u, err := url.Parse(serverURL)
	if err != nil {
		return nil, err
	}
	e := netem.New("127.0.0.1:0", u.Host, p)
	addr, err := e.Start()
	if err != nil {
		return nil, err
	}
	return &proc.Server{URL: "http://" + addr, Stop: e.Close}, nil
}

// TestRunThroughEmulator: with an emulated RTT the clients go through the
// emulator, every delivery takes at least half the RTT, the probe sees the
// RTT, and the record states the network.
func TestRunThroughEmulator(t *testing.T) {
	s := small(transport.WebSocket)
	s.Network = netem.Profile{Name: "test", RTT: 40 * time.Millisecond}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rec, _, err := Run(ctx, s, Options{Launch: proc.InProcess(nil), Emulate: inProcessEmulator})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if rec.Lost != 0 || rec.Delivered != rec.Expected {
		t.Errorf("delivered %d of %d", rec.Delivered, rec.Expected)
	}
	if rec.Latency.Min < int64(20*time.Millisecond) {
		t.Errorf("min latency %v, want at least the one-way delay of 20ms", time.Duration(rec.Latency.Min))
	}
	n := rec.Scenario.Network
	if n.Name != "rtt40ms" || n.RTTNs != int64(40*time.Millisecond) || n.ExpectedRTTNs != int64(40*time.Millisecond) || n.ProbeRTTNs < int64(40*time.Millisecond) {
		t.Errorf("scenario.network = %+v", n)
	}
	if c, ok := rec.Checks["network_applied"]; !ok || !c.OK {
		t.Errorf("network_applied = %+v", c)
	}
}

func TestNetworkAppliedCheck(t *testing.T) {
	m := clean(t)
	m.Scenario.Network = netem.Profile{Name: "4g", RTT: 150 * time.Millisecond, DownBps: 1_600_000, UpBps: 768_000}
	// 48 B up and 400 B down add 0.5 ms + 2 ms to the round trip.
	m.Probe = probeResult{RTT: 153 * time.Millisecond, Up: 48, Down: 400}
	wantCheck(t, m, "network_applied", true, "the profile gives 152 ms")
	m.Probe.RTT = 170 * time.Millisecond // more than 10% off
	wantCheck(t, m, "network_applied", false, "round trip through the emulator 170 ms")
	m.Probe.RTT = 152 * time.Millisecond
	m.Load.Marks[markEnd].EmulatorCPU = m.Load.Marks[markStart].EmulatorCPU + time.Duration(float64(m.Load.Marks[markEnd].Mono-m.Load.Marks[markStart].Mono)*0.9)
	wantCheck(t, m, "network_applied", false, "the emulator used 90% of a core")
	rec, _ := Compute(m)
	if rec.Emulator.CPUUtilisation < 0.89 || rec.Scenario.Network.ProbeRTTNs != int64(152*time.Millisecond) {
		t.Errorf("emulator %+v network %+v", rec.Emulator, rec.Scenario.Network)
	}
	if !strings.Contains(rec.Checks["network_applied"].Detail, "48 B up and 400 B down") {
		t.Errorf("detail %q", rec.Checks["network_applied"].Detail)
	}
}
