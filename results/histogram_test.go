package results

import (
	"bytes"
	"strings"
	"testing"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
)

// TestSummariseExact records 1, 2, …, 1000 µs and checks every figure
// against HdrHistogram's bucket arithmetic. With a lowest discernible value
// of 1000 ns the unit is 2^9 = 512 ns, and the first bucket holds
// 2048 sub-buckets of 512 ns each (0 to 1,048,575 ns), so every value here
// lands in bucket 0 at sub-bucket ⌊v/512⌋. A percentile is the highest
// value equivalent to the value at rank ⌊q/100·n + 0.5⌋ (clamped to
// 1..n): ((⌊v/512⌋ + 1)·512 − 1).
func TestSummariseExact(t *testing.T) {
	t.Parallel()
	h := NewHistogram()
	for i := int64(1); i <= 1000; i++ {
		if err := h.RecordValue(i * 1000); err != nil {
			t.Fatal(err)
		}
	}
	highest := func(v int64) int64 { return (v/512+1)*512 - 1 }
	lowest := func(v int64) int64 { return v / 512 * 512 }
	want := Latency{
		Min:   lowest(1_000),    // 512
		P50:   highest(500_000), // rank 500 → 500 µs → sub-bucket 976 → 500,223
		P90:   highest(900_000), // rank 900
		P99:   highest(990_000), // rank 990
		P999:  highest(999_000), // rank ⌊999.5⌋ = 999
		Max:   highest(1_000_000),
		Count: 1000,
	}
	got := Summarise(h)
	// The mean is the mean of the sub-buckets' midpoints (lowest + 256),
	// summed the way HdrHistogram does, bucket by bucket, each ÷ count.
	for i := int64(1); i <= 1000; i++ {
		want.Mean += float64(lowest(i*1000)+256) / 1000
	}
	if got != want {
		t.Errorf("Summarise =\n%+v, want\n%+v", got, want)
	}
	if want.P50 != 500_223 || want.Min != 512 || want.Max != 1_000_447 {
		t.Errorf("bucket arithmetic in the test is off: %+v", want)
	}
}

func TestSummariseEmpty(t *testing.T) {
	t.Parallel()
	if got := Summarise(NewHistogram()); got != (Latency{}) {
		t.Errorf("Summarise(empty) = %+v, want zero", got)
	}
	if got := Summarise(nil); got != (Latency{}) {
		t.Errorf("Summarise(nil) = %+v, want zero", got)
	}
}

func TestHistogramRange(t *testing.T) {
	t.Parallel()
	h := NewHistogram()
	for _, v := range []int64{0, 1, 999, HistogramLowestNs, HistogramHighestNs} {
		if err := h.RecordValue(v); err != nil {
			t.Errorf("RecordValue(%d) = %v, want it recorded", v, err)
		}
	}
	for _, v := range []int64{-1, 2 * HistogramHighestNs} {
		if err := h.RecordValue(v); err == nil {
			t.Errorf("RecordValue(%d) = nil, want an out-of-range error", v)
		}
	}
}

func TestHistogramRoundTrip(t *testing.T) {
	t.Parallel()
	h := NewHistogram()
	for i := int64(0); i < 5000; i++ {
		if err := h.RecordValues(50_000+i*i*37, 1+i%3); err != nil {
			t.Fatal(err)
		}
	}
	s, err := EncodeHistogram(h)
	if err != nil {
		t.Fatal(err)
	}
	back, err := DecodeHistogram(s)
	if err != nil {
		t.Fatal(err)
	}
	if !back.Equals(h) {
		t.Error("decoded histogram differs from the original")
	}
	if Summarise(back) != Summarise(h) {
		t.Errorf("summaries differ: %+v vs %+v", Summarise(back), Summarise(h))
	}
	s2, err := EncodeHistogram(back)
	if err != nil || s2 != s {
		t.Errorf("re-encoding is not stable (err %v)", err)
	}
}

func TestDecodeHistogramErrors(t *testing.T) {
	t.Parallel()
	for _, in := range []string{"", "not base64!", "AAAA", "HISTFAAAACh42pNpmSzMwMDAwQABzFCaEUoz2X+AsQAtHAJw"} {
		if _, err := DecodeHistogram(in); err == nil {
			t.Errorf("DecodeHistogram(%q) = nil error", in)
		}
	}
}

func TestMergeInto(t *testing.T) {
	t.Parallel()
	a, b := NewHistogram(), NewHistogram()
	for i := int64(1); i <= 100; i++ {
		_ = a.RecordValue(i * 10_000)
		_ = b.RecordValue(i * 20_000)
	}
	if err := MergeInto(a, b); err != nil {
		t.Fatal(err)
	}
	if a.TotalCount() != 200 {
		t.Errorf("merged count = %d, want 200", a.TotalCount())
	}

	// A source with a wider range than the destination: values beyond the
	// destination's highest trackable value are dropped, and reported.
	narrow := hdrhistogram.New(HistogramLowestNs, 1_000_000_000, 3)
	wide := NewHistogram()
	_ = wide.RecordValue(5_000)
	_ = wide.RecordValues(10_000_000_000, 3)
	err := MergeInto(narrow, wide)
	if err == nil || !strings.Contains(err.Error(), "3 of 4") {
		t.Errorf("MergeInto with dropped values = %v, want an error naming 3 of 4", err)
	}
}

func TestWriteHGRM(t *testing.T) {
	t.Parallel()
	h := NewHistogram()
	for i := int64(1); i <= 1000; i++ {
		_ = h.RecordValue(i * 1000)
	}
	var buf bytes.Buffer
	if err := WriteHGRM(&buf, h); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	if !strings.HasPrefix(out, "       Value     Percentile TotalCount 1/(1-Percentile)") &&
		!strings.HasPrefix(out, " Value\tPercentile\tTotalCount\t1/(1-Percentile)") {
		t.Errorf("missing .hgrm header:\n%s", out[:min(len(out), 200)])
	}
	// Values are microseconds: the median, 500,223 ns, prints as 500.223.
	if !strings.Contains(out, "500.223") {
		t.Errorf(".hgrm does not show the median in µs (500.223):\n%s", out)
	}
	if !strings.Contains(out, "inf") || !strings.Contains(out, "Total count    =         1000") {
		t.Errorf(".hgrm lacks the final inf row or the footer:\n%s", out)
	}
}
