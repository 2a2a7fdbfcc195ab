package bench

// BenchmarkDelivery's workload dimension (-pushbench.workloads): the chat
// and game workloads of issue 12 as closed-loop ops, one message or input
// at a time from client 0. BenchmarkDelivery's doc comment says what the
// ops and their metrics are.

import (
	"context"
	"flag"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"pushbench/clients"
	"pushbench/event"
	"pushbench/netem"
	"pushbench/results"
	"pushbench/servers"
)

// edWorkloads is what BenchmarkDelivery runs: broadcast, then the
// workloads -pushbench.workloads adds.
var edWorkloads = []string{servers.WorkloadBroadcast}

func init() {
	flag.Func("pushbench.workloads",
		"BenchmarkDelivery: comma-separated `workloads` to run besides broadcast: "+
			servers.WorkloadChat+", "+servers.WorkloadGame+" (closed loop, client 0 sending; names gain /workload=…)",
		func(s string) (err error) {
			edWorkloads, err = edParseWorkloads(s)
			return err
		})
}

// edParseWorkloads parses -pushbench.workloads: workload names,
// comma-separated (spaces and empty items ignored, broadcast implied). It
// returns broadcast, then chat and game if named, each once, so that the
// order of the sub-benchmarks does not depend on how the list was written.
func edParseWorkloads(s string) ([]string, error) {
	want := map[string]bool{}
	for _, name := range strings.Split(s, ",") {
		switch name = strings.TrimSpace(name); name {
		case "":
		case servers.WorkloadBroadcast, servers.WorkloadChat, servers.WorkloadGame:
			want[name] = true
		default:
			return nil, fmt.Errorf("unknown workload %q (want %s or %s; %s always runs)",
				name, servers.WorkloadChat, servers.WorkloadGame, servers.WorkloadBroadcast)
		}
	}
	ws := []string{servers.WorkloadBroadcast}
	for _, w := range []string{servers.WorkloadChat, servers.WorkloadGame} {
		if want[w] {
			ws = append(ws, w)
		}
	}
	return ws, nil
}

const (
	// edTick is the game's ticks per second (tick=100 in the names).
	edTick = 100
	// edMaxSendRate lifts the server's flood bound (Config.MaxSendRate,
	// 1000 messages/s per connection by default): a closed loop on
	// loopback sends tens of thousands a second.
	edMaxSendRate = 1e9
	// edGameMaxBytesPerSec bounds a game's snapshot bytes per second to
	// all clients together (clients × payload × tick): more than a small
	// machine both serves and parses in one process. It leaves out
	// clients=1000 (its snapshots hold 1000 acknowledgements: 4.3 GB/s).
	edGameMaxBytesPerSec = 64 << 20
)

// workloadName is the name's workload part: none for broadcast, so that
// its names are those of before the dimension existed.
func (c edCase) workloadName() string {
	switch c.workload {
	case "", servers.WorkloadBroadcast:
		return ""
	case servers.WorkloadGame:
		return fmt.Sprintf("/workload=%s/tick=%d", c.workload, c.tick)
	}
	return "/workload=" + c.workload
}

// upstream reports whether the clients send (chat, game).
func (c edCase) upstream() bool {
	return c.workload == servers.WorkloadChat || c.workload == servers.WorkloadGame
}

// tickInterval is the time between two game ticks (0 but in a game).
func (c edCase) tickInterval() time.Duration {
	if c.tick <= 0 {
		return 0
	}
	return time.Second / time.Duration(c.tick)
}

// asGame makes c a game case: edTick, and snapshots big enough for every
// client's acknowledgement (the server refuses smaller ones).
func (c edCase) asGame() edCase {
	c.workload = servers.WorkloadGame
	c.tick = edTick
	c.payload = max(c.payload, event.SnapshotMinSize(c.clients))
	return c
}

// gameFits reports whether a game case can run: its snapshots within
// edGameMaxBytesPerSec, and on an emulated network within half the
// profile's downstream bandwidth per connection (the rest for the
// transport's framing and headers), or they would queue without end.
func (c edCase) gameFits() bool {
	perConn := int64(c.payload) * int64(c.tick) // bytes per second
	if perConn*int64(c.clients) > edGameMaxBytesPerSec {
		return false
	}
	return c.network.DownBps <= 0 || perConn*8 <= c.network.DownBps/2
}

// edUpstream is a rig's chat or game state.
type edUpstream struct {
	sender clients.Subscriber // client 0
	up     []byte             // client 0's message buffer
	sent   uint64             // client 0's messages or inputs so far: the op number

	// sendCtx bounds each Send: watchdog cancels it if a Send takes longer
	// than the op timeout, so that a stuck send path fails the benchmark
	// instead of hanging it (one timer for every op: nothing allocated).
	sendCtx    context.Context
	sendCancel context.CancelFunc
	watchdog   *time.Timer

	// Game: the input in flight (its number, then its t, stored in the
	// reverse order to be read), the seq of the snapshot that
	// acknowledged the last one, every client's newest seq, the snapshots
	// all clients parsed, and the input latencies (client 0's handler).
	inputN    atomic.Uint64
	inputT    atomic.Int64
	ackSeq    atomic.Uint64
	last      []atomic.Uint64
	snapshots atomic.Int64
	inputs    *edShard
}

// initUpstream prepares a chat's or game's state; ctx is the clients'.
func (r *edRig) initUpstream(ctx context.Context) {
	if !r.c.upstream() {
		return
	}
	r.sendCtx, r.sendCancel = context.WithCancel(ctx)
	r.watchdog = time.AfterFunc(time.Hour, r.sendCancel)
	r.watchdog.Stop()
	size := r.c.payload
	if r.c.workload == servers.WorkloadGame {
		// Each input at a random phase of the ticks: sent at once after
		// the last op's snapshot, it would wait a whole tick every time.
		r.phase, r.period = true, max(r.c.interval, r.c.tickInterval())
		size = event.UpstreamMinSize
		r.last = make([]atomic.Uint64, r.c.clients)
		r.inputs = &edShard{h: results.NewHistogram()}
	}
	r.up = make([]byte, 0, size)
}

func (r *edRig) stopUpstream() {
	if r.watchdog != nil {
		r.watchdog.Stop()
		r.sendCancel()
	}
}

// startUpstream puts the server in the case's workload, as POST
// /control/start?workload=… does, with client 0 as the sender.
func (r *edRig) startUpstream(b *testing.B, sender clients.Subscriber) {
	var pc servers.PublishConfig
	switch r.c.workload {
	case servers.WorkloadChat:
		pc = servers.PublishConfig{Workload: servers.WorkloadChat}
	case servers.WorkloadGame:
		pc = servers.PublishConfig{Workload: servers.WorkloadGame, Room: r.c.clients,
			Rate: float64(r.c.tick), Payload: r.c.payload, Schedule: servers.ScheduleConstant}
	default:
		return
	}
	r.sender = sender
	if err := r.srv.StartPublisher(pc); err != nil {
		b.Fatalf("start %s: %v", r.c.workload, err)
	}
}

// send sends client 0's message msg, bounded by the op timeout.
func (r *edRig) send(b *testing.B, msg []byte) {
	r.watchdog.Reset(r.opTimeout)
	err := r.sender.Send(r.sendCtx, msg)
	r.watchdog.Stop()
	if err != nil {
		if r.sendCtx.Err() != nil {
			err = fmt.Errorf("not sent after %v", r.opTimeout)
		}
		b.Fatalf("client 0, %s %d: %v", r.c.workload, r.sent, err)
	}
}

// chat is one chat op: client 0 sends a message of the case's payload, and
// every client, the sender included, parses it as room 0's next event (the
// broadcast handler records its latency from the message's t). Before it,
// untimed, the wait of the transport's kind (BenchmarkDelivery).
func (r *edRig) chat(b *testing.B, timer *time.Timer) {
	r.wait(b, timer)
	r.sent++
	msg, err := event.AppendUpstream(r.up[:0], event.Upstream{From: 0, N: r.sent, T: time.Now().UnixNano()}, r.c.payload)
	if err != nil {
		b.Fatal(err)
	}
	r.up = msg
	r.target.Add(int64(r.c.clients)) // before the send: its copies may arrive before Send returns
	r.send(b, msg)
	timer.Reset(r.opTimeout)
	select {
	case <-r.done:
	case err := <-r.failed:
		b.Fatal(err)
	case <-timer.C:
		b.Fatalf("chat message %d: %d of %d deliveries after %v", r.sent,
			r.delivered.Load()-(r.target.Load()-int64(r.c.clients)), r.c.clients, r.opTimeout)
	}
}

// input is one game op: client 0 sends input k, and parses the first
// snapshot that acknowledges k or later (gameHandler records the latency).
// Before it, untimed, a random phase of the ticks (and of the poll grid).
func (r *edRig) input(b *testing.B, timer *time.Timer) {
	r.wait(b, timer) // the random phase only: a game's held polls do not wait
	r.sent++
	now := time.Now().UnixNano()
	msg, err := event.AppendUpstream(r.up[:0], event.Upstream{From: 0, N: r.sent, T: now}, event.UpstreamMinSize)
	if err != nil {
		b.Fatal(err)
	}
	r.up = msg
	r.inputT.Store(now)
	r.inputN.Store(r.sent) // after its t: the handler reads n first
	r.send(b, msg)
	timer.Reset(r.opTimeout)
	select {
	case <-r.done:
	case err := <-r.failed:
		b.Fatal(err)
	case <-timer.C:
		b.Fatalf("game input %d: no snapshot acknowledged it after %v", r.sent, r.opTimeout)
	}
}

// gameHandler returns client i's handler in a game: it checks every
// snapshot's order as the broadcast handler does and counts it; client 0's
// also records the latency of the input in flight when a snapshot
// acknowledges it, and ends the op.
func (r *edRig) gameHandler(i int) clients.Handler {
	var last, acked uint64 // run on the client's one goroutine
	return func(bt clients.Batch) {
		if bt.Gap.Len() > 0 {
			r.fail(fmt.Errorf("client %d: gap notice for snapshots %d..%d", i, bt.Gap.From, bt.Gap.To))
			return
		}
		for k, e := range bt.Events {
			if e.Seq != last+1 {
				r.fail(fmt.Errorf("client %d: snapshot %d after %d", i, e.Seq, last))
				continue
			}
			last = e.Seq
			if i != 0 || k >= len(bt.Acks) {
				continue
			}
			n := r.inputN.Load()
			if n <= acked || bt.Acks[k] < n {
				continue
			}
			acked = n
			sh := r.inputs
			sh.mu.Lock()
			if sh.h.RecordValue(bt.Recv.UnixNano()-r.inputT.Load()) != nil {
				sh.outOfRange++
			}
			sh.mu.Unlock()
			r.ackSeq.Store(e.Seq)
			select {
			case r.done <- struct{}{}:
			default: // cannot happen: one signal per input, buffered
			}
		}
		r.snapshots.Add(int64(len(bt.Events)))
		r.last[i].Store(last)
	}
}

// reportGame checks, after the measurement, that every client reaches the
// snapshot that acknowledged the last input, and reports the game's
// metrics.
func (r *edRig) reportGame(b *testing.B, before, after edCounts) {
	want := r.ackSeq.Load()
	lagging := func() int {
		for i := range r.last {
			if r.last[i].Load() < want {
				return i
			}
		}
		return -1
	}
	if !edPoll(r.opTimeout, func() bool { return lagging() < 0 }) {
		if i := lagging(); i >= 0 {
			b.Fatalf("client %d has snapshots up to %d after %v, want %d (the one that acknowledged the last input; %d parsed by all clients)",
				i, r.last[i].Load(), r.opTimeout, want, r.snapshots.Load())
		}
	}
	select {
	case err := <-r.failed:
		b.Fatal(err)
	default:
	}
	sh := r.inputs
	sh.mu.Lock()
	count, out := sh.h.TotalCount(), sh.outOfRange
	p50, p99 := sh.h.ValueAtQuantile(50), sh.h.ValueAtQuantile(99)
	sh.mu.Unlock()
	if out > 0 {
		b.Fatalf("%d input latencies outside the histogram's range", out)
	}
	if count != int64(b.N) {
		b.Fatalf("%d input latencies recorded, want %d (one per input)", count, b.N)
	}
	b.ReportMetric(float64(p50), "input-p50-ns")
	b.ReportMetric(float64(p99), "input-p99-ns")
	b.ReportMetric(float64(after.up-before.up)/float64(b.N), "up-B/input")
	b.ReportMetric(0, "ns/op") // set by the tick, not a cost
}

// TestDeliveryWorkloads: -pushbench.workloads adds chat and game after
// broadcast in a fixed order and refuses an unknown name; the workload is
// named right after the network, broadcast not at all; a game's payload
// holds every client's acknowledgement, and the games that cannot run are
// not cases.
func TestDeliveryWorkloads(t *testing.T) {
	ws, err := edParseWorkloads(" game,,chat, broadcast,game ")
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(ws, ","); got != "broadcast,chat,game" {
		t.Errorf("workloads %s, want broadcast,chat,game", got)
	}
	if ws, err := edParseWorkloads(""); err != nil || len(ws) != 1 || ws[0] != servers.WorkloadBroadcast {
		t.Errorf("no workloads: %v, %v", ws, err)
	}
	if _, err := edParseWorkloads("chat,dashboard"); err == nil || !strings.Contains(err.Error(), `unknown workload "dashboard"`) {
		t.Errorf("unknown workload: err = %v", err)
	}

	lo, err := netem.Lookup(netem.Loopback)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		c    edCase
		want string
	}{
		{edCase{transport: "ws", network: lo, clients: 10, payload: 256}, "transport=ws/network=loopback/clients=10/payload=256"},
		{edCase{transport: "ws", network: lo, workload: servers.WorkloadBroadcast, clients: 10, payload: 256}, "transport=ws/network=loopback/clients=10/payload=256"},
		{edCase{transport: "ws", network: lo, workload: servers.WorkloadChat, clients: 10, payload: 256}, "transport=ws/network=loopback/workload=chat/clients=10/payload=256"},
		{edCase{transport: "sse", network: lo, clients: 1, payload: 4096}.asGame(), "transport=sse/network=loopback/workload=game/tick=100/clients=1/payload=4096"},
		{edCase{transport: "sse", network: lo, clients: 10, payload: 256}.asGame(),
			fmt.Sprintf("transport=sse/network=loopback/workload=game/tick=100/clients=10/payload=%d", event.SnapshotMinSize(10))},
	} {
		if got := tc.c.name(); got != tc.want {
			t.Errorf("name %q, want %q", got, tc.want)
		}
	}

	// Per transport (loopback): broadcast's 4 client counts × 2 payloads,
	// chat's the same, the game's 1 and 10 with both payloads and 100 with
	// one (both payloads are below SnapshotMinSize(100)); no game at 1000.
	cs := edCases(true, []netem.Profile{lo}, ws)
	var names []string
	for _, c := range cs {
		if c.transport == cs[0].transport {
			_, rest, _ := strings.Cut(c.name(), "/network=loopback/")
			names = append(names, rest)
		}
	}
	want := []string{
		"clients=1/payload=256", "clients=1/payload=4096", "clients=10/payload=256", "clients=10/payload=4096",
		"clients=100/payload=256", "clients=100/payload=4096", "clients=1000/payload=256", "clients=1000/payload=4096",
		"workload=chat/clients=1/payload=256", "workload=chat/clients=1/payload=4096",
		"workload=chat/clients=10/payload=256", "workload=chat/clients=10/payload=4096",
		"workload=chat/clients=100/payload=256", "workload=chat/clients=100/payload=4096",
		"workload=chat/clients=1000/payload=256", "workload=chat/clients=1000/payload=4096",
		"workload=game/tick=100/clients=1/payload=256", "workload=game/tick=100/clients=1/payload=4096",
		fmt.Sprintf("workload=game/tick=100/clients=10/payload=%d", event.SnapshotMinSize(10)),
		"workload=game/tick=100/clients=10/payload=4096",
		fmt.Sprintf("workload=game/tick=100/clients=100/payload=%d", event.SnapshotMinSize(100)),
	}
	if got, w := strings.Join(names, "\n"), strings.Join(want, "\n"); got != w {
		t.Errorf("cases of %s:\n%s\nwant:\n%s", cs[0].transport, got, w)
	}

	// On 3g (400 kbit/s down per connection) a game fits only where its
	// snapshots take at most half of that.
	g3, err := netem.Lookup("3g")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range edCases(false, []netem.Profile{g3}, []string{servers.WorkloadGame}) {
		if c.workload == servers.WorkloadGame && int64(c.payload)*edTick*8 > g3.DownBps/2 {
			t.Errorf("%s: snapshots of %d bit/s on a %d bit/s link", c.name(), c.payload*edTick*8, g3.DownBps)
		}
	}
}
