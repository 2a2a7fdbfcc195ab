package proc

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/url"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"pushbench/event"
	"pushbench/servers"
	"pushbench/webhttp"
)

// ServerConfig is what a launched server is started with. The publisher's
// rate, schedule and spin are given per run through /control/start.
type ServerConfig struct {
	Payload int
	// Ring is the events each room keeps (0: the server's default,
	// servers.DefaultRing or servers.MaxRing/Rooms if smaller). Rooms ×
	// Ring is at most servers.MaxRing.
	Ring int
	Hold time.Duration // 0: the server's default
	// Rooms is the number of rooms (chat, game; 0: one).
	Rooms int
	// MaxSendRate is the upstream messages per second one connection
	// may send (0: servers.DefaultMaxSendRate).
	MaxSendRate float64

	// TLS serves TLS 1.3 with a certificate the server generates at
	// start; the Server's URL is then https://. Clients learn the
	// certificate with webhttp.TrustServer.
	TLS bool
	// Response is the response header profile (webhttp.ResponseMinimal,
	// webhttp.ResponseDeployment; "": minimal).
	Response string
	// Compress gzips poll answers and SSE and negotiates
	// permessage-deflate, for clients that offer them.
	Compress bool
	// TextPad pads events with text instead of 'x' (event.PadText).
	TextPad bool
	// CORS lists the origins besides the server's own whose pages may use
	// the server (servers.Config.CORS): the browser pages' origin in a
	// --client browser run.
	CORS []string
	// CutEvery ends every SSE stream, WebSocket and raw TCP connection
	// that long after it opened (servers.Config.CutEvery; 0: never), so
	// that a run sees the clients' reconnects and resumes.
	CutEvery time.Duration
	// SSERetry starts every SSE stream with a retry field of that many
	// milliseconds, an EventSource's wait before it reconnects
	// (servers.Config.SSERetry; 0: none, a browser's default).
	SSERetry time.Duration
	// Host is the address the server listens on ("": 127.0.0.1), on a
	// free port. Another than loopback is for load generators on other
	// hosts (agents), and needs Token, which /control/* then asks for.
	Host  string
	Token string
}

// addr is the serve --addr of cfg: its host on a free port.
func (cfg ServerConfig) addr() string {
	if cfg.Host == "" {
		return "127.0.0.1:0"
	}
	return net.JoinHostPort(cfg.Host, "0")
}

// serveArgs are the serve flags for what cfg sets beyond the defaults.
func (cfg ServerConfig) serveArgs() []string {
	var args []string
	if cfg.Ring > 0 {
		args = append(args, "--ring", strconv.Itoa(cfg.Ring))
	}
	if cfg.Hold > 0 {
		args = append(args, "--hold", cfg.Hold.String())
	}
	if cfg.Rooms > 0 {
		args = append(args, "--rooms", strconv.Itoa(cfg.Rooms))
	}
	if cfg.MaxSendRate > 0 {
		args = append(args, "--max-send-rate", strconv.FormatFloat(cfg.MaxSendRate, 'g', -1, 64))
	}
	if cfg.TLS {
		args = append(args, "--tls")
	}
	if cfg.Response != "" {
		args = append(args, "--response-headers", cfg.Response)
	}
	if cfg.Compress {
		args = append(args, "--compress")
	}
	if cfg.TextPad {
		args = append(args, "--pad", event.PadText.String())
	}
	for _, o := range cfg.CORS {
		args = append(args, "--cors", o)
	}
	if cfg.CutEvery > 0 {
		args = append(args, "--cut-every", cfg.CutEvery.String())
	}
	if cfg.SSERetry > 0 {
		args = append(args, "--sse-retry", cfg.SSERetry.String())
	}
	if cfg.Token != "" {
		args = append(args, "--token", cfg.Token)
	}
	return args
}

// serversConfig is what InProcess serves for cfg, with a fresh
// certificate when cfg asks for TLS.
func (cfg ServerConfig) serversConfig(errorLog *log.Logger) (servers.Config, error) {
	c := servers.Config{
		Addr: cfg.addr(), Token: cfg.Token, Ring: cfg.Ring, Hold: cfg.Hold, Payload: cfg.Payload, ErrorLog: errorLog,
		Response: cfg.Response, Compress: cfg.Compress, TextPad: cfg.TextPad,
		Rooms: cfg.Rooms, MaxSendRate: cfg.MaxSendRate, CORS: cfg.CORS,
		CutEvery: cfg.CutEvery, SSERetry: cfg.SSERetry,
	}
	if cfg.TLS {
		cert, err := webhttp.SelfSigned()
		if err != nil {
			return c, fmt.Errorf("TLS certificate: %w", err)
		}
		c.TLS = &cert
	}
	return c, nil
}

// Server is a running server the harness may use.
type Server struct {
	URL string
	// PID of a separate server process, 0 when the server shares this
	// process (then its CPU and memory are not its own) or is unknown.
	PID int
	// Stop ends the server and waits for it. It is safe to call more than once.
	Stop func() error
	// Exited is closed when the server process has ended (nil when the
	// launcher cannot tell).
	Exited <-chan struct{}
	// Died reports whether the server ended on its own, before Stop, and
	// how and when ("killed by signal 9 (killed) at 15:04:05.000"). Nil
	// when the launcher cannot tell (a server given by URL).
	Died func() (bool, string)
}

// Launcher starts a server for a run. Run calls Stop on every path out,
// including cancellation.
type Launcher func(ctx context.Context, cfg ServerConfig) (*Server, error)

// Bounds on the child's lifecycle.
const (
	childReadyTimeout = 15 * time.Second
	childTermTimeout  = 5 * time.Second
)

// listenPrefix is what `pushbench serve` prints once it accepts connections.
const listenPrefix = "pushbench serve: listening on "

// childKind tells apart the children startChild starts: the name in its
// messages, the prefix of the line it prints once it accepts connections,
// and the scheme put before what follows the prefix to make the URL ("" when
// the line holds a whole URL, as serve's does).
type childKind struct{ name, prefix, scheme string }

// serverChild is `pushbench serve`.
var serverChild = childKind{"server", listenPrefix, ""}

// ChildLauncher starts `path serve --addr 127.0.0.1:0 --rate 0 ...` (or
// the ServerConfig's Host) as a child process (path: a pushbench binary,
// normally os.Executable()) and reads its URL from the line it prints on
// stdout. The child gets its own
// process group (so a terminal's Ctrl-C reaches only the harness, which
// stops it in order) and dies with the harness (PR_SET_PDEATHSIG) even if
// the harness is killed. Its later output is copied to log (nil: discarded).
func ChildLauncher(path string, log io.Writer) Launcher {
	if log == nil {
		log = io.Discard
	}
	return func(ctx context.Context, cfg ServerConfig) (*Server, error) {
		args := []string{"serve", "--addr", cfg.addr(), "--rate", "0",
			"--payload", strconv.Itoa(cfg.Payload)}
		return startChild(ctx, serverChild, path, append(args, cfg.serveArgs()...), log, cfg.Host)
	}
}

// child is a started server process.
type child struct {
	kind     childKind
	cmd      *exec.Cmd
	exited   chan struct{} // closed when Wait returned
	waitErr  error
	exitedAt time.Time
	stopping atomic.Bool // Stop was called: an exit from now on is ours
	own      bool        // it exited before Stop was called (set before exited closes)
	stderr   *tailBuffer
	once     sync.Once
	stopErr  error
}

// startChild starts the child and waits for its URL, which must be on
// loopback or on host (the address it was asked to listen on).
func startChild(ctx context.Context, kind childKind, path string, args []string, log io.Writer, host string) (*Server, error) {
	pr, pw, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	c := &child{kind: kind, exited: make(chan struct{}), stderr: &tailBuffer{max: 4096}}
	lw := &SyncWriter{W: log}
	c.cmd = exec.Command(path, args...)
	c.cmd.Stdout = pw
	c.cmd.Stderr = io.MultiWriter(c.stderr, lw)
	c.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}

	// PR_SET_PDEATHSIG fires when the *thread* that forked the child exits,
	// not the process. This goroutine keeps its locked OS thread for the
	// child's whole life and never unlocks it, so the runtime cannot reuse
	// or retire that thread early; it ends only after the child is gone.
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		if err := c.cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		c.waitErr = c.cmd.Wait()
		c.exitedAt = time.Now()
		c.own = !c.stopping.Load()
		close(c.exited)
	}()
	err = <-started
	pw.Close() // the child holds its own copy
	if err != nil {
		pr.Close()
		return nil, fmt.Errorf("start %s %s: %w", kind.name, path, err)
	}

	// Read stdout until the listening line, then keep copying it so the
	// child never blocks on a full pipe.
	urlc := make(chan string, 1)
	go func() {
		defer pr.Close()
		sc := bufio.NewScanner(pr)
		found := false
		for sc.Scan() {
			line := sc.Text()
			if !found {
				if i := strings.Index(line, kind.prefix); i >= 0 {
					found = true
					urlc <- kind.scheme + strings.TrimSpace(line[i+len(kind.prefix):])
					continue
				}
			}
			fmt.Fprintln(lw, line)
		}
		if !found {
			close(urlc)
		}
	}()

	srv := &Server{PID: c.cmd.Process.Pid, Stop: c.stop, Died: c.died, Exited: c.exited}
	timer := time.NewTimer(childReadyTimeout)
	defer timer.Stop()
	select {
	case u, ok := <-urlc:
		if ok {
			srv.URL = u
			if pu, err := url.Parse(u); err == nil && host != "" && pu.Hostname() == host {
				return srv, nil // where it was asked to listen
			}
			if err := CheckLoopback(ctx, u); err != nil {
				c.stop()
				return nil, fmt.Errorf("%s child: %w", kind.name, err)
			}
			return srv, nil
		}
		<-c.exited
		return nil, fmt.Errorf("%s child exited before listening (%v): %s", kind.name, c.waitErr, c.stderr.String())
	case <-c.exited:
		return nil, fmt.Errorf("%s child exited before listening (%v): %s", kind.name, c.waitErr, c.stderr.String())
	case <-timer.C:
		c.stop()
		return nil, fmt.Errorf("%s child printed no %q line within %v: %s", kind.name, kind.prefix, childReadyTimeout, c.stderr.String())
	case <-ctx.Done():
		c.stop()
		return nil, ctx.Err()
	}
}

// died reports whether the child exited before stop was called, and how.
func (c *child) died() (bool, string) {
	select {
	case <-c.exited:
	default:
		return false, ""
	}
	if !c.own {
		return false, ""
	}
	how := "exited with status 0"
	var ee *exec.ExitError
	if errors.As(c.waitErr, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			how = fmt.Sprintf("killed by signal %d (%v)", int(ws.Signal()), ws.Signal())
		} else {
			how = "exited with status " + strconv.Itoa(ee.ExitCode())
		}
	} else if c.waitErr != nil {
		how = c.waitErr.Error()
	}
	how += " at " + c.exitedAt.Format("15:04:05.000")
	if last := c.stderr.lastLine(); last != "" {
		how += "; its last words: " + last
	}
	return true, how
}

// lastLine is the last non-empty line written, "" if none.
func (t *tailBuffer) lastLine() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	lines := strings.Split(strings.TrimSpace(string(t.b)), "\n")
	return strings.Join(strings.Fields(lines[len(lines)-1]), " ")
}

// stop sends SIGTERM to the child's process group, then SIGKILL if it has
// not exited within childTermTimeout, and waits for it.
func (c *child) stop() error {
	c.once.Do(func() {
		if dead, how := c.died(); dead {
			// It ended on its own: say so once, as Stop's error.
			_ = syscall.Kill(-c.cmd.Process.Pid, syscall.SIGKILL)
			c.stopErr = fmt.Errorf("%s child (pid %d) %s", c.kind.name, c.cmd.Process.Pid, how)
			return
		}
		c.stopping.Store(true)
		pgid := c.cmd.Process.Pid
		select {
		case <-c.exited:
		default:
			_ = syscall.Kill(-pgid, syscall.SIGTERM)
			t := time.NewTimer(childTermTimeout)
			select {
			case <-c.exited:
				t.Stop()
			case <-t.C:
				_ = syscall.Kill(-pgid, syscall.SIGKILL)
				<-c.exited
				c.stopErr = fmt.Errorf("%s child ignored SIGTERM for %v and was killed", c.kind.name, childTermTimeout)
				return
			}
		}
		// Reap anything left in the group (the server starts no children,
		// but a wrapper script might).
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		var ee *exec.ExitError
		if c.waitErr != nil && !(errors.As(c.waitErr, &ee) && signalled(ee, syscall.SIGTERM)) {
			c.stopErr = fmt.Errorf("%s child: %w: %s", c.kind.name, c.waitErr, c.stderr.String())
		}
	})
	return c.stopErr
}

func signalled(ee *exec.ExitError, sig syscall.Signal) bool {
	ws, ok := ee.Sys().(syscall.WaitStatus)
	return ok && ws.Signaled() && ws.Signal() == sig
}

// tailBuffer keeps the last max bytes written to it, as one line.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > t.max {
		t.b = t.b[len(t.b)-t.max:]
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := strings.TrimSpace(string(bytes.ReplaceAll(t.b, []byte("\n"), []byte(" | "))))
	if s == "" {
		return "(no output on stderr)"
	}
	return s
}

// SyncWriter serialises writes to W: the child server's stdout and stderr
// copiers, and a progress display, may share one writer.
type SyncWriter struct {
	mu sync.Mutex
	W  io.Writer
}

func (s *SyncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.W.Write(p)
}

// InProcess starts a servers.Server inside this process on a free loopback
// port. Its CPU, memory and goroutines are then mixed with the load
// generator's: use it for tests and `go test -bench`, never for the
// figures of `pushbench run` (design.md section 5).
func InProcess(errorLog *log.Logger) Launcher {
	return func(ctx context.Context, cfg ServerConfig) (*Server, error) {
		sc, err := cfg.serversConfig(errorLog)
		if err != nil {
			return nil, err
		}
		srv, err := servers.New(sc)
		if err != nil {
			return nil, err
		}
		ln, err := srv.Listen()
		if err != nil {
			_ = srv.Shutdown(context.Background())
			return nil, err
		}
		served := make(chan error, 1)
		go func() { served <- srv.Serve(ln) }()
		var once sync.Once
		var stopErr error
		stop := func() error {
			once.Do(func() {
				ctx, cancel := context.WithTimeout(context.Background(), childTermTimeout)
				defer cancel()
				stopErr = srv.Shutdown(ctx)
				if err := <-served; err != nil && stopErr == nil {
					stopErr = err
				}
			})
			return stopErr
		}
		scheme := "http://"
		if cfg.TLS {
			scheme = "https://"
		}
		return &Server{URL: scheme + ln.Addr().String(), PID: os.Getpid(), Stop: stop}, nil
	}
}
