package bench

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestSourceAddrSpreading runs more clients than one source address has
// ports: in a network namespace of its own with a 100-port ephemeral
// range (90 usable per address), 200 WebSocket clients must spread over
// three 127.0.0.x addresses, and every one connects and receives. The
// test re-executes itself inside `unshare -n` (it needs root, unshare and
// ip); outside such a machine it skips.
func TestSourceAddrSpreading(t *testing.T) {
	if os.Getenv("PUSHBENCH_NETNS") == "1" {
		sourceAddrSpreading(t)
		return
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root for a network namespace")
	}
	for _, bin := range []string{"unshare", "ip"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("needs %s: %v", bin, err)
		}
	}
	if testing.Short() {
		t.Skip("runs 200 clients in a namespace")
	}
	script := `ip link set lo up && echo "40000 40099" > /proc/sys/net/ipv4/ip_local_port_range && exec "$0" -test.run '^TestSourceAddrSpreading$' -test.v`
	cmd := exec.Command("unshare", "-n", "sh", "-c", script, os.Args[0])
	cmd.Env = append(os.Environ(), "PUSHBENCH_NETNS=1")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS: TestSourceAddrSpreading") {
		t.Fatalf("in the namespace: %v\n%s", err, out)
	}
	for _, line := range strings.Split(string(out), "\n") {
		if strings.Contains(line, "source addresses") || strings.Contains(line, "c=200") {
			t.Log(strings.TrimSpace(line))
		}
	}
}

func sourceAddrSpreading(t *testing.T) {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil || strings.Join(strings.Fields(string(b)), " ") != "40000 40099" {
		t.Fatalf("port range %q (%v): not the namespace's", b, err)
	}
	s := small("ws")
	s.Clients = 200
	rec, _ := runInProcess(t, s)
	if rec.Scenario.SourceAddrs != 3 {
		t.Errorf("%d source addresses, want 3 (200 clients, 90 ports each)", rec.Scenario.SourceAddrs)
	}
	if rec.Delivered != rec.Expected || rec.Lost != 0 || rec.Expected == 0 {
		t.Errorf("delivered %d of %d, lost %d", rec.Delivered, rec.Expected, rec.Lost)
	}
	t.Logf("200 clients over %d source addresses in a 100-port range: %d of %d delivered", rec.Scenario.SourceAddrs, rec.Delivered, rec.Expected)
}
