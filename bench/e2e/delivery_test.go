package e2e

import (
	"fmt"
	"testing"

	"pushbench/servers"
	"pushbench/transport"
)

// TestExactlyOnce runs 50 real clients of each transport against a real
// server and publishes 2,000 events at 4,000 events/s: every client must
// receive every event exactly once, in order, with no gap. The ring and the
// WebSocket queue hold the whole run, so no client can fall out of the ring
// or be cut as a slow consumer however slowly -race runs; the server's own
// counters must then agree (one delivery per event per client).
func TestExactlyOnce(t *testing.T) {
	const (
		nClients = 50
		nEvents  = 2000
		rate     = 4000
		payload  = 128
	)
	for _, tr := range transport.Names() {
		t.Run(tr, func(t *testing.T) {
			ts := startServer(t, servers.Config{Ring: 4096, WSQueue: 4096})
			f := startFleet(t, tr, ts.url, nClients)
			f.waitReady(t, ts)

			ts.publish(t, nEvents, payload, rate)
			f.waitSeq(t, nEvents)
			f.stop(t)
			f.expectExactlyOnce(t, nEvents)

			// The server counts a delivery right after its write, which
			// may be a moment after the client has read it.
			want := uint64(nClients * nEvents)
			waitFor(t, fmt.Sprintf("%d %s deliveries counted by the server", want, tr), func() bool {
				return ts.transportStats(tr).EventsSent >= want
			})
			st := ts.transportStats(tr)
			if st.EventsSent != want || st.Gaps != 0 || st.SlowDisconnects != 0 {
				t.Errorf("server %s counters: events_sent %d, gaps %d, slow_disconnects %d; want %d, 0, 0",
					tr, st.EventsSent, st.Gaps, st.SlowDisconnects, want)
			}
		})
	}
}
