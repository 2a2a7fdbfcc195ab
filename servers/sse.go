package servers

// Server-Sent Events on github.com/r3labs/sse/v2, configured and wrapped
// against its traps (docs/design.md section 9, r3labs):
//
//   - AutoReplay is off. With it on, the library keeps every event forever,
//     replays the whole log to every new subscriber and rewrites Event.ID.
//     Resume therefore cannot come from the library; sseWriter provides it
//     from the hub's ring.
//   - One stream per room ("events" for room 0, made in New; "events-R"
//     for room R, made with its first subscriber), closed only in
//     Shutdown after every SSE handler has returned: RemoveStream/Close
//     with subscribers connected leaks a goroutine per subscriber.
//   - EventTTL stays 0 (with AutoReplay off it would drop every event) and
//     http.Server.WriteTimeout stays unset (it would kill every stream);
//     every write gets its own deadline instead.
//   - The library's stream goroutine feeds each subscriber with a blocking
//     send, so one stalled subscriber stalls all of them, and once the
//     stream buffer is full Publish blocks too. The open-loop publisher only
//     writes to the hub; one pump goroutine per room follows the room's
//     hub and feeds its stream, so a stall delays SSE delivery in that
//     room (visible as latency and counted as stalls) but never the
//     publisher, the other rooms or the other transports.
//     The per-write deadline bounds the stall: a subscriber that cannot
//     take an event within Config.WriteTimeout is cut off (slow_disconnects).
//
// Two options shape what an EventSource does when a stream ends:
// Config.SSERetry starts every stream with a retry field (the time the
// browser waits before it reconnects), and Config.CutEvery ends every
// stream that long after it began, cleanly, as a deploy would; the
// reconnect resumes with Last-Event-ID from the ring.

import (
	"bytes"
	"compress/gzip"
	"context"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/r3labs/sse/v2"

	"pushbench/event"
	"pushbench/transport"
)

func init() { registerTransport(transport.SSE, newSSETransport) }

// sseStream is the r3labs stream of room 0, the one every SSE client of a
// one-room server subscribes to.
const sseStream = "events"

// sseStreamOf names room id's r3labs stream.
func sseStreamOf(id int) string {
	if id == 0 {
		return sseStream
	}
	return sseStream + "-" + strconv.Itoa(id)
}

// sseTransport serves Server-Sent Events through one r3labs stream per
// room.
type sseTransport struct {
	base
	srv   *sse.Server
	rooms *roomSet[sseRoom]
	// retry is the field every stream starts with, "retry: <ms>\n\n"
	// (Config.SSERetry); nil: none.
	retry []byte
}

// sseRoom is one room's stream and pump.
type sseRoom struct {
	room   *room
	stream string
	// active counts the room's subscribers, each before it registers
	// with r3labs (see pump).
	active atomic.Int64
}

func newSSETransport(s *Server) transportServer {
	t := &sseTransport{base: base{s: s}, srv: newSSEServer(s.cfg)}
	if ms := s.cfg.SSERetry.Milliseconds(); ms > 0 {
		t.retry = appendRetry(nil, ms)
	}
	t.rooms = newRoomSet(len(s.rooms), func(r *room) *sseRoom {
		sr := &sseRoom{room: r, stream: sseStreamOf(r.id)}
		t.srv.CreateStream(sr.stream)
		// From the head now: a subscriber registers after this and
		// reads everything before from the ring.
		from := r.hub.Head()
		s.goFeeder(func() { t.pump(sr, from) })
		return sr
	})
	t.rooms.get(s.rooms[0])
	return t
}

// corsMethod: a page reads the stream with EventSource, which cross-origin
// needs CORS (cors.go). Its reconnect's Last-Event-ID needs no preflight.
func (*sseTransport) corsMethod() string { return http.MethodGet }

// close closes the r3labs server. r3labs leaks one goroutine per connected
// subscriber when a stream is closed under it (docs/design.md section 9, r3labs 5); at
// close every SSE handler has returned, so the stream has no subscribers
// left. Close also unblocks a pump that waits in Publish.
func (t *sseTransport) close() { t.srv.Close() }

func newSSEServer(cfg Config) *sse.Server {
	srv := sse.New()
	srv.AutoReplay = false // see the top of this file
	srv.AutoStream = false
	srv.EventTTL = 0
	srv.BufferSize = cfg.SSEBuffer
	srv.SplitData = false // events are one line; a "\n" never occurs in Data
	srv.EncodeBase64 = false
	return srv
}

// pump feeds every event the room's hub publishes after seq from into the
// room's r3labs stream, in order, one fresh *sse.Event per event (the library must never share one,
// design.md section 9, r3labs 2) with Data shared read-only from the hub entry.
//
// It waits in the blocking Publish when the stream buffer is full (counting
// a stall) instead of dropping: SSE clients then fall behind and the ones
// that fall out of the ring get an explicit gap from sseWriter. If the pump
// itself falls a whole ring behind it skips what has left the ring; the
// handlers notice the hole and fill it from the ring or send a gap notice.
func (t *sseTransport) pump(sr *sseRoom, from uint64) {
	t.s.follow(sr.room.hub, from, func(batch []*Entry) {
		// Events for no subscriber cost an allocation each; skip them. A
		// subscriber counts itself active before it registers with r3labs
		// and reads its backlog from the ring after that, so a skipped
		// event is always in its backlog.
		if sr.active.Load() == 0 {
			return
		}
		for _, e := range batch {
			ev := &sse.Event{ID: strconv.AppendUint(nil, e.Seq, 10), Data: e.Data}
			if !t.srv.TryPublish(sr.stream, ev) {
				t.tc.stalls.Add(1)
				t.srv.Publish(sr.stream, ev) // returns when Shutdown closes the stream
			}
		}
	})
}

// handle serves GET /sse[?room=R]. The resume point is the Last-Event-ID
// header, else since=, else the room's newest event (from now).
func (t *sseTransport) handle(w http.ResponseWriter, r *http.Request) {
	s, tc := t.s, &t.tc
	if !s.begin(w, r, tc, http.MethodGet) {
		return
	}
	defer s.leave()
	q, rm, err := s.requestRoom(r)
	if err != nil {
		fail(w, tc, statusOf(err, http.StatusBadRequest), "/sse: %v", err)
		return
	}
	hub := rm.hub
	since := hub.Head()
	switch id := r.Header.Get("Last-Event-ID"); {
	case id != "":
		since, err = resumePoint(hub, "Last-Event-ID", id)
	case q.Has("since"):
		since, err = resumePoint(hub, "since", q.Get("since"))
	}
	if err != nil {
		fail(w, tc, http.StatusBadRequest, "/sse: %v", err)
		return
	}
	sr := t.rooms.get(rm)

	// Active before the r3labs subscription exists: see pump.
	tc.active.Add(1)
	defer tc.active.Add(-1)
	sr.active.Add(1)
	defer sr.active.Add(-1)

	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	sw := &sseWriter{
		s:      s,
		hub:    hub,
		w:      w,
		r:      r,
		rc:     http.NewResponseController(w),
		ctx:    ctx,
		cancel: cancel,
		tc:     tc,
		last:   since,
		gzip:   s.gzipFor(r),
		retry:  t.retry,
	}
	defer sw.finish()
	shutdownDone := make(chan struct{})
	stop := context.AfterFunc(s.quit, func() {
		defer close(shutdownDone)
		sw.shutdown()
	})
	defer func() {
		// The callback touches the connection; it must be over before
		// net/http reuses the response.
		if !stop() {
			<-shutdownDone
		}
	}()
	defer sw.stopCut() // likewise

	// r3labs takes the stream name from the query and ignores
	// Last-Event-ID with AutoReplay off; our header check above accepts
	// only values its strconv.Atoi accepts too, so it never rejects one.
	r2 := r.WithContext(ctx)
	u := *r.URL
	u.RawQuery = "stream=" + sr.stream
	r2.URL = &u
	t.srv.ServeHTTP(sw, r2)
}

// sseWriter is the http.ResponseWriter r3labs writes to. It adds what the
// library lacks:
//
//   - Resume. r3labs registers the subscriber before it calls WriteHeader
//     and Flush (http.go), so at WriteHeader every event the subscription
//     will not deliver is already in the hub. sseWriter sends those from
//     the ring (after a gap notice if some have left it) and remembers the
//     newest seq it sent.
//   - Exactly once, in order. r3labs writes each event as "id: N\n",
//     "data: ...\n", "\n" and then flushes; sseWriter buffers that, drops it
//     if N was already sent from the ring, and fills a hole before it from
//     the ring.
//   - Compression (Config.Compress, compress.go): the whole stream is one
//     gzip stream, flushed after every write.
//   - The response profile's fields (Config.Response).
//   - The retry field first (Config.SSERetry), and the cut (Config.CutEvery):
//     a timer from the start of the stream cancels the request context as
//     shutdown does, so the handler returns and the response ends cleanly.
//   - A deadline on every write. On a missed deadline or any write error it
//     cancels the request context — r3labs then deregisters the subscriber
//     — and discards everything r3labs still writes: the library's handler
//     must keep ranging over its channel until the stream goroutine closes
//     it, or the stream goroutine (which sends with a blocking send) would
//     deadlock every SSE client.
//
// Write, WriteHeader and Flush run on the handler goroutine only; shutdown
// runs on another.
type sseWriter struct {
	s      *Server
	hub    *Hub // the room's
	w      http.ResponseWriter
	r      *http.Request
	rc     *http.ResponseController
	ctx    context.Context
	cancel context.CancelFunc
	tc     *counters

	// mu orders the handler's "check ctx, then push the deadline out"
	// against shutdown's "cancel, then pull the deadline in", so a write
	// started just before shutdown cannot keep a 10 s deadline.
	mu sync.Mutex

	last        uint64 // newest seq sent (or the resume point)
	started     bool   // WriteHeader done, backlog sent
	passthrough bool   // r3labs answered an error: forward it unchanged
	dead        bool   // a write failed or the context ended: discard
	broken      bool   // a write failed: nothing more can be written
	pending     []byte // the event r3labs is writing
	out         outBuf // assembly buffer for backlog and hole fills

	retry    []byte      // the retry field the stream starts with (nil: none)
	cutTimer *time.Timer // Config.CutEvery's, from start; nil: none
	cutDone  chan struct{}

	gzip bool         // the stream is to be gzip-encoded
	gz   *gzip.Writer // the stream's compressor once started (gzip)
}

func (sw *sseWriter) Header() http.Header { return sw.w.Header() }

func (sw *sseWriter) WriteHeader(code int) {
	if sw.started || sw.passthrough {
		return
	}
	if code != http.StatusOK {
		sw.passthrough = true
		sw.w.WriteHeader(code)
		return
	}
	sw.start()
}

// start sends the headers, the retry field if the server sends one, and
// the backlog: every event after the resume point up to the head now. Then
// the stream's cut timer starts (Config.CutEvery).
func (sw *sseWriter) start() {
	sw.started = true
	h := sw.w.Header()
	sw.s.addProfile(h, sw.r, false)
	if sw.gzip {
		gzipHeaders(h)
		sw.gz = sw.s.gzipWriter(sw.w)
	}
	sw.w.WriteHeader(http.StatusOK)
	// The retry field goes first, in the backlog's first write (it is
	// no event: out does not count it).
	sw.out.b = append(sw.out.b, sw.retry...)
	if head := sw.hub.Head(); head > sw.last {
		sw.fill(head)
	}
	if !sw.dead {
		// The retry field, unless the backlog took it, and the
		// headers: the client is subscribed.
		sw.write(sw.out.b)
	}
	sw.out.reset()
	if d := sw.s.cfg.CutEvery; d > 0 && !sw.dead {
		sw.cutDone = make(chan struct{})
		sw.cutTimer = time.AfterFunc(d, func() {
			defer close(sw.cutDone)
			sw.cut()
		})
	}
}

// appendRetry appends the SSE field that sets an EventSource's
// reconnection time to ms milliseconds, as a message of its own:
// "retry: <ms>\n\n", 9 + digits(ms) bytes. It dispatches no event (it has
// no data).
func appendRetry(b []byte, ms int64) []byte {
	b = append(b, "retry: "...)
	b = strconv.AppendInt(b, ms, 10)
	return append(b, "\n\n"...)
}

func (sw *sseWriter) Write(p []byte) (int, error) {
	if sw.passthrough {
		return sw.w.Write(p)
	}
	if !sw.started {
		sw.start()
	}
	if !sw.dead {
		// Bounded: r3labs writes one event between two flushes.
		sw.pending = append(sw.pending, p...)
	}
	// Never report an error: r3labs ignores it anyway, and it must go on
	// draining its channel.
	return len(p), nil
}

// Flush ends one event written by r3labs: drop it, fill the hole before it
// or pass it through.
func (sw *sseWriter) Flush() {
	if sw.passthrough {
		_ = sw.rc.Flush()
		return
	}
	if !sw.started {
		sw.start()
		return
	}
	p := sw.pending
	sw.pending = sw.pending[:0]
	if sw.dead || len(p) == 0 {
		return
	}
	seq, ok := parseSSEID(p)
	if !ok {
		// Not one of the pump's events; nothing else publishes.
		return
	}
	if seq <= sw.last {
		return // already sent from the ring
	}
	if seq > sw.last+1 && !sw.fill(seq-1) {
		return
	}
	if sw.write(p) {
		sw.last = seq
		sw.tc.eventsSent.Add(1)
	}
}

// fill sends the ring's events after sw.last up to and including upto, with
// a gap notice first for those that have left the ring, in writes of about
// sseChunk bytes. It reports whether the connection is still healthy.
func (sw *sseWriter) fill(upto uint64) bool {
	if !sw.dead && sw.s.replay(sw.hub, sw.last, upto, sw) {
		sw.out.flush(sw.write, sw.tc)
	}
	sw.out.reset()
	return !sw.dead
}

// gap adds a gap notice to the pending write. It carries id: TO, so a
// reconnect with that Last-Event-ID continues after it.
func (sw *sseWriter) gap(g event.Gap) bool {
	var notice [64]byte // {"gap":[FROM,TO]} is at most 51 bytes
	sw.out.b = appendSSE(sw.out.b, g.To, event.AppendGap(notice[:0], g))
	sw.tc.gap(g)
	sw.last = g.To
	return true
}

// entry adds an event to the pending write, writing it once it is big.
func (sw *sseWriter) entry(e *Entry) bool {
	sw.out.add(appendSSE(sw.out.b, e.Seq, e.Data))
	sw.last = e.Seq
	return sw.out.full(sw.write, sw.tc)
}

// appendSSE appends one message in exactly the framing r3labs writes:
// "id: N\ndata: DATA\n\n", P + 13 + digits(N) bytes for a P-byte event.
func appendSSE(b []byte, seq uint64, data []byte) []byte {
	b = append(b, "id: "...)
	b = strconv.AppendUint(b, seq, 10)
	b = append(b, "\ndata: "...)
	b = append(b, data...)
	return append(b, "\n\n"...)
}

// parseSSEID returns N from a message that starts with "id: N\n".
func parseSSEID(p []byte) (uint64, bool) {
	rest, ok := bytes.CutPrefix(p, []byte("id: "))
	if !ok {
		return 0, false
	}
	i := bytes.IndexByte(rest, '\n')
	if i <= 0 {
		return 0, false
	}
	var n uint64
	for _, c := range rest[:i] {
		if c < '0' || c > '9' || n > (1<<64-1-9)/10 {
			return 0, false
		}
		n = n*10 + uint64(c-'0')
	}
	return n, true
}

// write writes b (possibly nothing) and flushes it under the write deadline.
// On failure it marks the writer dead, counts a slow disconnect if the
// deadline was missed, and cancels the request context so r3labs
// deregisters the subscriber.
func (sw *sseWriter) write(b []byte) bool {
	sw.mu.Lock()
	if sw.ctx.Err() != nil {
		sw.mu.Unlock()
		sw.dead = true
		return false
	}
	_ = sw.rc.SetWriteDeadline(sw.s.deadline())
	sw.mu.Unlock()
	var err error
	switch {
	case sw.gz != nil:
		// A sync flush ends what is written so far on a byte boundary,
		// so the client can decode all of it now (the first one sends
		// the gzip header).
		if len(b) > 0 {
			_, err = sw.gz.Write(b)
		}
		if err == nil {
			err = sw.gz.Flush()
		}
	case len(b) > 0:
		_, err = sw.w.Write(b)
	}
	if err == nil {
		err = sw.rc.Flush()
	}
	if err == nil {
		// The deadline bounds a write, not the quiet that follows: over
		// HTTP/2 a stream whose write deadline passes is reset even when
		// nothing is being written, which ended every SSE stream idle
		// for Config.WriteTimeout (a browser run waiting for its
		// browsers to settle, a slow event rate). A cut or shutdown that
		// came meanwhile keeps the deadline it set. HTTP/1.1 has no such
		// reset, and clearing costs a deadline change per event there
		// (on every subscriber's hot path): only HTTP/2 clears it.
		if sw.r.ProtoMajor == 2 {
			sw.mu.Lock()
			if sw.ctx.Err() == nil {
				_ = sw.rc.SetWriteDeadline(time.Time{})
			}
			sw.mu.Unlock()
		}
		return true
	}
	sw.dead, sw.broken = true, true
	// Not sw.ctx: net/http cancels the request context itself when a write
	// fails. A timeout while the server is up is a missed deadline; during
	// shutdown it is shutdown pulling the deadline in.
	if sw.s.quit.Err() == nil && isTimeout(err) {
		sw.tc.slowDisconnects.Add(1)
	}
	sw.cancel()
	return false
}

// finish ends a gzip stream, if the handler began one, with its trailer (a
// healthy client then reads a complete gzip stream when the server shuts
// down or cuts the stream, even if r3labs had one more event on its way,
// which is dropped), under whatever deadline the last write, the cut or
// shutdown set, and gives the compressor back.
func (sw *sseWriter) finish() {
	if sw.gz == nil {
		return
	}
	if !sw.broken {
		_ = sw.gz.Close()
	}
	sw.s.putGzip(sw.gz)
	sw.gz = nil
}

// cut ends the stream because it has been open for Config.CutEvery, unless
// it is ending already: as shutdown, it cancels the request context (the
// handler returns and the response ends cleanly, so the client reconnects
// and resumes after the last event it got), and it gives the end of the
// response a fresh write deadline (the last one may have passed on a quiet
// stream). Counted as a cut.
func (sw *sseWriter) cut() {
	sw.mu.Lock()
	defer sw.mu.Unlock()
	if sw.ctx.Err() != nil {
		return
	}
	sw.tc.cuts.Add(1)
	sw.cancel()
	_ = sw.rc.SetWriteDeadline(sw.s.deadline())
}

// stopCut stops the cut timer when the stream ends first, or waits for the
// cut to be over: it touches the connection.
func (sw *sseWriter) stopCut() {
	if sw.cutTimer != nil && !sw.cutTimer.Stop() {
		<-sw.cutDone
	}
}

// shutdown ends the stream on server shutdown: it cancels the request
// context (r3labs deregisters and its handler returns once the stream
// goroutine has closed the channel) and pulls the write deadline in, so a
// write blocked on a client that stopped reading ends within closeGrace
// while a healthy client still gets the end of the chunked body.
func (sw *sseWriter) shutdown() {
	sw.mu.Lock()
	defer sw.mu.Unlock()
	sw.cancel()
	_ = sw.rc.SetWriteDeadline(time.Now().Add(closeGrace))
}
