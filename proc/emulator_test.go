package proc

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"pushbench/internal/testnet"
	"pushbench/netem"
)

// pushbenchBinary builds cmd/pushbench into a temporary folder: the
// emulator child is a real `pushbench emulate`.
func pushbenchBinary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds the pushbench binary")
	}
	bin := filepath.Join(t.TempDir(), "pushbench")
	if out, err := exec.Command("go", "build", "-o", bin, "pushbench/cmd/pushbench").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// echoServer is a loopback TCP echo server standing in for the server: its
// URL.
func echoServer(t *testing.T) string { return "http://" + testnet.Serve(t, testnet.Echo) }

// roundTrip sends a line through the emulator at srvURL and times its echo.
func roundTrip(t *testing.T, srvURL string) time.Duration {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(srvURL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	if _, err := io.WriteString(c, "ping\n"); err != nil {
		t.Fatal(err)
	}
	got, err := bufio.NewReader(c).ReadString('\n')
	took := time.Since(start)
	if err != nil || got != "ping\n" {
		t.Fatalf("echo through the emulator: %q, %v", got, err)
	}
	return took
}

// TestEmulatorLauncher runs the real `pushbench emulate` child: it starts,
// forwards with the profile's delay, Stop leaves no process, and a child
// killed mid-run is reported by Died with how it ended.
func TestEmulatorLauncher(t *testing.T) {
	bin := pushbenchBinary(t)
	upstream := echoServer(t)
	p, err := netem.Resolve("lan", ptr(30*time.Millisecond), nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	start := EmulatorLauncher(bin, &SyncWriter{W: &log})

	em, err := start(context.Background(), upstream, p)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(em.URL, "http://127.0.0.1:") || em.URL == upstream || em.PID <= 0 {
		t.Errorf("emulator %+v, want an http URL of its own and a pid", em)
	}
	if took := roundTrip(t, em.URL); took < p.RTT {
		t.Errorf("round trip through the emulator took %v, less than its rtt %v", took, p.RTT)
	}
	if dead, how := em.Died(); dead {
		t.Errorf("Died() = true (%s) while running", how)
	}
	if err := em.Stop(); err != nil {
		t.Errorf("Stop: %v", err)
	}
	<-em.Exited
	if err := syscall.Kill(em.PID, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("emulator %d still exists after Stop (kill 0: %v)", em.PID, err)
	}
	if dead, _ := em.Died(); dead {
		t.Error("Died() = true after Stop")
	}
	// What the child said about its profile reached the log.
	if want := "pushbench emulate: lan: rtt 30ms, down 30mbit, up 15mbit"; !strings.Contains(log.String(), want) {
		t.Errorf("log %q, want %q", log.String(), want)
	}

	// Killed mid-run: Died says so, Stop reports it once.
	em, err = start(context.Background(), upstream, p)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(em.PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-em.Exited
	dead, how := em.Died()
	if !dead || !strings.Contains(how, "killed by signal 9") {
		t.Errorf("Died() = %v, %q; want killed by signal 9", dead, how)
	}
	if err := em.Stop(); err == nil || !strings.Contains(err.Error(), "emulator child (pid") {
		t.Errorf("Stop after the kill: %v, want the emulator child's death", err)
	}
}

// TestEmulatorLauncherInput: bad input is refused before a child starts;
// the listening line is read with the emulator's prefix and checked
// against the loopback rule like the server's.
func TestEmulatorLauncherInput(t *testing.T) {
	dir := t.TempDir()
	never := filepath.Join(dir, "never")
	writeScript(t, never, `echo started > `+filepath.Join(dir, "ran")+`; exit 1`)
	ctx := context.Background()
	lan, _ := netem.Lookup("lan")
	if _, err := EmulatorLauncher(never, nil)(ctx, "http://10.0.0.1:80", lan); !errors.Is(err, ErrNotLoopback) {
		t.Errorf("non-loopback server: %v, want ErrNotLoopback", err)
	}
	if _, err := EmulatorLauncher(never, nil)(ctx, "http://127.0.0.1:80", netem.Profile{Name: "lan", RTT: -time.Millisecond}); err == nil ||
		!strings.Contains(err.Error(), "must not be negative") {
		t.Errorf("negative rtt: %v", err)
	}
	if m, _ := filepath.Glob(filepath.Join(dir, "ran")); len(m) != 0 {
		t.Error("a child was started for bad input")
	}

	good := filepath.Join(dir, "good")
	writeScript(t, good, `echo "pushbench emulate: listening on 127.0.0.1:9"; exec sleep 60`)
	em, err := EmulatorLauncher(good, nil)(ctx, "http://127.0.0.1:80", lan)
	if err != nil {
		t.Fatal(err)
	}
	if em.URL != "http://127.0.0.1:9" {
		t.Errorf("URL %q, want http://127.0.0.1:9", em.URL)
	}
	if err := em.Stop(); err != nil {
		t.Errorf("Stop: %v", err)
	}

	far := filepath.Join(dir, "far")
	writeScript(t, far, `echo "pushbench emulate: listening on 192.0.2.1:80"; exec sleep 60`)
	if _, err := EmulatorLauncher(far, nil)(ctx, "http://127.0.0.1:80", lan); !errors.Is(err, ErrNotLoopback) {
		t.Errorf("far listening address: %v, want ErrNotLoopback", err)
	}

	bad := filepath.Join(dir, "bad")
	writeScript(t, bad, `echo "pushbench emulate: unknown network" >&2; exit 2`)
	if _, err := EmulatorLauncher(bad, nil)(ctx, "http://127.0.0.1:80", lan); err == nil ||
		!strings.Contains(err.Error(), "emulator child exited before listening") || !strings.Contains(err.Error(), "unknown network") {
		t.Errorf("child failing at once: %v, want its stderr", err)
	}
}

func ptr[T any](v T) *T { return &v }
