package report

import (
	"cmp"
	"strconv"
	"strings"
	"time"

	"pushbench/results"
	"pushbench/webhttp"
)

// Event padding as records state it (scenario.pad): 'x' bytes, or a text
// that compresses like real data. Without compression x is the default,
// with it text.
const (
	padX    = "x"
	padText = "text"
)

// defaultPad is the padding a run uses unless told otherwise.
func defaultPad(compress bool) string {
	if compress {
		return padText
	}
	return padX
}

// httpKey is how a cell spoke HTTP (webhttp.Options and the event
// padding), normalised so that a record written before these fields
// existed ("" everywhere) and one that states the defaults are the same
// key: two cells that differ only here are different cells.
type httpKey struct {
	HTTP     string // webhttp.HTTP1 or webhttp.HTTP2
	TLS      bool
	Headers  string // request profile: go or browser
	Response string // response profile, resolved: minimal or deployment
	Cookie   int    // Cookie header value length, 0: none
	Compress bool
	Pad      string // x or text, resolved
	// Client is "browser" for pages in headless Chromium ("": Go
	// clients); CutEvery and SSERetry the server's stream cuts and SSE
	// retry field (0: none). Not HTTP strictly, but how the connections
	// were driven: cells that differ here are different cells.
	Client             string
	CutEvery, SSERetry time.Duration
}

// httpOf reads the HTTP options of a record's scenario; "" fields are the
// defaults (HTTP/1.1, Go's headers, the response profile that goes with
// the request profile, x padding without compression and text with it).
func httpOf(s results.Scenario) httpKey {
	k := httpKey{
		HTTP:     cmp.Or(s.HTTP, webhttp.HTTP1),
		TLS:      s.TLS,
		Headers:  cmp.Or(s.Headers, webhttp.HeadersGo),
		Cookie:   s.CookieBytes,
		Compress: s.Compress,
		Pad:      cmp.Or(s.Pad, defaultPad(s.Compress)),
	}
	k.Response = webhttp.Options{Headers: k.Headers, ResponseHeaders: s.ResponseHeaders}.ResponseProfile()
	if s.Client != "go" {
		k.Client = s.Client
	}
	k.CutEvery, k.SSERetry = time.Duration(s.CutEveryNs), time.Duration(s.SSERetryNs)
	return k
}

// defaultHTTP is the key of webhttp.Default: every record made before the
// options existed.
var defaultHTTP = httpOf(results.Scenario{})

func (k httpKey) options() webhttp.Options {
	return webhttp.Options{HTTP: k.HTTP, TLS: k.TLS, Headers: k.Headers, ResponseHeaders: k.Response,
		CookieBytes: k.Cookie, Compress: k.Compress}
}

// suffix is the bench.txt name suffix: webhttp.Options.Suffix, then
// "/pad=..." when the padding is not the default for the compression
// setting ("" for the defaults, so older names stay as they were).
func (k httpKey) suffix() string {
	s := k.options().Suffix()
	if k.Pad != defaultPad(k.Compress) {
		s += "/pad=" + k.Pad
	}
	if k.Client != "" {
		s += "/client=" + k.Client
	}
	if k.CutEvery > 0 {
		s += "/cut-every=" + k.CutEvery.String()
	}
	if k.SSERetry > 0 {
		s += "/sse-retry=" + k.SSERetry.String()
	}
	return s
}

func (k httpKey) isDefault() bool { return k.suffix() == "" }

// stem is the short form of suffix for file names, in the same order:
// "-h2-tls-br-rmin-ck512-gz-padx" ("" for the defaults).
func (k httpKey) stem() string {
	var b strings.Builder
	if k.HTTP != webhttp.HTTP1 {
		b.WriteString("-h" + strings.ReplaceAll(k.HTTP, ".", ""))
	}
	if k.TLS {
		b.WriteString("-tls")
	}
	switch k.Headers {
	case webhttp.HeadersGo:
	case webhttp.HeadersBrowser:
		b.WriteString("-br")
	default:
		b.WriteString("-" + k.Headers)
	}
	if k.Response != (webhttp.Options{Headers: k.Headers}).ResponseProfile() {
		switch k.Response {
		case webhttp.ResponseMinimal:
			b.WriteString("-rmin")
		case webhttp.ResponseDeployment:
			b.WriteString("-rdep")
		default:
			b.WriteString("-r" + k.Response)
		}
	}
	if k.Cookie > 0 {
		b.WriteString("-ck" + strconv.Itoa(k.Cookie))
	}
	if k.Compress {
		b.WriteString("-gz")
	}
	if k.Pad != defaultPad(k.Compress) {
		b.WriteString("-pad" + k.Pad)
	}
	if k.Client == "browser" {
		b.WriteString("-chrome")
	} else if k.Client != "" {
		b.WriteString("-" + k.Client)
	}
	if k.CutEvery > 0 {
		b.WriteString("-cut" + k.CutEvery.String())
	}
	if k.SSERetry > 0 {
		b.WriteString("-retry" + k.SSERetry.String())
	}
	return b.String()
}

// label names the way of speaking HTTP for readers, e.g. "HTTP/2, TLS,
// browser headers" or "HTTP/1.1, Go headers".
func (k httpKey) label() string {
	var parts []string
	switch {
	case k.HTTP == webhttp.HTTP2 && !k.TLS:
		parts = append(parts, "HTTP/2 (h2c)")
	default:
		parts = append(parts, "HTTP/"+k.HTTP)
	}
	if k.TLS {
		parts = append(parts, "TLS")
	}
	switch k.Headers {
	case webhttp.HeadersGo:
		parts = append(parts, "Go headers")
	default:
		parts = append(parts, k.Headers+" headers")
	}
	if k.Response != (webhttp.Options{Headers: k.Headers}).ResponseProfile() {
		parts = append(parts, k.Response+" response headers")
	}
	if k.Cookie > 0 {
		parts = append(parts, strconv.Itoa(k.Cookie)+" B cookie")
	}
	if k.Compress {
		parts = append(parts, "compressed")
	}
	if k.Pad != defaultPad(k.Compress) {
		parts = append(parts, k.Pad+" padding")
	}
	if k.Client == "browser" {
		parts = append(parts, "Chromium pages")
	} else if k.Client != "" {
		parts = append(parts, k.Client+" clients")
	}
	if k.CutEvery > 0 {
		parts = append(parts, "streams cut every "+k.CutEvery.String())
	}
	if k.SSERetry > 0 {
		parts = append(parts, "retry: "+k.SSERetry.String())
	}
	return strings.Join(parts, ", ")
}

// floorLabel names a floor cell's setting: the floor speaks no HTTP, so
// only TLS (and a padding other than the default) applies to it.
func (k httpKey) floorLabel() string {
	s := "no HTTP"
	if k.TLS {
		s += ", TLS"
	}
	if k.Pad != defaultPad(k.Compress) {
		s += ", " + k.Pad + " padding"
	}
	return s
}

// floor is the key of the floor cell that goes with k: the floor sends no
// HTTP headers and never compresses, so a comparison runs it once per TLS
// setting with everything else at the defaults.
func (k httpKey) floor() httpKey {
	f := defaultHTTP
	f.TLS = k.TLS
	f.CutEvery = k.CutEvery
	return f
}

// compareHTTP orders keys the defaults first: without TLS before with it,
// then HTTP/1.1 before 2, Go's headers before the browser's, then the
// response profile, the cookie, compression and the padding.
func compareHTTP(a, b httpKey) int {
	if c := cmpBool(a.TLS, b.TLS); c != 0 {
		return c
	}
	if c := cmp.Compare(a.HTTP, b.HTTP); c != 0 {
		return c
	}
	headersRank := func(h string) int {
		switch h {
		case webhttp.HeadersGo:
			return 0
		case webhttp.HeadersBrowser:
			return 1
		}
		return 2
	}
	if c := cmp.Compare(headersRank(a.Headers), headersRank(b.Headers)); c != 0 {
		return c
	}
	if c := cmp.Compare(a.Headers, b.Headers); c != 0 {
		return c
	}
	if c := cmp.Compare(a.Response, b.Response); c != 0 {
		return c
	}
	if c := cmp.Compare(a.Cookie, b.Cookie); c != 0 {
		return c
	}
	if c := cmpBool(a.Compress, b.Compress); c != 0 {
		return c
	}
	if c := cmpBool(a.Pad != defaultPad(a.Compress), b.Pad != defaultPad(b.Compress)); c != 0 {
		return c
	}
	if c := cmp.Compare(a.Pad, b.Pad); c != 0 {
		return c
	}
	if c := cmp.Compare(a.Client, b.Client); c != 0 {
		return c
	}
	if c := cmp.Compare(a.CutEvery, b.CutEvery); c != 0 {
		return c
	}
	return cmp.Compare(a.SSERetry, b.SSERetry)
}
