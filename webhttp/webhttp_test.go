package webhttp

import (
	"context"
	"crypto/tls"
	"flag"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"pushbench/transport"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestBrowserFieldBytes pins the size of each browser request profile, in
// bytes of HTTP/1.1 header lines beyond Host and the library's own fields,
// for a 21-byte origin (http://127.0.0.1:8080). The figures are the
// profile's own arithmetic: a change to a header shows here first.
func TestBrowserFieldBytes(t *testing.T) {
	o := Browser()
	origin := "http://127.0.0.1:8080"
	for _, tc := range []struct {
		k    Kind
		want int
	}{
		{Fetch, 24 + 31 + 125 + 77 + 22 + 13 + 29 + 22 + 23 + 33 + 42 + 33},
		{EventSource, 24 + 18 + 25 + 31 + 125 + 27 + 77 + 22 + 29 + 22 + 23 + 33 + 42 + 33},
		{WebSocket, 18 + 25 + 125 + 31 + 42 + 33},
	} {
		fields := o.RequestFields(tc.k, origin, false)
		if got := FieldBytes(fields); got != tc.want {
			t.Errorf("%v: %d bytes, want %d:\n%v", tc.k, got, tc.want, fields)
		}
		for _, f := range fields {
			if f.Value == "" || strings.Contains(f.Value, "{") {
				t.Errorf("%v: field %s has unexpanded value %q", tc.k, f.Name, f.Value)
			}
		}
	}
	// Over HTTP/2 the connection field goes.
	if got, want := FieldBytes(o.RequestFields(Fetch, origin, true)), FieldBytes(o.RequestFields(Fetch, origin, false))-24; got != want {
		t.Errorf("fetch over h2: %d bytes, want %d", got, want)
	}
}

func TestGoProfile(t *testing.T) {
	o := Default()
	if f := o.RequestFields(Fetch, "http://x", false); len(f) != 0 {
		t.Errorf("go fetch: %v, want nothing", f)
	}
	if f := o.RequestFields(EventSource, "http://x", false); len(f) != 1 || f[0] != (Field{"Accept", "text/event-stream"}) {
		t.Errorf("go eventsource: %v", f)
	}
	o.Compress, o.CookieBytes = true, 40
	f := o.RequestFields(Fetch, "http://x", false)
	if len(f) != 2 || f[0] != (Field{"Accept-Encoding", "gzip"}) || f[1].Name != "Cookie" || len(f[1].Value) != 40 {
		t.Errorf("go fetch with compress and cookie: %v", f)
	}
	if o.ResponseFields() != nil {
		t.Errorf("go profile has response fields by default")
	}
}

func TestCookie(t *testing.T) {
	for _, n := range []int{5, 6, 64, 4096} {
		c := Cookie(n)
		if len(c) != n || !strings.HasPrefix(c, "sid=") {
			t.Errorf("Cookie(%d) = %q (%d bytes)", n, c, len(c))
		}
		for _, r := range c[4:] {
			if !strings.ContainsRune(cookieAlphabet, r) {
				t.Errorf("Cookie(%d) has %q", n, r)
			}
		}
		if Cookie(n) != c {
			t.Errorf("Cookie(%d) is not deterministic", n)
		}
	}
	if Cookie(4) != "" {
		t.Errorf("Cookie(4) should be empty")
	}
}

func TestResponseFields(t *testing.T) {
	o := Browser()
	f := o.ResponseFields()
	// Server, Vary, nosniff, X-Frame-Options, Referrer-Policy, X-Request-Id.
	if got, want := FieldBytes(f), 15+23+33+29+50+48; got != want {
		t.Errorf("deployment fields: %d bytes, want %d: %v", got, want, f)
	}
	if f2 := o.ResponseFields(); f2[5].Value == f[5].Value {
		t.Errorf("X-Request-Id repeats: %q", f[5].Value)
	}
	o.TLS = true
	if got, want := FieldBytes(o.ResponseFields()), FieldBytes(f)+64; got != want {
		t.Errorf("deployment fields over TLS: %d bytes, want %d", got, want)
	}
	o.ResponseHeaders = ResponseMinimal
	if o.ResponseFields() != nil {
		t.Errorf("minimal profile has fields")
	}
}

func TestValidateAndSuffix(t *testing.T) {
	bad := []Options{
		{HTTP: "3", Headers: HeadersGo},
		{HTTP: HTTP1, Headers: "curl"},
		{HTTP: HTTP1, Headers: HeadersGo, ResponseHeaders: "huge"},
		{HTTP: HTTP1, Headers: HeadersGo, CookieBytes: -1},
		{HTTP: HTTP1, Headers: HeadersGo, CookieBytes: 4},
		{HTTP: HTTP1, Headers: HeadersGo, CookieBytes: MaxCookieBytes + 1},
	}
	for _, o := range bad {
		if err := o.Validate(""); err == nil {
			t.Errorf("%+v: no error", o)
		}
	}
	h2 := Options{HTTP: HTTP2, Headers: HeadersGo}
	for _, name := range transport.Names() {
		err := h2.Validate(name)
		if (err == nil) != UsesHTTP2(name) {
			t.Errorf("http 2 for %s: %v", name, err)
		}
	}
	for _, tc := range []struct {
		o    Options
		want string
	}{
		{Default(), ""},
		{Options{HTTP: HTTP1, Headers: HeadersGo, ResponseHeaders: ResponseMinimal}, ""},
		{Browser(), "/headers=browser"},
		{Options{HTTP: HTTP1, Headers: HeadersBrowser, ResponseHeaders: ResponseMinimal}, "/headers=browser/response=minimal"},
		{Options{HTTP: HTTP2, TLS: true, Headers: HeadersBrowser, CookieBytes: 512, Compress: true}, "/http=2/tls=on/headers=browser/cookie=512/compress=on"},
		{Options{HTTP: HTTP1, Headers: HeadersGo, ResponseHeaders: ResponseDeployment}, "/response=deployment"},
	} {
		if got := tc.o.Suffix(); got != tc.want {
			t.Errorf("%+v: suffix %q, want %q", tc.o, got, tc.want)
		}
		if tc.o.IsDefault() != (tc.want == "") {
			t.Errorf("%+v: IsDefault %v", tc.o, tc.o.IsDefault())
		}
	}
}

func TestFlags(t *testing.T) {
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	get := AddFlags(fs, Browser())
	if err := fs.Parse([]string{"--http", "2", "--tls", "--cookie-bytes", "100", "--compress"}); err != nil {
		t.Fatal(err)
	}
	o, err := get()
	if err != nil || o != (Options{HTTP: HTTP2, TLS: true, Headers: HeadersBrowser, CookieBytes: 100, Compress: true}) {
		t.Fatalf("flags: %+v, %v", o, err)
	}
	fs = flag.NewFlagSet("x", flag.ContinueOnError)
	get = AddFlags(fs, Default())
	_ = fs.Parse([]string{"--http", "1.0"})
	if _, err := get(); err == nil || !strings.Contains(err.Error(), `http "1.0"`) {
		t.Errorf("--http 1.0: %v", err)
	}
}

// TestTLS checks the generated certificate against the client side: a client
// that trusts it on first use verifies it for 127.0.0.1 with TLS 1.3 and
// negotiates h2 when it offers it, and resumes its session on a second
// connection.
func TestTLS(t *testing.T) {
	cert, err := SelfSigned()
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", ServerConfig(cert))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			// Handshake, send the session ticket with one byte, close.
			_ = c.(*tls.Conn).Handshake()
			_, _ = c.Write([]byte{1})
			c.Close()
		}
	}()
	ctx := context.Background()
	pool, err := TrustServer(ctx, ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	cfg := ClientConfig(pool, "127.0.0.1", ALPNHTTP2, ALPNHTTP1)
	for i := range 2 {
		c, err := tls.Dial("tcp", ln.Addr().String(), cfg)
		if err != nil {
			t.Fatalf("dial %d: %v", i, err)
		}
		var b [1]byte
		_, _ = c.Read(b[:]) // reads the ticket too
		st := c.ConnectionState()
		c.Close()
		if st.Version != tls.VersionTLS13 || st.NegotiatedProtocol != ALPNHTTP2 || st.DidResume != (i == 1) {
			t.Errorf("conn %d: version %x, alpn %q, resumed %v", i, st.Version, st.NegotiatedProtocol, st.DidResume)
		}
	}
	// Another name than the certificate's fails verification.
	bad := ClientConfig(pool, "example.com")
	if c, err := tls.Dial("tcp", ln.Addr().String(), bad); err == nil {
		c.Close()
		t.Errorf("example.com verified")
	}
	if _, err := TrustServer(ctx, "192.0.2.1:443"); err == nil || !strings.Contains(err.Error(), "loopback") {
		t.Errorf("TrustServer off loopback: %v", err)
	}
	ln.Close()
	<-done
}
