package bench

import (
	"strings"
	"testing"
	"time"

	"pushbench/servers"
	"pushbench/transport"
	"pushbench/webhttp"
)

// TestComputeConn checks the conn block's arithmetic and the HTTP checks on
// a hand-made measurement: 4 clients over TLS and HTTP/2.
func TestComputeConn(t *testing.T) {
	m := splitRun(t, 4)[0]
	m.Scenario.Transport = transport.LongPoll
	m.Scenario.HTTP = webhttp.Options{HTTP: webhttp.HTTP2, TLS: true, Headers: webhttp.HeadersBrowser}
	m.Scenario.Pad = PadX
	// Connect phase: 4 clients move 8000 B up, 12000 B down, use 2 ms of
	// client CPU and 6 ms of server CPU (1 ms of it the publisher's).
	m.Load.Marks[markBefore].Counts = Counts{}
	m.Load.Marks[markBefore].CPU = 0
	m.Load.Marks[markIdleStart].Counts = Counts{Up: 8000, Down: 12000, Requests: 4}
	m.Load.Marks[markIdleStart].CPU = 2 * time.Millisecond
	m.Load.Marks[markIdleEnd].Counts = Counts{Up: 8000 + 3*110, Down: 12000 + 3*90, Requests: 4 + 3}
	st0, st1 := m.Server[markBefore].Stats, m.Server[markIdleStart].Stats
	st0.Process.CPUUserNs, st0.Process.PublisherCPU = 0, 0
	st1.Process.CPUUserNs, st1.Process.PublisherCPU = int64(6*time.Millisecond), int64(time.Millisecond)
	for _, st := range []*servers.Stats{&st0, &st1} {
		st.TLS, st.ResponseHeaders, st.Pad = true, webhttp.ResponseDeployment, PadX
	}
	st0.Transports = map[string]servers.TransportStats{transport.LongPoll: {Requests: 10, HTTP2Requests: 10}}
	m.Server[markBefore].Stats, m.Server[markIdleStart].Stats = st0, st1
	after := m.Server[markAfter].Stats
	after.Transports = map[string]servers.TransportStats{transport.LongPoll: {Requests: 50, HTTP2Requests: 49}}
	m.Server[markAfter].Stats = after
	ws, we := m.Server[markStart].Stats, m.Server[markEnd].Stats
	ws.Transports = map[string]servers.TransportStats{transport.LongPoll: {Requests: 20, HTTP2Requests: 20}}
	we.Transports = map[string]servers.TransportStats{transport.LongPoll: {Requests: 40, HTTP2Requests: 39}}
	m.Server[markStart].Stats, m.Server[markEnd].Stats = ws, we
	m.Load.Final.Handshakes, m.Load.Final.Resumed, m.Load.Final.HandshakeFailures = 5, 1, 0
	m.Load.Final.HandshakeUp, m.Load.Final.HandshakeDown, m.Load.Final.HandshakeNs = 5*1500, 5*1900, 5*800_000
	m.Load.Final.HTTP2 = 44

	rec, _ := Compute(m)
	c := rec.Conn
	for _, f := range []struct {
		name      string
		got, want float64
	}{
		{"connect up B/conn", c.ConnectUpBytesPerConn, 2000},
		{"connect down B/conn", c.ConnectDownBytesPerConn, 3000},
		{"connect client µs/conn", c.ConnectClientCPUUsPerConn, 500},
		{"connect server µs/conn", c.ConnectServerCPUUsPerConn, 1250},
		{"handshake up B", c.TLSHandshakeUpBytes, 1500},
		{"handshake down B", c.TLSHandshakeDownBytes, 1900},
		{"handshake µs", c.TLSHandshakeUs, 800},
		{"idle up B/request", c.IdleUpBytesPerRequest, 110},
		{"idle down B/request", c.IdleDownBytesPerRequest, 90},
	} {
		if f.got != f.want {
			t.Errorf("%s: %v, want %v", f.name, f.got, f.want)
		}
	}
	if c.TLSHandshakes != 5 || c.TLSResumed != 1 || c.IdleRequests != 3 || c.HTTP2Responses != 44 || c.HTTP2Requests != 19 {
		t.Errorf("counts: %+v", c)
	}
	if ck := rec.Checks["tls_handshakes"]; !ck.OK {
		t.Errorf("tls_handshakes: %+v", ck)
	}
	if ck := rec.Checks["server_http"]; !ck.OK {
		t.Errorf("server_http: %+v", ck)
	}
	// One request of 40 came over HTTP/1.1.
	if ck := rec.Checks["http2_used"]; ck.OK || !strings.Contains(ck.Detail, "39 of 40") {
		t.Errorf("http2_used: %+v", ck)
	}

	// A failed handshake, and a server that does not compress.
	m.Load.Final.HandshakeFailures = 1
	m.Scenario.HTTP.Compress = true
	rec, _ = Compute(m)
	if ck := rec.Checks["tls_handshakes"]; ck.OK || !strings.Contains(ck.Detail, "1 failed") {
		t.Errorf("tls_handshakes with a failure: %+v", ck)
	}
	if ck := rec.Checks["server_http"]; ck.OK {
		t.Errorf("server_http with compress asked of a server without: %+v", ck)
	}
}
