package bench

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"pushbench/report"
	"pushbench/results"
)

// maxClockShare: an agent's clock offset is good enough when its
// uncertainty is at most this share of the cell's p50 latency (every
// latency of the agent may be wrong by up to the uncertainty).
const maxClockShare = 0.1

// agentChecks are the checks of a load generator's own record that its
// row keeps: the ones about its clients and its process.
var agentChecks = []string{"client_cpu", "clients_alive", "histogram_range", "no_loss"}

// fillAgents adds a row per load generator of a run with agents, with the
// checks that span them: clock_offset (every offset is known well enough
// for the cell's latencies), agents (every load generator's own checks
// passed) and agents_alive.
func (m *Measurement) fillAgents(rec *results.Record) {
	if len(m.Agents) == 0 {
		return
	}
	p50 := rec.Latency.P50
	var clockBad, checkBad []string
	clockDetail := []string{}
	for _, a := range m.Agents {
		row := results.Agent{Name: a.Name, Host: a.Host, FirstClient: a.First, Clients: a.Clients, Error: a.Error,
			ClockOffsetNs: a.Offset.Offset, ClockUncertaintyNs: a.Offset.Uncertainty, ClockSamples: a.Offset.Samples,
			Checks: map[string]results.Check{}}
		if a.Load != nil {
			pm := *m
			pm.Agents, pm.AgentFailure = nil, ""
			pm.Load = *a.Load
			pm.Scenario.Clients = a.Clients
			pr, _ := Compute(pm)
			row.Expected, row.Delivered, row.Lost = pr.Expected, pr.Delivered, pr.Lost
			row.LatencyP50Ns, row.LatencyP99Ns = pr.Latency.P50, pr.Latency.P99
			row.CPUUs, row.CPUUtilisation, row.CPUs = pr.Client.CPUUs, pr.Client.CPUUtilisation, a.Load.CPUs
			for _, name := range agentChecks {
				if c, ok := pr.Checks[name]; ok {
					row.Checks[name] = c
				}
			}
		}
		if a.Measured && m.Measured && p50 > 0 {
			ok := float64(a.Offset.Uncertainty) <= maxClockShare*float64(p50)
			row.Checks["clock_offset"] = results.Check{OK: ok, Detail: fmt.Sprintf(
				"offset %s ± %s (%d exchanges, %d kept); limit: ± %s, %.0f%% of the cell's p50 %s",
				report.Duration(float64(a.Offset.Offset)), report.Duration(float64(a.Offset.Uncertainty)), a.Offset.Samples, a.Offset.Kept,
				report.Duration(maxClockShare*float64(p50)), maxClockShare*100, report.Duration(float64(p50)))}
			clockDetail = append(clockDetail, fmt.Sprintf("%s %s ± %s", a.Name,
				report.Duration(float64(a.Offset.Offset)), report.Duration(float64(a.Offset.Uncertainty))))
			if !ok {
				clockBad = append(clockBad, a.Name)
			}
		}
		for _, name := range slices.Sorted(maps.Keys(row.Checks)) {
			if !row.Checks[name].OK && name != "clock_offset" {
				checkBad = append(checkBad, a.Name+": "+name)
			}
		}
		rec.Agents = append(rec.Agents, row)
	}
	if len(clockDetail) > 0 {
		detail := "clock offsets to the server: " + strings.Join(clockDetail, ", ")
		if len(clockBad) > 0 {
			detail = fmt.Sprintf("uncertain beyond %.0f%% of the cell's p50 (%s): %s; %s", maxClockShare*100,
				report.Duration(float64(p50)), strings.Join(clockBad, ", "), detail)
		}
		rec.Checks["clock_offset"] = results.Check{OK: len(clockBad) == 0, Detail: detail}
	}
	detail := fmt.Sprintf("every one of %d load generators passed its own checks (%s)", len(m.Agents), strings.Join(agentChecks, ", "))
	if len(checkBad) > 0 {
		detail = "failed: " + strings.Join(checkBad, "; ")
	}
	rec.Checks["agents"] = results.Check{OK: len(checkBad) == 0, Detail: detail}
	if m.AgentFailure != "" {
		rec.Checks["agents_alive"] = results.Check{OK: false, Detail: fmt.Sprintf("%s during %s", m.AgentFailure, m.AgentPhase)}
		if rec.Status != results.StatusFailed {
			rec.Status = results.StatusFailed
			rec.Error = fmt.Sprintf("%s during %s", m.AgentFailure, m.AgentPhase)
		}
	}
}
