// Package webhttp is HTTP as browsers speak it: the request headers a
// browser sends for each kind of request (a fetch() poll, an EventSource, a
// WebSocket upgrade), the response headers a typical deployment adds, a
// session cookie of a chosen size, TLS 1.3 with a certificate generated at
// start, HTTP/2 and compression. Options says which of them a run uses;
// servers, clients and the harness read it, and docs/http.md documents
// every header and every choice.
package webhttp

import (
	"errors"
	"flag"
	"fmt"
	"strconv"
	"strings"

	"pushbench/transport"
)

// Request header profiles (--headers).
const (
	// HeadersGo is Go's own minimal request: Host and a Go User-Agent
	// (about 80 bytes for a poll).
	HeadersGo = "go"
	// HeadersBrowser is Chromium's header set for each request kind
	// (headers.go, docs/http.md).
	HeadersBrowser = "browser"
)

// Response header profiles (--response-headers).
const (
	// ResponseMinimal is what the server sends by itself: Date,
	// Content-Type, Content-Length or chunked framing, Cache-Control.
	ResponseMinimal = "minimal"
	// ResponseDeployment adds what a typical deployment behind a reverse
	// proxy adds (headers.go, docs/http.md).
	ResponseDeployment = "deployment"
)

// HTTP versions (--http).
const (
	HTTP1 = "1.1"
	HTTP2 = "2"
)

// MaxCookieBytes bounds --cookie-bytes: nginx's default limit on one request
// header line is 8 KiB (large_client_header_buffers), and browsers cap one
// cookie at 4 KiB, so a larger Cookie header is a typo.
const MaxCookieBytes = 8000

// minCookieBytes is the shortest cookie value: "sid=" and one character.
const minCookieBytes = len(cookieName) + 2

// Options is how a run speaks HTTP. The zero value is not valid; start from
// Default.
type Options struct {
	// HTTP is HTTP1 or HTTP2. HTTP/2 applies to the transports that are
	// plain requests (polls, SSE); over TLS it is negotiated with ALPN as
	// browsers do, without TLS it is h2c with prior knowledge (which no
	// browser speaks).
	HTTP string
	// TLS runs every transport over TLS 1.3.
	TLS bool
	// Headers is the request header profile: HeadersGo or HeadersBrowser.
	Headers string
	// ResponseHeaders is the response header profile: ResponseMinimal or
	// ResponseDeployment ("": ResponseDeployment with browser headers,
	// ResponseMinimal with Go's; ResponseProfile resolves it).
	ResponseHeaders string
	// CookieBytes is the length of the Cookie header's value every request
	// carries (0: no Cookie header).
	CookieBytes int
	// Compress turns on gzip for poll answers and SSE streams and
	// permessage-deflate for WebSocket, when the client offers them.
	Compress bool
}

// Default is Go's plain HTTP/1.1 without TLS or compression: what every run
// did before the browser profiles existed, and what old results describe.
func Default() Options {
	return Options{HTTP: HTTP1, Headers: HeadersGo}
}

// Browser is the default of the comparison presets: browser headers over
// HTTP/1.1 without TLS, so that a preset still isolates the transport while
// its byte counts are a browser's.
func Browser() Options {
	o := Default()
	o.Headers = HeadersBrowser
	return o
}

// ResponseProfile is the response header profile o asks for, with "" resolved.
func (o Options) ResponseProfile() string {
	switch {
	case o.ResponseHeaders != "":
		return o.ResponseHeaders
	case o.Headers == HeadersBrowser:
		return ResponseDeployment
	default:
		return ResponseMinimal
	}
}

// Scheme is the URL scheme of the server: https with TLS, http without.
func (o Options) Scheme() string {
	if o.TLS {
		return "https"
	}
	return "http"
}

// Validate reports the first setting that cannot be run, for the transport
// called name ("" checks the options alone), as a one-line error.
func (o Options) Validate(name string) error {
	switch {
	case o.HTTP != HTTP1 && o.HTTP != HTTP2:
		return fmt.Errorf("http %q: want %s or %s", o.HTTP, HTTP1, HTTP2)
	case o.Headers != HeadersGo && o.Headers != HeadersBrowser:
		return fmt.Errorf("headers %q: want %s or %s", o.Headers, HeadersGo, HeadersBrowser)
	case o.ResponseHeaders != "" && o.ResponseHeaders != ResponseMinimal && o.ResponseHeaders != ResponseDeployment:
		return fmt.Errorf("response headers %q: want %s or %s", o.ResponseHeaders, ResponseMinimal, ResponseDeployment)
	case o.CookieBytes < 0 || o.CookieBytes > MaxCookieBytes:
		return fmt.Errorf("cookie bytes %d: want 0 (no cookie) up to %d", o.CookieBytes, MaxCookieBytes)
	case o.CookieBytes > 0 && o.CookieBytes < minCookieBytes:
		return fmt.Errorf("cookie bytes %d: a cookie %s=… needs at least %d bytes (or 0 for none)", o.CookieBytes, cookieName, minCookieBytes)
	}
	if name == "" || o.HTTP != HTTP2 {
		return nil
	}
	if !UsesHTTP2(name) {
		return fmt.Errorf("http 2: %s upgrades an HTTP/1.1 connection and cannot run over HTTP/2 (RFC 8441, WebSocket over HTTP/2, is out of scope); use --http 1.1 for it", name)
	}
	return nil
}

// UsesHTTP2 reports whether the transport called name can run over HTTP/2:
// the poll transports and SSE can; the upgrades (WebSocket, tcp) cannot.
func UsesHTTP2(name string) bool {
	info, ok := transport.Lookup(name)
	return ok && info.Name != transport.WebSocket && info.Name != transport.TCP
}

// IsDefault reports whether o is Default: a run whose names and records need
// no HTTP qualifiers.
func (o Options) IsDefault() bool { return o.Suffix() == "" }

// Suffix is the bench.txt name suffix for o: one "/key=value" per setting
// that is not Default's, in a fixed order, so that results of runs made
// before these options existed still compare with the defaults. Example:
// "/http=2/tls=on/headers=browser/cookie=512/compress=on".
func (o Options) Suffix() string {
	var b strings.Builder
	if o.HTTP != "" && o.HTTP != HTTP1 {
		b.WriteString("/http=" + o.HTTP)
	}
	if o.TLS {
		b.WriteString("/tls=on")
	}
	if o.Headers != "" && o.Headers != HeadersGo {
		b.WriteString("/headers=" + o.Headers)
	}
	if rp := o.ResponseProfile(); o.Headers != "" && rp != (Options{Headers: o.Headers}).ResponseProfile() {
		b.WriteString("/response=" + rp)
	}
	if o.CookieBytes > 0 {
		b.WriteString("/cookie=" + strconv.Itoa(o.CookieBytes))
	}
	if o.Compress {
		b.WriteString("/compress=on")
	}
	return b.String()
}

// AddFlags defines --http, --tls, --headers, --response-headers,
// --cookie-bytes and --compress on fs with def's values as defaults. The
// returned function reads them after parsing and checks them (not yet
// against a transport: Validate does that).
func AddFlags(fs *flag.FlagSet, def Options) func() (Options, error) {
	httpV := fs.String("http", def.HTTP, "HTTP version for polls and SSE: 1.1 or 2 (2 negotiates h2 with ALPN under --tls, h2c without; WebSocket and tcp stay on 1.1)")
	tlsV := fs.Bool("tls", def.TLS, "TLS 1.3 on every transport, with a certificate generated at start (bytes are counted below TLS)")
	headers := fs.String("headers", def.Headers, "request header profile: go (Go's ~80-byte request) or browser (Chromium's headers per request kind; docs/http.md)")
	response := fs.String("response-headers", def.ResponseHeaders, "response header profile: minimal or deployment (default: deployment with --headers browser, minimal with go)")
	cookie := fs.Int("cookie-bytes", def.CookieBytes, "length of the Cookie header value every request carries (0: none)")
	compress := fs.Bool("compress", def.Compress, "gzip for poll answers and SSE, permessage-deflate for WebSocket (when the client offers them)")
	return func() (Options, error) {
		o := Options{HTTP: *httpV, TLS: *tlsV, Headers: *headers, ResponseHeaders: *response,
			CookieBytes: *cookie, Compress: *compress}
		return o, o.Validate("")
	}
}

// ErrTLSHandshake marks a client connection whose TLS handshake failed.
var ErrTLSHandshake = errors.New("TLS handshake failed")
