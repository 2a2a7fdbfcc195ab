package servers

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/gorilla/websocket"

	"pushbench/event"
	"pushbench/transport"
)

// TestRoomsIsolated: 10 rooms, each with a subscriber on every stream
// transport, two chat messages per room: every subscriber gets exactly its
// room's two, seq 1 and 2, and the polls read the room's hub.
func TestRoomsIsolated(t *testing.T) {
	const rooms = 10
	ts := startServer(t, Config{Rooms: rooms, Ring: 16}, nil)
	c := httpClient(t)
	start(t, c, ts, "workload=chat")
	type subs struct {
		sse *sseClient
		ws  *websocket.Conn
		tcp *tcpClient
	}
	all := make([]subs, rooms)
	for r := range all {
		q := fmt.Sprintf("?room=%d", r)
		all[r].sse = dialSSE(t, ts.addr, "/sse"+q, nil)
		all[r].ws, _ = dialWS(t, ts.addr, "/ws"+q, nil)
		all[r].tcp = dialTCP(t, ts.addr, "/tcp"+q, nil)
	}
	msgs := make([][][]byte, rooms)
	for j := range uint64(2) {
		for r := range rooms {
			m := upMsg(t, uint64(100*r)+j, 1, int64(r), 128)
			msgs[r] = append(msgs[r], m)
			if code, body := send(t, c, ts, fmt.Sprintf("?room=%d", r), m); code != http.StatusNoContent {
				t.Fatalf("room %d: %d %q", r, code, body)
			}
		}
	}
	for r, s := range all {
		for j, m := range msgs[r] {
			seq := uint64(j + 1)
			want := chatEvent(t, m, seq)
			if id, data, err := s.sse.next(); err != nil || id != seq || data != want {
				t.Fatalf("room %d sse: %d %q %v, want %q", r, id, data, err, want)
			}
			if got, err := readWS(s.ws); err != nil || got != want {
				t.Fatalf("room %d ws: %q %v, want %q", r, got, err, want)
			}
			if got, err := s.tcp.line(); err != nil || got != want {
				t.Fatalf("room %d tcp: %q %v, want %q", r, got, err, want)
			}
		}
		want := "[" + chatEvent(t, msgs[r][0], 1) + "," + chatEvent(t, msgs[r][1], 2) + "]"
		if got := poll(t, c, ts, fmt.Sprintf("/poll?room=%d", r)); got != want {
			t.Errorf("room %d poll: %s", r, got)
		}
	}
	st := ts.Stats()
	if st.Rooms != rooms || st.RoomHeadSum != 2*rooms || st.RoomHeadMin != 2 || st.RoomHeadMax != 2 {
		t.Errorf("stats: %d rooms, heads %v", st.Rooms, st.RoomHeads)
	}
	// A writer counts an event once its write has returned, which can be
	// after the client has read it: wait for the counts, bounded.
	for name, want := range map[string]uint64{transport.SSE: 2 * rooms, transport.WebSocket: 2 * rooms, transport.TCP: 2 * rooms} {
		waitFor(t, fmt.Sprintf("%s to count %d events sent", name, want), func() bool {
			return ts.Stats().Transports[name].EventsSent == want
		})
	}
}

// TestRoomResume: since= and Last-Event-ID are a room's sequence numbers:
// a resume in room 1 gets room 1's backlog, a gap notice for what has
// left room 1's ring.
func TestRoomResume(t *testing.T) {
	const p = 60
	ts := startServer(t, Config{Rooms: 2, Ring: 8}, nil)
	publish(t, ts.RoomHub(1), 20, p)
	publish(t, ts.Hub(), 2, p)
	ws, _ := dialWS(t, ts.addr, "/ws?room=1&since=15", nil)
	for seq := uint64(16); seq <= 20; seq++ {
		if got, err := readWS(ws); err != nil || got != eventBytes(t, seq, p) {
			t.Fatalf("seq %d: %q %v", seq, got, err)
		}
	}
	sc := dialSSE(t, ts.addr, "/sse?room=1", map[string]string{"Last-Event-ID": "5"})
	if id, data, err := sc.next(); err != nil || id != 12 || data != `{"gap":[6,12]}` {
		t.Fatalf("sse: %d %q %v", id, data, err)
	}
	c := httpClient(t)
	if got, want := poll(t, c, ts, "/poll?room=1&since=19"), "["+eventBytes(t, 20, p)+"]"; got != want {
		t.Errorf("poll: %s, want %s", got, want)
	}
	code, body, _ := do(t, c, http.MethodGet, ts.url+"/poll?since=3", nil)
	if code != http.StatusBadRequest || !strings.Contains(body, "since 3: since is ahead of the newest event (2)") {
		t.Errorf("room 0 has its own head: %d %q", code, body)
	}
}

// TestConfigRooms: Rooms' default and bounds, the ring's default under
// many rooms and the bound on all rooms' rings, the flood bound's.
func TestConfigRooms(t *testing.T) {
	cfg, err := Config{}.withDefaults()
	if err != nil || cfg.Rooms != 1 || cfg.Ring != DefaultRing || cfg.MaxSendRate != DefaultMaxSendRate || cfg.SendBurst != DefaultSendBurst {
		t.Errorf("defaults %+v, %v", cfg, err)
	}
	if cfg, err := (Config{Rooms: 10_000}).withDefaults(); err != nil || cfg.Ring != MaxRing/10_000 {
		t.Errorf("10,000 rooms: ring %d, %v; want %d", cfg.Ring, err, MaxRing/10_000)
	}
	for _, tt := range []struct {
		cfg    Config
		reason string
	}{
		{Config{Rooms: -1}, "rooms -1: must be between 1 and 100000"},
		{Config{Rooms: MaxRooms + 1}, "rooms 100001: must be between 1 and 100000"},
		{Config{Rooms: 2000, Ring: 16384}, "ring 16384 in each of 2000 rooms: above 16777216 events in all (at most 8388 per room)"},
		{Config{MaxSendRate: -1}, "max send rate -1: must be a positive number"},
		{Config{SendBurst: -1}, "send burst -1: must be at least 1"},
	} {
		s, err := New(tt.cfg)
		if err == nil {
			s.Shutdown(context.Background())
		}
		if err == nil || !strings.Contains(err.Error(), tt.reason) {
			t.Errorf("New(%+v) = %v, want %q", tt.cfg, err, tt.reason)
		}
	}
}

// TestStatsManyRooms: above MaxListedRooms /stats has no list of heads,
// only their sum, least and greatest; rooms that nobody uses cost no
// fan-out.
func TestStatsManyRooms(t *testing.T) {
	s, err := New(Config{Rooms: MaxListedRooms + 1})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Shutdown(context.Background())
	publish(t, s.RoomHub(MaxListedRooms), 3, 64)
	st := s.Stats()
	b, _ := json.Marshal(st)
	if st.Rooms != MaxListedRooms+1 || st.RoomHeads != nil || strings.Contains(string(b), "room_heads") ||
		st.RoomHeadSum != 3 || st.RoomHeadMin != 0 || st.RoomHeadMax != 3 {
		t.Errorf("rooms %d, heads %v, sum %d, min %d, max %d", st.Rooms, st.RoomHeads, st.RoomHeadSum, st.RoomHeadMin, st.RoomHeadMax)
	}
	if !strings.Contains(string(b), `"rooms":10001,"room_head_sum":3,"room_head_min":0,"room_head_max":3`) {
		t.Errorf("stats JSON: %s", b)
	}
	if s.wsT().rooms.peek(1) != nil || s.wsT().rooms.peek(0) == nil {
		t.Error("fan-out made for a room nobody subscribed to, or none for room 0")
	}
	if s.RoomHub(MaxListedRooms+1) != nil || s.RoomHub(-1) != nil {
		t.Error("RoomHub of a room the server does not have")
	}
}

// TestRoomHubGrows: a room's ring starts small and doubles up to K, and
// resume and gaps work across the growth.
func TestRoomHubGrows(t *testing.T) {
	h := newRoomHub(100)
	if len(h.ring) != roomRingStart || h.Cap() != 100 {
		t.Fatalf("new room hub: %d slots, cap %d", len(h.ring), h.Cap())
	}
	for n, slots := range map[int]int{15: 16, 16: 32, 40: 64, 64: 100, 300: 100} {
		h := newRoomHub(100)
		publish(t, h, n, event.MinSize)
		if len(h.ring) != slots {
			t.Errorf("after %d events: %d slots, want %d", n, len(h.ring), slots)
		}
		out, gap, _, err := h.Since(0, nil, 0)
		first := uint64(max(1, n-99))
		if err != nil || len(out) != min(n, 100) || out[0].Seq != first || out[len(out)-1].Seq != uint64(n) {
			t.Fatalf("after %d events: %d events from %d, %v", n, len(out), out[0].Seq, err)
		}
		for i, e := range out {
			if e.Seq != first+uint64(i) {
				t.Fatalf("after %d events: [%d] is seq %d", n, i, e.Seq)
			}
		}
		if n > 100 && gap != (event.Gap{From: 1, To: uint64(n - 100)}) {
			t.Errorf("after %d events: gap %+v", n, gap)
		}
	}
}
