package bench

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// BenchmarkPingPong is the loopback TCP floor under every transport: the
// one-way time (RTT/2) of a payload-sized message between two goroutines.
func BenchmarkPingPong(b *testing.B) {
	for _, gap := range []time.Duration{0, time.Millisecond} {
		for _, size := range []int{64, 256} {
			b.Run(fmt.Sprintf("gap=%v/size=%d", gap, size), func(b *testing.B) {
				var last Baseline
				for b.Loop() {
					var err error
					if last, err = PingPong(context.Background(), 1000, size, gap); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(last.OneWayP50), "oneway-p50-ns")
				b.ReportMetric(float64(last.RTT.P99), "rtt-p99-ns")
			})
		}
	}
}
