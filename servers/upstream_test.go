package servers

// Client-originated traffic: chat messages on every upstream path, their
// exact bytes both ways, the POST /send answer byte for byte, bad input
// and the flood bound.

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"pushbench/event"
	"pushbench/transport"
	"pushbench/webhttp"
)

// upMsg encodes an upstream message of size bytes.
func upMsg(t *testing.T, from, n uint64, tNs int64, size int) []byte {
	t.Helper()
	b, err := event.AppendUpstream(nil, event.Upstream{From: from, N: n, T: tNs}, size)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// chatEvent is the event a chat message msg becomes as seq of its room.
func chatEvent(t *testing.T, msg []byte, seq uint64) string {
	t.Helper()
	u, err := event.DecodeUpstream(msg)
	if err != nil {
		t.Fatal(err)
	}
	b, err := event.AppendTagged(nil, event.Event{Seq: seq, T: u.T}, len(msg), event.AppendMessageTag(nil, u))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// send POSTs body to /send with query q and returns the status and body.
func send(t *testing.T, c *http.Client, ts *testServer, q string, body []byte) (int, string) {
	t.Helper()
	resp, err := c.Post(ts.url+"/send"+q, "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatalf("POST /send%s: %v", q, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// start POSTs /control/start?q and fails the test unless it is 200.
func start(t *testing.T, c *http.Client, ts *testServer, q string) string {
	t.Helper()
	code, body, _ := do(t, c, http.MethodPost, ts.url+"/control/start?"+q, nil)
	if code != http.StatusOK {
		t.Fatalf("/control/start?%s: %d %s", q, code, body)
	}
	return body
}

// poll GETs path and returns its body, failing unless it is 200.
func poll(t *testing.T, c *http.Client, ts *testServer, path string) string {
	t.Helper()
	code, body, _ := do(t, c, http.MethodGet, ts.url+path, nil)
	if code != http.StatusOK {
		t.Fatalf("GET %s: %d %s", path, code, body)
	}
	return body
}

// writeWS sends one text message.
func writeWS(t *testing.T, c *websocket.Conn, msg []byte) {
	t.Helper()
	_ = c.SetWriteDeadline(time.Now().Add(ioTimeout))
	if err := c.WriteMessage(websocket.TextMessage, msg); err != nil {
		t.Fatalf("write ws: %v", err)
	}
}

// writeLine sends one raw TCP line.
func (c *tcpClient) writeLine(t *testing.T, msg []byte) {
	t.Helper()
	_ = c.conn.SetWriteDeadline(time.Now().Add(ioTimeout))
	if _, err := c.conn.Write(append(append([]byte(nil), msg...), '\n')); err != nil {
		t.Fatalf("write line: %v", err)
	}
}

// TestChatEveryPath sends one chat message to room 1 on each upstream
// path — POST /send, a WebSocket frame, a raw TCP line — and expects each
// to arrive as exactly its tagged event, seq 1, 2, 3 of room 1, on every
// transport subscribed to room 1, the senders included, and nothing of
// them in room 0.
func TestChatEveryPath(t *testing.T) {
	const size = 100
	ts := startServer(t, Config{Rooms: 2, Ring: 64}, nil)
	c := httpClient(t)
	start(t, c, ts, "workload=chat")

	sse1 := dialSSE(t, ts.addr, "/sse?room=1", nil)
	ws1, _ := dialWS(t, ts.addr, "/ws?room=1", nil)
	tcp1 := dialTCP(t, ts.addr, "/tcp?room=1", nil)
	sse0 := dialSSE(t, ts.addr, "/sse", nil)
	ws0, _ := dialWS(t, ts.addr, "/ws?room=0", nil)
	tcp0 := dialTCP(t, ts.addr, "/tcp?room=0", nil)

	// The form of protocol.md, byte for byte.
	msgs := [][]byte{
		upMsg(t, 7, 1, 1764081000000000000, size),
		upMsg(t, 8, 1, 1764081000000000001, size),
		upMsg(t, 9, 1, 1764081000000000002, size),
	}
	want := `{"seq":1,"t":1764081000000000000,"pad":"f7n1;` + strings.Repeat("x", 53) + `"}`
	if got := chatEvent(t, msgs[0], 1); got != want {
		t.Fatalf("chat event %s, want %s", got, want)
	}
	expect := func(seq uint64) {
		t.Helper()
		want := chatEvent(t, msgs[seq-1], seq)
		if id, data, err := sse1.next(); err != nil || id != seq || data != want {
			t.Fatalf("sse room 1: id %d %q %v, want %d %q", id, data, err, seq, want)
		}
		if got, err := readWS(ws1); err != nil || got != want {
			t.Fatalf("ws room 1: %q %v, want %q", got, err, want)
		}
		if got, err := tcp1.line(); err != nil || got != want {
			t.Fatalf("tcp room 1: %q %v, want %q", got, err, want)
		}
	}
	if code, body := send(t, c, ts, "?room=1", msgs[0]); code != http.StatusNoContent || body != "" {
		t.Fatalf("POST /send: %d %q", code, body)
	}
	expect(1)
	writeWS(t, ws1, msgs[1]) // the sender gets its own copy too
	expect(2)
	tcp1.writeLine(t, msgs[2])
	expect(3)

	all := "[" + chatEvent(t, msgs[0], 1) + "," + chatEvent(t, msgs[1], 2) + "," + chatEvent(t, msgs[2], 3) + "]"
	if got := poll(t, c, ts, "/poll?room=1"); got != all {
		t.Errorf("poll room 1: %s, want %s", got, all)
	}
	if got, want := poll(t, c, ts, "/longpoll?room=1&since=2"), "["+chatEvent(t, msgs[2], 3)+"]"; got != want {
		t.Errorf("long poll room 1: %s, want %s", got, want)
	}
	if got := poll(t, c, ts, "/poll"); got != "[]" {
		t.Errorf("poll room 0: %s, want []", got)
	}
	// Room 0's first message is its own seq 1: nothing of room 1 came
	// before it.
	m0 := upMsg(t, 1, 1, 5, size)
	if code, body := send(t, c, ts, "", m0); code != http.StatusNoContent {
		t.Fatalf("POST /send room 0: %d %q", code, body)
	}
	want0 := chatEvent(t, m0, 1)
	if id, data, err := sse0.next(); err != nil || id != 1 || data != want0 {
		t.Errorf("sse room 0: %d %q %v", id, data, err)
	}
	if got, err := readWS(ws0); err != nil || got != want0 {
		t.Errorf("ws room 0: %q %v", got, err)
	}
	if got, err := tcp0.line(); err != nil || got != want0 {
		t.Errorf("tcp room 0: %q %v", got, err)
	}

	st := ts.Stats()
	if st.Rooms != 2 || len(st.RoomHeads) != 2 || st.RoomHeads[0] != 1 || st.RoomHeads[1] != 3 || st.Head != 1 ||
		st.RoomHeadSum != 4 || st.RoomHeadMin != 1 || st.RoomHeadMax != 3 {
		t.Errorf("rooms %d, heads %v (sum %d, min %d, max %d), head %d", st.Rooms, st.RoomHeads, st.RoomHeadSum, st.RoomHeadMin, st.RoomHeadMax, st.Head)
	}
	for name, want := range map[string]uint64{"send": 2, transport.WebSocket: 1, transport.TCP: 1} {
		got := st.Send
		if name != "send" {
			got = st.Transports[name]
		}
		if got.Upstream != want || got.UpstreamBytes != want*size || got.UpstreamBad != 0 || got.UpstreamFlood != 0 || got.UpstreamRefused != 0 {
			t.Errorf("%s: %+v, want %d messages of %d bytes", name, got, want, size)
		}
	}
	if st.Send.Requests != 2 || st.Send.BadRequests != 0 {
		t.Errorf("send: %+v", st.Send)
	}
	if code, body, _ := do(t, c, http.MethodPost, ts.url+"/control/stop", nil); code != 200 || !strings.Contains(body, `"published":4`) || !strings.Contains(body, `"Workload":"chat"`) {
		t.Errorf("stop: %d %s", code, body)
	}
}

// TestChatTCPEarlyLine: a line the client writes with its upgrade request,
// before the 101, is taken as the first thing it sends.
func TestChatTCPEarlyLine(t *testing.T) {
	ts := startServer(t, Config{Ring: 16}, nil)
	start(t, httpClient(t), ts, "workload=chat")
	conn, err := net.DialTimeout("tcp", ts.addr, ioTimeout)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	msg := upMsg(t, 3, 1, 42, 128)
	if _, err := io.WriteString(conn, tcpRequest(ts.addr, "/tcp")+string(msg)+"\n"); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(ioTimeout))
	br := bufio.NewReader(conn)
	answer := make([]byte, len(tcpSwitch))
	if _, err := io.ReadFull(br, answer); err != nil || string(answer) != tcpSwitch {
		t.Fatalf("answer %q, %v", answer, err)
	}
	if line, err := br.ReadString('\n'); err != nil || line != chatEvent(t, msg, 1)+"\n" {
		t.Fatalf("line %q, %v", line, err)
	}
}

// TestUpstreamBytes counts what one chat message costs the server's socket
// upstream (the listener's bytes in): a WebSocket client frame of P bytes
// is masked, so its header is 2 + 4 bytes for P ≤ 125, 4 + 4 for P ≤
// 65535 and 10 + 4 above; a raw TCP line is P + 1. (The client's write
// buffer holds the biggest message: gorilla's default, 4 KiB, would send
// a bigger one as several frames, each with its own header.)
func TestUpstreamBytes(t *testing.T) {
	ts := startServer(t, Config{Ring: 64}, nil)
	start(t, httpClient(t), ts, "workload=chat")
	d := websocket.Dialer{HandshakeTimeout: ioTimeout, WriteBufferSize: 80 << 10}
	ws, resp, err := d.Dial("ws://"+ts.addr+"/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	defer ws.Close()
	tcp := dialTCP(t, ts.addr, "/tcp", nil)
	var seq uint64
	for _, tt := range []struct {
		p, ws int
	}{{100, 106}, {125, 131}, {126, 134}, {1000, 1008}, {65535, 65543}, {70000, 70014}} {
		for _, path := range []string{"ws", "tcp"} {
			msg := upMsg(t, 1, seq+1, 77, tt.p)
			want := uint64(tt.ws)
			tc := ts.tc(transport.WebSocket)
			if path == "tcp" {
				want, tc = uint64(tt.p+1), ts.tc(transport.TCP)
			}
			taken := tc.upstream.Load()
			before := ts.listener.bytesIn.Load()
			if path == "ws" {
				writeWS(t, ws, msg)
			} else {
				tcp.writeLine(t, msg)
			}
			// The server has read the whole message once it has taken
			// it, and nothing else was sent.
			waitFor(t, "the message to be taken", func() bool { return tc.upstream.Load() == taken+1 })
			if got := ts.listener.bytesIn.Load() - before; got != want {
				t.Errorf("%s, P=%d: %d bytes in, want %d", path, tt.p, got, want)
			}
			seq++
			// Both get every message, in order.
			if got, err := readWS(ws); err != nil || got != chatEvent(t, msg, seq) {
				t.Fatalf("ws echo of seq %d: %d bytes, %v", seq, len(got), err)
			}
			if got, err := tcp.line(); err != nil || got != chatEvent(t, msg, seq) {
				t.Fatalf("tcp echo of seq %d: %d bytes, %v", seq, len(got), err)
			}
		}
	}
}

// TestSendAnswerBytes: a POST /send answer on HTTP/1.1 is exactly the
// status line, Date and the profile's fields: 64 bytes minimal (TLS or
// not), 286 with the deployment profile, 350 with it over TLS (HSTS). Two
// messages go on one keep-alive connection. Over HTTP/2 it is 204 too.
func TestSendAnswerBytes(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		profile string
		tlsOn   bool
		want    int
	}{
		{webhttp.ResponseMinimal, false, 64},
		{webhttp.ResponseMinimal, true, 64},
		{webhttp.ResponseDeployment, false, 286},
		{webhttp.ResponseDeployment, true, 350},
	} {
		ts := startWeb(t, Config{Response: tt.profile}, tt.tlsOn)
		start(t, h1Client(t, tt.tlsOn), ts, "workload=chat")
		c := dialWeb(t, ts)
		br := bufio.NewReader(c)
		for n := uint64(1); n <= 2; n++ {
			msg := upMsg(t, 1, n, 1, 128)
			req := fmt.Sprintf("POST /send HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s", len(msg), msg)
			if _, err := io.WriteString(c, req); err != nil {
				t.Fatal(err)
			}
			head := readHead(t, br)
			h := headerOf(t, head)
			fields := []webhttp.Field{{Name: "Date", Value: h.Get("Date")}}
			if tt.profile == webhttp.ResponseDeployment {
				fields = append(fields, webhttp.Field{Name: "Connection", Value: "keep-alive"})
				fields = append(fields, webhttp.Options{ResponseHeaders: tt.profile, TLS: tt.tlsOn}.ResponseFields()...)
			}
			want := len("HTTP/1.1 204 No Content\r\n") + webhttp.FieldBytes(fields) + len("\r\n")
			if !strings.HasPrefix(head, "HTTP/1.1 204 No Content\r\n") || len(head) != want || want != tt.want {
				t.Errorf("%s, tls %v: answer %d bytes, want %d from the fields and %d:\n%s", tt.profile, tt.tlsOn, len(head), want, tt.want, head)
			}
			if len(h) != len(fields) {
				t.Errorf("%s: fields %v, want %d", tt.profile, h, len(fields))
			}
			for _, f := range fields {
				if f.Name != "X-Request-Id" && h.Get(f.Name) != f.Value {
					t.Errorf("%s: %s %q, want %q", tt.profile, f.Name, h.Get(f.Name), f.Value)
				}
			}
		}
		if got := ts.Stats().Send; got.Upstream != 2 || got.Requests != 2 {
			t.Errorf("send stats %+v", got)
		}
		h2, _ := h2Client(t, tt.tlsOn, nil)
		resp, err := h2.Post(ts.url+"/send", "application/json", bytes.NewReader(upMsg(t, 1, 3, 1, 128)))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNoContent || resp.ProtoMajor != 2 {
			t.Errorf("tls %v: h2 POST /send: %s %s", tt.tlsOn, resp.Proto, resp.Status)
		}
		if got := ts.Stats().Send; got.Upstream != 3 || got.HTTP2Requests != 1 {
			t.Errorf("send stats after h2 %+v", got)
		}
	}
}

// unknownLength hides a reader's length: the client sends it chunked.
type unknownLength struct{ io.Reader }

// TestSendBadInput: every way a POST /send can be wrong gets its status
// and a one-line reason, and is counted.
func TestSendBadInput(t *testing.T) {
	ts := startServer(t, Config{Rooms: 2, Ring: 16}, nil)
	c := httpClient(t)
	msg := upMsg(t, 1, 1, 1, 128)
	check := func(what string, code int, body string, wantCode int, reason string) {
		t.Helper()
		if code != wantCode || !strings.Contains(body, reason) || strings.Count(body, "\n") != 1 {
			t.Errorf("%s: %d %q, want %d with %q", what, code, body, wantCode, reason)
		}
	}
	code, body := send(t, c, ts, "", msg)
	check("no workload", code, body, http.StatusConflict, "/send: no chat or game running")
	code, body, _ = do(t, c, http.MethodGet, ts.url+"/send", nil)
	check("GET", code, body, http.StatusMethodNotAllowed, "method GET not allowed (want POST)")
	start(t, c, ts, "workload=chat")
	code, body = send(t, c, ts, "?room=2", msg)
	check("unknown room", code, body, http.StatusNotFound, "/send: room 2: no such room (the server has 2 rooms, 0 to 1)")
	code, body = send(t, c, ts, "?room=one", msg)
	check("bad room", code, body, http.StatusBadRequest, `room "one" is not a room number`)
	code, body = send(t, c, ts, "", []byte("hello"))
	check("malformed", code, body, http.StatusBadRequest, `expected {"from":`)
	code, body = send(t, c, ts, "", nil)
	check("empty", code, body, http.StatusBadRequest, "malformed")
	code, body = send(t, c, ts, "", []byte(`{"from":1,"n":1,"t":5}`))
	check("too small for its event", code, body, http.StatusBadRequest, "a chat message of 22 bytes cannot be delivered")
	big := upMsg(t, 1, 2, 1, event.MaxSize)
	code, body = send(t, c, ts, "", append(big, ' '))
	check("oversized", code, body, http.StatusRequestEntityTooLarge, "a message of 1048577 bytes: a message is at most 1048576 bytes")
	resp, err := c.Post(ts.url+"/send", "application/json", unknownLength{bytes.NewReader(append(big, ' '))})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	check("oversized chunked", resp.StatusCode, string(b), http.StatusRequestEntityTooLarge, "a message is at most 1048576 bytes")
	if code, body = send(t, c, ts, "", big); code != http.StatusNoContent {
		t.Errorf("a message of event.MaxSize: %d %q", code, body)
	}
	st := ts.Stats().Send
	if st.Requests != 10 || st.BadRequests != 9 || st.Upstream != 1 || st.UpstreamBad != 5 || st.UpstreamRefused != 1 || st.UpstreamFlood != 0 {
		t.Errorf("send stats %+v", st)
	}
}

// TestFlood: a connection over its send rate gets 429 (POST), close 1008
// (WebSocket) or its connection closed (raw TCP), counted; another
// connection has its own bucket.
func TestFlood(t *testing.T) {
	// Practically no refill: the burst is all a connection has.
	ts := startServer(t, Config{Ring: 64, MaxSendRate: 1e-9, SendBurst: 2}, nil)
	c := httpClient(t)
	start(t, c, ts, "workload=chat")
	var n uint64
	next := func() []byte { n++; return upMsg(t, 1, n, 1, 128) }

	conn := dialWeb(t, ts)
	br := bufio.NewReader(conn)
	post := func(conn net.Conn, br *bufio.Reader) (int, string) {
		t.Helper()
		msg := next()
		if _, err := fmt.Fprintf(conn, "POST /send HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s", len(msg), msg); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp.StatusCode, string(b)
	}
	for i := range 2 {
		if code, body := post(conn, br); code != http.StatusNoContent {
			t.Fatalf("message %d of the burst: %d %q", i+1, code, body)
		}
	}
	if code, body := post(conn, br); code != http.StatusTooManyRequests || body != "/send: sending too fast: over 1e-09 messages/s (burst 2) on this connection\n" {
		t.Fatalf("over the burst: %d %q", code, body)
	}
	other := dialWeb(t, ts)
	if code, body := post(other, bufio.NewReader(other)); code != http.StatusNoContent {
		t.Fatalf("another connection: %d %q", code, body)
	}

	ws, _ := dialWS(t, ts.addr, "/ws", nil)
	for i := range uint64(2) {
		writeWS(t, ws, next())
		waitFor(t, "the message to be taken", func() bool { return ts.tc(transport.WebSocket).upstream.Load() == i+1 })
	}
	writeWS(t, ws, next())
	if code, text := wsClosed(t, ws); code != websocket.ClosePolicyViolation || text != "sending too fast" {
		t.Errorf("ws flood: close %d %q, want 1008 sending too fast", code, text)
	}

	tcp := dialTCP(t, ts.addr, "/tcp", nil)
	for range 2 {
		tcp.writeLine(t, next())
	}
	tcp.writeLine(t, next())
	tcpClosed(t, tcp)

	st := ts.Stats()
	if got := st.Send; got.UpstreamFlood != 1 || got.Upstream != 3 || got.BadRequests != 1 {
		t.Errorf("send %+v", got)
	}
	for _, name := range []string{transport.WebSocket, transport.TCP} {
		if got := st.Transports[name]; got.UpstreamFlood != 1 || got.Upstream != 2 {
			t.Errorf("%s %+v", name, got)
		}
	}
}

// wsClosed reads until the connection ends and returns the close code and
// text it got (0 if it ended without a close frame).
func wsClosed(t *testing.T, c *websocket.Conn) (int, string) {
	t.Helper()
	for {
		_ = c.SetReadDeadline(time.Now().Add(ioTimeout))
		_, _, err := c.ReadMessage()
		if err == nil {
			continue
		}
		if ce := (*websocket.CloseError)(nil); errors.As(err, &ce) {
			return ce.Code, ce.Text
		}
		if ne := net.Error(nil); errors.As(err, &ne) && ne.Timeout() {
			t.Fatalf("still open: %v", err)
		}
		return 0, err.Error()
	}
}

// tcpClosed reads until the server has closed the connection.
func tcpClosed(t *testing.T, c *tcpClient) {
	t.Helper()
	_ = c.conn.SetReadDeadline(time.Now().Add(ioTimeout))
	_, err := io.Copy(io.Discard, c.br)
	if ne := net.Error(nil); errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("still open: %v", err)
	}
}

// TestUpstreamBadMessages: a malformed WebSocket message closes with 1007
// and its reason, a binary one with 1003, an oversized one with 1009; a
// malformed raw TCP line closes the connection; all counted. Without a
// chat or game, the same messages are dropped and the connections stay.
func TestUpstreamBadMessages(t *testing.T) {
	ts := startServer(t, Config{Ring: 64}, nil)
	c := httpClient(t)

	// No chat or game: dropped, counted as refused.
	ws, _ := dialWS(t, ts.addr, "/ws", nil)
	tcp := dialTCP(t, ts.addr, "/tcp", nil)
	writeWS(t, ws, []byte("hello"))
	tcp.writeLine(t, []byte("hello"))
	waitFor(t, "both dropped", func() bool {
		return ts.tc(transport.WebSocket).upstreamRefused.Load() == 1 && ts.tc(transport.TCP).upstreamRefused.Load() == 1
	})

	start(t, c, ts, "workload=chat")
	// The same connections now take messages.
	msg := upMsg(t, 1, 1, 1, 128)
	writeWS(t, ws, msg)
	if got, err := readWS(ws); err != nil || got != chatEvent(t, msg, 1) {
		t.Fatalf("ws: %q %v", got, err)
	}
	if got, err := tcp.line(); err != nil || got != chatEvent(t, msg, 1) {
		t.Fatalf("tcp: %q %v", got, err)
	}

	writeWS(t, ws, []byte(`{"from":1,"n":0,"t":5}`))
	if code, text := wsClosed(t, ws); code != websocket.CloseInvalidFramePayloadData || !strings.Contains(text, "bad n") {
		t.Errorf("malformed: close %d %q, want 1007 with the reason", code, text)
	}
	bin, _ := dialWS(t, ts.addr, "/ws", nil)
	_ = bin.WriteMessage(websocket.BinaryMessage, msg)
	if code, text := wsClosed(t, bin); code != websocket.CloseUnsupportedData || text != "upstream messages are text, not binary" {
		t.Errorf("binary: close %d %q, want 1003", code, text)
	}
	big, _ := dialWS(t, ts.addr, "/ws", nil)
	_ = big.SetWriteDeadline(time.Now().Add(ioTimeout))
	_ = big.WriteMessage(websocket.TextMessage, make([]byte, event.MaxSize+1))
	// 1009, or the connection reset under the unread rest of the message.
	if code, _ := wsClosed(t, big); code != websocket.CloseMessageTooBig && code != 0 {
		t.Errorf("oversized: close %d, want 1009", code)
	}
	tcp.writeLine(t, []byte("hello"))
	tcpClosed(t, tcp)
	long := dialTCP(t, ts.addr, "/tcp", nil)
	_ = long.conn.SetWriteDeadline(time.Now().Add(ioTimeout))
	_, _ = long.conn.Write(bytes.Repeat([]byte{'x'}, event.MaxSize+1)) // no end of line
	tcpClosed(t, long)

	waitFor(t, "every handler to end", func() bool {
		return ts.tc(transport.WebSocket).active.Load() == 0 && ts.tc(transport.TCP).active.Load() == 0
	})
	st := ts.Stats()
	if got := st.Transports[transport.WebSocket]; got.UpstreamBad != 3 || got.OversizeCloses != 1 || got.Upstream != 1 || got.UpstreamRefused != 1 {
		t.Errorf("ws %+v", got)
	}
	if got := st.Transports[transport.TCP]; got.UpstreamBad != 2 || got.Upstream != 0 || got.UpstreamRefused != 1 {
		t.Errorf("tcp %+v", got)
	}
}

// TestCloseReason: a close frame's reason is cut to 123 bytes on a UTF-8
// boundary.
func TestCloseReason(t *testing.T) {
	if got := closeReason("short"); got != "short" {
		t.Errorf("%q", got)
	}
	long := strings.Repeat("a", 122) + "é"
	if got := closeReason(long); got != strings.Repeat("a", 122) {
		t.Errorf("%q", got)
	}
}
