package netem

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"pushbench/internal/testnet"
)

// upstream is a loopback server standing in for the server.
func upstream(t *testing.T, serve func(net.Conn)) string { return testnet.Serve(t, serve) }

// noLeak checks, after every other cleanup of the test, that no goroutine
// is left.
func noLeak(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) })
}

func echo(c net.Conn) { testnet.Echo(c) }

func startEmulator(t *testing.T, up string, p Profile) (*Emulator, string) {
	t.Helper()
	e := New("127.0.0.1:0", up, p)
	addr, err := e.Start()
	if err != nil {
		t.Fatal(err)
	}
	return e, addr
}

// TestEmulatorDelay: a round trip through the emulator takes at least the
// profile's RTT (a lower bound: timers never fire early), bytes arrive
// intact, and Close leaves no goroutine behind.
func TestEmulatorDelay(t *testing.T) {
	noLeak(t)
	up := upstream(t, echo)
	p := Profile{Name: "test", RTT: 40 * ms, Jitter: 10 * ms}
	e, addr := startEmulator(t, up, p)
	if e.Addr() != addr || e.Profile() != p {
		t.Errorf("Addr() = %q, Profile() = %+v", e.Addr(), e.Profile())
	}
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(c)
	for i, msg := range []string{"ping\n", strings.Repeat("x", 100_000) + "\n", "pong\n"} {
		start := time.Now()
		if _, err := io.WriteString(c, msg); err != nil {
			t.Fatal(err)
		}
		got, err := r.ReadString('\n')
		took := time.Since(start)
		if err != nil || got != msg {
			t.Fatalf("round trip %d: %d bytes, %v; want the %d sent", i, len(got), err, len(msg))
		}
		// Each direction delays by its half ± its half-jitter, so the round
		// trip takes at least RTT − Jitter.
		if took < p.RTT-p.Jitter {
			t.Errorf("round trip %d took %v, less than rtt − jitter = %v", i, took, p.RTT-p.Jitter)
		}
	}
	c.Close()
	if err := e.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if err := e.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	<-e.Done()
	if e.Err() != nil {
		t.Errorf("Err() = %v after Close, want nil", e.Err())
	}
}

// TestEmulatorBandwidth: n bytes through a limit of b bits/s arrive whole
// and in order, and not before n·8/b (plus the delay): byte-count
// arithmetic as a lower bound, in both directions.
func TestEmulatorBandwidth(t *testing.T) {
	noLeak(t)
	const (
		upBytes   = 2000  // at 64 kbit/s = 8000 B/s: 250 ms
		downBytes = 16000 // at 512 kbit/s = 64000 B/s: 250 ms
	)
	payload := bytes.Repeat([]byte("0123456789abcdef"), downBytes/16)
	var received int
	var rmu sync.Mutex
	up := upstream(t, func(c net.Conn) {
		// Read the client's upBytes, then answer with downBytes.
		n, _ := io.CopyN(io.Discard, c, upBytes)
		rmu.Lock()
		received = int(n)
		rmu.Unlock()
		_, _ = c.Write(payload)
	})
	p := Profile{Name: "test", RTT: 20 * ms, DownBps: 512_000, UpBps: 64_000}
	e, addr := startEmulator(t, up, p)
	defer e.Close()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	if _, err := c.Write(make([]byte, upBytes)); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(io.LimitReader(c, downBytes))
	took := time.Since(start)
	if err != nil || !bytes.Equal(got, payload) {
		t.Fatalf("read %d bytes (%v), want the %d sent, in order", len(got), err, downBytes)
	}
	rmu.Lock()
	if received != upBytes {
		t.Errorf("upstream received %d bytes, want %d", received, upBytes)
	}
	rmu.Unlock()
	serialise := func(n int, bps int64) time.Duration { return time.Duration(int64(n) * 8 * int64(time.Second) / bps) }
	floor := p.RTT + serialise(upBytes, p.UpBps) + serialise(downBytes, p.DownBps)
	if floor != 520*ms {
		t.Fatalf("floor %v, want 520ms (20ms + 250ms + 250ms)", floor)
	}
	if took < floor {
		t.Errorf("%d bytes up and %d down took %v, less than rtt + n·8/bps = %v", upBytes, downBytes, took, floor)
	}
}

// TestEmulatorCloseInFlight: the two cases where Toxiproxy's own Proxy
// leaks (docs/network.md): a client that leaves while a toxic holds data
// for it, and Close while a connection has data in flight. Neither leaves
// a goroutine, and Close returns.
func TestEmulatorCloseInFlight(t *testing.T) {
	noLeak(t)
	flood := func(c net.Conn) {
		b := make([]byte, 32<<10)
		for {
			if _, err := c.Write(b); err != nil {
				return
			}
		}
	}
	up := upstream(t, flood)
	e, addr := startEmulator(t, up, Profile{Name: "test", RTT: 100 * ms, DownBps: 8_000_000})
	leaver, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	// Once the first bytes are here, more are held in the toxics.
	if _, err := io.ReadFull(leaver, make([]byte, 1000)); err != nil {
		t.Fatal(err)
	}
	leaver.Close()
	stayer, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer stayer.Close()
	if _, err := io.ReadFull(stayer, make([]byte, 1000)); err != nil {
		t.Fatal(err)
	}
	if err := e.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	// The client sees its connection end.
	if _, err := io.Copy(io.Discard, stayer); err != nil && !errors.Is(err, net.ErrClosed) && !isReset(err) {
		t.Errorf("reading after Close: %v", err)
	}
}

func isReset(err error) bool {
	return err != nil && strings.Contains(err.Error(), "connection reset")
}

// TestEmulatorUpstreamDown: a client of an emulator whose upstream refuses
// sees its connection closed; the emulator goes on.
func TestEmulatorUpstreamDown(t *testing.T) {
	noLeak(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gone := ln.Addr().String()
	ln.Close()
	e, addr := startEmulator(t, gone, Profile{Name: "test", RTT: 2 * ms})
	defer e.Close()
	for range 2 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		n, _ := io.Copy(io.Discard, c)
		c.Close()
		if n != 0 {
			t.Errorf("read %d bytes from a connection with no upstream", n)
		}
	}
}

// TestEmulatorRefuses: only loopback, only valid profiles, one start.
func TestEmulatorRefuses(t *testing.T) {
	noLeak(t)
	for _, c := range []struct{ listen, up string }{
		{"0.0.0.0:0", "127.0.0.1:1"},
		{":0", "127.0.0.1:1"},
		{"127.0.0.1:0", "192.0.2.1:80"},
		{"127.0.0.1:0", "[2001:db8::1]:80"},
		{"127.0.0.1", "127.0.0.1:1"},
	} {
		e := New(c.listen, c.up, Profile{Name: "test"})
		if _, err := e.Start(); err == nil {
			t.Errorf("Start(%s -> %s) = nil error, want a refusal", c.listen, c.up)
		}
		e.Close()
	}
	for _, ok := range []string{"127.0.0.1:80", "127.9.9.9:1", "[::1]:80", "localhost:80"} {
		if err := CheckLoopback(ok); err != nil {
			t.Errorf("CheckLoopback(%s) = %v", ok, err)
		}
	}
	if _, err := New("127.0.0.1:0", "127.0.0.1:1", Profile{RTT: -ms}).Start(); err == nil {
		t.Error("Start with a negative RTT succeeded")
	}
	e := New("127.0.0.1:0", "127.0.0.1:1", Profile{})
	if _, err := e.Start(); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Start(); err == nil {
		t.Error("second Start succeeded")
	}
	e.Close()
	// Close before Start, then Start: refused, nothing leaks.
	e = New("127.0.0.1:0", "127.0.0.1:1", Profile{})
	e.Close()
	<-e.Done()
	if _, err := e.Start(); err == nil {
		t.Error("Start after Close succeeded")
	}
}

// lines collects what Main writes to stdout and hands over the first line.
type lines struct {
	pr    *io.PipeReader
	pw    *io.PipeWriter
	first chan string
	all   chan []string
}

func newLines() *lines {
	pr, pw := io.Pipe()
	l := &lines{pr: pr, pw: pw, first: make(chan string, 1), all: make(chan []string, 1)}
	go func() {
		var got []string
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			if len(got) == 0 {
				l.first <- sc.Text()
			}
			got = append(got, sc.Text())
		}
		close(l.first)
		l.all <- got
	}()
	return l
}

// TestMain_ lifecycle: Main prints exactly one listening line, forwards
// with the profile, and returns nil when its context ends.
func TestMainLifecycle(t *testing.T) {
	noLeak(t)
	up := upstream(t, echo)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out := newLines()
	var stderr bytes.Buffer
	done := make(chan error, 1)
	go func() {
		done <- Main(ctx, []string{"--upstream", up, "--network", "lan", "--rtt", "30ms"}, out.pw, &stderr)
	}()
	line, ok := <-out.first
	if !ok || !strings.HasPrefix(line, ListenPrefix+"127.0.0.1:") {
		t.Fatalf("first line %q, want %q", line, ListenPrefix+"127.0.0.1:PORT")
	}
	addr := strings.TrimPrefix(line, ListenPrefix)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if _, err := io.WriteString(c, "hello\n"); err != nil {
		t.Fatal(err)
	}
	got, err := bufio.NewReader(c).ReadString('\n')
	if took := time.Since(start); err != nil || got != "hello\n" || took < 30*ms {
		t.Errorf("echo %q, %v after %v; want hello after at least 30ms", got, err, took)
	}
	c.Close()
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Main: %v", err)
	}
	out.pw.Close()
	if all := <-out.all; len(all) != 1 {
		t.Errorf("stdout lines %q, want exactly one", all)
	}
	if want := "pushbench emulate: lan: rtt 30ms, down 30mbit, up 15mbit (to " + up + ")\n"; stderr.String() != want {
		t.Errorf("stderr %q, want %q", stderr.String(), want)
	}
}

// TestMainBadInput: every bad input is a one-line UsageError, before
// anything listens.
func TestMainBadInput(t *testing.T) {
	noLeak(t)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{}, "emulate: --upstream HOST:PORT is required"},
		{[]string{"--upstream", "127.0.0.1:1", "--network", "5g"}, `emulate: unknown network "5g" (known: loopback, lan`},
		{[]string{"--upstream", "127.0.0.1:1", "--rtt", "-5ms"}, "emulate: rtt -5ms: must not be negative"},
		{[]string{"--upstream", "127.0.0.1:1", "--rtt", "1h"}, "emulate: rtt 1h0m0s: more than 10s"},
		{[]string{"--upstream", "127.0.0.1:1", "--down-bandwidth", "10"}, `emulate: down-bandwidth: bandwidth "10" without a unit`},
		{[]string{"--upstream", "127.0.0.1:1", "--up-bandwidth", "-1mbit"}, "must be positive"},
		{[]string{"--upstream", "127.0.0.1:1", "--network", "lan", "--jitter", "5ms"}, "jitter 5ms is more than the rtt 2ms"},
		{[]string{"--upstream", "10.0.0.1:80"}, "emulate: --upstream 10.0.0.1:80: the emulator only runs on loopback"},
		{[]string{"--upstream", "127.0.0.1:1", "--listen", "0.0.0.0:0"}, "emulate: --listen 0.0.0.0:0: the emulator only runs on loopback"},
		{[]string{"--upstream", "127.0.0.1:1", "--rtt", "soon"}, "emulate: invalid value"},
		{[]string{"--upstream", "127.0.0.1:1", "extra"}, `emulate: unexpected argument "extra"`},
	} {
		var stdout, stderr bytes.Buffer
		err := Main(context.Background(), c.args, &stdout, &stderr)
		var ue UsageError
		if !errors.As(err, &ue) || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("Main(%q) = %v, want a one-line UsageError with %q", c.args, err, c.want)
		}
		if stdout.Len() != 0 {
			t.Errorf("Main(%q) wrote %q to stdout", c.args, stdout.String())
		}
	}
	var stdout bytes.Buffer
	if err := Main(context.Background(), []string{"--help"}, &stdout, io.Discard); !errors.Is(err, flag.ErrHelp) ||
		!strings.Contains(stdout.String(), "usage: pushbench emulate") || !strings.Contains(stdout.String(), "-down-bandwidth") {
		t.Errorf("--help: %v, %q", err, stdout.String())
	}
}
