package browser

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/remote"
)

// FindChromium returns the path of the Chromium to run: exec (a path, or a
// name looked up in PATH) or, if exec is empty, the first of chromium,
// chromium-browser and google-chrome in PATH. Its error wraps ErrNoChromium
// and names the package to install.
func FindChromium(exe string) (string, error) {
	names := []string{"chromium", "chromium-browser", "google-chrome"}
	if exe != "" {
		names = []string{exe}
	}
	for _, n := range names {
		if p, err := exec.LookPath(n); err == nil {
			return p, nil
		}
	}
	what := "chromium, chromium-browser or google-chrome in PATH"
	if exe != "" {
		what = strconv.Quote(exe)
	}
	return "", fmt.Errorf("browser: %w: no %s (install it: apt-get install chromium)", ErrNoChromium, what)
}

// chromium is one headless Chromium process, in a process group of its own,
// with a temporary profile, and the chromedp context of its DevTools
// connection (pages are tabs made from ctx).
type chromium struct {
	cmd     *exec.Cmd
	dir     string // the profile (--user-data-dir)
	ctx     context.Context
	cancel  func() // ends ctx and the DevTools connection
	stderr  *os.File
	reader  chan struct{} // closed when the stderr reader has returned
	exited  chan struct{} // closed when cmd.Wait has returned
	killMu  sync.Mutex
	waitErr error
}

// startChromium starts bin headless and connects to it.
func startChromium(ctx context.Context, bin string, http1 bool) (*chromium, error) {
	dir, err := os.MkdirTemp("", "pushbench-chromium-")
	if err != nil {
		return nil, err
	}
	args := []string{
		"--headless", "--disable-gpu", "--no-first-run", "--no-default-browser-check",
		"--disable-extensions", "--disable-component-update", "--disable-sync",
		"--disable-background-networking", "--disable-default-apps",
		// Every page is a window of its own; none may be throttled as a
		// background tab.
		"--disable-background-timer-throttling", "--disable-renderer-backgrounding",
		"--disable-backgrounding-occluded-windows",
		"--user-data-dir=" + dir, "--remote-debugging-port=0", "about:blank",
	}
	// The server's certificate is generated at its start (serve --tls):
	// no root vouches for it. The pages reach only the harness and the
	// server under test, both on loopback.
	args = append([]string{"--ignore-certificate-errors"}, args...)
	if http1 {
		args = append([]string{"--disable-http2"}, args...)
	}
	if os.Geteuid() == 0 {
		// Chromium's sandbox refuses to run as root.
		args = append([]string{"--no-sandbox"}, args...)
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stderr = pw
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		pr.Close()
		pw.Close()
		os.RemoveAll(dir)
		return nil, fmt.Errorf("%w: %s: %v (install it: apt-get install chromium)", ErrNoChromium, bin, err)
	}
	pw.Close()
	b := &chromium{cmd: cmd, dir: dir, stderr: pr, reader: make(chan struct{}), exited: make(chan struct{})}
	go func() {
		b.waitErr = cmd.Wait()
		close(b.exited)
	}()
	endpoint := make(chan string, 1)
	var tail []string // the last lines, for an error
	go func() {
		defer close(b.reader)
		sc := bufio.NewScanner(pr)
		sent := false
		for sc.Scan() {
			line := sc.Text()
			if u, ok := strings.CutPrefix(line, "DevTools listening on "); ok && !sent {
				endpoint <- u
				sent = true
			} else if !sent {
				tail = append(tail, line)
				if len(tail) > 5 {
					tail = tail[1:]
				}
			}
		}
		if !sent {
			close(endpoint)
		}
	}()
	var u string
	select {
	case v, ok := <-endpoint:
		if !ok {
			<-b.exited
			b.cleanup()
			return nil, fmt.Errorf("%s printed no DevTools endpoint (%v): %s", bin, b.waitErr, strings.Join(tail, " | "))
		}
		u = v
	case <-time.After(30 * time.Second):
		b.close()
		return nil, fmt.Errorf("%s printed no DevTools endpoint within 30s", bin)
	case <-ctx.Done():
		b.close()
		return nil, ctx.Err()
	}
	actx, acancel := remote.NewAllocator(context.Background(), u, remote.NoModifyURL)
	bctx, bcancel := chromedp.NewContext(actx)
	b.ctx = bctx
	b.cancel = func() { bcancel(); acancel() }
	// Connect now, so that a browser that cannot be driven fails Start.
	if err := chromedp.Do(bctx); err != nil {
		b.close()
		return nil, fmt.Errorf("DevTools %s: %w", u, err)
	}
	return b, nil
}

// kill kills the browser's process group (and any process still using its
// profile) without waiting.
func (b *chromium) kill() {
	b.killMu.Lock()
	defer b.killMu.Unlock()
	_ = syscall.Kill(-b.cmd.Process.Pid, syscall.SIGKILL)
	killProfile(b.dir)
}

// close kills the browser, waits for it and every process of its profile
// to be gone, ends the DevTools connection and removes the profile.
func (b *chromium) close() error {
	b.kill()
	<-b.exited
	// A process outside the group (none is expected) would keep stderr
	// open: closing our end ends the reader regardless.
	var left int
	for range 100 {
		if left = killProfile(b.dir); left == 0 {
			break
		}
		time.Sleep(10 * time.Millisecond) // a killed process takes a moment to leave /proc
	}
	b.stderr.Close()
	<-b.reader
	if b.cancel != nil {
		b.cancel()
	}
	if err := os.RemoveAll(b.dir); err != nil {
		return err
	}
	if left > 0 {
		return fmt.Errorf("browser: %d chromium processes of %s survived SIGKILL", left, b.dir)
	}
	return nil
}

// cleanup releases what a browser that never started holds.
func (b *chromium) cleanup() {
	b.stderr.Close()
	<-b.reader
	os.RemoveAll(b.dir)
}

// killProfile SIGKILLs every live process whose command line uses dir as its
// profile and returns how many it found.
func killProfile(dir string) int {
	want := "--user-data-dir=" + dir
	n := 0
	for _, pr := range procs() {
		if pr.state == 'Z' {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pr.pid), "cmdline"))
		if err != nil {
			continue
		}
		for _, arg := range strings.Split(string(cmdline), "\x00") {
			if arg == want {
				_ = syscall.Kill(pr.pid, syscall.SIGKILL)
				n++
				break
			}
		}
	}
	return n
}

// proc is what /proc/PID/stat says of one process.
type proc struct {
	pid, ppid, pgrp int
	state           byte
	cpu             time.Duration // utime+stime+cutime+cstime
	rss             int64         // bytes
}

// procs reads every process of /proc (those that vanish meanwhile are
// skipped).
func procs() []proc {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var out []proc
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		if pr, err := parseStat(pid, string(b)); err == nil {
			out = append(out, pr)
		}
	}
	return out
}

var pageSize = int64(os.Getpagesize())

// parseStat parses /proc/PID/stat (proc(5)): after the command in
// parentheses, state (3), ppid (4), pgrp (5), utime (14), stime (15),
// cutime (16), cstime (17) in USER_HZ ticks (100 per second for /proc) and
// rss (24) in pages.
func parseStat(pid int, text string) (proc, error) {
	i := strings.LastIndexByte(text, ')')
	if i < 0 {
		return proc{}, errors.New("no command field")
	}
	f := strings.Fields(text[i+1:])
	if len(f) < 22 {
		return proc{}, fmt.Errorf("%d fields", len(f))
	}
	n := func(k int) int64 { // field k of proc(5), k ≥ 3
		v, _ := strconv.ParseInt(f[k-3], 10, 64)
		return v
	}
	ticks := n(14) + n(15) + n(16) + n(17)
	return proc{
		pid: pid, ppid: int(n(4)), pgrp: int(n(5)), state: f[0][0],
		cpu: time.Duration(ticks) * 10 * time.Millisecond,
		rss: n(24) * pageSize,
	}, nil
}

// descendants returns the processes in ps that are root or descend from it,
// or are in the process group root leads (a child whose parent died is
// reparented but stays in the group).
func descendants(ps []proc, root int) []proc {
	byPid := make(map[int]proc, len(ps))
	for _, p := range ps {
		byPid[p.pid] = p
	}
	var out []proc
	for _, p := range ps {
		if p.pgrp == root {
			out = append(out, p)
			continue
		}
		for q, hops := p, 0; hops < 64; hops++ {
			if q.pid == root {
				out = append(out, p)
				break
			}
			next, ok := byPid[q.ppid]
			if !ok {
				break
			}
			q = next
		}
	}
	return out
}

// usage sums CPU and RSS over every live process of the pool's browsers.
func (p *Pool) usage() (cpu time.Duration, rss int64, err error) {
	ps, err := p.processes()
	for _, q := range ps {
		cpu += q.cpu
		rss += q.rss
	}
	return cpu, rss, err
}

// processes returns the live processes of the pool's browsers.
func (p *Pool) processes() ([]proc, error) {
	p.mu.Lock()
	bs := append([]*chromium(nil), p.browsers...)
	p.mu.Unlock()
	if len(bs) == 0 {
		return nil, errors.New("browser: no browser running")
	}
	ps := procs()
	if ps == nil {
		return nil, errors.New("browser: cannot read /proc")
	}
	var out []proc
	for _, b := range bs {
		select {
		case <-b.exited:
			return nil, fmt.Errorf("browser: chromium (pid %d) has exited: %v", b.cmd.Process.Pid, b.waitErr)
		default:
		}
		for _, q := range descendants(ps, b.cmd.Process.Pid) {
			if q.state != 'Z' {
				out = append(out, q)
			}
		}
	}
	return out, nil
}

// CPU returns the user+sys CPU time every Chromium process of the pool has
// used so far (their reaped children's included), from /proc. A process
// that exited and was reaped by a process outside the pool (none is
// expected) is not counted.
func (p *Pool) CPU() (time.Duration, error) {
	cpu, _, err := p.usage()
	return cpu, err
}

// RSS returns the resident memory of every Chromium process of the pool, in
// bytes, summed: pages shared between processes (the binary, shared
// memory) count once per process, so this overstates the pool's footprint
// several times over (PSS does not).
func (p *Pool) RSS() (int64, error) {
	_, rss, err := p.usage()
	return rss, err
}

// PSS returns the proportional set size of every Chromium process of the
// pool, in bytes, summed (/proc/PID/smaps_rollup): each shared page is
// divided among the processes that map it, so the sum is the pool's
// memory. Reading it walks every mapping: call it between measurements,
// not during one.
func (p *Pool) PSS() (int64, error) {
	ps, err := p.processes()
	if err != nil {
		return 0, err
	}
	var sum int64
	for _, q := range ps {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(q.pid) + "/smaps_rollup")
		if err != nil {
			continue // exited meanwhile
		}
		for line := range strings.SplitSeq(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "Pss:"); ok {
				kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
				if err != nil {
					return 0, fmt.Errorf("browser: /proc/%d/smaps_rollup: %q", q.pid, line)
				}
				sum += kb << 10
				break
			}
		}
	}
	return sum, nil
}
