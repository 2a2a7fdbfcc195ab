package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"pushbench/event"
	"pushbench/servers"
	"pushbench/webhttp"
)

func TestServeBadFlags(t *testing.T) {
	t.Parallel()
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { busy.Close() }) // the parallel subtests run after this function returns
	tests := []struct {
		name string
		args []string
		want string // part of the one-line error
	}{
		{"payload below minimum", []string{"--payload", "10"}, "--payload"},
		{"payload above maximum", []string{"--payload", "2000000"}, "--payload"},
		{"negative rate", []string{"--rate", "-1"}, "--rate -1"},
		{"rate not a number", []string{"--rate", "fast"}, "rate"},
		{"rate too high", []string{"--rate", "2e6"}, "above 1,000,000"},
		{"zero ring", []string{"--ring", "0"}, "--ring 0"},
		{"zero hold", []string{"--hold", "0s"}, "--hold 0s"},
		{"negative write timeout", []string{"--write-timeout", "-1s"}, "--write-timeout"},
		{"zero queue", []string{"--queue", "0"}, "--queue 0"},
		{"negative spin", []string{"--spin", "-1ms"}, "--spin"},
		{"bad schedule", []string{"--rate", "10", "--schedule", "burst"}, `schedule "burst"`},
		{"events without rate", []string{"--events", "10"}, "with --rate 0"},
		{"unknown flag", []string{"--bogus"}, "bogus"},
		{"extra argument", []string{"now"}, `unexpected argument "now"`},
		{"port in use", []string{"--addr", busy.Addr().String()}, "address already in use"},
		{"bad address", []string{"--addr", "nowhere"}, "listen on nowhere"},
		{"open address without a token", []string{"--addr", "0.0.0.0:0"}, "--addr 0.0.0.0:0 is not loopback: give --token"},
		{"short token", []string{"--token", "secret"}, "--token: 6 characters, want at least 16"},
		{"bad response profile", []string{"--response-headers", "fancy"}, `--response-headers "fancy": want minimal or deployment`},
		{"bad pad", []string{"--pad", "zeros"}, `--pad "zeros": want x or text`},
		{"tls with a value", []string{"--tls=maybe"}, "tls"},
		{"compress with a value", []string{"--compress=2"}, "compress"},
		{"zero rooms", []string{"--rooms", "0"}, "--rooms 0: must be between 1 and 100000"},
		{"too many rooms", []string{"--rooms", "100001"}, "--rooms 100001: must be between 1 and 100000"},
		{"ring too big for the rooms", []string{"--rooms", "2000", "--ring", "16384"}, "--ring 16384 in each of 2000 rooms: above 16777216 events in all (at most 8388 per room)"},
		{"zero send rate", []string{"--max-send-rate", "0"}, "--max-send-rate 0: must be a positive number"},
		{"NaN send rate", []string{"--max-send-rate", "NaN"}, "--max-send-rate NaN"},
		{"zero send burst", []string{"--send-burst", "0"}, "--send-burst 0: must be at least 1"},
		{"negative cut", []string{"--cut-every", "-1s"}, "--cut-every -1s: must not be negative"},
		{"cut not a duration", []string{"--cut-every", "soon"}, "cut-every"},
		{"negative retry", []string{"--sse-retry", "-5ms"}, "--sse-retry -5ms: must be a whole number of milliseconds"},
		{"retry below a millisecond", []string{"--sse-retry", "1500us"}, "--sse-retry 1.5ms: must be a whole number of milliseconds"},
		{"retry not a duration", []string{"--sse-retry", "3000"}, "sse-retry"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			// Bounded: a case that wrongly starts serving must fail the
			// test, not hang it.
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			var stdout, stderr bytes.Buffer
			err := serveCmd(ctx, tt.args, &stdout, &stderr)
			if !errors.As(err, new(usageError)) {
				t.Fatalf("serveCmd(%q) = %v, want a usage error", tt.args, err)
			}
			stderr.Reset()
			code := pushbench(ctx, append([]string{"serve"}, tt.args...), &stdout, &stderr)
			msg := stderr.String()
			if code != 2 || strings.Count(msg, "\n") != 1 || !strings.Contains(msg, tt.want) || !strings.HasPrefix(msg, "pushbench serve: ") {
				t.Errorf("exit %d, stderr %q; want 2 and one line with %q", code, msg, tt.want)
			}
			if stdout.Len() != 0 {
				t.Errorf("stdout %q, want nothing", stdout.String())
			}
		})
	}
}

func TestServeHelp(t *testing.T) {
	t.Parallel()
	var stdout bytes.Buffer
	if err := serveCmd(context.Background(), []string{"--help"}, &stdout, io.Discard); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("--help: %v", err)
	}
	for _, f := range []string{"-addr", "-rate", "-payload", "-ring", "-hold", "-events", "-schedule", "-spin", "-write-timeout", "-queue",
		"-tls", "-response-headers", "-compress", "-pad", "-rooms", "-max-send-rate", "-send-burst", "-cut-every", "-sse-retry"} {
		if !strings.Contains(stdout.String(), f) {
			t.Errorf("--help lacks %s:\n%s", f, stdout.String())
		}
	}
}

// TestServeRunsUntilCancelled starts serve on a free port with a
// count-bounded run, reads the URL from its listening line, follows the
// events with long polls, holds an SSE stream open and cancels: serveCmd
// must end the stream and return nil.
func TestServeRunsUntilCancelled(t *testing.T) {
	t.Parallel()
	base, stop := startServe(t, "--addr", "127.0.0.1:0", "--rate", "1000", "--events", "20", "--payload", "64", "--spin", "0")
	if !strings.HasPrefix(base, "http://127.0.0.1:") || strings.HasSuffix(base, ":0") {
		t.Fatalf("listening on %q", base)
	}

	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	var got int
	for since := 0; since < 20; {
		resp, err := c.Get(base + "/longpoll?since=" + strconv.Itoa(since))
		if err != nil {
			t.Fatal(err)
		}
		var msgs []json.RawMessage
		err = json.NewDecoder(resp.Body).Decode(&msgs)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("long poll: %d, %v", resp.StatusCode, err)
		}
		since += len(msgs)
		got += len(msgs)
	}
	st, err := getStats(c, base)
	if err != nil || st.Head != 20 || st.Ring != servers.DefaultRing || got != 20 {
		t.Fatalf("stats head %d ring %d (%v); long polls got %d events", st.Head, st.Ring, err, got)
	}

	// An open SSE stream must end when serve is cancelled.
	conn, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, "GET /sse HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	sse, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil || sse.StatusCode != 200 {
		t.Fatalf("sse: %v", err)
	}
	stop()
	if _, err := io.Copy(io.Discard, sse.Body); err != nil {
		t.Fatalf("SSE stream did not end cleanly: %v", err)
	}
}

// TestServeTLS starts serve with --tls and the browser-like options: the
// listening line says https, the server presents a certificate a client
// can trust on first use, speaks h2, and its stats say what it serves; a
// poll offering gzip gets text-padded events gzip-encoded.
func TestServeTLS(t *testing.T) {
	t.Parallel()
	url, stop := startServe(t, "--addr", "127.0.0.1:0", "--rate", "1000", "--events", "5", "--payload", "300", "--spin", "0",
		"--tls", "--response-headers", "deployment", "--compress", "--pad", "text")
	base, ok := strings.CutPrefix(url, "https://")
	if !ok {
		t.Fatalf("listening on %q, want https", url)
	}
	roots, err := webhttp.TrustServer(context.Background(), base)
	if err != nil {
		t.Fatal(err)
	}
	var protos http.Protocols
	protos.SetHTTP2(true)
	tr := &http.Transport{TLSClientConfig: webhttp.ClientConfig(roots, ""), Protocols: &protos, DisableCompression: true}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: 30 * time.Second}

	var body []byte
	for since := 0; since < 5; {
		req, _ := http.NewRequest(http.MethodGet, "https://"+base+"/longpoll?since="+strconv.Itoa(since), nil)
		req.Header.Set("Accept-Encoding", "gzip")
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		if resp.ProtoMajor != 2 || resp.Header.Get("Content-Encoding") != "gzip" || resp.Header.Get("Strict-Transport-Security") == "" {
			t.Fatalf("long poll: %s %v", resp.Proto, resp.Header)
		}
		zr, err := gzip.NewReader(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		body, err = io.ReadAll(zr)
		resp.Body.Close()
		var msgs []json.RawMessage
		if err != nil || json.Unmarshal(body, &msgs) != nil {
			t.Fatalf("long poll body %q: %v", body, err)
		}
		for _, m := range msgs {
			e, err := event.Decode(m)
			if err != nil || len(m) != 300 || !bytes.Contains(m, event.TextPad(e.Seq, 40)) {
				t.Fatalf("event %q: %v; want 300 bytes padded with text", m, err)
			}
		}
		since += len(msgs)
	}
	st, err := getStats(c, "https://"+base)
	if err != nil || !st.TLS || st.ResponseHeaders != "deployment" || !st.Compress || st.Pad != "text" ||
		st.Transports["longpoll"].HTTP2Requests == 0 {
		t.Fatalf("stats %+v, %v", st, err)
	}
	stop()
}

// TestServeRooms starts serve with --rooms and the flood bound: without
// --ring each room keeps MaxRing/rooms events when that is below the
// default; /stats says so; a chat message to the last room lands there.
func TestServeRooms(t *testing.T) {
	t.Parallel()
	base, stop := startServe(t, "--addr", "127.0.0.1:0", "--rooms", "2000", "--max-send-rate", "7", "--send-burst", "3")
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	post := func(path string, body []byte) int {
		t.Helper()
		resp, err := c.Post(base+path, "application/json", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := post("/control/start?workload=chat", nil); code != http.StatusOK {
		t.Fatalf("start: %d", code)
	}
	msg, err := event.AppendUpstream(nil, event.Upstream{From: 1, N: 1, T: 1}, 128)
	if err != nil {
		t.Fatal(err)
	}
	if code := post("/send?room=1999", msg); code != http.StatusNoContent {
		t.Fatalf("send: %d", code)
	}
	if code := post("/send?room=2000", msg); code != http.StatusNotFound {
		t.Fatalf("send to room 2000: %d", code)
	}
	st, err := getStats(c, base)
	if err != nil || st.Rooms != 2000 || st.Ring != servers.MaxRing/2000 || st.MaxSendRate != 7 || st.SendBurst != 3 ||
		len(st.RoomHeads) != 2000 || st.RoomHeads[1999] != 1 || st.RoomHeadSum != 1 {
		t.Fatalf("stats: rooms %d, ring %d, send rate %v burst %d, heads sum %d; %v", st.Rooms, st.Ring, st.MaxSendRate, st.SendBurst, st.RoomHeadSum, err)
	}
	stop()
}

// TestServeCut starts serve with --cut-every and --sse-retry: an SSE stream
// starts with the retry field and ends cleanly at the cut, and /stats says
// what the server does.
func TestServeCut(t *testing.T) {
	t.Parallel()
	base, stop := startServe(t, "--addr", "127.0.0.1:0", "--cut-every", "50ms", "--sse-retry", "20ms")
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: 30 * time.Second}

	resp, err := c.Get(base + "/sse")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("sse: %v", err)
	}
	// Nothing is published: the stream is the retry field, then its end.
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || string(body) != "retry: 20\n\n" {
		t.Fatalf("sse stream %q (%v), want the retry field and a clean end", body, err)
	}
	st, err := getStats(c, base)
	if err != nil || st.CutEveryNs != int64(50*time.Millisecond) || st.SSERetryMs != 20 || st.Transports["sse"].Cuts != 1 {
		t.Fatalf("stats cut every %d ns, sse retry %d ms, sse cuts %d; %v", st.CutEveryNs, st.SSERetryMs, st.Transports["sse"].Cuts, err)
	}
	stop()
}

// startServe runs serveCmd with args until stop (or the test's end) and
// returns the URL of its listening line; stop cancels it and fails the test
// unless it then returns nil.
func startServe(t *testing.T, args ...string) (url string, stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		err := serveCmd(ctx, args, pw, io.Discard)
		pw.Close()
		done <- err
	}()
	sc := bufio.NewScanner(pr)
	if !sc.Scan() {
		cancel()
		t.Fatalf("no listening line: %v", <-done)
	}
	go io.Copy(io.Discard, pr) // nothing else is printed, but never block serve
	url, ok := strings.CutPrefix(sc.Text(), "pushbench serve: listening on ")
	if !ok {
		cancel()
		<-done
		t.Fatalf("listening line %q", sc.Text())
	}
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("serveCmd after cancel: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return url, stop
}

// getStats reads the server's /stats.
func getStats(c *http.Client, base string) (servers.Stats, error) {
	var st servers.Stats
	resp, err := c.Get(base + "/stats")
	if err != nil {
		return st, err
	}
	defer resp.Body.Close()
	err = json.NewDecoder(resp.Body).Decode(&st)
	return st, err
}
