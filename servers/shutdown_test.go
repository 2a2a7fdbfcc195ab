package servers

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"go.uber.org/goleak"

	"pushbench/transport"
)

// TestShutdownWithClients holds 100 long polls, 100 SSE streams, 100
// WebSocket and 100 raw TCP connections open, with the publisher running, and shuts down
// with a one-second deadline: Shutdown must return nil (not ctx's error),
// every client must see its request or stream end, and no goroutine may be
// left behind.
func TestShutdownWithClients(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	const n = 100
	ts := startServer(t, Config{Ring: 1024, Hold: time.Hour}, nil)
	// One event now, the next in an hour: the publisher is running but the
	// long polls stay held.
	if err := ts.StartPublisher(PublishConfig{Rate: 1.0 / 3600, Payload: 64}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the first event", func() bool { return ts.Hub().Head() == 1 })

	polls := make([]net.Conn, n)
	for i := range polls {
		c, err := net.Dial("tcp", ts.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := io.WriteString(c, "GET /longpoll?since=1 HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		polls[i] = c
	}
	streams := make([]*sseClient, n)
	for i := range streams {
		streams[i] = dialSSE(t, ts.addr, "/sse", nil)
	}
	sockets := make([]*websocket.Conn, n)
	for i := range sockets {
		sockets[i], _ = dialWS(t, ts.addr, "/ws", nil)
	}
	raws := make([]*tcpClient, n)
	for i := range raws {
		raws[i] = dialTCP(t, ts.addr, "/tcp", nil)
	}
	waitFor(t, "every client to be connected", func() bool {
		for _, name := range []string{transport.LongPoll, transport.SSE, transport.WebSocket, transport.TCP} {
			if ts.tc(name).active.Load() != n {
				return false
			}
		}
		return true
	})

	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	start := time.Now()
	if err := ts.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown with %d clients of each transport: %v", n, err)
	}
	t.Logf("Shutdown with %d clients of each transport took %v", n, time.Since(start)) // informational only
	// Already down; this checks that Serve returned nil.
	ts.shutdown(t, time.Second)
	if ts.Stats().Publisher.Running {
		t.Error("publisher still running after Shutdown")
	}

	for i, c := range polls {
		_ = c.SetReadDeadline(time.Now().Add(ioTimeout))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatalf("long poll %d: %v", i, err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable {
			t.Fatalf("long poll %d: status %d, want 503", i, resp.StatusCode)
		}
	}
	for i, s := range streams {
		_ = s.conn.SetReadDeadline(time.Now().Add(ioTimeout))
		if _, err := io.Copy(io.Discard, s.body); err != nil {
			t.Fatalf("SSE stream %d did not end cleanly: %v", i, err)
		}
	}
	for i, c := range sockets {
		_ = c.SetReadDeadline(time.Now().Add(ioTimeout))
		_, _, err := c.ReadMessage()
		var ce *websocket.CloseError
		if !errors.As(err, &ce) || ce.Code != websocket.CloseGoingAway {
			t.Fatalf("WebSocket %d: %v, want close 1001", i, err)
		}
	}
	for i, c := range raws {
		// Event 1 was published before the connection: nothing is
		// sent, and the stream ends cleanly.
		_ = c.conn.SetReadDeadline(time.Now().Add(ioTimeout))
		if rest, err := io.ReadAll(c.br); err != nil || len(rest) != 0 {
			t.Fatalf("raw TCP %d: %q, %v; want a clean end of stream", i, rest, err)
		}
	}
	st := ts.Stats()
	for name, tr := range st.Transports {
		if tr.Active != 0 || tr.SlowDisconnects != 0 {
			t.Errorf("%s after shutdown: %+v", name, tr)
		}
	}
	for _, c := range polls {
		c.Close()
	}
	for _, s := range streams {
		s.conn.Close()
	}
	for _, c := range sockets {
		c.Close()
	}
	for _, c := range raws {
		c.conn.Close()
	}
}

// TestShutdownIdle checks Shutdown of a server that never served, and that a
// second Shutdown is harmless.
func TestShutdownIdle(t *testing.T) {
	s, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := s.Shutdown(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.StartPublisher(PublishConfig{Rate: 1, Payload: 64}); err == nil {
		t.Fatal("publisher started after Shutdown")
	}
}
