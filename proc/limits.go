package proc

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// ErrLimits marks a scenario that does not fit this machine's limits; the
// message names how many clients would fit.
var ErrLimits = errors.New("does not fit the machine's limits")

// Limits are the resources a run needs, checked before anything starts.
type Limits struct {
	OpenFiles    uint64   // RLIMIT_NOFILE soft limit after raising it to the hard limit
	FilesNeeded  uint64   // descriptors this process needs
	PortsPerAddr int      // usable ephemeral ports per source address
	SourceAddrs  []net.IP // 127.0.0.x addresses the clients dial from (nil: the default)
}

// Slack for descriptors and ports the harness uses beside its clients
// (control connection, child pipes, histograms written to disk, the Go
// runtime's own) and ports left free for TIME_WAIT and other programs.
const (
	fdSlack = 128
	// portReserve is the share of the ephemeral range left unused.
	portReserve = 0.1
	// maxSourceAddrs: 127.0.0.1 .. 127.0.0.254.
	maxSourceAddrs = 254
)

// CheckLimits reports, before any load, whether n clients fit this
// machine's open-files limit and ephemeral ports (a child server on
// 127.0.0.1), with the number that does fit when they do not. Run checks
// the same for every scenario; this lets a caller refuse a long plan up
// front.
func CheckLimits(n int) error {
	_, err := PlanLimits(n, false, false)
	return err
}

// PlanLimits raises the open-files soft limit to the hard limit and checks
// that n clients fit: one descriptor per client in this process (twice
// when the server shares the process), and ephemeral ports per source
// address, spreading the clients over 127.0.0.x when one address is not
// enough. A child server inherits the raised limit. ipv6 reports whether
// the server listens on ::1, where only one source address is available.
func PlanLimits(n int, sharedProcess, ipv6 bool) (Limits, error) {
	var l Limits
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return l, fmt.Errorf("open files limit: %w", err)
	}
	// The Go runtime already raised the soft limit at start-up, but then
	// restores the original one in children; an explicit syscall.Setrlimit
	// makes os/exec pass the raised limit on to the child server as well.
	rl.Cur = rl.Max
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return l, fmt.Errorf("raise open files limit to %d: %w", rl.Max, err)
	}
	l.OpenFiles = rl.Cur
	perClient := uint64(1)
	if sharedProcess {
		perClient = 2
	}
	l.FilesNeeded = uint64(n)*perClient + fdSlack
	if l.FilesNeeded > l.OpenFiles {
		fit := 0
		if l.OpenFiles > fdSlack {
			fit = int((l.OpenFiles - fdSlack) / perClient)
		}
		return l, fmt.Errorf("%w: %d clients need about %d open files, the limit is %d (hard): at most %d clients fit (raise it with ulimit -Hn)",
			ErrLimits, n, l.FilesNeeded, l.OpenFiles, fit)
	}

	ports, err := ephemeralPorts()
	if err != nil {
		return l, err
	}
	l.PortsPerAddr = usablePorts(ports)
	addrs := (n + l.PortsPerAddr - 1) / l.PortsPerAddr
	maxAddrs := maxSourceAddrs
	if ipv6 {
		maxAddrs = 1
	}
	if addrs > maxAddrs {
		return l, fmt.Errorf("%w: %d clients need %d ephemeral ports; %d source address(es) × %d ports fit at most %d clients",
			ErrLimits, n, n, maxAddrs, l.PortsPerAddr, maxAddrs*l.PortsPerAddr)
	}
	if addrs > 1 {
		for i := range addrs {
			l.SourceAddrs = append(l.SourceAddrs, net.IPv4(127, 0, 0, byte(1+i)))
		}
	}
	return l, nil
}

// SourceAddr is the address client i dials from (nil: the default).
func (l Limits) SourceAddr(i int) *net.TCPAddr {
	if len(l.SourceAddrs) == 0 {
		return nil
	}
	return &net.TCPAddr{IP: l.SourceAddrs[(i/l.PortsPerAddr)%len(l.SourceAddrs)]}
}

// usablePorts is how many of one source address's ports a run may use:
// the ephemeral range less portReserve.
func usablePorts(ports int) int { return max(1, int(float64(ports)*(1-portReserve))) }

// ephemeralPorts is the size of the local port range that connect() and
// bind(port 0) draw from.
func ephemeralPorts() (int, error) {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		// Not Linux: assume the IANA range.
		return 65535 - 49152 + 1, nil
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return 0, fmt.Errorf("ip_local_port_range: unexpected %q", strings.TrimSpace(string(b)))
	}
	lo, err1 := strconv.Atoi(f[0])
	hi, err2 := strconv.Atoi(f[1])
	if err1 != nil || err2 != nil || hi < lo {
		return 0, fmt.Errorf("ip_local_port_range: unexpected %q", strings.TrimSpace(string(b)))
	}
	return hi - lo + 1, nil
}

// Ceiling is the most clients one run can hold on this machine, and which
// limit sets it: the open-files hard limit (the load generator holds one
// descriptor per client, and so does the server child per connection, each
// with its slack) or the ephemeral ports of every 127.0.0.x source address.
func Ceiling() (int, string, error) {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return 0, "", fmt.Errorf("open files limit: %w", err)
	}
	ports, err := ephemeralPorts()
	if err != nil {
		return 0, "", err
	}
	files := 0
	if rl.Max > fdSlack {
		files = int(min(rl.Max-fdSlack, 1<<31))
	}
	perAddr := usablePorts(ports)
	byPorts := maxSourceAddrs * perAddr
	if files <= byPorts {
		return files, fmt.Sprintf("the open-files hard limit, %d per process (one descriptor per connection in the load generator and in the server, less %d for the rest)", rl.Max, fdSlack), nil
	}
	return byPorts, fmt.Sprintf("the ephemeral ports: %d source addresses × %d usable ports", maxSourceAddrs, perAddr), nil
}
