// Package clients holds one subscriber per transport of the registry
// (package transport) behind one small interface. Every subscriber resumes
// after a reconnect from the last seq it saw, counts the bytes it reads and
// writes at its net.Conn, and counts its requests. The stream subscribers
// report each reconnect's gap (Config.OnReconnect), and SSE waits the
// server's retry time before it reconnects, as an EventSource does.
//
// Config.HTTP says how the subscribers speak HTTP (package webhttp): the
// request header profile and cookie of each request kind, TLS (for an
// https base URL, dialled here so that bytes are counted below it and
// handshakes apart), HTTP/2 for polls and SSE, and compression. The raw
// tcp transport is the floor: TLS yes, browser headers no.
//
// Every subscriber also sends: Send puts one upstream message of the chat
// and game workloads (event.AppendUpstream) on the wire its transport's
// page would use — a frame or a line on the stream's own connection, or a
// POST /send — counted in Sent, SendErrors and SendRequests apart from the
// subscription's requests. Config.Room is the room it joins and sends to.
//
// Each transport's file registers its subscriber for its registry name
// (registerClient, from an init function); New checks and completes the
// Config and builds it.
//
// The package speaks the wire protocol only; it never imports the servers.
package clients

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"pushbench/event"
	"pushbench/transport"
	"pushbench/webhttp"
)

// Batch is what one message or response brought: its events (oldest first;
// the slice is reused after the handler returns), a gap the server announced
// (the zero Gap, To == 0, when none), and the moment the client had parsed
// it. All
// events of one batch share Recv, as docs/design.md section 5 defines.
type Batch struct {
	Events []event.Event
	Gap    event.Gap
	Recv   time.Time
	// Acks parallels Events when the subscriber reads game input
	// acknowledgements (Config.Acks): the input number each snapshot
	// acknowledges for client Config.AckFrom, 0 for none. Nil otherwise.
	// Like Events, it is reused after the handler returns.
	Acks []uint64
}

// Handler receives every batch, in order, from a single goroutine per
// subscriber. It must not retain b.Events.
type Handler func(b Batch)

// Subscriber is one logical client of one transport.
type Subscriber interface {
	// Run subscribes from Config.Since and hands every event after it to h
	// until ctx is cancelled, reconnecting with resume and bounded backoff
	// on errors. It returns nil when ctx ends, or the error that made it
	// give up (backoff exhausted, or an error that retrying cannot fix: a
	// 4xx answer, a server certificate the roots do not verify, a server
	// without HTTP/2 when it was asked for).
	// Call it once per subscriber.
	Run(ctx context.Context, h Handler) error
	// Subscribed is closed once the first subscription is in place: a
	// stream is open (its response or its upgrade has arrived), the first
	// long poll is written to the socket, or the first short poll is
	// answered.
	Subscribed() <-chan struct{}
	// Send sends msg, one encoded upstream message (event.AppendUpstream),
	// to the subscriber's room (Config.Room), the way its transport's page
	// would: a WebSocket text message on the subscriber's connection, a
	// line on the tcp connection, and for polls and SSE a POST /send?room=R
	// (docs/protocol.md) on a second keep-alive connection of its own, as
	// a browser whose first connection holds the poll or stream sends it
	// (under HTTP/2 multiplexed on the one connection instead).
	//
	// It returns once the message has been handed to the socket (a frame
	// or line written in full) or, for a POST, answered with a 2xx; msg is
	// not retained. It fails at once, with an error wrapping
	// ErrNotConnected, when the subscription is down: before it is first
	// in place, after Run has returned, and for a stream between a cut
	// and the reconnect (polls send whenever Run is subscribed). Nothing
	// is queued. A 4xx or 5xx answer is a *StatusError; when ctx ends
	// first, the error is ctx's (a frame or line cut short by it takes its
	// connection down, and the stream reconnects).
	//
	// Send may be called from one goroutine at a time, concurrently with
	// Run. Each call counts in Counters.Sent or Counters.SendErrors.
	Send(ctx context.Context, msg []byte) error
}

// ErrNotConnected is what Send wraps when the subscription is down, so
// that there is no connection to send on.
var ErrNotConnected = errors.New("not connected")

// Backoff bounds reconnect attempts: the delay doubles from Min to Max and
// resets after a successful connection; after Tries consecutive failures
// the subscriber gives up. A zero field takes DefaultBackoff's value.
//
// A failure is an attempt without progress: a poll not answered with a
// well-formed body, or a stream that ended before its first message. A
// stream that delivered something and then broke is reopened at once.
//
// SSE honours the server's retry field as an EventSource does: once a
// stream has carried one (retry: <ms>), every reconnect waits at least
// that long — after a stream that delivered something too, instead of
// reopening it at once — and a failure waits the longer of it and the
// backoff's delay; an empty retry field drops it again. A message with a
// retry field is a message: a stream that carried one made progress, so
// a server that cuts every stream before its first event is reconnected
// to every retry time for ever, as a browser would, instead of being given
// up on. Without a retry field nothing changes. (A browser waits the retry
// time, 3000 ms by default in Chromium, before every reconnect and never
// gives up after a stream that opened; docs/protocol.md.)
type Backoff struct {
	Min, Max time.Duration
	Tries    int
}

// DefaultBackoff suits loopback tests and runs.
var DefaultBackoff = Backoff{Min: 10 * time.Millisecond, Max: time.Second, Tries: 20}

// Config configures a subscriber.
type Config struct {
	// BaseURL is the server's root, e.g. http://127.0.0.1:8080.
	BaseURL string
	// Since is the seq after which delivery starts (0: from the first event).
	Since uint64
	// Room is the room the subscriber joins and sends to (chat and game
	// workloads, docs/protocol.md): every subscription carries room=R in
	// its query, and Send posts to /send?room=R. Room 0, the default, is
	// sent as no parameter at all, so that its requests are those of the
	// broadcast workload, byte for byte.
	Room int
	// Acks makes the subscriber read, from each event's pad, the game
	// input acknowledgement of client AckFrom (event.FindAck) into
	// Batch.Acks: the game workload's snapshots carry one per client.
	Acks    bool
	AckFrom int
	// Interval is the short-polling period T (short polling only). Polls
	// are scheduled at fixed times start + k·T, not T after the last answer.
	Interval time.Duration
	// PollOrigin anchors the short-polling grid: polls are due at
	// PollOrigin + k·Interval for whole k (zero: the time Run starts). Many
	// clients that connect within one interval would otherwise poll in
	// step; a harness spreads their origins over the interval, as the
	// phases of independent browsers are spread. The first poll (the
	// subscription) goes at once either way.
	PollOrigin time.Time
	// LocalAddr, if set, is the source address to dial from (for spreading
	// many clients over 127.0.0.x when one address runs out of ports).
	LocalAddr *net.TCPAddr
	// Counters receive this subscriber's byte and request counts; several
	// subscribers may share one. Nil: a private one.
	Counters *Counters
	// Backoff for reconnects; zero value: DefaultBackoff.
	Backoff Backoff
	// MaxMessage bounds one message of a stream in bytes: an SSE event's
	// data, a WebSocket message, a line (default 1 MiB + 1 KiB).
	MaxMessage int
	// HTTP is how the subscriber speaks HTTP: its request header profile
	// and cookie, HTTP/1.1 or HTTP/2 (polls and SSE only), and whether it
	// accepts compressed answers. The zero value is webhttp.Default(). TLS
	// is used exactly when BaseURL is https; HTTP.TLS must agree with it.
	HTTP webhttp.Options
	// Roots are the certificates an https server's chain is verified
	// against (a harness fills it from webhttp.TrustServer); nil: the
	// system's roots.
	Roots *x509.CertPool
	// OnReconnect, if not nil, is called each time a stream subscription
	// (sse, ws, tcp) is back in place after its connection ended — a cut
	// by the server, an error — with gap, the time from the moment the
	// subscriber saw that connection end to the moment the new one is
	// subscribed (as Subscribed means it: the response or the upgrade has
	// arrived). gap includes the wait before the reconnect (the backoff,
	// or the server's SSE retry time) and the failed attempts in between.
	// It is called from Run's goroutine, before the new connection's
	// first message is read, so it must be quick; polls never call it.
	OnReconnect func(gap time.Duration)
}

// Counters are a subscriber's wire and request counts, safe for concurrent
// use. Bytes are counted at the net.Conn: HTTP headers, chunk framing, SSE
// field names, WebSocket frame headers and line ends included; TCP/IP
// headers not.
//
// What the other counters count, precisely:
//   - Requests: never a POST /send (SendRequests counts those); a poll
//     or SSE GET when net/http has written it into a
//     connection's write buffer (so its silent retry of an idempotent
//     request on a kept-alive connection the server had just closed
//     counts too; over HTTP/2, when net/http hands it to the connection,
//     see httpClient.countRequests); an
//     upgrade (WebSocket and the like) when its connection is dialled
//     (over TLS: when its handshake is done), as it is written right
//     after.
//   - Reconnects: for polls, every TCP connection after the first (a cut
//     that net/http hides by retrying shows only as a new connection);
//     for streams, every stream opened after the first.
//   - Errors: every attempt that ended in an error, including the last one
//     before a give-up or a 4xx. A stream the server ends on purpose (a
//     clean end of stream between two messages; WebSocket: a close frame
//     1000, 1001, 1008, 1012 or 1013) is a cut, not an error.
//
// Over TLS the bytes are counted below TLS: ciphertext, record headers and
// the handshake included. The handshake counters split the handshake's
// share off:
//   - Handshakes: TLS handshakes completed; Resumed: those of them that
//     resumed an earlier session of the subscriber (a TLS 1.3 PSK from the
//     session ticket of an earlier connection), without a certificate.
//   - HandshakeFailures: handshakes that failed (not those a cancel of the
//     run interrupted); the attempt's error wraps webhttp.ErrTLSHandshake.
//   - HandshakeBytesUp, HandshakeBytesDown: the bytes of each completed
//     handshake's connection from the dial until the client's side of the
//     handshake completed, per direction, summed (they are also in BytesUp
//     and BytesDown). Down may include session tickets the server sent
//     right behind its Finished, when they arrived in the same read.
//   - HandshakeNs: the wall time of the completed handshakes, summed, from
//     the ClientHello until the client's Finished (the TCP connect not
//     included).
//   - HTTP2Responses: poll answers and SSE streams that arrived over
//     HTTP/2, to verify that a run asked to use it did.
//
// Upstream messages (Send) are counted apart from the subscription's
// requests, so that Requests stays about polls and streams:
//   - Sent: messages handed over — a WebSocket frame or tcp line written
//     in full, or a POST /send answered with a 2xx.
//   - SendErrors: Send calls that failed, whatever the cause: not
//     connected (ErrNotConnected), a 4xx or 5xx answer, a broken
//     connection, ctx ending first.
//   - SendRequests: POST /send requests written to a connection (counted
//     like Requests, so net/http's retry of one that found its kept-alive
//     connection closed counts again); 0 for WebSocket and tcp, whose
//     messages are frames and lines on the subscription's connection.
//
// A message's bytes, its POST's head and the answer included, are in
// BytesUp and BytesDown like every other byte; the connection a POST needs
// of its own (polls and SSE over HTTP/1.1) is in Dials, and its TLS
// handshake in the handshake counters, but not in Reconnects.
type Counters struct {
	BytesDown      atomic.Uint64 // read from the server
	BytesUp        atomic.Uint64 // written to the server
	Requests       atomic.Uint64 // HTTP requests sent (polls, stream GETs, upgrades)
	EmptyResponses atomic.Uint64 // polls answered [] (no event, no gap notice)
	Reconnects     atomic.Uint64 // connections re-established after an error or a cut
	Dials          atomic.Uint64 // TCP connections opened
	Errors         atomic.Uint64 // failed requests, broken streams, malformed messages
	MissedTicks    atomic.Uint64 // short-poll ticks that passed without a poll (overruns)

	Handshakes         atomic.Uint64 // TLS handshakes completed
	Resumed            atomic.Uint64 // of those, resumed sessions
	HandshakeFailures  atomic.Uint64 // TLS handshakes failed
	HandshakeBytesUp   atomic.Uint64 // written during completed TLS handshakes
	HandshakeBytesDown atomic.Uint64 // read during completed TLS handshakes
	HandshakeNs        atomic.Uint64 // wall time of completed TLS handshakes, ns
	HTTP2Responses     atomic.Uint64 // poll answers and SSE streams over HTTP/2

	Sent         atomic.Uint64 // upstream messages written (WebSocket, tcp) or accepted (POST)
	SendErrors   atomic.Uint64 // Send calls that failed, any cause
	SendRequests atomic.Uint64 // POST /send requests written (polls, SSE)
}

// CountingConn wraps a net.Conn and adds every byte read and written to c,
// and to counts of its own (Counted).
type CountingConn struct {
	net.Conn
	c        *Counters
	up, down atomic.Uint64 // this connection's bytes
}

// NewCountingConn wraps conn.
func NewCountingConn(conn net.Conn, c *Counters) *CountingConn {
	return &CountingConn{Conn: conn, c: c}
}

func (cc *CountingConn) Read(p []byte) (int, error) {
	n, err := cc.Conn.Read(p)
	cc.c.BytesDown.Add(uint64(n))
	cc.down.Add(uint64(n))
	return n, err
}

func (cc *CountingConn) Write(p []byte) (int, error) {
	// Counted before the write, so that no answer to these bytes can
	// arrive before they are counted (net/http writes from a goroutine
	// of its own); what a short write left unwritten is taken back.
	cc.c.BytesUp.Add(uint64(len(p)))
	cc.up.Add(uint64(len(p)))
	n, err := cc.Conn.Write(p)
	if short := uint64(len(p) - n); short > 0 {
		cc.c.BytesUp.Add(-short)
		cc.up.Add(-short)
	}
	return n, err
}

// Counted returns the bytes written to and read from this connection so
// far.
func (cc *CountingConn) Counted() (up, down uint64) { return cc.up.Load(), cc.down.Load() }

// ErrGiveUp wraps the last error once the backoff is exhausted.
var ErrGiveUp = errors.New("giving up after repeated failures")

// New returns a subscriber for the transport called name.
func New(name string, cfg Config) (Subscriber, error) {
	u, err := url.Parse(cfg.BaseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
		u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("%s: base URL %q: want http[s]://host[:port][/path]", name, cfg.BaseURL)
	}
	cfg.BaseURL = strings.TrimSuffix(cfg.BaseURL, "/")
	if cfg.HTTP == (webhttp.Options{}) {
		cfg.HTTP = webhttp.Default()
	}
	if err := cfg.HTTP.Validate(name); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if https := u.Scheme == "https"; https != cfg.HTTP.TLS {
		return nil, fmt.Errorf("%s: base URL %q is %s but the HTTP options say tls=%v (TLS is used exactly for https)",
			name, cfg.BaseURL, u.Scheme, cfg.HTTP.TLS)
	}
	if cfg.Room < 0 {
		return nil, fmt.Errorf("%s: room %d must not be negative", name, cfg.Room)
	}
	if cfg.Counters == nil {
		cfg.Counters = new(Counters)
	}
	if cfg.Backoff.Min <= 0 {
		cfg.Backoff.Min = DefaultBackoff.Min
	}
	if cfg.Backoff.Max <= 0 {
		cfg.Backoff.Max = max(DefaultBackoff.Max, cfg.Backoff.Min)
	}
	if cfg.Backoff.Max < cfg.Backoff.Min {
		return nil, fmt.Errorf("%s: backoff max %v below min %v", name, cfg.Backoff.Max, cfg.Backoff.Min)
	}
	if cfg.Backoff.Tries <= 0 {
		cfg.Backoff.Tries = DefaultBackoff.Tries
	}
	if cfg.MaxMessage <= 0 {
		cfg.MaxMessage = event.MaxSize + 1024
	}
	if transport.HasInterval(name) && cfg.Interval <= 0 {
		return nil, fmt.Errorf("%s: interval %v must be positive", name, cfg.Interval)
	}
	newSub, ok := registered[name]
	if !ok {
		return nil, fmt.Errorf("unknown transport %q (want %s)", name, transport.List())
	}
	return newSub(cfg)
}

// newSubscriber builds a transport's subscriber for a Config that New has
// checked and completed.
type newSubscriber func(cfg Config) (Subscriber, error)

// registered maps a registry name to its subscriber, filled by the init
// functions of the transports' files.
var registered = map[string]newSubscriber{}

// registerClient registers the subscriber of the transport called name. It
// is called from init functions; a name registered twice is a bug.
func registerClient(name string, newSub newSubscriber) {
	if _, dup := registered[name]; dup {
		panic("clients: transport " + name + " registered twice")
	}
	registered[name] = newSub
}

// Has reports whether the transport called name has a subscriber here.
func Has(name string) bool {
	_, ok := registered[name]
	return ok
}

// Registered returns the names of the transports with a subscriber here,
// sorted. A table test checks them against the registry both ways.
func Registered() []string {
	return slices.Sorted(maps.Keys(registered))
}

// dialFunc is the signature of net.Dialer.DialContext.
type dialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

// dialer returns a DialContext that dials from cfg.LocalAddr and counts
// bytes and dials into cfg.Counters. Its connections are *CountingConn.
func dialer(cfg Config) dialFunc {
	d := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: -1}
	if cfg.LocalAddr != nil {
		d.LocalAddr = cfg.LocalAddr
	}
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		conn, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		cfg.Counters.Dials.Add(1)
		return NewCountingConn(conn, cfg.Counters), nil
	}
}

// origin is the origin (scheme://host[:port]) of a base URL that New has
// checked: what a same-origin page's requests carry in Origin and Referer.
func origin(baseURL string) string {
	u, err := url.Parse(baseURL)
	if err != nil {
		return ""
	}
	return u.Scheme + "://" + u.Host
}

// roomQuery is the query parameter that joins room (with the separator
// that follows it, so that since=N can come after), or "" for room 0.
func roomQuery(room int) string {
	if room == 0 {
		return ""
	}
	return "room=" + strconv.Itoa(room) + "&"
}
