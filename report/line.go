package report

import (
	"fmt"
	"strings"
	"time"

	"pushbench/results"
)

// Line is the one-line human summary of rec: the scenario, then every
// metric of the table that has a line label (latency percentiles, wire
// bytes, requests, CPU on both sides, server memory per connection,
// throughput), the correctness counts, and the failed self-checks by name.
// The workload follows the scenario where it is not a broadcast, then how
// HTTP was spoken where it is not the default ("... 10s
// workload=chat/room=10/send-rate=1 http=2/tls=on/headers=browser: ..."),
// and chat and game add their upstream figures (sent, upstream B/msg and
// requests/msg, send lag p99; the game its input latency).
//
//	ws c=100 r=10/s P=256 10s: p50 180 µs, p99 410 µs, p99.9 1.2 ms, max 2 ms, down 258 B/event, up 0 B/event, requests 0/event, server CPU 9.1 µs/event, client CPU 14.2 µs/event, server RSS 21.3 KiB/conn, deliveries 1,000/s | lost 0 dup 0 reorder 0 | checks ok
func Line(rec *results.Record) string {
	s := rec.Scenario
	var b strings.Builder
	b.WriteString(cellTitle(s))
	if s.Schedule != "" && s.Schedule != "constant" {
		fmt.Fprintf(&b, " %s", s.Schedule)
	}
	if suffix := workSuffix(s); suffix != "" {
		b.WriteString(" " + strings.TrimPrefix(suffix, "/"))
	}
	if suffix := httpOf(s).suffix(); suffix != "" {
		b.WriteString(" " + strings.TrimPrefix(suffix, "/"))
	}
	b.WriteString(":")
	sep := " "
	for _, m := range metrics {
		if m.line == "" {
			continue
		}
		v := m.show(rec)
		if v == "" {
			continue
		}
		if m.lineUnit != "" {
			if strings.HasPrefix(m.lineUnit, "/") {
				v += m.lineUnit
			} else {
				v += " " + m.lineUnit
			}
		}
		fmt.Fprintf(&b, "%s%s %s", sep, m.line, v)
		sep = ", "
	}
	fmt.Fprintf(&b, " | lost %d dup %d reorder %d", rec.Lost, rec.Duplicates, rec.OutOfOrder)
	if g := rec.ReconnectGap; g != nil {
		fmt.Fprintf(&b, " | %d reconnects, gap p50 %s max %s", g.Count, fmtDuration(float64(g.P50)), fmtDuration(float64(g.Max)))
	}
	if br := rec.Browser; br != nil {
		fmt.Fprintf(&b, " | %d/%d pages subscribed in %d browsers", br.Subscribed, br.Pages, br.Browsers)
		if br.Held > 0 {
			fmt.Fprintf(&b, ", %d held", br.Held)
		}
		if br.Failed > 0 {
			fmt.Fprintf(&b, ", %d failed", br.Failed)
		}
		if br.PSSBytesPerPage > 0 {
			fmt.Fprintf(&b, ", %.0f MB PSS/page", br.PSSBytesPerPage/1e6)
		}
	}
	b.WriteString(agentsLine(rec))
	if failed := rec.FailedChecks(); len(failed) > 0 {
		fmt.Fprintf(&b, " | FAILED CHECKS: %s", strings.Join(failed, ", "))
	} else {
		b.WriteString(" | checks ok")
	}
	if rec.Partial {
		b.WriteString(" | PARTIAL")
	}
	return b.String()
}

// cellTitle names a cell as the summary line begins: "ws c=100 r=10/s
// P=256 10s".
func cellTitle(s results.Scenario) string {
	return fmt.Sprintf("%s c=%d r=%s/s P=%d %v", variantOf(s).Name(), s.Clients, fmtRate(s.Rate), s.Payload, time.Duration(s.DurationNs))
}
