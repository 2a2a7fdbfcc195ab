package servers

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"pushbench/transport"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestSSEFraming checks the bytes the server writes for each SSE event,
// exactly: the message is P + 13 + digits(seq) bytes ("id: N\n" "data: E\n"
// "\n"), it travels as one HTTP/1.1 chunk, adding len(hex(n)) + 4 bytes, and
// the listener's byte counts match what the client read and wrote.
func TestSSEFraming(t *testing.T) {
	const p, n = 100, 120 // seqs of 1, 2 and 3 digits
	ts := startServer(t, Config{Ring: 256}, nil)

	conn, err := net.Dial("tcp", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	cc := &countConn{Conn: conn}
	req := "GET /sse HTTP/1.1\r\nHost: x\r\n\r\n"
	if _, err := io.WriteString(cc, req); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(ioTimeout))
	br := bufio.NewReader(cc)
	// Headers: flushed once the subscription is in place.
	var chunked bool
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("headers: %v", err)
		}
		if strings.EqualFold(strings.TrimSpace(line), "Transfer-Encoding: chunked") {
			chunked = true
		}
		if line == "\r\n" {
			break
		}
	}
	if !chunked {
		t.Fatal("response is not chunked")
	}

	publish(t, ts.Hub(), n, p)
	var wire int // body bytes on the wire
	for seq := uint64(1); seq <= n; seq++ {
		sizeLine, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("seq %d: chunk size: %v", seq, err)
		}
		hex := strings.TrimSuffix(sizeLine, "\r\n")
		size, err := strconv.ParseUint(hex, 16, 32)
		if err != nil {
			t.Fatalf("seq %d: chunk size line %q", seq, sizeLine)
		}
		chunk := make([]byte, size+2)
		if _, err := io.ReadFull(br, chunk); err != nil {
			t.Fatalf("seq %d: chunk: %v", seq, err)
		}
		msg := string(chunk[:size])
		want := fmt.Sprintf("id: %d\ndata: %s\n\n", seq, eventBytes(t, seq, p))
		if msg != want || string(chunk[size:]) != "\r\n" {
			t.Fatalf("seq %d: chunk %q, want %q + CRLF", seq, chunk, want)
		}
		digits := len(strconv.FormatUint(seq, 10))
		if int(size) != p+13+digits {
			t.Fatalf("seq %d: %d bytes per message, want P + 13 + %d = %d", seq, size, digits, p+13+digits)
		}
		if got, want := len(sizeLine)+len(chunk), int(size)+len(hex)+4; got != want {
			t.Fatalf("seq %d: %d wire bytes, want n + len(hex(n)) + 4 = %d", seq, got, want)
		}
		wire += len(sizeLine) + len(chunk)
	}
	if want := n*(p+13+2+4) + 9*1 + 90*2 + 21*3; wire != want { // every size is 2 hex digits
		t.Fatalf("body %d bytes on the wire, want %d", wire, want)
	}

	// Shutdown ends the stream with the last chunk; after it the listener
	// has counted exactly what the client read and wrote.
	ts.shutdown(t, ioTimeout)
	rest, err := io.ReadAll(br)
	if err != nil || string(rest) != "0\r\n\r\n" {
		t.Fatalf("after shutdown: %q, %v; want the last chunk and EOF", rest, err)
	}
	l := ts.Stats().Listener
	if l.BytesOut != uint64(cc.in.Load()) || l.BytesIn != uint64(cc.out.Load()) || l.Accepted != 1 || l.Open != 0 {
		t.Fatalf("listener %+v; client read %d, wrote %d", l, cc.in.Load(), cc.out.Load())
	}
	if st := ts.Stats().Transports[transport.SSE]; st.EventsSent != n || st.Requests != 1 || st.Active != 0 {
		t.Fatalf("sse stats %+v", st)
	}
}

// TestSSEResume checks Last-Event-ID and since resume points against a ring
// of 8 after 20 events (the ring holds 13..20).
func TestSSEResume(t *testing.T) {
	const p = 60
	ts := startServer(t, Config{Ring: 8}, nil)
	publish(t, ts.Hub(), 20, p)
	type msg struct {
		id   uint64
		data string
	}
	ev := func(seq uint64) msg { return msg{seq, eventBytes(t, seq, p)} }
	tests := []struct {
		name string
		path string
		hdr  map[string]string
		want []msg // before event 21 (which every client then gets)
	}{
		{"Last-Event-ID in ring", "/sse", map[string]string{"Last-Event-ID": "15"}, []msg{ev(16), ev(17), ev(18), ev(19), ev(20)}},
		{"Last-Event-ID out of ring", "/sse", map[string]string{"Last-Event-ID": "5"},
			[]msg{{12, `{"gap":[6,12]}`}, ev(13), ev(14), ev(15), ev(16), ev(17), ev(18), ev(19), ev(20)}},
		{"header wins over since", "/sse?since=1", map[string]string{"Last-Event-ID": "19"}, []msg{ev(20)}},
		{"since", "/sse?since=18", nil, []msg{ev(19), ev(20)}},
		{"since=head", "/sse?since=20", nil, nil},
		{"from now", "/sse", nil, nil},
	}
	clients := make([]*sseClient, len(tests))
	for i, tt := range tests {
		clients[i] = dialSSE(t, ts.addr, tt.path, tt.hdr)
	}
	publish(t, ts.Hub(), 1, p)
	for i, tt := range tests {
		want := append(tt.want, ev(21))
		for _, w := range want {
			id, data, err := clients[i].next()
			if err != nil || id != w.id || data != w.data {
				t.Fatalf("%s: got id %d %q (%v), want id %d %q", tt.name, id, data, err, w.id, w.data)
			}
		}
	}
	if st := ts.Stats().Transports[transport.SSE]; st.Gaps != 1 || st.GapEvents != 7 {
		t.Fatalf("sse stats %+v", st)
	}
}

// TestSSESlowConsumer connects an SSE client that never reads next to three
// that do. r3labs feeds all of them from one goroutine, so the stalled one
// holds the others up until its write deadline cuts it off; then they go on
// and none of them misses an event.
func TestSSESlowConsumer(t *testing.T) {
	const p = 1024
	ts := startServer(t, Config{Ring: 8192, WriteTimeout: 300 * time.Millisecond}, smallSendBuffers)

	slow, err := smallBufDialer().Dial("tcp", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	if _, err := io.WriteString(slow, "GET /sse HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the slow client to subscribe", func() bool { return ts.tc(transport.SSE).active.Load() == 1 })

	const good = 3
	type got struct {
		seq uint64
		err error
	}
	var chans [good]chan got
	for i := range good {
		c := dialSSE(t, ts.addr, "/sse", nil)
		ch := make(chan got, 1)
		chans[i] = ch
		go func() {
			defer close(ch)
			for {
				id, data, err := c.next()
				if err == nil && seqOf(t, data) != id {
					err = fmt.Errorf("id %d carries event %q", id, data)
				}
				ch <- got{id, err}
				if err != nil {
					return
				}
			}
		}()
	}

	// Publish one event at a time and wait until every good client has it:
	// no client can fall a ring behind, and no sleep decides anything.
	const max = 5000
	var seq uint64
	for seq < max {
		publish(t, ts.Hub(), 1, p)
		seq++
		for i := range good {
			g := <-chans[i]
			if g.err != nil || g.seq != seq {
				t.Fatalf("client %d: got seq %d (%v), want %d", i, g.seq, g.err, seq)
			}
		}
		if ts.tc(transport.SSE).slowDisconnects.Load() > 0 && seq%16 == 0 {
			break
		}
	}
	st := ts.Stats().Transports[transport.SSE]
	if st.SlowDisconnects != 1 {
		t.Fatalf("after %d events: sse stats %+v, want one slow disconnect", seq, st)
	}
	// The server has closed the slow stream: reading it ends.
	_ = slow.SetReadDeadline(time.Now().Add(ioTimeout))
	if _, err := io.Copy(io.Discard, slow); err != nil && !strings.Contains(err.Error(), "reset") {
		t.Fatalf("slow client: %v", err)
	}
	waitFor(t, "the slow handler to end", func() bool { return ts.tc(transport.SSE).active.Load() == good })
	t.Logf("slow client cut after %d events; stalls %d", seq, st.Stalls)
}
