package compare

import (
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestCompareTiming(t *testing.T) {
	t.Parallel()
	base := Presets()["default"] // warm-up 1 s, window 10 s, 3 events, polls 1 s and 100 ms
	noPoll := base
	noPoll.Transports = []string{"sse", "ws"}
	noStretch := noPoll
	noStretch.MinEvents = 0
	odd := base
	odd.Intervals = []time.Duration{700 * time.Millisecond}
	tests := []struct {
		name           string
		p              Preset
		rate           float64
		warmup, window time.Duration
	}{
		{"base", base, 1, time.Second, 10 * time.Second},
		{"stretched to 3 events, whole event intervals", base, 0.2, 5 * time.Second, 15 * time.Second},
		{"stretched without polling", noPoll, 0.25, 4 * time.Second, 12 * time.Second},
		{"fast rate", base, 1000, time.Second, 10 * time.Second},
		// 1/3 s is not a whole number of nanoseconds: poll intervals only.
		{"inexact event interval", odd, 3, 1002 * time.Millisecond, 10500 * time.Millisecond},
		// lcm(5 s, 700 ms) = 35 s would more than double 15 s.
		{"alignment that would double the window", odd, 0.2, 5 * time.Second, 15400 * time.Millisecond},
		{"inexact event interval without polling", noPoll, 0.3, 3334 * time.Millisecond, 10 * time.Second},
		// A window of at least one event interval, so never empty.
		{"window shorter than an event interval", noStretch, 0.05, 20 * time.Second, 20 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			w, d := tt.p.Timing(tt.rate)
			if w != tt.warmup || d != tt.window {
				t.Errorf("timing(%v) = warm-up %v, window %v; want %v, %v", tt.rate, w, d, tt.warmup, tt.window)
			}
		})
	}
}
