package servers

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"pushbench/transport"
	"strings"
	"testing"
)

// TestBadInput sends each kind of bad request and expects a 4xx with a
// one-line text/plain reason; afterwards the server still serves.
func TestBadInput(t *testing.T) {
	ts := startServer(t, Config{Ring: 16}, nil)
	publish(t, ts.Hub(), 5, 60)
	c := httpClient(t)
	upgrade := http.Header{
		"Connection":            {"Upgrade"},
		"Upgrade":               {"websocket"},
		"Sec-Websocket-Version": {"13"},
		"Sec-Websocket-Key":     {"dGhlIHNhbXBsZSBub25jZQ=="},
	}
	tcpUpgrade := http.Header{"Connection": {"Upgrade"}, "Upgrade": {"pushbench-tcp"}}
	tests := []struct {
		name   string
		method string
		path   string
		hdr    http.Header
		code   int
		reason string // part of the one-line answer
	}{
		{"non-numeric since", "GET", "/poll?since=abc", nil, 400, `since "abc" is not an unsigned decimal`},
		{"negative since", "GET", "/poll?since=-1", nil, 400, `since "-1" is not an unsigned decimal`},
		{"signed since", "GET", "/poll?since=%2B1", nil, 400, `since "+1" is not an unsigned decimal`},
		{"overflowing since", "GET", "/poll?since=18446744073709551616", nil, 400, "overflows"},
		{"since ahead of head", "GET", "/poll?since=6", nil, 400, "ahead of the newest event (5)"},
		{"max uint64 since", "GET", "/poll?since=18446744073709551615", nil, 400, "ahead of the newest event"},
		{"empty since", "GET", "/poll?since=", nil, 400, "since is empty"},
		{"malformed query", "GET", "/poll?since=%zz", nil, 400, "malformed query"},
		{"zero max", "GET", "/poll?max=0", nil, 400, `max "0"`},
		{"max over ring", "GET", "/poll?max=17", nil, 400, `max "17"`},
		{"longpoll bad since", "GET", "/longpoll?since=x", nil, 400, `since "x"`},
		{"longpoll ahead", "GET", "/longpoll?since=99", nil, 400, "ahead"},
		{"longpoll bad hold", "GET", "/longpoll?hold=soon", nil, 400, `hold "soon"`},
		{"longpoll negative hold", "GET", "/longpoll?hold=-1s", nil, 400, `hold "-1s"`},
		{"sse bad since", "GET", "/sse?since=1e3", nil, 400, `since "1e3"`},
		{"sse bad Last-Event-ID", "GET", "/sse", http.Header{"Last-Event-Id": {"abc"}}, 400, `Last-Event-ID "abc"`},
		{"sse Last-Event-ID ahead", "GET", "/sse", http.Header{"Last-Event-Id": {"100"}}, 400, "ahead"},
		{"ws without upgrade", "GET", "/ws", nil, 400, "not a WebSocket upgrade"},
		{"ws bad since", "GET", "/ws?since=-5", upgrade, 400, `since "-5"`},
		{"ws ahead", "GET", "/ws?since=6", upgrade, 400, "ahead"},
		{"ws bad version", "GET", "/ws", http.Header{"Connection": {"Upgrade"}, "Upgrade": {"websocket"}, "Sec-Websocket-Version": {"8"}}, 400, "unsupported version"},
		{"tcp without upgrade", "GET", "/tcp", nil, 400, "not a pushbench-tcp upgrade"},
		{"tcp upgrade to websocket", "GET", "/tcp", upgrade, 400, "not a pushbench-tcp upgrade"},
		{"tcp bad since", "GET", "/tcp?since=-5", tcpUpgrade, 400, `since "-5"`},
		{"tcp ahead", "GET", "/tcp?since=6", tcpUpgrade, 400, "ahead of the newest event (5)"},
		{"tcp malformed query", "GET", "/tcp?since=%zz", tcpUpgrade, 400, "malformed query"},
		{"post tcp", "POST", "/tcp", tcpUpgrade, 405, "method POST not allowed"},
		{"unknown room", "GET", "/poll?room=1", nil, 404, "/poll: room 1: no such room (the server has 1 room, 0)"},
		{"bad room", "GET", "/poll?room=-1", nil, 400, `/poll: room "-1" is not a room number (want 0 to 0)`},
		{"longpoll unknown room", "GET", "/longpoll?room=7", nil, 404, "/longpoll: room 7: no such room"},
		{"sse unknown room", "GET", "/sse?room=1", nil, 404, "/sse: room 1: no such room"},
		{"ws unknown room", "GET", "/ws?room=1", upgrade, 404, "/ws: room 1: no such room"},
		{"tcp unknown room", "GET", "/tcp?room=99999999999999999999", tcpUpgrade, 400, `/tcp: room "99999999999999999999" is not a room number`},
		{"tcp unknown room", "GET", "/tcp?room=1", tcpUpgrade, 404, "/tcp: room 1: no such room"},
		{"unknown path", "GET", "/events", nil, 404, `unknown path "/events" (want /, /poll, /longpoll, /sse, /ws, /tcp, /send, /stats, /time, /control/start, /control/stop or /control/gc)`},
		{"page under root", "GET", "/index.html", nil, 404, `unknown path "/index.html"`},
		{"post root", "POST", "/", nil, 405, "/: method POST not allowed (want GET)"},
		{"trailing slash", "GET", "/poll/", nil, 404, "unknown path"},
		{"post poll", "POST", "/poll", nil, 405, "method POST not allowed"},
		{"delete sse", "DELETE", "/sse", nil, 405, "method DELETE not allowed"},
		{"post stats", "POST", "/stats", nil, 405, "not allowed"},
		{"get control start", "GET", "/control/start?rate=1", nil, 405, "not allowed"},
		{"get control stop", "GET", "/control/stop", nil, 405, "not allowed"},
		{"start without rate", "POST", "/control/start", nil, 400, "rate is required"},
		{"start bad rate", "POST", "/control/start?rate=fast", nil, 400, `rate "fast"`},
		{"start negative rate", "POST", "/control/start?rate=-1", nil, 400, "rate -1"},
		{"start NaN rate", "POST", "/control/start?rate=NaN", nil, 400, "rate NaN"},
		{"start small payload", "POST", "/control/start?rate=1&payload=10", nil, 400, "payload 10"},
		{"start bad payload", "POST", "/control/start?rate=1&payload=big", nil, 400, `payload "big"`},
		{"start bad events", "POST", "/control/start?rate=1&events=-1", nil, 400, `events "-1"`},
		{"start bad duration", "POST", "/control/start?rate=1&duration=1y", nil, 400, `duration "1y"`},
		{"start bad schedule", "POST", "/control/start?rate=1&schedule=burst", nil, 400, `schedule "burst"`},
		{"start bad spin", "POST", "/control/start?rate=1&spin=x", nil, 400, `spin "x"`},
		{"start bad seed", "POST", "/control/start?rate=1&seed=-3", nil, 400, `seed "-3"`},
	}
	for _, tt := range tests {
		code, body, ct := do(t, c, tt.method, ts.url+tt.path, tt.hdr)
		if code != tt.code || !strings.Contains(body, tt.reason) {
			t.Errorf("%s: %s %s: %d %q, want %d containing %q", tt.name, tt.method, tt.path, code, body, tt.code, tt.reason)
		}
		if !strings.HasPrefix(ct, "text/plain") || strings.Count(body, "\n") != 1 || !strings.HasSuffix(body, "\n") {
			t.Errorf("%s: answer is not one text/plain line: %q %q", tt.name, ct, body)
		}
	}
	st := ts.Stats()
	for name, want := range map[string]uint64{transport.ShortPoll: 13, transport.LongPoll: 5, transport.SSE: 5, transport.WebSocket: 5, transport.TCP: 8} {
		if got := st.Transports[name].BadRequests; got != want {
			t.Errorf("%s: %d bad requests counted, want %d", name, got, want)
		}
	}
	if st.Publisher.Running {
		t.Error("a bad /control/start started the publisher")
	}
	// Still serving.
	if code, body, _ := do(t, c, "GET", ts.url+"/poll?since=4", nil); code != 200 || body != "["+eventBytes(t, 5, 60)+"]" {
		t.Fatalf("poll after bad input: %d %q", code, body)
	}
}

// TestControl starts, rejects a second start, and stops a publishing run.
func TestControl(t *testing.T) {
	ts := startServer(t, Config{Ring: 16, Payload: 64}, nil)
	c := httpClient(t)
	code, body, ct := do(t, c, "POST", ts.url+"/control/start?rate=1000&schedule=poisson&seed=3", nil)
	if code != 200 || ct != "application/json" || !strings.Contains(body, `"running":true`) || !strings.Contains(body, `"Payload":64`) {
		t.Fatalf("start: %d %q %s", code, ct, body)
	}
	code, body, _ = do(t, c, "POST", ts.url+"/control/start?rate=1000", nil)
	if code != http.StatusConflict || !strings.Contains(body, "already running") {
		t.Fatalf("second start: %d %s", code, body)
	}
	code, body, _ = do(t, c, "POST", ts.url+"/control/stop", nil)
	if code != 200 || !strings.Contains(body, `"running":false`) {
		t.Fatalf("stop: %d %s", code, body)
	}
	code, _, _ = do(t, c, "POST", ts.url+"/control/stop", nil)
	if code != 200 {
		t.Fatalf("second stop: %d", code)
	}
	// A count-bounded run ends by itself; its CPU is accounted in /stats.
	code, body, _ = do(t, c, "POST", ts.url+"/control/start?rate=100000&events=100&payload=100", nil)
	if code != 200 {
		t.Fatalf("start: %d %s", code, body)
	}
	<-ts.Publisher().Done()
	code, body, ct = do(t, c, "GET", ts.url+"/stats", nil)
	if code != 200 || ct != "application/json" {
		t.Fatalf("stats: %d %q", code, ct)
	}
	for _, key := range []string{`"head":`, `"ring":16`, `"published":100`, `"transports":`, `"shortpoll":`, `"longpoll":`, `"sse":`, `"ws":`, `"tcp":`, `"rss_bytes":`, `"goroutines":`, `"go_version":"go`, `"publisher_cpu_ns":`, `"bytes_out":`} {
		if !strings.Contains(body, key) {
			t.Errorf("stats lack %s: %s", key, body)
		}
	}
	if st := ts.Stats(); st.Process.RSSBytes == 0 || st.Process.HeapInuse == 0 || st.Process.GOMAXPROCS < 1 || st.Head != st.Publisher.LastSeq {
		t.Errorf("process stats %+v, head %d", st.Process, st.Head)
	}
}

func TestParseSockstat(t *testing.T) {
	text := "sockets: used 290\nTCP: inuse 41 orphan 0 tw 3 alloc 44 mem 7\nUDP: inuse 2 mem 1\n"
	if k := parseSockstat(text, 4096); k.TCPInUse != 41 || k.TCPMemBytes != 7*4096 {
		t.Errorf("parseSockstat = %+v, want 41 in use and 7 pages", k)
	}
	if k := parseSockstat("garbage", 4096); k != (KernelStats{}) {
		t.Errorf("parseSockstat(garbage) = %+v, want zero", k)
	}
}

// TestControlGC: POST /control/gc answers the statistics after a
// collection; any other method is refused with 405.
func TestControlGC(t *testing.T) {
	s, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Shutdown(context.Background())
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/control/gc", nil))
	var st Stats
	if err := json.Unmarshal(rec.Body.Bytes(), &st); rec.Code != http.StatusOK || err != nil || st.Process.RSSBytes == 0 || st.Ring == 0 {
		t.Errorf("POST /control/gc: %d %v %+v", rec.Code, err, st.Process)
	}
	rec = httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/control/gc", nil))
	if rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("GET /control/gc: %d, want 405", rec.Code)
	}
}
