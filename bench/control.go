package bench

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"pushbench/clients"
	"pushbench/proc"
	"pushbench/servers"
	"pushbench/webhttp"
)

// control talks to the server's /stats and /control endpoints over one
// keep-alive connection whose bytes are counted, so that the harness can
// take its own traffic out of the server listener's byte counts.
type control struct {
	base  string
	token string // the server's --token, sent as a bearer token on /control/*
	hc    *http.Client
	ctr   clients.Counters
}

// newControl returns the control connection to the server at base; roots
// holds its certificate for an https base (nil for http). Over TLS the
// counting conn sits below TLS, as the listener's does, so that the bytes
// taken out are the ciphertext the listener counted.
func newControl(base string, roots *x509.CertPool) *control {
	c := &control{base: strings.TrimRight(base, "/")}
	d := &net.Dialer{Timeout: 5 * time.Second}
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		conn, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return clients.NewCountingConn(conn, &c.ctr), nil
	}
	tr := &http.Transport{
		DialContext:         dial,
		MaxIdleConnsPerHost: 1,
		DisableCompression:  true,
		IdleConnTimeout:     time.Hour,
		Proxy:               nil,
	}
	if roots != nil {
		tr.DialTLSContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
			conn, err := dial(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			host, _, _ := net.SplitHostPort(addr)
			tc := tls.Client(conn, webhttp.ClientConfig(roots, host, webhttp.ALPNHTTP1))
			if err := tc.HandshakeContext(ctx); err != nil {
				conn.Close()
				return nil, err
			}
			return tc, nil
		}
	}
	c.hc = &http.Client{Timeout: 30 * time.Second, Transport: tr}
	return c
}

func (c *control) close() { c.hc.CloseIdleConnections() }

// get or post path and decode the JSON answer into v.
func (c *control) do(ctx context.Context, method, path string, v any) error {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, nil)
	if err != nil {
		return err
	}
	if c.token != "" && strings.HasPrefix(path, "/control/") {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, strings.TrimSpace(firstLine(string(body))))
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("%s %s: decode: %w", method, path, err)
	}
	return nil
}

func (c *control) stats(ctx context.Context) (servers.Stats, error) {
	var s servers.Stats
	err := c.do(ctx, http.MethodGet, "/stats", &s)
	return s, err
}

// start asks the publisher for a run (POST /control/start).
func (c *control) start(ctx context.Context, pc servers.PublishConfig) (servers.PublisherStats, error) {
	q := url.Values{}
	q.Set("rate", strconv.FormatFloat(pc.Rate, 'g', -1, 64))
	q.Set("payload", strconv.Itoa(pc.Payload))
	q.Set("schedule", pc.Schedule)
	if pc.Events > 0 {
		q.Set("events", strconv.FormatUint(pc.Events, 10))
	}
	if pc.Duration > 0 {
		q.Set("duration", pc.Duration.String())
	}
	q.Set("spin", pc.Spin.String())
	if pc.Seed != 0 {
		q.Set("seed", strconv.FormatUint(pc.Seed, 10))
	}
	if pc.Workload != "" && pc.Workload != servers.WorkloadBroadcast {
		q.Set("workload", pc.Workload)
		q.Set("room", strconv.Itoa(pc.Room))
	}
	var ps servers.PublisherStats
	err := c.do(ctx, http.MethodPost, "/control/start?"+q.Encode(), &ps)
	return ps, err
}

// stop ends the publisher's run, if any (POST /control/stop).
// gc asks the server for a garbage collection, then its statistics.
func (c *control) gc(ctx context.Context) (servers.Stats, error) {
	var st servers.Stats
	if err := c.do(ctx, http.MethodPost, "/control/gc", &st); err != nil {
		if ctx.Err() != nil {
			return st, err
		}
		// A server without the endpoint (an older `pushbench serve`
		// given with --server): a sample without the collection.
		return c.stats(ctx)
	}
	return st, nil
}

func (c *control) stop(ctx context.Context) error {
	var v json.RawMessage
	return c.do(ctx, http.MethodPost, "/control/stop", &v)
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

// CheckServer verifies that rawURL is a pushbench server that answers GET
// /stats within a few seconds. A server on another address than loopback
// takes load only with its token (a server started with serve --token is
// the user's own) and only over plain HTTP: its self-signed certificate
// could not be verified.
func CheckServer(ctx context.Context, rawURL, token string) error {
	if err := proc.CheckLoopback(ctx, rawURL); err != nil {
		if !errors.Is(err, proc.ErrNotLoopback) {
			return err
		}
		if token == "" {
			return fmt.Errorf("%w; a server elsewhere takes load only with the --token it was started with (serve --token)", err)
		}
		if strings.HasPrefix(rawURL, "https:") {
			return fmt.Errorf("server %s: TLS to a server on another host is not supported (its self-signed certificate cannot be verified)", rawURL)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	var roots *x509.CertPool
	if u, err := url.Parse(rawURL); err == nil && u.Scheme == "https" {
		if roots, err = webhttp.TrustServer(ctx, u.Host); err != nil {
			return fmt.Errorf("server %s: %w", rawURL, err)
		}
	}
	c := newControl(rawURL, roots)
	defer c.close()
	if _, err := c.stats(ctx); err != nil {
		return fmt.Errorf("server %s does not answer: %w", rawURL, err)
	}
	return nil
}
