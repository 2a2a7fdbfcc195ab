package clients

import (
	"testing"
	"time"

	"pushbench/transport"
)

// gaps records what OnReconnect is handed. The callback runs on Run's
// goroutine; the test reads the gaps once Run has returned.
type gaps chan time.Duration

func (g gaps) record(gap time.Duration) {
	select {
	case g <- gap:
	default:
		panic("gaps: too many reconnects")
	}
}

func (g gaps) all() []time.Duration {
	var out []time.Duration
	for {
		select {
		case d := <-g:
			out = append(out, d)
		default:
			return out
		}
	}
}

// sseMsg is an SSE message carrying the event or gap notice m, as the
// server frames it.
func sseMsg(m string) string { return "id: " + messageID(m) + "\ndata: " + m + "\n\n" }

// TestOnReconnect: every stream transport calls OnReconnect once per
// reconnect, with the time from the end of the connection before to the
// new subscription, which spans the failed attempts between them and
// their backoff.
func TestOnReconnect(t *testing.T) {
	t.Parallel()
	const backoff = 20 * time.Millisecond
	for _, tr := range streams() {
		t.Run(tr, func(t *testing.T) {
			t.Parallel()
			f := newFake(t, tr,
				answer{msgs: []string{ev(1), ev(2)}, end: cut},
				answer{status: 503, reason: "restarting"}, // a failure: the backoff's first step
				answer{msgs: []string{ev(3)}, end: endClean},
				answer{msgs: []string{ev(4)}},
			)
			g := make(gaps, 16)
			c := startClient(t, tr, f.url, Config{
				Backoff:     Backoff{Min: backoff, Max: 2 * backoff, Tries: 5},
				OnReconnect: g.record,
			}, upTo(4))
			checkBatches(t, c.collect(t), one(1, 2, 3, 4))
			got := g.all()
			if n := c.counters.Reconnects.Load(); n != 2 || len(got) != 2 {
				t.Fatalf("reconnects %d, OnReconnect gaps %v; want 2 of each", n, got)
			}
			// The first reconnect waited the backoff after the 503; the
			// second followed a stream that delivered, at once.
			if got[0] < backoff || got[1] < 0 {
				t.Errorf("gaps %v, want the first at least the backoff's %v", got, backoff)
			}
		})
	}
}

// TestSSERetryHonoured: once a stream has carried a retry field, the SSE
// client waits at least that long before every reconnect, as an
// EventSource does, and resumes with Last-Event-ID; a stream that carried
// only the retry field made progress, so cuts before any event never add
// up to a give-up.
func TestSSERetryHonoured(t *testing.T) {
	t.Parallel()
	const retry = 60 * time.Millisecond
	f := newFake(t, transport.SSE,
		answer{raw: "retry: 60\n\n" + sseMsg(ev(1)), end: endClean},
		// Cut before any event, more often than Tries allows failures.
		answer{raw: "retry: 60\n\n", end: endClean},
		answer{raw: "retry: 60\n\n", end: endClean},
		answer{raw: "retry: 60\n\n", end: endClean},
		// The retry time stays when a stream carries none, and an abrupt
		// end waits it too.
		answer{msgs: []string{ev(2)}, end: cut},
		answer{msgs: []string{ev(3)}},
	)
	g := make(gaps, 16)
	c := startClient(t, transport.SSE, f.url, Config{
		Backoff:     Backoff{Min: time.Millisecond, Max: 2 * time.Millisecond, Tries: 2},
		OnReconnect: g.record,
	}, upTo(3))
	checkBatches(t, c.collect(t), one(1, 2, 3))
	got := g.all()
	if n := c.counters.Reconnects.Load(); n != 5 || len(got) != 5 {
		t.Fatalf("reconnects %d, OnReconnect gaps %v; want 5 of each", n, got)
	}
	for i, gap := range got {
		if gap < retry {
			t.Errorf("reconnect %d after %v, want at least the retry time %v", i, gap, retry)
		}
	}
	if e := c.counters.Errors.Load(); e != 1 {
		t.Errorf("errors %d, want 1 (the abrupt end)", e)
	}
	for i, r := range f.requests() {
		checkResume(t, transport.SSE, i, r, []uint64{0, 1, 1, 1, 1, 2}[i])
	}
}

// TestSessionPause: the wait before a reconnect is the backoff's delay
// after failures, nothing after progress, and at least the server's retry
// time either way.
func TestSessionPause(t *testing.T) {
	t.Parallel()
	const ms = time.Millisecond
	b := Backoff{Min: 10 * ms, Max: time.Second, Tries: 20}
	for _, tc := range []struct {
		retry time.Duration
		want  []time.Duration // after 0, 1, 2, 3, 4 and 19 failures
	}{
		{0, []time.Duration{0, 10 * ms, 20 * ms, 40 * ms, 80 * ms, time.Second}},
		{50 * ms, []time.Duration{50 * ms, 50 * ms, 50 * ms, 50 * ms, 80 * ms, time.Second}},
		{3 * time.Second, []time.Duration{3 * time.Second, 3 * time.Second, 3 * time.Second, 3 * time.Second, 3 * time.Second, 3 * time.Second}},
	} {
		s := session{backoff: b, retry: tc.retry}
		for i, n := range []int{0, 1, 2, 3, 4, 19} {
			if got := s.pause(n); got != tc.want[i] {
				t.Errorf("retry %v: pause after %d failures %v, want %v", tc.retry, n, got, tc.want[i])
			}
		}
	}
}
