package servers

// WebSocket on github.com/gorilla/websocket (docs/design.md section 9, gorilla), fed
// by a dispatcher (stream.go, pushHub):
//
//   - Each event is framed once (websocket.NewPreparedMessage, built by the
//     dispatcher) and written to every connection with
//     WritePreparedMessage, which does not copy or allocate per connection.
//   - A slow consumer — a full queue or a missed write deadline — is
//     closed with 1008 "slow consumer".
//   - A cut (Config.CutEvery) is a close 1012 "cut" (service restart: the
//     client is to come back, and can tell it from shutdown's 1001); the
//     server closes the connection once the client has answered it.
//   - One writer goroutine per connection (gorilla allows one concurrent
//     writer); the handler goroutine is the read loop, which gorilla needs
//     to process control frames, with a read limit of event.MaxSize
//     (bigger: 1009, counted). While a chat or game runs every text
//     message is an upstream message for the connection's room
//     (upstream.go): malformed closes 1007, binary 1003, a flood 1008;
//     otherwise client messages are read and dropped.
//   - One dispatcher per room (room=R at the upgrade).
//   - One event per text frame, never merged.
//   - Compression (Config.Compress) is permessage-deflate as gorilla does
//     it: offered back only to a client that asks, and only without
//     context takeover, so every message is deflated on its own (a small
//     event gains far less than in the gzip SSE stream). Each event is
//     still compressed once for all the connections that negotiated it:
//     see compressionLevel in handle.
//   - The upgrade is HTTP/1.1 only: over HTTP/2 (RFC 8441, extended
//     CONNECT) it is refused with 400.
//   - Origin: a browser page may upgrade only from the server's own
//     origin or one of Config.CORS; any other is refused with 403 (cors.go:
//     no CORS protects a WebSocket, so the server must). A client that
//     sends no Origin is not a page and is served.

import (
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"pushbench/event"
	"pushbench/transport"
	"pushbench/webhttp"
)

func init() { registerTransport(transport.WebSocket, newWSTransport) }

// wsReadBuffer is small on purpose: clients send control frames and small
// upstream messages, and a bigger buffer would cost every connection. (With
// ReadBufferSize 0 gorilla would keep net/http's 4 KiB reader instead.)
const wsReadBuffer = 1024

var (
	wsSlowClose      = websocket.FormatCloseMessage(websocket.ClosePolicyViolation, "slow consumer")
	wsGoingAwayClose = websocket.FormatCloseMessage(websocket.CloseGoingAway, "server shutting down")
	wsCutClose       = websocket.FormatCloseMessage(websocket.CloseServiceRestart, "cut")
)

// wsMsg is one event as the dispatcher hands it to every connection.
type wsMsg struct {
	e  *Entry
	pm *websocket.PreparedMessage // the frame, built once; nil: frame e.Data per connection
}

func (m *wsMsg) entry() *Entry { return m.e }

// prepareWS frames an event once for every connection.
func prepareWS(e *Entry) *wsMsg {
	m := &wsMsg{e: e}
	if pm, err := websocket.NewPreparedMessage(websocket.TextMessage, e.Data); err == nil {
		m.pm = pm
	}
	return m
}

// wsTransport serves WebSocket connections.
type wsTransport struct {
	base
	rooms    *roomSet[pushHub[*wsMsg]]
	upgrader websocket.Upgrader

	// writePool lends write buffers only for the duration of one
	// WriteMessage (backlog, gap notices): connections that only get
	// prepared frames hold no write buffer.
	writePool sync.Pool
}

func newWSTransport(s *Server) transportServer {
	t := &wsTransport{base: base{s: s}}
	t.rooms = newPushHubs(s, &t.tc, prepareWS)
	t.upgrader = websocket.Upgrader{
		HandshakeTimeout: s.cfg.WriteTimeout,
		ReadBufferSize:   wsReadBuffer,
		WriteBufferPool:  &t.writePool,
		// The server's own origin, those of Config.CORS and none (a
		// client that is not a browser page): handle refuses any other
		// with a reason first (cors.go, upgradeOrigin).
		CheckOrigin:       s.originAllowed,
		EnableCompression: s.cfg.Compress,
		Error: func(w http.ResponseWriter, r *http.Request, status int, reason error) {
			fail(w, &t.tc, status, "/ws: %v", reason)
		},
	}
	return t
}

// handle serves GET /ws?since=N[&room=R] (upgrade). Without since the
// stream starts after the room's newest event.
func (t *wsTransport) handle(w http.ResponseWriter, r *http.Request) {
	s, tc := t.s, &t.tc
	if !s.begin(w, r, tc, http.MethodGet) {
		return
	}
	defer s.leave()
	if !upgradeOnly(w, r, tc, "WebSocket") {
		return
	}
	if !websocket.IsWebSocketUpgrade(r) {
		fail(w, tc, http.StatusBadRequest, "/ws: not a WebSocket upgrade (want Connection: Upgrade and Upgrade: websocket)")
		return
	}
	if !s.upgradeOrigin(w, r, tc) {
		return
	}
	rm, since, ok := s.streamStart(w, r, tc)
	if !ok {
		return
	}
	var hdr http.Header
	if s.cfg.Response == webhttp.ResponseDeployment {
		hdr = http.Header{}
		s.addProfile(hdr, r, true)
	}
	conn, err := t.upgrader.Upgrade(w, r, hdr)
	if err != nil {
		return // the upgrader has answered (and counted) it
	}
	tc.active.Add(1)
	defer tc.active.Add(-1)
	conn.SetReadLimit(WSReadLimit)
	// A PreparedMessage caches one frame per key (server, compressed,
	// compression level), and a Conn's level is part of the key even
	// when it does not compress (gorilla v1.5.3 prepared.go:27, conn.go:736).
	// NewPreparedMessage frames each event up front for an uncompressed
	// server at level 0, while a Conn defaults to level 1: uncompressed
	// connections therefore get level 0, so that they all use that first
	// frame instead of framing each event again. Connections that
	// negotiated permessage-deflate all get compressLevel, so the first
	// of them to send an event deflates it and the others send that frame.
	level := 0
	if t.upgrader.EnableCompression && offersDeflate(r) {
		level = compressLevel
		conn.EnableWriteCompression(true)
	}
	_ = conn.SetCompressionLevel(level)

	conns := t.rooms.get(rm)
	sub := conns.subscribe()
	defer conns.unsubscribe(sub)
	conns.serve(sub, &wsConn{t: t, conns: conns, room: rm, conn: conn, sub: sub, seq: since}, nil)
}

// offersDeflate reports whether r's Sec-WebSocket-Extensions offers
// permessage-deflate, the test gorilla's Upgrader makes before it accepts
// it (server.go, parseExtensions: the first token of an element).
// Parsing differently would cost an event framed once more per key, never
// a wrong frame: gorilla decides what is negotiated.
func offersDeflate(r *http.Request) bool {
	for _, v := range r.Header.Values("Sec-Websocket-Extensions") {
		for elem := range strings.SplitSeq(v, ",") {
			name, _, _ := strings.Cut(elem, ";")
			if strings.TrimSpace(name) == "permessage-deflate" {
				return true
			}
		}
	}
	return false
}

// wsConn is one WebSocket connection (pushConn): one text message per
// event or gap notice.
type wsConn struct {
	t     *wsTransport
	conns *pushHub[*wsMsg] // the room's
	room  *room
	conn  *websocket.Conn
	sub   *pushSub[*wsMsg]
	seq   uint64 // newest seq sent (or the resume point)

	limiter sendLimiter // the flood bound of what the client sends
}

// read reads client messages — upstream messages while a chat or game
// runs, else dropped — so that gorilla processes control frames (close,
// ping), until the connection ends or the client breaks the rules.
func (w *wsConn) read() {
	for {
		typ, r, err := w.conn.NextReader()
		if err != nil {
			w.readFailed(err, w.t.s.pub.upstream.Load())
			return
		}
		if !w.wsUpstream(typ, r, w.t.s.pub.upstream.Load()) {
			return
		}
	}
}

// shutdown says goodbye with close 1001. WriteControl may be called
// concurrently with the writer; if the writer is stuck on a client that
// stopped reading, the close frame times out and Close unblocks both loops.
func (w *wsConn) shutdown() {
	_ = w.conn.WriteControl(websocket.CloseMessage, wsGoingAwayClose, time.Now().Add(closeGrace))
	_ = w.conn.Close()
}

func (w *wsConn) close() { _ = w.conn.Close() }

func (w *wsConn) last() uint64 { return w.seq }

// send writes one queued event, prepared if the dispatcher could.
func (w *wsConn) send(m *wsMsg) bool {
	if m.pm == nil {
		return w.entry(m.e)
	}
	_ = w.conn.SetWriteDeadline(w.t.s.deadline())
	if err := w.conn.WritePreparedMessage(m.pm); err != nil {
		w.conns.failed(w.sub, err)
		return false
	}
	w.seq = m.e.Seq
	w.t.tc.eventsSent.Add(1)
	return true
}

func (w *wsConn) gap(g event.Gap) bool {
	var notice [64]byte // {"gap":[FROM,TO]} is at most 51 bytes
	if !w.write(event.AppendGap(notice[:0], g)) {
		return false
	}
	w.t.tc.gap(g)
	w.seq = g.To
	return true
}

func (w *wsConn) entry(e *Entry) bool {
	if !w.write(e.Data) {
		return false
	}
	w.seq = e.Seq
	w.t.tc.eventsSent.Add(1)
	return true
}

// flush has nothing to do: every message is written as it comes.
func (w *wsConn) flush() bool { return true }

func (w *wsConn) closeSlow() {
	_ = w.conn.WriteControl(websocket.CloseMessage, wsSlowClose, time.Now().Add(closeGrace))
}

// cut says goodbye with close 1012 "cut" (RFC 6455 7.4: service restart),
// which the client answers with its close frame.
func (w *wsConn) cut() bool {
	return w.conn.WriteControl(websocket.CloseMessage, wsCutClose, time.Now().Add(closeGrace)) == nil
}

// write writes one text message under the write deadline.
func (w *wsConn) write(b []byte) bool {
	_ = w.conn.SetWriteDeadline(w.t.s.deadline())
	if err := w.conn.WriteMessage(websocket.TextMessage, b); err != nil {
		w.conns.failed(w.sub, err)
		return false
	}
	return true
}
