package bench

import (
	"fmt"
	"strings"
	"time"

	"pushbench/results"
)

// Summary is the one-line human summary of rec: scenario, latency
// percentiles, wire bytes and requests per delivered event, CPU per event
// on both sides, server memory per connection, throughput, correctness
// counts, and the failed self-checks by name.
//
//	ws c=100 r=10/s P=256 10s: p50 180µs p99 410µs p99.9 1.2ms max 2.0ms | 258.0/0.0 B/ev down/up | 0.000 req/ev | cpu 9.1/14.2 µs/ev srv/cli | 21.3 KiB/conn | 1000 deliv/s | lost 0 dup 0 reorder 0 | checks ok
func Summary(rec *results.Record) string {
	s := rec.Scenario
	var b strings.Builder
	fmt.Fprintf(&b, "%s c=%d r=%s/s P=%d", s.Transport, s.Clients, trimFloat(s.Rate), s.Payload)
	if s.IntervalNs > 0 && s.Transport == "shortpoll" {
		fmt.Fprintf(&b, " T=%v", time.Duration(s.IntervalNs))
	}
	fmt.Fprintf(&b, " %v", time.Duration(s.DurationNs))
	if s.Schedule != "" && s.Schedule != "constant" {
		fmt.Fprintf(&b, " %s", s.Schedule)
	}
	l := rec.Latency
	fmt.Fprintf(&b, ": p50 %s p99 %s p99.9 %s max %s", fmtNs(l.P50), fmtNs(l.P99), fmtNs(l.P999), fmtNs(l.Max))
	fmt.Fprintf(&b, " | %.1f/%.1f B/ev down/up", rec.Wire.DownBytesPerEvent, rec.Wire.UpBytesPerEvent)
	fmt.Fprintf(&b, " | %.3f req/ev", rec.RequestsPerEvent)
	fmt.Fprintf(&b, " | cpu %.1f/%.1f µs/ev srv/cli", rec.Server.CPUUsPerEvent, rec.Client.CPUUsPerEvent)
	fmt.Fprintf(&b, " | %.1f KiB/conn", rec.Server.RSSBytesPerConn/1024)
	fmt.Fprintf(&b, " | %.0f deliv/s", rec.DeliveriesPerS)
	fmt.Fprintf(&b, " | lost %d dup %d reorder %d", rec.Lost, rec.Duplicates, rec.OutOfOrder)
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

// fmtNs formats nanoseconds with three significant digits in a unit that
// suits them.
func fmtNs(ns int64) string {
	v := float64(ns)
	switch {
	case ns == 0:
		return "0"
	case v < 1e3:
		return fmt.Sprintf("%dns", ns)
	case v < 1e6:
		return sig3(v/1e3) + "µs"
	case v < 1e9:
		return sig3(v/1e6) + "ms"
	default:
		return sig3(v/1e9) + "s"
	}
}

func sig3(v float64) string {
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.2f", v)
	}
}

func trimFloat(v float64) string {
	return strings.TrimSuffix(strings.TrimRight(fmt.Sprintf("%.3f", v), "0"), ".")
}
