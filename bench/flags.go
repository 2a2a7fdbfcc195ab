package bench

import (
	"flag"
	"fmt"
	"slices"
	"strings"

	"pushbench/netem"
	"pushbench/transport"
	"pushbench/webhttp"
)

// ScenarioFlags defines the flags of `pushbench run` that make its
// Scenario on fs: the transport and the load, the workload, the network and
// how HTTP is spoken. After parsing, the returned function builds the
// scenario with its defaults filled in (not yet validated: call Validate),
// or returns the first flag that makes no sense as a one-line error.
func ScenarioFlags(fs *flag.FlagSet) func() (Scenario, error) {
	def := DefaultScenario()
	s := def
	fs.StringVar(&s.Transport, "transport", def.Transport, "transport: "+transport.List())
	fs.IntVar(&s.Clients, "clients", def.Clients, "concurrent subscribers")
	fs.Float64Var(&s.Rate, "rate", def.Rate, "events per second (broadcast: open loop, published by the server)")
	fs.IntVar(&s.Payload, "payload", def.Payload, "bytes per encoded event (chat: per message; game: per snapshot)")
	fs.DurationVar(&s.Interval, "interval", def.Interval, "short-polling interval T")
	fs.DurationVar(&s.Duration, "duration", def.Duration, "measured window")
	fs.DurationVar(&s.Warmup, "warmup", def.Warmup, "warm-up before the window (not recorded)")
	fs.DurationVar(&s.Hold, "hold", 0, "long-poll hold timeout of the child server (0: its default)")
	fs.Float64Var(&s.ConnectRate, "connect-rate", def.ConnectRate, "new subscriptions per second in the connect phase")
	fs.DurationVar(&s.Drain, "drain", 0, "bound on the wait for in-flight events after the window (0: 5s, plus 2 intervals for shortpoll)")
	fs.StringVar(&s.Schedule, "schedule", def.Schedule, "event (and message) schedule: constant or poisson")
	fs.IntVar(&s.Ring, "ring", 0, "ring size K of the child server (0: 1024, or 4 poll intervals' worth of events for shortpoll)")
	fs.DurationVar(&s.Spin, "spin", def.Spin, "publisher spin before each event against late timer wake-ups (0: none; its CPU is not charged to the server)")
	fs.StringVar(&s.Pad, "pad", "", "event padding: x, or text that compresses like real data (default: text with --compress, else x)")
	fs.StringVar(&s.Workload, "workload", def.Workload, "broadcast (the server publishes to everyone), chat (clients send to their room) or game (a tick loop per room, client inputs)")
	fs.IntVar(&s.Room, "room", def.Room, "chat, game: clients per room")
	fs.Float64Var(&s.SendRate, "send-rate", def.SendRate, "chat: messages per second each client sends (open loop, on --schedule)")
	fs.Float64Var(&s.Tick, "tick", def.Tick, "game: snapshots per second per room")
	fs.Float64Var(&s.InputRate, "input-rate", def.InputRate, "game: inputs per second each client sends")
	fs.StringVar(&s.Client, "client", ClientGo, "who subscribes: go (the harness's clients) or browser (pages in headless Chromium: EventSource, WebSocket, fetch)")
	fs.IntVar(&s.Browsers, "browsers", 0, "client browser: Chromium processes (default: one per 6 pages, Chromium's HTTP/1.1 connections per host)")
	fs.StringVar(&s.Chromium, "chromium", "", "client browser: the Chromium binary (default: chromium, chromium-browser or google-chrome in PATH)")
	fs.DurationVar(&s.CutEvery, "cut-every", 0, "the server ends every stream (sse, ws, tcp) this long after it opened, to measure reconnects (0: never)")
	fs.DurationVar(&s.SSERetry, "sse-retry", 0, "the reconnection time the server's SSE streams announce (retry:; 0: none, the client's default)")
	network := netem.AddFlags(fs)
	httpOpts := webhttp.AddFlags(fs, def.HTTP)
	return func() (Scenario, error) {
		var err error
		if s.HTTP, err = httpOpts(); err != nil {
			return s, err
		}
		if s.Network, err = network(); err != nil {
			return s, err
		}
		set := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
		if s.Client == ClientBrowser && set["headers"] && s.HTTP.Headers != webhttp.HeadersBrowser {
			return s, fmt.Errorf("--headers %s: a browser sends its own headers (--client browser)", s.HTTP.Headers)
		}
		if s.Workload != WorkloadBroadcast && set["rate"] {
			return s, fmt.Errorf("--rate sets a broadcast's events per second; the %s workload takes --send-rate, --tick and --input-rate", s.Workload)
		}
		// A flag of another workload would be ignored: say so instead.
		for _, f := range []struct {
			name string
			for_ []string
		}{
			{"room", []string{WorkloadChat, WorkloadGame}},
			{"send-rate", []string{WorkloadChat}},
			{"tick", []string{WorkloadGame}},
			{"input-rate", []string{WorkloadGame}},
		} {
			if set[f.name] && !slices.Contains(f.for_, s.Workload) {
				what := "the " + strings.Join(f.for_, " and ") + " workload"
				if len(f.for_) > 1 {
					what += "s"
				}
				return s, fmt.Errorf("--%s applies to %s, not to %s", f.name, what, s.Workload)
			}
		}
		return s.WithDefaults(), nil
	}
}
