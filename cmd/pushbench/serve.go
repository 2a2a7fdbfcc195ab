package main

import (
	"context"
	"crypto/tls"
	"flag"
	"fmt"
	"io"
	"math"
	"time"

	"pushbench/event"
	"pushbench/servers"
	"pushbench/webhttp"
)

// serveShutdownTimeout bounds the shutdown after SIGINT/SIGTERM: every held
// long poll, SSE stream and WebSocket must end within it.
const serveShutdownTimeout = time.Second

// serveCmd runs the event hub and every transport until ctx ends.
func serveCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	addr := fs.String("addr", servers.DefaultAddr, "listen `address` (host:port; port 0 picks a free one)")
	rate := fs.Float64("rate", 0, "events per second; 0 = idle until POST /control/start")
	payload := fs.Int("payload", servers.DefaultPayload, fmt.Sprintf("encoded event size in `bytes` (%d to %d)", event.MinSize, event.MaxSize))
	ring := fs.Int("ring", servers.DefaultRing, "events kept for polls and resumes (K)")
	hold := fs.Duration("hold", servers.DefaultHold, "longest hold of a long poll")
	events := fs.Uint64("events", 0, "stop publishing after this many events; 0 = until stopped (needs --rate)")
	schedule := fs.String("schedule", servers.ScheduleConstant, "event spacing: constant or poisson (needs --rate)")
	seed := fs.Uint64("seed", 0, "seed of the poisson schedule; 0 = fixed default (needs --rate)")
	spin := fs.Duration("spin", servers.DefaultSpin, "spin this long before each event's due time instead of sleeping (0 = never)")
	writeTimeout := fs.Duration("write-timeout", servers.DefaultWriteTimeout, "deadline of every write to a client; a missed one cuts the client off")
	queue := fs.Int("queue", servers.DefaultWSQueue, "WebSocket queue per connection in messages; full = client cut off")
	tlsOn := fs.Bool("tls", false, "serve TLS 1.3 with a self-signed certificate generated at start (ALPN h2 and http/1.1; bytes are counted below TLS)")
	response := fs.String("response-headers", webhttp.ResponseMinimal, "response header `profile`: minimal (what the server sends by itself) or deployment (what a reverse proxy adds; docs/http.md)")
	compress := fs.Bool("compress", false, "gzip poll answers and SSE streams, permessage-deflate for WebSocket, for clients that offer them")
	pad := fs.String("pad", event.PadX.String(), "event `padding`: x (compresses to nothing) or text (compresses like a real message)")
	fs.Usage = func() {
		w := fs.Output()
		fmt.Fprintln(w, "usage: pushbench serve [flags]")
		fmt.Fprintln(w)
		fmt.Fprintln(w, "Serves the event hub over /poll, /longpoll, /sse, /ws and /tcp, with /stats")
		fmt.Fprintln(w, "and /control/{start,stop,gc} (docs/protocol.md), until SIGINT or SIGTERM.")
		fmt.Fprintln(w, "Prints 'pushbench serve: listening on http://ADDR' (https:// with --tls) once")
		fmt.Fprintln(w, "it accepts connections. The polls and SSE also speak HTTP/2: h2 over TLS,")
		fmt.Fprintln(w, "h2c with prior knowledge without; WebSocket and /tcp are HTTP/1.1 upgrades.")
		fmt.Fprintln(w)
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args, stdout); err != nil {
		return err
	}

	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	switch {
	case math.IsNaN(*rate) || math.IsInf(*rate, 0) || *rate < 0:
		return usagef("serve: --rate %v: want 0 (idle) or a positive number of events per second", *rate)
	case *rate == 0 && (set["events"] || set["schedule"] || set["seed"]):
		return usagef("serve: --events, --schedule and --seed shape the run --rate starts; with --rate 0 pass them to POST /control/start")
	case *hold <= 0:
		return usagef("serve: --hold %v: must be positive", *hold)
	case *writeTimeout <= 0:
		return usagef("serve: --write-timeout %v: must be positive", *writeTimeout)
	case *queue < 1:
		return usagef("serve: --queue %d: must be at least 1", *queue)
	case *ring < 1 || *ring > servers.MaxRing:
		return usagef("serve: --ring %d: must be between 1 and %d", *ring, servers.MaxRing)
	case *spin < 0:
		return usagef("serve: --spin %v: must not be negative", *spin)
	}
	if err := event.CheckSize(*payload); err != nil {
		return usagef("serve: --payload: %v", err)
	}
	if *response != webhttp.ResponseMinimal && *response != webhttp.ResponseDeployment {
		return usagef("serve: --response-headers %q: want %s or %s", *response, webhttp.ResponseMinimal, webhttp.ResponseDeployment)
	}
	padding, err := event.ParsePad(*pad)
	if err != nil {
		return usagef("serve: --%v", err)
	}
	run := servers.PublishConfig{Rate: *rate, Payload: *payload, Events: *events, Schedule: *schedule, Seed: *seed, Spin: *spin}
	if *rate > 0 {
		if err := run.Validate(); err != nil {
			return usagef("serve: %v", err)
		}
	}

	var cert *tls.Certificate
	scheme := "http"
	if *tlsOn {
		c, err := webhttp.SelfSigned()
		if err != nil {
			return fmt.Errorf("serve: TLS certificate: %w", err)
		}
		cert, scheme = &c, "https"
	}
	srv, err := servers.New(servers.Config{
		Addr:         *addr,
		Ring:         *ring,
		Hold:         *hold,
		WriteTimeout: *writeTimeout,
		WSQueue:      *queue,
		Payload:      *payload,
		Spin:         *spin,
		TLS:          cert,
		Response:     *response,
		Compress:     *compress,
		TextPad:      padding == event.PadText,
	})
	if err != nil {
		return usagef("serve: %v", err)
	}
	ln, err := srv.Listen()
	if err != nil {
		_ = srv.Shutdown(context.Background())
		return usagef("serve: %v", err) // a bad address or a port in use
	}
	if *rate > 0 {
		if err := srv.StartPublisher(run); err != nil {
			ln.Close()
			_ = srv.Shutdown(context.Background())
			return fmt.Errorf("start publisher: %w", err)
		}
	}

	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	fmt.Fprintf(stdout, "pushbench serve: listening on %s://%s\n", scheme, ln.Addr())

	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-served:
		served = nil
	}
	sctx, cancel := context.WithTimeout(context.Background(), serveShutdownTimeout)
	defer cancel()
	shutErr := srv.Shutdown(sctx)
	if served != nil {
		serveErr = <-served
	}
	st := srv.Stats()
	fmt.Fprintf(stderr, "pushbench serve: stopped; head seq %d, %d connections accepted, %d bytes out\n",
		st.Head, st.Listener.Accepted, st.Listener.BytesOut)
	if serveErr != nil {
		return fmt.Errorf("serve on %s: %w", ln.Addr(), serveErr)
	}
	if shutErr != nil {
		return fmt.Errorf("not every stream ended within %v: %w", serveShutdownTimeout, shutErr)
	}
	return nil
}
