package main

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"pushbench/results"
)

func TestRunBadFlags(t *testing.T) {
	t.Parallel()
	// A loopback port nobody listens on.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + ln.Addr().String()
	ln.Close()

	tests := []struct {
		name string
		args []string
		want string // substring of the one-line error
	}{
		{"zero clients", []string{"--clients", "0"}, "at least one client"},
		{"negative rate", []string{"--rate", "-5"}, "rate -5"},
		{"payload below minimum", []string{"--payload", "10"}, "below the minimum"},
		{"unknown transport", []string{"--transport", "pigeon"}, "unknown transport"},
		{"server does not answer", []string{"--server", dead}, "does not answer"},
		{"server not on loopback", []string{"--server", "http://192.0.2.1:8080"}, "loopback"},
		{"shortpoll without interval", []string{"--transport", "shortpoll", "--interval", "0s"}, "poll interval"},
		{"unknown flag", []string{"--bogus"}, "bogus"},
		{"not a number", []string{"--rate", "fast"}, "rate"},
		{"hold with server", []string{"--server", dead, "--hold", "1s"}, "do not apply"},
		{"http 2 for websocket", []string{"--transport", "ws", "--http", "2", "--tls"}, "cannot run over HTTP/2"},
		{"http 2 for tcp", []string{"--transport", "tcp", "--http", "2"}, "cannot run over HTTP/2"},
		{"http 3", []string{"--http", "3"}, `http "3"`},
		{"unknown header profile", []string{"--headers", "curl"}, `headers "curl"`},
		{"unknown response profile", []string{"--response-headers", "huge"}, `response headers "huge"`},
		{"cookie too short", []string{"--cookie-bytes", "3"}, "cookie bytes 3"},
		{"cookie too long", []string{"--cookie-bytes", "9000"}, "cookie bytes 9000"},
		{"unknown pad", []string{"--pad", "zeros"}, `pad "zeros"`},
		{"unknown workload", []string{"--workload", "chess"}, `workload "chess"`},
		{"rate with chat", []string{"--workload", "chat", "--rate", "5"}, "--rate sets a broadcast's events per second"},
		{"send rate 0", []string{"--workload", "chat", "--send-rate", "0"}, "send rate 0"},
		{"tick too high", []string{"--workload", "game", "--tick", "5000", "--payload", "1024"}, "tick 5000"},
		{"snapshot too small", []string{"--workload", "game", "--payload", "256"}, "a snapshot for a room of 10 clients needs at least 492 bytes"},
		{"room 0", []string{"--workload", "chat", "--room", "0"}, "room 0"},
		{"tick with chat", []string{"--workload", "chat", "--tick", "30"}, "--tick applies to the game workload, not to chat"},
		{"room with broadcast", []string{"--room", "5"}, "--room applies to the chat and game workloads, not to broadcast"},
		{"chat on a given server", []string{"--server", dead, "--workload", "chat"}, "needs its own server child"},
		{"agent unreachable", []string{"--agents", strings.TrimPrefix(dead, "http://")}, "is unreachable"},
		{"agent without a port", []string{"--agents", "agent1"}, "want host:port"},
		{"local share without agents", []string{"--local-share", "3"}, "apply with --agents"},
		{"agents file missing", []string{"--agents-file", "/nonexistent/agents"}, "--agents-file"},
		{"agents with chat", []string{"--agents", strings.TrimPrefix(dead, "http://"), "--workload", "chat"}, "agents run the broadcast workload"},
		{"agents with browsers", []string{"--agents", strings.TrimPrefix(dead, "http://"), "--client", "browser", "--chromium", "/bin/true"}, "agents run Go clients"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			out := t.TempDir()
			args := append([]string{"--out", out, "--quiet"}, tt.args...)
			err := runCmd(context.Background(), args, new(bytes.Buffer), new(bytes.Buffer))
			if !errors.As(err, new(usageError)) {
				t.Fatalf("runCmd(%q) = %v, want a usage error", tt.args, err)
			}
			var stdout, stderr bytes.Buffer
			code := pushbench(context.Background(), append([]string{"run"}, args...), &stdout, &stderr)
			msg := stderr.String()
			if code != 2 {
				t.Errorf("exit code %d, want 2 (stderr %q)", code, msg)
			}
			if strings.Count(msg, "\n") != 1 || !strings.Contains(msg, tt.want) {
				t.Errorf("stderr %q, want one line containing %q", msg, tt.want)
			}
			if stdout.Len() != 0 {
				t.Errorf("stdout %q, want nothing", stdout.String())
			}
		})
	}
}

// pushbenchBinary builds this command into a temporary folder, for tests
// that need a real `pushbench serve` child (the test binary is not one).
func pushbenchBinary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds the pushbench binary")
	}
	bin := filepath.Join(t.TempDir(), "pushbench")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// childrenOf lists the processes running bin.
func childrenOf(bin string) []string {
	var pids []string
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		if exe, err := os.Readlink(filepath.Join("/proc", e.Name(), "exe")); err == nil && exe == bin {
			pids = append(pids, e.Name())
		}
	}
	return pids
}

// TestRunWithChildServer runs the whole command against a real child
// server and checks the files it writes.
func TestRunWithChildServer(t *testing.T) {
	bin := pushbenchBinary(t)
	out := filepath.Join(t.TempDir(), "run")
	var stdout, stderr bytes.Buffer
	err := runCmd(context.Background(), []string{
		"--server-cmd", bin, "--transport", "ws", "--clients", "10", "--rate", "50",
		"--warmup", "100ms", "--duration", "400ms", "--payload", "100", "--out", out,
	}, &stdout, &stderr)
	if err != nil {
		t.Fatalf("runCmd: %v\nstderr: %s", err, stderr.String())
	}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	if len(lines) != 1 || !strings.HasPrefix(lines[0], "ws c=10 r=50/s P=100") {
		t.Errorf("stdout %q, want the summary line", stdout.String())
	}
	// Not a terminal: plain progress lines.
	if !strings.Contains(stderr.String(), "pushbench run: connect") {
		t.Errorf("stderr %q, want plain progress lines", stderr.String())
	}
	recs, err := results.ReadRecords(filepath.Join(out, results.ResultFile))
	if err != nil || len(recs) != 1 {
		t.Fatalf("result.json: %v (%d records)", err, len(recs))
	}
	rec := recs[0]
	if rec.Partial || rec.Expected != 200 || rec.Delivered != rec.Expected || rec.Env.GoVersion == "" || rec.Scenario.Transport != "ws" {
		t.Errorf("record: partial %v expected %d delivered %d env %+v", rec.Partial, rec.Expected, rec.Delivered, rec.Env)
	}
	if c := rec.Checks["bytes_agree"]; !c.OK {
		t.Errorf("bytes_agree: %s", c.Detail)
	}
	for _, f := range []string{results.LatencyHGRMFile, results.LatencyHDRFile} {
		if fi, err := os.Stat(filepath.Join(out, f)); err != nil || fi.Size() == 0 {
			t.Errorf("%s: %v", f, err)
		}
	}
	if pids := childrenOf(bin); len(pids) > 0 {
		t.Errorf("server child still running: %v", pids)
	}
}

// TestRunInterrupted cancels a run in its window: the files are written
// with partial = true, the command fails, and no server is left behind.
func TestRunInterrupted(t *testing.T) {
	bin := pushbenchBinary(t)
	out := filepath.Join(t.TempDir(), "run")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// Cancel once the plain progress says the window has started.
	w := &watchWriter{want: "pushbench run: window", hit: cancel}
	err := runCmd(ctx, []string{
		"--server-cmd", bin, "--transport", "sse", "--clients", "5", "--rate", "100",
		"--warmup", "0s", "--duration", "1m", "--out", out,
	}, new(bytes.Buffer), w)
	if err == nil || !errors.Is(err, context.Canceled) {
		t.Fatalf("runCmd = %v, want an error wrapping context.Canceled", err)
	}
	recs, rerr := results.ReadRecords(filepath.Join(out, results.ResultFile))
	if rerr != nil || len(recs) != 1 || !recs[0].Partial {
		t.Fatalf("result.json: %v, %+v; want one partial record", rerr, recs)
	}
	if pids := childrenOf(bin); len(pids) > 0 {
		t.Errorf("server child still running after interrupt: %v", pids)
	}
}

// watchWriter calls hit once when want has been written to it.
type watchWriter struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	want string
	hit  func()
	done bool
}

func (w *watchWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	if !w.done && strings.Contains(w.buf.String(), w.want) {
		w.done = true
		w.hit()
	}
	return len(p), nil
}
