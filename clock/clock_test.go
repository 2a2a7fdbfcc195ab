package clock

import (
	"context"
	"math"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestEstimateArithmetic: the offset and round trip of the four stamps,
// exactly, and the estimate rests on the lowest round trips.
func TestEstimateArithmetic(t *testing.T) {
	// The server is 1000 ns ahead; the request takes 100 ns there, the
	// answer 300 ns back; the server spends 50 ns.
	s := Sample{T1: 10_000, T2: 11_100, T3: 11_150, T4: 10_450}
	if s.RTT() != 400 || s.Offset() != 900 {
		t.Fatalf("rtt %d offset %d, want 400 and 900 (1000 − (300−100)/2)", s.RTT(), s.Offset())
	}
	// Eight samples: two symmetric with a 40 ns round trip (offset exactly
	// 1000), six slow and lopsided.
	ss := []Sample{{0, 1020, 1020, 40}, {100, 1120, 1120, 140}}
	for i := range int64(6) {
		ss = append(ss, Sample{T1: i * 1000, T2: i*1000 + 1000 + 5000, T3: i*1000 + 1000 + 5000, T4: i*1000 + 5100})
	}
	o, err := Estimate(ss)
	if err != nil {
		t.Fatal(err)
	}
	if o.Offset != 1000 || o.Uncertainty != 20 || o.Kept != 2 || o.Samples != 8 || o.MinRTT != 40 {
		t.Errorf("estimate %+v: want offset 1000 ± 20 from the 2 fastest of 8", o)
	}
	// Bounds that do not intersect (the clock stepped by 1000 ns between
	// two exchanges): the median of the fastest quarter, here the single
	// fastest exchange.
	if o, err := Estimate([]Sample{{0, 1000, 1000, 20}, {100, 2100, 2100, 110}, {200, 2200, 2200, 240}, {300, 2300, 2300, 360}}); err != nil ||
		o.Offset != 1995 || o.Uncertainty != 5 || o.Kept != 1 {
		t.Errorf("estimate from bounds that do not meet: %+v %v, want the fastest exchange's 1995 ± 5", o, err)
	}
	if _, err := Estimate([]Sample{{T1: 10, T2: 5, T3: 4, T4: 20}}); err == nil {
		t.Error("impossible stamps accepted")
	}
}

// TestSkew: a client whose clock is 30 ms ahead of the server's measures
// an offset of −30 ms within its uncertainty, over loopback.
func TestSkew(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(Handler))
	defer srv.Close()
	hc := srv.Client()
	defer hc.CloseIdleConnections()
	const skew = 30 * time.Millisecond
	o, err := Measure(context.Background(), hc, srv.URL, 32, func() time.Time { return time.Now().Add(skew) })
	if err != nil {
		t.Fatal(err)
	}
	// On one machine the true offset is exactly −30 ms, and the estimate
	// is within its own uncertainty of it (each kept exchange errs by at
	// most half its round trip).
	if d := math.Abs(float64(o.Offset + int64(skew))); d > float64(o.Uncertainty) {
		t.Errorf("offset %v ± %v, want −30 ms within its uncertainty", time.Duration(o.Offset), time.Duration(o.Uncertainty))
	}
	now := time.Now()
	if got := o.Apply(now.Add(skew).UnixNano()) - now.UnixNano(); math.Abs(float64(got)) > float64(o.Uncertainty) {
		t.Errorf("a skewed stamp corrected is %v off the server's clock, more than the uncertainty %v", time.Duration(got), time.Duration(o.Uncertainty))
	}
	t.Logf("offset %v ± %v from the %d fastest of %d exchanges", time.Duration(o.Offset), time.Duration(o.Uncertainty), o.Kept, o.Samples)
}
