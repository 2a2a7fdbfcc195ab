package bench

import (
	"context"
	"fmt"
	"math"
	"runtime"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"

	"pushbench/proc"
	"pushbench/results"
	"pushbench/servers"
	"pushbench/transport"
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
)

// finish stops what still runs and turns the measurements into the record.
func (r *runner) finish() (*results.Record, *hdrhistogram.Histogram, error) {
	s := r.s
	if r.partial {
		// Stop the load, then give in-flight events a short, bounded
		// chance to arrive.
		r.stopPublisher()
		if last := r.finalPS.LastSeq; last >= r.base {
			_, _ = r.waitCovered(context.Background(), last, time.Now().Add(min(interruptedDrain, s.Drain)))
		}
	}
	// A quiet point for comparing whole-run byte counts: every client has
	// its events (or the drain gave up), nothing is being pushed.
	if r.measured {
		r.sEnd, _ = r.snapCleanup()
	}
	r.setPhase(PhaseDone)
	stopErr := r.stopClients()

	rec := &results.Record{
		Schema:     results.Schema,
		Scenario:   r.scenarioRecord(),
		Partial:    r.partial,
		Env:        proc.Environment(),
		StartedAt:  r.started.UTC().Format(time.RFC3339),
		FinishedAt: time.Now().UTC().Format(time.RFC3339),
		Checks:     map[string]results.Check{},
	}

	var constantLo uint64
	if s.Schedule == servers.ScheduleConstant {
		constantLo = r.base + constantEvents(s.Rate, s.Warmup)
	}
	last := r.finalPS.LastSeq
	if !r.measured {
		last = 0 // no window: nothing was expected
	}
	d := r.rec.finish(last, constantLo)

	rec.Latency = results.Summarise(d.hist)
	rec.Latency.OutOfRange = d.outOfRange
	rec.Expected = d.expected
	rec.Delivered = d.delivered
	rec.Lost = d.lost
	rec.Duplicates = d.duplicates
	rec.OutOfOrder = d.outOfOrder
	final := r.rec.snapshot()
	rec.Reconnects = final.reconnects
	rec.Publisher = results.Publisher{
		Published: r.finalPS.Published,
		FirstSeq:  r.finalPS.FirstSeq,
		LastSeq:   r.finalPS.LastSeq,
		LagP50Ns:  int64(r.finalPS.LagP50),
		LagP99Ns:  int64(r.finalPS.LagP99),
		LagMaxNs:  int64(r.finalPS.LagMax),
		Behind:    r.finalPS.Behind,
	}
	if enc, err := results.EncodeHistogram(d.hist); err == nil {
		rec.Histogram = enc
	}

	// Memory per connection: all clients connected against none.
	if n := float64(s.Clients); r.s1.TimeNs != 0 {
		rec.Server.RSSBytesPerConn = (float64(r.s1.Process.RSSBytes) - float64(r.s0.srv.Process.RSSBytes)) / n
		rec.Server.HeapBytesPerConn = (float64(r.s1.Process.HeapInuse) - float64(r.s0.srv.Process.HeapInuse)) / n
		rec.Server.GoroutinesPerConn = float64(r.s1.Process.Goroutines-r.s0.srv.Process.Goroutines) / n
	}

	windowOK := r.measured && !r.we.at.IsZero() && r.we.srv.TimeNs != 0
	if windowOK {
		r.fillWindow(rec, d)
	}
	r.fillChecks(rec, d, windowOK)

	if stopErr != nil {
		rec.Checks["clients_stopped"] = results.Check{OK: false, Detail: stopErr.Error()}
	}
	if r.partial {
		return rec, d.hist, fmt.Errorf("interrupted during %s; partial result: %w", r.cutPhase, context.Canceled)
	}
	return rec, d.hist, nil
}

func (r *runner) scenarioRecord() results.Scenario {
	s := r.s
	sc := results.Scenario{
		Transport:   s.Transport,
		Clients:     s.Clients,
		Rate:        s.Rate,
		Payload:     s.Payload,
		DurationNs:  int64(s.Duration),
		WarmupNs:    int64(s.Warmup),
		HoldNs:      int64(s.Hold),
		ConnectRate: s.ConnectRate,
		DrainNs:     int64(s.Drain),
		Schedule:    s.Schedule,
		Ring:        s.Ring,
		Server:      r.opt.Server,
		ServerCPUs:  r.pinned[0],
		ClientCPUs:  r.pinned[1],
		SourceAddrs: max(1, len(r.lim.SourceAddrs)),
	}
	if s.Transport == transport.ShortPoll {
		sc.IntervalNs = int64(s.Interval)
	}
	return sc
}

// fillWindow computes the figures that come from the two window snapshots.
func (r *runner) fillWindow(rec *results.Record, d delivery) {
	s := r.s
	ws, we := r.ws, r.we
	wall := we.at.Sub(ws.at)
	// Deliveries are counted over the events' scheduled times, which span
	// the window's duration (or up to the interruption).
	span := s.Duration
	if r.partial {
		span = wall
	}
	perEvent := func(v float64) float64 {
		if d.delivered == 0 {
			return 0
		}
		return v / float64(d.delivered)
	}
	c := we.c.sub(ws.c)
	clientSec := float64(s.Clients) * wall.Seconds()
	rec.Wire = results.Wire{
		DownBytes:         c.down,
		UpBytes:           c.up,
		DownBytesPerEvent: perEvent(float64(c.down)),
		UpBytesPerEvent:   perEvent(float64(c.up)),
	}
	if clientSec > 0 {
		rec.Wire.DownBytesPerClientSec = float64(c.down) / clientSec
		rec.Wire.UpBytesPerClientSec = float64(c.up) / clientSec
	}
	rec.Wire.ServerOutBytes, rec.Wire.ServerInBytes = serverBytes(ws, we)

	rec.Requests = c.requests
	rec.RequestsPerEvent = perEvent(float64(c.requests))
	rec.EmptyResponses = c.empty
	if c.requests > 0 {
		rec.EmptyShare = float64(c.empty) / float64(c.requests)
	}

	// Server CPU over the window, less the publisher thread's (its spin
	// against late timer wake-ups is not the transport's cost). The server
	// reports the publisher thread's CPU live, so the two snapshots
	// bracket exactly the window's share.
	srvCPU := time.Duration(we.srv.Process.CPUUserNs+we.srv.Process.CPUSysNs) -
		time.Duration(ws.srv.Process.CPUUserNs+ws.srv.Process.CPUSysNs)
	pubCPU := max(0, time.Duration(we.srv.Process.PublisherCPU-ws.srv.Process.PublisherCPU))
	rec.Server.CPUUs = us(srvCPU)
	rec.Server.PublisherCPUUs = us(pubCPU)
	rec.Server.CPUUsPerEvent = perEvent(us(max(0, srvCPU-pubCPU)))
	t0, t1 := ws.srv.Transports[s.Transport], we.srv.Transports[s.Transport]
	rec.Server.SlowDisconnects = t1.SlowDisconnects - t0.SlowDisconnects
	rec.Server.Stalls = t1.Stalls - t0.Stalls

	cliCPU := we.cpu - ws.cpu
	rec.Client.CPUUs = us(cliCPU)
	rec.Client.CPUUsPerEvent = perEvent(us(cliCPU))
	if cpus := r.clientCPUs(); wall > 0 && cpus > 0 {
		rec.Client.CPUUtilisation = float64(cliCPU) / (float64(wall) * float64(cpus))
	}
	if span > 0 {
		rec.DeliveriesPerS = float64(d.delivered) / span.Seconds()
	}
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

// fillChecks adds the self-checks.
func (r *runner) fillChecks(rec *results.Record, d delivery, windowOK bool) {
	check := func(name string, ok bool, format string, args ...any) {
		rec.Checks[name] = results.Check{OK: ok, Detail: fmt.Sprintf(format, args...)}
	}
	if r.partial {
		check("complete", false, "interrupted during %s: the figures cover only what was measured", r.cutPhase)
	}
	if !r.measured {
		return
	}

	p := rec.Publisher
	behindOK := float64(p.Behind) <= math.Ceil(maxBehindShare*float64(p.Published))
	check("publisher_on_schedule", behindOK,
		"lag p50 %s p99 %s max %s; %d of %d events more than 1 ms late (limit: %.0f%% of events, rounded up)",
		fmtNs(p.LagP50Ns), fmtNs(p.LagP99Ns), fmtNs(p.LagMaxNs), p.Behind, p.Published, maxBehindShare*100)

	if windowOK {
		u := rec.Client.CPUUtilisation
		check("client_cpu", u <= maxClientUtil,
			"load generator used %.0f%% of %d CPU(s) over the window (limit %.0f%%; above it the clients' own queueing inflates latency)",
			u*100, r.clientCPUs(), maxClientUtil*100)
	}

	if windowOK && r.s.Transport == transport.ShortPoll {
		// A poll that overran its interval makes its client skip a tick:
		// the poll rate, and so bytes and requests per event, would then
		// be the load generator's (or a slow server's), not the scenario's.
		c := r.we.c.sub(r.ws.c)
		check("poll_schedule", float64(c.missedTicks) <= math.Ceil(maxBehindShare*float64(c.requests)),
			"%d of %d polls in the window came after a skipped tick (limit: %.0f%% of polls, rounded up)", c.missedTicks, c.requests, maxBehindShare*100)
	}

	rangeOK := d.outOfRange == 0 && d.mergeErr == nil
	detail := fmt.Sprintf("%d latencies outside the histogram's 1 µs..1 h range (negative ones mean the wall clock stepped)", d.outOfRange)
	if d.mergeErr != nil {
		detail += "; " + d.mergeErr.Error()
	}
	check("histogram_range", rangeOK, "%s", detail)

	if windowOK && r.sEnd.srv.TimeNs != 0 {
		// Whole run, from before the first client to after the drain:
		// both ends are quiet, so the counts should match (short polls
		// in flight at the last snapshot aside).
		c := r.sEnd.c.sub(r.s0.c)
		srvOut, srvIn := serverBytes(r.s0, r.sEnd)
		okDown, dDown := agree(c.down, srvOut)
		okUp, dUp := agree(c.up, srvIn)
		w := rec.Wire
		check("bytes_agree", okDown && okUp,
			"whole run: clients counted %d B down / %d B up, the server's listener %d B out / %d B in (harness control traffic removed): %+.2f%% / %+.2f%% (limit ±%.0f%% or %d B). Window: %d/%d B vs %d/%d B; these may differ by the traffic in flight at the window's edges, which the server counts when it writes and a client when it reads",
			c.down, c.up, srvOut, srvIn, dDown*100, dUp*100, bytesTolerance*100, bytesSlack,
			w.DownBytes, w.UpBytes, w.ServerOutBytes, w.ServerInBytes)
	}

	check("no_loss", d.lost == 0,
		"lost %d of %d expected deliveries (%d in-window events × %d clients; gap notices named %d events; per client %d..%d delivered; window start %s); %d duplicates, %d out of order",
		d.lost, d.expected, inWindowEvents(d), r.s.Clients, d.gapEvents, d.perClientMin, d.perClientMax, d.boundary, d.duplicates, d.outOfOrder)

	if n := r.failed.Load(); n > 0 {
		check("clients_alive", false, "%d clients gave up; first: %v", n, r.failErr)
	}
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
// between the server-side moments of snapshots a and b, less the harness's
// own /stats and /control traffic. A /stats handler takes its snapshot
// after reading the request and before writing the answer, so that traffic
// is every response from a's answer up to (not including) b's, and every
// request after a's up to and including b's.
func serverBytes(a, b snap) (out, in uint64) {
	out = b.srv.Listener.BytesOut - a.srv.Listener.BytesOut
	in = b.srv.Listener.BytesIn - a.srv.Listener.BytesIn
	ctrlOut := b.ctrl0[1] - a.ctrl0[1]
	ctrlIn := b.ctrl1[0] - a.ctrl1[0]
	return out - min(out, ctrlOut), in - min(in, ctrlIn)
}
