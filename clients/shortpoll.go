package clients

import (
	"context"
	"pushbench/transport"
	"time"
)

// shortPoll is the short-polling subscriber: GET /poll?since=N at fixed
// times start + k·Interval, each answer one batch.
type shortPoll struct {
	poller
	interval time.Duration
	start    time.Time
	tick     int64 // the schedule tick of the latest poll
	answered bool  // the latest poll was answered: wait for the next tick
}

var _ Subscriber = (*shortPoll)(nil)

func init() {
	registerClient(transport.ShortPoll, func(cfg Config) (Subscriber, error) { return newShortPoll(cfg), nil })
}

func newShortPoll(cfg Config) *shortPoll {
	return &shortPoll{poller: newPoller(transport.ShortPoll, "/poll", cfg), interval: cfg.Interval}
}

func (s *shortPoll) Subscribed() <-chan struct{} { return s.sub.ch }

// Run polls until ctx ends. It must be called once.
//
// The schedule is open loop: poll k is due at start + k·Interval whatever
// the previous polls took, so that a slow server shows up as latency and
// not as a lower poll rate. If a poll overruns its period, the next one goes
// at once, and the schedule is not shifted: later polls stay on the original
// grid. Ticks that passed entirely during an overrun are skipped, not
// bunched — one late poll fetches everything they would have, and firing a
// burst of back-to-back polls would only add empty responses — and each
// skipped tick is counted in Counters.MissedTicks. After a failed poll the
// retry follows the backoff instead of the grid, and the grid resumes after
// it.
func (s *shortPoll) Run(ctx context.Context, h Handler) error {
	defer s.close()
	s.d.h = h
	s.start = gridStart(time.Now(), s.cfg.PollOrigin, s.interval)
	s.tick = -1
	traced := s.client.countRequests(ctx, nil)
	return s.sess.run(ctx, func(ctx context.Context) (bool, error) {
		if s.answered && !s.waitTick(ctx) {
			return false, nil
		}
		tick, skipped := scheduleTick(time.Since(s.start), s.interval, s.tick)
		s.tick = tick
		s.cfg.Counters.MissedTicks.Add(uint64(skipped))
		ok, err := s.poll(traced)
		s.answered = ok
		return ok, err
	})
}

// gridStart returns the latest time ≤ now on the grid origin + k·interval
// (now itself for a zero origin): the grid's tick 0 for this Run.
func gridStart(now, origin time.Time, interval time.Duration) time.Time {
	if origin.IsZero() {
		return now
	}
	off := now.Sub(origin) % interval
	if off < 0 {
		off += interval
	}
	return now.Add(-off)
}

// scheduleTick returns the tick that a poll elapsed after the start serves
// — the latest one due, and never the previous one again — and how many
// ticks after prev passed without a poll of their own.
func scheduleTick(elapsed, interval time.Duration, prev int64) (tick, skipped int64) {
	due := int64(elapsed / interval)
	return max(due, prev+1), max(due-prev-1, 0)
}

// waitTick waits until the tick after the latest poll is due, or returns at
// once if it already is. It reports false if ctx ended first.
func (s *shortPoll) waitTick(ctx context.Context) bool {
	next := s.start.Add(time.Duration(s.tick+1) * s.interval)
	return s.sess.sleep(ctx, time.Until(next))
}
