package clients

import (
	"slices"
	"testing"

	"pushbench/event"
)

// TestAcks: a subscriber that reads acknowledgements gets, per event of a
// batch, the input number the snapshot acknowledges for its client (0 when
// the snapshot has none for it); one that does not gets no Acks.
func TestAcks(t *testing.T) {
	snap := func(seq uint64, acks ...uint64) []byte {
		var tag []byte
		for i := 0; i+1 < len(acks); i += 2 {
			tag = event.AppendAck(tag, acks[i], acks[i+1])
		}
		b, err := event.AppendTagged(nil, event.Event{Seq: seq, T: 1}, 256, tag)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	body := []byte("[" + string(snap(1, 3, 7, 4, 9)) + "," + string(snap(2, 4, 10)) + "," + string(snap(3, 3, 8)) + "]")
	var got [][]uint64
	d := newDelivery(Config{Acks: true, AckFrom: 3})
	d.h = func(b Batch) { got = append(got, slices.Clone(b.Acks)) }
	events, gap, err := parsePollWith(body, d.events[:0], d.decode)
	if err != nil {
		t.Fatal(err)
	}
	d.deliver(events, gap)
	if want := [][]uint64{{7, 0, 8}}; !slices.EqualFunc(got, want, slices.Equal) {
		t.Errorf("acks %v, want %v", got, want)
	}
	// One message at a time, as the streams decode.
	got = nil
	for _, m := range [][]byte{snap(4, 3, 11), snap(5)} {
		events, gap, err := d.decode(m, d.events[:0])
		if err != nil {
			t.Fatal(err)
		}
		d.deliver(events, gap)
	}
	if want := [][]uint64{{11}, {0}}; !slices.EqualFunc(got, want, slices.Equal) {
		t.Errorf("stream acks %v, want %v", got, want)
	}
	// Without Acks, none.
	plain := newDelivery(Config{AckFrom: 3})
	plain.h = func(b Batch) {
		if b.Acks != nil {
			t.Errorf("acks without Config.Acks: %v", b.Acks)
		}
	}
	events, gap, _ = plain.decode(snap(6, 3, 12), plain.events[:0])
	plain.deliver(events, gap)
}
