package eval

import "math"

// fineBins is the resolution of the per-layer histograms; rendering merges
// them into a few dozen bars over the part that holds data.
const fineBins = 1024

// fineHist counts float values over the quantized range widened by half its
// width on each side (where clipped values land), with the values beyond
// that counted apart. Fixing the bins by the quantized range, known before
// any data is seen, lets one pass fill it.
type fineHist struct {
	lo, hi      float64 // bin range
	qlo, qhi    float64 // quantized range
	counts      []int64
	under, over int64
	clipped     int64
	min, max    float64
	n           int64
}

func newFineHist(qlo, qhi float64) *fineHist {
	w := qhi - qlo
	if !(w > 0) || math.IsInf(w, 0) {
		w = 1
	}
	return &fineHist{lo: qlo - w/2, hi: qhi + w/2, qlo: qlo, qhi: qhi, counts: make([]int64, fineBins), min: math.Inf(1), max: math.Inf(-1)}
}

func (h *fineHist) add(x []float32) {
	inv := float64(fineBins) / (h.hi - h.lo)
	for _, f := range x {
		v := float64(f)
		if v != v {
			continue
		}
		h.n++
		if v < h.min {
			h.min = v
		}
		if v > h.max {
			h.max = v
		}
		if v < h.qlo || v > h.qhi {
			h.clipped++
		}
		switch {
		case v < h.lo:
			h.under++
		case v >= h.hi:
			h.over++
		default:
			i := int((v - h.lo) * inv)
			if i >= fineBins {
				i = fineBins - 1
			}
			h.counts[i]++
		}
	}
}

// Histogram is a tensor's float values binned for display, with the range
// its quantized form can represent.
type Histogram struct {
	Tensor string  `json:"tensor"`
	Lo     float64 `json:"lo"`
	Hi     float64 `json:"hi"`
	Counts []int64 `json:"counts"`
	// Under and Over count values below Lo and above Hi.
	Under int64   `json:"under"`
	Over  int64   `json:"over"`
	QMin  float64 `json:"qmin"`
	QMax  float64 `json:"qmax"`
	Min   float64 `json:"min"`
	Max   float64 `json:"max"`
}

// coarse merges the fine bins into about n bars spanning the values seen
// and the quantized range.
func (h *fineHist) coarse(name string, n int) *Histogram {
	w := (h.hi - h.lo) / fineBins
	from, to := math.Min(h.min, h.qlo), math.Max(h.max, h.qhi)
	// The same bin arithmetic as add, so that the bin holding the smallest
	// value is never left out by a rounding difference.
	inv := float64(fineBins) / (h.hi - h.lo)
	i0 := int(math.Floor((from - h.lo) * inv))
	i1 := int(math.Floor((to-h.lo)*inv)) + 1
	if i0 < 0 {
		i0 = 0
	}
	if i1 > fineBins {
		i1 = fineBins
	}
	if i1 <= i0 {
		i0, i1 = 0, fineBins
	}
	g := (i1 - i0 + n - 1) / n
	if g < 1 {
		g = 1
	}
	// Whole groups only, so every bar is as wide; the last may reach
	// past the data, or stop short of it at the end of the fine range.
	i1 = i0 + (i1-i0+g-1)/g*g
	for i1 > fineBins {
		i1 -= g
	}
	out := &Histogram{Tensor: name, Lo: h.lo + float64(i0)*w, Hi: h.lo + float64(i1)*w, QMin: h.qlo, QMax: h.qhi, Min: h.min, Max: h.max, Under: h.under, Over: h.over}
	for i := i0; i < i1; i += g {
		var c int64
		for j := i; j < i+g; j++ {
			c += h.counts[j]
		}
		out.Counts = append(out.Counts, c)
	}
	// Values between the last shown bin and the edge of the fine range
	// are outside [Lo, Hi] too.
	for j := i1; j < fineBins; j++ {
		out.Over += h.counts[j]
	}
	for j := 0; j < i0; j++ {
		out.Under += h.counts[j]
	}
	return out
}

// Histogram returns the binned float values of the named layer (nil when it
// was not compared).
func (r *Report) Histogram(name string, bins int) *Histogram {
	for _, l := range r.Layers {
		if l.Name == name && l.hist != nil {
			return l.hist.coarse(name, bins)
		}
	}
	return nil
}
