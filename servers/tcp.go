package servers

// Raw TCP, the floor under the push transports: one HTTP upgrade on /tcp,
// then nothing but the event bytes, one event (or gap notice) per line. It
// costs what any push costs — a queue per connection, a write per batch —
// and nothing a protocol adds, so the gap between it and SSE or WebSocket
// is what those protocols cost.
//
// It is fed by a dispatcher like WebSocket (stream.go, pushHub): bounded
// queue per connection, a writer goroutine, backlog and holes from the
// ring. Unlike WebSocket its writer merges whatever is ready into one write
// (the lines need no framing between them). A slow consumer is cut without
// a word; what it had in flight may end in a partial line, which its client
// discards and resumes before. A cut (Config.CutEvery) ends the stream
// between two lines, the protocol's end of stream.
//
// The connection stays on the HTTP listener (hijacked), so the listener's
// byte counts include it. After the upgrade the client may write upstream
// messages, one per "\n"-terminated line (upstream.go): taken while a chat
// or game runs — a malformed or over-long line, or a flood, closes the
// connection — and dropped otherwise. The client's end of stream ends the
// connection.

import (
	"net"
	"net/http"
	"sync"
	"time"

	"pushbench/event"
	"pushbench/transport"
)

func init() { registerTransport(transport.TCP, newTCPTransport) }

// tcpProtocol is the Upgrade token of the raw TCP transport.
const tcpProtocol = "pushbench-tcp"

// tcpSwitch is the server's whole answer to an upgrade.
const tcpSwitch = "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: " + tcpProtocol + "\r\n\r\n"

// tcpLine is one event as the dispatcher queues it: the entry as it is.
type tcpLine struct{ e *Entry }

func (l tcpLine) entry() *Entry { return l.e }

// tcpTransport serves raw TCP connections.
type tcpTransport struct {
	base
	rooms *roomSet[pushHub[tcpLine]]
}

func newTCPTransport(s *Server) transportServer {
	t := &tcpTransport{base: base{s: s}}
	t.rooms = newPushHubs(s, &t.tc, func(e *Entry) tcpLine { return tcpLine{e} })
	return t
}

// isTCPUpgrade reports whether r asks for the raw TCP upgrade: Connection
// has the token upgrade and Upgrade is pushbench-tcp (case-insensitive).
func isTCPUpgrade(r *http.Request) bool {
	return hasToken(r.Header.Values("Connection"), "upgrade") && hasToken(r.Header.Values("Upgrade"), tcpProtocol)
}

// handle serves GET /tcp?since=N[&room=R] (upgrade). Without since the
// stream starts after the room's newest event.
func (t *tcpTransport) handle(w http.ResponseWriter, r *http.Request) {
	s, tc := t.s, &t.tc
	if !s.begin(w, r, tc, http.MethodGet) {
		return
	}
	defer s.leave()
	if !upgradeOnly(w, r, tc, "raw TCP") {
		return
	}
	if !isTCPUpgrade(r) {
		fail(w, tc, http.StatusBadRequest, "/tcp: not a %s upgrade (want Connection: Upgrade and Upgrade: %s)", tcpProtocol, tcpProtocol)
		return
	}
	// As for WebSocket (cors.go). A page cannot ask for this upgrade
	// (fetch forbids Upgrade), so only a client that imitates one meets it.
	if !s.upgradeOrigin(w, r, tc) {
		return
	}
	rm, since, ok := s.streamStart(w, r, tc)
	if !ok {
		return
	}
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		fail(w, nil, http.StatusInternalServerError, "/tcp: %v", err)
		return
	}
	// What the client sent after its request, before the answer, is the
	// start of what it sends: the read loop takes it first.
	var early []byte
	if n := brw.Reader.Buffered(); n > 0 {
		early, _ = brw.Reader.Peek(n)
		early = append([]byte(nil), early...)
	}
	tc.active.Add(1)
	defer tc.active.Add(-1)

	conns := t.rooms.get(rm)
	sub := conns.subscribe()
	defer conns.unsubscribe(sub)
	c := &tcpConn{t: t, conns: conns, room: rm, conn: conn, sub: sub, seq: since, early: early}
	c.out.b = append(c.out.b, tcpSwitch...) // the answer goes with the backlog
	conns.serve(sub, c, s.quit.Done())
}

// tcpConn is one raw TCP connection (pushConn): lines assembled into as
// few writes as the queue allows.
type tcpConn struct {
	t     *tcpTransport
	conns *pushHub[tcpLine] // the room's
	room  *room
	conn  net.Conn
	sub   *pushSub[tcpLine]
	seq   uint64 // newest seq written or pending (or the resume point)
	out   outBuf

	early   []byte      // what the client sent before the answer
	limiter sendLimiter // the flood bound of what the client sends

	// mu orders a write's "check closing, then push the deadline out"
	// against shutdown's "set closing, then pull the deadline in", so a
	// write started just before shutdown cannot keep a long deadline.
	mu      sync.Mutex
	closing bool
}

// read takes what the client sends, line by line (tcpLines), until the
// connection ends: the client's end of stream, an error, the writer
// closing it, or a line or a flood that breaks the rules.
func (w *tcpConn) read() {
	var lines tcpLines
	if !lines.feed(w, w.early) {
		return
	}
	w.early = nil
	var buf [512]byte
	for {
		n, err := w.conn.Read(buf[:])
		if !lines.feed(w, buf[:n]) || err != nil {
			return
		}
	}
}

func (w *tcpConn) close() { _ = w.conn.Close() }

func (w *tcpConn) last() uint64 { return w.seq }

func (w *tcpConn) gap(g event.Gap) bool {
	w.out.b = append(event.AppendGap(w.out.b, g), '\n')
	w.t.tc.gap(g)
	w.seq = g.To
	return true
}

func (w *tcpConn) entry(e *Entry) bool {
	w.out.add(append(append(w.out.b, e.Data...), '\n'))
	w.seq = e.Seq
	return w.out.full(w.write, &w.t.tc)
}

func (w *tcpConn) send(m tcpLine) bool { return w.entry(m.e) }

func (w *tcpConn) flush() bool { return w.out.flush(w.write, &w.t.tc) }

// closeSlow has nothing to say: raw TCP has no goodbye, and the writer's
// end closes the connection.
func (w *tcpConn) closeSlow() {}

// cut ends the stream between two lines, as the protocol ends a stream the
// client resumes: the pending lines, then the end of stream (a half close;
// over TLS, close_notify). The client answers with its own end, which ends
// the read.
func (w *tcpConn) cut() bool {
	if !w.flush() {
		return false
	}
	cw, ok := w.conn.(interface{ CloseWrite() error })
	return ok && cw.CloseWrite() == nil
}

// write writes b under the write deadline.
func (w *tcpConn) write(b []byte) bool {
	w.mu.Lock()
	if w.closing {
		w.mu.Unlock()
		return false
	}
	_ = w.conn.SetWriteDeadline(w.t.s.deadline())
	w.mu.Unlock()
	if _, err := w.conn.Write(b); err != nil {
		w.conns.failed(w.sub, err)
		return false
	}
	return true
}

// shutdown ends the connection on server shutdown: the writer stops (serve's
// quit), no write starts after this, and one in progress ends within
// closeGrace even if the client has stopped reading, while a healthy client
// still gets it whole. The writer's end closes the connection.
func (w *tcpConn) shutdown() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.closing = true
	_ = w.conn.SetWriteDeadline(time.Now().Add(closeGrace))
}
