package proc

import (
	"context"
	"fmt"
	"io"
	"net/url"

	"pushbench/netem"
)

// emulatorChild is `pushbench emulate`: it prints a bare HOST:PORT, which
// stands for the server's URL seen through the emulator (its scheme is the
// server's: the emulator forwards TLS unchanged).
var emulatorChild = childKind{"emulator", netem.ListenPrefix, "http://"}

// EmulatorStarter puts a network emulator in front of the server at
// serverURL (http://HOST:PORT on loopback) with profile p. The returned
// Server's URL is the one clients dial instead of serverURL (the harness
// keeps using serverURL for /stats and /control); its PID is the
// emulator's, whose CPU is its own; Stop, Exited and Died work as for the
// server child ("emulator child (pid N) killed by signal 9 ...").
type EmulatorStarter func(ctx context.Context, serverURL string, p netem.Profile) (*Server, error)

// EmulatorLauncher starts `path emulate --listen 127.0.0.1:0 --upstream
// HOST:PORT --network NAME --rtt D --jitter D --down-bandwidth R
// --up-bandwidth R` as a child process, like ChildLauncher starts the
// server: its own process group, PR_SET_PDEATHSIG, the address read from
// the line it prints, later output copied to log (nil: discarded). Every
// value of p is passed explicitly, so the child applies exactly p whatever
// overrides made it.
func EmulatorLauncher(path string, log io.Writer) EmulatorStarter {
	if log == nil {
		log = io.Discard
	}
	return func(ctx context.Context, serverURL string, p netem.Profile) (*Server, error) {
		if err := p.Validate(); err != nil {
			return nil, fmt.Errorf("emulator: %w", err)
		}
		if err := CheckLoopback(ctx, serverURL); err != nil {
			return nil, fmt.Errorf("emulator: %w", err)
		}
		u, err := url.Parse(serverURL)
		if err != nil {
			return nil, err
		}
		name := p.Name
		if _, err := netem.Lookup(name); err != nil {
			name = netem.Loopback // every value follows explicitly
		}
		args := []string{"emulate", "--listen", "127.0.0.1:0", "--upstream", u.Host,
			"--network", name, "--rtt", p.RTT.String(), "--jitter", p.Jitter.String(),
			"--down-bandwidth", netem.FormatRate(p.DownBps), "--up-bandwidth", netem.FormatRate(p.UpBps)}
		kind := emulatorChild
		kind.scheme = u.Scheme + "://"
		return startChild(ctx, kind, path, args, log, "")
	}
}
