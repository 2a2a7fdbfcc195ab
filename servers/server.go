// Package servers holds the pushbench event hub and the four matching server
// transports — short polling, long polling, Server-Sent Events and WebSocket
// — behind one http.Handler tree, plus the statistics and control endpoints.
//
// Every transport reads the same Hub and sends the same encoded bytes
// (event); they differ only in what they wrap around them. The wire
// contract is docs/protocol.md.
//
// Lifetime: New starts two background goroutines (the SSE pump and the
// WebSocket dispatcher) and Shutdown ends them together with every
// long-lived handler. Always call Shutdown.
package servers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"net"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"github.com/r3labs/sse/v2"

	"pushbench/event"
	"pushbench/transport"
)

// Defaults for the zero values of Config.
const (
	DefaultAddr         = "127.0.0.1:8080"
	DefaultRing         = 16384
	DefaultHold         = 30 * time.Second
	DefaultWriteTimeout = 10 * time.Second
	DefaultWSQueue      = 1024
	DefaultPayload      = 256

	// MaxRing bounds the ring: it holds one pointer per slot up front and up
	// to MaxRing encoded events.
	MaxRing = 1 << 24

	// WSReadLimit is the largest client message a WebSocket connection
	// accepts; a bigger one closes it with 1009 (protocol.md).
	WSReadLimit = 4096
)

// closeGrace bounds the close handshake and the last writes of a stream when
// the server shuts down or cuts a slow consumer, so that shutdown ends every
// stream well within a second even when a client has stopped reading.
const closeGrace = 200 * time.Millisecond

// Config configures a Server. Zero values take the defaults above.
type Config struct {
	// Addr is the address Listen binds (default DefaultAddr, loopback).
	Addr string
	// Ring is K, the number of newest events the hub keeps for polls and
	// resumes (default DefaultRing).
	Ring int
	// Hold is the longest a long poll is held, and the cap on a client's
	// hold= parameter (default DefaultHold).
	Hold time.Duration
	// WriteTimeout is the deadline of every write to a client (default
	// DefaultWriteTimeout). It is set per write through
	// http.ResponseController, never as http.Server.WriteTimeout, which
	// would cut every stream after that long.
	WriteTimeout time.Duration
	// WSQueue bounds each WebSocket connection's queue of events waiting
	// for its writer (default DefaultWSQueue). A full queue disconnects
	// the client as a slow consumer (counted).
	WSQueue int
	// MaxBatch bounds the number of events in one poll answer (default 0:
	// the whole ring). A client may ask for fewer with max=.
	MaxBatch int
	// SSEBuffer is the r3labs/sse stream buffer in events (default
	// sse.DefaultBufferSize = 1024). When it is full the SSE pump has to
	// wait for the slowest SSE subscriber; each such wait is counted as a
	// stall.
	SSEBuffer int
	// Payload is the payload size /control/start uses when the request
	// names none (default DefaultPayload).
	Payload int
	// Spin is the PublishConfig.Spin /control/start uses when the request
	// names none (0: no spinning).
	Spin time.Duration
	// ErrorLog receives net/http's connection-level errors (nil: the log
	// package's standard logger).
	ErrorLog *log.Logger
}

// withDefaults returns c with zero values replaced by defaults, or the first
// problem with it.
func (c Config) withDefaults() (Config, error) {
	if c.Addr == "" {
		c.Addr = DefaultAddr
	}
	if c.Ring == 0 {
		c.Ring = DefaultRing
	}
	if c.Hold == 0 {
		c.Hold = DefaultHold
	}
	if c.WriteTimeout == 0 {
		c.WriteTimeout = DefaultWriteTimeout
	}
	if c.WSQueue == 0 {
		c.WSQueue = DefaultWSQueue
	}
	if c.SSEBuffer == 0 {
		c.SSEBuffer = sse.DefaultBufferSize
	}
	if c.Payload == 0 {
		c.Payload = DefaultPayload
	}
	switch {
	case c.Ring < 1 || c.Ring > MaxRing:
		return c, fmt.Errorf("ring %d: must be between 1 and %d events", c.Ring, MaxRing)
	case c.Hold < 0:
		return c, fmt.Errorf("hold %v: must be positive", c.Hold)
	case c.WriteTimeout < 0:
		return c, fmt.Errorf("write timeout %v: must be positive", c.WriteTimeout)
	case c.WSQueue < 1:
		return c, fmt.Errorf("ws queue %d: must be at least 1 message", c.WSQueue)
	case c.MaxBatch < 0:
		return c, fmt.Errorf("max batch %d: must not be negative", c.MaxBatch)
	case c.SSEBuffer < 1:
		return c, fmt.Errorf("sse buffer %d: must be at least 1 event", c.SSEBuffer)
	case c.Spin < 0:
		return c, fmt.Errorf("spin %v: must not be negative", c.Spin)
	}
	if c.MaxBatch == 0 || c.MaxBatch > c.Ring {
		c.MaxBatch = c.Ring
	}
	if err := event.CheckSize(c.Payload); err != nil {
		return c, err
	}
	return c, nil
}

// counters are one transport's live counters; TransportStats is their
// snapshot.
type counters struct {
	requests        atomic.Uint64
	badRequests     atomic.Uint64
	eventsSent      atomic.Uint64
	emptyResponses  atomic.Uint64
	gaps            atomic.Uint64
	gapEvents       atomic.Uint64
	slowDisconnects atomic.Uint64
	stalls          atomic.Uint64
	oversizeCloses  atomic.Uint64
	active          atomic.Int64
}

func (c *counters) gap(g event.Gap) {
	c.gaps.Add(1)
	c.gapEvents.Add(g.Len())
}

func (c *counters) snapshot() TransportStats {
	return TransportStats{
		Requests:        c.requests.Load(),
		BadRequests:     c.badRequests.Load(),
		Active:          c.active.Load(),
		EventsSent:      c.eventsSent.Load(),
		EmptyResponses:  c.emptyResponses.Load(),
		Gaps:            c.gaps.Load(),
		GapEvents:       c.gapEvents.Load(),
		SlowDisconnects: c.slowDisconnects.Load(),
		Stalls:          c.stalls.Load(),
		OversizeCloses:  c.oversizeCloses.Load(),
	}
}

// Server is the hub, the publisher and the four transports. Create it with
// New, serve it with Serve (or mount Handler elsewhere) and end it with
// Shutdown.
type Server struct {
	cfg     Config
	hub     *Hub
	pub     *Publisher
	handler http.Handler
	http    *http.Server

	shortPoll, longPoll, sseStats, wsStats counters
	listener                               listenerCounters

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

	// Background goroutines: the SSE pump and the WebSocket dispatcher.
	bg     sync.WaitGroup
	bgStop chan struct{}

	sse *sse.Server

	ws       wsHub
	upgrader websocket.Upgrader

	bodies  sync.Pool // *[]byte poll response bodies
	entries sync.Pool // *[]*Entry scratch slices

	// Publisher CPU is reported per run by the Publisher; the server sums
	// finished runs here so Stats can report all of them.
	pubMu        sync.Mutex
	pubCPU       time.Duration
	pubAccounted time.Time // Started of the last run added to pubCPU
}

// New returns a server for cfg with an idle publisher. It starts the SSE pump
// and the WebSocket dispatcher; call Shutdown to end them.
func New(cfg Config) (*Server, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("servers: %w", err)
	}
	s := &Server{
		cfg:    cfg,
		hub:    NewHub(cfg.Ring),
		done:   make(chan struct{}),
		bgStop: make(chan struct{}),
	}
	s.pub = NewPublisher(s.hub)
	s.quit, s.stopQuit = context.WithCancel(context.Background())
	s.entries.New = func() any { b := make([]*Entry, 0, 256); return &b }
	s.bodies.New = func() any { b := make([]byte, 0, 4096); return &b }

	s.sse = newSSEServer(cfg)
	s.initWS()

	mux := http.NewServeMux()
	mux.HandleFunc("/poll", s.handleShortPoll)
	mux.HandleFunc("/longpoll", s.handleLongPoll)
	mux.HandleFunc("/sse", s.handleSSE)
	mux.HandleFunc("/ws", s.handleWS)
	mux.HandleFunc("/stats", s.handleStats)
	mux.HandleFunc("/control/start", s.handleStart)
	mux.HandleFunc("/control/stop", s.handleStop)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		fail(w, nil, http.StatusNotFound, "unknown path %q (want /poll, /longpoll, /sse, /ws, /stats, /control/start or /control/stop)", r.URL.Path)
	})
	s.handler = mux
	s.http = &http.Server{
		Handler: mux,
		// No WriteTimeout: it would end every SSE stream after that long.
		// Writes get per-write deadlines instead (Config.WriteTimeout).
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          cfg.ErrorLog,
	}

	s.bg.Add(2)
	go s.ssePump()
	go s.wsDispatch()
	return s, nil
}

// Config returns the server's configuration with defaults filled in.
func (s *Server) Config() Config { return s.cfg }

// Hub returns the event hub every transport reads.
func (s *Server) Hub() *Hub { return s.hub }

// Publisher returns the server's publisher. Start runs through StartPublisher
// so that their CPU time is accounted in Stats.
func (s *Server) Publisher() *Publisher { return s.pub }

// Handler returns the handler tree: /poll, /longpoll, /sse, /ws, /stats,
// /control/start and /control/stop. Its byte counts (Stats.Listener) are only
// kept when it is served through Serve.
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
// and bytes at the listener (Stats.Listener). It returns nil after Shutdown
// and the listener's error otherwise.
func (s *Server) Serve(ln net.Listener) error {
	err := s.http.Serve(&countingListener{Listener: ln, c: &s.listener})
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Shutdown ends every long-lived handler (held long polls, SSE streams,
// WebSocket connections) at once, stops the publisher, closes the listeners
// and waits until handlers and background goroutines have finished. If ctx
// ends first it closes every connection forcibly and returns ctx's error;
// the rest of the cleanup then finishes in the background.
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
	// left; Shutdown closes the listeners and those.
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.WriteTimeout)
	if err := s.http.Shutdown(ctx); err != nil {
		_ = s.http.Close()
	}
	cancel()
	close(s.bgStop)
	// r3labs leaks one goroutine per connected subscriber when a stream is
	// closed under it (LIBRARIES.md, r3labs 5). Every SSE handler has
	// returned, so the stream has no subscribers left. Close also unblocks
	// a pump that waits in Publish.
	s.sse.Close()
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
func (s *Server) resumePoint(name, v string) (uint64, error) {
	n, err := parseSeq(name, v)
	if err != nil {
		return 0, err
	}
	if head := s.hub.Head(); n > head {
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

// StartPublisher starts a publishing run (see Publisher.Start).
func (s *Server) StartPublisher(c PublishConfig) error {
	s.pubMu.Lock()
	defer s.pubMu.Unlock()
	s.mu.RLock()
	closing := s.closing
	s.mu.RUnlock()
	if closing {
		return errors.New("server is shutting down")
	}
	s.accountPublisherCPU()
	return s.pub.Start(c)
}

// StopPublisher stops the current run, if any, and returns its statistics.
func (s *Server) StopPublisher() PublisherStats {
	s.pub.Stop()
	return s.pub.Stats()
}

// accountPublisherCPU adds the CPU time of a finished, not yet counted run
// to pubCPU. The caller holds pubMu.
func (s *Server) accountPublisherCPU() {
	st := s.pub.Stats()
	if st.Running || st.Started.IsZero() || st.Started.Equal(s.pubAccounted) {
		return
	}
	s.pubCPU += st.ThreadCPU
	s.pubAccounted = st.Started
}

// Stats returns a snapshot of every counter, the publisher and the process.
func (s *Server) Stats() Stats {
	s.pubMu.Lock()
	s.accountPublisherCPU()
	pubCPU := s.pubCPU
	s.pubMu.Unlock()

	st := Stats{
		TimeNs:    time.Now().UnixNano(),
		Head:      s.hub.Head(),
		Ring:      s.hub.Cap(),
		Publisher: s.pub.Stats(),
		Listener:  s.listener.snapshot(),
		Transports: map[string]TransportStats{
			transport.ShortPoll: s.shortPoll.snapshot(),
			transport.LongPoll:  s.longPoll.snapshot(),
			transport.SSE:       s.sseStats.snapshot(),
			transport.WebSocket: s.wsStats.snapshot(),
		},
		Process: processStats(),
	}
	if st.Publisher.Running {
		// The running publisher's CPU so far, read live, so that two
		// snapshots bracket exactly the publisher CPU between them.
		pubCPU += st.Publisher.ThreadCPU
	}
	st.Process.PublisherCPU = int64(pubCPU)
	return st
}

func processStats() ProcessStats {
	user, sys := ProcessCPU()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ProcessStats{
		PID:        os.Getpid(),
		CPUUserNs:  int64(user),
		CPUSysNs:   int64(sys),
		RSSBytes:   rss(),
		HeapInuse:  ms.HeapInuse,
		StackInuse: ms.StackInuse,
		Goroutines: runtime.NumGoroutine(),
		GOMAXPROCS: runtime.GOMAXPROCS(0),
		NumCPU:     runtime.NumCPU(),
		GoVersion:  runtime.Version(),
	}
}

// rss returns the resident set size from /proc/self/statm (0 where there is
// no procfs).
func rss() uint64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return 0
	}
	pages, err := strconv.ParseUint(f[1], 10, 64)
	if err != nil {
		return 0
	}
	return pages * uint64(os.Getpagesize())
}

func (s *Server) handleStats(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		fail(w, nil, http.StatusMethodNotAllowed, "/stats: method %s not allowed (want GET)", r.Method)
		return
	}
	writeJSON(w, s.Stats())
}

// handleStart serves POST /control/start?rate=R[&payload=P][&events=N]
// [&duration=D][&schedule=constant|poisson][&spin=D][&seed=S]. Parameters
// may also come as a form body.
func (s *Server) handleStart(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		fail(w, nil, http.StatusMethodNotAllowed, "/control/start: method %s not allowed (want POST)", r.Method)
		return
	}
	c, err := s.parseStart(r)
	if err != nil {
		fail(w, nil, http.StatusBadRequest, "/control/start: %v", err)
		return
	}
	switch err := s.StartPublisher(c); {
	case errors.Is(err, ErrRunning):
		fail(w, nil, http.StatusConflict, "/control/start: %v (POST /control/stop first)", err)
	case err != nil && s.quit.Err() != nil:
		fail(w, nil, http.StatusServiceUnavailable, "/control/start: %v", err)
	case err != nil:
		fail(w, nil, http.StatusBadRequest, "/control/start: %v", err)
	default:
		writeJSON(w, s.pub.Stats())
	}
}

func (s *Server) parseStart(r *http.Request) (PublishConfig, error) {
	c := PublishConfig{Payload: s.cfg.Payload, Spin: s.cfg.Spin}
	if err := r.ParseForm(); err != nil {
		return c, fmt.Errorf("malformed parameters: %v", err)
	}
	f := r.Form
	if !f.Has("rate") {
		return c, errors.New("rate is required (events per second)")
	}
	parseUint := func(v string) (uint64, error) { return strconv.ParseUint(v, 10, 64) }
	parseFloat := func(v string) (float64, error) { return strconv.ParseFloat(v, 64) }
	for _, err := range []error{ // the first bad one: the answer is one line
		formValue(f, "rate", "a number", parseFloat, &c.Rate),
		formValue(f, "payload", "a whole number of bytes", strconv.Atoi, &c.Payload),
		formValue(f, "events", "an unsigned count", parseUint, &c.Events),
		formValue(f, "duration", "a Go duration", time.ParseDuration, &c.Duration),
		formValue(f, "spin", "a Go duration", time.ParseDuration, &c.Spin),
		formValue(f, "seed", "an unsigned integer", parseUint, &c.Seed),
	} {
		if err != nil {
			return c, err
		}
	}
	c.Schedule = f.Get("schedule")
	return c, c.Validate()
}

// formValue parses f's key into *dst when it is present, leaving *dst as
// it is otherwise; the error names the key, the value and what it should be.
func formValue[T any](f url.Values, key, want string, parse func(string) (T, error), dst *T) error {
	if !f.Has(key) {
		return nil
	}
	v, err := parse(f.Get(key))
	if err != nil {
		return fmt.Errorf("%s %q is not %s", key, f.Get(key), want)
	}
	*dst = v
	return nil
}

func (s *Server) handleStop(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		fail(w, nil, http.StatusMethodNotAllowed, "/control/stop: method %s not allowed (want POST)", r.Method)
		return
	}
	writeJSON(w, s.StopPublisher())
}

func writeJSON(w http.ResponseWriter, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, "encode: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(append(b, '\n'))
}

// follow hands every event the hub publishes to deliver, in order and in
// batches of at most 256, until Shutdown: the one loop behind each
// transport's background feeder (the SSE pump, the WebSocket dispatcher).
// If the feeder falls a whole ring behind it skips what has left the ring;
// the connections see the hole and fill it from the ring or send a gap
// notice.
func (s *Server) follow(deliver func(batch []*Entry)) {
	bp := s.entries.Get().(*[]*Entry)
	defer s.entries.Put(bp)
	var next uint64 = 1
	for {
		out, gap, wake, err := s.hub.Since(next-1, (*bp)[:0], 256)
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
