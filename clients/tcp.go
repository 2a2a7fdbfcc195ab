package clients

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"pushbench/transport"
)

const (
	// tcpProtocol is the Upgrade token of the raw TCP transport.
	tcpProtocol = "pushbench-tcp"
	// tcpReadBuffer is the bufio size under each connection: dozens of
	// small lines per read system call, as for WebSocket; a longer line is
	// assembled in tcpSubscriber.long.
	tcpReadBuffer = 4096
	// tcpHandshakeTimeout bounds the upgrade against a server that accepts
	// the connection but never answers.
	tcpHandshakeTimeout = 10 * time.Second
)

func init() {
	registerClient(transport.TCP, func(cfg Config) (Subscriber, error) { return newTCP(cfg) })
}

// tcpSubscriber is the raw TCP subscriber: GET /tcp?since=N upgraded to
// pushbench-tcp, then one event or gap notice per line, resumed with since.
type tcpSubscriber struct {
	cfg    Config
	url    string     // for errors: base + path + "?since="
	addr   string     // host:port to dial
	tls    *tlsDialer // for an https base URL; nil for http
	prefix []byte     // the request up to the resume point
	suffix []byte     // the request after it
	dial   dialFunc
	sess   session
	sub    *signal
	d      delivery
	br     *bufio.Reader // reused across connections
	req    []byte        // request buffer
	long   []byte        // a line longer than the read buffer, assembled

	link         atomic.Pointer[link] // the open connection, for Send
	watch        sendWatch
	notConnected error
}

var _ Subscriber = (*tcpSubscriber)(nil)

func newTCP(cfg Config) (*tcpSubscriber, error) {
	u, err := url.Parse(cfg.BaseURL) // New has checked it
	if err != nil {
		return nil, fmt.Errorf("tcp: base URL %q: %w", cfg.BaseURL, err)
	}
	info, _ := transport.Lookup(transport.TCP)
	port := u.Port()
	t := &tcpSubscriber{
		cfg:  cfg,
		url:  cfg.BaseURL + info.Path + "?" + roomQuery(cfg.Room) + "since=",
		dial: dialer(cfg),
		sess: streamSession(transport.TCP, cfg),
		sub:  newSignal(),
		d:    newDelivery(cfg),

		notConnected: notConnected(transport.TCP),
	}
	if u.Scheme == "https" {
		t.tls = newTLSDialer(cfg, t.dial, false)
		if port == "" {
			port = "443"
		}
	} else if port == "" {
		port = "80"
	}
	t.addr = net.JoinHostPort(u.Hostname(), port)
	// The floor transport sends the upgrade alone, whatever the header
	// profile: no browser can open a raw TCP stream, so no browser
	// fields (or cookie) belong on it, and its bytes stay the minimum
	// that any transport over HTTP needs. TLS it does use.
	t.prefix = []byte("GET " + u.EscapedPath() + info.Path + "?" + roomQuery(cfg.Room) + "since=")
	t.suffix = []byte(" HTTP/1.1\r\nHost: " + u.Host + "\r\nConnection: Upgrade\r\nUpgrade: " + tcpProtocol + "\r\n\r\n")
	return t, nil
}

func (t *tcpSubscriber) Subscribed() <-chan struct{} { return t.sub.ch }

// Run streams until ctx ends. It must be called once.
func (t *tcpSubscriber) Run(ctx context.Context, h Handler) error {
	defer t.watch.release()
	t.d.h = h
	return t.sess.run(ctx, t.stream)
}

// Send writes msg and "\n" as one line on the open connection, in one
// Write (Subscriber.Send): P + 1 bytes up for a message of P bytes. A
// message with a newline in it is refused: it would be two lines.
func (t *tcpSubscriber) Send(ctx context.Context, msg []byte) error {
	return countSend(t.cfg.Counters, t.send(ctx, msg))
}

func (t *tcpSubscriber) send(ctx context.Context, msg []byte) error {
	l := t.link.Load()
	if l == nil {
		return t.notConnected
	}
	if bytes.IndexByte(msg, '\n') >= 0 {
		return fmt.Errorf("tcp: send: %w", errNewline)
	}
	if err := l.acquire(ctx); err != nil {
		return err
	}
	defer l.release()
	if l.down.Load() {
		return t.notConnected
	}
	bp := getSendBuffer(len(msg) + 1)
	*bp = append(append(*bp, msg...), '\n')
	err := t.watch.write(ctx, l, *bp)
	sendBuffers.Put(bp)
	if err != nil && ctx.Err() == nil {
		return fmt.Errorf("tcp: send: %w", err)
	}
	return err
}

// stream opens one connection and delivers its lines, one batch per line,
// until the server ends it, it breaks, or ctx ends. An end of stream between
// two lines is the server's cut; one inside a line is an error, and the
// partial line is not delivered.
func (t *tcpSubscriber) stream(ctx context.Context) (progress bool, err error) {
	url := t.url + strconv.FormatUint(t.d.last, 10)
	conn, err := t.upgrade(ctx, url)
	if err != nil {
		return false, err
	}
	defer conn.Close()
	l := newLink(conn)
	t.link.Store(l)
	defer func() {
		// Withdrawn before the connection is closed.
		l.down.Store(true)
		t.link.Store(nil)
	}()
	t.sess.connected()
	t.sub.fire()

	// A push-only client is always in a read, so ctx cannot be checked
	// between reads: a watcher ends the read instead.
	stop := onCancel(ctx, func() { _ = conn.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()
	for {
		line, err := t.readLine()
		if ctx.Err() != nil {
			return progress, nil
		}
		if err == io.EOF {
			return progress, nil
		}
		if err != nil {
			return progress, fmt.Errorf("tcp %s: read: %w", url, err)
		}
		events, gap, err := t.d.decode(line, t.d.events[:0])
		if err != nil {
			return progress, fmt.Errorf("tcp %s: %w", url, err)
		}
		t.d.deliver(events, gap)
		progress = true
	}
}

// readLine returns the next line without its "\n", valid until the next
// call. A line longer than MaxMessage is an error; so is an end of stream
// inside a line (io.ErrUnexpectedEOF). io.EOF means the stream ended
// between two lines.
func (t *tcpSubscriber) readLine() ([]byte, error) {
	line, err := t.br.ReadSlice('\n')
	if err == nil {
		return t.bounded(line[:len(line)-1])
	}
	if !errors.Is(err, bufio.ErrBufferFull) {
		return nil, partial(line, err)
	}
	t.long = append(t.long[:0], line...)
	for {
		if len(t.long) > t.cfg.MaxMessage {
			return t.bounded(t.long)
		}
		line, err = t.br.ReadSlice('\n')
		t.long = append(t.long, line...)
		if err == nil {
			return t.bounded(t.long[:len(t.long)-1])
		}
		if !errors.Is(err, bufio.ErrBufferFull) {
			return nil, partial(t.long, err)
		}
	}
}

// bounded returns line, or an error if it is longer than MaxMessage.
func (t *tcpSubscriber) bounded(line []byte) ([]byte, error) {
	if len(line) > t.cfg.MaxMessage {
		return nil, fmt.Errorf("line longer than %d bytes", t.cfg.MaxMessage)
	}
	return line, nil
}

// partial turns an end of stream after part of a line into
// io.ErrUnexpectedEOF.
func partial(part []byte, err error) error {
	if err == io.EOF && len(part) > 0 {
		return io.ErrUnexpectedEOF
	}
	return err
}

// upgrade dials the server, runs the TLS handshake for an https base URL,
// and performs the upgrade to pushbench-tcp. Both handshakes together are
// bounded by tcpHandshakeTimeout, and a cancel of ctx during them sets a
// past deadline on the connection to end them at once.
func (t *tcpSubscriber) upgrade(ctx context.Context, url string) (net.Conn, error) {
	raw, err := t.dial(ctx, "tcp", t.addr)
	if err != nil {
		return nil, fmt.Errorf("tcp %s: %w", url, err)
	}
	_ = raw.SetDeadline(time.Now().Add(tcpHandshakeTimeout))
	stop := onCancel(ctx, func() { _ = raw.SetDeadline(time.Unix(1, 0)) })
	conn := raw
	if t.tls != nil {
		var tc *tls.Conn
		if tc, err = t.tls.handshake(ctx, raw); err == nil {
			conn = tc
		} else {
			err = fmt.Errorf("tcp %s: %w", url, err)
		}
	}
	if err == nil {
		// The request is written right away (Counters: an upgrade is
		// counted when its connection is ready for it).
		t.cfg.Counters.Requests.Add(1)
		err = t.handshake(conn, url)
	}
	stop()
	if err == nil {
		err = ctx.Err()
	}
	if err != nil {
		conn.Close()
		return nil, err
	}
	_ = conn.SetDeadline(time.Time{})
	return conn, nil
}

// handshake writes the upgrade request and reads the answer: 101 with
// Upgrade: pushbench-tcp, or a StatusError. The lines that follow the answer
// stay in t.br.
func (t *tcpSubscriber) handshake(conn net.Conn, url string) error {
	t.req = append(t.req[:0], t.prefix...)
	t.req = strconv.AppendUint(t.req, t.d.last, 10)
	t.req = append(t.req, t.suffix...)
	if _, err := conn.Write(t.req); err != nil {
		return fmt.Errorf("tcp %s: write upgrade: %w", url, err)
	}
	if t.br == nil {
		t.br = bufio.NewReaderSize(conn, tcpReadBuffer)
	} else {
		t.br.Reset(conn)
	}
	resp, err := http.ReadResponse(t.br, nil)
	if err != nil {
		return fmt.Errorf("tcp %s: read upgrade answer: %w", url, err)
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode >= 400:
		return statusError(url, resp)
	case resp.StatusCode != http.StatusSwitchingProtocols:
		return &StatusError{URL: url, Code: resp.StatusCode, Reason: "no " + tcpProtocol + " upgrade"}
	case !strings.EqualFold(resp.Header.Get("Upgrade"), tcpProtocol) ||
		!strings.EqualFold(resp.Header.Get("Connection"), "Upgrade"):
		return &StatusError{URL: url, Code: resp.StatusCode,
			Reason: fmt.Sprintf("upgrade to %q (Connection %q), want %s", resp.Header.Get("Upgrade"), resp.Header.Get("Connection"), tcpProtocol)}
	}
	return nil
}
