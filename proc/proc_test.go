package proc

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"pushbench/servers"
	"pushbench/webhttp"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// TestChildLauncher checks the child lifecycle with a stand-in server: the
// URL is read from stdout, Stop ends the process, and a child that dies
// before listening is reported with its stderr.
func TestChildLauncher(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good")
	writeScript(t, good, `echo "pushbench serve: listening on http://127.0.0.1:9"; exec sleep 60`)
	srv, err := ChildLauncher(good, nil)(context.Background(), ServerConfig{Payload: 64, Ring: 8})
	if err != nil {
		t.Fatal(err)
	}
	if srv.URL != "http://127.0.0.1:9" || srv.PID <= 0 {
		t.Errorf("server %+v, want the printed URL and a pid", srv)
	}
	if err := srv.Stop(); err != nil {
		t.Errorf("Stop: %v", err)
	}
	if err := syscall.Kill(srv.PID, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("child %d still exists after Stop (kill 0: %v)", srv.PID, err)
	}

	bad := filepath.Join(dir, "bad")
	writeScript(t, bad, `echo "no such flag: --ring" >&2; exit 2`)
	_, err = ChildLauncher(bad, nil)(context.Background(), ServerConfig{Payload: 64, Ring: 8})
	if err == nil || !strings.Contains(err.Error(), "no such flag") {
		t.Errorf("error %v, want the child's stderr", err)
	}

	far := filepath.Join(dir, "far")
	writeScript(t, far, `echo "pushbench serve: listening on http://192.0.2.1:80"; exec sleep 60`)
	_, err = ChildLauncher(far, nil)(context.Background(), ServerConfig{Payload: 64, Ring: 8})
	if !errors.Is(err, ErrNotLoopback) {
		t.Errorf("error %v, want ErrNotLoopback", err)
	}
}

// TestChildLauncherWebOptions: the HTTP options, the rooms and the send
// rate become serve flags, and a TLS child's https:// URL is the Server's
// URL.
func TestChildLauncherWebOptions(t *testing.T) {
	dir := t.TempDir()
	script := filepath.Join(dir, "tls")
	argsFile := filepath.Join(dir, "args")
	writeScript(t, script, `echo "$@" > `+argsFile+`; echo "pushbench serve: listening on https://127.0.0.1:9"; exec sleep 60`)
	srv, err := ChildLauncher(script, nil)(context.Background(), ServerConfig{
		Payload: 64, Ring: 8, TLS: true, Response: webhttp.ResponseDeployment, Compress: true, TextPad: true,
		Rooms: 3, MaxSendRate: 50})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()
	if srv.URL != "https://127.0.0.1:9" {
		t.Errorf("URL %q, want the printed https URL", srv.URL)
	}
	args, err := os.ReadFile(argsFile)
	if err != nil {
		t.Fatal(err)
	}
	if want := "serve --addr 127.0.0.1:0 --rate 0 --payload 64 --ring 8 --rooms 3 --max-send-rate 50 --tls --response-headers deployment --compress --pad text\n"; string(args) != want {
		t.Errorf("serve args %q, want %q", args, want)
	}

	far := filepath.Join(dir, "far")
	writeScript(t, far, `echo "pushbench serve: listening on https://192.0.2.1:443"; exec sleep 60`)
	if _, err := ChildLauncher(far, nil)(context.Background(), ServerConfig{Payload: 64, Ring: 8, TLS: true}); !errors.Is(err, ErrNotLoopback) {
		t.Errorf("error %v, want ErrNotLoopback", err)
	}
}

// TestInProcessWebOptions: the in-process server honours the HTTP options,
// with a certificate generated in process, the rooms and the send rate.
func TestInProcessWebOptions(t *testing.T) {
	ctx := context.Background()
	srv, err := InProcess(nil)(ctx, ServerConfig{Payload: 64, Ring: 8, TLS: true, Response: webhttp.ResponseDeployment, Compress: true, TextPad: true,
		Rooms: 3, MaxSendRate: 50})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()
	host, ok := strings.CutPrefix(srv.URL, "https://")
	if !ok {
		t.Fatalf("URL %q, want https://", srv.URL)
	}
	roots, err := webhttp.TrustServer(ctx, host)
	if err != nil {
		t.Fatal(err)
	}
	tr := &http.Transport{TLSClientConfig: webhttp.ClientConfig(roots, "")}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr, Timeout: 30 * time.Second}).Get(srv.URL + "/stats")
	if err != nil {
		t.Fatal(err)
	}
	var st servers.Stats
	err = json.NewDecoder(resp.Body).Decode(&st)
	resp.Body.Close()
	if err != nil || !st.TLS || st.ResponseHeaders != webhttp.ResponseDeployment || !st.Compress || st.Pad != "text" ||
		st.Rooms != 3 || len(st.RoomHeads) != 3 || st.MaxSendRate != 50 || st.Ring != 8 {
		t.Errorf("stats %+v, %v", st, err)
	}
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
}

// TestServerConfigCut: CutEvery and SSERetry become --cut-every and
// --sse-retry, which serve's own flags read back unchanged, and the
// in-process server honours them.
func TestServerConfigCut(t *testing.T) {
	cfg := ServerConfig{Payload: 64, CutEvery: 50 * time.Millisecond, SSERetry: 1500 * time.Millisecond}
	args := cfg.serveArgs()
	if got, want := strings.Join(args, " "), "--cut-every 50ms --sse-retry 1.5s"; got != want {
		t.Errorf("serve args %q, want %q", got, want)
	}
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	read := servers.AddFlags(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	if sc, _, err := read(); err != nil || sc.CutEvery != cfg.CutEvery || sc.SSERetry != cfg.SSERetry {
		t.Errorf("serve read cut every %v, sse retry %v (%v)", sc.CutEvery, sc.SSERetry, err)
	}
	if args := (ServerConfig{Payload: 64}).serveArgs(); len(args) != 0 {
		t.Errorf("serve args without options %q", args)
	}

	srv, err := InProcess(nil)(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr, Timeout: 30 * time.Second}).Get(srv.URL + "/stats")
	if err != nil {
		t.Fatal(err)
	}
	var st servers.Stats
	err = json.NewDecoder(resp.Body).Decode(&st)
	resp.Body.Close()
	if err != nil || st.CutEveryNs != int64(cfg.CutEvery) || st.SSERetryMs != 1500 {
		t.Errorf("stats cut every %d ns, sse retry %d ms (%v)", st.CutEveryNs, st.SSERetryMs, err)
	}
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
}

func writeScript(t *testing.T, path, body string) {
	t.Helper()
	if err := os.WriteFile(path, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
}

func TestCheckLoopback(t *testing.T) {
	ctx := context.Background()
	for _, u := range []string{"http://127.0.0.1:8080", "http://127.1.2.3:1", "http://[::1]:80", "http://localhost:80", "https://127.0.0.1:1"} {
		if err := CheckLoopback(ctx, u); err != nil {
			t.Errorf("CheckLoopback(%s) = %v, want nil", u, err)
		}
	}
	for _, u := range []string{"http://10.0.0.1:80", "http://8.8.8.8:80", "https://10.0.0.1:443", "ftp://127.0.0.1:1", "127.0.0.1:80"} {
		if err := CheckLoopback(ctx, u); err == nil {
			t.Errorf("CheckLoopback(%s) = nil, want an error", u)
		}
	}
}

func TestPlanLimits(t *testing.T) {
	ports, err := ephemeralPorts()
	if err != nil {
		t.Fatal(err)
	}
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		t.Fatal(err)
	}
	l, err := PlanLimits(10, false, false)
	if err != nil || len(l.SourceAddrs) != 0 || l.SourceAddr(3) != nil {
		t.Fatalf("10 clients: %+v, %v; want the default source address", l, err)
	}
	if l.OpenFiles != rl.Max {
		t.Errorf("soft limit %d, want raised to the hard limit %d", l.OpenFiles, rl.Max)
	}
	// More clients than descriptors: refused with the number that fits.
	_, err = PlanLimits(int(min(rl.Max, 1<<40)), false, false)
	if !errors.Is(err, ErrLimits) || !strings.Contains(err.Error(), "clients fit") {
		t.Errorf("too many clients: %v, want ErrLimits naming what fits", err)
	}
	// More clients than one address has ports: spread over 127.0.0.x.
	if n := ports * 3 / 2; uint64(n)+fdSlack < rl.Max {
		l, err := PlanLimits(n, false, false)
		if err != nil || len(l.SourceAddrs) != 2 {
			t.Fatalf("%d clients: %v, %v; want 2 source addresses", n, l.SourceAddrs, err)
		}
		if a, b := l.SourceAddr(0), l.SourceAddr(n-1); a.IP.Equal(b.IP) {
			t.Errorf("first and last client share %v", a.IP)
		}
		if _, err := PlanLimits(n, false, true); !errors.Is(err, ErrLimits) {
			t.Errorf("ipv6 with %d clients: %v, want ErrLimits", n, err)
		}
	}
}

// TestChildDied: a child that ends on its own is reported as dead, with
// how; one that Stop ended is not.
func TestChildDied(t *testing.T) {
	dir := t.TempDir()
	script := filepath.Join(dir, "dies")
	die := filepath.Join(dir, "die")
	// The stand-in dies once told to (the file exists), after it listened.
	writeScript(t, script, `echo "pushbench serve: listening on http://127.0.0.1:9"; while [ ! -e `+die+` ]; do sleep 0.01; done; echo "fatal: out of luck" >&2; kill -9 $$`)
	srv, err := ChildLauncher(script, nil)(context.Background(), ServerConfig{Payload: 64, Ring: 8})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(die, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	var dead bool
	var how string
	for !dead && time.Now().Before(deadline) {
		dead, how = srv.Died()
		runtime.Gosched()
	}
	if !dead || !strings.Contains(how, "killed by signal 9") {
		t.Errorf("Died() = %v, %q; want killed by signal 9", dead, how)
	}
	if err := srv.Stop(); err == nil || !strings.Contains(err.Error(), "signal 9") {
		t.Errorf("Stop after a death: %v, want the death", err)
	}

	good := filepath.Join(dir, "good")
	writeScript(t, good, `echo "pushbench serve: listening on http://127.0.0.1:9"; exec sleep 60`)
	srv, err = ChildLauncher(good, nil)(context.Background(), ServerConfig{Payload: 64, Ring: 8})
	if err != nil {
		t.Fatal(err)
	}
	if dead, _ := srv.Died(); dead {
		t.Error("a running child is reported dead")
	}
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	if dead, how := srv.Died(); dead {
		t.Errorf("a child Stop ended is reported dead: %s", how)
	}
}

func TestParseProcStat(t *testing.T) {
	busy, total, err := parseProcStat("cpu  100 5 50 800 20 3 2 10 7 0\ncpu0 1 2 3 4\n")
	if err != nil || total != 990 || busy != 170 {
		t.Errorf("parseProcStat = %d busy of %d, %v; want 170 of 990", busy, total, err)
	}
	if _, _, err := parseProcStat("intr 1 2 3\n"); err == nil {
		t.Error("no cpu line: no error")
	}
	if busy, total, err := MachineCPU(); err != nil || busy > total || total == 0 {
		t.Errorf("MachineCPU = %d of %d, %v", busy, total, err)
	}
}

func TestParsePIDStat(t *testing.T) {
	line := "4242 (pushbench serve) S 1 4242 4242 0 -1 4194560 1234 0 0 0 250 37 0 0 20 0 9 0 100 1000 200 18446744073709551615"
	if d, err := parsePIDStat(line); err != nil || d != 2870*time.Millisecond {
		t.Errorf("parsePIDStat = %v, %v; want 2.87s (250 + 37 ticks)", d, err)
	}
	if _, err := parsePIDStat("garbage"); err == nil {
		t.Error("garbage: no error")
	}
	if d, err := PIDCPU(os.Getpid()); err != nil || d < 0 {
		t.Errorf("PIDCPU(self) = %v, %v", d, err)
	}
}
