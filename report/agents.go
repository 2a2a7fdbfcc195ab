package report

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"pushbench/results"
)

// AgentsMarkdownFile is the report's table of every load generator of the
// cells that ran on agents, written when a run has such cells (HasAgents).
const AgentsMarkdownFile = "agents.md"

// HasAgents reports whether a record's clients were spread over agents.
func HasAgents(recs []results.Record) bool {
	return slices.ContainsFunc(recs, func(r results.Record) bool { return len(r.Agents) > 0 })
}

// Agents is agents.md: for every cell that ran on agents, a row per load
// generator (the coordinator's own share is "local") with its share of
// the clients, what it delivered and lost, its latencies (corrected by its
// clock offset), its CPU, its clock offset to the server and the bound on
// that offset, and which of its own checks failed. The cell's figures
// elsewhere in the report are the exact merge of these rows.
func Agents(recs []results.Record) string {
	var b strings.Builder
	b.WriteString("# Load generators\n\n")
	b.WriteString("Each cell below ran its clients on several load generators (`pushbench agent`). The cell's record is their exact merge: counts add, the latency histogram is the sum of theirs. The clock offset is the server's clock minus the load generator's, measured NTP-style against the server's `GET /time` and applied to every receive stamp; ± is the bound on its error, which every latency of that load generator carries (`clock_offset` fails when it exceeds 10% of the cell's p50).\n\n")
	b.WriteString("| cell | load generator | host | clients | delivered | lost | p50 | p99 | CPU | clock offset | failed checks |\n")
	b.WriteString("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---|\n")
	for _, r := range recs {
		if len(r.Agents) == 0 {
			continue
		}
		s := r.Scenario
		name := fmt.Sprintf("%s c=%d r=%s/s", variantOf(s).Name(), s.Clients, fmtRate(s.Rate))
		if r.Status != "" && r.Status != results.StatusOK {
			name += " (" + r.Status + ")"
		}
		for _, a := range r.Agents {
			var failed []string
			for _, c := range slices.Sorted(maps.Keys(a.Checks)) {
				if !a.Checks[c].OK {
					failed = append(failed, c)
				}
			}
			if a.Error != "" {
				failed = append(failed, "error: "+a.Error)
			}
			offset := "0 (same host)"
			if a.ClockSamples > 0 {
				offset = fmt.Sprintf("%s ± %s", fmtDuration(float64(a.ClockOffsetNs)), fmtDuration(float64(a.ClockUncertaintyNs)))
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %d | %d | %d | %s | %s | %.0f%% of %d | %s | %s |\n",
				name, a.Name, a.Host, a.Clients, a.Delivered, a.Lost, fmtDuration(float64(a.LatencyP50Ns)), fmtDuration(float64(a.LatencyP99Ns)),
				a.CPUUtilisation*100, a.CPUs, offset, strings.Join(failed, ", "))
		}
	}
	return b.String()
}

// agentsLine is report.Line's part for a cell that ran on agents.
func agentsLine(rec *results.Record) string {
	if len(rec.Agents) == 0 {
		return ""
	}
	var worst int64
	for _, a := range rec.Agents {
		worst = max(worst, a.ClockUncertaintyNs)
	}
	s := fmt.Sprintf(" | %d load generators", len(rec.Agents))
	if worst > 0 {
		s += fmt.Sprintf(", clocks within ± %s", fmtDuration(float64(worst)))
	}
	return s
}
