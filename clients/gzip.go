package clients

import (
	"bufio"
	"compress/gzip"
	"fmt"
	"io"
	"net/http"
)

// gunzip decodes the gzip answers of one subscriber: poll bodies and SSE
// streams with Content-Encoding: gzip. The transports leave compression
// off (http.Transport.DisableCompression), so that the bytes counted on
// the wire are the bytes the server sent, and decode here instead. Its
// decoder and buffer are reused from one answer to the next; it decodes
// one body at a time.
type gunzip struct {
	br  *bufio.Reader
	zr  *gzip.Reader
	src io.Reader // the body being decoded
	err error     // from reading the gzip header
	hdr bool      // the header of src has been read
}

// decode returns the reader of resp's body, decoded, and its length hint
// (-1 when unknown): the body itself when it has no Content-Encoding, its
// gzip decoding (g itself) for gzip. Any other encoding is an error, which
// retrying would only repeat.
//
// The gzip header is read on the first Read, not here: an event stream's
// server may not have sent it yet, and the stream is open (Subscribed)
// before it does.
func (g *gunzip) decode(resp *http.Response) (io.Reader, int64, error) {
	switch ce := resp.Header.Get("Content-Encoding"); ce {
	case "", "identity":
		return resp.Body, resp.ContentLength, nil
	case "gzip":
		g.src, g.err, g.hdr = resp.Body, nil, false
		return g, -1, nil
	default:
		return nil, 0, fmt.Errorf("Content-Encoding %q, want gzip or none", ce)
	}
}

// Read reads the decoded body. The gzip reader is in its default
// multistream mode, so it reads its source up to EOF, past the trailer:
// that hands a poll's connection back to the transport for the next one.
func (g *gunzip) Read(p []byte) (int, error) {
	if !g.hdr {
		g.hdr = true
		// The gzip reader needs an io.ByteReader; without one it would
		// allocate a bufio.Reader of its own on every Reset.
		if g.br == nil {
			g.br = bufio.NewReader(g.src)
		} else {
			g.br.Reset(g.src)
		}
		if g.zr == nil {
			g.zr, g.err = gzip.NewReader(g.br)
		} else {
			g.err = g.zr.Reset(g.br)
		}
		if g.err != nil {
			g.err = fmt.Errorf("gzip: %w", g.err)
		}
	}
	if g.err != nil {
		return 0, g.err
	}
	return g.zr.Read(p)
}
