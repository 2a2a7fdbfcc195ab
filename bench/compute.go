package bench

import (
	"errors"
	"fmt"
	"math"
	"math/bits"
	"slices"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"

	"pushbench/clock"
	"pushbench/report"
	"pushbench/results"
	"pushbench/servers"
	"pushbench/transport"
	"pushbench/webhttp"
)

// The moments at which a run takes its snapshots.
const (
	markBefore    = iota // before the first client connected
	markIdleStart        // every client connected, nothing published
	markIdleEnd          // the idle interval later
	markStart            // half an event interval before the window starts
	markEnd              // half an event interval before the window ends
	markAfter            // after the drain, before the clients stop
	marks
)

// ServerMark is the server's /stats at one moment, with the harness's
// control-connection bytes (up, down) before the request and after its
// answer, so that its own traffic can be taken out of the listener's count.
type ServerMark struct {
	Stats        servers.Stats
	Ctrl0, Ctrl1 [2]uint64
}

// ClientMark is one load generator's counters and CPU time at one moment.
// Wall and Mono are the same moment on the wall clock (Unix ns) and on the
// monotonic clock (since the run started); a mark never taken has Wall 0.
type ClientMark struct {
	Wall   int64
	Mono   time.Duration
	Counts Counts
	CPU    time.Duration // the load generator's user+sys
	// MachineBusy and MachineTotal are the machine's CPU ticks
	// (/proc/stat): busy and in all.
	MachineBusy, MachineTotal uint64
	// EmulatorCPU is the network emulator process's user+sys so far (the
	// machine's, like the server: the same in every load generator's mark).
	EmulatorCPU time.Duration
	// BrowserCPU is every Chromium process's user+sys so far (browser
	// runs: the load generator's browsers).
	BrowserCPU time.Duration
}

func (m ClientMark) taken() bool { return m.Wall != 0 }

// LoadGen is what one load-generator process measured: its clients'
// counters at the marks, their delivery tallies and latency histograms,
// and its own CPU. Load generators that ran shares of one cell merge into
// one LoadGen (Merge) with the figures of a single one that ran them all.
type LoadGen struct {
	Clients int
	CPUs    int // CPUs the load generator may use (affinity ∩ GOMAXPROCS)
	Marks   [marks]ClientMark
	Final   Counts // the clients' counters when they stopped
	Tallies []Tally
	Latencies
	// Sends is the clients' upstream (chat messages, game inputs).
	Sends Sends
	// ReconnectGaps are the streams' reconnect gaps (ns): from a stream
	// seen ended to the subscriber's stream open again.
	ReconnectGaps []int64
	// ConnectLatencies are the clients' times from start to subscribed
	// (ns); FirstStart and LastStart the first and last client's start
	// (Unix ns), Started how many were started.
	ConnectLatencies      []int64
	FirstStart, LastStart int64
	Started               int
	// Browser is the browsers' side of a browser run (nil: Go clients).
	Browser *BrowserMeasure
	Failed  int64  // subscribers that gave up
	FailErr string // the first one's error
	StopErr string // subscribers did not stop when cancelled
}

// Measurement is everything a run measured, before any figure is
// computed from it: Compute turns it into the record, and Merge joins the
// load generators' shares of one cell.
type Measurement struct {
	Scenario    Scenario
	ServerURL   string    // --server, "" for a child
	Pinned      [2]string // server, client CPU lists
	SourceAddrs int
	StartedAt   time.Time
	FinishedAt  time.Time
	Env         results.Env // where the load generator ran

	Base       uint64 // first seq of the run
	ConstantLo uint64 // first in-window seq by the constant schedule (0: Poisson)
	Measured   bool   // the window's start snapshot was taken
	Partial    bool
	CutPhase   Phase
	// Died says how the server child died, when it did (during DiedPhase);
	// the record is then marked failed.
	Died      string
	DiedPhase Phase

	Probe probeResult // the round trip through the network emulator, measured before the run
	// Offset is the load generator's clock offset to a server on another
	// host, added to its receive stamps (Samples 0: the server is on its
	// loopback, one clock).
	Offset clock.Offset

	Publisher servers.PublisherStats // at the end of the run
	Server    [marks]ServerMark
	Connected servers.Stats // once every client was subscribed

	Load LoadGen

	// Agents are the load generators' parts of a run with agents (nil:
	// one load generator), each with its own row in the record; Load is
	// their merge. AgentFailure is the first agent's failure, during
	// AgentPhase: the record is then marked failed.
	Agents       []AgentPart
	AgentFailure string
	AgentPhase   Phase
}

// Merge joins load generators' measurements of one cell: the same server,
// window and scenario, each with its own share of the clients. Counters,
// CPU and tallies add up and the histograms are kept side by side, so
// Compute gives the figures a single load generator running every client
// would have given. The server side is taken from the first part.
func Merge(parts ...Measurement) (Measurement, error) {
	if len(parts) == 0 {
		return Measurement{}, errors.New("merge: nothing to merge")
	}
	m := parts[0]
	m.Load.Tallies = slices.Clone(m.Load.Tallies)
	m.Load.Hists = slices.Clone(m.Load.Hists)
	m.Load.Inputs = slices.Clone(m.Load.Inputs)
	for i, p := range parts[1:] {
		ps, ms := p.Scenario, m.Scenario
		ps.Clients, ms.Clients = 0, 0
		switch {
		case ps != ms:
			return Measurement{}, fmt.Errorf("merge: part %d measured another scenario", i+2)
		case p.Base != m.Base || p.Server[markStart].Stats.TimeNs != m.Server[markStart].Stats.TimeNs:
			return Measurement{}, fmt.Errorf("merge: part %d measured another run of the server", i+2)
		}
		m.Scenario.Clients += p.Scenario.Clients
		m.Partial = m.Partial || p.Partial
		m.Measured = m.Measured && p.Measured
		if m.CutPhase == "" {
			m.CutPhase = p.CutPhase
		}
		m.FinishedAt = later(m.FinishedAt, p.FinishedAt)
		if m.Died == "" {
			m.Died, m.DiedPhase = p.Died, p.DiedPhase
		}
		m.Load = m.Load.add(p.Load)
	}
	return m, nil
}

func (a LoadGen) add(b LoadGen) LoadGen {
	a.Clients += b.Clients
	a.CPUs += b.CPUs
	for i := range a.Marks {
		a.Marks[i].Counts = a.Marks[i].Counts.add(b.Marks[i].Counts)
		a.Marks[i].CPU += b.Marks[i].CPU
		// One part's clock pair, so that wall and monotonic time stay
		// of the same moment (the later one).
		if b.Marks[i].Wall > a.Marks[i].Wall {
			a.Marks[i].Wall, a.Marks[i].Mono = b.Marks[i].Wall, b.Marks[i].Mono
		}
		// The machine is one: its ticks are not added.
	}
	a.Final = a.Final.add(b.Final)
	a.ReconnectGaps = append(slices.Clip(a.ReconnectGaps), b.ReconnectGaps...)
	a.ConnectLatencies = append(slices.Clip(a.ConnectLatencies), b.ConnectLatencies...)
	if b.Started > 0 {
		if a.Started == 0 || b.FirstStart < a.FirstStart {
			a.FirstStart = b.FirstStart
		}
		a.LastStart = max(a.LastStart, b.LastStart)
		a.Started += b.Started
	}
	a.Tallies = append(a.Tallies, b.Tallies...)
	a.Hists = append(a.Hists, b.Hists...)
	a.OutOfRange += b.OutOfRange
	a.Inputs = append(a.Inputs, b.Inputs...)
	a.InputsOutOfRange += b.InputsOutOfRange
	a.InputsAcked += b.InputsAcked
	if sends, err := a.Sends.add(b.Sends); err == nil {
		a.Sends = sends
	} else if a.FailErr == "" {
		a.FailErr = err.Error() // named in the record, never dropped in silence
	}
	a.Failed += b.Failed
	if a.FailErr == "" {
		a.FailErr = b.FailErr
	}
	if a.StopErr == "" {
		a.StopErr = b.StopErr
	}
	return a
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// Compute turns a measurement into its record and merged latency
// histogram (nanoseconds). It reads nothing else: the same measurement
// always gives the same record.
func Compute(m Measurement) (*results.Record, *hdrhistogram.Histogram) {
	rec := &results.Record{
		Schema:     results.Schema,
		Scenario:   m.scenarioRecord(),
		Status:     results.StatusOK,
		Partial:    m.Partial,
		StartedAt:  m.StartedAt.UTC().Format(time.RFC3339),
		FinishedAt: m.FinishedAt.UTC().Format(time.RFC3339),
		Env:        m.Env,
		Checks:     map[string]results.Check{},
	}
	if m.Load.Browser != nil {
		m.serverCounts()
	}
	last := m.Publisher.LastSeq
	if !m.Measured {
		last = 0 // no window: nothing was expected
	}
	d := deliveries(m.Base, m.Load.Tallies, m.Load.Latencies, last, m.ConstantLo)
	if m.Scenario.Workload == WorkloadChat {
		d = m.chatDeliveries(d)
	}

	switch {
	case m.Died != "":
		rec.Status = results.StatusFailed
		rec.Error = fmt.Sprintf("%s during %s", m.Died, m.DiedPhase)
	case m.Partial:
		rec.Status = results.StatusPartial
	}
	rec.Latency = results.Summarise(d.hist)
	rec.Latency.OutOfRange = d.outOfRange
	rec.Events = inWindowEvents(d)
	rec.Expected = d.expected
	rec.Delivered = d.delivered
	rec.Lost = d.lost
	rec.Duplicates = d.duplicates
	rec.OutOfOrder = d.outOfOrder
	rec.Reconnects = m.Load.Final.Reconnects
	if len(m.Load.ReconnectGaps) > 0 {
		rec.ReconnectGap = summariseNs(m.Load.ReconnectGaps)
		if m.Load.Browser != nil {
			rec.Reconnects = uint64(len(m.Load.ReconnectGaps)) // the pages' count: no socket is visible
		}
	}
	p := m.Publisher
	rec.Publisher = results.Publisher{
		Published: p.Published,
		FirstSeq:  p.FirstSeq,
		LastSeq:   p.LastSeq,
		LagP50Ns:  int64(p.LagP50),
		LagP99Ns:  int64(p.LagP99),
		LagMaxNs:  int64(p.LagMax),
		Behind:    p.Behind,
	}
	if enc, err := results.EncodeHistogram(d.hist); err == nil {
		rec.Histogram = enc
	}

	if len(m.Load.ConnectLatencies) > 0 {
		rec.Conn.ConnectLatency = summariseNs(m.Load.ConnectLatencies)
	}
	if l := m.Load; l.Started > 1 && l.LastStart > l.FirstStart {
		rec.Conn.ConnectRate = float64(l.Started-1) / (float64(l.LastStart-l.FirstStart) / 1e9)
	}
	m.fillMemory(rec)
	m.fillIdle(rec)
	m.fillConn(rec)
	windowOK := m.Measured && m.Load.Marks[markEnd].taken() && (m.Server[markEnd].Stats.TimeNs != 0 || m.Died != "")
	if windowOK {
		m.fillWindow(rec, d)
	}
	m.fillUpstream(rec) // after fillWindow, which sets rec.Wire
	m.fillBrowser(rec, d, windowOK)
	m.fillChecks(rec, d, windowOK)
	if m.Load.StopErr != "" {
		rec.Checks["clients_stopped"] = results.Check{OK: false, Detail: m.Load.StopErr}
	}
	m.fillAgents(rec)
	keepFinite(rec)
	return rec, d.hist
}

// fillMemory computes memory per connection: every client connected
// against none, both after a GC; the same at the window's end under
// traffic; and the kernel's socket memory.
func (m *Measurement) fillMemory(rec *results.Record) {
	n := float64(m.Scenario.Clients)
	before := m.Server[markBefore].Stats
	if before.TimeNs == 0 || n == 0 {
		return
	}
	perConn := func(after, before uint64) float64 { return (float64(after) - float64(before)) / n }
	if all := m.Connected; all.TimeNs != 0 {
		rec.Server.RSSBytesPerConn = perConn(all.Process.RSSBytes, before.Process.RSSBytes)
		rec.Server.HeapBytesPerConn = perConn(all.Process.HeapInuse, before.Process.HeapInuse)
		rec.Server.GoroutinesPerConn = float64(all.Process.Goroutines-before.Process.Goroutines) / n
		rec.Server.KernelSocketBytesPerConn = (float64(all.Kernel.TCPMemBytes) - float64(before.Kernel.TCPMemBytes)) / n
	}
	if end := m.Server[markEnd].Stats; end.TimeNs != 0 {
		rec.Server.RSSBytesPerConnLoaded = perConn(end.Process.RSSBytes, before.Process.RSSBytes)
		rec.Server.HeapBytesPerConnLoaded = perConn(end.Process.HeapInuse, before.Process.HeapInuse)
	}
}

// fillIdle computes the idle cost: CPU per connection per second over the
// idle interval, on both sides.
func (m *Measurement) fillIdle(rec *results.Record) {
	c0, c1 := m.Load.Marks[markIdleStart], m.Load.Marks[markIdleEnd]
	s0, s1 := m.Server[markIdleStart].Stats, m.Server[markIdleEnd].Stats
	if !c0.taken() || !c1.taken() || s0.TimeNs == 0 || s1.TimeNs == 0 {
		return
	}
	connSec := float64(m.Scenario.Clients) * (c1.Mono - c0.Mono).Seconds()
	if connSec <= 0 {
		return
	}
	rec.Server.IdleCPUUsPerConnS = us(serverCPU(s0, s1)) / connSec
	rec.Client.IdleCPUUsPerConnS = us(c1.CPU-c0.CPU) / connSec
}

// chatDeliveries replaces the broadcast arithmetic of d for a chat. A
// room's messages are numbered in the order they reached the server, not in
// the order of their scheduled send times, so the window's messages are no
// seq range: each client set a bit for every distinct message it received
// that was scheduled in the window, and the senders know how many of those
// they handed over per room. Every member of a room, the sender included,
// expects all of its room's.
func (m *Measurement) chatDeliveries(d delivery) delivery {
	s, sends := m.Scenario, m.Load.Sends
	d.expected, d.delivered = 0, 0
	d.perClientMin, d.perClientMax = ^uint64(0), 0
	d.boundary = "chat: the senders' count of messages scheduled in the window"
	for room, n := range sends.InWindow {
		d.expected += n * uint64(s.RoomSize(room))
	}
	// Per client: one client's surplus (a message of another room, or
	// one its senders did not count) must not hide another's loss.
	var got, kept uint64
	for i, t := range m.Load.Tallies {
		var n uint64
		for _, w := range t.Bits {
			n += uint64(bits.OnesCount64(w))
		}
		var want uint64
		if room := s.RoomOf(i); room < len(sends.InWindow) {
			want = sends.InWindow[room]
		}
		got += n
		kept += min(n, want)
		d.surplus += n - min(n, want)
		d.perClientMin = min(d.perClientMin, n)
		d.perClientMax = max(d.perClientMax, n)
	}
	if len(m.Load.Tallies) == 0 {
		d.perClientMin = 0
	}
	d.delivered = got
	d.lo, d.hi = 1, sends.Sent // the messages, for inWindowEvents
	d.lost = d.expected - min(kept, d.expected)
	return d
}

// fillUpstream computes the client-originated figures: messages sent in
// the window, the upstream bytes and requests each cost, the senders'
// lateness and the game's input latency.
func (m *Measurement) fillUpstream(rec *results.Record) {
	s := m.Scenario
	if s.Workload != WorkloadChat && s.Workload != WorkloadGame {
		return
	}
	sends := m.Load.Sends
	rec.Sent, rec.SendErrors = sends.Sent, sends.Failed
	if sends.Lag != nil && sends.Lag.TotalCount() > 0 {
		rec.SendLagP50Ns, rec.SendLagP99Ns = sends.Lag.ValueAtQuantile(50), sends.Lag.ValueAtQuantile(99)
	}
	ws, we := m.Load.Marks[markStart], m.Load.Marks[markEnd]
	if ws.taken() && we.taken() {
		c := we.Counts.sub(ws.Counts)
		if c.Sent > 0 {
			rec.Wire.UpBytesPerMessage = float64(c.Up) / float64(c.Sent)
			rec.RequestsPerMessage = float64(c.SendRequests) / float64(c.Sent)
		}
	}
	if s.Workload == WorkloadGame {
		h := results.NewHistogram()
		for _, in := range m.Load.Inputs {
			_ = results.MergeInto(h, in)
		}
		if h.TotalCount() > 0 {
			l := results.Summarise(h)
			l.OutOfRange = m.Load.InputsOutOfRange
			rec.InputLatency = &l
		}
	}
}

// upstreamChecks checks the clients' upstream: every send in the window was
// accepted, and the senders kept their schedule.
func (m *Measurement) upstreamChecks(rec *results.Record, check func(string, bool, string, ...any)) {
	if w := m.Scenario.Workload; w != WorkloadChat && w != WorkloadGame {
		return
	}
	if s := m.Load.Sends; s.Late {
		check("senders_done", false, "a client had not sent every message scheduled in the window when the drain gave up on it: what it never sent is in no count")
	}
	if m.Scenario.Workload == WorkloadGame {
		check("inputs_acknowledged", m.Load.InputsAcked == rec.Sent,
			"%d of the %d inputs handed over in the window were acknowledged by a snapshot (each one's input latency is measured from that snapshot)",
			m.Load.InputsAcked, rec.Sent)
	}
	detail := fmt.Sprintf("%d of %d sends scheduled in the window failed (not connected, refused or cut)", rec.SendErrors, rec.Sent+rec.SendErrors)
	if e := m.Load.Sends.FirstErr; e != "" {
		detail += "; the run's first failure: " + e
	}
	check("sends_ok", rec.SendErrors == 0, "%s", detail)
	if rec.SendLagP99Ns > 0 {
		// The latency the lateness is part of: send → receive for a
		// chat, the input latency for a game.
		ref := rec.Latency.P50
		if rec.InputLatency != nil {
			ref = rec.InputLatency.P50
		}
		limit := max(minSendLag, int64(sendLagShareOfP50*float64(ref)))
		check("senders_on_schedule", rec.SendLagP99Ns <= limit,
			"the clients started their sends %s late at p50 and %s at p99 (limit %s: max(%s, %.0f%% of the cell's p50, of input latency for a game)); the lateness is in every latency",
			report.Duration(float64(rec.SendLagP50Ns)), report.Duration(float64(rec.SendLagP99Ns)), report.Duration(float64(limit)),
			report.Duration(float64(minSendLag)), sendLagShareOfP50*100)
	}
}

// fillConn computes the cost of connections and of idle requests: the
// connect phase per connection, the TLS handshakes over the whole run, and
// the bytes of each request made in the idle interval.
func (m *Measurement) fillConn(rec *results.Record) {
	n := float64(m.Scenario.Clients)
	c0, c1 := m.Load.Marks[markBefore], m.Load.Marks[markIdleStart]
	if c0.taken() && c1.taken() && n > 0 {
		d := c1.Counts.sub(c0.Counts)
		rec.Conn.ConnectUpBytesPerConn = float64(d.Up) / n
		rec.Conn.ConnectDownBytesPerConn = float64(d.Down) / n
		rec.Conn.ConnectClientCPUUsPerConn = us(c1.CPU-c0.CPU) / n
		if s0, s1 := m.Server[markBefore].Stats, m.Server[markIdleStart].Stats; s0.TimeNs != 0 && s1.TimeNs != 0 {
			rec.Conn.ConnectServerCPUUsPerConn = us(serverCPU(s0, s1)) / n
		}
	}
	f := m.Load.Final
	rec.Conn.TLSHandshakes, rec.Conn.TLSResumed, rec.Conn.TLSHandshakeFailures = f.Handshakes, f.Resumed, f.HandshakeFailures
	if f.Handshakes > 0 {
		h := float64(f.Handshakes)
		rec.Conn.TLSHandshakeUpBytes = float64(f.HandshakeUp) / h
		rec.Conn.TLSHandshakeDownBytes = float64(f.HandshakeDown) / h
		rec.Conn.TLSHandshakeUs = float64(f.HandshakeNs) / 1e3 / h
	}
	rec.Conn.HTTP2Responses = f.HTTP2
	i0, i1 := m.Load.Marks[markIdleStart], m.Load.Marks[markIdleEnd]
	if i0.taken() && i1.taken() {
		d := i1.Counts.sub(i0.Counts)
		rec.Conn.IdleRequests = d.Requests
		if d.Requests > 0 {
			rec.Conn.IdleUpBytesPerRequest = float64(d.Up) / float64(d.Requests)
			rec.Conn.IdleDownBytesPerRequest = float64(d.Down) / float64(d.Requests)
		}
	}
}

// httpChecks checks that the run spoke HTTP as the scenario asked: the
// server served what was asked of it (it may be one given by --server), no
// TLS handshake failed, and with HTTP/2 every request the server saw for
// the transport came over it.
func (m *Measurement) httpChecks(rec *results.Record, check func(string, bool, string, ...any)) {
	h := m.Scenario.HTTP
	if st := m.Server[markBefore].Stats; st.TimeNs != 0 {
		pad := st.Pad
		if pad == "" {
			pad = PadX
		}
		resp := st.ResponseHeaders
		if resp == "" {
			resp = webhttp.ResponseMinimal
		}
		want := m.Scenario.Pad
		if want == "" {
			want = PadX
		}
		ok := st.TLS == h.TLS && resp == h.ResponseProfile() && st.Compress == h.Compress && pad == want
		check("server_http", ok,
			"the server serves tls=%v, response headers %s, compress=%v, pad %s; the scenario asked for tls=%v, %s, compress=%v, pad %s",
			st.TLS, resp, st.Compress, pad, h.TLS, h.ResponseProfile(), h.Compress, want)
	}
	f := m.Load.Final
	if h.TLS && m.Load.Browser == nil { // a browser's handshakes are not visible
		check("tls_handshakes", f.HandshakeFailures == 0 && f.Handshakes >= uint64(m.Scenario.Clients),
			"%d TLS handshakes completed (%d resumed), %d failed, for %d clients",
			f.Handshakes, f.Resumed, f.HandshakeFailures, m.Scenario.Clients)
	}
	s0, s1 := m.Server[markBefore].Stats, m.Server[markAfter].Stats
	if s0.TimeNs != 0 && s1.TimeNs != 0 {
		t0, t1 := s0.Transports[m.Scenario.Transport], s1.Transports[m.Scenario.Transport]
		if w0, w1 := m.Server[markStart].Stats, m.Server[markEnd].Stats; w0.TimeNs != 0 && w1.TimeNs != 0 {
			rec.Conn.HTTP2Requests = w1.Transports[m.Scenario.Transport].HTTP2Requests - w0.Transports[m.Scenario.Transport].HTTP2Requests
		}
		if h.HTTP == webhttp.HTTP2 {
			reqs, h2 := t1.Requests-t0.Requests, t1.HTTP2Requests-t0.HTTP2Requests
			check("http2_used", reqs > 0 && h2 == reqs,
				"the server got %d of %d %s requests over HTTP/2 (whole run)", h2, reqs, m.Scenario.Transport)
		}
	}
}

// serverCPU is the server's user+sys between two snapshots, less the
// publisher thread's.
func serverCPU(a, b servers.Stats) time.Duration {
	cpu := time.Duration(b.Process.CPUUserNs+b.Process.CPUSysNs) - time.Duration(a.Process.CPUUserNs+a.Process.CPUSysNs)
	pub := max(0, time.Duration(b.Process.PublisherCPU-a.Process.PublisherCPU))
	return max(0, cpu-pub)
}

func (m *Measurement) scenarioRecord() results.Scenario {
	sc := m.Scenario.Record()
	sc.Server = m.ServerURL
	sc.ServerCPUs, sc.ClientCPUs = m.Pinned[0], m.Pinned[1]
	sc.SourceAddrs = m.SourceAddrs
	return sc
}

// fillWindow computes the figures that come from the two window snapshots.
func (m *Measurement) fillWindow(rec *results.Record, d delivery) {
	s := m.Scenario
	ws, we := m.Load.Marks[markStart], m.Load.Marks[markEnd]
	wall := we.Mono - ws.Mono
	// Deliveries are counted over the events' scheduled times, which span
	// the window's duration (or up to the interruption).
	span := s.Duration
	if m.Partial {
		span = wall
	}
	perEvent := func(v float64) float64 {
		if d.delivered == 0 {
			return 0
		}
		return v / float64(d.delivered)
	}
	c := we.Counts.sub(ws.Counts)
	clientSec := float64(s.Clients) * wall.Seconds()
	rec.Wire = results.Wire{
		DownBytes:         c.Down,
		UpBytes:           c.Up,
		DownBytesPerEvent: perEvent(float64(c.Down)),
		UpBytesPerEvent:   perEvent(float64(c.Up)),
	}
	if clientSec > 0 {
		rec.Wire.DownBytesPerClientSec = float64(c.Down) / clientSec
		rec.Wire.UpBytesPerClientSec = float64(c.Up) / clientSec
	}
	srvOK := m.Server[markEnd].Stats.TimeNs != 0 // not after the server died
	if srvOK {
		rec.Wire.ServerOutBytes, rec.Wire.ServerInBytes = serverBytes(m.Server[markStart], m.Server[markEnd])
	}

	rec.Requests = c.Requests
	rec.RequestsPerEvent = perEvent(float64(c.Requests))
	rec.EmptyResponses = c.Empty
	if c.Requests > 0 {
		rec.EmptyShare = float64(c.Empty) / float64(c.Requests)
	}

	// Server CPU over the window, less the publisher thread's (its spin
	// against late timer wake-ups is not the transport's cost). The server
	// reports the publisher thread's CPU live, so the two snapshots
	// bracket exactly the window's share.
	s0, s1 := m.Server[markStart].Stats, m.Server[markEnd].Stats
	if !srvOK {
		s1 = s0
	}
	p0, p1 := s0.Process, s1.Process
	srvCPU := time.Duration(p1.CPUUserNs+p1.CPUSysNs) - time.Duration(p0.CPUUserNs+p0.CPUSysNs)
	rec.Server.CPUUs = us(srvCPU)
	rec.Server.PublisherCPUUs = us(max(0, time.Duration(p1.PublisherCPU-p0.PublisherCPU)))
	rec.Server.CPUUsPerEvent = perEvent(us(serverCPU(s0, s1)))
	// Net of the idle cost of holding the connections for the window.
	idle := rec.Server.IdleCPUUsPerConnS * float64(s.Clients) * wall.Seconds()
	rec.Server.CPUUsPerEventNet = perEvent(max(0, us(serverCPU(s0, s1))-idle))
	if m.Scenario.Network.Emulated() && wall > 0 {
		cpu := max(0, we.EmulatorCPU-ws.EmulatorCPU)
		rec.Emulator = results.Emulator{CPUUs: us(cpu), CPUUtilisation: float64(cpu) / float64(wall)}
	}
	if busy, total := we.MachineBusy-ws.MachineBusy, we.MachineTotal-ws.MachineTotal; we.MachineBusy >= ws.MachineBusy && we.MachineTotal > ws.MachineTotal {
		rec.MachineCPUUtilisation = float64(busy) / float64(total)
	}
	t0 := m.Server[markStart].Stats.Transports[s.Transport]
	t1 := m.Server[markEnd].Stats.Transports[s.Transport]
	rec.Server.SlowDisconnects = t1.SlowDisconnects - t0.SlowDisconnects
	rec.Server.Stalls = t1.Stalls - t0.Stalls

	cliCPU := we.CPU - ws.CPU
	rec.Client.CPUUs = us(cliCPU)
	rec.Client.CPUUsPerEvent = perEvent(us(cliCPU))
	if cpus := m.Load.CPUs; wall > 0 && cpus > 0 {
		rec.Client.CPUUtilisation = float64(cliCPU) / (float64(wall) * float64(cpus))
	}
	if span > 0 {
		rec.DeliveriesPerS = float64(d.delivered) / span.Seconds()
	}
}

// fillChecks adds the self-checks.
func (m *Measurement) fillChecks(rec *results.Record, d delivery, windowOK bool) {
	check := func(name string, ok bool, format string, args ...any) {
		rec.Checks[name] = results.Check{OK: ok, Detail: fmt.Sprintf(format, args...)}
	}
	if m.Partial {
		check("complete", false, "interrupted during %s: the figures cover only what was measured", m.CutPhase)
	}
	if m.Died != "" {
		check("server_alive", false, "the server died during %s: %s", m.DiedPhase, m.Died)
	}
	if !m.Measured {
		return
	}

	m.publisherCheck(rec, check)

	if first, last := m.Load.Marks[markBefore], m.lastMark(); first.taken() && last.taken() {
		drift := (last.Wall - first.Wall) - int64(last.Mono-first.Mono)
		rec.ClockDriftNs = drift
		check("clock_stable", max(drift, -drift) < maxClockDrift,
			"the wall clock moved %s against the monotonic clock over %s of the run (limit: under ±%s; latency is the difference of wall-clock stamps taken in two processes)",
			report.Duration(float64(drift)), report.Duration(float64(last.Mono-first.Mono)), report.Duration(float64(maxClockDrift)))
	}

	if n := m.Scenario.Network; n.Emulated() && m.Probe.RTT > 0 {
		m.networkCheck(rec, check, windowOK)
	}

	if windowOK && rec.MachineCPUUtilisation > 0 {
		u := rec.MachineCPUUtilisation
		check("machine_cpu", u < maxMachineUtil,
			"the machine's CPUs were %.0f%% busy over the window, every process counted (limit: under %.0f%%; above it every latency includes queueing for a core)",
			u*100, maxMachineUtil*100)
	}

	if windowOK {
		u := rec.Client.CPUUtilisation
		check("client_cpu", u <= maxClientUtil,
			"load generator used %.0f%% of %d CPU(s) over the window (limit %.0f%%; above it the clients' own queueing inflates latency)",
			u*100, m.Load.CPUs, maxClientUtil*100)
	}

	if windowOK && transport.HasInterval(m.Scenario.Transport) {
		// A poll that overran its interval makes its client skip a tick:
		// the poll rate, and so bytes and requests per event, would then
		// be the load generator's (or a slow server's), not the scenario's.
		c := m.Load.Marks[markEnd].Counts.sub(m.Load.Marks[markStart].Counts)
		check("poll_schedule", float64(c.MissedTicks) <= math.Ceil(maxBehindShare*float64(c.Requests)),
			"%d of %d polls in the window came after a skipped tick (limit: %.0f%% of polls, rounded up)", c.MissedTicks, c.Requests, maxBehindShare*100)
	}

	m.httpChecks(rec, check)
	m.upstreamChecks(rec, check)
	if want := m.Scenario.ConnectRate; rec.Conn.ConnectRate > 0 && want > 0 {
		// Judged on the span the starts took against the rate's: within
		// 5%, or 2 ms, for a few clients whose span is a few ms and one
		// late timer wake-up would be several percent of it.
		got := rec.Conn.ConnectRate
		span := float64(m.Load.LastStart - m.Load.FirstStart)
		ideal := float64(m.Load.Started-1) / want * 1e9
		check("connect_rate", math.Abs(span-ideal) <= max(maxConnectRateOff*ideal, float64(connectRateSlack)),
			"the harness started its %d clients at %.0f/s, asked %.0f/s: over %s against %s (limit ±%.0f%% or %s; a slower start means the load generator fell behind)",
			m.Load.Started, got, want, report.Duration(span), report.Duration(ideal), maxConnectRateOff*100, report.Duration(float64(connectRateSlack)))
	}

	rangeOK := d.outOfRange == 0 && d.mergeErr == nil && m.Load.InputsOutOfRange == 0
	detail := fmt.Sprintf("%d latencies outside the histogram's 1 µs..1 h range (negative ones mean the wall clock stepped)", d.outOfRange)
	if n := m.Load.InputsOutOfRange; n > 0 {
		detail += fmt.Sprintf("; %d input latencies too", n)
	}
	if d.mergeErr != nil {
		detail += "; " + d.mergeErr.Error()
	}
	check("histogram_range", rangeOK, "%s", detail)

	if windowOK && m.Server[markAfter].Stats.TimeNs != 0 && m.Load.Browser == nil {
		// (A browser run's bytes are the listener's: nothing to compare.)
		// Whole run, from before the first client to after the drain:
		// both ends are quiet, so the counts should match (short polls
		// in flight at the last snapshot aside).
		c := m.Load.Marks[markAfter].Counts.sub(m.Load.Marks[markBefore].Counts)
		srvOut, srvIn := serverBytes(m.Server[markBefore], m.Server[markAfter])
		okDown, dDown := agree(c.Down, srvOut)
		okUp, dUp := agree(c.Up, srvIn)
		w := rec.Wire
		check("bytes_agree", okDown && okUp,
			"whole run: clients counted %d B down / %d B up, the server's listener %d B out / %d B in (harness control traffic removed): %+.2f%% / %+.2f%% (limit ±%.0f%% or %d B). Window: %d/%d B vs %d/%d B; these may differ by the traffic in flight at the window's edges, which the server counts when it writes and a client when it reads",
			c.Down, c.Up, srvOut, srvIn, dDown*100, dUp*100, bytesTolerance*100, bytesSlack,
			w.DownBytes, w.UpBytes, w.ServerOutBytes, w.ServerInBytes)
	}

	if m.Scenario.Workload == WorkloadChat {
		check("no_loss", d.lost == 0 && d.surplus == 0,
			"lost %d of %d expected deliveries (every member of a room expects each of the %d messages its room's senders handed over in the window; per client %d..%d delivered); %d deliveries beyond a client's room's messages (another room's, or uncounted); %d duplicates, %d out of order",
			d.lost, d.expected, inWindowEvents(d), d.perClientMin, d.perClientMax, d.surplus, d.duplicates, d.outOfOrder)
	} else {
		check("no_loss", d.lost == 0,
			"lost %d of %d expected deliveries (%d in-window events × %d clients; gap notices named %d events; per client %d..%d delivered; window start %s); %d duplicates, %d out of order",
			d.lost, d.expected, inWindowEvents(d), m.Scenario.Clients, d.gapEvents, d.perClientMin, d.perClientMax, d.boundary, d.duplicates, d.outOfOrder)
	}

	if n := m.Load.Failed; n > 0 {
		check("clients_alive", false, "%d clients gave up; first: %s", n, m.Load.FailErr)
	}
}

// networkCheck is network_applied: the round trip measured through the
// emulator matches the profile (its RTT plus the probe's bytes at the
// emulated bandwidths) within 10% or 1 ms, and the emulator stayed under
// 80% of a core over the window.
func (m *Measurement) networkCheck(rec *results.Record, check func(string, bool, string, ...any), windowOK bool) {
	n := m.Scenario.Network
	want := n.RTT
	if n.UpBps > 0 {
		want += time.Duration(float64(m.Probe.Up*8) / float64(n.UpBps) * float64(time.Second))
	}
	if n.DownBps > 0 {
		want += time.Duration(float64(m.Probe.Down*8) / float64(n.DownBps) * float64(time.Second))
	}
	rec.Scenario.Network.ProbeRTTNs, rec.Scenario.Network.ExpectedRTTNs = int64(m.Probe.RTT), int64(want)
	diff := m.Probe.RTT - want
	tol := max(want/10, time.Millisecond)
	ok := max(diff, -diff) <= tol
	detail := fmt.Sprintf("round trip through the emulator %s (median of %d), the profile gives %s (RTT %s + %d B up and %d B down at the emulated bandwidths); limit ±%s",
		report.Duration(float64(m.Probe.RTT)), ProbeRounds, report.Duration(float64(want)), report.Duration(float64(n.RTT)), m.Probe.Up, m.Probe.Down, report.Duration(float64(tol)))
	if windowOK {
		u := rec.Emulator.CPUUtilisation
		ok = ok && u <= maxEmulatorUtil
		detail += fmt.Sprintf("; the emulator used %.0f%% of a core over the window (limit %.0f%%)", u*100, maxEmulatorUtil*100)
	}
	check("network_applied", ok, "%s", detail)
}

// lastMark is the latest client mark that was taken.
func (m *Measurement) lastMark() ClientMark {
	for i := marks - 1; i >= 0; i-- {
		if m.Load.Marks[i].taken() {
			return m.Load.Marks[i]
		}
	}
	return ClientMark{}
}

// publisherCheck judges the publisher's lateness against the result it
// produced: an event is late when it was published more than
// max(100 µs, 5% of the cell's p50) after its schedule (a lateness the
// latency would show), and at most 1% of events (rounded up) may be. It
// needs the server's lag histogram; without one (an older server) it falls
// back to the server's own count of events more than 1 ms late.
func (m *Measurement) publisherCheck(rec *results.Record, check func(string, bool, string, ...any)) {
	p := &rec.Publisher
	threshold := max(minLateNs, int64(lateShareOfP50*float64(rec.Latency.P50)))
	allowed := math.Ceil(maxBehindShare * float64(p.Published))
	lagDetail := fmt.Sprintf("lag p50 %s p99 %s max %s", report.Duration(float64(p.LagP50Ns)),
		report.Duration(float64(p.LagP99Ns)), report.Duration(float64(p.LagMaxNs)))
	h, err := results.DecodeHistogram(m.Publisher.LagHistogram)
	if m.Publisher.LagHistogram == "" || err != nil {
		check("publisher_on_schedule", float64(p.Behind) <= allowed,
			"%s; %d of %d events more than 1 ms late (limit: %.0f%% of events, rounded up; the server sent no lag distribution to judge against the latency)",
			lagDetail, p.Behind, p.Published, maxBehindShare*100)
		return
	}
	p.LateThresholdNs = threshold
	p.Late = uint64(h.TotalCount()) - countAtMost(h, threshold)
	check("publisher_on_schedule", float64(p.Late) <= allowed,
		"%s; %d of %d events more than %s late, the limit being max(100 µs, 5%% of this cell's p50 %s) (at most %.0f%% of events, rounded up)",
		lagDetail, p.Late, p.Published, report.Duration(float64(threshold)), report.Duration(float64(rec.Latency.P50)), maxBehindShare*100)
}

// countAtMost counts the values of h that are at most v (to h's
// resolution: a bucket is counted whole when its highest equivalent value
// is at most v).
func countAtMost(h *hdrhistogram.Histogram, v int64) uint64 {
	var n uint64
	for _, b := range h.Distribution() {
		if b.To <= v {
			n += uint64(b.Count)
		}
	}
	return n
}

func inWindowEvents(d delivery) uint64 {
	if d.hi < d.lo {
		return 0
	}
	return d.hi - d.lo + 1
}

// agree compares a client-side byte count with the server's and returns
// whether they agree and the relative difference.
func agree(client, server uint64) (bool, float64) {
	diff := float64(client) - float64(server)
	rel := 0.0
	if server > 0 {
		rel = diff / float64(server)
	}
	abs := max(diff, -diff)
	return abs <= max(bytesSlack, bytesTolerance*float64(server)), rel
}

// serverBytes returns the bytes the server's listener wrote and read
// between the server-side moments of marks a and b, less the harness's own
// /stats and /control traffic. A /stats handler takes its snapshot after
// reading the request and before writing the answer, so that traffic is
// every response from a's answer up to (not including) b's, and every
// request after a's up to and including b's.
func serverBytes(a, b ServerMark) (out, in uint64) {
	out = b.Stats.Listener.BytesOut - a.Stats.Listener.BytesOut
	in = b.Stats.Listener.BytesIn - a.Stats.Listener.BytesIn
	ctrlOut := b.Ctrl0[1] - a.Ctrl0[1]
	ctrlIn := b.Ctrl1[0] - a.Ctrl1[0]
	return out - min(out, ctrlOut), in - min(in, ctrlIn)
}

// summariseNs summarises a list of durations (ns) as a latency
// distribution.
func summariseNs(vs []int64) *results.Latency {
	h := results.NewHistogram()
	var out uint64
	for _, v := range vs {
		if h.RecordValue(v) != nil {
			out++
		}
	}
	l := results.Summarise(h)
	l.OutOfRange = out
	return &l
}
