package bench

import (
	"context"
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"pushbench/clients"
	"pushbench/event"
	"pushbench/proc"
	"pushbench/report"
	"pushbench/results"
	"pushbench/transport"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// small is a scenario that runs in about a second: 20 clients, 200 events
// in the window at 500 events/s.
func small(transport string) Scenario {
	s := DefaultScenario()
	s.Transport = transport
	s.Clients = 20
	s.Rate = 500
	s.Payload = 100
	s.Interval = 20 * time.Millisecond
	s.Hold = 5 * time.Second
	s.Warmup = 100 * time.Millisecond
	s.Duration = 400 * time.Millisecond
	s.Drain = 5 * time.Second
	s.Spin = 0
	s.Idle = 100 * time.Millisecond
	return s
}

func runInProcess(t *testing.T, s Scenario) (*results.Record, int64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rec, h, err := Run(ctx, s, Options{Launch: proc.InProcess(nil)})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	t.Log(report.Line(rec))
	return rec, h.TotalCount()
}

func TestRunEachTransport(t *testing.T) {
	for _, tr := range transport.Names() {
		t.Run(tr, func(t *testing.T) {
			rec, count := runInProcess(t, small(tr))
			// 200 events are scheduled in the 400 ms window at 500/s.
			if want := uint64(200 * 20); rec.Expected != want {
				t.Errorf("expected = %d, want %d", rec.Expected, want)
			}
			if rec.Delivered != rec.Expected {
				t.Errorf("delivered %d of %d expected", rec.Delivered, rec.Expected)
			}
			if rec.Lost != 0 || rec.Duplicates != 0 || rec.OutOfOrder != 0 {
				t.Errorf("lost %d, duplicates %d, out of order %d; want 0", rec.Lost, rec.Duplicates, rec.OutOfOrder)
			}
			if uint64(count) != rec.Delivered || uint64(rec.Latency.Count) != rec.Delivered {
				t.Errorf("latency count %d (record %d), want one per delivery (%d)", count, rec.Latency.Count, rec.Delivered)
			}
			// A poll sends a request per answer; a stream sends nothing after
			// it opened.
			if rec.Wire.DownBytes == 0 || (rec.Wire.UpBytes == 0) == transport.IsPoll(tr) {
				t.Errorf("wire bytes down %d up %d, want > 0", rec.Wire.DownBytes, rec.Wire.UpBytes)
			}
			if transport.IsPoll(tr) {
				if rec.Requests == 0 {
					t.Errorf("requests = 0, want > 0")
				}
			}
			if c := rec.Checks["bytes_agree"]; !c.OK {
				t.Errorf("bytes_agree failed: %s", c.Detail)
			}
			for _, name := range []string{"no_loss", "histogram_range"} {
				if c := rec.Checks[name]; !c.OK {
					t.Errorf("check %s failed: %s", name, c.Detail)
				}
			}
			if rec.Partial {
				t.Errorf("partial = true")
			}
			if rec.Histogram == "" {
				t.Errorf("no encoded histogram")
			}
		})
	}
}

// TestShortPollModel checks the meaning of short polling at interval T:
// with rare events the mean latency is about T/2, and every client polls
// 1/T times per second.
func TestShortPollModel(t *testing.T) {
	const T = 100 * time.Millisecond
	s := DefaultScenario()
	s.Transport = transport.ShortPoll
	s.Clients = 10
	s.Interval = T
	// The harness spreads the clients' poll grids evenly over the
	// interval; events (2/s) are rarer than polls.
	s.Rate = 2
	s.Payload = 64
	s.Warmup = 500 * time.Millisecond
	s.Duration = 3 * time.Second
	s.Spin = 0
	rec, _ := runInProcess(t, s)
	if rec.Lost != 0 {
		t.Fatalf("lost %d", rec.Lost)
	}
	if _, ok := rec.Checks["poll_schedule"]; !ok {
		t.Errorf("no poll_schedule check in a short-polling result: %v", rec.Checks)
	}
	mean := time.Duration(rec.Latency.Mean)
	if mean < 3*T/10 || mean > 7*T/10 {
		t.Errorf("mean latency %v, want between 0.3·T and 0.7·T (T = %v)", mean, T)
	}
	perClientSec := float64(rec.Requests) / (float64(s.Clients) * s.Duration.Seconds())
	if want := 1 / T.Seconds(); math.Abs(perClientSec-want) > 0.1*want {
		t.Errorf("requests per client-second %.2f, want %.2f ± 10%%", perClientSec, want)
	}
}

// TestWebSocketBytesPerEvent checks that a WebSocket event costs exactly
// its payload plus a 2-byte frame header downstream (payload < 126).
func TestWebSocketBytesPerEvent(t *testing.T) {
	s := DefaultScenario()
	s.Transport = transport.WebSocket
	s.Clients = 10
	s.Rate = 10
	s.Payload = 120
	s.Warmup = 200 * time.Millisecond
	s.Duration = time.Second
	s.Spin = 0
	rec, _ := runInProcess(t, s)
	if rec.Delivered != rec.Expected || rec.Delivered == 0 {
		t.Fatalf("delivered %d of %d", rec.Delivered, rec.Expected)
	}
	if want := rec.Delivered * uint64(s.Payload+2); rec.Wire.DownBytes != want {
		t.Errorf("downstream bytes %d for %d events, want exactly %d (payload + 2 each)", rec.Wire.DownBytes, rec.Delivered, want)
	}
	if rec.Wire.DownBytesPerEvent != float64(s.Payload+2) {
		t.Errorf("down bytes per event %v, want %d", rec.Wire.DownBytesPerEvent, s.Payload+2)
	}
}

func TestRunCancelledIsPartial(t *testing.T) {
	s := small(transport.WebSocket)
	s.Duration = time.Minute
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var cancelled bool
	opt := Options{Launch: proc.InProcess(nil), ProgressEvery: 10 * time.Millisecond}
	opt.Progress = func(p Progress) {
		// Cancel once some in-window deliveries have been recorded.
		if p.Phase == PhaseWindow && p.Deliveries > 100 && !cancelled {
			cancelled = true
			cancel()
		}
	}
	rec, _, err := Run(ctx, s, opt)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Run error = %v, want context.Canceled", err)
	}
	if rec == nil || !rec.Partial {
		t.Fatalf("record %+v, want partial", rec)
	}
	if rec.Delivered == 0 {
		t.Errorf("partial record has no deliveries")
	}
	if c, ok := rec.Checks["complete"]; !ok || c.OK {
		t.Errorf("checks %v, want a failed complete check", rec.Checks)
	}
	if !strings.Contains(report.Line(rec), "PARTIAL") {
		t.Errorf("summary %q does not say PARTIAL", report.Line(rec))
	}
}

func TestValidate(t *testing.T) {
	base := DefaultScenario()
	tests := []struct {
		name string
		edit func(*Scenario)
		want string // substring of the error; "" = valid
	}{
		{"default", func(*Scenario) {}, ""},
		{"zero clients", func(s *Scenario) { s.Clients = 0 }, "at least one client"},
		{"negative rate", func(s *Scenario) { s.Rate = -1 }, "rate -1"},
		{"zero rate", func(s *Scenario) { s.Rate = 0 }, "rate 0"},
		{"small payload", func(s *Scenario) { s.Payload = event.MinSize - 1 }, "below the minimum"},
		{"huge payload", func(s *Scenario) { s.Payload = event.MaxSize + 1 }, "above the maximum"},
		{"unknown transport", func(s *Scenario) { s.Transport = "carrier-pigeon" }, "unknown transport"},
		{"shortpoll without interval", func(s *Scenario) { s.Transport = transport.ShortPoll; s.Interval = 0 }, "poll interval"},
		{"window without events", func(s *Scenario) { s.Rate = 1; s.Duration = 300 * time.Millisecond; s.Warmup = 600 * time.Millisecond }, "too short to contain one event"},
		{"warm-up under half an interval", func(s *Scenario) { s.Rate = 1; s.Warmup = 100 * time.Millisecond }, "use --warmup 0 or 500ms or more"},
		{"ring too small for polling", func(s *Scenario) {
			s.Transport = transport.ShortPoll
			s.Rate = 1000
			s.Interval = time.Second
			s.Ring = 100
		}, "1000 events one 1s poll interval"},
		{"bad schedule", func(s *Scenario) { s.Schedule = "bursty" }, "schedule"},
		{"negative warmup", func(s *Scenario) { s.Warmup = -time.Second }, "warm-up"},
		{"zero connect rate", func(s *Scenario) { s.ConnectRate = -1 }, "connect rate"},
		{"too much tracking", func(s *Scenario) { s.Clients = 1_000_000; s.Rate = 100_000; s.Duration = time.Hour }, "delivery tracking"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := base
			tt.edit(&s)
			err := s.WithDefaults().Validate()
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("Validate: %v", err)
			case tt.want != "" && err == nil:
				t.Fatalf("Validate: nil, want an error containing %q", tt.want)
			case tt.want != "" && !strings.Contains(err.Error(), tt.want):
				t.Fatalf("Validate: %q, want it to contain %q", err, tt.want)
			case err != nil && strings.Contains(err.Error(), "\n"):
				t.Fatalf("Validate: %q is not one line", err)
			case err != nil && !errors.Is(err, ErrScenario):
				t.Fatalf("Validate: %v does not wrap ErrScenario", err)
			}
		})
	}
}

func TestConstantEventsMatchesPublisher(t *testing.T) {
	for _, rate := range []float64{1, 3, 7, 10, 333, 1000, 12345.6} {
		for _, d := range []time.Duration{time.Second, 1500 * time.Millisecond, 2*time.Second + 1} {
			interval := float64(time.Second) / rate
			var want uint64
			for k := uint64(0); time.Duration(float64(k)*interval) < d; k++ {
				want++
			}
			if got := constantEvents(rate, d); got != want {
				t.Errorf("constantEvents(%v, %v) = %d, want %d", rate, d, got, want)
			}
		}
	}
}

func TestRecorderCounts(t *testing.T) {
	quit := make(chan struct{})
	defer close(quit)
	r := newRecorder(2, 64, quit)
	base := uint64(11)
	r.setWindow(window{start: 1000, end: 2000, base: base})
	now := time.Unix(0, 5000)
	ev := func(seq uint64, t int64) event.Event { return event.Event{Seq: seq, T: t} }
	h0, h1 := r.handler(0), r.handler(1)
	// Client 0: one warm-up event, then 12..15 with a duplicate and a
	// reordering; 16 never arrives.
	h0(clients.Batch{Events: []event.Event{ev(11, 900), ev(12, 1000), ev(14, 1200)}, Recv: now})
	h0(clients.Batch{Events: []event.Event{ev(13, 1100), ev(14, 1200), ev(15, 1300)}, Recv: now})
	// Client 1: a gap notice for 11..13, then 14..16.
	h1(clients.Batch{Gap: event.Gap{From: 11, To: 13}, Recv: now})
	h1(clients.Batch{Events: []event.Event{ev(14, 1200), ev(15, 1300), ev(16, 1400)}, Recv: now})
	d := r.finish(16, 0)
	if d.lo != 12 || d.hi != 16 || d.boundary != "observed" {
		t.Fatalf("window seqs %d..%d (%s), want 12..16 observed", d.lo, d.hi, d.boundary)
	}
	if d.expected != 10 || d.delivered != 7 || d.lost != 3 {
		t.Errorf("expected %d delivered %d lost %d, want 10, 7, 3", d.expected, d.delivered, d.lost)
	}
	if d.duplicates != 1 || d.outOfOrder != 1 || d.gapEvents != 3 {
		t.Errorf("duplicates %d out of order %d gap events %d, want 1, 1, 3", d.duplicates, d.outOfOrder, d.gapEvents)
	}
	if got := d.hist.TotalCount(); got != 7 {
		t.Errorf("histogram count %d, want 7", got)
	}
	upTo := func(last uint64) func(int) uint64 { return func(int) uint64 { return last } }
	if r.uncoveredBy(0, upTo(16)) != 0 || r.uncoveredBy(0, upTo(15)) != 2 {
		t.Errorf("uncovered: client 0 should still wait for 16 but not for 15")
	}
}

func TestPingPong(t *testing.T) {
	for _, gap := range []time.Duration{0, 100 * time.Microsecond} {
		b, err := PingPong(context.Background(), 200, 256, gap)
		if err != nil {
			t.Fatal(err)
		}
		if b.RTT.Count != 200 || b.OneWayP50 <= 0 || b.OneWayP50 != b.RTT.P50/2 || b.GapNs != int64(gap) {
			t.Errorf("baseline %+v: want 200 round trips and one-way = RTT/2 > 0", b)
		}
	}
}

// TestRecorderWindowEnd: an event published after the window's end (the
// schedule's origin can lag the server's Started) is not expected.
func TestRecorderWindowEnd(t *testing.T) {
	quit := make(chan struct{})
	defer close(quit)
	r := newRecorder(1, 64, quit)
	r.setWindow(window{start: 1000, end: 2000, base: 1})
	h := r.handler(0)
	h(clients.Batch{Events: []event.Event{{Seq: 1, T: 1001}, {Seq: 2, T: 1999}, {Seq: 3, T: 2000}}, Recv: time.Unix(0, 5000)})
	d := r.finish(3, 0)
	if d.lo != 1 || d.hi != 2 || d.expected != 2 || d.lost != 0 {
		t.Errorf("window %d..%d expected %d lost %d, want 1..2, 2, 0", d.lo, d.hi, d.expected, d.lost)
	}
}
