package capacity

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"time"

	"pushbench/bench"
	"pushbench/proc"
	"pushbench/report"
	"pushbench/results"
	"pushbench/transport"
)

// Dimensions of a search.
const (
	DimClients = "clients"
	DimRate    = "rate"
)

// Config is a `pushbench capacity` run: one search per transport, each
// step a full cell of Base with the searched value set.
type Config struct {
	Transports []string
	Dimension  string
	Objective
	// Base is every step's scenario (its Clients, or its Rate in the
	// rate dimension, is the searched value).
	Base bench.Scenario
	// Min and Max bound the steps (Max 0: the machine's ceiling).
	Min, Max int
	Growth   float64
	Out      string
	Command  []string
	// Launch starts each step's server (nil: a child process of this
	// executable); ServerLog gets its output.
	Launch    proc.Launcher
	ServerLog io.Writer
	// Log gets one line per step and per transport (nil: none).
	Log io.Writer
}

// Run runs the searches, appending every step's record to results.jsonl
// and rewriting capacity.json after each step (an interrupted run keeps
// what it found), then draws the report. It returns the result even when
// ctx ended (Interrupted is set), with ctx's error.
func Run(ctx context.Context, cfg Config) (*results.Capacity, error) {
	if cfg.Dimension == "" {
		cfg.Dimension = DimClients
	}
	ceiling, why, err := proc.Ceiling()
	if err != nil {
		return nil, err
	}
	if cfg.Dimension == DimRate {
		ceiling, why = int(bench.MaxRate), fmt.Sprintf("the publisher's limit of %.0f events/s", bench.MaxRate)
	}
	if cfg.Max == 0 {
		cfg.Max = ceiling // the default: as far as the machine allows
	}
	c := &results.Capacity{
		Schema: results.CapacitySchema, Dimension: cfg.Dimension,
		P99Ns: int64(cfg.P99), P50Ns: int64(cfg.P50), SoundChecks: SoundChecks(),
		Payload: cfg.Base.Payload, Ceiling: ceiling, CeilingWhy: why,
		MaxAsked: cfg.Max, Clipped: cfg.Max > ceiling,
		Command: cfg.Command, StartedAt: time.Now().UTC().Format(time.RFC3339), Env: proc.Environment(),
	}
	if cfg.Dimension == DimRate {
		c.Clients = cfg.Base.Clients
	} else {
		c.Rate = cfg.Base.Rate
	}
	logf := func(format string, args ...any) {
		if cfg.Log != nil {
			fmt.Fprintf(cfg.Log, format+"\n", args...)
		}
	}
	if c.Clipped {
		logf("pushbench capacity: --max %d is above the machine's ceiling: clipped to %d (%s)", cfg.Max, ceiling, why)
	}
	save := func() error { return results.WriteCapacity(filepath.Join(cfg.Out, results.CapacityFile), *c) }
	unit := cfg.Dimension
	if unit == DimRate {
		unit = "events/s"
	}
	var runErr error
	recorded := false
	for _, t := range cfg.Transports {
		ct := results.CapacityTransport{Transport: t}
		c.Transports = append(c.Transports, ct)
		cur := &c.Transports[len(c.Transports)-1]
		s := Search{Objective: cfg.Objective, Min: cfg.Min, Max: cfg.Max, Growth: cfg.Growth, Ceiling: ceiling, CeilingWhy: why}
		s.OnStep = func(st Step, rec *results.Record) {
			cur.Steps = append(cur.Steps, st)
			if rec != nil {
				recorded = true
				if err := results.AppendRecord(filepath.Join(cfg.Out, results.RecordsFile), *rec); err != nil {
					logf("pushbench capacity: %v", err)
				}
			}
			verdict := "pass"
			if !st.Pass {
				verdict = "FAIL: " + st.Reason
			}
			logf("  %s %d %s: p50 %s p99 %s, %.0f deliveries/s: %s", t, st.Value, unit,
				report.Duration(float64(st.P50Ns)), report.Duration(float64(st.P99Ns)), st.DeliveriesPerS, verdict)
			if err := save(); err != nil {
				logf("pushbench capacity: %v", err)
			}
		}
		logf("pushbench capacity: %s, %s from %d", transport.VariantName(t, cfg.Base.Interval), cfg.Objective, cfg.Min)
		res, err := s.Run(ctx, func(ctx context.Context, v int) (*results.Record, error) {
			sc := cfg.Base
			sc.Transport = t
			if cfg.Dimension == DimRate {
				sc.Rate = float64(v)
			} else {
				sc.Clients = v
			}
			sc = sc.WithDefaults()
			if err := sc.Validate(); err != nil {
				return nil, err
			}
			rec, _, err := bench.Run(ctx, sc, bench.Options{Launch: cfg.Launch, ServerLog: cfg.ServerLog})
			return rec, err
		})
		if err != nil {
			return c, err
		}
		cur.MaxClients, cur.AtCeiling, cur.AtMax = res.MaxPass, res.AtCeiling, res.AtMax
		cur.NonMonotone, cur.Interrupted = res.NonMonotone, res.Interrupted
		cur.FirstFail = res.FirstFail
		if res.Edge != nil {
			cur.EdgeDeliveriesPerS = res.Edge.DeliveriesPerS
		}
		cur.Summary = res.Summary(unit)
		logf("pushbench capacity: %s: %s", t, cur.Summary)
		if err := save(); err != nil {
			return c, err
		}
		if res.Interrupted {
			runErr = fmt.Errorf("interrupted during %s; capacity.json keeps the steps measured: %w", t, context.Canceled)
			break
		}
	}
	if runErr == nil {
		c.FinishedAt = time.Now().UTC().Format(time.RFC3339)
		if err := save(); err != nil {
			return c, err
		}
	}
	if recorded {
		if err := report.Report(cfg.Out); err != nil {
			runErr = errors.Join(runErr, err)
		}
	}
	return c, runErr
}
