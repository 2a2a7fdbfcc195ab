package bench

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"

	"pushbench/clock"
	"pushbench/proc"
	"pushbench/webhttp"
)

// The coordinator's side of the agent protocol (agent.go): the agents of a
// run, each with its share, driven in step with the runner's phases.

// remoteAgent is one agent of a run.
type remoteAgent struct {
	addr    string // host:port, as given
	token   string
	hc      *http.Client
	first   int // global index of its first client
	part    int // its index among the load generators (start slots)
	clients int
	session string
	offset  clock.Offset
	host    string
	result  *agentResult
	err     string // why it failed, if it did
}

// agentSet is a run's agents (none: every client is local).
type agentSet struct {
	list  []*remoteAgent
	mu    sync.Mutex
	first string // the first failure: "agent ADDR: reason"
	ph    Phase  // during which phase
	downc chan struct{}
	// phaseOf is the run's phase now (for the failure's phase).
	phaseOf func() Phase
	stopH   context.CancelFunc // the heartbeat
	hbWG    sync.WaitGroup
}

// AgentPart is one load generator's share of a merged run: what Compute
// needs for its row (results.AgentRow).
type AgentPart struct {
	Name    string
	Host    string
	First   int
	Clients int
	// Offset is the part's clock offset to the server (Samples 0: not
	// measured, a local share against a server on loopback: 0).
	Offset clock.Offset
	// OffsetEnd is the offset measured again when the part finished
	// (Samples 0: not measured): how far the clocks moved over the run.
	OffsetEnd clock.Offset
	// ClockDrift is how far the part's wall clock moved against its
	// monotonic clock between its first and last mark, ns.
	ClockDrift int64
	Error      string
	Load       *LoadGen // nil: the part returned nothing
}

// Bounds of the agent protocol's requests.
const (
	agentCallTimeout = 10 * time.Second       // info, open, mark, window, abort
	agentHeartbeat   = 500 * time.Millisecond // how often a running agent is asked whether it lives
	agentSessionPad  = 2 * time.Minute        // a session's bound beyond the run's planned length
)

// ParseAgents splits --agents (host:port, comma-separated) and the lines
// of --agents-file (blank lines and # comments skipped) into addresses.
func ParseAgents(list string, file []byte) ([]string, error) {
	var out []string
	add := func(a, where string) error {
		a = strings.TrimSpace(a)
		if a == "" {
			return nil
		}
		if _, port, err := net.SplitHostPort(a); err != nil || port == "" {
			return fmt.Errorf("agent %q%s: want host:port", a, where)
		}
		for _, b := range out {
			if b == a {
				return fmt.Errorf("agent %s is listed twice", a)
			}
		}
		out = append(out, a)
		return nil
	}
	for _, a := range strings.Split(list, ",") {
		if err := add(a, ""); err != nil {
			return nil, err
		}
	}
	for i, line := range strings.Split(string(file), "\n") {
		line, _, _ = strings.Cut(line, "#")
		if err := add(line, fmt.Sprintf(" (agents file, line %d)", i+1)); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// Shares splits clients over a local share and n agents: local keeps its
// count, the agents split the rest evenly (the first ones one more).
func Shares(clients, local, n int) ([]int, error) {
	rest := clients - local
	switch {
	case local < 0 || local > clients:
		return nil, fmt.Errorf("%w: --local-share %d of %d clients", ErrScenario, local, clients)
	case n > 0 && rest < n:
		return nil, fmt.Errorf("%w: %d clients left for %d agents: give each at least one (fewer agents, or a smaller --local-share)", ErrScenario, rest, n)
	}
	out := make([]int, n)
	for i := range out {
		out[i] = rest / n
		if i < rest%n {
			out[i]++
		}
	}
	return out, nil
}

// CheckAgents asks every agent for its info before any load and refuses,
// with one line wrapping ErrScenario, an unknown or unreachable agent, a
// token it refuses, another pushbench version, a busy agent, or a share
// larger than its open-files ceiling.
func CheckAgents(ctx context.Context, addrs []string, token string, shares []int) error {
	errs := make([]error, len(addrs))
	var wg sync.WaitGroup
	for i, addr := range addrs {
		wg.Go(func() {
			a := newRemoteAgent(addr, token)
			defer a.hc.CloseIdleConnections()
			in, err := a.getInfo(ctx)
			if err != nil {
				errs[i] = err
				return
			}
			switch {
			case in.Version != proc.Version():
				errs[i] = fmt.Errorf("agent %s runs pushbench %s, this coordinator %s: run the same build on both", addr, in.Version, proc.Version())
			case in.Session != "":
				errs[i] = fmt.Errorf("agent %s is busy with session %s", addr, in.Session)
			case i < len(shares) && in.Ceiling > 0 && shares[i] > in.Ceiling:
				errs[i] = fmt.Errorf("agent %s: a share of %d clients is more than it can hold (at most %d, by its %s): add agents", addr, shares[i], in.Ceiling, in.CeilingBy)
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return fmt.Errorf("%w: %w", ErrScenario, err)
		}
	}
	return nil
}

func newRemoteAgent(addr, token string) *remoteAgent {
	return &remoteAgent{addr: addr, token: token,
		hc: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4, DisableCompression: true}}}
}

// call POSTs in to path (GET when in is nil) and decodes the answer into
// out; an error names the agent and carries its reason.
func (a *remoteAgent) call(ctx context.Context, path string, in, out any) error {
	method, body := http.MethodGet, io.Reader(nil)
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		method, body = http.MethodPost, bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://"+a.addr+path, body)
	if err != nil {
		return fmt.Errorf("agent %s: %w", a.addr, err)
	}
	if a.token != "" {
		req.Header.Set("Authorization", "Bearer "+a.token)
	}
	resp, err := a.hc.Do(req)
	if err != nil {
		switch {
		case errors.Is(ctx.Err(), context.DeadlineExceeded):
			return fmt.Errorf("agent %s: %s: no answer in time: %w", a.addr, path, ctx.Err())
		case ctx.Err() != nil:
			return fmt.Errorf("agent %s: %s: %w", a.addr, path, ctx.Err())
		}
		return fmt.Errorf("agent %s is unreachable: %w", a.addr, unwrapURL(err))
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 256<<20))
	if err != nil {
		return fmt.Errorf("agent %s: %s: %w", a.addr, path, err)
	}
	switch {
	case resp.StatusCode == http.StatusUnauthorized:
		return fmt.Errorf("agent %s refused the token (%s): give its --token with --agent-token", a.addr, resp.Status)
	case resp.StatusCode == http.StatusNotFound:
		return fmt.Errorf("agent %s: %s answers 404: is it a pushbench agent?", a.addr, path)
	case resp.StatusCode != http.StatusOK:
		return agentError{code: resp.StatusCode, msg: fmt.Sprintf("agent %s: %s", a.addr, strings.TrimSpace(string(b)))}
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("agent %s: %s: %w", a.addr, path, err)
		}
	}
	return nil
}

// agentError is an agent's answer other than 200, with its reason.
type agentError struct {
	code int
	msg  string
}

func (e agentError) Error() string { return e.msg }

func unwrapURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

func (a *remoteAgent) getInfo(ctx context.Context) (AgentInfo, error) {
	ctx, cancel := context.WithTimeout(ctx, agentCallTimeout)
	defer cancel()
	var in AgentInfo
	err := a.call(ctx, "/agent/info", nil, &in)
	return in, err
}

// planAgents checks the scenario and the agents and gives each its share;
// the rest (Options.LocalShare) stays with this process.
func (r *runner) planAgents(ctx context.Context) error {
	if err := agentScenario(r.s); err != nil {
		return err
	}
	shares, err := Shares(r.s.Clients, r.opt.LocalShare, len(r.opt.Agents))
	if err != nil {
		return err
	}
	if err := CheckAgents(ctx, r.opt.Agents, r.opt.AgentToken, shares); err != nil {
		return err
	}
	// The load generators with clients, in connect-slot order: this
	// process first when it keeps a share, then the agents.
	r.local, r.part, r.parts = r.opt.LocalShare, 0, len(r.opt.Agents)
	first, part := r.local, 0
	if r.local > 0 {
		part = 1
		r.parts++
	}
	for i, addr := range r.opt.Agents {
		a := newRemoteAgent(addr, r.opt.AgentToken)
		a.first, a.clients, a.part = first, shares[i], part+i
		first += shares[i]
		r.agents.list = append(r.agents.list, a)
	}
	r.agents.downc = make(chan struct{})
	r.agents.phaseOf = func() Phase { return r.phase.Load().(Phase) }
	return nil
}

// agentsCanReach refuses a server child on loopback when an agent is on
// another host: it could not reach it.
func (r *runner) agentsCanReach() error {
	u, err := url.Parse(r.srv.URL)
	if err != nil || !webhttp.IsLoopbackHost(u.Hostname()) {
		return nil
	}
	for _, a := range r.agents.list {
		host, _, _ := net.SplitHostPort(a.addr)
		if !webhttp.IsLoopbackHost(host) {
			return fmt.Errorf("%w: agent %s is not on loopback, so it cannot reach the server at %s: give --server-host IP (the server child listens there), or --server with a server the agents reach", ErrScenario, a.addr, r.srv.URL)
		}
	}
	return nil
}

// openAgents opens every agent's session (each measures its clock
// offset to the server) and starts the heartbeat that notices an agent's
// death.
func (r *runner) openAgents(ctx context.Context) error {
	if len(r.agents.list) == 0 {
		return nil
	}
	if err := r.agentsCanReach(); err != nil {
		return err
	}
	bound := r.connectBound() + confirmTimeout +
		r.s.Idle + r.s.Warmup + r.s.Duration + r.s.Drain + publisherSlack + agentSessionPad
	err := r.agents.each(ctx, func(ctx context.Context, a *remoteAgent) error {
		ctx, cancel := context.WithTimeout(ctx, agentCallTimeout+30*time.Second) // 64 clock exchanges over a WAN
		defer cancel()
		var op agentOpened
		err := a.call(ctx, "/agent/open", agentShare{Scenario: r.s, Server: r.srv.URL, First: a.first, Clients: a.clients,
			Part: a.part, Parts: r.parts, BoundNs: int64(bound)}, &op)
		a.session, a.offset, a.host = op.Session, op.Offset, op.Host
		return err
	})
	if ae := (agentError{}); errors.As(err, &ae) && ae.code < 500 {
		// The agent refused its share (its limits, the scenario): bad
		// input, before any load.
		return fmt.Errorf("%w: %w", ErrScenario, err)
	}
	if err != nil {
		return err
	}
	hctx, stop := context.WithCancel(context.Background())
	r.agents.stopH = stop
	for _, a := range r.agents.list {
		r.agents.hbWG.Go(func() { r.agents.heartbeat(hctx, a) })
	}
	return nil
}

// stopHeartbeat stops the heartbeat, if it runs, and waits for it.
func (s *agentSet) stopHeartbeat() {
	if s.stopH != nil {
		s.stopH()
		s.hbWG.Wait()
	}
}

// heartbeat asks a until hctx ends whether it still runs its session;
// the first time it does not (or cannot answer), a fails.
func (s *agentSet) heartbeat(hctx context.Context, a *remoteAgent) {
	t := time.NewTicker(agentHeartbeat)
	defer t.Stop()
	for {
		select {
		case <-hctx.Done():
			return
		case <-t.C:
		}
		in, err := a.getInfo(hctx)
		switch {
		case hctx.Err() != nil:
			return
		case err != nil:
			s.fail(a, err)
			return
		case in.Session != a.session:
			s.fail(a, fmt.Errorf("agent %s no longer runs its session (it was restarted, or its bound passed)", a.addr))
			return
		}
	}
}

// each runs f for every agent at once and returns the first failure (the
// agent is marked failed).
func (s *agentSet) each(ctx context.Context, f func(context.Context, *remoteAgent) error) error {
	errs := make([]error, len(s.list))
	var wg sync.WaitGroup
	for i, a := range s.list {
		if s.isFailed(a) {
			continue
		}
		wg.Go(func() {
			// A cancellation is the run's (Ctrl-C) or a sibling's failure,
			// not this agent's; anything else, a timeout included, is.
			if errs[i] = f(ctx, a); errs[i] != nil && !errors.Is(errs[i], context.Canceled) {
				s.fail(a, errs[i])
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// fail marks a failed (the first failure is the run's, during the phase
// the run is in).
func (s *agentSet) fail(a *remoteAgent, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if a.err == "" {
		a.err = err.Error()
	}
	if s.first == "" {
		s.first = err.Error()
		if !strings.HasPrefix(s.first, "agent ") {
			s.first = "agent " + a.addr + ": " + s.first
		}
		if s.phaseOf != nil {
			s.ph = s.phaseOf()
		}
		close(s.downc)
	}
}

// isFailed reports whether a has failed.
func (s *agentSet) isFailed(a *remoteAgent) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return a.err != ""
}

// failed is the first agent's failure ("" none).
func (s *agentSet) failed() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.first
}

// down is closed when an agent fails (nil without agents: never).
func (s *agentSet) down() <-chan struct{} { return s.downc }

// connectAll connects the local share and every agent's at once; the
// scenario's connect rate is theirs together. It ends at the first
// failure, an agent's (the heartbeat's included) or the local share's,
// and stops the others' connecting then.
func (r *runner) connectAll(ctx context.Context) error {
	if len(r.agents.list) == 0 {
		return r.connectClients(ctx)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-r.agents.down():
			cancel()
		case <-ctx.Done():
		}
	}()
	local := make(chan error, 1)
	go func() {
		err := r.connectClients(ctx)
		if err != nil {
			cancel()
		}
		local <- err
	}()
	err := r.agents.each(ctx, func(ctx context.Context, a *remoteAgent) error {
		ctx, done := context.WithTimeout(ctx, r.connectBound()+agentCallTimeout)
		defer done()
		var out struct{ Connected int64 }
		if err := a.call(ctx, "/agent/connect", agentRequest{Session: a.session, Base: r.base}, &out); err != nil {
			return err
		}
		r.connected.Add(out.Connected)
		return nil
	})
	lerr := <-local
	if failed := r.agents.failed(); failed != "" {
		return errors.New(failed)
	}
	return cmp.Or(lerr, err)
}

// markAsync has every agent take mark i now; the returned function
// waits for them.
func (s *agentSet) markAsync(ctx context.Context, i int) func() error {
	return s.async(ctx, func(ctx context.Context, a *remoteAgent) error {
		ctx, cancel := context.WithTimeout(ctx, agentCallTimeout)
		defer cancel()
		return a.call(ctx, "/agent/mark", agentRequest{Session: a.session, Mark: i}, nil)
	})
}

// async runs each(ctx, f) in the background; the returned function waits
// for it.
func (s *agentSet) async(ctx context.Context, f func(context.Context, *remoteAgent) error) func() error {
	if len(s.list) == 0 {
		return func() error { return nil }
	}
	done := make(chan error, 1)
	go func() { done <- s.each(ctx, f) }()
	return func() error { return <-done }
}

// mark is markAsync and its wait, after the run's context may have ended.
func (s *agentSet) mark(i int) {
	ctx, cancel := cleanupCtx()
	defer cancel()
	_ = s.markAsync(ctx, i)()
}

// setWindow fixes the window here and on every agent. An agent that
// cannot be told has failed (the run notices it at its next wait).
func (r *runner) setWindow(w window) {
	r.rec.setWindow(w)
	if len(r.agents.list) == 0 {
		return
	}
	ctx, cancel := cleanupCtx()
	defer cancel()
	_ = r.agents.each(ctx, func(ctx context.Context, a *remoteAgent) error {
		return a.call(ctx, "/agent/window", agentRequest{Session: a.session, Window: &wire{Start: w.start, End: w.end, Base: w.base}}, nil)
	})
}

// drain has every agent wait until its clients have event last (or
// deadline); the returned function waits for them.
func (s *agentSet) drain(ctx context.Context, last uint64, deadline time.Time) func() error {
	return s.async(ctx, func(ctx context.Context, a *remoteAgent) error {
		ctx, cancel := context.WithDeadline(ctx, deadline.Add(agentCallTimeout))
		defer cancel()
		return a.call(ctx, "/agent/drain", agentRequest{Session: a.session, Last: last, Within: int64(time.Until(deadline))}, nil)
	})
}

// collect stops every agent's clients and takes its result; an agent that
// cannot give one has failed.
func (s *agentSet) collect() {
	s.stopHeartbeat()
	ctx, cancel := context.WithTimeout(context.Background(), clientStopBound+agentCallTimeout)
	defer cancel()
	_ = s.each(ctx, func(ctx context.Context, a *remoteAgent) error {
		var res agentResult
		if err := a.call(ctx, "/agent/finish", agentRequest{Session: a.session}, &res); err != nil {
			return err
		}
		a.session = ""
		a.result = &res
		return nil
	})
}

// closeAgents ends every session still open (an error path, Ctrl-C): the
// agents stop their clients now rather than at their sessions' bounds.
func (r *runner) closeAgents() {
	s := &r.agents
	s.stopHeartbeat()
	ctx, cancel := cleanupCtx()
	defer cancel()
	var wg sync.WaitGroup
	for _, a := range s.list {
		if a.session == "" {
			continue
		}
		wg.Go(func() {
			_ = a.call(ctx, "/agent/abort", agentRequest{Session: a.session}, nil)
		})
	}
	wg.Wait()
	for _, a := range s.list {
		a.hc.CloseIdleConnections()
	}
}

// merge collects the agents' results and merges them with this process's
// share (m) into one measurement, keeping each part for its row. Marks
// are the coordinator's moments: an agent took its mark when asked, so
// its counters are of the same moment (within a request's round trip).
func (s *agentSet) merge(m Measurement, local int) Measurement {
	s.collect()
	parts := []Measurement{}
	rows := []AgentPart{}
	lm := m
	cpus := map[string]int{} // per host: load generators on one machine share its CPUs
	if local > 0 {
		lg := m.Load
		rows = append(rows, AgentPart{Name: "local", Host: m.Env.Hostname, Clients: local, Offset: m.Offset,
			Load: &lg, ClockDrift: clockDrift(lg.Marks)})
		cpus[m.Env.Hostname] = lg.CPUs
		parts = append(parts, lm)
	} else {
		// The coordinator ran no clients: its CPU is the control's, not
		// load generation's. Its marks keep the run's clock.
		for i := range lm.Load.Marks {
			lm.Load.Marks[i].CPU = 0
		}
		lm.Load.CPUs = 0
		parts = append(parts, lm)
	}
	for _, a := range s.list {
		row := AgentPart{Name: a.addr, Host: a.host, First: a.first, Clients: a.clients, Offset: a.offset}
		if res := a.result; res != nil {
			if err := res.holds(a.clients, m.Measured); err != nil {
				s.fail(a, fmt.Errorf("agent %s returned a result that does not hold its share: %w", a.addr, err))
			} else {
				lg := res.Load
				if h := res.Hist; h != nil {
					lg.Hists = []*hdrhistogram.Histogram{hdrhistogram.Import(h)}
				}
				row.ClockDrift = clockDrift(lg.Marks)
				row.OffsetEnd = res.OffsetEnd
				// The coordinator's moments: the agent took each mark
				// when asked.
				for i := range lg.Marks {
					if lg.Marks[i].taken() {
						lg.Marks[i].Wall, lg.Marks[i].Mono = m.Load.Marks[i].Wall, m.Load.Marks[i].Mono
					}
				}
				row.Load = &lg
				cpus[a.host] = max(cpus[a.host], lg.CPUs)
				p := m
				p.Scenario.Clients = a.clients
				p.Load = lg
				parts = append(parts, p)
			}
		}
		s.mu.Lock()
		row.Error = a.err
		s.mu.Unlock()
		rows = append(rows, row)
	}
	merged, err := Merge(parts...)
	if err != nil {
		// The parts are built from one measurement: this cannot happen.
		merged = m
		merged.Died = "merge: " + err.Error()
	}
	// Utilisation is of the CPUs the load generators had: one machine's
	// once, however many of them ran there.
	merged.Load.CPUs = 0
	for _, n := range cpus {
		merged.Load.CPUs += n
	}
	// The cell's clients are every share's: the server held them all (its
	// memory per connection divides by them), even when an agent's
	// figures are missing.
	merged.Scenario.Clients = m.Scenario.Clients // the local share
	for _, a := range s.list {
		merged.Scenario.Clients += a.clients
	}
	merged.Agents = rows
	s.mu.Lock()
	merged.AgentFailure, merged.AgentPhase = s.first, s.ph
	s.mu.Unlock()
	return merged
}

// holds checks that an agent's result is its share's: one tally per
// client, its marks of the window taken when the run measured one.
func (res *agentResult) holds(clients int, measured bool) error {
	switch {
	case res.Load.Clients != clients || len(res.Load.Tallies) != clients:
		return fmt.Errorf("%d clients and %d tallies, want %d", res.Load.Clients, len(res.Load.Tallies), clients)
	case measured && (!res.Load.Marks[markStart].taken() || !res.Load.Marks[markEnd].taken()):
		return errors.New("the window's marks are missing")
	case res.Hist == nil && res.Load.Marks[markEnd].Counts.Down > 0:
		return errors.New("bytes arrived but no histogram came back")
	}
	return nil
}

// clockDrift is how far a load generator's wall clock moved against its
// monotonic clock between its first and last mark (0: fewer than two).
func clockDrift(marks [marks]ClientMark) int64 {
	first, last := -1, -1
	for i, mk := range marks {
		if mk.taken() {
			if first < 0 {
				first = i
			}
			last = i
		}
	}
	if first < 0 || first == last {
		return 0
	}
	return (marks[last].Wall - marks[first].Wall) - int64(marks[last].Mono-marks[first].Mono)
}
