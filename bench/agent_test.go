package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"pushbench/clients"
	"pushbench/event"
	"pushbench/netem"
	"pushbench/proc"
	"pushbench/results"
	"pushbench/servers"
)

// startAgent serves an agent on loopback until the test ends.
func startAgent(t *testing.T, cfg AgentConfig) (*Agent, *httptest.Server, string) {
	t.Helper()
	a := NewAgent(cfg)
	srv := httptest.NewServer(a)
	t.Cleanup(func() {
		srv.Close()
		if err := a.Close(); err != nil {
			t.Error(err)
		}
	})
	return a, srv, strings.TrimPrefix(srv.URL, "http://")
}

func agentRun(t *testing.T, s Scenario, opt Options) (*results.Record, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	opt.Launch = proc.InProcess(nil)
	rec, _, err := Run(ctx, s, opt)
	return rec, err
}

// TestAgentsMergeExact: two agents with half the WebSocket clients each
// (and then a local share beside them) give exactly the counts of one
// load generator running every client: the same expected deliveries,
// every one delivered, one histogram holding one value per delivery, and
// per-agent rows that add up to the whole.
func TestAgentsMergeExact(t *testing.T) {
	_, _, a1 := startAgent(t, AgentConfig{})
	_, _, a2 := startAgent(t, AgentConfig{})
	s := small("ws")
	s.Clients = 40
	one, err := agentRun(t, s, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, local := range []int{0, 10} {
		rec, err := agentRun(t, s, Options{Agents: []string{a1, a2}, LocalShare: local})
		if err != nil {
			t.Fatalf("local share %d: %v", local, err)
		}
		// 200 events are scheduled in the 400 ms window at 500/s.
		if rec.Expected != one.Expected || rec.Expected != 200*40 || rec.Delivered != rec.Expected || rec.Lost != 0 {
			t.Errorf("local share %d: expected %d delivered %d lost %d; one load generator: expected %d delivered %d",
				local, rec.Expected, rec.Delivered, rec.Lost, one.Expected, one.Delivered)
		}
		if uint64(rec.Latency.Count) != rec.Delivered || rec.Scenario.Clients != 40 {
			t.Errorf("local share %d: histogram holds %d values for %d deliveries; clients %d", local, rec.Latency.Count, rec.Delivered, rec.Scenario.Clients)
		}
		wantRows := 2
		if local > 0 {
			wantRows = 3
		}
		if len(rec.Agents) != wantRows {
			t.Fatalf("local share %d: %d agent rows, want %d", local, len(rec.Agents), wantRows)
		}
		var clientsSum int
		var delivered uint64
		for _, a := range rec.Agents {
			clientsSum += a.Clients
			delivered += a.Delivered
			if a.Error != "" || a.Lost != 0 || a.Expected != uint64(a.Clients)*200 {
				t.Errorf("row %+v", a)
			}
		}
		if clientsSum != 40 || delivered != rec.Delivered {
			t.Errorf("local share %d: rows hold %d clients and %d deliveries, want 40 and %d", local, clientsSum, delivered, rec.Delivered)
		}
		if c, ok := rec.Checks["agents"]; !ok || c.Detail == "" {
			t.Errorf("no agents check: %+v", rec.Checks)
		}
		if _, ok := rec.Checks["clock_offset"]; !ok {
			t.Errorf("no clock_offset check: %+v", rec.Checks)
		}
	}
}

// TestAgentClockSkew: an agent whose clock reads 30 ms ahead measures an
// offset of −30 ms (the server's clock minus its own) within the bound the
// exchanges give, and its latencies come out corrected by it.
func TestAgentClockSkew(t *testing.T) {
	const skew = 30 * time.Millisecond
	_, _, plain := startAgent(t, AgentConfig{})
	_, _, skewed := startAgent(t, AgentConfig{ClockSkew: skew})
	s := small("sse")
	s.Clients = 10
	rec, err := agentRun(t, s, Options{Agents: []string{plain, skewed}})
	if err != nil {
		t.Fatal(err)
	}
	if len(rec.Agents) != 2 {
		t.Fatalf("%d rows, want 2", len(rec.Agents))
	}
	for _, a := range rec.Agents {
		want := int64(0)
		if a.Name == skewed {
			want = -int64(skew)
		}
		// Both are on this machine: the true offset is exactly want.
		if d := a.ClockOffsetNs - want; d < -a.ClockUncertaintyNs || d > a.ClockUncertaintyNs || a.ClockSamples != clockExchanges {
			t.Errorf("%s: offset %d ± %d from %d exchanges, want %d within the uncertainty", a.Name, a.ClockOffsetNs, a.ClockUncertaintyNs, a.ClockSamples, want)
		}
	}
	if rec.Delivered != rec.Expected || rec.Latency.OutOfRange != 0 {
		t.Errorf("delivered %d of %d, %d out of range", rec.Delivered, rec.Expected, rec.Latency.OutOfRange)
	}
}

// TestRecorderShift: a receive stamp is read on the server's clock by
// adding the shift, exactly.
func TestRecorderShift(t *testing.T) {
	quit := make(chan struct{})
	defer close(quit)
	rec := newRecorder(1, 64, quit)
	rec.shift = -30_000_000
	rec.setWindow(window{start: 0, end: 1 << 62, base: 1})
	recv := time.Unix(0, 1_000_000_000+30_000_000+1234_000)
	rec.handler(0)(clients.Batch{Recv: recv, Events: []event.Event{{Seq: 1, T: 1_000_000_000}}})
	_, lat := rec.collect()
	var got int64
	for _, h := range lat.Hists {
		if h.TotalCount() == 1 {
			got = h.Max()
		}
	}
	if !lat.Hists[0].ValuesAreEquivalent(got, 1234_000) {
		t.Errorf("latency %d, want 1234000 (the receive stamp moved by the shift)", got)
	}
}

// TestAgentRefusals: an unreachable agent, a wrong or missing token, a
// different pushbench version and a share beyond an agent's ceiling are
// each refused before any load, with one line naming the agent.
func TestAgentRefusals(t *testing.T) {
	const token = "agent-token-of-24-chars!"
	guarded, _, gAddr := startAgent(t, AgentConfig{Token: token})
	_, _, oAddr := startAgent(t, AgentConfig{Version: "0000000 go0.1"})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()
	ceiling, _, err := proc.Ceiling()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, c := range []struct {
		name, addr, token string
		share             int
		want              string
	}{
		{"unreachable", closed, "", 1, "is unreachable"},
		{"no token", gAddr, "", 1, "refused the token"},
		{"wrong token", gAddr, "not-the-agent-token-at-all", 1, "refused the token"},
		{"version", oAddr, "", 1, "runs pushbench 0000000 go0.1, this coordinator " + proc.Version()},
		{"ceiling", gAddr, token, ceiling + 1, "more than it can hold"},
	} {
		err := CheckAgents(ctx, []string{c.addr}, c.token, []int{c.share})
		if err == nil || !errors.Is(err, ErrScenario) || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: %v, want one line with %q", c.name, err, c.want)
		}
	}
	if n := guarded.info().Unauthorized; n != 2 {
		t.Errorf("the guarded agent counted %d refused requests, want 2", n)
	}
	if err := CheckAgents(ctx, []string{gAddr}, token, []int{1}); err != nil {
		t.Errorf("with the token: %v", err)
	}
	if _, err := ParseAgents("a:1,a:1", nil); err == nil {
		t.Error("an agent listed twice: no error")
	}
	if got, err := ParseAgents("a:1", []byte("# agents\nb:2\n\nc:3 # rack 2\n")); err != nil || strings.Join(got, ",") != "a:1,b:2,c:3" {
		t.Errorf("ParseAgents: %v %v", got, err)
	}
	if _, err := ParseAgents("nohost", nil); err == nil {
		t.Error("an address without a port: no error")
	}
}

// TestAgentDies: an agent that goes away during the window fails the cell
// with its name; what the other measured is kept, and the record says
// which one failed.
func TestAgentDies(t *testing.T) {
	_, _, live := startAgent(t, AgentConfig{})
	dying, dsrv, dead := startAgent(t, AgentConfig{})
	s := small("ws")
	s.Clients = 10
	s.Duration = 2 * time.Second
	windowHook = func(*runner) {
		dsrv.CloseClientConnections()
		dsrv.Close()
		_ = dying.Close()
	}
	defer func() { windowHook = nil }()
	rec, err := agentRun(t, s, Options{Agents: []string{live, dead}})
	if err == nil || !strings.Contains(err.Error(), "agent "+dead) {
		t.Fatalf("run: %v, want the dead agent named", err)
	}
	if rec == nil || rec.Status != results.StatusFailed || rec.Checks["agents_alive"].OK || !strings.Contains(rec.Error, dead) {
		t.Fatalf("record %+v", rec)
	}
	var kept bool
	for _, a := range rec.Agents {
		switch a.Name {
		case dead:
			if a.Error == "" || a.Delivered != 0 {
				t.Errorf("dead agent's row: %+v", a)
			}
		case live:
			kept = a.Delivered > 0 && a.Error == ""
		}
	}
	if !kept || rec.Delivered == 0 {
		t.Errorf("the live agent's deliveries were not kept: %+v", rec.Agents)
	}
}

// TestAgentProtocolRefusals: the agent answers bad requests with a 4xx
// and a reason.
func TestAgentProtocolRefusals(t *testing.T) {
	_, srv, _ := startAgent(t, AgentConfig{})
	for _, c := range []struct {
		method, path, body string
		code               int
		want               string
	}{
		{"POST", "/agent/info", "", 405, "want GET"},
		{"GET", "/agent/open", "", 405, "want POST"},
		{"POST", "/agent/open", `{"nope":1}`, 400, "unknown field"},
		{"POST", "/agent/open", `{"scenario":{},"server":"http://127.0.0.1:1","first":0,"clients":0,"bound_ns":1}`, 400, "a share of clients"},
		{"POST", "/agent/mark", `{"session":"x"}`, 409, "no session"},
	} {
		req, _ := http.NewRequest(c.method, srv.URL+c.path, strings.NewReader(c.body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b := make([]byte, 512)
		n, _ := resp.Body.Read(b)
		resp.Body.Close()
		if resp.StatusCode != c.code || !strings.Contains(string(b[:n]), c.want) {
			t.Errorf("%s %s: %d %q, want %d with %q", c.method, c.path, resp.StatusCode, b[:n], c.code, c.want)
		}
	}
}

// TestAgentFailsAtConnect: an agent that refuses its connect, and one that
// hangs in it while its heartbeat stops answering, each fail the cell with
// their name: the run ends (bounded), the record is written, marked
// failed, and the other agent's session is closed.
func TestAgentFailsAtConnect(t *testing.T) {
	for _, c := range []struct {
		name string
		hang bool
	}{{"refuses", false}, {"hangs", true}} {
		t.Run(c.name, func(t *testing.T) {
			good := NewAgent(AgentConfig{})
			bad := NewAgent(AgentConfig{})
			hung := make(chan struct{})
			var once sync.Once
			wrapped := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				switch {
				case r.URL.Path == "/agent/connect" && c.hang:
					once.Do(func() { close(hung) })
					// Read the body, so that the server notices the
					// coordinator closing the connection.
					_, _ = io.Copy(io.Discard, r.Body)
					<-r.Context().Done() // the coordinator gives up on it
					return
				case r.URL.Path == "/agent/connect":
					http.Error(w, "/agent/connect: no more sockets", http.StatusInternalServerError)
					return
				case r.URL.Path == "/agent/info" && c.hang:
					select {
					case <-hung:
						http.Error(w, "frozen", http.StatusServiceUnavailable)
						return
					default:
					}
				}
				bad.ServeHTTP(w, r)
			})
			gsrv, bsrv := httptest.NewServer(good), httptest.NewServer(wrapped)
			defer func() {
				bsrv.Close()
				gsrv.Close()
				_ = bad.Close()
				_ = good.Close()
			}()
			g, b := strings.TrimPrefix(gsrv.URL, "http://"), strings.TrimPrefix(bsrv.URL, "http://")
			s := small("ws")
			s.Clients = 6
			rec, err := agentRun(t, s, Options{Agents: []string{g, b}})
			if err == nil || !strings.Contains(err.Error(), "agent "+b) {
				t.Fatalf("run: %v, want the failed agent named", err)
			}
			if rec == nil || rec.Status != results.StatusFailed || rec.Checks["agents_alive"].OK ||
				!strings.Contains(rec.Checks["agents_alive"].Detail, "during connect") {
				t.Fatalf("record %+v", rec)
			}
			if in := good.info(); in.Session != "" {
				t.Errorf("the good agent still runs session %s", in.Session)
			}
		})
	}
}

// TestAgentSessionOrder: a session's requests come in order (connect,
// window, drain); one out of order is a 409 with the reason, and abort
// ends the session.
func TestAgentSessionOrder(t *testing.T) {
	server := startServer(t, servers.Config{})
	a, asrv, _ := startAgent(t, AgentConfig{})
	post := func(path string, body any) (int, string) {
		b, _ := json.Marshal(body)
		resp, err := http.Post(asrv.URL+path, "application/json", bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		out, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(out)
	}
	code, body := post("/agent/open", agentShare{Scenario: small("ws"), Server: server, Clients: 1, Parts: 1, BoundNs: int64(time.Minute)})
	var op agentOpened
	if code != 200 || json.Unmarshal([]byte(body), &op) != nil || op.Offset.Samples != clockExchanges {
		t.Fatalf("open: %d %s", code, body)
	}
	if code, _ := post("/agent/open", agentShare{Scenario: small("ws"), Server: server, Clients: 1, Parts: 1, BoundNs: 1}); code != 409 {
		t.Errorf("a second open: %d, want 409 (busy)", code)
	}
	for _, path := range []string{"/agent/window", "/agent/drain"} {
		if code, body := post(path, agentRequest{Session: op.Session, Window: &wire{}}); code != 409 || !strings.Contains(body, "out of order: the session is open, not connected") {
			t.Errorf("%s before connect: %d %q", path, code, body)
		}
	}
	if code, body := post("/agent/mark", agentRequest{Session: op.Session, Mark: markBefore}); code != 200 {
		t.Errorf("mark: %d %s", code, body)
	}
	if code, body := post("/agent/abort", agentRequest{Session: op.Session}); code != 200 || a.info().Session != "" {
		t.Errorf("abort: %d %s, session %q", code, body, a.info().Session)
	}
}

// TestServerHost: --server-host is refused with --server, an emulated
// network, TLS beyond loopback, or a name; on a loopback address the child
// listens there and the run goes on as usual.
func TestServerHost(t *testing.T) {
	s := small("ws")
	s.Clients = 4
	tlsS := s
	tlsS.HTTP.TLS = true
	lan := s
	var err error
	if lan.Network, err = netem.Lookup("lan"); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, c := range []struct {
		s    Scenario
		opt  Options
		want string
	}{
		{s, Options{ServerHost: "10.1.2.3", Server: "http://127.0.0.1:1"}, "with --server there is no child"},
		{lan, Options{ServerHost: "10.1.2.3"}, "the network emulator runs on loopback only"},
		{tlsS, Options{ServerHost: "10.1.2.3"}, "could not verify"},
		{s, Options{ServerHost: "server.example"}, "want an IP address"},
	} {
		if _, _, err := Run(ctx, c.s, c.opt); !errors.Is(err, ErrScenario) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want %q", c.opt, err, c.want)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	rec, _, err := Run(ctx, s, Options{ServerHost: "127.0.0.7", Launch: proc.InProcess(nil)})
	if err != nil || rec.Delivered != rec.Expected || rec.Expected == 0 {
		t.Fatalf("on 127.0.0.7: %v %+v", err, rec)
	}
}
