package servers

// Cross-origin access (docs/protocol.md, "Cross-origin access"): which pages
// may read the server's answers, and which may open its upgrades.
//
//   - The polls, SSE and GET /stats, and POST /send, are plain requests a
//     page makes with fetch or EventSource. From another origin the browser
//     sends them (a simple GET at once; a POST of application/json after a
//     preflight) and lets the page read the answer only if it carries
//     Access-Control-Allow-Origin for it. Config.CORS lists the origins
//     that get it; without the list the server sends no CORS fields at all
//     and answers OPTIONS 405, as before.
//   - WebSocket (and raw TCP) are upgrades, which no CORS protects: a
//     browser opens a WebSocket to any origin and only tells the server
//     where the page came from, in Origin. A page on any site could then
//     subscribe and send as a visitor (cross-site WebSocket hijacking), so
//     the server refuses an upgrade whose Origin is neither its own nor in
//     Config.CORS: 403 with a reason. A request without Origin is not a
//     browser page's (Go's clients, curl) and is allowed.
//
// A request's own origin is its scheme (https when it came over TLS) and
// its Host. Through the network emulator a client dials the emulator, so
// Host and the Origin it builds from the same base URL both name the
// emulator: still the same origin.

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
)

// AnyOrigin is the Config.CORS entry (serve --cors '*') that allows every
// origin.
const AnyOrigin = "*"

// What a preflight is answered with: the request fields a page may add,
// and how long (seconds) the browser may keep the answer. Content-Type is
// what POST /send's application/json needs (the only field of the browser
// profile, webhttp, that is not CORS-safelisted); Last-Event-ID is what an
// EventSource polyfill (or fetch-based SSE) sets itself on a reconnect. The
// browsers' own EventSource adds Last-Event-ID without a preflight
// (Chromium 156 does). 600 s is Chromium's old cap, below every browser's
// current one.
const (
	corsAllowHeaders = "Content-Type, Last-Event-ID"
	corsMaxAge       = "600"
)

// ParseOrigin checks an allowed origin as Config.CORS and serve --cors take
// it, and returns its canonical form: AnyOrigin, or http:// or https://
// then a host and an optional port, with nothing after it (no path, not
// even "/"). Scheme and host are lower-cased and a default port (80, 443)
// dropped, as browsers serialise the Origin they send.
func ParseOrigin(s string) (string, error) {
	if s == AnyOrigin {
		return s, nil
	}
	c, ok := canonicalOrigin(s)
	if !ok {
		return "", fmt.Errorf("origin %q: want scheme://host[:port] with scheme http or https and no path (e.g. http://localhost:3000), or %s for any origin", s, AnyOrigin)
	}
	return c, nil
}

// canonicalOrigin returns s's canonical form if s is an http or https
// origin.
func canonicalOrigin(s string) (string, bool) {
	if strings.ContainsAny(s, "?#") {
		return "", false
	}
	u, err := url.Parse(s)
	if err != nil || u.Opaque != "" || u.User != nil || u.Path != "" || u.RawPath != "" || u.Hostname() == "" {
		return "", false
	}
	scheme := strings.ToLower(u.Scheme)
	if scheme != "http" && scheme != "https" {
		return "", false
	}
	host := strings.ToLower(u.Hostname())
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return "", false
		}
		if !(scheme == "http" && n == 80) && !(scheme == "https" && n == 443) {
			host += ":" + strconv.Itoa(n)
		}
	} else if strings.HasSuffix(u.Host, ":") {
		return "", false
	}
	return scheme + "://" + host, true
}

// corsPolicy is Config.CORS, parsed.
type corsPolicy struct {
	on      bool            // Config.CORS is not empty
	any     bool            // AnyOrigin is in it
	origins map[string]bool // the named origins, canonical
	list    []string        // Config.CORS, canonical, in order
}

func newCORSPolicy(cfg []string) (corsPolicy, error) {
	p := corsPolicy{on: len(cfg) > 0, origins: map[string]bool{}}
	for _, o := range cfg {
		c, err := ParseOrigin(o)
		if err != nil {
			return p, err
		}
		if c == AnyOrigin {
			p.any = true
		} else {
			p.origins[c] = true
		}
		p.list = append(p.list, c)
	}
	return p, nil
}

// describe says which origins are allowed, for a refusal's reason.
func (p corsPolicy) describe() string {
	if len(p.origins) == 0 {
		return "only the server's own origin; serve --cors ORIGIN allows others"
	}
	named := make([]string, 0, len(p.origins))
	for _, o := range p.list {
		if o != AnyOrigin {
			named = append(named, o)
		}
	}
	return "allowed: the server's own origin and " + strings.Join(named, ", ")
}

// originKind is what a request's Origin is to the server.
type originKind uint8

const (
	originNone    originKind = iota // no Origin: not a page's cross-origin request
	originSame                      // the request's own origin
	originNamed                     // named in Config.CORS
	originAny                       // allowed by AnyOrigin only
	originRefused                   // none of the above
)

// corsCounters count cross-origin requests (Stats.CORS).
type corsCounters struct {
	allowed    atomic.Uint64
	preflights atomic.Uint64
	refused    atomic.Uint64
}

// classifyOrigin returns what r's Origin is, and the Origin.
func (s *Server) classifyOrigin(r *http.Request) (originKind, string) {
	o := r.Header.Get("Origin")
	if o == "" {
		return originNone, ""
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	if rest, ok := strings.CutPrefix(o, scheme); ok && strings.HasPrefix(rest, "://") && rest[3:] == r.Host {
		return originSame, o // the common case, without parsing
	}
	c, ok := canonicalOrigin(o)
	if ok {
		if own, ok := canonicalOrigin(scheme + "://" + r.Host); ok && c == own {
			return originSame, o
		}
		if s.cors.origins[c] {
			return originNamed, o
		}
	}
	if s.cors.any {
		return originAny, o
	}
	return originRefused, o
}

// allowOrigin adds the fields that let the page on origin read the answer:
// Access-Control-Allow-Origin with that origin, and
// Access-Control-Allow-Credentials so that a page may send cookies
// (withCredentials, credentials: 'include'); for an origin allowed only by
// AnyOrigin, "*", which browsers accept only without credentials.
func allowOrigin(h http.Header, kind originKind, origin string) {
	if kind == originAny {
		h.Set("Access-Control-Allow-Origin", AnyOrigin)
		return
	}
	h.Set("Access-Control-Allow-Origin", origin)
	h.Set("Access-Control-Allow-Credentials", "true")
}

// refuseOrigin answers 403 to a request from a page on an origin that is
// not allowed, counted as a refusal and as a bad request of tc (if any).
func (s *Server) refuseOrigin(w http.ResponseWriter, r *http.Request, tc *counters, origin string) {
	s.corsC.refused.Add(1)
	fail(w, tc, http.StatusForbidden, "%s: origin %q not allowed (%s)", r.URL.Path, origin, s.cors.describe())
}

// withCORS wraps the handler of a path a page reads with fetch or
// EventSource, whose requests use method (tc: its counters, nil for
// /stats). A request from an allowed origin gets Access-Control-Allow-Origin
// (allowOrigin); one from another origin is answered as usual without it,
// so the browser keeps the answer from the page, and counted. With
// Config.CORS set every answer says Vary: Origin, and an OPTIONS preflight
// (Origin and Access-Control-Request-Method) is answered by preflight; any
// other OPTIONS, and every OPTIONS without Config.CORS, is a wrong method
// (405) as before.
func (s *Server) withCORS(method string, tc *counters, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		kind, origin := s.classifyOrigin(r)
		if s.cors.on {
			w.Header().Add("Vary", "Origin")
			if r.Method == http.MethodOptions && kind != originNone && r.Header.Get("Access-Control-Request-Method") != "" {
				s.preflight(w, r, tc, method, kind, origin)
				return
			}
		}
		switch kind {
		case originNamed, originAny:
			s.corsC.allowed.Add(1)
			allowOrigin(w.Header(), kind, origin)
		case originRefused:
			s.corsC.refused.Add(1)
		}
		h(w, r)
	}
}

// preflight answers a CORS preflight for a path whose requests use method:
// 204 with the allowed origin, method and request fields and how long the
// browser may keep that; 403 with a reason for an origin or a method that
// is not allowed. It counts as a request of tc (a refused one as a bad
// request), and in Stats.CORS.
func (s *Server) preflight(w http.ResponseWriter, r *http.Request, tc *counters, method string, kind originKind, origin string) {
	if tc != nil {
		tc.requests.Add(1)
		if r.ProtoMajor == 2 {
			tc.http2Requests.Add(1)
		}
	}
	if kind == originRefused {
		s.refuseOrigin(w, r, tc, origin)
		return
	}
	if m := r.Header.Get("Access-Control-Request-Method"); m != method {
		fail(w, tc, http.StatusForbidden, "%s: preflight for method %s not allowed (want %s)", r.URL.Path, m, method)
		return
	}
	s.corsC.preflights.Add(1)
	h := w.Header()
	if kind == originSame {
		kind = originNamed
	}
	allowOrigin(h, kind, origin)
	h.Set("Access-Control-Allow-Methods", method)
	h.Set("Access-Control-Allow-Headers", corsAllowHeaders)
	h.Set("Access-Control-Max-Age", corsMaxAge)
	// Chromium's Private Network Access asks this of a page on a public
	// origin before it lets it reach a private address (loopback, LAN).
	if r.Header.Get("Access-Control-Request-Private-Network") == "true" {
		h.Set("Access-Control-Allow-Private-Network", "true")
	}
	w.WriteHeader(http.StatusNoContent)
}

// upgradeOrigin checks the Origin of an upgrade (WebSocket, raw TCP): a
// page on an origin that is not allowed is refused (403, counted as a
// refusal and a bad request of tc); no Origin, the server's own and an
// allowed one pass. It reports whether the upgrade may go on.
func (s *Server) upgradeOrigin(w http.ResponseWriter, r *http.Request, tc *counters) bool {
	switch kind, origin := s.classifyOrigin(r); kind {
	case originRefused:
		s.refuseOrigin(w, r, tc, origin)
		return false
	case originNamed, originAny:
		s.corsC.allowed.Add(1)
	}
	return true
}

// originAllowed is the WebSocket upgrader's CheckOrigin. The handler has
// already refused a wrong origin with its own reason (upgradeOrigin); this
// keeps gorilla from ever accepting one.
func (s *Server) originAllowed(r *http.Request) bool {
	kind, _ := s.classifyOrigin(r)
	return kind != originRefused
}

// corsReadable is implemented by a transport whose answers a page reads
// with fetch or EventSource (not an upgrade): New wraps its handler with
// withCORS for the method it returns.
type corsReadable interface {
	corsMethod() string
}

// CORSStats count cross-origin requests: those whose Origin is neither
// absent nor the server's own.
type CORSStats struct {
	// Origins is Config.CORS, canonical (ParseOrigin).
	Origins []string `json:"origins,omitempty"`
	// Allowed were answered with Access-Control-Allow-Origin, or upgraded
	// (preflights not included).
	Allowed uint64 `json:"allowed"`
	// Preflights were answered 204.
	Preflights uint64 `json:"preflights"`
	// Refused came from an origin that is not allowed: answered without
	// CORS fields (the browser keeps the answer from the page), or 403 for
	// a preflight or an upgrade.
	Refused uint64 `json:"refused"`
}

func (s *Server) corsStats() CORSStats {
	return CORSStats{
		Origins:    s.cors.list,
		Allowed:    s.corsC.allowed.Load(),
		Preflights: s.corsC.preflights.Load(),
		Refused:    s.corsC.refused.Load(),
	}
}
