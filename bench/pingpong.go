package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"pushbench/results"
)

// Baseline is a raw TCP ping-pong on loopback between two goroutines: the
// kernel's share of any delivery on this machine (BenchmarkPingPong). It
// sits under the tcp transport, the floor the reports use, which adds the
// publisher, the hub and a second process; tcp minus this is what those
// cost. One-way time is RTT/2.
type Baseline struct {
	Schema     string          `json:"schema"`
	Rounds     int             `json:"rounds"` // measured round trips (after warm-up rounds)
	Size       int             `json:"size"`   // bytes each way per round
	GapNs      int64           `json:"gap_ns"` // pause between rounds (0: back to back)
	RTT        results.Latency `json:"rtt_ns"` // round-trip times
	OneWayP50  int64           `json:"one_way_p50_ns"`
	OneWayP99  int64           `json:"one_way_p99_ns"`
	MeasuredAt string          `json:"measured_at"` // RFC 3339
}

// BaselineSchema names the version of Baseline.
const BaselineSchema = "pushbench.baseline/v1"

// PingPong measures rounds round trips of size-byte messages over one TCP
// connection on 127.0.0.1 between two goroutines of this process (after
// rounds/10 unmeasured warm-up rounds). Both ends use the same Go runtime
// and net package as the transports; TCP_NODELAY is on (Go's default).
//
// With gap 0 the rounds go back to back: both ends stay hot, the classic
// ping-pong. With a gap they pause between rounds as events do, so each
// round also pays for waking both ends from idle, which an event
// delivery pays too.
func PingPong(ctx context.Context, rounds, size int, gap time.Duration) (Baseline, error) {
	b := Baseline{Schema: BaselineSchema, Rounds: rounds, Size: size, GapNs: int64(gap)}
	if rounds < 1 || size < 1 || gap < 0 {
		return b, errors.New("ping-pong: rounds and size must be positive, the gap not negative")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return b, fmt.Errorf("ping-pong: %w", err)
	}
	defer ln.Close()
	echoed := make(chan error, 1)
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			echoed <- err
			return
		}
		defer conn.Close()
		buf := make([]byte, size)
		for {
			if _, err := io.ReadFull(conn, buf); err != nil {
				if errors.Is(err, io.EOF) {
					err = nil
				}
				echoed <- err
				return
			}
			if _, err := conn.Write(buf); err != nil {
				echoed <- err
				return
			}
		}
	}()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", ln.Addr().String())
	if err != nil {
		ln.Close()
		<-echoed
		return b, fmt.Errorf("ping-pong: %w", err)
	}
	// Unblock both ends if ctx ends mid-run.
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()

	h := results.NewHistogram()
	msg := make([]byte, size)
	buf := make([]byte, size)
	warm := rounds / 10
	var pause *time.Timer
	if gap > 0 {
		pause = time.NewTimer(gap)
		defer pause.Stop()
	}
	for i := range warm + rounds {
		if pause != nil && i > 0 {
			pause.Reset(gap)
			select {
			case <-ctx.Done():
				err = ctx.Err()
			case <-pause.C:
			}
			if err != nil {
				break
			}
		}
		t0 := time.Now()
		if _, err = conn.Write(msg); err != nil {
			break
		}
		if _, err = io.ReadFull(conn, buf); err != nil {
			break
		}
		if i >= warm {
			_ = h.RecordValue(int64(time.Since(t0)))
		}
	}
	conn.Close()
	echoErr := <-echoed
	if err != nil {
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		return b, fmt.Errorf("ping-pong: %w", err)
	}
	if echoErr != nil && !errors.Is(echoErr, net.ErrClosed) {
		return b, fmt.Errorf("ping-pong echo: %w", echoErr)
	}
	b.RTT = results.Summarise(h)
	b.OneWayP50 = b.RTT.P50 / 2
	b.OneWayP99 = b.RTT.P99 / 2
	b.MeasuredAt = time.Now().UTC().Format(time.RFC3339)
	return b, nil
}
