package e2e

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"pushbench/clients"
	"pushbench/event"
	"pushbench/servers"
	"pushbench/transport"
)

// guard bounds every wait in this package. It only detects hangs, generous
// because the machine is shared and -race is slow; no test asserts how long
// anything takes (except Shutdown's one second, which is the requirement).
const guard = 30 * time.Second

// pollInterval is the short-polling period T of every short-poll client.
const pollInterval = 5 * time.Millisecond

// TestMain checks that the package leaves no goroutine behind.
//
// No test here calls t.Parallel: each one loads the machine's two cores with
// a server and up to 100 clients under -race, so running them side by side
// would only slow each down, and TestShutdown's per-test leak check needs
// the process to itself.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// isStream reports whether transport keeps one connection open per client.
func isStream(name string) bool {
	t, _ := transport.Lookup(name)
	return t.Kind == transport.Stream
}

// --- server ---------------------------------------------------------------

// testServer is a servers.Server served on 127.0.0.1:0 through a cutListener.
type testServer struct {
	*servers.Server
	addr   string // host:port
	url    string // http://host:port
	ln     *cutListener
	served chan error
	down   bool
}

// startServer serves a new server for cfg. Cleanup shuts it down (if the
// test has not) and checks that Shutdown and Serve returned nil.
func startServer(t *testing.T, cfg servers.Config) *testServer {
	t.Helper()
	s, err := servers.New(cfg)
	if err != nil {
		t.Fatalf("servers.New: %v", err)
	}
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		_ = s.Shutdown(context.Background())
		t.Fatalf("listen: %v", err)
	}
	ln := newCutListener(raw)
	ts := &testServer{Server: s, addr: raw.Addr().String(), url: "http://" + raw.Addr().String(),
		ln: ln, served: make(chan error, 1)}
	go func() { ts.served <- s.Serve(ln) }()
	t.Cleanup(func() {
		if err := ts.shutdown(guard); err != nil {
			t.Error(err)
		}
	})
	return ts
}

// shutdown shuts the server down with a context of d and waits for Serve.
func (ts *testServer) shutdown(d time.Duration) error {
	if ts.down {
		return nil
	}
	ts.down = true
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	err := ts.Shutdown(ctx)
	select {
	case serr := <-ts.served:
		if serr != nil {
			err = errors.Join(err, fmt.Errorf("Serve: %w", serr))
		}
	case <-time.After(guard):
		err = errors.Join(err, errors.New("Serve did not return after Shutdown"))
	}
	return err
}

// startPublisher starts a run of n events at rate events/s (Events: n) and
// returns a channel closed when it has published them all.
func (ts *testServer) startPublisher(t *testing.T, n uint64, payload int, rate float64) <-chan struct{} {
	t.Helper()
	if err := ts.StartPublisher(servers.PublishConfig{Rate: rate, Payload: payload, Events: n}); err != nil {
		t.Fatalf("StartPublisher: %v", err)
	}
	return ts.Publisher().Done()
}

// publish publishes n more events and waits until the hub holds them all.
func (ts *testServer) publish(t *testing.T, n uint64, payload int, rate float64) {
	t.Helper()
	head := ts.Hub().Head()
	ts.waitPublished(t, ts.startPublisher(t, n, payload, rate), head+n)
}

// waitPublished waits for a run started by startPublisher to end and checks
// that the hub's head is then want.
func (ts *testServer) waitPublished(t *testing.T, done <-chan struct{}, want uint64) {
	t.Helper()
	select {
	case <-done:
	case <-time.After(guard):
		t.Fatalf("publisher did not finish (head %d, want %d)", ts.Hub().Head(), want)
	}
	if head := ts.Hub().Head(); head != want {
		t.Fatalf("after the publisher's run the head is %d, want %d", head, want)
	}
}

// transportStats returns the server's counters for transport.
func (ts *testServer) transportStats(name string) servers.TransportStats {
	return ts.Stats().Transports[name]
}

// waitFor polls cond until it holds, failing the test after guard. It is for
// server-side state that no client can observe directly (a long poll being
// held, a counter that is added right after the write it counts).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(guard)
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		<-tick.C
	}
}

// --- cuts at the server: cutListener --------------------------------------

// gate holds new connections while closed. The zero value is open.
type gate struct {
	mu   sync.Mutex
	wait chan struct{} // non-nil while paused; closed by resume
}

func (g *gate) pause() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.wait == nil {
		g.wait = make(chan struct{})
	}
}

func (g *gate) resume() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.wait != nil {
		close(g.wait)
		g.wait = nil
	}
}

// pass waits while the gate is paused; false if quit closed first.
func (g *gate) pass(quit <-chan struct{}) bool {
	g.mu.Lock()
	w := g.wait
	g.mu.Unlock()
	if w == nil {
		return true
	}
	select {
	case <-w:
		return true
	case <-quit:
		return false
	}
}

// cutListener is the listener the server serves on. cut closes every
// connection it has handed to the server so far — a cut from the server's
// side: the server's own socket closes under it. While paused it holds
// newly accepted connections back from the server (the kernel has completed
// their handshake, so a client's reconnect waits for an answer).
type cutListener struct {
	net.Listener
	gate
	mu        sync.Mutex
	conns     []net.Conn
	quit      chan struct{}
	closeOnce sync.Once
}

func newCutListener(ln net.Listener) *cutListener {
	return &cutListener{Listener: ln, quit: make(chan struct{})}
}

func (l *cutListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	if !l.pass(l.quit) {
		c.Close()
		return nil, net.ErrClosed
	}
	l.mu.Lock()
	l.conns = append(l.conns, c)
	l.mu.Unlock()
	return c, nil
}

// cut closes every connection accepted so far and returns how many it closed
// (including ones that had already ended).
func (l *cutListener) cut() int {
	l.mu.Lock()
	conns := l.conns
	l.conns = nil
	l.mu.Unlock()
	for _, c := range conns {
		_ = c.Close()
	}
	return len(conns)
}

func (l *cutListener) Close() error {
	l.closeOnce.Do(func() { close(l.quit) })
	return l.Listener.Close()
}

// --- cuts at the client: proxy ---------------------------------------------

// proxy is a TCP proxy on loopback between the clients and the server. cut
// closes both sides of every connection it carries — a cut from the
// client's side: the client's socket closes under it (and the server sees
// its client go away). While paused it accepts new connections but neither
// dials the server for them nor reads from them, so a client's reconnect
// waits.
type proxy struct {
	gate
	ln     net.Listener
	target string
	url    string

	mu     sync.Mutex
	conns  map[net.Conn]bool // true: carrying traffic (cut closes it)
	closed bool
	quit   chan struct{}
	wg     sync.WaitGroup
}

// startProxy listens on 127.0.0.1:0 and forwards to target. Cleanup closes it
// and every connection and waits for its goroutines.
func startProxy(t *testing.T, target string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("proxy listen: %v", err)
	}
	p := &proxy{ln: ln, target: target, url: "http://" + ln.Addr().String(),
		conns: make(map[net.Conn]bool), quit: make(chan struct{})}
	p.wg.Add(1)
	go p.serve()
	t.Cleanup(p.close)
	return p
}

func (p *proxy) serve() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		if !p.track(c, false) {
			c.Close()
			return
		}
		p.wg.Add(1)
		go p.handle(c)
	}
}

// track registers c; false once the proxy is closed.
func (p *proxy) track(c net.Conn, live bool) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	p.conns[c] = live
	return true
}

func (p *proxy) untrack(cs ...net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range cs {
		delete(p.conns, c)
	}
}

func (p *proxy) handle(down net.Conn) {
	defer p.wg.Done()
	defer down.Close()
	if !p.pass(p.quit) {
		p.untrack(down)
		return
	}
	up, err := net.DialTimeout("tcp", p.target, guard)
	if err != nil {
		p.untrack(down)
		return
	}
	defer up.Close()
	// Both directions are live from here on: the next cut closes them.
	if !p.track(up, true) || !p.track(down, true) {
		p.untrack(up, down)
		return
	}
	defer p.untrack(up, down)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		pipe(up, down)
	}()
	pipe(down, up)
	wg.Wait()
}

// pipe copies src to dst and passes on src's end of stream as a half-close;
// an error (a cut) closes both.
func pipe(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				dst.Close()
				src.Close()
				return
			}
		}
		if err != nil {
			if tc, ok := dst.(*net.TCPConn); ok && errors.Is(err, io.EOF) {
				_ = tc.CloseWrite()
			} else {
				dst.Close()
				src.Close()
			}
			return
		}
	}
}

// cut closes both sides of every connection carrying traffic and returns how
// many client connections it cut. Connections held by a pause are kept.
func (p *proxy) cut() int {
	p.mu.Lock()
	var live []net.Conn
	for c, l := range p.conns {
		if l {
			live = append(live, c)
		}
	}
	p.mu.Unlock()
	for _, c := range live {
		_ = c.Close()
	}
	return len(live) / 2
}

func (p *proxy) close() {
	p.mu.Lock()
	p.closed = true
	conns := make([]net.Conn, 0, len(p.conns))
	for c := range p.conns {
		conns = append(conns, c)
	}
	p.mu.Unlock()
	close(p.quit)
	p.ln.Close()
	for _, c := range conns {
		c.Close()
	}
	p.wg.Wait()
}

// --- clients ----------------------------------------------------------------

// checker verifies one client's delivery as it happens: every event exactly
// once and in order, gaps only where announced and starting exactly where
// the delivery had got to.
type checker struct {
	id int

	mu     sync.Mutex
	next   uint64 // the seq expected next
	events uint64 // events delivered
	lost   uint64 // events named by gap notices
	gaps   []event.Gap
	errs   []string // the first few problems, precisely
	nerrs  int

	progress chan struct{} // poked (never blocking) after every batch
}

func newChecker(id int, since uint64) *checker {
	return &checker{id: id, next: since + 1, progress: make(chan struct{}, 1)}
}

func (c *checker) fail(format string, args ...any) {
	c.nerrs++
	if len(c.errs) < 5 {
		c.errs = append(c.errs, fmt.Sprintf(format, args...))
	}
}

// handle is the client's Handler.
func (c *checker) handle(b clients.Batch) {
	c.mu.Lock()
	if g := b.Gap; g != (event.Gap{}) {
		switch {
		case g.Len() == 0:
			c.fail("malformed gap %d..%d", g.From, g.To)
		case g.From != c.next:
			c.fail("gap %d..%d, but the next event due was %d", g.From, g.To, c.next)
			c.next = max(c.next, g.To+1)
		default:
			c.gaps = append(c.gaps, g)
			c.lost += g.Len()
			c.next = g.To + 1
		}
	}
	if len(b.Events) == 0 && b.Gap == (event.Gap{}) {
		c.fail("empty batch")
	}
	for _, e := range b.Events {
		switch {
		case e.Seq == c.next:
			c.next++
			c.events++
		case e.Seq < c.next:
			c.fail("seq %d after %d: duplicate or out of order", e.Seq, c.next-1)
		default:
			c.fail("seq %d after %d: events %d..%d missing without a gap notice", e.Seq, c.next-1, c.next, e.Seq-1)
			c.next = e.Seq + 1
			c.events++
		}
	}
	c.mu.Unlock()
	select {
	case c.progress <- struct{}{}:
	default:
	}
}

// state is a snapshot of a checker.
type state struct {
	next, events, lost uint64
	gaps               []event.Gap
	errs               []string
	nerrs              int
}

func (c *checker) state() state {
	c.mu.Lock()
	defer c.mu.Unlock()
	return state{next: c.next, events: c.events, lost: c.lost,
		gaps: append([]event.Gap(nil), c.gaps...), errs: append([]string(nil), c.errs...), nerrs: c.nerrs}
}

func (s state) problems() string {
	if s.nerrs == 0 {
		return ""
	}
	return fmt.Sprintf("%d problems, first: %s", s.nerrs, strings.Join(s.errs, "; "))
}

// client is one running subscriber and its checker.
type client struct {
	id       int
	sub      clients.Subscriber
	counters *clients.Counters
	check    *checker
	done     chan struct{} // closed when Run has returned
	err      error         // Run's result, set before done is closed
}

// fleet is n subscribers of one transport run under one context.
type fleet struct {
	transport string
	clients   []*client
	cancel    context.CancelFunc
	stopped   bool
}

// startFleet starts n subscribers of transport against baseURL, delivering
// from seq 1. Cleanup stops them (if the test has not).
func startFleet(t *testing.T, name, baseURL string, n int) *fleet {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	f := &fleet{transport: name, cancel: cancel}
	t.Cleanup(func() { f.stop(t) })
	for i := range n {
		cfg := clients.Config{BaseURL: baseURL, Counters: new(clients.Counters)}
		if name == transport.ShortPoll {
			cfg.Interval = pollInterval
		}
		sub, err := clients.New(name, cfg)
		if err != nil {
			t.Fatalf("clients.New(%s): %v", name, err)
		}
		c := &client{id: i, sub: sub, counters: cfg.Counters, check: newChecker(i, 0), done: make(chan struct{})}
		f.clients = append(f.clients, c)
		go func() {
			defer close(c.done)
			c.err = sub.Run(ctx, c.check.handle)
		}()
	}
	return f
}

// waitReady waits until every client is subscribed and, for the transports
// whose server counts them (held long polls, open streams), until the server
// sees all n.
func (f *fleet) waitReady(t *testing.T, ts *testServer) {
	t.Helper()
	timeout := time.After(guard)
	for _, c := range f.clients {
		select {
		case <-c.sub.Subscribed():
		case <-c.done:
			t.Fatalf("client %d: Run returned before subscribing: %v", c.id, c.err)
		case <-timeout:
			t.Fatalf("client %d: not subscribed", c.id)
		}
	}
	if f.transport == transport.ShortPoll {
		return
	}
	n := int64(len(f.clients))
	waitFor(t, fmt.Sprintf("the server to count %d active %s clients", n, f.transport), func() bool {
		return ts.transportStats(f.transport).Active == n
	})
}

// waitSeq waits until every client's delivery (events and gap notices) has
// reached seq.
func (f *fleet) waitSeq(t *testing.T, seq uint64) {
	t.Helper()
	timeout := time.After(guard)
	for _, c := range f.clients {
		for {
			st := c.check.state()
			if st.next > seq {
				break
			}
			select {
			case <-c.check.progress:
			case <-c.done:
				t.Fatalf("client %d: Run returned at seq %d, before %d: %v", c.id, st.next-1, seq, c.err)
			case <-timeout:
				t.Fatalf("client %d: delivery stuck at seq %d, want %d (%s)", c.id, st.next-1, seq, st.problems())
			}
		}
	}
}

// stop cancels every client and waits for every Run to return; it fails the
// test for a Run that returns an error. Calling it again does nothing.
func (f *fleet) stop(t *testing.T) {
	t.Helper()
	if f.stopped {
		return
	}
	f.stopped = true
	f.cancel()
	timeout := time.After(guard)
	for _, c := range f.clients {
		select {
		case <-c.done:
			if c.err != nil {
				t.Errorf("client %d: Run: %v", c.id, c.err)
			}
		case <-timeout:
			t.Fatalf("client %d: Run did not return after its context was cancelled", c.id)
		}
	}
}

// expectExactlyOnce checks that every client got events 1..last exactly
// once, in order, with no gap.
func (f *fleet) expectExactlyOnce(t *testing.T, last uint64) {
	t.Helper()
	for _, c := range f.clients {
		st := c.check.state()
		if p := st.problems(); p != "" {
			t.Errorf("%s client %d: %s", f.transport, c.id, p)
		}
		if st.events != last || st.next != last+1 || len(st.gaps) != 0 {
			t.Errorf("%s client %d: %d events up to seq %d, gaps %v; want exactly 1..%d and no gap",
				f.transport, c.id, st.events, st.next-1, st.gaps, last)
		}
	}
}
