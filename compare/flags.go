package compare

import (
	"errors"
	"flag"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"pushbench/bench"
	"pushbench/transport"
	"pushbench/webhttp"
)

// ParseTransports parses a comma-separated transport list into display
// order without duplicates.
func ParseTransports(flag, list string) ([]string, error) {
	names, err := ParseList(flag, list, func(s string) (string, error) {
		if !slices.Contains(transport.Names(), s) {
			return "", fmt.Errorf("unknown transport (want %s)", strings.Join(transport.Names(), ", "))
		}
		return s, nil
	})
	if err != nil {
		return nil, err
	}
	var out []string
	for _, t := range transport.Names() {
		if slices.Contains(names, t) {
			out = append(out, t)
		}
	}
	return out, nil
}

// ParseList parses a comma-separated list of flag name with parse,
// dropping duplicates. Its error names the flag; the caller says which
// command it is.
func ParseList[T comparable](name, list string, parse func(string) (T, error)) ([]T, error) {
	var out []T
	for _, f := range strings.Split(list, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			return nil, fmt.Errorf("--%s %q: empty list element", name, list)
		}
		v, err := parse(f)
		if err != nil {
			var ne *strconv.NumError
			if errors.As(err, &ne) {
				err = ne.Err
			}
			return nil, fmt.Errorf("--%s: %q: %v", name, f, err)
		}
		if !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	return out, nil
}

// JoinInts, JoinFloats and JoinDurations write a list as a flag takes it.
func JoinInts(vs []int) string {
	s := make([]string, len(vs))
	for i, v := range vs {
		s[i] = strconv.Itoa(v)
	}
	return strings.Join(s, ",")
}

func JoinFloats(vs []float64) string {
	s := make([]string, len(vs))
	for i, v := range vs {
		s[i] = strconv.FormatFloat(v, 'g', -1, 64)
	}
	return strings.Join(s, ",")
}

func JoinDurations(vs []time.Duration) string {
	s := make([]string, len(vs))
	for i, v := range vs {
		s[i] = v.String()
	}
	return strings.Join(s, ",")
}

// HTTPFlags are compare's flags for how HTTP is spoken: --http and --tls
// take lists and make a dimension of the matrix each; --headers,
// --response-headers, --cookie-bytes and --compress apply to every
// variant.
type HTTPFlags struct {
	fs                       *flag.FlagSet
	http, tls, headers, resp *string
	cookie                   *int
	compress                 *bool
}

// AddHTTPFlags defines them on fs.
func AddHTTPFlags(fs *flag.FlagSet) *HTTPFlags {
	return &HTTPFlags{
		fs:       fs,
		http:     fs.String("http", "", "HTTP versions, comma-separated, each a dimension: 1.1, 2 (preset: 1.1; overhead: 1.1,2); WebSocket and tcp skip 2"),
		tls:      fs.String("tls", "", "TLS, comma-separated, each a dimension: off, on (preset: off; overhead: off,on)"),
		headers:  fs.String("headers", "", "request header profile of every cell: browser or go (preset: browser; docs/http.md)"),
		resp:     fs.String("response-headers", "", "response header profile: minimal or deployment (default: deployment with browser headers, minimal with go)"),
		cookie:   fs.Int("cookie-bytes", 0, "length of the Cookie header value every request carries (0: none)"),
		compress: fs.Bool("compress", false, "gzip for polls and SSE, permessage-deflate for WebSocket, text-padded events"),
	}
}

// Apply rewrites p's HTTP variants with the flags that were set, and
// reports whether any was.
func (f *HTTPFlags) Apply(p *Preset) (bool, error) {
	set := map[string]bool{}
	f.fs.Visit(func(fl *flag.Flag) { set[fl.Name] = true })
	changed := false
	variants := p.HTTP
	if len(variants) == 0 {
		variants = []webhttp.Options{webhttp.Browser()}
	}
	// Each flag given replaces that setting in every variant; a list
	// multiplies the variants, without duplicates.
	expand := func(name, list string, apply func(o *webhttp.Options, v string) error) error {
		if !set[name] {
			return nil
		}
		vals, err := ParseList(name, list, func(s string) (string, error) { return s, nil })
		if err != nil {
			return fmt.Errorf("compare: %w", err)
		}
		var out []webhttp.Options
		for _, o := range variants {
			for _, v := range vals {
				n := o
				if err := apply(&n, v); err != nil {
					return fmt.Errorf("compare: --%s: %q: %v", name, v, err)
				}
				if !slices.Contains(out, n) {
					out = append(out, n)
				}
			}
		}
		variants, changed = out, true
		return nil
	}
	steps := []struct {
		name, list string
		apply      func(o *webhttp.Options, v string) error
	}{
		{"headers", *f.headers, func(o *webhttp.Options, v string) error { o.Headers = v; return nil }},
		{"response-headers", *f.resp, func(o *webhttp.Options, v string) error { o.ResponseHeaders = v; return nil }},
		{"http", *f.http, func(o *webhttp.Options, v string) error { o.HTTP = v; return nil }},
		{"tls", *f.tls, func(o *webhttp.Options, v string) error {
			switch v {
			case "on":
				o.TLS = true
			case "off":
				o.TLS = false
			default:
				return errors.New("want on or off")
			}
			return nil
		}},
		{"cookie-bytes", strconv.Itoa(*f.cookie), func(o *webhttp.Options, v string) error { o.CookieBytes, _ = strconv.Atoi(v); return nil }},
		{"compress", strconv.FormatBool(*f.compress), func(o *webhttp.Options, v string) error { o.Compress = v == "true"; return nil }},
	}
	for _, st := range steps {
		if err := expand(st.name, st.list, st.apply); err != nil {
			return false, err
		}
	}
	for _, o := range variants {
		if err := o.Validate(""); err != nil {
			return false, fmt.Errorf("compare: %v", err)
		}
	}
	p.HTTP = variants
	return changed, nil
}

// WorkloadFlags are compare's flags for the workload: --workload, --room
// and --input-rate. The --rates list is then a chat client's messages per
// second, or the game's ticks per second.
type WorkloadFlags struct {
	fs        *flag.FlagSet
	workload  *string
	room      *int
	inputRate *float64
}

// AddWorkloadFlags defines them on fs.
func AddWorkloadFlags(fs *flag.FlagSet) *WorkloadFlags {
	return &WorkloadFlags{
		fs:        fs,
		workload:  fs.String("workload", "", "broadcast, chat or game (preset: broadcast; chat and game presets: theirs); with chat --rates are each client's messages/s, with game the ticks/s"),
		room:      fs.Int("room", 0, "chat, game: clients per room (chat and game presets: 10)"),
		inputRate: fs.Float64("input-rate", 0, "game: inputs per second per client (0: one per tick)"),
	}
}

// Apply sets the flags that were given on p and reports whether any was.
func (f *WorkloadFlags) Apply(p *Preset) (bool, error) {
	set := map[string]bool{}
	f.fs.Visit(func(fl *flag.Flag) { set[fl.Name] = true })
	if set["workload"] {
		switch *f.workload {
		case "broadcast", "chat", "game":
		default:
			return false, fmt.Errorf("compare: --workload %q: want broadcast, chat or game", *f.workload)
		}
		p.Workload = *f.workload
		if p.Room == 0 {
			p.Room = 10
		}
	}
	if set["room"] {
		if *f.room < 1 {
			return false, fmt.Errorf("compare: --room %d: a room holds at least one client", *f.room)
		}
		p.Room = *f.room
	}
	if set["input-rate"] {
		if !(*f.inputRate >= 0) {
			return false, fmt.Errorf("compare: --input-rate %v: must not be negative", *f.inputRate)
		}
		p.InputRate = *f.inputRate
	}
	return set["workload"] || set["room"] || set["input-rate"], nil
}

// ClientFlags are compare's flags for who subscribes: --client takes a
// list and makes a dimension of the matrix; --browsers, --cut-every and
// --sse-retry apply to every cell they fit.
type ClientFlags struct {
	fs                 *flag.FlagSet
	client             *string
	browsers           *int
	cutEvery, sseRetry *time.Duration
}

// AddClientFlags defines them on fs.
func AddClientFlags(fs *flag.FlagSet) *ClientFlags {
	return &ClientFlags{
		fs:       fs,
		client:   fs.String("client", "", "who subscribes, comma-separated, each a dimension: go, browser (headless Chromium pages; not tcp) (default: go)"),
		browsers: fs.Int("browsers", 0, "browser cells: Chromium processes (default: one per 6 pages)"),
		cutEvery: fs.Duration("cut-every", 0, "the server ends every stream (sse, ws, tcp) this long after it opened (0: never)"),
		sseRetry: fs.Duration("sse-retry", 0, "the reconnection time SSE streams announce (retry:; 0: none)"),
	}
}

// Apply sets the flags that were given on p and reports whether any was.
func (f *ClientFlags) Apply(p *Preset) (bool, error) {
	set := map[string]bool{}
	f.fs.Visit(func(fl *flag.Flag) { set[fl.Name] = true })
	if set["client"] {
		kinds, err := ParseList("client", *f.client, func(s string) (string, error) {
			if s != "go" && s != "browser" {
				return "", errors.New("want go or browser")
			}
			return s, nil
		})
		if err != nil {
			return false, fmt.Errorf("compare: %w", err)
		}
		p.ClientKinds = kinds
	}
	browser := slices.Contains(p.ClientKinds, "browser")
	switch {
	case set["browsers"] && !browser:
		return false, errors.New("compare: --browsers applies to --client browser")
	case *f.browsers < 0:
		return false, fmt.Errorf("compare: --browsers %d: must not be negative", *f.browsers)
	case *f.cutEvery < 0 || *f.sseRetry < 0:
		return false, errors.New("compare: --cut-every and --sse-retry must not be negative")
	case *f.sseRetry > 0 && *f.cutEvery == 0:
		return false, errors.New("compare: --sse-retry only matters when streams end; add --cut-every")
	}
	p.Browsers, p.CutEvery, p.SSERetry = *f.browsers, *f.cutEvery, *f.sseRetry
	if browser {
		if m := slices.Max(p.Clients); m > bench.MaxBrowserPages {
			return false, fmt.Errorf("compare: --client browser with %d clients: at most %d pages a cell (each is a renderer process); give --clients", m, bench.MaxBrowserPages)
		}
		if p.Workload != "" && p.Workload != "broadcast" {
			return false, fmt.Errorf("compare: --client browser: the pages subscribe only; the %s workload needs them to send", p.Workload)
		}
	}
	return set["client"] || set["browsers"] || set["cut-every"] || set["sse-retry"], nil
}
