package clients

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"pushbench/event"
	"pushbench/transport"
	"pushbench/webhttp"
)

const (
	// wsReadBuffer is the bufio size under each connection. 4 KiB holds
	// dozens of small frames per read system call; a larger message is
	// read through it without being buffered, so a bigger buffer would
	// only cost memory per client.
	wsReadBuffer = 4096
	// wsCloseGrace bounds the close handshake on ctx cancel: the time to
	// write our close frame, and then to wait for the server's.
	wsCloseGrace = 200 * time.Millisecond
	// wsHandshakeTimeout bounds the upgrade against a server that accepts
	// the connection but never answers.
	wsHandshakeTimeout = 10 * time.Second
)

// wsWriteBuffers is the WriteBufferPool of every client connection.
// Gorilla draws a write buffer from it only for a data message it writes
// itself, which is a compressed one (see wsSubscriber.Send); an
// uncompressed message is framed here, and control frames have their own
// small buffer. So no connection holds the 4 KiB write buffer gorilla
// would otherwise allocate for it, and only a compressed message in
// progress holds one.
var wsWriteBuffers = new(sync.Pool)

// wsSubscriber is the WebSocket subscriber: GET /ws?since=N upgraded, one
// text frame per message, resumed with since.
type wsSubscriber struct {
	cfg    Config
	url    string // ws[s]://host/ws?since=
	dial   dialFunc
	tls    *tlsDialer  // for a wss URL; nil for ws
	header http.Header // the profile's upgrade fields
	// compress: offer permessage-deflate. Chromium always offers it, so
	// the browser profile does too (gorilla writes the offer itself);
	// the server decides whether to accept.
	compress bool
	sess     session
	sub      *signal
	d        delivery
	buf      []byte // message buffer, reused across messages and connections
	closed   []byte // our close frame's payload

	conn         atomic.Pointer[wsConn] // the open connection, for Send
	watch        sendWatch
	notConnected error
}

// wsConn is an open connection as Send sees it.
type wsConn struct {
	*websocket.Conn
	wire *wsWire
	// deflate: permessage-deflate was negotiated. A browser then
	// compresses what it sends, and so does Send, through gorilla's
	// writer; otherwise Send frames the message itself.
	deflate bool
}

var _ Subscriber = (*wsSubscriber)(nil)

func init() {
	registerClient(transport.WebSocket, func(cfg Config) (Subscriber, error) { return newWebSocket(cfg), nil })
}

func newWebSocket(cfg Config) *wsSubscriber {
	// New has checked that BaseURL is http or https.
	base := "ws" + strings.TrimPrefix(cfg.BaseURL, "http")
	w := &wsSubscriber{
		cfg:      cfg,
		url:      base + "/ws?" + roomQuery(cfg.Room) + "since=",
		dial:     dialer(cfg),
		header:   cfg.HTTP.RequestHeader(webhttp.WebSocket, origin(cfg.BaseURL), false),
		compress: cfg.HTTP.Headers == webhttp.HeadersBrowser || cfg.HTTP.Compress,
		sess:     streamSession(transport.WebSocket, cfg),
		sub:      newSignal(),
		d:        newDelivery(cfg),
		buf:      make([]byte, 512),
		closed:   websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""),

		notConnected: notConnected(transport.WebSocket),
	}
	if cfg.HTTP.TLS {
		w.tls = newTLSDialer(cfg, w.dial, false)
	}
	if len(w.header) == 0 {
		w.header = nil // gorilla's request as it always was
	}
	return w
}

func (w *wsSubscriber) Subscribed() <-chan struct{} { return w.sub.ch }

// Run streams until ctx ends. It must be called once.
func (w *wsSubscriber) Run(ctx context.Context, h Handler) error {
	defer w.watch.release()
	w.d.h = h
	return w.sess.run(ctx, w.stream)
}

// Send sends msg as one text message on the open connection
// (Subscriber.Send): one masked frame, P + 6 bytes up for a message of P ≤
// 125 bytes, P + 8 up to 65535, P + 14 beyond, written in one Write. With
// permessage-deflate negotiated, gorilla compresses and frames it instead,
// as a browser would compress it (a message whose compressed form exceeds
// gorilla's 4 KiB write buffer then goes as several frames).
func (w *wsSubscriber) Send(ctx context.Context, msg []byte) error {
	return countSend(w.cfg.Counters, w.send(ctx, msg))
}

func (w *wsSubscriber) send(ctx context.Context, msg []byte) error {
	c := w.conn.Load()
	if c == nil {
		return w.notConnected
	}
	var err error
	if c.deflate {
		err = w.sendCompressed(ctx, c, msg)
	} else {
		err = w.sendFrame(ctx, c.wire.link, msg)
	}
	if err != nil && ctx.Err() == nil && !errors.Is(err, ErrNotConnected) {
		return fmt.Errorf("ws: send: %w", err)
	}
	return err
}

// sendFrame writes msg as one masked text frame on l.
func (w *wsSubscriber) sendFrame(ctx context.Context, l *link, msg []byte) error {
	if err := l.acquire(ctx); err != nil {
		return err
	}
	defer l.release()
	if l.down.Load() {
		return w.notConnected
	}
	bp := getSendBuffer(len(msg) + wsMaxClientHeader)
	*bp = appendClientFrame(*bp, msg, rand.Uint32())
	err := w.watch.write(ctx, l, *bp)
	sendBuffers.Put(bp)
	return err
}

// sendCompressed writes msg through gorilla's writer, which compresses it.
// Gorilla allows one writer at a time besides WriteControl: Send is the
// only one.
func (w *wsSubscriber) sendCompressed(ctx context.Context, c *wsConn, msg []byte) error {
	l := c.wire.link
	if l.down.Load() {
		return w.notConnected
	}
	if err := w.watch.begin(ctx, l); err != nil {
		return err
	}
	defer w.watch.end()
	_ = c.SetWriteDeadline(time.Time{}) // ctx bounds it, through the watch
	wr, err := c.NextWriter(websocket.TextMessage)
	if err == nil {
		if _, err = wr.Write(msg); err == nil {
			err = wr.Close()
		}
	}
	if err != nil {
		l.Close() // a message cut short: the stream reconnects
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if l.down.Load() {
			return w.notConnected
		}
	}
	return err
}

// wsMaxClientHeader is the longest header of a client frame: 2 bytes, 8 of
// extended length, 4 of mask key.
const wsMaxClientHeader = 14

// appendClientFrame appends msg as one final, masked text frame with the
// mask key key (RFC 6455 section 5.2): 2 header bytes, then 2 or 8 bytes
// of extended length for a payload over 125 or 65535 bytes, the key, and
// the masked payload.
func appendClientFrame(dst, msg []byte, key uint32) []byte {
	const fin, text, masked = 0x80, 0x1, 0x80
	n := len(msg)
	dst = append(dst, fin|text)
	switch {
	case n <= 125:
		dst = append(dst, masked|byte(n))
	case n <= 65535:
		dst = append(dst, masked|126)
		dst = binary.BigEndian.AppendUint16(dst, uint16(n))
	default:
		dst = append(dst, masked|127)
		dst = binary.BigEndian.AppendUint64(dst, uint64(n))
	}
	// The key's bytes in wire order are those of key little-endian, so
	// that the 8-byte words below mask with key twice.
	dst = binary.LittleEndian.AppendUint32(dst, key)
	start := len(dst)
	dst = append(dst, msg...)
	p := dst[start:]
	k := uint64(key) | uint64(key)<<32
	i := 0
	for ; i+8 <= len(p); i += 8 {
		binary.LittleEndian.PutUint64(p[i:], binary.LittleEndian.Uint64(p[i:])^k)
	}
	for ; i < len(p); i++ {
		p[i] ^= byte(key >> (8 * (i % 4)))
	}
	return dst
}

// stream opens one connection and delivers its messages until the server
// cuts it, it breaks, or ctx ends; on ctx it closes with a close handshake.
func (w *wsSubscriber) stream(ctx context.Context) (progress bool, err error) {
	url := w.url + strconv.FormatUint(w.d.last, 10)
	c, err := w.upgrade(ctx, url)
	if err != nil {
		return false, err
	}
	conn, l := c.Conn, c.wire.link
	defer conn.Close()
	conn.SetReadLimit(int64(w.cfg.MaxMessage))
	// The server's close frame: no message may follow our reply.
	reply := conn.CloseHandler()
	conn.SetCloseHandler(func(code int, text string) error {
		l.down.Store(true)
		return reply(code, text)
	})
	w.conn.Store(c)
	defer func() {
		// Withdrawn before the connection is closed.
		l.down.Store(true)
		w.conn.Store(nil)
	}()
	w.sess.connected()
	w.sub.fire()

	// A client still reads all the time, so ctx cannot be checked
	// between reads: a watcher starts the close handshake instead. The
	// read loop then sees the server's close frame (or the deadline) and
	// returns; the deferred Close ends the connection. A Send's frame
	// being written delays our close frame by up to the grace.
	stop := onCancel(ctx, func() {
		deadline := time.Now().Add(wsCloseGrace)
		l.down.Store(true)
		_ = conn.WriteControl(websocket.CloseMessage, w.closed, deadline)
		_ = conn.SetReadDeadline(deadline)
	})
	defer stop()

	for {
		typ, r, err := conn.NextReader()
		if err != nil {
			if ctx.Err() != nil || serverClosed(err) {
				return progress, nil
			}
			return progress, fmt.Errorf("ws %s: read: %w", url, err)
		}
		if typ != websocket.TextMessage {
			return progress, fmt.Errorf("ws %s: %w: binary message, want text", url, event.ErrMalformed)
		}
		if w.buf, err = readBody(w.buf[:0], r, -1, math.MaxInt); err != nil { // SetReadLimit bounds it
			if ctx.Err() != nil {
				return progress, nil
			}
			return progress, fmt.Errorf("ws %s: read: %w", url, err)
		}
		if ctx.Err() != nil {
			continue // closing: drain until the server's close frame
		}
		events, gap, err := w.d.decode(w.buf, w.d.events[:0])
		if err != nil {
			return progress, fmt.Errorf("ws %s: %w", url, err)
		}
		w.d.deliver(events, gap)
		progress = true
	}
}

// upgrade dials url and performs the WebSocket handshake. Gorilla does not
// watch ctx once the TCP connection is up, so a cancel during the handshake
// sets a past deadline on the connection to end it at once.
func (w *wsSubscriber) upgrade(ctx context.Context, url string) (*wsConn, error) {
	var (
		mu       sync.Mutex
		nc       *wsWire
		canceled bool
	)
	// connected registers a connection that is ready for the upgrade
	// request.
	connected := func(c net.Conn, err error) (net.Conn, error) {
		if err != nil {
			return nil, err
		}
		mu.Lock()
		defer mu.Unlock()
		if canceled {
			c.Close()
			return nil, context.Canceled
		}
		nc = &wsWire{link: newLink(c)}
		// Gorilla writes the upgrade request right away and has no
		// hook for when it did: count it here.
		w.cfg.Counters.Requests.Add(1)
		return nc, nil
	}
	d := websocket.Dialer{
		NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return connected(w.dial(ctx, network, addr))
		},
		HandshakeTimeout:  wsHandshakeTimeout,
		ReadBufferSize:    wsReadBuffer,
		WriteBufferPool:   wsWriteBuffers,
		EnableCompression: w.compress,
		// Proxy nil: load goes straight to the server under test.
	}
	if w.tls != nil {
		// Gorilla leaves the handshake to this dialler (and so to the
		// tlsDialer, which counts it); its ctx carries the
		// HandshakeTimeout.
		d.NetDialTLSContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
			return connected(w.tls.DialTLSContext(ctx, network, addr))
		}
	}
	stop := onCancel(ctx, func() {
		mu.Lock()
		defer mu.Unlock()
		canceled = true
		if nc != nil {
			_ = nc.SetDeadline(time.Unix(1, 0))
		}
	})
	conn, resp, err := d.DialContext(ctx, url, w.header)
	stop()
	if err != nil {
		if errors.Is(err, websocket.ErrBadHandshake) && resp != nil {
			if resp.StatusCode >= 400 {
				return nil, statusError(url, resp)
			}
			return nil, &StatusError{URL: url, Code: resp.StatusCode, Reason: "no WebSocket upgrade"}
		}
		return nil, fmt.Errorf("ws %s: %w", url, err)
	}
	if ctx.Err() != nil {
		// Canceled after the handshake: the past deadline may still be
		// set. Close without a handshake; nothing was read yet.
		conn.Close()
		return nil, ctx.Err()
	}
	// Gorilla accepts no extension but permessage-deflate.
	deflate := strings.Contains(resp.Header.Get("Sec-WebSocket-Extensions"), "permessage-deflate")
	return &wsConn{Conn: conn, wire: nc, deflate: deflate}, nil
}

// wsWire is the connection gorilla reads and writes, below which Send
// writes its frames. Gorilla's writes after the upgrade are whole control
// frames (a pong, a close) and, with permessage-deflate, Send's
// compressed frames, each in one Write; wsWire makes each take the link's
// write side, so that they never interleave with a frame of Send's. It
// keeps gorilla's write deadline and applies it under the write side, since
// Send's frames clear it.
type wsWire struct {
	*link
	deadline atomic.Int64 // gorilla's write deadline, Unix ns (0: none)
}

// Write is gorilla's write. If Send's frame holds the write side past
// gorilla's write deadline (the close frame's grace; the grace when there
// is none), as it does on a server that does not read, it fails as a
// timeout: gorilla then writes no more, and the read loop's deadline ends
// the connection.
func (c *wsWire) Write(p []byte) (int, error) {
	deadline := c.deadline.Load()
	if !c.acquireWithin(deadline) {
		return 0, os.ErrDeadlineExceeded
	}
	defer c.release()
	_ = c.link.SetWriteDeadline(deadlineOf(deadline))
	return c.link.Write(p)
}

func (c *wsWire) SetWriteDeadline(t time.Time) error {
	c.deadline.Store(unixNano(t))
	return nil // applied by Write
}

func (c *wsWire) SetDeadline(t time.Time) error {
	c.deadline.Store(unixNano(t))
	return c.link.SetDeadline(t)
}

// unixNano is t in Unix ns, 0 for the zero time.
func unixNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

// serverClosed reports whether err is a close frame by which the server
// ended the connection on purpose — shutdown, restart, or a slow-consumer
// disconnect (1008) — which is a cut to resume from, not an error. Gorilla
// also reports a connection that ended without a close frame as a
// CloseError, with the local-only code 1006; that one is an error.
func serverClosed(err error) bool {
	var ce *websocket.CloseError
	if !errors.As(err, &ce) {
		return false
	}
	switch ce.Code {
	case websocket.CloseNormalClosure, websocket.CloseGoingAway, websocket.ClosePolicyViolation,
		websocket.CloseServiceRestart, websocket.CloseTryAgainLater:
		return true
	}
	return false
}
