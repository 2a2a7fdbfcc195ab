package capacity

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"pushbench/bench"
	"pushbench/proc"
	"pushbench/results"
)

// small is a step that runs in well under a second.
func small() bench.Scenario {
	s := bench.DefaultScenario()
	s.Rate, s.Payload = 200, 64
	s.Warmup, s.Duration, s.Idle, s.Drain = 50*time.Millisecond, 200*time.Millisecond, 50*time.Millisecond, 2*time.Second
	s.Spin = 0
	return s
}

// TestRun searches two transports with real cells in process: an
// objective every step meets ends at --max (not the edge), one no step
// meets is capacity 0; every step's record is in results.jsonl, and
// capacity.json, capacity.md and the chart are written.
func TestRun(t *testing.T) {
	dir := t.TempDir()
	c, err := Run(context.Background(), Config{
		Transports: []string{"ws", "sse"}, Objective: Objective{P99: time.Hour},
		Base: small(), Min: 2, Max: 8, Out: dir, Launch: proc.InProcess(nil),
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, tr := range c.Transports {
		if !tr.AtMax || tr.MaxClients != 8 || len(tr.Steps) != 3 || tr.FirstFail != nil {
			t.Errorf("%s: %+v, want 2, 4, 8 passing and at --max", tr.Transport, tr)
		}
	}
	recs, err := results.ReadRecords(filepath.Join(dir, results.RecordsFile))
	if err != nil || len(recs) != 6 {
		t.Fatalf("results.jsonl: %v, %d records, want 6", err, len(recs))
	}
	back, err := results.ReadCapacity(filepath.Join(dir, results.CapacityFile))
	if err != nil || back.FinishedAt == "" || len(back.Transports) != 2 || back.Ceiling == 0 {
		t.Fatalf("capacity.json: %v %+v", err, back)
	}
	for _, f := range []string{"capacity.md", "capacity.png", "capacity.svg", "index.html"} {
		if fi, err := os.Stat(filepath.Join(dir, f)); err != nil || fi.Size() == 0 {
			t.Errorf("%s: %v", f, err)
		}
	}
	md, _ := os.ReadFile(filepath.Join(dir, "capacity.md"))
	if !strings.Contains(string(md), "≥ 8 (--max: edge not reached)") {
		t.Errorf("capacity.md:\n%s", md)
	}

	dir = t.TempDir()
	c, err = Run(context.Background(), Config{
		Transports: []string{"ws"}, Objective: Objective{P99: time.Nanosecond},
		Base: small(), Min: 2, Max: 8, Out: dir, Launch: proc.InProcess(nil),
	})
	if err != nil {
		t.Fatal(err)
	}
	if tr := c.Transports[0]; tr.MaxClients != 0 || tr.FirstFail == nil || !strings.HasPrefix(tr.Summary, "capacity 0: even 2 clients fail (latency: p99") {
		t.Errorf("unmeetable objective: %+v", tr)
	}
}

// TestRunRate: the rate dimension searches events/s at fixed clients: an
// objective every step meets ends at --max, each step's record has the
// step's rate, and capacity.json says which dimension and the fixed
// clients.
func TestRunRate(t *testing.T) {
	dir := t.TempDir()
	base := small()
	base.Clients = 3
	c, err := Run(context.Background(), Config{
		Transports: []string{"ws"}, Dimension: DimRate, Objective: Objective{P99: time.Hour},
		Base: base, Min: 50, Max: 200, Out: dir, Launch: proc.InProcess(nil),
	})
	if err != nil {
		t.Fatal(err)
	}
	tr := c.Transports[0]
	if c.Dimension != DimRate || c.Clients != 3 || c.Rate != 0 || !tr.AtMax || tr.MaxClients != 200 || len(tr.Steps) != 3 {
		t.Fatalf("capacity %+v, ws %+v: want rates 50, 100, 200 passing at 3 clients", c, tr)
	}
	recs, err := results.ReadRecords(filepath.Join(dir, results.RecordsFile))
	if err != nil || len(recs) != 3 {
		t.Fatalf("results.jsonl: %v, %d records", err, len(recs))
	}
	for i, want := range []float64{50, 100, 200} {
		if recs[i].Scenario.Rate != want || recs[i].Scenario.Clients != 3 {
			t.Errorf("step %d: rate %v clients %d, want %v and 3", i, recs[i].Scenario.Rate, recs[i].Scenario.Clients, want)
		}
	}
	if !strings.Contains(tr.Summary, "200 events/s pass") {
		t.Errorf("summary %q", tr.Summary)
	}
}
