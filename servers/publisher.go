package servers

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"

	"pushbench/event"
)

// Schedule names how the publisher spaces events.
const (
	ScheduleConstant = "constant" // event k at start + k/R
	SchedulePoisson  = "poisson"  // exponential inter-arrival times, mean 1/R
)

// PublishConfig is one run: a broadcast (the publisher's events), a chat
// (no publisher: the clients' messages, until Stop) or a game (the
// publisher's schedule drives the tick loop; workload.go).
type PublishConfig struct {
	// Workload is WorkloadBroadcast (the default), WorkloadChat or
	// WorkloadGame. A chat uses none of the fields below: it runs until
	// Stop, whatever they say.
	Workload string
	// Room is a game's clients per room: every snapshot holds the
	// acknowledgements of that many clients, so Payload must be at least
	// event.SnapshotMinSize(Room) (game only; ignored otherwise).
	Room int

	Rate     float64       // events per second, > 0 (game: ticks per second)
	Payload  int           // encoded event size in bytes (game: of every snapshot)
	Schedule string        // ScheduleConstant (default) or SchedulePoisson
	Events   uint64        // stop after this many events; 0 = until Stop
	Duration time.Duration // stop after this long; 0 = until Stop
	Seed     uint64        // Poisson seed; 0 = fixed default, so runs repeat
	// Spin is how long before an event's scheduled time the publisher stops
	// sleeping and spins. The wait before it is a runtime timer and then a
	// nanosleep of the publisher's locked thread (see nearSleep), precise to
	// tens of microseconds on an idle box; the spin covers the rest and the
	// time the thread may need to get a scheduler slot back when both cores
	// are busy (right after a burst to 10,000 connections, say). The spin
	// is capped at a twentieth of the mean interval (at most 5% of a core)
	// and its CPU time is reported separately (PublisherStats.ThreadCPU),
	// so server CPU per event excludes it. 0 = no spinning.
	Spin time.Duration
}

// Validate reports the first problem with c.
func (c PublishConfig) Validate() error {
	switch c.Workload {
	case "", WorkloadBroadcast:
	case WorkloadChat:
		return nil // nothing else is used
	case WorkloadGame:
		if c.Room < 1 || c.Room > maxGameRoom {
			return fmt.Errorf("room %d: a game needs the clients per room, 1 to %d (room=N)", c.Room, maxGameRoom)
		}
		if need := event.SnapshotMinSize(c.Room); c.Payload < need {
			return fmt.Errorf("payload %d: a snapshot for a room of %d clients needs at least %d bytes (event.SnapshotMinSize: every client's acknowledgement, %d bytes at most each)", c.Payload, c.Room, need, event.AckBytes)
		}
	default:
		return fmt.Errorf("workload %q: want %s, %s or %s", c.Workload, WorkloadBroadcast, WorkloadChat, WorkloadGame)
	}
	switch {
	case math.IsNaN(c.Rate) || math.IsInf(c.Rate, 0) || c.Rate <= 0:
		return fmt.Errorf("rate %v: must be a positive number of events per second", c.Rate)
	case c.Rate > 1e6:
		return fmt.Errorf("rate %v: above 1,000,000 events/s", c.Rate)
	case c.Schedule != "" && c.Schedule != ScheduleConstant && c.Schedule != SchedulePoisson:
		return fmt.Errorf("schedule %q: want %q or %q", c.Schedule, ScheduleConstant, SchedulePoisson)
	case c.Duration < 0:
		return fmt.Errorf("duration %v: must not be negative", c.Duration)
	case c.Spin < 0:
		return fmt.Errorf("spin %v: must not be negative", c.Spin)
	}
	return event.CheckSize(c.Payload)
}

// nearSleep and maxNearSleep bound the last stretch before an event
// (before its spin) that the publisher sleeps with nanosleep instead of a
// runtime timer: a quarter of the interval within these bounds.
const (
	nearSleep    = 2 * time.Millisecond
	maxNearSleep = 20 * time.Millisecond
)

// startLead is how far ahead of Start the schedule begins.
const startLead = 5 * time.Millisecond

// DefaultSpin is the default PublishConfig.Spin: with 10,000 WebSocket
// clients at 1 event/s it keeps every event within 200 ns of its schedule
// (measured: see the commit that set it).
const DefaultSpin = time.Millisecond

// PublisherStats describe the publisher's schedule keeping. Lag is actual
// minus scheduled publish time; a publisher that falls behind still stamps
// events with their scheduled time, so the backlog shows up as latency.
type PublisherStats struct {
	Running   bool          `json:"running"`
	Config    PublishConfig `json:"config"`
	Started   time.Time     `json:"started"`
	Published uint64        `json:"published"` // events published in this run
	FirstSeq  uint64        `json:"first_seq"` // seq of this run's first event
	LastSeq   uint64        `json:"last_seq"`
	LagP50    time.Duration `json:"lag_p50_ns"`
	LagP99    time.Duration `json:"lag_p99_ns"`
	LagMax    time.Duration `json:"lag_max_ns"`
	// Behind counts events published more than 1 ms after their schedule.
	Behind    uint64        `json:"behind"`
	ThreadCPU time.Duration `json:"thread_cpu_ns"` // CPU of the publisher thread in this run, so far
	// LagHistogram is the run's lag distribution (ns) as an HdrHistogram
	// V2 compressed base64 snapshot, once the run has finished ("" while
	// it runs), so a harness can judge lateness against a threshold it
	// learns only afterwards (the measured latency).
	LagHistogram string `json:"lag_histogram,omitempty"`
}

// Publisher publishes events into a hub on an open-loop schedule, or runs
// a chat or a game in the server's rooms.
type Publisher struct {
	hub   *Hub
	pad   event.Pad // the events' padding; set before the first Start
	rooms []*room   // the server's rooms, for games; nil: no game

	// clock, if set, replaces the wait for each due time (tests drive
	// the ticks with it): it returns the time to publish at, or false if
	// stop was closed first.
	clock func(due time.Time, stop <-chan struct{}) (time.Time, bool)

	// upstream is the running chat's or game's config, nil while none
	// runs: what the upstream paths check each message against.
	upstream atomic.Pointer[PublishConfig]
	// chatPublished counts the running chat's messages (Stats.Published).
	chatPublished atomic.Uint64

	mu      sync.Mutex
	running bool
	stop    chan struct{}
	done    chan struct{}
	stats   PublisherStats
	lag     *hdrhistogram.Histogram
	tid     int           // OS thread of the running publisher (locked), 0 if none
	cpu0    time.Duration // that thread's CPU time when the run started
}

// NewPublisher returns an idle publisher for hub.
func NewPublisher(hub *Hub) *Publisher {
	return &Publisher{hub: hub, lag: hdrhistogram.New(1, int64(time.Hour), 3)}
}

// ErrRunning is returned by Start while a run is in progress.
var ErrRunning = errors.New("publisher is already running")

// Start begins a publishing run in its own goroutine.
func (p *Publisher) Start(c PublishConfig) error {
	if err := c.Validate(); err != nil {
		return err
	}
	if c.Workload == "" {
		c.Workload = WorkloadBroadcast
	}
	if c.Schedule == "" && c.Workload != WorkloadChat {
		c.Schedule = ScheduleConstant
	}
	if c.Workload == WorkloadGame {
		switch {
		case len(p.rooms) == 0:
			return errors.New("a game runs in a Server's rooms (Server.StartPublisher)")
		case c.Rate*float64(len(p.rooms)) > maxSnapshotRate:
			return fmt.Errorf("rate %v: %v ticks/s in %d rooms is above %d snapshots/s", c.Rate, c.Rate, len(p.rooms), maxSnapshotRate)
		case c.Payload*len(p.rooms) > maxTickBytes:
			return fmt.Errorf("payload %d: a tick's snapshots in %d rooms would take %d bytes, above %d", c.Payload, len(p.rooms), c.Payload*len(p.rooms), maxTickBytes)
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.running {
		return ErrRunning
	}
	switch c.Workload {
	case WorkloadGame:
		// A new game: no input is applied yet.
		for _, r := range p.rooms {
			r.mu.Lock()
			r.acks = r.acks[:0]
			r.mu.Unlock()
		}
		p.upstream.Store(&c)
	case WorkloadChat:
		p.chatPublished.Store(0)
		p.upstream.Store(&c)
	}
	p.running = true
	p.stop = make(chan struct{})
	p.done = make(chan struct{})
	p.lag.Reset()
	// The schedule's origin is taken here, once, so that Started is exactly
	// the time event k is scheduled against (start + k/R). It lies a little
	// ahead: event 0 is due at the origin, and the publishing goroutine
	// has yet to start and lock its OS thread.
	start := time.Now().Add(startLead)
	p.stats = PublisherStats{Running: true, Config: c, Started: start}
	p.tid = 0
	go p.run(c, start, p.stop, p.done)
	return nil
}

// Stop ends the current run, if any, and waits for it.
func (p *Publisher) Stop() {
	p.mu.Lock()
	if !p.running {
		p.mu.Unlock()
		return
	}
	stop, done := p.stop, p.done
	select {
	case <-stop:
	default:
		close(stop)
	}
	p.mu.Unlock()
	<-done
}

// Done returns a channel closed when the current run ends (nil if none ran).
func (p *Publisher) Done() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.done
}

// Stats returns a snapshot of the current or last run.
func (p *Publisher) Stats() PublisherStats {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := p.stats
	if s.Running && p.tid != 0 {
		s.ThreadCPU = taskCPU(p.tid) - p.cpu0
	}
	if s.Config.Workload == WorkloadChat {
		s.Published = p.chatPublished.Load()
	}
	s.LagP50 = time.Duration(p.lag.ValueAtQuantile(50))
	s.LagP99 = time.Duration(p.lag.ValueAtQuantile(99))
	s.LagMax = time.Duration(p.lag.Max())
	return s
}

func (p *Publisher) run(c PublishConfig, start time.Time, stop <-chan struct{}, done chan<- struct{}) {
	if c.Workload == WorkloadChat {
		// No schedule to keep: the clients' messages are the chat.
		defer p.finish(0, 0, done)
		<-stop
		return
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	tid := syscall.Gettid()
	cpu0 := taskCPU(tid)
	p.mu.Lock()
	p.tid, p.cpu0 = tid, cpu0
	p.mu.Unlock()
	defer p.finish(tid, cpu0, done)

	var src source = &broadcastSource{hub: p.hub, pad: p.pad, payload: c.Payload}
	if c.Workload == WorkloadGame {
		src = &gameSource{rooms: p.rooms, payload: c.Payload}
	}

	interval := float64(time.Second) / c.Rate
	spin := min(c.Spin, time.Duration(interval/20))
	// The nanosleep stretch grows with the interval (it costs no CPU), so
	// that a runtime timer waking several ms late — seen when the box is
	// busy — still leaves the thread asleep in time; Stop is seen within it.
	near := max(nearSleep, min(maxNearSleep, time.Duration(interval/4)))
	seed := c.Seed
	if seed == 0 {
		seed = 1
	}
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()

	var offset float64 // ns after start of the next event
	for k := uint64(0); c.Events == 0 || k < c.Events; k++ {
		if c.Schedule == SchedulePoisson {
			offset += rng.ExpFloat64() * interval
		} else {
			offset = float64(k) * interval
		}
		due := start.Add(time.Duration(offset))
		if c.Duration > 0 && due.Sub(start) >= c.Duration {
			return
		}
		// Build the event before waiting: nothing between the due time and
		// the publish may allocate, or a GC mark assist (with 10,000
		// connections the heap is a few hundred MB) lands on the schedule.
		src.prepare(due)
		var now time.Time
		if p.clock != nil {
			var ok bool
			if now, ok = p.clock(due, stop); !ok {
				return
			}
		} else {
			// Sleep in two stages. Go's timers wake up to ~1 ms late
			// (the runtime's idle wait has millisecond resolution), so
			// a runtime timer only covers the wait up to `near` before
			// the spin; the rest is a nanosleep of this locked thread,
			// which the kernel ends within tens of microseconds.
			if wait := time.Until(due) - spin - near; wait > 0 {
				timer.Reset(wait)
				select {
				case <-stop:
					return
				case <-timer.C:
				}
			} else {
				select {
				case <-stop:
					return
				default:
				}
			}
			if wait := time.Until(due) - spin; wait > 0 {
				ts := syscall.NsecToTimespec(int64(wait))
				_ = syscall.Nanosleep(&ts, nil) // EINTR just ends the sleep early; the spin covers it
			}
			for time.Now().Before(due) {
				// Spin the last stretch: see PublishConfig.Spin.
			}
			now = time.Now()
		}
		seq, end := src.publish(due, now)
		lag := end.Sub(due)
		p.mu.Lock()
		if p.stats.FirstSeq == 0 {
			p.stats.FirstSeq = seq
		}
		p.stats.LastSeq = seq
		p.stats.Published++
		if lag > time.Millisecond {
			p.stats.Behind++
		}
		_ = p.lag.RecordValue(max(int64(lag), 1)) // values over an hour saturate at Max
		p.mu.Unlock()
	}
}

// finish ends a run: its statistics final, the upstream closed, done
// closed. tid is the run's locked thread (0: none) and cpu0 its CPU time
// when the run started.
func (p *Publisher) finish(tid int, cpu0 time.Duration, done chan<- struct{}) {
	p.upstream.Store(nil)
	p.mu.Lock()
	p.running = false
	p.stats.Running = false
	if p.stats.Config.Workload == WorkloadChat {
		p.stats.Published = p.chatPublished.Load()
	} else if p.stats.Published > 0 {
		// The lag distribution, encoded once per run (on this thread, so
		// its CPU is the publisher's), not on every /stats.
		if b, err := p.lag.Encode(hdrhistogram.V2CompressedEncodingCookieBase); err == nil {
			p.stats.LagHistogram = string(b)
		}
	}
	if tid != 0 {
		p.stats.ThreadCPU = taskCPU(tid) - cpu0
	}
	p.tid = 0
	p.mu.Unlock()
	close(done)
}

// source is what a run publishes at each due time.
type source interface {
	// prepare makes what the publish at due needs, before the wait:
	// nothing after the due time may allocate (see run).
	prepare(due time.Time)
	// publish publishes at now, the due time reached. It returns the seq
	// published (a game: room 0's) and when its last publish was.
	publish(due, now time.Time) (seq uint64, end time.Time)
}

// broadcastSource is the broadcast: one event of payload bytes into hub
// (room 0's) per due time, built before the wait.
type broadcastSource struct {
	hub     *Hub
	pad     event.Pad
	payload int
	e       *Entry // the next event
}

func (b *broadcastSource) prepare(due time.Time) {
	seq := b.hub.Head() + 1
	data, err := event.AppendPad(make([]byte, 0, b.payload), event.Event{Seq: seq, T: due.UnixNano()}, b.payload, b.pad)
	if err != nil {
		// Validate checked the payload; this cannot happen.
		panic(err)
	}
	b.e = &Entry{Seq: seq, T: due.UnixNano(), Data: data}
}

func (b *broadcastSource) publish(_, now time.Time) (uint64, time.Time) {
	b.e.Published = now.UnixNano()
	if err := b.hub.Publish(b.e); err != nil {
		panic(err) // only this goroutine publishes; a hole is a bug
	}
	return b.e.Seq, now
}

// taskCPU returns the CPU time of thread tid of this process (Linux; 0
// elsewhere), from the scheduler's nanosecond account. Any goroutine may
// read it, so Stats can report a running publisher's CPU live.
func taskCPU(tid int) time.Duration {
	b, err := os.ReadFile("/proc/self/task/" + strconv.Itoa(tid) + "/schedstat")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0
	}
	ns, err := strconv.ParseInt(f[0], 10, 64)
	if err != nil {
		return 0
	}
	return time.Duration(ns)
}

// ProcessCPU returns the user+system CPU time of this process.
func ProcessCPU() (user, sys time.Duration) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, 0
	}
	return time.Duration(ru.Utime.Nano()), time.Duration(ru.Stime.Nano())
}
