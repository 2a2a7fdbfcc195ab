// Command pushbench measures how live data reaches browsers — short polling,
// long polling, Server-Sent Events and WebSockets — on the same event source.
//
//	pushbench serve    run the event hub and every transport
//	pushbench run      run one scenario against a server and record it
//	pushbench compare  run a matrix of scenarios and write a report
//	pushbench capacity find how many clients each transport holds
//	pushbench plot     redraw charts and summaries from saved results
//	pushbench emulate  forward TCP through an emulated network
//	pushbench agent    run shares of cells for a coordinator on other hosts
//
// Every subcommand is a function of (ctx, args, stdout, stderr) returning an
// error, so tests call them directly; main only maps errors to exit codes.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"pushbench/bench"
	"pushbench/netem"
)

// command is one subcommand.
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

func commands() []command {
	return []command{
		{"serve", "run the event hub and every transport", serveCmd},
		{"run", "run one scenario and write its result", runCmd},
		{"compare", "run a scenario matrix across transports and write a report", compareCmd},
		{"capacity", "find how many clients each transport holds under a latency objective", capacityCmd},
		{"plot", "redraw charts, summaries and index.html from a results folder", plotCmd},
		{"emulate", "forward TCP through an emulated network (RTT, jitter, bandwidth)", func(ctx context.Context, args []string, stdout, stderr io.Writer) error {
			return usageOf(netem.Main(ctx, args, stdout, stderr))
		}},
		{"agent", "run shares of cells for a coordinator (run or compare --agents)", func(ctx context.Context, args []string, stdout, stderr io.Writer) error {
			return usageOf(bench.AgentMain(ctx, args, stdout, stderr))
		}},
	}
}

// usageOf makes a package's usage error the CLI's (exit 2).
func usageOf(err error) error {
	if errors.As(err, new(netem.UsageError)) || errors.As(err, new(bench.UsageError)) {
		return usageError{err}
	}
	return err
}

// usageError marks bad command-line input: main prints it on one line and
// exits with status 2.
type usageError struct{ err error }

func (u usageError) Error() string { return u.err.Error() }
func (u usageError) Unwrap() error { return u.err }

// usagef returns a usageError.
func usagef(format string, args ...any) error {
	return usageError{fmt.Errorf(format, args...)}
}

// parseFlags parses args with fs, turning flag errors into usage errors. It
// returns flag.ErrHelp for -h/--help after printing the usage to stdout.
func parseFlags(fs *flag.FlagSet, args []string, stdout io.Writer) error {
	fs.SetOutput(io.Discard)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.SetOutput(stdout)
			fs.Usage()
			return flag.ErrHelp
		}
		return usageError{fmt.Errorf("%s: %w", fs.Name(), err)}
	}
	if fs.NArg() > 0 && fs.Name() != "plot" {
		return usagef("%s: unexpected argument %q", fs.Name(), fs.Arg(0))
	}
	return nil
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(pushbench(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// pushbench runs one subcommand and returns the process exit status.
func pushbench(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		printUsage(stdout)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	for _, c := range commands() {
		if c.name != args[0] {
			continue
		}
		err := c.run(ctx, args[1:], stdout, stderr)
		switch {
		case err == nil, errors.Is(err, flag.ErrHelp):
			return 0
		case errors.As(err, new(usageError)):
			fmt.Fprintf(stderr, "pushbench %s\n", err)
			return 2
		default:
			fmt.Fprintf(stderr, "pushbench %s: %v\n", c.name, err)
			return 1
		}
	}
	fmt.Fprintf(stderr, "pushbench: unknown command %q (try pushbench --help)\n", args[0])
	return 2
}

func printUsage(w io.Writer) {
	fmt.Fprintln(w, "usage: pushbench <command> [flags]   (pushbench <command> --help for its flags)")
	fmt.Fprintln(w)
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-8s %s\n", c.name, c.summary)
	}
}
