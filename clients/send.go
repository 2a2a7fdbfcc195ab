package clients

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"pushbench/webhttp"
)

// Upstream messages (Subscriber.Send): what the transports share.

// countSend counts the outcome of one Send and returns err.
func countSend(c *Counters, err error) error {
	if err != nil {
		c.SendErrors.Add(1)
	} else {
		c.Sent.Add(1)
	}
	return err
}

// notConnected is a transport's ErrNotConnected, built once so that a
// refused Send allocates nothing.
func notConnected(name string) error {
	return fmt.Errorf("%s: send: %w", name, ErrNotConnected)
}

// sendBuffers holds the buffers that a WebSocket frame or a tcp line is
// assembled in, so that it goes out in one Write: one TCP segment, or one
// TLS record, per message, as a browser's frame does. Only the Sends in
// progress hold one, so an idle client holds none.
var sendBuffers sync.Pool // of *[]byte

// getSendBuffer returns an empty buffer from sendBuffers with room for n
// bytes. Give it back with sendBuffers.Put.
func getSendBuffer(n int) *[]byte {
	bp, _ := sendBuffers.Get().(*[]byte)
	if bp == nil {
		bp = new([]byte)
	}
	if cap(*bp) < n {
		*bp = make([]byte, 0, n)
	}
	*bp = (*bp)[:0]
	return bp
}

// link is a stream's open connection (WebSocket, tcp) as Send sees it: the
// stream publishes it once the connection is up and withdraws it, marking
// it down, before it closes it.
type link struct {
	// Conn is what a frame or line is written to: the connection below
	// gorilla, TLS included, counted below that.
	net.Conn
	// sem is held by the one write in progress on Conn: a Send's frame
	// or line, or (WebSocket) gorilla's control frame, so that frames
	// never interleave.
	sem chan struct{}
	// down: no more messages may go out — our close frame or the reply
	// to the server's is sent, or the stream has ended.
	down atomic.Bool
}

func newLink(conn net.Conn) *link {
	return &link{Conn: conn, sem: make(chan struct{}, 1)}
}

// acquire takes the write side for a Send, or returns ctx's error if ctx
// ends first.
func (l *link) acquire(ctx context.Context) error {
	select {
	case l.sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// acquireWithin takes the write side before deadline (Unix ns; 0: within
// wsCloseGrace), and reports whether it did.
func (l *link) acquireWithin(deadline int64) bool {
	select {
	case l.sem <- struct{}{}:
		return true
	default:
	}
	d := wsCloseGrace
	if deadline != 0 {
		d = time.Until(time.Unix(0, deadline))
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case l.sem <- struct{}{}:
		return true
	case <-t.C:
		return false
	}
}

func (l *link) release() { <-l.sem }

// sendWatch bounds the writes of a subscriber's Sends by their ctx: when a
// Send's ctx ends while its frame or line is being written (blocked on a
// server that does not read), it closes that connection — a message cut
// short leaves it unusable anyway — and the stream reconnects.
//
// One context.AfterFunc serves every Send whose ctx has the same Done
// channel (a harness's sender passes the same ctx each time), so that a
// Send allocates nothing for it.
type sendWatch struct {
	mu       sync.Mutex
	done     <-chan struct{} // the Done channel stop belongs to
	stop     func() bool
	inflight atomic.Pointer[link] // the connection being written, if any
}

// begin arms the watch for ctx and marks l as being written. It returns
// ctx's error, and marks nothing, if ctx has already ended. Call end after
// the write.
func (w *sendWatch) begin(ctx context.Context, l *link) error {
	if done := ctx.Done(); done != nil {
		w.mu.Lock()
		if done != w.done {
			if w.stop != nil {
				w.stop()
			}
			w.done, w.stop = done, context.AfterFunc(ctx, w.fire)
		}
		w.mu.Unlock()
	}
	w.inflight.Store(l)
	// ctx.Err is set before the AfterFunc runs: if it is still nil here,
	// the watch will find l when it fires.
	if err := ctx.Err(); err != nil {
		w.inflight.Store(nil)
		return err
	}
	return nil
}

func (w *sendWatch) end() { w.inflight.Store(nil) }

// fire closes the connection being written, if any. (A write that
// completed just before, and has not yet called end, loses its connection
// too; that happens only as ctx ends.)
func (w *sendWatch) fire() {
	if l := w.inflight.Load(); l != nil {
		l.Close()
	}
}

// release disarms the watch when Run returns.
func (w *sendWatch) release() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.stop != nil {
		w.stop()
	}
	w.done, w.stop = nil, nil
}

// write writes b to l in one Write, bounded by ctx (see sendWatch). The
// caller holds l's write side. A failed write closes l: part of a frame or
// line may have gone out, and the stream reconnects on a fresh connection.
func (w *sendWatch) write(ctx context.Context, l *link, b []byte) error {
	if err := w.begin(ctx, l); err != nil {
		return err
	}
	// No deadline: gorilla's control frames may have left theirs.
	// ctx bounds the write instead, through the watch.
	_ = l.SetWriteDeadline(time.Time{})
	_, err := l.Write(b)
	w.end()
	if err != nil {
		l.Close()
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return err
	}
	return nil
}

// deadlineOf is the deadline of Unix ns ns, the zero time (none) for 0.
func deadlineOf(ns int64) time.Time {
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns)
}

// maxSendAnswer bounds the body of an answer to a POST /send that is read
// (204 has none); the rest of a longer one is dropped with its connection.
const maxSendAnswer = 64 << 10

// poster sends the upstream messages of polls and SSE: POST /send?room=R,
// the body the message, with the profile's Send fields (a fetch() POST).
//
// Over HTTP/1.1 it has an httpClient of its own, dialled through the
// subscriber's counting dialer and TLS dialer (so a second TLS connection
// resumes the first's session, as a browser's does) and kept alive, as a
// browser's page sends on a second connection while the poll or stream
// holds the first. Over HTTP/2 it shares the subscriber's client, and so
// its one connection, as a browser multiplexes both.
type poster struct {
	name   string
	url    string      // base + /send[?room=R]
	header http.Header // the profile's Send fields, shared by every POST
	client *httpClient
	own    bool // client is the poster's own (HTTP/1.1): close it with Run
	// trace counts the POSTs written into Counters.SendRequests, as
	// countRequests counts the subscription's requests (for a poller
	// under HTTP/2 a connection a POST dials is its next one).
	trace    *httptrace.ClientTrace
	counters *Counters
	// ended: Run has returned, and Send posts no more. (Before that,
	// polls post once Run is subscribed, SSE while its stream is open.)
	ended        atomic.Bool
	notConnected error
}

// newPoster returns the poster of a poll or SSE subscriber whose own
// client is sub, dialling through dial and tlsd (nil without TLS).
func newPoster(name string, cfg Config, sub *httpClient, dial dialFunc, tlsd *tlsDialer) *poster {
	url := cfg.BaseURL + "/send"
	if cfg.Room > 0 {
		url += "?room=" + strconv.Itoa(cfg.Room)
	}
	p := &poster{
		name:         name,
		url:          url,
		header:       cfg.HTTP.RequestHeader(webhttp.Send, origin(cfg.BaseURL), sub.h2),
		client:       sub,
		counters:     cfg.Counters,
		notConnected: notConnected(name),
	}
	if !sub.h2 {
		p.client, p.own = newHTTPClient(cfg, dial, tlsd, false), true
	}
	p.trace = p.client.trace(&cfg.Counters.SendRequests, nil)
	return p
}

// close releases the poster's own connection when Run returns.
func (p *poster) close() {
	p.ended.Store(true)
	if p.own {
		p.client.close()
	}
}

// post sends msg and reads the answer in full: a 2xx is success, anything
// else a *StatusError (the connection is kept alive either way, as far as
// the server allows).
func (p *poster) post(ctx context.Context, msg []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(httptrace.WithClientTrace(ctx, p.trace), http.MethodPost, p.url, bytes.NewReader(msg))
	if err != nil {
		return fmt.Errorf("%s: send %s: %w", p.name, p.url, err)
	}
	// Shared by every POST: neither the client nor the transport
	// modifies a request's header; Content-Length comes from the body.
	req.Header = p.header
	resp, err := p.client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("%s: send %s: %w", p.name, p.url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		err := statusError(p.url, resp)
		// Read the rest too, so that the connection serves the next
		// message.
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxSendAnswer))
		return err
	}
	if _, err := io.Copy(io.Discard, io.LimitReader(resp.Body, maxSendAnswer)); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("%s: send %s: read answer: %w", p.name, p.url, err)
	}
	return nil
}

// errNewline is a message for tcp that would not be one line.
var errNewline = errors.New("message contains a newline")
