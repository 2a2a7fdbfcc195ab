package bench

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"

	"pushbench/event"
	"pushbench/results"
	"pushbench/servers"
)

// upstreamSender is what a subscriber offers for client-originated traffic
// (clients: every transport's subscriber has it).
type upstreamSender interface {
	Send(ctx context.Context, msg []byte) error
}

// senders drives the client-originated side of the chat and game
// workloads: one goroutine per client sends its messages (or inputs) open
// loop, at start + k / rate on the constant schedule (each client's phase
// spread evenly over one interval, as short pollers' are) or at Poisson
// times, each stamped with its scheduled send time, so that a send path
// that falls behind shows as latency.
type senders struct {
	s     Scenario
	size  int     // bytes per message
	rate  float64 // per client per second
	start time.Time
	until time.Time // no message is scheduled at or after it

	logs []*sendLog

	lagMu    sync.Mutex
	lag      *hdrhistogram.Histogram // actual send start − scheduled time
	firstErr string                  // the first failed send's error
	wg       sync.WaitGroup
}

// goldenRatio's fractional part, 0.618…, makes frac(i·φ) a low-discrepancy
// sequence: any n consecutive values fall in n different 1/n-wide bins.
const goldenRatio = 0.6180339887498949

// sendLog is one client's sends.
type sendLog struct {
	mu     sync.Mutex
	times  []int64 // scheduled time of message n at index n-1
	ok     []bool  // whether message n was accepted
	acked  uint64  // game: the highest input a snapshot acknowledged
	failed uint64
}

func newSenders(s Scenario, size int, rate float64, start, until time.Time) *senders {
	ss := &senders{s: s, size: size, rate: rate, start: start, until: until,
		logs: make([]*sendLog, s.Clients), lag: results.NewHistogram()}
	for i := range ss.logs {
		ss.logs[i] = &sendLog{}
	}
	return ss
}

// run starts every client's sender; wait returns when all have sent their
// last message or ctx ended.
func (ss *senders) run(ctx context.Context, subs []upstreamSender) {
	for i, sub := range subs {
		ss.wg.Go(func() { ss.send(ctx, i, sub) })
	}
}

func (ss *senders) wait() { ss.wg.Wait() }

func (ss *senders) send(ctx context.Context, i int, sub upstreamSender) {
	log := ss.logs[i]
	interval := float64(time.Second) / ss.rate
	rng := rand.New(rand.NewPCG(uint64(i)+1, 0x9e3779b97f4a7c15))
	// The constant schedule's phase: spread over one interval, but not in
	// client order. Short pollers' grids are spread in client order
	// (i/N of their interval) and a room is consecutive clients, so
	// phases in client order would put every sender just before or just
	// after its room's polls, a correlation independent browsers do not
	// have. The golden-ratio sequence frac(i·φ) spreads any run of
	// consecutive clients evenly over the interval instead.
	offset := interval * math.Mod(float64(i)*goldenRatio, 1)
	if ss.s.Schedule == servers.SchedulePoisson {
		offset = rng.ExpFloat64() * interval
	}
	buf := make([]byte, 0, ss.size)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for n := uint64(1); ; n++ {
		due := ss.start.Add(time.Duration(offset))
		if !due.Before(ss.until) {
			return
		}
		msg, err := event.AppendUpstream(buf[:0], event.Upstream{From: uint64(i), N: n, T: due.UnixNano()}, ss.size)
		if err != nil {
			panic(err) // Validate checked the size
		}
		if wait := time.Until(due); wait > 0 {
			timer.Reset(wait)
			select {
			case <-ctx.Done():
				return // never attempted: not in the log
			case <-timer.C:
			}
		}
		lag := time.Since(due)
		log.mu.Lock()
		log.times = append(log.times, due.UnixNano())
		log.ok = append(log.ok, false)
		log.mu.Unlock()
		err = sub.Send(ctx, msg)
		if err != nil && ctx.Err() != nil {
			// The run ended during the send (an interruption, or the
			// clients stopping): neither a failure nor a message anyone
			// should expect.
			log.mu.Lock()
			log.times, log.ok = log.times[:n-1], log.ok[:n-1]
			log.mu.Unlock()
			return
		}
		ss.lagMu.Lock()
		_ = ss.lag.RecordValue(max(int64(lag), 1))
		if err != nil && ss.firstErr == "" {
			ss.firstErr = fmt.Sprintf("client %d, message %d: %v", i, n, err)
		}
		ss.lagMu.Unlock()
		log.mu.Lock()
		if err == nil {
			log.ok[n-1] = true
		} else {
			log.failed++
		}
		log.mu.Unlock()
		if ss.s.Schedule == servers.SchedulePoisson {
			offset += rng.ExpFloat64() * interval
		} else {
			offset += interval
		}
	}
}

// Sends is what the senders of one load generator did: per room the
// messages accepted with a scheduled time in the window, and the failures
// there; the senders' lateness against their schedule.
type Sends struct {
	InWindow []uint64 // per room: accepted messages scheduled in the window
	Sent     uint64   // Σ InWindow
	Failed   uint64   // sends scheduled in the window that failed
	Lag      *hdrhistogram.Histogram
	FirstErr string // the first failed send's error, in the whole run
	// Late says a sender had not sent its last message when the drain
	// gave up on it: what it never sent is in no count.
	Late bool
}

// collect counts the sends scheduled in [start, end).
func (ss *senders) collect(start, end int64) Sends {
	out := Sends{InWindow: make([]uint64, ss.s.Rooms()), Lag: ss.lag, FirstErr: ss.firstErr}
	for i, log := range ss.logs {
		room := ss.s.RoomOf(i)
		log.mu.Lock()
		for k, t := range log.times {
			if t < start || t >= end {
				continue
			}
			if log.ok[k] {
				out.InWindow[room]++
				out.Sent++
			} else {
				out.Failed++
			}
		}
		log.mu.Unlock()
	}
	return out
}

// accepted counts, per room, every message handed over in the whole run:
// on a fresh server, the room's last seq.
func (ss *senders) accepted() []uint64 {
	out := make([]uint64, ss.s.Rooms())
	for i, log := range ss.logs {
		log.mu.Lock()
		for _, ok := range log.ok {
			if ok {
				out[ss.s.RoomOf(i)]++
			}
		}
		log.mu.Unlock()
	}
	return out
}

// add joins two load generators' sends.
func (a Sends) add(b Sends) (Sends, error) {
	if len(a.InWindow) == 0 {
		return b, nil
	}
	if len(b.InWindow) != len(a.InWindow) {
		return a, errors.New("merge: the parts count different rooms")
	}
	out := Sends{InWindow: make([]uint64, len(a.InWindow)), Sent: a.Sent + b.Sent, Failed: a.Failed + b.Failed,
		Lag: results.NewHistogram(), FirstErr: cmp.Or(a.FirstErr, b.FirstErr), Late: a.Late || b.Late}
	for i := range a.InWindow {
		out.InWindow[i] = a.InWindow[i] + b.InWindow[i]
	}
	for _, h := range []*hdrhistogram.Histogram{a.Lag, b.Lag} {
		if h != nil {
			if err := results.MergeInto(out.Lag, h); err != nil {
				return out, err
			}
		}
	}
	return out, nil
}

// acked records that client i's snapshot received at recv acknowledged
// its inputs up to n; it returns the scheduled times of the inputs this
// acknowledges for the first time (their input latency is recv − t).
func (log *sendLog) ack(n uint64, dst []int64) []int64 {
	log.mu.Lock()
	defer log.mu.Unlock()
	for k := log.acked; k < n && int(k) < len(log.times); k++ {
		if log.ok[k] { // a failed send has no latency, even if acknowledged
			dst = append(dst, log.times[k])
		}
	}
	log.acked = max(log.acked, min(n, uint64(len(log.times))))
	return dst
}
