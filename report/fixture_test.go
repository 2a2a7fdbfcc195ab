package report

import (
	"bytes"
	"flag"
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"pushbench/results"
)

var update = flag.Bool("update", false, "rewrite testdata fixtures and golden files")

// The fixtures in testdata are hand-built but realistic: the numbers follow
// simple models of each transport (short polling waits half an interval on
// average and pays headers per poll, SSE and WebSocket pay a few bytes of
// framing per event, ...), and each record carries a real encoded
// histogram. `go test ./report -run TestFixtures -update` rewrites them; TestFixtures
// checks that they are still exactly what the generator makes.

var fixtureEnv = results.Env{
	GoVersion: "go1.26.8", GOMAXPROCS: 2, NumCPU: 2, CPUModel: "AMD EPYC 7B13",
	Kernel: "6.1.0-test", Commit: "6e3b695", Hostname: "bench-1", OS: "linux", Arch: "amd64",
}

// fixtureCell describes one cell to synthesise.
type fixtureCell struct {
	transport string
	interval  time.Duration // short polling
	clients   int
	rate      float64
	payload   int
}

// synth builds a realistic record for c from simple transport models.
func synth(c fixtureCell) results.Record {
	const dur = 10 * time.Second
	seed := uint64(c.clients)*1_000_003 + uint64(c.rate*1000)*7919 + uint64(c.payload)*31 + uint64(len(c.transport))*17 + uint64(c.interval/time.Millisecond)
	rng := rand.New(rand.NewPCG(seed, 42))
	events := uint64(c.rate * dur.Seconds())
	expected := events * uint64(c.clients)
	r := results.Record{
		Schema: results.Schema,
		Scenario: results.Scenario{
			Transport: c.transport, Clients: c.clients, Rate: c.rate, Payload: c.payload,
			IntervalNs: int64(c.interval), DurationNs: int64(dur), WarmupNs: int64(2 * time.Second),
			HoldNs: int64(30 * time.Second), ConnectRate: 500, DrainNs: int64(2 * time.Second),
			Schedule: "constant", Ring: 4096, SourceAddrs: 1,
		},
		Expected:  expected,
		Delivered: expected,
		Checks: map[string]results.Check{
			"publisher_on_schedule": {OK: true, Detail: "lag p50 4.00µs p99 61.0µs max 180µs; 0 of N events more than 1 ms late"},
			"client_cpu":            {OK: true, Detail: "load generator used 12% of 2 CPU(s) over the window (limit 80%)"},
			"histogram_range":       {OK: true, Detail: "0 latencies outside the histogram's 1 µs..1 h range"},
			"bytes_agree":           {OK: true, Detail: "clients and the server's listener agree: +0.00% / +0.00%"},
			"no_loss":               {OK: true, Detail: "lost 0 of N expected deliveries"},
		},
		Env:        fixtureEnv,
		StartedAt:  "2026-01-15T10:00:00Z",
		FinishedAt: "2026-01-15T10:00:14Z",
	}
	fanout := float64(c.clients) // µs of fan-out per event at the server, roughly 1 µs per client
	var base, spread float64     // latency: base + uniform(0, spread) + lognormal tail, in ns
	var downPerEvent, upPerEvent, reqPerEvent, empty, cpu, rssKiB, goroutines float64
	hdrDown, hdrUp := 132.0, 96.0
	switch c.transport {
	case "shortpoll":
		t := c.interval.Seconds()
		perPoll := c.rate * t // events per poll
		base, spread = 180e3, t*1e9
		bodyPerPoll := 2 + perPoll*float64(c.payload+1)
		downPerEvent = (hdrDown + bodyPerPoll) / perPoll
		upPerEvent = hdrUp / perPoll
		reqPerEvent = 1 / perPoll
		empty = math.Max(0, 1-perPoll)
		cpu = 28/perPoll + 1.5
		rssKiB, goroutines = 7.5, 1
	case "longpoll":
		batch := 1 + c.rate*float64(c.clients)/20000
		base, spread = 150e3, fanout*1.5e3+c.rate*2e3
		downPerEvent = (hdrDown+2)/batch + float64(c.payload+1)
		upPerEvent = hdrUp / batch
		reqPerEvent = 1 / batch
		empty = 0.002
		cpu = 22/batch + 1.5
		rssKiB, goroutines = 9.2, 1
	case "sse":
		base, spread = 90e3, fanout*1.2e3
		downPerEvent = float64(c.payload) + float64(len(fmt.Sprint(events))) + 13 + 7
		cpu = 3.1
		rssKiB, goroutines = 14.5, 2
	case "ws":
		base, spread = 75e3, fanout*1.0e3
		hdr := 2.0
		if c.payload >= 126 {
			hdr = 4
		}
		downPerEvent = float64(c.payload) + hdr
		cpu = 2.6
		rssKiB, goroutines = 18.1, 3
	}
	if c.payload > 1000 {
		cpu += 0.8
	}
	cpu *= 1 + 0.05*rng.NormFloat64()
	if c.clients == 1 { // one connection's RSS is lost in page-granularity noise
		rssKiB = 40 * rng.NormFloat64()
	} else {
		rssKiB *= 1 + 0.1*rng.NormFloat64()
	}

	h := results.NewHistogram()
	const samples = 4000
	for i := range samples {
		v := base + rng.Float64()*spread + math.Exp(rng.NormFloat64()*0.8)*20e3
		n := int64(r.Delivered) / samples
		if i < int(int64(r.Delivered)%samples) {
			n++
		}
		if err := h.RecordValues(int64(v), n); err != nil {
			panic(err)
		}
	}
	r.Latency = results.Summarise(h)
	enc, err := results.EncodeHistogram(h)
	if err != nil {
		panic(err)
	}
	r.Histogram = enc

	delivered := float64(r.Delivered)
	r.Wire = results.Wire{
		DownBytesPerEvent: round2(downPerEvent), UpBytesPerEvent: round2(upPerEvent),
		DownBytes: uint64(downPerEvent * delivered), UpBytes: uint64(upPerEvent * delivered),
	}
	r.Wire.DownBytesPerClientSec = round2(float64(r.Wire.DownBytes) / float64(c.clients) / dur.Seconds())
	r.Wire.UpBytesPerClientSec = round2(float64(r.Wire.UpBytes) / float64(c.clients) / dur.Seconds())
	r.Wire.ServerOutBytes, r.Wire.ServerInBytes = r.Wire.DownBytes, r.Wire.UpBytes
	r.Requests = uint64(reqPerEvent * delivered)
	r.RequestsPerEvent = round4(reqPerEvent)
	r.EmptyResponses = uint64(empty * float64(r.Requests))
	if r.Requests > 0 {
		r.EmptyShare = round4(float64(r.EmptyResponses) / float64(r.Requests))
	}
	r.Server = results.Server{
		CPUUsPerEvent: round2(cpu), CPUUs: round2(cpu * delivered), PublisherCPUUs: round2(3 * float64(events)),
		RSSBytesPerConn: math.Round(rssKiB * 1024), HeapBytesPerConn: math.Round(rssKiB * 0.6 * 1024), GoroutinesPerConn: goroutines,
	}
	r.Client = results.Client{CPUUsPerEvent: round2(cpu * 1.3), CPUUs: round2(cpu * 1.3 * delivered)}
	r.Client.CPUUtilisation = round4(r.Client.CPUUs / (dur.Seconds() * 1e6 * 2))
	r.DeliveriesPerS = round2(delivered / dur.Seconds())
	r.Publisher = results.Publisher{Published: events, FirstSeq: 1, LastSeq: events, LagP50Ns: 4_000, LagP99Ns: 61_000, LagMaxNs: 180_000}
	return r
}

func round2(v float64) float64 { return math.Round(v*100) / 100 }
func round4(v float64) float64 { return math.Round(v*1e4) / 1e4 }

var allTransports = []fixtureCell{
	{transport: "shortpoll", interval: time.Second},
	{transport: "longpoll"},
	{transport: "sse"},
	{transport: "ws"},
}

// compareFixture is a star-shaped matrix around 100 clients, 1 event/s,
// 64 B: clients 1..1000, rates 0.2..100 at both payloads, short polling
// also every 100 ms along the rate axis; one cell lost events and failed a
// check, one had reconnects.
func compareFixture() []results.Record {
	var coords []coord
	for _, n := range []int{1, 100, 1000} {
		coords = append(coords, coord{Clients: n, Rate: 1, Payload: 64})
	}
	for _, p := range []int{64, 4096} {
		for _, r := range []float64{0.2, 1, 10, 100} {
			if p == 64 && r == 1 {
				continue // already in the clients axis
			}
			coords = append(coords, coord{Clients: 100, Rate: r, Payload: p})
		}
	}
	var recs []results.Record
	for _, at := range coords {
		for _, t := range allTransports {
			c := t
			c.clients, c.rate, c.payload = at.Clients, at.Rate, at.Payload
			recs = append(recs, synth(c))
		}
		if at.Clients == 100 && at.Payload == 64 {
			recs = append(recs, synth(fixtureCell{"shortpoll", 100 * time.Millisecond, 100, at.Rate, 64}))
		}
	}
	for i := range recs {
		r := &recs[i]
		s := r.Scenario
		if s.Transport == "shortpoll" && s.IntervalNs == int64(100*time.Millisecond) && s.Rate == 100 {
			r.Lost, r.Delivered = 37, r.Expected-37
			r.Checks["no_loss"] = results.Check{OK: false, Detail: "lost 37 of 100000 expected deliveries (1000 in-window events × 100 clients; gap notices named 37 events)"}
		}
		if s.Transport == "longpoll" && s.Clients == 1000 {
			r.Reconnects = 4
		}
	}
	return recs
}

// zeroFixture has every transport at one scenario with nothing measured:
// zero values everywhere and no histograms.
func zeroFixture() []results.Record {
	var recs []results.Record
	for _, t := range allTransports {
		recs = append(recs, results.Record{Schema: results.Schema, Scenario: results.Scenario{
			Transport: t.transport, IntervalNs: int64(t.interval), Clients: 10, Rate: 5, Payload: 64,
		}, Env: fixtureEnv})
	}
	return recs
}

// oneTransportFixture is SSE alone over clients and rates.
func oneTransportFixture() []results.Record {
	var recs []results.Record
	for _, at := range []coord{{Clients: 1, Rate: 1, Payload: 64}, {Clients: 10, Rate: 1, Payload: 64}, {Clients: 10, Rate: 10, Payload: 64}, {Clients: 10, Rate: 50, Payload: 64}} {
		recs = append(recs, synth(fixtureCell{"sse", 0, at.Clients, at.Rate, at.Payload}))
	}
	return recs
}

// fixtures maps each testdata folder to its records and the file they are
// stored in.
var fixtures = []struct {
	dir, file string
	recs      func() []results.Record
}{
	{"compare", results.RecordsFile, compareFixture},
	{"single", results.ResultFile, func() []results.Record { return []results.Record{synth(fixtureCell{"ws", 0, 100, 10, 64})} }},
	{"zeros", results.RecordsFile, zeroFixture},
	{"onetransport", results.RecordsFile, oneTransportFixture},
}

// compareRunInfo is testdata/compare/run.json.
func compareRunInfo() results.RunInfo {
	return results.RunInfo{
		Preset:       "fixture",
		Command:      []string{"pushbench", "compare", "--out", "results/runs/fixture"},
		Config:       []byte(`{"clients":[1,100,1000],"rates":[0.2,1,10,100],"payloads":[64,4096],"intervals":["1s","100ms"],"duration":"10s"}`),
		Env:          fixtureEnv,
		StartedAt:    "2026-01-15T10:00:00Z",
		FinishedAt:   "2026-01-15T10:11:02Z",
		CellsPlanned: 44,
		CellsDone:    44,
	}
}

// TestFixtures checks that the stored fixtures hold exactly the records
// the generator makes, field by field, and that the comparison's run.json
// is the one it writes; -update rewrites them. A change to synth or a
// hand-edited fixture fails here, naming the first field that differs.
func TestFixtures(t *testing.T) {
	for _, fx := range fixtures {
		path := filepath.Join("testdata", fx.dir, fx.file)
		want := fx.recs()
		if *update {
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				t.Fatal(err)
			}
			os.Remove(path)
			if fx.file == results.ResultFile {
				if err := results.WriteRecord(path, want[0]); err != nil {
					t.Fatal(err)
				}
			} else {
				for _, r := range want {
					if err := results.AppendRecord(path, r); err != nil {
						t.Fatal(err)
					}
				}
			}
		}
		got, err := results.ReadRecords(path)
		if err != nil {
			t.Fatalf("%s: %v (run with -update to create it)", path, err)
		}
		if d := recordsDiff(got, want); d != "" {
			t.Errorf("%s is not what the generator makes (run with -update if the change is intended): %s", path, d)
		}
	}

	// run.json: the stored bytes are what WriteRunInfo writes for
	// compareRunInfo.
	path := filepath.Join("testdata", "compare", results.RunInfoFile)
	if *update {
		if err := results.WriteRunInfo(path, compareRunInfo()); err != nil {
			t.Fatal(err)
		}
	}
	fresh := filepath.Join(t.TempDir(), results.RunInfoFile)
	if err := results.WriteRunInfo(fresh, compareRunInfo()); err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile(fresh)
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s is not what the generator writes (run with -update):\n%s", path, firstDiff(string(got), string(want)))
	}
}

// TestRecordsDiff: the comparison TestFixtures relies on sees a change in
// any field, names it, and sees none between equal records.
func TestRecordsDiff(t *testing.T) {
	t.Parallel()
	base := compareFixture()[:3]
	clone := func() []results.Record {
		out := slices.Clone(base)
		for i := range out {
			out[i].Checks = maps.Clone(out[i].Checks)
		}
		return out
	}
	if d := recordsDiff(clone(), base); d != "" {
		t.Errorf("equal records differ: %s", d)
	}
	cases := []struct {
		mut  func(rs []results.Record) []results.Record
		want string
	}{
		{func(rs []results.Record) []results.Record { rs[1].Latency.P99++; return rs },
			"record 2 (transport=longpoll/clients=1/rate=1/payload=64): Latency.P99: got "},
		{func(rs []results.Record) []results.Record { rs[2].Wire.UpBytesPerEvent = 0.5; return rs },
			"record 3 (transport=sse/clients=1/rate=1/payload=64): Wire.UpBytesPerEvent: got 0.5, want 0"},
		{func(rs []results.Record) []results.Record { delete(rs[0].Checks, "no_loss"); return rs },
			`Checks["no_loss"]: missing`},
		{func(rs []results.Record) []results.Record {
			rs[0].Checks["no_loss"] = results.Check{OK: false, Detail: "lost 1"}
			return rs
		}, `Checks["no_loss"].OK: got false, want true`},
		{func(rs []results.Record) []results.Record { rs[0].Histogram += "x"; return rs }, "Histogram: got "},
		{func(rs []results.Record) []results.Record { return rs[:2] }, "2 records, want 3"},
	}
	for _, c := range cases {
		d := recordsDiff(c.mut(clone()), base)
		if !strings.Contains(d, c.want) {
			t.Errorf("recordsDiff = %q, want it to contain %q", d, c.want)
		}
	}
}

// recordsDiff returns "" if got and want are deeply equal, else where they
// first differ: "record 3 (transport=sse/...): Latency.P99: got 1, want 2".
func recordsDiff(got, want []results.Record) string {
	if reflect.DeepEqual(got, want) {
		return ""
	}
	for i := range min(len(got), len(want)) {
		if d := valueDiff("", reflect.ValueOf(got[i]), reflect.ValueOf(want[i])); d != "" {
			return fmt.Sprintf("record %d (%s): %s", i+1, CellName(want[i].Scenario), d)
		}
	}
	if len(got) != len(want) {
		return fmt.Sprintf("%d records, want %d", len(got), len(want))
	}
	return "the records differ, but not field by field (NaN?)"
}

// valueDiff returns the path of the first difference between got and want
// (values of one type) and both values there, or "".
func valueDiff(path string, got, want reflect.Value) string {
	show := func(v reflect.Value) string {
		s := fmt.Sprintf("%#v", v.Interface())
		if len(s) > 60 {
			s = s[:60] + "…"
		}
		return s
	}
	differ := func() string {
		return fmt.Sprintf("%s: got %s, want %s", strings.TrimPrefix(path, "."), show(got), show(want))
	}
	switch got.Kind() {
	case reflect.Struct:
		for i := range got.NumField() {
			if d := valueDiff(path+"."+got.Type().Field(i).Name, got.Field(i), want.Field(i)); d != "" {
				return d
			}
		}
		return ""
	case reflect.Map:
		if got.IsNil() != want.IsNil() {
			return differ()
		}
		keys := append(got.MapKeys(), want.MapKeys()...)
		slices.SortFunc(keys, func(a, b reflect.Value) int { return strings.Compare(fmt.Sprint(a), fmt.Sprint(b)) })
		for _, k := range keys {
			kp := fmt.Sprintf("%s[%#v]", path, k.Interface())
			g, w := got.MapIndex(k), want.MapIndex(k)
			switch {
			case !g.IsValid():
				return fmt.Sprintf("%s: missing, want %s", strings.TrimPrefix(kp, "."), show(w))
			case !w.IsValid():
				return fmt.Sprintf("%s: got %s, want none", strings.TrimPrefix(kp, "."), show(g))
			}
			if d := valueDiff(kp, g, w); d != "" {
				return d
			}
		}
		return ""
	case reflect.Slice:
		if got.IsNil() != want.IsNil() || got.Len() != want.Len() {
			return differ()
		}
		for i := range got.Len() {
			if d := valueDiff(fmt.Sprintf("%s[%d]", path, i), got.Index(i), want.Index(i)); d != "" {
				return d
			}
		}
		return ""
	}
	if !reflect.DeepEqual(got.Interface(), want.Interface()) {
		return differ()
	}
	return ""
}
