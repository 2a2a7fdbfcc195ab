package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"

	"pushbench/results"
)

func TestAgentBadFlags(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--listen", "192.0.2.1:7700"}, "is not loopback: give --token"},
		{[]string{"--token", "short"}, "want at least 16"},
		{[]string{"--listen", "nohost"}, "want host:port"},
		{[]string{"--bogus"}, "bogus"},
		{[]string{"extra"}, "unexpected argument"},
	} {
		var stdout, stderr bytes.Buffer
		code := pushbench(context.Background(), append([]string{"agent"}, c.args...), &stdout, &stderr)
		if msg := stderr.String(); code != 2 || strings.Count(msg, "\n") != 1 || !strings.Contains(msg, c.want) {
			t.Errorf("agent %q: exit %d, stderr %q; want 2 and one line with %q", c.args, code, msg, c.want)
		}
	}
}

// TestRunWithAgent: `pushbench agent` serves, `pushbench run --agents`
// splits the clients between it and a local share, and result.json holds
// the merge with a row each.
func TestRunWithAgent(t *testing.T) {
	bin := pushbenchBinary(t)
	ctx, cancel := context.WithCancel(context.Background())
	listening := make(chan string, 1)
	w := &addrWriter{found: listening}
	agentDone := make(chan int, 1)
	go func() {
		agentDone <- pushbench(ctx, []string{"agent", "--listen", "127.0.0.1:0"}, w, new(bytes.Buffer))
	}()
	addr := <-listening
	out := filepath.Join(t.TempDir(), "run")
	var stdout, stderr bytes.Buffer
	err := runCmd(context.Background(), []string{
		"--server-cmd", bin, "--transport", "ws", "--clients", "10", "--rate", "50", "--quiet",
		"--warmup", "100ms", "--duration", "400ms", "--out", out, "--agents", addr, "--local-share", "4",
	}, &stdout, &stderr)
	cancel()
	if code := <-agentDone; code != 0 {
		t.Errorf("agent exit %d", code)
	}
	if err != nil {
		t.Fatalf("runCmd: %v\nstderr: %s", err, stderr.String())
	}
	recs, err := results.ReadRecords(filepath.Join(out, results.ResultFile))
	if err != nil || len(recs) != 1 {
		t.Fatalf("result.json: %v", err)
	}
	rec := recs[0]
	if rec.Expected != 200 || rec.Delivered != 200 || len(rec.Agents) != 2 || rec.Agents[0].Clients != 4 || rec.Agents[1].Clients != 6 || rec.Agents[1].Name != addr {
		t.Errorf("expected %d delivered %d, rows %+v", rec.Expected, rec.Delivered, rec.Agents)
	}
	if pids := childrenOf(bin); len(pids) > 0 {
		t.Errorf("server child still running: %v", pids)
	}
}

// addrWriter sends the address of the agent's "listening on" line.
type addrWriter struct{ found chan string }

func (w *addrWriter) Write(p []byte) (int, error) {
	if _, rest, ok := strings.Cut(string(p), "listening on http://"); ok {
		w.found <- strings.Fields(rest)[0]
	}
	return len(p), nil
}
