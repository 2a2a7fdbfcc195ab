package clients

import (
	"bufio"
	"compress/gzip"
	"crypto/sha1"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"pushbench/event"
	"pushbench/internal/testnet"
	"pushbench/transport"
	"pushbench/webhttp"
)

// The tests of HTTP as browsers speak it: header profiles byte for byte,
// TLS below the counters, HTTP/2 on one connection, gzip.

// testCert is the certificate of every TLS test server.
var testCert = sync.OnceValue(func() tls.Certificate {
	cert, err := webhttp.SelfSigned()
	if err != nil {
		panic(err)
	}
	return cert
})

// rootsOf returns a pool that trusts cert.
func rootsOf(cert tls.Certificate) *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(cert.Leaf)
	return pool
}

// withTLS returns o over TLS, HTTP/2 if h2.
func withTLS(o webhttp.Options, h2 bool) webhttp.Options {
	o.TLS = true
	if h2 {
		o.HTTP = webhttp.HTTP2
	}
	return o
}

// h2cOptions is Go's profile over h2c with prior knowledge.
func h2cOptions() webhttp.Options {
	o := webhttp.Default()
	o.HTTP = webhttp.HTTP2
	return o
}

// tlsFake serves the fake over TLS with testCert, offering h2 and
// http/1.1 in ALPN as a deployment does.
func tlsFake(t *testing.T, name string, script ...answer) *fake {
	t.Helper()
	return newFakeWith(t, name, fakeOptions{tls: webhttp.ServerConfig(testCert())}, script...)
}

// tlsConfig is a client Config for a TLS server with testCert.
func tlsConfig(o webhttp.Options) Config {
	return Config{HTTP: o, Roots: rootsOf(testCert())}
}

// TestDeliveryHTTPModes: TestDelivery over TLS, HTTP/2 with TLS, h2c and
// with the browser profile and a cookie: the same batches and resume
// points, one connection, and its handshake and HTTP/2 counted.
func TestDeliveryHTTPModes(t *testing.T) {
	t.Parallel()
	browser := webhttp.Browser()
	browser.CookieBytes = 300
	modes := []struct {
		name   string
		opts   webhttp.Options
		server fakeOptions
	}{
		{"tls", withTLS(webhttp.Default(), false), fakeOptions{tls: webhttp.ServerConfig(testCert())}},
		{"tls-browser", withTLS(browser, false), fakeOptions{tls: webhttp.ServerConfig(testCert())}},
		{"h2", withTLS(webhttp.Default(), true), fakeOptions{tls: webhttp.ServerConfig(testCert())}},
		{"h2-browser", withTLS(browser, true), fakeOptions{tls: webhttp.ServerConfig(testCert())}},
		{"h2c", h2cOptions(), fakeOptions{h2c: true}},
		{"browser", browser, fakeOptions{}},
	}
	for _, m := range modes {
		for _, tr := range transport.Names() {
			h2 := m.opts.HTTP == webhttp.HTTP2
			if h2 && !webhttp.UsesHTTP2(tr) {
				continue
			}
			t.Run(m.name+"/"+tr, func(t *testing.T) {
				t.Parallel()
				script := []answer{{msgs: []string{ev(1), ev(2), gapMsg(3, 4), ev(5)}}}
				want := append(one(1, 2), batch{gap: event.Gap{From: 3, To: 4}}, batch{seqs: []uint64{5}})
				lasts := []uint64{0}
				if isPoll(tr) {
					script = []answer{{msgs: []string{ev(1), ev(2)}}, {msgs: []string{gapMsg(3, 4), ev(5)}}}
					want = []batch{{seqs: []uint64{1, 2}}, {seqs: []uint64{5}, gap: event.Gap{From: 3, To: 4}}}
					lasts = []uint64{0, 2}
				}
				f := newFakeWith(t, tr, m.server, script...)
				cfg := Config{HTTP: m.opts}
				if m.opts.TLS {
					cfg.Roots = rootsOf(testCert())
				}
				c := startClient(t, tr, f.url, cfg, upTo(5))
				checkBatches(t, c.collect(t), want)
				reqs := f.requests()
				if len(reqs) != len(lasts) {
					t.Fatalf("requests %+v, want %d", reqs, len(lasts))
				}
				wantProto := "HTTP/1.1"
				if h2 {
					wantProto = "HTTP/2.0"
				}
				for i, r := range reqs {
					checkResume(t, tr, i, r, lasts[i])
					if r.proto != wantProto {
						t.Errorf("request %d over %s, want %s", i, r.proto, wantProto)
					}
				}
				n := c.counters
				if n.Dials.Load() != 1 || n.Requests.Load() != uint64(len(reqs)) || n.Errors.Load() != 0 || n.Reconnects.Load() != 0 {
					t.Errorf("dials %d requests %d errors %d reconnects %d, want 1, %d, 0, 0",
						n.Dials.Load(), n.Requests.Load(), n.Errors.Load(), n.Reconnects.Load(), len(reqs))
				}
				if down := n.BytesDown.Load(); down == 0 || down > f.written.Load() {
					t.Errorf("bytes down %d (server wrote %d)", down, f.written.Load())
				}
				wantH2 := uint64(0)
				if h2 {
					wantH2 = uint64(len(reqs))
				}
				if got := n.HTTP2Responses.Load(); got != wantH2 {
					t.Errorf("HTTP/2 responses %d, want %d", got, wantH2)
				}
				checkHandshakes(t, n, m.opts.TLS, 1, 0)
			})
		}
	}
}

// checkHandshakes asserts the handshake counters of a client that
// completed handshakes (resumed of them) over TLS, or none without.
func checkHandshakes(t *testing.T, n *Counters, tls bool, handshakes, resumed uint64) {
	t.Helper()
	if !tls {
		handshakes, resumed = 0, 0
	}
	if n.Handshakes.Load() != handshakes || n.Resumed.Load() != resumed || n.HandshakeFailures.Load() != 0 {
		t.Errorf("handshakes %d resumed %d failures %d, want %d, %d, 0",
			n.Handshakes.Load(), n.Resumed.Load(), n.HandshakeFailures.Load(), handshakes, resumed)
	}
	up, down, ns := n.HandshakeBytesUp.Load(), n.HandshakeBytesDown.Load(), n.HandshakeNs.Load()
	if tls != (up > 0 && down > 0 && ns > 0) || (!tls && up+down+ns != 0) {
		t.Errorf("handshake bytes up %d down %d, %d ns (tls %v)", up, down, ns, tls)
	}
	if tls && (up >= n.BytesUp.Load() || down >= n.BytesDown.Load()) {
		t.Errorf("handshake bytes up %d down %d not below the totals %d, %d",
			up, down, n.BytesUp.Load(), n.BytesDown.Load())
	}
}

// TestHTTP2OneConnection: with HTTP/2 (over TLS, and h2c) many polls share
// one connection, each answer counted as over HTTP/2; when the server
// drops it, the next poll dials one new connection, counted as a
// reconnect, whose TLS handshake resumes the first one's session.
func TestHTTP2OneConnection(t *testing.T) {
	t.Parallel()
	const polls, cutAfter = 20, 10
	for _, tc := range []struct {
		name   string
		opts   webhttp.Options
		server fakeOptions
	}{
		{"tls", withTLS(webhttp.Browser(), true), fakeOptions{tls: webhttp.ServerConfig(testCert())}},
		{"h2c", h2cOptions(), fakeOptions{h2c: true}},
	} {
		for _, tr := range []string{transport.ShortPoll, transport.LongPoll} {
			t.Run(tc.name+"/"+tr, func(t *testing.T) {
				t.Parallel()
				var script []answer
				for seq := uint64(1); seq <= polls; seq++ {
					script = append(script, answer{msgs: []string{ev(seq)}})
				}
				f := newFakeWith(t, tr, tc.server, script...)
				cfg := Config{HTTP: tc.opts}
				if tc.opts.TLS {
					cfg.Roots = rootsOf(testCert())
				}
				var counters Counters
				cfg.Counters = &counters
				var first struct{ dials, requests, h2 uint64 }
				c := startClient(t, tr, f.url, cfg, func(b batch) bool {
					if b.seqs[0] == cutAfter {
						// The handler runs before the next poll.
						first.dials, first.requests, first.h2 = counters.Dials.Load(), counters.Requests.Load(), counters.HTTP2Responses.Load()
						f.ts.CloseClientConnections()
					}
					return b.seqs[0] == polls
				})
				if got := c.collect(t); len(got) != polls {
					t.Fatalf("batches %v, want %d", got, polls)
				}
				if first.dials != 1 || first.requests != cutAfter || first.h2 != cutAfter {
					t.Errorf("before the cut: dials %d requests %d HTTP/2 answers %d, want 1, %d, %d",
						first.dials, first.requests, first.h2, cutAfter, cutAfter)
				}
				if d, r, h := counters.Dials.Load(), counters.Reconnects.Load(), counters.HTTP2Responses.Load(); d != 2 || r != 1 || h != polls {
					t.Errorf("dials %d reconnects %d HTTP/2 answers %d, want 2, 1, %d", d, r, h, polls)
				}
				for i, r := range f.requests() {
					if r.proto != "HTTP/2.0" {
						t.Errorf("request %d over %s", i, r.proto)
					}
				}
				if tc.opts.TLS {
					if h, res := counters.Handshakes.Load(), counters.Resumed.Load(); h != 2 || res != 1 {
						t.Errorf("handshakes %d resumed %d, want 2 and 1", h, res)
					}
				}
			})
		}
	}
}

// TestTLSResumes: a stream the server cuts is reopened on a new connection
// whose handshake resumes the session of the first.
func TestTLSResumes(t *testing.T) {
	t.Parallel()
	for _, tr := range streams() {
		t.Run(tr, func(t *testing.T) {
			t.Parallel()
			f := tlsFake(t, tr, answer{msgs: []string{ev(1), ev(2)}, end: cut}, answer{msgs: []string{ev(3)}})
			c := startClient(t, tr, f.url, tlsConfig(withTLS(webhttp.Browser(), false)), upTo(3))
			checkBatches(t, c.collect(t), one(1, 2, 3))
			n := c.counters
			if n.Dials.Load() != 2 || n.Reconnects.Load() != 1 {
				t.Errorf("dials %d reconnects %d, want 2 and 1", n.Dials.Load(), n.Reconnects.Load())
			}
			checkHandshakes(t, n, true, 2, 1)
		})
	}
}

// TestTLSWrongRoots: a server whose certificate the roots do not verify
// ends Run at once, like a 4xx, with the handshake failure counted.
func TestTLSWrongRoots(t *testing.T) {
	t.Parallel()
	other, err := webhttp.SelfSigned()
	if err != nil {
		t.Fatal(err)
	}
	for _, tr := range transport.Names() {
		t.Run(tr, func(t *testing.T) {
			t.Parallel()
			f := tlsFake(t, tr)
			cfg := Config{HTTP: withTLS(webhttp.Browser(), false), Roots: rootsOf(other)}
			c := startClient(t, tr, f.url, cfg, nil)
			err := c.wait(t)
			var verify *tls.CertificateVerificationError
			if !errors.Is(err, webhttp.ErrTLSHandshake) || !errors.As(err, &verify) || errors.Is(err, ErrGiveUp) {
				t.Fatalf("Run error = %v, want a certificate verification error at once", err)
			}
			n := c.counters
			if n.HandshakeFailures.Load() != 1 || n.Handshakes.Load() != 0 || n.Errors.Load() != 1 ||
				n.Requests.Load() != 0 || n.Dials.Load() != 1 {
				t.Errorf("handshake failures %d handshakes %d errors %d requests %d dials %d, want 1, 0, 1, 0, 1",
					n.HandshakeFailures.Load(), n.Handshakes.Load(), n.Errors.Load(), n.Requests.Load(), n.Dials.Load())
			}
			if n := len(f.requests()); n != 0 {
				t.Errorf("the server saw %d requests", n)
			}
		})
	}
}

// TestTLSHandshakeRetried: a handshake that fails for another reason (the
// server hangs up) goes through the backoff, each failure counted.
func TestTLSHandshakeRetried(t *testing.T) {
	t.Parallel()
	for _, tr := range transport.Names() {
		t.Run(tr, func(t *testing.T) {
			t.Parallel()
			addr := testnet.Serve(t, func(net.Conn) {}) // closes at once
			cfg := tlsConfig(withTLS(webhttp.Default(), false))
			cfg.Backoff = Backoff{Min: time.Millisecond, Max: 2 * time.Millisecond, Tries: 3}
			c := startClient(t, tr, "https://"+addr, cfg, nil)
			err := c.wait(t)
			if !errors.Is(err, ErrGiveUp) || !errors.Is(err, webhttp.ErrTLSHandshake) {
				t.Fatalf("Run error = %v, want ErrGiveUp after TLS handshake failures", err)
			}
			n := c.counters
			if n.HandshakeFailures.Load() != 3 || n.Dials.Load() != 3 || n.Errors.Load() != 3 || n.Handshakes.Load() != 0 {
				t.Errorf("handshake failures %d dials %d errors %d handshakes %d, want 3, 3, 3, 0",
					n.HandshakeFailures.Load(), n.Dials.Load(), n.Errors.Load(), n.Handshakes.Load())
			}
		})
	}
}

// TestHTTP2Refused: a server that answers in HTTP/1.1 when HTTP/2 was
// asked for — it chose http/1.1 in ALPN, or it does not speak h2c — ends
// Run at once with ErrNoHTTP2.
func TestHTTP2Refused(t *testing.T) {
	t.Parallel()
	h1Only := webhttp.ServerConfig(testCert())
	h1Only.NextProtos = []string{webhttp.ALPNHTTP1}
	for _, tc := range []struct {
		name   string
		opts   webhttp.Options
		server fakeOptions
		want   string
	}{
		{"tls", withTLS(webhttp.Browser(), true), fakeOptions{tls: h1Only}, `chose "http/1.1" in ALPN`},
		{"h2c", h2cOptions(), fakeOptions{}, "h2c preface"},
	} {
		for _, tr := range []string{transport.ShortPoll, transport.LongPoll, transport.SSE} {
			t.Run(tc.name+"/"+tr, func(t *testing.T) {
				t.Parallel()
				f := newFakeWith(t, tr, tc.server)
				cfg := Config{HTTP: tc.opts}
				if tc.opts.TLS {
					cfg.Roots = rootsOf(testCert())
				}
				c := startClient(t, tr, f.url, cfg, nil)
				err := c.wait(t)
				if !errors.Is(err, ErrNoHTTP2) || !strings.Contains(err.Error(), tc.want) || errors.Is(err, ErrGiveUp) {
					t.Fatalf("Run error = %v, want ErrNoHTTP2 (%s) at once", err, tc.want)
				}
				if e, h := c.counters.Errors.Load(), c.counters.HTTP2Responses.Load(); e != 1 || h != 0 {
					t.Errorf("errors %d HTTP/2 answers %d, want 1 and 0", e, h)
				}
			})
		}
	}
}

// rawRequests is a loopback server that reads one request head per
// connection, reports it byte for byte, writes answer(head) and then waits
// for the client's next byte (a close frame, a request) or its close.
func rawRequests(t *testing.T, answer func(head string) string) (url string, heads <-chan string) {
	t.Helper()
	ch := make(chan string, 16)
	addr := testnet.Serve(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		var head strings.Builder
		for {
			line, err := br.ReadString('\n')
			head.WriteString(line)
			if err != nil {
				return
			}
			if line == "\r\n" {
				break
			}
		}
		ch <- head.String()
		if _, err := io.WriteString(c, answer(head.String())); err != nil {
			return
		}
		_, _ = br.ReadByte()
	})
	return "http://" + addr, ch
}

// wsAccept is the Sec-WebSocket-Accept answer to the key of head.
func wsAccept(head string) string {
	key := headerValue(head, "Sec-WebSocket-Key")
	h := sha1.Sum([]byte(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	return base64.StdEncoding.EncodeToString(h[:])
}

// headerValue is the value of the field called name in head, "" if none.
func headerValue(head, name string) string {
	for line := range strings.SplitSeq(head, "\r\n") {
		if v, ok := strings.CutPrefix(line, name+": "); ok {
			return v
		}
	}
	return ""
}

// wsFrame is a server's unmasked text frame of m (len(m) < 126).
func wsFrame(m string) string { return string([]byte{0x81, byte(len(m))}) + m }

// wantHead is the request head net/http writes for a request with line,
// host and the fields (the profile's and the library's, in any order):
// Host, then User-Agent, then the other fields sorted by name, each as it
// is spelled, and a blank line.
func wantHead(line, host string, fields []webhttp.Field) string {
	var b strings.Builder
	b.WriteString(line + "\r\nHost: " + host + "\r\n")
	var rest []webhttp.Field
	for _, f := range fields {
		if f.Name == "User-Agent" {
			b.WriteString(f.Name + ": " + f.Value + "\r\n")
		} else {
			rest = append(rest, f)
		}
	}
	slices.SortStableFunc(rest, func(a, b webhttp.Field) int { return strings.Compare(a.Name, b.Name) })
	for _, f := range rest {
		b.WriteString(f.Name + ": " + f.Value + "\r\n")
	}
	b.WriteString("\r\n")
	return b.String()
}

// TestRequestHeadersExact: each request kind carries exactly its request
// line, Host, the profile's fields (webhttp.RequestFields) and the fields
// the library writes itself, and BytesUp counts exactly that request.
func TestRequestHeadersExact(t *testing.T) {
	t.Parallel()
	const cookie = 256
	pollBody := "[" + ev(1) + "]"
	answers := map[string]func(head string) string{
		transport.ShortPoll: func(string) string {
			return fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", len(pollBody), pollBody)
		},
		transport.SSE: func(string) string {
			return "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\nid: 1\ndata: " + ev(1) + "\n\n"
		},
		transport.WebSocket: func(head string) string {
			return "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " +
				wsAccept(head) + "\r\n\r\n" + wsFrame(ev(1))
		},
	}
	kinds := map[string]webhttp.Kind{transport.ShortPoll: webhttp.Fetch, transport.SSE: webhttp.EventSource, transport.WebSocket: webhttp.WebSocket}
	paths := map[string]string{transport.ShortPoll: "/poll?since=0", transport.SSE: "/sse?since=0", transport.WebSocket: "/ws?since=0"}
	browser := webhttp.Browser()
	browser.CookieBytes = cookie
	goGzip := webhttp.Default()
	goGzip.Compress = true
	for _, tr := range []string{transport.ShortPoll, transport.SSE, transport.WebSocket} {
		for _, p := range []struct {
			name string
			opts webhttp.Options
		}{{"go", webhttp.Default()}, {"go-compress", goGzip}, {"browser", browser}} {
			t.Run(tr+"/"+p.name, func(t *testing.T) {
				t.Parallel()
				url, heads := rawRequests(t, answers[tr])
				host := strings.TrimPrefix(url, "http://")
				counters := new(Counters)
				var up uint64
				c := startClient(t, tr, url, Config{HTTP: p.opts, Counters: counters, Interval: time.Hour}, func(batch) bool {
					up = counters.BytesUp.Load() // the request, and nothing else yet
					return true
				})
				checkBatches(t, c.collect(t), one(1))
				got := <-heads

				profile := p.opts.RequestFields(kinds[tr], "http://"+host, false)
				var lib []webhttp.Field
				if p.opts.Headers == webhttp.HeadersGo {
					lib = append(lib, webhttp.Field{Name: "User-Agent", Value: "Go-http-client/1.1"})
				}
				if tr == transport.WebSocket {
					lib = append(lib,
						webhttp.Field{Name: "Upgrade", Value: "websocket"},
						webhttp.Field{Name: "Connection", Value: "Upgrade"},
						webhttp.Field{Name: "Sec-WebSocket-Key", Value: headerValue(got, "Sec-WebSocket-Key")},
						webhttp.Field{Name: "Sec-WebSocket-Version", Value: "13"})
					if p.opts.Headers == webhttp.HeadersBrowser || p.opts.Compress {
						lib = append(lib, webhttp.Field{Name: "Sec-WebSocket-Extensions",
							Value: "permessage-deflate; server_no_context_takeover; client_no_context_takeover"})
					}
					if len(headerValue(got, "Sec-WebSocket-Key")) != 24 {
						t.Errorf("Sec-WebSocket-Key %q", headerValue(got, "Sec-WebSocket-Key"))
					}
				}
				line := "GET " + paths[tr] + " HTTP/1.1"
				want := wantHead(line, host, append(profile, lib...))
				if got != want {
					t.Errorf("request\n got %q\nwant %q", got, want)
				}
				size := len(line) + 2 + len("Host: ") + len(host) + 2 + webhttp.FieldBytes(profile) + webhttp.FieldBytes(lib) + 2
				if len(want) != size || up != uint64(size) {
					t.Errorf("request of %d bytes, bytes up %d, want %d", len(want), up, size)
				}
				t.Logf("%s request to %s: %d bytes (profile fields %d, library fields %d)",
					p.name, host, size, webhttp.FieldBytes(profile), webhttp.FieldBytes(lib))
			})
		}
	}
}

// TestGoRequestUnchanged: Go's profile writes the requests the clients
// wrote before the profiles existed, byte for byte.
func TestGoRequestUnchanged(t *testing.T) {
	t.Parallel()
	url, heads := rawRequests(t, func(string) string {
		return "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n[]"
	})
	c := startClient(t, transport.ShortPoll, url, Config{Interval: time.Hour}, nil)
	c.subscribed(t)
	c.cancel()
	host := strings.TrimPrefix(url, "http://")
	if got, want := <-heads, "GET /poll?since=0 HTTP/1.1\r\nHost: "+host+"\r\nUser-Agent: Go-http-client/1.1\r\n\r\n"; got != want {
		t.Errorf("request\n got %q\nwant %q", got, want)
	}
}

// tlsRecord is what TLS 1.3 adds to each record of application data with
// AES-GCM or ChaCha20-Poly1305: a 5-byte header, the inner content type
// and a 16-byte tag.
const tlsRecord = 5 + 1 + 16

// serverCount counts a server connection's bytes.
type serverCount struct {
	net.Conn
	read, written atomic.Uint64
}

func (c *serverCount) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.read.Add(uint64(n))
	return n, err
}

func (c *serverCount) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.written.Add(uint64(n))
	return n, err
}

// tlsSeen is what a rawTLS server saw of one connection.
type tlsSeen struct {
	head        string
	hsWritten   uint64 // bytes written until the server's handshake completed
	readThrough uint64 // bytes read until the end of the request head
}

// TestTLSRecordBytesExact: over TLS the counters see ciphertext: the
// handshake (HandshakeBytesUp/Down, exactly what crossed the socket until
// it completed), then one record per write, each 22 bytes longer than its
// plaintext. The server sends no session ticket here, so that nothing
// follows its handshake flight until it answers.
func TestTLSRecordBytesExact(t *testing.T) {
	t.Parallel()
	const n = 20
	for _, tr := range []string{transport.TCP, transport.WebSocket} {
		t.Run(tr, func(t *testing.T) {
			t.Parallel()
			cfg := webhttp.ServerConfig(testCert())
			cfg.SessionTicketsDisabled = true
			seen := make(chan tlsSeen, 1)
			// Each of these is written in one Write, so one record.
			var answer string
			var lines []string
			addr := testnet.Serve(t, func(raw net.Conn) {
				sc := &serverCount{Conn: raw}
				conn := tls.Server(sc, cfg)
				if err := conn.Handshake(); err != nil {
					return
				}
				s := tlsSeen{hsWritten: sc.written.Load()}
				br := bufio.NewReader(conn)
				var head strings.Builder
				for {
					line, err := br.ReadString('\n')
					head.WriteString(line)
					if err != nil {
						return
					}
					if line == "\r\n" {
						break
					}
				}
				s.head, s.readThrough = head.String(), sc.read.Load()
				seen <- s
				answer = tcpSwitch
				if tr == transport.WebSocket {
					answer = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " +
						wsAccept(s.head) + "\r\n\r\n"
				}
				if _, err := io.WriteString(conn, answer); err != nil {
					return
				}
				for seq := uint64(1); seq <= n; seq++ {
					line := ev(seq) + "\n"
					if tr == transport.WebSocket {
						line = wsFrame(ev(seq))
					}
					lines = append(lines, line)
					if _, err := io.WriteString(conn, line); err != nil {
						return
					}
				}
				_, _ = br.ReadByte()
			})
			counters := new(Counters)
			var up, down uint64
			c := startClient(t, tr, "https://"+addr, Config{HTTP: withTLS(webhttp.Default(), false),
				Roots: rootsOf(testCert()), Counters: counters}, func(b batch) bool {
				if b.seqs[0] == n {
					up, down = counters.BytesUp.Load(), counters.BytesDown.Load()
					return true
				}
				return false
			})
			if got := c.collect(t); len(got) != n {
				t.Fatalf("%d batches, want %d", len(got), n)
			}
			s := <-seen
			hsUp, hsDown := counters.HandshakeBytesUp.Load(), counters.HandshakeBytesDown.Load()
			if hsDown != s.hsWritten {
				t.Errorf("handshake bytes down %d, want %d (the server's handshake flight)", hsDown, s.hsWritten)
			}
			// The request head is one write: one record.
			if want := hsUp + uint64(len(s.head)+tlsRecord); s.readThrough != want || up != want {
				t.Errorf("server read %d, client wrote %d; want %d = %d (handshake) + %d (request) + %d (record)",
					s.readThrough, up, want, hsUp, len(s.head), tlsRecord)
			}
			want := hsDown + uint64(len(answer)+tlsRecord)
			for _, l := range lines {
				want += uint64(len(l) + tlsRecord)
			}
			if down != want {
				t.Errorf("bytes down %d, want %d = %d (handshake) + %d × (event + %d)", down, want, hsDown, n, tlsRecord)
			}
			checkHandshakes(t, counters, true, 1, 0)
			t.Logf("handshake: %d bytes up, %d down; %d ns", hsUp, hsDown, counters.HandshakeNs.Load())
		})
	}
}

// TestGzipPolls: a poll answered with Content-Encoding: gzip is decoded,
// and its connection serves the next poll.
func TestGzipPolls(t *testing.T) {
	t.Parallel()
	for _, tr := range []string{transport.ShortPoll, transport.LongPoll} {
		for _, h2 := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/h2=%v", tr, h2), func(t *testing.T) {
				t.Parallel()
				var script []answer
				for seq := uint64(1); seq <= 5; seq++ {
					script = append(script, answer{msgs: []string{ev(seq), ev(seq + 100)}})
				}
				f := newFakeWith(t, tr, fakeOptions{tls: webhttp.ServerConfig(testCert()), gzip: true}, script...)
				o := withTLS(webhttp.Default(), h2)
				o.Compress = true
				c := startClient(t, tr, f.url, tlsConfig(o), upTo(5))
				var want []batch
				for seq := uint64(1); seq <= 5; seq++ {
					want = append(want, batch{seqs: []uint64{seq, seq + 100}})
				}
				checkBatches(t, c.collect(t), want)
				for i, r := range f.requests() {
					if r.acceptEncoding != "gzip" {
						t.Errorf("request %d: Accept-Encoding %q", i, r.acceptEncoding)
					}
				}
				if d, e := c.counters.Dials.Load(), c.counters.Errors.Load(); d != 1 || e != 0 {
					t.Errorf("dials %d errors %d, want 1 and 0", d, e)
				}
			})
		}
	}
}

// TestGzipSSE: a gzip event stream is decoded as it arrives — each event is
// delivered before the server sends the next — and the stream is open
// before the server has sent even the gzip header.
func TestGzipSSE(t *testing.T) {
	t.Parallel()
	const n = 5
	delivered := make(chan uint64, n)
	subscribed := make(chan struct{})
	encodings := make(chan string, 1)
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		encodings <- r.Header.Get("Accept-Encoding")
		rc := http.NewResponseController(w)
		w.Header().Set("Content-Type", "text/event-stream")
		w.Header().Set("Content-Encoding", "gzip")
		w.WriteHeader(http.StatusOK)
		_ = rc.Flush()
		select {
		case <-subscribed:
		case <-r.Context().Done():
			return
		}
		zw := gzip.NewWriter(w)
		defer zw.Close()
		for seq := uint64(1); seq <= n; seq++ {
			fmt.Fprintf(zw, "id: %d\ndata: %s\n\n", seq, ev(seq))
			_ = zw.Flush()
			_ = rc.Flush()
			select {
			case got := <-delivered:
				if got != seq {
					t.Errorf("delivered %d after sending %d", got, seq)
				}
			case <-r.Context().Done():
				return
			}
		}
	}))
	t.Cleanup(ts.Close)
	o := webhttp.Browser()
	o.Compress = true
	c := startClient(t, transport.SSE, ts.URL, Config{HTTP: o}, func(b batch) bool {
		delivered <- b.seqs[0]
		return b.seqs[0] == n
	})
	c.subscribed(t)
	close(subscribed)
	checkBatches(t, c.collect(t), one(1, 2, 3, 4, 5))
	if got := <-encodings; !strings.Contains(got, "gzip") {
		t.Errorf("Accept-Encoding %q", got)
	}
}

// TestUnknownContentEncoding: an answer in an encoding other than gzip is
// an error that retrying would repeat.
func TestUnknownContentEncoding(t *testing.T) {
	t.Parallel()
	for _, tr := range []string{transport.ShortPoll, transport.LongPoll, transport.SSE} {
		t.Run(tr, func(t *testing.T) {
			t.Parallel()
			ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/event-stream")
				w.Header().Set("Content-Encoding", "br")
				fmt.Fprint(w, "\x0b\x02\x80[]\x03")
			}))
			t.Cleanup(ts.Close)
			c := startClient(t, tr, ts.URL, Config{HTTP: webhttp.Browser()}, nil)
			err := c.wait(t)
			var se *StatusError
			if !errors.As(err, &se) || !strings.Contains(se.Reason, `Content-Encoding "br"`) {
				t.Fatalf("Run error = %v, want a StatusError about Content-Encoding br", err)
			}
			if e := c.counters.Errors.Load(); e != 1 {
				t.Errorf("errors %d, want 1", e)
			}
		})
	}
}

// TestWebSocketDeflate: the browser profile offers permessage-deflate; a
// server that accepts it sends compressed frames, which arrive decoded and
// fewer on the wire than the events' own bytes. Go's profile does not offer
// it, and gets the frames uncompressed.
func TestWebSocketDeflate(t *testing.T) {
	t.Parallel()
	const n = 20
	var msgs []string
	for seq := uint64(1); seq <= n; seq++ {
		msgs = append(msgs, ev(seq))
	}
	for _, tc := range []struct {
		name       string
		opts       webhttp.Options
		compressed bool
	}{{"browser", webhttp.Browser(), true}, {"go", webhttp.Default(), false}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFakeWith(t, transport.WebSocket, fakeOptions{deflate: true}, answer{msgs: msgs})
			counters := new(Counters)
			var down uint64
			c := startClient(t, transport.WebSocket, f.url, Config{HTTP: tc.opts, Counters: counters}, func(b batch) bool {
				if b.seqs[0] == n {
					down = counters.BytesDown.Load() // nothing more is on the wire
					return true
				}
				return false
			})
			var want []uint64
			for seq := uint64(1); seq <= n; seq++ {
				want = append(want, seq)
			}
			checkBatches(t, c.collect(t), one(want...))
			plain := uint64(n * (testPayload + 2))
			frames := down - <-f.hello
			if tc.compressed && frames >= plain {
				t.Errorf("frames took %d bytes, not fewer than the %d uncompressed", frames, plain)
			}
			if !tc.compressed && frames != plain {
				t.Errorf("frames took %d bytes, want %d uncompressed", frames, plain)
			}
			t.Logf("%d events of %d bytes: %d bytes of frames", n, testPayload, frames)
		})
	}
}
