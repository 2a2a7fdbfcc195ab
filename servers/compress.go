package servers

// Compression (Config.Compress), as deployments commonly enable it:
//
//   - Poll answers are gzip-encoded when the request's Accept-Encoding
//     offers gzip, with the Content-Length of the compressed body.
//   - An SSE stream is one gzip stream, flushed (deflate sync flush, then
//     the HTTP flush) after every write the transport flushes anyway, so an
//     event reaches the client as soon as it would uncompressed. The gzip
//     header goes out with the response headers, so the client is
//     subscribed as soon as it has them.
//   - WebSocket negotiates permessage-deflate (RFC 7692) through gorilla,
//     which only does it without context takeover: every message is
//     compressed on its own, so a stream of small messages gains far less
//     than the SSE stream, whose window spans the events before it (ws.go).
//   - Raw TCP is the floor and is never compressed.
//
// Without a gzip offer answers are identity, as without Compress.
//
// compressLevel is zlib's default, 6: what application servers compress
// with by default (Express's compression middleware, Apache's mod_deflate,
// Go's and Java's gzip libraries). nginx's gzip_comp_level defaults to 1;
// a deployment that compresses at its nginx proxy spends less CPU for a
// few percent more bytes. The same level serves permessage-deflate.

import (
	"compress/gzip"
	"io"
	"net/http"
	"strconv"
	"strings"
)

const compressLevel = gzip.DefaultCompression

// acceptsGzip reports whether r's Accept-Encoding offers gzip (RFC 9110
// section 12.5.3): a "gzip" (or "x-gzip") element, else "*", with a q
// above 0. A q of 0 refuses, and so does a malformed one.
func acceptsGzip(r *http.Request) bool {
	gz, star := -1.0, -1.0
	for _, v := range r.Header.Values("Accept-Encoding") {
		for elem := range strings.SplitSeq(v, ",") {
			coding, params, _ := strings.Cut(elem, ";")
			coding = strings.TrimSpace(coding)
			q := qValue(params)
			switch {
			case strings.EqualFold(coding, "gzip"), strings.EqualFold(coding, "x-gzip"):
				gz = max(gz, q)
			case coding == "*":
				star = max(star, q)
			}
		}
	}
	if gz >= 0 {
		return gz > 0
	}
	return star > 0
}

// qValue returns the q parameter of an element's parameters (1 without
// one, 0 for a malformed one).
func qValue(params string) float64 {
	for p := range strings.SplitSeq(params, ";") {
		name, val, ok := strings.Cut(p, "=")
		if !ok || !strings.EqualFold(strings.TrimSpace(name), "q") {
			continue
		}
		val = strings.TrimSpace(val)
		if !isQValue(val) {
			return 0
		}
		q, _ := strconv.ParseFloat(val, 64)
		return q
	}
	return 1
}

// isQValue reports whether v is a qvalue: "0" ["." 0*3DIGIT] or
// "1" ["." 0*3("0")].
func isQValue(v string) bool {
	if v == "" || (v[0] != '0' && v[0] != '1') {
		return false
	}
	frac, dot := strings.CutPrefix(v[1:], ".")
	if !dot {
		return frac == ""
	}
	if len(frac) > 3 {
		return false
	}
	for _, c := range frac {
		if c < '0' || c > '9' || (v[0] == '1' && c != '0') {
			return false
		}
	}
	return true
}

// gzipFor reports whether the answer to r is gzip-encoded.
func (s *Server) gzipFor(r *http.Request) bool {
	return s.cfg.Compress && acceptsGzip(r)
}

// gzipHeaders marks h as the header of a gzip-encoded answer: Content-
// Encoding, and Vary unless the profile has added it.
func gzipHeaders(h http.Header) {
	h.Set("Content-Encoding", "gzip")
	if !hasToken(h.Values("Vary"), "Accept-Encoding") {
		h.Add("Vary", "Accept-Encoding")
	}
}

// hasToken reports whether one of the comma-separated values has token
// (case-insensitive).
func hasToken(values []string, token string) bool {
	for _, v := range values {
		for f := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(f), token) {
				return true
			}
		}
	}
	return false
}

// gzipWriter returns a pooled gzip.Writer at compressLevel writing to w.
// Give it back with putGzip.
func (s *Server) gzipWriter(w io.Writer) *gzip.Writer {
	if z, ok := s.gzips.Get().(*gzip.Writer); ok {
		z.Reset(w)
		return z
	}
	z, _ := gzip.NewWriterLevel(w, compressLevel) // the level is valid
	return z
}

// putGzip returns z to the pool, holding nothing of its last writer.
func (s *Server) putGzip(z *gzip.Writer) {
	z.Reset(io.Discard)
	s.gzips.Put(z)
}

// appendWriter appends what is written to b.
type appendWriter struct{ b []byte }

func (a *appendWriter) Write(p []byte) (int, error) {
	a.b = append(a.b, p...)
	return len(p), nil
}

// appendGzip appends body gzip-compressed to dst.
func (s *Server) appendGzip(dst, body []byte) []byte {
	aw := appendWriter{b: dst}
	z := s.gzipWriter(&aw)
	_, _ = z.Write(body) // appendWriter never fails
	_ = z.Close()
	s.putGzip(z)
	return aw.b
}
