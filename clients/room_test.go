package clients

import (
	"fmt"
	"strconv"
	"strings"
	"testing"

	"pushbench/event"
	"pushbench/transport"
)

// TestRoomQuery: with a room every subscription request — the first, and
// each resume after a cut — carries room=R; room 0 carries none.
func TestRoomQuery(t *testing.T) {
	t.Parallel()
	for _, tr := range transport.Names() {
		for _, room := range []int{0, 12} {
			t.Run(fmt.Sprintf("%s/room=%d", tr, room), func(t *testing.T) {
				t.Parallel()
				script := []answer{{msgs: []string{ev(1)}, end: endClean}, {msgs: []string{ev(2)}}}
				lasts := []uint64{0, 1}
				f := newFake(t, tr, script...)
				c := startClient(t, tr, f.url, Config{Room: room}, upTo(2))
				checkBatches(t, c.collect(t), one(1, 2))
				reqs := f.requests()
				if len(reqs) != len(lasts) {
					t.Fatalf("requests %+v, want %d", reqs, len(lasts))
				}
				for i, r := range reqs {
					checkResume(t, tr, i, r, lasts[i])
					if r.hasRoom != (room > 0) || (room > 0 && r.room != strconv.Itoa(room)) {
						t.Errorf("request %d: room %q (%v), want room %d", i, r.room, r.hasRoom, room)
					}
				}
			})
		}
	}
	if _, err := New(transport.SSE, Config{BaseURL: "http://127.0.0.1:1", Room: -1}); err == nil || !strings.Contains(err.Error(), "room") {
		t.Errorf("New with room -1: error %v", err)
	}
}

// TestTaggedEventsDecode: chat messages and game snapshots are events whose
// pad opens with a tag; every transport delivers them as events.
func TestTaggedEventsDecode(t *testing.T) {
	t.Parallel()
	tagged := func(seq uint64, tag []byte) string {
		b, err := event.AppendTagged(nil, event.Event{Seq: seq, T: int64(seq) * 1000}, testPayload, tag)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	chat := tagged(1, event.AppendMessageTag(nil, event.Upstream{From: 7, N: 42}))
	game := tagged(2, event.AppendAck(event.AppendAck(nil, 7, 42), 8, 3))
	if pad := event.PadOf([]byte(game)); !strings.HasPrefix(string(pad), "a7:42;a8:3;") {
		t.Fatalf("snapshot pad %q", pad)
	}
	for _, tr := range transport.Names() {
		t.Run(tr, func(t *testing.T) {
			t.Parallel()
			script := []answer{{msgs: []string{chat, game}}}
			want := one(1, 2)
			if isPoll(tr) {
				want = []batch{{seqs: []uint64{1, 2}}}
			}
			f := newFake(t, tr, script...)
			c := startClient(t, tr, f.url, Config{}, upTo(2))
			checkBatches(t, c.collect(t), want)
			if e := c.counters.Errors.Load(); e != 0 {
				t.Errorf("errors %d", e)
			}
		})
	}
}
