package results

import (
	"errors"
	"fmt"
	"io"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
)

// Latency histograms record nanoseconds. The lowest discernible value is
// 1 µs (HdrHistogram then keeps a resolution of 512 ns below ~1 ms and
// 3 significant digits above it), the highest trackable value is 1 h;
// design.md section 5 asks for "1 µs to 1 h, 3 significant digits".
// Values below 1 µs are still recorded (in the lowest bucket); negative
// values and values above 1 h are rejected by RecordValue and must be
// counted in Latency.OutOfRange.
const (
	HistogramLowestNs  = 1_000
	HistogramHighestNs = 3_600_000_000_000
	HistogramSigFigs   = 3
)

// NewHistogram returns an empty latency histogram in nanoseconds with the
// project's fixed range (about 200 KB: make one per worker, not one per
// connection). It is not safe for concurrent use.
func NewHistogram() *hdrhistogram.Histogram {
	return hdrhistogram.New(HistogramLowestNs, HistogramHighestNs, HistogramSigFigs)
}

// Summarise returns the summary of h, whose values are nanoseconds. Min and
// Max are the lowest and highest equivalent values of the extreme buckets,
// percentiles are HdrHistogram's (the highest value equivalent to the value
// at that rank), Mean is HdrHistogram's mean of bucket midpoints. An empty
// histogram gives a zero Latency. OutOfRange is left 0: only the recorder
// knows how many values it could not record.
func Summarise(h *hdrhistogram.Histogram) Latency {
	if h == nil || h.TotalCount() == 0 {
		return Latency{}
	}
	// ValueAtQuantile takes 0–100, like ValueAtPercentile.
	return Latency{
		Min:   h.Min(),
		P50:   h.ValueAtQuantile(50),
		P90:   h.ValueAtQuantile(90),
		P99:   h.ValueAtQuantile(99),
		P999:  h.ValueAtQuantile(99.9),
		Max:   h.Max(),
		Mean:  h.Mean(),
		Count: h.TotalCount(),
	}
}

// EncodeHistogram returns h as an HdrHistogram V2 compressed, base64
// snapshot: the format of Record.Histogram.
func EncodeHistogram(h *hdrhistogram.Histogram) (string, error) {
	if h == nil {
		return "", errors.New("encode histogram: nil histogram")
	}
	b, err := h.Encode(hdrhistogram.V2CompressedEncodingCookieBase)
	if err != nil {
		return "", fmt.Errorf("encode histogram: %w", err)
	}
	return string(b), nil
}

// DecodeHistogram reads a snapshot written by EncodeHistogram (or any
// HdrHistogram V2 compressed base64 snapshot).
func DecodeHistogram(s string) (*hdrhistogram.Histogram, error) {
	if s == "" {
		return nil, errors.New("decode histogram: empty snapshot")
	}
	h, err := hdrhistogram.Decode([]byte(s))
	if err != nil {
		return nil, fmt.Errorf("decode histogram: %w", err)
	}
	return h, nil
}

// MergeInto adds every value of src to dst. It fails, naming the count,
// when dst could not hold some of them (Merge drops them silently).
func MergeInto(dst, src *hdrhistogram.Histogram) error {
	if dst == nil || src == nil {
		return errors.New("merge histogram: nil histogram")
	}
	if dropped := dst.Merge(src); dropped != 0 {
		return fmt.Errorf("merge histogram: %d of %d values outside the destination's range", dropped, src.TotalCount())
	}
	return nil
}

// WriteHGRM writes h's full percentile distribution in HdrHistogram's
// standard .hgrm text format (5 ticks per half distance), with values
// scaled from nanoseconds to microseconds, as HdrHistogram's plotter and
// other .hgrm tools expect. The last row's 1/(1−p) column reads "inf".
func WriteHGRM(w io.Writer, h *hdrhistogram.Histogram) error {
	if h == nil {
		return errors.New("write hgrm: nil histogram")
	}
	if _, err := h.PercentilesPrint(w, 5, 1000); err != nil {
		return fmt.Errorf("write hgrm: %w", err)
	}
	return nil
}
