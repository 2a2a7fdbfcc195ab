package bench

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"pushbench/servers"
)

// TestServerToken runs against a server given by URL that asks for a
// bearer token on /control/*: with Options.Token the run works, without it
// the run stops at the first control request with the server's reason.
func TestServerToken(t *testing.T) {
	const token = "a-token-of-twenty-chars"
	url := startServer(t, servers.Config{Token: token})
	s := small("ws")
	s.Clients = 5
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, _, err := Run(ctx, s, Options{Server: url}); err == nil || !strings.Contains(err.Error(), "bearer token") {
		t.Errorf("without the token: %v, want the server's 401 reason", err)
	}
	rec, _, err := Run(ctx, s, Options{Server: url, Token: token})
	if err != nil || rec.Delivered != rec.Expected || rec.Expected == 0 {
		t.Fatalf("with the token: %v, %+v", err, rec)
	}
}

// startServer serves a server with cfg on a loopback port until the test
// ends and returns its URL.
func startServer(t *testing.T, cfg servers.Config) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Addr = ln.Addr().String()
	srv, err := servers.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Error(err)
		}
		<-served
	})
	return "http://" + ln.Addr().String()
}
