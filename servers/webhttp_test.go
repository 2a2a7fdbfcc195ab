package servers

// HTTP as browsers speak it, server side: TLS (bytes counted below it),
// HTTP/2 and h2c, the response header profiles, compression and text
// padding.

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"go.uber.org/goleak"

	"pushbench/event"
	"pushbench/transport"
	"pushbench/webhttp"
)

// testCert is one certificate for every TLS test of the package.
var testCert = sync.OnceValues(webhttp.SelfSigned)

func certificate(t *testing.T) tls.Certificate {
	t.Helper()
	cert, err := testCert()
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

// clientTLS is a client's TLS configuration trusting the test certificate,
// offering protos with ALPN (none: the server answers HTTP/1.1).
func clientTLS(t *testing.T, protos ...string) *tls.Config {
	roots := x509.NewCertPool()
	roots.AddCert(certificate(t).Leaf)
	return webhttp.ClientConfig(roots, "", protos...)
}

// startWeb starts a server for cfg, over TLS with the test certificate when
// tlsOn; ts.url then starts with https.
func startWeb(t *testing.T, cfg Config, tlsOn bool) *testServer {
	t.Helper()
	if tlsOn {
		cert := certificate(t)
		cfg.TLS = &cert
	}
	ts := startServer(t, cfg, nil)
	if tlsOn {
		ts.url = "https://" + ts.addr
	}
	return ts
}

// h2Client speaks only HTTP/2: h2 negotiated with ALPN over TLS, h2c with
// prior knowledge without. It never asks for compression by itself.
func h2Client(t *testing.T, tlsOn bool, conf *http.HTTP2Config) (*http.Client, *http.Transport) {
	var p http.Protocols
	tr := &http.Transport{DisableCompression: true, HTTP2: conf}
	if tlsOn {
		p.SetHTTP2(true)
		tr.TLSClientConfig = clientTLS(t)
	} else {
		p.SetUnencryptedHTTP2(true)
	}
	tr.Protocols = &p
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: ioTimeout}, tr
}

// h1Client speaks HTTP/1.1 (over TLS when tlsOn) and never asks for
// compression by itself.
func h1Client(t *testing.T, tlsOn bool) *http.Client {
	tr := &http.Transport{DisableCompression: true}
	if tlsOn {
		tr.TLSClientConfig = clientTLS(t, webhttp.ALPNHTTP1)
	}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: ioTimeout}
}

// get sends GET url with hdr and returns the response and its whole body.
func get(t *testing.T, c *http.Client, url string, hdr map[string]string) (*http.Response, []byte) {
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
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: read body: %v", url, err)
	}
	return resp, b
}

// dialWeb opens a raw connection to ts, over TLS (ALPN http/1.1) when the
// server serves TLS.
func dialWeb(t *testing.T, ts *testServer) net.Conn {
	t.Helper()
	var c net.Conn
	var err error
	if ts.cfg.TLS != nil {
		c, err = tls.DialWithDialer(&net.Dialer{Timeout: ioTimeout}, "tcp", ts.addr, clientTLS(t, webhttp.ALPNHTTP1))
	} else {
		c, err = net.DialTimeout("tcp", ts.addr, ioTimeout)
	}
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(ioTimeout))
	return c
}

// readHead reads a response's status line and header block, blank line
// included, exactly as sent.
func readHead(t *testing.T, br *bufio.Reader) string {
	t.Helper()
	var head strings.Builder
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("read head: %v (so far %q)", err, head.String())
		}
		head.WriteString(line)
		if line == "\r\n" {
			return head.String()
		}
	}
}

// headerOf parses a head from readHead.
func headerOf(t *testing.T, head string) http.Header {
	t.Helper()
	resp, err := http.ReadResponse(bufio.NewReader(strings.NewReader(head)), nil)
	if err != nil {
		t.Fatalf("parse %q: %v", head, err)
	}
	return resp.Header
}

func TestConfigResponseProfile(t *testing.T) {
	t.Parallel()
	if _, err := New(Config{Response: "fancy"}); err == nil || !strings.Contains(err.Error(), `response headers "fancy": want minimal or deployment`) {
		t.Errorf("New(Response fancy) = %v", err)
	}
	cfg, err := Config{}.withDefaults()
	if err != nil || cfg.Response != webhttp.ResponseMinimal {
		t.Errorf("default Response %q, %v; want minimal", cfg.Response, err)
	}
}

// TestTLSRecordOverhead: one WebSocket event of P bytes costs the server's
// socket exactly P + 2 (or + 4 from 126 bytes: the frame header) without
// TLS, and 22 bytes more with TLS 1.3: one record per frame, a 5-byte
// record header, the 1-byte inner content type and the 16-byte AEAD tag.
// The delta is taken around the second event, once the handshake and the
// session tickets are on the wire.
func TestTLSRecordOverhead(t *testing.T) {
	t.Parallel()
	for _, tlsOn := range []bool{false, true} {
		ts := startWeb(t, Config{}, tlsOn)
		for i, p := range []int{64, 125, 126, 1000} {
			frame := 2
			if p > 125 {
				frame = 4
			}
			want := uint64(p + frame)
			if tlsOn {
				want += 5 + 1 + 16
			}
			d := websocket.Dialer{HandshakeTimeout: ioTimeout, TLSClientConfig: clientTLS(t)}
			scheme := "ws://"
			if tlsOn {
				scheme = "wss://"
			}
			conn, resp, err := d.Dial(scheme+ts.addr+"/ws", nil)
			if err != nil {
				t.Fatalf("dial: %v", err)
			}
			resp.Body.Close()
			sent := func() uint64 { return ts.tc(transport.WebSocket).eventsSent.Load() }
			deliver := func(n uint64) {
				t.Helper()
				publish(t, ts.Hub(), 1, p)
				if _, err := readWS(conn); err != nil {
					t.Fatalf("read: %v", err)
				}
				// The counter moves after the write returned, which
				// is after the listener counted its bytes.
				waitFor(t, "the event to be counted", func() bool { return sent() == n })
			}
			deliver(uint64(2*i + 1))
			before := ts.listener.bytesOut.Load()
			deliver(uint64(2*i + 2))
			if got := ts.listener.bytesOut.Load() - before; got != want {
				t.Errorf("tls %v, P=%d: one event cost %d bytes on the socket, want %d", tlsOn, p, got, want)
			}
			conn.Close()
			// Gone before the next event, or its writer may still send
			// it (and count it) on a busy machine.
			waitFor(t, "the connection to end", func() bool { return ts.tc(transport.WebSocket).active.Load() == 0 })
		}

		// Raw TCP, the floor: one event of P bytes is one line, P + 1
		// bytes, in one record over TLS.
		c := dialWeb(t, ts)
		if _, err := io.WriteString(c, tcpRequest(ts.addr, "/tcp")); err != nil {
			t.Fatal(err)
		}
		br := bufio.NewReader(c)
		if head := readHead(t, br); head != tcpSwitch {
			t.Fatalf("tcp answer %q", head)
		}
		const p = 200
		sent := func() uint64 { return ts.tc(transport.TCP).eventsSent.Load() }
		deliver := func(n uint64) {
			t.Helper()
			publish(t, ts.Hub(), 1, p)
			if line, err := br.ReadString('\n'); err != nil || len(line) != p+1 {
				t.Fatalf("tcp line %q, %v", line, err)
			}
			waitFor(t, "the event to be counted", func() bool { return sent() == n })
		}
		deliver(1)
		before := ts.listener.bytesOut.Load()
		deliver(2)
		want := uint64(p + 1)
		if tlsOn {
			want += 22
		}
		if got := ts.listener.bytesOut.Load() - before; got != want {
			t.Errorf("tls %v, raw TCP, P=%d: one event cost %d bytes on the socket, want %d", tlsOn, p, got, want)
		}
	}
}

// TestResponseHeaderBytes: a poll answer's header block on HTTP/1.1 is
// exactly the fields of the profile, byte for byte: 132 bytes minimal,
// 354 with the deployment profile, 418 with it over TLS (HSTS).
func TestResponseHeaderBytes(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		profile string
		tlsOn   bool
		want    int
	}{
		{webhttp.ResponseMinimal, false, 132},
		{webhttp.ResponseMinimal, true, 132},
		{webhttp.ResponseDeployment, false, 354},
		{webhttp.ResponseDeployment, true, 418},
	} {
		ts := startWeb(t, Config{Response: tt.profile}, tt.tlsOn)
		c := dialWeb(t, ts)
		br := bufio.NewReader(c)
		var ids []string
		for range 2 { // two answers on one keep-alive connection
			if _, err := io.WriteString(c, "GET /poll HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
				t.Fatal(err)
			}
			head := readHead(t, br)
			h := headerOf(t, head)
			body := make([]byte, 2)
			if _, err := io.ReadFull(br, body); err != nil || string(body) != "[]" {
				t.Fatalf("body %q, %v", body, err)
			}
			fields := []webhttp.Field{
				{Name: "Cache-Control", Value: "no-store"},
				{Name: "Content-Length", Value: "2"},
				{Name: "Content-Type", Value: "application/json"},
				{Name: "Date", Value: h.Get("Date")},
			}
			if tt.profile == webhttp.ResponseDeployment {
				fields = append(fields, webhttp.Field{Name: "Connection", Value: "keep-alive"})
				fields = append(fields, webhttp.Options{ResponseHeaders: tt.profile, TLS: tt.tlsOn}.ResponseFields()...)
				id := h.Get("X-Request-Id")
				if _, err := hex.DecodeString(id); err != nil || len(id) != 32 {
					t.Errorf("X-Request-Id %q: want 32 hex digits", id)
				}
				ids = append(ids, id)
			}
			if len(h.Get("Date")) != len(http.TimeFormat) {
				t.Errorf("Date %q", h.Get("Date"))
			}
			want := len("HTTP/1.1 200 OK\r\n") + webhttp.FieldBytes(fields) + len("\r\n")
			if len(head) != want || want != tt.want {
				t.Errorf("%s, tls %v: header block %d bytes, want %d from the fields and %d:\n%s", tt.profile, tt.tlsOn, len(head), want, tt.want, head)
			}
			for _, f := range fields {
				if f.Name != "X-Request-Id" && h.Get(f.Name) != f.Value {
					t.Errorf("%s: %s %q, want %q", tt.profile, f.Name, h.Get(f.Name), f.Value)
				}
			}
		}
		if len(ids) == 2 && ids[0] == ids[1] {
			t.Errorf("two answers with X-Request-Id %s", ids[0])
		}
	}
}

// TestResponseProfileEverywhere: the deployment profile is on every
// successful answer (poll, long poll, SSE, the WebSocket 101) but raw
// TCP's, which stays the exact 101 of protocol.md; 4xx answers have none.
func TestResponseProfileEverywhere(t *testing.T) {
	t.Parallel()
	ts := startServer(t, Config{Response: webhttp.ResponseDeployment, Hold: time.Millisecond}, nil)
	c := h1Client(t, false)
	hasProfile := func(what string, h http.Header, keepAlive bool) {
		t.Helper()
		for _, f := range (webhttp.Options{ResponseHeaders: webhttp.ResponseDeployment}).ResponseFields() {
			if got := h.Values(f.Name); len(got) != 1 || (f.Name != "X-Request-Id" && got[0] != f.Value) {
				t.Errorf("%s: %s %q, want %q once", what, f.Name, got, f.Value)
			}
		}
		if got := h.Get("Connection"); keepAlive != (got == "keep-alive") {
			t.Errorf("%s: Connection %q", what, got)
		}
	}
	resp, _ := get(t, c, ts.url+"/poll", nil)
	hasProfile("/poll", resp.Header, true)
	resp, _ = get(t, c, ts.url+"/longpoll?hold=1ms", nil) // held, then []
	hasProfile("/longpoll", resp.Header, true)
	sc := dialSSE(t, ts.addr, "/sse", nil)
	hasProfile("/sse", sc.resp.Header, true)
	if sc.resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Errorf("/sse: %v", sc.resp.Header)
	}
	d := websocket.Dialer{HandshakeTimeout: ioTimeout}
	wc, resp, err := d.Dial("ws://"+ts.addr+"/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer wc.Close()
	hasProfile("/ws 101", resp.Header, false)
	if resp.Header.Get("Connection") != "Upgrade" {
		t.Errorf("/ws 101: Connection %q", resp.Header.Get("Connection"))
	}
	dialTCP(t, ts.addr, "/tcp", nil) // checks the 101 byte for byte
	// Over HTTP/2 the same fields, without the HTTP/1.1 Connection.
	h2, _ := h2Client(t, false, nil)
	resp, _ = get(t, h2, ts.url+"/poll", nil)
	if resp.ProtoMajor != 2 {
		t.Fatalf("h2c /poll: %s", resp.Proto)
	}
	hasProfile("h2c /poll", resp.Header, false)
	resp, _ = get(t, c, ts.url+"/poll?since=x", nil)
	if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("X-Request-Id") != "" || resp.Header.Get("Server") != "" {
		t.Errorf("400: %d %v, want no profile fields", resp.StatusCode, resp.Header)
	}
}

// TestHTTP2 serves the polls and SSE over h2 (TLS, ALPN) and h2c (prior
// knowledge): answered, counted as HTTP/2, SSE flushed per event; the
// upgrades are refused with a reason.
func TestHTTP2(t *testing.T) {
	t.Parallel()
	for _, tlsOn := range []bool{false, true} {
		ts := startWeb(t, Config{Hold: time.Hour}, tlsOn)
		c, _ := h2Client(t, tlsOn, nil)
		publish(t, ts.Hub(), 3, 64)

		resp, body := get(t, c, ts.url+"/poll?since=1", nil)
		var msgs []json.RawMessage
		if resp.ProtoMajor != 2 || json.Unmarshal(body, &msgs) != nil || len(msgs) != 2 {
			t.Fatalf("tls %v /poll: %s, %q", tlsOn, resp.Proto, body)
		}

		held := make(chan []byte, 1)
		go func() {
			resp, err := c.Get(ts.url + "/longpoll?since=3")
			if err != nil {
				held <- []byte(err.Error())
				return
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			held <- append([]byte(resp.Proto+" "), b...)
		}()
		waitFor(t, "the long poll to be held", func() bool { return ts.tc(transport.LongPoll).active.Load() == 1 })
		publish(t, ts.Hub(), 1, 64)
		if got, want := string(<-held), "HTTP/2.0 ["+eventBytes(t, 4, 64)+"]"; got != want {
			t.Fatalf("tls %v /longpoll: %q, want %q", tlsOn, got, want)
		}

		resp, err := c.Get(ts.url + "/sse")
		if err != nil || resp.ProtoMajor != 2 {
			t.Fatalf("tls %v /sse: %v", tlsOn, err)
		}
		sc := &sseClient{body: bufio.NewReader(resp.Body), resp: resp}
		for seq := uint64(5); seq <= 7; seq++ {
			// The next event is published only once this one has
			// arrived: each is flushed on its own.
			publish(t, ts.Hub(), 1, 64)
			if id, data, err := sc.next(); err != nil || id != seq || data != eventBytes(t, seq, 64) {
				t.Fatalf("tls %v /sse: %d %q %v, want event %d", tlsOn, id, data, err, seq)
			}
		}
		resp.Body.Close()

		for _, path := range []string{"/ws", "/tcp"} {
			resp, body := get(t, c, ts.url+path, nil)
			if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), path+": ") ||
				!strings.Contains(string(body), "needs an HTTP/1.1 upgrade (RFC 8441, WebSocket over HTTP/2, is not supported)") {
				t.Errorf("tls %v %s over HTTP/2: %d %q", tlsOn, path, resp.StatusCode, body)
			}
		}
		// HTTP/1.1 on the same server is not counted as HTTP/2.
		if resp, _ := get(t, h1Client(t, tlsOn), ts.url+"/poll", nil); resp.ProtoMajor != 1 {
			t.Fatalf("HTTP/1.1 client got %s", resp.Proto)
		}

		st := ts.Stats()
		if st.TLS != tlsOn {
			t.Errorf("stats tls %v, want %v", st.TLS, tlsOn)
		}
		for name, want := range map[string][3]uint64{ // requests, HTTP/2, bad
			transport.ShortPoll: {2, 1, 0},
			transport.LongPoll:  {1, 1, 0},
			transport.SSE:       {1, 1, 0},
			transport.WebSocket: {1, 1, 1},
			transport.TCP:       {1, 1, 1},
		} {
			tr := st.Transports[name]
			if got := [3]uint64{tr.Requests, tr.HTTP2Requests, tr.BadRequests}; got != want {
				t.Errorf("tls %v %s: requests, http2, bad = %v, want %v", tlsOn, name, got, want)
			}
		}
	}
}

// TestHTTP2SlowConsumer: the per-write deadline still cuts an SSE client
// that stops reading over HTTP/2, where it resets the stream (flow control
// blocks the writes, not the socket), and counts it as a slow disconnect.
func TestHTTP2SlowConsumer(t *testing.T) {
	t.Parallel()
	ts := startServer(t, Config{WriteTimeout: 100 * time.Millisecond, Ring: 1024}, nil)
	// A 16 KiB window: the server can send that much before the client
	// has to read.
	c, _ := h2Client(t, false, &http.HTTP2Config{MaxReceiveBufferPerStream: 16 << 10, MaxReceiveBufferPerConnection: 64 << 10})
	resp, err := c.Get(ts.url + "/sse")
	if err != nil || resp.ProtoMajor != 2 {
		t.Fatalf("/sse: %v", err)
	}
	defer resp.Body.Close()
	publish(t, ts.Hub(), 64, 4096) // 256 KiB, never read
	waitFor(t, "the slow consumer to be cut", func() bool { return ts.tc(transport.SSE).slowDisconnects.Load() == 1 })
	waitFor(t, "the stream to end", func() bool { return ts.tc(transport.SSE).active.Load() == 0 })
}

// TestHTTP2QuietStream: an SSE stream over HTTP/2 that stays quiet for
// longer than the write timeout is not reset: the deadline bounds each
// write, not the quiet after it (HTTP/2 resets a stream whose deadline
// passes even with nothing to write). The event after the quiet arrives on
// the same stream.
func TestHTTP2QuietStream(t *testing.T) {
	t.Parallel()
	const timeout = 50 * time.Millisecond
	ts := startServer(t, Config{WriteTimeout: timeout, Ring: 1024}, nil)
	c, _ := h2Client(t, false, nil)
	resp, err := c.Get(ts.url + "/sse")
	if err != nil || resp.ProtoMajor != 2 {
		t.Fatalf("/sse: %v", err)
	}
	defer resp.Body.Close()
	publish(t, ts.Hub(), 1, 64)
	br := bufio.NewReader(resp.Body)
	readEvent := func() string {
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				t.Fatalf("stream ended: %v", err)
			}
			if strings.HasPrefix(line, "id: ") {
				return strings.TrimSpace(line)
			}
		}
	}
	if id := readEvent(); id != "id: 1" {
		t.Fatalf("first event %q", id)
	}
	// Quiet for four write timeouts: the deadline the first event's write
	// set passes with nothing being written.
	<-time.After(4 * timeout)
	publish(t, ts.Hub(), 1, 64)
	if id := readEvent(); id != "id: 2" {
		t.Errorf("after the quiet: %q, want id: 2 on the same stream", id)
	}
	if n := ts.tc(transport.SSE).slowDisconnects.Load(); n != 0 {
		t.Errorf("%d slow disconnects", n)
	}
}

// TestShutdownHTTP2 holds long polls and SSE streams over one HTTP/2
// connection (h2c and h2) and shuts down with a one-second deadline: as on
// HTTP/1.1, Shutdown returns nil, the long polls get 503 and the streams
// end cleanly.
func TestShutdownHTTP2(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	const n = 20
	for _, tlsOn := range []bool{false, true} {
		ts := startWeb(t, Config{Hold: time.Hour}, tlsOn)
		c, tr := h2Client(t, tlsOn, nil)
		publish(t, ts.Hub(), 1, 64)
		polls := make(chan int, n)
		for range n {
			go func() {
				resp, err := c.Get(ts.url + "/longpoll?since=1")
				if err != nil {
					polls <- 0
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				polls <- resp.StatusCode
			}()
		}
		var streams []*http.Response
		for range n {
			resp, err := c.Get(ts.url + "/sse")
			if err != nil || resp.ProtoMajor != 2 {
				t.Fatalf("/sse: %v", err)
			}
			streams = append(streams, resp)
		}
		waitFor(t, "every client to be held", func() bool {
			return ts.tc(transport.LongPoll).active.Load() == n && ts.tc(transport.SSE).active.Load() == n
		})
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		if err := ts.Shutdown(ctx); err != nil {
			t.Fatalf("tls %v: Shutdown with %d HTTP/2 long polls and streams: %v", tlsOn, n, err)
		}
		cancel()
		ts.shutdown(t, time.Second)
		for range n {
			if code := <-polls; code != http.StatusServiceUnavailable {
				t.Errorf("tls %v long poll: status %d, want 503", tlsOn, code)
			}
		}
		for _, resp := range streams {
			if _, err := io.Copy(io.Discard, resp.Body); err != nil {
				t.Errorf("tls %v: SSE stream did not end cleanly: %v", tlsOn, err)
			}
			resp.Body.Close()
		}
		tr.CloseIdleConnections()
	}
}

func TestAcceptsGzip(t *testing.T) {
	t.Parallel()
	for ae, want := range map[string]bool{
		"":                        false,
		"gzip":                    true,
		"GZIP":                    true,
		"x-gzip":                  true,
		"gzip, deflate, br, zstd": true,
		"br, zstd":                false,
		"gzip;q=0":                false,
		"gzip; q=0.000":           false,
		"gzip;q=0.001":            true,
		"gzip;Q=0.5":              true,
		"gzip;q=1.0":              true,
		"gzip;q=1.5":              false, // malformed: refused
		"gzip;q=NaN":              false,
		"gzip;q=":                 false,
		"*":                       true,
		"*;q=0":                   false,
		"gzip;q=0, *":             false, // the explicit refusal wins
		"br, *;q=0.1":             true,
		"identity":                false,
		"deflate, gzip;q=0.2":     true,
	} {
		r, _ := http.NewRequest(http.MethodGet, "/poll", nil)
		if ae != "" {
			r.Header.Set("Accept-Encoding", ae)
		}
		if got := acceptsGzip(r); got != want {
			t.Errorf("acceptsGzip(%q) = %v, want %v", ae, got, want)
		}
	}
}

// TestGzipPoll: with Compress, a poll answer to a gzip offer is the same
// body gzip-encoded, with Content-Encoding, one Vary and the compressed
// Content-Length; without an offer, or without Compress, it is identity.
func TestGzipPoll(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		compress bool
		profile  string
		ae       string
		gzipped  bool
	}{
		{true, webhttp.ResponseMinimal, "gzip", true},
		{true, webhttp.ResponseDeployment, "gzip, deflate, br, zstd", true},
		{true, webhttp.ResponseMinimal, "gzip;q=0", false},
		{true, webhttp.ResponseMinimal, "", false},
		{false, webhttp.ResponseMinimal, "gzip", false},
	} {
		ts := startServer(t, Config{Compress: tt.compress, Response: tt.profile}, nil)
		publish(t, ts.Hub(), 20, 256)
		c := h1Client(t, false)
		_, plain := get(t, c, ts.url+"/poll?since=0", nil)
		for _, path := range []string{"/poll?since=0", "/longpoll?since=0"} {
			resp, body := get(t, c, ts.url+path, map[string]string{"Accept-Encoding": tt.ae})
			h := resp.Header
			if cl, _ := strconv.Atoi(h.Get("Content-Length")); cl != len(body) {
				t.Errorf("%+v %s: Content-Length %s for %d bytes", tt, path, h.Get("Content-Length"), len(body))
			}
			if !tt.gzipped {
				if !bytes.Equal(body, plain) || h.Get("Content-Encoding") != "" || (tt.profile == webhttp.ResponseMinimal && h.Get("Vary") != "") {
					t.Errorf("%+v %s: want identity, got %v", tt, path, h)
				}
				continue
			}
			if h.Get("Content-Encoding") != "gzip" || len(h.Values("Vary")) != 1 || h.Get("Vary") != "Accept-Encoding" {
				t.Errorf("%+v %s: headers %v", tt, path, h)
			}
			zr, err := gzip.NewReader(bytes.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(zr)
			if err != nil || !bytes.Equal(got, plain) {
				t.Errorf("%+v %s: gunzipped %q, %v; want %q", tt, path, got, err, plain)
			}
			if len(body) >= len(plain) {
				t.Errorf("%+v %s: %d bytes gzipped from %d", tt, path, len(body), len(plain))
			}
		}
	}
}

// TestGzipSSE: with Compress, an SSE stream to a gzip offer is one gzip
// stream in which every event can be decoded as soon as it is sent, before
// the next one is published (HTTP/1.1 and h2c); at shutdown it ends with a
// complete gzip trailer.
func TestGzipSSE(t *testing.T) {
	t.Parallel()
	const p = 200
	// check reads five events from a gzip stream, publishing each only
	// once the one before has been decoded, and returns the decoded stream.
	check := func(t *testing.T, body io.Reader, h http.Header, ts *testServer, first uint64) *bufio.Reader {
		t.Helper()
		if h.Get("Content-Encoding") != "gzip" || h.Get("Vary") != "Accept-Encoding" {
			t.Fatalf("headers %v", h)
		}
		zr, err := gzip.NewReader(body) // the gzip header came with the headers
		if err != nil {
			t.Fatal(err)
		}
		sc := &sseClient{body: bufio.NewReader(zr)}
		for seq := first; seq < first+5; seq++ {
			publish(t, ts.Hub(), 1, p)
			if id, data, err := sc.next(); err != nil || id != seq || data != eventBytes(t, seq, p) {
				t.Fatalf("%d %q %v, want event %d", id, data, err, seq)
			}
		}
		return sc.body
	}

	ts := startServer(t, Config{Compress: true}, nil)
	raw := dialSSE(t, ts.addr, "/sse", map[string]string{"Accept-Encoding": "gzip"})
	first := check(t, raw.body, raw.resp.Header, ts, 1)
	c, _ := h2Client(t, false, nil)
	resp, err := c.Get(ts.url + "/sse") // no offer: identity
	if err != nil || resp.Header.Get("Content-Encoding") != "" {
		t.Fatalf("/sse without an offer: %v %v", err, resp.Header)
	}
	resp.Body.Close()
	req, _ := http.NewRequest(http.MethodGet, ts.url+"/sse", nil)
	req.Header.Set("Accept-Encoding", "gzip")
	resp, err = c.Do(req)
	if err != nil || resp.ProtoMajor != 2 {
		t.Fatalf("h2c /sse: %v", err)
	}
	defer resp.Body.Close()
	second := check(t, resp.Body, resp.Header, ts, 6)

	// Stream 0 got events 6 to 10 while the test read stream 1: wait
	// until the server has written them (5 + 10 events in all), or the
	// shutdown may overtake writes still on their way through the SSE
	// pump, which is what shutdown is for, not what this test checks.
	waitFor(t, "15 SSE events written", func() bool { return ts.tc(transport.SSE).eventsSent.Load() == 15 })
	// Shutdown ends both streams with the gzip trailer: the rest decodes
	// to the end without error (the CRC and the length match).
	ts.shutdown(t, ioTimeout)
	for i, zr := range []*bufio.Reader{first, second} {
		_ = raw.conn.SetReadDeadline(time.Now().Add(ioTimeout))
		rest, err := io.ReadAll(zr)
		if err != nil {
			t.Errorf("stream %d after shutdown: %v", i, err)
		}
		if i == 0 && !bytes.Contains(rest, []byte(eventBytes(t, 10, p))) {
			t.Errorf("stream 0 after shutdown: %q, want events 6 to 10", rest)
		}
	}
}

// TestWSCompression: permessage-deflate is negotiated only with Compress
// and only with a client that offers it; each event is deflated once for
// every connection that negotiated it (one more PreparedMessage frame),
// and plain connections share the frame built up front.
func TestWSCompression(t *testing.T) {
	t.Parallel()
	for _, compress := range []bool{false, true} {
		ts := startServer(t, Config{Compress: compress}, nil)
		wt := ts.wsT()
		pms := make(chan *websocket.PreparedMessage, 16)
		prepare := wt.rooms.peek(0).prepare
		wt.rooms.peek(0).prepare = func(e *Entry) *wsMsg { // before any event: see publish
			m := prepare(e)
			pms <- m.pm
			return m
		}
		type client struct {
			conn *websocket.Conn
			cc   *countConn
		}
		var clients []client
		for _, offer := range []bool{true, true, false} {
			var cc *countConn
			d := websocket.Dialer{
				HandshakeTimeout:  ioTimeout,
				EnableCompression: offer,
				NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
					c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
					cc = &countConn{Conn: c}
					return cc, err
				},
			}
			conn, resp, err := d.Dial("ws://"+ts.addr+"/ws", nil)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			defer conn.Close()
			ext := resp.Header.Get("Sec-Websocket-Extensions")
			if got := strings.HasPrefix(ext, "permessage-deflate"); got != (compress && offer) {
				t.Errorf("compress %v, offer %v: extensions %q", compress, offer, ext)
			}
			clients = append(clients, client{conn, cc})
		}
		const p = 1000
		// Text padding: 'x' would compress to nothing.
		data, _ := event.EncodePad(event.Event{Seq: 1, T: 1}, p, event.PadText)
		if err := ts.Hub().Publish(&Entry{Seq: 1, T: 1, Data: data}); err != nil {
			t.Fatal(err)
		}
		var in []int64
		for _, c := range clients {
			before := c.cc.in.Load()
			if msg, err := readWS(c.conn); err != nil || msg != string(data) {
				t.Fatalf("compress %v: %q, %v", compress, msg, err)
			}
			in = append(in, c.cc.in.Load()-before)
		}
		if compress && !(in[0] < p && in[1] == in[0] && in[2] == p+4) {
			t.Errorf("bytes read per client %v, want fewer than %d for both compressed ones, %d for the plain one", in, p, p+4)
		}
		if !compress && (in[0] != p+4 || in[1] != p+4 || in[2] != p+4) {
			t.Errorf("bytes read per client %v, want %d each", in, p+4)
		}
		waitFor(t, "every write", func() bool { return ts.tc(transport.WebSocket).eventsSent.Load() == 3 })
		frames := reflect.ValueOf(<-pms).Elem().FieldByName("frames").Len()
		if want := map[bool]int{false: 1, true: 2}[compress]; frames != want {
			t.Errorf("compress %v: the event was framed %d ways, want %d (once plain, once deflated)", compress, frames, want)
		}
	}
}

// TestTextPadPublisher: with TextPad the publisher pads with text, at the
// same size; Stats says which padding the server writes.
func TestTextPadPublisher(t *testing.T) {
	t.Parallel()
	for _, textPad := range []bool{false, true} {
		ts := startServer(t, Config{TextPad: textPad}, nil)
		if err := ts.StartPublisher(PublishConfig{Rate: 1e5, Payload: 300, Events: 3}); err != nil {
			t.Fatal(err)
		}
		<-ts.Publisher().Done()
		out, _, _, err := ts.Hub().Since(0, nil, 0)
		if err != nil || len(out) != 3 {
			t.Fatalf("%d events, %v", len(out), err)
		}
		pad := map[bool]event.Pad{false: event.PadX, true: event.PadText}[textPad]
		for _, e := range out {
			want, _ := event.EncodePad(event.Event{Seq: e.Seq, T: e.T}, 300, pad)
			if !bytes.Equal(e.Data, want) {
				t.Errorf("TextPad %v: event %q, want %q", textPad, e.Data, want)
			}
		}
		if st := ts.Stats(); st.Pad != pad.String() {
			t.Errorf("stats pad %q, want %q", st.Pad, pad)
		}
	}
}

// TestStatsJSON: the new fields keep Stats' snake_case names.
func TestStatsJSON(t *testing.T) {
	t.Parallel()
	ts := startWeb(t, Config{Response: webhttp.ResponseDeployment, Compress: true, TextPad: true}, true)
	b, err := json.Marshal(ts.Stats())
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"tls":true`, `"response_headers":"deployment"`, `"compress":true`, `"pad":"text"`, `"http2_requests":0`} {
		if !bytes.Contains(b, []byte(want)) {
			t.Errorf("stats JSON lacks %s: %s", want, b)
		}
	}
}
