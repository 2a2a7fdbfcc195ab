package clients

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"

	"pushbench/event"
	"pushbench/webhttp"
)

// maxPollBody bounds one poll response. The protocol bounds a response by
// the server's ring (or max=M); this is only a guard against a runaway
// server, not a limit a real run should meet.
const maxPollBody = 1 << 30

// httpClient is the HTTP client of one poll or SSE subscriber: one
// connection at a time, kept alive, dialled through the counting dialer (and
// over TLS through the subscriber's tlsDialer) so that every byte is
// counted, no proxy, no redirects, and no transparent decompression — the
// subscriber decodes gzip itself (decoder), so that the bytes on the wire
// are the bytes the server sent.
//
// With HTTP/2 the transport speaks nothing else: over TLS it negotiates h2
// with ALPN on the connections of the tlsDialer, without TLS it speaks h2c
// with prior knowledge. Either way the subscriber keeps one connection, as
// a browser tab does.
type httpClient struct {
	*http.Client
	tr       *http.Transport
	h2       bool
	counters *Counters
	// polls: the client of a poller, whose new connections after the
	// first are reconnects (countRequests); hadConn: one has been used.
	polls   bool
	hadConn atomic.Bool

	mu   sync.Mutex
	last net.Conn // the latest connection dialled
	done bool     // closed: a connection dialled from now on is closed at once

	// h1Answer: h2c only, a server answered the client's HTTP/2 preface
	// in HTTP/1 (see h1Sniffer).
	h1Answer atomic.Bool
}

// newHTTPClient returns a client dialling through dial, the subscriber's
// counting dialer, and tlsd, its TLS dialer (nil without TLS), which the
// client of its poster shares; polls marks a poller's own client.
func newHTTPClient(cfg Config, dial dialFunc, tlsd *tlsDialer, polls bool) *httpClient {
	c := &httpClient{h2: cfg.HTTP.HTTP == webhttp.HTTP2, counters: cfg.Counters, polls: polls}
	c.tr = &http.Transport{
		DialContext:         c.track(dial),
		MaxConnsPerHost:     1,
		MaxIdleConns:        1,
		MaxIdleConnsPerHost: 1,
		DisableCompression:  true,
		// No timeouts here: a long poll is held for as long as the
		// server's hold, and a stream for as long as the run. Every
		// request carries Run's ctx, which bounds it instead.
	}
	if tlsd != nil {
		c.tr.DialTLSContext = c.track(tlsd.DialTLSContext)
	}
	if c.h2 {
		// net/http speaks HTTP/2 on the connections of a custom
		// DialTLSContext when Protocols enables it and ALPN chose h2
		// (the tlsDialer fails a connection where it did not); with
		// UnencryptedHTTP2 alone it speaks h2c with prior knowledge on
		// those of DialContext.
		p := new(http.Protocols)
		if cfg.HTTP.TLS {
			p.SetHTTP2(true)
		} else {
			p.SetUnencryptedHTTP2(true)
			c.tr.DialContext = c.track(func(ctx context.Context, network, addr string) (net.Conn, error) {
				conn, err := dial(ctx, network, addr)
				if err != nil {
					return nil, err
				}
				return &h1Sniffer{Conn: conn, h1: &c.h1Answer}, nil
			})
		}
		c.tr.Protocols = p
	}
	c.Client = &http.Client{
		Transport: c.tr,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse // a redirect is an error here
		},
	}
	return c
}

// track wraps dial so that the client knows its latest connection, which
// close closes.
func (c *httpClient) track(dial dialFunc) dialFunc {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		conn, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.done {
			conn.Close()
			return nil, net.ErrClosed
		}
		c.last = conn
		return conn, nil
	}
}

// do sends req and checks that the answer came over the HTTP version
// asked for: an answer over HTTP/1.1 where HTTP/2 was asked is ErrNoHTTP2.
// It counts answers over HTTP/2.
func (c *httpClient) do(req *http.Request) (*http.Response, error) {
	resp, err := c.Do(req)
	if err != nil {
		if c.h2 && c.h1Answer.Load() {
			return nil, fmt.Errorf("%w: it answered the h2c preface (HTTP/2 with prior knowledge) in HTTP/1: %w", ErrNoHTTP2, err)
		}
		return nil, err
	}
	switch {
	case resp.ProtoMajor == 2:
		c.counters.HTTP2Responses.Add(1)
	case c.h2:
		// Not expected past the tlsDialer's check; a guard.
		resp.Body.Close()
		return nil, fmt.Errorf("%w: it answered over %s", ErrNoHTTP2, resp.Proto)
	}
	return resp, nil
}

// close releases the client's connections when Run returns. A connection
// still finishing a response is closed by the transport once it would be
// idle (CloseIdleConnections also marks later idle ones for closing until
// the next request); an HTTP/2 connection whose last stream is still being
// reset would not be, so the latest connection is closed outright, and one
// still being dialled is closed once it is up.
func (c *httpClient) close() {
	c.tr.CloseIdleConnections()
	c.mu.Lock()
	last := c.last
	c.last, c.done = nil, true
	c.mu.Unlock()
	if last != nil {
		last.Close()
	}
}

// h1Sniffer watches the first bytes an h2c connection reads: a server that
// does not speak HTTP/2 answers the client's preface in HTTP/1 ("HTTP/1.1
// 400 Bad Request" or the like), which the HTTP/2 framer would report only
// as a malformed frame.
type h1Sniffer struct {
	net.Conn
	h1   *atomic.Bool
	seen []byte // the connection's first bytes read, up to 5
}

func (s *h1Sniffer) Read(p []byte) (int, error) {
	n, err := s.Conn.Read(p)
	if want := len("HTTP/"); len(s.seen) < want && n > 0 {
		s.seen = append(s.seen, p[:min(n, want-len(s.seen))]...)
		if string(s.seen) == "HTTP/" {
			s.h1.Store(true)
		}
	}
	return n, err
}

// newHTTPClients returns the client of a poll or SSE subscriber and its
// poster, which share the counting dialer and the TLS dialer.
func newHTTPClients(name string, cfg Config, polls bool) (*httpClient, *poster) {
	dial := dialer(cfg)
	var tlsd *tlsDialer
	if cfg.HTTP.TLS {
		tlsd = newTLSDialer(cfg, dial, cfg.HTTP.HTTP == webhttp.HTTP2)
	}
	c := newHTTPClient(cfg, dial, tlsd, polls)
	return c, newPoster(name, cfg, c, dial, tlsd)
}

// poller is the state short and long polling share: one GET of path with
// since=last per attempt, the response body parsed into one batch.
type poller struct {
	cfg    Config
	url    string      // base + path + "?[room=R&]since="
	header http.Header // every poll's: the profile's fetch() fields
	client *httpClient
	post   *poster
	sess   session
	sub    *signal
	d      delivery
	body   []byte // response buffer, reused across polls
	gz     gunzip // for gzip answers, reused across polls
}

func newPoller(name, path string, cfg Config) poller {
	client, post := newHTTPClients(name, cfg, true)
	return poller{
		cfg:    cfg,
		url:    cfg.BaseURL + path + "?" + roomQuery(cfg.Room) + "since=",
		header: cfg.HTTP.RequestHeader(webhttp.Fetch, origin(cfg.BaseURL), cfg.HTTP.HTTP == webhttp.HTTP2),
		client: client,
		post:   post,
		sess:   session{name: name, backoff: cfg.Backoff, counters: cfg.Counters},
		sub:    newSignal(),
		d:      newDelivery(cfg),
	}
}

// Send posts msg (Subscriber.Send): once Run is subscribed and until it
// returns, whatever the state of the latest poll, as a page would.
func (p *poller) Send(ctx context.Context, msg []byte) error {
	return countSend(p.cfg.Counters, p.send(ctx, msg))
}

func (p *poller) send(ctx context.Context, msg []byte) error {
	select {
	case <-p.sub.ch:
	default:
		return p.post.notConnected
	}
	if p.post.ended.Load() {
		return p.post.notConnected
	}
	return p.post.post(ctx, msg)
}

// poll sends one request and delivers its answer as one batch. It reports
// progress when the server answered with a well-formed body, even an empty
// one. ctx must carry the trace from httpClient.countRequests.
func (p *poller) poll(ctx context.Context) (bool, error) {
	url := p.url + strconv.FormatUint(p.d.last, 10)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return false, fmt.Errorf("poll %s: %w", url, err)
	}
	// Shared by every poll: neither the client nor the transport
	// modifies a request's header.
	req.Header = p.header
	resp, err := p.client.do(req)
	if err != nil {
		return false, fmt.Errorf("poll %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return false, statusError(url, resp)
	}
	body, hint, err := p.gz.decode(resp)
	if err != nil {
		return false, &StatusError{URL: url, Code: resp.StatusCode, Reason: err.Error()}
	}
	p.body, err = readBody(p.body[:0], body, hint, maxPollBody)
	if err != nil {
		return false, fmt.Errorf("poll %s: read body: %w", url, err)
	}
	events, gap, err := parsePollWith(p.body, p.d.events[:0], p.d.decode)
	if err != nil {
		// The HTTP framing delimited the body, so the connection is
		// still in sync; closing it anyway means the retry starts from
		// a fresh one, as for the streams.
		resp.Body.Close()
		p.client.tr.CloseIdleConnections()
		return false, fmt.Errorf("poll %s: %w", url, err)
	}
	p.sess.connected()
	p.sub.fire()
	if len(events) == 0 && gap == (event.Gap{}) {
		p.cfg.Counters.EmptyResponses.Add(1)
		return true, nil
	}
	p.d.deliver(events, gap)
	return true, nil
}

// countRequests returns ctx with a trace that counts every request written
// to a connection into Counters.Requests, and fires sub if it is not nil.
// Counting writes rather than calls of Do includes the transport's own
// silent retry of an idempotent request whose kept-alive connection the
// server had just closed. The trace is attached once per Run, not per
// request.
//
// Over HTTP/2 a request is counted when the transport hands it to the
// connection (GotConn, once per attempt, retries included), not when its
// HEADERS frame is written: net/http reports that write from the stream's
// writer goroutine, which may run only after the answer has been handed
// back, so Requests would trail the answers. sub still fires on the write.
//
// For a poller it also counts every new TCP connection after the first as
// a reconnect: net/http silently retries a poll whose kept-alive
// connection broke before the answer, so from the poller's side a cut
// never shows up as a failed request — only as a fresh connection.
// GotConn reports a connection's first request as not Reused under HTTP/2
// too. (Under HTTP/2 a POST /send on the poller's connection takes part:
// the connection it dials after a cut is the poller's next one.)
func (c *httpClient) countRequests(ctx context.Context, sub *signal) context.Context {
	return httptrace.WithClientTrace(ctx, c.trace(&c.counters.Requests, sub))
}

// trace is the trace of countRequests, counting requests into requests.
func (c *httpClient) trace(requests *atomic.Uint64, sub *signal) *httptrace.ClientTrace {
	counters, h2, polls := c.counters, c.h2, c.polls
	return &httptrace.ClientTrace{
		// Called on the transport's write goroutine.
		WroteRequest: func(info httptrace.WroteRequestInfo) {
			if info.Err != nil {
				return
			}
			if !h2 {
				requests.Add(1)
			}
			if sub != nil {
				sub.fire()
			}
		},
		// Called on the goroutine of Do.
		GotConn: func(info httptrace.GotConnInfo) {
			if h2 {
				requests.Add(1)
			}
			if polls && !info.Reused && c.hadConn.Swap(true) {
				counters.Reconnects.Add(1)
			}
		},
	}
}

// close releases the subscriber's connections when Run returns.
func (p *poller) close() {
	p.post.close()
	p.client.close()
}

// readBody appends r to buf until EOF, reusing and growing buf (at most to
// about limit bytes); hint is the announced length, or -1.
func readBody(buf []byte, r io.Reader, hint int64, limit int) ([]byte, error) {
	if hint > int64(limit) {
		return buf, fmt.Errorf("body of %d bytes exceeds the limit of %d", hint, limit)
	}
	if hint >= 0 {
		// +1 so that the read which returns EOF needs no growth.
		buf = slices.Grow(buf, int(hint)+1)
	}
	for {
		if len(buf) > limit {
			return buf, fmt.Errorf("body exceeds the limit of %d bytes", limit)
		}
		if len(buf) == cap(buf) {
			buf = slices.Grow(buf, 4096) // append's growth: doubling
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
}
