package bench

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"pushbench/clock"
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
	p50 := rec.Latency.P50
	if len(m.Agents) == 0 {
		// One load generator: against a server on another host it
		// measured its offset, which every latency carries.
		if o := m.Offset; o.Samples > 0 {
			rec.ClockOffsetNs, rec.ClockUncertaintyNs = o.Offset, o.Uncertainty
			if m.Measured && p50 > 0 {
				ok, detail := clockCheck(o, clock.Offset{}, p50)
				rec.Checks["clock_offset"] = results.Check{OK: ok, Detail: detail}
			}
		}
		return
	}
	var clockBad, checkBad []string
	clockDetail := []string{}
	for _, a := range m.Agents {
		unc := clockUncertainty(a.Offset, a.OffsetEnd)
		row := results.Agent{Name: a.Name, Host: a.Host, FirstClient: a.First, Clients: a.Clients, Error: a.Error,
			ClockOffsetNs: a.Offset.Offset, ClockUncertaintyNs: unc, ClockSamples: a.Offset.Samples, ClockDriftNs: a.ClockDrift,
			Checks: map[string]results.Check{}}
		if a.OffsetEnd.Samples > 0 {
			row.ClockOffsetChangeNs = a.OffsetEnd.Offset - a.Offset.Offset
		}
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
			// Its own clock against its monotonic clock (the record's
			// clock_stable is the coordinator's).
			row.Checks["clock_stable"] = results.Check{OK: max(a.ClockDrift, -a.ClockDrift) < maxClockDrift,
				Detail: fmt.Sprintf("its wall clock moved %s against its monotonic clock between its first and last mark (limit: under ±%s)",
					report.Duration(float64(a.ClockDrift)), report.Duration(float64(maxClockDrift)))}
		}
		if m.Measured && p50 > 0 && a.Offset.Samples > 0 {
			ok, detail := clockCheck(a.Offset, a.OffsetEnd, p50)
			row.Checks["clock_offset"] = results.Check{OK: ok, Detail: detail}
			clockDetail = append(clockDetail, fmt.Sprintf("%s %s ± %s", a.Name,
				report.Duration(float64(a.Offset.Offset)), report.Duration(float64(unc))))
			if !ok {
				clockBad = append(clockBad, a.Name)
			}
		}
		for _, name := range slices.Sorted(maps.Keys(row.Checks)) {
			if !row.Checks[name].OK && name != "clock_offset" { // clock_offset has a check of its own
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
	detail := fmt.Sprintf("every one of %d load generators passed its own checks (%s, clock_stable)", len(m.Agents), strings.Join(agentChecks, ", "))
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

// clockUncertainty bounds the error of an offset measured at the start
// and applied to a whole run: its own uncertainty, plus the part of the
// change to the offset measured at the end (end) that the two
// measurements' uncertainties do not explain (the clocks drifted apart).
func clockUncertainty(start, end clock.Offset) int64 {
	if end.Samples == 0 {
		return start.Uncertainty
	}
	change := end.Offset - start.Offset
	return start.Uncertainty + max(0, max(change, -change)-start.Uncertainty-end.Uncertainty)
}

// clockCheck judges an offset (with the one measured at the end, if
// any) against the cell's p50: its bound must be within maxClockShare of
// it.
func clockCheck(start, end clock.Offset, p50 int64) (bool, string) {
	unc := clockUncertainty(start, end)
	ok := float64(unc) <= maxClockShare*float64(p50)
	detail := fmt.Sprintf("offset %s ± %s (%d exchanges, %d kept", report.Duration(float64(start.Offset)), report.Duration(float64(unc)), start.Samples, start.Kept)
	if end.Samples > 0 {
		detail += fmt.Sprintf("; %s ± %s at the end", report.Duration(float64(end.Offset)), report.Duration(float64(end.Uncertainty)))
	}
	return ok, detail + fmt.Sprintf("); limit: ± %s, %.0f%% of the cell's p50 %s",
		report.Duration(maxClockShare*float64(p50)), maxClockShare*100, report.Duration(float64(p50)))
}
