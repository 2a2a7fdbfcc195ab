package clients

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
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

// wsNoWrites is the WriteBufferPool of every client connection. The client
// never writes a data message (control frames have their own small buffer),
// so the pool is never drawn from, and no connection holds the 4 KiB write
// buffer gorilla would otherwise allocate for it.
var wsNoWrites = new(sync.Pool)

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
		sess:     session{name: transport.WebSocket, backoff: cfg.Backoff, counters: cfg.Counters, stream: true},
		sub:      newSignal(),
		d:        delivery{last: cfg.Since},
		buf:      make([]byte, 512),
		closed:   websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""),
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
	w.d.h = h
	return w.sess.run(ctx, w.stream)
}

// stream opens one connection and delivers its messages until the server
// cuts it, it breaks, or ctx ends; on ctx it closes with a close handshake.
func (w *wsSubscriber) stream(ctx context.Context) (progress bool, err error) {
	url := w.url + strconv.FormatUint(w.d.last, 10)
	conn, err := w.upgrade(ctx, url)
	if err != nil {
		return false, err
	}
	defer conn.Close()
	conn.SetReadLimit(int64(w.cfg.MaxMessage))
	w.sess.connected()
	w.sub.fire()

	// A push-only client still reads all the time, so ctx cannot be
	// checked between reads: a watcher starts the close handshake
	// instead. The read loop then sees the server's close frame (or the
	// deadline) and returns; the deferred Close ends the connection.
	stop := onCancel(ctx, func() {
		deadline := time.Now().Add(wsCloseGrace)
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
		events, gap, err := decodeMessage(w.buf, w.d.events[:0])
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
func (w *wsSubscriber) upgrade(ctx context.Context, url string) (*websocket.Conn, error) {
	var (
		mu       sync.Mutex
		nc       net.Conn
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
		nc = c
		// Gorilla writes the upgrade request right away and has no
		// hook for when it did: count it here.
		w.cfg.Counters.Requests.Add(1)
		return c, nil
	}
	d := websocket.Dialer{
		NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return connected(w.dial(ctx, network, addr))
		},
		HandshakeTimeout:  wsHandshakeTimeout,
		ReadBufferSize:    wsReadBuffer,
		WriteBufferPool:   wsNoWrites,
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
	return conn, nil
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
