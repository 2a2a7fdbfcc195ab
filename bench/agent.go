package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"

	"pushbench/clock"
	"pushbench/proc"
	"pushbench/results"
	"pushbench/webhttp"
)

// An agent (`pushbench agent`) is a load generator that runs a share of a
// cell's clients for a coordinator (`pushbench run --agents`). It runs the
// runner's own client half — the same connect, recorder, marks, drain and
// LoadGen as a run on one machine — and hands back its LoadGen, which the
// coordinator merges (Merge) with the other shares into one Measurement.
//
// The protocol is JSON over HTTP, one session at a time (docs/agents.md):
//
//	GET  /agent/info     version, open-files ceiling, CPUs, the session
//	POST /agent/open     a share: scenario, server, first client, count;
//	                     the agent measures its clock offset to the server
//	POST /agent/connect  the run's first seq; connects the share's clients
//	POST /agent/mark     takes mark i (counters, CPU) now
//	POST /agent/window   the measured window
//	POST /agent/drain    waits until every client has the last event
//	POST /agent/finish   stops the clients, returns the LoadGen
//	POST /agent/abort    stops the clients, returns nothing
//
// Every path asks for the bearer token when the agent has one; a session
// ends by itself when its bound (sent with the share) has passed.

// AgentConfig configures an Agent.
type AgentConfig struct {
	// Token is the bearer token every request must carry ("" none: only
	// for an agent on loopback).
	Token string
	// ClockSkew makes the agent's clock read this much ahead of the real
	// one (tests and demonstrations only): its receive stamps and its
	// clock exchanges are skewed alike, and the offset it measures must
	// undo it.
	ClockSkew time.Duration
	// Version is the version the agent reports ("": proc.Version()).
	Version string
}

// Agent serves the agent protocol. Close it to end a session in progress.
type Agent struct {
	cfg          AgentConfig
	mu           sync.Mutex
	sess         *agentSession
	seq          atomic.Uint64
	unauthorized atomic.Uint64
	sessions     atomic.Uint64
}

// NewAgent returns an agent.
func NewAgent(cfg AgentConfig) *Agent {
	if cfg.Version == "" {
		cfg.Version = proc.Version()
	}
	return &Agent{cfg: cfg}
}

// AgentInfo is GET /agent/info's answer.
type AgentInfo struct {
	Version string `json:"version"`
	// Ceiling is how many clients this agent's process can hold
	// (proc.Ceiling: its open-files limit and ephemeral ports).
	Ceiling      int    `json:"ceiling"`
	CeilingBy    string `json:"ceiling_by"`
	CPUs         int    `json:"cpus"`
	Host         string `json:"host"`
	Session      string `json:"session,omitempty"` // the session in progress
	Sessions     uint64 `json:"sessions"`          // sessions opened since start
	Unauthorized uint64 `json:"unauthorized"`      // requests refused for their token
}

// agentShare is POST /agent/open's body: the agent's part of a cell.
type agentShare struct {
	Scenario Scenario `json:"scenario"` // the whole cell (Clients: every load generator's)
	Server   string   `json:"server"`   // the server's URL, as the agent reaches it
	First    int      `json:"first"`    // global index of the share's first client
	Clients  int      `json:"clients"`
	// Part is the share's index among Parts load generators: its client
	// i starts in slot i×Parts+Part of the scenario's connect schedule.
	Part  int `json:"part"`
	Parts int `json:"parts"`
	// BoundNs ends the session by itself this long after it opened, if
	// the coordinator has not ended it (it died, or lost the agent).
	BoundNs int64 `json:"bound_ns"`
}

type agentOpened struct {
	Session string       `json:"session"`
	Offset  clock.Offset `json:"offset"`
	Host    string       `json:"host"`
}

type agentRequest struct {
	Session string `json:"session"`
	Base    uint64 `json:"base,omitempty"`   // connect: the run's first seq
	Mark    int    `json:"mark,omitempty"`   // mark: which one
	Window  *wire  `json:"window,omitempty"` // window
	Last    uint64 `json:"last,omitempty"`   // drain: the run's last seq
	Within  int64  `json:"within,omitempty"` // drain: how long it may wait, ns
}

// wire is a window as it travels: Unix ns on the server's clock.
type wire struct {
	Start int64  `json:"start"`
	End   int64  `json:"end"`
	Base  uint64 `json:"base"`
}

// agentResult is POST /agent/finish's answer: the share's LoadGen, with
// its latency histograms merged into one (counts add: exact) and
// carried as a snapshot.
type agentResult struct {
	Load   LoadGen                `json:"load"`
	Hist   *hdrhistogram.Snapshot `json:"hist"`
	Offset clock.Offset           `json:"offset"`
	// OffsetEnd is the offset measured again as the share finished
	// (Samples 0: the server no longer answered).
	OffsetEnd clock.Offset `json:"offset_end"`
}

// agentSession is one share in progress.
type agentSession struct {
	id     string
	r      *runner
	ctx    context.Context // ends with the session (finish, abort, bound)
	cancel context.CancelFunc
	timer  *time.Timer
	// step is how far the session has come: requests out of order are
	// refused (a second window would close a closed channel).
	step  int
	mu    sync.Mutex // one request of the session at a time
	snaps [marks]snap
	ended bool
}

// The steps of a session, in order.
const (
	stepOpened = iota
	stepConnected
	stepWindow
)

var stepNames = []string{"open, not connected", "connected, no window yet", "in its window"}

// errOrder is a request out of the session's order (409).
type errOrder struct{ error }

// clockExchanges is how many GET /time exchanges a clock offset rests on
// (clock.Estimate).
const clockExchanges = 64

func (a *Agent) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if a.cfg.Token != "" && !webhttp.BearerOK(req, a.cfg.Token) {
		a.unauthorized.Add(1)
		http.Error(w, req.URL.Path+": a bearer token is required (Authorization: Bearer TOKEN, the agent's --token; give it to the coordinator with --agent-token)", http.StatusUnauthorized)
		return
	}
	if req.URL.Path == "/agent/info" {
		if req.Method != http.MethodGet {
			http.Error(w, "/agent/info: method "+req.Method+" not allowed (want GET)", http.StatusMethodNotAllowed)
			return
		}
		writeJSON(w, a.info())
		return
	}
	if req.Method != http.MethodPost {
		http.Error(w, req.URL.Path+": method "+req.Method+" not allowed (want POST)", http.StatusMethodNotAllowed)
		return
	}
	body, err := io.ReadAll(io.LimitReader(req.Body, 1<<20))
	if err != nil {
		http.Error(w, req.URL.Path+": "+err.Error(), http.StatusBadRequest)
		return
	}
	if req.URL.Path == "/agent/open" {
		var sh agentShare
		if err := strictJSON(body, &sh); err != nil {
			http.Error(w, "/agent/open: "+err.Error(), http.StatusBadRequest)
			return
		}
		opened, code, err := a.open(req.Context(), sh)
		if err != nil {
			http.Error(w, "/agent/open: "+err.Error(), code)
			return
		}
		writeJSON(w, opened)
		return
	}
	var ar agentRequest
	if err := strictJSON(body, &ar); err != nil {
		http.Error(w, req.URL.Path+": "+err.Error(), http.StatusBadRequest)
		return
	}
	s := a.session(ar.Session)
	if s == nil {
		http.Error(w, fmt.Sprintf("%s: no session %q here (it ended, or the agent restarted)", req.URL.Path, ar.Session), http.StatusConflict)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended {
		http.Error(w, fmt.Sprintf("%s: session %s ended (its bound passed, or it was aborted)", req.URL.Path, s.id), http.StatusConflict)
		return
	}
	if s.r == nil {
		http.Error(w, fmt.Sprintf("%s: session %s is not open (its open failed)", req.URL.Path, s.id), http.StatusConflict)
		return
	}
	out, err := a.handle(req.Context(), s, req.URL.Path, ar)
	if err != nil {
		code := http.StatusInternalServerError
		if errors.As(err, new(errOrder)) {
			code = http.StatusConflict
		}
		http.Error(w, req.URL.Path+": "+err.Error(), code)
		return
	}
	writeJSON(w, out)
}

// handle runs one request of session s (under s.mu).
func (a *Agent) handle(ctx context.Context, s *agentSession, path string, ar agentRequest) (any, error) {
	r := s.r
	// A request ends with the session as well as with its connection.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(s.ctx, cancel)
	defer stop()
	order := map[string]int{"/agent/connect": stepOpened, "/agent/window": stepConnected, "/agent/drain": stepWindow}
	if want, ok := order[path]; ok && s.step != want {
		return nil, errOrder{fmt.Errorf("out of order: the session is %s", stepNames[s.step])}
	}
	switch path {
	case "/agent/connect":
		r.base = ar.Base
		s.step = stepConnected
		if err := r.connectClients(ctx); err != nil {
			return nil, err
		}
		return map[string]int64{"connected": r.connected.Load()}, nil
	case "/agent/mark":
		if ar.Mark < 0 || ar.Mark >= marks {
			return nil, fmt.Errorf("mark %d: want 0..%d", ar.Mark, marks-1)
		}
		s.snaps[ar.Mark] = r.clientSnap()
		return map[string]int{"mark": ar.Mark}, nil
	case "/agent/window":
		if ar.Window == nil {
			return nil, errors.New("no window")
		}
		r.rec.setWindow(window{start: ar.Window.Start, end: ar.Window.End, base: ar.Window.Base})
		s.step = stepWindow
		return map[string]bool{"set": true}, nil
	case "/agent/drain":
		// At the deadline what has not arrived is lost: the tallies count it.
		err := r.waitCoveredBy(ctx, func(int) uint64 { return ar.Last }, time.Now().Add(time.Duration(ar.Within)))
		return map[string]bool{"waited": err == nil}, err
	case "/agent/finish":
		// The offset again, before the clients stop: how far the clocks
		// moved over the run.
		end, err := r.measureClock(ctx)
		res := a.end(s)
		if err == nil {
			res.OffsetEnd = end
		}
		return res, nil
	case "/agent/abort":
		a.end(s)
		return map[string]bool{"aborted": true}, nil
	}
	return nil, fmt.Errorf("unknown path (want /agent/info, /agent/open, /agent/connect, /agent/mark, /agent/window, /agent/drain, /agent/finish or /agent/abort)")
}

func (a *Agent) info() AgentInfo {
	in := AgentInfo{Version: a.cfg.Version, CPUs: runtime.GOMAXPROCS(0), Sessions: a.sessions.Load(), Unauthorized: a.unauthorized.Load()}
	in.Ceiling, in.CeilingBy, _ = proc.Ceiling()
	in.Host, _ = os.Hostname()
	a.mu.Lock()
	if a.sess != nil {
		in.Session = a.sess.id
	}
	a.mu.Unlock()
	return in
}

func (a *Agent) session(id string) *agentSession {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.sess == nil || a.sess.id != id {
		return nil
	}
	return a.sess
}

// open starts a session for share sh: the agent's runner, with the
// clock offset to the server measured, its limits planned and its
// recorder ready; the clients connect on /agent/connect.
func (a *Agent) open(ctx context.Context, sh agentShare) (agentOpened, int, error) {
	s := sh.Scenario.WithDefaults()
	switch {
	case sh.Clients < 1 || sh.First < 0 || sh.First+sh.Clients > s.Clients:
		return agentOpened{}, http.StatusBadRequest, fmt.Errorf("a share of clients %d..%d of %d", sh.First, sh.First+sh.Clients-1, s.Clients)
	case sh.BoundNs <= 0:
		return agentOpened{}, http.StatusBadRequest, errors.New("no bound on the session")
	case sh.Parts < 1 || sh.Part < 0 || sh.Part >= sh.Parts:
		return agentOpened{}, http.StatusBadRequest, fmt.Errorf("part %d of %d load generators", sh.Part, sh.Parts)
	}
	if err := s.Validate(); err != nil {
		return agentOpened{}, http.StatusBadRequest, err
	}
	if err := agentScenario(s); err != nil {
		return agentOpened{}, http.StatusBadRequest, err
	}
	a.mu.Lock()
	if a.sess != nil {
		id := a.sess.id
		a.mu.Unlock()
		return agentOpened{}, http.StatusConflict, fmt.Errorf("busy: session %s is running another share", id)
	}
	// Hold the place while the offset is measured.
	sess := &agentSession{id: strconv.FormatUint(a.seq.Add(1), 10) + "-" + strconv.FormatInt(time.Now().UnixNano()%1e9, 36)}
	sess.ctx, sess.cancel = context.WithCancel(context.Background())
	sess.mu.Lock()
	a.sess = sess
	a.mu.Unlock()
	a.sessions.Add(1)
	defer sess.mu.Unlock()
	fail := func(code int, err error) (agentOpened, int, error) {
		sess.ended = true
		sess.cancel()
		a.mu.Lock()
		a.sess = nil
		a.mu.Unlock()
		return agentOpened{}, code, err
	}

	// Open's own work ends with the session (Close) as with its request.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(sess.ctx, cancel)
	defer stop()
	r := &runner{s: s, opt: Options{Server: sh.Server}, started: time.Now(), poke: make(chan struct{}, 1),
		first: sh.First, local: sh.Clients, part: sh.Part, parts: sh.Parts}
	r.phase.Store(PhaseConnect)
	r.srv = &proc.Server{URL: sh.Server, Stop: func() error { return nil }}
	if err := r.trust(ctx); err != nil {
		return fail(http.StatusBadRequest, err)
	}
	if err := r.planLimits(false); err != nil {
		return fail(http.StatusBadRequest, err)
	}
	r.skew = a.cfg.ClockSkew
	var err error
	if r.off, err = r.measureClock(ctx); err != nil {
		return fail(http.StatusBadGateway, err)
	}
	if ctx.Err() != nil {
		// The coordinator gave up on this open (or the agent closes):
		// no session it does not know of may stay.
		return fail(http.StatusServiceUnavailable, ctx.Err())
	}
	r.startRecorder()
	sess.r = r
	sess.timer = time.AfterFunc(time.Duration(sh.BoundNs), func() {
		sess.cancel() // first, so that a request in progress returns
		sess.mu.Lock()
		defer sess.mu.Unlock()
		if !sess.ended {
			a.end(sess)
		}
	})
	host, _ := os.Hostname()
	return agentOpened{Session: sess.id, Offset: r.off, Host: host}, http.StatusOK, nil
}

// end stops session s's clients and returns its result (under s.mu).
func (a *Agent) end(s *agentSession) agentResult {
	s.ended = true
	s.timer.Stop()
	s.cancel()
	r := s.r
	stopErr := r.stopClients()
	lg := r.loadGen(s.snaps)
	if stopErr != nil {
		lg.StopErr = stopErr.Error()
	}
	res := agentResult{Offset: r.off}
	if len(lg.Hists) > 0 {
		h := results.NewHistogram()
		for _, x := range lg.Hists {
			if err := results.MergeInto(h, x); err != nil && lg.FailErr == "" {
				lg.FailErr = "merge the share's histograms: " + err.Error()
			}
		}
		res.Hist = h.Export()
	}
	lg.Hists, lg.Inputs = nil, nil // sent as res.Hist; broadcast has no inputs
	res.Load = lg
	a.mu.Lock()
	if a.sess == s {
		a.sess = nil
	}
	a.mu.Unlock()
	return res
}

// Close ends the session in progress, if any.
func (a *Agent) Close() error {
	a.mu.Lock()
	s := a.sess
	a.mu.Unlock()
	if s == nil {
		return nil
	}
	s.cancel()
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.ended && s.r != nil {
		a.end(s)
	}
	return nil
}

// agentScenario refuses what agents do not run: they run Go clients on
// the broadcast workload, straight to the server.
func agentScenario(s Scenario) error {
	switch {
	case s.Workload != WorkloadBroadcast:
		return fmt.Errorf("%w: agents run the broadcast workload (the %s workload's rooms and client ids are one process's)", ErrScenario, s.Workload)
	case s.Client != ClientGo:
		return fmt.Errorf("%w: agents run Go clients, not --client %s", ErrScenario, s.Client)
	case s.Network.Emulated():
		return fmt.Errorf("%w: agents reach the server over the real network: --network emulates one on this machine only", ErrScenario)
	}
	return nil
}

func strictJSON(body []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("bad JSON: %w", err)
	}
	return nil
}

func writeJSON(w http.ResponseWriter, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(append(b, '\n'))
}
