package servers

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"pushbench/transport"
)

// tcpClient is a raw TCP transport client: the upgrade, then lines.
type tcpClient struct {
	conn net.Conn
	cc   *countConn
	br   *bufio.Reader
}

// tcpRequest is the upgrade request for path.
func tcpRequest(addr, path string) string {
	return "GET " + path + " HTTP/1.1\r\nHost: " + addr + "\r\nConnection: Upgrade\r\nUpgrade: pushbench-tcp\r\n\r\n"
}

// dialTCP upgrades a connection on path and checks that the answer is
// exactly the 101 of protocol.md.
func dialTCP(t *testing.T, addr, path string, d *net.Dialer) *tcpClient {
	t.Helper()
	if d == nil {
		d = &net.Dialer{Timeout: ioTimeout}
	}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	cc := &countConn{Conn: c}
	if _, err := io.WriteString(cc, tcpRequest(addr, path)); err != nil {
		t.Fatalf("write upgrade: %v", err)
	}
	tc := &tcpClient{conn: c, cc: cc, br: bufio.NewReader(cc)}
	answer := make([]byte, len(tcpSwitch))
	_ = c.SetReadDeadline(time.Now().Add(ioTimeout))
	if _, err := io.ReadFull(tc.br, answer); err != nil || string(answer) != tcpSwitch {
		t.Fatalf("upgrade %s: answer %q (%v), want %q", path, answer, err, tcpSwitch)
	}
	return tc
}

// line reads one line, without its "\n".
func (c *tcpClient) line() (string, error) {
	_ = c.conn.SetReadDeadline(time.Now().Add(ioTimeout))
	s, err := c.br.ReadString('\n')
	if err != nil {
		return s, err
	}
	return strings.TrimSuffix(s, "\n"), nil
}

// TestTCPBytesPerEvent counts the bytes a client reads: exactly the 101
// answer, then the event and its "\n" per event, P + 1 bytes.
func TestTCPBytesPerEvent(t *testing.T) {
	for _, p := range []int{100, 70000} {
		t.Run(fmt.Sprintf("payload=%d", p), func(t *testing.T) {
			const n = 5
			ts := startServer(t, Config{Ring: 64}, nil)
			c := dialTCP(t, ts.addr, "/tcp", nil)
			if up := c.cc.out.Load(); up != int64(len(tcpRequest(ts.addr, "/tcp"))) {
				t.Errorf("client wrote %d bytes, want the request's %d", up, len(tcpRequest(ts.addr, "/tcp")))
			}
			publish(t, ts.Hub(), n, p)
			for seq := uint64(1); seq <= n; seq++ {
				if got, err := c.line(); err != nil || got != eventBytes(t, seq, p) {
					t.Fatalf("seq %d: %d bytes (%v)", seq, len(got), err)
				}
			}
			// Every line read, and nothing read ahead: the server has
			// written nothing more.
			if got, want := c.cc.in.Load(), int64(len(tcpSwitch)+n*(p+1)); got != want {
				t.Fatalf("read %d bytes, want %d = %d (answer) + n × (P + 1)", got, want, len(tcpSwitch))
			}
			waitFor(t, "5 events counted", func() bool { return ts.tc(transport.TCP).eventsSent.Load() == n })
		})
	}
}

// TestTCPResume checks since= against a ring of 8 after 20 events.
func TestTCPResume(t *testing.T) {
	testResume(t, transport.TCP, func(ts *testServer, path string) func() (string, error) {
		return dialTCP(t, ts.addr, path, nil).line
	})
}

// TestTCPClientInput: what a client sends after the upgrade is read and
// dropped without holding anything up, and its end of stream ends the
// connection.
func TestTCPClientInput(t *testing.T) {
	const p = 64
	ts := startServer(t, Config{Ring: 64}, nil)
	c := dialTCP(t, ts.addr, "/tcp", nil)
	other := dialTCP(t, ts.addr, "/tcp", nil)
	// More than any socket buffer: the server must be reading it.
	junk := strings.Repeat("GET / HTTP/1.1\r\n\r\n", 1<<16)
	_ = c.conn.SetWriteDeadline(time.Now().Add(ioTimeout))
	if _, err := io.WriteString(c.conn, junk); err != nil {
		t.Fatalf("write %d bytes after the upgrade: %v", len(junk), err)
	}
	publish(t, ts.Hub(), 3, p)
	for _, cl := range []*tcpClient{c, other} {
		for seq := uint64(1); seq <= 3; seq++ {
			if got, err := cl.line(); err != nil || got != eventBytes(t, seq, p) {
				t.Fatalf("seq %d: %q (%v)", seq, got, err)
			}
		}
	}
	if err := c.conn.(*net.TCPConn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	if rest, err := io.ReadAll(c.br); err != nil || len(rest) != 0 {
		t.Fatalf("after the client's end of stream: %q, %v; want the server's end of stream", rest, err)
	}
	waitFor(t, "the handler to end", func() bool { return ts.tc(transport.TCP).active.Load() == 1 })
	if st := ts.Stats().Transports[transport.TCP]; st.BadRequests != 0 || st.SlowDisconnects != 0 {
		t.Errorf("tcp stats %+v", st)
	}
}

// TestTCPSlowConsumer connects a client that never reads next to two that
// do. Its queue fills or a write misses its deadline: it is cut off and
// counted once; the others never wait for it.
func TestTCPSlowConsumer(t *testing.T) {
	const p = 1024
	ts := startServer(t, Config{Ring: 8192, WSQueue: 8, WriteTimeout: 300 * time.Millisecond}, smallSendBuffers)
	tcpT := ts.transportOf(transport.TCP).(*tcpTransport)
	slow := dialTCP(t, ts.addr, "/tcp", smallBufDialer())
	var good []*tcpClient
	for range 2 {
		good = append(good, dialTCP(t, ts.addr, "/tcp", nil))
	}
	waitFor(t, "three connections", func() bool { return tcpT.rooms.peek(0).n.Load() == 3 })

	const max = 5000
	var seq uint64
	for seq < max {
		publish(t, ts.Hub(), 1, p)
		seq++
		for i, c := range good {
			got, err := c.line()
			if err != nil || seqOf(t, got) != seq {
				t.Fatalf("client %d: %q (%v), want seq %d", i, got, err, seq)
			}
		}
		if tcpT.tc.slowDisconnects.Load() > 0 && tcpT.rooms.peek(0).n.Load() == 2 {
			break
		}
	}
	if st := ts.Stats().Transports[transport.TCP]; st.SlowDisconnects != 1 {
		t.Fatalf("after %d events: tcp stats %+v, want one slow disconnect", seq, st)
	}
	// Reading the slow connection now ends: the server has closed it.
	_ = slow.conn.SetReadDeadline(time.Now().Add(ioTimeout))
	_, err := io.Copy(io.Discard, slow.br)
	if ne := net.Error(nil); errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("slow client still open: %v", err)
	}
	t.Logf("slow client cut after %d events: %v", seq, err)
}
