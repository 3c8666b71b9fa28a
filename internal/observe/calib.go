package observe

import "math"

// Range selection of the observers PyTorch does not have. Both work on the
// streaming histogram (mass assumed uniform within a bin) and return a
// sub-range of [min, max].

// percentileRange: with Tails false, the range is ±t where t is the
// Percentile-th percentile of |x| (clipped to the observed range), ONNX
// Runtime's symmetric percentile; with Tails true, (100-p)/2 percent of the
// mass is cut from each side, as ONNX Runtime's asymmetric percentile does.
func (o *Histogram) percentileRange() (float32, float32) {
	p := o.cfg.Percentile
	if p == 0 {
		p = 99.99
	}
	p /= 100
	var total float64
	for _, v := range o.hist {
		total += float64(v)
	}
	if total == 0 || o.min == o.max {
		return o.min, o.max
	}
	lo, hi := float64(o.min), float64(o.max)
	w := (hi - lo) / float64(len(o.hist))
	// massBelow is the histogram mass below v (linear inside a bin).
	massBelow := func(v float64) float64 {
		if v <= lo {
			return 0
		}
		if v >= hi {
			return total
		}
		f := (v - lo) / w
		k := min(int(f), len(o.hist)-1)
		var m float64
		for i := 0; i < k; i++ {
			m += float64(o.hist[i])
		}
		return m + float64(o.hist[k])*(f-float64(k))
	}
	quantile := func(q float64) float64 {
		target := q * total
		var m float64
		for i, c := range o.hist {
			if m+float64(c) >= target && c > 0 {
				return lo + w*(float64(i)+(target-m)/float64(c))
			}
			m += float64(c)
		}
		return hi
	}
	if o.cfg.Tails {
		cut := (1 - p) / 2
		return float32(max(lo, quantile(cut))), float32(min(hi, quantile(1-cut)))
	}
	// Bisection on t: the mass with |x| > t falls monotonically in t.
	a, b := 0.0, max(-lo, hi)
	for it := 0; it < 100 && b-a > 1e-12*max(1, b); it++ {
		t := (a + b) / 2
		out := massBelow(-t) + (total - massBelow(t))
		if out > (1-p)*total {
			a = t
		} else {
			b = t
		}
	}
	return float32(max(lo, -b)), float32(min(hi, b))
}

// entropyRange is TensorRT's / ONNX Runtime's entropy calibration: the
// histogram is re-binned symmetrically around 0 over [-A, A] (A = max|x|),
// and for every candidate threshold (from EntropyBins/2 bins each side out to
// all of them) the clipped reference distribution P (outliers folded into
// the edge bins) is compared with its quantization Q to EntropyBins levels;
// the threshold with the smallest KL(P||Q) wins.
func (o *Histogram) entropyRange() (float32, float32) {
	lo, hi := float64(o.min), float64(o.max)
	a := max(-lo, hi)
	if a == 0 || o.min == o.max {
		return o.min, o.max
	}
	nb := len(o.hist)
	if nb%2 == 1 {
		nb++
	}
	h64 := make([]float64, nb)
	rebin(h64, o.hist, o.min, o.max, float32(-a), float32(a))
	nq := o.cfg.EntropyBins
	if nq == 0 {
		nq = 128
	}
	zero := nb / 2
	halfQ := nq / 2
	if halfQ < 1 || halfQ > zero {
		return o.min, o.max
	}
	w := 2 * a / float64(nb)
	prefix := make([]float64, nb+1)
	for i, v := range h64 {
		prefix[i+1] = prefix[i] + v
	}
	best, bestT := math.Inf(1), float64(zero)
	p := make([]float64, nb)
	q := make([]float64, nb)
	for i := halfQ; i <= zero; i++ {
		start, end := zero-i, min(zero+i+1, nb)
		sl := h64[start:end]
		n := len(sl)
		copy(p, sl)
		p = p[:n]
		p[0] += prefix[start]
		p[n-1] += prefix[nb] - prefix[end]
		merged := n / nq
		if merged == 0 {
			continue
		}
		q = q[:n]
		for j := range q {
			q[j] = 0
		}
		for idx := 0; idx < nq; idx++ {
			s, e := idx*merged, idx*merged+merged
			if idx == nq-1 {
				e = n
			}
			var sum float64
			var nz int
			for j := s; j < e; j++ {
				sum += sl[j]
				if p[j] != 0 {
					nz++
				}
			}
			if nz == 0 {
				continue
			}
			for j := s; j < e; j++ {
				if p[j] != 0 {
					q[j] = sum / float64(nz)
				}
			}
		}
		kl := klSmoothed(p, q)
		if kl < best {
			best, bestT = kl, float64(i)
		}
		p = p[:cap(p)]
		q = q[:cap(q)]
	}
	// ONNX Runtime's thresholds are the slice's outer bin edges.
	return float32(max(lo, -bestT*w)), float32(min(hi, (bestT+1)*w))
}

// klSmoothed is KL(P||Q) after ONNX Runtime's smooth_distribution (eps
// 1e-4 moved onto empty bins) and normalization; +Inf when either is empty.
func klSmoothed(p, q []float64) float64 {
	ps, ok1 := smooth(p)
	qs, ok2 := smooth(q)
	if !ok1 || !ok2 {
		return math.Inf(1)
	}
	var sp, sq float64
	for i := range ps {
		sp += ps[i]
		sq += qs[i]
	}
	var kl float64
	for i := range ps {
		pi, qi := ps[i]/sp, qs[i]/sq
		if pi > 0 {
			kl += pi * math.Log(pi/qi)
		}
	}
	return kl
}

func smooth(p []float64) ([]float64, bool) {
	const eps = 1e-4
	zeros := 0
	for _, v := range p {
		if v == 0 {
			zeros++
		}
	}
	nonzeros := len(p) - zeros
	if nonzeros == 0 {
		return nil, false
	}
	eps1 := eps * float64(zeros) / float64(nonzeros)
	out := make([]float64, len(p))
	for i, v := range p {
		if v == 0 {
			out[i] = eps
		} else {
			out[i] = v - eps1
			if out[i] <= 0 {
				return nil, false
			}
		}
	}
	return out, true
}
