package servers

import (
	"errors"
	"testing"

	"pushbench/event"
)

func TestHubSince(t *testing.T) {
	h := NewHub(4)
	if _, _, _, err := h.Since(0, nil, 0); err != nil {
		t.Fatalf("Since(0) on an empty hub: %v", err)
	}
	if _, _, _, err := h.Since(1, nil, 0); !errors.Is(err, ErrAhead) {
		t.Fatalf("Since(1) on an empty hub: err %v, want ErrAhead", err)
	}
	publish(t, h, 6, 60) // ring holds 3..6
	tests := []struct {
		since   uint64
		max     int
		gap     event.Gap
		first   uint64
		n       int
		wantErr bool
	}{
		{since: 0, gap: event.Gap{From: 1, To: 2}, first: 3, n: 4},
		{since: 1, gap: event.Gap{From: 2, To: 2}, first: 3, n: 4},
		{since: 2, first: 3, n: 4},
		{since: 5, first: 6, n: 1},
		{since: 6, n: 0},
		{since: 7, wantErr: true},
		{since: 1<<64 - 1, wantErr: true},
		{since: 0, max: 2, gap: event.Gap{From: 1, To: 2}, first: 3, n: 2},
		{since: 3, max: 1, first: 4, n: 1},
		{since: 3, max: 10, first: 4, n: 3},
	}
	for _, tt := range tests {
		out, gap, wake, err := h.Since(tt.since, nil, tt.max)
		if tt.wantErr {
			if !errors.Is(err, ErrAhead) {
				t.Errorf("Since(%d): err %v, want ErrAhead", tt.since, err)
			}
			continue
		}
		if err != nil || wake == nil {
			t.Errorf("Since(%d): err %v, wake %v", tt.since, err, wake)
			continue
		}
		if gap != tt.gap {
			t.Errorf("Since(%d, max %d): gap %+v, want %+v", tt.since, tt.max, gap, tt.gap)
		}
		if len(out) != tt.n {
			t.Errorf("Since(%d, max %d): %d events, want %d", tt.since, tt.max, len(out), tt.n)
			continue
		}
		for i, e := range out {
			if want := tt.first + uint64(i); e.Seq != want {
				t.Errorf("Since(%d, max %d)[%d]: seq %d, want %d", tt.since, tt.max, i, e.Seq, want)
			}
		}
	}
	if h.Head() != 6 || h.Cap() != 4 {
		t.Errorf("Head %d Cap %d, want 6 and 4", h.Head(), h.Cap())
	}
}

func TestHubPublishRejectsHoles(t *testing.T) {
	h := NewHub(4)
	for _, seq := range []uint64{0, 2} {
		if err := h.Publish(&Entry{Seq: seq, Data: []byte("x")}); err == nil {
			t.Errorf("Publish(seq %d) on an empty hub: no error", seq)
		}
	}
}

func TestHubWake(t *testing.T) {
	h := NewHub(4)
	_, _, wake, _ := h.Since(0, nil, 0)
	select {
	case <-wake:
		t.Fatal("wake closed before any publish")
	default:
	}
	publish(t, h, 1, 60)
	// The publish closes the channel; a receive would block forever
	// otherwise and the test would time out.
	<-wake
	// The snapshot and the wake channel come from one call: after it, the
	// next publish closes the new channel and nothing in between is missed.
	out, _, wake2, _ := h.Since(0, nil, 0)
	if len(out) != 1 {
		t.Fatalf("%d events after one publish", len(out))
	}
	select {
	case <-wake2:
		t.Fatal("new wake channel already closed")
	default:
	}
	publish(t, h, 1, 60)
	<-wake2
}
