// Package transport is the registry of pushbench's transports: the one
// place that lists them and says what each one is. Every layer imports it —
// the servers and clients (which register an implementation per entry), the
// harness, the comparison planner and the report — and none of them names a
// transport or decides "poll or stream?" on its own.
//
// Adding a transport is one entry in registry below, one server file in
// servers/ and one client file in clients/ (docs/design.md, "Adding a
// transport"). A table test (bench/e2e TestRegistryComplete) fails when an
// entry has no server, no client or no chart style.
package transport

import (
	"fmt"
	"image/color"
	"slices"
	"strings"
	"time"
)

// Names of the transports, as used on the command line, in results and in
// the server's /stats.
const (
	ShortPoll = "shortpoll"
	LongPoll  = "longpoll"
	SSE       = "sse"
	WebSocket = "ws"
	TCP       = "tcp"
)

// Kind says how events reach a client.
type Kind int

const (
	// Poll: the client asks with one HTTP request per answer (empty
	// answers are possible and counted).
	Poll Kind = iota + 1
	// Stream: one long-lived connection; the server pushes.
	Stream
)

func (k Kind) String() string {
	switch k {
	case Poll:
		return "poll"
	case Stream:
		return "stream"
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// Marker is a transport's glyph on every chart.
type Marker string

// The markers the report knows how to draw.
const (
	Circle   Marker = "circle"
	Triangle Marker = "triangle"
	Square   Marker = "square"
	Diamond  Marker = "diamond"
	Ring     Marker = "ring"
)

// Markers lists every marker the report draws.
var Markers = []Marker{Circle, Triangle, Square, Diamond, Ring}

// Info is one transport.
type Info struct {
	Name  string // command-line and record name
	Label string // for readers: "long polling"
	Kind  Kind
	// Interval: the client polls on a fixed grid of period T, so each
	// interval is a variant of its own (shortpoll-1s, shortpoll-100ms).
	Interval bool
	// Path is the server path the transport is served on.
	Path string
	// Floor marks the reference transport: the least any push transport
	// can cost on this machine. Reports show it as a reference row, not as
	// a contender.
	Floor bool
	// Color and Marker are its style on every chart (Okabe–Ito colours,
	// distinguishable with colour-blindness: warm for polling, cool for
	// push, black for the floor).
	Color  color.RGBA
	Marker Marker
	// Help is its one-line description for --help.
	Help string
}

// IsPoll reports whether the transport answers one request per poll.
func (t Info) IsPoll() bool { return t.Kind == Poll }

// registry lists every transport in display order.
var registry = []Info{
	{
		Name: ShortPoll, Label: "short polling", Kind: Poll, Interval: true, Path: "/poll",
		Color: color.RGBA{0xD5, 0x5E, 0x00, 0xFF}, Marker: Circle, // vermillion ●
		Help: "GET /poll?since=N on a fixed grid every --interval; answered at once, empty or not",
	},
	{
		Name: LongPoll, Label: "long polling", Kind: Poll, Path: "/longpoll",
		Color: color.RGBA{0xE6, 0x9F, 0x00, 0xFF}, Marker: Triangle, // orange ▲
		Help: "GET /longpoll?since=N, held until an event arrives, then asked again",
	},
	{
		Name: SSE, Label: "SSE", Kind: Stream, Path: "/sse",
		Color: color.RGBA{0x00, 0x72, 0xB2, 0xFF}, Marker: Square, // blue ■
		Help: "Server-Sent Events: one GET /sse, events as text/event-stream (r3labs/sse)",
	},
	{
		Name: WebSocket, Label: "WebSocket", Kind: Stream, Path: "/ws",
		Color: color.RGBA{0x00, 0x9E, 0x73, 0xFF}, Marker: Diamond, // bluish green ◆
		Help: "WebSocket: one upgrade on /ws, one text message per event (gorilla/websocket)",
	},
	{
		Name: TCP, Label: "raw TCP (floor)", Kind: Stream, Path: "/tcp", Floor: true,
		Color: color.RGBA{0x00, 0x00, 0x00, 0xFF}, Marker: Ring, // black ○
		Help: "the floor: one upgrade on /tcp, then the bare event bytes, one per line",
	},
}

// All returns every transport in display order. The slice is a copy.
func All() []Info { return slices.Clone(registry) }

// Names returns every transport's name in display order.
func Names() []string {
	out := make([]string, len(registry))
	for i, t := range registry {
		out[i] = t.Name
	}
	return out
}

// Lookup returns the transport called name.
func Lookup(name string) (Info, bool) {
	i := slices.IndexFunc(registry, func(t Info) bool { return t.Name == name })
	if i < 0 {
		return Info{}, false
	}
	return registry[i], true
}

// Get returns the transport called name, or an error that lists the known
// ones.
func Get(name string) (Info, error) {
	if t, ok := Lookup(name); ok {
		return t, nil
	}
	return Info{}, fmt.Errorf("unknown transport %q (want %s)", name, List())
}

// List is the names for a message: "shortpoll, longpoll, sse, ws or tcp".
func List() string {
	n := Names()
	return strings.Join(n[:len(n)-1], ", ") + " or " + n[len(n)-1]
}

// Rank is name's place in display order (len(All()) for an unknown name,
// so that it sorts last).
func Rank(name string) int {
	if i := slices.IndexFunc(registry, func(t Info) bool { return t.Name == name }); i >= 0 {
		return i
	}
	return len(registry)
}

// IsPoll reports whether name is a polling transport (false for an unknown
// name).
func IsPoll(name string) bool {
	t, _ := Lookup(name)
	return t.IsPoll()
}

// IsStream reports whether name is a stream transport: one long-lived
// connection the server pushes on (false for an unknown name).
func IsStream(name string) bool {
	t, ok := Lookup(name)
	return ok && t.Kind == Stream
}

// HasInterval reports whether name polls on an interval grid.
func HasInterval(name string) bool {
	t, _ := Lookup(name)
	return t.Interval
}

// VariantName is the name of one variant of a transport: the name itself,
// or for an interval transport the name and its interval, e.g.
// "shortpoll-1s". It is the transport= value in bench.txt and the start of
// every file name of a cell. An interval of 0 gives the plain name.
func VariantName(name string, interval time.Duration) string {
	if HasInterval(name) && interval > 0 {
		return name + "-" + interval.String()
	}
	return name
}

// Usage is a multi-line description of every transport for --help.
func Usage() string {
	var b strings.Builder
	for _, t := range registry {
		fmt.Fprintf(&b, "  %-10s %s\n", t.Name, t.Help)
	}
	return b.String()
}
