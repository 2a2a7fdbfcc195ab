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
		servers.Usage(w)
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
