package report

import (
	"bytes"
	"encoding/json"
	"fmt"
	"html/template"
	"image/color"
	"os"
	"path/filepath"

	"pushbench/results"
	"pushbench/transport"
)

// index.html is self-contained: inline CSS, no script, no network; the
// charts are the PNG files beside it (each linking to its SVG).

type htmlChart struct {
	Title, HowTo, PNG, SVG string
}

type htmlRow struct {
	row
	Swatch template.CSS
}

type htmlLink struct{ Name, Href string }

type htmlPage struct {
	Title    string
	Run      []runLine
	Env      [][2]string
	Pinning  string
	Config   string
	Findings []finding
	Warnings []string
	Failures []checkFailure
	Charts   []htmlChart
	Header   []string
	Rows     []htmlRow
	Files    []htmlLink
	HGRMs    []string
	// Overhead is overhead.md's name when the run has it.
	Overhead string
	// Browsers is browsers.md's name when the run has browser cells.
	Browsers string
	// Agents is agents.md's name when the run has cells on agents.
	Agents string
	// Capacity is the capacity search's outcome, one line per transport,
	// when the run has capacity.json.
	Capacity   []string
	CapacityMD string
	// WorkloadNote says what the table means for chat and game cells.
	WorkloadNote string
}

// Text and Bad expose finding to the template.
func (f finding) Text() string { return f.text }
func (f finding) Bad() bool    { return f.bad }

var indexTemplate = template.Must(template.New("index").Parse(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}}</title>
<style>
body{margin:0;background:#f6f6f4;color:#1f1f1f;font:15px/1.5 "Liberation Sans",Arial,Helvetica,sans-serif}
main{max-width:1320px;margin:0 auto;padding:24px 32px 64px}
h1{font-size:26px;margin:0 0 6px}
h2{font-size:20px;margin:36px 0 12px;padding-bottom:4px;border-bottom:2px solid #ddd}
h3{font-size:16px;margin:0 0 2px}
ul.run{margin:0;padding:0;list-style:none;color:#555}
ul.findings{padding-left:20px}
ul.findings li{margin:6px 0}
.bad{color:#a40018;font-weight:bold}
.warn{color:#8a5a00}
dl.env{display:grid;grid-template-columns:max-content 1fr;gap:2px 16px;margin:0}
dl.env dt{color:#555}
dl.env dd{margin:0}
figure{margin:0 0 24px;padding:14px 16px;background:#fff;border:1px solid #e0e0e0;border-radius:6px}
figure p{margin:0 0 10px;color:#444}
figure img{display:block;max-width:100%;height:auto}
code{font:13px/1.4 "Liberation Mono",Menlo,Consolas,monospace;background:#ecece8;padding:1px 4px;border-radius:3px}
.links{font-size:13px}
.tablewrap{overflow-x:auto;background:#fff;border:1px solid #e0e0e0;border-radius:6px}
table{border-collapse:collapse;font-size:13px;font-variant-numeric:tabular-nums;width:100%}
th,td{padding:4px 8px;border-bottom:1px solid #eee;text-align:right;white-space:nowrap}
th{position:sticky;top:0;background:#f0f0ee;font-weight:bold;white-space:normal;vertical-align:bottom}
tr.group td{border-top:2px solid #c8c8c4}
th:first-child,td:first-child,td.notes,th.notes{text-align:left}
td.notes{white-space:normal;min-width:220px}
tr.bad td{background:#fdecee}
.swatch{display:inline-block;width:11px;height:11px;border-radius:2px;margin-right:6px;vertical-align:-1px}
pre{background:#fff;border:1px solid #e0e0e0;padding:8px;overflow-x:auto;font-size:12px}
a{color:#0059a0}
</style>
</head>
<body>
<main>
<h1>{{.Title}}</h1>
<ul class="run">{{range .Run}}<li>{{.Text}}{{with .Code}}<code>{{.}}</code>{{end}}</li>{{end}}</ul>

<h2 id="findings">What this run shows</h2>
<ul class="findings">
{{- range .Findings}}
<li{{if .Bad}} class="bad"{{end}}>{{.Text}}</li>
{{- end}}
{{- range .Warnings}}
<li class="warn">{{.}}</li>
{{- end}}
</ul>
{{- if .Failures}}
<details open><summary class="bad">Failed self-checks ({{len .Failures}})</summary>
<ul>
{{- range .Failures}}
<li>{{.Cell}} — <b>{{.Check}}</b>: {{.Detail}}</li>
{{- end}}
</ul></details>
{{- end}}

<h2 id="environment">Environment</h2>
<dl class="env">
{{- range .Env}}
<dt>{{index . 0}}</dt><dd>{{index . 1}}</dd>
{{- end}}
{{- if .Pinning}}
<dt>Pinning</dt><dd>{{.Pinning}}</dd>
{{- end}}
</dl>
{{- if .Config}}
<details><summary>Configuration (run.json)</summary><pre>{{.Config}}</pre></details>
{{- end}}

<h2 id="charts">Charts</h2>
{{- range .Charts}}
<figure>
<h3>{{.Title}}</h3>
<p>{{.HowTo}} <span class="links"><a href="{{.PNG}}">PNG</a> · <a href="{{.SVG}}">SVG</a></span></p>
<a href="{{.SVG}}"><img src="{{.PNG}}" alt="{{.Title}}"></a>
</figure>
{{- end}}

<h2 id="results">Results</h2>
<p>One row per cell. Latency is delivery latency (receive time − scheduled publish time); bytes are counted at the clients' connections per delivered event; CPU is the server's user + sys time per delivered event, and net of idle the same less the cost of holding the connections idle for the window; RSS is per connected client, after a GC. A percentile that rests on fewer independent events than it needs (100 for p99, 1000 for p99.9) is shown as the bound it is: ≤ max, with n, the events in the window. The last figures give each push transport's p50 and p99 as multiples of the floor, the raw TCP cell at the same point. With repeats, each figure is the median with the range in brackets. Rows with a problem are red; a cell that measured nothing shows —. docs/results.md defines every figure; summary.csv has all of them.</p>
{{- with .WorkloadNote}}
<p>{{.}}</p>
{{- end}}
<div class="tablewrap">
<table>
<thead><tr>{{range $i, $h := .Header}}<th{{if eq $h "notes"}} class="notes"{{end}}>{{$h}}</th>{{end}}</tr></thead>
<tbody>
{{- range .Rows}}
<tr class="{{if .GroupStart}}group{{end}}{{if .Bad}} bad{{end}}"><td><span class="swatch" style="background:{{.Swatch}}"></span>{{.Transport}}</td>{{range .Middle}}<td>{{.}}</td>{{end}}<td class="notes">{{.Notes}}</td></tr>
{{- end}}
</tbody>
</table>
</div>

{{- if .Capacity}}
<h2 id="capacity">Capacity</h2>
<p>Each transport searched to its edge (the steps and why the first failing one failed: <a href="{{.CapacityMD}}">{{.CapacityMD}}</a>, capacity.json):</p>
<ul>
{{- range .Capacity}}
<li>{{.}}</li>
{{- end}}
</ul>
{{- end}}
{{- if .Browsers}}
<h2 id="browsers">Browsers against Go clients</h2>
<p>Every browser cell beside the Go cell of the same transport and point: what the browser adds to latency, what its pages cost, which pages its connection limit held back: <a href="{{.Browsers}}">{{.Browsers}}</a>.</p>
{{- end}}
{{- if .Agents}}
<h2 id="agents">Load generators</h2>
<p>Cells whose clients ran on several load generators (pushbench agent): a row per load generator with its share, deliveries, latencies, CPU and clock offset to the server; each cell's figures are their exact merge: <a href="{{.Agents}}">{{.Agents}}</a>.</p>
{{- end}}
{{- if .Overhead}}
<h2 id="overhead">Overhead per request</h2>
<p>What each poll costs with nothing to deliver, and Kaazing's table (1,000, 10,000 and 100,000 clients at one event a second) with this run's measured bytes: <a href="{{.Overhead}}">{{.Overhead}}</a> (and overhead.csv).</p>
{{- end}}

<h2 id="files">Files</h2>
<ul>
{{- range .Files}}
<li><a href="{{.Href}}">{{.Name}}</a></li>
{{- end}}
</ul>
{{- if .HGRMs}}
<details><summary>Latency distributions (.hgrm, microseconds)</summary><ul>
{{- range .HGRMs}}
<li><a href="{{.}}">{{.}}</a></li>
{{- end}}
</ul></details>
{{- end}}
</main>
</body>
</html>
`))

// transportsCompared names the contenders of the run in display order,
// e.g. "short polling, long polling, SSE and WebSocket" (the floor is a
// reference, not a contender).
func (r *report) transportsCompared() string {
	seen := map[string]bool{}
	for _, rec := range r.recs {
		seen[rec.Scenario.Transport] = true
	}
	var labels []string
	for _, t := range transport.All() {
		if seen[t.Name] && !t.Floor {
			labels = append(labels, t.Label)
		}
	}
	if len(labels) == 0 {
		return "transports"
	}
	return joinAnd(labels)
}

func cssColor(c color.RGBA) template.CSS {
	return template.CSS(fmt.Sprintf("#%02x%02x%02x", c.R, c.G, c.B))
}

// writeHTML writes index.html. The files list names only files that exist
// in the run folder (or are about to: the summaries).
func (r *report) writeHTML(b *bytes.Buffer, dir string) error {
	page := htmlPage{
		Title:    "pushbench: " + r.transportsCompared() + " compared",
		Run:      r.runLines(),
		Env:      r.env(),
		Pinning:  r.pinning(),
		Findings: r.findings,
		Warnings: r.warnings,
		Failures: checkFailures(r.recs),
		Header:   header(r.m.hasNetworks(), r.m.hasHTTPVariants(), r.m.hasWorkloads()),
		HGRMs:    r.hgrms,
	}
	if r.info != nil && r.info.Preset != "" {
		page.Title += " (" + r.info.Preset + " run)"
	}
	if r.m.hasWorkloads() {
		page.WorkloadNote = workloadTableNote
	}
	if r.info != nil && len(r.info.Config) > 0 {
		var pretty bytes.Buffer
		if json.Indent(&pretty, r.info.Config, "", "  ") == nil {
			page.Config = pretty.String()
		} else {
			page.Config = string(r.info.Config)
		}
	}
	for _, c := range r.charts {
		page.Charts = append(page.Charts, htmlChart{Title: c.Title, HowTo: c.HowTo, PNG: c.Name + ".png", SVG: c.Name + ".svg"})
	}
	for _, row := range r.rows {
		st, _ := transportStyle(row.name)
		page.Rows = append(page.Rows, htmlRow{row: row, Swatch: cssColor(st.color)})
	}
	files := []string{SummaryMarkdownFile, SummaryCSVFile, BenchTextFile}
	if r.overhead {
		files = append(files, OverheadMarkdownFile, OverheadCSVFile)
		page.Overhead = OverheadMarkdownFile
	}
	if r.capacity != nil {
		for _, t := range r.capacity.Transports {
			page.Capacity = append(page.Capacity, transportLabel(t.Transport)+": "+t.Summary)
		}
		if r := capacityRatios(r.capacity); r != "" {
			page.Capacity = append(page.Capacity, r)
		}
		page.CapacityMD = CapacityMarkdownFile
		files = append(files, CapacityMarkdownFile, results.CapacityFile)
	}
	if HasBrowsers(r.recs) {
		files = append(files, BrowsersMarkdownFile)
		page.Browsers = BrowsersMarkdownFile
	}
	if HasAgents(r.recs) {
		files = append(files, AgentsMarkdownFile)
		page.Agents = AgentsMarkdownFile
	}
	for _, name := range append(files, results.RecordsFile, results.ResultFile, results.RunInfoFile) {
		switch name {
		case SummaryMarkdownFile, SummaryCSVFile, BenchTextFile, OverheadMarkdownFile, OverheadCSVFile, BrowsersMarkdownFile, AgentsMarkdownFile, CapacityMarkdownFile:
		default:
			if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
				continue
			}
		}
		page.Files = append(page.Files, htmlLink{Name: name, Href: name})
	}
	return indexTemplate.Execute(b, page)
}
