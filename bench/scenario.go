// Package bench is the load harness behind `pushbench run`: a Scenario says
// what to measure, Run connects the subscribers, drives the server's
// open-loop publisher, records every delivery of the measured window and
// returns one results.Record with the metrics of design.md section 5.
//
// A run has four phases: connect (at a bounded connect rate, until every
// client is subscribed as seen by the client and by the server), warm-up
// (events published but not recorded), the measured window, and drain
// (bounded wait for the window's events still in flight).
package bench

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"pushbench/browser"
	"pushbench/event"
	"pushbench/netem"
	"pushbench/results"
	"pushbench/servers"
	"pushbench/transport"
	"pushbench/webhttp"
)

// Scenario is one measurement: a transport, a number of clients and a
// workload. The zero value is not useful; start from DefaultScenario.
type Scenario struct {
	Transport string  // a name from the transport registry
	Clients   int     // concurrent subscribers
	Rate      float64 // events per second, published by the server
	Payload   int     // bytes per encoded event

	// Interval is the polling period T (interval transports only:
	// transport.HasInterval).
	Interval time.Duration
	// Hold is the server's long-poll hold timeout (0: the server's default).
	Hold time.Duration
	// ConnectRate bounds new subscriptions per second in the connect phase.
	ConnectRate float64
	// Idle is the interval measured after every client is connected and
	// before the publisher starts, for the idle cost of holding the
	// connections (0: the default, 1 s, or two poll intervals for an
	// interval transport, whichever is longer).
	Idle time.Duration

	Warmup   time.Duration // events published before the window, not recorded
	Duration time.Duration // the measured window
	// Drain bounds the wait after the window for events still in flight;
	// what has not arrived by then counts as lost.
	Drain time.Duration

	Schedule string // servers.ScheduleConstant or servers.SchedulePoisson
	Ring     int    // the server's ring size K
	// Spin is the publisher's spin before each event (servers.PublishConfig.Spin).
	Spin time.Duration
	// Network is the emulated network between the clients and the server
	// (the zero value and "loopback": none, the clients dial the server).
	Network netem.Profile
	// HTTP is how clients and server speak HTTP: header profiles, cookie,
	// TLS, HTTP/2, compression (the zero value: webhttp.Default, Go's
	// plain HTTP/1.1).
	HTTP webhttp.Options
	// Pad is what fills each event up to its payload size: PadX (the
	// default without compression) or PadText (the default with it), a
	// text that compresses like real data instead of to nothing.
	Pad string

	// Workload is what drives the traffic (docs/design.md section 5):
	// WorkloadBroadcast (the server publishes Rate events/s to every
	// client), WorkloadChat (every client sends SendRate messages/s to its
	// room, which gets each one, the sender included) or WorkloadGame (the
	// server sends every room a snapshot of Payload bytes Tick times a
	// second; every client sends InputRate inputs/s).
	Workload string
	// Room is the number of clients per room for chat and game (the last
	// room holds what is left); broadcast has one room of every client.
	Room int
	// SendRate is each chat client's messages per second (open loop, on
	// Schedule, from each message's scheduled send time).
	SendRate float64
	// Tick is the game's snapshots per second per room; InputRate each
	// game client's inputs per second.
	Tick, InputRate float64

	// Client is who subscribes: ClientGo (the harness's own clients, the
	// default) or ClientBrowser (pages in headless Chromium, package
	// browser; broadcast only).
	Client string
	// Browsers is the number of Chromium processes of a browser run (0:
	// DefaultBrowsers); Chromium names the binary ("": looked up in PATH).
	Browsers int
	Chromium string
	// CutEvery makes the server end every stream (sse, ws, tcp) this long
	// after it opened, so that the clients' own reconnect is measured
	// (0: never). SSERetry is the reconnection time the server's SSE
	// streams announce (retry:; 0: none, the client's default).
	CutEvery, SSERetry time.Duration
}

// Clients (Scenario.Client).
const (
	ClientGo      = "go"
	ClientBrowser = "browser"
)

// BrowserHostConns is Chromium's limit on HTTP/1.1 connections to one host
// per browser profile, shared by all its pages; a request beyond it waits.
const BrowserHostConns = 6

// MaxBrowserPages bounds a browser run's pages: each page is a renderer
// process of its own, tens of MB.
const MaxBrowserPages = 200

// BrowserCount is the number of Chromium processes of a browser run:
// Browsers, or by default enough for at most BrowserHostConns pages each,
// so that no page waits behind the connection limit unless asked to.
func (s Scenario) BrowserCount() int {
	if s.Browsers > 0 {
		return s.Browsers
	}
	return (s.Clients + BrowserHostConns - 1) / BrowserHostConns
}

// Workloads (Scenario.Workload).
const (
	WorkloadBroadcast = "broadcast"
	WorkloadChat      = "chat"
	WorkloadGame      = "game"
)

// InputSize is the size of a game input: the smallest upstream message,
// {"from":…,"n":…,"t":…} with room for any numbers (event.UpstreamMinSize).
const InputSize = event.UpstreamMinSize

// Rooms is the number of rooms the scenario's clients fill (1 for
// broadcast).
func (s Scenario) Rooms() int {
	if s.Workload == WorkloadBroadcast || s.Workload == "" || s.Room <= 0 {
		return 1
	}
	return (s.Clients + s.Room - 1) / s.Room
}

// RoomOf is the room of client i.
func (s Scenario) RoomOf(i int) int {
	if s.Rooms() == 1 {
		return 0
	}
	return i / s.Room
}

// RoomSize is how many clients room r holds.
func (s Scenario) RoomSize(r int) int {
	if s.Rooms() == 1 {
		return s.Clients
	}
	return min(s.Room, s.Clients-r*s.Room)
}

// Event padding (Scenario.Pad).
const (
	PadX    = "x"
	PadText = "text"
)

// DefaultScenario returns the defaults of `pushbench run`.
func DefaultScenario() Scenario {
	return Scenario{
		Transport:   transport.WebSocket,
		Clients:     100,
		Rate:        10,
		Payload:     256,
		Interval:    time.Second,
		ConnectRate: 1000,
		Warmup:      2 * time.Second,
		Duration:    10 * time.Second,
		Drain:       5 * time.Second,
		Schedule:    servers.ScheduleConstant,
		Spin:        servers.DefaultSpin,
		HTTP:        webhttp.Default(),
		Workload:    WorkloadBroadcast,
		Room:        10,
		SendRate:    1,
		Tick:        20,
		InputRate:   20,
	}
}

// Record is s as a result record states it (the run-specific fields, such
// as pinning and source addresses, are left for the run to fill in).
func (s Scenario) Record() results.Scenario {
	sc := results.Scenario{
		Transport:   s.Transport,
		Clients:     s.Clients,
		Rate:        s.Rate,
		Payload:     s.Payload,
		DurationNs:  int64(s.Duration),
		WarmupNs:    int64(s.Warmup),
		HoldNs:      int64(s.Hold),
		IdleNs:      int64(s.Idle),
		ConnectRate: s.ConnectRate,
		DrainNs:     int64(s.Drain),
		Schedule:    s.Schedule,
		Ring:        s.Ring,
		SourceAddrs: 1,
		Network: results.Network{
			Name: networkID(s.Network), RTTNs: int64(s.Network.RTT), JitterNs: int64(s.Network.Jitter),
			DownBps: s.Network.DownBps, UpBps: s.Network.UpBps,
		},
		HTTP:            s.HTTP.HTTP,
		TLS:             s.HTTP.TLS,
		Headers:         s.HTTP.Headers,
		ResponseHeaders: s.HTTP.ResponseProfile(),
		CookieBytes:     s.HTTP.CookieBytes,
		Compress:        s.HTTP.Compress,
		Pad:             s.Pad,
		Workload:        s.Workload,
		CutEveryNs:      int64(s.CutEvery),
		SSERetryNs:      int64(s.SSERetry),
	}
	if s.Client == ClientBrowser {
		sc.Client, sc.Browsers = s.Client, s.BrowserCount()
	}
	switch s.Workload {
	case WorkloadChat:
		sc.Room, sc.SendRate = s.Room, s.SendRate
	case WorkloadGame:
		sc.Room, sc.Tick, sc.InputRate = s.Room, s.Tick, s.InputRate
	}
	if transport.HasInterval(s.Transport) {
		sc.IntervalNs = int64(s.Interval)
	}
	return sc
}

// networkID names a network for results: its profile's name when it is
// that profile exactly, otherwise its values ("rtt100ms-down1mbit"), so
// that two different networks never share a name.
func networkID(p netem.Profile) string {
	if base, err := netem.Lookup(p.Name); err == nil && base.RTT == p.RTT && base.Jitter == p.Jitter &&
		base.DownBps == p.DownBps && base.UpBps == p.UpBps {
		return p.Name
	}
	var parts []string
	if p.RTT > 0 {
		parts = append(parts, "rtt"+p.RTT.String())
	}
	if p.Jitter > 0 {
		parts = append(parts, "jitter"+p.Jitter.String())
	}
	if p.DownBps > 0 {
		parts = append(parts, "down"+netem.FormatRate(p.DownBps))
	}
	if p.UpBps > 0 {
		parts = append(parts, "up"+netem.FormatRate(p.UpBps))
	}
	if len(parts) == 0 {
		return netem.Loopback
	}
	return strings.Join(parts, "-")
}

// Limits on a scenario that are about the harness, not the machine.
const (
	// MaxRate is the publisher's own limit (servers.PublishConfig.Validate).
	MaxRate = 1e6
	// trackerBudget bounds the memory of the per-client delivery bitsets
	// (clients × events bits).
	trackerBudget = 2 << 30
)

// WithDefaults returns s with derived zero fields filled in: the ring (room
// for four poll intervals' worth of events, at least 1024), the drain
// limit (5 s plus two poll intervals for short polling) and the idle
// interval.
func (s Scenario) WithDefaults() Scenario {
	if s.HTTP == (webhttp.Options{}) {
		s.HTTP = webhttp.Default()
	}
	if s.HTTP.HTTP == "" {
		s.HTTP.HTTP = webhttp.HTTP1
	}
	if s.Client == "" {
		s.Client = ClientGo
	}
	if s.HTTP.Headers == "" {
		s.HTTP.Headers = webhttp.HeadersGo
	}
	if s.Client == ClientBrowser {
		// The browser sends its own headers: Chromium's, which the
		// browser profile copies (docs/http.md).
		s.HTTP.Headers = webhttp.HeadersBrowser
	}
	if s.Workload == "" {
		s.Workload = WorkloadBroadcast
	}
	// The rate every window computation uses: messages per second over
	// all rooms for chat, ticks per second for the game.
	switch s.Workload {
	case WorkloadChat:
		s.Rate = float64(s.Clients) * s.SendRate
	case WorkloadGame:
		s.Rate = s.Tick
	}
	if s.Pad == "" {
		s.Pad = PadX
		if s.HTTP.Compress {
			s.Pad = PadText
		}
	}
	if s.Schedule == "" {
		s.Schedule = servers.ScheduleConstant
	}
	if s.Ring == 0 {
		s.Ring = 1024
		if transport.HasInterval(s.Transport) && s.Rate > 0 && s.Interval > 0 {
			s.Ring = max(s.Ring, 4*ringNeed(s))
		}
	}
	if s.Drain == 0 {
		s.Drain = 5 * time.Second
		if transport.HasInterval(s.Transport) {
			s.Drain += 2 * s.Interval
		}
	}
	if s.ConnectRate == 0 {
		s.ConnectRate = 1000
	}
	if s.Idle == 0 {
		s.Idle = time.Second
		if transport.HasInterval(s.Transport) && s.Interval > 0 {
			// Whole poll intervals, so every client polls as often in
			// the idle interval as in the window.
			s.Idle = max(s.Idle, 2*s.Interval)
			if r := s.Idle % s.Interval; r != 0 {
				s.Idle += s.Interval - r
			}
		}
	}
	return s
}

// Events is the number of events the publisher is asked for: those whose
// scheduled time falls in warm-up plus window.
func (s Scenario) Events() uint64 {
	return constantEvents(s.Rate, s.Warmup+s.Duration)
}

// constantEvents counts the events a constant-schedule publisher at rate
// publishes before d, with the publisher's own arithmetic (offset of event
// k = k × (1 s / rate), truncated to a time.Duration).
func constantEvents(rate float64, d time.Duration) uint64 {
	if rate <= 0 || d <= 0 {
		return 0
	}
	interval := float64(time.Second) / rate
	k := uint64(math.Ceil(float64(d) / interval))
	// Correct the float estimate so that k is the first index whose offset
	// reaches d, exactly as the publisher decides.
	for k > 0 && time.Duration(float64(k-1)*interval) >= d {
		k--
	}
	for time.Duration(float64(k)*interval) < d {
		k++
	}
	return k
}

// ringNeed is how many events one short-poll interval accumulates: the
// smallest ring that does not lose events between two polls (with a
// four-sigma allowance for Poisson bursts).
func ringNeed(s Scenario) int {
	n := math.Ceil(s.Rate * s.Interval.Seconds())
	if s.Schedule == servers.SchedulePoisson {
		n += math.Ceil(4 * math.Sqrt(n))
	}
	return int(min(n, math.MaxInt32))
}

// Bounds on the client-originated workloads.
const (
	// MaxSendRate bounds a client's messages or inputs per second: the
	// server's flood limit per connection is 1000/s by default.
	MaxSendRate = 1000
	// MaxTick bounds the game's ticks per second.
	MaxTick = 1000
)

// validateWorkload checks the workload's own settings.
func (s Scenario) validateWorkload() error {
	rate := func(name string, v, limit float64) error {
		if math.IsNaN(v) || math.IsInf(v, 0) || v <= 0 || v > limit {
			return fmt.Errorf("%s %v: want more than 0 and at most %v per second", name, v, limit)
		}
		return nil
	}
	switch s.Workload {
	case WorkloadBroadcast:
		return nil
	case WorkloadChat, WorkloadGame:
	default:
		return fmt.Errorf("workload %q: want %s, %s or %s", s.Workload, WorkloadBroadcast, WorkloadChat, WorkloadGame)
	}
	if s.Room < 1 {
		return fmt.Errorf("room %d: a room holds at least one client", s.Room)
	}
	if s.Workload == WorkloadChat {
		if err := rate("send rate", s.SendRate, MaxSendRate); err != nil {
			return err
		}
		if s.Payload < servers.ChatMinSize {
			return fmt.Errorf("payload %d: a chat message needs at least %d bytes (its numbers, and the room's seq and sender tag when it is delivered)", s.Payload, servers.ChatMinSize)
		}
		return nil
	}
	if err := rate("tick", s.Tick, MaxTick); err != nil {
		return err
	}
	if err := rate("input rate", s.InputRate, MaxSendRate); err != nil {
		return err
	}
	if need := event.SnapshotMinSize(min(s.Room, s.Clients)); s.Payload < need {
		return fmt.Errorf("payload %d: a snapshot for a room of %d clients needs at least %d bytes to acknowledge every client's input",
			s.Payload, min(s.Room, s.Clients), need)
	}
	return nil
}

// ErrScenario marks a scenario that cannot be run as asked.
var ErrScenario = errors.New("invalid scenario")

// Validate reports the first impossible setting as a one-line message
// wrapping ErrScenario. Call it on WithDefaults' result.
func (s Scenario) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrScenario, fmt.Sprintf(format, args...))
	}
	_, known := transport.Lookup(s.Transport)
	if err := s.validateWorkload(); err != nil {
		return bad("%v", err)
	}
	switch {
	case !known:
		return bad("unknown transport %q (want %s)", s.Transport, transport.List())
	case s.Clients < 1:
		return bad("clients %d: need at least one client", s.Clients)
	case math.IsNaN(s.Rate) || math.IsInf(s.Rate, 0) || s.Rate < 0:
		return bad("rate %v: must be a positive number of events per second", s.Rate)
	case s.Rate == 0:
		return bad("rate 0: the harness needs events to measure (rate > 0)")
	case s.Rate > MaxRate:
		return bad("rate %v: above the publisher's limit of %.0f events/s", s.Rate, MaxRate)
	case s.Payload < event.MinSize:
		return bad("payload %d: below the minimum event size of %d bytes", s.Payload, event.MinSize)
	case s.Payload > event.MaxSize:
		return bad("payload %d: above the maximum event size of %d bytes", s.Payload, event.MaxSize)
	case transport.HasInterval(s.Transport) && s.Interval <= 0:
		return bad("%s needs a positive poll interval (got %v)", s.Transport, s.Interval)
	case s.Interval < 0:
		return bad("interval %v: must not be negative", s.Interval)
	case s.Hold < 0:
		return bad("hold %v: must not be negative", s.Hold)
	case math.IsNaN(s.ConnectRate) || s.ConnectRate <= 0:
		return bad("connect rate %v: must be a positive number of connections per second", s.ConnectRate)
	case s.Warmup < 0:
		return bad("warm-up %v: must not be negative", s.Warmup)
	case s.Idle < 0:
		return bad("idle %v: must not be negative", s.Idle)
	case s.Duration <= 0:
		return bad("duration %v: the measured window must be positive", s.Duration)
	case s.Drain < 0:
		return bad("drain %v: must not be negative", s.Drain)
	case s.Schedule != servers.ScheduleConstant && s.Schedule != servers.SchedulePoisson:
		return bad("schedule %q: want %s or %s", s.Schedule, servers.ScheduleConstant, servers.SchedulePoisson)
	case s.Ring < 1:
		return bad("ring %d: the server needs room for at least one event", s.Ring)
	case s.Spin < 0:
		return bad("spin %v: must not be negative", s.Spin)
	}
	if err := s.HTTP.Validate(s.Transport); err != nil {
		return bad("%v", err)
	}
	if err := s.validateClient(); err != nil {
		return bad("%v", err)
	}
	if s.Pad != PadX && s.Pad != PadText {
		return bad("pad %q: want %s or %s", s.Pad, PadX, PadText)
	}
	if s.Network.Emulated() {
		if err := s.Network.Validate(); err != nil {
			return bad("network: %v", err)
		}
	}
	if n := constantEvents(s.Rate, s.Warmup+s.Duration) - constantEvents(s.Rate, s.Warmup); n == 0 {
		return bad("duration %v is too short to contain one event at %v/s (one every %v)",
			s.Duration, s.Rate, time.Duration(float64(time.Second)/s.Rate))
	}
	// The window's first counter snapshot is taken half a mean event
	// interval before the window starts, between two events. A shorter
	// warm-up puts that snapshot before the publisher starts, and the first
	// event (due at the start, inside the warm-up) would have its traffic
	// charged to the window's events. No warm-up at all is fine.
	if half := time.Duration(float64(time.Second) / s.Rate / 2); s.Warmup > 0 && s.Warmup < half {
		return bad("warm-up %v is shorter than half an event interval at %v/s: its first event's traffic would be charged to the window (use --warmup 0 or %v or more)",
			s.Warmup, s.Rate, half.Round(time.Millisecond))
	}
	if transport.HasInterval(s.Transport) {
		if need := ringNeed(s); s.Ring < need {
			return bad("ring %d is smaller than the %d events one %v poll interval accumulates at %v/s: polling would lose events (use --ring %d or more)",
				s.Ring, need, s.Interval, s.Rate, 2*need)
		}
	}
	// Each client keeps one bit per event of the run.
	events := float64(s.Rate) * (s.Warmup + s.Duration).Seconds()
	if s.Schedule == servers.SchedulePoisson {
		events += 8*math.Sqrt(events) + 16
	}
	if mem := float64(s.Clients) * events / 8; mem > trackerBudget {
		return bad("%d clients × %.0f events need %.1f GiB of delivery tracking (limit %d GiB): fewer clients, a lower rate or a shorter run",
			s.Clients, events, mem/(1<<30), trackerBudget>>30)
	}
	return nil
}

// validateClient checks the client kind and the stream cuts.
func (s Scenario) validateClient() error {
	stream := transport.IsStream(s.Transport)
	switch {
	case s.CutEvery < 0 || s.SSERetry < 0:
		return fmt.Errorf("cut-every %v, sse-retry %v: must not be negative", s.CutEvery, s.SSERetry)
	case s.CutEvery > 0 && !stream:
		return fmt.Errorf("cut-every: %s is not a stream (the server can cut sse, ws and tcp streams)", s.Transport)
	case s.SSERetry > 0 && s.Transport != transport.SSE:
		return fmt.Errorf("sse-retry: the retry field is SSE's; the transport is %s", s.Transport)
	case s.SSERetry > 0 && s.CutEvery == 0:
		return errors.New("sse-retry: the retry field only matters when a stream ends; add --cut-every")
	}
	switch s.Client {
	case ClientGo:
		if s.Browsers != 0 || s.Chromium != "" {
			return errors.New("browsers, chromium: these are for --client browser")
		}
		return nil
	case ClientBrowser:
	default:
		return fmt.Errorf("client %q: want %s or %s", s.Client, ClientGo, ClientBrowser)
	}
	switch {
	case !slices.Contains(browser.Transports, s.Transport):
		return fmt.Errorf("client browser: a page has no API for %s (want %s)", s.Transport, strings.Join(browser.Transports, ", "))
	case s.Workload != WorkloadBroadcast:
		return fmt.Errorf("client browser: the pages subscribe only; the %s workload needs them to send, which is not built (use --client go)", s.Workload)
	case s.Clients > MaxBrowserPages:
		return fmt.Errorf("client browser: %d pages, at most %d (each is a renderer process)", s.Clients, MaxBrowserPages)
	case s.Browsers < 0 || s.Browsers > s.Clients:
		return fmt.Errorf("browsers %d: want 1 to the %d pages", s.Browsers, s.Clients)
	case s.HTTP.HTTP == webhttp.HTTP2 && !s.HTTP.TLS:
		return errors.New("client browser: browsers speak HTTP/2 only over TLS (no h2c); add --tls")
	case s.HTTP.CookieBytes > 0:
		return errors.New("client browser: --cookie-bytes sets the Go clients' cookie; a page's cross-origin fetch and EventSource send none")
	}
	return nil
}
