package servers

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"pushbench/event"
	"pushbench/transport"
)

// snapshot is the game snapshot seq of payload bytes at t with acks.
func snapshot(t *testing.T, seq uint64, tNs int64, payload int, acks string) string {
	t.Helper()
	b, err := event.AppendTagged(nil, event.Event{Seq: seq, T: tNs}, payload, []byte(acks))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// manualTicks makes p's run wait for a value on the returned channel
// instead of each due time: a test releases the ticks one by one.
func manualTicks(p *Publisher) chan<- struct{} {
	release := make(chan struct{})
	p.clock = func(due time.Time, stop <-chan struct{}) (time.Time, bool) {
		select {
		case <-release:
			return due, true
		case <-stop:
			return time.Time{}, false
		}
	}
	return release
}

// TestGameTicks drives a game's ticks by hand: every tick publishes one
// snapshot per room, t the tick's due time, whose acknowledgements are
// exactly the inputs applied before it (the highest n per client, sorted
// by client id), on every transport; inputs are never fanned out; a
// client beyond the room size is refused; the publisher counts ticks.
func TestGameTicks(t *testing.T) {
	const payload = 200
	ts := startServer(t, Config{Rooms: 2, Ring: 64}, nil)
	release := manualTicks(ts.Publisher())
	c := httpClient(t)
	ws0, _ := dialWS(t, ts.addr, "/ws", nil)
	sse1 := dialSSE(t, ts.addr, "/sse?room=1", nil)
	tcp1 := dialTCP(t, ts.addr, "/tcp?room=1", nil)

	var ps PublisherStats
	if err := json.Unmarshal([]byte(start(t, c, ts, "workload=game&rate=10&room=2&payload=200")), &ps); err != nil {
		t.Fatal(err)
	}
	if !ps.Running || ps.Config.Workload != WorkloadGame || ps.Config.Room != 2 || ps.Config.Payload != payload {
		t.Fatalf("start: %+v", ps)
	}
	due := func(k int) int64 { return ps.Started.Add(time.Duration(k) * 100 * time.Millisecond).UnixNano() }
	input := func(from, n uint64) []byte { return upMsg(t, from, n, 1, event.UpstreamMinSize) }
	expect := func(seq uint64, acks0, acks1 string) {
		t.Helper()
		s0, s1 := snapshot(t, seq, due(int(seq-1)), payload, acks0), snapshot(t, seq, due(int(seq-1)), payload, acks1)
		if got, err := readWS(ws0); err != nil || got != s0 {
			t.Fatalf("ws room 0: %q %v, want %q", got, err, s0)
		}
		if id, data, err := sse1.next(); err != nil || id != seq || data != s1 {
			t.Fatalf("sse room 1: %d %q %v, want %q", id, data, err, s1)
		}
		if got, err := tcp1.line(); err != nil || got != s1 {
			t.Fatalf("tcp room 1: %q %v, want %q", got, err, s1)
		}
	}

	if code, body := send(t, c, ts, "", input(2, 5)); code != http.StatusNoContent {
		t.Fatalf("input: %d %q", code, body)
	}
	writeWS(t, ws0, input(1, 1))
	waitFor(t, "the ws input to be applied", func() bool { return ts.tc(transport.WebSocket).upstream.Load() == 1 })
	release <- struct{}{}
	expect(1, "a1:1;a2:5;", "")

	for _, in := range [][]byte{input(1, 3), input(1, 2)} { // 2 < 3: 3 stays
		if code, body := send(t, c, ts, "?room=0", in); code != http.StatusNoContent {
			t.Fatalf("input: %d %q", code, body)
		}
	}
	tcp1.writeLine(t, input(9, 1))
	waitFor(t, "the tcp input to be applied", func() bool { return ts.tc(transport.TCP).upstream.Load() == 1 })
	code, body := send(t, c, ts, "", input(3, 1))
	if code != http.StatusBadRequest || !strings.Contains(body, "room full: room 0 already has the inputs of 2 clients (room=2 at /control/start)") {
		t.Errorf("a third client in a room of 2: %d %q", code, body)
	}
	if st := ts.Stats(); len(st.RoomHeads) != 2 || st.RoomHeads[0] != 1 || st.RoomHeads[1] != 1 {
		t.Errorf("inputs were fanned out: heads %v", st.RoomHeads)
	}
	release <- struct{}{}
	expect(2, "a1:3;a2:5;", "a9:1;")

	want := "[" + snapshot(t, 1, due(0), payload, "") + "," + snapshot(t, 2, due(1), payload, "a9:1;") + "]"
	if got := poll(t, c, ts, "/poll?room=1"); got != want {
		t.Errorf("poll room 1: %s, want %s", got, want)
	}
	code, body, _ = do(t, c, http.MethodPost, ts.url+"/control/stop", nil)
	if err := json.Unmarshal([]byte(body), &ps); code != 200 || err != nil || ps.Running || ps.Published != 2 || ps.FirstSeq != 1 || ps.LastSeq != 2 || ps.LagHistogram == "" {
		t.Errorf("stop: %d %+v %v", code, ps, err)
	}
	if code, body := send(t, c, ts, "", input(1, 4)); code != http.StatusConflict {
		t.Errorf("input after the game: %d %q", code, body)
	}
	st := ts.Stats()
	if st.Send.Upstream != 3 || st.Send.UpstreamBad != 1 || st.Send.UpstreamRefused != 1 || st.Transports[transport.WebSocket].Upstream != 1 {
		t.Errorf("stats: send %+v, ws %+v", st.Send, st.Transports[transport.WebSocket])
	}
}

// TestGameRestartsAcks: a new game starts with no input applied, and the
// room sequences go on.
func TestGameRestartsAcks(t *testing.T) {
	ts := startServer(t, Config{Ring: 16}, nil)
	release := manualTicks(ts.Publisher())
	c := httpClient(t)
	ws, _ := dialWS(t, ts.addr, "/ws", nil)
	for run, acks := range []string{"a4:1;", ""} {
		var ps PublisherStats
		if err := json.Unmarshal([]byte(start(t, c, ts, "workload=game&rate=1&room=1&payload=120")), &ps); err != nil {
			t.Fatal(err)
		}
		if run == 0 {
			if code, body := send(t, c, ts, "", upMsg(t, 4, 1, 1, 100)); code != http.StatusNoContent {
				t.Fatalf("input: %d %q", code, body)
			}
		}
		release <- struct{}{}
		if got, err := readWS(ws); err != nil || got != snapshot(t, uint64(run+1), ps.Started.UnixNano(), 120, acks) {
			t.Fatalf("run %d: %q %v", run, got, err)
		}
		do(t, c, http.MethodPost, ts.url+"/control/stop", nil)
	}
}

// TestGameTickAllocs: at the tick, a game allocates nothing but the next
// wake channel of each room's hub: the snapshots go into the arrays made
// before the due time, the acknowledgements into a reused buffer.
func TestGameTickAllocs(t *testing.T) {
	rooms := []*room{{id: 0, hub: NewHub(1024)}, {id: 1, hub: NewHub(1024)}, {id: 2, hub: NewHub(1024)}}
	for i, r := range rooms {
		for from := range uint64(i + 1) {
			r.applyInput(from, 7, 3)
		}
	}
	g := &gameSource{rooms: rooms, payload: event.SnapshotMinSize(3)}
	g.prepare(time.Time{})
	due := time.Now()
	allocs := testing.AllocsPerRun(100, func() { g.publish(due, due) })
	if allocs != float64(len(rooms)) {
		t.Errorf("%.1f allocations per tick of %d rooms, want %d (one wake channel per hub)", allocs, len(rooms), len(rooms))
	}
	// The last tick's (the arrays are reused here, not in a run).
	out, _, _, _ := rooms[2].hub.Since(100, nil, 1)
	if want := snapshot(t, 101, due.UnixNano(), g.payload, "a0:7;a1:7;a2:7;"); string(out[0].Data) != want {
		t.Errorf("snapshot %s, want %s", out[0].Data, want)
	}
}

// TestStartWorkloads: /control/start's workload parameters.
func TestStartWorkloads(t *testing.T) {
	ts := startServer(t, Config{Rooms: 2, Ring: 16}, nil)
	c := httpClient(t)
	for _, tt := range []struct {
		query, reason string
	}{
		{"workload=fancy&rate=1", `workload "fancy": want broadcast, chat or game`},
		{"workload=game&payload=200&room=1", "rate is required (ticks per second)"},
		{"workload=game&rate=1&payload=200", "room 0: a game needs the clients per room, 1 to 24385 (room=N)"},
		{"workload=game&rate=1&payload=200&room=x", `room "x" is not a whole number of clients per room`},
		{"workload=game&rate=1&room=2&payload=147", "payload 147: a snapshot for a room of 2 clients needs at least 148 bytes"},
		{"workload=game&rate=600000&room=1&payload=200", "rate 600000: 600000 ticks/s in 2 rooms is above 1000000 snapshots/s"},
		{"workload=chat&rate=x", `rate "x" is not a number`},
	} {
		code, body, _ := do(t, c, http.MethodPost, ts.url+"/control/start?"+tt.query, nil)
		if code != http.StatusBadRequest || !strings.Contains(body, tt.reason) {
			t.Errorf("%s: %d %q, want 400 with %q", tt.query, code, body, tt.reason)
		}
	}
	big, err := New(Config{Rooms: 300, Ring: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer big.Shutdown(context.Background())
	if err := big.StartPublisher(PublishConfig{Workload: WorkloadGame, Rate: 1, Room: 1, Payload: event.MaxSize}); err == nil ||
		err.Error() != "payload 1048576: a tick's snapshots in 300 rooms would take 314572800 bytes, above 268435456" {
		t.Errorf("a game of 300 MB per tick: %v", err)
	}

	// A chat needs nothing and uses none of the publisher's parameters:
	// it runs until stopped.
	body := start(t, c, ts, "workload=chat&rate=5&events=1&duration=1ns")
	if !strings.Contains(body, `"running":true`) || !strings.Contains(body, `"Workload":"chat"`) {
		t.Errorf("chat: %s", body)
	}
	if code, body, _ := do(t, c, http.MethodPost, ts.url+"/control/start?workload=game&rate=1&room=1&payload=200", nil); code != http.StatusConflict {
		t.Errorf("a game during a chat: %d %s", code, body)
	}
	if code, _ := send(t, c, ts, "?room=1", upMsg(t, 1, 1, 1, 128)); code != http.StatusNoContent {
		t.Errorf("chat message: %d", code)
	}
	code, body, _ := do(t, c, http.MethodPost, ts.url+"/control/stop", nil)
	if code != 200 || !strings.Contains(body, `"running":false`) || !strings.Contains(body, `"published":1`) {
		t.Errorf("stop: %d %s", code, body)
	}
	// Broadcast stays what it was, in room 0.
	body = start(t, c, ts, "workload=broadcast&rate=100000&events=3&payload=64")
	if !strings.Contains(body, `"Workload":"broadcast"`) {
		t.Errorf("broadcast: %s", body)
	}
	<-ts.Publisher().Done()
	if st := ts.Stats(); st.Head != 3 || st.RoomHeads[1] != 1 || st.Publisher.Published != 3 {
		t.Errorf("after the broadcast: head %d, rooms %v, published %d", st.Head, st.RoomHeads, st.Publisher.Published)
	}
}
