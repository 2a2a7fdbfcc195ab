package browser

import (
	"context"
	"errors"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"go.uber.org/goleak"

	"pushbench/clients"
	"pushbench/servers"
	"pushbench/webhttp"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// bound is the longest a test waits for a condition (a browser starting,
// events arriving) before it fails rather than hangs; no result depends on
// it.
const bound = 60 * time.Second

func needChromium(t *testing.T) {
	t.Helper()
	if _, err := FindChromium(""); err != nil {
		t.Skipf("no chromium here, the browser pages were not tested: %v", err)
	}
}

// testServer is an in-process pushbench server and a pool whose origin it
// allows.
type testServer struct {
	srv  *servers.Server
	url  string
	pool *Pool
}

// start starts a pushbench server allowing the pool's origin, and the pool.
func start(t *testing.T, cfg Config) *testServer {
	t.Helper()
	return startTLS(t, cfg, false)
}

// startTLS is start, the server serving TLS (and HTTP/2) when tlsOn.
func startTLS(t *testing.T, cfg Config, tlsOn bool) *testServer {
	t.Helper()
	needChromium(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var scfg servers.Config
	server := "http://" + ln.Addr().String()
	if tlsOn {
		cert, err := webhttp.SelfSigned()
		if err != nil {
			ln.Close()
			t.Fatal(err)
		}
		scfg.TLS = &cert
		server = "https://" + ln.Addr().String()
	}
	// The pool lives as long as Start's context: until the cleanup. It
	// starts without the server's URL, as a harness starts it before the
	// server that must allow its origin.
	ctx, cancel := context.WithCancel(context.Background())
	pool, err := Start(ctx, cfg)
	if err == nil {
		if _, err = pool.Open(ctx, 0, func(clients.Batch) {}); err == nil || !strings.Contains(err.Error(), "SetServer") {
			t.Errorf("Open before SetServer: %v, want an error naming SetServer", err)
		}
		err = pool.SetServer(server)
	}
	if err != nil {
		cancel()
		ln.Close()
		if pool != nil {
			pool.Close()
		}
		t.Fatal(err)
	}
	cfg.Server = server
	scfg.Addr, scfg.CORS = ln.Addr().String(), []string{pool.Origin()}
	srv, err := servers.New(scfg)
	if err != nil {
		ln.Close()
		pool.Close()
		cancel()
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	t.Cleanup(func() {
		defer cancel()
		if err := pool.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return &testServer{srv: srv, url: cfg.Server, pool: pool}
}

// sink collects one page's batches.
type sink struct {
	mu      sync.Mutex
	seqs    []uint64
	lat     []time.Duration
	gaps    int
	want    uint64
	reached chan struct{} // closed when seq want has arrived
}

func newSink(want uint64) *sink { return &sink{want: want, reached: make(chan struct{})} }

func (s *sink) handle(b clients.Batch) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if b.Gap.To != 0 {
		s.gaps++
	}
	for _, e := range b.Events {
		s.seqs = append(s.seqs, e.Seq)
		s.lat = append(s.lat, b.Recv.Sub(time.Unix(0, e.T)))
		if e.Seq == s.want {
			close(s.reached)
		}
	}
}

// openPages opens n pages of the pool, each reporting to a sink that waits
// for seq want.
func openPages(ctx context.Context, t *testing.T, ts *testServer, n int, want uint64) ([]*Page, []*sink) {
	t.Helper()
	var ps []*Page
	var sinks []*sink
	for i := range n {
		s := newSink(want)
		pg, err := ts.pool.Open(ctx, i, s.handle)
		if err != nil {
			t.Fatal(err)
		}
		ps, sinks = append(ps, pg), append(sinks, s)
	}
	return ps, sinks
}

// subscriptions sends the index of each page of ps as it subscribes, until
// the test ends.
func subscriptions(t *testing.T, ps []*Page) <-chan int {
	subscribed := make(chan int, len(ps))
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i, pg := range ps {
		wg.Go(func() {
			select {
			case <-pg.Subscribed():
				subscribed <- i
			case <-stop:
			}
		})
	}
	t.Cleanup(func() {
		close(stop)
		wg.Wait()
	})
	return subscribed
}

func waitFor(t *testing.T, what string, ch <-chan struct{}) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(bound):
		t.Fatalf("%s: not within %v", what, bound)
	}
}

// TestTransports: for every transport, two pages receive N events exactly
// once, in order, with positive latencies.
func TestTransports(t *testing.T) {
	const n = 30
	for _, tr := range Transports {
		t.Run(tr, func(t *testing.T) {
			ts := start(t, Config{Transport: tr, Browsers: 2, Interval: 50 * time.Millisecond, Pages: 2})
			ctx, cancel := context.WithTimeout(context.Background(), bound)
			defer cancel()
			pages, sinks := openPages(ctx, t, ts, 2, n)
			for i, pg := range pages {
				waitFor(t, "page subscribed", pg.Subscribed())
				if err := pg.Err(); err != nil {
					t.Fatalf("page %d: %v", i, err)
				}
				pg.mu.Lock()
				tab := pg.tabCtx
				pg.mu.Unlock()
				if iso, err := chromedp.Run(tab, chromedp.Evaluate[bool]("crossOriginIsolated")); err != nil || !iso {
					t.Errorf("page %d: crossOriginIsolated %v, %v (the receive stamps have 100 µs resolution)", i, iso, err)
				}
			}
			if err := ts.srv.StartPublisher(servers.PublishConfig{Rate: 200, Payload: 100, Events: n}); err != nil {
				t.Fatal(err)
			}
			for i, s := range sinks {
				select {
				case <-s.reached:
				case <-pages[i].Done():
					t.Fatalf("page %d ended: %v", i, pages[i].Err())
				case <-time.After(bound):
					t.Fatalf("page %d: seq %d not within %v", i, n, bound)
				}
			}
			cpu, err := ts.pool.CPU()
			if err != nil || cpu <= 0 {
				t.Errorf("CPU: %v, %v", cpu, err)
			}
			rss, err := ts.pool.RSS()
			if err != nil || rss <= 0 {
				t.Errorf("RSS: %v, %v", rss, err)
			}
			pss, err := ts.pool.PSS()
			if err != nil || pss <= 0 || pss > rss {
				t.Errorf("PSS: %v, %v (RSS %v)", pss, err, rss)
			}
			for i, pg := range pages {
				pg.Close()
				if err := pg.Err(); err != nil {
					t.Errorf("page %d: %v", i, err)
				}
			}
			for i, s := range sinks {
				s.mu.Lock()
				if len(s.seqs) != n || s.gaps != 0 {
					t.Errorf("page %d: %d events, %d gaps, want %d events 1..%d and no gap: %v", i, len(s.seqs), s.gaps, n, n, s.seqs)
				}
				for j, seq := range s.seqs {
					if seq != uint64(j+1) {
						t.Errorf("page %d: event %d is seq %d, want %d", i, j, seq, j+1)
						break
					}
				}
				var sum time.Duration
				for j, l := range s.lat {
					if l <= 0 {
						t.Errorf("page %d: seq %d latency %v", i, s.seqs[j], l)
					}
					sum += l
				}
				if len(s.lat) > 0 {
					sorted := slices.Clone(s.lat)
					slices.Sort(sorted)
					t.Logf("page %d: %d events, latency mean %v, median %v, max %v; pool CPU %v, RSS %d MiB, PSS %d MiB", i, len(s.seqs),
						sum/time.Duration(len(s.lat)), sorted[len(sorted)/2], sorted[len(sorted)-1], cpu, rss>>20, pss>>20)
				}
				s.mu.Unlock()
			}
		})
	}
}

// TestSixConnections: eight SSE pages in one browser over HTTP/1.1; the
// browser opens six connections to the server and holds the other two
// EventSources back, so exactly six subscribe.
//
// "Never" is observed as far as a condition allows, without a timer: every
// page has issued its EventSource (Requested) before the six open streams
// each carry every event published after that, and the server then has
// served six SSE requests and holds six streams. Closing one subscribed page
// then frees a connection, and exactly one of the two waiting pages must
// subscribe: the browser's limit, not the server, held them back.
func TestSixConnections(t *testing.T) {
	const pages, n = 8, 5
	ts := start(t, Config{Transport: "sse", Browsers: 1})
	ctx, cancel := context.WithTimeout(context.Background(), bound)
	defer cancel()
	ps, sinks := openPages(ctx, t, ts, pages, n)
	for _, pg := range ps {
		waitFor(t, "EventSource created", pg.Requested())
	}
	// Six subscribe: wait for any six.
	subscribed := subscriptions(t, ps)
	open := map[int]bool{}
	for len(open) < 6 {
		select {
		case i := <-subscribed:
			open[i] = true
		case <-time.After(bound):
			t.Fatalf("%d pages subscribed within %v, want 6", len(open), bound)
		}
	}
	if err := ts.srv.StartPublisher(servers.PublishConfig{Rate: 100, Payload: 100, Events: n}); err != nil {
		t.Fatal(err)
	}
	for i := range open {
		waitFor(t, "the open streams' events", sinks[i].reached)
	}
	st := ts.srv.Stats().Transports["sse"]
	var waiting []int
	for i := range ps {
		if !open[i] {
			waiting = append(waiting, i)
		}
	}
	select {
	case i := <-subscribed:
		t.Errorf("a seventh page (%d) subscribed", i)
	default:
	}
	if st.Active != 6 || st.Requests != 6 || len(waiting) != 2 {
		t.Errorf("server: %d SSE streams open, %d requests; pages waiting %v; want 6, 6 and two", st.Active, st.Requests, waiting)
	}
	for _, i := range waiting {
		sinks[i].mu.Lock()
		if len(sinks[i].seqs) != 0 {
			t.Errorf("waiting page %d received %v", i, sinks[i].seqs)
		}
		sinks[i].mu.Unlock()
	}
	t.Logf("6 of 8 SSE pages subscribed (server: %d streams, %d requests); pages %v wait", st.Active, st.Requests, waiting)

	// Close one open page: exactly one waiting page takes its connection.
	for i := range open {
		ps[i].Close()
		break
	}
	select {
	case i := <-subscribed:
		if open[i] {
			t.Errorf("page %d subscribed twice", i)
		}
		t.Logf("after closing one open page, page %d subscribed", i)
	case <-time.After(bound):
		t.Errorf("no waiting page subscribed within %v after a connection was freed", bound)
	}
}

// TestSixConnectionsHTTP2: the same eight SSE pages in one browser, over
// TLS, where the browser speaks HTTP/2 and multiplexes every stream on one
// connection: all eight subscribe and receive.
func TestSixConnectionsHTTP2(t *testing.T) {
	const pages, n = 8, 5
	ts := startTLS(t, Config{Transport: "sse", Browsers: 1}, true)
	ctx, cancel := context.WithTimeout(context.Background(), bound)
	defer cancel()
	ps, sinks := openPages(ctx, t, ts, pages, n)
	for i, pg := range ps {
		select {
		case <-pg.Subscribed():
		case <-pg.Done():
			t.Fatalf("page %d ended: %v", i, pg.Err())
		case <-time.After(bound):
			t.Fatalf("page %d not subscribed within %v", i, bound)
		}
	}
	if err := ts.srv.StartPublisher(servers.PublishConfig{Rate: 100, Payload: 100, Events: n}); err != nil {
		t.Fatal(err)
	}
	for _, s := range sinks {
		waitFor(t, "events over HTTP/2", s.reached)
	}
	st := ts.srv.Stats()
	sse := st.Transports["sse"]
	if sse.Active != pages || sse.HTTP2Requests != pages || st.Listener.Accepted == 0 {
		t.Errorf("server: %d SSE streams, %d over HTTP/2; want %d and %d", sse.Active, sse.HTTP2Requests, pages, pages)
	}
	t.Logf("over TLS: %d of %d SSE pages subscribed, %d SSE requests over HTTP/2, %d connections accepted",
		sse.Active, pages, sse.HTTP2Requests, st.Listener.Accepted)
}

// TestSixConnectionsTLSHTTP1: over TLS with the browser held to HTTP/1.1
// (Config.HTTP1), the limit is back: of seven SSE pages in one browser six
// subscribe, none over HTTP/2.
func TestSixConnectionsTLSHTTP1(t *testing.T) {
	const pages = 7
	ts := startTLS(t, Config{Transport: "sse", Browsers: 1, HTTP1: true}, true)
	ctx, cancel := context.WithTimeout(context.Background(), bound)
	defer cancel()
	ps, _ := openPages(ctx, t, ts, pages, 0)
	subscribed := subscriptions(t, ps)
	for n := 0; n < 6; n++ {
		select {
		case <-subscribed:
		case <-time.After(bound):
			t.Fatalf("%d pages subscribed within %v, want 6", n, bound)
		}
	}
	// The seventh is held: the server sees six streams and no seventh
	// request, none of them over HTTP/2.
	st := ts.srv.Stats().Transports["sse"]
	if st.Active != 6 || st.Requests != 6 || st.HTTP2Requests != 0 {
		t.Errorf("server: %d SSE streams, %d requests, %d over HTTP/2; want 6, 6, 0", st.Active, st.Requests, st.HTTP2Requests)
	}
	select {
	case i := <-subscribed:
		t.Errorf("a seventh page (%d) subscribed", i)
	default:
	}
}

// TestPageError: a page the server does not let in (no --cors for its
// origin) reports why and stops: Done closes and Err says what happened.
func TestPageError(t *testing.T) {
	needChromium(t)
	srv, err := servers.New(servers.Config{Addr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := srv.Listen()
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Error(err)
		}
		<-served
	}()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pool, err := Start(ctx, Config{Transport: "sse", Server: "http://" + ln.Addr().String()})
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	pg, err := pool.Open(ctx, 0, func(clients.Batch) { t.Error("a batch from a page the server refused") })
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the refused page done", pg.Done())
	if err := pg.Err(); err == nil || !strings.Contains(err.Error(), "EventSource closed") {
		t.Errorf("Err: %v, want the EventSource closed by the browser", err)
	}
	select {
	case <-pg.Subscribed():
		t.Error("a refused page subscribed")
	default:
	}
	if st := srv.Stats().CORS; st.Refused == 0 {
		t.Errorf("server cors %+v: want the page's request refused", st)
	}
}

// TestNoChromium: a missing binary is ErrNoChromium naming the package.
func TestNoChromium(t *testing.T) {
	_, err := Start(context.Background(), Config{Exec: "/nonexistent/chromium", Server: "http://127.0.0.1:1", Transport: "sse"})
	if !errors.Is(err, ErrNoChromium) {
		t.Fatalf("Start with a missing binary: %v, want ErrNoChromium", err)
	}
	if msg := err.Error(); !strings.Contains(msg, "apt-get install chromium") || strings.Contains(msg, "\n") {
		t.Errorf("error %q: want one line naming apt-get install chromium", msg)
	}
	if _, err := Start(context.Background(), Config{Server: "http://127.0.0.1:1", Transport: "tcp"}); err == nil || !strings.Contains(err.Error(), "tcp") {
		t.Errorf("transport tcp: %v", err)
	}
}

// children returns the live processes whose parent chain leads to this
// test process.
func children() []proc {
	var out []proc
	self := os.Getpid()
	for _, p := range descendants(procs(), self) {
		if p.pid != self && p.state != 'Z' {
			out = append(out, p)
		}
	}
	return out
}

// TestCloseKillsChromium: a page that crashes ends without hanging anything;
// after Close no process of the test remains, nor any using a profile of
// the pool; a cancelled Start context kills the browsers too.
func TestCloseKillsChromium(t *testing.T) {
	needChromium(t)
	if len(children()) != 0 {
		t.Fatalf("processes before the test: %v", children())
	}
	for _, viaCtx := range []bool{false, true} {
		ctx, cancel := context.WithCancel(context.Background())
		p, err := Start(ctx, Config{Transport: "ws", Browsers: 2, Server: "http://127.0.0.1:1"})
		if err != nil {
			cancel()
			t.Fatal(err)
		}
		var dirs []string
		for _, b := range p.browsers {
			dirs = append(dirs, b.dir)
		}
		pg, err := p.Open(ctx, 0, func(clients.Batch) {})
		if err != nil {
			t.Fatal(err)
		}
		if len(children()) < 4 {
			t.Errorf("only %d processes under the test with two browsers running", len(children()))
		}
		if !viaCtx {
			// Crash the page's renderer: the page ends with an error.
			pg.mu.Lock()
			tab := pg.tabCtx
			pg.mu.Unlock()
			crashed := make(chan struct{})
			go func() {
				defer close(crashed)
				_, _ = chromedp.Call(tab, page.Crash, cdp.Empty{}) // no answer comes from a crashed renderer
			}()
			waitFor(t, "crashed page done", pg.Done())
			defer func() { <-crashed }()
			if pg.Err() == nil {
				t.Error("a crashed page reports no error")
			}
		} else {
			cancel()
			// The pool's browsers die with ctx; Close still waits for them.
		}
		if err := p.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		cancel()
		if left := children(); len(left) != 0 {
			t.Errorf("after Close (ctx cancelled %v): processes left %v", viaCtx, left)
		}
		for _, d := range dirs {
			if n := killProfile(d); n != 0 {
				t.Errorf("after Close: %d processes of %s", n, d)
			}
			if _, err := os.Stat(d); !os.IsNotExist(err) {
				t.Errorf("profile %s not removed: %v", d, err)
			}
		}
	}
}
