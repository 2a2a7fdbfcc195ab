package clients

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"pushbench/event"
	"pushbench/transport"
	"pushbench/webhttp"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// guard bounds every wait in these tests. It is a hang detector, not a
// timing assertion: nothing here should take more than milliseconds.
const guard = 10 * time.Second

const testPayload = 100 // < 126: a WebSocket frame header is 2 bytes

// ev is the encoded event seq.
func ev(seq uint64) string {
	b, err := event.Encode(event.Event{Seq: seq, T: int64(seq) * 1000}, testPayload)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// gapMsg is the gap notice for from..to.
func gapMsg(from, to uint64) string {
	return string(event.AppendGap(nil, event.Gap{From: from, To: to}))
}

func isPoll(name string) bool { return transport.IsPoll(name) }

// streams are the names of the stream transports.
func streams() []string {
	var names []string
	for _, t := range transport.All() {
		if t.Kind == transport.Stream {
			names = append(names, t.Name)
		}
	}
	return names
}

// batch is a copy of a Batch the handler received.
type batch struct {
	seqs []uint64
	gap  event.Gap
}

func (b batch) String() string { return fmt.Sprintf("{%v gap %d-%d}", b.seqs, b.gap.From, b.gap.To) }

// client is a subscriber running under test.
type client struct {
	sub      Subscriber
	counters *Counters
	batches  chan batch
	cancel   context.CancelFunc
	errc     chan error
}

// startClient runs a subscriber of transport against baseURL. The handler
// records every batch and cancels the run once until returns true (nil:
// never), so that the counters are final when Run returns. The run is
// cancelled and awaited on cleanup.
func startClient(t *testing.T, name, baseURL string, cfg Config, until func(batch) bool) *client {
	t.Helper()
	cfg.BaseURL = baseURL
	if cfg.Counters == nil {
		cfg.Counters = new(Counters)
	}
	if cfg.Interval == 0 {
		cfg.Interval = time.Millisecond
	}
	if cfg.Backoff == (Backoff{}) {
		cfg.Backoff = Backoff{Min: time.Millisecond, Max: 4 * time.Millisecond, Tries: 5}
	}
	sub, err := New(name, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	c := &client{sub: sub, counters: cfg.Counters, batches: make(chan batch, 1024),
		cancel: cancel, errc: make(chan error, 1)}
	handler := func(b Batch) {
		if b.Recv.IsZero() {
			t.Errorf("batch without Recv")
		}
		var got batch
		for _, e := range b.Events {
			if e.T != int64(e.Seq)*1000 {
				t.Errorf("event %d has t %d", e.Seq, e.T)
			}
			got.seqs = append(got.seqs, e.Seq)
		}
		got.gap = b.Gap
		c.batches <- got
		if until != nil && until(got) {
			cancel()
		}
	}
	go func() { c.errc <- sub.Run(ctx, handler) }()
	t.Cleanup(func() {
		cancel()
		c.wait(t)
	})
	return c
}

// upTo returns an until func that stops after seq.
func upTo(seq uint64) func(batch) bool {
	return func(b batch) bool { return slices.Contains(b.seqs, seq) }
}

// wait returns Run's result.
func (c *client) wait(t *testing.T) error {
	t.Helper()
	select {
	case err := <-c.errc:
		c.errc <- err // later waits see it too
		return err
	case <-time.After(guard):
		t.Fatal("Run did not return")
		return nil
	}
}

// collect returns the batches received so far, after Run returned.
func (c *client) collect(t *testing.T) []batch {
	t.Helper()
	if err := c.wait(t); err != nil {
		t.Fatalf("Run: %v", err)
	}
	var got []batch
	for {
		select {
		case b := <-c.batches:
			got = append(got, b)
		default:
			return got
		}
	}
}

func (c *client) subscribed(t *testing.T) {
	t.Helper()
	select {
	case <-c.sub.Subscribed():
	case <-time.After(guard):
		t.Fatal("never subscribed")
	}
}

// requests returns the requests the fake has seen so far.
func (f *fake) requests() []request {
	var got []request
	for {
		select {
		case r := <-f.reqs:
			got = append(got, r)
		default:
			return got
		}
	}
}

// checkResume asserts that r asked to resume after last in the way of the
// transport: since=N for the polls and WebSocket, Last-Event-ID for SSE
// (since=0 explicitly while nothing was delivered).
func checkResume(t *testing.T, name string, i int, r request, last uint64) {
	t.Helper()
	want := strconv.FormatUint(last, 10)
	ok := r.hasSince && r.since == want && r.lastEventID == ""
	if name == transport.SSE {
		if r.accept != "text/event-stream" {
			t.Errorf("request %d: Accept %q", i, r.accept)
		}
		if last > 0 {
			ok = !r.hasSince && r.lastEventID == want
		}
	}
	if !ok {
		t.Errorf("request %d = %+v, want a resume after %d", i, r, last)
	}
}

func checkBatches(t *testing.T, got, want []batch) {
	t.Helper()
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("batches\n got %v\nwant %v", got, want)
	}
}

// one is a batch per stream message.
func one(seqs ...uint64) []batch {
	var bs []batch
	for _, s := range seqs {
		bs = append(bs, batch{seqs: []uint64{s}})
	}
	return bs
}

func TestNewValidates(t *testing.T) {
	t.Parallel()
	h2tls := webhttp.Options{HTTP: webhttp.HTTP2, TLS: true, Headers: webhttp.HeadersBrowser}
	bad := []struct {
		transport string
		cfg       Config
		want      string
	}{
		{"carrier-pigeon", Config{BaseURL: "http://127.0.0.1:1"}, "unknown transport"},
		{transport.SSE, Config{BaseURL: "127.0.0.1:8080"}, "base URL"},
		{transport.SSE, Config{BaseURL: "ftp://127.0.0.1"}, "base URL"},
		{transport.WebSocket, Config{BaseURL: "http://127.0.0.1:1/?since=3"}, "base URL"},
		{transport.ShortPoll, Config{BaseURL: "http://127.0.0.1:1"}, "interval"},
		{transport.LongPoll, Config{BaseURL: "http://127.0.0.1:1", Backoff: Backoff{Min: time.Second, Max: time.Millisecond}}, "backoff"},
		{transport.WebSocket, Config{BaseURL: "https://127.0.0.1:1", HTTP: h2tls}, "cannot run over HTTP/2"},
		{transport.TCP, Config{BaseURL: "http://127.0.0.1:1", HTTP: webhttp.Options{HTTP: webhttp.HTTP2, Headers: webhttp.HeadersGo}}, "cannot run over HTTP/2"},
		{transport.SSE, Config{BaseURL: "http://127.0.0.1:1", HTTP: webhttp.Options{HTTP: "3", Headers: webhttp.HeadersGo}}, "http"},
		{transport.SSE, Config{BaseURL: "https://127.0.0.1:1"}, "tls=false"},
		{transport.LongPoll, Config{BaseURL: "http://127.0.0.1:1", HTTP: h2tls}, "tls=true"},
	}
	for _, tc := range bad {
		if _, err := New(tc.transport, tc.cfg); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("New(%q, %+v) error = %v, want %q", tc.transport, tc.cfg, err, tc.want)
		}
	}
	for _, tr := range transport.Names() {
		if !Has(tr) {
			t.Errorf("Has(%q) = false", tr)
		}
		tlsOn := webhttp.Browser()
		tlsOn.TLS = true
		if _, err := New(tr, Config{BaseURL: "https://127.0.0.1:8080/", Interval: time.Second, HTTP: tlsOn}); err != nil {
			t.Errorf("New(%s): %v", tr, err)
		}
		if webhttp.UsesHTTP2(tr) {
			if _, err := New(tr, Config{BaseURL: "https://127.0.0.1:8080/", Interval: time.Second, HTTP: h2tls}); err != nil {
				t.Errorf("New(%s) with HTTP/2: %v", tr, err)
			}
		}
	}
	if Has("carrier-pigeon") {
		t.Error(`Has("carrier-pigeon") = true`)
	}
	for name := range registered {
		if _, ok := transport.Lookup(name); !ok {
			t.Errorf("subscriber %q has no registry entry", name)
		}
	}
}

// TestDelivery: a known sequence with a gap arrives in order, one batch per
// poll response or stream message, and the polls resume after the last seq.
func TestDelivery(t *testing.T) {
	t.Parallel()
	for _, tr := range transport.Names() {
		t.Run(tr, func(t *testing.T) {
			t.Parallel()
			script := []answer{{msgs: []string{ev(1), ev(2), ev(3), gapMsg(4, 5), ev(6), ev(7)}}}
			want := append(one(1, 2, 3), batch{gap: event.Gap{From: 4, To: 5}})
			want = append(want, one(6, 7)...)
			lasts := []uint64{0}
			if isPoll(tr) {
				script = []answer{
					{msgs: []string{ev(1), ev(2), ev(3)}},
					{msgs: []string{gapMsg(4, 5), ev(6), ev(7)}},
				}
				want = []batch{{seqs: []uint64{1, 2, 3}}, {seqs: []uint64{6, 7}, gap: event.Gap{From: 4, To: 5}}}
				lasts = []uint64{0, 3}
			}
			f := newFake(t, tr, script...)
			c := startClient(t, tr, f.url, Config{}, upTo(7))
			checkBatches(t, c.collect(t), want)
			reqs := f.requests()
			if len(reqs) != len(lasts) {
				t.Fatalf("requests %+v, want %d", reqs, len(lasts))
			}
			for i, r := range reqs {
				checkResume(t, tr, i, r, lasts[i])
			}
			n := c.counters
			if n.BytesDown.Load() == 0 || n.BytesUp.Load() == 0 || n.BytesDown.Load() > f.written.Load() {
				t.Errorf("bytes down %d (server wrote %d), up %d", n.BytesDown.Load(), f.written.Load(), n.BytesUp.Load())
			}
			if n.Dials.Load() != 1 || n.Requests.Load() != uint64(len(reqs)) || n.Errors.Load() != 0 ||
				n.Reconnects.Load() != 0 || n.EmptyResponses.Load() != 0 {
				t.Errorf("counters: dials %d requests %d errors %d reconnects %d empty %d",
					n.Dials.Load(), n.Requests.Load(), n.Errors.Load(), n.Reconnects.Load(), n.EmptyResponses.Load())
			}
		})
	}
}

// TestStartsAfterSince: Config.Since is the first resume point.
func TestStartsAfterSince(t *testing.T) {
	t.Parallel()
	for _, tr := range transport.Names() {
		t.Run(tr, func(t *testing.T) {
			t.Parallel()
			f := newFake(t, tr, answer{msgs: []string{ev(11)}})
			c := startClient(t, tr, f.url, Config{Since: 10}, upTo(11))
			checkBatches(t, c.collect(t), one(11))
			checkResume(t, tr, 0, (f.requests())[0], 10)
		})
	}
}

// TestResume: after the server cuts the connection (abruptly or cleanly) or
// fails a poll, the client resumes after the last seq it was handed.
func TestResume(t *testing.T) {
	t.Parallel()
	type tc struct {
		name           string
		transport      string
		script         []answer
		lasts          []uint64 // the resume point of each request
		want           []batch
		errors, reconn uint64
	}
	var cases []tc
	for _, tr := range []string{transport.ShortPoll, transport.LongPoll} {
		cases = append(cases, tc{
			name: tr, transport: tr,
			script: []answer{
				{end: cut}, // on a fresh connection: the client sees it
				{msgs: []string{ev(1), ev(2)}},
				{status: 503, reason: "busy"},
				{msgs: []string{ev(3)}},
			},
			lasts:  []uint64{0, 0, 2, 2},
			want:   []batch{{seqs: []uint64{1, 2}}, {seqs: []uint64{3}}},
			errors: 2, reconn: 1, // the first success after the cut is no REconnect
		})
	}
	for _, tr := range streams() {
		cases = append(cases, tc{
			name: tr + "/abrupt", transport: tr,
			script: []answer{
				{msgs: []string{ev(1), ev(2)}, end: cut},
				{msgs: []string{ev(3)}},
			},
			lasts: []uint64{0, 2}, want: one(1, 2, 3), errors: 1, reconn: 1,
		}, tc{
			name: tr + "/clean", transport: tr,
			script: []answer{
				{msgs: []string{ev(1), gapMsg(2, 3)}, end: endClean},
				{msgs: []string{ev(4)}},
			},
			lasts:  []uint64{0, 3},
			want:   []batch{{seqs: []uint64{1}}, {gap: event.Gap{From: 2, To: 3}}, {seqs: []uint64{4}}},
			errors: 0, reconn: 1,
		})
	}
	cases = append(cases, tc{
		// The stream breaks inside a message: the truncated message is
		// not delivered, and the resume point stays before it.
		name: "sse/mid-message", transport: transport.SSE,
		script: []answer{
			{msgs: []string{ev(1)}, raw: "id: 2\ndata: " + ev(2)[:40], end: cut},
			{msgs: []string{ev(2)}},
		},
		lasts: []uint64{0, 1}, want: one(1, 2), errors: 1, reconn: 1,
	}, tc{
		// The stream ends inside a line: the partial line is not
		// delivered, and the resume point stays before it.
		name: "tcp/mid-line", transport: transport.TCP,
		script: []answer{
			{msgs: []string{ev(1)}, raw: ev(2)[:40], end: endClean},
			{msgs: []string{ev(2)}},
		},
		lasts: []uint64{0, 1}, want: one(1, 2), errors: 1, reconn: 1,
	})
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFake(t, tc.transport, tc.script...)
			last := tc.want[len(tc.want)-1].seqs[0]
			c := startClient(t, tc.transport, f.url, Config{}, upTo(last))
			checkBatches(t, c.collect(t), tc.want)
			reqs := f.requests()
			if len(reqs) != len(tc.lasts) {
				t.Fatalf("requests %+v, want %d", reqs, len(tc.lasts))
			}
			for i, r := range reqs {
				checkResume(t, tc.transport, i, r, tc.lasts[i])
			}
			if e, r := c.counters.Errors.Load(), c.counters.Reconnects.Load(); e != tc.errors || r != tc.reconn {
				t.Errorf("errors %d reconnects %d, want %d and %d", e, r, tc.errors, tc.reconn)
			}
		})
	}
}

// TestMalformedResumes: a malformed message is counted, the connection
// dropped, and the client resumes after the last good one.
func TestMalformedResumes(t *testing.T) {
	t.Parallel()
	const bad = `{"seq":2,"t":}`
	for _, tr := range transport.Names() {
		t.Run(tr, func(t *testing.T) {
			t.Parallel()
			script := []answer{{msgs: []string{ev(1), bad}}, {msgs: []string{ev(2)}}}
			lasts := []uint64{0, 1}
			want := one(1, 2)
			if isPoll(tr) {
				script = []answer{{msgs: []string{ev(1)}}, {raw: "[" + bad + "]"}, {msgs: []string{ev(2)}}}
				lasts = []uint64{0, 1, 1}
			}
			f := newFake(t, tr, script...)
			c := startClient(t, tr, f.url, Config{}, upTo(2))
			checkBatches(t, c.collect(t), want)
			for i, r := range f.requests() {
				checkResume(t, tr, i, r, lasts[i])
			}
			if e := c.counters.Errors.Load(); e != 1 {
				t.Errorf("errors %d, want 1", e)
			}
		})
	}
}

// TestClientErrorNotRetried: a 4xx ends Run with the server's reason.
func TestClientErrorNotRetried(t *testing.T) {
	t.Parallel()
	for _, tr := range transport.Names() {
		t.Run(tr, func(t *testing.T) {
			t.Parallel()
			const reason = "since: 99 is ahead of the newest event 7"
			f := newFake(t, tr, answer{status: 400, reason: reason})
			c := startClient(t, tr, f.url, Config{Since: 99}, nil)
			err := c.wait(t)
			var se *StatusError
			if !errors.As(err, &se) || se.Code != 400 || se.Reason != reason ||
				!strings.Contains(err.Error(), "400") || !strings.Contains(err.Error(), reason) {
				t.Fatalf("Run error = %v, want the 400 and its reason", err)
			}
			if n := len(f.requests()); n != 1 {
				t.Errorf("%d requests, want 1 (no retry)", n)
			}
			if e := c.counters.Errors.Load(); e != 1 {
				t.Errorf("errors %d, want 1", e)
			}
		})
	}
}

// TestGiveUp: against a closed port the backoff gives up after Tries.
func TestGiveUp(t *testing.T) {
	t.Parallel()
	for _, tr := range transport.Names() {
		t.Run(tr, func(t *testing.T) {
			t.Parallel()
			cfg := Config{Backoff: Backoff{Min: time.Millisecond, Max: 2 * time.Millisecond, Tries: 3}}
			c := startClient(t, tr, closedPort(t), cfg, nil)
			err := c.wait(t)
			if !errors.Is(err, ErrGiveUp) || !strings.Contains(err.Error(), "refused") {
				t.Fatalf("Run error = %v, want ErrGiveUp after connection refused", err)
			}
			n := c.counters
			if n.Errors.Load() != 3 || n.Requests.Load() != 0 || n.Dials.Load() != 0 || n.Reconnects.Load() != 0 {
				t.Errorf("errors %d requests %d dials %d reconnects %d, want 3, 0, 0, 0",
					n.Errors.Load(), n.Requests.Load(), n.Dials.Load(), n.Reconnects.Load())
			}
			select {
			case <-c.sub.Subscribed():
				t.Error("Subscribed closed without a connection")
			default:
			}
		})
	}
}

// TestCancel: once subscribed, cancelling ctx ends Run with nil; the
// WebSocket client says goodbye with a close frame. goleak (TestMain)
// checks that nothing outlives Run.
func TestCancel(t *testing.T) {
	t.Parallel()
	for _, tr := range transport.Names() {
		t.Run(tr, func(t *testing.T) {
			t.Parallel()
			// Long polls and streams are held open; a short poll is
			// answered [] and then waits an hour for its next tick.
			f := newFake(t, tr)
			c := startClient(t, tr, f.url, Config{Interval: time.Hour}, nil)
			c.subscribed(t)
			c.cancel()
			if err := c.wait(t); err != nil {
				t.Fatalf("Run after cancel = %v, want nil", err)
			}
			if tr == transport.WebSocket {
				select {
				case code := <-f.closes:
					if code != 1000 {
						t.Errorf("close code %d, want 1000", code)
					}
				case <-time.After(guard):
					t.Error("no close frame")
				}
			}
		})
	}
}

// TestCancelSilentServer: a server that accepts and never answers cannot
// hold Run after cancel (the WebSocket handshake included).
func TestCancelSilentServer(t *testing.T) {
	t.Parallel()
	for _, tr := range transport.Names() {
		t.Run(tr, func(t *testing.T) {
			t.Parallel()
			url, accepted := silentServer(t)
			c := startClient(t, tr, url, Config{}, nil)
			select {
			case <-accepted:
			case <-time.After(guard):
				t.Fatal("no connection")
			}
			c.cancel()
			if err := c.wait(t); err != nil {
				t.Fatalf("Run after cancel = %v, want nil", err)
			}
		})
	}
}

// TestCancelDuringBackoff: cancel while waiting to retry a 503 — with an
// hour of backoff — ends Run at once.
func TestCancelDuringBackoff(t *testing.T) {
	t.Parallel()
	for _, tr := range transport.Names() {
		t.Run(tr, func(t *testing.T) {
			t.Parallel()
			f := newFake(t, tr, answer{status: 503, reason: "busy"}, answer{status: 503, reason: "busy"})
			cfg := Config{Backoff: Backoff{Min: time.Hour, Max: time.Hour, Tries: 5}}
			c := startClient(t, tr, f.url, cfg, nil)
			select {
			case <-f.reqs:
			case <-time.After(guard):
				t.Fatal("no request")
			}
			c.cancel()
			if err := c.wait(t); err != nil {
				t.Fatalf("Run after cancel = %v, want nil", err)
			}
		})
	}
}

func TestSleepHonoursCancel(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var s session
	if s.sleep(ctx, time.Hour) {
		t.Fatal("sleep of an hour with a cancelled ctx reported true")
	}
}

// TestWebSocketBytesExact: the bytes a WebSocket client reads are exactly
// the bytes the server wrote — the upgrade answer, then payload + 2 per
// event (server frames are unmasked; payload < 126).
func TestWebSocketBytesExact(t *testing.T) {
	t.Parallel()
	const n = 50
	var msgs []string
	for seq := uint64(1); seq <= n; seq++ {
		msgs = append(msgs, ev(seq))
	}
	f := newFake(t, transport.WebSocket, answer{msgs: msgs})
	var down uint64
	counters := new(Counters)
	c := startClient(t, transport.WebSocket, f.url, Config{Counters: counters}, func(b batch) bool {
		if b.seqs[0] == n {
			// Read in the handler: nothing more is on the wire until
			// the client closes.
			down = counters.BytesDown.Load()
			return true
		}
		return false
	})
	c.collect(t)
	hello := <-f.hello
	if want := hello + n*(testPayload+2); down != want {
		t.Errorf("bytes down %d, want %d = %d (upgrade) + %d × (%d + 2)", down, want, hello, n, testPayload)
	}
}

// TestShortPollEmptyResponses: answers of [] are counted as empty and
// delivered as nothing.
func TestShortPollEmptyResponses(t *testing.T) {
	t.Parallel()
	f := newFake(t, transport.ShortPoll,
		answer{msgs: []string{ev(1)}}, answer{}, answer{}, answer{}, answer{msgs: []string{ev(2)}})
	c := startClient(t, transport.ShortPoll, f.url, Config{}, upTo(2))
	checkBatches(t, c.collect(t), one(1, 2))
	n := c.counters
	if n.EmptyResponses.Load() != 3 || n.Requests.Load() != 5 {
		t.Errorf("empty %d requests %d, want 3 and 5", n.EmptyResponses.Load(), n.Requests.Load())
	}
	for i, r := range f.requests() {
		checkResume(t, transport.ShortPoll, i, r, min(uint64(i), 1))
	}
}

// TestLongPollSubscribedBeforeAnswer: Subscribed closes once the first long
// poll is on the wire, while the server still holds it.
func TestLongPollSubscribedBeforeAnswer(t *testing.T) {
	t.Parallel()
	f := newFake(t, transport.LongPoll, answer{end: hold})
	c := startClient(t, transport.LongPoll, f.url, Config{}, nil)
	c.subscribed(t)
	c.cancel()
	if got := c.collect(t); len(got) != 0 {
		t.Errorf("batches %v before any answer", got)
	}
}

func TestScheduleTick(t *testing.T) {
	t.Parallel()
	const T = 10 * time.Millisecond
	cases := []struct {
		elapsed       time.Duration
		prev          int64
		tick, skipped int64
	}{
		{0, -1, 0, 0},          // the first poll
		{T / 2, -1, 0, 0},      // the first poll, a little late
		{3 * T, -1, 3, 3},      // the first poll, very late: ticks 0-2 missed
		{10 * T, 9, 10, 0},     // on time
		{10*T + T/2, 9, 10, 0}, // a little late: still tick 10
		{13*T + T/2, 9, 13, 3}, // overran: ticks 10-12 passed unserved
		{100 * T, 9, 100, 90},  // a long outage
		{20*T + 1, 20, 21, 0},  // never the same tick twice
	}
	for _, tc := range cases {
		tick, skipped := scheduleTick(tc.elapsed, T, tc.prev)
		if tick != tc.tick || skipped != tc.skipped {
			t.Errorf("scheduleTick(%v, %v, %d) = %d, %d; want %d, %d",
				tc.elapsed, T, tc.prev, tick, skipped, tc.tick, tc.skipped)
		}
	}
}

func TestBackoffDelay(t *testing.T) {
	t.Parallel()
	s := session{backoff: Backoff{Min: time.Millisecond, Max: 5 * time.Millisecond, Tries: 9}}
	var got []time.Duration
	for n := 1; n <= 5; n++ {
		got = append(got, s.delay(n))
	}
	want := []time.Duration{1, 2, 4, 5, 5}
	for i := range want {
		want[i] *= time.Millisecond
	}
	if !slices.Equal(got, want) {
		t.Errorf("delays %v, want %v", got, want)
	}
	big := session{backoff: Backoff{Min: time.Hour, Max: 1<<63 - 1}}
	if d := big.delay(200); d <= 0 {
		t.Errorf("delay overflowed: %v", d)
	}
}

// TestLargeEvents: events far beyond every buffer's initial size — a
// 10-byte WebSocket frame header, several reads per message — arrive whole.
func TestLargeEvents(t *testing.T) {
	t.Parallel()
	const size = 70_000
	for _, tr := range transport.Names() {
		t.Run(tr, func(t *testing.T) {
			t.Parallel()
			msgs := []string{encodeSize(t, 1, size), encodeSize(t, 2, size), encodeSize(t, 3, size)}
			script := []answer{{msgs: msgs}}
			want := one(1, 2, 3)
			if isPoll(tr) {
				want = []batch{{seqs: []uint64{1, 2, 3}}}
			}
			f := newFake(t, tr, script...)
			c := startClient(t, tr, f.url, Config{}, upTo(3))
			checkBatches(t, c.collect(t), want)
		})
	}
}

// TestMessageTooLarge: a stream message over MaxMessage is an error; as the
// server keeps sending it, the client gives up.
func TestMessageTooLarge(t *testing.T) {
	t.Parallel()
	for _, tr := range streams() {
		t.Run(tr, func(t *testing.T) {
			t.Parallel()
			big := answer{msgs: []string{encodeSize(t, 1, 300)}}
			f := newFake(t, tr, big, big)
			cfg := Config{MaxMessage: 200, Backoff: Backoff{Min: time.Millisecond, Max: time.Millisecond, Tries: 2}}
			c := startClient(t, tr, f.url, cfg, nil)
			if err := c.wait(t); !errors.Is(err, ErrGiveUp) {
				t.Fatalf("Run error = %v, want ErrGiveUp", err)
			}
			if e := c.counters.Errors.Load(); e != 2 {
				t.Errorf("errors %d, want 2", e)
			}
			if n := len(c.batches); n != 0 {
				t.Errorf("delivered %d batches", n)
			}
		})
	}
}

func TestGridStart(t *testing.T) {
	t.Parallel()
	const T = 100 * time.Millisecond
	origin := time.Unix(1000, 0)
	cases := []struct {
		now  time.Time
		want time.Time
	}{
		{origin, origin},
		{origin.Add(250 * time.Millisecond), origin.Add(200 * time.Millisecond)},
		{origin.Add(-30 * time.Millisecond), origin.Add(-100 * time.Millisecond)},
		{origin.Add(-100 * time.Millisecond), origin.Add(-100 * time.Millisecond)},
		{origin.Add(10*time.Second + 99*time.Millisecond), origin.Add(10 * time.Second)},
	}
	for _, c := range cases {
		if got := gridStart(c.now, origin, T); !got.Equal(c.want) {
			t.Errorf("gridStart(origin%+v) = origin%+v, want origin%+v", c.now.Sub(origin), got.Sub(origin), c.want.Sub(origin))
		}
	}
	now := time.Unix(5, 123)
	if got := gridStart(now, time.Time{}, T); !got.Equal(now) {
		t.Errorf("gridStart with zero origin = %v, want now", got)
	}
}
