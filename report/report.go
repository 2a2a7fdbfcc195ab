// Package report turns saved results into what people read: summary.md,
// summary.csv, bench.txt (for benchstat), the charts, index.html and its
// findings, and for runs that speak HTTP as browsers do overhead.md and
// overhead.csv (Kaazing's table with measured bytes). It reads run folders only (package results), so `pushbench
// plot DIR` redraws a report without re-running anything.
package report

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"pushbench/results"
)

// Files that Report writes into a run folder, besides the charts
// (<chart>.png and <chart>.svg) and one <cell>.hgrm per cell.
const (
	SummaryMarkdownFile = "summary.md"
	SummaryCSVFile      = "summary.csv"
	BenchTextFile       = "bench.txt"
	IndexFile           = "index.html"
)

// Report reads the results of the run folder dir (results.jsonl, or
// result.json; run.json if present) and writes, into dir, summary.md,
// summary.csv, bench.txt, every chart as PNG and SVG, one .hgrm file per
// cell, index.html and, when a record spoke HTTP other than the default
// way (HasOverhead), overhead.md and overhead.csv. It only reads saved results, so it can be rerun at
// any time (`pushbench plot DIR`).
//
// A chart that cannot be drawn, an unreadable histogram or a truncated
// last record does not stop the report: everything else is written and
// the problems are returned together. Files are written whole or not at
// all.
func Report(dir string) error {
	recs, err := results.ReadRunRecords(dir)
	var problems []error
	if err != nil {
		if !errors.Is(err, results.ErrTruncated) || len(recs) == 0 {
			return err
		}
		problems = append(problems, err) // keep the cells that finished
	}
	if len(recs) == 0 {
		return fmt.Errorf("%s: no records", dir)
	}
	var info *results.RunInfo
	if ri, err := results.ReadRunInfo(filepath.Join(dir, results.RunInfoFile)); err == nil {
		info = &ri
	} else if !errors.Is(err, os.ErrNotExist) {
		problems = append(problems, err)
	}

	rep := newReport(recs, info)
	for _, p := range problems {
		rep.warnings = append(rep.warnings, p.Error())
	}

	write := func(name string, fill func(*bytes.Buffer) error) {
		var buf bytes.Buffer
		if err := fill(&buf); err != nil {
			problems = append(problems, fmt.Errorf("%s: %w", name, err))
			return
		}
		if err := results.WriteFileAtomic(filepath.Join(dir, name), buf.Bytes()); err != nil {
			problems = append(problems, err)
		}
	}

	charts, errs := rep.m.charts()
	problems = append(problems, errs...)
	for _, c := range charts {
		for _, format := range []string{"png", "svg"} {
			data, err := c.fig.render(format)
			if err != nil {
				problems = append(problems, err)
				continue
			}
			if err := results.WriteFileAtomic(filepath.Join(dir, c.Name+"."+format), data); err != nil {
				problems = append(problems, err)
			}
		}
	}
	capa, err := readCapacity(dir)
	if err != nil {
		problems = append(problems, err)
	}
	if capa != nil {
		f, err := safeBuild(func() (*figure, error) { return capacityChart(capa) })
		if err != nil {
			problems = append(problems, fmt.Errorf("chart capacity: %w", err))
		} else {
			for _, format := range []string{"png", "svg"} {
				data, err := f.render(format)
				if err == nil {
					err = results.WriteFileAtomic(filepath.Join(dir, "capacity."+format), data)
				}
				if err != nil {
					problems = append(problems, err)
				}
			}
			charts = append([]chart{{Name: "capacity", Title: f.title, HowTo: capacityHowTo, fig: f}}, charts...)
		}
		write(CapacityMarkdownFile, func(b *bytes.Buffer) error { _, err := b.WriteString(CapacityMarkdown(capa)); return err })
		rep.capacity = capa
	}
	rep.charts = charts

	rep.hgrms, errs = writeHGRMs(dir, rep.m)
	problems = append(problems, errs...)

	write(SummaryMarkdownFile, func(b *bytes.Buffer) error { return rep.writeMarkdown(b) })
	write(SummaryCSVFile, func(b *bytes.Buffer) error { return WriteSummaryCSV(b, recs) })
	write(BenchTextFile, func(b *bytes.Buffer) error { return WriteBenchText(b, recs) })
	if rep.overhead {
		md, csvText := Overhead(recs)
		write(OverheadMarkdownFile, func(b *bytes.Buffer) error { _, err := b.WriteString(md); return err })
		write(OverheadCSVFile, func(b *bytes.Buffer) error { _, err := b.WriteString(csvText); return err })
	}
	if HasBrowsers(recs) {
		write(BrowsersMarkdownFile, func(b *bytes.Buffer) error { _, err := b.WriteString(Browsers(recs)); return err })
	}
	if HasAgents(recs) {
		write(AgentsMarkdownFile, func(b *bytes.Buffer) error { _, err := b.WriteString(Agents(recs)); return err })
	}
	write(IndexFile, func(b *bytes.Buffer) error { return rep.writeHTML(b, dir) })
	return errors.Join(problems...)
}

// writeHGRMs writes one .hgrm file per cell with a histogram and returns
// their names.
func writeHGRMs(dir string, m *matrix) (names []string, errs []error) {
	for _, c := range m.cells {
		h, err := c.mergedHistogram()
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if h == nil {
			continue
		}
		var buf bytes.Buffer
		if err := results.WriteHGRM(&buf, h); err != nil {
			errs = append(errs, err)
			continue
		}
		name := cellFileStem(c.recs[0].Scenario) + ".hgrm"
		if err := results.WriteFileAtomic(filepath.Join(dir, name), buf.Bytes()); err != nil {
			errs = append(errs, err)
			continue
		}
		names = append(names, name)
	}
	return names, errs
}

// report is everything the summaries and index.html show.
type report struct {
	recs     []results.Record
	info     *results.RunInfo
	m        *matrix
	rows     []row
	findings []finding
	charts   []chart
	hgrms    []string
	warnings []string
	// overhead: the run has overhead.md and overhead.csv (HasOverhead).
	overhead bool
	// capacity is the run's capacity.json, if it has one.
	capacity *results.Capacity
}

func newReport(recs []results.Record, info *results.RunInfo) *report {
	m := newMatrix(recs)
	if info != nil {
		m.planned = info.CellsPlanned
	}
	return &report{recs: recs, info: info, m: m, rows: rows(m), findings: m.findings(), overhead: HasOverhead(recs)}
}

// runLine is one line describing the run; Code is shown as code.
type runLine struct {
	Text, Code string
}

// runLines describes the run: preset, command, time, progress, matrix.
func (r *report) runLines() []runLine {
	var out []runLine
	add := func(s string) { out = append(out, runLine{Text: s}) }
	if i := r.info; i != nil {
		if i.Preset != "" {
			add("Preset: " + i.Preset)
		}
		if len(i.Command) > 0 {
			out = append(out, runLine{Text: "Command: ", Code: strings.Join(i.Command, " ")})
		}
		when := "Started " + orDash(i.StartedAt)
		if i.FinishedAt != "" {
			when += ", finished " + i.FinishedAt
		} else {
			when += ", not finished (interrupted or still running)"
		}
		add(when)
		if i.CellsPlanned > 0 {
			add(fmt.Sprintf("Cells: %d of %d done", i.CellsDone, i.CellsPlanned))
		}
	} else if len(r.recs) > 0 {
		first, last := r.recs[0].StartedAt, r.recs[len(r.recs)-1].FinishedAt
		add(fmt.Sprintf("Measured %s to %s (no run.json)", orDash(first), orDash(last)))
	}
	var ts []string
	for _, v := range r.m.variants {
		ts = append(ts, v.Label())
	}
	add(fmt.Sprintf("%s: %s", Plural(len(r.recs), "record"), strings.Join(ts, ", ")))
	if !r.m.hasWorkloads() {
		add("Clients " + joinValues(distinct(r.m.cells, dimClients)) +
			"; event rates " + joinValues(distinct(r.m.cells, dimRate)) + " events/s" +
			"; payloads " + joinValues(distinct(r.m.cells, dimPayload)) + " B")
	} else {
		add("Workloads: " + strings.Join(r.m.workloads(), "; "))
		add("Clients " + joinValues(distinct(r.m.cells, dimClients)) +
			"; payloads " + joinValues(distinct(r.m.cells, dimPayload)) + " B")
	}
	add("Headline scenario: " + describe(r.m.head))
	return out
}

func joinValues(vs []float64) string {
	parts := make([]string, len(vs))
	for i, v := range vs {
		parts[i] = strconv.FormatFloat(v, 'g', -1, 64)
	}
	return strings.Join(parts, ", ")
}

// env lists the environment as label/value pairs.
func (r *report) env() [][2]string {
	e, n := envOf(r.recs, r.info)
	out := [][2]string{
		{"Go", orDash(e.GoVersion)},
		{"OS/arch", orDash(strings.Trim(e.OS+"/"+e.Arch, "/"))},
		{"CPU", orDash(e.CPUModel)},
		{"CPUs / GOMAXPROCS", fmt.Sprintf("%d / %d", e.NumCPU, e.GOMAXPROCS)},
		{"Kernel", orDash(e.Kernel)},
		{"Commit", orDash(e.Commit)},
		{"Host", orDash(e.Hostname)},
	}
	if n > 1 {
		out = append(out, [2]string{"Note", fmt.Sprintf("the records come from %d different environments; this is the first", n)})
	}
	return out
}

// pinning describes CPU pinning when the records used it.
func (r *report) pinning() string {
	var parts []string
	for _, rec := range r.recs {
		s := rec.Scenario
		if s.ServerCPUs != "" || s.ClientCPUs != "" {
			p := fmt.Sprintf("server on CPUs %s, clients on CPUs %s", orDash(s.ServerCPUs), orDash(s.ClientCPUs))
			if !slices.Contains(parts, p) {
				parts = append(parts, p)
			}
		}
	}
	return strings.Join(parts, "; ")
}
