package bench

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"time"

	"pushbench/servers"
	"pushbench/webhttp"
)

// AgentSetup is how a run spreads its clients over agents: the flags
// --agents, --agents-file, --agent-token and --local-share of run and
// compare.
type AgentSetup struct {
	Agents     []string
	Token      string
	LocalShare int
	// ServerHost is where the server child listens (--server-host).
	ServerHost string
}

// AddAgentFlags defines the agent flags on fs; after parsing, the
// returned function reads --agents-file and checks them.
func AddAgentFlags(fs *flag.FlagSet) func() (AgentSetup, error) {
	list := fs.String("agents", "", "load-generator agents (`pushbench agent`), host:port, comma-separated: the clients are split over them (and --local-share)")
	file := fs.String("agents-file", "", "file of agents, one host:port per line (# comments), added to --agents")
	token := fs.String("agent-token", "", "bearer token of the agents (their --token)")
	local := fs.Int("local-share", 0, "with agents: clients this process runs itself (the rest are split evenly over the agents)")
	host := fs.String("server-host", "", "IP address of this machine the server child listens on, for agents on other hosts (default 127.0.0.1; beyond loopback the child gets a fresh token)")
	return func() (AgentSetup, error) {
		var b []byte
		if *file != "" {
			var err error
			if b, err = os.ReadFile(*file); err != nil {
				return AgentSetup{}, fmt.Errorf("--agents-file: %w", err)
			}
		}
		addrs, err := ParseAgents(*list, b)
		switch {
		case err != nil:
			return AgentSetup{}, fmt.Errorf("--agents: %w", err)
		case len(addrs) == 0 && (*local != 0 || *token != ""):
			return AgentSetup{}, errors.New("--local-share and --agent-token apply with --agents or --agents-file")
		case *local < 0:
			return AgentSetup{}, fmt.Errorf("--local-share %d: must not be negative", *local)
		}
		return AgentSetup{Agents: addrs, Token: *token, LocalShare: *local, ServerHost: *host}, nil
	}
}

// Check asks every agent, before any load, whether it can take its share
// of clients (the largest cell's); one line wrapping ErrScenario if not.
func (a AgentSetup) Check(ctx context.Context, clients int) error {
	if len(a.Agents) == 0 {
		return nil
	}
	shares, err := Shares(clients, a.LocalShare, len(a.Agents))
	if err != nil {
		return err
	}
	return CheckAgents(ctx, a.Agents, a.Token, shares)
}

// CheckCell refuses, before any load, a cell the agents cannot run: a
// workload, client kind or network they do not take, or fewer clients
// than load generators.
func (a AgentSetup) CheckCell(s Scenario) error {
	if len(a.Agents) == 0 {
		return nil
	}
	if err := agentScenario(s); err != nil {
		return err
	}
	if a.ServerHost != "" && !webhttp.IsLoopbackHost(a.ServerHost) && s.HTTP.TLS {
		return fmt.Errorf("%w: --server-host %s with TLS: agents on other hosts could not verify the child's self-signed certificate", ErrScenario, a.ServerHost)
	}
	_, err := Shares(s.Clients, a.LocalShare, len(a.Agents))
	return err
}

// Apply sets the agents of a run's options.
func (a AgentSetup) Apply(o *Options) {
	o.Agents, o.AgentToken, o.LocalShare, o.ServerHost = a.Agents, a.Token, a.LocalShare, a.ServerHost
}

// UsageError marks bad command-line input to AgentMain.
type UsageError struct{ Err error }

func (u UsageError) Error() string { return u.Err.Error() }
func (u UsageError) Unwrap() error { return u.Err }

// agentShutdown bounds the agent's shutdown: its session's clients stop
// within clientStopBound.
const agentShutdown = clientStopBound + time.Second

// AgentMain is `pushbench agent`: serve the agent protocol on --listen
// until ctx ends. Bad flags are a UsageError.
func AgentMain(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("agent", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:7700", "address to serve the agent protocol on")
	token := fs.String("token", "", fmt.Sprintf("bearer `token` every request must carry (at least %d characters); required when --listen is not loopback", servers.MinTokenLen))
	skew := fs.Duration("clock-skew", 0, "test only: make this agent's clock read this much ahead (its measured offset must undo it)")
	fs.SetOutput(io.Discard)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: pushbench agent [--listen ADDR] [--token T]")
		fmt.Fprintln(fs.Output(), "Runs shares of cells for a coordinator (pushbench run|compare --agents ADDR,...): it connects its")
		fmt.Fprintln(fs.Output(), "clients to the server, measures its clock offset to it, and returns its counts and histogram,")
		fmt.Fprintln(fs.Output(), "which the coordinator merges exactly (docs/agents.md). One cell at a time.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.SetOutput(stdout)
			fs.Usage()
			return err
		}
		return UsageError{fmt.Errorf("agent: %w", err)}
	}
	if fs.NArg() > 0 {
		return UsageError{fmt.Errorf("agent: unexpected argument %q", fs.Arg(0))}
	}
	host, _, err := net.SplitHostPort(*listen)
	switch {
	case err != nil:
		return UsageError{fmt.Errorf("agent: --listen %q: want host:port", *listen)}
	case *token != "" && len(*token) < servers.MinTokenLen:
		return UsageError{fmt.Errorf("agent: --token: %d characters, want at least %d", len(*token), servers.MinTokenLen)}
	case !webhttp.IsLoopbackHost(host) && *token == "":
		return UsageError{fmt.Errorf("agent: --listen %s is not loopback: give --token (at least %d characters), or anyone who reaches the port can make this machine open connections", *listen, servers.MinTokenLen)}
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return UsageError{fmt.Errorf("agent: %w", err)}
	}
	a := NewAgent(AgentConfig{Token: *token, ClockSkew: *skew})
	// Idle connections end: one refused request must not hold a socket.
	hs := &http.Server{Handler: a, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: time.Minute}
	served := make(chan error, 1)
	go func() { served <- hs.Serve(ln) }()
	fmt.Fprintf(stdout, "pushbench agent: listening on http://%s (version %s)\n", ln.Addr(), a.cfg.Version)
	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-served:
		served = nil
	}
	closeErr := a.Close() // ends a session in progress, which ends its requests
	sctx, cancel := context.WithTimeout(context.Background(), agentShutdown)
	defer cancel()
	shutErr := hs.Shutdown(sctx)
	if served != nil {
		if err := <-served; !errors.Is(err, http.ErrServerClosed) {
			serveErr = err
		}
	}
	fmt.Fprintf(stderr, "pushbench agent: stopped after %d sessions, %d requests refused for their token\n", a.sessions.Load(), a.unauthorized.Load())
	return errors.Join(serveErr, closeErr, shutErr)
}
