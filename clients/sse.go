package clients

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"sync/atomic"

	"github.com/r3labs/sse/v2"

	"pushbench/event"
	"pushbench/transport"
	"pushbench/webhttp"
)

// sseFraming is the room an SSE message needs around its data beyond
// MaxMessage: "id: " + 20 digits + "\ndata: " + "\r\n\r\n", rounded up.
const sseFraming = 64

// sseSubscriber is the Server-Sent Events subscriber: GET /sse, one
// text/event-stream per connection, resumed with Last-Event-ID. Like an
// EventSource it honours the server's retry field: every reconnect waits
// at least the reconnection time it sets (Backoff).
//
// It uses r3labs/sse/v2 only for its parser, sse.EventStreamReader, which
// cuts the stream into messages without allocating per message. The
// library's Client is avoided on purpose (docs/design.md section 9, r3labs 7): it leaks a
// goroutine per subscription, ignores ctx while retrying and stops
// reconnecting after a clean EOF, which for pushbench is an ordinary cut.
type sseSubscriber struct {
	cfg    Config
	first  string      // the URL of a stream before anything was delivered
	resume string      // the URL of a stream that resumes with Last-Event-ID
	header http.Header // the profile's EventSource fields
	client *httpClient
	post   *poster
	// open: a stream is open, from its response until it ends; Send
	// posts only then.
	open atomic.Bool
	sess session
	sub  *signal
	d    delivery
	gz   gunzip // for gzip streams, reused across streams
}

var _ Subscriber = (*sseSubscriber)(nil)

func init() {
	registerClient(transport.SSE, func(cfg Config) (Subscriber, error) { return newSSE(cfg), nil })
}

func newSSE(cfg Config) *sseSubscriber {
	client, post := newHTTPClients(transport.SSE, cfg, false)
	resume := cfg.BaseURL + "/sse"
	if cfg.Room > 0 {
		resume += "?room=" + strconv.Itoa(cfg.Room)
	}
	return &sseSubscriber{
		cfg:    cfg,
		first:  cfg.BaseURL + "/sse?" + roomQuery(cfg.Room) + "since=0",
		resume: resume,
		header: cfg.HTTP.RequestHeader(webhttp.EventSource, origin(cfg.BaseURL), cfg.HTTP.HTTP == webhttp.HTTP2),
		client: client,
		post:   post,
		sess:   streamSession(transport.SSE, cfg),
		sub:    newSignal(),
		d:      newDelivery(cfg),
	}
}

func (s *sseSubscriber) Subscribed() <-chan struct{} { return s.sub.ch }

// Run streams until ctx ends. It must be called once.
func (s *sseSubscriber) Run(ctx context.Context, h Handler) error {
	defer s.client.close()
	defer s.post.close()
	s.d.h = h
	traced := s.client.countRequests(ctx, nil)
	return s.sess.run(ctx, func(context.Context) (bool, error) {
		return s.stream(traced)
	})
}

// Send posts msg (Subscriber.Send) while a stream is open.
func (s *sseSubscriber) Send(ctx context.Context, msg []byte) error {
	if !s.open.Load() || s.post.ended.Load() {
		return countSend(s.cfg.Counters, s.post.notConnected)
	}
	return countSend(s.cfg.Counters, s.post.post(ctx, msg))
}

// stream opens one event stream and delivers its messages until the server
// cuts it, it breaks, or ctx ends.
func (s *sseSubscriber) stream(ctx context.Context) (progress bool, err error) {
	// The resume point travels as Last-Event-ID, the header a browser
	// would send. Before anything was delivered it is since=0 in the
	// query instead: without either the server starts "from now", and
	// the harness needs delivery to start at a known seq.
	url := s.resume
	if s.d.last == 0 {
		url = s.first
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return false, fmt.Errorf("sse %s: %w", url, err)
	}
	// The profile's fields carry Accept: text/event-stream (and, with
	// Go's profile, nothing else unless a cookie or gzip is asked for).
	req.Header = s.header.Clone()
	if s.d.last > 0 {
		// Set canonicalises it to Last-Event-Id; the length is the same.
		req.Header.Set("Last-Event-ID", strconv.FormatUint(s.d.last, 10))
	}
	resp, err := s.client.do(req)
	if err != nil {
		return false, fmt.Errorf("sse %s: %w", url, err)
	}
	// Closing the body before EOF closes the connection, which is what
	// every early return here wants.
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return false, statusError(url, resp)
	}
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt != "text/event-stream" {
		return false, &StatusError{URL: url, Code: resp.StatusCode,
			Reason: fmt.Sprintf("Content-Type %q, want text/event-stream", resp.Header.Get("Content-Type"))}
	}
	decoded, _, err := s.gz.decode(resp)
	if err != nil {
		return false, &StatusError{URL: url, Code: resp.StatusCode, Reason: err.Error()}
	}
	s.sess.connected()
	s.open.Store(true)
	defer s.open.Store(false)
	s.sub.fire()

	body := &stickyErrReader{r: decoded}
	r := sse.NewEventStreamReader(body, s.cfg.MaxMessage+sseFraming)
	for {
		msg, err := r.ReadEvent()
		if err == io.EOF {
			// A clean end (ReadEvent also maps context.Canceled to
			// EOF; the session checks ctx first).
			return progress, nil
		}
		if err != nil {
			return progress, fmt.Errorf("sse %s: read: %w", url, err)
		}
		made, err := s.message(msg)
		if err != nil {
			// The scanner hands over the tail of a stream that broke
			// mid-message as a last message; blame the break, not the
			// truncated message it left.
			if body.err != nil && body.err != io.EOF {
				return progress, fmt.Errorf("sse %s: read: %w", url, body.err)
			}
			return progress, fmt.Errorf("sse %s: %w", url, err)
		}
		progress = progress || made
	}
}

// message parses one SSE message and delivers it as one batch; comments and
// keep-alives are skipped. A retry field sets the reconnection time the
// session waits before every reconnect (Backoff). It reports progress: a
// batch delivered, or a retry field (the server spoke). The id must be the
// event's seq, or the end of a gap notice, so that Last-Event-ID can never
// resume from a point the client has not reached.
func (s *sseSubscriber) message(msg []byte) (progress bool, err error) {
	id, data, retry, ok, err := sseFields(msg)
	if err != nil {
		return false, err
	}
	if retry >= 0 {
		s.sess.retry = retry
	}
	if !ok {
		return retry >= 0, nil
	}
	events, gap, err := s.d.decode(data, s.d.events[:0])
	if err != nil {
		return false, err
	}
	want := gap.To
	if len(events) > 0 {
		want = events[0].Seq
	}
	var digits [20]byte
	if !bytes.Equal(id, strconv.AppendUint(digits[:0], want, 10)) {
		return false, fmt.Errorf("sse message: %w: id %q does not match %d", event.ErrMalformed, id, want)
	}
	s.d.deliver(events, gap)
	return true, nil
}

// stickyErrReader remembers the first error its reader returned, so that a
// stream that broke can be told from one that carried a bad message.
type stickyErrReader struct {
	r   io.Reader
	err error
}

func (s *stickyErrReader) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if err != nil && s.err == nil {
		s.err = err
	}
	return n, err
}
