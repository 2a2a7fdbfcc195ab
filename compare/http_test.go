package compare

import (
	"flag"
	"strings"
	"testing"

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
