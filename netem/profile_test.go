package netem

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

const ms = time.Millisecond

// TestProfileTable: the profiles exist in order, each with a
// source, each applicable exactly; loopback alone needs no emulator.
func TestProfileTable(t *testing.T) {
	want := []string{"loopback", "lan", "broadband", "4g", "3g", "satellite"}
	if got := Names(); !reflect.DeepEqual(got, want) {
		t.Fatalf("Names() = %v, want %v", got, want)
	}
	for _, p := range Profiles() {
		if err := p.Validate(); err != nil {
			t.Errorf("%s: %v", p.Name, err)
		}
		if p.Source == "" {
			t.Errorf("%s: no source", p.Name)
		}
		if p.Emulated() != (p.Name != Loopback) {
			t.Errorf("%s: Emulated() = %v", p.Name, p.Emulated())
		}
		if p.Name != Loopback && (p.RTT%(2*ms) != 0 || p.DownBps == 0 || p.UpBps == 0) {
			t.Errorf("%s: want an even whole-ms RTT and both directions limited: %+v", p.Name, p)
		}
		if got, err := Lookup(p.Name); err != nil || got != p {
			t.Errorf("Lookup(%s) = %+v, %v", p.Name, got, err)
		}
	}
	// The table is a copy: changing it changes nothing.
	ps := Profiles()
	ps[1].RTT = time.Hour
	if p, _ := Lookup("lan"); p.RTT != 2*ms {
		t.Errorf("Profiles() shares the table: lan rtt %v", p.RTT)
	}
	// Values the docs and the expected figures rely on.
	sat, _ := Lookup("satellite")
	g4, _ := Lookup("4g")
	if sat.RTT != 600*ms || g4.RTT != 150*ms || g4.DownBps != 1_600_000 || g4.UpBps != 768_000 {
		t.Errorf("satellite %+v, 4g %+v", sat, g4)
	}
}

// TestSplit: the round trip and the jitter are split half per direction,
// the odd millisecond going downstream, so the halves add up exactly.
func TestSplit(t *testing.T) {
	for _, c := range []struct {
		rtt, jitter          time.Duration
		down, downJ, up, upJ time.Duration
	}{
		{0, 0, 0, 0, 0, 0},
		{40 * ms, 0, 20 * ms, 0, 20 * ms, 0},
		{25 * ms, 5 * ms, 13 * ms, 3 * ms, 12 * ms, 2 * ms},
		{1 * ms, 1 * ms, 1 * ms, 1 * ms, 0, 0},
		{600 * ms, 100 * ms, 300 * ms, 50 * ms, 300 * ms, 50 * ms},
	} {
		p := Profile{RTT: c.rtt, Jitter: c.jitter}
		down, downJ, up, upJ := p.Split()
		if down != c.down || downJ != c.downJ || up != c.up || upJ != c.upJ {
			t.Errorf("Split(rtt %v, jitter %v) = %v±%v down, %v±%v up; want %v±%v, %v±%v",
				c.rtt, c.jitter, down, downJ, up, upJ, c.down, c.downJ, c.up, c.upJ)
		}
		if down+up != c.rtt || downJ+upJ != c.jitter || downJ > down || upJ > up {
			t.Errorf("Split(rtt %v, jitter %v): halves do not add up or a jitter exceeds its delay", c.rtt, c.jitter)
		}
	}
}

// TestToxics: the exact toxics and Toxiproxy units for a profile.
func TestToxics(t *testing.T) {
	g4, _ := Lookup("4g")
	want := []Toxic{
		{"latency_downstream", "latency", "downstream", map[string]int64{"latency": 75, "jitter": 0}},
		{"bandwidth_downstream", "bandwidth", "downstream", map[string]int64{"rate": 200}}, // 1.6 Mbit/s = 200,000 B/s
		{"latency_upstream", "latency", "upstream", map[string]int64{"latency": 75, "jitter": 0}},
		{"bandwidth_upstream", "bandwidth", "upstream", map[string]int64{"rate": 96}}, // 768 kbit/s = 96,000 B/s
	}
	if got := Toxics(g4); !reflect.DeepEqual(got, want) {
		t.Errorf("Toxics(4g) =\n%+v\nwant\n%+v", got, want)
	}
	// 1 ms with 1 ms jitter: only downstream is delayed; 1mbit = 125 KB/s.
	want = []Toxic{
		{"latency_downstream", "latency", "downstream", map[string]int64{"latency": 1, "jitter": 1}},
		{"bandwidth_downstream", "bandwidth", "downstream", map[string]int64{"rate": 125}},
	}
	if got := Toxics(Profile{RTT: ms, Jitter: ms, DownBps: 1_000_000}); !reflect.DeepEqual(got, want) {
		t.Errorf("Toxics(1ms±1ms, down 1mbit) = %+v, want %+v", got, want)
	}
	if got := Toxics(Profile{Name: Loopback}); len(got) != 0 {
		t.Errorf("Toxics(loopback) = %+v, want none", got)
	}
}

func TestParseRate(t *testing.T) {
	for in, want := range map[string]int64{
		"10mbit":    10_000_000,
		"512kbit":   512_000,
		"1gbit":     1_000_000_000,
		"100kbit":   100_000,
		"8000bit":   8000,
		"1.5mbit":   1_500_000,
		"0.768MBit": 768_000,
		" 2 Mbit ":  2_000_000,
		"100gbit":   100_000_000_000,
		"+1kbit":    1000,
		".5kbit":    500,
	} {
		got, err := ParseRate(in)
		if err != nil || got != want {
			t.Errorf("ParseRate(%q) = %d, %v; want %d", in, got, err, want)
		}
		if err == nil {
			if back, err := ParseRate(FormatRate(got)); err != nil || back != got {
				t.Errorf("ParseRate(FormatRate(%d) = %q) = %d, %v", got, FormatRate(got), back, err)
			}
		}
	}
	for in, want := range map[string]string{
		"":                            "empty bandwidth",
		"10":                          "without a unit",
		"0":                           "without a unit",
		"1.5":                         "without a unit",
		"mbit":                        "number before the unit",
		"-1mbit":                      "must be positive",
		"0mbit":                       "must be positive",
		"0.0kbit":                     "must be positive",
		"101gbit":                     "more than 100gbit",
		"99999999999999999999999gbit": "more than 100gbit",
		"10mbps":                      `unknown unit "mbps"`,
		"10MB":                        `unknown unit "mb"`,
		"1.2.3mbit":                   "not a number",
		"1-2mbit":                     "not a number",
		"0.5bit":                      "not a whole number",
		"1.0000001kbit":               "not a whole number",
	} {
		got, err := ParseRate(in)
		if err == nil || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("ParseRate(%q) = %d, %v; want a one-line error with %q", in, got, err, want)
		}
	}
}

func TestFormatRate(t *testing.T) {
	for bps, want := range map[int64]string{0: "unlimited", 1_600_000: "1600kbit", 10_000_000: "10mbit", 3_000_000_000: "3gbit", 12_500: "12500bit"} {
		if got := FormatRate(bps); got != want {
			t.Errorf("FormatRate(%d) = %q, want %q", bps, got, want)
		}
	}
}

func dur(d time.Duration) *time.Duration { return &d }
func str(s string) *string               { return &s }

// TestResolve: overrides replace only what they name, and every bad input
// of the issue is a one-line error.
func TestResolve(t *testing.T) {
	g4, _ := Lookup("4g")
	p, err := Resolve("4g", nil, nil, nil, nil)
	if err != nil || p != g4 {
		t.Errorf("Resolve(4g) = %+v, %v; want the table's", p, err)
	}
	// An override equal to the profile's value is no override.
	if p, err := Resolve("4g", dur(150*ms), nil, str("1600kbit"), nil); err != nil || p != g4 {
		t.Errorf("Resolve(4g, same values) = %+v, %v", p, err)
	}
	p, err = Resolve("4g", dur(100*ms), dur(10*ms), str("1mbit"), str("unlimited"))
	if err != nil {
		t.Fatal(err)
	}
	want := Profile{Name: "4g", RTT: 100 * ms, Jitter: 10 * ms, DownBps: 1_000_000, UpBps: 0,
		Source: g4.Source + "; overridden: rtt 100ms, jitter 10ms, down-bandwidth 1mbit, up-bandwidth unlimited"}
	if p != want {
		t.Errorf("Resolve(4g, overrides) =\n%+v\nwant\n%+v", p, want)
	}
	// Loopback with an RTT: the issue's `--rtt 100ms` runs.
	p, err = Resolve("loopback", dur(100*ms), nil, nil, nil)
	if err != nil || !p.Emulated() || p.RTT != 100*ms || p.DownBps != 0 {
		t.Errorf("Resolve(loopback, rtt 100ms) = %+v, %v", p, err)
	}
	if p, err := Resolve("loopback", nil, nil, str("1mbit"), nil); err != nil || p.DownBps != 1_000_000 || p.RTT != 0 {
		t.Errorf("Resolve(loopback, down 1mbit) = %+v, %v", p, err)
	}

	for _, c := range []struct {
		name        string
		rtt, jitter *time.Duration
		down, up    *string
		want        string
	}{
		{name: "5g", want: `unknown network "5g" (known: loopback, lan, broadband, 4g, 3g, satellite)`},
		{name: "", want: `unknown network ""`},
		{name: "lan", rtt: dur(-ms), want: "rtt -1ms: must not be negative"},
		{name: "lan", rtt: dur(11 * time.Second), want: "rtt 11s: more than 10s"},
		{name: "lan", rtt: dur(12500 * time.Microsecond), want: "rtt 12.5ms: the emulator delays in whole milliseconds"},
		{name: "lan", jitter: dur(-ms), want: "jitter -1ms: must not be negative"},
		{name: "lan", jitter: dur(3 * ms), want: "jitter 3ms is more than the rtt 2ms"},
		{name: "loopback", jitter: dur(ms), want: "jitter 1ms is more than the rtt 0s"},
		{name: "lan", jitter: dur(1500 * time.Microsecond), want: "whole milliseconds"},
		{name: "lan", down: str("10"), want: `down-bandwidth: bandwidth "10" without a unit`},
		{name: "lan", up: str("-5mbit"), want: `up-bandwidth: bandwidth "-5mbit": must be positive`},
		{name: "lan", down: str("0kbit"), want: "must be positive"},
		{name: "lan", down: str("200gbit"), want: "more than 100gbit"},
		{name: "lan", down: str("100kbit"), want: "down-bandwidth 100kbit: the emulator limits in steps of 8kbit (1000 bytes/s); give 96kbit or 104kbit"},
		{name: "lan", up: str("4kbit"), want: "the smallest limit is 8kbit"},
	} {
		p, err := Resolve(c.name, c.rtt, c.jitter, c.down, c.up)
		if err == nil || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("Resolve(%+v) = %+v, %v; want a one-line error with %q", c, p, err, c.want)
		}
	}
}

func TestProfileString(t *testing.T) {
	g4, _ := Lookup("4g")
	lo, _ := Lookup(Loopback)
	for p, want := range map[Profile]string{
		g4: "4g: rtt 150ms, down 1600kbit, up 768kbit",
		lo: "loopback: no emulator",
		{Name: "x", RTT: 40 * ms, Jitter: 4 * ms}: "x: rtt 40ms ± 4ms, down unlimited, up unlimited",
	} {
		if got := p.String(); got != want {
			t.Errorf("String() = %q, want %q", got, want)
		}
	}
}
