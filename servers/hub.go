package servers

import (
	"errors"
	"fmt"
	"sync"

	"pushbench/event"
)

// Entry is one published event as every transport sends it. Data is encoded
// once by the publisher and shared read-only by all subscribers; nothing
// copies or re-encodes it per subscriber.
type Entry struct {
	Seq       uint64
	T         int64  // scheduled publish time, Unix ns (the event's t)
	Published int64  // actual publish time, Unix ns
	Data      []byte // the encoded event, exactly the configured payload size
}

// ErrAhead is returned for a since beyond the newest published event.
var ErrAhead = errors.New("since is ahead of the newest event")

// Hub holds the ring of the last K events and wakes waiting subscribers when
// a new one is published. It is the single source every transport reads.
type Hub struct {
	mu   sync.RWMutex
	ring []*Entry // ring[seq % len(ring)]; grows up to k slots (newRoomHub)
	k    int      // the ring's capacity K
	head uint64   // newest seq; 0 before the first event
	wake chan struct{}
	// spare is the wake channel of the publish after next, made ahead.
	spare chan struct{}
}

// NewHub returns a hub that keeps the last k events, its ring allocated
// up front (room 0, and every hub of a one-room server).
func NewHub(k int) *Hub { return newHub(k, k) }

// roomRingStart is the ring a hub of a room other than room 0 starts
// with: with thousands of rooms, k slots per room up front would be most
// of the server's memory before a single message.
const roomRingStart = 16

// newRoomHub returns a hub that keeps the last k events in a ring that
// starts small and doubles as events come, up to k slots. It only grows
// while nothing has left it, so an event's slot stays seq % len(ring).
func newRoomHub(k int) *Hub { return newHub(k, min(k, roomRingStart)) }

func newHub(k, slots int) *Hub {
	if k < 1 {
		k = 1
	}
	slots = max(1, min(slots, k))
	return &Hub{ring: make([]*Entry, slots), k: k, wake: make(chan struct{})}
}

// Cap is the ring size K.
func (h *Hub) Cap() int { return h.k }

// Head returns the newest published seq (0 if none).
func (h *Hub) Head() uint64 {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return h.head
}

// Publish appends e to the ring and wakes every waiter. e.Seq must be
// Head()+1: sequence numbers have no holes, so clients can count loss.
func (h *Hub) Publish(e *Entry) error {
	h.mu.Lock()
	if e.Seq != h.head+1 {
		h.mu.Unlock()
		return fmt.Errorf("hub: publish seq %d after %d", e.Seq, h.head)
	}
	if e.Seq >= uint64(len(h.ring)) && len(h.ring) < h.k {
		// Not full yet: events 1..head sit at their seq, and a bigger
		// ring keeps them there.
		ring := make([]*Entry, min(2*len(h.ring), h.k))
		copy(ring, h.ring)
		h.ring = ring
	}
	h.ring[e.Seq%uint64(len(h.ring))] = e
	h.head = e.Seq
	wake := h.wake
	next := h.spare
	if next == nil {
		next = make(chan struct{})
	}
	h.wake, h.spare = next, nil
	h.mu.Unlock()
	// Closing the channel wakes every waiter at once without a queue per
	// subscriber; each one then reads what it needs from the ring.
	close(wake)
	// The next publish's channel is made after the wake-up, off the
	// latency-critical path (an allocation there can be drafted into GC
	// mark assist).
	spare := make(chan struct{})
	h.mu.Lock()
	if h.spare == nil {
		h.spare = spare
	}
	h.mu.Unlock()
	return nil
}

// Since appends to dst the events after seq since, at most max of them
// (max <= 0: all that are in the ring), oldest first. If some of those
// events have already left the ring, gap names them and the returned events
// start right after it. wake is closed at the next Publish: take it from the
// same call as the snapshot so no publish can slip between the two.
func (h *Hub) Since(since uint64, dst []*Entry, max int) (out []*Entry, gap event.Gap, wake <-chan struct{}, err error) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	if since > h.head {
		return dst, gap, h.wake, fmt.Errorf("since %d: %w (%d)", since, ErrAhead, h.head)
	}
	first := since + 1
	oldest := uint64(1)
	if h.head > uint64(len(h.ring)) {
		oldest = h.head - uint64(len(h.ring)) + 1
	}
	if first < oldest {
		gap = event.Gap{From: first, To: oldest - 1}
		first = oldest
	}
	last := h.head
	if max > 0 && last >= first && last-first+1 > uint64(max) {
		last = first + uint64(max) - 1
	}
	for s := first; s <= last && s != 0; s++ {
		dst = append(dst, h.ring[s%uint64(len(h.ring))])
	}
	return dst, gap, h.wake, nil
}
