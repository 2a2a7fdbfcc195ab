package bench

import (
	"fmt"
	"time"

	"pushbench/results"
	"pushbench/webhttp"
)

// serverCounts puts the server listener's bytes and the server's request
// count in the client marks of a browser run, whose sockets the harness
// cannot see: every figure computed from the marks (wire, requests, the
// connect phase, idle requests) is then the listener's, less the harness's
// own control traffic.
func (m *Measurement) serverCounts() {
	first := m.Server[markBefore]
	if first.Stats.TimeNs == 0 {
		return
	}
	t := m.Scenario.Transport
	for i := range m.Load.Marks {
		mk := &m.Load.Marks[i]
		if !mk.taken() || m.Server[i].Stats.TimeNs == 0 {
			continue
		}
		mk.Counts.Down, mk.Counts.Up = serverBytes(first, m.Server[i])
		mk.Counts.Requests = m.Server[i].Stats.Transports[t].Requests - first.Stats.Transports[t].Requests
	}
}

// fillBrowser fills the browser block of a browser run and its checks:
// every page subscribed, no page beyond its browser's connection limit,
// and the browsers kept up.
func (m *Measurement) fillBrowser(rec *results.Record, d delivery, windowOK bool) {
	b := m.Load.Browser
	if b == nil {
		return
	}
	check := func(name string, ok bool, format string, args ...any) {
		rec.Checks[name] = results.Check{OK: ok, Detail: fmt.Sprintf(format, args...)}
	}
	rec.Wire.Source = "server"
	rb := b.Browser
	rec.Browser = &rb
	if b.SettleNs > 0 {
		check("browsers_settled", b.Settled,
			"the browsers went quiet after start-up in %s (under %.0f%% of a core each over %s; bound %s): last %.2f cores busy",
			time.Duration(b.SettleNs).Round(time.Millisecond), settleShare*100, settleSpan, settleBound, b.LastBusy)
	}
	if b.Pages > 0 {
		rb.PSSBytesPerPage = float64(b.PSSBytes) / float64(b.Pages)
	}
	ws, we := m.Load.Marks[markStart], m.Load.Marks[markEnd]
	if b.CPUErr != "" {
		check("browser_cpu", false, "the browsers' CPU could not be read (%s): their cost over the window is not given", b.CPUErr)
	} else if windowOK && we.Mono > ws.Mono {
		cpu := max(0, we.BrowserCPU-ws.BrowserCPU)
		wall := we.Mono - ws.Mono
		rb.CPUUs = us(cpu)
		if b.Pages > 0 {
			rb.CPUUsPerPageS = us(cpu) / float64(b.Pages) / wall.Seconds()
		}
		if n := m.Env.NumCPU; n > 0 {
			rb.CPUUtilisation = float64(cpu) / (float64(wall) * float64(n))
		}
		if d.delivered > 0 {
			rb.CPUUsPerEvent = us(cpu) / float64(d.delivered)
		}
		check("browser_cpu", rb.CPUUtilisation <= maxClientUtil,
			"the browsers used %.0f%% of the machine's %d CPUs over the window (limit %.0f%%; above it the pages' own queueing inflates latency)",
			rb.CPUUtilisation*100, m.Env.NumCPU, maxClientUtil*100)
	}
	if !m.Measured {
		return
	}

	http := "HTTP/1.1"
	if m.Scenario.HTTP.HTTP == webhttp.HTTP2 {
		http = "HTTP/2"
	}
	limit := fmt.Sprintf("%d pages in %d browsers over %s: Chromium opens at most %d HTTP/1.1 connections per host per browser, shared by all its pages, so %d pages were beyond it",
		b.Pages, b.Browsers, http, BrowserHostConns, b.OverLimit)
	detail := fmt.Sprintf("%d of %d pages subscribed; %d held by their browser (request issued, never answered: they received nothing, and every event counts as lost to them); %d failed (crashed or stopped on an error, before or after subscribing)",
		b.Subscribed, b.Pages, b.Held, b.Failed)
	if b.FirstError != "" {
		detail += " (first: " + b.FirstError + ")"
	}
	if b.Held > 0 {
		detail += ". " + limit
		if b.OverLimit > 0 {
			detail += " (HTTP/2 lifts the limit: --http 2 --tls; or give each page's browser fewer pages: --browsers)"
		}
	}
	check("pages_subscribed", b.Held == 0 && b.Failed == 0, "%s", detail)
	if b.OverLimit > 0 {
		check("browser_connections", false,
			"%s: an EventSource beyond it never opens, a poll beyond it waits in the browser's queue for a free connection (its latency includes the wait)", limit)
	}
}
