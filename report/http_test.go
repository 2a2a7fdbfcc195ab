package report

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"pushbench/results"
	"pushbench/transport"
)

// TestCellNameHTTP: the HTTP options join bench.txt names, file names and
// the one-line summary only where they are not the defaults, so that a
// record from before they existed and one that states the defaults keep
// the old name.
func TestCellNameHTTP(t *testing.T) {
	t.Parallel()
	base := results.Scenario{Transport: "sse", Clients: 100, Rate: 1, Payload: 64, DurationNs: int64(10 * time.Second)}
	with := func(f func(s *results.Scenario)) results.Scenario {
		s := base
		f(&s)
		return s
	}
	cases := []struct {
		what       string
		s          results.Scenario
		name, stem string
	}{
		{"before the options existed", base, "transport=sse/clients=100/rate=1/payload=64", "sse-c100-r1-p64"},
		{"the defaults stated", with(func(s *results.Scenario) {
			s.HTTP, s.Headers, s.ResponseHeaders, s.Pad = "1.1", "go", "minimal", "x"
		}), "transport=sse/clients=100/rate=1/payload=64", "sse-c100-r1-p64"},
		{"HTTP/2, TLS, browser headers (their own response profile)", with(func(s *results.Scenario) {
			s.HTTP, s.TLS, s.Headers, s.ResponseHeaders, s.Pad = "2", true, "browser", "deployment", "x"
		}), "transport=sse/clients=100/rate=1/payload=64/http=2/tls=on/headers=browser", "sse-c100-r1-p64-h2-tls-br"},
		{"compressed: text padding is its default", with(func(s *results.Scenario) {
			s.HTTP, s.TLS, s.Headers, s.ResponseHeaders, s.Compress, s.Pad = "2", true, "browser", "deployment", true, "text"
		}), "transport=sse/clients=100/rate=1/payload=64/http=2/tls=on/headers=browser/compress=on", "sse-c100-r1-p64-h2-tls-br-gz"},
		{"compressed, no padding stated", with(func(s *results.Scenario) { s.Compress = true }),
			"transport=sse/clients=100/rate=1/payload=64/compress=on", "sse-c100-r1-p64-gz"},
		{"text padding without compression", with(func(s *results.Scenario) { s.Pad = "text" }),
			"transport=sse/clients=100/rate=1/payload=64/pad=text", "sse-c100-r1-p64-padtext"},
		{"x padding with compression", with(func(s *results.Scenario) { s.Compress, s.Pad = true, "x" }),
			"transport=sse/clients=100/rate=1/payload=64/compress=on/pad=x", "sse-c100-r1-p64-gz-padx"},
		{"browser headers, minimal response, a cookie", with(func(s *results.Scenario) {
			s.Headers, s.ResponseHeaders, s.CookieBytes = "browser", "minimal", 512
		}), "transport=sse/clients=100/rate=1/payload=64/headers=browser/response=minimal/cookie=512", "sse-c100-r1-p64-br-rmin-ck512"},
		{"Go headers, deployment response", with(func(s *results.Scenario) { s.ResponseHeaders = "deployment" }),
			"transport=sse/clients=100/rate=1/payload=64/response=deployment", "sse-c100-r1-p64-rdep"},
		{"a network and TLS", with(func(s *results.Scenario) {
			s.Transport, s.Network, s.TLS = "ws", results.Network{Name: "4g"}, true
		}), "transport=ws/network=4g/clients=100/rate=1/payload=64/tls=on", "ws-4g-c100-r1-p64-tls"},
		{"short polling", with(func(s *results.Scenario) {
			s.Transport, s.IntervalNs, s.HTTP, s.Headers = "shortpoll", int64(time.Second), "2", "browser"
		}), "transport=shortpoll-1s/clients=100/rate=1/payload=64/http=2/headers=browser", "shortpoll-1s-c100-r1-p64-h2-br"},
	}
	for _, c := range cases {
		if got := CellName(c.s); got != c.name {
			t.Errorf("%s: CellName = %q, want %q", c.what, got, c.name)
		}
		if got := cellFileStem(c.s); got != c.stem {
			t.Errorf("%s: cellFileStem = %q, want %q", c.what, got, c.stem)
		}
		// Line: the same suffix after the duration, without its first "/".
		_, suffix, _ := strings.Cut(c.name, "payload=64")
		want := " 10s:"
		if suffix != "" {
			want = " 10s " + suffix[1:] + ":"
		}
		if line := Line(&results.Record{Scenario: c.s}); !strings.Contains(line, want) {
			t.Errorf("%s: Line = %q, want %q after the scenario", c.what, line, want)
		}
	}
}

// httpRecord is a clean hand-made record at 10 clients, 1 event/s, 64 B.
func httpRecord(tr string, p50Ms int64, mod func(s *results.Scenario)) results.Record {
	r := results.Record{
		Schema: results.Schema, Status: results.StatusOK, Events: 100, Expected: 1000, Delivered: 1000,
		Scenario: results.Scenario{Transport: tr, Clients: 10, Rate: 1, Payload: 64, DurationNs: int64(100 * time.Second), Schedule: "constant"},
		Latency:  results.Latency{P50: p50Ms * 1e6, P99: p50Ms * 2e6, Max: p50Ms * 3e6},
		Wire:     results.Wire{DownBytesPerEvent: 100, UpBytesPerEvent: 10},
	}
	if transport.HasInterval(tr) {
		r.Scenario.IntervalNs = int64(time.Second)
	}
	if mod != nil {
		mod(&r.Scenario)
	}
	return r
}

func tlsOn(s *results.Scenario)   { s.TLS = true }
func browser(s *results.Scenario) { s.Headers, s.ResponseHeaders = "browser", "deployment" }

// TestHTTPVariantsKeptApart: two records that differ only in TLS are two
// cells everywhere: the matrix, the table (with an http column), bench.txt,
// the .hgrm files, the findings.
func TestHTTPVariantsKeptApart(t *testing.T) {
	t.Parallel()
	recs := []results.Record{httpRecord("ws", 1, nil), httpRecord("ws", 2, tlsOn)}
	m := newMatrix(recs)
	if len(m.cells) != 2 {
		t.Fatalf("%d cells, want 2 (plain and TLS)", len(m.cells))
	}
	if m.cells[0].at.HTTP.TLS || !m.cells[1].at.HTTP.TLS {
		t.Errorf("cells in order %v, %v: want without TLS first", m.cells[0].at.HTTP, m.cells[1].at.HTTP)
	}
	if m.head.HTTP.TLS {
		t.Errorf("headline %+v: a tie goes to the default", m.head.HTTP)
	}
	h := header(m.hasNetworks(), m.hasHTTPVariants(), m.hasWorkloads())
	if h[1] != "http" {
		t.Fatalf("header %v, want an http column", h)
	}
	rs := rows(m)
	if len(rs) != 2 || rs[0].HTTP != "HTTP/1.1, Go headers" || rs[1].HTTP != "HTTP/1.1, TLS, Go headers" || !rs[1].GroupStart {
		t.Fatalf("rows %+v", rs)
	}
	for _, r := range rs {
		if c := r.cells(); len(c) != len(h) || c[1] != r.HTTP {
			t.Errorf("row %v: %d cells for %d columns", c, len(c), len(h))
		}
	}
	var bench bytes.Buffer
	if err := WriteBenchText(&bench, recs); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"BenchmarkCompare/transport=ws/clients=10/rate=1/payload=64 \t", "BenchmarkCompare/transport=ws/clients=10/rate=1/payload=64/tls=on \t"} {
		if !strings.Contains(bench.String(), want) {
			t.Errorf("bench.txt lacks %q:\n%s", want, bench.String())
		}
	}
	if a, b := cellFileStem(recs[0].Scenario), cellFileStem(recs[1].Scenario); a == b {
		t.Errorf("both cells' files are named %s", a)
	}
	// Both fail the same check: two problems, each named with its way of
	// speaking HTTP.
	for i := range recs {
		recs[i].Checks = map[string]results.Check{"no_loss": {OK: false}}
	}
	var problems []string
	for _, f := range newMatrix(recs).problemFindings() {
		if f.bad {
			problems = append(problems, f.text)
		}
	}
	if len(problems) != 2 || problems[0] == problems[1] || !strings.Contains(problems[1], "HTTP/1.1, TLS, Go headers") {
		t.Errorf("problem findings %q", problems)
	}
	// Report writes one histogram file per cell.
	recs = []results.Record{httpRecord("ws", 1, nil), httpRecord("ws", 2, tlsOn)}
	for i := range recs {
		recs[i].Histogram = testHistogram(t, recs[i].Latency.P50)
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
	for _, name := range []string{"ws-c10-r1-p64.hgrm", "ws-c10-r1-p64-tls.hgrm", OverheadMarkdownFile, OverheadCSVFile} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			t.Error(err)
		}
	}
	index, _ := os.ReadFile(filepath.Join(dir, IndexFile))
	if !bytes.Contains(index, []byte(`href="overhead.md"`)) {
		t.Error("index.html does not link overhead.md")
	}
}

// testHistogram encodes a histogram of 100 latencies at v ns.
func testHistogram(t *testing.T, v int64) string {
	t.Helper()
	h := results.NewHistogram()
	for range 100 {
		if err := h.RecordValue(v); err != nil {
			t.Fatal(err)
		}
	}
	s, err := results.EncodeHistogram(h)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestFloorJoinsHTTPVariants: a comparison speaks HTTP with browser
// headers but runs the floor, which speaks none, with the defaults (and
// once per TLS setting): each variant still compares with the floor of
// its TLS setting, in the table, the findings and the charts.
func TestFloorJoinsHTTPVariants(t *testing.T) {
	t.Parallel()
	both := func(s *results.Scenario) { browser(s); tlsOn(s) }
	recs := []results.Record{
		httpRecord("sse", 4, browser), httpRecord("ws", 3, browser), httpRecord("tcp", 2, nil),
		httpRecord("sse", 8, both), httpRecord("ws", 6, both), httpRecord("tcp", 4, tlsOn),
	}
	m := newMatrix(recs)
	if m.head.HTTP.Headers != "browser" || m.head.HTTP.TLS {
		t.Fatalf("headline HTTP %+v, want browser headers without TLS", m.head.HTTP)
	}
	var got []string
	for _, r := range rows(m) {
		got = append(got, strings.Join([]string{r.Transport, r.HTTP, r.Floor, map[bool]string{true: "start"}[r.GroupStart]}, " | "))
	}
	want := []string{
		"SSE | HTTP/1.1, browser headers | 2× / 2× | start",
		"WebSocket | HTTP/1.1, browser headers | 1.5× / 1.5× | ",
		"raw TCP (floor) | no HTTP |  | ",
		"SSE | HTTP/1.1, TLS, browser headers | 2× / 2× | start",
		"WebSocket | HTTP/1.1, TLS, browser headers | 1.5× / 1.5× | ",
		"raw TCP (floor) | no HTTP, TLS |  | ",
	}
	if !slices.Equal(got, want) {
		t.Errorf("rows\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if s := m.floorFinding(m.head); !strings.Contains(s, "p50 2 ms") || !strings.Contains(s, "SSE 2× / 2× and WebSocket 1.5× / 1.5×") {
		t.Errorf("floor finding %q", s)
	}
	names := func(cells []*cell) []string {
		var out []string
		for _, c := range cells {
			out = append(out, c.v.Transport+map[bool]string{true: "+tls"}[c.at.HTTP.TLS])
		}
		return out
	}
	if got := names(m.at(m.head)); !slices.Equal(got, []string{"sse", "ws", "tcp"}) {
		t.Errorf("cells at the headline %v", got)
	}
	tlsHead := m.head
	tlsHead.HTTP.TLS = true
	if got := names(m.at(tlsHead)); !slices.Equal(got, []string{"sse+tls", "ws+tls", "tcp+tls"}) {
		t.Errorf("cells at the headline with TLS %v", got)
	}
	if at, cells := m.slice(dimClients, nil); at.HTTP != m.head.HTTP || !slices.Equal(names(cells), []string{"sse", "ws", "tcp"}) {
		t.Errorf("slice at %+v: %v", at.HTTP, names(cells))
	}
}

// TestLimitedCellsOneHTTPVariant: the link-time chart shows the headline
// workload spoken one way: a TLS copy of a cell is not a second bar in the
// same slot.
func TestLimitedCellsOneHTTPVariant(t *testing.T) {
	t.Parallel()
	slow := func(s *results.Scenario) {
		s.Network = results.Network{Name: "3g", RTTNs: 2e8, DownBps: 1_000_000, UpBps: 500_000}
	}
	slowTLS := func(s *results.Scenario) { slow(s); tlsOn(s) }
	m := newMatrix([]results.Record{httpRecord("ws", 1, slow), httpRecord("ws", 1, slowTLS), httpRecord("sse", 1, slow)})
	cells := m.limitedCells()
	if len(cells) != 2 || cells[0].at.HTTP.TLS || cells[1].at.HTTP.TLS {
		t.Errorf("limited cells %d, want sse and ws without TLS", len(cells))
	}
}

// TestFloorRowsWithTheirGroup: where cells also speak HTTP the floor's way
// (Go's headers over HTTP/1.1), the floor row ends their group; the TLS
// floor, with no such group, ends its TLS setting's rows.
func TestFloorRowsWithTheirGroup(t *testing.T) {
	t.Parallel()
	both := func(s *results.Scenario) { browser(s); tlsOn(s) }
	m := newMatrix([]results.Record{
		httpRecord("ws", 3, browser), httpRecord("tcp", 2, nil), httpRecord("ws", 3, nil),
		httpRecord("ws", 6, both), httpRecord("tcp", 4, tlsOn), httpRecord("sse", 3, browser),
	})
	var got []string
	for _, r := range rows(m) {
		got = append(got, strings.Join([]string{r.Transport, r.HTTP, map[bool]string{true: "start"}[r.GroupStart]}, " | "))
	}
	want := []string{
		"WebSocket | HTTP/1.1, Go headers | start",
		"raw TCP (floor) | no HTTP | ",
		"SSE | HTTP/1.1, browser headers | start",
		"WebSocket | HTTP/1.1, browser headers | ",
		"WebSocket | HTTP/1.1, TLS, browser headers | start",
		"raw TCP (floor) | no HTTP, TLS | ",
	}
	if !slices.Equal(got, want) {
		t.Errorf("rows\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
