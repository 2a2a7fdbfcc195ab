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
// that every transport of a scenario shares one benchstat row. The
// configuration lines are written again whenever the environment changes.
// The iteration count is 1: each line is one measured cell; repeats of a
// cell become benchstat samples.
func WriteBenchText(w io.Writer, recs []results.Record) error {
	var b strings.Builder
	var last map[string]string
	for i, r := range sortedRecords(recs) {
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
		if i == 0 {
			for _, m := range metrics {
				if m.higher {
					fmt.Fprintf(&b, "Unit %s better=higher\n", m.unit)
				}
			}
		}
		fmt.Fprintf(&b, "BenchmarkCompare/%s \t 1", CellName(r.Scenario))
		for _, m := range metrics {
			fmt.Fprintf(&b, " \t %s %s", benchValue(m.value(r)), m.unit)
		}
		b.WriteByte('\n')
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
