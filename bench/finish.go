package bench

import (
	"context"
	"fmt"
	"runtime"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"

	"pushbench/proc"
	"pushbench/results"
	"pushbench/servers"
)

// Thresholds of the self-checks.
const (
	// maxBehindShare: the publisher kept its schedule if at most 1% of
	// events (rounded up, so one in a short run) were published more than
	// 1 ms late (servers.PublisherStats.Behind). For long runs that is
	// "lag p99 ≤ 1 ms"; for short ones p99 is the maximum, and a single
	// hiccup would fail a p99 limit.
	maxBehindShare = 0.01
	// maxClientUtil: above 80% of the CPUs it may use, the load generator
	// is the bottleneck and its latencies include its own queueing.
	maxClientUtil = 0.8
	// Bytes counted by the clients and by the server's listener agree if
	// they differ by at most bytesTolerance of the server's count or
	// bytesSlack bytes, whichever is larger.
	bytesTolerance = 0.01
	bytesSlack     = 4096
	// An event is late, for publisher_on_schedule, when it was published
	// more than max(minLateNs, lateShareOfP50 × the cell's p50) after its
	// schedule.
	minLateNs      = int64(100 * time.Microsecond)
	lateShareOfP50 = 0.05
	// maxMachineUtil: above 90% busy, the machine's cores are a queue.
	maxMachineUtil = 0.9
	// maxClockDrift bounds the wall clock's drift against the monotonic
	// clock over a run.
	maxClockDrift = int64(100 * time.Microsecond)
	// maxEmulatorUtil: above 80% of a core, the network emulator may be
	// adding delay of its own.
	maxEmulatorUtil = 0.8
	// The clients' senders kept their schedule if their lateness p99 was
	// at most max(minSendLag, sendLagShareOfP50 × the cell's p50): timers
	// wake late, and the lateness is in every latency of the cell.
	minSendLag        = int64(2 * time.Millisecond)
	sendLagShareOfP50 = 0.1
	// maxConnectRateOff: the clients were started within 5% of the
	// asked connect rate.
	maxConnectRateOff = 0.05
	connectRateSlack  = 2 * time.Millisecond
)

// finish stops what still runs, gathers what was measured into a
// Measurement and computes the record from it.
func (r *runner) finish() (*results.Record, *hdrhistogram.Histogram, error) {
	s := r.s
	if r.partial {
		// Stop the load, then give in-flight events a short, bounded
		// chance to arrive. The clients' senders stop first: the server
		// ending a chat or game under them would refuse (or drop) the
		// messages still on their way, which would read as failures and
		// losses the run did not have.
		deadline := time.Now().Add(min(interruptedDrain, s.Drain))
		if r.send != nil {
			r.stopSenders()
			_ = r.waitSenders(context.Background(), time.Now().Add(clientStopBound))
			if s.Workload == WorkloadChat {
				heads := r.send.accepted()
				_ = r.waitCoveredBy(context.Background(), func(i int) uint64 { return heads[s.RoomOf(i)] }, deadline)
			}
		}
		r.stopPublisher()
		if last := r.finalPS.LastSeq; last >= r.base && s.Workload != WorkloadChat {
			_ = r.waitCovered(context.Background(), last, deadline)
		}
	}
	// The browsers' memory, when the window's end was not reached in
	// order (interrupted, the server died): read it now, before the pages
	// close.
	if r.br != nil && r.measured && r.br.m.PSSBytes == 0 && r.br.m.MemoryError == "" {
		r.browserMemory()
	}
	// A quiet point for comparing whole-run byte counts: every client has
	// its events (or the drain gave up), nothing is being pushed.
	if r.measured {
		r.sEnd, _ = r.snapCleanup(markAfter)
	}
	r.setPhase(PhaseDone)
	stopErr := r.stopClients()

	m := r.measurement()
	if stopErr != nil {
		m.Load.StopErr = stopErr.Error()
	}
	if len(r.agents.list) > 0 {
		m = r.agents.merge(m, r.local)
	}
	rec, hist := Compute(m)
	switch {
	case m.AgentFailure != "":
		return rec, hist, fmt.Errorf("%s during %s; the record keeps what the other load generators measured", m.AgentFailure, m.AgentPhase)
	case r.died != "":
		return rec, hist, fmt.Errorf("%s during %s, with %d of %d clients connected; the record keeps what was measured until then",
			r.died, r.diedPhase, r.connected.Load(), s.Clients)
	case r.partial:
		return rec, hist, fmt.Errorf("interrupted during %s; partial result: %w", r.cutPhase, context.Canceled)
	}
	return rec, hist, nil
}

// measurement gathers what the run measured. Call it after the clients
// have stopped: it takes over the recorder's tallies.
func (r *runner) measurement() Measurement {
	s := r.s
	m := Measurement{
		Scenario:    s,
		ServerURL:   r.opt.Server,
		Pinned:      r.pinned,
		SourceAddrs: max(1, len(r.lim.SourceAddrs)),
		StartedAt:   r.started,
		FinishedAt:  time.Now(),
		Base:        r.base,
		Measured:    r.measured,
		Partial:     r.partial,
		CutPhase:    r.cutPhase,
		Publisher:   r.finalPS,
		Connected:   r.s1,
		Env:         proc.Environment(),
		Probe:       r.probe,
		Offset:      r.off,
	}
	if s.Schedule == servers.ScheduleConstant {
		m.ConstantLo = r.base + constantEvents(s.Rate, s.Warmup)
	}
	if r.died != "" {
		m.Died = r.died
		m.DiedPhase = r.diedPhase
		if m.Publisher.LastSeq == 0 {
			// The server's last word is lost: the window ends at the
			// newest event any client received.
			_, m.Publisher.LastSeq = r.rec.progress()
		}
	}
	snaps := [marks]snap{r.s0, r.i0, r.i1, r.ws, r.we, r.sEnd}
	for i, sn := range snaps {
		m.Server[i] = ServerMark{Stats: sn.srv, Ctrl0: sn.ctrl0, Ctrl1: sn.ctrl1}
	}
	m.Load = r.loadGen(snaps)
	m.Scenario.Clients = r.local
	m.Load.Browser = r.browserMeasurement()
	if r.send != nil {
		m.Load.Sends = r.send.collect(r.win.start, r.win.end)
		m.Load.Sends.Late = r.sendersLate
	}
	return m
}

// loadGen is what this process's clients measured, with its marks taken
// from snaps. Call it after the clients have stopped: it takes over the
// recorder's tallies.
func (r *runner) loadGen(snaps [marks]snap) LoadGen {
	lg := LoadGen{Clients: r.local, CPUs: r.clientCPUs(), Final: r.rec.snapshot(), Failed: r.failed.Load()}
	for i, sn := range snaps {
		lg.Marks[i] = ClientMark{Counts: sn.c, CPU: sn.cpu, MachineBusy: sn.machine[0], MachineTotal: sn.machine[1],
			EmulatorCPU: sn.emCPU, BrowserCPU: sn.brCPU}
		if !sn.at.IsZero() {
			lg.Marks[i].Wall = sn.at.UnixNano() + r.shift() // on the server's clock
			lg.Marks[i].Mono = sn.at.Sub(r.started)         // monotonic: both carry a reading
		}
	}
	if r.failErr != nil {
		lg.FailErr = r.failErr.Error()
	}
	lg.Tallies, lg.Latencies = r.rec.collect()
	r.gapMu.Lock()
	lg.ReconnectGaps = append([]int64(nil), r.gaps...)
	lg.ConnectLatencies = append([]int64(nil), r.connLat...)
	lg.FirstStart, lg.LastStart, lg.Started = r.firstStart, r.lastStart, r.nStarted
	if lg.Started > 0 {
		// On the server's clock, like the receive stamps, so that the
		// starts of several load generators compare.
		lg.FirstStart += r.shift()
		lg.LastStart += r.shift()
	}
	r.gapMu.Unlock()
	return lg
}

// clientCPUs is how many CPUs the load generator can use: its affinity set
// (after pinning) capped by GOMAXPROCS.
func (r *runner) clientCPUs() int {
	n := runtime.GOMAXPROCS(0)
	if a := proc.AffinityCount(); a > 0 {
		n = min(n, a)
	}
	return n
}

func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
