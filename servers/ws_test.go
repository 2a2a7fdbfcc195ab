package servers

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"pushbench/transport"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// TestWSBytesPerEvent counts the bytes a client reads per event at its
// net.Conn: exactly payload + frame header (2, 4 or 10 bytes; server frames
// are not masked), one text frame per event.
func TestWSBytesPerEvent(t *testing.T) {
	for _, tt := range []struct{ payload, header int }{
		{100, 2},    // < 126: 7-bit length
		{200, 4},    // < 65536: 16-bit length
		{70000, 10}, // 64-bit length
	} {
		t.Run(fmt.Sprintf("payload=%d", tt.payload), func(t *testing.T) {
			const n = 5
			ts := startServer(t, Config{Ring: 64}, nil)
			conn, cc := dialWS(t, ts.addr, "/ws", nil)
			// Nothing was published, so the server has sent nothing
			// after the handshake yet.
			handshake := cc.in.Load()
			publish(t, ts.Hub(), n, tt.payload)
			for seq := uint64(1); seq <= n; seq++ {
				msg, err := readWS(conn)
				if err != nil || msg != eventBytes(t, seq, tt.payload) {
					t.Fatalf("seq %d: %d bytes (%v)", seq, len(msg), err)
				}
			}
			if got, want := cc.in.Load()-handshake, int64(n*(tt.payload+tt.header)); got != want {
				t.Fatalf("read %d bytes for %d events, want %d = n × (P + %d)", got, n, want, tt.header)
			}
			// The server counts a send after its write returns, which
			// may be after the client has read it.
			waitFor(t, "5 events counted", func() bool { return ts.tc(transport.WebSocket).eventsSent.Load() == n })
		})
	}
}

// TestWSResume checks since= against a ring of 8 after 20 events.
func TestWSResume(t *testing.T) {
	testResume(t, transport.WebSocket, func(ts *testServer, path string) func() (string, error) {
		conn, _ := dialWS(t, ts.addr, path, nil)
		return func() (string, error) { return readWS(conn) }
	})
}

// TestWSOversizeMessage sends a 10 MB message on one connection: that one
// is closed (1009, counted) and the others get every event.
func TestWSOversizeMessage(t *testing.T) {
	const p = 64
	ts := startServer(t, Config{Ring: 64}, nil)
	var good []*websocket.Conn
	for range 3 {
		c, _ := dialWS(t, ts.addr, "/ws", nil)
		good = append(good, c)
	}
	bad, _ := dialWS(t, ts.addr, "/ws", nil)
	_ = bad.SetWriteDeadline(time.Now().Add(ioTimeout))
	// The server rejects the frame from its header; this write may or may
	// not see the connection close before it ends.
	_ = bad.WriteMessage(websocket.BinaryMessage, make([]byte, 10<<20))
	_ = bad.SetReadDeadline(time.Now().Add(ioTimeout))
	if _, _, err := bad.ReadMessage(); err == nil {
		t.Fatal("oversized client still connected")
	} else if ce := (*websocket.CloseError)(nil); errors.As(err, &ce) && ce.Code != websocket.CloseMessageTooBig {
		t.Fatalf("closed with %d, want 1009", ce.Code)
	}
	waitFor(t, "the oversize close to be counted", func() bool { return ts.tc(transport.WebSocket).oversizeCloses.Load() == 1 })

	publish(t, ts.Hub(), 10, p)
	for i, c := range good {
		for seq := uint64(1); seq <= 10; seq++ {
			if got, err := readWS(c); err != nil || got != eventBytes(t, seq, p) {
				t.Fatalf("client %d seq %d: %q (%v)", i, seq, got, err)
			}
		}
	}
	waitFor(t, "the oversize handler to end", func() bool { return ts.tc(transport.WebSocket).active.Load() == 3 })
}

// TestWSSlowConsumer connects a WebSocket client that never reads next to
// two that do. Its queue fills, it is cut off and counted; the others never
// wait for it.
func TestWSSlowConsumer(t *testing.T) {
	const p = 1024
	ts := startServer(t, Config{Ring: 8192, WSQueue: 8, WriteTimeout: 300 * time.Millisecond}, smallSendBuffers)
	slow, _ := dialWS(t, ts.addr, "/ws", smallBufDialer())
	var good []*websocket.Conn
	for range 2 {
		c, _ := dialWS(t, ts.addr, "/ws", nil)
		good = append(good, c)
	}
	waitFor(t, "three connections", func() bool { return ts.wsT().rooms.peek(0).n.Load() == 3 })

	const max = 5000
	var seq uint64
	for seq < max {
		publish(t, ts.Hub(), 1, p)
		seq++
		for i, c := range good {
			got, err := readWS(c)
			if err != nil || seqOf(t, got) != seq {
				t.Fatalf("client %d: %q (%v), want seq %d", i, got, err, seq)
			}
		}
		if ts.tc(transport.WebSocket).slowDisconnects.Load() > 0 && ts.wsT().rooms.peek(0).n.Load() == 2 {
			break
		}
	}
	if st := ts.Stats().Transports[transport.WebSocket]; st.SlowDisconnects != 1 {
		t.Fatalf("after %d events: ws stats %+v, want one slow disconnect", seq, st)
	}
	// Reading the slow connection now ends with its close: 1008 if the
	// close frame got through before the write deadline, else 1006 (the
	// connection ended without one) or a reset.
	var err error
	for err == nil {
		_ = slow.SetReadDeadline(time.Now().Add(ioTimeout))
		_, _, err = slow.ReadMessage()
	}
	if ce := (*websocket.CloseError)(nil); errors.As(err, &ce) && ce.Code != websocket.ClosePolicyViolation && ce.Code != websocket.CloseAbnormalClosure {
		t.Fatalf("slow client closed with %d, want 1008 or 1006", ce.Code)
	} else if ne := net.Error(nil); errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("slow client still open: %v", err)
	}
	t.Logf("slow client cut after %d events: %v", seq, err)
}

// TestWSPreparedMessageNoAlloc checks that sending a prepared event to a
// connection — deadline, frame write, counters — does not allocate: the
// per-event cost is paid once by the dispatcher, not per subscriber.
func TestWSPreparedMessageNoAlloc(t *testing.T) {
	s, err := New(Config{Ring: 16})
	if err != nil {
		t.Fatal(err)
	}
	conns := make(chan *websocket.Conn, 1)
	up := websocket.Upgrader{}
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		conns <- c
	}))
	defer hs.Close()
	defer s.Shutdown(t.Context())
	client, _ := dialWS(t, strings.TrimPrefix(hs.URL, "http://"), "/", nil)
	server := <-conns
	defer server.Close()
	// The client drains the raw bytes: gorilla's NextReader allocates a
	// reader per message, which AllocsPerRun would count whenever the
	// scheduler lets the client run during the measurement (a loaded
	// machine).
	drained := make(chan struct{})
	go func() {
		defer close(drained)
		_, _ = io.Copy(io.Discard, client.NetConn())
	}()

	data := []byte(eventBytes(t, 1, 256))
	pm, err := websocket.NewPreparedMessage(websocket.TextMessage, data)
	if err != nil {
		t.Fatal(err)
	}
	m := &wsMsg{e: &Entry{Seq: 1, Data: data}, pm: pm}
	w := &wsConn{t: s.wsT(), conns: s.wsT().rooms.peek(0), room: s.rooms[0], conn: server, sub: &pushSub[*wsMsg]{}}
	allocs := testing.AllocsPerRun(200, func() {
		w.seq = 0
		if !w.send(m) {
			t.Fatal("send failed")
		}
	})
	if allocs != 0 {
		t.Fatalf("%.1f allocations per prepared send, want 0", allocs)
	}
	client.Close()
	<-drained
}
