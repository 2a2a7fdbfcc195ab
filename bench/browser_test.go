package bench

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"pushbench/browser"
	"pushbench/webhttp"
)

func needChromium(t *testing.T) {
	t.Helper()
	if _, err := browser.FindChromium(""); err != nil {
		t.Skipf("no chromium here, browser runs were not tested: %v", err)
	}
}

// browserScenario is a short run of n pages in headless Chromium.
func browserScenario(tr string, n int) Scenario {
	s := small(tr)
	s.Client = ClientBrowser
	s.Clients = n
	s.Rate = 100
	s.Interval = 50 * time.Millisecond
	s.Warmup = 200 * time.Millisecond
	s.Duration = 500 * time.Millisecond
	s.Idle = 100 * time.Millisecond
	return s
}

// TestBrowserRun: on every transport a page can use, three pages in one
// browser receive every event of the window exactly once, in order; bytes
// and requests are the server listener's, and the browsers' memory is
// reported.
func TestBrowserRun(t *testing.T) {
	needChromium(t)
	for _, tr := range browser.Transports {
		t.Run(tr, func(t *testing.T) {
			rec, count := runInProcess(t, browserScenario(tr, 3))
			if want := uint64(50 * 3); rec.Expected != want || rec.Delivered != want || uint64(count) != want {
				t.Errorf("expected %d, delivered %d, histogram %d; want %d each", rec.Expected, rec.Delivered, count, want)
			}
			if rec.Lost != 0 || rec.Duplicates != 0 || rec.OutOfOrder != 0 {
				t.Errorf("lost %d, duplicates %d, out of order %d; want 0", rec.Lost, rec.Duplicates, rec.OutOfOrder)
			}
			b := rec.Browser
			if b == nil {
				t.Fatal("no browser block")
			}
			if b.Pages != 3 || b.Subscribed != 3 || b.Held != 0 || b.Failed != 0 || b.Browsers != 1 || b.OverLimit != 0 {
				t.Errorf("browser %+v: want 3 pages subscribed in 1 browser", *b)
			}
			if b.PSSBytes <= 0 || b.RSSBytes < b.PSSBytes || !strings.Contains(b.Version, "Chrom") {
				t.Errorf("browser memory PSS %d RSS %d, version %q", b.PSSBytes, b.RSSBytes, b.Version)
			}
			if rec.Wire.Source != "server" || rec.Wire.DownBytes == 0 || rec.Wire.DownBytes != rec.Wire.ServerOutBytes {
				t.Errorf("wire %+v: want the server listener's bytes", rec.Wire)
			}
			if rec.Scenario.Client != ClientBrowser || rec.Scenario.Headers != webhttp.HeadersBrowser || rec.Scenario.Browsers != 1 {
				t.Errorf("scenario client %q headers %q browsers %d", rec.Scenario.Client, rec.Scenario.Headers, rec.Scenario.Browsers)
			}
			for _, name := range []string{"pages_subscribed", "no_loss"} {
				if c, ok := rec.Checks[name]; !ok || !c.OK {
					t.Errorf("check %s: %+v", name, c)
				}
			}
		})
	}
}

// TestBrowserSixConnections: eight SSE pages in one browser over HTTP/1.1:
// the browser holds the seventh and eighth back, the run completes without
// them, and their events count as lost with the reason. Over HTTP/2 with
// TLS every page receives.
func TestBrowserSixConnections(t *testing.T) {
	needChromium(t)
	s := browserScenario("sse", 8)
	s.Browsers = 1
	rec, _ := runInProcess(t, s)
	b := rec.Browser
	if b == nil || b.Subscribed != 6 || b.Held != 2 || b.Failed != 0 || b.OverLimit != 2 {
		t.Fatalf("browser %+v: want 6 subscribed, 2 held, 2 over the limit", b)
	}
	if want := 2 * rec.Events; rec.Lost != want || rec.Delivered != 6*rec.Events {
		t.Errorf("lost %d, delivered %d; want the two held pages' %d lost and 6 × %d delivered", rec.Lost, rec.Delivered, want, rec.Events)
	}
	c := rec.Checks["pages_subscribed"]
	if c.OK || !strings.Contains(c.Detail, "6 of 8 pages subscribed") || !strings.Contains(c.Detail, "at most 6 HTTP/1.1 connections per host") {
		t.Errorf("pages_subscribed: %+v", c)
	}
	if c := rec.Checks["browser_connections"]; c.OK || c.Detail == "" {
		t.Errorf("browser_connections: %+v", c)
	}

	s.HTTP.HTTP, s.HTTP.TLS = webhttp.HTTP2, true
	rec, _ = runInProcess(t, s)
	if b := rec.Browser; b == nil || b.Subscribed != 8 || b.Held != 0 || b.OverLimit != 0 || rec.Lost != 0 {
		t.Errorf("over HTTP/2: browser %+v, lost %d; want all 8 subscribed and nothing lost", b, rec.Lost)
	}
	if rec.Conn.HTTP2Requests == 0 && rec.Checks["http2_used"].OK == false {
		t.Errorf("http2_used: %+v", rec.Checks["http2_used"])
	}
}

// TestBrowserReconnect: the server cuts every SSE stream; each page's
// EventSource reconnects on its own after the announced retry time, with
// Last-Event-ID, and loses nothing.
func TestBrowserReconnect(t *testing.T) {
	needChromium(t)
	s := browserScenario("sse", 2)
	s.Duration = time.Second
	s.CutEvery = 300 * time.Millisecond
	s.SSERetry = 100 * time.Millisecond
	rec, _ := runInProcess(t, s)
	// The page sees the stream end (its error event) a moment after the
	// browser started its reconnection timer, so a gap may read a little
	// under the retry time; it is never near Chromium's 3 s default.
	g := rec.ReconnectGap
	if g == nil || g.Count < 2 || g.Min < int64(s.SSERetry/2) || g.Max >= int64(3*time.Second) {
		t.Fatalf("reconnect gap %+v: want at least one reconnect per page, each of about the retry time %v (not the 3 s default)", g, s.SSERetry)
	}
	if rec.Lost != 0 || rec.Duplicates != 0 || rec.OutOfOrder != 0 {
		t.Errorf("lost %d, duplicates %d, out of order %d across reconnects; want 0", rec.Lost, rec.Duplicates, rec.OutOfOrder)
	}
}

// TestBrowserScenario: what a browser run refuses, one line each.
func TestBrowserScenario(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*Scenario)
		want string
	}{
		{"tcp", func(s *Scenario) { s.Transport = "tcp" }, "no API for tcp"},
		{"chat", func(s *Scenario) { s.Workload = WorkloadChat; s.Payload = 128 }, "subscribe only"},
		{"h2c", func(s *Scenario) { s.HTTP.HTTP = webhttp.HTTP2 }, "only over TLS"},
		{"cookie", func(s *Scenario) { s.HTTP.CookieBytes = 100 }, "cookie"},
		{"pages", func(s *Scenario) { s.Clients = MaxBrowserPages + 1 }, "at most"},
		{"browsers", func(s *Scenario) { s.Browsers = 4 }, "browsers 4"},
		{"go browsers", func(s *Scenario) { s.Client = ClientGo; s.Browsers = 2 }, "--client browser"},
		{"client", func(s *Scenario) { s.Client = "firefox" }, `client "firefox"`},
		{"cut longpoll", func(s *Scenario) { s.Transport = "longpoll"; s.CutEvery = time.Second }, "not a stream"},
		{"retry ws", func(s *Scenario) { s.Transport = "ws"; s.CutEvery = time.Second; s.SSERetry = time.Second }, "SSE's"},
		{"retry alone", func(s *Scenario) { s.SSERetry = time.Second }, "add --cut-every"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := browserScenario("sse", 3)
			tc.edit(&s)
			err := s.WithDefaults().Validate()
			if !errors.Is(err, ErrScenario) || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
				t.Errorf("Validate: %v, want one line containing %q", err, tc.want)
			}
		})
	}
	s := browserScenario("sse", 13)
	if n := s.BrowserCount(); n != 3 {
		t.Errorf("13 pages: %d browsers by default, want 3 (at most 6 pages each)", n)
	}
}

// TestCutEveryGo: the server cuts every stream of the Go clients; each
// reconnects and resumes with nothing lost, the SSE client after the
// announced retry time.
func TestCutEveryGo(t *testing.T) {
	for _, tr := range []string{"sse", "ws", "tcp"} {
		t.Run(tr, func(t *testing.T) {
			s := small(tr)
			s.Clients = 4
			s.Duration = time.Second
			s.CutEvery = 300 * time.Millisecond
			if tr == "sse" {
				s.SSERetry = 50 * time.Millisecond
			}
			rec, _ := runInProcess(t, s)
			g := rec.ReconnectGap
			if g == nil || g.Count < int64(s.Clients) || g.Min < int64(s.SSERetry) {
				t.Fatalf("reconnect gap %+v: want a reconnect per client at least, none under %v", g, s.SSERetry)
			}
			if rec.Reconnects < uint64(g.Count) {
				t.Errorf("reconnects %d, gaps %d", rec.Reconnects, g.Count)
			}
			if rec.Lost != 0 || rec.Duplicates != 0 || rec.OutOfOrder != 0 {
				t.Errorf("lost %d, duplicates %d, out of order %d across cuts; want 0", rec.Lost, rec.Duplicates, rec.OutOfOrder)
			}
		})
	}
}

// TestBrowserPageCrash: a page whose renderer crashes in the window is
// counted and named, and the run completes with the other pages' figures.
func TestBrowserPageCrash(t *testing.T) {
	needChromium(t)
	windowHook = func(r *runner) {
		if err := r.br.pages[1].Crash(context.Background()); err != nil {
			t.Error(err)
		}
	}
	defer func() { windowHook = nil }()
	s := browserScenario("sse", 3)
	s.Duration = time.Second
	rec, _ := runInProcess(t, s)
	b := rec.Browser
	if b == nil || b.Failed != 1 || b.Subscribed != 3 || !strings.Contains(b.FirstError, "page 1") {
		t.Fatalf("browser %+v: want page 1 counted as failed", b)
	}
	if c := rec.Checks["pages_subscribed"]; c.OK || !strings.Contains(c.Detail, "1 failed") {
		t.Errorf("pages_subscribed: %+v", c)
	}
	if c := rec.Checks["clients_alive"]; c.OK || !strings.Contains(c.Detail, "page 1") {
		t.Errorf("clients_alive: %+v", c)
	}
	if rec.Lost == 0 || rec.Delivered < 2*rec.Events {
		t.Errorf("lost %d, delivered %d of %d events × 3: want the other two pages' every event, and the crashed page's later ones lost", rec.Lost, rec.Delivered, rec.Events)
	}
}
