package results

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// latencySamples returns n latencies spread like a loaded loopback run:
// mostly tens of microseconds, a tail into tens of milliseconds.
func latencySamples(n int) []int64 {
	rng := rand.New(rand.NewPCG(1, 2))
	v := make([]int64, n)
	for i := range v {
		// Log-uniform from 1 µs to ~50 ms.
		v[i] = int64(1_000 * math.Exp2(rng.Float64()*15.6))
	}
	return v
}

// BenchmarkHistogramRecord is one latency recorded, as every client handler
// does per delivered event (RecordValue, error checked). It allocates
// nothing: the histogram's ~200 KB of counts are allocated by NewHistogram,
// once per shard.
func BenchmarkHistogramRecord(b *testing.B) {
	h := NewHistogram()
	v := latencySamples(1 << 16)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if err := h.RecordValue(v[i&(len(v)-1)]); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkHistogramMerge is MergeInto of one shard's histogram holding n
// values into another: the end of a run, once per shard. Merge walks every
// bucket of the source up to its highest recorded value, so its cost grows
// with the largest latency (here ~50 ms), not with the number of values.
func BenchmarkHistogramMerge(b *testing.B) {
	for _, n := range []int{1_000, 100_000} {
		b.Run(fmt.Sprintf("values=%d", n), func(b *testing.B) {
			src := NewHistogram()
			for _, x := range latencySamples(n) {
				if err := src.RecordValue(x); err != nil {
					b.Fatal(err)
				}
			}
			dst := NewHistogram()
			b.ReportAllocs()
			for b.Loop() {
				if err := MergeInto(dst, src); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkHistogramNew is the fixed cost of one histogram (per shard and
// per merge target): ~200 KB of counts, which is why there is never one per
// connection.
func BenchmarkHistogramNew(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if NewHistogram() == nil {
			b.Fatal("nil histogram")
		}
	}
}

// BenchmarkHistogramSummarise is the percentile read-out of one cell
// (Summarise: min, p50, p90, p99, p99.9, max, mean, count); like Merge,
// each quantile walks the buckets.
func BenchmarkHistogramSummarise(b *testing.B) {
	h := NewHistogram()
	for _, x := range latencySamples(100_000) {
		if err := h.RecordValue(x); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		if Summarise(h).Count != 100_000 {
			b.Fatal("wrong count")
		}
	}
}
