package servers

// Client-originated traffic: the upstream messages of a chat or a game
// (workload.go), one event.Upstream each, on every transport
// (docs/protocol.md):
//
//   - POST /send?room=R, for the short and long polling and SSE clients:
//     one message per request, answered 204 No Content.
//   - WebSocket: every text message a client sends on its connection, for
//     the room it subscribed to.
//   - Raw TCP: every "\n"-terminated line a client writes after the
//     upgrade, for the room it subscribed to.
//
// Each message is taken at once on the goroutine that read it — decoded,
// published into its room (chat) or applied (game) — so nothing queues
// upstream messages: a sender waits for its own. A flooding sender is
// bounded per connection by a token bucket (Config.MaxSendRate, burst
// Config.SendBurst): over it, POST gets 429, a WebSocket is closed 1008
// and a raw TCP connection closed. While no chat or game runs a POST is
// answered 409, and WebSocket messages and TCP lines are dropped unread,
// as every client message was before upstream existed; each is counted.

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/gorilla/websocket"

	"pushbench/event"
)

// Defaults of the flood bound.
const (
	DefaultMaxSendRate = 1000 // upstream messages per second per connection
	DefaultSendBurst   = 100  // messages a connection may send at once
)

// errNoRun answers an upstream message while no chat or game runs.
var errNoRun = errors.New("no chat or game running")

// apply takes the upstream message msg for room r in the run run (a chat
// or a game): a chat publishes it, a game applies it. It counts the
// message in tc as accepted or bad.
func (s *Server) apply(r *room, msg []byte, run *PublishConfig, tc *counters) error {
	u, err := event.DecodeUpstream(msg)
	if err == nil {
		if run.Workload == WorkloadChat {
			err = s.chatMessage(r, msg, u)
		} else {
			err = s.gameInput(r, u, run.Room)
		}
	}
	if err != nil {
		tc.upstreamBad.Add(1)
		return err
	}
	tc.upstream.Add(1)
	tc.upstreamBytes.Add(uint64(len(msg)))
	return nil
}

// sendLimiter is a connection's token bucket: rate tokens a second, at
// most burst of them, full at the first message; each upstream message
// takes one. A message without a token is a flood.
type sendLimiter struct {
	mu     sync.Mutex // HTTP/2 streams of one connection run concurrently
	tokens float64
	last   time.Time
	primed bool
}

// allow takes a token at now, or reports false if there is none.
func (l *sendLimiter) allow(now time.Time, rate float64, burst int) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.primed {
		l.primed, l.tokens = true, float64(burst)
	} else if d := now.Sub(l.last); d > 0 {
		l.tokens = min(float64(burst), l.tokens+d.Seconds()*rate)
	}
	l.last = now
	if l.tokens < 1 {
		return false
	}
	l.tokens--
	return true
}

// allowSend takes a token from l under the server's flood bound.
func (s *Server) allowSend(l *sendLimiter) bool {
	return l.allow(time.Now(), s.cfg.MaxSendRate, s.cfg.SendBurst)
}

// tooFast is the one-line reason of a flood rejection.
func (s *Server) tooFast() string {
	return fmt.Sprintf("sending too fast: over %g messages/s (burst %d) on this connection", s.cfg.MaxSendRate, s.cfg.SendBurst)
}

type limiterKey struct{}

// withConnLimiter is the http.Server's ConnContext: it hands every request
// of a connection that connection's send limiter, which lives in its
// countingConn (so a connection costs no allocation for it).
func withConnLimiter(ctx context.Context, c net.Conn) context.Context {
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	if cc, ok := c.(*countingConn); ok {
		return context.WithValue(ctx, limiterKey{}, &cc.send)
	}
	return ctx
}

// connLimiter returns the send limiter of r's connection. A request that
// did not come through Serve (Handler mounted elsewhere) gets a fresh one:
// there is no connection to bound.
func connLimiter(r *http.Request) *sendLimiter {
	if l, ok := r.Context().Value(limiterKey{}).(*sendLimiter); ok {
		return l
	}
	return &sendLimiter{}
}

// errTooBig is a message over event.MaxSize.
var errTooBig = fmt.Errorf("a message is at most %d bytes (event.MaxSize)", event.MaxSize)

// readMessage appends what r holds to dst, up to limit bytes: more is
// errTooBig.
func readMessage(dst []byte, r io.Reader, limit int) ([]byte, error) {
	lr := io.LimitedReader{R: r, N: int64(limit) + 1}
	for {
		if len(dst) == cap(dst) {
			dst = append(dst, 0)[:len(dst)]
		}
		n, err := lr.Read(dst[len(dst):cap(dst)])
		dst = dst[:len(dst)+n]
		if err == io.EOF {
			break
		}
		if err != nil {
			return dst, err
		}
	}
	if len(dst) > limit {
		return dst, errTooBig
	}
	return dst, nil
}

// handleSend serves POST /send[?room=R]: the body is one upstream message
// for room R (room 0 without), at most event.MaxSize bytes, with a
// Content-Length or chunked. Success is 204 No Content with the response
// profile's fields and nothing else: the sender learns what became of its
// message downstream (a chat message comes back to it like to everyone
// else, an input in the next snapshot's acknowledgements), so the answer
// needs no body, and 204 is the answer HTTP defines for that — no
// Content-Type, no Content-Length, the fewest bytes an answer can have;
// fetch and XMLHttpRequest take it as success. Failures are one text line:
// 400 (malformed query, malformed message or one that cannot be delivered),
// 404 (no such room), 405, 409 (no chat or game running), 413 (over
// event.MaxSize) and 429 (over the connection's send rate).
func (s *Server) handleSend(w http.ResponseWriter, r *http.Request) {
	tc := &s.send
	if !s.begin(w, r, tc, http.MethodPost) {
		return
	}
	defer s.leave()
	_, rm, err := s.requestRoom(r)
	if err != nil {
		fail(w, tc, statusOf(err, http.StatusBadRequest), "/send: %v", err)
		return
	}
	if r.ContentLength > event.MaxSize {
		tc.upstreamBad.Add(1)
		fail(w, tc, http.StatusRequestEntityTooLarge, "/send: a message of %d bytes: %v", r.ContentLength, errTooBig)
		return
	}
	run := s.pub.upstream.Load()
	if run == nil {
		tc.upstreamRefused.Add(1)
		fail(w, tc, http.StatusConflict, "/send: %v (POST /control/start?workload=chat or game first)", errNoRun)
		return
	}
	if !s.allowSend(connLimiter(r)) {
		tc.upstreamFlood.Add(1)
		fail(w, tc, http.StatusTooManyRequests, "/send: %s", s.tooFast())
		return
	}
	bp := s.bodies.Get().(*[]byte)
	defer func() {
		if cap(*bp) <= maxPooledBody {
			s.bodies.Put(bp)
		}
	}()
	msg, err := readMessage((*bp)[:0], r.Body, event.MaxSize)
	*bp = msg
	switch {
	case errors.Is(err, errTooBig):
		tc.upstreamBad.Add(1)
		fail(w, tc, http.StatusRequestEntityTooLarge, "/send: %v", err)
		return
	case err != nil:
		tc.upstreamBad.Add(1)
		fail(w, tc, http.StatusBadRequest, "/send: reading the message: %v", err)
		return
	}
	if err := s.apply(rm, msg, run, tc); err != nil {
		fail(w, tc, http.StatusBadRequest, "/send: %v", err)
		return
	}
	s.addProfile(w.Header(), r, false)
	w.WriteHeader(http.StatusNoContent)
}

// closeReason cuts reason to what a close frame holds (125 bytes, 2 of
// them the code), on a UTF-8 boundary.
func closeReason(reason string) string {
	const max = 123
	if len(reason) <= max {
		return reason
	}
	reason = reason[:max]
	for len(reason) > 0 && !utf8.ValidString(reason) {
		reason = reason[:len(reason)-1]
	}
	return reason
}

// wsUpstream takes one WebSocket message of type typ from rd for the run
// run (nil: none). It reports false when the connection must end: then
// it has sent the close frame, if any, and counted why.
func (w *wsConn) wsUpstream(typ int, rd io.Reader, run *PublishConfig) bool {
	s, tc := w.t.s, &w.t.tc
	if run == nil {
		// No chat or game: dropped, as every client message was before.
		if _, err := io.Copy(io.Discard, rd); err != nil {
			w.readFailed(err, run)
			return false
		}
		tc.upstreamRefused.Add(1)
		return true
	}
	if typ != websocket.TextMessage {
		tc.upstreamBad.Add(1)
		w.closeWith(websocket.CloseUnsupportedData, "upstream messages are text, not binary")
		return false
	}
	if !s.allowSend(&w.limiter) {
		tc.upstreamFlood.Add(1)
		w.closeWith(websocket.ClosePolicyViolation, "sending too fast")
		return false
	}
	bp := s.bodies.Get().(*[]byte)
	defer func() {
		if cap(*bp) <= maxPooledBody {
			s.bodies.Put(bp)
		}
	}()
	msg, err := readMessage((*bp)[:0], rd, event.MaxSize) // the read limit keeps it within
	*bp = msg
	if err != nil {
		w.readFailed(err, run)
		return false
	}
	if err := s.apply(w.room, msg, run, tc); err != nil {
		code := websocket.CloseInvalidFramePayloadData
		if errors.Is(err, errRoomFull) {
			code = websocket.ClosePolicyViolation
		}
		w.closeWith(code, err.Error())
		return false
	}
	return true
}

// readFailed counts a read that ended the connection: an oversized
// message (gorilla has sent close 1009) counts as an oversize close, and
// while a chat or game runs as a bad upstream message too.
func (w *wsConn) readFailed(err error, run *PublishConfig) {
	if errors.Is(err, websocket.ErrReadLimit) {
		w.t.tc.oversizeCloses.Add(1)
		if run != nil {
			w.t.tc.upstreamBad.Add(1)
		}
	}
}

// closeWith sends a close frame with code and reason; the caller then ends
// the connection. WriteControl may run concurrently with the writer.
func (w *wsConn) closeWith(code int, reason string) {
	_ = w.conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, closeReason(reason)), time.Now().Add(closeGrace))
}

// tcpLineLimit is the longest raw TCP line taken: an upstream message of
// event.MaxSize bytes.
const tcpLineLimit = event.MaxSize

// tcpLines splits what a raw TCP client sends into lines and takes each as
// an upstream message (tcpConn.read).
type tcpLines struct {
	line []byte // the line so far
	// skip drops the rest of an over-long line that began while no chat
	// or game ran: dropped, not a reason to end the connection.
	skip bool
}

// maxKeptLine is the most line buffer a connection keeps between lines.
const maxKeptLine = 64 << 10

// feed takes the bytes b; it reports false when the connection must end
// (a bad line or a flood, counted).
func (l *tcpLines) feed(w *tcpConn, b []byte) bool {
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			if !l.skip {
				l.line = append(l.line, b...)
				if len(l.line) > tcpLineLimit && !l.overlong(w) {
					return false
				}
			}
			return true
		}
		switch {
		case l.skip:
			l.skip = false
			w.t.tc.upstreamRefused.Add(1)
		default:
			l.line = append(l.line, b[:i]...)
			if len(l.line) > tcpLineLimit {
				if !l.overlong(w) {
					return false
				}
				l.skip = false // its end is here
				w.t.tc.upstreamRefused.Add(1)
				break
			}
			if !w.upstream(l.line) {
				return false
			}
			if cap(l.line) > maxKeptLine {
				l.line = nil
			}
		}
		l.line = l.line[:0]
		b = b[i+1:]
	}
	return true
}

// overlong handles a line over tcpLineLimit: while a chat or game runs it
// is a bad message (counted; false: close), else the rest of it is
// skipped.
func (l *tcpLines) overlong(w *tcpConn) bool {
	l.line = nil
	if w.t.s.pub.upstream.Load() != nil {
		w.t.tc.upstreamBad.Add(1)
		return false
	}
	l.skip = true
	return true
}

// upstream takes one raw TCP line; false: the connection must end.
func (w *tcpConn) upstream(msg []byte) bool {
	s, tc := w.t.s, &w.t.tc
	run := s.pub.upstream.Load()
	switch {
	case run == nil:
		tc.upstreamRefused.Add(1) // dropped, as before upstream existed
		return true
	case !s.allowSend(&w.limiter):
		tc.upstreamFlood.Add(1)
		return false
	}
	return s.apply(w.room, msg, run, tc) == nil
}
