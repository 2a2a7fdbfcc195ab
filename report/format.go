package report

import (
	"math"
	"strconv"
	"strings"
)

// Number formatting for people (tables, titles, findings). Every figure
// keeps three significant digits; machine-readable files (summary.csv,
// bench.txt) use full precision instead.

// fmtSig writes v with three significant digits and no exponent:
// 0.0213, 1.24, 37.2, 512, 12,345.
func fmtSig(v float64) string { return fmtSigN(v, 3) }

// fmtSigN writes v with n ≥ 3 significant digits and no exponent; from
// 1000 up, the whole number: fmtSigN(6.968, 4) = 6.968, 12,345.
func fmtSigN(v float64, n int) string {
	switch {
	case math.IsNaN(v):
		return "n/a"
	case math.IsInf(v, 0):
		return "∞"
	case v == 0:
		return "0"
	}
	a := math.Abs(v)
	if a >= 1000 {
		return groupThousands(strconv.FormatFloat(math.Round(v), 'f', 0, 64))
	}
	decimals := n - 1 - int(math.Floor(math.Log10(a)))
	// Rounding can carry into the next power of ten (9.996 → 10.0).
	if r := roundTo(a, decimals); r >= math.Pow10(n-decimals) {
		decimals--
	}
	decimals = max(decimals, 0)
	s := strconv.FormatFloat(v, 'f', decimals, 64)
	if strings.Contains(s, ".") {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	return s
}

func roundTo(v float64, decimals int) float64 {
	p := math.Pow10(decimals)
	return math.Round(v*p) / p
}

// groupThousands puts commas between groups of three digits of an
// integer string when it has five or more digits.
func groupThousands(s string) string {
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	if len(s) >= 5 {
		var b strings.Builder
		for i, r := range s {
			if i > 0 && (len(s)-i)%3 == 0 {
				b.WriteByte(',')
			}
			b.WriteRune(r)
		}
		s = b.String()
	}
	if neg {
		s = "-" + s
	}
	return s
}

// Duration writes nanoseconds for people, as every report does: 850 ns,
// 183 µs, 1.24 ms, 2.5 s.
func Duration(ns float64) string { return fmtDuration(ns) }

// fmtDuration writes nanoseconds with a unit: 850 ns, 183 µs, 1.24 ms, 2.5 s.
func fmtDuration(ns float64) string {
	a := math.Abs(ns)
	switch {
	case math.IsNaN(ns):
		return "n/a"
	case ns == 0:
		return "0"
	case a < 1e3:
		return fmtSig(ns) + " ns"
	case a < 1e6:
		return fmtSig(ns/1e3) + " µs"
	case a < 1e9:
		return fmtSig(ns/1e6) + " ms"
	}
	return fmtSig(ns/1e9) + " s"
}

// fmtBytes writes a byte count with a binary unit: 64 B, 2.37 KiB, 1.5 MiB.
func fmtBytes(b float64) string {
	a := math.Abs(b)
	switch {
	case math.IsNaN(b):
		return "n/a"
	case a < 1024:
		return fmtSig(b) + " B"
	case a < 1024*1024:
		return fmtSig(b/1024) + " KiB"
	case a < 1024*1024*1024:
		return fmtSig(b/(1024*1024)) + " MiB"
	}
	return fmtSig(b/(1024*1024*1024)) + " GiB"
}

// fmtPercent writes a share in [0, 1] as a percentage: 12.5%.
func fmtPercent(share float64) string {
	if math.IsNaN(share) {
		return "n/a"
	}
	return fmtSig(share*100) + "%"
}

// fmtRatio writes how many times a is b: "37×", "1.4×".
func fmtRatio(r float64) string {
	return fmtSig(r) + "×"
}

// rateLabel writes an event rate for a sentence: "1 event/s", "10 events/s".
func rateLabel(r float64) string {
	if r == 1 {
		return "1 event/s"
	}
	return fmtRate(r) + " events/s"
}

// OneLine joins the lines of err's message, so that an error made of
// several (errors.Join) is still reported on one line.
func OneLine(err error) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(err.Error(), "\n", "; ")), " ")
}
