// Package event owns the wire format of a pushbench event: one line of JSON,
// padded to exactly the configured payload size, that every transport carries
// unchanged. Servers and clients both import it; nothing else is shared.
//
// An encoded event looks like
//
//	{"seq":42,"t":1764081000000000000,"pad":"xxxxxxxxxxxx"}
//
// where seq counts from 1 within a server run and t is the event's scheduled
// publish time in Unix nanoseconds. When the room left for padding is too
// small for the "pad" key (1 to 8 bytes), spaces before the closing brace
// make up the size instead; both forms are valid JSON.
//
// A second message kind, the gap notice {"gap":[FROM,TO]}, tells a client
// that events FROM..TO (inclusive) have left the server's ring and will never
// be delivered to it. Loss is explicit, never silent.
package event

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
)

// Event is one published event.
type Event struct {
	Seq uint64 // strictly increasing from 1 within a server run
	T   int64  // scheduled publish time, Unix nanoseconds
}

// Gap is the range of sequence numbers, From..To inclusive, that a server can
// no longer deliver.
type Gap struct {
	From, To uint64
}

// Len is the number of events in the gap; 0 for the zero Gap (no gap:
// sequence numbers start at 1).
func (g Gap) Len() uint64 {
	if g.From == 0 || g.To < g.From {
		return 0
	}
	return g.To - g.From + 1
}

const (
	prefixSeq = `{"seq":`
	prefixT   = `,"t":`
	prefixPad = `,"pad":"`
	prefixGap = `{"gap":[`

	// padKeyLen is the overhead of an empty "pad" key: ,"pad":"".
	padKeyLen = len(prefixPad) + 1

	// MinSize is the smallest payload size that holds any seq and any t:
	// {"seq":18446744073709551615,"t":-9223372036854775808} is 53 bytes.
	MinSize = len(prefixSeq) + 20 + len(prefixT) + 20 + 1

	// MaxSize bounds the payload so that a single event always fits in the
	// clients' read buffers and a WebSocket read limit.
	MaxSize = 1 << 20
)

// Errors returned by Encode and Decode.
var (
	ErrSize      = fmt.Errorf("event: payload size must be between %d and %d bytes", MinSize, MaxSize)
	ErrMalformed = errors.New("event: malformed")
)

// CheckSize reports whether size is a valid payload size.
func CheckSize(size int) error {
	if size < MinSize || size > MaxSize {
		return fmt.Errorf("payload %d: %w", size, ErrSize)
	}
	return nil
}

// Append appends e encoded to exactly size bytes to dst and returns the
// extended slice.
func Append(dst []byte, e Event, size int) ([]byte, error) {
	if err := CheckSize(size); err != nil {
		return dst, err
	}
	if e.Seq == 0 {
		return dst, fmt.Errorf("%w: seq must be at least 1", ErrMalformed)
	}
	start := len(dst)
	dst = append(dst, prefixSeq...)
	dst = strconv.AppendUint(dst, e.Seq, 10)
	dst = append(dst, prefixT...)
	dst = strconv.AppendInt(dst, e.T, 10)
	room := size - (len(dst) - start) - 1 // 1 for the closing brace
	switch {
	case room >= padKeyLen:
		dst = append(dst, prefixPad...)
		dst = append(dst, padding[:room-padKeyLen]...)
		dst = append(dst, '"')
	default:
		for range room {
			dst = append(dst, ' ')
		}
	}
	return append(dst, '}'), nil
}

// Encode returns e encoded to exactly size bytes.
func Encode(e Event, size int) ([]byte, error) {
	if err := CheckSize(size); err != nil {
		return nil, err
	}
	return Append(make([]byte, 0, size), e, size)
}

// AppendGap appends the gap notice for g to dst.
func AppendGap(dst []byte, g Gap) []byte {
	dst = append(dst, prefixGap...)
	dst = strconv.AppendUint(dst, g.From, 10)
	dst = append(dst, ',')
	dst = strconv.AppendUint(dst, g.To, 10)
	return append(dst, "]}"...)
}

// IsGap reports whether b looks like a gap notice rather than an event. It
// only inspects the prefix; DecodeGap validates the whole message.
func IsGap(b []byte) bool {
	return len(b) >= len(prefixGap) && string(b[:len(prefixGap)]) == prefixGap
}

// Decode parses one encoded event. It accepts exactly the forms Append
// produces and rejects anything else with an error wrapping ErrMalformed.
func Decode(b []byte) (Event, error) {
	var e Event
	p := parser{b: b}
	if !p.lit(prefixSeq) {
		return e, p.fail("expected {\"seq\":")
	}
	seq, ok := p.uint()
	if !ok || seq == 0 {
		return e, p.fail("bad seq")
	}
	if !p.lit(prefixT) {
		return e, p.fail("expected ,\"t\":")
	}
	t, ok := p.int()
	if !ok {
		return e, p.fail("bad t")
	}
	if p.lit(prefixPad) {
		end := bytes.IndexByte(p.b[p.i:], '"')
		if end < 0 {
			return e, p.fail("unterminated padding")
		}
		// Our own padding is all 'x': compare it in one vectorised call
		// (Decode runs once per event per client, and a per-byte loop
		// cost 2.2 ns/byte); anything else is checked byte by byte.
		pad := p.b[p.i : p.i+end]
		if !bytes.Equal(pad, padding[:min(len(pad), len(padding))]) {
			for _, c := range pad {
				if c < 0x20 || c == '\\' || c >= 0x7f {
					return e, p.fail("bad padding byte")
				}
			}
		}
		p.i += end + 1
	}
	for p.i < len(p.b) && p.b[p.i] == ' ' {
		p.i++
	}
	if !p.lit("}") || p.i != len(p.b) {
		return e, p.fail("expected } at end")
	}
	e.Seq, e.T = seq, t
	return e, nil
}

// DecodeGap parses a gap notice.
func DecodeGap(b []byte) (Gap, error) {
	var g Gap
	p := parser{b: b}
	if !p.lit(prefixGap) {
		return g, p.fail("expected {\"gap\":[")
	}
	from, ok := p.uint()
	if !ok || from == 0 {
		return g, p.fail("bad gap start")
	}
	if !p.lit(",") {
		return g, p.fail("expected ,")
	}
	to, ok := p.uint()
	if !ok || to < from {
		return g, p.fail("bad gap end")
	}
	if !p.lit("]}") || p.i != len(p.b) {
		return g, p.fail("expected ]} at end")
	}
	g.From, g.To = from, to
	return g, nil
}

// padding is MaxSize bytes of 'x', the padding Append writes.
var padding = bytes.Repeat([]byte{'x'}, MaxSize)

type parser struct {
	b []byte
	i int
}

func (p *parser) lit(s string) bool {
	if len(p.b)-p.i < len(s) || string(p.b[p.i:p.i+len(s)]) != s {
		return false
	}
	p.i += len(s)
	return true
}

// uint parses a decimal without sign or leading zeros that fits in uint64.
func (p *parser) uint() (uint64, bool) {
	start := p.i
	var v uint64
	for p.i < len(p.b) && p.b[p.i] >= '0' && p.b[p.i] <= '9' {
		d := uint64(p.b[p.i] - '0')
		if v > (^uint64(0)-d)/10 {
			return 0, false
		}
		v = v*10 + d
		p.i++
	}
	n := p.i - start
	if n == 0 || (n > 1 && p.b[start] == '0') {
		return 0, false
	}
	return v, true
}

// int parses a decimal with an optional minus sign that fits in int64.
func (p *parser) int() (int64, bool) {
	neg := p.lit("-")
	u, ok := p.uint()
	if !ok {
		return 0, false
	}
	if neg {
		if u > 1<<63 || u == 0 {
			return 0, false
		}
		return -int64(u-1) - 1, true
	}
	if u > 1<<63-1 {
		return 0, false
	}
	return int64(u), true
}

func (p *parser) fail(what string) error {
	return fmt.Errorf("%w at byte %d: %s", ErrMalformed, p.i, what)
}
