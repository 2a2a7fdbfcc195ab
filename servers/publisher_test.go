package servers

import (
	"errors"
	"math"
	"testing"
	"time"

	"pushbench/event"
)

// TestPublisherConstantSchedule checks a count-bounded run: seq 1..N in
// order, each event exactly P bytes, and t_k = start + k/R to the
// nanosecond (R = 100,000/s makes 1/R a whole 10,000 ns).
func TestPublisherConstantSchedule(t *testing.T) {
	const n, payload = 1000, 64
	h := NewHub(2 * n)
	p := NewPublisher(h)
	if err := p.Start(PublishConfig{Rate: 1e5, Payload: payload, Events: n}); err != nil {
		t.Fatal(err)
	}
	<-p.Done()
	out, gap, _, err := h.Since(0, nil, 0)
	if err != nil || gap.Len() != 0 || len(out) != n {
		t.Fatalf("Since(0): %d events, gap %+v, err %v; want %d, none, nil", len(out), gap, err, n)
	}
	t0 := out[0].T
	for k, e := range out {
		if e.Seq != uint64(k+1) {
			t.Fatalf("event %d has seq %d", k, e.Seq)
		}
		if len(e.Data) != payload {
			t.Fatalf("seq %d: %d bytes, want %d", e.Seq, len(e.Data), payload)
		}
		ev, err := event.Decode(e.Data)
		if err != nil || ev.Seq != e.Seq || ev.T != e.T {
			t.Fatalf("seq %d: decoded %+v, %v; entry t %d", e.Seq, ev, err, e.T)
		}
		if want := t0 + int64(k)*10_000; e.T != want {
			t.Fatalf("seq %d: t = t0 + %d ns, want t0 + %d ns", e.Seq, e.T-t0, int64(k)*10_000)
		}
		if e.Published == 0 {
			t.Fatalf("seq %d: no publish time", e.Seq)
		}
	}
	st := p.Stats()
	if st.Running || st.Published != n || st.FirstSeq != 1 || st.LastSeq != n || st.Config.Schedule != ScheduleConstant {
		t.Errorf("stats %+v", st)
	}
}

// TestPublisherPoissonRepeats checks that a Poisson run is reproducible: the
// same seed gives the same offsets from the run's start, and t increases.
func TestPublisherPoissonRepeats(t *testing.T) {
	const n = 200
	offsets := func(seed uint64) []int64 {
		h := NewHub(n)
		p := NewPublisher(h)
		if err := p.Start(PublishConfig{Rate: 1e5, Payload: 64, Events: n, Schedule: SchedulePoisson, Seed: seed}); err != nil {
			t.Fatal(err)
		}
		<-p.Done()
		out, _, _, _ := h.Since(0, nil, 0)
		if len(out) != n {
			t.Fatalf("%d events, want %d", len(out), n)
		}
		var o []int64
		for i, e := range out {
			if i > 0 && e.T < out[i-1].T {
				t.Fatalf("t goes back at seq %d", e.Seq)
			}
			o = append(o, e.T-out[0].T)
		}
		return o
	}
	a, b := offsets(7), offsets(7)
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("offset %d differs between runs with one seed: %d vs %d", i, a[i], b[i])
		}
	}
}

func TestPublisherStartStop(t *testing.T) {
	h := NewHub(16)
	p := NewPublisher(h)
	if p.Done() != nil {
		t.Fatal("Done before any run is not nil")
	}
	p.Stop() // no run: a no-op
	if err := p.Start(PublishConfig{Rate: 1000, Payload: 64}); err != nil {
		t.Fatal(err)
	}
	if err := p.Start(PublishConfig{Rate: 1000, Payload: 64}); !errors.Is(err, ErrRunning) {
		t.Fatalf("second Start: %v, want ErrRunning", err)
	}
	p.Stop()
	<-p.Done()
	if p.Stats().Running {
		t.Fatal("running after Stop")
	}
	head := h.Head()
	// A second run continues the sequence without a hole.
	if err := p.Start(PublishConfig{Rate: 1e5, Payload: 64, Events: 10}); err != nil {
		t.Fatal(err)
	}
	<-p.Done()
	if st := p.Stats(); st.FirstSeq != head+1 || st.LastSeq != head+10 || h.Head() != head+10 {
		t.Fatalf("second run: first %d last %d head %d, want %d, %d", st.FirstSeq, st.LastSeq, h.Head(), head+1, head+10)
	}
}

func TestPublishConfigValidate(t *testing.T) {
	bad := []PublishConfig{
		{Rate: 0, Payload: 64},
		{Rate: -1, Payload: 64},
		{Rate: math.NaN(), Payload: 64},
		{Rate: math.Inf(1), Payload: 64},
		{Rate: 2e6, Payload: 64},
		{Rate: 1, Payload: event.MinSize - 1},
		{Rate: 1, Payload: event.MaxSize + 1},
		{Rate: 1, Payload: 64, Schedule: "burst"},
		{Rate: 1, Payload: 64, Duration: -time.Second},
		{Rate: 1, Payload: 64, Spin: -time.Millisecond},
	}
	for _, c := range bad {
		if err := c.Validate(); err == nil {
			t.Errorf("Validate(%+v): no error", c)
		}
	}
	if err := (PublishConfig{Rate: 1, Payload: event.MinSize}).Validate(); err != nil {
		t.Errorf("minimal config: %v", err)
	}
}
