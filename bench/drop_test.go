package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"pushbench/proc"
	"pushbench/servers"
	"pushbench/transport"
)

// dropEvents wraps a server's handler so that long-poll answers lose
// every event whose seq is a multiple of every: a server that silently
// drops events.
func dropEvents(next http.Handler, every uint64) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/longpoll" {
			next.ServeHTTP(w, r)
			return
		}
		rec := httptest.NewRecorder()
		next.ServeHTTP(rec, r)
		body := rec.Body.Bytes()
		var msgs []json.RawMessage
		if rec.Code == http.StatusOK && json.Unmarshal(body, &msgs) == nil {
			kept := msgs[:0]
			for _, m := range msgs {
				var e struct {
					Seq uint64 `json:"seq"`
				}
				if json.Unmarshal(m, &e) == nil && e.Seq != 0 && e.Seq%every == 0 {
					continue
				}
				kept = append(kept, m)
			}
			parts := make([][]byte, len(kept))
			for i, m := range kept {
				parts[i] = m
			}
			body = append(append([]byte("["), bytes.Join(parts, []byte(","))...), ']')
		}
		for k, v := range rec.Header() {
			if k != "Content-Length" {
				w.Header()[k] = v
			}
		}
		w.WriteHeader(rec.Code)
		_, _ = w.Write(body)
	})
}

// droppingLauncher starts an in-process server behind dropEvents.
func droppingLauncher(every uint64) proc.Launcher {
	return func(ctx context.Context, cfg proc.ServerConfig) (*proc.Server, error) {
		srv, err := servers.New(servers.Config{Addr: "127.0.0.1:0", Ring: cfg.Ring, Hold: cfg.Hold, Payload: cfg.Payload})
		if err != nil {
			return nil, err
		}
		ln, err := srv.Listen()
		if err != nil {
			_ = srv.Shutdown(context.Background())
			return nil, err
		}
		hs := &http.Server{Handler: dropEvents(srv.Handler(), every), ReadHeaderTimeout: 10 * time.Second}
		served := make(chan struct{})
		go func() { _ = hs.Serve(ln); close(served) }()
		stop := func() error {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			err := srv.Shutdown(ctx)
			_ = hs.Close()
			<-served
			return err
		}
		return &proc.Server{URL: "http://" + ln.Addr().String(), Stop: stop}, nil
	}
}

// TestNoLossFailsThroughTheHarness: a server that drops every 7th event
// fails no_loss through the whole harness, with exactly the deliveries it
// dropped counted as lost.
func TestNoLossFailsThroughTheHarness(t *testing.T) {
	const every = 7
	s := small(transport.LongPoll) // held polls: the server confirms them without the listener's counts
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rec, _, err := Run(ctx, s, Options{Launch: droppingLauncher(every)})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	hi := rec.Publisher.LastSeq
	lo := hi - rec.Events + 1
	var dropped uint64
	for seq := lo; seq <= hi; seq++ {
		if seq%every == 0 {
			dropped++
		}
	}
	if want := dropped * uint64(s.Clients); rec.Lost != want || rec.Delivered+rec.Lost != rec.Expected {
		t.Errorf("lost %d of %d expected (%d delivered); want %d: the %d dropped events of seqs %d..%d × %d clients",
			rec.Lost, rec.Expected, rec.Delivered, want, dropped, lo, hi, s.Clients)
	}
	if c := rec.Checks["no_loss"]; c.OK || !strings.Contains(c.Detail, "lost ") {
		t.Errorf("no_loss = %+v, want failed", c)
	}
	if c := rec.Checks["histogram_range"]; !c.OK {
		t.Errorf("histogram_range failed: %s", c.Detail)
	}
}
