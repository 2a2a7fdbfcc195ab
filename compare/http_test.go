package compare

import (
	"flag"
	"strings"
	"testing"
	"time"

	"pushbench/transport"
	"pushbench/webhttp"
)

// TestOverheadPlan: the overhead preset runs every transport under Go's
// headers and browser headers over HTTP/1.1 with and without TLS, and the
// request transports over HTTP/2 with and without TLS; tcp runs once per
// TLS setting, with no headers.
func TestOverheadPlan(t *testing.T) {
	cells := Presets()["overhead"].Plan()
	count := map[string]int{}
	for _, c := range cells {
		if err := c.S.Validate(); err != nil {
			t.Errorf("%s: %v", c.Name(), err)
		}
		count[c.S.HTTP.Suffix()]++
		if c.S.Transport == transport.TCP && c.S.HTTP.Headers != webhttp.HeadersGo {
			t.Errorf("%s: tcp with browser headers", c.Name())
		}
		if c.S.HTTP.HTTP == webhttp.HTTP2 && !webhttp.UsesHTTP2(c.S.Transport) {
			t.Errorf("%s: an upgrade over HTTP/2", c.Name())
		}
		if c.S.Clients != 100 || c.S.Rate != 1 || c.S.Payload != 64 {
			t.Errorf("%s: not the overhead point", c.Name())
		}
	}
	want := map[string]int{
		"":                               5, // Go headers: the four transports and tcp
		"/headers=browser":               4,
		"/tls=on":                        1, // tcp over TLS
		"/tls=on/headers=browser":        4,
		"/http=2/headers=browser":        3,
		"/http=2/tls=on/headers=browser": 3,
	}
	if len(cells) != 20 || len(count) != len(want) {
		t.Errorf("%d cells, variants %v; want 20, %v", len(cells), count, want)
	}
	for k, n := range want {
		if count[k] != n {
			t.Errorf("variant %q: %d cells, want %d", k, count[k], n)
		}
	}
}

// TestHTTPFlags: --http and --tls multiply the variants; the other flags
// rewrite every variant; nothing set leaves the preset alone.
func TestHTTPFlags(t *testing.T) {
	parse := func(args ...string) (Preset, bool, error) {
		fs := flag.NewFlagSet("compare", flag.ContinueOnError)
		f := AddHTTPFlags(fs)
		if err := fs.Parse(args); err != nil {
			t.Fatal(err)
		}
		p := Presets()["default"]
		set, err := f.Apply(&p)
		return p, set, err
	}
	p, set, err := parse()
	if err != nil || set || len(p.HTTP) != 1 || p.HTTP[0] != webhttp.Browser() {
		t.Errorf("no flags: %v %v %v", p.HTTP, set, err)
	}
	p, set, err = parse("--http", "1.1,2", "--tls", "off,on", "--cookie-bytes", "300", "--headers", "go")
	if err != nil || !set || len(p.HTTP) != 4 {
		t.Fatalf("4 variants: %v %v %v", p.HTTP, set, err)
	}
	var names []string
	for _, o := range p.HTTP {
		names = append(names, o.Suffix())
	}
	if got, want := strings.Join(names, " "), "/cookie=300 /tls=on/cookie=300 /http=2/cookie=300 /http=2/tls=on/cookie=300"; got != want {
		t.Errorf("variants %q, want %q", got, want)
	}
	if _, _, err := parse("--tls", "yes"); err == nil || !strings.Contains(err.Error(), "want on or off") {
		t.Errorf("--tls yes: %v", err)
	}
	if _, _, err := parse("--http", "2,"); err == nil || !strings.Contains(err.Error(), "empty list element") {
		t.Errorf("--http 2,: %v", err)
	}
}

// TestWorkloadPresets: the chat preset sweeps each client's send rate, the
// game preset the tick (inputs follow it), in rooms of 10; both fit the
// ten-minute budget.
func TestWorkloadPresets(t *testing.T) {
	for _, tc := range []struct {
		name  string
		rates []float64
	}{{"chat", []float64{0.2, 1, 5}}, {"game", []float64{10, 20, 60}}} {
		p := Presets()[tc.name]
		cells := p.Plan()
		var est time.Duration
		seen := map[float64]int{}
		for _, c := range cells {
			s := c.S
			if err := s.Validate(); err != nil {
				t.Errorf("%s: %v", c.Name(), err)
			}
			if s.Workload != tc.name || s.Room != 10 || s.Clients != 100 {
				t.Errorf("%s: workload %s room %d clients %d", c.Name(), s.Workload, s.Room, s.Clients)
			}
			r := s.SendRate
			if tc.name == "game" {
				r = s.Tick
				if s.InputRate != s.Tick {
					t.Errorf("%s: input rate %v, want the tick %v", c.Name(), s.InputRate, s.Tick)
				}
			}
			seen[r]++
			est += cellEstimate(s)
		}
		for _, r := range tc.rates {
			if seen[r] != len(p.Transports) {
				t.Errorf("%s at %v: %d cells, want one per transport (%d)", tc.name, r, seen[r], len(p.Transports))
			}
		}
		if est > 10*time.Minute {
			t.Errorf("%s: estimated %v, over ten minutes", tc.name, est)
		}
	}
}

func TestWorkloadFlags(t *testing.T) {
	parse := func(args ...string) (Preset, bool, error) {
		fs := flag.NewFlagSet("compare", flag.ContinueOnError)
		f := AddWorkloadFlags(fs)
		if err := fs.Parse(args); err != nil {
			t.Fatal(err)
		}
		p := Presets()["default"]
		set, err := f.Apply(&p)
		return p, set, err
	}
	if p, set, err := parse(); err != nil || set || p.Workload != "" {
		t.Errorf("no flags: %q %v %v", p.Workload, set, err)
	}
	p, set, err := parse("--workload", "game", "--input-rate", "5")
	if err != nil || !set || p.Workload != "game" || p.Room != 10 || p.InputRate != 5 {
		t.Errorf("game: %+v %v %v", p, set, err)
	}
	for _, args := range [][]string{{"--workload", "chess"}, {"--room", "0"}, {"--input-rate", "-1"}} {
		if _, _, err := parse(args...); err == nil {
			t.Errorf("%v: no error", args)
		}
	}
}
