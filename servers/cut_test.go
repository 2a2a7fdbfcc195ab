package servers

import (
	"bufio"
	"compress/gzip"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"pushbench/transport"
)

// cutEvery is the Config.CutEvery of the cut tests: short, so that a test
// waits for a few cuts in well under a second. Nothing asserts how long a
// cut takes to come; every read waits at most ioTimeout.
const cutEvery = 50 * time.Millisecond

// cutRounds drives a stream transport through four streams that each end by
// the server's cut: each is opened resuming after the last event the client
// got, gets three new events while it is open (the first three streams),
// and is read until its end; two more events are published while the
// client is away. Every event must arrive exactly once and in order, from
// the stream or from the next one's backlog, whenever the cut comes. open
// opens a stream resuming after last and returns its message reader, which
// reports the cut as io.EOF. It returns the number of streams.
func cutRounds(t *testing.T, ts *testServer, open func(last uint64) func() (uint64, string, error)) int {
	t.Helper()
	const p, streams = 80, 4
	var last uint64
	for i := range streams {
		next := open(last)
		if i < streams-1 {
			publish(t, ts.Hub(), 3, p)
		}
		for {
			seq, msg, err := next()
			if err == io.EOF {
				break // the cut
			}
			if err != nil {
				t.Fatalf("stream %d after seq %d: %v", i, last, err)
			}
			if seq != last+1 || msg != eventBytes(t, seq, p) {
				t.Fatalf("stream %d after seq %d: seq %d %q, want the next event", i, last, seq, msg)
			}
			last = seq
		}
		if i < streams-1 {
			publish(t, ts.Hub(), 2, p)
		}
	}
	if head := ts.Hub().Head(); last != head || head != 15 {
		t.Fatalf("got events up to %d of %d", last, head)
	}
	return streams
}

// checkCuts checks that the transport counted exactly the cuts the client
// saw, wrote every event exactly once, and named no gap.
func checkCuts(t *testing.T, ts *testServer, name string, cuts int) {
	t.Helper()
	st := ts.Stats().Transports[name]
	if st.Cuts != uint64(cuts) || st.EventsSent != 15 || st.Gaps != 0 || st.SlowDisconnects != 0 || st.Requests != uint64(cuts) {
		t.Fatalf("%s stats %+v; want %d cuts, 15 events sent, no gap", name, st, cuts)
	}
}

// TestSSECut: with CutEvery every SSE stream ends cleanly — the chunked
// body's last chunk on HTTP/1.1 (the gzip trailer too), END_STREAM on h2c
// — and the client resumes with Last-Event-ID without losing or repeating
// an event. Each cut is counted, and /stats shows the setting.
func TestSSECut(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{"http1", "h2c", "gzip"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			ts := startServer(t, Config{Ring: 64, CutEvery: cutEvery, Compress: mode == "gzip"}, nil)
			h2, _ := h2Client(t, false, nil)
			open := func(last uint64) func() (uint64, string, error) {
				path, hdr := "/sse?since=0", map[string]string{}
				if last > 0 {
					path, hdr = "/sse", map[string]string{"Last-Event-ID": strconv.FormatUint(last, 10)}
				}
				var body io.Reader
				switch mode {
				case "h2c":
					resp, _ := getStream(t, h2, ts.url+path, hdr)
					if resp.ProtoMajor != 2 {
						t.Fatalf("%s: %s, want HTTP/2", path, resp.Proto)
					}
					body = resp.Body
				case "gzip":
					hdr["Accept-Encoding"] = "gzip"
					c := dialSSE(t, ts.addr, path, hdr)
					zr, err := gzip.NewReader(c.body)
					if err != nil {
						t.Fatal(err)
					}
					body = zr // the trailer is checked at its end: a cut without it is an error
				default:
					body = dialSSE(t, ts.addr, path, hdr).body
				}
				c := &sseClient{body: bufio.NewReader(body)}
				return func() (uint64, string, error) { return c.next() }
			}
			checkCuts(t, ts, transport.SSE, cutRounds(t, ts, open))

			var st map[string]any
			if _, body := get(t, h1Client(t, false), ts.url+"/stats", nil); json.Unmarshal(body, &st) != nil ||
				st["cut_every_ns"] != float64(cutEvery) || st["sse_retry_ms"] != float64(0) {
				t.Fatalf("stats cut_every_ns %v, sse_retry_ms %v", st["cut_every_ns"], st["sse_retry_ms"])
			}
		})
	}
}

// getStream sends GET url with hdr and returns the response with its body
// unread, closed at the end of the test.
func getStream(t *testing.T, c *http.Client, url string, hdr map[string]string) (*http.Response, io.Reader) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	return resp, resp.Body
}

// TestWSCut: with CutEvery every WebSocket connection ends with close 1012
// "cut", the server closes the TCP connection only after the client's
// close frame (a plain end of stream, no reset), and the client resumes
// with since= without losing or repeating an event.
func TestWSCut(t *testing.T) {
	t.Parallel()
	ts := startServer(t, Config{Ring: 64, CutEvery: cutEvery}, nil)
	open := func(last uint64) func() (uint64, string, error) {
		conn, cc := dialWS(t, ts.addr, "/ws?since="+strconv.FormatUint(last, 10), nil)
		return func() (uint64, string, error) {
			msg, err := readWS(conn)
			if err == nil {
				return seqOf(t, msg), msg, nil
			}
			var ce *websocket.CloseError
			if !errors.As(err, &ce) || ce.Code != websocket.CloseServiceRestart || ce.Text != "cut" {
				return 0, "", fmt.Errorf("read: %w, want close 1012 cut", err)
			}
			// Gorilla has answered with its close frame; the server
			// closes the connection after reading it.
			_ = cc.Conn.SetReadDeadline(time.Now().Add(ioTimeout))
			if n, err := cc.Conn.Read(make([]byte, 16)); n != 0 || err != io.EOF {
				return 0, "", fmt.Errorf("after the close handshake: %d bytes, %v; want the server's end of stream", n, err)
			}
			return 0, "", io.EOF
		}
	}
	checkCuts(t, ts, transport.WebSocket, cutRounds(t, ts, open))
}

// TestTCPCut: with CutEvery every raw TCP connection ends between two lines
// with an end of stream (over TLS, close_notify), and the client resumes
// with since= without losing or repeating an event.
func TestTCPCut(t *testing.T) {
	t.Parallel()
	for _, tlsOn := range []bool{false, true} {
		t.Run(fmt.Sprintf("tls=%v", tlsOn), func(t *testing.T) {
			t.Parallel()
			ts := startWeb(t, Config{Ring: 64, CutEvery: cutEvery}, tlsOn)
			open := func(last uint64) func() (uint64, string, error) {
				path := "/tcp?since=" + strconv.FormatUint(last, 10)
				var c *tcpClient
				if tlsOn {
					c = dialTCPTLS(t, ts.addr, path)
				} else {
					c = dialTCP(t, ts.addr, path, nil)
				}
				return func() (uint64, string, error) {
					line, err := c.line()
					if err != nil {
						if err == io.EOF && line != "" {
							err = fmt.Errorf("end of stream inside a line %q", line)
						}
						c.conn.Close() // the client's end: the server's read ends
						return 0, "", err
					}
					return seqOf(t, line), line, nil
				}
			}
			checkCuts(t, ts, transport.TCP, cutRounds(t, ts, open))
		})
	}
}

// dialTCPTLS is dialTCP over TLS with the test certificate.
func dialTCPTLS(t *testing.T, addr, path string) *tcpClient {
	t.Helper()
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: ioTimeout}, "tcp", addr, clientTLS(t))
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	if _, err := io.WriteString(c, tcpRequest(addr, path)); err != nil {
		t.Fatalf("write upgrade: %v", err)
	}
	tc := &tcpClient{conn: c, br: bufio.NewReader(c)}
	answer := make([]byte, len(tcpSwitch))
	_ = c.SetReadDeadline(time.Now().Add(ioTimeout))
	if _, err := io.ReadFull(tc.br, answer); err != nil || string(answer) != tcpSwitch {
		t.Fatalf("upgrade %s: answer %q (%v), want %q", path, answer, err, tcpSwitch)
	}
	return tc
}

// TestCutNotBeforeItsTime: a stream or connection that ends before
// CutEvery is not cut, and its timer goes with it (goleak, TestMain).
func TestCutNotBeforeItsTime(t *testing.T) {
	t.Parallel()
	ts := startServer(t, Config{CutEvery: time.Hour}, nil)
	sse := dialSSE(t, ts.addr, "/sse", nil)
	ws, _ := dialWS(t, ts.addr, "/ws", nil)
	tcp := dialTCP(t, ts.addr, "/tcp", nil)
	sse.conn.Close()
	ws.Close()
	tcp.conn.Close()
	for _, name := range []string{transport.SSE, transport.WebSocket, transport.TCP} {
		waitFor(t, name+" to end", func() bool { return ts.tc(name).active.Load() == 0 })
		if st := ts.Stats().Transports[name]; st.Cuts != 0 {
			t.Errorf("%s: %d cuts, want 0", name, st.Cuts)
		}
	}
}

// TestSSERetryField: with SSERetry every stream starts with exactly
// "retry: <ms>\n\n" (9 + digits(ms) bytes, no event), in its own chunk when
// there is no backlog and in the backlog's chunk before the events when
// there is one; the events' framing is unchanged, and /stats shows the
// setting.
func TestSSERetryField(t *testing.T) {
	t.Parallel()
	const p = 100
	ts := startServer(t, Config{Ring: 64, SSERetry: 1500 * time.Millisecond}, nil)
	const retry = "retry: 1500\n\n"
	if len(retry) != 9+4 {
		t.Fatalf("retry field %d bytes, want 9 + digits(1500)", len(retry))
	}
	// chunks opens GET path on a raw connection and returns a reader of
	// its chunks, each with its framing checked.
	chunks := func(path string) func() string {
		conn, err := net.Dial("tcp", ts.addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		if _, err := io.WriteString(conn, "GET "+path+" HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		_ = conn.SetReadDeadline(time.Now().Add(ioTimeout))
		br := bufio.NewReader(conn)
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				t.Fatalf("%s headers: %v", path, err)
			}
			if line == "\r\n" {
				break
			}
		}
		return func() string {
			t.Helper()
			sizeLine, err := br.ReadString('\n')
			if err != nil {
				t.Fatalf("%s: chunk size: %v", path, err)
			}
			size, err := strconv.ParseUint(strings.TrimSuffix(sizeLine, "\r\n"), 16, 32)
			if err != nil {
				t.Fatalf("%s: chunk size line %q", path, sizeLine)
			}
			chunk := make([]byte, size+2)
			if _, err := io.ReadFull(br, chunk); err != nil || string(chunk[size:]) != "\r\n" {
				t.Fatalf("%s: chunk %q: %v", path, chunk, err)
			}
			return string(chunk[:size])
		}
	}
	msg := func(seq uint64) string { return fmt.Sprintf("id: %d\ndata: %s\n\n", seq, eventBytes(t, seq, p)) }

	fromNow := chunks("/sse")
	if got := fromNow(); got != retry {
		t.Fatalf("first chunk of a stream without backlog %q, want %q", got, retry)
	}
	publish(t, ts.Hub(), 2, p)
	for seq := uint64(1); seq <= 2; seq++ {
		if got := fromNow(); got != msg(seq) {
			t.Fatalf("event chunk %q, want %q", got, msg(seq))
		}
	}
	backlog := chunks("/sse?since=0")
	if got, want := backlog(), retry+msg(1)+msg(2); got != want {
		t.Fatalf("first chunk of a stream with a backlog %q, want %q", got, want)
	}

	var st map[string]any
	if _, body := get(t, h1Client(t, false), ts.url+"/stats", nil); json.Unmarshal(body, &st) != nil ||
		st["sse_retry_ms"] != float64(1500) || st["cut_every_ns"] != float64(0) {
		t.Fatalf("stats sse_retry_ms %v, cut_every_ns %v", st["sse_retry_ms"], st["cut_every_ns"])
	}
}

// TestCutRetryConfig: CutEvery and SSERetry must not be negative, and
// SSERetry is whole milliseconds.
func TestCutRetryConfig(t *testing.T) {
	t.Parallel()
	for _, cfg := range []Config{
		{CutEvery: -time.Millisecond},
		{SSERetry: -time.Millisecond},
		{SSERetry: 1500 * time.Microsecond},
	} {
		if s, err := New(cfg); err == nil {
			_ = s.Shutdown(t.Context())
			t.Errorf("New(cut every %v, sse retry %v) accepted", cfg.CutEvery, cfg.SSERetry)
		}
	}
}
