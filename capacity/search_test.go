package capacity

import (
	"context"
	"errors"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"pushbench/results"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fake is a transport whose p99 grows with the clients: 1 ms per 1000
// clients, plus noise in [-noise, +noise] ms drawn from rng.
type fake struct {
	rng   *rand.Rand
	noise float64
	calls []int
}

func (f *fake) cell(_ context.Context, v int) (*results.Record, error) {
	f.calls = append(f.calls, v)
	p99 := float64(v) / 1000
	if f.noise > 0 {
		p99 += (f.rng.Float64()*2 - 1) * f.noise
	}
	rec := &results.Record{Status: results.StatusOK, Checks: map[string]results.Check{}}
	rec.Latency.Count = 100
	rec.Latency.P50 = int64(p99 / 2 * 1e6)
	rec.Latency.P99 = int64(p99 * 1e6)
	rec.DeliveriesPerS = float64(v)
	return rec, nil
}

var obj = Objective{P99: 10 * time.Millisecond}

// TestMonotone: with p99 = clients/1000 ms and a 10 ms objective, the edge
// is 10,000: the search doubles from 100 to 12,800, then bisects to within
// 5% of the last pass.
func TestMonotone(t *testing.T) {
	f := &fake{}
	res, err := Search{Objective: obj, Min: 100, Max: 100000}.Run(context.Background(), f.cell)
	if err != nil {
		t.Fatal(err)
	}
	if res.MaxPass > 10000 || res.FirstFail == nil || res.FirstFail.Value <= 10000 ||
		res.FirstFail.Value-res.MaxPass > max(1, res.MaxPass/20) {
		t.Fatalf("max pass %d, first fail %+v: want the edge 10000 bracketed within 5%%", res.MaxPass, res.FirstFail)
	}
	want := []int{100, 200, 400, 800, 1600, 3200, 6400, 12800}
	if len(f.calls) < len(want) || !equal(f.calls[:len(want)], want) {
		t.Errorf("steps %v, want the geometric steps %v first", f.calls, want)
	}
	if res.NonMonotone || res.AtCeiling || res.AtMax || res.Edge == nil || res.Edge.Value != res.MaxPass {
		t.Errorf("result %+v", res)
	}
	if !strings.Contains(res.FirstFail.Reason, "latency: p99") {
		t.Errorf("reason %q", res.FirstFail.Reason)
	}
	if s := res.Summary("clients"); !strings.HasPrefix(s, "9") && !strings.HasPrefix(s, "10000") {
		t.Errorf("summary %q", s)
	}
}

// TestNoisy: with ±2 ms of noise the steps near the edge may flip, but the
// result always brackets a pass below a failure, within the resolution,
// and says so when a pass lay above a failure.
func TestNoisy(t *testing.T) {
	for seed := range uint64(50) {
		f := &fake{rng: rand.New(rand.NewPCG(seed, 1)), noise: 2}
		res, err := Search{Objective: obj, Min: 100, Max: 100000}.Run(context.Background(), f.cell)
		if err != nil {
			t.Fatal(err)
		}
		if res.FirstFail == nil || res.MaxPass >= res.FirstFail.Value || res.FirstFail.Value-res.MaxPass > max(1, res.MaxPass/20) {
			t.Fatalf("seed %d: max pass %d, first fail %+v", seed, res.MaxPass, res.FirstFail)
		}
		// ±2 ms around 1 ms per 1000: the edge is within 8,000..12,000.
		if res.MaxPass < 7000 || res.MaxPass > 12000 {
			t.Errorf("seed %d: max pass %d, outside what the noise allows", seed, res.MaxPass)
		}
		nonMono := false
		for _, a := range res.Steps {
			for _, b := range res.Steps {
				nonMono = nonMono || (a.Pass && !b.Pass && a.Value > b.Value)
			}
		}
		if nonMono != res.NonMonotone {
			t.Errorf("seed %d: non-monotone %v, steps say %v", seed, res.NonMonotone, nonMono)
		}
	}
}

// TestMinFails: an objective no step meets is capacity 0 with the reason,
// not an error.
func TestMinFails(t *testing.T) {
	f := &fake{}
	res, err := Search{Objective: Objective{P99: time.Microsecond}, Min: 100, Max: 1000}.Run(context.Background(), f.cell)
	if err != nil || res.MaxPass != 0 || res.FirstFail == nil || res.FirstFail.Value != 100 || len(f.calls) != 1 {
		t.Fatalf("res %+v, err %v, calls %v: want capacity 0 after one step", res, err, f.calls)
	}
	if s := res.Summary("clients"); !strings.HasPrefix(s, "capacity 0: even 100 clients fail (latency: p99") {
		t.Errorf("summary %q", s)
	}
}

// TestCeiling: every step passes up to the machine's ceiling: the result
// says the edge was not reached, and --max above it was clipped.
func TestCeiling(t *testing.T) {
	f := &fake{}
	res, err := Search{Objective: Objective{P99: time.Hour}, Min: 1000, Max: 50000, Ceiling: 19800, CeilingWhy: "open files: 20000"}.Run(context.Background(), f.cell)
	if err != nil {
		t.Fatal(err)
	}
	if !res.AtCeiling || res.AtMax || res.MaxPass != 19800 || res.FirstFail != nil || f.calls[len(f.calls)-1] != 19800 {
		t.Fatalf("res %+v calls %v", res, f.calls)
	}
	if s := res.Summary("clients"); !strings.Contains(s, "not its capacity") || !strings.Contains(s, "open files") {
		t.Errorf("summary %q", s)
	}
	res, _ = Search{Objective: Objective{P99: time.Hour}, Min: 10, Max: 50}.Run(context.Background(), f.cell)
	if !res.AtMax || res.AtCeiling || res.MaxPass != 50 {
		t.Errorf("at max: %+v", res)
	}
}

// TestJudge: loss, an unsound check and an error fail a step; a check
// about the load does not.
func TestJudge(t *testing.T) {
	rec := func() *results.Record {
		return &results.Record{Status: results.StatusOK, Latency: results.Latency{Count: 10, P50: 1e6, P99: 2e6}, Checks: map[string]results.Check{}}
	}
	r := rec()
	r.Checks["publisher_on_schedule"] = results.Check{OK: false}
	if st := Judge(5, r, obj); !st.Pass || len(st.FailedChecks) != 1 {
		t.Errorf("a load check failed the step: %+v", st)
	}
	r = rec()
	r.Lost, r.Expected = 3, 100
	r.Checks["no_loss"] = results.Check{OK: false}
	if st := Judge(5, r, obj); st.Pass || st.Reason != "loss: 3 of 100 deliveries lost" {
		t.Errorf("loss: %+v", st)
	}
	r = rec()
	r.Checks["client_cpu"] = results.Check{OK: false, Detail: "load generator used 95%"}
	if st := Judge(5, r, obj); st.Pass || st.Reason != "check client_cpu: load generator used 95%" {
		t.Errorf("client_cpu: %+v", st)
	}
	if st := Judge(5, rec(), Objective{P99: 10 * time.Millisecond, P50: 500 * time.Microsecond}); st.Pass || !strings.Contains(st.Reason, "p50") {
		t.Errorf("p50: %+v", st)
	}
	f := func(context.Context, int) (*results.Record, error) { return nil, errors.New("server died") }
	res, err := Search{Objective: obj, Min: 1, Max: 4}.Run(context.Background(), f)
	if err != nil || res.MaxPass != 0 || res.FirstFail == nil || res.FirstFail.Reason != "error: server died" {
		t.Errorf("an erroring cell: %+v %v", res, err)
	}
}

// TestInterrupted: a search whose context ends keeps the steps it made.
func TestInterrupted(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	f := &fake{}
	cell := func(ctx context.Context, v int) (*results.Record, error) {
		if v >= 400 {
			cancel()
			return nil, ctx.Err()
		}
		return f.cell(ctx, v)
	}
	res, err := Search{Objective: obj, Min: 100, Max: 100000}.Run(ctx, cell)
	if err != nil || !res.Interrupted || res.MaxPass != 200 || len(res.Steps) != 2 {
		t.Errorf("res %+v err %v: want two steps kept, interrupted", res, err)
	}
	if s := res.Summary("clients"); s != "200 clients pass; interrupted before a step failed: the edge lies above" {
		t.Errorf("summary %q", s)
	}
}

// TestBounds: impossible bounds are errors before any step.
func TestBounds(t *testing.T) {
	for _, s := range []Search{
		{Objective: obj, Min: 0, Max: 10},
		{Objective: obj, Min: 20, Max: 10},
		{Objective: Objective{}, Min: 1, Max: 10},
		{Objective: obj, Min: 30000, Max: 40000, Ceiling: 19800},
		{Objective: obj, Min: 1, Max: 10, Growth: 1},
	} {
		if _, err := s.Run(context.Background(), (&fake{}).cell); !errors.Is(err, ErrBounds) {
			t.Errorf("%+v: %v, want ErrBounds", s, err)
		}
	}
}

func equal(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestInterruptedAfterStep: a step whose cell completed just as the search
// was interrupted counts (its record is whole); one cut short does not.
func TestInterruptedAfterStep(t *testing.T) {
	for _, partial := range []bool{false, true} {
		ctx, cancel := context.WithCancel(context.Background())
		f := &fake{}
		cell := func(ctx context.Context, v int) (*results.Record, error) {
			rec, err := f.cell(ctx, v)
			if v == 400 {
				cancel()
				rec.Partial = partial
			}
			return rec, err
		}
		res, err := Search{Objective: obj, Min: 100, Max: 100000}.Run(ctx, cell)
		want := 400
		if partial {
			want = 200
		}
		if err != nil || !res.Interrupted || res.MaxPass != want || len(res.Steps) != 3 {
			t.Errorf("partial %v: max pass %d, %d steps, interrupted %v, err %v; want %d, 3 steps kept", partial, res.MaxPass, len(res.Steps), res.Interrupted, err, want)
		}
	}
}
