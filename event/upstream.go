package event

import (
	"bytes"
	"fmt"
	"strconv"
)

// Client-originated traffic (the chat and game workloads, docs/protocol.md):
//
// An upstream message is what a client sends: one line of JSON, padded to
// exactly the payload size like an event,
//
//	{"from":7,"n":42,"t":1764081000000000000,"pad":"xxxx"}
//
// where from is the sending client's id (unique in the run), n counts that
// client's messages (or game inputs) from 1, and t is the message's
// scheduled send time in Unix ns. Only from, n and t are read; the server
// checks the rest as strictly as Decode checks an event.
//
// A chat message is delivered to its room as an ordinary event whose seq is
// the room's sequence number and whose t is the message's t, so every
// transport carries it unchanged and every receiver measures its latency
// from the scheduled send time. Its pad opens with a tag naming the message,
// "f7n42;", then padding. A game snapshot is an event whose seq is the
// room's tick number and whose t is the tick's scheduled time; its pad opens
// with the acknowledgements of the inputs the server applied, one
// "a<from>:<n>" per client that has sent one, each followed by ';'.

// Upstream is one client message or game input.
type Upstream struct {
	From uint64 // the sender's client id
	N    uint64 // the sender's message number, from 1
	T    int64  // scheduled send time, Unix ns
}

const (
	prefixFrom = `{"from":`
	prefixN    = `,"n":`
	// UpstreamMinSize is the smallest upstream message that holds any
	// from, n and t: {"from":18446744073709551615,"n":18446744073709551615,"t":-9223372036854775808}.
	UpstreamMinSize = len(prefixFrom) + 20 + len(prefixN) + 20 + len(prefixT) + 20 + 1
)

// AppendUpstream appends u encoded to exactly size bytes to dst.
func AppendUpstream(dst []byte, u Upstream, size int) ([]byte, error) {
	if size < UpstreamMinSize || size > MaxSize {
		return dst, fmt.Errorf("upstream message of %d bytes: must be between %d and %d", size, UpstreamMinSize, MaxSize)
	}
	if u.N == 0 {
		return dst, fmt.Errorf("%w: message number must be at least 1", ErrMalformed)
	}
	start := len(dst)
	dst = append(dst, prefixFrom...)
	dst = strconv.AppendUint(dst, u.From, 10)
	dst = append(dst, prefixN...)
	dst = strconv.AppendUint(dst, u.N, 10)
	dst = append(dst, prefixT...)
	dst = strconv.AppendInt(dst, u.T, 10)
	return closePad(dst, size-(len(dst)-start), nil), nil
}

// closePad appends the pad key with tag and 'x' padding, or spaces when
// the room left is too small for the key, and the closing brace, so that
// room bytes (brace included) are added.
func closePad(dst []byte, room int, tag []byte) []byte {
	room-- // the closing brace
	if room >= padKeyLen+len(tag) {
		dst = append(dst, prefixPad...)
		dst = append(dst, tag...)
		dst = append(dst, padding[:room-padKeyLen-len(tag)]...)
		dst = append(dst, '"')
	} else {
		for range room {
			dst = append(dst, ' ')
		}
	}
	return append(dst, '}')
}

// DecodeUpstream parses one upstream message; anything but the form
// AppendUpstream writes (any printable padding allowed) is an error
// wrapping ErrMalformed.
func DecodeUpstream(b []byte) (Upstream, error) {
	var u Upstream
	p := parser{b: b}
	if !p.lit(prefixFrom) {
		return u, p.fail(`expected {"from":`)
	}
	from, ok := p.uint()
	if !ok {
		return u, p.fail("bad from")
	}
	if !p.lit(prefixN) {
		return u, p.fail(`expected ,"n":`)
	}
	n, ok := p.uint()
	if !ok || n == 0 {
		return u, p.fail("bad n")
	}
	if !p.lit(prefixT) {
		return u, p.fail(`expected ,"t":`)
	}
	t, ok := p.int()
	if !ok {
		return u, p.fail("bad t")
	}
	if err := p.rest(); err != nil {
		return u, err
	}
	return Upstream{From: from, N: n, T: t}, nil
}

// rest parses the optional pad and the closing brace that end an event or
// an upstream message.
func (p *parser) rest() error {
	if p.lit(prefixPad) {
		end := bytes.IndexByte(p.b[p.i:], '"')
		if end < 0 {
			return p.fail("unterminated padding")
		}
		if pad := p.b[p.i : p.i+end]; !bytes.Equal(pad, padding[:min(len(pad), len(padding))]) && !validPad(pad) {
			return p.fail("bad padding byte")
		}
		p.i += end + 1
	}
	for p.i < len(p.b) && p.b[p.i] == ' ' {
		p.i++
	}
	if !p.lit("}") || p.i != len(p.b) {
		return p.fail("expected } at end")
	}
	return nil
}

// AppendTagged appends e encoded to exactly size bytes with its pad opening
// with tag (printable ASCII, no '"' or '\\'), then 'x' padding. An error
// if tag does not fit.
func AppendTagged(dst []byte, e Event, size int, tag []byte) ([]byte, error) {
	if err := CheckSize(size); err != nil {
		return dst, err
	}
	if e.Seq == 0 {
		return dst, fmt.Errorf("%w: seq must be at least 1", ErrMalformed)
	}
	if !validPad(tag) || bytes.IndexByte(tag, '"') >= 0 {
		return dst, fmt.Errorf("%w: tag %q is not padding", ErrMalformed, tag)
	}
	start := len(dst)
	dst = append(dst, prefixSeq...)
	dst = strconv.AppendUint(dst, e.Seq, 10)
	dst = append(dst, prefixT...)
	dst = strconv.AppendInt(dst, e.T, 10)
	room := size - (len(dst) - start)
	if room-1 < padKeyLen+len(tag) {
		return dst[:start], fmt.Errorf("tag of %d bytes does not fit an event of %d bytes (seq %d)", len(tag), size, e.Seq)
	}
	return closePad(dst, room, tag), nil
}

// AppendMessageTag appends a chat message's tag, "f<from>n<n>;".
func AppendMessageTag(dst []byte, u Upstream) []byte {
	dst = append(dst, 'f')
	dst = strconv.AppendUint(dst, u.From, 10)
	dst = append(dst, 'n')
	dst = strconv.AppendUint(dst, u.N, 10)
	return append(dst, ';')
}

// AppendAck appends one game acknowledgement, "a<from>:<n>;".
func AppendAck(dst []byte, from, n uint64) []byte {
	dst = append(dst, 'a')
	dst = strconv.AppendUint(dst, from, 10)
	dst = append(dst, ':')
	dst = strconv.AppendUint(dst, n, 10)
	return append(dst, ';')
}

// AckBytes is the most an acknowledgement takes: 'a', 20 digits, ':', 20
// digits, ';'. A snapshot for a room of r clients fits any acks when its
// size is at least SnapshotMinSize(r).
const AckBytes = 1 + 20 + 1 + 20 + 1

// SnapshotMinSize is the smallest payload whose events hold the
// acknowledgements of a room of r clients, whatever their ids and input
// numbers.
func SnapshotMinSize(r int) int { return MinSize + padKeyLen + r*AckBytes }

// PadOf returns the content of an encoded event's or upstream message's pad
// string (nil if it has none). It does not validate b: call it on what
// Decode accepted.
func PadOf(b []byte) []byte {
	i := bytes.Index(b, []byte(prefixPad))
	if i < 0 {
		return nil
	}
	rest := b[i+len(prefixPad):]
	end := bytes.IndexByte(rest, '"')
	if end < 0 {
		return nil
	}
	return rest[:end]
}

// FindAck returns the input number that a snapshot's pad acknowledges for
// client from, and whether it has one.
func FindAck(pad []byte, from uint64) (uint64, bool) {
	var key [24]byte
	k := append(key[:0], 'a')
	k = strconv.AppendUint(k, from, 10)
	k = append(k, ':')
	for i := 0; i < len(pad); {
		j := bytes.IndexByte(pad[i:], ';')
		if j < 0 || pad[i] != 'a' {
			return 0, false // the acks have ended: padding follows
		}
		item := pad[i : i+j]
		if bytes.HasPrefix(item, k) {
			// The parser events use: no string conversion (and so no
			// allocation) per snapshot and client on the receive path.
			p := parser{b: item[len(k):]}
			n, ok := p.uint()
			return n, ok && p.i == len(p.b)
		}
		i += j + 1
	}
	return 0, false
}
