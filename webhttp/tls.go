package webhttp

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"net"
	"time"
)

// certLifetime is how long a generated certificate is valid: a run is
// bounded well within it.
const certLifetime = 7 * 24 * time.Hour

// SelfSigned returns a fresh self-signed certificate for 127.0.0.1, ::1 and
// localhost with an ECDSA P-256 key, the key type most TLS deployments
// serve browsers today. Nothing is written to disk: the server generates it
// at start, and clients learn it with TrustServer.
func SelfSigned() (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("generate key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("serial: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "pushbench"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(certLifetime),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("create certificate: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, nil
}

// ALPN protocol names.
const (
	ALPNHTTP2 = "h2"
	ALPNHTTP1 = "http/1.1"
)

// ServerConfig is the server's TLS configuration: TLS 1.3 only, cert, and
// ALPN offering h2 and http/1.1 as a deployment with HTTP/2 enabled does;
// the client's offer decides. Session tickets are on (Go's default), so a
// client that reconnects resumes without a full handshake.
func ServerConfig(cert tls.Certificate) *tls.Config {
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{cert},
		NextProtos:   []string{ALPNHTTP2, ALPNHTTP1},
	}
}

// ClientConfig is a client's TLS configuration: TLS 1.3 only, the server's
// certificate verified against roots (from TrustServer) as a browser
// verifies a chain, ALPN offering protos, and a session cache of its own so
// that a reconnect resumes the session (TLS 1.3 PSK) where the server
// allows it. Each client needs its own: a browser tab shares one cache per
// profile, but every pushbench client stands for a different browser.
func ClientConfig(roots *x509.CertPool, serverName string, protos ...string) *tls.Config {
	return &tls.Config{
		MinVersion:         tls.VersionTLS13,
		RootCAs:            roots,
		ServerName:         serverName,
		NextProtos:         protos,
		ClientSessionCache: tls.NewLRUClientSessionCache(1),
	}
}

// TrustServer connects to the TLS server at addr (host:port, which must be
// a loopback address), and returns a pool holding the certificate it
// presents. It is trust on first use, fit only for a server this harness
// started or was pointed at on the same machine; every client then verifies
// the chain and the host name against that pool as usual.
func TrustServer(ctx context.Context, addr string) (*x509.CertPool, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("tls: server address %q: %w", addr, err)
	}
	if ip := net.ParseIP(host); (ip == nil && host != "localhost") || (ip != nil && !ip.IsLoopback()) {
		return nil, fmt.Errorf("tls: trusting the certificate of %s on first use is only done on loopback", addr)
	}
	d := tls.Dialer{Config: &tls.Config{
		MinVersion: tls.VersionTLS13,
		// Verified below by hand: the point is to learn the certificate.
		InsecureSkipVerify: true, //nolint:gosec // trust on first use on loopback, see above
		NextProtos:         []string{ALPNHTTP1},
	}}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("tls: %s: %w: %w", addr, ErrTLSHandshake, err)
	}
	defer conn.Close()
	certs := conn.(*tls.Conn).ConnectionState().PeerCertificates
	if len(certs) == 0 {
		return nil, fmt.Errorf("tls: %s presented no certificate", addr)
	}
	pool := x509.NewCertPool()
	pool.AddCert(certs[0])
	return pool, nil
}
