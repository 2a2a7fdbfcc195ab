package servers

import (
	"crypto/tls"
	"fmt"
	"log"
	"math"
	"net"
	"time"

	"github.com/r3labs/sse/v2"

	"pushbench/event"
	"pushbench/webhttp"
)

// Defaults for the zero values of Config.
const (
	DefaultAddr = "127.0.0.1:8080"
	// MinTokenLen is the shortest bearer token Config.Token takes.
	MinTokenLen         = 16
	DefaultRing         = 16384
	DefaultHold         = 30 * time.Second
	DefaultWriteTimeout = 10 * time.Second
	DefaultWSQueue      = 1024
	DefaultPayload      = 256

	// MaxRing bounds the ring: it holds one pointer per slot up front and up
	// to MaxRing encoded events.
	MaxRing = 1 << 24

	// WSReadLimit is the largest client message a WebSocket connection
	// accepts, an upstream message of event.MaxSize; a bigger one closes
	// it with 1009 (protocol.md).
	WSReadLimit = event.MaxSize
)

// Config configures a Server. Zero values take the defaults above.
type Config struct {
	// Addr is the address Listen binds (default DefaultAddr, loopback).
	Addr string
	// Ring is K, the number of newest events each room's hub keeps for
	// polls and resumes (default DefaultRing, or MaxRing/Rooms if that is
	// smaller). Rooms × Ring is at most MaxRing.
	Ring int
	// Rooms is the number of rooms (room.go; default DefaultRooms, at
	// most MaxRooms), each a hub of its own. Room 0 is the one the
	// broadcast publisher writes.
	Rooms int
	// MaxSendRate is the flood bound: the upstream messages per second
	// one connection may send (default DefaultMaxSendRate), in bursts of
	// at most SendBurst (default DefaultSendBurst). Over it a POST /send
	// is answered 429, a WebSocket closed with 1008 and a raw TCP
	// connection closed (upstream.go).
	MaxSendRate float64
	SendBurst   int
	// Hold is the longest a long poll is held, and the cap on a client's
	// hold= parameter (default DefaultHold).
	Hold time.Duration
	// WriteTimeout is the deadline of every write to a client (default
	// DefaultWriteTimeout). It is set per write through
	// http.ResponseController, never as http.Server.WriteTimeout, which
	// would cut every stream after that long.
	WriteTimeout time.Duration
	// WSQueue bounds the queue of events waiting for a connection's writer
	// on every transport fed by a dispatcher (stream.go: WebSocket and the
	// like; default DefaultWSQueue). A full queue disconnects the client
	// as a slow consumer (counted).
	WSQueue int
	// MaxBatch bounds the number of events in one poll answer (default 0:
	// the whole ring). A client may ask for fewer with max=.
	MaxBatch int
	// SSEBuffer is the r3labs/sse stream buffer in events (default
	// sse.DefaultBufferSize = 1024). When it is full the SSE pump has to
	// wait for the slowest SSE subscriber; each such wait is counted as a
	// stall.
	SSEBuffer int
	// Payload is the payload size /control/start uses when the request
	// names none (default DefaultPayload).
	Payload int
	// Spin is the PublishConfig.Spin /control/start uses when the request
	// names none (0: no spinning).
	Spin time.Duration
	// ErrorLog receives net/http's connection-level errors (nil: the log
	// package's standard logger).
	ErrorLog *log.Logger

	// TLS, if not nil, is the certificate Serve serves TLS 1.3 with
	// (webhttp.ServerConfig: ALPN h2 and http/1.1); nil serves plain TCP.
	// Either way the polls and SSE also speak HTTP/2: negotiated with ALPN
	// over TLS, h2c with prior knowledge without. WebSocket and raw TCP
	// stay HTTP/1.1 upgrades.
	TLS *tls.Certificate
	// Response is the response header profile: webhttp.ResponseMinimal
	// ("" too: what the server sends by itself) or
	// webhttp.ResponseDeployment (what a deployment behind a reverse proxy
	// adds, on every successful answer but raw TCP's; docs/http.md).
	Response string
	// Compress gzips poll answers and SSE streams and negotiates
	// permessage-deflate for WebSocket, for clients that offer them.
	Compress bool
	// TextPad pads the published events with text (event.PadText) instead
	// of 'x', so that compression sees what a real payload would give.
	TextPad bool
	// CORS lists the origins besides the server's own whose pages may use
	// it (cors.go, docs/protocol.md): scheme://host[:port] each
	// (ParseOrigin), or AnyOrigin for every origin. Their fetch and
	// EventSource requests (the polls, SSE, /send, /stats) get
	// Access-Control-Allow-Origin and their preflights are answered; their
	// WebSocket and raw TCP upgrades are accepted. Empty: no CORS fields,
	// OPTIONS is a wrong method, and an upgrade from a page on another
	// origin is refused (403); a request without Origin (not a browser
	// page's) is always served.
	CORS []string

	// CutEvery, when above 0, ends every SSE stream, WebSocket connection
	// and raw TCP connection CutEvery after it was opened (a timer per
	// connection, stopped when the connection ends first), as a deploy or
	// a load balancer's connection age limit would: SSE ends the response
	// cleanly (the chunked body's end, or END_STREAM on HTTP/2), so an
	// EventSource reconnects with Last-Event-ID; WebSocket sends close
	// 1012 (service restart) and closes once the client has answered it
	// (at most closeGrace later); raw TCP ends the stream between two
	// lines. Clients resume from the ring, with no loss while the events
	// they missed are in it. Each is counted as a cut of its transport
	// (TransportStats.Cuts).
	CutEvery time.Duration
	// SSERetry, when above 0, starts every SSE stream with the field
	// "retry: <ms>" (a whole number of milliseconds), before any event:
	// the time an EventSource waits before it reconnects after the stream
	// ends (the HTML standard's reconnection time; Chromium's default is
	// 3000 ms). 9 + digits(ms) bytes once per stream (docs/protocol.md).
	SSERetry time.Duration
	// Token, when set, is the bearer token /control/* requires
	// (Authorization: Bearer TOKEN); a missing or wrong one is a 401,
	// counted. A server that listens on anything but loopback must have
	// one (New refuses to start without it): /control/start, /stop and
	// /gc would otherwise let anyone who reaches the port drive it.
	Token string
}

// isLoopback reports whether addr (host:port) listens on loopback only.
// An address that is not host:port is not judged here (true): listening
// on it fails with its own error.
func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	return err != nil || webhttp.IsLoopbackHost(host)
}

// pad is the padding the publisher writes.
func (c Config) pad() event.Pad {
	if c.TextPad {
		return event.PadText
	}
	return event.PadX
}

// withDefaults returns c with zero values replaced by defaults, or the first
// problem with it.
func (c Config) withDefaults() (Config, error) {
	if c.Addr == "" {
		c.Addr = DefaultAddr
	}
	if c.Rooms == 0 {
		c.Rooms = DefaultRooms
	}
	if c.Ring == 0 && c.Rooms >= 1 {
		c.Ring = min(DefaultRing, max(1, MaxRing/c.Rooms))
	}
	if c.MaxSendRate == 0 {
		c.MaxSendRate = DefaultMaxSendRate
	}
	if c.SendBurst == 0 {
		c.SendBurst = DefaultSendBurst
	}
	if c.Hold == 0 {
		c.Hold = DefaultHold
	}
	if c.WriteTimeout == 0 {
		c.WriteTimeout = DefaultWriteTimeout
	}
	if c.WSQueue == 0 {
		c.WSQueue = DefaultWSQueue
	}
	if c.SSEBuffer == 0 {
		c.SSEBuffer = sse.DefaultBufferSize
	}
	if c.Payload == 0 {
		c.Payload = DefaultPayload
	}
	if c.Response == "" {
		c.Response = webhttp.ResponseMinimal
	}
	switch {
	case c.Addr != "" && !isLoopback(c.Addr) && c.Token == "":
		return c, fmt.Errorf("address %s is not loopback: /control/* needs a bearer token there (--token, at least %d characters), or anyone who reaches the port can drive the server", c.Addr, MinTokenLen)
	case c.Token != "" && len(c.Token) < MinTokenLen:
		return c, fmt.Errorf("token: %d characters, want at least %d", len(c.Token), MinTokenLen)
	case c.Response != webhttp.ResponseMinimal && c.Response != webhttp.ResponseDeployment:
		return c, fmt.Errorf("response headers %q: want %s or %s", c.Response, webhttp.ResponseMinimal, webhttp.ResponseDeployment)
	case c.Rooms < 1 || c.Rooms > MaxRooms:
		return c, fmt.Errorf("rooms %d: must be between 1 and %d", c.Rooms, MaxRooms)
	case c.Ring < 1 || c.Ring > MaxRing:
		return c, fmt.Errorf("ring %d: must be between 1 and %d events", c.Ring, MaxRing)
	case c.Ring > MaxRing/c.Rooms:
		return c, fmt.Errorf("ring %d in each of %d rooms: above %d events in all (at most %d per room)", c.Ring, c.Rooms, MaxRing, MaxRing/c.Rooms)
	case math.IsNaN(c.MaxSendRate) || math.IsInf(c.MaxSendRate, 0) || c.MaxSendRate <= 0:
		return c, fmt.Errorf("max send rate %v: must be a positive number of messages per second", c.MaxSendRate)
	case c.SendBurst < 1:
		return c, fmt.Errorf("send burst %d: must be at least 1 message", c.SendBurst)
	case c.Hold < 0:
		return c, fmt.Errorf("hold %v: must be positive", c.Hold)
	case c.WriteTimeout < 0:
		return c, fmt.Errorf("write timeout %v: must be positive", c.WriteTimeout)
	case c.WSQueue < 1:
		return c, fmt.Errorf("ws queue %d: must be at least 1 message", c.WSQueue)
	case c.MaxBatch < 0:
		return c, fmt.Errorf("max batch %d: must not be negative", c.MaxBatch)
	case c.SSEBuffer < 1:
		return c, fmt.Errorf("sse buffer %d: must be at least 1 event", c.SSEBuffer)
	case c.Spin < 0:
		return c, fmt.Errorf("spin %v: must not be negative", c.Spin)
	case c.CutEvery < 0:
		return c, fmt.Errorf("cut every %v: must not be negative", c.CutEvery)
	case c.SSERetry < 0 || c.SSERetry%time.Millisecond != 0:
		return c, fmt.Errorf("sse retry %v: must be a whole number of milliseconds, 0 or more", c.SSERetry)
	}
	if c.MaxBatch == 0 || c.MaxBatch > c.Ring {
		c.MaxBatch = c.Ring
	}
	if err := event.CheckSize(c.Payload); err != nil {
		return c, err
	}
	for _, o := range c.CORS {
		if _, err := ParseOrigin(o); err != nil {
			return c, fmt.Errorf("cors %w", err)
		}
	}
	return c, nil
}
