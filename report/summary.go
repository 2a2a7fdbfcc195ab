package report

import (
	"cmp"
	"encoding/csv"
	"fmt"
	"io"
	"maps"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"pushbench/results"
	"pushbench/transport"
)

// issue is something a reader must not miss about a cell.
type issue struct {
	text string
	bad  bool // loss, failed check, partial: the numbers are not clean
}

// issues lists what went wrong or needs a caveat in r, worst first.
func issues(r *results.Record) []issue {
	var out []issue
	bad := func(format string, args ...any) { out = append(out, issue{fmt.Sprintf(format, args...), true}) }
	warn := func(format string, args ...any) { out = append(out, issue{fmt.Sprintf(format, args...), false}) }
	switch results.StatusOf(r) {
	case results.StatusError:
		bad("no result: %s", orDash(r.Error))
		return out
	case results.StatusFailed:
		bad("failed: %s", orDash(r.Error))
	}
	switch {
	case r.Expected == 0 && r.Delivered == 0:
		bad("nothing expected or delivered")
	case r.Delivered == 0:
		bad("nothing delivered")
	}
	if r.Lost > 0 {
		share := ""
		if r.Expected > 0 {
			share = " (" + fmtPercent(float64(r.Lost)/float64(r.Expected)) + ")"
		}
		bad("lost %s of %s%s", fmtSig(float64(r.Lost)), fmtSig(float64(r.Expected)), share)
	}
	if r.Duplicates > 0 {
		bad("%s duplicates", fmtSig(float64(r.Duplicates)))
	}
	if r.OutOfOrder > 0 {
		bad("%s out of order", fmtSig(float64(r.OutOfOrder)))
	}
	for _, name := range r.FailedChecks() {
		bad("check %s failed", name)
	}
	if r.Partial {
		bad("partial run")
	}
	if n := r.Conn.TLSHandshakeFailures; n > 0 {
		bad("%s TLS handshakes failed", fmtSig(float64(n)))
	}
	if r.Reconnects > 0 {
		warn("%s reconnects", fmtSig(float64(r.Reconnects)))
	}
	if r.Server.SlowDisconnects > 0 {
		warn("%s slow clients cut off", fmtSig(float64(r.Server.SlowDisconnects)))
	}
	if r.Server.Stalls > 0 {
		warn("%s publish stalls", fmtSig(float64(r.Server.Stalls)))
	}
	return out
}

func issueText(is []issue) string {
	parts := make([]string, len(is))
	for i, x := range is {
		parts[i] = x.text
	}
	return strings.Join(parts, "; ")
}

func hasBad(is []issue) bool {
	return slices.ContainsFunc(is, func(x issue) bool { return x.bad })
}

// checkFailure is one failed self-check with its explanation.
type checkFailure struct {
	Cell, Check, Detail string
}

// checkFailures lists every failed check of recs, in table order.
func checkFailures(recs []results.Record) []checkFailure {
	var out []checkFailure
	for _, r := range sortedRecords(recs) {
		for _, name := range r.FailedChecks() {
			out = append(out, checkFailure{
				Cell:   variantOf(r.Scenario).Label() + ", " + describeCell(r.Scenario.Transport, coordOf(r.Scenario)),
				Check:  name,
				Detail: r.Checks[name].Detail,
			})
		}
	}
	return out
}

// row is one line of the summary table, formatted for people.
type row struct {
	Transport, Clients, Rate, Payload string
	// Network is the cell's emulated network ("loopback" for none); it is
	// a column only when the run has another one (showNetwork).
	Network     string
	showNetwork bool
	// HTTP is how the cell spoke HTTP (httpKey.label); a column only when
	// a cell of the run did not speak it the default way (showHTTP).
	HTTP     string
	showHTTP bool
	// Workload is what drove the cell's traffic (workKey.label); a column
	// only when a cell of the run is not a broadcast (showWork), and then
	// Rate carries its unit, which differs by workload.
	Workload string
	showWork bool
	// Figures are the metric columns (columns), formatted.
	Figures []string
	// Floor is p50 / p99 as multiples of the floor cell's (push cells).
	Floor string
	Notes string
	name  string // the transport's registry name
	cell  *cell
	Bad   bool
	// GroupStart marks the first row of a scenario (clients, rate, payload).
	GroupStart bool
}

// header is the table's header: the scenario, every metric column, the
// notes; with a network column when the run has more than the loopback,
// an http column when a cell spoke HTTP other than the default way (Go's
// headers over plain HTTP/1.1), and a workload column, the rate with its
// unit in each row and the upstream figures when a cell is not a
// broadcast (work).
func header(network, http, work bool) []string {
	h := []string{"transport"}
	if network {
		h = append(h, "network")
	}
	if http {
		h = append(h, "http")
	}
	if work {
		h = append(h, "workload", "clients", "rate", "payload")
	} else {
		h = append(h, "clients", "rate (ev/s)", "payload")
	}
	for _, m := range columns(work) {
		h = append(h, m.column)
	}
	return append(h, "p50 / p99 × floor", "notes")
}

func (r row) cells() []string {
	out := []string{r.Transport}
	if r.showNetwork {
		out = append(out, r.Network)
	}
	if r.showHTTP {
		out = append(out, r.HTTP)
	}
	if r.showWork {
		out = append(out, r.Workload)
	}
	out = append(append(out, r.Clients, r.Rate, r.Payload), r.Figures...)
	return append(out, r.Floor, r.Notes)
}

// header is the header of the table rows' cells.
func (r row) header() []string { return header(r.showNetwork, r.showHTTP, r.showWork) }

// Middle is every cell between the transport and the notes (for the HTML
// table, which styles those two).
func (r row) Middle() []string {
	c := r.cells()
	return c[1 : len(c)-1]
}

// sortedRecords orders records by scenario, then transport, so that the
// transports of one scenario sit next to each other; repeats keep their
// order.
func sortedRecords(recs []results.Record) []*results.Record {
	out := make([]*results.Record, len(recs))
	for i := range recs {
		out[i] = &recs[i]
	}
	slices.SortStableFunc(out, func(a, b *results.Record) int {
		if c := compareCoords(coordOf(a.Scenario), coordOf(b.Scenario)); c != 0 {
			return c
		}
		return compareVariants(variantOf(a.Scenario), variantOf(b.Scenario))
	})
	return out
}

// rows is one table row per cell: its figures, or with repeats each
// figure's median and, where the repeats differ, their range
// ("1.2 ms [1.1–1.4 ms]"); push transports' p50 and p99 also as multiples
// of the floor cell at the same point.
//
// Rows go by point (network, workload), then TLS; within one, each way of
// speaking HTTP is a group of its own. The floor, which speaks none, ends
// the group that speaks HTTP the way it was run (the defaults) or, when no
// cell did, comes last and closes the group before it.
func rows(m *matrix) []row {
	cells := slices.Clone(m.cells)
	spoken := map[coord]bool{} // points where a cell speaks HTTP
	for _, c := range cells {
		if !c.isFloor() {
			spoken[c.at] = true
		}
	}
	slices.SortStableFunc(cells, func(a, b *cell) int { return compareRows(a, b, spoken) })
	showHTTP := m.hasHTTPVariants()
	showWork := m.hasWorkloads()
	var out []row
	for i, c := range cells {
		var is []issue
		for _, r := range c.recs {
			for _, x := range issues(r) {
				if !slices.Contains(is, x) {
					is = append(is, x)
				}
			}
		}
		var figures []string
		for _, mt := range columns(showWork) {
			figures = append(figures, c.show(mt))
		}
		rate := fmtRate(c.at.Rate)
		if showWork {
			rate = c.at.Work.rateCell(c.at.Rate)
		}
		first := c.recs[0]
		httpLabel := c.at.HTTP.label()
		if c.isFloor() {
			httpLabel = c.at.HTTP.floorLabel()
		}
		out = append(out, row{
			Network:     cmp.Or(c.at.Network, "loopback"),
			showNetwork: m.hasNetworks(),
			HTTP:        httpLabel,
			showHTTP:    showHTTP,
			Workload:    c.at.Work.label(),
			showWork:    showWork,
			Transport:   c.v.Label(),
			Clients:     strconv.Itoa(c.at.Clients),
			Rate:        rate,
			Payload:     strconv.Itoa(c.at.Payload) + " B",
			Figures:     figures,
			Floor:       m.floorMultiple(c),
			Notes:       issueText(is),
			Bad:         hasBad(is),
			GroupStart:  i == 0 || groupStarts(cells[i-1], c),
			name:        first.Scenario.Transport,
			cell:        c,
		})
	}
	return out
}

// tlsPoint is at without the HTTP options but TLS.
func tlsPoint(at coord) coord {
	at.HTTP = httpKey{TLS: at.HTTP.TLS}
	return at
}

// compareRows orders the table: by point and TLS, then by the rest of the
// HTTP options and by variant; a floor cell at a point where no cell
// speaks HTTP (spoken) after all the others of its point and TLS.
func compareRows(a, b *cell, spoken map[coord]bool) int {
	if c := compareCoords(tlsPoint(a.at), tlsPoint(b.at)); c != 0 {
		return c
	}
	alone := func(c *cell) bool { return c.isFloor() && !spoken[c.at] }
	if c := cmpBool(alone(a), alone(b)); c != 0 {
		return c
	}
	if c := compareHTTP(a.at.HTTP, b.at.HTTP); c != 0 {
		return c
	}
	return compareVariants(a.v, b.v)
}

// groupStarts reports whether c, the row after prev, starts a group: a new
// point, TLS setting or way of speaking HTTP; the floor stays in the group
// of its point and TLS setting.
func groupStarts(prev, c *cell) bool {
	if c.isFloor() {
		return tlsPoint(prev.at) != tlsPoint(c.at)
	}
	return prev.at != c.at
}

// hasOverhead reports whether a broadcast cell spoke HTTP other than the
// default way (HasOverhead: the report then has overhead.md).
func (m *matrix) hasOverhead() bool {
	return slices.ContainsFunc(m.cells, func(c *cell) bool { return c.at.Work.isBroadcast() && !c.at.HTTP.options().IsDefault() })
}

// hasHTTPVariants reports whether a cell of the run spoke HTTP other than
// the default way (the floor's TLS included).
func (m *matrix) hasHTTPVariants() bool {
	return slices.ContainsFunc(m.cells, func(c *cell) bool { return !c.at.HTTP.isDefault() })
}

// hasNetworks reports whether a cell of the run is on an emulated network.
func (m *matrix) hasNetworks() bool {
	return slices.ContainsFunc(m.cells, func(c *cell) bool { return c.at.Network != "" })
}

// show formats metric mt over the cell's records: the one record's
// figure, or the median of the repeats with their range.
func (c *cell) show(mt metricDef) string {
	var shown []*results.Record
	for _, r := range c.recs {
		if results.StatusOf(r) != results.StatusError {
			shown = append(shown, r)
		}
	}
	switch {
	case len(shown) == 0:
		return mt.show(c.recs[0]) // "—": nothing measured
	case len(shown) == 1:
		return mt.show(shown[0])
	case mt.applies != nil && !mt.applies(shown[0]):
		return ""
	case mt.sample != nil && !c.supportsSample(mt):
		var most int64
		var n uint64
		for _, r := range shown {
			rn, rmax := mt.sampleOf(r)
			most, n = max(most, rmax), n+rn
		}
		return fmt.Sprintf("≤ %s (max, n=%d over %d repeats)", fmtDuration(float64(most)), n, len(shown))
	case mt.sample == nil && !c.supports(mt.needs):
		// The repeats' events together still do not support it: the
		// bound is the largest maximum of them.
		var most int64
		for _, r := range shown {
			most = max(most, r.Latency.Max)
		}
		return fmt.Sprintf("≤ %s (max, n=%d over %d repeats)", fmtDuration(float64(most)), c.events(), len(shown))
	}
	vs := c.values(mt.value)
	med, lo, hi := median(vs), slices.Min(vs), slices.Max(vs)
	out := mt.format(med)
	if a, b := mt.format(lo), mt.format(hi); a != b {
		out += " [" + a + "–" + b + "]"
	}
	return out
}

// supportsSample reports whether every measured repeat of the cell has
// enough values for mt's percentile (metricDef.sample); a record with none
// (nothing measured) does not count against it.
func (c *cell) supportsSample(mt metricDef) bool {
	for _, r := range c.recs {
		if results.StatusOf(r) == results.StatusError {
			continue
		}
		if n, _ := mt.sampleOf(r); n > 0 && n < mt.needs {
			return false
		}
	}
	return true
}

// floorMultiple gives a push cell's p50 and p99 as multiples of the floor
// cell's at the same point ("1.14× / 1.12×"), or "".
func (m *matrix) floorMultiple(c *cell) string {
	t, _ := transport.Lookup(c.v.Transport)
	if t.Kind != transport.Stream || t.Floor {
		return ""
	}
	floor, f50, f99 := m.floorAt(c.at)
	if floor == nil || !(c.value(p50) > 0) {
		return ""
	}
	if !c.supports(100) || !floor.supports(100) {
		return fmtRatio(c.value(p50)/f50) + " / n<100"
	}
	return fmtRatio(c.value(p50)/f50) + " / " + fmtRatio(c.value(p99)/f99)
}

// WriteSummaryMarkdown writes summary.md: the run, its environment, what
// it shows, and one table row per record.
func WriteSummaryMarkdown(w io.Writer, recs []results.Record, info *results.RunInfo) error {
	return newReport(recs, info).writeMarkdown(w)
}

func (rep *report) writeMarkdown(w io.Writer) error {
	var b strings.Builder
	b.WriteString("# pushbench results\n\n")
	for _, l := range rep.runLines() {
		if l.Code != "" {
			fmt.Fprintf(&b, "- %s`%s`\n", l.Text, l.Code)
		} else {
			fmt.Fprintf(&b, "- %s\n", l.Text)
		}
	}
	b.WriteString("\n## Environment\n\n")
	for _, kv := range rep.env() {
		fmt.Fprintf(&b, "- %s: %s\n", kv[0], kv[1])
	}
	b.WriteString("\n## What this run shows\n\n")
	for _, f := range rep.findings {
		if f.bad {
			fmt.Fprintf(&b, "- **%s**\n", f.text)
		} else {
			fmt.Fprintf(&b, "- %s\n", f.text)
		}
	}
	for _, warning := range rep.warnings {
		fmt.Fprintf(&b, "- Warning: %s\n", warning)
	}
	if rep.overhead {
		fmt.Fprintf(&b, "- The overhead of each poll and Kaazing's table with measured bytes: [%s](%s) (%s).\n", OverheadMarkdownFile, OverheadMarkdownFile, OverheadCSVFile)
	}
	if fs := checkFailures(rep.recs); len(fs) > 0 {
		b.WriteString("\n## Failed checks\n\n")
		for _, f := range fs {
			fmt.Fprintf(&b, "- %s — **%s**: %s\n", capFirst(f.Cell), f.Check, orDash(f.Detail))
		}
	}
	b.WriteString("\n## Results\n\n")
	b.WriteString("Latency is delivery latency (receive time − scheduled publish time); bytes are counted at the clients' connections, " +
		"down + up, per delivered event; CPU is the server's user + sys time per delivered event, and net of idle the same less the cost of holding " +
		"the connections idle for the window; RSS is per connected client, after a GC. A percentile that rests on fewer independent events than it " +
		"needs (100 for p99, 1000 for p99.9) is shown as the bound it is: ≤ max, with n, the events in the window. The last figures give each " +
		"push transport's p50 and p99 as multiples of the floor, the raw TCP cell at the same point: the least any push can cost on this machine. " +
		"With repeats, each figure is the median with the range in brackets. docs/results.md defines every figure.")
	if rep.m.hasWorkloads() {
		b.WriteString(" " + workloadTableNote)
	}
	b.WriteString("\n\n")
	h := header(rep.m.hasNetworks(), rep.m.hasHTTPVariants(), rep.m.hasWorkloads())
	b.WriteString("| " + strings.Join(h, " | ") + " |\n")
	b.WriteString("|" + strings.Repeat("---|", len(h)) + "\n")
	for _, r := range rep.rows {
		cells := r.cells()
		for i, c := range cells {
			cells[i] = strings.ReplaceAll(c, "|", `\|`)
		}
		if r.Bad {
			cells[len(cells)-1] = "**" + cells[len(cells)-1] + "**"
		}
		b.WriteString("| " + strings.Join(cells, " | ") + " |\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// workloadTableNote says what the table's figures mean for chat and game
// cells (summary.md and index.html, only when the run has them).
const workloadTableNote = "Chat and game cells: for chat an event is a message (each member of its room, the sender included, receives it) and " +
	"latency is send → receive latency, from the message's scheduled send time to its receipt; for the game an event is a snapshot and " +
	"latency is snapshot latency, from the tick to the receipt. Rate is each chat client's messages per second, or the game's ticks per second. " +
	"The upstream: sent is the messages (game: inputs) sent in the window, up B/msg the clients' upstream bytes per message sent (for " +
	"polling its polls too), req/msg the upstream requests (POST /send) per message, 0 on a stream; send lag is how late the clients started " +
	"their sends (it is in every latency); input p50 / p99 is the game's input latency, from an input's scheduled send time to the first " +
	"snapshot that acknowledged it."

// WriteSummaryCSV writes summary.csv: one row per record with every field
// of the record (named by its JSON path, e.g. latency_ns.p99), except the
// histogram snapshot. Checks become two columns: checks_failed (a count)
// and checks ("name=ok" or "name=FAIL: detail", joined by "; ").
func WriteSummaryCSV(w io.Writer, recs []results.Record) error {
	cw := csv.NewWriter(w)
	var header []string
	flatten(reflect.ValueOf(results.Record{}), "", func(name string, _ string) { header = append(header, name) })
	header = append(header, "checks_failed", "checks")
	if err := cw.Write(header); err != nil {
		return err
	}
	for _, r := range sortedRecords(recs) {
		var line []string
		flatten(reflect.ValueOf(*r), "", func(_ string, v string) { line = append(line, v) })
		failed := 0
		var checks []string
		for _, name := range slices.Sorted(maps.Keys(r.Checks)) {
			c := r.Checks[name]
			if c.OK {
				checks = append(checks, name+"=ok")
			} else {
				failed++
				checks = append(checks, name+"=FAIL: "+c.Detail)
			}
		}
		line = append(line, strconv.Itoa(failed), strings.Join(checks, "; "))
		if err := cw.Write(line); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// flatten calls emit for every scalar field of the struct v, depth first,
// named by the JSON path. Maps and the histogram snapshot are skipped. A
// pointer to a struct (input_latency_ns) is flattened like the struct,
// with empty values where it is nil.
func flatten(v reflect.Value, prefix string, emit func(name, value string)) {
	t := v.Type()
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "" || name == "-" || name == "histogram" {
			continue
		}
		fv := v.Field(i)
		switch fv.Kind() {
		case reflect.Pointer:
			if fv.Type().Elem().Kind() != reflect.Struct {
				if fv.IsNil() {
					emit(prefix+name, "")
				} else {
					emit(prefix+name, fmt.Sprint(fv.Elem().Interface()))
				}
				continue
			}
			if fv.IsNil() {
				flatten(reflect.Zero(fv.Type().Elem()), prefix+name+".", func(name, _ string) { emit(name, "") })
			} else {
				flatten(fv.Elem(), prefix+name+".", emit)
			}
		case reflect.Struct:
			flatten(fv, prefix+name+".", emit)
		case reflect.Map, reflect.Slice:
			continue
		case reflect.Float32, reflect.Float64:
			emit(prefix+name, strconv.FormatFloat(fv.Float(), 'f', -1, 64))
		default:
			emit(prefix+name, fmt.Sprint(fv.Interface()))
		}
	}
}

// envOf returns the environment to show: run.json's, else the first
// record's, and how many distinct environments the records come from.
func envOf(recs []results.Record, info *results.RunInfo) (results.Env, int) {
	seen := map[results.Env]bool{}
	for _, r := range recs {
		seen[r.Env] = true
	}
	if info != nil && info.Env != (results.Env{}) {
		return info.Env, len(seen)
	}
	if len(recs) == 0 {
		return results.Env{}, 0
	}
	return recs[0].Env, len(seen)
}

func orDash(s string) string { return cmp.Or(s, "—") }
