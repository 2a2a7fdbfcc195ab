package event

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func TestUpstreamRoundTrip(t *testing.T) {
	for _, size := range []int{UpstreamMinSize, UpstreamMinSize + 3, 256, 4096} {
		for _, u := range []Upstream{{From: 0, N: 1, T: 1}, {From: 7, N: 42, T: 1764081000000000000},
			{From: 1<<64 - 1, N: 1<<64 - 1, T: -1 << 63}} {
			b, err := AppendUpstream(nil, u, size)
			if err != nil {
				t.Fatalf("%+v in %d: %v", u, size, err)
			}
			if len(b) != size {
				t.Errorf("%+v: %d bytes, want %d", u, len(b), size)
			}
			got, err := DecodeUpstream(b)
			if err != nil || got != u {
				t.Errorf("%+v in %d: decoded %+v, %v (%s)", u, size, got, err, b)
			}
		}
	}
	if got, want := UpstreamMinSize, 79; got != want {
		t.Errorf("UpstreamMinSize %d, want %d", got, want)
	}
	if _, err := AppendUpstream(nil, Upstream{N: 1}, UpstreamMinSize-1); err == nil {
		t.Errorf("a message below the minimum size was encoded")
	}
	if _, err := AppendUpstream(nil, Upstream{}, 256); !errors.Is(err, ErrMalformed) {
		t.Errorf("n 0: %v", err)
	}
	// Exactly the form of the protocol document.
	b, _ := AppendUpstream(nil, Upstream{From: 7, N: 42, T: 1764081000000000000}, 100)
	if want := `{"from":7,"n":42,"t":1764081000000000000,"pad":"` + strings.Repeat("x", 50) + `"}`; string(b) != want {
		t.Errorf("%s, want %s", b, want)
	}
}

func TestDecodeUpstreamRejects(t *testing.T) {
	for _, s := range []string{
		``, `{}`, `{"from":1,"n":0,"t":5}`, `{"from":-1,"n":1,"t":5}`, `{"from":1,"n":1,"t":5`,
		`{"from":1,"n":1,"t":5,"pad":"x}`, `{"from":1,"n":1,"t":5,"pad":"a\\b"}`, `{"from":1,"n":1,"t":5} x`,
		`{"seq":1,"t":5}`, `{"from":01,"n":1,"t":5}`, "{\"from\":1,\"n\":1,\"t\":5,\"pad\":\"\x01\"}",
	} {
		if _, err := DecodeUpstream([]byte(s)); !errors.Is(err, ErrMalformed) {
			t.Errorf("%q: %v, want ErrMalformed", s, err)
		}
	}
	if u, err := DecodeUpstream([]byte(`{"from":3,"n":9,"t":-5,"pad":"any text; ok"}`)); err != nil || u != (Upstream{3, 9, -5}) {
		t.Errorf("free padding: %+v %v", u, err)
	}
}

func TestTaggedEvents(t *testing.T) {
	u := Upstream{From: 12, N: 345, T: 99}
	tag := AppendMessageTag(nil, u)
	if string(tag) != "f12n345;" {
		t.Errorf("tag %q", tag)
	}
	b, err := AppendTagged(nil, Event{Seq: 5, T: 99}, 128, tag)
	if err != nil || len(b) != 128 {
		t.Fatalf("%s (%d bytes): %v", b, len(b), err)
	}
	e, err := Decode(b)
	if err != nil || e != (Event{Seq: 5, T: 99}) {
		t.Errorf("decode %s: %+v %v", b, e, err)
	}
	if pad := PadOf(b); !bytes.HasPrefix(pad, tag) {
		t.Errorf("pad %q", pad)
	}
	// A snapshot with acks, and the lookup of each.
	var acks []byte
	acks = AppendAck(acks, 1, 10)
	acks = AppendAck(acks, 11, 7)
	acks = AppendAck(acks, 111, 1<<64-1)
	b, err = AppendTagged(nil, Event{Seq: 3, T: 1}, SnapshotMinSize(3), acks)
	if err != nil {
		t.Fatal(err)
	}
	pad := PadOf(b)
	for _, tc := range []struct {
		from, n uint64
		ok      bool
	}{{1, 10, true}, {11, 7, true}, {111, 1<<64 - 1, true}, {2, 0, false}, {1111, 0, false}} {
		n, ok := FindAck(pad, tc.from)
		if n != tc.n || ok != tc.ok {
			t.Errorf("ack of %d: %d %v, want %d %v", tc.from, n, ok, tc.n, tc.ok)
		}
	}
	// The worst case fills SnapshotMinSize exactly; one byte less fails.
	var worst []byte
	for range 4 {
		worst = AppendAck(worst, 1<<64-1, 1<<64-1)
	}
	if _, err := AppendTagged(nil, Event{Seq: 1<<64 - 1, T: -1 << 63}, SnapshotMinSize(4), worst); err != nil {
		t.Errorf("worst case at SnapshotMinSize: %v", err)
	}
	if _, err := AppendTagged(nil, Event{Seq: 1<<64 - 1, T: -1 << 63}, SnapshotMinSize(4)-1, worst); err == nil {
		t.Errorf("worst case below SnapshotMinSize fitted")
	}
	if _, err := AppendTagged(nil, Event{Seq: 1, T: 1}, 128, []byte(`bad"tag`)); err == nil {
		t.Errorf("a quote in a tag was accepted")
	}
}

// FindAck runs once per snapshot and client: it must not allocate.
func TestFindAckAllocs(t *testing.T) {
	pad := AppendAck(AppendAck(nil, 3, 7), 12, 99)
	if n := testing.AllocsPerRun(100, func() { _, _ = FindAck(pad, 12) }); n != 0 {
		t.Errorf("FindAck allocates %v times", n)
	}
	if _, ok := FindAck([]byte("a12:9x;"), 12); ok {
		t.Errorf("a malformed ack was accepted")
	}
}
