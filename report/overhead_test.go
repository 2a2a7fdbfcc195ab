package report

import (
	"encoding/csv"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"pushbench/results"
)

// overheadRecords are hand-made records of three ways of speaking HTTP,
// with round figures so that every number of the overhead report can be
// worked out by hand:
//
//   - Go's headers over HTTP/1.1 (the default): short polling every 1 s at
//     1 event/s (the cell the report reads) and, not read, at 10 events/s
//     and every 100 ms; WebSocket twice (a median of two repeats); SSE
//     only at 10 events/s.
//   - browser headers over HTTP/1.1 and TLS: short polling that failed a
//     check (shown, marked), WebSocket.
//   - browser headers over HTTP/2 and TLS: short polling, SSE that had no
//     answer over HTTP/2 (marked); no WebSocket (it cannot).
func overheadRecords() []results.Record {
	h11tls := func(s *results.Scenario) { browser(s); tlsOn(s) }
	h2tls := func(s *results.Scenario) { browser(s); tlsOn(s); s.HTTP = "2" }
	at := func(rate float64, interval time.Duration) func(*results.Record) {
		return func(r *results.Record) { r.Scenario.Rate, r.Scenario.IntervalNs = rate, int64(interval) }
	}
	mk := func(tr string, mod func(*results.Scenario), set ...func(r *results.Record)) results.Record {
		r := httpRecord(tr, 1, mod)
		for _, f := range set {
			f(&r)
		}
		return r
	}
	poll := func(up, down float64, requests uint64, wireDown, wireUp float64) func(*results.Record) {
		return func(r *results.Record) {
			r.Conn.IdleUpBytesPerRequest, r.Conn.IdleDownBytesPerRequest, r.Conn.IdleRequests = up, down, requests
			r.Wire.DownBytesPerClientSec, r.Wire.UpBytesPerClientSec = wireDown, wireUp
		}
	}
	perEvent := func(down, up float64) func(*results.Record) {
		return func(r *results.Record) { r.Wire.DownBytesPerEvent, r.Wire.UpBytesPerEvent = down, up }
	}
	handshake := func(n uint64, up, down, us float64) func(*results.Record) {
		return func(r *results.Record) {
			r.Conn.TLSHandshakes, r.Conn.TLSHandshakeUpBytes, r.Conn.TLSHandshakeDownBytes, r.Conn.TLSHandshakeUs = n, up, down, us
		}
	}
	h2 := func(n uint64) func(*results.Record) { return func(r *results.Record) { r.Conn.HTTP2Responses = n } }
	failed := func(r *results.Record) {
		r.Checks = map[string]results.Check{"bytes_agree": {OK: false, Detail: "off by 3%"}}
	}
	return []results.Record{
		mk("shortpoll", nil, poll(100, 150, 500, 200, 100)),
		mk("shortpoll", nil, at(10, time.Second), poll(1, 1, 500, 1, 1)),
		mk("shortpoll", nil, at(1, 100*time.Millisecond), poll(2, 2, 500, 2, 2)),
		mk("ws", nil, perEvent(64, 0)),
		mk("ws", nil, perEvent(68, 0)),
		mk("sse", nil, at(10, 0), perEvent(80, 0)),

		mk("shortpoll", h11tls, poll(600, 400, 500, 1000, 250), handshake(10, 500, 1500, 300), failed),
		mk("ws", h11tls, perEvent(90, 10), handshake(10, 400, 1400, 200)),

		mk("shortpoll", h2tls, poll(500, 250, 500, 400, 600), handshake(10, 500, 1500, 250), h2(1000)),
		mk("sse", h2tls, perEvent(125, 0), handshake(10, 450, 1450, 240)),
	}
}

// TestOverhead: both tables of overhead.md and overhead.csv, by hand.
func TestOverhead(t *testing.T) {
	t.Parallel()
	md, csvText := Overhead(overheadRecords())
	for _, want := range []string{
		"Per-client figures are **measured**, at 10 clients, 1 event/s, 64 B payload;",
		// Table 1: up + down per poll, less the body, against 871 B.
		"| HTTP/1.1, Go headers | 100 + 150 = 250 B | 248 B | 871 B | 0.285× | — | 500 |  |\n",
		"| HTTP/1.1, TLS, browser headers | 600 + 400 = 1000 B ⚠ | 998 B ⚠ | 871 B | 1.15× | 500 + 1500 = 2000 B, 300 µs ⚠ | 500 | not clean: check bytes_agree failed |\n",
		"| HTTP/2, TLS, browser headers | 500 + 250 = 750 B | 748 B | 871 B | 0.859× | 500 + 1500 = 2000 B, 250 µs | 500 |  |\n",
		// Table 2: Kaazing's rows in 10^6 bits, theirs in brackets.
		"| Kaazing (assumed) | polling, 871 B of headers | 871 | 6.968 (6.6) | 69.68 (66) | 696.8 (665) |",
		"| Kaazing (assumed) | WebSocket, 2 B frame | 2 | 0.016 (0.015) | 0.16 (0.153) | 1.6 (1.526) |",
		// Short polling: bytes per client-second of the window.
		"| HTTP/1.1, Go headers | short polling every 1 s | 300 | 2.4 | 24 | 240 |  |\n",
		// WebSocket: the median of two repeats, per event × 1/s.
		"| HTTP/1.1, Go headers | WebSocket | 66 | 0.528 | 5.28 | 52.8 |  |\n",
		// SSE was only measured at 10 events/s: used, and said.
		"| HTTP/1.1, Go headers | SSE | 80 | 0.64 | 6.4 | 64 | measured at 10 clients, 10 events/s, 64 B payload |\n",
		"| HTTP/1.1, TLS, browser headers | short polling every 1 s | 1250 ⚠ | 10 ⚠ | 100 ⚠ | 1000 ⚠ | not clean: check bytes_agree failed |\n",
		"| HTTP/1.1, TLS, browser headers | WebSocket | 100 | 0.8 | 8 | 80 |  |\n",
		"| HTTP/2, TLS, browser headers | short polling every 1 s | 1000 | 8 | 80 | 800 |  |\n",
		"| HTTP/2, TLS, browser headers | SSE | 125 ⚠ | 1 ⚠ | 10 ⚠ | 100 ⚠ | no answer came over HTTP/2 (conn.http2_responses is 0) |\n",
		"WebSocket has no HTTP/2 rows",
		"their 6.6 Mbps is 6.968 Mbit/s",
		"| 1,000 clients, Mbit/s (scaled ×1,000) | 10,000 clients, Mbit/s (scaled ×10,000) | 100,000 clients, Mbit/s (scaled ×100,000) |",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("overhead.md lacks\n%s\n---\n%s", want, md)
		}
	}
	// Rows in order: the defaults first, then TLS over HTTP/1.1, then 2.
	i, j := strings.Index(md, "| HTTP/1.1, TLS, browser headers | short"), strings.Index(md, "| HTTP/2, TLS, browser headers | short")
	if i < 0 || j < i {
		t.Errorf("HTTP/1.1 with TLS should come before HTTP/2")
	}

	rows, err := csv.NewReader(strings.NewReader(csvText)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(rows[0], overheadCSVHeader) {
		t.Fatalf("header %v", rows[0])
	}
	if len(rows) != 1+2+7 {
		t.Fatalf("%d rows, want the header, Kaazing's 2 and 7 measured:\n%s", len(rows), csvText)
	}
	field := func(row []string, name string) string { return row[slices.Index(overheadCSVHeader, name)] }
	find := func(source, http, tls, tr string) []string {
		for _, r := range rows[1:] {
			if field(r, "source") == source && field(r, "http") == http && field(r, "tls") == tls && field(r, "transport") == tr {
				return r
			}
		}
		t.Fatalf("no row %s %s %s %s", source, http, tls, tr)
		return nil
	}
	check := func(row []string, want map[string]string) {
		t.Helper()
		for k, v := range want {
			if got := field(row, k); got != v {
				t.Errorf("%s: %s = %q, want %q", strings.Join(row[:9], ","), k, got, v)
			}
		}
	}
	check(find("kaazing", "", "", "shortpoll"), map[string]string{"poll_bytes": "871", "bytes_per_client_s": "871",
		"mbit_s_1000_clients": "6.968", "mbit_s_10000_clients": "69.68", "mbit_s_100000_clients": "696.8"})
	check(find("kaazing", "", "", "ws"), map[string]string{"poll_bytes": "", "bytes_per_client_s": "2",
		"mbit_s_1000_clients": "0.016", "mbit_s_10000_clients": "0.16", "mbit_s_100000_clients": "1.6"})
	check(find("measured", "1.1", "false", "shortpoll"), map[string]string{
		"headers": "go", "response_headers": "minimal", "pad": "x", "interval_ns": "1000000000", "rate": "1", "network": "loopback",
		"records_used": "1", "clean": "true", "idle_requests": "500", "poll_up_bytes": "100", "poll_down_bytes": "150",
		"poll_bytes": "250", "poll_bytes_without_body": "248", "tls_handshakes": "", "bytes_per_client_s": "300",
		"mbit_s_1000_clients": "2.4", "mbit_s_100000_clients": "240"})
	check(find("measured", "1.1", "false", "ws"), map[string]string{"records_used": "2", "bytes_per_client_s": "66", "poll_bytes": ""})
	check(find("measured", "2", "true", "shortpoll"), map[string]string{
		"headers": "browser", "response_headers": "deployment", "tls_handshakes": "10", "tls_resumed": "0",
		"tls_handshake_up_bytes": "500", "tls_handshake_down_bytes": "1500", "tls_handshake_us": "250", "http2_responses": "1000",
		"poll_bytes": "750", "bytes_per_client_s": "1000", "mbit_s_10000_clients": "80"})
	check(find("measured", "2", "true", "sse"), map[string]string{"clean": "false", "tls_handshake_up_bytes": "450", "bytes_per_client_s": "125"})
	check(find("measured", "1.1", "true", "shortpoll"), map[string]string{"clean": "false", "notes": "not clean: check bytes_agree failed"})
}

// TestKaazingFigures: Kaazing's published Mbps are their bytes × 8 ÷ 2^20,
// as the report says, to the digits they printed.
func TestKaazingFigures(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		bytes     float64
		published []string
	}{{KaazingHeaderBytes, kaazingMbps.poll}, {KaazingFrameBytes, kaazingMbps.ws}} {
		for i, n := range overheadClients {
			theirs := c.bytes * float64(n) * 8 / (1 << 20)
			p, err := strconv.ParseFloat(c.published[i], 64)
			if err != nil {
				t.Fatal(err)
			}
			_, frac, _ := strings.Cut(c.published[i], ".")
			if half := 0.5 * math.Pow10(-len(frac)); math.Abs(theirs-p) > half {
				t.Errorf("%v B × %d clients: %v Mbit (2^20), Kaazing printed %s", c.bytes, n, theirs, c.published[i])
			}
		}
	}
	if got := mbits(KaazingHeaderBytes, 1000); got != 6.968 {
		t.Errorf("871 B × 1,000 clients = %v Mbit/s, want 6.968", got)
	}
}

// TestOverheadMarksAndFallbacks: a record with status other than ok is
// marked; a clean repeat wins over one that is not; a cell with no idle
// poll says so; only default records write no overhead report.
func TestOverheadMarksAndFallbacks(t *testing.T) {
	t.Parallel()
	if HasOverhead([]results.Record{httpRecord("ws", 1, nil)}) {
		t.Error("HasOverhead is true for Go's plain HTTP/1.1")
	}
	padded := httpRecord("ws", 1, func(s *results.Scenario) { s.Pad = "text" })
	if HasOverhead([]results.Record{padded}) {
		t.Error("HasOverhead is true for text padding alone")
	}
	if !HasOverhead([]results.Record{httpRecord("ws", 1, tlsOn)}) {
		t.Error("HasOverhead is false for TLS")
	}

	partial := httpRecord("ws", 1, browser)
	partial.Status, partial.Partial = results.StatusPartial, true
	partial.Wire.DownBytesPerEvent = 300
	clean := httpRecord("ws", 1, browser)
	clean.Wire.DownBytesPerEvent = 90
	noIdle := httpRecord("shortpoll", 1, browser)
	md, _ := Overhead([]results.Record{partial, clean, noIdle})
	for _, want := range []string{
		"| HTTP/1.1, browser headers | WebSocket | 100 | 0.8 | 8 | 80 | 1 of 2 records left out: partial run |\n",
		"no idle poll measured",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("overhead.md lacks %q:\n%s", want, md)
		}
	}
	md, _ = Overhead([]results.Record{partial})
	if want := "| HTTP/1.1, browser headers | WebSocket | 310 ⚠ | 2.48 ⚠ | 24.8 ⚠ | 248 ⚠ | not clean: partial run |\n"; !strings.Contains(md, want) {
		t.Errorf("overhead.md lacks %q:\n%s", want, md)
	}
}

// TestOverheadReadme: the README's overhead block comes from a run folder
// of the overhead preset, with its command line, into its own markers;
// any other run still fills the reference block, and each leaves the
// other block alone.
func TestOverheadReadme(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, r := range overheadRecords() {
		if err := results.AppendRecord(filepath.Join(dir, results.RecordsFile), r); err != nil {
			t.Fatal(err)
		}
	}
	info := results.RunInfo{Schema: "pushbench.run/v1", Preset: OverheadPreset,
		Command:   []string{"pushbench", "compare", "--preset", "overhead", "--out", "docs/reference-overhead"},
		StartedAt: "2026-02-01T10:00:00Z", FinishedAt: "2026-02-01T10:06:00Z", CellsPlanned: 10, CellsDone: 10,
		Env: results.Env{Commit: "0123456789abcdef", CPUModel: "AMD EPYC 7B13", NumCPU: 2, GOMAXPROCS: 2, GoVersion: "go1.26.0", Kernel: "Linux 6.1.0 #1"}}
	if err := results.WriteRunInfo(filepath.Join(dir, results.RunInfoFile), info); err != nil {
		t.Fatal(err)
	}
	readme := "# x\n\n" + ReadmeBegin + "\nold reference\n" + ReadmeEnd + "\n\n## Overhead\n\n" + OverheadBegin + "\nold overhead\n" + OverheadEnd + "\n"
	path := filepath.Join(t.TempDir(), "README.md")
	if err := os.WriteFile(path, []byte(readme), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := UpdateReadme(path, dir, nil); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(path)
	section, err := OverheadReadmeSection(dir, filepath.ToSlash(mustRel(t, filepath.Dir(path), dir)))
	if err != nil {
		t.Fatal(err)
	}
	want := "# x\n\n" + ReadmeBegin + "\nold reference\n" + ReadmeEnd + "\n\n## Overhead\n\n" + OverheadBegin + "\n" + section + OverheadEnd + "\n"
	if string(got) != want {
		t.Errorf("README:\n%s\nwant\n%s", got, want)
	}
	for _, s := range []string{
		"From the overhead run in [", "(`pushbench compare --preset overhead --out docs/reference-overhead`, 10 of 10 cells done, 6m0s): commit 0123456789ab",
		"| HTTP/2, TLS, browser headers | 500 + 250 = 750 B | 748 B | 871 B | 0.859× |",
		"**Overhead per poll.**", "**Network throughput, one event per second per client.**",
	} {
		if !strings.Contains(section, s) {
			t.Errorf("section lacks %q:\n%s", s, section)
		}
	}
	if strings.Contains(section, "# Overhead per request") {
		t.Error("the README block has overhead.md's title")
	}
	// ReadmeBlock does the same on a string.
	if again, err := ReadmeBlock(readme, dir, filepath.ToSlash(mustRel(t, filepath.Dir(path), dir))); err != nil || again != want {
		t.Errorf("ReadmeBlock = %q, %v", again, err)
	}

	// A run of another preset fills the reference block.
	info.Preset = "default"
	if err := results.WriteRunInfo(filepath.Join(dir, results.RunInfoFile), info); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(readme), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := UpdateReadme(path, dir, nil); err != nil {
		t.Fatal(err)
	}
	got, _ = os.ReadFile(path)
	if !strings.Contains(string(got), OverheadBegin+"\nold overhead\n"+OverheadEnd) || strings.Contains(string(got), "old reference") ||
		!strings.Contains(string(got), "From the reference run in [") {
		t.Errorf("README after a default run:\n%s", got)
	}
	// Without the overhead markers, an overhead run is an error.
	info.Preset = OverheadPreset
	if err := results.WriteRunInfo(filepath.Join(dir, results.RunInfoFile), info); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadmeBlock("# no markers\n", dir, "x"); err == nil || !strings.Contains(err.Error(), "overhead run") {
		t.Errorf("no markers: %v", err)
	}
}

func mustRel(t *testing.T, base, target string) string {
	t.Helper()
	r, err := filepath.Rel(base, target)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestPollOverheadFinding: the findings give each way of speaking HTTP's
// bytes per idle poll at the headline point, leaving out cells that are
// not clean.
func TestPollOverheadFinding(t *testing.T) {
	t.Parallel()
	m := newMatrix(overheadRecords())
	want := "With nothing to deliver, a short poll costs 250 B (HTTP/1.1, Go headers) and 750 B (HTTP/2, TLS, browser headers) on the wire, up + down: " +
		"request and response headers, framing, TLS records where on, and the 2-byte answer `[]`. Kaazing's classic table assumed 871 B of headers per poll; " +
		"overhead.md has its table with measured bytes."
	if got := m.pollOverheadFinding(); got != want {
		t.Errorf("finding\n got %s\nwant %s", got, want)
	}
	if !slices.ContainsFunc(m.findings(), func(f finding) bool { return f.text == want }) {
		t.Error("the finding is not among the run's findings")
	}
	// Records from before the idle figures existed say nothing.
	if got := newMatrix([]results.Record{httpRecord("shortpoll", 1, nil)}).pollOverheadFinding(); got != "" {
		t.Errorf("finding without idle polls: %q", got)
	}
}
