package servers

// WebSocket on github.com/gorilla/websocket (LIBRARIES.md, "gorilla"):
//
//   - One dispatcher goroutine follows the hub and offers each event to
//     every connection's bounded queue with a non-blocking send. A full
//     queue marks the connection a slow consumer (counted); its writer
//     closes it with 1008 "slow consumer". Nothing ever waits for a slow
//     client except that client's own writer.
//   - Each event is framed once (websocket.NewPreparedMessage, built by the
//     dispatcher) and written to every connection with
//     WritePreparedMessage, which does not copy or allocate per connection.
//   - One writer goroutine per connection (gorilla allows one concurrent
//     writer); the handler goroutine is the read loop, which gorilla needs
//     to process control frames, with a 4 KiB read limit (bigger: 1009,
//     counted).
//   - One event per text frame, never merged; no compression.

import (
	"context"
	"errors"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"pushbench/event"
)

// wsReadBuffer is small on purpose: clients send only control frames, and a
// bigger buffer would cost every connection. (With ReadBufferSize 0 gorilla
// would keep net/http's 4 KiB reader instead.)
const wsReadBuffer = 1024

var (
	wsSlowClose      = websocket.FormatCloseMessage(websocket.ClosePolicyViolation, "slow consumer")
	wsGoingAwayClose = websocket.FormatCloseMessage(websocket.CloseGoingAway, "server shutting down")
)

// wsMsg is one event as the dispatcher hands it to every connection.
type wsMsg struct {
	e  *Entry
	pm *websocket.PreparedMessage // the frame, built once; nil: frame e.Data per connection
}

// wsSub is one connection as the dispatcher sees it.
type wsSub struct {
	q      chan *wsMsg   // bounded by Config.WSQueue
	slow   chan struct{} // closed when the connection is found slow
	isSlow atomic.Bool
	idx    int // position in wsHub.subs, guarded by wsHub.mu
}

// markSlow marks the connection slow; it reports true the first time only,
// so each slow connection is counted once.
func (sub *wsSub) markSlow() bool {
	if sub.isSlow.CompareAndSwap(false, true) {
		close(sub.slow)
		return true
	}
	return false
}

// wsHub is the set of WebSocket connections the dispatcher feeds.
type wsHub struct {
	mu   sync.RWMutex
	subs []*wsSub
	n    atomic.Int64 // len(subs), read without the lock

	// writePool lends write buffers only for the duration of one
	// WriteMessage (backlog, gap notices): connections that only get
	// prepared frames hold no write buffer.
	writePool sync.Pool
}

func (h *wsHub) add(sub *wsSub) {
	h.mu.Lock()
	sub.idx = len(h.subs)
	h.subs = append(h.subs, sub)
	h.n.Store(int64(len(h.subs)))
	h.mu.Unlock()
}

func (h *wsHub) remove(sub *wsSub) {
	h.mu.Lock()
	last := len(h.subs) - 1
	h.subs[sub.idx] = h.subs[last]
	h.subs[sub.idx].idx = sub.idx
	h.subs[last] = nil
	h.subs = h.subs[:last]
	h.n.Store(int64(len(h.subs)))
	h.mu.Unlock()
}

func (s *Server) initWS() {
	s.upgrader = websocket.Upgrader{
		HandshakeTimeout: s.cfg.WriteTimeout,
		ReadBufferSize:   wsReadBuffer,
		WriteBufferPool:  &s.ws.writePool,
		// Any origin: pushbench serves benchmark clients on loopback, not
		// browsers holding credentials.
		CheckOrigin:       func(*http.Request) bool { return true },
		EnableCompression: false,
		Error: func(w http.ResponseWriter, r *http.Request, status int, reason error) {
			fail(w, &s.wsStats, status, "/ws: %v", reason)
		},
	}
}

// wsDispatch follows the hub and offers every event to every connection.
func (s *Server) wsDispatch() {
	defer s.bg.Done()
	var msgs []*wsMsg
	s.follow(func(batch []*Entry) {
		// No connection, no framing. A connection registers before it
		// reads its backlog from the ring, so it has every event skipped
		// here.
		if s.ws.n.Load() == 0 {
			return
		}
		msgs = msgs[:0]
		for _, e := range batch {
			m := &wsMsg{e: e}
			if pm, err := websocket.NewPreparedMessage(websocket.TextMessage, e.Data); err == nil {
				m.pm = pm
			}
			msgs = append(msgs, m)
		}
		s.offer(msgs)
		clear(msgs)
	})
}

// offer queues msgs on every connection without ever blocking: a connection
// whose queue is full is marked slow and gets nothing more.
func (s *Server) offer(msgs []*wsMsg) {
	s.ws.mu.RLock()
	defer s.ws.mu.RUnlock()
	for _, sub := range s.ws.subs {
		for _, m := range msgs {
			if sub.isSlow.Load() {
				break
			}
			select {
			case sub.q <- m:
			default:
				if sub.markSlow() {
					s.wsStats.slowDisconnects.Add(1)
				}
			}
		}
	}
}

// handleWS serves GET /ws?since=N (upgrade). Without since the stream starts
// after the newest event.
func (s *Server) handleWS(w http.ResponseWriter, r *http.Request) {
	tc := &s.wsStats
	if !s.begin(w, r, tc, http.MethodGet) {
		return
	}
	defer s.leave()
	if !websocket.IsWebSocketUpgrade(r) {
		fail(w, tc, http.StatusBadRequest, "/ws: not a WebSocket upgrade (want Connection: Upgrade and Upgrade: websocket)")
		return
	}
	q, err := query(r)
	if err != nil {
		fail(w, tc, http.StatusBadRequest, "/ws: %v", err)
		return
	}
	since := s.hub.Head()
	if q.Has("since") {
		if since, err = s.resumePoint("since", q.Get("since")); err != nil {
			fail(w, tc, http.StatusBadRequest, "/ws: %v", err)
			return
		}
	}
	conn, err := s.upgrader.Upgrade(w, r, nil)
	if err != nil {
		return // the upgrader has answered (and counted) it
	}
	tc.active.Add(1)
	defer tc.active.Add(-1)
	conn.SetReadLimit(WSReadLimit)
	// NewPreparedMessage frames each event up front for a server without
	// compression at level 0, while a Conn defaults to level 1: the key
	// would differ and every event would be framed a second time by its
	// first writer (gorilla v1.5.3 prepared.go:51, conn.go:736). Level 0
	// is moot with compression off; it only makes the keys match.
	_ = conn.SetCompressionLevel(0)

	// Register before the writer reads its backlog, so that every event
	// reaches it through the queue, the ring or both (deduplicated).
	sub := &wsSub{q: make(chan *wsMsg, s.cfg.WSQueue), slow: make(chan struct{})}
	s.ws.add(sub)
	defer s.ws.remove(sub)

	readDone := make(chan struct{})
	writerDone := make(chan struct{})
	go s.wsWrite(conn, sub, since, readDone, writerDone)

	shutdownDone := make(chan struct{})
	stop := context.AfterFunc(s.quit, func() {
		defer close(shutdownDone)
		// WriteControl may be called concurrently with the writer; if the
		// writer is stuck on a client that stopped reading, the close
		// frame times out and Close unblocks both loops.
		_ = conn.WriteControl(websocket.CloseMessage, wsGoingAwayClose, time.Now().Add(closeGrace))
		_ = conn.Close()
	})

	s.wsRead(conn, tc)
	close(readDone)
	_ = conn.Close()
	<-writerDone
	if !stop() {
		<-shutdownDone
	}
}

// wsRead reads and discards client messages so that gorilla processes
// control frames (close, ping), until the connection ends.
func (s *Server) wsRead(conn *websocket.Conn, tc *counters) {
	for {
		_, r, err := conn.NextReader()
		if err == nil {
			_, err = io.Copy(io.Discard, r)
		}
		if err != nil {
			if errors.Is(err, websocket.ErrReadLimit) {
				// gorilla has already sent close 1009.
				tc.oversizeCloses.Add(1)
			}
			return
		}
	}
}

// wsWriter is the state of one connection's writer goroutine.
type wsWriter struct {
	s    *Server
	conn *websocket.Conn
	sub  *wsSub
	last uint64 // newest seq sent (or the resume point)
}

// wsWrite is a connection's writer: the backlog from the ring first, then
// the queue, dropping what the backlog already sent and filling holes from
// the ring.
func (s *Server) wsWrite(conn *websocket.Conn, sub *wsSub, since uint64, readDone <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	defer conn.Close() // ends the read loop, whatever stopped the writer
	w := &wsWriter{s: s, conn: conn, sub: sub, last: since}
	if head := s.hub.Head(); head > w.last && !w.fill(head) {
		return
	}
	for {
		// A slow mark wins over queued events: they would only be
		// written after the client has been declared too slow.
		select {
		case <-sub.slow:
			w.closeSlow()
			return
		default:
		}
		select {
		case <-sub.slow:
			w.closeSlow()
			return
		case <-readDone:
			return
		case m := <-sub.q:
			if m.e.Seq <= w.last {
				continue // already sent from the ring
			}
			if m.e.Seq > w.last+1 && !w.fill(m.e.Seq-1) {
				return
			}
			if !w.send(m) {
				return
			}
		}
	}
}

func (w *wsWriter) closeSlow() {
	_ = w.conn.WriteControl(websocket.CloseMessage, wsSlowClose, time.Now().Add(closeGrace))
}

// send writes one queued event.
func (w *wsWriter) send(m *wsMsg) bool {
	_ = w.conn.SetWriteDeadline(w.s.deadline())
	var err error
	if m.pm != nil {
		err = w.conn.WritePreparedMessage(m.pm)
	} else {
		err = w.conn.WriteMessage(websocket.TextMessage, m.e.Data)
	}
	if err != nil {
		w.failed(err)
		return false
	}
	w.last = m.e.Seq
	w.s.wsStats.eventsSent.Add(1)
	return true
}

// fill sends the ring's events after w.last up to and including upto, with
// a gap notice first for those that have left the ring.
func (w *wsWriter) fill(upto uint64) bool {
	bp := w.s.entries.Get().(*[]*Entry)
	defer w.s.entries.Put(bp)
	for w.last < upto {
		out, gap, _, err := w.s.hub.Since(w.last, (*bp)[:0], int(min(upto-w.last, 256)))
		if err != nil || (len(out) == 0 && gap.Len() == 0) {
			return true // cannot happen: upto is never past the head
		}
		if gap.Len() > 0 {
			var notice [64]byte // {"gap":[FROM,TO]} is at most 51 bytes
			if !w.write(event.AppendGap(notice[:0], gap)) {
				return false
			}
			w.s.wsStats.gap(gap)
			w.last = gap.To
		}
		for _, e := range out {
			if !w.write(e.Data) {
				*bp = clearEntries(out)
				return false
			}
			w.last = e.Seq
			w.s.wsStats.eventsSent.Add(1)
		}
		*bp = clearEntries(out)
	}
	return true
}

// write writes one text message under the write deadline.
func (w *wsWriter) write(b []byte) bool {
	_ = w.conn.SetWriteDeadline(w.s.deadline())
	if err := w.conn.WriteMessage(websocket.TextMessage, b); err != nil {
		w.failed(err)
		return false
	}
	return true
}

// failed handles a write error: a missed deadline while the server is up is
// a slow consumer (counted once); anything else is a client that went away.
func (w *wsWriter) failed(err error) {
	if w.s.quit.Err() == nil && isTimeout(err) && w.sub.markSlow() {
		w.s.wsStats.slowDisconnects.Add(1)
	}
}
