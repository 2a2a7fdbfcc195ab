package report

import (
	"bytes"
	"errors"
	"image/png"
	"maps"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"gonum.org/v1/plot"

	"pushbench/results"
)

// copyFixture copies testdata/<name> into a fresh folder.
func copyFixture(t *testing.T, name string) string {
	t.Helper()
	dir := t.TempDir()
	src := filepath.Join("testdata", name)
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, e.Name()), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// chartNames returns the charts Report draws for the records of dir.
func chartNames(t *testing.T, dir string) []string {
	t.Helper()
	recs, err := results.ReadRunRecords(dir)
	if err != nil && !errors.Is(err, results.ErrTruncated) {
		t.Fatal(err)
	}
	charts, errs := newMatrix(recs).charts()
	if len(errs) > 0 {
		t.Errorf("building charts: %v", errs)
	}
	var names []string
	for _, c := range charts {
		names = append(names, c.Name)
	}
	return names
}

// checkRunFolder asserts that every output of Report exists and decodes.
func checkRunFolder(t *testing.T, dir string) {
	t.Helper()
	names := chartNames(t, dir)
	for _, want := range []string{"latency-percentiles", "latency-vs-clients", "bytes-per-event",
		"requests-per-event", "cpu-per-event", "memory-per-conn"} {
		found := false
		for _, n := range names {
			found = found || n == want
		}
		if !found {
			t.Errorf("chart %s is missing from %v", want, names)
		}
	}
	for _, name := range names {
		data, err := os.ReadFile(filepath.Join(dir, name+".png"))
		if err != nil {
			t.Error(err)
			continue
		}
		img, err := png.Decode(bytes.NewReader(data))
		if err != nil {
			t.Errorf("%s.png: %v", name, err)
		} else if b := img.Bounds(); b.Dx() < 6*pngDPI || b.Dy() < 4*pngDPI { // at least 6 × 4 inches
			t.Errorf("%s.png is %dx%d, too small to read", name, b.Dx(), b.Dy())
		}
		svg, err := os.ReadFile(filepath.Join(dir, name+".svg"))
		if err != nil {
			t.Error(err)
			continue
		}
		s := strings.TrimSpace(string(svg))
		if !strings.HasPrefix(s, "<?xml") && !strings.HasPrefix(s, "<svg") {
			t.Errorf("%s.svg does not start with <?xml or <svg: %.40q", name, s)
		}
		if !strings.Contains(s, "@font-face") {
			t.Errorf("%s.svg does not embed its fonts", name)
		}
	}
	for _, name := range []string{SummaryMarkdownFile, SummaryCSVFile, BenchTextFile, IndexFile} {
		if fi, err := os.Stat(filepath.Join(dir, name)); err != nil || fi.Size() == 0 {
			t.Errorf("%s: missing or empty (%v)", name, err)
		}
	}
	index, _ := os.ReadFile(filepath.Join(dir, IndexFile))
	for _, name := range names {
		if !bytes.Contains(index, []byte(`src="`+name+`.png"`)) {
			t.Errorf("index.html does not show %s.png", name)
		}
	}
	if bytes.Contains(index, []byte("http://")) || bytes.Contains(index, []byte("https://")) {
		t.Error("index.html refers to the network")
	}
}

// realRun is a small comparison recorded on a real machine (results.jsonl
// and run.json of `pushbench compare --transports
// shortpoll,longpoll,sse,ws,tcp --intervals 100ms --clients 1,20 --rates
// 10,50 --payloads 64 --duration 2s --warmup 200ms --repeat 2`): 15 cells
// run twice each. Four of its 30 records failed publisher_on_schedule,
// which the report must show and keep out of bench.txt. The golden files
// testdata/real.*.golden are made from it.
const realRun = "real"

func TestReportFixtures(t *testing.T) {
	t.Parallel()
	dirs := []string{realRun}
	for _, fx := range fixtures {
		dirs = append(dirs, fx.dir)
	}
	for _, name := range dirs {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			dir := copyFixture(t, name)
			recs, err := results.ReadRunRecords(dir)
			if err != nil {
				t.Fatal(err)
			}
			if err := Report(dir); err != nil {
				t.Fatalf("Report: %v", err)
			}
			checkRunFolder(t, dir)
			// One .hgrm per cell (repeats share one) with a histogram.
			withHist := map[results.Scenario]bool{}
			for _, r := range recs {
				if r.Histogram != "" {
					withHist[r.Scenario] = true
				}
			}
			hgrms, _ := filepath.Glob(filepath.Join(dir, "*.hgrm"))
			if len(hgrms) != len(withHist) {
				t.Errorf("%d .hgrm files, want one per cell with a histogram (%d)", len(hgrms), len(withHist))
			}
			if name == realRun {
				got, _ := os.ReadFile(filepath.Join(dir, SummaryMarkdownFile))
				want, _ := os.ReadFile(filepath.Join("testdata", realRun+"."+SummaryMarkdownFile+".golden"))
				if !bytes.Equal(got, want) {
					t.Errorf("Report's summary.md differs from the golden file:\n%s", firstDiff(string(got), string(want)))
				}
			}
		})
	}
}

// readRealRun reads the recorded run's records and run.json.
func readRealRun(t *testing.T) ([]results.Record, results.RunInfo) {
	t.Helper()
	recs, err := results.ReadRecords(filepath.Join("testdata", realRun, results.RecordsFile))
	if err != nil {
		t.Fatal(err)
	}
	info, err := results.ReadRunInfo(filepath.Join("testdata", realRun, results.RunInfoFile))
	if err != nil {
		t.Fatal(err)
	}
	return recs, info
}

// TestReportGolden compares summary.md and bench.txt of the recorded run
// with testdata/real.*.golden (-update rewrites them). TestReportFixtures
// checks that Report writes the same summary.md; TestReportRealRun checks
// the figures in them against the records.
func TestReportGolden(t *testing.T) {
	t.Parallel()
	recs, info := readRealRun(t)
	outputs := map[string]func(*bytes.Buffer) error{
		SummaryMarkdownFile: func(b *bytes.Buffer) error { return WriteSummaryMarkdown(b, recs, &info) },
		BenchTextFile:       func(b *bytes.Buffer) error { return WriteBenchText(b, recs) },
	}
	for name, write := range outputs {
		var buf bytes.Buffer
		if err := write(&buf); err != nil {
			t.Fatal(err)
		}
		got := buf.Bytes()
		golden := filepath.Join("testdata", realRun+"."+name+".golden")
		if *update {
			if err := os.WriteFile(golden, got, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(golden)
		if err != nil {
			t.Fatalf("%v (run with -update to create it)", err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s differs from %s (run with -update if the change is intended):\n%s", name, golden, firstDiff(string(got), string(want)))
		}
	}
}

func firstDiff(got, want string) string {
	g, w := strings.Split(got, "\n"), strings.Split(want, "\n")
	for i := range max(len(g), len(w)) {
		var gl, wl string
		if i < len(g) {
			gl = g[i]
		}
		if i < len(w) {
			wl = w[i]
		}
		if gl != wl {
			return "line " + strconv.Itoa(i+1) + ":\n got: " + gl + "\nwant: " + wl
		}
	}
	return ""
}

func TestReportErrors(t *testing.T) {
	t.Parallel()
	if err := Report(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Error("Report(missing dir) = nil")
	}
	empty := t.TempDir()
	if err := Report(empty); err == nil || !strings.Contains(err.Error(), "no results.jsonl or result.json") {
		t.Errorf("Report(empty dir) = %v", err)
	}
	blank := t.TempDir()
	os.WriteFile(filepath.Join(blank, results.RecordsFile), nil, 0o644)
	if err := Report(blank); err == nil || !strings.Contains(err.Error(), "no records") {
		t.Errorf("Report(empty results.jsonl) = %v", err)
	}
}

// TestReportTruncated: an interrupted comparison leaves a partial last
// line; the report keeps the finished cells and says what happened.
func TestReportTruncated(t *testing.T) {
	t.Parallel()
	dir := copyFixture(t, "onetransport")
	path := filepath.Join(dir, results.RecordsFile)
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(`{"schema":"pushbench.result/v1","scenario":{"transport":"ws"`)
	f.Close()
	err = Report(dir)
	if !errors.Is(err, results.ErrTruncated) {
		t.Fatalf("Report = %v, want ErrTruncated", err)
	}
	checkRunFolder(t, dir)
	md, _ := os.ReadFile(filepath.Join(dir, SummaryMarkdownFile))
	if !bytes.Contains(md, []byte("Warning: ")) || !bytes.Contains(md, []byte("truncated record")) {
		t.Errorf("summary.md does not warn about the truncated record:\n%s", md)
	}
}

// TestChartsDegenerate draws charts from data that makes gonum/plot's log
// axes panic when used naively: zeros, negatives, a single point, equal
// values, NaN.
func TestChartsDegenerate(t *testing.T) {
	t.Parallel()
	base := synth(fixtureCell{"ws", 0, 10, 1, 64})
	mk := func(mut func(r *results.Record)) []results.Record {
		r := base
		mut(&r)
		return []results.Record{r}
	}
	cases := map[string][]results.Record{
		"single": mk(func(r *results.Record) {}),
		"zeros": mk(func(r *results.Record) {
			r.Latency, r.Wire, r.Server, r.RequestsPerEvent, r.Histogram = results.Latency{}, results.Wire{}, results.Server{}, 0, ""
		}),
		"negative": mk(func(r *results.Record) {
			r.Latency.P50, r.Latency.P99 = -5, -1
			r.Wire.DownBytesPerEvent, r.Server.CPUUsPerEvent, r.Server.RSSBytesPerConn = -3, -1, -4096
		}),
		"huge": mk(func(r *results.Record) {
			r.Latency.P99, r.Server.CPUUsPerEvent, r.Scenario.Rate = math.MaxInt64, 1e300, 1e-300
		}),
		"bad histogram":         mk(func(r *results.Record) { r.Histogram = "garbage" }),
		"unknown transport":     mk(func(r *results.Record) { r.Scenario.Transport = "webtransport" }),
		"zero rate and clients": mk(func(r *results.Record) { r.Scenario.Rate, r.Scenario.Clients = 0, 0 }),
	}
	// Several records at the same x with identical values (min == max).
	same := []results.Record{base, base, base}
	same[1].Scenario.Transport, same[2].Scenario.Transport = "sse", "longpoll"
	cases["equal values"] = same
	for name, recs := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			m := newMatrix(recs)
			charts, errs := m.charts()
			if name != "bad histogram" && len(errs) > 0 {
				t.Errorf("charts: %v", errs)
			}
			if name == "bad histogram" && len(errs) == 0 {
				t.Error("an unreadable histogram was not reported")
			}
			formats := []string{"png"} // the drawing code is the same for SVG
			if name == "single" {
				formats = append(formats, "svg")
			}
			for _, c := range charts {
				for _, format := range formats {
					data, err := c.fig.render(format)
					if err != nil {
						t.Errorf("%s.%s: %v", c.Name, format, err)
					} else if len(data) == 0 {
						t.Errorf("%s.%s is empty", c.Name, format)
					}
				}
			}
			// The findings and tables must not fail either.
			var buf bytes.Buffer
			if err := WriteSummaryMarkdown(&buf, recs, nil); err != nil {
				t.Error(err)
			}
			if err := WriteBenchText(&buf, recs); err != nil {
				t.Error(err)
			}
			if err := WriteSummaryCSV(&buf, recs); err != nil {
				t.Error(err)
			}
		})
	}
}

// TestRenderRecoversPanic: a panic inside gonum/plot becomes an error.
func TestRenderRecoversPanic(t *testing.T) {
	t.Parallel()
	p := newPanel("bad", "x", "y")
	p.X.Scale = plot.LogScale{}
	p.X.Min, p.X.Max = -1, 1 // LogScale panics on values ≤ 0
	f := &figure{title: "bad", panels: []*plot.Plot{p}}
	if _, err := f.render("png"); err == nil {
		t.Error("render of a panicking plot = nil error")
	}
}

func TestLogRange(t *testing.T) {
	t.Parallel()
	for _, vs := range [][]float64{nil, {0}, {-1, 0}, {5}, {5, 5}, {0, 5}, {math.NaN(), 3}, {1e-300, 1e300}} {
		lo, hi, floor := logRange(vs)
		if !(lo > 0) || !(hi > lo) || floor < lo || floor > hi {
			t.Errorf("logRange(%v) = %g, %g, floor %g", vs, lo, hi, floor)
		}
		if ticks := (logTicks{format: tickNumber}).Ticks(lo, hi); len(ticks) == 0 {
			t.Errorf("logRange(%v): no ticks on [%g, %g]", vs, lo, hi)
		}
	}
}

func TestProblemFindingsAreCountedWhenMany(t *testing.T) {
	t.Parallel()
	recs, err := results.ReadRecords(filepath.Join("testdata", "compare", results.RecordsFile))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 6 {
		r := &recs[i]
		r.Checks = maps.Clone(r.Checks)
		r.Checks["publisher_on_schedule"] = results.Check{OK: false, Detail: "late"}
	}
	fs := newMatrix(recs).problemFindings()
	// One summarising finding for the problems, then the fixture's note
	// about reconnects.
	if len(fs) != 2 || !fs[0].bad || fs[1].bad {
		t.Fatalf("problemFindings = %+v, want one summarising finding and one note", fs)
	}
	for _, want := range []string{"7 of 44 cells have problems", "check publisher_on_schedule failed in 6 cells", "loss in 1 cell"} {
		if !strings.Contains(fs[0].text, want) {
			t.Errorf("finding %q does not contain %q", fs[0].text, want)
		}
	}
}
