package servers

// What the stream transports share: replay (a connection's backlog and hole
// fills from the ring), outBuf (messages assembled into few writes) and the
// dispatcher fan-out (pushHub) of the transports whose connections each
// have a writer goroutine fed through a bounded queue:
//
//   - One dispatcher goroutine per transport and room follows the room's
//     hub (Server.follow) and offers each event to every connection's
//     bounded queue with a non-blocking send. A full queue marks the
//     connection a slow consumer (counted); its writer then ends it.
//     Nothing ever waits for a slow client except that client's own
//     writer. A room's dispatcher starts with its first connection.
//   - A transport may prepare each event once for all its connections (the
//     WebSocket frame) before it is queued.
//   - One writer goroutine per connection sends the backlog after the
//     resume point from the ring, then its queue, dropping what the backlog
//     already sent and filling holes from the ring (with a gap notice for
//     what has left it). Every write has the per-write deadline; a missed
//     one is a slow consumer too.
//   - With Config.CutEvery the writer ends its connection that long after
//     it started, with the protocol's goodbye (pushConn.cut), and counts a
//     cut.

import (
	"context"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"pushbench/event"
)

// ringReader receives what replay reads from the ring. Each method reports
// false when the connection has failed.
type ringReader interface {
	gap(g event.Gap) bool
	entry(e *Entry) bool
}

// replay walks the ring after seq from up to and including upto, in order:
// first, if some of those events have left the ring, the gap that names
// them, then each event still in it. It stops early when a callback of to
// returns false, and reports whether it went all the way. It is how a
// connection sends its backlog and fills a hole in what its feeder gave it.
func (s *Server) replay(hub *Hub, from, upto uint64, to ringReader) bool {
	bp := s.entries.Get().(*[]*Entry)
	defer s.entries.Put(bp)
	for from < upto {
		out, gap, _, err := hub.Since(from, (*bp)[:0], int(min(upto-from, 256)))
		if err != nil || (len(out) == 0 && gap.Len() == 0) {
			return true // cannot happen: upto is never past the head
		}
		ok := gap.Len() == 0 || to.gap(gap)
		from = max(from, gap.To)
		for _, e := range out {
			if !ok {
				break
			}
			ok = to.entry(e)
			from = e.Seq
		}
		*bp = clearEntries(out)
		if !ok {
			return false
		}
	}
	return true
}

// outChunk is about the most bytes an outBuf assembles for one write.
const outChunk = 64 << 10

// outBuf assembles a connection's framed messages into writes of about
// outChunk bytes, and counts the events of a write as sent once it is done.
type outBuf struct {
	b      []byte
	events uint64 // events in b
}

// add takes b, which is the buffer with one more framed event appended.
func (o *outBuf) add(b []byte) {
	o.b = b
	o.events++
}

// full writes the buffer once it has reached outChunk. It reports false if
// that write failed.
func (o *outBuf) full(write func([]byte) bool, tc *counters) bool {
	return len(o.b) < outChunk || o.flush(write, tc)
}

// flush writes what is buffered, if anything, and counts its events into
// tc once written. It reports false if the write failed.
func (o *outBuf) flush(write func([]byte) bool, tc *counters) bool {
	if len(o.b) == 0 {
		return true
	}
	ok := write(o.b)
	if ok {
		tc.eventsSent.Add(o.events)
	}
	o.reset()
	return ok
}

// reset empties the buffer, dropping a big one so that a connection does
// not keep it after a large backlog.
func (o *outBuf) reset() {
	o.events = 0
	if cap(o.b) > 2*outChunk {
		o.b = nil
		return
	}
	o.b = o.b[:0]
}

// queued is what a dispatcher queues for a connection: one hub entry, as
// its transport prepared it.
type queued interface{ entry() *Entry }

// pushSub is one connection as its dispatcher sees it.
type pushSub[M queued] struct {
	q      chan M        // bounded by Config.WSQueue
	slow   chan struct{} // closed when the connection is found slow
	isSlow atomic.Bool
	idx    int // position in pushHub.subs, guarded by pushHub.mu
}

// markSlow marks the connection slow; it reports true the first time only,
// so each slow connection is counted once.
func (sub *pushSub[M]) markSlow() bool {
	if sub.isSlow.CompareAndSwap(false, true) {
		close(sub.slow)
		return true
	}
	return false
}

// pushHub is one transport's set of connections to one room and its
// dispatcher.
type pushHub[M queued] struct {
	s       *Server
	room    *room
	tc      *counters
	prepare func(e *Entry) M // once per event, for every connection

	mu   sync.RWMutex
	subs []*pushSub[M]
	n    atomic.Int64 // len(subs), read without the lock
	msgs []M          // the dispatcher's batch of prepared events
}

// newPushHubs returns a transport's dispatchers, one per room, each made
// and started with the room's first connection; room 0's is made and
// started now.
func newPushHubs[M queued](s *Server, tc *counters, prepare func(*Entry) M) *roomSet[pushHub[M]] {
	rs := newRoomSet(len(s.rooms), func(r *room) *pushHub[M] {
		h := &pushHub[M]{s: s, room: r, tc: tc, prepare: prepare}
		// From the head now: a connection subscribes after this, so
		// whatever came before reaches it from the ring.
		from := r.hub.Head()
		s.goFeeder(func() { h.dispatch(from) })
		return h
	})
	rs.get(s.rooms[0])
	return rs
}

// subscribe adds a connection. Call it before the connection's writer
// reads its backlog, so that every event reaches it through the queue, the
// ring or both (the writer drops duplicates).
func (h *pushHub[M]) subscribe() *pushSub[M] {
	sub := &pushSub[M]{q: make(chan M, h.s.cfg.WSQueue), slow: make(chan struct{})}
	h.mu.Lock()
	sub.idx = len(h.subs)
	h.subs = append(h.subs, sub)
	h.n.Store(int64(len(h.subs)))
	h.mu.Unlock()
	return sub
}

func (h *pushHub[M]) unsubscribe(sub *pushSub[M]) {
	h.mu.Lock()
	last := len(h.subs) - 1
	h.subs[sub.idx] = h.subs[last]
	h.subs[sub.idx].idx = sub.idx
	h.subs[last] = nil
	h.subs = h.subs[:last]
	h.n.Store(int64(len(h.subs)))
	h.mu.Unlock()
}

// dispatch is the transport's feeder for the room: it follows the room's
// hub after seq from and offers every event to every connection.
func (h *pushHub[M]) dispatch(from uint64) {
	h.s.follow(h.room.hub, from, func(batch []*Entry) {
		// No connection, no preparing. A connection subscribes before
		// it reads its backlog from the ring, so it has every event
		// skipped here.
		if h.n.Load() == 0 {
			return
		}
		h.msgs = h.msgs[:0]
		for _, e := range batch {
			h.msgs = append(h.msgs, h.prepare(e))
		}
		h.offer(h.msgs)
		clear(h.msgs)
	})
}

// offer queues msgs on every connection without ever blocking: a connection
// whose queue is full is marked slow and gets nothing more.
func (h *pushHub[M]) offer(msgs []M) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	for _, sub := range h.subs {
		for _, m := range msgs {
			if sub.isSlow.Load() {
				break
			}
			select {
			case sub.q <- m:
			default:
				if sub.markSlow() {
					h.tc.slowDisconnects.Add(1)
				}
			}
		}
	}
}

// pushConn is a transport's side of one connection of a pushHub. gap and
// entry (ringReader) write a message from the ring, or add it to a pending
// write; so does send for a queued one. Those and flush and closeSlow run on
// the writer goroutine, read on the handler's, shutdown on another; close
// may run on any of them, more than once.
type pushConn[M queued] interface {
	ringReader
	// last is the newest seq written or pending (or the resume point).
	last() uint64
	// send writes m, whose seq is last()+1.
	send(m M) bool
	// flush writes what is pending. The writer calls it after the backlog
	// and whenever the queue is empty.
	flush() bool
	// closeSlow ends a connection found slow as its protocol says, if it
	// says anything.
	closeSlow()
	// cut begins the end of a connection that has been open for
	// Config.CutEvery, as its protocol ends a stream the client is to
	// resume. It reports whether the client is to answer that end (its
	// close frame, its end of stream), which ends the read.
	cut() bool
	// read reads what the client sends — upstream messages while a
	// chat or game runs (upstream.go), else dropped — until the
	// connection ends or the client breaks the rules.
	read()
	// shutdown begins the connection's end when the server shuts down:
	// whatever the writer is doing must end within closeGrace.
	shutdown()
	// close closes the connection.
	close()
}

// streamStart parses a stream request's room= (room 0 without) and since=
// — without it the stream starts after the room's newest event, from now
// — and answers a bad one with 400, a room the server does not have with
// 404. It reports false if it has answered.
func (s *Server) streamStart(w http.ResponseWriter, r *http.Request, tc *counters) (*room, uint64, bool) {
	q, rm, err := s.requestRoom(r)
	var since uint64
	if err == nil {
		since = rm.hub.Head()
		if q.Has("since") {
			since, err = resumePoint(rm.hub, "since", q.Get("since"))
		}
	}
	if err != nil {
		fail(w, tc, statusOf(err, http.StatusBadRequest), "%s: %v", r.URL.Path, err)
		return nil, 0, false
	}
	return rm, since, true
}

// serve runs a subscribed connection until it ends: its writer (write) on a
// goroutine of its own, c.read on this one, and c.shutdown when the server
// shuts down; quit, if not nil, stops the writer too. It returns once all of
// them have finished. The writer's end closes the connection, which ends
// the read; the read's end stops the writer.
func (h *pushHub[M]) serve(sub *pushSub[M], c pushConn[M], quit <-chan struct{}) {
	readDone := make(chan struct{})
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		defer c.close()
		h.write(sub, c, readDone, quit)
	}()

	shutdownDone := make(chan struct{})
	stop := context.AfterFunc(h.s.quit, func() {
		defer close(shutdownDone)
		c.shutdown()
	})

	c.read()
	close(readDone)
	c.close()
	<-writerDone
	// shutdown touches the connection; it must be over before the
	// handler returns.
	if !stop() {
		<-shutdownDone
	}
}

// write is a connection's writer: the backlog after c.last() from the ring
// first, then the queue, dropping what the backlog already sent and filling
// holes from the ring, until a write fails, the connection is found slow,
// stop or quit is closed (nil: never) or, with Config.CutEvery, the
// connection is cut.
func (h *pushHub[M]) write(sub *pushSub[M], c pushConn[M], stop, quit <-chan struct{}) {
	var cut <-chan time.Time
	if d := h.s.cfg.CutEvery; d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		cut = t.C
	}
	if head := h.room.hub.Head(); head > c.last() && !h.s.replay(h.room.hub, c.last(), head, c) {
		return
	}
	if !c.flush() {
		return
	}
	for {
		// A slow mark wins over queued events: they would only be
		// written after the client has been declared too slow.
		select {
		case <-sub.slow:
			c.closeSlow()
			return
		default:
		}
		select {
		case <-sub.slow:
			c.closeSlow()
			return
		case <-stop:
			return
		case <-quit:
			return
		case <-cut:
			h.cut(c, stop, quit)
			return
		case m := <-sub.q:
			if !h.take(c, m) || (len(sub.q) == 0 && !c.flush()) {
				return
			}
		}
	}
}

// cut ends a connection that has been open for Config.CutEvery, counted:
// the protocol's goodbye (c.cut), then, if the client is to answer it, a
// wait of at most closeGrace for the read to end, so that the server closes
// the connection after the client's answer and not before it (a close with
// unread bytes would be a reset, which can discard what the client has not
// read yet). The writer's end then closes the connection.
func (h *pushHub[M]) cut(c pushConn[M], stop, quit <-chan struct{}) {
	h.tc.cuts.Add(1)
	if !c.cut() {
		return
	}
	t := time.NewTimer(closeGrace)
	defer t.Stop()
	select {
	case <-stop:
	case <-quit:
	case <-t.C:
	}
}

// take hands a queued message to c: nothing if the ring has already sent
// it, after filling the hole before it from the ring if there is one.
func (h *pushHub[M]) take(c pushConn[M], m M) bool {
	seq := m.entry().Seq
	if seq <= c.last() {
		return true // already sent from the ring
	}
	if seq > c.last()+1 && !h.s.replay(h.room.hub, c.last(), seq-1, c) {
		return false
	}
	return c.send(m)
}

// failed handles a connection's write error: a missed deadline while the
// server is up is a slow consumer (counted once); anything else is a client
// that went away.
func (h *pushHub[M]) failed(sub *pushSub[M], err error) {
	if h.s.quit.Err() == nil && isTimeout(err) && sub.markSlow() {
		h.tc.slowDisconnects.Add(1)
	}
}
