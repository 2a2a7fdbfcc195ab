package bench

import (
	"math/bits"
	"sync"
	"sync/atomic"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"

	"pushbench/clients"
	"pushbench/results"
)

// shardCount is the number of latency histograms (and counter sets) the
// clients share. Each histogram is ~200 KB, so there is one per shard, not
// one per connection; a shard's mutex is taken once per batch.
const shardCount = 8

// window is the measured window on the events' scheduled time t:
// event e is in the window iff start ≤ t(e) < end.
type window struct {
	start, end int64  // Unix ns
	base       uint64 // first seq of the run (bit 0 of every client's bitset)
}

// shard is one worker's latency histogram and the counters of the clients
// assigned to it.
type shard struct {
	counters clients.Counters // shared by the shard's subscribers (atomic)

	mu         sync.Mutex
	hist       *hdrhistogram.Histogram
	outOfRange uint64 // latencies RecordValue rejected (negative or above 1 h)
	// inputs is the game's input latency: from an input's scheduled
	// send time to the receipt of the first snapshot that acknowledged it.
	inputs         *hdrhistogram.Histogram
	inputsOutRange uint64
	inputsAcked    uint64 // in-window inputs acknowledged
	deliveries     uint64 // first deliveries in the window (progress display)
	maxSeq         uint64 // highest seq any client of the shard received
}

// tally is one client's delivery record. Its fields are guarded by its
// shard's mutex.
type tally struct {
	sh *shard
	id int // the client's index

	bits       []uint64 // bit i: seq base+i delivered in the window
	delivered  uint64   // distinct in-window events delivered
	duplicates uint64   // in-window deliveries of an event already delivered
	outOfOrder uint64   // in-window deliveries below a seq already received
	gapEvents  uint64   // events named by gap notices (lost by the server's word)
	maxSeq     uint64   // highest seq received (any phase)
	lastBefore uint64   // highest seq received with t before the window
	firstIn    uint64   // lowest seq received inside the window (0: none)
	firstAfter uint64   // lowest seq received with t after the window (0: none)
	foreign    uint64   // events from before this run (should not happen)

	// covered is the highest seq this client has received or been told
	// is lost; the drain phase waits for it without taking the lock.
	covered atomic.Uint64
}

// recorder turns every client's batches into the run's delivery figures.
type recorder struct {
	ready  chan struct{}   // closed once win is set; handlers wait for it
	winSet atomic.Bool     // ready is closed: the per-batch fast path skips the select
	quit   <-chan struct{} // closed when the clients are stopped
	win    window

	shards  [shardCount]*shard
	tallies []*tally
	// send is the clients' upstream (game: their inputs, acknowledged by
	// snapshots); set before any snapshot can carry an acknowledgement.
	send *senders
	acks [][]int64 // per client: scratch for sendLog.ack
	// shift is added to every receive stamp to read it on the server's
	// clock (an agent's clock offset; 0 on the server's machine). Set it
	// before any client starts.
	shift int64
}

// setSenders hands the recorder the senders whose inputs snapshots
// acknowledge. Call it before the senders start.
func (r *recorder) setSenders(ss *senders) {
	r.acks = make([][]int64, len(r.tallies))
	r.send = ss
}

func newRecorder(nclients int, bitsHint uint64, quit <-chan struct{}) *recorder {
	r := &recorder{ready: make(chan struct{}), quit: quit, tallies: make([]*tally, nclients)}
	for i := range r.shards {
		r.shards[i] = &shard{hist: results.NewHistogram(), inputs: results.NewHistogram()}
	}
	words := int(min((bitsHint+63)/64, 1<<20))
	for i := range r.tallies {
		r.tallies[i] = &tally{sh: r.shards[i%shardCount], id: i, bits: make([]uint64, 0, words)}
	}
	return r
}

// setWindow fixes the window and releases the handlers. Events can arrive
// before the harness knows the publisher's start time; their handlers wait
// here, which costs no accuracy because Batch.Recv was taken before.
func (r *recorder) setWindow(w window) {
	r.win = w
	close(r.ready)
	r.winSet.Store(true)
}

// counters returns client i's shared Counters.
func (r *recorder) counters(i int) *clients.Counters { return &r.tallies[i].sh.counters }

// handler returns the clients.Handler of client i.
func (r *recorder) handler(i int) clients.Handler {
	t := r.tallies[i]
	return func(b clients.Batch) {
		if !r.winSet.Load() {
			select {
			case <-r.ready:
			case <-r.quit:
				return // stopped before the window was known: nothing to record
			}
		}
		recv := b.Recv.UnixNano() + r.shift // on the server's clock
		w := &r.win
		sh := t.sh
		sh.mu.Lock()
		cover := t.covered.Load()
		if n := b.Gap.Len(); n > 0 {
			t.gapEvents += n
			cover = max(cover, b.Gap.To)
		}
		for _, e := range b.Events {
			if e.Seq < w.base {
				t.foreign++
				continue
			}
			cover = max(cover, e.Seq)
			in := e.T >= w.start && e.T < w.end
			below := e.Seq < t.maxSeq
			t.maxSeq = max(t.maxSeq, e.Seq)
			sh.maxSeq = max(sh.maxSeq, e.Seq)
			if !in {
				if e.T < w.start {
					t.lastBefore = max(t.lastBefore, e.Seq)
				} else if t.firstAfter == 0 || e.Seq < t.firstAfter {
					t.firstAfter = e.Seq
				}
				continue
			}
			if t.firstIn == 0 || e.Seq < t.firstIn {
				t.firstIn = e.Seq
			}
			if !t.set(e.Seq - w.base) {
				t.duplicates++
				continue
			}
			if below {
				t.outOfOrder++
			}
			t.delivered++
			sh.deliveries++
			// Latency of the first delivery only, so that the histogram
			// counts exactly the distinct deliveries. Values below 1 µs
			// (the histogram's lowest discernible value) land in its
			// lowest bucket; negative values (a wall-clock step) and
			// values above 1 h cannot be recorded and are counted.
			if err := sh.hist.RecordValue(recv - e.T); err != nil {
				sh.outOfRange++
			}
		}
		if len(b.Acks) > 0 && r.send != nil {
			r.recordAcks(sh, t.id, b, recv)
		}
		sh.mu.Unlock()
		t.covered.Store(cover)
	}
}

// recordAcks records the input latency of every input of client id that a
// snapshot of b acknowledges for the first time and that was scheduled in
// the window. The caller holds sh.mu.
func (r *recorder) recordAcks(sh *shard, id int, b clients.Batch, recv int64) {
	log := r.send.logs[id]
	for k := range b.Events {
		n := b.Acks[k]
		if n == 0 {
			continue
		}
		r.acks[id] = log.ack(n, r.acks[id][:0])
		for _, t := range r.acks[id] {
			if t < r.win.start || t >= r.win.end {
				continue
			}
			sh.inputsAcked++
			if err := sh.inputs.RecordValue(recv - t); err != nil {
				sh.inputsOutRange++
			}
		}
	}
}

// set marks bit i and reports whether it was clear.
func (t *tally) set(i uint64) bool {
	w := int(i / 64)
	if w >= len(t.bits) {
		t.bits = append(t.bits, make([]uint64, w+1-len(t.bits))...)
	}
	m := uint64(1) << (i % 64)
	if t.bits[w]&m != 0 {
		return false
	}
	t.bits[w] |= m
	return true
}

// countRange returns how many bits in [lo, hi] (bit indices) are set.
func countRange(bitset []uint64, lo, hi uint64) uint64 {
	var n uint64
	for w := lo / 64; w <= hi/64 && int(w) < len(bitset); w++ {
		m := ^uint64(0)
		if w == lo/64 {
			m &= ^uint64(0) << (lo % 64)
		}
		if w == hi/64 {
			m &= ^uint64(0) >> (63 - hi%64)
		}
		n += uint64(bits.OnesCount64(bitset[w] & m))
	}
	return n
}

// Counts is the sum of a set of clients' Counters at one moment.
type Counts struct {
	Down, Up, Requests, Empty, Reconnects, Dials, Errors uint64
	MissedTicks                                          uint64 // short-poll ticks with no poll of their own

	// TLS handshakes: completed, resumed, failed, their bytes each way
	// and their summed wall time in ns (clients.Counters).
	Handshakes, Resumed, HandshakeFailures  uint64
	HandshakeUp, HandshakeDown, HandshakeNs uint64
	HTTP2                                   uint64 // answers and streams that arrived over HTTP/2

	// The upstream: messages handed over, failed sends, POST requests.
	Sent, SendErrors, SendRequests uint64
}

func (r *recorder) snapshot() Counts {
	var s Counts
	for _, sh := range r.shards {
		c := &sh.counters
		s.Down += c.BytesDown.Load()
		s.Up += c.BytesUp.Load()
		s.Requests += c.Requests.Load()
		s.Empty += c.EmptyResponses.Load()
		s.Reconnects += c.Reconnects.Load()
		s.Dials += c.Dials.Load()
		s.Errors += c.Errors.Load()
		s.MissedTicks += c.MissedTicks.Load()
		s.Handshakes += c.Handshakes.Load()
		s.Resumed += c.Resumed.Load()
		s.HandshakeFailures += c.HandshakeFailures.Load()
		s.HandshakeUp += c.HandshakeBytesUp.Load()
		s.HandshakeDown += c.HandshakeBytesDown.Load()
		s.HandshakeNs += c.HandshakeNs.Load()
		s.HTTP2 += c.HTTP2Responses.Load()
		s.Sent += c.Sent.Load()
		s.SendErrors += c.SendErrors.Load()
		s.SendRequests += c.SendRequests.Load()
	}
	return s
}

// sub returns a − b; add returns a + b (counts of two load generators).
func (a Counts) sub(b Counts) Counts { return a.zip(b, func(x, y uint64) uint64 { return x - y }) }
func (a Counts) add(b Counts) Counts { return a.zip(b, func(x, y uint64) uint64 { return x + y }) }

func (a Counts) zip(b Counts, f func(x, y uint64) uint64) Counts {
	return Counts{
		Down: f(a.Down, b.Down), Up: f(a.Up, b.Up), Requests: f(a.Requests, b.Requests),
		Empty: f(a.Empty, b.Empty), Reconnects: f(a.Reconnects, b.Reconnects),
		Dials: f(a.Dials, b.Dials), Errors: f(a.Errors, b.Errors),
		MissedTicks: f(a.MissedTicks, b.MissedTicks),
		Handshakes:  f(a.Handshakes, b.Handshakes), Resumed: f(a.Resumed, b.Resumed),
		HandshakeFailures: f(a.HandshakeFailures, b.HandshakeFailures),
		HandshakeUp:       f(a.HandshakeUp, b.HandshakeUp), HandshakeDown: f(a.HandshakeDown, b.HandshakeDown),
		HandshakeNs: f(a.HandshakeNs, b.HandshakeNs), HTTP2: f(a.HTTP2, b.HTTP2),
		Sent: f(a.Sent, b.Sent), SendErrors: f(a.SendErrors, b.SendErrors), SendRequests: f(a.SendRequests, b.SendRequests),
	}
}

// progress returns the deliveries recorded so far and the highest seq seen.
func (r *recorder) progress() (deliveries, maxSeq uint64) {
	for _, sh := range r.shards {
		sh.mu.Lock()
		deliveries += sh.deliveries
		maxSeq = max(maxSeq, sh.maxSeq)
		sh.mu.Unlock()
	}
	return deliveries, maxSeq
}

// uncoveredBy returns the index of the first client, from i on, that has
// not yet received or been told about its seq last(i) (len(tallies) if
// none).
func (r *recorder) uncoveredBy(i int, last func(i int) uint64) int {
	for ; i < len(r.tallies); i++ {
		if r.tallies[i].covered.Load() < last(i) {
			return i
		}
	}
	return i
}

// delivery holds the correctness figures of the window.
type delivery struct {
	lo, hi                         uint64 // in-window seq range (hi < lo: empty)
	boundary                       string // how lo was found
	expected, delivered            uint64
	lost, duplicates, outOfOrder   uint64
	gapEvents, foreign, outOfRange uint64
	perClientMin, perClientMax     uint64 // fewest and most deliveries of one client
	surplus                        uint64 // chat: deliveries beyond what a client's room sent
	hist                           *hdrhistogram.Histogram
	mergeErr                       error
}

// Tally is one client's delivery record at the end of a run: what
// deliveries computes the window's figures from. Tallies of clients
// measured by different load generators can simply be put side by side.
type Tally struct {
	Bits       []uint64 // bit i: seq base+i delivered in the window
	Duplicates uint64   // in-window deliveries of an event already delivered
	OutOfOrder uint64   // in-window deliveries below a seq already received
	GapEvents  uint64   // events named by gap notices
	LastBefore uint64   // highest seq received with t before the window
	FirstIn    uint64   // lowest seq received inside the window (0: none)
	FirstAfter uint64   // lowest seq received with t after the window (0: none)
	Foreign    uint64   // events from before this run
}

// Latencies is a load generator's latency histograms (one per shard) and
// the values they could not hold.
type Latencies struct {
	Hists      []*hdrhistogram.Histogram
	OutOfRange uint64
	// Inputs are the game's input latency histograms, one per shard.
	Inputs           []*hdrhistogram.Histogram
	InputsOutOfRange uint64
	InputsAcked      uint64 // in-window inputs a snapshot acknowledged
}

// collect hands over every client's tally and every shard's histogram.
// Call it after every handler has returned: the recorder must not be used
// afterwards (the bitsets are handed over, not copied).
func (r *recorder) collect() ([]Tally, Latencies) {
	ts := make([]Tally, len(r.tallies))
	var lat Latencies
	for _, sh := range r.shards {
		sh.mu.Lock()
	}
	for i, t := range r.tallies {
		ts[i] = Tally{
			Bits: t.bits, Duplicates: t.duplicates, OutOfOrder: t.outOfOrder, GapEvents: t.gapEvents,
			LastBefore: t.lastBefore, FirstIn: t.firstIn, FirstAfter: t.firstAfter, Foreign: t.foreign,
		}
	}
	for _, sh := range r.shards {
		lat.Hists = append(lat.Hists, sh.hist)
		lat.OutOfRange += sh.outOfRange
		lat.Inputs = append(lat.Inputs, sh.inputs)
		lat.InputsOutOfRange += sh.inputsOutRange
		lat.InputsAcked += sh.inputsAcked
		sh.mu.Unlock()
	}
	return ts, lat
}

// finish computes the window's delivery figures from the recorder's own
// tallies (see deliveries).
func (r *recorder) finish(last, constantLo uint64) delivery {
	ts, lat := r.collect()
	return deliveries(r.win.base, ts, lat, last, constantLo)
}

// deliveries computes the window's delivery figures from the clients'
// tallies: a pure function, so that tallies of several load generators
// give the same figures as one that ran every client. base is the run's
// first seq (bit 0 of every bitset); last is the run's last published seq
// (normally the window's last event: the publisher stops at the window's
// end); constantLo, when non-zero, is the first in-window seq by the
// constant schedule's arithmetic, used only when no client saw the events
// around the window's start.
func deliveries(base uint64, tallies []Tally, lat Latencies, last, constantLo uint64) delivery {
	var d delivery
	// The in-window events are a contiguous seq range: t grows with seq.
	// Its start is the first seq whose t reached the window's start, seen
	// by the clients as the seq after the last warm-up event they received
	// and as the lowest in-window event. Its end is the last published
	// event, or the one before the first event a client saw after the
	// window: the server's Started can precede its schedule's origin, so
	// the last event can fall just past the window's end.
	lastBefore, firstIn, firstAfter := base-1, uint64(0), uint64(0)
	for _, t := range tallies {
		lastBefore = max(lastBefore, t.LastBefore)
		if t.FirstIn != 0 && (firstIn == 0 || t.FirstIn < firstIn) {
			firstIn = t.FirstIn
		}
		if t.FirstAfter != 0 && (firstAfter == 0 || t.FirstAfter < firstAfter) {
			firstAfter = t.FirstAfter
		}
	}
	if firstAfter != 0 {
		last = min(last, firstAfter-1)
	}
	if firstIn == 0 {
		firstIn = last + 1
	}
	d.hi = last
	switch {
	case lastBefore+1 >= firstIn:
		d.lo = lastBefore + 1
		d.boundary = "observed"
	case constantLo != 0:
		d.lo = min(max(constantLo, lastBefore+1), firstIn)
		d.boundary = "constant schedule"
	default:
		// Events lastBefore+1 .. firstIn-1 reached no client and their t
		// is unknown: count them in the window, so that loss is not
		// hidden.
		d.lo = lastBefore + 1
		d.boundary = "conservative"
	}
	var inWindow uint64
	if d.hi >= d.lo {
		inWindow = d.hi - d.lo + 1
	}
	d.expected = inWindow * uint64(len(tallies))
	d.perClientMin = ^uint64(0)
	for _, t := range tallies {
		var got uint64
		if inWindow > 0 {
			got = countRange(t.Bits, d.lo-base, d.hi-base)
		}
		d.delivered += got
		d.perClientMin = min(d.perClientMin, got)
		d.perClientMax = max(d.perClientMax, got)
		d.duplicates += t.Duplicates
		d.outOfOrder += t.OutOfOrder
		d.gapEvents += t.GapEvents
		d.foreign += t.Foreign
	}
	if len(tallies) == 0 {
		d.perClientMin = 0
	}
	d.lost = d.expected - min(d.delivered, d.expected)
	d.hist = results.NewHistogram()
	d.outOfRange = lat.OutOfRange
	for _, h := range lat.Hists {
		if err := results.MergeInto(d.hist, h); err != nil && d.mergeErr == nil {
			d.mergeErr = err
		}
	}
	return d
}
