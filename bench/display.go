package bench

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"pushbench/proc"
)

// Display shows a run's progress on stderr: a progress bar when stderr is
// a terminal, otherwise a plain line every plainEvery and at each phase
// change.
type Display struct {
	w     io.Writer
	bar   *progressbar.ProgressBar
	plain bool

	mu    sync.Mutex
	last  time.Time
	phase Phase
}

const plainEvery = 5 * time.Second

// NewDisplay returns the progress display of scenario s on w (nothing
// when quiet). w may be a *proc.SyncWriter around the real stderr.
func NewDisplay(w io.Writer, quiet bool, s Scenario) *Display {
	p := &Display{w: w}
	if quiet {
		return p
	}
	under := w
	if sw, ok := w.(*proc.SyncWriter); ok {
		under = sw.W
	}
	f, ok := under.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		p.plain = true
		return p
	}
	total := time.Duration(float64(s.Clients)/s.ConnectRate*float64(time.Second)) + s.Idle + s.Warmup + s.Duration
	p.bar = progressbar.NewOptions64(total.Milliseconds(),
		progressbar.OptionSetWriter(w),
		progressbar.OptionSetWidth(30),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionSetPredictTime(false),
		progressbar.OptionClearOnFinish(),
		progressbar.OptionSetDescription("start"),
	)
	return p
}

func (p *Display) Update(pr Progress) {
	p.mu.Lock()
	defer p.mu.Unlock()
	desc := fmt.Sprintf("%-7s %d/%d clients  %d/%d events  %s elapsed  %s left",
		pr.Phase, pr.Connected, pr.Clients, pr.Events, pr.TotalEvents,
		pr.Elapsed.Round(100*time.Millisecond), pr.Remaining.Round(100*time.Millisecond))
	switch {
	case p.bar != nil:
		total := (pr.Elapsed + pr.Remaining).Milliseconds()
		if pr.Phase == PhaseDrain || pr.Phase == PhaseDone {
			total = pr.Elapsed.Milliseconds()
		}
		if total > p.bar.GetMax64() || pr.Phase == PhaseDrain {
			p.bar.ChangeMax64(max(1, total))
		}
		p.bar.Describe(desc)
		_ = p.bar.Set64(min(pr.Elapsed.Milliseconds(), p.bar.GetMax64()))
	case p.plain:
		now := time.Now()
		if pr.Phase == p.phase && now.Sub(p.last) < plainEvery {
			return
		}
		p.phase, p.last = pr.Phase, now
		fmt.Fprintf(p.w, "pushbench run: %s\n", strings.Join(strings.Fields(desc), " "))
	}
}

func (p *Display) Finish() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.bar != nil {
		_ = p.bar.Finish()
		p.bar = nil
	}
}
