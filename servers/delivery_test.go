package servers

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"pushbench/event"
	"pushbench/transport"
)

// TestDeliveryExactlyOnce runs clients of every transport against one
// publishing run at a high rate; half of them join mid-run from since=0, so
// their backlog from the ring overlaps with the live stream. Every client
// must get every event exactly once, in order.
func TestDeliveryExactlyOnce(t *testing.T) {
	const (
		n       = 2000
		payload = 128
		perKind = 4 // half join before the run, half during it
	)
	// The queue holds a whole run: this test is about resume and
	// deduplication, not the slow-consumer policy (TestWSSlowConsumer), and
	// a publisher that falls behind under -race catches up in bursts.
	ts := startServer(t, Config{Ring: 4096, WSQueue: 4096}, nil)
	c := httpClient(t)

	// check verifies that msgs continue the sequence after *last.
	check := func(last *uint64, msg []byte) error {
		e, err := event.Decode(msg)
		if err != nil {
			return err
		}
		if e.Seq != *last+1 {
			return fmt.Errorf("got seq %d after %d", e.Seq, *last)
		}
		*last = e.Seq
		return nil
	}
	poll := func(path string) error {
		var last uint64
		var tick *time.Ticker
		if path == "/poll" {
			tick = time.NewTicker(2 * time.Millisecond) // short polling interval
			defer tick.Stop()
		}
		for last < n {
			if tick != nil {
				<-tick.C
			}
			resp, err := c.Get(ts.url + path + "?since=" + strconv.FormatUint(last, 10))
			if err != nil {
				return err
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil || resp.StatusCode != http.StatusOK {
				return fmt.Errorf("status %d, %v", resp.StatusCode, err)
			}
			var msgs []json.RawMessage
			if err := json.Unmarshal(body, &msgs); err != nil {
				return err
			}
			for _, m := range msgs {
				if err := check(&last, m); err != nil {
					return err
				}
			}
		}
		return nil
	}
	clients := map[string]func() error{
		"shortpoll": func() error { return poll("/poll") },
		"longpoll":  func() error { return poll("/longpoll") },
		"sse": func() error {
			s := dialSSE(t, ts.addr, "/sse?since=0", nil)
			defer s.conn.Close()
			var last uint64
			for last < n {
				id, data, err := s.next()
				if err != nil {
					return err
				}
				if err := check(&last, []byte(data)); err != nil {
					return err
				}
				if id != last {
					return fmt.Errorf("id %d for seq %d", id, last)
				}
			}
			return nil
		},
		"tcp": func() error {
			c := dialTCP(t, ts.addr, "/tcp?since=0", nil)
			defer c.conn.Close()
			var last uint64
			for last < n {
				line, err := c.line()
				if err != nil {
					return err
				}
				if err := check(&last, []byte(line)); err != nil {
					return err
				}
			}
			return nil
		},
		"ws": func() error {
			conn, _ := dialWS(t, ts.addr, "/ws?since=0", nil)
			defer conn.Close()
			var last uint64
			for last < n {
				msg, err := readWS(conn)
				if err != nil {
					return err
				}
				if err := check(&last, []byte(msg)); err != nil {
					return err
				}
			}
			return nil
		},
	}

	var wg sync.WaitGroup
	start := func() {
		for name, run := range clients {
			for i := range perKind / 2 {
				wg.Go(func() {
					if err := run(); err != nil {
						t.Errorf("%s client %d: %v", name, i, err)
					}
				})
			}
		}
	}
	start()
	if err := ts.StartPublisher(PublishConfig{Rate: 10000, Payload: payload, Events: n}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a quarter of the run", func() bool { return ts.Hub().Head() >= n/4 })
	start()
	wg.Wait()
	<-ts.Publisher().Done()

	// A transport counts an event once its write returned, which can be
	// after the client read it: wait for the counts to settle.
	waitFor(t, "every event sent to be counted", func() bool {
		st := ts.Stats()
		for _, name := range transport.Names() {
			if st.Transports[name].EventsSent < perKind*n {
				return false
			}
		}
		return true
	})
	st := ts.Stats()
	for _, name := range transport.Names() {
		tr := st.Transports[name]
		if tr.EventsSent != perKind*n || tr.Gaps != 0 || tr.SlowDisconnects != 0 {
			t.Errorf("%s: %+v, want %d events sent, no gaps, no slow disconnects", name, tr, perKind*n)
		}
	}
	t.Logf("publisher: %d events, lag p99 %v, behind %d; sse stalls %d", st.Publisher.Published, st.Publisher.LagP99, st.Publisher.Behind, st.Transports[transport.SSE].Stalls)
}
