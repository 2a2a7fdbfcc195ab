package bench

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"sync"
	"sync/atomic"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
	"golang.org/x/sys/unix"

	"pushbench/clients"
	"pushbench/clock"
	"pushbench/proc"
	"pushbench/results"
	"pushbench/servers"
	"pushbench/transport"
	"pushbench/webhttp"
)

// Options say how Run reaches its server and reports progress.
type Options struct {
	// Server is the URL of a running server (loopback only); "" starts one
	// with Launch.
	Server string
	// Launch starts the server when Server is "". Nil: a child process of
	// this executable (proc.ChildLauncher(os.Executable(), ServerLog)), so that
	// the server's CPU and memory are its own. Tests pass an in-process
	// launcher or a built binary.
	Launch proc.Launcher
	// Token is the bearer token of a server given by URL that was started
	// with --token (its /control/* asks for it).
	Token string
	// ServerLog receives the child server's output (nil: discarded).
	ServerLog io.Writer
	// Emulate starts the network emulator when the scenario's network is
	// emulated. Nil: a child process of this executable
	// (proc.EmulatorLauncher), so that its CPU is its own.
	Emulate proc.EmulatorStarter
	// Pin pins the server's threads and this process's threads to disjoint
	// CPU sets (needs a server child process and at least 2 CPUs).
	Pin bool
	// Agents are load-generator agents (`pushbench agent`, host:port)
	// that run shares of the clients; the clients not kept here
	// (LocalShare) are split evenly over them. AgentToken is their bearer
	// token (the agents' --token).
	Agents     []string
	AgentToken string
	LocalShare int
	// ServerHost is the address the server child listens on ("":
	// 127.0.0.1), for agents on other hosts; beyond loopback the child
	// gets a fresh token for its /control/* (Token).
	ServerHost string
	// Progress, if set, is called from one goroutine about every
	// ProgressEvery (default 250 ms) and at every phase change. It must
	// not block.
	Progress      func(Progress)
	ProgressEvery time.Duration
}

// Phase names a phase of a run.
type Phase string

// The phases, in order.
const (
	PhaseStart   Phase = "start"
	PhaseConnect Phase = "connect"
	PhaseIdle    Phase = "idle"
	PhaseWarmup  Phase = "warm-up"
	PhaseWindow  Phase = "window"
	PhaseDrain   Phase = "drain"
	PhaseDone    Phase = "done"
)

// Progress is a snapshot of a run in progress, for a progress display.
// Reading it costs the server nothing: it comes from the clients' side.
type Progress struct {
	Phase       Phase
	Clients     int           // clients asked for
	Connected   int           // clients subscribed so far
	Events      uint64        // events of this run received by some client (highest seq − first + 1)
	TotalEvents uint64        // events the publisher was asked for (estimate for Poisson)
	Deliveries  uint64        // in-window deliveries recorded so far
	Elapsed     time.Duration // since Run started
	Remaining   time.Duration // until the window ends (estimate before the publisher starts)
}

// Bounds on the phases that have no scenario setting of their own.
const (
	connectSlack     = 30 * time.Second // beyond clients ÷ connect rate
	confirmTimeout   = 10 * time.Second // server-side confirmation of the subscriptions
	publisherSlack   = 5 * time.Second  // for the publisher to finish after the window
	clientStopBound  = 15 * time.Second // for every subscriber to return after cancel
	interruptedDrain = time.Second      // drain bound after Ctrl-C
	controlTimeout   = 10 * time.Second // one control request
)

// Run measures scenario s and returns its record and the merged latency
// histogram (nanoseconds). When ctx is cancelled after the clients
// connected, Run stops the load, stops the server and returns the record
// of what was measured with Partial set, together with an error wrapping
// ctx.Err(). Other errors return no record.
func Run(ctx context.Context, s Scenario, opt Options) (*results.Record, *hdrhistogram.Histogram, error) {
	s = s.WithDefaults()
	if err := s.Validate(); err != nil {
		return nil, nil, err
	}
	if opt.ProgressEvery <= 0 {
		opt.ProgressEvery = 250 * time.Millisecond
	}
	r := &runner{s: s, opt: opt, started: time.Now(), poke: make(chan struct{}, 1), local: s.Clients, parts: 1}
	r.phase.Store(PhaseStart)
	if len(opt.Agents) > 0 {
		if err := r.planAgents(ctx); err != nil {
			return nil, nil, err
		}
	}
	return r.run(ctx)
}

// snap is one side-by-side snapshot of the clients' counters, this
// process's CPU time and the server's /stats.
type snap struct {
	at      time.Time
	c       Counts
	cpu     time.Duration // this process, user+sys
	emCPU   time.Duration // the network emulator's user+sys
	brCPU   time.Duration // every Chromium process's user+sys (browser runs)
	machine [2]uint64     // the machine's busy and total CPU ticks (/proc/stat)
	srv     servers.Stats
	ctrl0   [2]uint64 // control connection up/down bytes before the /stats request
	ctrl1   [2]uint64 // and after its response
}

type runner struct {
	s       Scenario
	opt     Options
	started time.Time

	srv      *proc.Server
	em       *proc.Server   // the network emulator in front of srv, if any
	roots    *x509.CertPool // the server's certificate, with TLS
	probe    probeResult
	ctl      *control
	lim      proc.Limits
	rec      *recorder
	phase    atomic.Value // Phase
	pinned   [2]string    // server, client CPU lists
	origCPUs unix.CPUSet
	poke     chan struct{} // wakes the progress goroutine at a phase change

	cctx    context.Context // the clients' context: cancelled by the harness, not by ctx
	ccancel context.CancelFunc
	wg      sync.WaitGroup // subscriber goroutines
	subs    []clients.Subscriber

	connected atomic.Int64
	failOnce  sync.Once
	failErr   error // first subscriber that gave up
	failed    atomic.Int64
	failc     chan struct{}

	base      uint64 // first seq of the run
	winEnd    atomic.Int64
	s0        snap          // before any client connected (after a GC)
	s1        servers.Stats // all clients connected (after a GC)
	i0, i1    snap          // the idle interval's edges
	died      string        // how the server child died, if it did
	diedPhase Phase         // and during which phase
	sEnd      snap          // after the drain, before the clients stop
	startPS   servers.PublisherStats
	finalPS   servers.PublisherStats
	// send is the clients' upstream (chat and game), started with the
	// workload; win is the window it was measured in (Unix ns).
	send        *senders
	win         window
	sendersLate bool // a sender had not sent its last message by the drain deadline
	stopSenders context.CancelFunc
	ws, we      snap
	measured    bool        // the window's start snapshot was taken
	br          *browserRun // the browsers of a browser run
	gapMu       sync.Mutex
	gaps        []int64 // streams' reconnect gaps, ns
	// The connect phase: each client's start-to-subscribed time (ns), and
	// the first and last start (Unix ns), under gapMu.
	connLat               []int64
	firstStart, lastStart int64
	nStarted              int
	partial               bool
	cutPhase              Phase

	// The clients this process runs: first is the global index of the
	// first one (an agent's share starts there), local how many.
	first, local int
	// part is this process's index among the load generators with
	// clients, of parts (1 without agents): client i starts in slot
	// i×parts+part of the scenario's connect schedule.
	part, parts int
	// off is this process's clock offset to the server, measured when the
	// server is on another host (Samples 0: not measured, 0 by
	// construction).
	off clock.Offset
	// skew makes this process's clock read that much ahead (an agent's
	// test-only --clock-skew): its stamps and its clock exchanges alike.
	skew time.Duration
	// The agents that run the other shares, and the first failure of one.
	agents agentSet
	// childToken is the server child's /control/* token when it listens
	// beyond loopback (Options.ServerHost).
	childToken string
}

func (r *runner) run(ctx context.Context) (rec *results.Record, hist *hdrhistogram.Histogram, err error) {
	s := r.s
	// Raise the descriptor limit before a child inherits it.
	if _, err := proc.PlanLimits(1, false, false); err != nil {
		return nil, nil, err
	}
	external := r.opt.Server != ""
	if r.opt.ServerHost != "" {
		if err := r.serverHost(); err != nil {
			return nil, nil, err
		}
	}
	if external && s.Workload != WorkloadBroadcast {
		return nil, nil, fmt.Errorf("%w: the %s workload needs its own server child (it sizes the rooms); --server runs broadcast only", ErrScenario, s.Workload)
	}
	if external {
		if err := CheckServer(ctx, r.opt.Server, r.opt.Token); err != nil {
			return nil, nil, err
		}
		if r.opt.Pin {
			return nil, nil, errors.New("--pin needs the server as a child process; it cannot pin a server given with --server")
		}
		r.srv = &proc.Server{URL: r.opt.Server, Stop: func() error { return nil }}
	}
	if s.Client == ClientBrowser {
		// Before the server, which must allow the pages' origin.
		if err := r.startBrowsers(ctx); err != nil {
			return nil, nil, err
		}
		defer func() {
			if closeErr := r.br.pool.Close(); closeErr != nil && err == nil {
				err = closeErr
			}
		}()
	}
	if !external {
		launch := r.opt.Launch
		if launch == nil {
			exe, err := os.Executable()
			if err != nil {
				return nil, nil, fmt.Errorf("find pushbench executable for the server child: %w", err)
			}
			launch = proc.ChildLauncher(exe, r.opt.ServerLog)
		}
		srv, err := launch(ctx, proc.ServerConfig{Payload: s.Payload, Ring: s.Ring, Hold: s.Hold,
			TLS: s.HTTP.TLS, Response: s.HTTP.ResponseProfile(), Compress: s.HTTP.Compress, TextPad: s.Pad == PadText,
			Rooms: s.Rooms(), CORS: r.corsList(), CutEvery: s.CutEvery, SSERetry: s.SSERetry,
			Host: r.opt.ServerHost, Token: r.childToken})
		if err != nil {
			return nil, nil, fmt.Errorf("start server: %w", err)
		}
		r.srv = srv
	}
	// Always stop the server, whatever happens below (error, cancel, panic).
	defer func() {
		if stopErr := r.srv.Stop(); stopErr != nil && err == nil {
			err = stopErr
		}
	}()

	if err := r.trust(ctx); err != nil {
		return nil, nil, err
	}

	if s.Network.Emulated() {
		start := r.opt.Emulate
		if start == nil {
			exe, err := os.Executable()
			if err != nil {
				return nil, nil, fmt.Errorf("find pushbench executable for the emulator child: %w", err)
			}
			start = proc.EmulatorLauncher(exe, r.opt.ServerLog)
		}
		if r.em, err = start(ctx, r.srv.URL, s.Network); err != nil {
			return nil, nil, fmt.Errorf("start network emulator: %w", err)
		}
		defer func() {
			if stopErr := r.em.Stop(); stopErr != nil && err == nil {
				err = stopErr
			}
		}()
		// Before the first snapshot, so that the probe's bytes are not
		// counted in the run's.
		if r.probe, err = probeRTT(ctx, r.clientURL(), ProbeRounds, r.probeTLS()); err != nil {
			return nil, nil, fmt.Errorf("network emulator: %w", err)
		}
	}

	shared := !external && (r.srv.PID == 0 || r.srv.PID == os.Getpid())
	if err := r.planLimits(shared); err != nil {
		return nil, nil, err
	}

	if r.opt.Pin {
		if err := r.pin(); err != nil {
			return nil, nil, err
		}
		defer r.unpin()
	}

	r.ctl = newControl(r.srv.URL, r.roots)
	r.ctl.token = r.opt.Token
	defer r.ctl.close()
	if err := r.measureOffset(ctx); err != nil {
		return nil, nil, err
	}
	r.startRecorder()
	defer r.stopClients() // idempotent; also on panic
	defer r.closeAgents() // before they open: a failed open leaves the others' sessions open
	if err := r.openAgents(ctx); err != nil {
		return nil, nil, err
	}
	if r.s0, err = r.snapWith(ctx, markBefore, r.ctl.gc); err != nil {
		return nil, nil, fmt.Errorf("server %s: %w", r.srv.URL, err)
	}
	if r.s0.srv.Publisher.Running {
		return nil, nil, fmt.Errorf("server %s: its publisher is already running; stop it first (POST /control/stop)", r.srv.URL)
	}
	if external && r.br != nil {
		if err := r.checkCORS(r.s0.srv); err != nil {
			return nil, nil, err
		}
	}
	if external {
		// The scenario's ring is the server's.
		r.s.Ring = r.s0.srv.Ring
		if err := r.s.Validate(); err != nil {
			return nil, nil, fmt.Errorf("server %s: %w", r.srv.URL, err)
		}
	} else if r.s0.srv.Ring != s.Ring {
		return nil, nil, fmt.Errorf("server reports ring %d, asked for %d", r.s0.srv.Ring, s.Ring)
	}
	r.base = r.s0.srv.Head + 1

	stopProgress := r.startProgress()
	defer stopProgress()

	if err := r.connect(ctx); err != nil {
		if ctx.Err() != nil {
			r.cut(PhaseConnect)
			return r.finish()
		}
		if r.serverDiedWithin(deathGrace) {
			return r.finish()
		}
		if r.agents.failed() != "" && ctx.Err() == nil {
			// The record says which agent failed, and how far the
			// others got.
			r.stopPublisher()
			return r.finish()
		}
		return nil, nil, err
	}
	err = r.idle(ctx)
	if err == nil {
		err = r.measure(ctx)
	}
	if err != nil {
		switch {
		case ctx.Err() != nil:
			r.cut(r.phase.Load().(Phase))
		case r.serverDiedWithin(deathGrace):
			// Keep what was measured: the record says the server died.
		case r.agents.failed() != "":
			// Keep what the others measured: the record names the agent.
			// The publisher stops now, and the other load generators'
			// clients get the events in flight, bounded.
			r.stopPublisher()
			if last := r.finalPS.LastSeq; last >= r.base {
				_ = r.waitCovered(context.Background(), last, time.Now().Add(min(interruptedDrain, s.Drain)))
			}
		default:
			r.stopPublisher()
			return nil, nil, err
		}
	}
	// A death during the drain shows only as missing events: name it.
	r.serverDied()
	return r.finish()
}

// windowHook, when set (tests only), is called as the window starts.
var windowHook func(*runner)

// deathGrace bounds the wait for a child's exit after a request to it
// failed.
const deathGrace = 200 * time.Millisecond

// cleanupCtx is for requests that must still go out after ctx ended.
func cleanupCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), controlTimeout)
}

func (r *runner) setPhase(p Phase) {
	r.phase.Store(p)
	select {
	case r.poke <- struct{}{}: // show the new phase at once
	default:
	}
}

func (r *runner) cut(p Phase) {
	r.partial = true
	if r.cutPhase == "" {
		r.cutPhase = p
	}
}

// connect starts the clients at the connect rate and waits until every one
// is subscribed, as seen by the client (Subscribed) and by the server.
func (r *runner) connect(ctx context.Context) error {
	if r.br != nil {
		return r.connectBrowsers(ctx)
	}
	s := r.s
	r.setPhase(PhaseConnect)
	if err := r.connectAll(ctx); err != nil {
		return err
	}
	// The server's view: open streams or held polls for the transports
	// that hold a request, open connections for those polled on an
	// interval grid (answered at once, so nothing is held between polls).
	what := "streams or held polls"
	if transport.HasInterval(s.Transport) {
		what = "open connections"
	}
	return r.confirmServer(ctx, int64(s.Clients), fmt.Sprintf("all %d clients", s.Clients), what, func(st servers.Stats) int64 {
		if transport.HasInterval(s.Transport) {
			return st.Listener.Open - r.s0.srv.Listener.Open
		}
		return st.Transports[s.Transport].Active - r.s0.srv.Transports[s.Transport].Active
	})
}

// connectClients starts this process's clients at their share of the
// connect rate and waits until every one says it is subscribed.
func (r *runner) connectClients(ctx context.Context) error {
	s := r.s
	n := r.local
	if n == 0 {
		return nil
	}
	r.subs = make([]clients.Subscriber, n)
	// Short pollers' grids are spread evenly over one interval, as the
	// phases of independent browsers are; clients that connect within one
	// interval would otherwise poll in step and all wait the same time.
	origin := time.Now()
	for i := range r.subs {
		sub, err := clients.New(s.Transport, clients.Config{
			BaseURL:     r.clientURL(),
			Since:       r.base - 1,
			Interval:    s.Interval,
			PollOrigin:  origin.Add(time.Duration(int64(s.Interval) * int64(r.first+i) / int64(s.Clients))),
			LocalAddr:   r.lim.SourceAddr(i),
			Counters:    r.rec.counters(i),
			Room:        s.RoomOf(i),
			Acks:        s.Workload == WorkloadGame,
			AckFrom:     r.first + i,
			HTTP:        s.HTTP,
			Roots:       r.roots,
			OnReconnect: r.reconnected,
		})
		if err != nil {
			return err
		}
		r.subs[i] = sub
	}

	// One goroutine waits for the subscriptions in order; they complete
	// roughly in the order they were started.
	started := make(chan int, n)
	allSubscribed := make(chan struct{})
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		for i := range started {
			select {
			case <-r.subs[i].Subscribed():
				r.connected.Add(1)
			case <-r.cctx.Done():
				return
			}
		}
		close(allSubscribed)
	}()

	t0 := time.Now()
	err := r.pace(ctx, t0, n, r.failc, func(i int) error {
		sub := r.subs[i]
		h := r.rec.handler(i)
		r.clientStarted(sub)
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			if err := sub.Run(r.cctx, h); err != nil && r.cctx.Err() == nil {
				r.failed.Add(1)
				r.failOnce.Do(func() {
					r.failErr = fmt.Errorf("client %d (%s): %w", r.first+i, s.Transport, err)
					close(r.failc)
				})
			}
		}()
		started <- i
		return nil
	})
	close(started)
	if err != nil {
		return err
	}

	timer := time.NewTimer(time.Until(t0.Add(r.connectBound())))
	defer timer.Stop()
	select {
	case <-allSubscribed:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-r.failc:
		return r.failErr
	case <-timer.C:
		return fmt.Errorf("connect: only %d of %d clients subscribed within %v", r.connected.Load(), n, r.connectBound().Round(time.Second))
	}
}

// pace calls start(i) for i in 0..n-1, client i in slot i×parts+part of
// the scenario's connect schedule (a slot per 1/connect rate from t0): the
// load generators' clients interleave, so that together they keep the
// scenario's rate over its span. It stops at ctx's end, at a subscriber's
// failure (failc; nil: not watched) or at start's first error.
func (r *runner) pace(ctx context.Context, t0 time.Time, n int, failc <-chan struct{}, start func(i int) error) error {
	gap := float64(time.Second) / r.s.ConnectRate
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for i := range n {
		if wait := time.Until(t0.Add(time.Duration(float64(i*r.parts+r.part) * gap))); wait > 0 {
			timer.Reset(wait)
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-failc:
				return r.failErr
			case <-timer.C:
			}
		}
		if err := start(i); err != nil {
			return err
		}
	}
	return nil
}

// connectBound bounds a connect phase: the scenario's clients at its
// connect rate, and slack.
func (r *runner) connectBound() time.Duration {
	return time.Duration(float64(r.s.Clients)/r.s.ConnectRate*float64(time.Second)) + connectSlack
}

// confirmServer waits until the server's count of its subscriptions
// (seen, against the first snapshot) reaches want, then takes the memory
// sample with every client connected (after a collection); who and what
// name them in the error after confirmTimeout.
func (r *runner) confirmServer(ctx context.Context, want int64, who, what string, seen func(servers.Stats) int64) error {
	deadline := time.Now().Add(confirmTimeout)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		st, err := r.ctl.stats(ctx)
		if err != nil {
			return err
		}
		n := seen(st)
		if n >= want {
			r.s1, err = r.ctl.gc(ctx)
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("connect: %s say they are subscribed, but the server shows %d %s after %v (want %d)",
				who, n, what, confirmTimeout, want)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-r.failc:
			return r.failErr
		case <-tick.C:
		}
	}
}

// clientStarted notes a client's start and, from a goroutine of its own
// until the clients stop, the time it takes to be subscribed.
func (r *runner) clientStarted(sub clients.Subscriber) {
	start := time.Now()
	r.gapMu.Lock()
	if r.nStarted == 0 {
		r.firstStart = start.UnixNano()
	}
	r.lastStart = start.UnixNano()
	r.nStarted++
	r.gapMu.Unlock()
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		select {
		case <-sub.Subscribed():
			d := time.Since(start)
			r.gapMu.Lock()
			r.connLat = append(r.connLat, int64(d))
			r.gapMu.Unlock()
		case <-r.cctx.Done():
		}
	}()
}

// idle measures the cost of holding the connections with nothing
// published: a snapshot, the idle interval, a snapshot.
func (r *runner) idle(ctx context.Context) error {
	r.setPhase(PhaseIdle)
	var err error
	if r.i0, err = r.snap(ctx, markIdleStart); err != nil {
		return err
	}
	if err := r.sleepUntil(ctx, r.i0.at.Add(r.s.Idle)); err != nil {
		return err
	}
	r.i1, err = r.snap(ctx, markIdleEnd)
	return err
}

// corsList is the origins the server child must allow: the browser
// pages'.
func (r *runner) corsList() []string {
	if r.br == nil {
		return nil
	}
	return []string{r.br.pool.Origin()}
}

// clientURL is where the clients connect: the emulator when there is one.
func (r *runner) clientURL() string {
	if r.em != nil {
		return r.em.URL
	}
	return r.srv.URL
}

// trust checks that the server speaks TLS exactly when the scenario asks
// for it and, if it does, learns its certificate (webhttp.TrustServer: the
// server is on loopback) for the control connection and every client.
func (r *runner) trust(ctx context.Context) error {
	u, err := url.Parse(r.srv.URL)
	if err != nil {
		return fmt.Errorf("server URL %q: %w", r.srv.URL, err)
	}
	if https := u.Scheme == "https"; https != r.s.HTTP.TLS {
		if https {
			return fmt.Errorf("%w: server %s speaks TLS; run with --tls", ErrScenario, r.srv.URL)
		}
		return fmt.Errorf("%w: --tls, but server %s speaks plain HTTP", ErrScenario, r.srv.URL)
	}
	if !r.s.HTTP.TLS {
		return nil
	}
	if r.roots, err = webhttp.TrustServer(ctx, u.Host); err != nil {
		return fmt.Errorf("server %s: %w", r.srv.URL, err)
	}
	return nil
}

// planLimits raises the open-files limit and plans the source addresses
// of this process's clients (shared: the server is in this process too).
// The 127.0.0.x addresses that spread clients beyond one address's
// ephemeral ports reach a server on loopback only: toward another host
// one address's ports are the limit.
func (r *runner) planLimits(shared bool) error {
	u, _ := url.Parse(r.srv.URL)
	host := ""
	if u != nil {
		host = u.Hostname()
	}
	ipv6 := net.ParseIP(host) != nil && net.ParseIP(host).To4() == nil
	var err error
	if r.lim, err = proc.PlanLimits(r.local, shared, ipv6); err != nil {
		return err
	}
	if len(r.lim.SourceAddrs) > 0 && !webhttp.IsLoopbackHost(host) {
		return fmt.Errorf("%w: %d clients need more ephemeral ports than one source address has toward %s (at most %d): spread them over agents",
			proc.ErrLimits, r.local, host, r.lim.PortsPerAddr)
	}
	return nil
}

// serverHost checks Options.ServerHost and, beyond loopback, makes the
// token the server child will ask /control/* for.
func (r *runner) serverHost() error {
	switch h := r.opt.ServerHost; {
	case r.opt.Server != "":
		return fmt.Errorf("%w: --server-host says where the server child listens; with --server there is no child", ErrScenario)
	case r.s.Network.Emulated():
		return fmt.Errorf("%w: --server-host: the network emulator runs on loopback only", ErrScenario)
	case webhttp.IsLoopbackHost(h):
		return nil
	case r.s.HTTP.TLS:
		return fmt.Errorf("%w: --server-host %s with --tls: agents on other hosts could not verify the child's self-signed certificate", ErrScenario, h)
	case net.ParseIP(h) == nil:
		return fmt.Errorf("%w: --server-host %q: want an IP address of this machine", ErrScenario, h)
	}
	b := make([]byte, 18)
	if _, err := rand.Read(b); err != nil {
		return err
	}
	r.childToken = base64.RawURLEncoding.EncodeToString(b)
	r.opt.Token = r.childToken
	return nil
}

// measureOffset measures this process's clock offset to a server on
// another host, which its receive stamps then carry; on loopback the
// clocks are one and nothing is measured.
func (r *runner) measureOffset(ctx context.Context) error {
	if u, err := url.Parse(r.srv.URL); err != nil || webhttp.IsLoopbackHost(u.Hostname()) {
		return nil
	}
	var err error
	r.off, err = r.measureClock(ctx)
	return err
}

// measureClock measures this process's clock offset to the server (GET
// /time, clockExchanges times), reading its own clock with the skew.
func (r *runner) measureClock(ctx context.Context) (clock.Offset, error) {
	c := newControl(r.srv.URL, r.roots)
	defer c.close()
	off, err := clock.Measure(ctx, c.hc, r.srv.URL, clockExchanges, func() time.Time { return time.Now().Add(r.skew) })
	if err != nil {
		return off, fmt.Errorf("the server's clock: %w", err)
	}
	return off, nil
}

// shift is what is added to this process's stamps to read them on the
// server's clock: its skew undone by its measured offset.
func (r *runner) shift() int64 { return int64(r.skew) + r.off.Offset }

// startRecorder makes the clients' context and the recorder, whose
// receive stamps carry the clock shift. Call it once the offset is known.
func (r *runner) startRecorder() {
	r.cctx, r.ccancel = context.WithCancel(context.Background())
	r.failc = make(chan struct{})
	r.rec = newRecorder(r.local, uint64(float64(r.s.Events())*1.1)+64, r.cctx.Done())
	r.rec.shift = r.shift()
}

// probeTLS is the TLS configuration of the round-trip probe (nil without
// TLS).
func (r *runner) probeTLS() *tls.Config {
	if r.roots == nil {
		return nil
	}
	return webhttp.ClientConfig(r.roots, "127.0.0.1", webhttp.ALPNHTTP1)
}

// serverDiedWithin is serverDied after waiting up to d for a child to be
// reaped: a killed child's sockets close (and a request fails) before its
// exit is seen.
func (r *runner) serverDiedWithin(d time.Duration) bool {
	var exited, emExited <-chan struct{}
	if r.srv != nil {
		exited = r.srv.Exited
	}
	if r.em != nil {
		emExited = r.em.Exited
	}
	if exited != nil || emExited != nil {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-exited:
		case <-emExited:
		case <-t.C:
		}
	}
	return r.serverDied()
}

// serverDied reports whether the server child ended on its own (and keeps
// how): the run then ends with what it measured, marked failed.
func (r *runner) serverDied() bool {
	for _, c := range []struct {
		who string
		p   *proc.Server
	}{{"the server", r.srv}, {"the network emulator", r.em}} {
		if c.p == nil || c.p.Died == nil {
			continue
		}
		if dead, how := c.p.Died(); dead {
			if r.died == "" {
				r.died, r.diedPhase = c.who+" died: "+how, r.phase.Load().(Phase)
			}
			return true
		}
	}
	return false
}

// measure starts the publisher and takes the window's snapshots at its
// scheduled boundaries, then drains.
func (r *runner) measure(ctx context.Context) error {
	s := r.s
	pc := servers.PublishConfig{
		Rate:     s.Rate,
		Payload:  s.Payload,
		Schedule: s.Schedule,
		Duration: s.Warmup + s.Duration,
		Spin:     s.Spin,
		Workload: s.Workload,
		Room:     min(s.Room, s.Clients),
	}
	if s.Workload == WorkloadGame {
		// Ticks go on past the window, so that the inputs sent at its
		// end are still applied and acknowledged (their input latency
		// is measured like every other's); snapshots after the window
		// are not counted.
		pc.Duration += gameTail(s)
	}
	if s.Schedule == servers.ScheduleConstant {
		pc.Events = constantEvents(s.Rate, pc.Duration)
	}
	// Snapshots are taken half a mean event interval before each window
	// boundary: between two scheduled events, so that the boundary event's
	// traffic falls wholly inside the counted bytes, CPU and requests.
	half := min(time.Duration(float64(time.Second)/s.Rate/2), s.Duration/2)

	// With less warm-up than that, the start snapshot must precede the
	// publisher itself.
	var pre snap
	early := s.Warmup < half
	if early {
		var err error
		if pre, err = r.snap(ctx, markStart); err != nil {
			return err
		}
	}
	ps, err := r.ctl.start(ctx, pc)
	if err != nil {
		r.setWindow(window{base: r.base}) // release any handler; nothing is in this window
		return fmt.Errorf("start publisher: %w", err)
	}
	r.startPS = ps
	start := ps.Started
	if s.Workload == WorkloadChat {
		// No publisher: the clients' first messages are due a moment
		// from now, when every sender is ready.
		start = time.Now().Add(chatLead)
	}
	// The window is on the server's clock (its events' stamps); this
	// process waits for its edges on its own, off by the clock offset.
	winStart := start.Add(s.Warmup)
	winEnd := winStart.Add(s.Duration)
	r.win = window{start: winStart.UnixNano(), end: winEnd.UnixNano(), base: r.base}
	winStart, winEnd = winStart.Add(-time.Duration(r.shift())), winEnd.Add(-time.Duration(r.shift()))
	r.winEnd.Store(winEnd.UnixNano())
	// The senders before the window: once it is set, handlers run and
	// may read them (game acknowledgements).
	r.startSenders(start, start.Add(s.Warmup+s.Duration), r.win)

	if early {
		r.ws = pre
		r.measured = true
		r.setPhase(PhaseWindow)
	} else {
		r.setPhase(PhaseWarmup)
		if err := r.sleepUntil(ctx, winStart.Add(-half)); err != nil {
			if ctx.Err() != nil {
				r.cut(PhaseWarmup)
			}
			return err
		}
		if r.ws, err = r.snap(ctx, markStart); err != nil {
			return err
		}
		r.measured = true
		r.setPhase(PhaseWindow)
	}
	if windowHook != nil {
		windowHook(r)
	}
	if err := r.sleepUntil(ctx, winEnd.Add(-half)); err != nil {
		if errors.Is(err, errServerDied) {
			// The window ends now, on the clients' side only: the
			// server can no longer be asked.
			r.we = r.clientSnap()
			r.agents.mark(markEnd)
			return err
		}
		if r.agents.failed() != "" && ctx.Err() == nil {
			// An agent died: the window ends now for the others.
			r.we, _ = r.snapCleanup(markEnd)
			return err
		}
		// Interrupted: the window ends now.
		r.cut(PhaseWindow)
		r.we, _ = r.snapCleanup(markEnd)
		return err
	}
	if r.we, err = r.snap(ctx, markEnd); err != nil {
		return err
	}
	r.browserMemory()
	return r.drain(ctx, winEnd)
}

// drain waits for the publisher to finish and for every client to receive
// (or be told it lost) the run's last event, bounded by the drain limit
// counted from the window's end.
func (r *runner) drain(ctx context.Context, winEnd time.Time) error {
	r.setPhase(PhaseDrain)
	if r.s.Workload == WorkloadChat {
		return r.drainChat(ctx, winEnd)
	}
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	pubDeadline := winEnd.Add(publisherSlack)
	if r.s.Workload == WorkloadGame {
		pubDeadline = pubDeadline.Add(gameTail(r.s))
	}
	for {
		st, err := r.ctl.stats(ctx)
		if err != nil {
			if ctx.Err() != nil {
				r.cut(PhaseDrain)
			}
			return err
		}
		if !st.Publisher.Running {
			r.finalPS = st.Publisher
			break
		}
		if time.Now().After(pubDeadline) {
			return fmt.Errorf("drain: the publisher still runs %v after the window's end", publisherSlack)
		}
		select {
		case <-ctx.Done():
			r.cut(PhaseDrain)
			return ctx.Err()
		case <-tick.C:
		}
	}
	if r.send != nil && !r.waitSenders(ctx, winEnd.Add(r.s.Drain)) {
		if ctx.Err() != nil {
			r.cut(PhaseDrain)
			return ctx.Err()
		}
		r.sendersLate = true
	}
	if err := r.waitCovered(ctx, r.finalPS.LastSeq, winEnd.Add(r.s.Drain)); err != nil {
		if r.agents.failed() == "" || ctx.Err() != nil {
			r.cut(PhaseDrain)
		}
		return err
	}
	return nil
}

// gameTail is how long the game's ticks go on after the window: five ticks
// or half a second, whichever is longer.
func gameTail(s Scenario) time.Duration {
	return max(500*time.Millisecond, time.Duration(5*float64(time.Second)/s.Tick))
}

// chatLead is how far ahead of the chat's start its first messages are
// scheduled: the senders' goroutines start within it.
const chatLead = 20 * time.Millisecond

// startSenders starts the clients' upstream for chat and game: messages
// (or inputs) scheduled from start until until.
func (r *runner) startSenders(start, until time.Time, w window) {
	s := r.s
	var size int
	var rate float64
	switch s.Workload {
	case WorkloadChat:
		size, rate = s.Payload, s.SendRate
	case WorkloadGame:
		size, rate = InputSize, s.InputRate
	default:
		r.setWindow(w)
		return
	}
	subs := make([]upstreamSender, len(r.subs))
	for i, sub := range r.subs {
		subs[i] = sub.(upstreamSender)
	}
	r.send = newSenders(s, size, rate, start, until)
	r.rec.setSenders(r.send)
	r.rec.setWindow(w)
	var sctx context.Context
	sctx, r.stopSenders = context.WithCancel(r.cctx)
	r.send.run(sctx, subs)
}

// drainChat waits for every sender to finish, then for every client to
// have its room's last message, bounded by the drain limit from the
// window's end.
func (r *runner) drainChat(ctx context.Context, winEnd time.Time) error {
	deadline := winEnd.Add(r.s.Drain)
	if !r.waitSenders(ctx, deadline) {
		if ctx.Err() != nil {
			r.cut(PhaseDrain)
			return ctx.Err()
		}
		r.sendersLate = true
		return nil // the senders stop with the clients
	}
	st, err := r.ctl.stats(ctx)
	if err != nil {
		return err
	}
	r.finalPS = st.Publisher
	// The rooms' last seqs: the server's word, or (when it lists too many
	// rooms to name each) the messages the senders handed over, which on
	// a fresh server is the same.
	// A WebSocket or tcp send is done once its bytes are in the kernel's
	// buffer, maybe before the server has published it: the target is
	// the larger of the two counts.
	heads := r.send.accepted()
	for i, h := range st.RoomHeads {
		if i < len(heads) {
			heads[i] = max(heads[i], h)
		}
	}
	err = r.waitCoveredBy(ctx, func(i int) uint64 {
		if room := r.s.RoomOf(i); room < len(heads) {
			return heads[room]
		}
		return 0
	}, deadline)
	if err != nil {
		r.cut(PhaseDrain)
		return err
	}
	r.stopPublisher() // ends the chat: the server stops taking messages
	return nil
}

// waitSenders waits until every sender has sent its last message (they
// may run late), or until deadline or ctx; it reports whether they had.
func (r *runner) waitSenders(ctx context.Context, deadline time.Time) bool {
	done := make(chan struct{})
	go func() { r.send.wait(); close(done) }()
	t := time.NewTimer(time.Until(deadline))
	defer t.Stop()
	select {
	case <-done:
		return true
	case <-ctx.Done():
	case <-t.C:
	}
	return false
}

// waitCovered waits until every client has received (or been told it lost)
// event last, or until deadline (what has not arrived then is lost; the
// tallies count it). It returns ctx's error if ctx ends first.
func (r *runner) waitCovered(ctx context.Context, last uint64, deadline time.Time) error {
	wait := r.agents.drain(ctx, last, deadline)
	err := r.waitCoveredBy(ctx, func(int) uint64 { return last }, deadline)
	return errors.Join(err, wait())
}

// waitCoveredBy is waitCovered with a last event per client.
func (r *runner) waitCoveredBy(ctx context.Context, last func(i int) uint64, deadline time.Time) error {
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for i := 0; ; {
		if i = r.rec.uncoveredBy(i, func(i int) uint64 {
			if r.gone(i) {
				return 0 // a page that will not receive
			}
			return last(i)
		}); i == len(r.rec.tallies) || time.Now().After(deadline) {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// errServerDied ends a run whose server child died.
var errServerDied = errors.New("the server died")

// sleepUntil waits until t, ctx's end or the server's death, whichever
// comes first.
func (r *runner) sleepUntil(ctx context.Context, t time.Time) error {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err()
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	var exited, emExited <-chan struct{}
	if r.srv != nil {
		exited = r.srv.Exited
	}
	if r.em != nil {
		emExited = r.em.Exited
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-exited:
	case <-emExited:
	case <-r.agents.down():
		return errors.New(r.agents.failed())
	case <-timer.C:
		return nil
	}
	if r.serverDied() {
		return errServerDied
	}
	return errors.New("the server or the network emulator exited")
}

// snap takes the clients' counters and this process's CPU time at once
// (and has every agent take its mark), then the server's /stats.
func (r *runner) snap(ctx context.Context, mark int) (snap, error) {
	return r.snapWith(ctx, mark, r.ctl.stats)
}

// clientSnap is a snapshot of the clients' side alone.
func (r *runner) clientSnap() snap {
	var sn snap
	sn.at = time.Now()
	sn.c = r.rec.snapshot()
	u, sy := servers.ProcessCPU()
	sn.cpu = u + sy
	if r.em != nil && r.em.PID > 0 {
		sn.emCPU, _ = proc.PIDCPU(r.em.PID)
	}
	sn.brCPU = r.browserCPU()
	if busy, total, err := proc.MachineCPU(); err == nil {
		sn.machine = [2]uint64{busy, total}
	}
	return sn
}

// snapWith is snap with the server's side taken by stats (GET /stats, or
// POST /control/gc for a memory sample).
func (r *runner) snapWith(ctx context.Context, mark int, stats func(context.Context) (servers.Stats, error)) (snap, error) {
	marked := r.agents.markAsync(ctx, mark)
	sn := r.clientSnap()
	// An agent that could not take its mark has failed (the run notices
	// it at its next wait); the server's side is taken all the same, for
	// the others.
	_ = marked()
	sn.ctrl0 = [2]uint64{r.ctl.ctr.BytesUp.Load(), r.ctl.ctr.BytesDown.Load()}
	st, err := stats(ctx)
	if err != nil {
		return sn, err
	}
	sn.srv = st
	sn.ctrl1 = [2]uint64{r.ctl.ctr.BytesUp.Load(), r.ctl.ctr.BytesDown.Load()}
	return sn, nil
}

func (r *runner) snapCleanup(mark int) (snap, error) {
	ctx, cancel := cleanupCtx()
	defer cancel()
	return r.snap(ctx, mark)
}

// stopPublisher stops the server's publishing run (after an interruption
// or an error) and keeps its final stats.
func (r *runner) stopPublisher() {
	ctx, cancel := cleanupCtx()
	defer cancel()
	if err := r.ctl.stop(ctx); err != nil {
		return
	}
	if st, err := r.ctl.stats(ctx); err == nil {
		r.finalPS = st.Publisher
	}
}

// stopClients cancels every subscriber (and sender) and waits for them,
// bounded.
func (r *runner) stopClients() error {
	if r.ccancel == nil {
		return nil
	}
	r.ccancel()
	done := make(chan struct{})
	go func() {
		r.wg.Wait()
		if r.send != nil {
			r.send.wait()
		}
		close(done)
	}()
	t := time.NewTimer(clientStopBound)
	defer t.Stop()
	select {
	case <-done:
		return nil
	case <-t.C:
		return fmt.Errorf("subscribers still running %v after cancel (a client does not honour its context)", clientStopBound)
	}
}

func (r *runner) startProgress() (stop func()) {
	if r.opt.Progress == nil {
		return func() {}
	}
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(r.opt.ProgressEvery)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
			case <-r.poke:
			}
			r.opt.Progress(r.progress())
		}
	}()
	var once sync.Once
	return func() { once.Do(func() { close(done); <-finished }) }
}

func (r *runner) progress() Progress {
	p := Progress{
		Phase:       r.phase.Load().(Phase),
		Clients:     r.s.Clients,
		Connected:   int(r.connected.Load()),
		TotalEvents: r.s.Events(),
		Elapsed:     time.Since(r.started),
	}
	if r.rec != nil {
		var maxSeq uint64
		p.Deliveries, maxSeq = r.rec.progress()
		if maxSeq >= r.base {
			p.Events = maxSeq - r.base + 1
		}
	}
	if end := r.winEnd.Load(); end != 0 {
		p.Remaining = max(0, time.Until(time.Unix(0, end)))
	} else {
		left := float64(r.s.Clients-p.Connected) / r.s.ConnectRate
		p.Remaining = time.Duration(left*float64(time.Second)) + r.s.Idle + r.s.Warmup + r.s.Duration
	}
	return p
}

// pin splits the CPUs between the server child and this process.
func (r *runner) pin() error {
	if r.srv.PID == 0 || r.srv.PID == os.Getpid() {
		return errors.New("--pin needs the server as a separate process")
	}
	srvSet, cliSet, err := proc.CPUSplit()
	if err != nil {
		return err
	}
	if r.origCPUs, err = proc.CurrentAffinity(); err != nil {
		return err
	}
	if err := proc.PinProcess(r.srv.PID, srvSet); err != nil {
		return err
	}
	if err := proc.PinProcess(0, cliSet); err != nil {
		return err
	}
	r.pinned = [2]string{proc.FormatCPUs(srvSet), proc.FormatCPUs(cliSet)}
	return nil
}

// unpin gives this process's threads the CPUs they had before pin (a
// library caller may run several scenarios in a row).
func (r *runner) unpin() {
	if r.pinned[1] != "" {
		_ = proc.PinProcess(0, r.origCPUs)
	}
}
