package netem

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/Shopify/toxiproxy/v2/stream"
	"github.com/rs/zerolog"
	zlog "github.com/rs/zerolog/log"
)

// dialTimeout bounds the emulator's connection to the upstream for each
// accepted client.
const dialTimeout = 5 * time.Second

// Toxic is one Toxiproxy toxic the emulator adds for a profile.
type Toxic struct {
	Name   string `json:"name"`
	Type   string `json:"type"`   // "latency" or "bandwidth"
	Stream string `json:"stream"` // "downstream" (server to client) or "upstream"
	// Attributes is the toxic's settings in Toxiproxy's units: latency and
	// jitter in milliseconds, rate in kilobytes (1000 bytes) per second.
	Attributes map[string]int64 `json:"attributes"`
}

// Toxics is how a profile maps onto Toxiproxy's toxics, in the order they
// are added to each direction's chain:
//
//   - a "latency" toxic per direction with the direction's half of RTT and
//     of Jitter (Profile.Split), in whole milliseconds; none for a
//     direction whose delay and jitter are both 0;
//   - then a "bandwidth" toxic per limited direction with rate = bits per
//     second / 8000 (kilobytes of 1000 bytes per second), exact because
//     Validate admits only multiples of 8 kbit/s.
//
// Latency comes first: Toxiproxy's latency toxic counts its delay from the
// moment the bytes were read from the socket, so behind a bandwidth toxic
// it would subtract the time spent there instead of adding to it. In this
// order a chunk of n bytes leaves after its direction's delay plus n·8/bps,
// propagation then serialisation.
func Toxics(p Profile) []Toxic {
	down, downJ, up, upJ := p.Split()
	var ts []Toxic
	for _, d := range []struct {
		stream        string
		delay, jitter time.Duration
		bps           int64
	}{{"downstream", down, downJ, p.DownBps}, {"upstream", up, upJ, p.UpBps}} {
		if d.delay != 0 || d.jitter != 0 {
			ts = append(ts, Toxic{Name: "latency_" + d.stream, Type: "latency", Stream: d.stream,
				Attributes: map[string]int64{"latency": d.delay.Milliseconds(), "jitter": d.jitter.Milliseconds()}})
		}
		if d.bps != 0 {
			ts = append(ts, Toxic{Name: "bandwidth_" + d.stream, Type: "bandwidth", Stream: d.stream,
				Attributes: map[string]int64{"rate": d.bps / BpsStep}})
		}
	}
	return ts
}

// silenceGlobalLog silences zerolog's global logger once per process.
var silenceGlobalLog sync.Once

// Emulator forwards TCP connections from a loopback listen address to a
// loopback upstream through Toxiproxy's toxics for a profile. It uses
// Toxiproxy's toxic collection and links, but accepts and dials itself
// instead of calling Proxy.Start, to close two holes of Toxiproxy v2.5.0
// (docs/network.md, "Toxiproxy's goroutine leak"):
//
//   - When a link's destination write fails (the peer went away) while a
//     toxic still holds data, ToxicLink.write returns and the toxic's
//     goroutine blocks forever sending the next chunk: a goroutine and its
//     buffered data leak per such connection, and Proxy.Stop leaks them for
//     every connection with data in flight. Here every destination is a
//     sink whose writes never fail: after the first error it closes the
//     socket (so the other direction ends too) and discards the rest, so
//     the chain drains and ends.
//   - Proxy.Stop does not wait for the links. Close here cuts every
//     connection, removes the toxics (last first, so what they hold flushes
//     at once rather than at the emulated pace) and waits until every
//     link has closed its destination.
type Emulator struct {
	listen, upstream string
	profile          Profile

	mu      sync.Mutex
	ln      net.Listener
	proxy   *toxiproxy.Proxy
	api     *toxiproxy.ApiServer
	toxics  []string // names, in the order added
	conns   map[net.Conn]struct{}
	closing bool
	seq     atomic.Uint64 // connections accepted
	err     error         // why the accept loop ended on its own

	handlers sync.WaitGroup // the accept loop and the connections it is setting up
	links    sync.WaitGroup // one per link, done when it has closed its destination
	done     chan struct{}  // closed when the accept loop has ended
	once     sync.Once
}

// New returns an emulator from listen to upstream (both host:port on
// loopback) for profile p. Start starts it.
func New(listen, upstream string, p Profile) *Emulator {
	return &Emulator{listen: listen, upstream: upstream, profile: p,
		conns: map[net.Conn]struct{}{}, done: make(chan struct{})}
}

// Profile returns the profile the emulator applies.
func (e *Emulator) Profile() Profile { return e.profile }

// Start listens, adds the profile's toxics and starts accepting; it returns
// the address clients dial instead of the upstream.
func (e *Emulator) Start() (string, error) {
	if err := e.profile.Validate(); err != nil {
		return "", err
	}
	for _, a := range []struct{ what, addr string }{{"listen", e.listen}, {"upstream", e.upstream}} {
		if err := CheckLoopback(a.addr); err != nil {
			return "", fmt.Errorf("%s %w", a.what, err)
		}
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.ln != nil || e.closing {
		return "", errors.New("emulator already started or closed")
	}
	ln, err := net.Listen("tcp", e.listen)
	if err != nil {
		return "", err
	}
	// Some toxics (bandwidth) log through zerolog's global logger, not
	// the one given here ("BandwidthToxic was interrupted" at every cut):
	// silence that one too.
	silenceGlobalLog.Do(func() { zlog.Logger = zerolog.Nop() })
	e.api = toxiproxy.NewServer(toxiproxy.NewMetricsContainer(nil), zerolog.Nop())
	e.proxy = toxiproxy.NewProxy(e.api, "pushbench", ln.Addr().String(), e.upstream)
	for _, t := range Toxics(e.profile) {
		b, err := json.Marshal(struct {
			Toxic
			Toxicity float32 `json:"toxicity"`
		}{t, 1})
		if err == nil {
			_, err = e.proxy.Toxics.AddToxicJson(strings.NewReader(string(b)))
		}
		if err != nil {
			ln.Close()
			return "", fmt.Errorf("add toxic %s: %w", t.Name, err)
		}
		e.toxics = append(e.toxics, t.Name)
	}
	e.ln = ln
	e.handlers.Add(1)
	go e.accept(ln)
	return ln.Addr().String(), nil
}

// Addr is the address clients dial ("" before Start).
func (e *Emulator) Addr() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.ln == nil {
		return ""
	}
	return e.ln.Addr().String()
}

// Done is closed when the emulator stopped accepting: after Close, or on
// its own when accepting failed (Err says why).
func (e *Emulator) Done() <-chan struct{} { return e.done }

// Err is why the emulator stopped accepting on its own, nil if it did not.
func (e *Emulator) Err() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.err
}

func (e *Emulator) accept(ln net.Listener) {
	defer e.handlers.Done()
	defer close(e.done)
	for {
		c, err := ln.Accept()
		if err != nil {
			e.mu.Lock()
			if !e.closing {
				// Out of file descriptors, say: stop loudly rather than
				// spin or stall. Main exits with this error.
				e.err = fmt.Errorf("accept: %w", err)
				ln.Close()
			}
			e.mu.Unlock()
			return
		}
		e.handlers.Add(1)
		go e.connect(c)
	}
}

// connect dials the upstream for client c and starts the two links.
func (e *Emulator) connect(client net.Conn) {
	defer e.handlers.Done()
	up, err := net.DialTimeout("tcp", e.upstream, dialTimeout)
	if err != nil {
		client.Close() // the client sees the refusal as a closed connection
		return
	}
	e.mu.Lock()
	if e.closing {
		e.mu.Unlock()
		client.Close()
		up.Close()
		return
	}
	e.conns[client] = struct{}{}
	e.conns[up] = struct{}{}
	e.links.Add(2)
	e.mu.Unlock()
	// Names key the collection's links: a counter keeps them unique even
	// when a port is reused while an old link still drains.
	name := fmt.Sprintf("%s#%d/", client.RemoteAddr(), e.seq.Add(1))
	e.proxy.Toxics.StartLink(e.api, name+"upstream", client, &sink{Conn: up, e: e}, stream.Upstream)
	e.proxy.Toxics.StartLink(e.api, name+"downstream", up, &sink{Conn: client, e: e}, stream.Downstream)
}

// Close stops accepting, cuts every connection and returns once every link
// has ended. It is safe to call more than once, and before Start.
func (e *Emulator) Close() error {
	e.once.Do(func() {
		e.mu.Lock()
		e.closing = true
		ln := e.ln
		e.mu.Unlock()
		if ln == nil {
			close(e.done)
			return
		}
		ln.Close()
		e.handlers.Wait()
		e.mu.Lock()
		for c := range e.conns {
			c.Close() // reads fail, so each chain closes; writes are discarded
		}
		e.mu.Unlock()
		for i := len(e.toxics) - 1; i >= 0; i-- {
			_ = e.proxy.Toxics.RemoveToxic(context.Background(), e.toxics[i])
		}
		e.links.Wait()
	})
	return nil
}

// sink is a link's destination. Its writes never fail, so Toxiproxy's
// writer keeps draining the link's chain until it ends (see Emulator);
// after the first failed write it closes the socket and discards.
type sink struct {
	net.Conn
	e      *Emulator
	failed atomic.Bool
	once   sync.Once
}

func (s *sink) Write(p []byte) (int, error) {
	if !s.failed.Load() {
		if _, err := s.Conn.Write(p); err != nil {
			s.failed.Store(true)
			s.Conn.Close()
		}
	}
	return len(p), nil
}

// Close is called once by Toxiproxy when the link has ended.
func (s *sink) Close() error {
	s.once.Do(func() {
		s.Conn.Close()
		s.e.mu.Lock()
		delete(s.e.conns, s.Conn)
		s.e.mu.Unlock()
		s.e.links.Done()
	})
	return nil
}

var _ io.WriteCloser = (*sink)(nil)

// ErrNotLoopback is returned for an address outside 127.0.0.0/8 and ::1.
var ErrNotLoopback = errors.New("the emulator only runs on loopback (127.0.0.0/8 or ::1)")

// CheckLoopback reports whether addr is host:port with a loopback host: an
// IP in 127.0.0.0/8 or ::1, or a name that resolves only to such.
func CheckLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q: want HOST:PORT: %w", addr, err)
	}
	if ip := net.ParseIP(host); ip != nil {
		if !ip.IsLoopback() {
			return fmt.Errorf("%s: %w", addr, ErrNotLoopback)
		}
		return nil
	}
	if host == "" {
		return fmt.Errorf("%q: no host (that would be every interface): %w", addr, ErrNotLoopback)
	}
	ips, err := net.DefaultResolver.LookupIPAddr(context.Background(), host)
	if err != nil {
		return fmt.Errorf("%s: %w", addr, err)
	}
	for _, ip := range ips {
		if !ip.IP.IsLoopback() {
			return fmt.Errorf("%s resolves to %s: %w", addr, ip.IP, ErrNotLoopback)
		}
	}
	if len(ips) == 0 {
		return fmt.Errorf("%s: no address", addr)
	}
	return nil
}
