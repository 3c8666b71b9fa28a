package bench

import (
	"errors"
	"fmt"
	"time"
)

// Options control the timing loop.
type Options struct {
	// Warmup runs of each function are made and discarded first, so that
	// buffer pools, packed weights and caches are in their steady state.
	Warmup int
	// Runs > 0 times exactly this many runs of each function. Runs == 0
	// runs until every function's median is stable (see Stable), bounded
	// by MaxRuns and MaxTime.
	Runs int
	// MinRuns is the fewest timed runs before the stability rule may stop
	// the loop (default 10).
	MinRuns int
	// MaxRuns caps the timed runs of each function in until-stable mode
	// (default 100000: MinTime and MaxTime are the usual bounds).
	MaxRuns int
	// MaxTime caps the timed phase in until-stable mode (default 10 s); at
	// least MinRuns runs are made whatever it says.
	MaxTime time.Duration
	// MinTime is the shortest timed phase in until-stable mode (default
	// 1 s), so that a sub-millisecond model is not declared stable on a
	// few milliseconds of samples.
	MinTime time.Duration
	// Tolerance is the stability rule's relative tolerance (default 0.01).
	Tolerance float64
	// AfterWarmup, when set, is called once between the warm-up and the
	// timed runs (profilers start recording there).
	AfterWarmup func()
	// Progress, when set, is called after each timed round with the runs
	// done per function and the total (-1 when running until stable).
	Progress func(done, total int)
}

func (o Options) withDefaults() Options {
	if o.MinRuns <= 0 {
		o.MinRuns = 10
	}
	if o.MaxRuns <= 0 {
		o.MaxRuns = 100000
	}
	if o.MaxRuns < o.MinRuns {
		o.MaxRuns = o.MinRuns
	}
	if o.MaxTime <= 0 {
		o.MaxTime = 10 * time.Second
	}
	if o.MinTime <= 0 {
		o.MinTime = time.Second
	}
	if o.MinTime > o.MaxTime {
		o.MinTime = o.MaxTime
	}
	if o.Tolerance <= 0 {
		o.Tolerance = 0.01
	}
	return o
}

// now is the clock Measure reads; tests replace it with a simulated one so
// that the stopping rules are checked without depending on machine load.
var now = time.Now

// Result holds the timed samples of each function, in run order.
type Result struct {
	Samples [][]time.Duration
	// Stable is true when until-stable mode stopped because every median
	// settled (false when a cap stopped it, and for a fixed Runs).
	Stable bool
	// Elapsed is the wall time of the timed phase.
	Elapsed time.Duration
}

// Measure times fns. With several functions their runs are interleaved
// (A B, B A, A B, ...), so that a slow spell of a shared machine hits all of
// them alike and their ratio stays meaningful; the order alternates each
// round so that neither always runs right after the other. The first error
// stops the loop.
func Measure(fns []func() error, o Options) (*Result, error) {
	if len(fns) == 0 {
		return nil, errors.New("bench: nothing to measure")
	}
	if o.Runs < 0 || o.Warmup < 0 {
		return nil, fmt.Errorf("bench: runs (%d) and warmup (%d) must not be negative", o.Runs, o.Warmup)
	}
	o = o.withDefaults()
	for i := 0; i < o.Warmup; i++ {
		for j, f := range fns {
			if err := f(); err != nil {
				return nil, fmt.Errorf("warm-up run of model %d: %w", j+1, err)
			}
		}
	}
	if o.AfterWarmup != nil {
		o.AfterWarmup()
	}
	res := &Result{Samples: make([][]time.Duration, len(fns))}
	ms := make([][]float64, len(fns))
	total := o.Runs
	if total == 0 {
		total = -1
	}
	start := now()
	nextCheck := 0
	for round := 0; ; round++ {
		for k := range fns {
			j := k
			if round%2 == 1 {
				j = len(fns) - 1 - k
			}
			t0 := now()
			if err := fns[j](); err != nil {
				return nil, fmt.Errorf("run %d of model %d: %w", round+1, j+1, err)
			}
			d := now().Sub(t0)
			res.Samples[j] = append(res.Samples[j], d)
			ms[j] = append(ms[j], float64(d)/float64(time.Millisecond))
		}
		done := round + 1
		if o.Progress != nil {
			o.Progress(done, total)
		}
		if o.Runs > 0 {
			if done >= o.Runs {
				break
			}
			continue
		}
		// The rule sorts every sample, so it is checked only each time the
		// run count has grown by 5%: O(n log n) overall, not O(n² log n).
		stable := now().Sub(start) >= o.MinTime && done >= nextCheck
		if stable {
			nextCheck = done + done/20
		}
		for _, s := range ms {
			if !stable {
				break
			}
			if !Stable(s, o.MinRuns, o.Tolerance) {
				stable = false
				break
			}
		}
		if stable {
			res.Stable = true
			break
		}
		if done >= o.MaxRuns || (done >= o.MinRuns && now().Sub(start) >= o.MaxTime) {
			break
		}
	}
	res.Elapsed = now().Sub(start)
	return res, nil
}
