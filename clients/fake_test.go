package clients

import (
	"compress/gzip"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"pushbench/event"
	"pushbench/internal/testnet"
)

// The fake server below speaks docs/protocol.md for one transport, driven by
// a script: each poll request, or each stream connection, takes the next
// answer. Clients never import servers/, not even in tests.

// ending is what an answer does after its messages.
type ending int

const (
	// keep: polls answer normally; streams stay open until the client
	// leaves.
	keep ending = iota
	// endClean: streams end cleanly (SSE: the handler returns; WS: a close
	// frame 1001; TCP: the connection is closed after the last line).
	// Polls: as keep.
	endClean
	// cut: the TCP connection is closed abruptly — polls: before any
	// response; streams: after the messages (TCP: with a reset, as a clean
	// close between two lines is the protocol's end of stream).
	cut
	// hold: polls are held until the client leaves (a long poll with
	// nothing to say).
	hold
)

// answer is one scripted poll response or stream.
type answer struct {
	msgs   []string // events and gap notices, in order
	raw    string   // polls: this body instead of msgs; SSE, TCP: written after msgs
	end    ending
	status int // non-zero: answer with this status and reason, nothing else
	reason string
	// wait, if not nil, holds the answer (the request already logged)
	// until it is closed.
	wait <-chan struct{}
}

// request is what the fake saw of one poll or stream request.
type request struct {
	path           string
	since          string // the since query value
	hasSince       bool
	lastEventID    string
	accept         string
	acceptEncoding string
	proto          string
	room           string // the room query value
	hasRoom        bool
}

// upstream is a client message the fake received: a POST /send's body,
// a WebSocket message or a tcp line.
type upstream struct {
	path    string // /send, /ws or /tcp
	room    string
	hasRoom bool
	msg     string
	proto   string // a POST's
	remote  string // the client's address
	ctype   string // a POST's Content-Type
}

// fakeOptions is how a fake speaks HTTP beyond plain HTTP/1.1.
type fakeOptions struct {
	// tls serves TLS with this configuration (ALPN as it says; nil:
	// no TLS).
	tls *tls.Config
	// h2c also serves HTTP/2 with prior knowledge on a plain listener.
	h2c bool
	// gzip answers polls with gzip when the request accepts it.
	gzip bool
	// deflate accepts permessage-deflate on WebSocket when offered.
	deflate bool
}

// fake is a scripted protocol server on loopback.
type fake struct {
	url       string
	transport string
	opts      fakeOptions
	ts        *httptest.Server
	reqs      chan request // every request, in arrival order
	closes    chan int     // close codes WebSocket clients sent
	written   atomic.Uint64
	hello     chan uint64 // bytes written when an upgrade was done
	got       chan upstream
	remotes   chan string // the client address of every poll or stream request

	mu     sync.Mutex
	script []answer
	sends  []answer // POST /send answers, in order (status 0 or none left: 204)
	quit   chan struct{}
}

func newFake(t testing.TB, name string, script ...answer) *fake {
	t.Helper()
	return newFakeWith(t, name, fakeOptions{}, script...)
}

// newFakeWith is newFake speaking HTTP as opts says.
func newFakeWith(t testing.TB, name string, opts fakeOptions, script ...answer) *fake {
	t.Helper()
	f := &fake{
		opts:      opts,
		transport: name,
		reqs:      make(chan request, 4096),
		closes:    make(chan int, 16),
		hello:     make(chan uint64, 16),
		got:       make(chan upstream, 4096),
		remotes:   make(chan string, 4096),
		script:    script,
		quit:      make(chan struct{}),
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /poll", f.poll)
	mux.HandleFunc("GET /longpoll", f.poll)
	mux.HandleFunc("GET /sse", f.sse)
	mux.HandleFunc("GET /ws", f.ws)
	mux.HandleFunc("GET /tcp", f.tcp)
	mux.HandleFunc("POST /send", f.send)
	ts := httptest.NewUnstartedServer(mux)
	ts.Listener = &countingListener{Listener: ts.Listener, written: &f.written}
	if opts.h2c {
		p := new(http.Protocols)
		p.SetHTTP1(true)
		p.SetUnencryptedHTTP2(true)
		ts.Config.Protocols = p
	}
	if opts.tls != nil {
		// Below the TLS listener, the counting one counts ciphertext.
		ts.TLS = opts.tls
		// No "http: TLS handshake error" on stderr for a client that
		// a test makes refuse the certificate, or for a handshake
		// that the test's end cuts short.
		ts.Config.ErrorLog = log.New(io.Discard, "", 0)
		ts.StartTLS()
	} else {
		ts.Start()
	}
	f.ts = ts
	f.url = ts.URL
	t.Cleanup(func() {
		close(f.quit)
		ts.Close()
	})
	return f
}

// next records r and returns the next answer (ok false: script exhausted).
func (f *fake) next(r *http.Request) (answer, bool) {
	since, hasSince := r.URL.Query()["since"]
	room, hasRoom := r.URL.Query()["room"]
	req := request{path: r.URL.Path, hasSince: hasSince,
		lastEventID: r.Header.Get("Last-Event-ID"), accept: r.Header.Get("Accept"),
		acceptEncoding: r.Header.Get("Accept-Encoding"), proto: r.Proto, hasRoom: hasRoom}
	if hasSince {
		req.since = since[0]
	}
	if hasRoom {
		req.room = room[0]
	}
	f.mu.Lock()
	a, ok := answer{}, len(f.script) > 0
	if ok {
		a = f.script[0]
		f.script = f.script[1:]
	}
	f.mu.Unlock()
	select {
	case f.remotes <- r.RemoteAddr:
	default:
		panic("fake: remote log full")
	}
	select {
	case f.reqs <- req:
	default:
		panic("fake: request log full")
	}
	if a.wait != nil {
		select {
		case <-a.wait:
		case <-r.Context().Done():
		case <-f.quit:
		}
	}
	return a, ok
}

// receive logs a client message.
func (f *fake) receive(r *http.Request, msg string) {
	room, hasRoom := r.URL.Query()["room"]
	u := upstream{path: r.URL.Path, hasRoom: hasRoom, msg: msg, remote: r.RemoteAddr}
	if hasRoom {
		u.room = room[0]
	}
	if r.Method == http.MethodPost {
		u.proto, u.ctype = r.Proto, r.Header.Get("Content-Type")
	}
	select {
	case f.got <- u:
	default:
		panic("fake: upstream log full")
	}
}

// send answers a POST /send with the next of f.sends, 204 by default.
func (f *fake) send(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return
	}
	f.receive(r, string(body))
	f.mu.Lock()
	var a answer
	if len(f.sends) > 0 {
		a, f.sends = f.sends[0], f.sends[1:]
	}
	f.mu.Unlock()
	if a.status != 0 {
		http.Error(w, a.reason, a.status)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// received waits for the next client message.
func (f *fake) received(t *testing.T) upstream {
	t.Helper()
	select {
	case u := <-f.got:
		return u
	case <-time.After(guard):
		t.Fatal("no client message arrived")
		return upstream{}
	}
}

// nextRequest waits for the next poll or stream request.
func (f *fake) nextRequest(t *testing.T) request {
	t.Helper()
	select {
	case r := <-f.reqs:
		return r
	case <-time.After(guard):
		t.Fatal("no request arrived")
		return request{}
	}
}

// waitGone blocks until the client has gone or the test ends.
func (f *fake) waitGone(r *http.Request) {
	select {
	case <-r.Context().Done():
	case <-f.quit:
	}
}

func (f *fake) poll(w http.ResponseWriter, r *http.Request) {
	a, ok := f.next(r)
	if !ok {
		a = answer{}
		if r.URL.Path == "/longpoll" {
			a.end = hold
		}
	}
	switch {
	case a.status != 0:
		http.Error(w, a.reason, a.status)
	case a.end == cut:
		conn, _, err := http.NewResponseController(w).Hijack()
		if err != nil {
			panic(err)
		}
		conn.Close()
	case a.end == hold:
		f.waitGone(r)
	default:
		body := a.raw
		if body == "" {
			body = "[" + strings.Join(a.msgs, ",") + "]"
		}
		w.Header().Set("Content-Type", "application/json")
		if f.opts.gzip && strings.Contains(r.Header.Get("Accept-Encoding"), "gzip") {
			w.Header().Set("Content-Encoding", "gzip")
			zw := gzip.NewWriter(w)
			fmt.Fprint(zw, body)
			zw.Close()
			return
		}
		fmt.Fprint(w, body)
	}
}

func (f *fake) sse(w http.ResponseWriter, r *http.Request) {
	a, _ := f.next(r)
	if a.status != 0 {
		http.Error(w, a.reason, a.status)
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.WriteHeader(http.StatusOK)
	for _, m := range a.msgs {
		fmt.Fprintf(w, "id: %s\ndata: %s\n\n", messageID(m), m)
	}
	fmt.Fprint(w, a.raw)
	http.NewResponseController(w).Flush()
	switch a.end {
	case endClean:
		return
	case cut:
		panic(http.ErrAbortHandler) // closes the connection mid-stream
	}
	f.waitGone(r)
}

func (f *fake) ws(w http.ResponseWriter, r *http.Request) {
	a, _ := f.next(r)
	if a.status != 0 {
		http.Error(w, a.reason, a.status)
		return
	}
	conn, err := (&websocket.Upgrader{EnableCompression: f.opts.deflate}).Upgrade(w, r, nil)
	if err != nil {
		return
	}
	defer conn.Close()
	f.hello <- f.written.Load()
	for _, m := range a.msgs {
		if err := conn.WriteMessage(websocket.TextMessage, []byte(m)); err != nil {
			return
		}
	}
	switch a.end {
	case cut:
		return // the deferred Close, without a close frame
	case endClean:
		msg := websocket.FormatCloseMessage(websocket.CloseGoingAway, "bye")
		conn.WriteControl(websocket.CloseMessage, msg, time.Now().Add(time.Second))
	}
	// Read (and so answer control frames) until the client goes; end on
	// test cleanup too.
	done := make(chan struct{})
	defer close(done)
	go func() {
		select {
		case <-f.quit:
			conn.NetConn().Close()
		case <-done:
		}
	}()
	for {
		typ, msg, err := conn.ReadMessage()
		if err != nil {
			var ce *websocket.CloseError
			if errors.As(err, &ce) {
				f.closes <- ce.Code
			}
			return
		}
		if typ == websocket.TextMessage {
			f.receive(r, string(msg))
		}
	}
}

// tcpSwitch is the raw TCP transport's answer to its upgrade
// (docs/protocol.md).
const tcpSwitch = "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: pushbench-tcp\r\n\r\n"

func (f *fake) tcp(w http.ResponseWriter, r *http.Request) {
	a, _ := f.next(r)
	if a.status != 0 {
		http.Error(w, a.reason, a.status)
		return
	}
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, tcpSwitch); err != nil {
		return
	}
	f.hello <- f.written.Load()
	for _, m := range a.msgs {
		if _, err := io.WriteString(conn, m+"\n"); err != nil {
			return
		}
	}
	if _, err := io.WriteString(conn, a.raw); err != nil {
		return
	}
	switch a.end {
	case cut:
		// Linger 0: Close sends a reset instead of an end of stream.
		raw := conn
		if tc, ok := conn.(*tls.Conn); ok {
			raw = tc.NetConn()
		}
		raw.(*countingServerConn).Conn.(*net.TCPConn).SetLinger(0)
		return
	case endClean:
		return // the deferred Close
	}
	// Read the client's lines until it goes; end on test cleanup too.
	done := make(chan struct{})
	defer close(done)
	go func() {
		select {
		case <-f.quit:
			conn.Close()
		case <-done:
		}
	}()
	for {
		line, err := brw.ReadString('\n')
		if err != nil {
			return
		}
		f.receive(r, strings.TrimSuffix(line, "\n"))
	}
}

// messageID is the SSE id of a message: the seq of an event, the end of a
// gap notice, and 999 for the broken messages of the error tests.
func messageID(m string) string {
	if event.IsGap([]byte(m)) {
		if g, err := event.DecodeGap([]byte(m)); err == nil {
			return strconv.FormatUint(g.To, 10)
		}
	}
	if e, err := event.Decode([]byte(m)); err == nil {
		return strconv.FormatUint(e.Seq, 10)
	}
	return "999"
}

// countingListener adds every byte its connections write to written.
type countingListener struct {
	net.Listener
	written *atomic.Uint64
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &countingServerConn{Conn: c, written: l.written}, nil
}

type countingServerConn struct {
	net.Conn
	written *atomic.Uint64
}

func (c *countingServerConn) Write(p []byte) (int, error) {
	// Counted before the write, so that a client that has read the
	// bytes never sees them uncounted; a short write takes back the rest.
	c.written.Add(uint64(len(p)))
	n, err := c.Conn.Write(p)
	if short := len(p) - n; short > 0 {
		c.written.Add(^uint64(short - 1)) // subtracts short
	}
	return n, err
}

// silentServer accepts connections and never answers. It reports each
// accepted connection on the returned channel.
func silentServer(t testing.TB) (string, <-chan struct{}) {
	t.Helper()
	accepted := make(chan struct{}, 16)
	addr := testnet.Serve(t, func(c net.Conn) {
		accepted <- struct{}{}
		_, _ = io.Copy(io.Discard, c) // never answers; ends when either side closes
	})
	return "http://" + addr, accepted
}

// closedPort returns a base URL whose port refuses connections.
func closedPort(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return "http://" + addr
}
