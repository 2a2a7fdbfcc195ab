package clients

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"slices"
	"strconv"
	"sync/atomic"

	"pushbench/event"
)

// maxPollBody bounds one poll response. The protocol bounds a response by
// the server's ring (or max=M); this is only a guard against a runaway
// server, not a limit a real run should meet.
const maxPollBody = 1 << 30

// newHTTPClient returns the http.Client of one subscriber and its
// transport: one connection at a time, kept alive, dialled through dialer
// so that every byte is counted, no compression (so that bytes on the wire
// are the bytes of the protocol), no proxy and no redirects.
func newHTTPClient(cfg Config) (*http.Client, *http.Transport) {
	tr := &http.Transport{
		DialContext:         dialer(cfg),
		MaxConnsPerHost:     1,
		MaxIdleConns:        1,
		MaxIdleConnsPerHost: 1,
		DisableCompression:  true,
		// No timeouts here: a long poll is held for as long as the
		// server's hold, and a stream for as long as the run. Every
		// request carries Run's ctx, which bounds it instead.
	}
	return &http.Client{
		Transport: tr,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse // a redirect is an error here
		},
	}, tr
}

// poller is the state short and long polling share: one GET of path with
// since=last per attempt, the response body parsed into one batch.
type poller struct {
	cfg    Config
	url    string // base + path + "?since="
	client *http.Client
	tr     *http.Transport
	sess   session
	sub    *signal
	d      delivery
	body   []byte // response buffer, reused across polls
}

func newPoller(name, path string, cfg Config) poller {
	client, tr := newHTTPClient(cfg)
	return poller{
		cfg:    cfg,
		url:    cfg.BaseURL + path + "?since=",
		client: client,
		tr:     tr,
		sess:   session{name: name, backoff: cfg.Backoff, counters: cfg.Counters},
		sub:    newSignal(),
		d:      delivery{last: cfg.Since},
	}
}

// poll sends one request and delivers its answer as one batch. It reports
// progress when the server answered with a well-formed body, even an empty
// one. ctx must carry the trace from countRequests.
func (p *poller) poll(ctx context.Context) (bool, error) {
	url := p.url + strconv.FormatUint(p.d.last, 10)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return false, fmt.Errorf("poll %s: %w", url, err)
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return false, fmt.Errorf("poll %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return false, statusError(url, resp)
	}
	p.body, err = readBody(p.body[:0], resp.Body, resp.ContentLength, maxPollBody)
	if err != nil {
		return false, fmt.Errorf("poll %s: read body: %w", url, err)
	}
	events, gap, err := parsePoll(p.body, p.d.events[:0])
	if err != nil {
		// The HTTP framing delimited the body, so the connection is
		// still in sync; closing it anyway means the retry starts from
		// a fresh one, as for the streams.
		resp.Body.Close()
		p.tr.CloseIdleConnections()
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
// to a connection into c.Requests, and fires sub if it is not nil. Counting
// writes rather than calls of Do includes the transport's own silent retry
// of an idempotent request whose kept-alive connection the server had just
// closed. The trace is attached once per Run, not per request.
//
// With pollConns it also counts, for a poller, every new TCP connection
// after the first as a reconnect: net/http silently retries a poll whose
// kept-alive connection broke before the answer, so from the poller's side
// a cut never shows up as a failed request — only as a fresh connection.
func countRequests(ctx context.Context, c *Counters, sub *signal, pollConns bool) context.Context {
	var hadConn atomic.Bool
	trace := &httptrace.ClientTrace{
		// Called on the transport's write goroutine.
		WroteRequest: func(info httptrace.WroteRequestInfo) {
			if info.Err != nil {
				return
			}
			c.Requests.Add(1)
			if sub != nil {
				sub.fire()
			}
		},
	}
	if pollConns {
		trace.GotConn = func(info httptrace.GotConnInfo) {
			if !info.Reused && hadConn.Swap(true) {
				c.Reconnects.Add(1)
			}
		}
	}
	return httptrace.WithClientTrace(ctx, trace)
}

// close releases the subscriber's idle connection when Run returns. A
// connection still finishing a response is closed by the transport once it
// would be idle: CloseIdleConnections also marks later idle ones for
// closing until the next request.
func (p *poller) close() { p.tr.CloseIdleConnections() }

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
