package servers

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"go.uber.org/goleak"

	"pushbench/event"
	"pushbench/transport"
)

// ioTimeout bounds every client read and wait in these tests. It is only a
// guard against hangs, generous because the test machine is shared; no
// test asserts how long anything takes.
const ioTimeout = 30 * time.Second

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// testServer is a Server served on a loopback listener.
type testServer struct {
	*Server
	addr   string // host:port
	url    string // http://host:port
	served chan error
	down   bool
}

// startServer serves a new Server on 127.0.0.1:0. wrap, if not nil, wraps
// the raw listener (for socket options). Cleanup shuts it down and fails the
// test if that does not finish.
func startServer(t *testing.T, cfg Config, wrap func(net.Listener) net.Listener) *testServer {
	t.Helper()
	s, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		s.Shutdown(context.Background())
		t.Fatalf("listen: %v", err)
	}
	if wrap != nil {
		ln = wrap(ln)
	}
	ts := &testServer{Server: s, addr: ln.Addr().String(), url: "http://" + ln.Addr().String(), served: make(chan error, 1)}
	go func() { ts.served <- s.Serve(ln) }()
	t.Cleanup(func() { ts.shutdown(t, ioTimeout) })
	return ts
}

// shutdown shuts the server down within d and checks that Serve returned
// nil.
func (ts *testServer) shutdown(t *testing.T, d time.Duration) {
	t.Helper()
	if ts.down {
		return
	}
	ts.down = true
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	if err := ts.Shutdown(ctx); err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	if err := <-ts.served; err != nil {
		t.Errorf("Serve: %v", err)
	}
}

// publish appends n events of payload bytes to the hub, seq head+1.., with
// t = seq µs so a test can tell them apart.
func publish(t *testing.T, h *Hub, n, payload int) {
	t.Helper()
	for range n {
		seq := h.Head() + 1
		data, err := event.Encode(event.Event{Seq: seq, T: int64(seq) * 1000}, payload)
		if err != nil {
			t.Fatalf("encode: %v", err)
		}
		if err := h.Publish(&Entry{Seq: seq, T: int64(seq) * 1000, Data: data}); err != nil {
			t.Fatalf("publish: %v", err)
		}
	}
}

// eventBytes returns the encoded event seq as publish makes it.
func eventBytes(t *testing.T, seq uint64, payload int) string {
	t.Helper()
	b, err := event.Encode(event.Event{Seq: seq, T: int64(seq) * 1000}, payload)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// waitFor waits until cond holds, failing the test after 30 s. It is a
// condition wait for server-side state a client cannot observe directly
// (a long poll being held); nothing is assumed about how long it takes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(ioTimeout)
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		<-tick.C
	}
}

// httpClient returns a client whose idle connections are closed at the end
// of the test (goleak would see their goroutines otherwise).
func httpClient(t *testing.T) *http.Client {
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: ioTimeout}
}

// get performs one request and returns status, body and Content-Type.
func do(t *testing.T, c *http.Client, method, url string, hdr http.Header) (int, string, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, url, err)
	}
	return resp.StatusCode, string(b), resp.Header.Get("Content-Type")
}

// smallBufDialer dials with a small receive buffer, set before connect so
// the advertised window stays small: a client that never reads then blocks
// the server after a few KiB.
func smallBufDialer() *net.Dialer {
	return &net.Dialer{
		Timeout: ioTimeout,
		Control: func(_, _ string, rc syscall.RawConn) error {
			var serr error
			err := rc.Control(func(fd uintptr) {
				serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
			})
			if err != nil {
				return err
			}
			return serr
		},
	}
}

// smallSendBuffers wraps a listener so accepted connections get a small
// send buffer: the server then blocks on a client that stops reading after
// a few KiB instead of after megabytes of kernel autotuning.
func smallSendBuffers(ln net.Listener) net.Listener { return &smallSndListener{ln} }

type smallSndListener struct{ net.Listener }

func (l *smallSndListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetWriteBuffer(4096)
	}
	return c, nil
}

// countConn counts the bytes a client reads and writes.
type countConn struct {
	net.Conn
	in, out atomic.Int64
}

func (c *countConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.in.Add(int64(n))
	return n, err
}

func (c *countConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.out.Add(int64(n))
	return n, err
}

// sseClient is a minimal raw SSE client: one GET, then messages parsed from
// the (chunked) body.
type sseClient struct {
	conn net.Conn
	body *bufio.Reader
	resp *http.Response
}

// dialSSE opens GET path and reads the response headers, which the server
// flushes only after the subscription is in place.
func dialSSE(t *testing.T, addr, path string, hdr map[string]string) *sseClient {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, ioTimeout)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	req := "GET " + path + " HTTP/1.1\r\nHost: " + addr + "\r\nAccept: text/event-stream\r\n"
	for k, v := range hdr {
		req += k + ": " + v + "\r\n"
	}
	if _, err := io.WriteString(conn, req+"\r\n"); err != nil {
		t.Fatalf("write request: %v", err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(ioTimeout))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("read response: %v", err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: status %d", path, resp.StatusCode)
	}
	return &sseClient{conn: conn, body: bufio.NewReader(resp.Body), resp: resp}
}

// next reads one message and returns its id and data. Without a conn (a
// stream read through an http.Client) the client's timeout bounds it.
func (c *sseClient) next() (uint64, string, error) {
	if c.conn != nil {
		_ = c.conn.SetReadDeadline(time.Now().Add(ioTimeout))
	}
	var id uint64
	var data string
	var haveID bool
	for {
		line, err := c.body.ReadString('\n')
		if err != nil {
			return 0, "", err
		}
		line = strings.TrimSuffix(line, "\n")
		switch {
		case line == "":
			if !haveID {
				return 0, "", errors.New("message without id")
			}
			return id, data, nil
		case strings.HasPrefix(line, "id: "):
			id, err = strconv.ParseUint(line[4:], 10, 64)
			if err != nil {
				return 0, "", fmt.Errorf("bad id line %q", line)
			}
			haveID = true
		case strings.HasPrefix(line, "data: "):
			data = line[6:]
		default:
			return 0, "", fmt.Errorf("unexpected line %q", line)
		}
	}
}

// dialWS opens a WebSocket to path through a byte-counting conn.
func dialWS(t *testing.T, addr, path string, d *net.Dialer) (*websocket.Conn, *countConn) {
	t.Helper()
	if d == nil {
		d = &net.Dialer{Timeout: ioTimeout}
	}
	var cc *countConn
	wd := websocket.Dialer{
		HandshakeTimeout: ioTimeout,
		NetDialContext: func(ctx context.Context, network, a string) (net.Conn, error) {
			c, err := d.DialContext(ctx, network, a)
			if err != nil {
				return nil, err
			}
			cc = &countConn{Conn: c}
			return cc, nil
		},
	}
	conn, resp, err := wd.Dial("ws://"+addr+path, nil)
	if err != nil {
		t.Fatalf("dial ws %s: %v", path, err)
	}
	resp.Body.Close()
	t.Cleanup(func() { conn.Close() })
	return conn, cc
}

// readWS reads one text message.
func readWS(conn *websocket.Conn) (string, error) {
	_ = conn.SetReadDeadline(time.Now().Add(ioTimeout))
	typ, b, err := conn.ReadMessage()
	if err != nil {
		return "", err
	}
	if typ != websocket.TextMessage {
		return "", fmt.Errorf("message type %d, want text", typ)
	}
	return string(b), nil
}

// seqOf decodes an event message's seq.
func seqOf(t *testing.T, msg string) uint64 {
	t.Helper()
	e, err := event.Decode([]byte(msg))
	if err != nil {
		t.Fatalf("decode %q: %v", msg, err)
	}
	return e.Seq
}

// transportOf returns s's server of the transport called name.
func (s *Server) transportOf(name string) transportServer {
	for _, t := range s.transports {
		if t.name == name {
			return t.transportServer
		}
	}
	panic("servers: no transport " + name)
}

// tc returns the live counters of the transport called name.
func (s *Server) tc(name string) *counters { return s.transportOf(name).counters() }

// wsT returns s's WebSocket server.
func (s *Server) wsT() *wsTransport { return s.transportOf(transport.WebSocket).(*wsTransport) }

// testResume checks a stream transport's since= against a ring of 8 after
// 20 events: the backlog after since, a gap notice first for what has left
// the ring, nothing without since, then the next event for everyone. dial
// opens a stream on path and returns its message reader.
func testResume(t *testing.T, name string, dial func(ts *testServer, path string) func() (string, error)) {
	const p = 60
	ts := startServer(t, Config{Ring: 8}, nil)
	publish(t, ts.Hub(), 20, p)
	info, _ := transport.Lookup(name)
	ev := func(seq uint64) string { return eventBytes(t, seq, p) }
	tests := []struct {
		query string
		want  []string // before event 21
	}{
		{"?since=15", []string{ev(16), ev(17), ev(18), ev(19), ev(20)}},
		{"?since=5", []string{`{"gap":[6,12]}`, ev(13), ev(14), ev(15), ev(16), ev(17), ev(18), ev(19), ev(20)}},
		{"?since=0", []string{`{"gap":[1,12]}`, ev(13), ev(14), ev(15), ev(16), ev(17), ev(18), ev(19), ev(20)}},
		{"?since=20", nil},
		{"", nil},
	}
	next := make([]func() (string, error), len(tests))
	for i, tt := range tests {
		next[i] = dial(ts, info.Path+tt.query)
	}
	// The writer takes its backlog after the handshake, so event 21 comes
	// only after every backlog has arrived (it would move the ring on).
	expect := func(i int, want []string) {
		t.Helper()
		for _, w := range want {
			if got, err := next[i](); err != nil || got != w {
				t.Fatalf("%s%s: got %q (%v), want %q", info.Path, tests[i].query, got, err, w)
			}
		}
	}
	for i, tt := range tests {
		expect(i, tt.want)
	}
	publish(t, ts.Hub(), 1, p)
	for i := range tests {
		expect(i, []string{ev(21)})
	}
	if st := ts.Stats().Transports[name]; st.Gaps != 2 || st.GapEvents != 7+12 || st.Requests != 5 || st.Active != 5 {
		t.Fatalf("%s stats %+v", name, st)
	}
}
