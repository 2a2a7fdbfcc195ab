package e2e

import (
	"fmt"
	"strconv"
	"testing"
	"time"

	"pushbench/servers"
	"pushbench/transport"
)

// wireCheck is one client against one server, with the quiescent points at
// which the bytes counted at the client's net.Conn and at the server's
// listener must agree exactly.
type wireCheck struct {
	ts *testServer
	f  *fleet
	c  *client
}

func startWireCheck(t *testing.T, name string) *wireCheck {
	t.Helper()
	// Hold: a long poll is held until the next event, never answered [].
	ts := startServer(t, servers.Config{Ring: 4096, WSQueue: 4096, Hold: time.Hour})
	f := startFleet(t, name, ts.url, 1)
	f.waitReady(t, ts)
	return &wireCheck{ts: ts, f: f, c: f.clients[0]}
}

// settle waits until nothing is in flight between client and server and
// checks that both ends have counted the same bytes in each direction. It
// returns the client's BytesDown.
//
// Either end's count may trail the other's for a moment: a writer counts
// after its write returns, by which time the peer may have read and counted
// the bytes. So settle first makes one end's count final for each direction
// and then waits for the other to arrive at exactly the same value; a
// difference that does not go away fails the test when the guard runs out.
// What makes a count final:
//   - server bytes in: the server has read the client's one request (a
//     stream is counted active, or a long poll is held), and a streaming
//     client writes nothing after it;
//   - server bytes out: the server counts a delivery after the write that
//     carries it, so once it has counted sent deliveries every byte it
//     wrote is counted (and before the first event: the client has read
//     the response headers, the only thing written);
//   - for a long poll held with as many requests seen as the client sent,
//     every earlier answer was written, counted and read in full before the
//     client sent the held one.
func (w *wireCheck) settle(t *testing.T, name string, sent uint64) uint64 {
	t.Helper()
	waitFor(t, fmt.Sprintf("the server to count %d deliveries", sent), func() bool {
		return w.ts.transportStats(name).EventsSent >= sent
	})
	if st := w.ts.transportStats(name); st.EventsSent != sent {
		t.Fatalf("server counted %d deliveries, want %d", st.EventsSent, sent)
	}
	if name == transport.LongPoll {
		waitFor(t, "the next long poll to be held", func() bool {
			st := w.ts.transportStats(name)
			return st.Requests == w.c.counters.Requests.Load() && st.Active == 1
		})
	}
	deadline := time.Now().Add(guard)
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for {
		ls := w.ts.Stats().Listener
		down, up := w.c.counters.BytesDown.Load(), w.c.counters.BytesUp.Load()
		if down == ls.BytesOut && up == ls.BytesIn {
			return down
		}
		if time.Now().After(deadline) {
			t.Fatalf("client counted %d bytes down and %d up; the server's listener %d out and %d in",
				down, up, ls.BytesOut, ls.BytesIn)
		}
		<-tick.C
	}
}

// TestWireBytesWebSocket checks that a WebSocket client reads exactly the
// payload plus the frame header per event (RFC 6455 §5.2, server frames
// unmasked: 2 bytes up to 125, 4 up to 65535), counted at the client's
// net.Conn over 1,000 events after the subscription, and that the server's
// listener counted the same bytes.
func TestWireBytesWebSocket(t *testing.T) {
	const n = 1000
	for _, tc := range []struct {
		payload  int
		perEvent uint64
	}{
		{100, 102},
		{125, 127},
		{126, 130},
		{300, 304},
	} {
		t.Run(fmt.Sprintf("payload=%d", tc.payload), func(t *testing.T) {
			w := startWireCheck(t, transport.WebSocket)
			before := w.settle(t, transport.WebSocket, 0)
			w.ts.publish(t, n, tc.payload, 4000)
			w.f.waitSeq(t, n)
			after := w.settle(t, transport.WebSocket, n)
			if got, want := after-before, n*tc.perEvent; got != want {
				t.Errorf("%d events of %d bytes: client read %d bytes (%.2f per event), want %d (%d per event)",
					n, tc.payload, got, float64(got)/n, want, tc.perEvent)
			}
			w.f.stop(t)
			w.f.expectExactlyOnce(t, n)
		})
	}
}

// sseWireBytes is what the SSE message for one event takes on the wire: the
// message "id: SEQ\ndata: EVENT\n\n" is P + 13 + digits(seq) bytes
// (protocol.md), sent as one HTTP/1.1 chunk: its length in hex, CRLF, the
// message, CRLF.
func sseWireBytes(payload int, seq uint64) uint64 {
	msg := payload + 13 + len(strconv.FormatUint(seq, 10))
	return uint64(len(strconv.FormatInt(int64(msg), 16)) + 2 + msg + 2)
}

// TestWireBytesSSE checks the SSE framing arithmetic exactly: over events
// 1..1,100 (seq crossing 1→2, 2→3 and 3→4 digits), the bytes the client
// reads after the subscription are the sum of sseWireBytes. Payload 240
// also crosses a chunk-size boundary: its messages grow from 255 (ff) to
// 256 (100) bytes at seq 100. The server's listener must count the same.
func TestWireBytesSSE(t *testing.T) {
	const n = 1100
	for _, payload := range []int{100, 240, 300} {
		t.Run(fmt.Sprintf("payload=%d", payload), func(t *testing.T) {
			w := startWireCheck(t, transport.SSE)
			before := w.settle(t, transport.SSE, 0)
			w.ts.publish(t, n, payload, 4000)
			w.f.waitSeq(t, n)
			after := w.settle(t, transport.SSE, n)
			var want uint64
			for seq := uint64(1); seq <= n; seq++ {
				want += sseWireBytes(payload, seq)
			}
			if got := after - before; got != want {
				t.Errorf("events 1..%d of %d bytes: client read %d bytes, want %d", n, payload, got, want)
			}
			w.f.stop(t)
			w.f.expectExactlyOnce(t, n)
		})
	}
}

// TestWireBytesLongPoll checks that a long-polling client and the server's
// listener count the same bytes in both directions, HTTP headers included,
// at every point where a poll is held, over a run of 1,000 events.
// (Short polling has no such quiescent point: its client polls on a
// clock.)
func TestWireBytesLongPoll(t *testing.T) {
	const n = 1000
	w := startWireCheck(t, transport.LongPoll)
	w.settle(t, transport.LongPoll, 0)
	w.ts.publish(t, n, 128, 4000)
	w.f.waitSeq(t, n)
	w.settle(t, transport.LongPoll, n)
	w.f.stop(t)
	w.f.expectExactlyOnce(t, n)
}

// tcpSwitch is the raw TCP transport's whole answer to its upgrade
// (protocol.md).
const tcpSwitch = "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: pushbench-tcp\r\n\r\n"

// TestWireBytesTCP checks the floor's arithmetic exactly: the client writes
// exactly the upgrade request and reads exactly the 101 answer, then P + 1
// bytes per event (the event and its "\n") over 1,000 events; the server's
// listener counts the same bytes in both directions.
func TestWireBytesTCP(t *testing.T) {
	const n = 1000
	for _, payload := range []int{100, 300} {
		t.Run(fmt.Sprintf("payload=%d", payload), func(t *testing.T) {
			w := startWireCheck(t, transport.TCP)
			before := w.settle(t, transport.TCP, 0)
			request := "GET /tcp?since=0 HTTP/1.1\r\nHost: " + w.ts.addr +
				"\r\nConnection: Upgrade\r\nUpgrade: pushbench-tcp\r\n\r\n"
			if up := w.c.counters.BytesUp.Load(); before != uint64(len(tcpSwitch)) || up != uint64(len(request)) {
				t.Errorf("upgrade: client read %d and wrote %d bytes, want %d (the 101) and %d (%q)",
					before, up, len(tcpSwitch), len(request), request)
			}
			w.ts.publish(t, n, payload, 4000)
			w.f.waitSeq(t, n)
			after := w.settle(t, transport.TCP, n)
			if got, want := after-before, uint64(n*(payload+1)); got != want {
				t.Errorf("%d events of %d bytes: client read %d bytes, want %d (P + 1 per event)", n, payload, got, want)
			}
			w.f.stop(t)
			w.f.expectExactlyOnce(t, n)
		})
	}
}
