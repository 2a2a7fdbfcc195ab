package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"time"

	"pushbench/servers"
	"pushbench/webhttp"
)

// serveShutdownTimeout bounds the shutdown after SIGINT/SIGTERM: every held
// long poll, SSE stream and WebSocket must end within it.
const serveShutdownTimeout = time.Second

// serveCmd runs the event hub and every transport until ctx ends.
func serveCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	flags := servers.AddFlags(fs)
	tlsOn := fs.Bool("tls", false, "serve TLS 1.3 with a self-signed certificate generated at start (ALPN h2 and http/1.1; bytes are counted below TLS)")
	fs.Usage = func() {
		w := fs.Output()
		fmt.Fprintln(w, "usage: pushbench serve [flags]")
		fmt.Fprintln(w)
		fmt.Fprintln(w, "Serves the event hub over /poll, /longpoll, /sse, /ws and /tcp, clients' messages")
		fmt.Fprintln(w, "on /send, /ws and /tcp, /stats and /control/{start,stop,gc} (docs/protocol.md; a")
		fmt.Fprintln(w, "run is a broadcast, a chat or a game), until SIGINT or SIGTERM.")
		fmt.Fprintln(w, "Prints 'pushbench serve: listening on http://ADDR' (https:// with --tls) once")
		fmt.Fprintln(w, "it accepts connections. The polls and SSE also speak HTTP/2: h2 over TLS,")
		fmt.Fprintln(w, "h2c with prior knowledge without; WebSocket and /tcp are HTTP/1.1 upgrades.")
		fmt.Fprintln(w, "GET / is a live page that subscribes with every transport. WebSocket and /tcp")
		fmt.Fprintln(w, "accept same-origin pages only; --cors ORIGIN (repeatable, or *) allows others,")
		fmt.Fprintln(w, "with CORS headers and preflight on the polls, SSE, /send and /stats.")
		fmt.Fprintln(w, "--cut-every D ends every SSE stream, WebSocket and /tcp connection D after it")
		fmt.Fprintln(w, "opened, as a deploy would; clients resume from the ring (Last-Event-ID, since=).")
		fmt.Fprintln(w, "--sse-retry D starts every SSE stream with retry: <ms>, the time an EventSource")
		fmt.Fprintln(w, "waits before it reconnects (Chromium's default without it: 3000 ms).")
		fmt.Fprintln(w)
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args, stdout); err != nil {
		return err
	}
	cfg, run, err := flags()
	if err != nil {
		return usagef("serve: %v", err)
	}

	scheme := "http"
	if *tlsOn {
		c, err := webhttp.SelfSigned()
		if err != nil {
			return fmt.Errorf("serve: TLS certificate: %w", err)
		}
		cfg.TLS, scheme = &c, "https"
	}
	srv, err := servers.New(cfg)
	if err != nil {
		return usagef("serve: %v", err)
	}
	ln, err := srv.Listen()
	if err != nil {
		_ = srv.Shutdown(context.Background())
		return usagef("serve: %v", err) // a bad address or a port in use
	}
	if run.Rate > 0 {
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
