package bench

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"pushbench/event"
	"pushbench/transport"
)

func TestRooms(t *testing.T) {
	s := DefaultScenario()
	s.Clients, s.Workload, s.Room = 25, WorkloadChat, 10
	if got := s.Rooms(); got != 3 {
		t.Errorf("rooms %d, want 3", got)
	}
	var rooms, sizes []int
	for i := range s.Clients {
		rooms = append(rooms, s.RoomOf(i))
	}
	for r := range s.Rooms() {
		sizes = append(sizes, s.RoomSize(r))
	}
	if rooms[9] != 0 || rooms[10] != 1 || rooms[24] != 2 || !slices.Equal(sizes, []int{10, 10, 5}) {
		t.Errorf("rooms %v, sizes %v", rooms, sizes)
	}
	s.Workload = WorkloadBroadcast
	if s.Rooms() != 1 || s.RoomOf(24) != 0 || s.RoomSize(0) != 25 {
		t.Errorf("broadcast: one room of every client")
	}
}

func TestWorkloadValidate(t *testing.T) {
	base := DefaultScenario()
	base.Transport = transport.WebSocket
	for _, tc := range []struct {
		name string
		edit func(s *Scenario)
		want string
	}{
		{"unknown workload", func(s *Scenario) { s.Workload = "chess" }, `workload "chess"`},
		{"room 0", func(s *Scenario) { s.Workload, s.Room = WorkloadChat, 0 }, "room 0"},
		{"send rate 0", func(s *Scenario) { s.Workload, s.SendRate = WorkloadChat, 0 }, "send rate 0"},
		{"send rate too high", func(s *Scenario) { s.Workload, s.SendRate = WorkloadChat, 5000 }, "send rate 5000"},
		{"chat message too small", func(s *Scenario) { s.Workload, s.Payload = WorkloadChat, 64 }, "payload 64: a chat message needs at least 105"},
		{"tick too high", func(s *Scenario) { s.Workload, s.Tick = WorkloadGame, 5000 }, "tick 5000"},
		{"input rate negative", func(s *Scenario) { s.Workload, s.InputRate = WorkloadGame, -1 }, "input rate -1"},
		{"snapshot too small", func(s *Scenario) { s.Workload, s.Payload = WorkloadGame, 256 }, "payload 256: a snapshot for a room of 10 clients needs at least 492 bytes"},
	} {
		s := base
		tc.edit(&s)
		err := s.WithDefaults().Validate()
		if !errors.Is(err, ErrScenario) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
	// The rate a chat's windows are computed with is every client's
	// messages together; a game's is its tick.
	s := base
	s.Workload, s.Clients, s.SendRate, s.Payload = WorkloadChat, 100, 0.5, 128
	if s = s.WithDefaults(); s.Rate != 50 || s.Validate() != nil {
		t.Errorf("chat rate %v (%v), want 50", s.Rate, s.Validate())
	}
	s.Workload, s.Tick, s.Payload = WorkloadGame, 30, 512
	if s = s.WithDefaults(); s.Rate != 30 || s.Validate() != nil {
		t.Errorf("game rate %v (%v), want 30", s.Rate, s.Validate())
	}
}

// fakeSender accepts every message but those listed, and records them.
type fakeSender struct {
	mu     sync.Mutex
	got    []event.Upstream
	refuse map[uint64]bool // message numbers to refuse
}

func (f *fakeSender) Send(_ context.Context, msg []byte) error {
	u, err := event.DecodeUpstream(msg)
	if err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.refuse[u.N] {
		return errors.New("refused")
	}
	f.got = append(f.got, u)
	return nil
}

// TestSenders: each client sends on its own constant schedule, its phase
// frac(i·φ) of one interval; the sends are counted per room in the window,
// failures apart, and acknowledgements hand back each input once.
func TestSenders(t *testing.T) {
	s := DefaultScenario()
	s.Clients, s.Workload, s.Room = 4, WorkloadChat, 2
	start := time.Now().Add(-time.Second) // every message is due at once
	ss := newSenders(s, 128, 10, start, start.Add(500*time.Millisecond))
	subs := []*fakeSender{{}, {refuse: map[uint64]bool{2: true}}, {}, {}}
	var us []upstreamSender
	for _, f := range subs {
		us = append(us, f)
	}
	ss.run(context.Background(), us)
	ss.wait()
	// Phases of 100 ms intervals: 0, 61.8, 23.6 and 85.4 ms.
	phase := []time.Duration{0, 61803398, 23606797, 85410196}
	for i, f := range subs {
		want := 5
		if i == 1 {
			want = 4
		}
		if len(f.got) != want {
			t.Fatalf("client %d: %d messages, want %d", i, len(f.got), want)
		}
		for k, u := range f.got {
			due := start.Add(phase[i] + time.Duration(u.N-1)*100*time.Millisecond)
			if u.From != uint64(i) || absDuration(time.Duration(u.T-due.UnixNano())) > time.Microsecond || (i != 1 && u.N != uint64(k+1)) {
				t.Errorf("client %d message %d: %+v, want t %d", i, k, u, due.UnixNano())
			}
		}
	}
	// The window [start+100ms, start+300ms) holds messages 2 and 3 of
	// every client (client 0's at 100 and 200 ms, client 3's at 185 and
	// 285 ms); client 1's message 2 failed.
	w0, w1 := start.Add(100*time.Millisecond).UnixNano(), start.Add(300*time.Millisecond).UnixNano()
	got := ss.collect(w0, w1)
	if !slices.Equal(got.InWindow, []uint64{3, 4}) || got.Sent != 7 || got.Failed != 1 || !strings.Contains(got.FirstErr, "refused") {
		t.Errorf("collect: %+v", got)
	}
	if acc := ss.accepted(); !slices.Equal(acc, []uint64{9, 10}) {
		t.Errorf("accepted per room %v, want [9 10]", acc)
	}
	// Acknowledging input 3, then 2 again, then 7 (more than were sent).
	log := ss.logs[0]
	if a := log.ack(3, nil); len(a) != 3 || a[0] != start.UnixNano() {
		t.Errorf("ack 3: %v", a)
	}
	if a := log.ack(2, nil); len(a) != 0 {
		t.Errorf("ack 2 after 3: %v", a)
	}
	if a := log.ack(7, nil); len(a) != 2 {
		t.Errorf("ack 7 of 5 sent: %v", a)
	}
}

func absDuration(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}

// TestChatDeliveries: every member of a room expects each of the room's
// messages scheduled in the window; the bits each client set count what
// arrived.
func TestChatDeliveries(t *testing.T) {
	m := Measurement{Scenario: DefaultScenario()}
	m.Scenario.Clients, m.Scenario.Workload, m.Scenario.Room = 5, WorkloadChat, 3
	m.Load.Sends = Sends{InWindow: []uint64{4, 6}, Sent: 10}
	// Room 0 (3 clients) expects 4 each, room 1 (2 clients) 6 each: 24.
	m.Load.Tallies = []Tally{
		{Bits: []uint64{0b1111}}, {Bits: []uint64{0b1011}}, {Bits: []uint64{0b1111}},
		{Bits: []uint64{0b111111}}, {Bits: []uint64{0b111111, 0}},
	}
	d := m.chatDeliveries(delivery{})
	if d.expected != 24 || d.delivered != 23 || d.lost != 1 || d.surplus != 0 || d.perClientMin != 3 || d.perClientMax != 6 {
		t.Errorf("expected %d delivered %d lost %d surplus %d per client %d..%d; want 24, 23, 1, 0, 3..6",
			d.expected, d.delivered, d.lost, d.surplus, d.perClientMin, d.perClientMax)
	}
	// One client's surplus does not hide another's loss: client 0 got a
	// fifth message its room never sent, client 1 is still one short.
	m.Load.Tallies[0].Bits = []uint64{0b11111}
	d = m.chatDeliveries(delivery{})
	if d.delivered != 24 || d.lost != 1 || d.surplus != 1 {
		t.Errorf("with a surplus: delivered %d lost %d surplus %d; want 24, 1, 1", d.delivered, d.lost, d.surplus)
	}
	if inWindowEvents(d) != 10 {
		t.Errorf("messages in the window: %d, want 10", inWindowEvents(d))
	}
}
