package e2e

import (
	"testing"
	"time"

	"go.uber.org/goleak"

	"pushbench/servers"
	"pushbench/transport"
)

// TestShutdown connects 100 real clients of each transport, lets events
// flow, and shuts the server down with the publisher still running:
// Shutdown with a one-second context must return nil (issue 2: "returns
// within one second"), Serve must return nil, the server must have no
// connection or stream left, every client's Run must return nil once its
// context is cancelled, what each client got before the shutdown must be a
// gap-free prefix delivered exactly once, and no goroutine may be left.
func TestShutdown(t *testing.T) {
	const (
		nClients = 100
		payload  = 64
	)
	for _, tr := range transport.Names() {
		t.Run(tr, func(t *testing.T) {
			// Everything this test starts ends inside it, so any goroutine
			// left over afterwards is a leak of the server, the clients
			// or this harness.
			leaks := goleak.IgnoreCurrent()

			// Hold: long polls must be held at shutdown, not answered [].
			ts := startServer(t, servers.Config{Ring: 4096, Hold: time.Hour})
			f := startFleet(t, tr, ts.url, nClients)
			f.waitReady(t, ts)
			ts.publish(t, 20, payload, 2000)
			f.waitSeq(t, 20)
			// A slow, endless run: events keep coming during the shutdown.
			if err := ts.StartPublisher(servers.PublishConfig{Rate: 100, Payload: payload}); err != nil {
				t.Fatal(err)
			}

			start := time.Now()
			if err := ts.shutdown(time.Second); err != nil {
				t.Fatalf("shutdown with %d %s clients: %v", nClients, tr, err)
			}
			t.Logf("Shutdown with %d %s clients returned nil after %v", nClients, tr, time.Since(start))
			st := ts.Stats()
			if st.Listener.Open != 0 {
				t.Errorf("after Shutdown the server has %d connections open, want 0", st.Listener.Open)
			}
			for name, s := range st.Transports {
				if s.Active != 0 {
					t.Errorf("after Shutdown the server has %d %s streams or held polls, want 0", s.Active, name)
				}
			}
			if st.Publisher.Running {
				t.Error("after Shutdown the publisher is still running")
			}

			f.stop(t) // Run must return nil for every client
			for _, c := range f.clients {
				s := c.check.state()
				if p := s.problems(); p != "" {
					t.Errorf("%s client %d: %s", tr, c.id, p)
				}
				if len(s.gaps) != 0 || s.events != s.next-1 || s.next-1 < 20 || s.next-1 > st.Head {
					t.Errorf("%s client %d: %d events up to seq %d, gaps %v; want exactly 1..N with 20 <= N <= %d",
						tr, c.id, s.events, s.next-1, s.gaps, st.Head)
				}
			}
			goleak.VerifyNone(t, leaks)
		})
	}
}
