package e2e

import (
	"strings"
	"testing"

	"pushbench/clients"
	"pushbench/event"
)

// TestChecker makes sure the delivery checker the other tests rely on
// reports every kind of fault, and reports it precisely.
func TestChecker(t *testing.T) {
	evs := func(seqs ...uint64) clients.Batch {
		var b clients.Batch
		for _, s := range seqs {
			b.Events = append(b.Events, event.Event{Seq: s, T: 1})
		}
		return b
	}
	gap := func(from, to uint64, seqs ...uint64) clients.Batch {
		b := evs(seqs...)
		b.Gap = event.Gap{From: from, To: to}
		return b
	}
	for _, tc := range []struct {
		name    string
		batches []clients.Batch
		next    uint64 // checker.next afterwards
		lost    uint64
		problem string // "" or a substring of the first problem
	}{
		{"in order", []clients.Batch{evs(1, 2), evs(3)}, 4, 0, ""},
		{"gap then events", []clients.Batch{evs(1), gap(2, 5, 6, 7)}, 8, 4, ""},
		{"duplicate", []clients.Batch{evs(1, 2), evs(2, 3)}, 4, 0, "seq 2 after 2: duplicate or out of order"},
		{"reorder", []clients.Batch{evs(1, 3, 2)}, 4, 0, "seq 3 after 1: events 2..2 missing without a gap notice"},
		{"silent loss", []clients.Batch{evs(1), evs(5)}, 6, 0, "seq 5 after 1: events 2..4 missing without a gap notice"},
		{"gap in the wrong place", []clients.Batch{evs(1, 2), gap(2, 4)}, 5, 0, "gap 2..4, but the next event due was 3"},
		{"malformed gap", []clients.Batch{gap(5, 4)}, 1, 0, "malformed gap 5..4"},
		{"empty batch", []clients.Batch{{}}, 1, 0, "empty batch"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newChecker(0, 0)
			for _, b := range tc.batches {
				c.handle(b)
			}
			st := c.state()
			if st.next != tc.next || st.lost != tc.lost {
				t.Errorf("next %d, lost %d; want %d, %d", st.next, st.lost, tc.next, tc.lost)
			}
			switch p := st.problems(); {
			case tc.problem == "" && p != "":
				t.Errorf("unexpected problem: %s", p)
			case tc.problem != "" && !strings.Contains(p, tc.problem):
				t.Errorf("problems %q, want one containing %q", p, tc.problem)
			}
		})
	}
}
