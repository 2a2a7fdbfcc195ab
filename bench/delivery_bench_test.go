package bench

// BenchmarkDelivery: the cost of delivering one event to N subscribers of
// each transport, in `go test -bench` form. Identifiers in this file start
// with "ed" (event delivery) to stay clear of the harness's own.

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"log"
	"runtime"
	"runtime/pprof"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"

	"pushbench/clients"
	"pushbench/event"
	"pushbench/results"
	"pushbench/servers"
	"pushbench/transport"
)

var edLarge = flag.Bool("pushbench.large", false,
	"BenchmarkDelivery: add clients=1000 (short polling at interval=100ms there)")

// edOpTimeout bounds the wait for one event to reach every client (plus the
// poll interval), so that a broken transport fails the benchmark instead of
// hanging it. edSetupTimeout bounds connecting and tearing down.
const (
	edOpTimeout    = 10 * time.Second
	edSetupTimeout = 30 * time.Second
	edWarmup       = 5 // events delivered before the measurement, not recorded
)

// BenchmarkDelivery measures delivery over real loopback connections:
// an in-process server (servers.New, Listen on 127.0.0.1:0, Serve) and N
// real subscribers (clients.New), all in this process.
//
// One op is one event: the benchmark loop builds it as the publisher does
// (scheduled time t = now), publishes it into the hub directly, and waits
// until every client has parsed it. This is closed loop — one event in
// flight at a time — which makes ns/op the time to fan one event out to N
// clients and keeps queueing out of the latency: it measures delivery cost,
// not behaviour under an open-loop rate (that is `pushbench run`). Connecting
// the clients and a few warm-up events are not measured.
//
// Metrics (deliveries = events × clients):
//
//	p50-ns, p99-ns     latency from the event's t to the client's parse
//	                   (HdrHistogram, every delivery of the measured events)
//	wire-down-B/event  bytes read at the clients' net.Conns ÷ deliveries
//	wire-up-B/event    bytes written at the clients' net.Conns ÷ deliveries
//	req/event          HTTP requests (polls, stream GETs) ÷ deliveries
//	deliveries/s       deliveries ÷ measured wall time (higher is better;
//	                   benchstat needs "Unit deliveries/s better=higher")
//	B/op, allocs/op    the whole process — server and clients — per event
//
// Short polling's op includes waiting for each client's next poll, so its
// ns/op is the poll interval, not a cost; it is hidden (reported as 0), and
// the interval is part of its name: transport=shortpoll-10ms.
//
// Client counts are 1, 10 and 100 by default so that the package's
// benchmarks finish in bounded time; -pushbench.large adds 1000. Each
// sub-benchmark fails if the process has more goroutines after its teardown
// than before its setup.
func BenchmarkDelivery(b *testing.B) {
	for _, c := range edCases(*edLarge) {
		b.Run(c.name(), func(b *testing.B) { edRun(b, c) })
	}
}

// edCase is one sub-benchmark.
type edCase struct {
	transport string
	clients   int
	payload   int
	interval  time.Duration // short polling only
}

// name is the sub-benchmark's name. Short polling's interval is part of its
// transport value (transport=shortpoll-10ms), as in results' bench.txt: a
// separate /interval= key would put short polling on rows of its own, and
// `benchstat -col /transport` would compare it with nothing.
func (c edCase) name() string {
	return fmt.Sprintf("transport=%s/clients=%d/payload=%d", transport.VariantName(c.transport, c.interval), c.clients, c.payload)
}

func edCases(large bool) []edCase {
	counts := []int{1, 10, 100}
	if large {
		counts = append(counts, 1000)
	}
	var cs []edCase
	for _, tr := range transport.Names() {
		for _, n := range counts {
			for _, p := range []int{256, 4096} {
				c := edCase{transport: tr, clients: n, payload: p}
				if transport.HasInterval(tr) {
					// 1000 clients polling every 10 ms would be 100,000
					// requests/s: more than a small machine serves.
					c.interval = 10 * time.Millisecond
					if n >= 1000 {
						c.interval = 100 * time.Millisecond
					}
				}
				cs = append(cs, c)
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
	timer := time.NewTimer(edOpTimeout)
	defer timer.Stop()
	for range edWarmup {
		r.deliver(b, timer)
	}
	r.resetHistograms()
	before := r.snapshot()

	b.ReportAllocs()
	for b.Loop() {
		r.deliver(b, timer)
	}
	elapsed := b.Elapsed()
	after := r.snapshot()

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
	b.ReportMetric(deliveries/elapsed.Seconds(), "deliveries/s")
	if transport.HasInterval(c.transport) {
		b.ReportMetric(0, "ns/op") // the poll interval, not a cost
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

// edRig is one sub-benchmark's server and clients.
type edRig struct {
	c   edCase
	srv *servers.Server
	hub *servers.Hub
	buf []byte // encode buffer

	counters clients.Counters // shared by every client

	// Every client's handler adds its events to delivered; the one that
	// takes it to target signals done. Closed loop: target only moves
	// while no event is in flight.
	delivered atomic.Int64
	target    atomic.Int64
	done      chan struct{}
	failed    chan error // first loss, duplicate or client error

	shards []*edShard
}

// edShard is one latency histogram and the clients that record into it
// (HdrHistogram is not safe for concurrent use; about 200 KB each).
type edShard struct {
	mu         sync.Mutex
	h          *hdrhistogram.Histogram
	outOfRange int64
}

type edCounts struct{ down, up, requests uint64 }

func (r *edRig) snapshot() edCounts {
	return edCounts{r.counters.BytesDown.Load(), r.counters.BytesUp.Load(), r.counters.Requests.Load()}
}

// fail reports the first problem to the benchmark loop.
func (r *edRig) fail(err error) {
	select {
	case r.failed <- err:
	default:
	}
}

// edSetup starts the server and the clients and waits until every client is
// subscribed; teardown is registered as a cleanup.
func edSetup(b *testing.B, c edCase) *edRig {
	b.Helper()
	var srvLog edLog
	srv, err := servers.New(servers.Config{Addr: "127.0.0.1:0", ErrorLog: log.New(&srvLog, "", 0)})
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

	r := &edRig{
		c:      c,
		srv:    srv,
		hub:    srv.Hub(),
		buf:    make([]byte, 0, c.payload),
		done:   make(chan struct{}, 1),
		failed: make(chan error, 1),
	}
	r.shards = make([]*edShard, min(c.clients, 2*runtime.GOMAXPROCS(0)))
	for i := range r.shards {
		r.shards[i] = &edShard{h: results.NewHistogram()}
	}

	ctx, cancel := context.WithCancel(context.Background())
	var runs sync.WaitGroup
	b.Cleanup(func() {
		// Clients first (they close their connections), then the server.
		cancel()
		if !edWait(&runs, edSetupTimeout) {
			b.Errorf("clients still running %v after cancel", edSetupTimeout)
		}
		sctx, scancel := context.WithTimeout(context.Background(), edSetupTimeout)
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

	url := "http://" + ln.Addr().String()
	subs := make([]clients.Subscriber, c.clients)
	for i := range subs {
		sub, err := clients.New(c.transport, clients.Config{BaseURL: url, Interval: c.interval, Counters: &r.counters})
		if err != nil {
			b.Fatal(err)
		}
		subs[i] = sub
		h := r.handler(i, r.shards[i%len(r.shards)])
		runs.Go(func() {
			if err := sub.Run(ctx, h); err != nil {
				r.fail(fmt.Errorf("client %d: %w", i, err))
			}
		})
	}
	timer := time.NewTimer(edSetupTimeout)
	defer timer.Stop()
	for i, sub := range subs {
		select {
		case <-sub.Subscribed():
		case err := <-r.failed:
			b.Fatal(err)
		case <-timer.C:
			b.Fatalf("client %d of %d not subscribed after %v", i, c.clients, edSetupTimeout)
		}
	}
	// A stream is subscribed once its answer has arrived, which can be
	// before the goroutine that wrote the request (net/http's write loop,
	// for SSE) has counted its bytes: on a busy machine that count can
	// land inside the measured window. A stream client sends nothing more,
	// so wait until it has counted everything the server has read.
	if t, _ := transport.Lookup(c.transport); t.Kind == transport.Stream {
		if !edPoll(edSetupTimeout, func() bool {
			return r.counters.BytesUp.Load() >= srv.Stats().Listener.BytesIn
		}) {
			b.Fatalf("clients counted %d bytes sent, the server %d received, after %v",
				r.counters.BytesUp.Load(), srv.Stats().Listener.BytesIn, edSetupTimeout)
		}
	}
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
// every client has it.
func (r *edRig) deliver(b *testing.B, timer *time.Timer) {
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
	timer.Reset(edOpTimeout + r.c.interval)
	select {
	case <-r.done:
	case err := <-r.failed:
		b.Fatal(err)
	case <-timer.C:
		b.Fatalf("event %d: %d of %d deliveries after %v", seq,
			r.delivered.Load()-(r.target.Load()-int64(r.c.clients)), r.c.clients, edOpTimeout+r.c.interval)
	}
}

func (r *edRig) resetHistograms() {
	for _, sh := range r.shards {
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
