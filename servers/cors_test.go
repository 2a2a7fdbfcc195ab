package servers

import (
	"bufio"
	"context"
	"crypto/tls"
	"flag"
	"io"
	"net"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/gorilla/websocket"

	"pushbench/netem"
	"pushbench/transport"
	"pushbench/webhttp"
)

func TestParseOrigin(t *testing.T) {
	t.Parallel()
	good := map[string]string{
		"*":                       "*",
		"http://localhost:3000":   "http://localhost:3000",
		"HTTPS://App.Example.COM": "https://app.example.com",
		"http://example.com:80":   "http://example.com",
		"https://example.com:443": "https://example.com",
		"https://example.com:80":  "https://example.com:80",
		"http://[::1]:8080":       "http://[::1]:8080",
		"http://127.0.0.1:8080":   "http://127.0.0.1:8080",
	}
	for in, want := range good {
		if got, err := ParseOrigin(in); err != nil || got != want {
			t.Errorf("ParseOrigin(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", "localhost:3000", "localhost", "http://localhost:3000/", "http://localhost:3000/app",
		"http://localhost:3000?x", "http://localhost:3000#", "ws://localhost:3000", "file:///tmp/x", "null",
		"http://", "http://:3000", "http://host:", "http://host:0", "http://host:65536", "http://host:x",
		"http://user@host", "**", "http://a b"} {
		if got, err := ParseOrigin(in); err == nil {
			t.Errorf("ParseOrigin(%q) = %q, want an error", in, got)
		} else if !strings.Contains(err.Error(), "want scheme://host[:port]") {
			t.Errorf("ParseOrigin(%q): %v", in, err)
		}
	}
}

func TestCORSFlag(t *testing.T) {
	t.Parallel()
	parse := func(args ...string) (Config, error) {
		fs := flag.NewFlagSet("serve", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		get := AddFlags(fs)
		if err := fs.Parse(args); err != nil {
			return Config{}, err
		}
		cfg, _, err := get()
		return cfg, err
	}
	cfg, err := parse("--cors", "http://localhost:3000", "--cors", "*")
	if err != nil || !slices.Equal(cfg.CORS, []string{"http://localhost:3000", "*"}) {
		t.Errorf("--cors twice: %v %q", err, cfg.CORS)
	}
	if cfg, err := parse(); err != nil || cfg.CORS != nil {
		t.Errorf("no --cors: %v %q", err, cfg.CORS)
	}
	_, err = parse("--cors", "http://localhost:3000", "--cors", "localhost:3000")
	if err == nil || !strings.HasPrefix(err.Error(), `--cors: origin "localhost:3000": want scheme://host[:port]`) {
		t.Errorf("bad --cors: %v", err)
	}
	if _, err := New(Config{CORS: []string{"http://x/"}}); err == nil || !strings.Contains(err.Error(), `cors origin "http://x/"`) {
		t.Errorf("New with a bad origin: %v", err)
	}
}

// corsFields returns the CORS fields of h and its Vary, the whole of what
// CORS changes in an answer.
func corsFields(h http.Header) http.Header {
	out := http.Header{}
	for k, v := range h {
		if strings.HasPrefix(k, "Access-Control-") || k == "Vary" {
			out[k] = v
		}
	}
	return out
}

// TestCORSHeaders checks the exact CORS fields of every answer a page on
// another origin gets: allowed, refused, same origin, no Origin, preflights
// and the wrong methods, with named origins, with * and without --cors.
func TestCORSHeaders(t *testing.T) {
	t.Parallel()
	const app = "http://app.example:3000"
	named := startServer(t, Config{Ring: 16, CORS: []string{app}}, nil)
	anyOrigin := startServer(t, Config{Ring: 16, CORS: []string{"*", app}}, nil)
	off := startServer(t, Config{Ring: 16}, nil)
	for _, ts := range []*testServer{named, anyOrigin, off} {
		publish(t, ts.Hub(), 3, 60)
	}
	c := httpClient(t)
	vary := []string{"Origin"}
	credentialed := func(origin string) http.Header {
		return http.Header{"Access-Control-Allow-Origin": {origin}, "Access-Control-Allow-Credentials": {"true"}, "Vary": vary}
	}
	preflightOK := func(origin, method string) http.Header {
		h := credentialed(origin)
		h["Access-Control-Allow-Methods"] = []string{method}
		h["Access-Control-Allow-Headers"] = []string{"Content-Type, Last-Event-ID"}
		h["Access-Control-Max-Age"] = []string{"600"}
		return h
	}
	preflight := func(origin, method string) http.Header {
		return http.Header{"Origin": {origin}, "Access-Control-Request-Method": {method}}
	}
	tests := []struct {
		name   string
		ts     *testServer
		method string
		path   string
		hdr    http.Header
		code   int
		want   http.Header // exactly the CORS fields and Vary
		body   string      // part of the answer
	}{
		{"allowed poll", named, "GET", "/poll?since=2", http.Header{"Origin": {app}}, 200, credentialed(app), `"seq":3`},
		{"allowed longpoll", named, "GET", "/longpoll?since=2", http.Header{"Origin": {app}}, 200, credentialed(app), `"seq":3`},
		{"allowed stats", named, "GET", "/stats", http.Header{"Origin": {app}}, 200, credentialed(app), `"head":3`},
		{"allowed send, refused for no run", named, "POST", "/send", http.Header{"Origin": {app}}, 409, credentialed(app), "no chat or game running"},
		{"allowed, error readable", named, "GET", "/poll?since=9", http.Header{"Origin": {app}}, 400, credentialed(app), "ahead"},
		{"refused poll", named, "GET", "/poll?since=2", http.Header{"Origin": {"http://evil.example"}}, 200, http.Header{"Vary": vary}, `"seq":3`},
		{"no origin", named, "GET", "/poll?since=2", nil, 200, http.Header{"Vary": vary}, `"seq":3`},
		{"same origin", named, "GET", "/poll?since=2", http.Header{"Origin": {named.url}}, 200, http.Header{"Vary": vary}, `"seq":3`},
		{"preflight poll", named, "OPTIONS", "/poll", preflight(app, "GET"), 204, preflightOK(app, "GET"), ""},
		{"preflight sse with Last-Event-ID", named, "OPTIONS", "/sse",
			http.Header{"Origin": {app}, "Access-Control-Request-Method": {"GET"}, "Access-Control-Request-Headers": {"last-event-id"}},
			204, preflightOK(app, "GET"), ""},
		{"preflight send", named, "OPTIONS", "/send?room=0",
			http.Header{"Origin": {app}, "Access-Control-Request-Method": {"POST"}, "Access-Control-Request-Headers": {"content-type"}},
			204, preflightOK(app, "POST"), ""},
		{"preflight to a private network", named, "OPTIONS", "/longpoll",
			http.Header{"Origin": {app}, "Access-Control-Request-Method": {"GET"}, "Access-Control-Request-Private-Network": {"true"}},
			204, func() http.Header {
				h := preflightOK(app, "GET")
				h["Access-Control-Allow-Private-Network"] = []string{"true"}
				return h
			}(), ""},
		{"preflight refused origin", named, "OPTIONS", "/sse", preflight("http://evil.example", "GET"), 403, http.Header{"Vary": vary},
			`/sse: origin "http://evil.example" not allowed (allowed: the server's own origin and http://app.example:3000)`},
		{"preflight wrong method", named, "OPTIONS", "/poll", preflight(app, "POST"), 403, http.Header{"Vary": vary},
			"/poll: preflight for method POST not allowed (want GET)"},
		{"OPTIONS that is no preflight", named, "OPTIONS", "/poll", http.Header{"Origin": {app}}, 405, credentialed(app), "method OPTIONS not allowed"},
		{"OPTIONS without Origin", named, "OPTIONS", "/poll", http.Header{"Access-Control-Request-Method": {"GET"}}, 405, http.Header{"Vary": vary}, "method OPTIONS not allowed"},
		{"preflight on ws", named, "OPTIONS", "/ws", preflight(app, "GET"), 405, http.Header{}, "method OPTIONS not allowed"},
		{"preflight on control", named, "OPTIONS", "/control/start", preflight(app, "POST"), 403, http.Header{}, "no requests from web pages"},

		{"any: other origin", anyOrigin, "GET", "/poll?since=2", http.Header{"Origin": {"http://other.example"}}, 200,
			http.Header{"Access-Control-Allow-Origin": {"*"}, "Vary": vary}, `"seq":3`},
		{"any: null origin", anyOrigin, "GET", "/poll?since=2", http.Header{"Origin": {"null"}}, 200,
			http.Header{"Access-Control-Allow-Origin": {"*"}, "Vary": vary}, `"seq":3`},
		{"any: named origin keeps credentials", anyOrigin, "GET", "/poll?since=2", http.Header{"Origin": {app}}, 200, credentialed(app), `"seq":3`},
		{"any: preflight", anyOrigin, "OPTIONS", "/send", preflight("http://other.example", "POST"), 204, http.Header{
			"Access-Control-Allow-Origin": {"*"}, "Access-Control-Allow-Methods": {"POST"}, "Access-Control-Allow-Headers": {"Content-Type, Last-Event-ID"},
			"Access-Control-Max-Age": {"600"}, "Vary": vary}, ""},

		{"off: cross-origin poll", off, "GET", "/poll?since=2", http.Header{"Origin": {app}}, 200, http.Header{}, `"seq":3`},
		{"off: preflight", off, "OPTIONS", "/poll", preflight(app, "GET"), 405, http.Header{}, "method OPTIONS not allowed"},
	}
	for _, tt := range tests {
		req, err := http.NewRequest(tt.method, tt.ts.url+tt.path, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header = tt.hdr.Clone()
		if req.Header == nil {
			req.Header = http.Header{}
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tt.code || !strings.Contains(string(body), tt.body) {
			t.Errorf("%s: %s %s: %d %q, want %d with %q", tt.name, tt.method, tt.path, resp.StatusCode, body, tt.code, tt.body)
		}
		if got := corsFields(resp.Header); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s: CORS fields\n got %v\nwant %v", tt.name, got, tt.want)
		}
		if tt.code == 204 && (len(body) != 0 || resp.Header.Get("Content-Type") != "") {
			t.Errorf("%s: a preflight answer has a body %q or Content-Type %q", tt.name, body, resp.Header.Get("Content-Type"))
		}
	}

	// Counted: allowed answers, preflights answered, refusals; preflights
	// as requests of their transport, refused ones as bad requests.
	st := named.Stats()
	if want := (CORSStats{Origins: []string{app}, Allowed: 6, Preflights: 4, Refused: 2}); !reflect.DeepEqual(st.CORS, want) {
		t.Errorf("named: cors stats %+v, want %+v", st.CORS, want)
	}
	if p := st.Transports[transport.ShortPoll]; p.Requests != 9 || p.BadRequests != 4 {
		t.Errorf("named: shortpoll requests %d, bad %d; want 9 and 4", p.Requests, p.BadRequests)
	}
	if p := st.Transports[transport.SSE]; p.Requests != 2 || p.BadRequests != 1 {
		t.Errorf("named: sse requests %d, bad %d; want 2 and 1", p.Requests, p.BadRequests)
	}
	if want := (CORSStats{Origins: []string{"*", app}, Allowed: 3, Preflights: 1}); !reflect.DeepEqual(anyOrigin.Stats().CORS, want) {
		t.Errorf("any: cors stats %+v, want %+v", anyOrigin.Stats().CORS, want)
	}
	if want := (CORSStats{Refused: 2}); !reflect.DeepEqual(off.Stats().CORS, want) {
		t.Errorf("off: cors stats %+v, want %+v", off.Stats().CORS, want)
	}
}

// TestCORSSSE: a cross-origin EventSource gets the stream with
// Access-Control-Allow-Origin, and so does its reconnect, which carries
// Last-Event-ID without a preflight.
func TestCORSSSE(t *testing.T) {
	t.Parallel()
	const app = "http://app.example:3000"
	ts := startServer(t, Config{Ring: 16, CORS: []string{app}}, nil)
	publish(t, ts.Hub(), 3, 60)
	for _, hdr := range []map[string]string{{"Origin": app}, {"Origin": app, "Last-Event-ID": "1"}} {
		c := dialSSE(t, ts.addr, "/sse?since=0", hdr)
		got := corsFields(c.resp.Header)
		want := http.Header{"Access-Control-Allow-Origin": {app}, "Access-Control-Allow-Credentials": {"true"}, "Vary": {"Origin"}}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%v: CORS fields %v, want %v", hdr, got, want)
		}
		first := uint64(1)
		if hdr["Last-Event-ID"] != "" {
			first = 2
		}
		if id, _, err := c.next(); err != nil || id != first {
			t.Errorf("%v: first message %d (%v), want %d", hdr, id, err, first)
		}
		c.conn.Close()
	}
}

// wsDial upgrades to /ws at addr (through TLS with tc) with origin ("": no
// Origin field) and returns the connection or the refusal's status and
// body.
func wsDial(t *testing.T, addr string, tc *tls.Config, origin string, extra http.Header) (*websocket.Conn, int, string) {
	t.Helper()
	d := websocket.Dialer{HandshakeTimeout: ioTimeout, TLSClientConfig: tc}
	scheme := "ws"
	if tc != nil {
		scheme = "wss"
	}
	h := extra.Clone()
	if h == nil {
		h = http.Header{}
	}
	if origin != "" {
		h.Set("Origin", origin)
	}
	conn, resp, err := d.Dial(scheme+"://"+addr+"/ws", h)
	if err != nil {
		if resp == nil {
			t.Fatalf("dial %s with Origin %q: %v", addr, origin, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return nil, resp.StatusCode, string(b)
	}
	resp.Body.Close()
	t.Cleanup(func() { conn.Close() })
	return conn, resp.StatusCode, ""
}

// TestWSOrigin: by default a WebSocket upgrade is served without Origin or
// from the server's own origin and refused (403, with a reason, counted)
// from any other; --cors adds origins, * all of them. Raw TCP does the same.
func TestWSOrigin(t *testing.T) {
	t.Parallel()
	const app = "http://app.example:3000"
	def := startServer(t, Config{}, nil)
	named := startServer(t, Config{CORS: []string{app}}, nil)
	anyOrigin := startServer(t, Config{CORS: []string{"*"}}, nil)
	secure := startWeb(t, Config{}, true)
	_, port, _ := net.SplitHostPort(def.addr)
	tests := []struct {
		ts     *testServer
		origin string
		ok     bool
	}{
		{def, "", true},
		{def, def.url, true},
		{def, "HTTP://127.0.0.1:" + port, true},
		{def, "http://localhost:" + port, false}, // the same machine, another origin
		{def, "https://" + def.addr, false},
		{def, "http://evil.example", false},
		{def, "null", false},
		{def, app, false},
		{named, app, true},
		{named, named.url, true},
		{named, "http://evil.example", false},
		{anyOrigin, "http://evil.example", true},
		{anyOrigin, "null", true},
		{secure, "https://" + secure.addr, true},
		{secure, "http://" + secure.addr, false},
	}
	for _, tt := range tests {
		var tc *tls.Config
		if tt.ts == secure {
			tc = clientTLS(t, webhttp.ALPNHTTP1)
		}
		conn, code, body := wsDial(t, tt.ts.addr, tc, tt.origin, nil)
		if tt.ok {
			if conn == nil {
				t.Errorf("%s Origin %q: refused %d %q, want served", tt.ts.url, tt.origin, code, body)
			} else {
				conn.Close()
			}
			continue
		}
		want := "/ws: origin " + `"` + tt.origin + `" not allowed (`
		if conn != nil || code != http.StatusForbidden || !strings.HasPrefix(body, want) || strings.Count(body, "\n") != 1 {
			t.Errorf("%s Origin %q: %d %q, want 403 %q…", tt.ts.url, tt.origin, code, body, want)
		}
	}
	if _, _, body := wsDial(t, def.addr, nil, "http://evil.example", nil); body != `/ws: origin "http://evil.example" not allowed (only the server's own origin; serve --cors ORIGIN allows others)`+"\n" {
		t.Errorf("default refusal: %q", body)
	}
	if st := def.Stats(); st.CORS.Refused != 6 || st.Transports[transport.WebSocket].BadRequests != 6 {
		t.Errorf("default: %d refused, %d bad requests; want 6", st.CORS.Refused, st.Transports[transport.WebSocket].BadRequests)
	}
	if st := named.Stats(); st.CORS.Refused != 1 || st.CORS.Allowed != 1 {
		t.Errorf("named: cors %+v", st.CORS)
	}

	// Raw TCP: the same rule.
	for _, tt := range []struct {
		origin string
		want   string
	}{
		{"", "HTTP/1.1 101 Switching Protocols\r\n"},
		{def.url, "HTTP/1.1 101 Switching Protocols\r\n"},
		{"http://evil.example", "HTTP/1.1 403 Forbidden\r\n"},
	} {
		c, err := net.DialTimeout("tcp", def.addr, ioTimeout)
		if err != nil {
			t.Fatal(err)
		}
		req := "GET /tcp HTTP/1.1\r\nHost: " + def.addr + "\r\nConnection: Upgrade\r\nUpgrade: pushbench-tcp\r\n"
		if tt.origin != "" {
			req += "Origin: " + tt.origin + "\r\n"
		}
		if _, err := io.WriteString(c, req+"\r\n"); err != nil {
			t.Fatal(err)
		}
		line, err := bufio.NewReader(c).ReadString('\n')
		c.Close()
		if err != nil || line != tt.want {
			t.Errorf("/tcp with Origin %q: %q (%v), want %q", tt.origin, line, err, tt.want)
		}
	}
	if got := def.Stats().Transports[transport.TCP].BadRequests; got != 1 {
		t.Errorf("tcp: %d bad requests, want 1", got)
	}
}

// TestWSOriginThroughEmulator: through the network emulator the browser
// profile's Origin, built from the base URL the client dials (the
// emulator's), matches the Host the server sees (the emulator's too, since
// the emulator forwards the bytes), so the same-origin rule serves it,
// over TLS as well. An Origin naming the server's own address instead is
// another origin there, and refused.
func TestWSOriginThroughEmulator(t *testing.T) {
	for _, tlsOn := range []bool{false, true} {
		ts := startWeb(t, Config{}, tlsOn)
		em := netem.New("127.0.0.1:0", ts.addr, netem.Profile{Name: "test"})
		addr, err := em.Start()
		if err != nil {
			t.Fatal(err)
		}
		var tc *tls.Config
		scheme := "http://"
		if tlsOn {
			tc, scheme = clientTLS(t, webhttp.ALPNHTTP1), "https://"
		}
		origin := scheme + addr // what clients.origin makes of the emulator's URL
		hdr := webhttp.Browser().RequestHeader(webhttp.WebSocket, origin, false)
		conn, code, body := wsDial(t, addr, tc, "", hdr)
		if conn == nil {
			t.Fatalf("tls %v: the browser profile through the emulator was refused: %d %q", tlsOn, code, body)
		}
		publish(t, ts.Hub(), 1, 60)
		if msg, err := readWS(conn); err != nil || seqOf(t, msg) != 1 {
			t.Errorf("tls %v: %q %v", tlsOn, msg, err)
		}
		conn.Close()
		if conn, code, _ := wsDial(t, addr, tc, scheme+ts.addr, nil); conn != nil || code != http.StatusForbidden {
			t.Errorf("tls %v: Origin of the server's own address through the emulator: %d, want 403", tlsOn, code)
		}
		if err := em.Close(); err != nil {
			t.Error(err)
		}
		ts.shutdown(t, ioTimeout)
	}
}

// TestLivePage: GET / serves the live page, self-contained, subscribing
// with the four browser transports; HEAD too; other paths stay 404.
func TestLivePage(t *testing.T) {
	t.Parallel()
	ts := startServer(t, Config{}, nil)
	c := httpClient(t)
	resp, err := c.Get(ts.url + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	h := resp.Header
	if resp.StatusCode != 200 || h.Get("Content-Type") != "text/html; charset=utf-8" || h.Get("Cache-Control") != "no-cache" ||
		resp.ContentLength != int64(len(livePage)) || string(body) != string(livePage) {
		t.Fatalf("GET /: %d %v, %d bytes", resp.StatusCode, h, len(body))
	}
	for _, want := range []string{"new EventSource(", "new WebSocket(", "/longpoll", "/poll", "/stats", "Date.now()"} {
		if !strings.Contains(string(body), want) {
			t.Errorf("the page lacks %q", want)
		}
	}
	for _, external := range []string{"src=", "<link", "@import", "url("} {
		if strings.Contains(string(body), external) {
			t.Errorf("the page loads something (%q): it must be self-contained", external)
		}
	}
	resp, err = c.Head(ts.url + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/html; charset=utf-8" {
		t.Errorf("HEAD /: %d %v", resp.StatusCode, resp.Header)
	}
	if code, body, _ := do(t, c, "GET", ts.url+"/live", nil); code != 404 || !strings.Contains(body, `unknown path "/live"`) {
		t.Errorf("GET /live: %d %q", code, body)
	}
}

// TestControlRefusesOtherOrigins: /control/* takes no request from a web
// page, even one --cors allows ('*' included) or one on the server's own
// origin: a bodiless POST is a simple request a browser sends cross-origin
// without a preflight. The harness (no Origin) is served.
func TestControlRefusesOtherOrigins(t *testing.T) {
	ts := startServer(t, Config{Ring: 16, CORS: []string{"*"}}, nil)
	for _, path := range []string{"/control/start?rate=10&events=1", "/control/stop", "/control/gc"} {
		req, _ := http.NewRequest(http.MethodPost, ts.url+path, nil)
		req.Header.Set("Origin", "https://evil.example")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(body), "no requests from web pages") {
			t.Errorf("%s from another origin: %d %q, want 403 with the reason", path, resp.StatusCode, body)
		}
	}
	if ts.Stats().Publisher.Running || ts.Stats().Publisher.Published != 0 {
		t.Fatal("a cross-origin POST started the publisher")
	}
	// Even the server's own origin: a page re-pointed at loopback (DNS
	// rebinding) sends Origin and Host alike. The harness sends none.
	for origin, want := range map[string]int{"": http.StatusOK, ts.url: http.StatusForbidden} {
		req, _ := http.NewRequest(http.MethodPost, ts.url+"/control/stop", nil)
		if origin != "" {
			req.Header.Set("Origin", origin)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("/control/stop with Origin %q: %d, want %d", origin, resp.StatusCode, want)
		}
	}
}

// TestControlToken: with a token, /control/* answers 401 (counted) to a
// request without it or with another, and serves the right one; a server
// that listens beyond loopback refuses to start without a token.
func TestControlToken(t *testing.T) {
	const token = "0123456789abcdef-token"
	ts := startServer(t, Config{Ring: 16, Token: token}, nil)
	for _, auth := range []string{"", "Bearer wrong-token-0123456789", "Basic " + token, "Bearer " + token + "x", "Bearer"} {
		req, _ := http.NewRequest(http.MethodPost, ts.url+"/control/stop", nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("WWW-Authenticate") == "" || !strings.Contains(string(body), "bearer token is required") {
			t.Errorf("Authorization %q: %d %q, want 401 with the reason", auth, resp.StatusCode, body)
		}
	}
	for _, scheme := range []string{"Bearer ", "bearer "} {
		req, _ := http.NewRequest(http.MethodPost, ts.url+"/control/stop", nil)
		req.Header.Set("Authorization", scheme+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("the right token (%q): %d", scheme, resp.StatusCode)
		}
	}
	if st := ts.Stats(); !st.ControlToken || st.ControlUnauthorized != 5 {
		t.Errorf("stats: token %v, unauthorized %d; want true, 5", st.ControlToken, st.ControlUnauthorized)
	}
	for _, c := range []Config{{Addr: "0.0.0.0:0"}, {Addr: ":8080"}, {Addr: "10.1.2.3:80"}, {Addr: "127.0.0.1:0", Token: "short"}} {
		if _, err := New(c); err == nil {
			t.Errorf("New(%+v): started", c)
		}
	}
	for _, c := range []Config{{Addr: "127.0.0.1:0"}, {Addr: "[::1]:0"}, {Addr: "localhost:0"}, {Addr: "0.0.0.0:0", Token: token}} {
		s, err := New(c)
		if err != nil {
			t.Errorf("New(%+v): %v", c, err)
			continue
		}
		if err := s.Shutdown(context.Background()); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	}
}
