package clients

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"pushbench/event"
)

func encodeSize(t testing.TB, seq uint64, size int) string {
	t.Helper()
	b, err := event.Encode(event.Event{Seq: seq, T: int64(seq) * 1000}, size)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// padded is a valid event whose padding holds the JSON punctuation that a
// naive splitter would cut at.
const padded = `{"seq":9,"t":9,"pad":"},]{[\" x"}`

func TestParsePoll(t *testing.T) {
	t.Parallel()
	e1, e2, e3 := ev(1), ev(2), ev(3)
	tricky := `{"seq":9,"t":9,"pad":"},]{[ x"}`
	good := []struct {
		body string
		seqs []uint64
		gap  event.Gap
	}{
		{`[]`, nil, event.Gap{}},
		{" [ \r\n\t] \n", nil, event.Gap{}},
		{"[" + e1 + "]", []uint64{1}, event.Gap{}},
		{"[" + e1 + "," + e2 + "," + e3 + "]", []uint64{1, 2, 3}, event.Gap{}},
		{" [ " + e1 + " ,\n" + e2 + " ]\n", []uint64{1, 2}, event.Gap{}},
		{"[" + gapMsg(1, 4) + "," + ev(5) + "]", []uint64{5}, event.Gap{From: 1, To: 4}},
		{"[" + gapMsg(3, 3) + "]", nil, event.Gap{From: 3, To: 3}},
		{"[" + tricky + "," + tricky + "]", []uint64{9, 9}, event.Gap{}},
	}
	for _, tc := range good {
		events, gap, err := parsePoll([]byte(tc.body), nil)
		var seqs []uint64
		for _, e := range events {
			seqs = append(seqs, e.Seq)
		}
		if err != nil || fmt.Sprint(seqs) != fmt.Sprint(tc.seqs) || gap != tc.gap {
			t.Errorf("parsePoll(%q) = %v, %+v, %v; want %v, %+v", tc.body, seqs, gap, err, tc.seqs, tc.gap)
		}
	}
	bad := []string{
		``, ` `, `[`, `]`, `{}`, `[,]`, `[1]`, `["x"]`, `[[]]`,
		"[" + e1, "[" + e1 + ",", "[" + e1 + ",]", "[" + e1 + " " + e2 + "]", "[" + e1 + "]x",
		"[" + e1 + "][]", "[" + e1 + "}]",
		"[" + gapMsg(1, 2) + "," + gapMsg(3, 4) + "]", // a second gap
		"[" + e1 + "," + gapMsg(2, 3) + "]",           // gap not first
		`[{"seq":1}]`, `[{"gap":[2,1]}]`, `[{"gap":[0,1]}]`,
		padded,                     // escaped quote: lexed, then refused by Decode
		"[" + padded + "]",         // ditto, in an array
		`[{"seq":1,"t":1,"pad":"]`, // unterminated string
		`[{"seq":1,"t":1,"pad":"\`, // unterminated escape
		`[{"a":{"b":1}}]`,          // nested: lexed, then refused
	}
	for _, body := range bad {
		if events, gap, err := parsePoll([]byte(body), nil); !errors.Is(err, event.ErrMalformed) {
			t.Errorf("parsePoll(%q) = %v, %+v, %v; want ErrMalformed", body, events, gap, err)
		}
	}
}

// TestParsePollSizes: every payload size the protocol allows parses, with
// the batch buffer reused.
func TestParsePollSizes(t *testing.T) {
	t.Parallel()
	var events []event.Event
	for _, size := range []int{event.MinSize, event.MinSize + 1, 125, 126, 4096, 65536, event.MaxSize} {
		body := "[" + gapMsg(1, 9) + "," + encodeSize(t, 10, size) + "," + encodeSize(t, 11, size) + "]"
		var gap event.Gap
		var err error
		events, gap, err = parsePoll([]byte(body), events[:0])
		if err != nil || len(events) != 2 || events[0].Seq != 10 || events[1].Seq != 11 || gap.To != 9 {
			t.Errorf("size %d: %+v, %+v, %v", size, events, gap, err)
		}
	}
}

func FuzzParsePoll(f *testing.F) {
	f.Add([]byte(`[]`))
	f.Add([]byte(" [\n] "))
	f.Add([]byte("[" + ev(1) + "," + ev(2) + "]"))
	f.Add([]byte("[" + gapMsg(1, 4) + "," + ev(5) + "]"))
	f.Add([]byte(`[{"seq":9,"t":9,"pad":"},]{[ x"}]`))
	f.Add([]byte(`[{"seq":9,"t":-9   },{"seq":10,"t":0}]`))
	f.Add([]byte("[" + padded + "]"))
	f.Add([]byte(`[{"gap":[1,2]},{"gap":[3,4]}]`))
	f.Add([]byte(`[{"seq":1,"t":1,"pad":"\`))
	f.Fuzz(func(t *testing.T, body []byte) {
		events, gap, err := parsePoll(body, nil)
		if err != nil {
			if !errors.Is(err, event.ErrMalformed) {
				t.Fatalf("parsePoll(%q) error %v does not wrap ErrMalformed", body, err)
			}
			return
		}
		// What parsePoll accepts is a JSON array whose elements are the
		// gap notice (first, if any) and the events it returned.
		var raw []json.RawMessage
		if err := json.Unmarshal(body, &raw); err != nil {
			t.Fatalf("parsePoll accepted %q, which is not a JSON array: %v", body, err)
		}
		hasGap := gap != (event.Gap{})
		if want := len(events) + btoi(hasGap); len(raw) != want {
			t.Fatalf("parsePoll(%q): %d events, gap %v; the array has %d elements", body, len(events), hasGap, len(raw))
		}
		if hasGap {
			if g, err := event.DecodeGap(raw[0]); err != nil || g != gap {
				t.Fatalf("gap %+v, element %q", gap, raw[0])
			}
			raw = raw[1:]
		}
		for i, m := range raw {
			if e, err := event.Decode(m); err != nil || e != events[i] {
				t.Fatalf("event %d = %+v, element %q", i, events[i], m)
			}
		}
	})
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

func TestSSEFields(t *testing.T) {
	t.Parallel()
	const ms = time.Millisecond
	good := []struct {
		msg, id, data string
		retry         time.Duration
		ok            bool
	}{
		{"id: 5\ndata: X", "5", "X", -1, true},
		{"id:5\r\ndata:X", "5", "X", -1, true},
		{"id: 5\rdata: X\r", "5", "X", -1, true},
		{"data: X\nid: 5\n", "5", "X", -1, true},
		{"event: message\nid: 5\n: note\ndata: X\nretry: 10", "5", "X", 10 * ms, true},
		{"id:  5\ndata:  X", " 5", " X", -1, true}, // one space is dropped, not two
		{"id: 5\ndata", "5", "", -1, true},         // empty data: the decoder refuses it
		{": keep-alive", "", "", -1, false},
		{"", "", "", -1, false},
		{"\n\n", "", "", -1, false},
		// The retry field: digits only, in ms; empty drops it (0); any
		// other value is ignored, keeping an earlier one.
		{"retry: 100", "", "", 100 * ms, false},
		{"retry:3000\r\n", "", "", 3000 * ms, false},
		{"retry: 0", "", "", 0, false},
		{"retry:", "", "", 0, false},
		{"retry", "", "", 0, false},
		{"retry: 1.5", "", "", -1, false},
		{"retry: -5", "", "", -1, false},
		{"retry:  5", "", "", -1, false}, // a second space is part of the value
		{"retry: 5s", "", "", -1, false},
		{"retry: 9223372036854", "", "", 9223372036854 * ms, false}, // the longest a Duration holds
		{"retry: 9223372036855", "", "", -1, false},
		{"retry: 99999999999999999999999", "", "", -1, false},
		{"retry: 20\nretry: x", "", "", 20 * ms, false},
		{"retry: 20\nretry: 30", "", "", 30 * ms, false},
	}
	for _, tc := range good {
		id, data, retry, ok, err := sseFields([]byte(tc.msg))
		if err != nil || ok != tc.ok || string(id) != tc.id || string(data) != tc.data || retry != tc.retry {
			t.Errorf("sseFields(%q) = %q, %q, %v, %v, %v; want %q, %q, %v, %v", tc.msg, id, data, retry, ok, err, tc.id, tc.data, tc.retry, tc.ok)
		}
	}
	for _, msg := range []string{"id: 5", "data: X", "id: 5\ndata: X\ndata: Y", "id: 5\nid: 6\ndata: X"} {
		if _, _, _, _, err := sseFields([]byte(msg)); !errors.Is(err, event.ErrMalformed) {
			t.Errorf("sseFields(%q) error = %v, want ErrMalformed", msg, err)
		}
	}
}

func FuzzSSEFields(f *testing.F) {
	f.Add([]byte("id: 5\ndata: " + ev(5)))
	f.Add([]byte("id:5\r\ndata:" + gapMsg(1, 5) + "\r"))
	f.Add([]byte(": comment\nevent: x\nretry: 3"))
	f.Add([]byte("id: 5\nid: 5\ndata: x"))
	f.Add([]byte("data\rid"))
	f.Fuzz(func(t *testing.T, msg []byte) {
		id, data, retry, ok, err := sseFields(msg)
		if retry < -1 {
			t.Fatalf("sseFields(%q) retry %v", msg, retry)
		}
		if err != nil {
			if !errors.Is(err, event.ErrMalformed) {
				t.Fatalf("sseFields(%q) error %v does not wrap ErrMalformed", msg, err)
			}
			return
		}
		if !ok {
			return
		}
		if bytes.ContainsAny(id, "\r\n") || bytes.ContainsAny(data, "\r\n") {
			t.Fatalf("sseFields(%q) = %q, %q: a field holds a line end", msg, id, data)
		}
		// The fields, written back canonically, parse to themselves.
		again := "id: " + string(id) + "\ndata: " + string(data)
		id2, data2, _, ok2, err := sseFields([]byte(again))
		if err != nil || !ok2 || !bytes.Equal(id, id2) || !bytes.Equal(data, data2) {
			t.Fatalf("round trip of %q via %q: %q, %q, %v, %v", msg, again, id2, data2, ok2, err)
		}
	})
}

// TestSSEMessage: the id must match what the data says.
func TestSSEMessage(t *testing.T) {
	t.Parallel()
	var got []batch
	s := newSSE(Config{BaseURL: "http://127.0.0.1:1", Counters: new(Counters)})
	s.d.h = func(b Batch) {
		var c batch
		for _, e := range b.Events {
			c.seqs = append(c.seqs, e.Seq)
		}
		c.gap = b.Gap
		got = append(got, c)
	}
	for _, msg := range []string{"id: 7\ndata: " + ev(7), ": ping", "id: 9\ndata: " + gapMsg(8, 9)} {
		if delivered, err := s.message([]byte(msg)); err != nil || delivered != !strings.HasPrefix(msg, ":") {
			t.Errorf("message(%q) = %v, %v", msg, delivered, err)
		}
	}
	checkBatches(t, got, []batch{{seqs: []uint64{7}}, {gap: event.Gap{From: 8, To: 9}}})
	if s.d.last != 9 {
		t.Errorf("last = %d, want 9", s.d.last)
	}
	for _, msg := range []string{"id: 8\ndata: " + ev(7), "id: 8\ndata: " + gapMsg(8, 9), "id: 07\ndata: " + ev(7)} {
		if _, err := s.message([]byte(msg)); !errors.Is(err, event.ErrMalformed) {
			t.Errorf("message(%q) error = %v, want ErrMalformed", msg, err)
		}
	}
}

func TestReadBody(t *testing.T) {
	t.Parallel()
	body := strings.Repeat("0123456789", 1000)
	for _, hint := range []int64{-1, 0, 10, int64(len(body))} {
		buf := make([]byte, 3, 16) // the reused prefix is discarded by the caller's [:0]
		got, err := readBody(buf[:0], strings.NewReader(body), hint, 1<<20)
		if err != nil || string(got) != body {
			t.Errorf("hint %d: %d bytes, %v", hint, len(got), err)
		}
	}
	if _, err := readBody(nil, strings.NewReader(body), -1, 100); err == nil {
		t.Error("no error over the limit")
	}
	if _, err := readBody(nil, strings.NewReader(body), 1000, 100); err == nil {
		t.Error("no error for an announced length over the limit")
	}
	if _, err := readBody(nil, io.MultiReader(strings.NewReader("ab"), iotest{}), -1, 100); err == nil {
		t.Error("read error lost")
	}
}

type iotest struct{}

func (iotest) Read([]byte) (int, error) { return 0, errors.New("connection reset") }
