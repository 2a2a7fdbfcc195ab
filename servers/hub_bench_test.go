package servers

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"pushbench/event"
)

// benchOpTimeout bounds the wait for one benchmark operation, so that a
// broken delivery path fails the benchmark instead of hanging it.
const benchOpTimeout = 10 * time.Second

// BenchmarkHubPublish measures one event through the hub as every transport
// sees it: the publisher's per-event work (encode, copy into a fresh Entry),
// Publish, and N subscribers woken by the closed wake channel, each reading
// the event from the ring with Since into a reused slice — the loop the
// SSE pump, the WebSocket dispatcher and every held long poll run. One op
// ends when all N have read the event (closed loop), so ns/op is the cost of
// a publish plus N wake-ups and ns/subscriber that divided by N.
//
// allocs/op is the same for every N: the Entry and its Data (the
// publisher's, once per event) and the next wake channel (the hub's, once
// per event). Waking and reading allocate nothing per subscriber.
func BenchmarkHubPublish(b *testing.B) {
	for _, n := range []int{1, 1000, 10000} {
		b.Run(fmt.Sprintf("subscribers=%d", n), func(b *testing.B) {
			benchHubPublish(b, n, 256)
		})
	}
}

func benchHubPublish(b *testing.B, subscribers, payload int) {
	h := NewHub(DefaultRing)
	f := &hubFollowers{done: make(chan struct{}, 1), stop: make(chan struct{})}
	var wg sync.WaitGroup
	for range subscribers {
		wg.Go(func() { f.follow(h) })
	}
	defer func() {
		close(f.stop)
		wg.Wait()
	}()

	timer := time.NewTimer(benchOpTimeout)
	defer timer.Stop()
	buf := make([]byte, 0, payload)
	publish := func() {
		now := time.Now()
		seq := h.Head() + 1
		var err error
		// As Publisher.run: encode into a reused buffer, copy into the
		// Entry's own Data, which every subscriber then shares.
		if buf, err = event.Append(buf[:0], event.Event{Seq: seq, T: now.UnixNano()}, payload); err != nil {
			b.Fatal(err)
		}
		data := make([]byte, len(buf))
		copy(data, buf)
		f.left.Store(int64(subscribers))
		if err := h.Publish(&Entry{Seq: seq, T: now.UnixNano(), Published: now.UnixNano(), Data: data}); err != nil {
			b.Fatal(err)
		}
		timer.Reset(benchOpTimeout)
		select {
		case <-f.done:
		case <-timer.C:
			b.Fatalf("event %d: %d of %d subscribers had not read it after %v", seq, f.left.Load(), subscribers, benchOpTimeout)
		}
	}
	// The first event also waits for every follower goroutine to start.
	publish()

	b.ReportAllocs()
	for b.Loop() {
		publish()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(subscribers), "ns/subscriber")
}

// hubFollowers are the subscribers of BenchmarkHubPublish. left counts the
// followers that have not yet read the current event; the one that takes it
// to zero signals done.
type hubFollowers struct {
	left atomic.Int64
	done chan struct{}
	stop chan struct{}
}

// follow reads the hub as the transports do: Since, then wait on the wake
// channel that came with the snapshot.
func (f *hubFollowers) follow(h *Hub) {
	buf := make([]*Entry, 0, 8)
	var last uint64
	for {
		out, _, wake, err := h.Since(last, buf[:0], 256)
		if err != nil {
			return // cannot happen: last never passes the head
		}
		if len(out) > 0 {
			last = out[len(out)-1].Seq
			buf = clearEntries(out)
			// One count per read, not per event: a follower that started
			// late reads the first events together.
			if f.left.Add(-1) == 0 {
				f.done <- struct{}{}
			}
			continue
		}
		select {
		case <-wake:
		case <-f.stop:
			return
		}
	}
}
