package clients

import (
	"bytes"
	"fmt"
	"math"
	"time"

	"pushbench/event"
)

// parsePoll parses a poll response body — a JSON array of messages, a gap
// notice (if any) first — appending its events to events.
//
// It does not run encoding/json over the body: it finds each element's
// extent with a small scanner and hands the element to event, which
// accepts exactly the bytes the servers write. The scanner is a real JSON
// lexer for what it needs (strings with escapes, nested braces, whitespace
// between tokens), so a '}' or ',' inside an event's padding cannot split
// it, for any payload size. Anything that is not an array of objects is
// rejected with an error wrapping event.ErrMalformed.
func parsePoll(body []byte, events []event.Event) ([]event.Event, event.Gap, error) {
	return parsePollWith(body, events, decodeMessage)
}

// parsePollWith is parsePoll decoding each message with decode.
func parsePollWith(body []byte, events []event.Event,
	decode func(msg []byte, events []event.Event) ([]event.Event, event.Gap, error)) ([]event.Event, event.Gap, error) {
	var gap event.Gap
	i := skipSpace(body, 0)
	if i == len(body) || body[i] != '[' {
		return events, gap, malformed("poll body", i, "expected [")
	}
	i = skipSpace(body, i+1)
	if i < len(body) && body[i] == ']' {
		if i = skipSpace(body, i+1); i != len(body) {
			return events, gap, malformed("poll body", i, "data after ]")
		}
		return events, gap, nil
	}
	for n := 0; ; n++ {
		if i == len(body) || body[i] != '{' {
			return events, gap, malformed("poll body", i, "expected {")
		}
		end := objectEnd(body, i)
		if end < 0 {
			return events, gap, malformed("poll body", i, "unterminated object")
		}
		msg := body[i:end]
		if n > 0 && event.IsGap(msg) {
			return events, gap, malformed("poll body", i, "gap notice is not the first message")
		}
		var g event.Gap
		var err error
		if events, g, err = decode(msg, events); err != nil {
			return events, gap, fmt.Errorf("poll body message %d: %w", n, err)
		}
		if g.Len() > 0 {
			gap = g
		}
		i = skipSpace(body, end)
		if i == len(body) {
			return events, gap, malformed("poll body", i, "unterminated array")
		}
		switch body[i] {
		case ',':
			i = skipSpace(body, i+1)
		case ']':
			if i = skipSpace(body, i+1); i != len(body) {
				return events, gap, malformed("poll body", i, "data after ]")
			}
			return events, gap, nil
		default:
			return events, gap, malformed("poll body", i, "expected , or ]")
		}
	}
}

// objectEnd returns the index just past the JSON object that starts at
// b[i] == '{', or -1 if b ends first. It tracks strings and nesting only;
// the element's content is validated by its decoder.
func objectEnd(b []byte, i int) int {
	depth := 0
	for i < len(b) {
		switch b[i] {
		case '{':
			depth++
		case '}':
			if depth--; depth == 0 {
				return i + 1
			}
		case '"':
			// Skip the string with two vectorised searches instead of a
			// byte loop: event padding can be a megabyte long.
			i++
			for {
				q := bytes.IndexByte(b[i:], '"')
				if q < 0 {
					return -1
				}
				esc := bytes.IndexByte(b[i:i+q], '\\')
				if esc < 0 {
					i += q
					break
				}
				i += esc + 2 // the backslash and the byte it escapes
				if i > len(b) {
					return -1
				}
			}
		}
		i++
	}
	return -1
}

// skipSpace returns the index of the first byte at or after i that is not
// JSON whitespace.
func skipSpace(b []byte, i int) int {
	for i < len(b) {
		switch b[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

func malformed(what string, at int, why string) error {
	return fmt.Errorf("%s: %w at byte %d: %s", what, event.ErrMalformed, at, why)
}

// sseFields extracts the id, data and retry fields of one SSE message: the
// lines between two blank lines, as sse.EventStreamReader delimits them.
// Following the SSE specification, a line ends in LF, CR or CRLF, a line
// that starts with ':' is a comment, one space after the field's colon is
// dropped, and unknown fields (event) are ignored. A message with neither
// id nor data (a comment, a keep-alive, a retry field alone) yields ok ==
// false and no error.
//
// retry is the reconnection time the message's retry field sets, -1 when
// it has none (retryOf: a value that is not only digits is ignored, an
// empty one sets 0). The specification applies it whatever else the
// message holds.
//
// A second id or data line is an error rather than being joined as the
// specification says: pushbench messages are single lines, so a second
// line can only mean a broken stream, and joining would hide it.
func sseFields(msg []byte) (id, data []byte, retry time.Duration, ok bool, err error) {
	hasID, hasData := false, false
	retry = -1
	for len(msg) > 0 {
		// Find the line end with vectorised searches; data lines can be a
		// megabyte long and rarely contain CR.
		end := bytes.IndexByte(msg, '\n')
		if end < 0 {
			end = len(msg)
		}
		if cr := bytes.IndexByte(msg[:end], '\r'); cr >= 0 {
			end = cr
		}
		line := msg[:end]
		switch {
		case end == len(msg):
			msg = nil
		case msg[end] == '\r' && end+1 < len(msg) && msg[end+1] == '\n':
			msg = msg[end+2:]
		default:
			msg = msg[end+1:]
		}
		if len(line) == 0 || line[0] == ':' {
			continue
		}
		name, value := line, []byte(nil)
		if colon := bytes.IndexByte(line, ':'); colon >= 0 {
			name, value = line[:colon], line[colon+1:]
			if len(value) > 0 && value[0] == ' ' {
				value = value[1:]
			}
		}
		switch string(name) {
		case "id":
			if hasID {
				return nil, nil, -1, false, fmt.Errorf("sse message: %w: second id line", event.ErrMalformed)
			}
			id, hasID = value, true
		case "data":
			if hasData {
				return nil, nil, -1, false, fmt.Errorf("sse message: %w: second data line", event.ErrMalformed)
			}
			data, hasData = value, true
		case "retry":
			if r := retryOf(value); r >= 0 {
				retry = r
			}
		}
	}
	switch {
	case !hasID && !hasData:
		return nil, nil, retry, false, nil
	case !hasData:
		// An id alone would move the resume point past an event that
		// never arrived.
		return nil, nil, -1, false, fmt.Errorf("sse message: %w: id %q without data", event.ErrMalformed, id)
	case !hasID:
		return nil, nil, -1, false, fmt.Errorf("sse message: %w: data without id", event.ErrMalformed)
	}
	return id, data, retry, true, nil
}

// maxRetryMs is the longest reconnection time a Duration holds, in ms.
const maxRetryMs = math.MaxInt64 / int64(time.Millisecond)

// retryOf is the reconnection time a retry field's value sets, in
// milliseconds as the HTML standard says: -1 (ignore the field) for a value
// that is not only ASCII digits or does not fit a Duration; 0 for an empty
// one, which drops what the server set before (Chromium goes back to its
// default, 3000 ms; the Go client to reconnecting as it does without).
func retryOf(v []byte) time.Duration {
	var ms int64
	for _, c := range v {
		if c < '0' || c > '9' || ms > (maxRetryMs-int64(c-'0'))/10 {
			return -1
		}
		ms = ms*10 + int64(c-'0')
	}
	return time.Duration(ms) * time.Millisecond
}
