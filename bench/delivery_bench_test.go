package bench

// BenchmarkDelivery: the cost of delivering one event to N subscribers of
// each transport, in `go test -bench` form. Identifiers in this file start
// with "ed" (event delivery) to stay clear of the harness's own.

import (
	"bytes"
	"context"
	"crypto/x509"
	"flag"
	"fmt"
	"log"
	"math/rand/v2"
	"runtime"
	"runtime/pprof"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"

	"pushbench/clients"
	"pushbench/event"
	"pushbench/netem"
	"pushbench/results"
	"pushbench/servers"
	"pushbench/transport"
	"pushbench/webhttp"
)

var edLarge = flag.Bool("pushbench.large", false,
	"BenchmarkDelivery: add clients=1000 (short polling at interval=100ms there)")

// edNetworks is what BenchmarkDelivery runs on: loopback, then the profiles
// -pushbench.networks adds.
var edNetworks, _ = edParseNetworks("")

func init() {
	flag.Func("pushbench.networks",
		"BenchmarkDelivery: comma-separated network `profiles` to run on besides loopback, each through an "+
			"emulator in this process: "+strings.Join(netem.Names(), ", ")+" (docs/network.md)",
		func(s string) (err error) {
			edNetworks, err = edParseNetworks(s)
			return err
		})
}

// edParseNetworks parses -pushbench.networks: profile names, comma-separated
// (spaces and empty items ignored, loopback implied). It returns loopback
// and then the named profiles in netem's table order, each once, so that the
// order of the sub-benchmarks does not depend on how the list was written.
func edParseNetworks(s string) ([]netem.Profile, error) {
	want := map[string]bool{}
	for _, name := range strings.Split(s, ",") {
		if name = strings.TrimSpace(name); name == "" {
			continue
		}
		if _, err := netem.Lookup(name); err != nil {
			return nil, err
		}
		want[name] = true
	}
	var ps []netem.Profile
	for _, p := range netem.Profiles() {
		if p.Name == netem.Loopback || want[p.Name] {
			ps = append(ps, p)
		}
	}
	return ps, nil
}

// edOpTimeout bounds the wait for one event to reach every client (plus the
// poll interval), and the wait for held polls before it, so that a broken
// transport fails the benchmark instead of hanging it. edSetupTimeout bounds
// connecting and tearing down. On an emulated network both grow with the
// profile (edCase.opTimeout, edCase.setupTimeout).
const (
	edOpTimeout    = 10 * time.Second
	edSetupTimeout = 30 * time.Second
	edWarmup       = 5 // events delivered before the measurement, not recorded
)

// edPhaseSeed seeds the PCG that draws short polling's publish phases, so
// that every run draws the same sequence of delays.
const edPhaseSeed1, edPhaseSeed2 = 0x9e3779b97f4a7c15, 0xbf58476d1ce4e5b9

// BenchmarkDelivery measures delivery over real loopback connections:
// an in-process server (servers.New, Listen on 127.0.0.1:0, Serve) and N
// real subscribers (clients.New), all in this process.
//
// The network between them is a dimension of its own, named right after
// the transport (transport=ws/network=lan/clients=10/payload=256) so that
// `benchstat -col /transport` compares the transports on each network's
// rows. By default there is only network=loopback: the clients dial the
// server directly. -pushbench.networks=lan,4g (netem profile names,
// comma-separated; docs/network.md; an unknown name is a flag error) adds
// those networks: for each, a netem emulator (netem.New, on 127.0.0.1:0)
// sits in front of the server and delays and throttles each direction of
// every connection per the profile. The clients dial the emulator; the
// benchmark publishes into the hub and reads the server's Stats directly.
// Unlike `pushbench run`, where the emulator is a child process of its own
// whose CPU is measured apart, here it runs in this process: its CPU and
// allocations are in B/op and allocs/op, and it competes with the server
// and the clients for the CPUs (its timers fire late when it lacks one,
// which shows as latency). Every latency then includes the profile's
// delay and serialisation time: at least the downstream half of the RTT
// for a pushed event or a held poll woken, a whole RTT for a short poll.
// The per-op and set-up timeouts grow by 3 × (RTT + jitter), and the per-op
// one also by payload × clients × 8 / downstream bits per second (more
// than needed: each connection has its own bandwidth). The emulator is
// closed at the end of the sub-benchmark, after the clients and before the
// server.
//
// One op is one event: the benchmark loop builds it as the publisher does
// (scheduled time t = now), publishes it into the hub directly, and waits
// until every client has parsed it. This is closed loop — one event in
// flight at a time, the next one published only after the last client has
// the previous one — so it measures what one event costs, not behaviour
// under an open-loop rate (that is `pushbench run`). Connecting the clients
// and a few warm-up events are not measured.
//
// Polling transports first wait, before each publish, so that the event
// meets the clients in the state steady polling would. The wait depends on
// the transport's kind in the registry (transport.Lookup), not its name:
//
//   - Stream (sse, ws, tcp): no wait; the event goes into N open streams.
//   - Held poll (Kind Poll, not Interval: longpoll): wait until every
//     client's next poll is held at the server — the clients have written
//     their next requests (Counters.Requests) and the server's
//     Stats().Transports[name].Active is N — or fail after the op timeout.
//     The event then wakes N held polls. Without the wait it could meet a
//     client's next request before the server held it, which would find
//     the event waiting and be answered at once: a fresh poll, not a held
//     one woken.
//   - Interval poll (shortpoll-T): the clients' grids are spread evenly
//     over T (clients.Config.PollOrigin, as `pushbench run` does), and the
//     wait is a uniformly random delay in [0, T) from a PCG with a fixed
//     seed (the draws repeat from run to run; where they fall on the grids
//     depends on timing). Each event thus lands at a uniformly random phase
//     of every client's grid, and a delivery's latency is the wait for that
//     client's next poll, uniform on (0, T], plus how late its timer fires
//     and the poll's round trip: p50 ≈ T/2 plus those. Without the delay
//     every event was published just after a poll answered, and every
//     latency was ≈ T.
//
// The benchmark timer is stopped during these waits: it runs from each
// publish until the last client has parsed the event. So ns/op, B/op,
// allocs/op and deliveries/s cover that span for every transport — for a
// stream the fan-out of one event to N clients; for long polling the
// wake-up of N held polls (the server idle until then, as between real
// events) and their answers; for short polling the wait for each client's
// next poll and its answer — plus whatever runs meanwhile: the next
// requests of long pollers already served, the empty polls of short
// pollers already served. Requests made during the waits (long polling's
// re-polls of the last clients served, short polling's empty polls in the
// delay) are in req/event and the wire columns but not in B/op and
// allocs/op. Those columns count everything from just before the first
// measured op to just after the last; for held polls both ends are in the
// state every op starts from, every next poll held, so they hold exactly
// one request per client and event. Short polling's ns/op and deliveries/s
// are set by T, not by a cost: ns/op is hidden (reported as 0),
// deliveries/s is not reported, and T is part of the transport's name
// (transport=shortpoll-10ms).
//
// Metrics (deliveries = events × clients):
//
//	p50-ns, p99-ns     latency from the event's t (taken after the wait) to
//	                   the client's parse (HdrHistogram, every delivery of
//	                   the measured events)
//	wire-down-B/event  bytes read at the clients' net.Conns ÷ deliveries
//	wire-up-B/event    bytes written at the clients' net.Conns ÷ deliveries
//	req/event          HTTP requests (polls, stream GETs) ÷ deliveries
//	deliveries/s       deliveries ÷ timed wall time (higher is better;
//	                   benchstat needs "Unit deliveries/s better=higher")
//	B/op, allocs/op    the whole process — server, clients and an emulated
//	                   network's emulator — per event, while timed
//
// req/event for short polling is the polls per event at the event rate
// this loop sets: per client, the mean time between two publishes ÷ T.
// That is about 1.5 − 1/(2N) with N clients — the wait for the last
// client's poll (T − T/(2N) on average, grids spread) plus the delay (T/2)
// — plus the share of ops whose delay runs past the next tick because the
// op ended late after one (timer lateness, round trip, serving N polls):
// ≈ 1 at clients=1, ≈ 1.5 at clients=10, more where serving the clients
// takes a good part of T; the excess over 1 is empty polls.
// It is not the ratio at any other event rate (1 ÷ (rate × T) per client).
//
// What no op measures: queueing and batching under load (one event is in
// flight at a time, so every answer and message carries exactly one event;
// `pushbench run` publishes open loop); the server or the clients alone
// (both ends share this process and its CPUs, so every figure is their sum
// and includes their contention); a real network (an emulated one has no
// loss, a bandwidth per connection and free connection set-up: "Limits" in
// docs/network.md); more than 100 clients without -pushbench.large.
//
// The workload is a dimension too (delivery_workload_bench_test.go).
// Every run has broadcast, the ops above, under the names above;
// -pushbench.workloads=chat,game (comma-separated; spaces, empty items and
// broadcast ignored; an unknown name is a flag error) adds the
// client-originated workloads of issue 12, named right after the network
// (transport=ws/network=loopback/workload=chat/clients=10/payload=256,
// …/workload=game/tick=100/…), so that broadcast names, and results taken
// before the flag existed, stay as they were. The server is put in the
// workload's mode as POST /control/start?workload=… puts it
// (Server.StartPublisher), once every client is subscribed, with the flood
// bound (Config.MaxSendRate) lifted: a closed loop sends faster than a
// person, and the bound is not what is measured. Every client is in room 0.
//
//   - chat: one op is one message: client 0 builds an upstream message of
//     the case's payload (event.AppendUpstream, from 0, n the op's number,
//     t = now), sends it with Subscriber.Send (a WebSocket frame, a tcp
//     line, or a POST /send on a connection of its own for polls and SSE),
//     and the op ends when every client, the sender included, has parsed
//     it as room 0's next event. Waits (untimed) as for broadcast: the
//     random phase for interval polls, every poll held for held polls. The
//     metrics are broadcast's (the latency from the message's t, which
//     includes the send) plus up-B/msg, the bytes all clients wrote per
//     message (polls included), and req/msg, the POST /send requests per
//     message (0 for ws and tcp).
//   - game: the server runs its tick loop at edTick Hz (tick=100 in the
//     name) with snapshots of max(payload, event.SnapshotMinSize(clients))
//     bytes — the payload in the name is that size, and a case whose size
//     repeats the previous payload's is dropped — every client reading
//     its own acknowledgement (clients.Config.Acks, AckFrom its index).
//     One op is one input: client 0 sends input k (event.UpstreamMinSize
//     bytes, t = now) and the op ends when client 0 parses a snapshot
//     that acknowledges k or later. Metrics: input-p50-ns and input-p99-ns
//     (from the input's t to that snapshot's parse), up-B/input (bytes all
//     clients wrote per input, their polls included). The other clients
//     take every snapshot, checked for order and gaps but not waited for,
//     except once after the measurement: every client must reach the
//     snapshot that acknowledged the last input within the op timeout.
//     Before each input, untimed, every transport waits a uniformly random
//     delay in [0, max(tick interval, poll interval)), so that inputs land
//     at random phases of the ticks (and of short polling's grids): sent
//     at once after the last op's snapshot, each would wait a whole tick.
//     Held polls do not wait to be held (the ticks keep waking them).
//     When the tick interval equals T (shortpoll-10ms at tick=100), the
//     offset between the ticks and a client's grid is fixed for the run,
//     so short polling's input latency depends on where its grid fell. ns/op is set by the
//     tick, not a cost, and is reported as 0. A case whose snapshots would
//     exceed edGameMaxBytesPerSec in all (clients=1000) or half an emulated
//     profile's downstream bandwidth per connection has no sub-benchmark.
//
// Client counts are 1, 10 and 100 by default so that the package's
// benchmarks finish in bounded time; -pushbench.large adds 1000. Each
// sub-benchmark fails if the process has more goroutines after its teardown
// than before its setup.
func BenchmarkDelivery(b *testing.B) {
	h, err := edHTTP()
	if err != nil {
		b.Fatalf("-pushbench.* HTTP flags: %v", err)
	}
	for _, c := range edCases(*edLarge, edNetworks, edWorkloads) {
		if h.Validate(c.transport) != nil {
			continue // HTTP/2 for an upgrade: not a case
		}
		c.http = h
		b.Run(c.name(), func(b *testing.B) { edRun(b, c) })
	}
}

// edCase is one sub-benchmark.
type edCase struct {
	transport string
	network   netem.Profile // loopback: no emulator
	workload  string        // "" or servers.WorkloadBroadcast, WorkloadChat, WorkloadGame
	tick      int           // game only: ticks per second
	clients   int
	payload   int
	interval  time.Duration // short polling only
	http      webhttp.Options
}

// name is the sub-benchmark's name. Short polling's interval is part of its
// transport value (transport=shortpoll-10ms), as in results' bench.txt: a
// separate /interval= key would put short polling on rows of its own, and
// `benchstat -col /transport` would compare it with nothing. The network
// comes right after the transport, and the workload (but broadcast) right
// after the network (BenchmarkDelivery).
func (c edCase) name() string {
	return fmt.Sprintf("transport=%s/network=%s%s/clients=%d/payload=%d%s",
		transport.VariantName(c.transport, c.interval), c.network.Name, c.workloadName(), c.clients, c.payload, c.http.Suffix())
}

// opTimeout bounds the wait for one event to reach every client, and for
// held polls before it: edOpTimeout and the poll interval, and on an
// emulated network 3 × (RTT + jitter) (a poll's or a lagging re-poll's round
// trips, late timers) plus the time to send every client's copy of the
// payload at the downstream rate one after the other.
func (c edCase) opTimeout() time.Duration {
	d := edOpTimeout + c.interval + c.tickInterval()
	if c.network.Emulated() {
		d += 3 * (c.network.RTT + c.network.Jitter)
		if c.network.DownBps > 0 {
			d += time.Duration(int64(c.payload) * int64(c.clients) * 8 * int64(time.Second) / c.network.DownBps)
		}
	}
	return d
}

// setupTimeout bounds connecting and tearing down: edSetupTimeout, and on
// an emulated network 3 × (RTT + jitter) for the subscriptions' round trips.
func (c edCase) setupTimeout() time.Duration {
	d := edSetupTimeout
	if c.network.Emulated() {
		d += 3 * (c.network.RTT + c.network.Jitter)
	}
	return d
}

// edHTTP is how BenchmarkDelivery speaks HTTP: -pushbench.http, .tls,
// .headers, .response-headers, .cookie-bytes and .compress, as `pushbench
// run` takes them. Anything but the default adds its qualifiers to every
// name (webhttp.Options.Suffix), so that results of default runs still
// compare with older ones; a transport that cannot run the options (HTTP/2
// for an upgrade) is skipped.
var edHTTP = func() func() (webhttp.Options, error) {
	fs := flag.NewFlagSet("pushbench.http", flag.ContinueOnError)
	get := webhttp.AddFlags(fs, webhttp.Default())
	fs.VisitAll(func(f *flag.Flag) {
		flag.Var(f.Value, "pushbench."+f.Name, "BenchmarkDelivery: "+f.Usage)
	})
	return get
}()

// edCases lists the sub-benchmarks in the order of their names' keys:
// transport, network, workload (edParseWorkloads' order), clients, payload.
func edCases(large bool, networks []netem.Profile, workloads []string) []edCase {
	counts := []int{1, 10, 100}
	if large {
		counts = append(counts, 1000)
	}
	var cs []edCase
	for _, tr := range transport.Names() {
		for _, nw := range networks {
			for _, wl := range workloads {
				for _, n := range counts {
					prev := 0 // the previous case's payload
					for _, p := range []int{256, 4096} {
						c := edCase{transport: tr, network: nw, workload: wl, clients: n, payload: p}
						if transport.HasInterval(tr) {
							// 1000 clients polling every 10 ms would be 100,000
							// requests/s: more than a small machine serves.
							c.interval = 10 * time.Millisecond
							if n >= 1000 {
								c.interval = 100 * time.Millisecond
							}
						}
						if wl == servers.WorkloadGame {
							c = c.asGame()
							if c.payload == prev || !c.gameFits() {
								continue
							}
						}
						prev = c.payload
						cs = append(cs, c)
					}
				}
			}
		}
	}
	return cs
}

func edRun(b *testing.B, c edCase) {
	goroutines := runtime.NumGoroutine()
	// Cleanups run last-in first-out: this one runs after the teardown.
	b.Cleanup(func() { edCheckGoroutines(b, goroutines) })

	r := edSetup(b, c)
	timer := time.NewTimer(c.opTimeout())
	defer timer.Stop()
	op := r.deliver
	switch c.workload {
	case servers.WorkloadChat:
		op = r.chat
	case servers.WorkloadGame:
		op = r.input
	}
	for range edWarmup {
		op(b, timer)
	}
	r.resetHistograms()
	if r.held {
		// Count from and to the same state, every next poll held, so
		// that the window holds exactly one request per client and event.
		r.awaitHeld(b)
	}
	before := r.snapshot()

	b.ReportAllocs()
	for b.Loop() {
		op(b, timer)
	}
	elapsed := b.Elapsed()
	if r.held {
		r.awaitHeld(b)
	}
	after := r.snapshot()
	if c.workload == servers.WorkloadGame {
		r.reportGame(b, before, after)
		return
	}

	lat, err := r.latency()
	if err != nil {
		b.Fatal(err)
	}
	deliveries := float64(b.N) * float64(c.clients)
	if want := int64(deliveries); lat.TotalCount() != want {
		b.Fatalf("%d latencies recorded, want %d (one per delivery)", lat.TotalCount(), want)
	}
	b.ReportMetric(float64(lat.ValueAtQuantile(50)), "p50-ns") // quantile in 0–100
	b.ReportMetric(float64(lat.ValueAtQuantile(99)), "p99-ns")
	b.ReportMetric(float64(after.down-before.down)/deliveries, "wire-down-B/event")
	b.ReportMetric(float64(after.up-before.up)/deliveries, "wire-up-B/event")
	b.ReportMetric(float64(after.requests-before.requests)/deliveries, "req/event")
	if c.workload == servers.WorkloadChat {
		b.ReportMetric(float64(after.up-before.up)/float64(b.N), "up-B/msg")
		b.ReportMetric(float64(after.sendRequests-before.sendRequests)/float64(b.N), "req/msg")
	}
	if transport.HasInterval(c.transport) {
		// Both are set by the poll interval, not by a cost.
		b.ReportMetric(0, "ns/op")
	} else {
		b.ReportMetric(deliveries/elapsed.Seconds(), "deliveries/s")
	}
}

// edCheckGoroutines waits, bounded, for the goroutine count to return to
// before and fails with the stacks if it does not.
func edCheckGoroutines(b *testing.B, before int) {
	if !edPoll(5*time.Second, func() bool { return runtime.NumGoroutine() <= before }) {
		var stacks bytes.Buffer
		_ = pprof.Lookup("goroutine").WriteTo(&stacks, 1)
		b.Errorf("goroutines: %d after teardown, %d before setup\n%s", runtime.NumGoroutine(), before, stacks.String())
	}
}

// edPoll checks cond every millisecond until it holds (true) or d has
// passed (false). It is for conditions that nothing signals, such as the
// goroutine count.
func edPoll(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		<-tick.C
	}
	return true
}

// edRig is one sub-benchmark's server, emulator (if any) and clients.
type edRig struct {
	c   edCase
	srv *servers.Server
	hub *servers.Hub
	buf []byte // encode buffer

	opTimeout time.Duration // c.opTimeout()

	// The wait before each publish (BenchmarkDelivery): phase, a random
	// delay in [0, period) drawn from rng (interval transports: period is
	// the interval; every game); held, until every client's next poll is
	// held at the server (polls without interval).
	phase, held bool
	period      time.Duration
	rng         *rand.Rand

	counters clients.Counters // shared by every client

	// Every client's handler adds its events to delivered; the one that
	// takes it to target signals done. Closed loop: target only moves
	// while no event is in flight.
	delivered atomic.Int64
	target    atomic.Int64
	done      chan struct{}
	failed    chan error // first loss, duplicate or client error

	shards []*edShard

	edUpstream // chat and game: client 0's sends, the game's acknowledgements
}

// edShard is one latency histogram and the clients that record into it
// (HdrHistogram is not safe for concurrent use; about 200 KB each).
type edShard struct {
	mu         sync.Mutex
	h          *hdrhistogram.Histogram
	outOfRange int64
}

type edCounts struct{ down, up, requests, sendRequests uint64 }

func (r *edRig) snapshot() edCounts {
	return edCounts{r.counters.BytesDown.Load(), r.counters.BytesUp.Load(), r.counters.Requests.Load(),
		r.counters.SendRequests.Load()}
}

// fail reports the first problem to the benchmark loop.
func (r *edRig) fail(err error) {
	select {
	case r.failed <- err:
	default:
	}
}

// edSetup starts the server, the emulator if the network is emulated, and
// the clients, and waits until every client is subscribed; teardown is
// registered as a cleanup.
func edSetup(b *testing.B, c edCase) *edRig {
	b.Helper()
	var srvLog edLog
	cfg := servers.Config{Addr: "127.0.0.1:0", ErrorLog: log.New(&srvLog, "", 0),
		Response: c.http.ResponseProfile(), Compress: c.http.Compress, TextPad: c.http.Compress}
	if c.upstream() {
		cfg.MaxSendRate = edMaxSendRate
	}
	var roots *x509.CertPool
	if c.http.TLS {
		cert, err := webhttp.SelfSigned()
		if err != nil {
			b.Fatal(err)
		}
		cfg.TLS = &cert
		roots = x509.NewCertPool()
		roots.AddCert(cert.Leaf)
	}
	srv, err := servers.New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	ln, err := srv.Listen()
	if err != nil {
		_ = srv.Shutdown(context.Background())
		b.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	info, ok := transport.Lookup(c.transport)
	if !ok {
		b.Fatalf("unknown transport %q", c.transport)
	}
	r := &edRig{
		c:         c,
		srv:       srv,
		hub:       srv.Hub(),
		buf:       make([]byte, 0, c.payload),
		opTimeout: c.opTimeout(),
		phase:     info.Interval,
		period:    c.interval,
		held:      info.Kind == transport.Poll && !info.Interval && c.workload != servers.WorkloadGame,
		rng:       rand.New(rand.NewPCG(edPhaseSeed1, edPhaseSeed2)),
		done:      make(chan struct{}, 1),
		failed:    make(chan error, 1),
	}
	if r.phase && c.interval <= 0 {
		b.Fatalf("%s needs an interval", c.transport)
	}
	r.shards = make([]*edShard, min(c.clients, 2*runtime.GOMAXPROCS(0)))
	for i := range r.shards {
		r.shards[i] = &edShard{h: results.NewHistogram()}
	}

	setupTimeout := c.setupTimeout()
	ctx, cancel := context.WithCancel(context.Background())
	var runs sync.WaitGroup
	var em *netem.Emulator // set below if the network is emulated
	r.initUpstream(ctx)
	b.Cleanup(func() {
		// The chat or game first (no snapshot after it), then the clients
		// (they close their connections), then the emulator (it cuts what
		// is left and returns once every link has ended), then the server.
		srv.StopPublisher() // none runs for broadcast: nothing to do
		r.stopUpstream()
		cancel()
		if !edWait(&runs, setupTimeout) {
			b.Errorf("clients still running %v after cancel", setupTimeout)
		}
		if em != nil {
			_ = em.Close() // always nil
			if err := em.Err(); err != nil {
				b.Errorf("network emulator: %v", err)
			}
		}
		sctx, scancel := context.WithTimeout(context.Background(), setupTimeout)
		defer scancel()
		if err := srv.Shutdown(sctx); err != nil {
			b.Errorf("server shutdown: %v", err)
		}
		if err := <-served; err != nil {
			b.Errorf("serve: %v", err)
		}
		if s := srvLog.String(); s != "" {
			b.Logf("server log:\n%s", s)
		}
	})

	url := c.http.Scheme() + "://" + ln.Addr().String()
	if c.network.Emulated() {
		em = netem.New("127.0.0.1:0", ln.Addr().String(), c.network)
		addr, err := em.Start()
		if err != nil {
			b.Fatalf("network emulator (%v): %v", c.network, err)
		}
		url = c.http.Scheme() + "://" + addr
	}
	subs := make([]clients.Subscriber, c.clients)
	// Short pollers' grids are spread evenly over one interval, as in
	// bench/run.go: clients started together would otherwise poll in step.
	// Other transports ignore PollOrigin.
	origin := time.Now()
	for i := range subs {
		sub, err := clients.New(c.transport, clients.Config{
			BaseURL:    url,
			Interval:   c.interval,
			PollOrigin: origin.Add(time.Duration(int64(c.interval) * int64(i) / int64(c.clients))),
			Counters:   &r.counters,
			HTTP:       c.http,
			Roots:      roots,
			Acks:       c.workload == servers.WorkloadGame,
			AckFrom:    i,
		})
		if err != nil {
			b.Fatal(err)
		}
		subs[i] = sub
		h := r.handler(i, r.shards[i%len(r.shards)])
		if c.workload == servers.WorkloadGame {
			h = r.gameHandler(i)
		}
		runs.Go(func() {
			if err := sub.Run(ctx, h); err != nil {
				r.fail(fmt.Errorf("client %d: %w", i, err))
			}
		})
	}
	timer := time.NewTimer(setupTimeout)
	defer timer.Stop()
	for i, sub := range subs {
		select {
		case <-sub.Subscribed():
		case err := <-r.failed:
			b.Fatal(err)
		case <-timer.C:
			b.Fatalf("client %d of %d not subscribed after %v", i, c.clients, setupTimeout)
		}
	}
	// A stream is subscribed once its answer has arrived, which can be
	// before the goroutine that wrote the request (net/http's write loop,
	// for SSE) has counted its bytes: on a busy machine that count can
	// land inside the measured window. A stream client sends nothing more,
	// so wait until it has counted everything the server has read.
	if info.Kind == transport.Stream {
		if !edPoll(setupTimeout, func() bool {
			return r.counters.BytesUp.Load() >= srv.Stats().Listener.BytesIn
		}) {
			b.Fatalf("clients counted %d bytes sent, the server %d received, after %v",
				r.counters.BytesUp.Load(), srv.Stats().Listener.BytesIn, setupTimeout)
		}
	}
	r.startUpstream(b, subs[0])
	return r
}

// handler returns client i's batch handler: it records each event's latency
// and fails on a gap, a duplicate or a skipped event (every client sees
// every event exactly once and in order, or the numbers mean nothing).
func (r *edRig) handler(i int, sh *edShard) clients.Handler {
	var last uint64 // the client's newest seq; runs on its one goroutine
	return func(bt clients.Batch) {
		if bt.Gap.Len() > 0 {
			r.fail(fmt.Errorf("client %d: gap notice for events %d..%d", i, bt.Gap.From, bt.Gap.To))
			return
		}
		recv := bt.Recv.UnixNano()
		n := 0
		sh.mu.Lock()
		for _, e := range bt.Events {
			if e.Seq != last+1 {
				r.fail(fmt.Errorf("client %d: event %d after %d", i, e.Seq, last))
				continue
			}
			last = e.Seq
			if sh.h.RecordValue(recv-e.T) != nil {
				sh.outOfRange++
			}
			n++
		}
		sh.mu.Unlock()
		if n > 0 && r.delivered.Add(int64(n)) == r.target.Load() {
			select {
			case r.done <- struct{}{}:
			default: // cannot happen: one signal per event, buffered
			}
		}
	}
}

// deliver publishes one event, as servers.Publisher does, and waits until
// every client has it. Before it, untimed, interval transports wait a
// random delay and held polls until every client's next poll is held
// (BenchmarkDelivery).
func (r *edRig) deliver(b *testing.B, timer *time.Timer) {
	r.wait(b, timer)
	now := time.Now()
	seq := r.hub.Head() + 1
	var err error
	if r.buf, err = event.Append(r.buf[:0], event.Event{Seq: seq, T: now.UnixNano()}, r.c.payload); err != nil {
		b.Fatal(err)
	}
	data := make([]byte, len(r.buf)) // the Entry's own: every transport shares it
	copy(data, r.buf)
	r.target.Add(int64(r.c.clients))
	if err := r.hub.Publish(&servers.Entry{Seq: seq, T: now.UnixNano(), Published: now.UnixNano(), Data: data}); err != nil {
		b.Fatal(err)
	}
	timer.Reset(r.opTimeout)
	select {
	case <-r.done:
	case err := <-r.failed:
		b.Fatal(err)
	case <-timer.C:
		b.Fatalf("event %d: %d of %d deliveries after %v", seq,
			r.delivered.Load()-(r.target.Load()-int64(r.c.clients)), r.c.clients, r.opTimeout)
	}
}

// wait is the wait before an op (BenchmarkDelivery), untimed: the
// harness's, not the transport's work.
func (r *edRig) wait(b *testing.B, timer *time.Timer) {
	if r.phase || r.held {
		b.StopTimer()
		if r.phase {
			r.waitPhase(b, timer)
		} else {
			r.awaitHeld(b)
		}
		b.StartTimer()
	}
}

// waitPhase waits a uniformly random delay in [0, period), so that the
// next event lands at a random phase of every client's poll grid (and a
// game's input at a random phase of the ticks).
func (r *edRig) waitPhase(b *testing.B, timer *time.Timer) {
	timer.Reset(time.Duration(r.rng.Int64N(int64(r.period))))
	select {
	case <-timer.C:
	case err := <-r.failed:
		b.Fatal(err)
	}
}

// awaitHeld waits until every client's next poll is held at the server, so
// that the event about to be published wakes held polls. Nothing signals
// that, so it checks: first, cheaply, that every client has written its
// next request — one each to subscribe and one after each event so far
// (more only if a hold timed out, which is harmless) — and then the
// server's count of held polls (Stats() takes tens of microseconds). It
// yields rather than sleeps between checks: a request is held within
// microseconds, and a sleep would wait for a timer tick.
func (r *edRig) awaitHeld(b *testing.B) {
	want := int64(r.c.clients)
	wantReqs := uint64(r.c.clients) * (r.hub.Head() + 1)
	deadline := time.Now().Add(r.opTimeout)
	var held int64
	for {
		if r.counters.Requests.Load() >= wantReqs {
			if held = r.srv.Stats().Transports[r.c.transport].Active; held >= want {
				return
			}
		}
		select {
		case err := <-r.failed:
			b.Fatal(err)
		default:
		}
		if time.Now().After(deadline) {
			b.Fatalf("event %d: after %v only %d of %d clients' next polls are held at the server "+
				"(%d of %d requests written), so the event cannot wake held polls",
				r.hub.Head()+1, r.opTimeout, held, want, r.counters.Requests.Load(), wantReqs)
		}
		runtime.Gosched()
	}
}

func (r *edRig) resetHistograms() {
	for _, sh := range append(r.shards, r.inputs) {
		if sh == nil {
			continue // no game
		}
		sh.mu.Lock()
		sh.h.Reset()
		sh.outOfRange = 0
		sh.mu.Unlock()
	}
}

// latency merges the shards; a value it could not record is an error.
func (r *edRig) latency() (*hdrhistogram.Histogram, error) {
	all := results.NewHistogram()
	for _, sh := range r.shards {
		sh.mu.Lock()
		err := results.MergeInto(all, sh.h)
		out := sh.outOfRange
		sh.mu.Unlock()
		if err != nil {
			return nil, err
		}
		if out > 0 {
			return nil, fmt.Errorf("%d latencies outside the histogram's range", out)
		}
	}
	return all, nil
}

// edWait waits for wg at most d and reports whether it finished.
func edWait(wg *sync.WaitGroup, d time.Duration) bool {
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-done:
		return true
	case <-t.C:
		return false
	}
}

// edLog collects the server's error log for the teardown to show.
type edLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *edLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.buf.Len() > 64<<10 {
		return len(p), nil
	}
	return l.buf.Write(p)
}

func (l *edLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// TestDeliveryNetworks: -pushbench.networks adds profiles after loopback in
// netem's order, refuses an unknown name, and the network is named right
// after the transport.
func TestDeliveryNetworks(t *testing.T) {
	ps, err := edParseNetworks(" 4g,lan,,loopback,lan ")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range ps {
		names = append(names, p.Name)
	}
	if got := strings.Join(names, ","); got != "loopback,lan,4g" {
		t.Errorf("networks %s, want loopback,lan,4g", got)
	}
	if _, err := edParseNetworks("lan,5g"); err == nil || !strings.Contains(err.Error(), `unknown network "5g"`) {
		t.Errorf("unknown network: err = %v", err)
	}
	if got := (edCase{transport: "ws", network: ps[1], clients: 1, payload: 256}).name(); got != "transport=ws/network=lan/clients=1/payload=256" {
		t.Errorf("name %q", got)
	}
	// Per transport, every network's cases (3 client counts × 2 payloads).
	cs := edCases(false, ps[:2], []string{servers.WorkloadBroadcast})
	if cs[5].network.Name != netem.Loopback || cs[6].network.Name != "lan" || cs[6].transport != cs[0].transport || cs[12].network.Name != netem.Loopback {
		t.Errorf("cases in the wrong order: %s, %s, %s", cs[5].name(), cs[6].name(), cs[12].name())
	}
}
