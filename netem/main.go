package netem

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"
)

// ListenPrefix starts the one line Main prints on stdout once the emulator
// accepts connections; the address follows it.
const ListenPrefix = "pushbench emulate: listening on "

// UsageError is bad command-line input to Main: the CLI prints it on one
// line and exits with status 2.
type UsageError struct{ Err error }

func (u UsageError) Error() string { return u.Err.Error() }
func (u UsageError) Unwrap() error { return u.Err }

func usagef(format string, args ...any) error {
	return UsageError{fmt.Errorf(format, args...)}
}

// Main is `pushbench emulate`: it forwards --listen to --upstream through
// the profile given by --network and the overrides, prints ListenPrefix and
// the address once it accepts connections, and runs until ctx ends
// (SIGINT/SIGTERM in the CLI) or accepting fails. It returns flag.ErrHelp
// after printing the usage for -h, and a UsageError for bad flags.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("emulate", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	listen := fs.String("listen", "127.0.0.1:0", "listen `address` on loopback (port 0 picks a free one)")
	upstream := fs.String("upstream", "", "loopback `address` (host:port) of the server to forward to (required)")
	profile := AddFlags(fs)
	fs.Usage = func() {
		w := fs.Output()
		fmt.Fprintln(w, "usage: pushbench emulate --upstream HOST:PORT [--network NAME] [--rtt D] [--jitter D]")
		fmt.Fprintln(w, "                         [--down-bandwidth RATE] [--up-bandwidth RATE] [--listen ADDR]")
		fmt.Fprintln(w)
		fmt.Fprintln(w, "Forwards TCP connections from --listen to --upstream through an emulated")
		fmt.Fprintln(w, "network (Toxiproxy: delay, jitter and bandwidth per direction), until SIGINT or")
		fmt.Fprintln(w, "SIGTERM. Prints '"+ListenPrefix+"ADDR' once it accepts connections.")
		fmt.Fprintln(w, "Rates are in bits: bit, kbit, mbit, gbit (k = 1000). Profiles: docs/network.md.")
		fmt.Fprintln(w)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.SetOutput(stdout)
			fs.Usage()
			return flag.ErrHelp
		}
		return usagef("emulate: %v", err)
	}
	if fs.NArg() > 0 {
		return usagef("emulate: unexpected argument %q", fs.Arg(0))
	}
	if *upstream == "" {
		return usagef("emulate: --upstream HOST:PORT is required")
	}
	p, err := profile()
	if err != nil {
		return usagef("emulate: %v", err)
	}
	for _, a := range []struct{ flag, addr string }{{"listen", *listen}, {"upstream", *upstream}} {
		if err := CheckLoopback(a.addr); err != nil {
			return usagef("emulate: --%s %v", a.flag, err)
		}
	}

	e := New(*listen, *upstream, p)
	addr, err := e.Start()
	if err != nil {
		return err
	}
	defer e.Close()
	fmt.Fprintf(stderr, "pushbench emulate: %v (to %s)\n", p, *upstream)
	fmt.Fprintln(stdout, ListenPrefix+addr)
	select {
	case <-ctx.Done():
		return e.Close()
	case <-e.Done():
		e.Close()
		return e.Err()
	}
}

// AddFlags defines --network, --rtt, --jitter, --down-bandwidth and
// --up-bandwidth on fs and returns the function that resolves them, after
// fs.Parse, into a profile: the named one with the flags given overriding
// its values.
func AddFlags(fs *flag.FlagSet) func() (Profile, error) {
	network := fs.String("network", Loopback, "network profile between clients and server: "+strings.Join(Names(), ", ")+" (docs/network.md)")
	rtt := fs.Duration("rtt", 0, "round-trip time to add, split half per direction (whole ms; default: the profile's)")
	jitter := fs.Duration("jitter", 0, "how far the round trip may stray from --rtt either way (whole ms; default: the profile's)")
	down := fs.String("down-bandwidth", "", "server-to-client `rate` per connection, e.g. 10mbit, 512kbit, or unlimited (default: the profile's)")
	up := fs.String("up-bandwidth", "", "client-to-server `rate` per connection (default: the profile's)")
	return func() (Profile, error) {
		set := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
		var rttP, jitterP *time.Duration
		var downP, upP *string
		if set["rtt"] {
			rttP = rtt
		}
		if set["jitter"] {
			jitterP = jitter
		}
		if set["down-bandwidth"] {
			downP = down
		}
		if set["up-bandwidth"] {
			upP = up
		}
		return Resolve(*network, rttP, jitterP, downP, upP)
	}
}
