// Package servers holds the pushbench event hub and one server per
// transport of the registry (package transport) behind one http.Handler
// tree, plus the statistics and control endpoints.
//
// Every transport reads the same Hub and sends the same encoded bytes
// (event); they differ only in what they wrap around them. The wire
// contract is docs/protocol.md.
//
// The core in this file never names a transport. Each transport's file
// registers a constructor for its registry name (registerTransport, from an
// init function); New builds one of each and mounts it on its registry
// path; a transport starts its background feeders (the SSE pump, a
// dispatcher: one per room, room.go) with goFeeder, and Shutdown ends
// everything. Always call Shutdown.
//
// Besides broadcast, a run may be a chat or a game (workload.go), fed by
// what clients send (upstream.go: POST /send, WebSocket messages, raw TCP
// lines).
//
// Browsers: GET / is a live page that subscribes with every browser
// transport (live.go), and cors.go decides which other origins' pages may
// read the answers (CORS) and open the upgrades (the Origin rule).
package servers

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"pushbench/clock"
	"pushbench/transport"
	"pushbench/webhttp"
)

// closeGrace bounds the close handshake and the last writes of a stream when
// the server shuts down or cuts a slow consumer, so that shutdown ends every
// stream well within a second even when a client has stopped reading.
const closeGrace = 200 * time.Millisecond

// transportServer is the server side of one transport.
type transportServer interface {
	// handle serves the transport's path (transport.Info.Path).
	handle(w http.ResponseWriter, r *http.Request)
	// counters are the transport's counters in Stats.
	counters() *counters
	// close releases what the transport holds. Shutdown calls it once
	// every handler has returned and bgStop is closed, before it waits for
	// the feeders: it must unblock a feeder that waits on the transport.
	close()
}

// base is what every transport's server holds: its Server and its counters.
// Its close does nothing; a transport that has resources overrides it.
type base struct {
	s  *Server
	tc counters
}

func (b *base) counters() *counters { return &b.tc }
func (b *base) close()              {}

// newTransport builds a transport's server for s, whose Config is final.
type newTransport func(s *Server) transportServer

// registered maps a registry name to its server, filled by init functions.
var registered = map[string]newTransport{}

// registerTransport registers the server of the transport called name. It
// is called from init functions; a name registered twice is a bug.
func registerTransport(name string, newT newTransport) {
	if _, dup := registered[name]; dup {
		panic("servers: transport " + name + " registered twice")
	}
	registered[name] = newT
}

// Has reports whether the transport called name has a server here.
func Has(name string) bool {
	_, ok := registered[name]
	return ok
}

// Registered returns the names of the transports with a server here, sorted.
// A table test checks them against the registry both ways.
func Registered() []string {
	return slices.Sorted(maps.Keys(registered))
}

// namedTransport is one transport of a Server.
type namedTransport struct {
	name string
	transportServer
}

// Server is the hub, the publisher and a server for every transport. Create
// it with New, serve it with Serve (or mount Handler elsewhere) and end it
// with Shutdown.
type Server struct {
	unauthorized atomic.Uint64 // /control/* requests without the right token

	cfg     Config
	rooms   []*room // Config.Rooms of them
	hub     *Hub    // room 0's, the one broadcast publishes to
	pub     *Publisher
	handler http.Handler
	http    *http.Server

	transports []namedTransport // in registry order
	listener   listenerCounters
	send       counters // POST /send (upstream.go)

	// cors is Config.CORS, corsC its counters (cors.go).
	cors  corsPolicy
	corsC corsCounters

	// quit is cancelled when Shutdown begins: every long-lived handler
	// selects on it, because http.Server.Shutdown and httptest.Server.Close
	// wait for in-flight requests instead of ending them.
	quit     context.Context
	stopQuit context.CancelFunc

	// handlers counts running handlers. enter refuses new ones once closing
	// is set, so Wait never races with Add.
	mu       sync.RWMutex
	closing  bool
	handlers sync.WaitGroup

	shutdownOnce sync.Once
	done         chan struct{} // closed when Shutdown's cleanup has finished

	// Background goroutines: the transports' feeders (goFeeder).
	bg     sync.WaitGroup
	bgStop chan struct{}

	bodies  sync.Pool // *[]byte poll response bodies
	entries sync.Pool // *[]*Entry scratch slices
	gzips   sync.Pool // *gzip.Writer at compressLevel (Config.Compress)

	// web is the response header profile (Config.Response, and TLS for
	// the fields only a TLS deployment sends).
	web webhttp.Options

	// Publisher CPU is reported per run by the Publisher; the server sums
	// finished runs here so Stats can report all of them.
	pubMu        sync.Mutex
	pubCPU       time.Duration
	pubAccounted time.Time // Started of the last run added to pubCPU
}

// New returns a server for cfg with an idle publisher and a server for every
// transport of the registry, whose feeders it starts; call Shutdown to end
// them. A registry entry without a server here is an error.
func New(cfg Config) (*Server, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("servers: %w", err)
	}
	for _, t := range transport.All() {
		if !Has(t.Name) {
			return nil, fmt.Errorf("servers: transport %q has no server", t.Name)
		}
	}
	s := &Server{
		cfg:    cfg,
		rooms:  newRooms(cfg.Rooms, cfg.Ring),
		done:   make(chan struct{}),
		bgStop: make(chan struct{}),
	}
	if s.cors, err = newCORSPolicy(cfg.CORS); err != nil {
		return nil, fmt.Errorf("servers: cors %w", err)
	}
	s.hub = s.rooms[0].hub
	s.pub = NewPublisher(s.hub)
	s.pub.pad = cfg.pad()
	s.pub.rooms = s.rooms
	s.quit, s.stopQuit = context.WithCancel(context.Background())
	s.entries.New = func() any { b := make([]*Entry, 0, 256); return &b }
	s.bodies.New = func() any { b := make([]byte, 0, 4096); return &b }

	mux := http.NewServeMux()
	paths := []string{"/"}
	for _, t := range transport.All() {
		ts := registered[t.Name](s)
		s.transports = append(s.transports, namedTransport{t.Name, ts})
		h := ts.handle
		if cr, ok := ts.(corsReadable); ok {
			h = s.withCORS(cr.corsMethod(), ts.counters(), h)
		}
		mux.HandleFunc(t.Path, h)
		paths = append(paths, t.Path)
	}
	mux.HandleFunc("/send", s.withCORS(http.MethodPost, &s.send, s.handleSend))
	paths = append(paths, "/send")
	mux.HandleFunc("/stats", s.withCORS(http.MethodGet, nil, s.handleStats))
	mux.HandleFunc("/time", clock.Handler) // a load generator's clock offset (package clock)
	mux.HandleFunc("/control/start", s.control(s.handleStart))
	mux.HandleFunc("/control/stop", s.control(s.handleStop))
	mux.HandleFunc("/control/gc", s.control(s.handleGC))
	paths = append(paths, "/stats", "/time", "/control/start", "/control/stop", "/control/gc")
	want := strings.Join(paths[:len(paths)-1], ", ") + " or " + paths[len(paths)-1]
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/" {
			serveLive(w, r)
			return
		}
		fail(w, nil, http.StatusNotFound, "unknown path %q (want %s)", r.URL.Path, want)
	})
	s.handler = mux
	// HTTP/2 for the polls and SSE: over TLS when the client's ALPN offers
	// h2 (webhttp.ServerConfig offers h2 and http/1.1, the client picks),
	// without TLS as h2c with prior knowledge (a connection that opens
	// with the HTTP/2 preface). No h2c upgrade from HTTP/1.1: no browser
	// speaks h2c at all, and Go's client only with prior knowledge.
	var protocols http.Protocols
	protocols.SetHTTP1(true)
	if cfg.TLS != nil {
		protocols.SetHTTP2(true)
	} else {
		protocols.SetUnencryptedHTTP2(true)
	}
	s.http = &http.Server{
		Handler: mux,
		// No WriteTimeout: it would end every SSE stream after that long.
		// Writes get per-write deadlines instead (Config.WriteTimeout).
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          cfg.ErrorLog,
		Protocols:         &protocols,
		// The connection's send limiter for POST /send (upstream.go).
		ConnContext: withConnLimiter,
	}
	s.web = webhttp.Options{ResponseHeaders: cfg.Response, TLS: cfg.TLS != nil}
	return s, nil
}

// goFeeder runs a transport's background feeder until Shutdown: f must
// return once bgStop is closed (Server.follow does). It is called from New
// or from a registered handler (roomSet), never after Shutdown has begun
// to wait for the feeders.
func (s *Server) goFeeder(f func()) { s.bg.Go(f) }

// Config returns the server's configuration with defaults filled in.
func (s *Server) Config() Config { return s.cfg }

// Hub returns room 0's event hub, the one the broadcast publisher writes.
func (s *Server) Hub() *Hub { return s.hub }

// RoomHub returns room r's hub (nil if the server has no room r).
func (s *Server) RoomHub(r int) *Hub {
	if r < 0 || r >= len(s.rooms) {
		return nil
	}
	return s.rooms[r].hub
}

// Publisher returns the server's publisher. Start runs through StartPublisher
// so that their CPU time is accounted in Stats.
func (s *Server) Publisher() *Publisher { return s.pub }

// Handler returns the handler tree: the live page at /, every transport on
// its registry path, /send, /stats and /control/*. Its byte counts
// (Stats.Listener) are only kept when it is served through Serve.
func (s *Server) Handler() http.Handler { return s.handler }

// Listen opens a TCP listener on Config.Addr.
func (s *Server) Listen() (net.Listener, error) {
	ln, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", s.cfg.Addr, err)
	}
	return ln, nil
}

// Serve serves the handler tree on ln until Shutdown, counting connections
// and bytes at the listener (Stats.Listener). With Config.TLS it serves
// TLS on top of the counting: the bytes counted are those on the socket,
// TLS records and handshakes included. It returns nil after Shutdown and
// the listener's error otherwise.
func (s *Server) Serve(ln net.Listener) error {
	var counted net.Listener = &countingListener{Listener: ln, c: &s.listener}
	if s.cfg.TLS != nil {
		counted = tls.NewListener(counted, webhttp.ServerConfig(*s.cfg.TLS))
	}
	err := s.http.Serve(counted)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Shutdown ends every long-lived handler (held long polls, streams) at once,
// stops the publisher, closes the listeners and waits until handlers and
// background goroutines have finished. If ctx ends first it closes every
// connection forcibly and returns ctx's error; the rest of the cleanup then
// finishes in the background.
func (s *Server) Shutdown(ctx context.Context) error {
	s.shutdownOnce.Do(func() {
		s.mu.Lock()
		s.closing = true
		s.mu.Unlock()
		s.stopQuit()
		go s.cleanup()
	})
	select {
	case <-s.done:
		return nil
	case <-ctx.Done():
		_ = s.http.Close()
		return fmt.Errorf("servers: shutdown: %w", ctx.Err())
	}
}

func (s *Server) cleanup() {
	defer close(s.done)
	// Under pubMu: closing is already set, so a StartPublisher either ran
	// before this Stop (and is stopped by it) or sees closing and refuses.
	s.pubMu.Lock()
	s.pub.Stop()
	s.pubMu.Unlock()
	s.handlers.Wait()
	// Every handler has returned, so only idle or finishing connections are
	// left; Shutdown closes the listeners and those. An HTTP/2 connection
	// is told GOAWAY and then waits a second for its client to close it
	// (Go's client does not), so the rest is closed after closeGrace.
	ctx, cancel := context.WithTimeout(context.Background(), closeGrace)
	if err := s.http.Shutdown(ctx); err != nil {
		_ = s.http.Close()
	}
	cancel()
	close(s.bgStop)
	for _, t := range s.transports {
		t.close()
	}
	s.bg.Wait()
}

// enter registers a handler; it returns false once Shutdown has begun.
func (s *Server) enter() bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closing {
		return false
	}
	s.handlers.Add(1)
	return true
}

func (s *Server) leave() { s.handlers.Done() }

// begin does the checks every transport handler starts with: it counts the
// request, answers a wrong method (405) or a server that is shutting down
// (503), and registers the handler. It returns false if it has answered.
func (s *Server) begin(w http.ResponseWriter, r *http.Request, tc *counters, method string) bool {
	tc.requests.Add(1)
	if r.ProtoMajor == 2 {
		tc.http2Requests.Add(1)
	}
	if r.Method != method {
		w.Header().Set("Allow", method)
		fail(w, tc, http.StatusMethodNotAllowed, "%s: method %s not allowed (want %s)", r.URL.Path, r.Method, method)
		return false
	}
	if !s.enter() {
		fail(w, nil, http.StatusServiceUnavailable, "%s: server is shutting down", r.URL.Path)
		return false
	}
	return true
}

// upgradeOnly answers a request for an upgrade transport that came over
// HTTP/2, which has no Upgrade: 400, counted. It reports false if it has
// answered.
func upgradeOnly(w http.ResponseWriter, r *http.Request, tc *counters, what string) bool {
	if r.ProtoMajor < 2 {
		return true
	}
	fail(w, tc, http.StatusBadRequest, "%s: %s needs an HTTP/1.1 upgrade (RFC 8441, WebSocket over HTTP/2, is not supported); got %s", r.URL.Path, what, r.Proto)
	return false
}

// addProfile adds the response profile's fields to h, the header of a
// successful answer to r (Config.Response; nothing for the minimal
// profile): what a deployment's reverse proxy adds, and on an HTTP/1.1
// answer that is not an upgrade Connection: keep-alive, as nginx sends.
func (s *Server) addProfile(h http.Header, r *http.Request, upgrade bool) {
	if s.cfg.Response != webhttp.ResponseDeployment {
		return
	}
	s.web.AddResponse(h)
	if r.ProtoMajor == 1 && !upgrade {
		h.Set("Connection", "keep-alive")
	}
}

// fail answers with a one-line text/plain reason. 4xx answers are counted as
// bad requests of tc (if any).
func fail(w http.ResponseWriter, tc *counters, code int, format string, args ...any) {
	if tc != nil && code >= 400 && code < 500 {
		tc.badRequests.Add(1)
	}
	msg := fmt.Sprintf(format, args...)
	// One line, whatever the input quoted in it contained.
	msg = strings.Map(func(r rune) rune {
		if r == '\n' || r == '\r' {
			return ' '
		}
		return r
	}, msg)
	http.Error(w, msg, code)
}

// query parses the raw query strictly: a malformed one is a bad request,
// where url.URL.Query would silently drop parts of it.
func query(r *http.Request) (url.Values, error) {
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return nil, fmt.Errorf("malformed query: %v", err)
	}
	return q, nil
}

// parseSeq parses a sequence number: decimal digits only (no sign), within
// uint64.
func parseSeq(name, v string) (uint64, error) {
	if v == "" {
		return 0, fmt.Errorf("%s is empty (want a decimal sequence number)", name)
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		if errors.Is(err, strconv.ErrRange) {
			return 0, fmt.Errorf("%s %q overflows a 64-bit sequence number", name, v)
		}
		return 0, fmt.Errorf("%s %q is not an unsigned decimal sequence number", name, v)
	}
	return n, nil
}

// resumePoint parses a since value (or Last-Event-ID) and checks that it is
// not ahead of the hub's head.
func resumePoint(hub *Hub, name, v string) (uint64, error) {
	n, err := parseSeq(name, v)
	if err != nil {
		return 0, err
	}
	if head := hub.Head(); n > head {
		return 0, fmt.Errorf("%s %d: %w (%d)", name, n, ErrAhead, head)
	}
	return n, nil
}

// deadline returns the write deadline for a write starting now.
func (s *Server) deadline() time.Time { return time.Now().Add(s.cfg.WriteTimeout) }

// isTimeout reports whether err is a missed write deadline.
func isTimeout(err error) bool {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// follow hands every event hub publishes after seq from to deliver, in
// order and in batches of at most 256, until Shutdown: the one loop behind
// each transport's background feeders (the SSE pumps, the dispatchers). If
// the feeder falls a whole ring behind it skips what has left the ring;
// the connections see the hole and fill it from the ring or send a gap
// notice.
func (s *Server) follow(hub *Hub, from uint64, deliver func(batch []*Entry)) {
	bp := s.entries.Get().(*[]*Entry)
	defer s.entries.Put(bp)
	next := from + 1
	for {
		out, gap, wake, err := hub.Since(next-1, (*bp)[:0], 256)
		if err != nil {
			return // next-1 never passes the head
		}
		if gap.Len() > 0 {
			next = gap.To + 1
		}
		if len(out) > 0 {
			next = out[len(out)-1].Seq + 1
			deliver(out)
			*bp = clearEntries(out)
			select { // more may be waiting: look again at once
			case <-s.bgStop:
				return
			default:
				continue
			}
		}
		select {
		case <-wake:
		case <-s.bgStop:
			return
		}
	}
}
