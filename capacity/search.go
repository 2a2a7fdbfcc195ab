// Package capacity finds how many clients a transport holds under a
// latency objective (or, with the rate dimension, how many events a second
// it carries at a fixed number of clients): it steps the value up
// geometrically until a step fails, then bisects between the last pass and
// the first failure. Each step is a full measured cell (package bench);
// Search only decides where to step next, so it is tested with a fake cell.
//
// A step passes when its p99 (and p50, when asked) meet the objective, no
// delivery was lost, and the checks that say the measurement itself is
// sound pass (Judge). The search stops at the machine's ceiling (open
// files, ports): a search that ends there with every step passing has not
// found the transport's edge, and the result says so.
package capacity

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"pushbench/report"
	"pushbench/results"
)

// Objective is the latency a step must meet.
type Objective struct {
	P99 time.Duration // required
	P50 time.Duration // 0: no p50 objective
}

func (o Objective) String() string {
	s := "p99 ≤ " + report.Duration(float64(o.P99))
	if o.P50 > 0 {
		s += ", p50 ≤ " + report.Duration(float64(o.P50))
	}
	return s
}

// Step is one measured value and its verdict, as capacity.json keeps it.
type Step = results.CapacityStep

// soundChecks are the checks whose failure makes a step's figures
// unsound (the measurement, not the transport, failed): the step fails
// with them. The others (the publisher's or the senders' lateness, bytes
// agreeing, the machine's CPU) describe the load and are part of what the
// latency objective judges; they are named in the step but do not fail it.
var soundChecks = []string{
	"no_loss", "clients_alive", "server_alive", "complete", "histogram_range",
	"clock_stable", "client_cpu", "pages_subscribed", "server_http", "http2_used",
	"tls_handshakes", "network_applied", "clients_stopped",
}

// SoundChecks lists the checks a step must pass (Judge).
func SoundChecks() []string { return slices.Clone(soundChecks) }

// Judge decides a step from its record: pass when p99 (and p50) meet obj,
// nothing was lost and every sound check passed; the reason names the
// first thing that failed.
func Judge(v int, rec *results.Record, obj Objective) Step {
	st := Step{Value: v}
	if rec == nil {
		st.Reason = "no record"
		return st
	}
	st.P50Ns, st.P99Ns = rec.Latency.P50, rec.Latency.P99
	st.Lost, st.Expected, st.DeliveriesPerS = rec.Lost, rec.Expected, rec.DeliveriesPerS
	st.FailedChecks = rec.FailedChecks()
	var why []string
	if rec.Partial || results.StatusOf(rec) != results.StatusOK {
		why = append(why, "the cell did not complete: "+cmp.Or(rec.Error, results.StatusOf(rec)))
	}
	if rec.Latency.Count == 0 {
		why = append(why, "nothing delivered")
	}
	if p := time.Duration(rec.Latency.P99); p > obj.P99 {
		why = append(why, fmt.Sprintf("latency: p99 %s > %s", report.Duration(float64(p)), report.Duration(float64(obj.P99))))
	}
	if p := time.Duration(rec.Latency.P50); obj.P50 > 0 && p > obj.P50 {
		why = append(why, fmt.Sprintf("latency: p50 %s > %s", report.Duration(float64(p)), report.Duration(float64(obj.P50))))
	}
	if rec.Lost > 0 {
		why = append(why, fmt.Sprintf("loss: %d of %d deliveries lost", rec.Lost, rec.Expected))
	}
	for _, name := range st.FailedChecks {
		if slices.Contains(soundChecks, name) && name != "no_loss" {
			why = append(why, "check "+name+": "+rec.Checks[name].Detail)
		}
	}
	st.Pass = len(why) == 0
	st.Reason = strings.Join(why, "; ")
	return st
}

// Cell measures one step at value v and returns its record. An error
// with no record fails the step with the error as its reason, unless ctx
// has ended (the search then stops).
type Cell func(ctx context.Context, v int) (*results.Record, error)

// Search is one search's bounds and objective.
type Search struct {
	Objective
	// Min and Max bound the values stepped; Max is clipped to Ceiling.
	Min, Max int
	// Ceiling is the largest value the machine allows (0: none) and
	// CeilingWhy which limit sets it.
	Ceiling    int
	CeilingWhy string
	// Growth is the geometric step (default 2); bisection stops when the
	// last pass and the first failure are within Resolution of the pass
	// (default 5%, and never closer than one).
	Growth     float64
	Resolution float64
	// OnStep, if set, is called after every step with its record (nil
	// when the cell had none), before the next one starts.
	OnStep func(Step, *results.Record)
}

// Result is what a search found.
type Result struct {
	Steps      []Step
	MaxPass    int   // largest passing value (0: none)
	FirstFail  *Step // smallest failing value above it
	Edge       *Step // the step at MaxPass
	AtCeiling  bool  // every step passed up to the machine's ceiling: not the transport's edge
	AtMax      bool  // every step passed up to --max: not the edge either
	CeilingWhy string
	// NonMonotone: a step passed above a value that failed (the cells are
	// noisy near the edge); MaxPass is still the largest pass below the
	// smallest failure.
	NonMonotone bool
	Interrupted bool
}

// ErrBounds is a search that cannot start.
var ErrBounds = errors.New("bad search bounds")

// Run runs the search, calling cell once per step.
func (s Search) Run(ctx context.Context, cell Cell) (Result, error) {
	if s.Growth == 0 {
		s.Growth = 2
	}
	if s.Resolution == 0 {
		s.Resolution = 0.05
	}
	res := Result{CeilingWhy: s.CeilingWhy}
	switch {
	case s.Min < 1 || s.Max < s.Min:
		return res, fmt.Errorf("%w: min %d, max %d (want 1 ≤ min ≤ max)", ErrBounds, s.Min, s.Max)
	case !(s.Growth > 1) || !(s.Resolution > 0) || s.Resolution >= 1:
		return res, fmt.Errorf("%w: growth %v, resolution %v (want growth > 1, 0 < resolution < 1)", ErrBounds, s.Growth, s.Resolution)
	case s.P99 <= 0 || s.P50 < 0:
		return res, fmt.Errorf("%w: objective %v", ErrBounds, s.Objective)
	}
	hiBound := s.Max
	if s.Ceiling > 0 && hiBound > s.Ceiling {
		hiBound = s.Ceiling
	}
	if s.Min > hiBound {
		return res, fmt.Errorf("%w: min %d is above the machine's ceiling %d (%s)", ErrBounds, s.Min, hiBound, s.CeilingWhy)
	}
	// step measures v; counted is false for a step cut short by ctx (kept
	// in Steps, but neither a pass nor a failure), and the search goes on
	// only while ctx lasts.
	step := func(v int) (st Step, counted, goOn bool) {
		rec, err := cell(ctx, v)
		if ctx.Err() != nil {
			res.Interrupted = true
			if rec == nil {
				return Step{}, false, false
			}
		}
		counted = !res.Interrupted || !rec.Partial
		st = Judge(v, rec, s.Objective)
		if rec == nil && err != nil {
			st.Error, st.Reason = err.Error(), "error: "+err.Error()
		} else if err != nil && st.Pass {
			st.Pass, st.Reason = false, "error: "+err.Error()
		}
		res.Steps = append(res.Steps, st)
		if s.OnStep != nil {
			s.OnStep(st, rec)
		}
		return st, counted, !res.Interrupted
	}

	lo, hi := 0, 0 // the largest pass, the smallest failure (0: none yet)
	var loStep, hiStep Step
	// measure steps at v and moves the bracket with a counted verdict.
	measure := func(v int) (Step, bool) {
		st, counted, goOn := step(v)
		switch {
		case counted && st.Pass:
			lo, loStep = v, st
		case counted:
			hi, hiStep = v, st
		}
		return st, goOn
	}
	for v := s.Min; ; {
		st, goOn := measure(v)
		if !goOn {
			return res.finish(lo, hi, loStep, hiStep), nil
		}
		if !st.Pass || v >= hiBound {
			break
		}
		v = min(hiBound, max(v+1, int(math.Ceil(float64(v)*s.Growth))))
	}
	for hi != 0 && lo != 0 && hi-lo > max(1, int(s.Resolution*float64(lo))) {
		if _, goOn := measure(lo + (hi-lo)/2); !goOn {
			break
		}
	}
	if hi == 0 && lo > 0 {
		res.AtCeiling = s.Ceiling > 0 && lo >= s.Ceiling
		res.AtMax = !res.AtCeiling
	}
	return res.finish(lo, hi, loStep, hiStep), nil
}

// finish fills in the search's outcome.
func (r Result) finish(lo, hi int, loStep, hiStep Step) Result {
	r.MaxPass = lo
	if lo > 0 {
		r.Edge = &loStep
	}
	if hi > 0 {
		r.FirstFail = &hiStep
	}
	for _, a := range r.Steps {
		for _, b := range r.Steps {
			if a.Pass && !b.Pass && a.Value > b.Value {
				r.NonMonotone = true
			}
		}
	}
	return r
}

// Summary says in one line what the search found.
func (r Result) Summary(unit string) string {
	switch {
	case r.Interrupted && r.MaxPass == 0 && r.FirstFail == nil:
		return "interrupted before any step finished"
	case r.MaxPass == 0 && r.FirstFail != nil:
		return fmt.Sprintf("capacity 0: even %d %s fail (%s)", r.FirstFail.Value, unit, r.FirstFail.Reason)
	case r.AtCeiling:
		return fmt.Sprintf("%d %s pass, the machine's ceiling (%s): the transport's edge was not reached, this is not its capacity", r.MaxPass, unit, r.CeilingWhy)
	case r.AtMax:
		return fmt.Sprintf("%d %s pass, the search's --max: the edge lies above", r.MaxPass, unit)
	case r.FirstFail == nil:
		return fmt.Sprintf("%d %s pass; interrupted before a step failed: the edge lies above", r.MaxPass, unit)
	}
	s := fmt.Sprintf("%d %s (first failure at %d: %s)", r.MaxPass, unit, r.FirstFail.Value, r.FirstFail.Reason)
	if r.Interrupted {
		s += "; interrupted: the edge lies between"
	}
	if r.NonMonotone {
		s += "; noisy: a step passed above a failure"
	}
	return s
}
