// Package bench measures how fast a model runs: a timing loop that stops
// when the median is stable, latency statistics, peak memory, per-op time
// aggregation and the report `qtool bench` prints. It knows nothing about
// flags or terminals; cmd/qtool only prints what it returns.
package bench

import (
	"math"
	"sort"
	"time"
)

// Percentile returns the p-th percentile (0 <= p <= 100) of sorted samples
// with linear interpolation between closest ranks (NumPy's default
// "linear" method): position p/100·(n-1). It returns NaN for no samples.
func Percentile(sorted []float64, p float64) float64 {
	n := len(sorted)
	if n == 0 || math.IsNaN(p) {
		return math.NaN()
	}
	if p <= 0 {
		return sorted[0]
	}
	if p >= 100 {
		return sorted[n-1]
	}
	pos := p / 100 * float64(n-1)
	lo := int(math.Floor(pos))
	if lo >= n-1 {
		return sorted[n-1]
	}
	frac := pos - float64(lo)
	return sorted[lo] + frac*(sorted[lo+1]-sorted[lo])
}

// Median is Percentile(·, 50) of unsorted samples (the input is not modified).
func Median(samples []float64) float64 {
	s := append([]float64(nil), samples...)
	sort.Float64s(s)
	return Percentile(s, 50)
}

// Stats summarizes latency samples in milliseconds.
type Stats struct {
	N      int     `json:"n"`
	Min    float64 `json:"min"`
	Mean   float64 `json:"mean"`
	Stddev float64 `json:"stddev"`
	P50    float64 `json:"p50"`
	P90    float64 `json:"p90"`
	P99    float64 `json:"p99"`
	Max    float64 `json:"max"`
}

// Millis converts durations to float milliseconds.
func Millis(d []time.Duration) []float64 {
	out := make([]float64, len(d))
	for i, x := range d {
		out[i] = float64(x) / float64(time.Millisecond)
	}
	return out
}

// Summarize computes Stats of samples (any unit; qtool uses ms). Stddev is
// the sample standard deviation (n-1), 0 for a single sample. No samples
// give zero Stats (N == 0), not NaNs, so that reports stay valid JSON.
func Summarize(samples []float64) Stats {
	n := len(samples)
	if n == 0 {
		return Stats{}
	}
	s := append([]float64(nil), samples...)
	sort.Float64s(s)
	var sum float64
	for _, x := range s {
		sum += x
	}
	mean := sum / float64(n)
	var ss float64
	for _, x := range s {
		ss += (x - mean) * (x - mean)
	}
	sd := 0.0
	if n > 1 {
		sd = math.Sqrt(ss / float64(n-1))
	}
	return Stats{N: n, Min: s[0], Mean: mean, Stddev: sd,
		P50: Percentile(s, 50), P90: Percentile(s, 90), P99: Percentile(s, 99), Max: s[n-1]}
}

// Stable reports whether the median of samples has settled: there are at
// least minRuns samples and the median of the most recent half is within
// tol (relative) of the median of all of them. A drifting machine (thermal
// throttling, a neighbour starting work) moves the recent half away from
// the whole, so the loop keeps going until the two agree or its cap ends it.
func Stable(samples []float64, minRuns int, tol float64) bool {
	n := len(samples)
	if minRuns < 2 {
		minRuns = 2
	}
	if n < minRuns {
		return false
	}
	all := Median(samples)
	recent := Median(samples[n-n/2:])
	if all == 0 {
		return recent == 0
	}
	return math.Abs(recent-all) <= tol*math.Abs(all)
}
