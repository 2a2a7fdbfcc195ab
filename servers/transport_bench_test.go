package servers

// Micro-benchmarks of the server's per-delivery write paths, without a
// network: the bytes go to sinks (a net.Conn and an http.ResponseWriter that
// discard what they are given), so ns/op and allocs/op are the server's own.
//
//	go test -run '^$' -bench 'Write|Send|Poll' -benchmem ./servers/
//
// The fan-out benchmarks (BenchmarkWSWrite, BenchmarkSSEWrite) run the real
// handlers, dispatcher and pump for N connections and show whether the cost
// per event grows with N in allocations (it should not) or only in time.

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/r3labs/sse/v2"

	"pushbench/event"
	"pushbench/transport"
)

// tally counts writes across many sinks and signals done when the count
// reaches the armed target. Arm it only while no write is in flight.
type tally struct {
	n      atomic.Int64
	target atomic.Int64
	done   chan struct{}
}

func newTally() *tally { return &tally{done: make(chan struct{}, 1)} }

// arm sets the target to k more counts than now.
func (t *tally) arm(k int) { t.target.Store(t.n.Load() + int64(k)) }

func (t *tally) add() {
	if t.n.Add(1) == t.target.Load() {
		select {
		case t.done <- struct{}{}:
		default:
		}
	}
}

// wait waits for the armed target, failing the benchmark after
// benchOpTimeout.
func (t *tally) wait(b *testing.B, timer *time.Timer, what string) {
	b.Helper()
	timer.Reset(benchOpTimeout)
	select {
	case <-t.done:
	case <-timer.C:
		b.Fatalf("%s: %d of %d writes after %v", what, t.n.Load(), t.target.Load(), benchOpTimeout)
	}
}

// sinkConn is a net.Conn that discards what is written to it (counting the
// writes) and whose reads block until it is closed: a WebSocket client that
// reads instantly and never sends anything.
type sinkConn struct {
	writes *tally
	closed chan struct{}
	once   sync.Once
}

func newSinkConn(writes *tally) *sinkConn {
	return &sinkConn{writes: writes, closed: make(chan struct{})}
}

func (c *sinkConn) Read([]byte) (int, error) {
	<-c.closed
	return 0, net.ErrClosed
}

func (c *sinkConn) Write(p []byte) (int, error) {
	select {
	case <-c.closed:
		return 0, net.ErrClosed
	default:
	}
	if c.writes != nil {
		c.writes.add()
	}
	return len(p), nil
}

func (c *sinkConn) Close() error {
	c.once.Do(func() { close(c.closed) })
	return nil
}

var sinkAddr = &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1}

func (c *sinkConn) LocalAddr() net.Addr              { return sinkAddr }
func (c *sinkConn) RemoteAddr() net.Addr             { return sinkAddr }
func (c *sinkConn) SetDeadline(time.Time) error      { return nil }
func (c *sinkConn) SetReadDeadline(time.Time) error  { return nil }
func (c *sinkConn) SetWriteDeadline(time.Time) error { return nil }

// hijackSink is the http.ResponseWriter of a WebSocket upgrade: Hijack hands
// gorilla the sinkConn.
type hijackSink struct {
	h    http.Header
	conn *sinkConn
}

func (w *hijackSink) Header() http.Header         { return w.h }
func (w *hijackSink) Write(p []byte) (int, error) { return len(p), nil }
func (w *hijackSink) WriteHeader(int)             {}
func (w *hijackSink) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	return w.conn, bufio.NewReadWriter(bufio.NewReader(w.conn), bufio.NewWriter(w.conn)), nil
}

// sinkResponse is an http.ResponseWriter that discards the body, counting
// writes and flushes. Like net/http's response it supports write deadlines
// (http.ResponseController would otherwise build an error per call).
type sinkResponse struct {
	h       http.Header
	writes  *tally
	flushes *tally
	bytes   int64
}

func (w *sinkResponse) Header() http.Header { return w.h }
func (w *sinkResponse) WriteHeader(int)     {}
func (w *sinkResponse) Write(p []byte) (int, error) {
	w.bytes += int64(len(p))
	if w.writes != nil {
		w.writes.add()
	}
	return len(p), nil
}

func (w *sinkResponse) Flush() {
	if w.flushes != nil {
		w.flushes.add()
	}
}
func (w *sinkResponse) SetWriteDeadline(time.Time) error { return nil }

// wsUpgradeRequest returns a valid WebSocket upgrade request for path.
func wsUpgradeRequest(path string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, path, nil)
	r.Header.Set("Connection", "Upgrade")
	r.Header.Set("Upgrade", "websocket")
	r.Header.Set("Sec-WebSocket-Version", "13")
	r.Header.Set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
	return r
}

// newBenchServer returns a server whose Shutdown runs at cleanup.
func newBenchServer(b *testing.B, cfg Config) *Server {
	b.Helper()
	s, err := New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), benchOpTimeout)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			b.Errorf("shutdown: %v", err)
		}
	})
	return s
}

// benchPublisher publishes events into a hub as Publisher.run does: encode
// into a reused buffer, copy into the Entry's own Data.
type benchPublisher struct {
	h       *Hub
	payload int
	pad     event.Pad
	buf     []byte
}

func (p *benchPublisher) publish(b *testing.B) {
	now := time.Now()
	seq := p.h.Head() + 1
	var err error
	if p.buf, err = event.AppendPad(p.buf[:0], event.Event{Seq: seq, T: now.UnixNano()}, p.payload, p.pad); err != nil {
		b.Fatal(err)
	}
	data := make([]byte, len(p.buf))
	copy(data, p.buf)
	if err := p.h.Publish(&Entry{Seq: seq, T: now.UnixNano(), Published: now.UnixNano(), Data: data}); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkWSWrite is the whole server-side WebSocket delivery of one event
// to N connections: hub publish, the dispatcher framing it once
// (NewPreparedMessage) and offering it to every connection's queue, and N
// writer goroutines writing the prepared frame (WritePreparedMessage) to a
// sink. One op ends when all N frames are written (closed loop).
//
// allocs/op does not grow with N: per event it is the publisher's Entry and
// Data, the hub's next wake channel, the dispatcher's wsMsg and the
// PreparedMessage (whose framing allocates a throw-away 4 KiB write buffer;
// BenchmarkNewPreparedMessage). A connection's own path — queue receive,
// deadline, frame write — allocates nothing (BenchmarkWSSend).
func BenchmarkWSWrite(b *testing.B) {
	for _, n := range []int{1, 100, 1000} {
		b.Run(fmt.Sprintf("conns=%d/payload=256", n), func(b *testing.B) {
			benchFanout(b, transport.WebSocket, n, 256)
		})
	}
}

// BenchmarkSSEWrite is the whole server-side SSE delivery of one event to N
// streams: hub publish, the pump handing it to r3labs/sse (TryPublish), the
// library's stream goroutine sending it to every subscriber's channel, and N
// handler goroutines writing it through sseWriter to a sink. One op ends
// when all N are written (closed loop).
//
// Unlike WebSocket, allocs/op grows with N: the library formats every
// message per subscriber with fmt.Fprintf(w, "id: %s\n", ev.ID) and
// fmt.Fprintf(w, "data: %s\n", ev.Data), and each []byte passed as an
// interface escapes to the heap — 2 allocations per subscriber per event
// (BenchmarkSSESend/framing=r3labs). Per event on top: Entry, Data, wake
// channel, and the pump's *sse.Event with its ID.
func BenchmarkSSEWrite(b *testing.B) {
	for _, n := range []int{1, 100, 1000} {
		b.Run(fmt.Sprintf("conns=%d/payload=256", n), func(b *testing.B) {
			benchFanout(b, transport.SSE, n, 256)
		})
	}
}

func benchFanout(b *testing.B, name string, conns, payload int) {
	s := newBenchServer(b, Config{Ring: 1024, WSQueue: 64})
	writes, ready := newTally(), newTally()
	var wg sync.WaitGroup
	// After Shutdown (a cleanup registered earlier runs later): every
	// handler has returned once Shutdown has.
	b.Cleanup(wg.Wait)
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), benchOpTimeout)
		defer cancel()
		_ = s.Shutdown(ctx)
	}()

	timer := time.NewTimer(benchOpTimeout)
	defer timer.Stop()
	// ready counts the first write of each connection (the 101 answer)
	// or the first flush of each stream (the headers, written once
	// r3labs has registered the subscriber).
	ready.arm(conns)
	if name == transport.WebSocket {
		writes.arm(conns)
	}
	for range conns {
		switch name {
		case transport.WebSocket:
			conn := newSinkConn(writes)
			w := &hijackSink{h: http.Header{}, conn: conn}
			r := wsUpgradeRequest("/ws")
			wg.Go(func() { s.transportOf(transport.WebSocket).handle(w, r) })
		case transport.SSE:
			w := &sinkResponse{h: http.Header{}, writes: writes, flushes: ready}
			r := httptest.NewRequest(http.MethodGet, "/sse", nil)
			wg.Go(func() { s.transportOf(transport.SSE).handle(w, r) })
		}
	}
	if name == transport.WebSocket {
		writes.wait(b, timer, "upgrades")
	} else {
		ready.wait(b, timer, "subscriptions")
	}

	pub := &benchPublisher{h: s.Hub(), payload: payload}
	deliver := func() {
		writes.arm(conns)
		pub.publish(b)
		writes.wait(b, timer, fmt.Sprintf("event %d", s.Hub().Head()))
	}
	// Warm up until every WebSocket connection is registered with the
	// dispatcher (it registers after the 101 answer; until then events
	// reach it from the ring), bounded in events.
	for i := 0; i < 3 || (name == transport.WebSocket && s.wsT().rooms.peek(0).n.Load() < int64(conns)); i++ {
		if i == 1000 {
			b.Fatalf("%d of %d connections registered after %d events", s.wsT().rooms.peek(0).n.Load(), conns, i)
		}
		deliver()
	}

	b.ReportAllocs()
	b.SetBytes(int64(payload * conns))
	for b.Loop() {
		deliver()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(conns), "ns/conn")
}

// BenchmarkWSSend is one connection's share of a WebSocket delivery: the
// writer's send of an already prepared frame — write deadline, frame write
// to a sink, counters. It allocates nothing: the frame is built once per
// event by the dispatcher and only copied to the socket here.
func BenchmarkWSSend(b *testing.B) {
	for _, p := range []int{256, 4096} {
		b.Run(fmt.Sprintf("payload=%d", p), func(b *testing.B) {
			s := newBenchServer(b, Config{Ring: 16})
			conn, err := s.wsT().upgrader.Upgrade(&hijackSink{h: http.Header{}, conn: newSinkConn(nil)}, wsUpgradeRequest("/ws"), nil)
			if err != nil {
				b.Fatal(err)
			}
			defer conn.Close()
			data, err := event.Encode(event.Event{Seq: 1, T: time.Now().UnixNano()}, p)
			if err != nil {
				b.Fatal(err)
			}
			pm, err := websocket.NewPreparedMessage(websocket.TextMessage, data)
			if err != nil {
				b.Fatal(err)
			}
			m := &wsMsg{e: &Entry{Seq: 1, Data: data}, pm: pm}
			w := &wsConn{t: s.wsT(), conns: s.wsT().rooms.peek(0), room: s.rooms[0], conn: conn, sub: &pushSub[*wsMsg]{slow: make(chan struct{})}}
			b.ReportAllocs()
			b.SetBytes(int64(p))
			for b.Loop() {
				w.seq = 0
				if !w.send(m) {
					b.Fatal("send failed")
				}
			}
		})
	}
}

// BenchmarkSSESend is one stream's share of an SSE delivery: one event
// written into sseWriter and flushed to a sink.
//
//   - framing=r3labs writes it exactly as r3labs/sse v2.10.0's handler does
//     (http.go: three fmt calls, then Flush): the live path of every event,
//     2 allocations per subscriber.
//   - framing=append frames it with appendSSE into a reused buffer, as
//     sseWriter does for a backlog: what the live path would cost without
//     the library's fmt framing (0 allocations).
func BenchmarkSSESend(b *testing.B) {
	for _, framing := range []string{"r3labs", "append"} {
		for _, p := range []int{256, 4096} {
			b.Run(fmt.Sprintf("framing=%s/payload=%d", framing, p), func(b *testing.B) {
				s := newBenchServer(b, Config{Ring: 16})
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				rw := &sinkResponse{h: http.Header{}}
				sw := &sseWriter{s: s, w: rw, rc: http.NewResponseController(rw), ctx: ctx, cancel: cancel, tc: s.tc(transport.SSE), started: true}
				data, err := event.Encode(event.Event{Seq: 1, T: time.Now().UnixNano()}, p)
				if err != nil {
					b.Fatal(err)
				}
				ev := &sse.Event{ID: []byte("1"), Data: data}
				b.ReportAllocs()
				b.SetBytes(int64(p))
				for b.Loop() {
					sw.last = 0
					switch framing {
					case "r3labs":
						fmt.Fprintf(sw, "id: %s\n", ev.ID)
						fmt.Fprintf(sw, "data: %s\n", ev.Data)
						fmt.Fprint(sw, "\n")
						sw.Flush()
					case "append":
						sw.out.b = appendSSE(sw.out.b[:0], 1, data)
						sw.write(sw.out.b)
						sw.last = 1
					}
					if sw.last != 1 || sw.dead {
						b.Fatal("event not written")
					}
				}
			})
		}
	}
}

// BenchmarkPollEncode is the polling response encoder: a JSON array of
// events (each copied from the ring entry's shared bytes into a pooled
// body), the headers and one write under the write deadline.
//
// Its allocations are per response, not per event: the three header values
// (Header.Set allocates a []string each) and Content-Length's string.
//
// With compress=on the body is gzip-compressed at compressLevel with a
// pooled writer, on text-padded events (event.PadText: 'x' padding would
// compress to nothing at no cost).
func BenchmarkPollEncode(b *testing.B) {
	for _, compress := range []bool{false, true} {
		for _, n := range []int{1, 10, 100} {
			name := fmt.Sprintf("events=%d/payload=256", n)
			if compress {
				name += "/compress=on"
			}
			b.Run(name, func(b *testing.B) {
				s := newBenchServer(b, Config{Ring: 1024, Compress: compress})
				pub := &benchPublisher{h: s.Hub(), payload: 256}
				if compress {
					pub.pad = event.PadText
				}
				for range n {
					pub.publish(b)
				}
				out, _, _, err := s.Hub().Since(0, nil, 0)
				if err != nil {
					b.Fatal(err)
				}
				rw := &sinkResponse{h: http.Header{}}
				r := httptest.NewRequest(http.MethodGet, "/poll", nil)
				if compress {
					r.Header.Set("Accept-Encoding", "gzip")
				}
				// Once first: it sizes the body and warms the body pool.
				s.writeBatch(rw, r, s.tc(transport.ShortPoll), out, event.Gap{})
				b.SetBytes(rw.bytes)
				b.ReportAllocs()
				for b.Loop() {
					s.writeBatch(rw, r, s.tc(transport.ShortPoll), out, event.Gap{})
				}
			})
		}
	}
}

// BenchmarkPollHandler is a whole poll request on the server without the
// network: the handler's checks, the strict query parse, the ring snapshot
// and the encoder, answering one event. Short and long polls take the same
// path when an event is waiting (the long poll then never holds).
func BenchmarkPollHandler(b *testing.B) {
	for _, tr := range []string{transport.ShortPoll, transport.LongPoll} {
		b.Run(fmt.Sprintf("transport=%s/events=1/payload=256", tr), func(b *testing.B) {
			s := newBenchServer(b, Config{Ring: 1024})
			pub := &benchPublisher{h: s.Hub(), payload: 256}
			for range 2 {
				pub.publish(b)
			}
			handler, path := s.transportOf(transport.ShortPoll).handle, "/poll?since=1"
			if tr == transport.LongPoll {
				handler, path = s.transportOf(transport.LongPoll).handle, "/longpoll?since=1"
			}
			r := httptest.NewRequest(http.MethodGet, path, nil)
			rw := &sinkResponse{h: http.Header{}}
			b.ReportAllocs()
			for b.Loop() {
				handler(rw, r)
			}
			if rw.bytes == 0 {
				b.Fatal("no answer written")
			}
		})
	}
}

// BenchmarkWSPrepare is the dispatcher's per-event framing as the first
// connection that sends the event sees it: NewPreparedMessage, then
// WritePreparedMessage to a sink.
//
// gorilla/websocket v1.5.3 caches prepared frames by (server, compression,
// compression level). NewPreparedMessage frames the event under level 0,
// but every connection is created with level 1 (defaultCompressionLevel,
// even with compression off), so the first WritePreparedMessage of each
// event frames it a second time, with a second throw-away 4 KiB write
// buffer. conn-level=0 calls SetCompressionLevel(0) on the connection,
// which makes the keys match and the second framing disappear.
func BenchmarkWSPrepare(b *testing.B) {
	for _, level := range []string{"default", "0"} {
		b.Run(fmt.Sprintf("conn-level=%s/payload=256", level), func(b *testing.B) {
			s := newBenchServer(b, Config{Ring: 16})
			conn, err := s.wsT().upgrader.Upgrade(&hijackSink{h: http.Header{}, conn: newSinkConn(nil)}, wsUpgradeRequest("/ws"), nil)
			if err != nil {
				b.Fatal(err)
			}
			defer conn.Close()
			if level == "0" {
				if err := conn.SetCompressionLevel(0); err != nil {
					b.Fatal(err)
				}
			}
			data, err := event.Encode(event.Event{Seq: 1, T: time.Now().UnixNano()}, 256)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				pm, err := websocket.NewPreparedMessage(websocket.TextMessage, data)
				if err != nil {
					b.Fatal(err)
				}
				if err := conn.WritePreparedMessage(pm); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
