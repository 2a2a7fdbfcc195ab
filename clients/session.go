package clients

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"pushbench/event"
)

// StatusError is an HTTP answer that retrying cannot fix: a 4xx, a redirect,
// or a success status the transport does not expect (a 200 where a WebSocket
// upgrade or an event stream was due). Run returns it (wrapped) at once. A
// 5xx is also reported as a StatusError, but it is retried.
type StatusError struct {
	URL    string
	Code   int
	Reason string // the server's one-line reason, or what was wrong
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("%s: %d %s: %s", e.URL, e.Code, http.StatusText(e.Code), e.Reason)
}

// permanent reports whether err is an answer that a retry would only
// repeat: a StatusError below 500, a server certificate that failed
// verification, or a server without HTTP/2 where it was asked for.
func permanent(err error) bool {
	var se *StatusError
	return (errors.As(err, &se) && se.Code < 500) || badCertificate(err) || errors.Is(err, ErrNoHTTP2)
}

// statusError builds the StatusError for resp, reading the server's one-line
// reason from the start of its body.
func statusError(url string, resp *http.Response) error {
	return &StatusError{URL: url, Code: resp.StatusCode, Reason: readReason(resp.Body)}
}

// readReason returns the first line of body (at most 512 bytes), which the
// protocol makes the server's reason for a 4xx.
func readReason(body io.Reader) string {
	if body == nil {
		return "(no reason given)"
	}
	line, _ := bufio.NewReaderSize(io.LimitReader(body, 512), 512).ReadString('\n')
	if line = strings.TrimSpace(line); line == "" {
		return "(no reason given)"
	}
	return line
}

// errCutBeforeMessage stands for a stream that the server ended cleanly
// before it delivered anything; for the backoff it counts as a failure, so a
// server that accepts and hangs up at once is not hammered.
var errCutBeforeMessage = errors.New("stream ended before its first message")

// session is the connection state every subscriber shares: it runs attempts
// (one poll, or one stream from connect to cut) until ctx ends, applies the
// backoff between failed ones and counts reconnects and errors.
//
// An attempt reports whether it made progress — a poll was answered, or a
// stream delivered at least one message — and the error that ended it (nil
// for a stream the server closed cleanly). Progress resets the backoff, and
// a stream that made progress is reopened at once: the events missed during
// a cut come back from the server's ring, the sooner the better. Attempts
// without progress are failures: the n-th consecutive one waits
// Min·2^(n-1), at most Max, and the Tries-th gives up.
//
// A server may ask for a reconnection time (SSE's retry field, as an
// EventSource honours it): then every reconnect waits at least that long,
// after progress too (see pause).
type session struct {
	name     string // transport name, for errors
	backoff  Backoff
	counters *Counters
	stream   bool // an attempt is a whole connection, not one request

	// retry is the reconnection time the server asked for (0: none).
	retry time.Duration
	// onReconnect is Config.OnReconnect (streams only; nil: none).
	onReconnect func(gap time.Duration)

	established bool      // some attempt has connected before
	broken      bool      // the connection failed or was cut since
	open        bool      // the current attempt has connected
	ended       time.Time // when the last connection that was in place ended
	timer       *time.Timer
}

// streamSession is the session of a stream subscriber of transport name.
func streamSession(name string, cfg Config) session {
	return session{name: name, backoff: cfg.Backoff, counters: cfg.Counters, stream: true, onReconnect: cfg.OnReconnect}
}

// attempt is one poll or one stream; see session.
type attempt func(ctx context.Context) (progress bool, err error)

func (s *session) run(ctx context.Context, try attempt) error {
	failures := 0
	for {
		progress, err := try(ctx)
		if s.open {
			s.open, s.ended = false, time.Now()
		}
		if ctx.Err() != nil {
			return nil
		}
		if s.stream || !progress {
			s.broken = true
		}
		if err != nil {
			s.counters.Errors.Add(1)
			if permanent(err) {
				return fmt.Errorf("%s: %w", s.name, err)
			}
		}
		if progress {
			failures = 0
		} else {
			if err == nil {
				err = errCutBeforeMessage
			}
			failures++
			if failures >= s.backoff.Tries {
				return fmt.Errorf("%s: %w (%d consecutive failures): %w", s.name, ErrGiveUp, failures, err)
			}
		}
		if d := s.pause(failures); d > 0 && !s.sleep(ctx, d) {
			return nil
		}
	}
}

// pause is the wait before the next attempt after failures consecutive
// failures (0: the last attempt made progress): the backoff's delay, but at
// least the reconnection time the server asked for. Without one, a stream
// that made progress is reopened at once.
func (s *session) pause(failures int) time.Duration {
	if failures == 0 {
		return s.retry
	}
	return max(s.retry, s.delay(failures))
}

// connected records that an attempt has connected (a stream is open, a poll
// answered). For a stream, a connection after a failure or a cut is a
// reconnect, counted and handed to onReconnect with the time since the
// connection before it ended; pollers count new TCP connections instead
// (httpClient.countRequests), since a failed poll on a connection that
// survives is no reconnect.
func (s *session) connected() {
	if s.stream && s.established && s.broken {
		s.counters.Reconnects.Add(1)
		if s.onReconnect != nil {
			s.onReconnect(time.Since(s.ended))
		}
	}
	s.established, s.broken, s.open = true, false, s.stream
}

// delay is the wait before the retry that follows the n-th consecutive
// failure (n ≥ 1).
func (s *session) delay(n int) time.Duration {
	d := s.backoff.Min
	for i := 1; i < n && d < s.backoff.Max; i++ {
		if d > s.backoff.Max/2 {
			return s.backoff.Max
		}
		d *= 2
	}
	return min(d, s.backoff.Max)
}

// sleep waits for d and reports false if ctx ended first.
func (s *session) sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	// One timer per subscriber, reset each time: since Go 1.23 Reset on
	// a fired or stopped timer never delivers a stale tick.
	if s.timer == nil {
		s.timer = time.NewTimer(d)
	} else {
		s.timer.Reset(d)
	}
	select {
	case <-ctx.Done():
		s.timer.Stop()
		return false
	case <-s.timer.C:
		return true
	}
}

// signal is a channel closed once, from any goroutine.
type signal struct {
	once sync.Once
	ch   chan struct{}
}

func newSignal() *signal { return &signal{ch: make(chan struct{})} }

func (s *signal) fire() { s.once.Do(func() { close(s.ch) }) }

// delivery turns decoded messages into batches for the handler and keeps
// the resume point.
type delivery struct {
	h Handler
	// last is the highest seq handed to h, counting a gap notice's end:
	// the server has said that nothing up to it will come, so resuming
	// after it neither re-requests nor skips anything.
	last uint64
	// events is the batch buffer, reused for every batch so that the hot
	// path allocates nothing per event.
	events []event.Event
	// ackFrom, when acks is set, is the client whose game input
	// acknowledgements are read from each event's pad (Config.AckFrom);
	// ackBuf parallels events in the batch being decoded.
	acks    bool
	ackFrom uint64
	ackBuf  []uint64
}

// newDelivery returns the delivery state of a subscriber with cfg.
func newDelivery(cfg Config) delivery {
	d := delivery{last: cfg.Since}
	if cfg.AckFrom >= 0 && cfg.Acks {
		d.acks, d.ackFrom = true, uint64(cfg.AckFrom)
	}
	return d
}

// decode is decodeMessage that also reads the event's acknowledgement for
// the client when the subscriber reads them (0: none).
func (d *delivery) decode(msg []byte, events []event.Event) ([]event.Event, event.Gap, error) {
	n := len(events)
	events, gap, err := decodeMessage(msg, events)
	if d.acks && err == nil && len(events) > n {
		if n == 0 {
			d.ackBuf = d.ackBuf[:0]
		}
		ack, _ := event.FindAck(event.PadOf(msg), d.ackFrom)
		d.ackBuf = append(d.ackBuf, ack)
	}
	return events, gap, err
}

// deliver hands events and gap to the handler as one batch, stamped with
// the time of the call: callers invoke it right after parsing.
func (d *delivery) deliver(events []event.Event, gap event.Gap) {
	b := Batch{Events: events, Gap: gap, Recv: time.Now()}
	if d.acks && len(d.ackBuf) == len(events) {
		b.Acks = d.ackBuf
	}
	d.last = max(d.last, gap.To) // the zero Gap (none) has To 0
	for _, e := range events {
		d.last = max(d.last, e.Seq)
	}
	d.events = events[:0]
	d.h(b)
}

// decodeMessage decodes one message — an event or a gap notice — appending
// an event to events.
func decodeMessage(msg []byte, events []event.Event) ([]event.Event, event.Gap, error) {
	if event.IsGap(msg) {
		g, err := event.DecodeGap(msg)
		return events, g, err
	}
	e, err := event.Decode(msg)
	if err != nil {
		return events, event.Gap{}, err
	}
	return append(events, e), event.Gap{}, nil
}

// onCancel runs f in its own goroutine once ctx is done. The returned stop
// keeps f from running, or waits until it has returned, so that f never
// outlives the caller. Call stop exactly once.
func onCancel(ctx context.Context, f func()) (stop func()) {
	done := make(chan struct{})
	stopAfter := context.AfterFunc(ctx, func() {
		defer close(done)
		f()
	})
	return func() {
		if !stopAfter() {
			<-done
		}
	}
}
