package report

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strings"

	"pushbench/results"
)

// BrowsersMarkdownFile is the report's table of browser cells beside their
// Go twins, written when a run has browser cells (HasBrowsers).
const BrowsersMarkdownFile = "browsers.md"

// HasBrowsers reports whether a record's subscribers were browser pages.
func HasBrowsers(recs []results.Record) bool {
	return slices.ContainsFunc(recs, func(r results.Record) bool { return r.Browser != nil })
}

// Browsers is browsers.md: every browser cell beside the Go cell of the
// same transport and point (the same scenario but for the client), so
// that what the browser adds to latency reads off one row, with what the
// pages cost the browsers and what they could not receive. Every figure
// comes from the records; a cell whose records are not clean is marked.
func Browsers(recs []results.Record) string {
	var b strings.Builder
	b.WriteString("# Browsers against Go clients\n\n")
	b.WriteString(browsersTable(recs))
	return b.String()
}

// browsersTable is browsers.md without its title.
func browsersTable(recs []results.Record) string {
	m := newMatrix(recs)
	type twin struct{ browser, goCell *cell }
	var rows []twin
	for _, c := range m.cells {
		if c.at.HTTP.Client != "browser" {
			continue
		}
		at := c.at
		at.HTTP.Client = ""
		var g *cell
		for _, d := range m.cells {
			if d.v == c.v && d.at == at {
				g = d
			}
		}
		rows = append(rows, twin{c, g})
	}
	var b strings.Builder
	b.WriteString("Each row is one transport at one point, measured twice: by the harness's Go clients and by pages in headless Chromium (EventSource, WebSocket, fetch), each latency from the event's scheduled time to its receipt (in the page: `performance.timeOrigin + performance.now()`, after JSON parsing). A browser cell's bytes are the server listener's; its CPU and PSS are every Chromium process's.\n\n")
	b.WriteString("| transport | clients | events/s | HTTP | Go p50 | browser p50 | +p50 | Go p99 | browser p99 | pages subscribed | browsers | Chromium CPU µs/event | PSS/page | reconnect gap p50 |\n")
	b.WriteString("|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	p50 := func(r *results.Record) float64 { return float64(r.Latency.P50) }
	p99 := func(r *results.Record) float64 { return float64(r.Latency.P99) }
	var unclean []string
	for _, t := range rows {
		c := t.browser
		k := c.at.HTTP
		k.Client = ""
		goP50, goP99, diff := "—", "—", "—"
		if t.goCell != nil {
			goP50 = fmtDuration(t.goCell.value(p50)) + t.goCell.mark()
			goP99 = fmtDuration(t.goCell.value(p99)) + t.goCell.mark()
			diff = fmtDuration(c.value(p50)-t.goCell.value(p50)) + mark2(c, t.goCell)
			if t.goCell.notClean() {
				unclean = append(unclean, CellName(t.goCell.recs[0].Scenario))
			}
		}
		if c.notClean() {
			unclean = append(unclean, CellName(c.recs[0].Scenario))
		}
		// The first record that measured its browsers (a cell that ended
		// in an error has none).
		var br *results.Browser
		for _, r := range c.recs {
			if r.Browser != nil {
				br = r.Browser
				break
			}
		}
		if br == nil {
			fmt.Fprintf(&b, "| %s | %d | %s | %s | %s | — | — | %s | — | — (%s) | — | — | — | — |\n",
				c.v.Label(), c.at.Clients, fmtRate(c.recs[0].Scenario.Rate), k.label(), goP50, goP99, cmp.Or(c.recs[0].Error, "nothing measured"))
			continue
		}
		sub := fmt.Sprintf("%d of %d", br.Subscribed, br.Pages)
		if br.Held > 0 {
			sub += fmt.Sprintf(" (%d held)", br.Held)
		}
		if br.Failed > 0 {
			sub += fmt.Sprintf(" (%d failed)", br.Failed)
		}
		gap := "—"
		if g := c.value(func(r *results.Record) float64 {
			if r.ReconnectGap == nil {
				return math.NaN()
			}
			return float64(r.ReconnectGap.P50)
		}); !math.IsNaN(g) {
			gap = fmtDuration(g)
		}
		fmt.Fprintf(&b, "| %s | %d | %s | %s | %s | %s | %s | %s | %s | %s | %d | %.0f | %.0f MB | %s |\n",
			c.v.Label(), c.at.Clients, fmtRate(c.recs[0].Scenario.Rate), k.label(), goP50,
			fmtDuration(c.value(p50))+c.mark(), diff, goP99, fmtDuration(c.value(p99))+c.mark(),
			sub, br.Browsers, c.value(browserFig(func(b *results.Browser) float64 { return b.CPUUsPerEvent })),
			c.value(browserFig(func(b *results.Browser) float64 { return b.PSSBytesPerPage }))/1e6, gap)
	}
	if len(unclean) > 0 {
		b.WriteString("\n" + strings.TrimSpace(notCleanNote) + " Not clean:\n\n")
		for _, n := range slices.Compact(slices.Sorted(slices.Values(unclean))) {
			fmt.Fprintf(&b, "- `%s`\n", n)
		}
	}
	b.WriteString("\nA page held by its browser issued its request and never got a connection: Chromium opens at most six HTTP/1.1 connections per host per browser, shared by all its pages; its events count as lost. HTTP/2 (over TLS: browsers speak no h2c) lifts the limit.\n")
	return b.String()
}

// mark2 is the ⚠ of a figure computed from two cells.
func mark2(a, b *cell) string {
	if a.notClean() || b.notClean() {
		return " ⚠"
	}
	return ""
}

// browserFig reads a browser figure of a record (NaN without a browser
// block).
func browserFig(f func(*results.Browser) float64) metric {
	return func(r *results.Record) float64 {
		if r.Browser == nil {
			return math.NaN()
		}
		return f(r.Browser)
	}
}
