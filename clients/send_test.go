package clients

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"pushbench/event"
	"pushbench/internal/testnet"
	"pushbench/transport"
	"pushbench/webhttp"
)

// The tests of client-originated traffic (Subscriber.Send): what goes up
// on each transport, byte for byte, and when Send refuses.

// upMsg is client from's n-th upstream message of size bytes.
func upMsg(t testing.TB, from, n uint64, size int) []byte {
	t.Helper()
	b, err := event.AppendUpstream(nil, event.Upstream{From: from, N: n, T: int64(n) * 1000}, size)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// isHTTPSend reports whether the transport sends with POST /send.
func isHTTPSend(name string) bool { return name != transport.WebSocket && name != transport.TCP }

// sendCtx bounds a Send in a test: a hang detector, not a timing.
func sendCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), guard)
	t.Cleanup(cancel)
	return ctx
}

// TestSend: messages sent while subscribed reach the server in order, on
// the transport's upstream path (a frame, a line, or a POST of the profile's
// Content-Type on a second connection), for the subscriber's room; they
// are counted as sent, and only POSTs as send requests, never as requests.
func TestSend(t *testing.T) {
	t.Parallel()
	for _, tr := range transport.Names() {
		for _, room := range []int{0, 3} {
			t.Run(fmt.Sprintf("%s/room=%d", tr, room), func(t *testing.T) {
				t.Parallel()
				f := newFake(t, tr, answer{msgs: []string{ev(1)}})
				c := startClient(t, tr, f.url, Config{Room: room, Interval: time.Hour}, nil)
				<-c.batches // subscribed: the first answer or message has arrived
				const n = 3
				var msgs [][]byte
				for i := uint64(1); i <= n; i++ {
					msgs = append(msgs, upMsg(t, 7, i, 100+int(i)))
					if err := c.sub.Send(sendCtx(t), msgs[i-1]); err != nil {
						t.Fatalf("Send %d: %v", i, err)
					}
				}
				for i := range n {
					u := f.received(t)
					if u.msg != string(msgs[i]) {
						t.Errorf("message %d: got %q, want %q", i, u.msg, msgs[i])
					}
					wantPath := "/send"
					if !isHTTPSend(tr) {
						wantPath = "/" + tr
					}
					if u.path != wantPath || u.hasRoom != (room > 0) || (room > 0 && u.room != strconv.Itoa(room)) {
						t.Errorf("message %d on %s room %q (%v), want %s room %d", i, u.path, u.room, u.hasRoom, wantPath, room)
					}
					if isHTTPSend(tr) && (u.proto != "HTTP/1.1" || u.ctype != "application/json") {
						t.Errorf("POST over %s with Content-Type %q", u.proto, u.ctype)
					}
				}
				seen := settledRequests(t, f, tr)
				c.cancel()
				c.collect(t)
				n64 := c.counters
				wantPosts, wantDials := uint64(0), uint64(1)
				if isHTTPSend(tr) {
					wantPosts, wantDials = n, 2
				}
				if s, e, p := n64.Sent.Load(), n64.SendErrors.Load(), n64.SendRequests.Load(); s != n || e != 0 || p != wantPosts {
					t.Errorf("sent %d send errors %d send requests %d, want %d, 0, %d", s, e, p, n, wantPosts)
				}
				if r := n64.Requests.Load(); r != seen {
					t.Errorf("requests %d, want %d (the polls and streams the server saw, no POST)", r, seen)
				}
				if d, rc := n64.Dials.Load(), n64.Reconnects.Load(); d != wantDials || rc != 0 {
					t.Errorf("dials %d reconnects %d, want %d and 0", d, rc, wantDials)
				}
			})
		}
	}
}

// settledRequests waits until the fake has seen every poll or stream
// request of a client answered once (with Interval an hour): one, and for
// a long poll the next poll too, which the fake holds. It returns how
// many.
func settledRequests(t *testing.T, f *fake, tr string) uint64 {
	t.Helper()
	n := uint64(1)
	if tr == transport.LongPoll {
		n = 2
	}
	for range n {
		f.nextRequest(t)
	}
	return n
}

// TestSendNotConnected: Send refuses at once, with ErrNotConnected, before
// the subscription is in place, while a stream is down between a cut and
// its reconnect, and after Run has returned; each refusal is a send error.
// Once the stream is back, Send works again.
func TestSendNotConnected(t *testing.T) {
	t.Parallel()
	for _, tr := range transport.Names() {
		t.Run(tr, func(t *testing.T) {
			t.Parallel()
			release := make(chan struct{})
			script := []answer{{msgs: []string{ev(1)}, end: endClean}, {msgs: []string{ev(2)}, wait: release}}
			if isPoll(tr) {
				script = []answer{{msgs: []string{ev(1)}, wait: release}}
			}
			f := newFake(t, tr, script...)
			cfg := Config{Counters: new(Counters), Interval: time.Hour, BaseURL: f.url,
				Backoff: Backoff{Min: time.Millisecond, Max: 4 * time.Millisecond, Tries: 5}}
			sub, err := New(tr, cfg)
			if err != nil {
				t.Fatal(err)
			}
			msg := upMsg(t, 1, 1, 100)
			refused := 0
			refuse := func(when string) {
				t.Helper()
				refused++
				if err := sub.Send(sendCtx(t), msg); !errors.Is(err, ErrNotConnected) {
					t.Errorf("Send %s: %v, want ErrNotConnected", when, err)
				}
			}
			refuse("before Run")

			ctx, cancel := context.WithCancel(context.Background())
			batches := make(chan uint64, 16)
			errc := make(chan error, 1)
			go func() {
				errc <- sub.Run(ctx, func(b Batch) {
					for _, e := range b.Events {
						batches <- e.Seq
					}
				})
			}()
			t.Cleanup(func() {
				cancel()
				<-errc
			})
			f.nextRequest(t)
			if isPoll(tr) {
				// The first poll is held: a short poll has not been
				// answered, so it is not subscribed; a long poll is.
				if tr == transport.ShortPoll {
					refuse("before the first poll is answered")
				}
				close(release)
			} else {
				f.nextRequest(t) // the stream was cut, and the client is reconnecting
				refuse("while reconnecting")
				close(release)
			}
			want := uint64(2)
			if isPoll(tr) {
				want = 1
			}
			for seq := range batches {
				if seq == want {
					break
				}
			}
			if err := sub.Send(sendCtx(t), msg); err != nil {
				t.Errorf("Send once subscribed again: %v", err)
			}
			if u := f.received(t); u.msg != string(msg) {
				t.Errorf("server got %q", u.msg)
			}
			cancel()
			if err := <-errc; err != nil {
				t.Fatalf("Run: %v", err)
			}
			errc <- nil // for the cleanup
			refuse("after Run")
			n := cfg.Counters
			if s, e := n.Sent.Load(), n.SendErrors.Load(); s != 1 || e != uint64(refused) {
				t.Errorf("sent %d send errors %d, want 1 and %d", s, e, refused)
			}
		})
	}
}

// TestSendStatus: a POST answered 4xx is a *StatusError with the server's
// reason, counted as a send error; the connection stays alive for the
// next message.
func TestSendStatus(t *testing.T) {
	t.Parallel()
	for _, tr := range []string{transport.ShortPoll, transport.LongPoll, transport.SSE} {
		t.Run(tr, func(t *testing.T) {
			t.Parallel()
			f := newFake(t, tr, answer{msgs: []string{ev(1)}})
			statuses := []answer{
				{status: http.StatusConflict, reason: "no workload running"},
				{status: http.StatusNotFound, reason: "no room 3"},
				{status: http.StatusTooManyRequests, reason: "flooding"},
				{status: http.StatusBadRequest, reason: "malformed message"},
			}
			f.mu.Lock()
			f.sends = statuses
			f.mu.Unlock()
			c := startClient(t, tr, f.url, Config{Interval: time.Hour, Room: 3}, nil)
			<-c.batches
			msg := upMsg(t, 1, 1, 100)
			for _, a := range statuses {
				err := c.sub.Send(sendCtx(t), msg)
				var se *StatusError
				if !errors.As(err, &se) || se.Code != a.status || se.Reason != a.reason || !strings.Contains(se.URL, "/send?room=3") {
					t.Errorf("Send: %v, want a StatusError %d %q", err, a.status, a.reason)
				}
			}
			if err := c.sub.Send(sendCtx(t), msg); err != nil {
				t.Errorf("Send answered 204: %v", err)
			}
			n := c.counters
			if s, e, p := n.Sent.Load(), n.SendErrors.Load(), n.SendRequests.Load(); s != 1 || e != uint64(len(statuses)) || p != uint64(len(statuses)+1) {
				t.Errorf("sent %d send errors %d send requests %d, want 1, %d, %d", s, e, p, len(statuses), len(statuses)+1)
			}
			if d := n.Dials.Load(); d != 2 {
				t.Errorf("dials %d, want 2 (the poll's or stream's, and one for every POST)", d)
			}
			if e := n.Errors.Load(); e != 0 {
				t.Errorf("errors %d: a failed send is no subscription error", e)
			}
		})
	}
}

// TestSendConnections: over HTTP/1.1 (with and without TLS) the POSTs go on
// a connection of their own, whose TLS handshake resumes the first one's
// session; over HTTP/2 they share the subscription's one connection.
func TestSendConnections(t *testing.T) {
	t.Parallel()
	tlsServer := fakeOptions{tls: webhttp.ServerConfig(testCert())}
	for _, m := range []struct {
		name   string
		opts   webhttp.Options
		server fakeOptions
	}{
		{"http1", webhttp.Browser(), fakeOptions{}},
		{"tls", withTLS(webhttp.Browser(), false), tlsServer},
		{"h2", withTLS(webhttp.Browser(), true), tlsServer},
		{"h2c", h2cOptions(), fakeOptions{h2c: true}},
	} {
		for _, tr := range []string{transport.ShortPoll, transport.LongPoll, transport.SSE} {
			t.Run(m.name+"/"+tr, func(t *testing.T) {
				t.Parallel()
				h2 := m.opts.HTTP == webhttp.HTTP2
				f := newFakeWith(t, tr, m.server, answer{msgs: []string{ev(1)}})
				cfg := Config{HTTP: m.opts, Interval: time.Hour}
				if m.opts.TLS {
					cfg.Roots = rootsOf(testCert())
				}
				c := startClient(t, tr, f.url, cfg, nil)
				<-c.batches
				h2Answers := c.counters.HTTP2Responses.Load()
				const n = 3
				for i := uint64(1); i <= n; i++ {
					if err := c.sub.Send(sendCtx(t), upMsg(t, 1, i, 200)); err != nil {
						t.Fatalf("Send: %v", err)
					}
				}
				subRemote := <-f.remotes
				wantProto := "HTTP/1.1"
				if h2 {
					wantProto = "HTTP/2.0"
				}
				for i := range n {
					u := f.received(t)
					if u.proto != wantProto {
						t.Errorf("POST %d over %s, want %s", i, u.proto, wantProto)
					}
					if (u.remote == subRemote) != h2 {
						t.Errorf("POST %d from %s, the subscription from %s (HTTP/2: %v)", i, u.remote, subRemote, h2)
					}
				}
				seen := settledRequests(t, f, tr)
				c.cancel()
				c.collect(t)
				nc := c.counters
				wantDials := uint64(2)
				if h2 {
					wantDials = 1
				}
				if d, r := nc.Dials.Load(), nc.Reconnects.Load(); d != wantDials || r != 0 {
					t.Errorf("dials %d reconnects %d, want %d and 0", d, r, wantDials)
				}
				if p, r := nc.SendRequests.Load(), nc.Requests.Load(); p != n || r != seen {
					t.Errorf("send requests %d requests %d, want %d and %d", p, r, n, seen)
				}
				if h := nc.HTTP2Responses.Load(); h != h2Answers {
					t.Errorf("HTTP/2 answers %d, want %d: the POSTs' answers are not the subscription's", h, h2Answers)
				}
				if m.opts.TLS {
					checkHandshakes(t, nc, true, wantDials, wantDials-1)
				}
			})
		}
	}
}

// TestSendCanceled: a Send whose ctx has ended sends nothing and returns
// ctx's error.
func TestSendCanceled(t *testing.T) {
	t.Parallel()
	for _, tr := range transport.Names() {
		t.Run(tr, func(t *testing.T) {
			t.Parallel()
			f := newFake(t, tr, answer{msgs: []string{ev(1)}})
			c := startClient(t, tr, f.url, Config{Interval: time.Hour}, nil)
			<-c.batches
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			if err := c.sub.Send(ctx, upMsg(t, 1, 1, 100)); !errors.Is(err, context.Canceled) {
				t.Errorf("Send: %v, want context.Canceled", err)
			}
			if s, e, p := c.counters.Sent.Load(), c.counters.SendErrors.Load(), c.counters.SendRequests.Load(); s != 0 || e != 1 || p != 0 {
				t.Errorf("sent %d send errors %d send requests %d, want 0, 1, 0", s, e, p)
			}
		})
	}
}

// TestSendWatchInterrupts: a write blocked on a peer that does not read
// ends when its Send's ctx does, with ctx's error, and takes its
// connection down; one watch serves every Send of the same ctx.
func TestSendWatchInterrupts(t *testing.T) {
	t.Parallel()
	client, server := net.Pipe()
	defer server.Close()
	l := newLink(client)
	var w sendWatch
	defer w.release()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// A first write the peer reads completely.
	go func() { _, _ = io.ReadFull(server, make([]byte, 3)) }()
	if err := w.write(ctx, l, []byte("abc")); err != nil {
		t.Fatalf("write: %v", err)
	}
	started := make(chan struct{})
	go func() {
		// Read one byte of the second write, so that it is under way,
		// then nothing more.
		_, _ = server.Read(make([]byte, 1))
		close(started)
	}()
	errc := make(chan error, 1)
	go func() { errc <- w.write(ctx, l, []byte("defgh")) }()
	<-started
	cancel()
	select {
	case err := <-errc:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("write: %v, want context.Canceled", err)
		}
	case <-time.After(guard):
		t.Fatal("the blocked write did not end with its ctx")
	}
	if _, err := client.Write([]byte("x")); !errors.Is(err, io.ErrClosedPipe) {
		t.Errorf("after the interrupted write the connection is not closed: %v", err)
	}
}

// rawSendServer serves one transport's subscription from canned bytes and
// reads what the client sends after it (WebSocket frames, tcp lines) or
// the POSTs on the connections that ask for /send, reporting each message
// byte for byte.
type rawSendServer struct {
	url   string
	heads chan string // every POST's head
	msgs  chan []byte // every message: a frame whole, a line whole, a POST's body
}

// wsFrameRaw is one client frame as the server read it.
func readClientFrame(br *bufio.Reader) ([]byte, error) {
	var h [2]byte
	if _, err := io.ReadFull(br, h[:]); err != nil {
		return nil, err
	}
	frame := append([]byte(nil), h[:]...)
	n := uint64(h[1] & 0x7f)
	switch n {
	case 126:
		var x [2]byte
		if _, err := io.ReadFull(br, x[:]); err != nil {
			return nil, err
		}
		frame = append(frame, x[:]...)
		n = uint64(binary.BigEndian.Uint16(x[:]))
	case 127:
		var x [8]byte
		if _, err := io.ReadFull(br, x[:]); err != nil {
			return nil, err
		}
		frame = append(frame, x[:]...)
		n = binary.BigEndian.Uint64(x[:])
	}
	if h[1]&0x80 != 0 {
		n += 4
	}
	rest := make([]byte, n)
	if _, err := io.ReadFull(br, rest); err != nil {
		return nil, err
	}
	return append(frame, rest...), nil
}

// unmask returns the payload of a masked client frame.
func unmask(frame []byte, headerLen int) []byte {
	key := frame[headerLen-4 : headerLen]
	p := append([]byte(nil), frame[headerLen:]...)
	for i := range p {
		p[i] ^= key[i%4]
	}
	return p
}

func newRawSendServer(t *testing.T, tr string) *rawSendServer {
	t.Helper()
	s := &rawSendServer{heads: make(chan string, 64), msgs: make(chan []byte, 64)}
	addr := testnet.Serve(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		for {
			head, err := readRawHead(br)
			if err != nil {
				return
			}
			if strings.HasPrefix(head, "POST /send") {
				n, _ := strconv.Atoi(headerValue(head, "Content-Length"))
				body := make([]byte, n)
				if _, err := io.ReadFull(br, body); err != nil {
					return
				}
				s.heads <- head
				s.msgs <- body
				if _, err := io.WriteString(c, rawSendAnswer); err != nil {
					return
				}
				continue
			}
			switch tr {
			case transport.ShortPoll:
				_, err = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n[]")
			case transport.LongPoll:
				_, _ = br.ReadByte() // held until the client goes
				return
			case transport.SSE:
				_, err = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\nid: 1\ndata: "+ev(1)+"\n\n")
				if err == nil {
					_, _ = br.ReadByte()
				}
				return
			case transport.WebSocket:
				_, err = io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: "+
					wsAccept(head)+"\r\n\r\n"+wsFrame(ev(1)))
				for err == nil {
					var frame []byte
					if frame, err = readClientFrame(br); err == nil {
						if frame[0]&0x0f == 0x8 {
							return // the client's close: hang up
						}
						s.msgs <- frame
					}
				}
				return
			case transport.TCP:
				_, err = io.WriteString(c, tcpSwitch+ev(1)+"\n")
				for err == nil {
					var line []byte
					if line, err = br.ReadBytes('\n'); err == nil {
						s.msgs <- line
					}
				}
				return
			}
			if err != nil {
				return
			}
		}
	})
	s.url = "http://" + addr
	return s
}

// rawSendAnswer is the raw server's answer to a POST /send.
const rawSendAnswer = "HTTP/1.1 204 No Content\r\n\r\n"

// readRawHead reads one request head, its blank line included.
func readRawHead(br *bufio.Reader) (string, error) {
	var head strings.Builder
	for {
		line, err := br.ReadString('\n')
		head.WriteString(line)
		if err != nil {
			return "", err
		}
		if line == "\r\n" {
			return head.String(), nil
		}
	}
}

// startSending starts a subscriber against s and waits until it can send.
func startSending(t *testing.T, tr string, s *rawSendServer, cfg Config) *client {
	t.Helper()
	cfg.Interval = time.Hour
	c := startClient(t, tr, s.url, cfg, nil)
	c.subscribed(t)
	if !isPoll(tr) {
		<-c.batches
	}
	return c
}

// TestWebSocketSendBytesExact: a message of P bytes goes up as one masked
// text frame of P + 6 bytes (P ≤ 125), P + 8 (126 ≤ P ≤ 65535) or P + 14,
// which is all that BytesUp grows by; the payload unmasks to the message.
func TestWebSocketSendBytesExact(t *testing.T) {
	t.Parallel()
	s := newRawSendServer(t, transport.WebSocket)
	c := startSending(t, transport.WebSocket, s, Config{})
	for _, tc := range []struct{ size, header int }{
		{event.UpstreamMinSize, 6}, {100, 6}, {125, 6}, {126, 8}, {4096, 8}, {65535, 8}, {65536, 14}, {300000, 14},
	} {
		msg := upMsg(t, 42, uint64(tc.size), tc.size)
		before := c.counters.BytesUp.Load()
		if err := c.sub.Send(sendCtx(t), msg); err != nil {
			t.Fatalf("Send %d bytes: %v", tc.size, err)
		}
		up := c.counters.BytesUp.Load() - before
		frame := <-s.msgs
		if up != uint64(tc.size+tc.header) || len(frame) != tc.size+tc.header {
			t.Errorf("message of %d bytes: %d bytes up, frame of %d, want %d + %d", tc.size, up, len(frame), tc.size, tc.header)
			continue
		}
		if frame[0] != 0x81 || frame[1]&0x80 == 0 {
			t.Errorf("message of %d bytes: frame starts %#x %#x, want a final masked text frame", tc.size, frame[0], frame[1])
		}
		if got := unmask(frame, tc.header); string(got) != string(msg) {
			t.Errorf("message of %d bytes: the frame unmasks to something else", tc.size)
		}
	}
	if s, p := c.counters.Sent.Load(), c.counters.SendRequests.Load(); s != 8 || p != 0 {
		t.Errorf("sent %d send requests %d, want 8 and 0", s, p)
	}
}

// TestTCPSendBytesExact: a message of P bytes goes up as one line of P + 1
// bytes.
func TestTCPSendBytesExact(t *testing.T) {
	t.Parallel()
	s := newRawSendServer(t, transport.TCP)
	c := startSending(t, transport.TCP, s, Config{Room: 4})
	for _, size := range []int{event.UpstreamMinSize, 100, 4096, 70000} {
		msg := upMsg(t, 9, uint64(size), size)
		before := c.counters.BytesUp.Load()
		if err := c.sub.Send(sendCtx(t), msg); err != nil {
			t.Fatalf("Send %d bytes: %v", size, err)
		}
		if up := c.counters.BytesUp.Load() - before; up != uint64(size+1) {
			t.Errorf("message of %d bytes: %d bytes up, want %d", size, up, size+1)
		}
		if line := <-s.msgs; string(line) != string(msg)+"\n" {
			t.Errorf("message of %d bytes: the server read another line", size)
		}
	}
	err := c.sub.Send(sendCtx(t), []byte("two\nlines"))
	if err == nil || errors.Is(err, ErrNotConnected) {
		t.Errorf("Send of two lines: %v, want an error", err)
	}
	if s, e := c.counters.Sent.Load(), c.counters.SendErrors.Load(); s != 4 || e != 1 {
		t.Errorf("sent %d send errors %d, want 4 and 1", s, e)
	}
}

// TestSendRequestExact: a POST /send carries exactly its request line,
// Host, the User-Agent Go writes unless the profile has one, Content-Length,
// the profile's Send fields (webhttp.RequestFields) and the body, which is
// all that BytesUp grows by; the 204 answer is read, and is all that
// BytesDown grows by.
func TestSendRequestExact(t *testing.T) {
	t.Parallel()
	browser := webhttp.Browser()
	browser.CookieBytes = 256
	for _, tr := range []string{transport.ShortPoll, transport.LongPoll, transport.SSE} {
		for _, p := range []struct {
			name string
			opts webhttp.Options
			room int
		}{{"go", webhttp.Default(), 0}, {"go-room", webhttp.Default(), 5}, {"browser", browser, 17}} {
			t.Run(tr+"/"+p.name, func(t *testing.T) {
				t.Parallel()
				s := newRawSendServer(t, tr)
				c := startSending(t, tr, s, Config{HTTP: p.opts, Room: p.room})
				host := strings.TrimPrefix(s.url, "http://")
				for i, size := range []int{100, 1000} {
					msg := upMsg(t, 3, uint64(i+1), size)
					up0, down0 := c.counters.BytesUp.Load(), c.counters.BytesDown.Load()
					if err := c.sub.Send(sendCtx(t), msg); err != nil {
						t.Fatalf("Send: %v", err)
					}
					up, down := c.counters.BytesUp.Load()-up0, c.counters.BytesDown.Load()-down0
					head, body := <-s.heads, <-s.msgs

					line := "POST /send HTTP/1.1"
					if p.room > 0 {
						line = "POST /send?room=" + strconv.Itoa(p.room) + " HTTP/1.1"
					}
					profile := p.opts.RequestFields(webhttp.Send, "http://"+host, false)
					var lib []webhttp.Field
					if p.opts.Headers == webhttp.HeadersGo {
						lib = append(lib, webhttp.Field{Name: "User-Agent", Value: "Go-http-client/1.1"})
					}
					length := webhttp.Field{Name: "Content-Length", Value: strconv.Itoa(size)}
					lib = append(lib, length)
					want := wantPostHead(line, host, profile, lib)
					if head != want {
						t.Errorf("POST head\n got %q\nwant %q", head, want)
					}
					if string(body) != string(msg) {
						t.Errorf("POST body %q, want %q", body, msg)
					}
					size := len(line) + 2 + len("Host: ") + len(host) + 2 + webhttp.FieldBytes(profile) + webhttp.FieldBytes(lib) + 2 + size
					if up != uint64(size) || len(want)+len(msg) != size {
						t.Errorf("bytes up %d (head %d + body %d), want %d", up, len(want), len(msg), size)
					}
					if down != uint64(len(rawSendAnswer)) {
						t.Errorf("bytes down %d, want %d (the 204)", down, len(rawSendAnswer))
					}
					if i == 0 {
						t.Logf("%s POST of a %d-byte message: %d bytes up (profile fields %d), %d down",
							p.name, len(msg), size, webhttp.FieldBytes(profile), down)
					}
				}
				if d := c.counters.Dials.Load(); d != 2 {
					t.Errorf("dials %d, want 2", d)
				}
			})
		}
	}
}

// wantPostHead is the head net/http writes for a POST: the request line,
// Host, User-Agent, Content-Length, then the other fields sorted by name.
func wantPostHead(line, host string, profile, lib []webhttp.Field) string {
	var first, rest []webhttp.Field
	for _, f := range append(append([]webhttp.Field(nil), profile...), lib...) {
		switch f.Name {
		case "User-Agent":
			first = append([]webhttp.Field{f}, first...)
		case "Content-Length":
			first = append(first, f)
		default:
			rest = append(rest, f)
		}
	}
	head := wantHead(line, host, rest)
	var b strings.Builder
	for _, f := range first {
		b.WriteString(f.Name + ": " + f.Value + "\r\n")
	}
	i := len(line) + 2 + len("Host: ") + len(host) + 2
	return head[:i] + b.String() + head[i:]
}

// TestSendRace: one goroutine sends all along while Run reads, loses its
// stream and reconnects; every Send is counted once, as sent or failed.
// Run it with -race.
func TestSendRace(t *testing.T) {
	t.Parallel()
	for _, tr := range transport.Names() {
		t.Run(tr, func(t *testing.T) {
			t.Parallel()
			const n = 6
			var script []answer
			for seq := uint64(1); seq <= n; seq++ {
				a := answer{msgs: []string{ev(seq)}}
				if !isPoll(tr) && seq < n {
					a.end = []ending{endClean, cut}[seq%2]
				}
				script = append(script, a)
			}
			f := newFake(t, tr, script...)
			c := startClient(t, tr, f.url, Config{Room: 2}, upTo(n))
			ctx, cancel := context.WithCancel(context.Background())
			msg := upMsg(t, 5, 1, 120)
			var calls uint64
			var wg sync.WaitGroup
			wg.Go(func() {
				for ctx.Err() == nil {
					_ = c.sub.Send(ctx, msg)
					calls++
				}
			})
			c.collect(t)
			cancel()
			wg.Wait()
			nc := c.counters
			if s, e := nc.Sent.Load(), nc.SendErrors.Load(); s+e != calls {
				t.Errorf("sent %d + send errors %d, want %d calls", s, e, calls)
			}
		})
	}
}

// TestWebSocketSendDeflate: with permessage-deflate negotiated (the browser
// profile offers it; this server accepts), Send compresses as a browser
// does: the server reads the messages intact, in fewer bytes than their
// own; without it (Go's profile) they go up uncompressed.
func TestWebSocketSendDeflate(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name       string
		opts       webhttp.Options
		compressed bool
	}{{"browser", webhttp.Browser(), true}, {"go", webhttp.Default(), false}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFakeWith(t, transport.WebSocket, fakeOptions{deflate: true}, answer{msgs: []string{ev(1)}})
			c := startClient(t, transport.WebSocket, f.url, Config{HTTP: tc.opts}, nil)
			<-c.batches
			for i, size := range []int{100, 10000, 200000} {
				msg := upMsg(t, 2, uint64(i+1), size)
				before := c.counters.BytesUp.Load()
				if err := c.sub.Send(sendCtx(t), msg); err != nil {
					t.Fatalf("Send: %v", err)
				}
				up := c.counters.BytesUp.Load() - before
				if u := f.received(t); u.msg != string(msg) {
					t.Errorf("message of %d bytes arrived as %d bytes", size, len(u.msg))
				}
				if tc.compressed && up >= uint64(size) {
					t.Errorf("message of %d bytes took %d bytes up, not fewer", size, up)
				}
				if !tc.compressed && up <= uint64(size) {
					t.Errorf("message of %d bytes took %d bytes up, want it whole and framed", size, up)
				}
				t.Logf("message of %d bytes: %d bytes up", size, up)
			}
		})
	}
}
