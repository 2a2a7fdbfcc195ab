package bench

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"pushbench/browser"
	"pushbench/clients"
	"pushbench/results"
	"pushbench/servers"
	"pushbench/transport"
	"pushbench/webhttp"
)

// A browser run (Scenario.Client "browser") subscribes with pages in
// headless Chromium instead of the harness's clients: package browser
// starts the browsers and a small harness server their pages report to,
// and every page's batches go to the same recorder handler a Go client's
// would. What differs:
//
//   - The pool starts before the server, whose child is given the pages'
//     origin for --cors (a --server must allow it already).
//   - A page the browser holds back (its request waits behind the six
//     HTTP/1.1 connections per host a browser has) never subscribes: after
//     a bound the run goes on without it, and its events count as lost,
//     with the reason in the pages_subscribed check.
//   - A page that crashes or fails is counted and the run goes on.
//   - Bytes and requests come from the server's listener: a browser's own
//     sockets are not visible (Wire.Source "server").
//   - Chromium's CPU (every process) is read at the window's marks, its
//     memory (PSS) at the window's end.

// heldGrace is how long the connect phase waits, once every page has
// issued its request and none has subscribed or failed for that long,
// before it counts the pages still waiting as held by the browser.
const heldGrace = 2 * time.Second

// browserRun is the browser side of a run.
type browserRun struct {
	pool    *browser.Pool
	pages   []*browser.Page
	gone    []atomic.Bool // a page that will not receive: held, failed
	perHost []int         // pages each browser opened, in order

	mu sync.Mutex
	m  BrowserMeasure // what is measured of the browsers, as it is learnt
}

// startBrowsers starts the browsers before the server: the server must be
// given the pages' origin.
func (r *runner) startBrowsers(ctx context.Context) error {
	s := r.s
	r.br = &browserRun{gone: make([]atomic.Bool, s.Clients), perHost: make([]int, s.BrowserCount())}
	pool, err := browser.Start(ctx, browser.Config{
		Exec:        s.Chromium,
		Browsers:    s.BrowserCount(),
		Transport:   s.Transport,
		Interval:    s.Interval,
		Pages:       s.Clients,
		HTTP1:       s.HTTP.HTTP != webhttp.HTTP2,
		OnReconnect: func(_ int, gap time.Duration) { r.reconnected(gap) },
	})
	if err != nil {
		if errors.Is(err, browser.ErrNoChromium) {
			return fmt.Errorf("%w: %v", ErrScenario, err)
		}
		return err
	}
	r.br.pool = pool
	if r.br.m.Version, err = pool.Version(ctx); err != nil {
		r.br.m.Version = "unknown (" + err.Error() + ")"
	}
	return nil
}

// reconnected keeps a subscriber's reconnect gap (a browser page's or a
// Go client's).
func (r *runner) reconnected(gap time.Duration) {
	r.gapMu.Lock()
	r.gaps = append(r.gaps, int64(gap))
	r.gapMu.Unlock()
}

// checkCORS checks that a server given by URL lets the pages in.
func (r *runner) checkCORS(st servers.Stats) error {
	origin := r.br.pool.Origin()
	if slices.Contains(st.CORS.Origins, origin) || slices.Contains(st.CORS.Origins, servers.AnyOrigin) {
		return nil
	}
	return fmt.Errorf("%w: server %s does not allow the browser pages' origin %s (it allows %v); start it with `pushbench serve --cors '*'`",
		ErrScenario, r.srv.URL, origin, st.CORS.Origins)
}

// connectBrowsers opens one page per client at the connect rate and waits
// until every page is subscribed, has failed, or is held by its browser.
func (r *runner) connectBrowsers(ctx context.Context) error {
	s := r.s
	r.setPhase(PhaseConnect)
	br := r.br
	if err := br.pool.SetServer(r.clientURL()); err != nil {
		return err
	}
	br.pool.SetSince(r.base - 1)
	br.pages = make([]*browser.Page, s.Clients)
	t0 := time.Now()
	err := r.pace(ctx, t0, len(br.pages), nil, func(i int) error {
		h := r.rec.handler(i)
		pg, err := br.pool.Open(ctx, i, func(b clients.Batch) {
			// A page found held stays held: when the run closes the
			// pages at its end, a held page can get a freed connection
			// and the whole ring, which the run did not measure.
			if !br.gone[i].Load() {
				h(b)
			}
		})
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return err
		}
		br.pages[i] = pg
		br.perHost[i%len(br.perHost)]++
		r.wg.Add(1)
		go r.watchPage(ctx, pg)
		return nil
	})
	if err != nil {
		return err
	}

	// Wait for each page: subscribed, failed, or (once every page has
	// issued its request and nothing moved for heldGrace) held.
	// Opening a page waits for it to load, so the pages may take longer to
	// open than the connect rate says: the bound runs from the later of
	// the rate's end and the last page opened.
	bound := r.connectBound()
	deadline := t0.Add(bound)
	if late := time.Now().Add(connectSlack); late.After(deadline) {
		deadline, bound = late, late.Sub(t0)
	}
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	lastMove, moved := time.Now(), -1
	for {
		sub, done, requested := 0, 0, 0
		for _, pg := range br.pages {
			select {
			case <-pg.Subscribed():
				sub++
				continue
			default:
			}
			select {
			case <-pg.Done():
				done++
				continue
			default:
			}
			select {
			case <-pg.Requested():
				requested++
			default:
			}
		}
		r.connected.Store(int64(sub))
		if sub+done != moved {
			moved, lastMove = sub+done, time.Now()
		}
		waiting := s.Clients - sub - done
		if waiting == 0 || (waiting == requested && time.Since(lastMove) >= heldGrace) {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("connect: %d of %d pages subscribed, %d ended, %d never issued their request within %v",
				sub, s.Clients, done, waiting-requested, bound.Round(time.Second))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
	for i, pg := range br.pages {
		select {
		case <-pg.Done(): // failed, subscribed or not (watchPage counts it)
			br.gone[i].Store(true)
			continue
		default:
		}
		select {
		case <-pg.Subscribed():
			br.m.Subscribed++
		default:
			br.gone[i].Store(true) // it will not receive: not waited for in the drain
			br.m.Held++
		}
	}
	if err := r.settleBrowsers(ctx); err != nil {
		return err
	}
	return r.confirmBrowsers(ctx)
}

// Chromium works for seconds after it starts and after each page opens
// (its own start-up, each renderer's): the browsers have settled once they
// use under settleShare of one core over a settleSpan, and the run waits
// for that, at most settleBound, so that the window measures the pages'
// work and not the browsers' start-up.
const (
	settleSpan  = 500 * time.Millisecond
	settleShare = 0.1
	settleBound = 30 * time.Second
)

// settleBrowsers waits until the browsers are quiet (or settleBound).
func (r *runner) settleBrowsers(ctx context.Context) error {
	t0 := time.Now()
	prev, err := r.br.pool.CPU()
	if err != nil {
		return err
	}
	tick := time.NewTicker(settleSpan)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
		cpu, err := r.br.pool.CPU()
		if err != nil {
			return err
		}
		busy := float64(cpu-prev) / float64(settleSpan)
		prev = cpu
		if busy < settleShare*float64(len(r.br.perHost)) {
			r.br.m.SettleNs, r.br.m.Settled = int64(time.Since(t0)), true
			return nil
		}
		if time.Since(t0) >= settleBound {
			r.br.m.SettleNs, r.br.m.LastBusy = int64(time.Since(t0)), busy
			return nil
		}
	}
}

// overLimit counts the pages beyond six per browser on the same host over
// HTTP/1.1 for the transports that use the browser's connection pool (a
// WebSocket has a limit of its own, far higher).
func (r *runner) overLimit() int {
	s := r.s
	if s.HTTP.HTTP == webhttp.HTTP2 || s.Transport == transport.WebSocket {
		return 0
	}
	n := 0
	for _, p := range r.br.perHost {
		n += max(0, p-BrowserHostConns)
	}
	return n
}

// confirmBrowsers waits until the server sees the pages' subscriptions:
// one stream or held poll per subscribed page, but at most six per browser
// over HTTP/1.1 (long polls beyond that wait in the browser's queue). A
// short-polling page's first answered poll is its confirmation.
func (r *runner) confirmBrowsers(ctx context.Context) error {
	s := r.s
	if transport.HasInterval(s.Transport) {
		var err error
		r.s1, err = r.ctl.gc(ctx)
		return err
	}
	// The pages subscribed and still alive (one may have failed while the
	// browsers settled), at most six per browser for long polls over
	// HTTP/1.1 (the others wait in the browser's queue).
	var live int64
	perHost := make([]int64, len(r.br.perHost))
	for i, pg := range r.br.pages {
		select {
		case <-pg.Subscribed():
			if !r.br.gone[i].Load() {
				live++
				perHost[i%len(perHost)]++
			}
		default:
		}
	}
	want := live
	if lim := r.overLimit(); lim > 0 && s.Transport == transport.LongPoll {
		want = 0
		for _, p := range perHost {
			want += min(p, BrowserHostConns)
		}
	}
	return r.confirmServer(ctx, want, fmt.Sprintf("%d pages", live), "streams or held polls", func(st servers.Stats) int64 {
		return st.Transports[s.Transport].Active - r.s0.srv.Transports[s.Transport].Active
	})
}

// watchPage closes pg when the clients stop, and counts it as failed if it
// ends before that on its own (a crash, an error it reported).
func (r *runner) watchPage(ctx context.Context, pg *browser.Page) {
	defer r.wg.Done()
	select {
	case <-r.cctx.Done():
	case <-pg.Done():
		if err := pg.Err(); err != nil && r.cctx.Err() == nil && ctx.Err() == nil {
			r.br.gone[pg.Index()].Store(true)
			// Counted, and the run goes on: failc, which ends a run of
			// Go clients, is not closed for a page.
			r.br.mu.Lock()
			r.br.m.Failed++
			if r.br.m.FirstError == "" {
				r.br.m.FirstError = err.Error()
				r.failErr = fmt.Errorf("page %d (%s): %w", pg.Index(), r.s.Transport, err)
			}
			r.br.mu.Unlock()
			r.failed.Add(1)
		}
	}
	pg.Close()
}

// browserMemory reads the browsers' memory (at the window's end).
func (r *runner) browserMemory() {
	if r.br == nil {
		return
	}
	var err error
	if r.br.m.PSSBytes, err = r.br.pool.PSS(); err == nil {
		r.br.m.RSSBytes, err = r.br.pool.RSS()
	}
	if err != nil {
		r.br.m.MemoryError = err.Error()
	}
}

// browserCPU is every Chromium process's CPU so far (0 without browsers).
// A read that fails (a Chromium exited) is kept: the window's browser CPU
// is then not given, and browser_cpu fails with the reason.
func (r *runner) browserCPU() time.Duration {
	if r.br == nil || r.br.pool == nil {
		return 0
	}
	cpu, err := r.br.pool.CPU()
	if err != nil {
		r.br.mu.Lock()
		if r.br.m.CPUErr == "" {
			r.br.m.CPUErr = err.Error()
		}
		r.br.mu.Unlock()
	}
	return cpu
}

// gone reports whether client i will not receive (a browser page held or
// failed): the drain does not wait for it.
func (r *runner) gone(i int) bool {
	return r.br != nil && r.br.gone[i].Load()
}

// browserMeasurement is what the browsers measured.
func (r *runner) browserMeasurement() *BrowserMeasure {
	if r.br == nil {
		return nil
	}
	r.br.mu.Lock()
	defer r.br.mu.Unlock()
	m := r.br.m
	m.Browsers, m.Pages, m.OverLimit = len(r.br.perHost), r.s.Clients, r.overLimit()
	return &m
}

// BrowserMeasure is what a browser run measured of its browsers: the
// record's browser block but for the CPU figures, which Compute takes from
// the marks (ClientMark.BrowserCPU), and what decides its checks.
type BrowserMeasure struct {
	results.Browser
	CPUErr string // a read of the browsers' CPU failed
	// Settled says the browsers went quiet within settleBound (SettleNs);
	// LastBusy is the cores they still used when the wait gave up.
	Settled  bool
	LastBusy float64
}
