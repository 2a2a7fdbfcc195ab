package report

import (
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"

	"pushbench/results"
)

// WriteBenchText writes recs in Go's benchmark format, one line per record,
// so that benchstat compares transports within a run
// (`benchstat -col /transport bench.txt`) and runs with each other
// (`benchstat old/bench.txt new/bench.txt`):
//
//	goos: linux
//	goarch: amd64
//	pkg: pushbench
//	cpu: AMD EPYC 7B13
//	Unit deliveries/s better=higher
//	BenchmarkCompare/transport=ws/clients=100/rate=10/payload=64 	 1 	 183000 p50-ns 	 ...
//
// Short polling's transport value carries its interval (shortpoll-1s) so
// that every transport of a scenario shares one benchstat row. Chat and
// game records add their upstream units (sent-msgs, up-B/msg, req/msg,
// send-lag-p99-ns; the game input-p50-ns and input-p99-ns); broadcast
// lines have none of them. The
// configuration lines are written again whenever the environment changes.
// The iteration count is 1: each line is one measured cell; repeats of a
// cell become benchstat samples.
//
// A cell whose numbers are not clean (loss, a failed self-check, a
// partial, failed or errored run) is left out, so benchstat never compares
// such a figure, and listed after the lines with why, on lines benchstat
// ignores.
func WriteBenchText(w io.Writer, recs []results.Record) error {
	var b strings.Builder
	var last map[string]string
	var left []string
	i := 0
	for _, r := range sortedRecords(recs) {
		if is := issues(r); hasBad(is) {
			left = append(left, fmt.Sprintf("#   %s: %s", CellName(r.Scenario), issueText(is)))
			continue
		}
		conf := map[string]string{
			"goos":   orUnknown(r.Env.OS),
			"goarch": orUnknown(r.Env.Arch),
			"pkg":    "pushbench",
			"cpu":    orUnknown(r.Env.CPUModel),
		}
		for _, k := range []string{"goos", "goarch", "pkg", "cpu"} {
			if last == nil || last[k] != conf[k] {
				fmt.Fprintf(&b, "%s: %s\n", k, conf[k])
			}
		}
		last = conf
		if i++; i == 1 {
			for _, m := range metrics {
				if m.higher && m.unit != "" {
					fmt.Fprintf(&b, "Unit %s better=higher\n", m.unit)
				}
			}
		}
		fmt.Fprintf(&b, "BenchmarkCompare/%s \t 1", CellName(r.Scenario))
		for _, m := range metrics {
			if m.inBench(r) {
				fmt.Fprintf(&b, " \t %s %s", benchValue(m.value(r)), m.unit)
			}
		}
		b.WriteByte('\n')
	}
	if len(left) > 0 {
		fmt.Fprintf(&b, "# Left out (their figures are not clean): %s\n%s\n", Plural(len(left), "cell"), strings.Join(left, "\n"))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// benchValue writes v exactly if it is a whole number, else with six
// significant digits; never with an exponent.
func benchValue(v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return "0"
	}
	if v != 0 && (v != math.Trunc(v) || math.Abs(v) >= 1e15) {
		d := 6 - int(math.Floor(math.Log10(math.Abs(v)))) - 1
		p := math.Pow10(d)
		if d >= 0 {
			v = math.Round(v*p) / p
		} else {
			v = math.Round(v/math.Pow10(-d)) * math.Pow10(-d)
		}
	}
	return strconv.FormatFloat(v, 'f', -1, 64)
}

// orUnknown keeps configuration lines well-formed: benchfmt needs a value.
func orUnknown(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if s == "" {
		return "unknown"
	}
	return s
}
