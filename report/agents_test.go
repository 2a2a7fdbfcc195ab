package report

import (
	"strings"
	"testing"

	"pushbench/results"
)

// TestAgentsTable: a cell on agents gets a row per load generator with
// its offset, and failed checks and errors are named; the summary line
// counts the load generators.
func TestAgentsTable(t *testing.T) {
	rec := results.Record{Scenario: results.Scenario{Transport: "ws", Clients: 2000, Rate: 10, Payload: 64, DurationNs: 10e9}, Status: results.StatusFailed,
		Agents: []results.Agent{
			{Name: "local", Clients: 0},
			{Name: "10.77.0.11:7700", Host: "a1", Clients: 1000, Delivered: 100000, LatencyP50Ns: 1_500_000, LatencyP99Ns: 4_000_000,
				CPUUtilisation: 0.25, CPUs: 2, ClockOffsetNs: -30_000_000, ClockUncertaintyNs: 40_000, ClockSamples: 64,
				Checks: map[string]results.Check{"client_cpu": {OK: true}, "clock_offset": {OK: false}}},
			{Name: "10.77.0.12:7700", Clients: 1000, Error: "agent 10.77.0.12:7700 is unreachable"},
		}}
	md := Agents([]results.Record{rec, {Scenario: results.Scenario{Transport: "sse", Clients: 5}}})
	for _, want := range []string{
		"| ws c=2000 r=10/s P=64 10s (failed) | 10.77.0.11:7700 | a1 | 1000 | 100000 | 0 | 1.5 ms | 4 ms | 25% of 2 | -30 ms ± 40 µs | clock_offset |",
		"| ws c=2000 r=10/s P=64 10s (failed) | local |  | 0 | 0 | 0 |",
		"0 (same host)",
		"| — | error: agent 10.77.0.12:7700 is unreachable |",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("agents.md lacks %q:\n%s", want, md)
		}
	}
	if strings.Contains(md, "sse") {
		t.Error("a cell without agents has rows")
	}
	if !HasAgents([]results.Record{rec}) || HasAgents([]results.Record{{}}) {
		t.Error("HasAgents")
	}
	if l := Line(&rec); !strings.Contains(l, "| 3 load generators, clocks within ± 40 µs") {
		t.Errorf("line %q", l)
	}
}
