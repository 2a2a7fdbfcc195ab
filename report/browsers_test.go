package report

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"pushbench/results"
)

// TestBrowsers: a browser cell sits beside the Go cell of the same
// transport and point, with the difference of their medians exact, and a
// held page and a failed check show.
func TestBrowsers(t *testing.T) {
	goRec := synth(fixtureCell{transport: "sse", clients: 8, rate: 10, payload: 64})
	brRec := synth(fixtureCell{transport: "sse", clients: 8, rate: 10, payload: 64})
	goRec.Latency.P50, goRec.Latency.P99 = 1_000_000, 3_000_000
	brRec.Latency.P50, brRec.Latency.P99 = 2_500_000, 9_000_000
	brRec.Scenario.Client, brRec.Scenario.Browsers, brRec.Scenario.Headers = "browser", 1, "browser"
	goRec.Scenario.Headers = "browser"
	brRec.Browser = &results.Browser{Version: "HeadlessChrome/156", Browsers: 1, Pages: 8, Subscribed: 6, Held: 2,
		OverLimit: 2, CPUUsPerEvent: 120, PSSBytesPerPage: 80e6}
	brRec.Checks["pages_subscribed"] = results.Check{OK: false, Detail: "6 of 8 pages subscribed"}
	// A browser cell that ended in an error: a stub record, no browser
	// block (compare writes one when a cell fails).
	failed := results.Record{Schema: results.Schema, Status: results.StatusError, Error: "browser: no chromium",
		Scenario: results.Scenario{Transport: "ws", Clients: 8, Rate: 10, Payload: 64, Client: "browser", Headers: "browser"}}
	recs := []results.Record{goRec, brRec, failed}
	if !HasBrowsers(recs) || HasBrowsers(recs[:1]) {
		t.Fatal("HasBrowsers")
	}
	md := Browsers(recs)
	for _, want := range []string{
		"| SSE | 8 | 10 | HTTP/1.1, browser headers | 1 ms | 2.5 ms ⚠ | 1.5 ms ⚠ | 3 ms | 9 ms ⚠ | 6 of 8 (2 held) | 1 | 120 | 80 MB | — |",
		"transport=sse/clients=8/rate=10/payload=64/headers=browser/client=browser",
		"| WebSocket | 8 | 10 | HTTP/1.1, browser headers | — | — | — | — | — | — (browser: no chromium) |",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("browsers.md lacks %q:\n%s", want, md)
		}
	}
	dir := t.TempDir()
	for _, r := range recs {
		if err := results.AppendRecord(filepath.Join(dir, results.RecordsFile), r); err != nil {
			t.Fatal(err)
		}
	}
	if err := Report(dir); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{BrowsersMarkdownFile, IndexFile} {
		b, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil || !strings.Contains(string(b), "Browsers against Go clients") {
			t.Errorf("%s: %v, or no browsers section", f, err)
		}
	}
}
