package main

import (
	"os"
	"time"

	"github.com/schollz/progressbar/v3"
)

// progress is a progress bar on stderr for a long loop: calibration, eval,
// sensitivity, benchmarking. It draws only when stderr is a terminal and
// --quiet is not set, so scripts and CI logs never see it.
type progress struct {
	desc, unit string
	bar        *progressbar.ProgressBar
}

// newProgress returns nil when no bar should be drawn; every method of a
// nil *progress does nothing.
func newProgress(s *settings, desc, unit string) *progress {
	if s.quiet() || !isTerminal(os.Stderr) {
		return nil
	}
	return &progress{desc: desc, unit: unit}
}

// Update sets the bar to done of total, creating it at the first call,
// when the total is known. Its signature is the callbacks' of calibrate,
// eval and bench; a nil *progress gives them a nil callback.
func (p *progress) Update() func(done, total int) {
	if p == nil {
		return nil
	}
	return func(done, total int) {
		if p.bar == nil {
			p.bar = progressbar.NewOptions(total,
				progressbar.OptionSetWriter(os.Stderr),
				progressbar.OptionSetDescription(p.desc),
				progressbar.OptionShowCount(),
				progressbar.OptionShowIts(),
				progressbar.OptionSetItsString(p.unit),
				progressbar.OptionThrottle(100*time.Millisecond),
				progressbar.OptionClearOnFinish())
		}
		p.bar.Set(done)
	}
}

// Done removes the bar (a spinner, for an unknown total, needs the Clear).
func (p *progress) Done() {
	if p == nil || p.bar == nil {
		return
	}
	p.bar.Finish()
	p.bar.Clear()
}

func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
