package bench

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"time"
)

// ProbeRounds is how many round trips the network probe times before a
// cell (compare counts them in its time estimate).
const ProbeRounds = 7

// probeResult is what the probe measured through the emulator: the median
// round trip of a tiny request and its answer, and the bytes each way of
// one round trip (to add their serialisation time at the emulated
// bandwidths to the expected RTT).
type probeResult struct {
	RTT      time.Duration
	Up, Down int // bytes per round trip
}

// probeRTT times rounds round trips of a request the server answers at
// once with a short 404 (GET /netem-probe), over one kept-alive connection
// through the emulator at baseURL, and returns their median.
func probeRTT(ctx context.Context, baseURL string, rounds int, tc *tls.Config) (probeResult, error) {
	u, err := url.Parse(baseURL)
	if err != nil {
		return probeResult{}, err
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", u.Host)
	if err != nil {
		return probeResult{}, fmt.Errorf("probe: %w", err)
	}
	defer conn.Close()
	if tc != nil {
		// The handshake's round trips are not probe rounds.
		tconn := tls.Client(conn, tc)
		if err := tconn.HandshakeContext(ctx); err != nil {
			return probeResult{}, fmt.Errorf("probe: %w", err)
		}
		conn = tconn
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	} else {
		_ = conn.SetDeadline(time.Now().Add(time.Duration(rounds) * 30 * time.Second))
	}
	req := []byte("GET /netem-probe HTTP/1.1\r\nHost: " + u.Host + "\r\n\r\n")
	cr := &countingReader{r: conn}
	br := bufio.NewReader(cr)
	var res probeResult
	var rtts []time.Duration
	for range rounds {
		cr.n = 0
		t0 := time.Now()
		if _, err := conn.Write(req); err != nil {
			return probeResult{}, fmt.Errorf("probe: %w", err)
		}
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			return probeResult{}, fmt.Errorf("probe: %w", err)
		}
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err != nil {
			return probeResult{}, fmt.Errorf("probe: %w", err)
		}
		rtts = append(rtts, time.Since(t0))
		res.Up, res.Down = len(req), cr.n-br.Buffered()
	}
	slices.Sort(rtts)
	res.RTT = rtts[len(rtts)/2]
	return res, nil
}

type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}
