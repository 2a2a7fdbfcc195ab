package e2e

import (
	"testing"

	"pushbench/event"
	"pushbench/servers"
	"pushbench/transport"
)

// cutter is one way of cutting the connections between the clients and the
// server and holding back their reconnects.
type cutter interface {
	cut() int
	pause()
	resume()
}

// side names where a cut comes from.
type side struct {
	name string
	// setup returns the URL the clients use and the cutter.
	setup func(t *testing.T, ts *testServer) (string, cutter)
}

var sides = []side{
	{"server", func(t *testing.T, ts *testServer) (string, cutter) {
		// The server's sockets are closed under it: the listener it
		// serves on hands out the connections it can cut.
		return ts.url, ts.ln
	}},
	{"client", func(t *testing.T, ts *testServer) (string, cutter) {
		// The clients' sockets are closed under them: they connect
		// through a proxy that cuts both directions.
		p := startProxy(t, ts.addr)
		return p.url, p
	}},
}

// expectResumed checks that every client of f reconnected after the cut:
// a new TCP connection and a counted reconnect. (A poll cut on a
// kept-alive connection is retried by net/http itself; pollers count the
// new connection as the reconnect, see clients.Counters.)
func expectResumed(t *testing.T, f *fleet) {
	t.Helper()
	for _, c := range f.clients {
		dials, reconnects := c.counters.Dials.Load(), c.counters.Reconnects.Load()
		t.Logf("%s client %d: dials %d, reconnects %d, errors %d, requests %d",
			f.transport, c.id, dials, reconnects, c.counters.Errors.Load(), c.counters.Requests.Load())
		if dials < 2 {
			t.Errorf("%s client %d: %d TCP connections after a cut, want at least 2", f.transport, c.id, dials)
		}
		if reconnects < 1 {
			t.Errorf("%s client %d: Counters.Reconnects %d after a cut, want at least 1", f.transport, c.id, reconnects)
		}
	}
}

// TestCutResume cuts every connection in the middle of a stream of 2,000
// events, from the server's side and from the clients' side, while the ring
// still holds everything: every client must resume and get every event
// exactly once, in order, with no gap.
//
// The cut comes while the first run of 1,000 events is being published (the
// test waits for the hub to pass seq 300); the second run starts only after
// the cut, so every client has to reconnect to finish.
func TestCutResume(t *testing.T) {
	const (
		nClients = 5
		run      = 1000
		rate     = 4000
		payload  = 128
	)
	for _, tr := range transport.Names() {
		for _, sd := range sides {
			t.Run(tr+"/"+sd.name, func(t *testing.T) {
				ts := startServer(t, servers.Config{Ring: 4096, WSQueue: 4096})
				url, cutter := sd.setup(t, ts)
				f := startFleet(t, tr, url, nClients)
				f.waitReady(t, ts)

				done := ts.startPublisher(t, run, payload, rate)
				waitFor(t, "the hub to pass seq 300", func() bool { return ts.Hub().Head() >= 300 })
				if n := cutter.cut(); n < nClients {
					t.Fatalf("cut %d connections, want at least %d (one per client)", n, nClients)
				}
				ts.waitPublished(t, done, run)
				ts.publish(t, run, payload, rate)

				f.waitSeq(t, 2*run)
				f.stop(t)
				f.expectExactlyOnce(t, 2*run)
				expectResumed(t, f)
			})
		}
	}
}

// TestCutGap cuts every connection after 10 delivered events and holds the
// reconnects back (a paused listener or proxy, not a sleep) while 40 more
// are published into a ring of 16: events 11..34 have left the ring. Every
// client must then report exactly that range as one explicit gap (24
// events lost), get 35..50 exactly once, and go on with 51..60 after it.
func TestCutGap(t *testing.T) {
	const (
		nClients = 3
		ring     = 16
		rate     = 4000
		payload  = 128
	)
	wantGap := event.Gap{From: 11, To: 34}
	for _, tr := range transport.Names() {
		for _, sd := range sides {
			t.Run(tr+"/"+sd.name, func(t *testing.T) {
				ts := startServer(t, servers.Config{Ring: ring})
				url, cutter := sd.setup(t, ts)
				f := startFleet(t, tr, url, nClients)
				f.waitReady(t, ts)

				ts.publish(t, 10, payload, rate)
				f.waitSeq(t, 10)

				cutter.pause()
				if n := cutter.cut(); n < nClients {
					t.Fatalf("cut %d connections, want at least %d (one per client)", n, nClients)
				}
				ts.publish(t, 40, payload, rate)
				cutter.resume()
				f.waitSeq(t, 50)
				ts.publish(t, 10, payload, rate)
				f.waitSeq(t, 60)
				f.stop(t)

				for _, c := range f.clients {
					st := c.check.state()
					if p := st.problems(); p != "" {
						t.Errorf("%s client %d: %s", tr, c.id, p)
					}
					if len(st.gaps) != 1 || st.gaps[0] != wantGap || st.lost != wantGap.Len() {
						t.Errorf("%s client %d: gaps %v (%d lost), want exactly [%v] (%d lost)",
							tr, c.id, st.gaps, st.lost, wantGap, wantGap.Len())
					}
					if want := uint64(60) - wantGap.Len(); st.events != want || st.next != 61 {
						t.Errorf("%s client %d: %d events up to seq %d, want %d (1..10, 35..60)",
							tr, c.id, st.events, st.next-1, want)
					}
				}
				expectResumed(t, f)
				// The server may count a gap notice a moment after the
				// client has read it.
				want := nClients * wantGap.Len()
				waitFor(t, "the server to count the gap notices", func() bool {
					return ts.transportStats(tr).GapEvents >= want
				})
				if st := ts.transportStats(tr); st.Gaps != nClients || st.GapEvents != want {
					t.Errorf("server %s counters: gaps %d, gap_events %d; want %d, %d", tr, st.Gaps, st.GapEvents, nClients, want)
				}
			})
		}
	}
}

// TestSubscribeGap subscribes from seq 0 after 50 events have gone into a
// ring of 16: the very first answer must be one explicit gap for 1..34,
// then 35..50 exactly once, and the subscription goes on with 51..60.
func TestSubscribeGap(t *testing.T) {
	const (
		nClients = 3
		payload  = 128
	)
	wantGap := event.Gap{From: 1, To: 34}
	for _, tr := range transport.Names() {
		t.Run(tr, func(t *testing.T) {
			ts := startServer(t, servers.Config{Ring: 16})
			ts.publish(t, 50, payload, 4000)
			f := startFleet(t, tr, ts.url, nClients)
			f.waitReady(t, ts)
			f.waitSeq(t, 50)
			ts.publish(t, 10, payload, 4000)
			f.waitSeq(t, 60)
			f.stop(t)
			for _, c := range f.clients {
				st := c.check.state()
				if p := st.problems(); p != "" {
					t.Errorf("%s client %d: %s", tr, c.id, p)
				}
				if len(st.gaps) != 1 || st.gaps[0] != wantGap || st.lost != wantGap.Len() ||
					st.events != 60-wantGap.Len() || st.next != 61 {
					t.Errorf("%s client %d: gaps %v (%d lost), %d events up to seq %d; want gap [%v], then 35..60",
						tr, c.id, st.gaps, st.lost, st.events, st.next-1, wantGap)
				}
			}
		})
	}
}
