package webhttp

import (
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"strings"
)

// Kind is the kind of request a header profile describes.
type Kind int

const (
	// Fetch is a poll: fetch() or XMLHttpRequest from a page.
	Fetch Kind = iota
	// EventSource is the request that opens an SSE stream.
	EventSource
	// WebSocket is a WebSocket upgrade.
	WebSocket
	// Send is a client message sent upstream: fetch() with method POST
	// and a JSON body (the chat and game workloads' POST /send).
	Send
)

func (k Kind) String() string {
	switch k {
	case Fetch:
		return "fetch"
	case EventSource:
		return "eventsource"
	case WebSocket:
		return "websocket"
	case Send:
		return "send"
	}
	return "unknown"
}

// Field is one header line.
type Field struct{ Name, Value string }

// The browser profile's constants: desktop Chrome 156 on Windows, the
// Chromium release whose requests the profile reproduces (docs/http.md).
// The values a headless Chromium sends differ only in "HeadlessChrome" and
// the platform; a page's origin differs per deployment, and the profile
// uses the server's own origin, as a same-origin page would.
const (
	chromeUA       = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0.0.0 Safari/537.36"
	chromeCHUA     = `"Google Chrome";v="156", "Not:A-Brand";v="8", "Chromium";v="156"`
	chromePlatform = `"Windows"`
	chromeEncoding = "gzip, deflate, br, zstd"
	chromeLanguage = "en-US,en;q=0.9"
)

// browserRequest is Chromium's header list for each request kind, in the
// order Chromium 156 sends them over HTTP/1.1, captured from headless
// Chromium with the substitutions above (TestBrowserProfileMatchesChromium
// compares the names with a live capture where Chromium is installed).
// Host, Content-Length (a POST's), and for an upgrade Connection, Upgrade
// and the Sec-WebSocket- fields, are written by the HTTP library itself and
// so are missing here;
// {origin} is replaced by the page's origin, and the Cookie field is added
// after them when the options ask for one.
var browserRequest = map[Kind][]Field{
	Fetch: {
		{"Connection", "keep-alive"},
		{"sec-ch-ua-platform", chromePlatform},
		{"User-Agent", chromeUA},
		{"sec-ch-ua", chromeCHUA},
		{"sec-ch-ua-mobile", "?0"},
		{"Accept", "*/*"},
		{"Sec-Fetch-Site", "same-origin"},
		{"Sec-Fetch-Mode", "cors"},
		{"Sec-Fetch-Dest", "empty"},
		{"Referer", "{origin}/"},
		{"Accept-Encoding", chromeEncoding},
		{"Accept-Language", chromeLanguage},
	},
	EventSource: {
		{"Connection", "keep-alive"},
		{"Pragma", "no-cache"},
		{"Cache-Control", "no-cache"},
		{"sec-ch-ua-platform", chromePlatform},
		{"User-Agent", chromeUA},
		{"Accept", "text/event-stream"},
		{"sec-ch-ua", chromeCHUA},
		{"sec-ch-ua-mobile", "?0"},
		{"Sec-Fetch-Site", "same-origin"},
		{"Sec-Fetch-Mode", "cors"},
		{"Sec-Fetch-Dest", "empty"},
		{"Referer", "{origin}/"},
		{"Accept-Encoding", chromeEncoding},
		{"Accept-Language", chromeLanguage},
	},
	Send: {
		{"Connection", "keep-alive"},
		{"sec-ch-ua-platform", chromePlatform},
		{"User-Agent", chromeUA},
		{"sec-ch-ua", chromeCHUA},
		{"Content-Type", "application/json"},
		{"sec-ch-ua-mobile", "?0"},
		{"Accept", "*/*"},
		{"Origin", "{origin}"},
		{"Sec-Fetch-Site", "same-origin"},
		{"Sec-Fetch-Mode", "cors"},
		{"Sec-Fetch-Dest", "empty"},
		{"Referer", "{origin}/"},
		{"Accept-Encoding", chromeEncoding},
		{"Accept-Language", chromeLanguage},
	},
	WebSocket: {
		{"Pragma", "no-cache"},
		{"Cache-Control", "no-cache"},
		{"User-Agent", chromeUA},
		{"Origin", "{origin}"},
		{"Accept-Encoding", chromeEncoding},
		{"Accept-Language", chromeLanguage},
	},
}

// hopByHop are the HTTP/1.1 connection fields that HTTP/2 forbids: a
// browser does not send them there.
var hopByHop = map[string]bool{"Connection": true, "Keep-Alive": true, "Upgrade": true}

// RequestFields returns the header fields a client of o sends on a request
// of kind k to a server whose origin (scheme://host[:port]) is origin, in
// order, beyond those the HTTP library writes itself (Host; for an upgrade
// also Connection, Upgrade and the Sec-WebSocket- fields). http2 drops the
// HTTP/1.1 connection fields, as browsers do over HTTP/2.
//
// The Go profile adds nothing but what the transport needs (Accept for an
// event stream) and, with Compress, Accept-Encoding: gzip, which Go's own
// transparent compression would have sent.
func (o Options) RequestFields(k Kind, origin string, http2 bool) []Field {
	var out []Field
	if o.Headers == HeadersBrowser {
		for _, f := range browserRequest[k] {
			if http2 && hopByHop[f.Name] {
				continue
			}
			f.Value = strings.ReplaceAll(f.Value, "{origin}", origin)
			out = append(out, f)
		}
	} else {
		switch k {
		case EventSource:
			out = append(out, Field{"Accept", "text/event-stream"})
		case Send:
			out = append(out, Field{"Content-Type", "application/json"})
		}
		if o.Compress && k != WebSocket && k != Send {
			out = append(out, Field{"Accept-Encoding", "gzip"})
		}
	}
	if o.CookieBytes > 0 {
		out = append(out, Field{"Cookie", Cookie(o.CookieBytes)})
	}
	return out
}

// RequestHeader is RequestFields as an http.Header, to set on a request.
func (o Options) RequestHeader(k Kind, origin string, http2 bool) http.Header {
	h := http.Header{}
	for _, f := range o.RequestFields(k, origin, http2) {
		// Not Add/Set: they would canonicalise "sec-ch-ua" to
		// "Sec-Ch-Ua". Chromium writes those in lower case; net/http
		// writes a key as it is stored, and HTTP/2 lower-cases all.
		h[f.Name] = append(h[f.Name], f.Value)
	}
	return h
}

// cookieName is the name of the session cookie.
const cookieName = "sid"

// cookieAlphabet is what the session cookie's value is drawn from: the
// characters of a base64url session token.
const cookieAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

// Cookie returns a session cookie "sid=…" exactly n bytes long (n ≥ 5): a
// fixed, token-like value, the same for every client and request so that
// runs repeat byte for byte. (A real token is random per client; HPACK
// indexes it per connection either way.)
func Cookie(n int) string {
	if n < minCookieBytes {
		return ""
	}
	b := make([]byte, n)
	copy(b, cookieName+"=")
	x := uint32(2463534242)
	for i := len(cookieName) + 1; i < n; i++ {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		b[i] = cookieAlphabet[x%uint32(len(cookieAlphabet))]
	}
	return string(b)
}

// deploymentResponse is what a typical deployment adds to every answer: a
// reverse proxy's Server field, a request id for tracing, content sniffing
// and framing protection, Vary for compressed answers, and HSTS over TLS.
// Date, Content-Type, Content-Length or chunked framing, Cache-Control and
// (on HTTP/1.1) Connection come from the server itself.
var deploymentResponse = []Field{
	{"Server", "nginx"},
	{"Vary", "Accept-Encoding"},
	{"X-Content-Type-Options", "nosniff"},
	{"X-Frame-Options", "SAMEORIGIN"},
	{"Referrer-Policy", "strict-origin-when-cross-origin"},
	{"X-Request-Id", "{id}"},
}

// hsts is the Strict-Transport-Security field a TLS deployment sends.
var hsts = Field{"Strict-Transport-Security", "max-age=63072000; includeSubDomains"}

// ResponseFields returns the fields the response profile of o adds to an
// answer (none for ResponseMinimal). X-Request-Id is fresh per call: 32
// random hex digits, as tracing proxies generate, so HTTP/2 cannot
// compress it away.
func (o Options) ResponseFields() []Field {
	var out []Field
	o.responseFields(func(f Field) { out = append(out, f) })
	return out
}

// AddResponse adds the response profile's fields to h. It runs on every
// answer of the server under test, so it builds no list of its own.
func (o Options) AddResponse(h http.Header) {
	o.responseFields(func(f Field) { h[f.Name] = append(h[f.Name], f.Value) })
}

// responseFields hands each field of the response profile to add, in
// order, with a fresh X-Request-Id.
func (o Options) responseFields(add func(Field)) {
	if o.ResponseProfile() != ResponseDeployment {
		return
	}
	for _, f := range deploymentResponse {
		if f.Value == "{id}" {
			f.Value = requestID()
		}
		add(f)
	}
	if o.TLS {
		add(hsts)
	}
}

func requestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// FieldBytes is how many bytes fields take in an HTTP/1.1 header block:
// "Name: Value\r\n" each.
func FieldBytes(fields []Field) int {
	n := 0
	for _, f := range fields {
		n += len(f.Name) + 2 + len(f.Value) + 2
	}
	return n
}
