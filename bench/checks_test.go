package bench

import (
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"

	"pushbench/clock"
	"pushbench/results"
)

// clean is a measurement whose every check passes: splitRun's one-client
// fixture (no twists: client 0 receives every event) with the counters,
// CPU, clocks and bytes of a healthy run.
func clean(t *testing.T) Measurement {
	t.Helper()
	m := splitRun(t, 1)[0]
	for i := range m.Load.Marks {
		mk := &m.Load.Marks[i]
		mk.CPU = time.Duration(i) * time.Millisecond // 1 ms per 1 ms mark: 100% of 1 CPU...
		mk.MachineBusy, mk.MachineTotal = uint64(50*i), uint64(100*i)
		mk.Counts = Counts{Down: uint64(1000 * i), Up: uint64(10 * i)}
		st := &m.Server[i].Stats
		st.Listener.BytesOut, st.Listener.BytesIn = uint64(1000*i), uint64(10*i)
	}
	m.Load.CPUs = 4 // ...which is 25% of the four it may use
	return m
}

func checkOf(t *testing.T, m Measurement, name string) results.Check {
	t.Helper()
	rec, _ := Compute(m)
	c, ok := rec.Checks[name]
	if !ok {
		t.Fatalf("no check %s in %v", name, rec.Checks)
	}
	return c
}

func wantCheck(t *testing.T, m Measurement, name string, ok bool, detail string) {
	t.Helper()
	c := checkOf(t, m, name)
	if c.OK != ok || !strings.Contains(c.Detail, detail) {
		t.Errorf("%s: ok=%v %q; want ok=%v with %q", name, c.OK, c.Detail, ok, detail)
	}
}

func TestCleanMeasurementPassesEveryCheck(t *testing.T) {
	rec, _ := Compute(clean(t))
	if failed := rec.FailedChecks(); len(failed) > 0 {
		for _, name := range failed {
			t.Errorf("%s failed: %s", name, rec.Checks[name].Detail)
		}
	}
	if rec.Status != results.StatusOK || rec.Events != 10 {
		t.Errorf("status %q events %d, want ok and 10", rec.Status, rec.Events)
	}
}

func TestMachineCPUCheck(t *testing.T) {
	m := clean(t)
	m.Load.Marks[markEnd].MachineBusy = m.Load.Marks[markStart].MachineBusy + 95
	m.Load.Marks[markEnd].MachineTotal = m.Load.Marks[markStart].MachineTotal + 100
	wantCheck(t, m, "machine_cpu", false, "95% busy")
	m.Load.Marks[markEnd].MachineBusy = m.Load.Marks[markStart].MachineBusy + 90
	wantCheck(t, m, "machine_cpu", false, "90% busy")
	m.Load.Marks[markEnd].MachineBusy = m.Load.Marks[markStart].MachineBusy + 89
	wantCheck(t, m, "machine_cpu", true, "89% busy")
}

func TestClockStableCheck(t *testing.T) {
	m := clean(t)
	m.Load.Marks[markAfter].Wall += int64(150 * time.Microsecond) // the wall clock stepped forward
	wantCheck(t, m, "clock_stable", false, "moved 150 µs")
	m.Load.Marks[markAfter].Wall -= int64(250 * time.Microsecond)
	wantCheck(t, m, "clock_stable", false, "moved -100 µs")
	m.Load.Marks[markAfter].Wall += int64(50 * time.Microsecond)
	wantCheck(t, m, "clock_stable", true, "moved -50 µs")
}

// lagHistogram encodes a publisher lag distribution.
func lagHistogram(t *testing.T, lags ...time.Duration) string {
	t.Helper()
	h := hdrhistogram.New(1, int64(time.Hour), 3)
	for _, l := range lags {
		if err := h.RecordValue(int64(l)); err != nil {
			t.Fatal(err)
		}
	}
	b, err := h.Encode(hdrhistogram.V2CompressedEncodingCookieBase)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestPublisherCheckAgainstLatency: lateness is judged against the cell's
// own latency, max(100 µs, 5% of p50), not a fixed 1 ms.
func TestPublisherCheckAgainstLatency(t *testing.T) {
	m := clean(t)
	m.Publisher.Published = 100
	// splitRun's latencies are below 1 µs: the 100 µs floor applies. Two
	// events 300 µs late are two more than 1% of 100 allows... one.
	lags := make([]time.Duration, 98)
	m.Publisher.LagHistogram = lagHistogram(t, append(lags, 300*time.Microsecond, 300*time.Microsecond)...)
	wantCheck(t, m, "publisher_on_schedule", false, "2 of 100 events more than 100 µs late")
	m.Publisher.LagHistogram = lagHistogram(t, append(lags, 0, 300*time.Microsecond)...)
	wantCheck(t, m, "publisher_on_schedule", true, "1 of 100 events more than 100 µs late")
	// Without a lag distribution: the server's own count of events more
	// than 1 ms late.
	m.Publisher.LagHistogram = ""
	m.Publisher.Behind = 2
	wantCheck(t, m, "publisher_on_schedule", false, "2 of 100 events more than 1 ms late")
}

func TestLoadGeneratorChecks(t *testing.T) {
	m := clean(t)
	m.Load.CPUs = 1 // 1 ms of CPU per 1 ms: 100%
	wantCheck(t, m, "client_cpu", false, "used 100% of 1 CPU")

	m = clean(t)
	m.Scenario.Transport, m.Scenario.Interval = "shortpoll", time.Second
	m.Load.Marks[markStart].Counts.Requests = 0
	m.Load.Marks[markEnd].Counts.Requests = 100
	m.Load.Marks[markEnd].Counts.MissedTicks = 2
	wantCheck(t, m, "poll_schedule", false, "2 of 100 polls")
	m.Load.Marks[markEnd].Counts.MissedTicks = 1
	wantCheck(t, m, "poll_schedule", true, "1 of 100 polls")
}

func TestDeliveryChecks(t *testing.T) {
	m := splitRun(t, 4)[0] // clients 2 and 3 lose events, client 3 receives one early
	wantCheck(t, m, "no_loss", false, "lost 3 of 40")
	wantCheck(t, m, "histogram_range", false, "1 latencies outside")
	m = clean(t)
	wantCheck(t, m, "no_loss", true, "lost 0 of 10")
	wantCheck(t, m, "histogram_range", true, "0 latencies outside")
}

// TestServerDied: a measurement whose server died is failed, says how,
// and keeps what was measured.
func TestServerDied(t *testing.T) {
	m := clean(t)
	m.Died, m.DiedPhase = "killed by signal 9 (killed) at 12:00:03.000", PhaseWindow
	rec, _ := Compute(m)
	if rec.Status != results.StatusFailed || !strings.Contains(rec.Error, "killed by signal 9 (killed) at 12:00:03.000 during window") {
		t.Errorf("status %q error %q, want failed and how", rec.Status, rec.Error)
	}
	if c := rec.Checks["server_alive"]; c.OK || !strings.Contains(c.Detail, "signal 9") {
		t.Errorf("server_alive = %+v", c)
	}
	if rec.Delivered != 10 {
		t.Errorf("delivered %d, want what was measured (10)", rec.Delivered)
	}
}

// TestAgentChecks: a run on agents gets a row per part; clock_offset fails
// when an offset's bound exceeds 10% of the cell's p50, agents when a
// part's own check fails, agents_alive (and the status) when an agent
// failed.
func TestAgentChecks(t *testing.T) {
	m := clean(t)
	rec, _ := Compute(m)
	p50 := rec.Latency.P50
	lg := m.Load
	m.Agents = []AgentPart{
		{Name: "a:1", Clients: 1, Offset: clockOffset(-30e6, p50/10), Load: &lg},
		{Name: "b:1", Clients: 0, Error: "agent b:1 is unreachable"},
	}
	wantCheck(t, m, "clock_offset", true, "a:1 -30 ms ± ")
	m.Agents[0].Offset.Uncertainty = p50/10 + 1
	wantCheck(t, m, "clock_offset", false, "uncertain beyond 10% of the cell's p50")
	wantCheck(t, m, "agents", true, "every one of 2 load generators passed")
	busy := lg
	busy.Marks[markEnd].CPU *= 100 // far beyond 80% of its CPUs
	m.Agents[0].Load = &busy
	wantCheck(t, m, "agents", false, "a:1: client_cpu")
	m.AgentFailure, m.AgentPhase = "agent b:1 is unreachable", PhaseWindow
	wantCheck(t, m, "agents_alive", false, "agent b:1 is unreachable during window")
	rec, _ = Compute(m)
	if rec.Status != results.StatusFailed || len(rec.Agents) != 2 || rec.Agents[1].Error == "" || rec.Agents[0].Delivered != rec.Delivered {
		t.Errorf("status %q, rows %+v", rec.Status, rec.Agents)
	}
}

func clockOffset(off, unc int64) clock.Offset {
	return clock.Offset{Offset: off, Uncertainty: unc, Samples: 64, Kept: 2}
}

// TestEveryAgentFailed: a coordinator with no share of its own whose every
// agent failed still gives a record that can be written: no per-connection
// figure divides by zero clients.
func TestEveryAgentFailed(t *testing.T) {
	m := clean(t)
	m.Scenario.Clients = 0
	m.Load = LoadGen{Marks: m.Load.Marks}
	for i := range m.Load.Marks {
		m.Load.Marks[i].CPU = 0
	}
	m.Agents = []AgentPart{{Name: "x:1", Clients: 5, Error: "agent x:1 is unreachable"}}
	m.AgentFailure, m.AgentPhase = "agent x:1 is unreachable", PhaseDrain
	rec, _ := Compute(m)
	if _, err := json.Marshal(rec); err != nil {
		t.Fatalf("the record cannot be written: %v", err)
	}
	if rec.Status != results.StatusFailed || rec.Delivered != 0 {
		t.Errorf("status %q delivered %d", rec.Status, rec.Delivered)
	}
}

// TestKeepFinite: a figure that is not a finite number is written as 0 and
// named in the failed check figures_finite, so the record can still be
// written.
func TestKeepFinite(t *testing.T) {
	rec := &results.Record{Checks: map[string]results.Check{}}
	rec.Server.RSSBytesPerConn = math.Inf(1)
	rec.Conn.ConnectUpBytesPerConn = math.NaN()
	rec.Agents = []results.Agent{{CPUUtilisation: math.Inf(-1)}}
	keepFinite(rec)
	if _, err := json.Marshal(rec); err != nil {
		t.Fatal(err)
	}
	c := rec.Checks["figures_finite"]
	if c.OK || c.Detail != "not a finite number, written as 0: agents.cpu_utilisation, conn.connect_up_bytes_per_conn, server.rss_bytes_per_conn" {
		t.Errorf("figures_finite %+v", c)
	}
	clean := &results.Record{Checks: map[string]results.Check{}}
	if keepFinite(clean); len(clean.Checks) != 0 {
		t.Errorf("a finite record got %v", clean.Checks)
	}
}
