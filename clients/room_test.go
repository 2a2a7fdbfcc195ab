package clients

import (
	"fmt"
	"strconv"
	"strings"
	"testing"

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
