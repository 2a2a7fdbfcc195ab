package bench

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"pushbench/clients"
	"pushbench/event"
	"pushbench/servers"
)

// splitRun feeds the same deliveries to recorders that each hold a share
// of the clients (shares lists the client counts of each load generator)
// and returns one measurement per load generator. Client i of the whole
// run gets events 1..20 (t = seq µs) with its own twists: client 1 a
// duplicate, client 2 a hole, client 3 an out-of-order event and a gap
// notice, client 4 nothing in the second half.
func splitRun(t *testing.T, shares ...int) []Measurement {
	t.Helper()
	quit := make(chan struct{})
	t.Cleanup(func() { close(quit) })
	s := DefaultScenario()
	s.Transport, s.Rate, s.Duration = "ws", 100, 10*time.Millisecond
	for _, n := range shares {
		s.Clients += n
	}
	server := [marks]ServerMark{}
	for i := range server {
		st := servers.Stats{TimeNs: int64(i + 1)}
		st.Listener.BytesOut = uint64(1000 * i)
		st.Listener.BytesIn = uint64(100 * i)
		st.Process.CPUUserNs = int64(i) * 3e6
		server[i] = ServerMark{Stats: st}
	}
	ev := func(seq uint64) event.Event { return event.Event{Seq: seq, T: int64(seq) * 1000} }
	var out []Measurement
	client := 0
	for _, n := range shares {
		r := newRecorder(n, 64, quit)
		r.setWindow(window{start: 5000, end: 15000, base: 1})
		var marksAt [marks]ClientMark
		for i := range n {
			id := client + i
			h := r.handler(i)
			c := r.counters(i)
			for seq := uint64(1); seq <= 20; seq++ {
				recv := time.Unix(0, int64(seq)*1000+int64(100*(id+1))+int64(seq*seq))
				switch {
				case id == 1 && seq == 7:
					h(clients.Batch{Events: []event.Event{ev(seq), ev(seq)}, Recv: recv})
				case id == 2 && seq == 9:
				case id == 3 && seq == 10:
					h(clients.Batch{Events: []event.Event{ev(11), ev(10)}, Recv: recv})
				case id == 3 && seq == 11:
				case id == 3 && seq == 12:
					h(clients.Batch{Gap: event.Gap{From: 12, To: 13}, Recv: recv})
				case id == 3 && seq == 13:
				case id == 4 && seq > 10:
				default:
					h(clients.Batch{Events: []event.Event{ev(seq)}, Recv: recv})
				}
				c.BytesDown.Add(66)
				c.Requests.Add(uint64(id % 2))
			}
		}
		client += n
		final := r.snapshot()
		for i := range marksAt {
			// Counts grow by mark; each load generator's CPU is its own.
			marksAt[i] = ClientMark{Wall: int64(i+1) * int64(time.Millisecond), Mono: time.Duration(i+1) * time.Millisecond, CPU: time.Duration(n*i) * time.Millisecond}
			marksAt[i].Counts = Counts{Down: final.Down * uint64(i), Up: uint64(n * i), Requests: final.Requests * uint64(i)}
		}
		m := Measurement{
			Scenario: s, Base: 1, Measured: true, SourceAddrs: 1,
			Publisher: servers.PublisherStats{Published: 20, FirstSeq: 1, LastSeq: 14},
			Server:    server,
			Connected: servers.Stats{TimeNs: 1},
			Load:      LoadGen{Clients: n, CPUs: n, Marks: marksAt, Final: final},
		}
		m.Load.Tallies, m.Load.Latencies = r.collect()
		// Client id starts at id ms (1000/s, as asked) and is subscribed
		// (id+1)×100 µs later.
		for i := range n {
			id := int64(client - n + i)
			m.Load.ConnectLatencies = append(m.Load.ConnectLatencies, (id+1)*100_000)
		}
		m.Load.Started = n
		m.Load.FirstStart, m.Load.LastStart = 1e9+int64(client-n)*1e6, 1e9+int64(client-1)*1e6
		out = append(out, m)
	}
	// Every part carries the whole scenario's server side and its own
	// share of the clients.
	for i := range out {
		out[i].Scenario.Clients = shares[i]
	}
	return out
}

// TestMergeHalves: two load generators with half the clients each, merged,
// give exactly the record of one that ran every client.
func TestMergeHalves(t *testing.T) {
	whole := splitRun(t, 6)[0]
	parts := splitRun(t, 2, 4)
	merged, err := Merge(parts...)
	if err != nil {
		t.Fatal(err)
	}
	want, wantHist := Compute(whole)
	got, gotHist := Compute(merged)
	if want.Expected != 60 || want.Delivered != 60-1-2-4 || want.Duplicates != 1 || want.OutOfOrder != 1 {
		t.Fatalf("whole run: expected %d delivered %d dup %d reorder %d; want 60, 53, 1, 1 (the fixture changed?)",
			want.Expected, want.Delivered, want.Duplicates, want.OutOfOrder)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("merged record differs from the whole run's:\n got %+v\nwant %+v", got, want)
	}
	if !reflect.DeepEqual(gotHist.Export().Counts, wantHist.Export().Counts) {
		t.Errorf("merged histogram differs from the whole run's")
	}
	if c := got.Conn; c.ConnectRate != 1000 || c.ConnectLatency == nil || c.ConnectLatency.Count != 6 ||
		c.ConnectLatency.Max < 599_000 || c.ConnectLatency.Min > 100_100 || !got.Checks["connect_rate"].OK {
		t.Errorf("connect rate %v, connect latency %+v, check %+v: want 1000/s and six latencies of 0.1..0.6 ms", c.ConnectRate, c.ConnectLatency, got.Checks["connect_rate"])
	}
	// Client 3's event 11 arrives before its scheduled time (a negative
	// latency): counted out of range, in the merge as in the whole run.
	if got.Latency.OutOfRange != 1 || got.Latency.Count+int64(got.Latency.OutOfRange) != int64(got.Delivered) {
		t.Errorf("histogram holds %d values and %d out of range, want one per delivery (%d) with 1 out of range",
			got.Latency.Count, got.Latency.OutOfRange, got.Delivered)
	}
}

func TestMergeRefusesOtherRuns(t *testing.T) {
	parts := splitRun(t, 1, 1)
	other := parts[1]
	other.Scenario.Payload++
	if _, err := Merge(parts[0], other); err == nil || !strings.Contains(err.Error(), "another scenario") {
		t.Errorf("merge of two scenarios: %v", err)
	}
	other = parts[1]
	other.Base++
	if _, err := Merge(parts[0], other); err == nil || !strings.Contains(err.Error(), "another run") {
		t.Errorf("merge of two runs: %v", err)
	}
	if _, err := Merge(); err == nil {
		t.Error("merge of nothing: no error")
	}
}

// TestComputeIsPure: the same measurement gives the same record twice.
func TestComputeIsPure(t *testing.T) {
	m := splitRun(t, 3)[0]
	a, _ := Compute(m)
	b, _ := Compute(m)
	if !reflect.DeepEqual(a, b) {
		t.Error("Compute gave two records for one measurement")
	}
}
