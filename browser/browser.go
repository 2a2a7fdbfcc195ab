// Package browser runs pushbench subscribers in real browsers: headless
// Chromium processes, driven with chromedp, whose pages subscribe to a
// pushbench server with the browser's own APIs (EventSource for sse,
// WebSocket for ws, fetch loops for longpoll and shortpoll) and report
// every batch they receive to a small harness server of this package, over
// a WebSocket of their own. The harness hands each batch to a
// clients.Handler, as a Go subscriber would.
//
// The pages are served from the harness's origin (Pool.Origin), which is
// not the pushbench server's: the server must allow it with
// `pushbench serve --cors ORIGIN` (servers.Config.CORS), or the browser keeps
// the polls' and the stream's answers from the page and the server refuses
// its WebSocket (docs/protocol.md, "Cross-origin access").
//
// Receive times are taken in the page, performance.timeOrigin +
// performance.now() when a frame or an answer has been read, so latency
// includes the browser's network stack, its event loop and the page's JSON
// parsing, but not the report to the harness. The page is cross-origin
// isolated (COOP and COEP), so that the stamp's resolution is 5 µs, not
// the 100 µs Chromium gives other pages.
//
// Every Chromium runs in a process group of its own with a temporary
// profile; Pool.Close, and the end of Start's context, kill the groups and
// wait for the processes.
//
// A harness uses it as it uses package clients: Start a Pool (before the
// server, or with the server's URL known, so that the server can be given
// Pool.Origin in its CORS list), Open one page per client with the
// client's Handler, wait for Page.Subscribed with a bound (a page the
// browser holds back behind its six HTTP/1.1 connections per host never
// subscribes: Page.Requested without Page.Subscribed), read Pool.CPU and
// Pool.PSS before and after the window, and Close. Page.Done and Page.Err
// say which pages failed and why. The browser's own sockets are not
// visible here: count bytes at the server's listener.
package browser

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	cdpbrowser "github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/css"
	"github.com/chromedp/cdproto/dom"
	"github.com/chromedp/cdproto/inspector"
	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	cdpruntime "github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/cdproto/target"
	"github.com/chromedp/chromedp"
	"github.com/gorilla/websocket"

	"pushbench/clients"
	"pushbench/event"
)

//go:embed page.html
var pageHTML []byte

// ErrNoChromium is wrapped by Start's error when no Chromium can be run.
var ErrNoChromium = errors.New("no chromium")

// Transports are the transports a page can subscribe with. The raw tcp
// floor is not one: a page has no API for it.
var Transports = []string{"shortpoll", "longpoll", "sse", "ws"}

// Config configures a Pool.
type Config struct {
	// Exec is the Chromium to run: a path or a name looked up in PATH.
	// Empty: the first of chromium, chromium-browser and google-chrome
	// found in PATH.
	Exec string
	// Browsers is the number of Chromium processes (default 1). Page i
	// opens in browser i % Browsers. Over HTTP/1.1 a browser opens at most
	// six connections per host across all its pages, so a seventh
	// streaming page of one browser waits.
	Browsers int
	// Server is the base URL of the pushbench server, http or https. With
	// https the browsers accept any certificate (--ignore-certificate-errors:
	// `serve --tls` generates its own at start) and speak HTTP/2 to it when
	// it offers h2, as it does: the six-connection limit is then gone for
	// polls and SSE (the WebSocket stays HTTP/1.1). Empty: set it with
	// Pool.SetServer before the first Open (a harness that must give the
	// server Pool.Origin for its CORS list starts the pool first).
	Server string
	// HTTP1 keeps the browsers on HTTP/1.1 even where the server offers
	// h2 over TLS (Chromium's --disable-http2).
	HTTP1 bool
	// OnReconnect, if set, is called when a page's stream (EventSource or
	// WebSocket) is open again after it ended, with the page's index and
	// the gap: from the moment the page saw the stream end (EventSource's
	// error event, WebSocket's close) to the moment it was open again,
	// both stamped in the page. An EventSource's gap is the browser's own
	// reconnection time (the server's retry: field, or Chromium's default)
	// plus the new request's round trip. It is called from the page's
	// report goroutine and must not block.
	OnReconnect func(page int, gap time.Duration)
	// Transport is shortpoll, longpoll, sse or ws.
	Transport string
	// Interval is the short-polling period (shortpoll only; default 1s).
	Interval time.Duration
	// Pages is the number of pages the harness will open, to spread the
	// short-polling grids' phases evenly over Interval (page i's grid
	// starts i/Pages of an interval later). 0: spread by the golden ratio,
	// even for any number of pages.
	Pages int
	// Since is the seq after which delivery starts, on every transport:
	// the page always sends since=N, so 0 means from the first event
	// (as clients.Config.Since), not the server's "from now" for streams.
	Since uint64
}

// Pool is a set of headless Chromium processes and the harness server their
// pages report to.
type Pool struct {
	cfg    Config
	origin string
	start  time.Time // the short-polling grids' common origin
	ln     net.Listener
	srv    *http.Server

	browsers []*chromium

	mu     sync.Mutex
	pages  map[string]*Page // by token
	next   int
	closed bool

	closeOnce sync.Once
	closeErr  error
	stop      chan struct{} // closed by Close: ends the ctx watcher
	watcher   chan struct{} // closed when the ctx watcher has returned
	srvDone   chan struct{} // closed when the harness server's Serve has returned
}

// Start starts the harness server on 127.0.0.1 and cfg.Browsers headless
// Chromium processes. When ctx ends, every Chromium is killed (Close must
// still be called). An error wraps ErrNoChromium when the binary cannot be
// found or run.
func Start(ctx context.Context, cfg Config) (*Pool, error) {
	if cfg.Browsers == 0 {
		cfg.Browsers = 1
	}
	if cfg.Browsers < 0 {
		return nil, fmt.Errorf("browser: %d browsers", cfg.Browsers)
	}
	if cfg.Interval == 0 {
		cfg.Interval = time.Second
	}
	if cfg.Interval < 0 || cfg.Pages < 0 {
		return nil, fmt.Errorf("browser: interval %v, pages %d", cfg.Interval, cfg.Pages)
	}
	if !slices.Contains(Transports, cfg.Transport) {
		return nil, fmt.Errorf("browser: transport %q: a page has no API for it (want %s)", cfg.Transport, strings.Join(Transports, ", "))
	}
	if cfg.Server != "" {
		if err := checkServer(cfg.Server); err != nil {
			return nil, err
		}
	}
	bin, err := FindChromium(cfg.Exec)
	if err != nil {
		return nil, err
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("browser: harness server: %w", err)
	}
	p := &Pool{
		cfg:     cfg,
		origin:  "http://" + ln.Addr().String(),
		start:   time.Now(),
		ln:      ln,
		pages:   map[string]*Page{},
		stop:    make(chan struct{}),
		watcher: make(chan struct{}),
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/", p.servePage)
	mux.HandleFunc("/report", p.serveReport)
	p.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = p.srv.Serve(ln)
	}()
	go func() {
		defer close(p.watcher)
		select {
		case <-ctx.Done():
			p.killAll()
		case <-p.stop:
		}
	}()
	// Close shuts the server down and waits for it; served tells it when
	// Serve has returned.
	p.srvDone = served

	for i := range cfg.Browsers {
		b, err := startChromium(ctx, bin, cfg.HTTP1)
		if err != nil {
			_ = p.Close()
			return nil, fmt.Errorf("browser: chromium %d of %d: %w", i+1, cfg.Browsers, err)
		}
		p.mu.Lock()
		p.browsers = append(p.browsers, b)
		p.mu.Unlock()
	}
	return p, nil
}

// checkServer checks a pushbench server's base URL.
func checkServer(server string) error {
	u, err := url.Parse(server)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("browser: server %q: want http://HOST:PORT or https://HOST:PORT", server)
	}
	return nil
}

// SetServer sets the base URL of the pushbench server the pages that open
// from now on subscribe to (Config.Server).
func (p *Pool) SetServer(server string) error {
	if err := checkServer(server); err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cfg.Server = server
	return nil
}

// SetSince sets the seq after which the pages that open from now on
// start delivery (Config.Since).
func (p *Pool) SetSince(since uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cfg.Since = since
}

// Version returns the first browser's product and version
// ("HeadlessChrome/156.0.…" or "Chrome/…"), as DevTools reports it.
func (p *Pool) Version(ctx context.Context) (string, error) {
	p.mu.Lock()
	if len(p.browsers) == 0 {
		p.mu.Unlock()
		return "", errors.New("browser: no browser running")
	}
	b := p.browsers[0]
	p.mu.Unlock()
	c := chromedp.FromContext(b.ctx)
	if c == nil || c.Browser == nil {
		return "", errors.New("browser: not connected")
	}
	v, err := cdp.Call(ctx, c.Browser, cdpbrowser.GetVersion, cdp.Empty{})
	return v.Product, err
}

// Origin is the harness's origin, http://127.0.0.1:PORT, where the pages
// come from: the pushbench server must list it in --cors.
func (p *Pool) Origin() string { return p.origin }

// Browsers returns the number of Chromium processes.
func (p *Pool) Browsers() int { return p.cfg.Browsers }

// servePage serves the embedded subscriber page.
func (p *Pool) servePage(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/" {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	// Cross-origin isolation: performance.now() then has a resolution of
	// 5 µs instead of 100 µs. The page's fetches and EventSource are CORS
	// requests, which require-corp allows.
	w.Header().Set("Cross-Origin-Opener-Policy", "same-origin")
	w.Header().Set("Cross-Origin-Embedder-Policy", "require-corp")
	_, _ = w.Write(pageHTML)
}

var upgrader = websocket.Upgrader{
	// Only the harness's own pages report, on the harness's own origin.
	CheckOrigin: func(r *http.Request) bool { return true },
}

// serveReport accepts a page's report socket and reads it until it ends.
func (p *Pool) serveReport(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	pg := p.pages[r.URL.Query().Get("id")]
	p.mu.Unlock()
	if pg == nil {
		http.Error(w, "unknown page", http.StatusNotFound)
		return
	}
	if origin := r.Header.Get("Origin"); origin != p.origin {
		http.Error(w, "not the harness's page", http.StatusForbidden)
		return
	}
	conn, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	if !pg.attach(conn) {
		conn.Close()
		return
	}
	pg.read(conn)
}

// Open opens page i in browser i % Browsers, subscribing to the server with
// the pool's transport; h gets every batch the page reports, from one
// goroutine of the page, in order (it must return: Close waits for it). Open returns once the page has loaded;
// Page.Subscribed closes when its subscription is in place. ctx bounds the
// opening only: the page lives until Page.Close or Pool.Close.
func (p *Pool) Open(ctx context.Context, i int, h clients.Handler) (*Page, error) {
	if i < 0 {
		return nil, fmt.Errorf("browser: page %d", i)
	}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil, errors.New("browser: pool closed")
	}
	if p.cfg.Server == "" {
		p.mu.Unlock()
		return nil, errors.New("browser: no server: set Config.Server or call SetServer before Open")
	}
	b := p.browsers[i%len(p.browsers)]
	server, since := p.cfg.Server, p.cfg.Since
	p.next++
	token := strconv.Itoa(p.next)
	pg := newPage(i, h)
	pg.onReconnect = p.cfg.OnReconnect
	p.pages[token] = pg
	p.mu.Unlock()

	tabCtx, cancel := chromedp.NewContext(b.ctx, chromedp.WithListener(func(ev any) {
		switch ev := ev.(type) {
		case *inspector.EventTargetCrashed, inspector.EventTargetCrashed:
			pg.fail(errors.New("page crashed"))
		case *inspector.EventDetached:
			pg.fail(fmt.Errorf("page detached: %s", ev.Reason))
		case inspector.EventDetached:
			pg.fail(fmt.Errorf("page detached: %s", ev.Reason))
		}
	}))
	pg.mu.Lock()
	pg.cancelTab, pg.tabCtx = cancel, tabCtx
	pg.mu.Unlock()

	q := url.Values{}
	q.Set("id", token)
	q.Set("server", server)
	q.Set("transport", p.cfg.Transport)
	q.Set("since", strconv.FormatUint(since, 10))
	q.Set("interval", strconv.FormatFloat(float64(p.cfg.Interval)/1e6, 'f', -1, 64))
	q.Set("origin", strconv.FormatFloat(float64(p.gridOrigin(i).UnixNano())/1e6, 'f', -1, 64))
	pageURL := p.origin + "/?" + q.Encode()

	errc := make(chan error, 1)
	go func() { errc <- quietNavigate(tabCtx, pageURL) }()
	var err error
	select {
	case err = <-errc:
	case <-ctx.Done():
		err = ctx.Err()
		pg.Close() // cancels the tab: the navigation returns
		<-errc
	}
	if err == nil {
		// Loaded: the page's script has connected its report socket.
		t := time.NewTimer(loadBound)
		select {
		case <-pg.loaded:
		case <-pg.done:
			err = pg.Err()
		case <-ctx.Done():
			err = ctx.Err()
		case <-t.C:
			err = fmt.Errorf("its script did not report within %v", loadBound)
		}
		t.Stop()
	}
	if err != nil {
		pg.Close()
		return nil, fmt.Errorf("browser: open page %d: %w", i, err)
	}
	return pg, nil
}

// loadBound bounds the wait for a navigated page's script to connect.
const loadBound = 30 * time.Second

// quietNavigate attaches the tab of ctx, turns off what chromedp turned
// on in it, and navigates it to u. chromedp enables the Network, Page,
// DOM, CSS, Log and Runtime domains on every tab it attaches: with Network
// on, Chromium reports each request, response, SSE message and WebSocket
// frame of the page over DevTools, which cost the browser several
// milliseconds of CPU per long poll and this process its decoding, and is
// not what a user's browser does. Only Inspector stays on (a crash or a
// detach). The navigation is Page.navigate itself, which needs no domain:
// Open learns that the page has loaded from its report socket.
func quietNavigate(ctx context.Context, u string) error {
	if err := chromedp.Do(ctx); err != nil {
		return err
	}
	c := chromedp.FromContext(ctx)
	if c == nil || c.Target == nil {
		return errors.New("no tab")
	}
	for _, m := range []string{css.CommandDisable, dom.CommandDisable, network.CommandDisable,
		log.CommandDisable, page.CommandDisable, cdpruntime.CommandDisable} {
		if err := c.Target.Call(ctx, m, cdp.Empty{}, nil); err != nil {
			return fmt.Errorf("%s: %w", m, err)
		}
	}
	for _, st := range []struct {
		method string
		params any
	}{
		{target.CommandSetAutoAttach, target.SetAutoAttachParams{AutoAttach: false}},
		{page.CommandSetLifecycleEventsEnabled, page.SetLifecycleEventsEnabledParams{Enabled: false}},
	} {
		_ = c.Target.Call(ctx, st.method, st.params, nil) // best effort: events we ignore
	}
	res, err := cdp.Call(ctx, c.Target, page.Navigate, page.NavigateParams{URL: u})
	if err != nil {
		return err
	}
	if res.ErrorText != "" {
		return errors.New(res.ErrorText)
	}
	return nil
}

// gridOrigin is page i's short-polling grid origin: the pool's start plus
// i/Pages of an interval (golden ratio spread without Pages).
func (p *Pool) gridOrigin(i int) time.Time {
	var frac float64
	if p.cfg.Pages > 0 {
		frac = float64(i%p.cfg.Pages) / float64(p.cfg.Pages)
	} else {
		_, frac = math.Modf(float64(i) * 0.6180339887498949)
	}
	return p.start.Add(time.Duration(frac * float64(p.cfg.Interval)))
}

// killAll kills every browser's process group at once (ctx ended).
func (p *Pool) killAll() {
	p.mu.Lock()
	bs := append([]*chromium(nil), p.browsers...)
	p.mu.Unlock()
	for _, b := range bs {
		b.kill()
	}
}

// Close closes every page and browser, waits until every Chromium process
// has exited and the harness server has stopped, and removes the profiles.
func (p *Pool) Close() error {
	p.closeOnce.Do(func() {
		p.mu.Lock()
		p.closed = true
		pages := make([]*Page, 0, len(p.pages))
		for _, pg := range p.pages {
			pages = append(pages, pg)
		}
		bs := p.browsers
		p.mu.Unlock()
		for _, pg := range pages {
			pg.markClosed() // what follows is not the page's error
		}
		close(p.stop)
		<-p.watcher
		// Kill first: closing tabs one by one over DevTools would only
		// add time, and a crashed browser may not answer.
		var errs []error
		for _, b := range bs {
			if err := b.close(); err != nil {
				errs = append(errs, err)
			}
		}
		for _, pg := range pages {
			pg.Close()
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := p.srv.Shutdown(ctx); err != nil {
			errs = append(errs, err)
		}
		<-p.srvDone
		p.closeErr = errors.Join(errs...)
	})
	return p.closeErr
}

// Page is one page of a Pool: one subscriber.
type Page struct {
	i           int
	h           clients.Handler
	onReconnect func(page int, gap time.Duration)

	loaded     chan struct{} // closed when the report socket attaches
	subscribed chan struct{}
	subOnce    sync.Once
	requested  chan struct{}
	reqOnce    sync.Once
	tabCtx     context.Context
	done       chan struct{} // closed when the report reader has finished (or never will run)

	mu        sync.Mutex
	err       error
	conn      *websocket.Conn
	attached  bool
	closed    bool
	reading   bool
	cancelTab context.CancelFunc
	closeOnce sync.Once
}

func newPage(i int, h clients.Handler) *Page {
	return &Page{i: i, h: h, loaded: make(chan struct{}), subscribed: make(chan struct{}), requested: make(chan struct{}), done: make(chan struct{})}
}

// Index is the page's index i of Pool.Open.
func (pg *Page) Index() int { return pg.i }

// Subscribed is closed once the page reports that its subscription is in
// place: the EventSource or WebSocket is open, the first short poll is
// answered, or the first long poll is sent (fetch called: the browser may
// still hold it back, behind its connection limit).
func (pg *Page) Subscribed() <-chan struct{} { return pg.subscribed }

// Requested is closed once the page has issued its subscription's first
// request (new EventSource, new WebSocket, the first fetch). A request the
// browser holds back (six connections per host on HTTP/1.1) is requested
// but not subscribed.
func (pg *Page) Requested() <-chan struct{} { return pg.requested }

// Done is closed when the page reports no more: its report socket ended
// (the page crashed, was closed, or gave up after an error it reported,
// see Err) or the page was closed before it connected. A page whose
// report socket never connects is neither subscribed nor done until
// Close: bound the wait for Subscribed.
func (pg *Page) Done() <-chan struct{} { return pg.done }

// Err returns what went wrong with the page, nil while nothing has: an
// error the page's script reported (it then stops subscribing), a crash,
// or its report socket closing before Close.
func (pg *Page) Err() error {
	pg.mu.Lock()
	defer pg.mu.Unlock()
	return pg.err
}

func (pg *Page) fail(err error) {
	pg.mu.Lock()
	defer pg.mu.Unlock()
	if pg.err == nil && !pg.closed {
		pg.err = fmt.Errorf("page %d: %w", pg.i, err)
	}
}

// attach takes the page's report socket; false if the page already has one
// or is closed.
func (pg *Page) attach(conn *websocket.Conn) bool {
	pg.mu.Lock()
	defer pg.mu.Unlock()
	if pg.attached || pg.closed {
		return false
	}
	pg.attached, pg.reading, pg.conn = true, true, conn
	close(pg.loaded)
	return true
}

// report is one message of a page (page.html).
type report struct {
	E   [][2]json.RawMessage `json:"e"`
	G   *[2]uint64           `json:"g"`
	R   float64              `json:"r"`
	Sub int                  `json:"sub"`
	Req int                  `json:"req"`
	RC  *float64             `json:"rc"`
	Err string               `json:"err"`
}

// read reads the page's reports until its socket ends, calling h.
func (pg *Page) read(conn *websocket.Conn) {
	defer close(pg.done)
	defer conn.Close()
	var evs []event.Event
	for {
		_, msg, err := conn.ReadMessage()
		if err != nil {
			pg.fail(fmt.Errorf("report socket: %w", err))
			return
		}
		var m report
		if err := json.Unmarshal(msg, &m); err != nil {
			pg.fail(fmt.Errorf("report %.80q: %w", msg, err))
			return
		}
		switch {
		case m.Err != "":
			pg.fail(errors.New(m.Err))
		case m.Req != 0:
			pg.reqOnce.Do(func() { close(pg.requested) })
		case m.RC != nil:
			if pg.onReconnect != nil {
				pg.onReconnect(pg.i, time.Duration(math.Round(*m.RC*1e6)))
			}
		case m.Sub != 0:
			pg.subOnce.Do(func() { close(pg.subscribed) })
		default:
			evs = evs[:0]
			for _, e := range m.E {
				var seq uint64
				var ts string
				if json.Unmarshal(e[0], &seq) != nil || json.Unmarshal(e[1], &ts) != nil {
					pg.fail(fmt.Errorf("report: bad event %s", msg))
					return
				}
				t, err := strconv.ParseInt(ts, 10, 64)
				if err != nil {
					pg.fail(fmt.Errorf("report: bad t %q", ts))
					return
				}
				evs = append(evs, event.Event{Seq: seq, T: t})
			}
			b := clients.Batch{Events: evs, Recv: time.Unix(0, int64(math.Round(m.R*1e6)))}
			if m.G != nil {
				b.Gap = event.Gap{From: m.G[0], To: m.G[1]}
			}
			pg.h(b)
		}
	}
}

func (pg *Page) markClosed() {
	pg.mu.Lock()
	pg.closed = true
	pg.mu.Unlock()
}

// Crash crashes the page's renderer (DevTools Page.crash), as a page that
// runs out of memory does: for testing that a harness counts the page and
// goes on. The page then ends with an error.
func (pg *Page) Crash(ctx context.Context) error {
	pg.mu.Lock()
	tabCtx := pg.tabCtx
	pg.mu.Unlock()
	c := chromedp.FromContext(tabCtx)
	if c == nil || c.Target == nil {
		return errors.New("browser: the page has no tab")
	}
	// The renderer dies before it can answer: the call gets no reply, so
	// it is bounded, and its error is expected.
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	_ = c.Target.Call(ctx, page.CommandCrash, cdp.Empty{}, nil)
	return nil
}

// Close closes the page's tab and waits until its reports have been
// handled.
func (pg *Page) Close() {
	pg.closeOnce.Do(func() {
		pg.mu.Lock()
		pg.closed = true
		conn, reading := pg.conn, pg.reading
		cancel := pg.cancelTab
		pg.mu.Unlock()
		if cancel != nil {
			cancel()
		}
		if conn != nil {
			conn.Close()
		}
		if !reading {
			close(pg.done)
		}
	})
	<-pg.done
}
