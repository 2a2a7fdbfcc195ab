package servers

import (
	"net"
	"sync/atomic"
)

// listenerCounters are the live counters behind ListenerStats.
type listenerCounters struct {
	accepted atomic.Uint64
	open     atomic.Int64
	bytesIn  atomic.Uint64
	bytesOut atomic.Uint64
}

func (c *listenerCounters) snapshot() ListenerStats {
	return ListenerStats{
		Accepted: c.accepted.Load(),
		Open:     c.open.Load(),
		BytesIn:  c.bytesIn.Load(),
		BytesOut: c.bytesOut.Load(),
	}
}

// countingListener counts connections and wraps each one in a countingConn,
// so every byte the server exchanges — HTTP headers, chunk framing,
// WebSocket frames — is counted, including on hijacked WebSocket
// connections (gorilla gets the wrapped conn back from Hijack).
type countingListener struct {
	net.Listener
	c *listenerCounters
}

func (l *countingListener) Accept() (net.Conn, error) {
	conn, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	l.c.accepted.Add(1)
	l.c.open.Add(1)
	return &countingConn{Conn: conn, c: l.c}, nil
}

// countingConn counts the bytes read and written through it. It also holds
// the connection's send limiter for POST /send (withConnLimiter).
type countingConn struct {
	net.Conn
	c      *listenerCounters
	closed atomic.Bool
	send   sendLimiter
}

func (c *countingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.c.bytesIn.Add(uint64(n))
	}
	return n, err
}

func (c *countingConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	if n > 0 {
		c.c.bytesOut.Add(uint64(n))
	}
	return n, err
}

// Close closes the connection; Open drops once however often it is called
// (net/http and gorilla may both close a hijacked connection).
func (c *countingConn) Close() error {
	if c.closed.CompareAndSwap(false, true) {
		c.c.open.Add(-1)
	}
	return c.Conn.Close()
}

// CloseWrite half-closes the connection where the underlying one can; net/http
// uses it to let a client read an error answer before the close.
func (c *countingConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}
