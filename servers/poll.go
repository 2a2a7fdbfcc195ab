package servers

import (
	"fmt"
	"net/http"
	"strconv"
	"time"

	"pushbench/event"
	"pushbench/transport"
)

func init() {
	registerTransport(transport.ShortPoll, func(s *Server) transportServer { return &shortPoll{base: base{s: s}} })
	registerTransport(transport.LongPoll, func(s *Server) transportServer { return &longPoll{base: base{s: s}} })
}

// shortPoll serves short polls: answered at once, empty or not.
type shortPoll struct{ base }

// longPoll serves long polls: held until there is something to answer.
type longPoll struct{ base }

// A page reads both polls with fetch: cross-origin they need CORS.
func (*shortPoll) corsMethod() string { return http.MethodGet }
func (*longPoll) corsMethod() string  { return http.MethodGet }

// maxPooledBody keeps the body pool from pinning the odd huge answer (a full
// ring of big events) for the life of the process.
const maxPooledBody = 1 << 20

// pollRequest is a parsed /poll or /longpoll request.
type pollRequest struct {
	room  *room
	since uint64
	max   int
	hold  time.Duration // long polls only
}

// parsePoll parses room=, since=, max= and (long polls) hold=. An
// unknown room is a statusError 404, anything else wrong a plain error.
func (s *Server) parsePoll(r *http.Request, long bool) (pollRequest, error) {
	p := pollRequest{max: s.cfg.MaxBatch, hold: s.cfg.Hold}
	q, rm, err := s.requestRoom(r)
	if err != nil {
		return p, err
	}
	p.room = rm
	if q.Has("since") {
		if p.since, err = resumePoint(p.room.hub, "since", q.Get("since")); err != nil {
			return p, err
		}
	}
	if q.Has("max") {
		v := q.Get("max")
		m, err := strconv.Atoi(v)
		if err != nil || m < 1 || m > s.hub.Cap() {
			return p, fmt.Errorf("max %q: want a whole number from 1 to %d (the ring)", v, s.hub.Cap())
		}
		p.max = min(m, s.cfg.MaxBatch)
	}
	if long && q.Has("hold") {
		v := q.Get("hold")
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return p, fmt.Errorf("hold %q: want a positive Go duration such as 5s", v)
		}
		p.hold = min(d, s.cfg.Hold)
	}
	return p, nil
}

// handle serves GET /poll?since=N[&max=M][&room=R]: all events of the
// room after N at once, possibly none.
func (h *shortPoll) handle(w http.ResponseWriter, r *http.Request) {
	s, tc := h.s, &h.tc
	if !s.begin(w, r, tc, http.MethodGet) {
		return
	}
	defer s.leave()
	p, err := s.parsePoll(r, false)
	if err != nil {
		fail(w, tc, statusOf(err, http.StatusBadRequest), "/poll: %v", err)
		return
	}
	bp := s.entries.Get().(*[]*Entry)
	out, gap, _, err := p.room.hub.Since(p.since, (*bp)[:0], p.max)
	if err != nil {
		// parsePoll checked since against the head, which never moves back.
		fail(w, tc, http.StatusBadRequest, "/poll: %v", err)
	} else {
		s.writeBatch(w, r, tc, out, gap)
	}
	*bp = clearEntries(out)
	s.entries.Put(bp)
}

// handle serves GET /longpoll?since=N[&max=M][&hold=D][&room=R]: as /poll,
// but with nothing after N it holds the request until an event is published
// in the room, the hold time passes (then it answers []), the client goes
// away or the server shuts down (then it answers 503).
func (h *longPoll) handle(w http.ResponseWriter, r *http.Request) {
	s, tc := h.s, &h.tc
	if !s.begin(w, r, tc, http.MethodGet) {
		return
	}
	defer s.leave()
	p, err := s.parsePoll(r, true)
	if err != nil {
		fail(w, tc, statusOf(err, http.StatusBadRequest), "/longpoll: %v", err)
		return
	}
	bp := s.entries.Get().(*[]*Entry)
	defer func() { s.entries.Put(bp) }()

	var timer *time.Timer
	for {
		out, gap, wake, err := p.room.hub.Since(p.since, (*bp)[:0], p.max)
		if err != nil {
			fail(w, tc, http.StatusBadRequest, "/longpoll: %v", err)
			return
		}
		if len(out) > 0 || gap.Len() > 0 {
			s.writeBatch(w, r, tc, out, gap)
			*bp = clearEntries(out)
			return
		}
		if timer == nil {
			// Held from here on. The wake channel comes from the same
			// Since call as the (empty) snapshot, so a publish between the
			// two cannot be missed.
			timer = time.NewTimer(p.hold)
			defer timer.Stop()
			tc.active.Add(1)
			defer tc.active.Add(-1)
		}
		select {
		case <-wake:
			// Something was published: take everything available.
		case <-timer.C:
			s.writeBatch(w, r, tc, nil, event.Gap{})
			return
		case <-r.Context().Done():
			return // the client went away; nobody to answer
		case <-s.quit.Done():
			fail(w, nil, http.StatusServiceUnavailable, "/longpoll: server is shutting down")
			return
		}
	}
}

// clearEntries drops the entry pointers before a scratch slice goes back to
// the pool, so the pool does not keep events alive after they left the ring.
func clearEntries(out []*Entry) []*Entry {
	clear(out)
	return out[:0]
}

// writeBatch answers a poll: a JSON array of messages, the gap notice first,
// with the response profile's fields, gzip-encoded if r offers it and the
// server compresses. The body is written in one piece under the write
// deadline.
func (s *Server) writeBatch(w http.ResponseWriter, r *http.Request, tc *counters, out []*Entry, gap event.Gap) {
	bp := s.bodies.Get().(*[]byte)
	b := append((*bp)[:0], '[')
	if gap.Len() > 0 {
		b = event.AppendGap(b, gap)
	}
	for i, e := range out {
		if i > 0 || gap.Len() > 0 {
			b = append(b, ',')
		}
		b = append(b, e.Data...)
	}
	b = append(b, ']')

	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	s.addProfile(h, r, false)
	body := b
	var zp *[]byte
	if s.gzipFor(r) {
		zp = s.bodies.Get().(*[]byte)
		body = s.appendGzip((*zp)[:0], b)
		gzipHeaders(h)
	}
	h.Set("Content-Length", strconv.Itoa(len(body)))
	// net/http clears the connection's write deadline after the response
	// is finished, so it does not leak into the next keep-alive request.
	_ = http.NewResponseController(w).SetWriteDeadline(s.deadline())
	_, err := w.Write(body)
	switch {
	case err != nil && isTimeout(err):
		tc.slowDisconnects.Add(1)
	case err == nil:
		tc.eventsSent.Add(uint64(len(out)))
		if gap.Len() > 0 {
			tc.gap(gap)
		}
		if len(out) == 0 && gap.Len() == 0 {
			tc.emptyResponses.Add(1)
		}
	}
	if cap(b) <= maxPooledBody {
		*bp = b
		s.bodies.Put(bp)
	}
	if zp != nil && cap(body) <= maxPooledBody {
		*zp = body
		s.bodies.Put(zp)
	}
}
