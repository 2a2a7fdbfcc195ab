// Package clock measures how far a machine's clock is from a pushbench
// server's, in band, the way NTP does: the client stamps a request when it
// sends it (t1) and when the answer arrives (t4), the server stamps when
// the request arrived (t2) and when it answered (t3), GET /time. Each
// exchange gives an offset ((t2−t1)+(t3−t4))/2 and a round trip
// (t4−t1)−(t3−t2); the offset of an exchange can be wrong by at most half
// its round trip (the two directions' delays differ by at most that), and
// many exchanges narrow it to the intersection of their bounds.
//
// A load generator on another host than the server adds the offset to its
// receive stamps (Offset.Apply), so that latency, the difference of a
// server stamp and a client stamp, is taken on one clock.
package clock

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"time"
)

// Sample is one exchange's four stamps (Unix ns): t1 client send, t2
// server receive, t3 server send, t4 client receive.
type Sample struct{ T1, T2, T3, T4 int64 }

// Offset is the server's clock minus the client's, in ns, for this
// exchange.
func (s Sample) Offset() int64 { return ((s.T2 - s.T1) + (s.T3 - s.T4)) / 2 }

// RTT is the exchange's round trip less the server's time on it, in ns.
func (s Sample) RTT() int64 { return (s.T4 - s.T1) - (s.T3 - s.T2) }

// Offset is an estimate of the server's clock minus the client's.
type Offset struct {
	// Offset is the estimate, ns: add it to a client stamp to read it on
	// the server's clock.
	Offset int64 `json:"offset_ns"`
	// Uncertainty bounds its error, ns: half the round trip of the
	// exchanges it rests on.
	Uncertainty int64 `json:"uncertainty_ns"`
	// Samples is how many exchanges were made, Kept how many the
	// estimate rests on (the lowest round trips), MinRTT the lowest.
	Samples int   `json:"samples"`
	Kept    int   `json:"kept"`
	MinRTT  int64 `json:"min_rtt_ns"`
}

// Apply reads a client stamp (Unix ns) on the server's clock.
func (o Offset) Apply(t int64) int64 { return t + o.Offset }

// Estimate makes the estimate from samples. Each exchange bounds the
// offset by causality alone: the request cannot arrive before it was sent
// (offset ≤ t2−t1), nor the answer before it left (offset ≥ t3−t4). The
// estimate is the middle of the intersection of every exchange's bounds,
// uncertain by half its width; Kept counts the exchanges that set its
// edges. When the bounds do not intersect (a clock stepped or slewed
// during the exchanges) it falls back to the median offset of the quarter
// with the lowest round trips, uncertain by half the largest round trip
// among them.
func Estimate(samples []Sample) (Offset, error) {
	if len(samples) == 0 {
		return Offset{}, errors.New("clock: no samples")
	}
	ss := slices.Clone(samples)
	for _, s := range ss {
		if s.RTT() < 0 || s.T4 < s.T1 || s.T3 < s.T2 {
			return Offset{}, fmt.Errorf("clock: a sample with impossible stamps %+v", s)
		}
	}
	slices.SortFunc(ss, func(a, b Sample) int { return cmp.Compare(a.RTT(), b.RTT()) })
	lo, hi := int64(math.MinInt64), int64(math.MaxInt64)
	for _, s := range ss {
		lo, hi = max(lo, s.T3-s.T4), min(hi, s.T2-s.T1)
	}
	if lo <= hi {
		kept := 0
		for _, s := range ss {
			if s.T3-s.T4 == lo || s.T2-s.T1 == hi {
				kept++
			}
		}
		return Offset{Offset: lo + (hi-lo)/2, Uncertainty: (hi - lo + 1) / 2, Samples: len(ss), Kept: kept, MinRTT: ss[0].RTT()}, nil
	}
	kept := ss[:max(1, len(ss)/4)]
	offs := make([]int64, len(kept))
	for i, s := range kept {
		offs[i] = s.Offset()
	}
	slices.Sort(offs)
	return Offset{
		Offset:      offs[len(offs)/2],
		Uncertainty: (kept[len(kept)-1].RTT() + 1) / 2,
		Samples:     len(samples),
		Kept:        len(kept),
		MinRTT:      ss[0].RTT(),
	}, nil
}

// Answer is GET /time's body: the server's stamps of the request.
type Answer struct {
	Recv int64 `json:"recv_ns"` // t2: the handler started
	Send int64 `json:"send_ns"` // t3: just before the answer is written
}

// Measure makes n exchanges with the server at base (GET base+"/time")
// over hc, stamping with now (time.Now when nil; a test skews it), and
// returns the estimate.
func Measure(ctx context.Context, hc *http.Client, base string, n int, now func() time.Time) (Offset, error) {
	if now == nil {
		now = time.Now
	}
	if n < 1 {
		return Offset{}, fmt.Errorf("clock: %d exchanges", n)
	}
	var samples []Sample
	for range n {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/time", nil)
		if err != nil {
			return Offset{}, err
		}
		t1 := now().UnixNano()
		resp, err := hc.Do(req)
		if err != nil {
			return Offset{}, fmt.Errorf("clock: GET %s/time: %w", base, err)
		}
		body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<10))
		t4 := now().UnixNano()
		resp.Body.Close()
		if err != nil {
			return Offset{}, fmt.Errorf("clock: GET %s/time: %w", base, err)
		}
		if resp.StatusCode != http.StatusOK {
			return Offset{}, fmt.Errorf("clock: GET %s/time: %s", base, resp.Status)
		}
		var a Answer
		if err := json.Unmarshal(body, &a); err != nil {
			return Offset{}, fmt.Errorf("clock: GET %s/time: %w", base, err)
		}
		samples = append(samples, Sample{T1: t1, T2: a.Recv, T3: a.Send, T4: t4})
	}
	return Estimate(samples)
}

// Handler serves GET /time: the request's arrival and the answer's
// departure on this machine's clock.
func Handler(w http.ResponseWriter, r *http.Request) {
	recv := time.Now().UnixNano()
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		http.Error(w, "/time: method "+r.Method+" not allowed (want GET)", http.StatusMethodNotAllowed)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	b, _ := json.Marshal(Answer{Recv: recv, Send: time.Now().UnixNano()})
	_, _ = w.Write(append(b, '\n'))
}
