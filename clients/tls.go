package clients

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"time"

	"pushbench/webhttp"
)

// ErrNoHTTP2 marks a server that answered over HTTP/1.1 where HTTP/2 was
// asked for: over TLS it chose http/1.1 in ALPN, without TLS it answered
// the h2c preface in HTTP/1. Retrying cannot change that, so Run returns
// it at once.
var ErrNoHTTP2 = errors.New("the server does not speak HTTP/2")

// tlsDialer makes the TLS connections of one subscriber. It dials TCP
// through the subscriber's counting dialer, so that the bytes are counted
// below TLS (ciphertext, record headers and the handshake), and runs the
// handshake itself so that it can count it.
//
// Its tls.Config is the subscriber's own and lives as long as the
// subscriber: its session cache carries the session ticket of one
// connection to the next, so that a reconnect resumes (TLS 1.3 PSK) as a
// browser's does.
type tlsDialer struct {
	dial     dialFunc
	config   *tls.Config
	counters *Counters
	h2       bool // the connection must negotiate h2
}

// newTLSDialer returns the TLS dialer of a subscriber with cfg, dialling
// through dial. With h2 it offers h2 and http/1.1 in ALPN, as a browser
// does, and fails a connection on which the server chose http/1.1;
// otherwise it offers http/1.1 alone.
func newTLSDialer(cfg Config, dial dialFunc, h2 bool) *tlsDialer {
	host := ""
	if u, err := url.Parse(cfg.BaseURL); err == nil { // New has checked it
		host = u.Hostname()
	}
	protos := []string{webhttp.ALPNHTTP1}
	if h2 {
		protos = []string{webhttp.ALPNHTTP2, webhttp.ALPNHTTP1}
	}
	return &tlsDialer{
		dial:     dial,
		config:   webhttp.ClientConfig(cfg.Roots, host, protos...),
		counters: cfg.Counters,
		h2:       h2,
	}
}

// DialTLSContext dials addr and completes a TLS handshake on it.
func (d *tlsDialer) DialTLSContext(ctx context.Context, network, addr string) (net.Conn, error) {
	raw, err := d.dial(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	conn, err := d.handshake(ctx, raw)
	if err != nil {
		raw.Close()
		return nil, err
	}
	return conn, nil
}

// handshake runs the client's TLS handshake on raw, a connection just
// dialled, and counts it. ctx bounds it, as do deadlines set on raw. On an
// error the caller closes raw. A certificate the roots do not verify is a
// permanent error (see permanent); ErrNoHTTP2 too.
func (d *tlsDialer) handshake(ctx context.Context, raw net.Conn) (*tls.Conn, error) {
	conn := tls.Client(raw, d.config)
	start := time.Now()
	if err := conn.HandshakeContext(ctx); err != nil {
		// A handshake that the end of the run interrupted is no
		// failure of the server's; one that timed out is.
		if !errors.Is(ctx.Err(), context.Canceled) {
			d.counters.HandshakeFailures.Add(1)
		}
		return nil, fmt.Errorf("%w with %s: %w", webhttp.ErrTLSHandshake, raw.RemoteAddr(), err)
	}
	elapsed := time.Since(start)
	c := d.counters
	c.Handshakes.Add(1)
	c.HandshakeNs.Add(uint64(elapsed))
	if cc, ok := raw.(*CountingConn); ok {
		// Nothing but the handshake has crossed the connection yet.
		up, down := cc.Counted()
		c.HandshakeBytesUp.Add(up)
		c.HandshakeBytesDown.Add(down)
	}
	state := conn.ConnectionState()
	if state.DidResume {
		c.Resumed.Add(1)
	}
	if d.h2 && state.NegotiatedProtocol != webhttp.ALPNHTTP2 {
		return nil, fmt.Errorf("%w: %s chose %q in ALPN when offered h2 (is HTTP/2 off on the server?)",
			ErrNoHTTP2, raw.RemoteAddr(), state.NegotiatedProtocol)
	}
	return conn, nil
}

// badCertificate reports whether err is a certificate that failed
// verification: a server that retrying would only show again.
func badCertificate(err error) bool {
	var (
		verify    *tls.CertificateVerificationError
		authority x509.UnknownAuthorityError
		hostname  x509.HostnameError
		invalid   x509.CertificateInvalidError
	)
	return errors.As(err, &verify) || errors.As(err, &authority) ||
		errors.As(err, &hostname) || errors.As(err, &invalid)
}
