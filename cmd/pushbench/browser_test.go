package main

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"pushbench/browser"
	"pushbench/results"
)

// TestRunBrowserNoChromium: a browser run without a Chromium to run is one
// line naming the package to install, exit 2, before anything starts.
func TestRunBrowserNoChromium(t *testing.T) {
	for _, args := range [][]string{
		{"run", "--client", "browser", "--transport", "sse", "--clients", "2", "--chromium", "/nonexistent/chromium"},
		{"run", "--client", "browser", "--transport", "tcp"},
		{"run", "--client", "browser", "--transport", "ws", "--workload", "chat"},
		{"run", "--client", "browser", "--headers", "go"},
		{"run", "--browsers", "2"},
	} {
		var stdout, stderr bytes.Buffer
		code := pushbench(context.Background(), args, &stdout, &stderr)
		msg := stderr.String()
		if code != 2 || strings.Count(msg, "\n") != 1 {
			t.Errorf("%v: exit %d, stderr %q; want exit 2 and one line", args, code, msg)
		}
		if strings.Contains(strings.Join(args, " "), "nonexistent") && !strings.Contains(msg, "apt-get install chromium") {
			t.Errorf("%v: %q does not name the package to install", args, msg)
		}
	}
}

// TestRunBrowserInterrupted sends the pushbench binary SIGINT in the
// window of a browser run: it exits with a partial record, and no Chromium
// process (nor its profile) survives it.
func TestRunBrowserInterrupted(t *testing.T) {
	if _, err := browser.FindChromium(""); err != nil {
		t.Skipf("no chromium here: %v", err)
	}
	bin := pushbenchBinary(t)
	tmp := t.TempDir() // the Chromium profiles go here: only this run's
	out := filepath.Join(t.TempDir(), "run")
	cmd := exec.Command(bin, "run", "--client", "browser", "--transport", "sse", "--clients", "3",
		"--rate", "50", "--warmup", "0s", "--duration", "1m", "--out", out)
	cmd.Env = append(os.Environ(), "TMPDIR="+tmp)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var log strings.Builder
	sc := bufio.NewScanner(stderr)
	signalled := false
	for sc.Scan() {
		log.WriteString(sc.Text() + "\n")
		if !signalled && strings.Contains(sc.Text(), "pushbench run: window") {
			if chromiums(tmp) == 0 {
				t.Error("no chromium of this run found in its window")
			}
			_ = cmd.Process.Signal(syscall.SIGINT)
			signalled = true
		}
	}
	err = cmd.Wait()
	if !signalled {
		t.Fatalf("the run never reached its window: %v\n%s", err, log.String())
	}
	if code := cmd.ProcessState.ExitCode(); code == 0 {
		t.Errorf("exit 0 after SIGINT, want a failure\n%s", log.String())
	}
	recs, rerr := results.ReadRecords(filepath.Join(out, results.ResultFile))
	if rerr != nil || len(recs) != 1 || !recs[0].Partial || recs[0].Browser == nil {
		t.Errorf("result.json: %v, %d records; want one partial browser record", rerr, len(recs))
	}
	if n := chromiums(tmp); n != 0 {
		t.Errorf("%d chromium processes of this run survive it", n)
	}
	left, _ := filepath.Glob(filepath.Join(tmp, "pushbench-chromium-*"))
	if len(left) != 0 {
		t.Errorf("profiles left behind: %v", left)
	}
	if pids := childrenOf(bin); len(pids) > 0 {
		t.Errorf("server child still running: %v", pids)
	}
}

// chromiums counts the live processes whose profile is under dir.
func chromiums(dir string) int {
	n := 0
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || !bytes.Contains(b, []byte("--user-data-dir="+dir)) {
			continue
		}
		if st, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat")); err == nil {
			if i := bytes.LastIndexByte(st, ')'); i > 0 && i+2 < len(st) && st[i+2] == 'Z' {
				continue // a zombie: dead, waiting for its parent
			}
		}
		n++
	}
	return n
}
