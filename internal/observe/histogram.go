package observe

import (
	"errors"
	"fmt"
	"math"
	"math/bits"

	"github.com/qtool/qtool/internal/tensor"
)

// Histogram is PyTorch 1.13's HistogramObserver (kind "histogram"), and the
// statistics behind PercentileObserver ("percentile") and EntropyObserver
// ("entropy"), which differ only in how QParams picks the range.
//
// For kind "histogram" every step is torch's, in torch's float32/float64
// arithmetic: torch.histc with the range passed through Python's int()
// (torch 1.13 truncates the range to integers, so values beyond the
// truncated bounds are not counted: this reproduces it), _adjust_min_max,
// _combine_histograms (upsample by UpsampleRate, integrate in float64,
// downsample), and for QParams _non_linear_param_search with
// _compute_quantization_error, whose float32 sums follow torch's AVX2
// cascade summation so that the search stops on the same bin. Bin counts
// are exact up to 2^24 per bin and batch, where torch's float32 counter
// saturates (so does ours).
//
// Percentile and entropy observers bin over the true [min, max] instead of
// the truncated range (they have no torch counterpart to match).
//
// Merge re-bins both histograms onto the union range (mass spread uniformly
// within each source bin), so the merged histogram equals the one a single
// observer would hold within one bin width of the union range.
type Histogram struct {
	kind     Kind
	cfg      Config
	nbins    int
	up       int
	hist     []float32
	min, max float32
	batches  int64

	counts []uint32 // scratch for binning: 4 lanes per bin
	idx    []int32
	old    []float32 // spare histogram buffer
	tab    thresholds
}

func newHistogram(k Kind, c Config) *Histogram {
	o := &Histogram{kind: k, cfg: c, nbins: c.bins(), up: c.upsample()}
	o.Reset()
	return o
}

func (o *Histogram) Kind() Kind     { return o.kind }
func (o *Histogram) Config() Config { return o.cfg }

func (o *Histogram) Reset() {
	o.hist = make([]float32, o.nbins)
	o.min, o.max = float32(math.Inf(1)), float32(math.Inf(-1))
	o.batches = 0
}

// Range returns the histogram's range.
func (o *Histogram) Range() (min, max float32) { return o.min, o.max }

// Bins returns the histogram counts (not a copy).
func (o *Histogram) Bins() []float32 { return o.hist }

func (o *Histogram) truncates() bool { return o.kind == KindHistogram }

// histcRange is torch.histc's choice of outer bin edges for the bounds the
// observer passes (int(min), int(max) for torch's observer).
func (o *Histogram) histcRange(lo, hi, dataMin, dataMax float32) (float32, float32, error) {
	l, h := float64(lo), float64(hi)
	if o.truncates() {
		l, h = math.Trunc(l), math.Trunc(h)
		if math.Abs(l) >= 1<<63 || math.Abs(h) >= 1<<63 {
			return 0, 0, fmt.Errorf("histogram: range [%v, %v] does not fit int64 (torch.histc fails too)", lo, hi)
		}
	}
	if l == h {
		l, h = float64(dataMin), float64(dataMax)
	}
	if l == h {
		l, h = l-1, h+1
	}
	L, H := float32(l), float32(h)
	if !(L < H) || !finite(L) || !finite(H) {
		return 0, 0, fmt.Errorf("histogram: bad bin range [%v, %v]", L, H)
	}
	return L, H, nil
}

func (o *Histogram) Observe(x []float32, shape []int) error {
	if err := checkBatch(x, shape); err != nil {
		return err
	}
	if len(x) == 0 {
		return nil
	}
	uninit := math.IsInf(float64(o.min), 1) && math.IsInf(float64(o.max), -1)
	if !uninit && o.min != o.max {
		done, err := o.observeWithinRange(x)
		if done || err != nil {
			return err
		}
	}
	mn, mx, ok := minMax(x)
	if !ok {
		return ErrNonFinite
	}
	if uninit || o.min == o.max {
		// torch restarts the histogram when it only saw one value.
		L, H, err := o.histcRange(mn, mx, mn, mx)
		if err != nil {
			return err
		}
		o.histc(x, L, H, o.hist)
		o.min, o.max = mn, mx
		o.batches++
		return nil
	}
	cmin, cmax := min(mn, o.min), max(mx, o.max)
	cmin, cmax, ds, start, err := o.adjustMinMax(cmin, cmax)
	if err != nil {
		return err
	}
	L, H, err := o.histcRange(cmin, cmax, mn, mx)
	if err != nil {
		return err
	}
	h := o.spare(o.nbins)
	o.histc(x, L, H, h)
	o.finish(h, cmin, cmax, ds, start)
	return nil
}

// observeWithinRange is the steady state: when the batch stays inside the
// current range, torch's combined range (and so the histc range) depends on
// the current range only, so the batch is binned in the same pass that finds
// its min and max. It reports false (nothing changed) when the batch leaves
// the range or the histc range would depend on the batch's own extremes.
func (o *Histogram) observeWithinRange(x []float32) (bool, error) {
	cmin, cmax, ds, start, err := o.adjustMinMax(o.min, o.max)
	if err != nil {
		return false, nil
	}
	l, h := cmin, cmax
	if o.truncates() {
		l, h = float32(math.Trunc(float64(l))), float32(math.Trunc(float64(h)))
	}
	if l == h {
		return false, nil
	}
	L, H, err := o.histcRange(cmin, cmax, 0, 0)
	if err != nil {
		return false, nil
	}
	hist := o.spare(o.nbins)
	mn, mx, ok := o.histcMinMax(x, L, H, hist)
	if !ok {
		return false, ErrNonFinite
	}
	if mn < o.min || mx > o.max {
		return false, nil
	}
	o.finish(hist, cmin, cmax, ds, start)
	return true, nil
}

// finish folds the current histogram into h (the batch's, binned on the
// combined range) as torch does and makes it the state.
func (o *Histogram) finish(h []float32, cmin, cmax float32, ds, start int64) {
	if cmin == o.min && cmax == o.max {
		for i := range h {
			h[i] += o.hist[i]
		}
	} else {
		combineHistograms(h, o.hist, o.up, ds, start)
	}
	o.hist, o.old = h, o.hist
	o.min, o.max = cmin, cmax
	o.batches++
}

// spare returns the second histogram buffer (the state and the batch
// histogram alternate, so a steady stream allocates nothing).
func (o *Histogram) spare(n int) []float32 {
	if len(o.old) != n {
		o.old = make([]float32, n)
	}
	return o.old
}

// adjustMinMax is torch's _adjust_min_max in float32.
func (o *Histogram) adjustMinMax(cmin, cmax float32) (float32, float32, int64, int64, error) {
	hbw := float32(float32(o.max-o.min) / float32(o.nbins*o.up))
	bw := float32(float32(o.nbins) * hbw)
	span := float32(cmax - cmin)
	ratio := float64(float32(span / bw))
	if !(ratio >= 0) || ratio > 1<<52 || hbw == 0 {
		return 0, 0, 0, 0, fmt.Errorf("histogram: cannot widen range [%v, %v] to [%v, %v]", o.min, o.max, cmin, cmax)
	}
	ds := int64(math.Ceil(ratio))
	e := float32(float32(float32(ds)*bw) - span)
	cmax = float32(cmax + e)
	start := math.RoundToEven(float64(float32(float32(o.min-cmin) / hbw)))
	if !(start >= 0 && start < 1<<62) {
		return 0, 0, 0, 0, fmt.Errorf("histogram: bad start index %v", start)
	}
	return cmin, cmax, ds, int64(start), nil
}

// combineHistograms is torch's _combine_histograms: orig (the new batch
// binned on the combined range) plus old upsampled by up, placed at start in
// a grid of len(orig)*ds cells, integrated in float64 and sampled every ds
// cells. It runs in O(bins) without the len*ds grid: runs of equal values
// are added in one step where that is provably the exact sum (see addRun).
// torch fails where the upsampled histogram overruns the grid; the overrun is
// dropped here instead.
func combineHistograms(orig, old []float32, up int, ds, start int64) {
	n := int64(len(orig))
	total := n * ds
	integral := make([]float64, n)
	var s float64 // running cumsum
	pos := int64(0)
	k := int64(0) // next sample: position (k+1)*ds - 1
	// advance adds v to s for cells [pos, end) and records samples in range.
	advance := func(end int64, v float64) {
		for pos < end {
			next := (k+1)*ds - 1
			if k >= n {
				pos = end
				return
			}
			if next >= end {
				s = addRun(s, v, end-pos)
				pos = end
				return
			}
			s = addRun(s, v, next-pos+1)
			pos = next + 1
			integral[k] = s
			k++
		}
	}
	advance(min(start, total), 0)
	for b := range old {
		runEnd := start + int64(b+1)*int64(up)
		if runEnd > total {
			runEnd = total
		}
		advance(runEnd, float64(old[b]))
		if pos >= total {
			break
		}
	}
	advance(total, 0)
	prev := float32(0)
	for i := range orig {
		interp := (integral[i] - float64(prev)) / float64(up)
		orig[i] = orig[i] + float32(interp)
		prev = float32(integral[i])
	}
}

// addRun returns s + v + v + ... (m times) as sequential float64 additions
// would, in O(1) when every partial sum is exact: s and v are multiples of a
// common power of two q and |s| + m|v| < 2^53 q.
func addRun(s, v float64, m int64) float64 {
	if v == 0 || m == 0 {
		return s
	}
	q := lowBit(v)
	if s != 0 {
		q = min(q, lowBit(s))
	}
	bound := math.Abs(s) + float64(m)*math.Abs(v)
	if bound < math.Ldexp(1, 52+q) {
		return s + float64(float64(m)*v)
	}
	for i := int64(0); i < m; i++ {
		s += v
	}
	return s
}

// lowBit is the exponent of the lowest set bit of a finite non-zero x.
func lowBit(x float64) int {
	frac, exp := math.Frexp(math.Abs(x))
	mant := uint64(math.Ldexp(frac, 53))
	return exp - 53 + bits.TrailingZeros64(mant)
}

// thresholds caches, for one bin range, the smallest offset t = x - L that
// lands in each bin under torch's int((t * bins) / (H - L)) in float32, so
// binning needs a multiply and two compares instead of a division.
type thresholds struct {
	L, H  float32
	n     int
	scale float32
	t     []float32 // t[k] = smallest t with bin >= k; t[0] = 0, t[n+1] = +Inf
	ok    bool
}

func torchBin(t, w float32, n int) int64 {
	return int64(float32(float32(t*float32(n)) / w))
}

func (th *thresholds) build(L, H float32, n int) {
	if th.ok && th.L == L && th.H == H && th.n == n {
		return
	}
	th.L, th.H, th.n = L, H, n
	w := float32(H - L)
	th.scale = float32(float32(n) / w)
	th.ok = w >= 1e-30 && w <= 1e30 && finite(th.scale)
	if !th.ok {
		return
	}
	if cap(th.t) < n+2 {
		th.t = make([]float32, n+2)
	}
	th.t = th.t[:n+2]
	th.t[0] = 0
	th.t[n+1] = float32(math.Inf(1))
	for k := 1; k <= n; k++ {
		c := float32(float64(k) * float64(w) / float64(n))
		// Walk to the first float32 whose bin is >= k.
		for c > 0 && torchBin(c, w, n) >= int64(k) {
			c = math.Nextafter32(c, 0)
		}
		for torchBin(c, w, n) < int64(k) {
			c = math.Nextafter32(c, float32(math.Inf(1)))
		}
		th.t[k] = c
	}
}

// histcMinMax is histc that also returns the min and max of x and whether
// x is free of NaN and Inf, from the same pass over memory.
func (o *Histogram) histcMinMax(x []float32, L, H float32, dst []float32) (mn, mx float32, ok bool) {
	return o.bin(x, L, H, dst)
}

// histc is torch.histc(x, bins, min=L, max=H) into dst (overwritten): values
// outside [L, H] are skipped, the last bin includes H.
func (o *Histogram) histc(x []float32, L, H float32, dst []float32) {
	o.bin(x, L, H, dst)
}

func (o *Histogram) bin(x []float32, L, H float32, dst []float32) (mn, mx float32, ok bool) {
	n := len(dst)
	// 4 interleaved count lanes per bin break the store-to-load chains of
	// runs of equal bins; bin n collects the values outside [L, H].
	if cap(o.counts) < 4*(n+1) {
		o.counts = make([]uint32, 4*(n+1))
	}
	cnt := o.counts[:4*(n+1)]
	clear(cnt)
	w := float32(H - L)
	if useAVX2 && len(x) >= 8 && w > 0 && finite(float32(w*float32(n))) {
		// The vector kernel does torch's float32 division itself.
		const block = 2048
		if cap(o.idx) < block {
			o.idx = make([]int32, block)
		}
		idx := o.idx[:block]
		n8 := len(x) &^ 7
		mn, mx, ok = float32(math.Inf(1)), float32(math.Inf(-1)), true
		for off := 0; off < n8; off += block {
			end := min(off+block, n8)
			bmn, bmx, unord := binIndexAVX2(x[off:end], idx, L, H, w, float32(n), int32(n-1), int32(n))
			mn, mx, ok = min(mn, bmn), max(mx, bmx), ok && !unord
			countLanesAsm(idx[:end-off], cnt)
		}
		if n8 < len(x) {
			for i := n8; i < len(x); i++ {
				cnt[4*binOf(x[i], L, H, w, n)+i&3]++
			}
			tmn, tmx, tok := minMaxGo(x[n8:])
			mn, mx, ok = min(mn, tmn), max(mx, tmx), ok && tok
		}
		ok = ok && finite(mn) && finite(mx)
	} else {
		mn, mx, ok = minMax(x)
		th := &o.tab
		th.build(L, H, n)
		if th.ok {
			binFast(x, L, H, th, cnt)
		} else {
			for i, v := range x {
				cnt[4*binOf(v, L, H, w, n)+i&3]++
			}
		}
	}
	for k := range dst {
		c := uint64(cnt[4*k]) + uint64(cnt[4*k+1]) + uint64(cnt[4*k+2]) + uint64(cnt[4*k+3])
		if c > 1<<24 { // torch's float32 "+= 1" stops counting at 2^24
			c = 1 << 24
		}
		dst[k] = float32(c)
	}
	return mn, mx, ok
}

// binOf is one element of torch.histc: n for values outside [L, H].
func binOf(v, L, H, w float32, n int) int {
	if !(v >= L && v <= H) {
		return n
	}
	p := torchBin(float32(v-L), w, n)
	if p >= int64(n) {
		p = int64(n) - 1
	}
	if p < 0 {
		return n
	}
	return int(p)
}

// binFast counts x into 4 interleaved lanes of cnt using the threshold table.
func binFast(x []float32, L, H float32, th *thresholds, cnt []uint32) {
	n := th.n
	t := th.t[:n+2]
	scale := th.scale
	i := 0
	for ; i+4 <= len(x); i += 4 {
		v := x[i : i+4 : i+4]
		for lane := 0; lane < 4; lane++ {
			e := v[lane]
			if !(e >= L && e <= H) {
				continue
			}
			d := e - L
			k := int(d * scale)
			if k > n {
				k = n
			}
			if d < t[k] {
				k--
			} else if d >= t[k+1] {
				k++
			}
			if k == n {
				k = n - 1
			}
			cnt[4*k+lane]++
		}
	}
	for ; i < len(x); i++ {
		e := x[i]
		if !(e >= L && e <= H) {
			continue
		}
		d := e - L
		k := int(d * scale)
		if k > n {
			k = n
		}
		if d < t[k] {
			k--
		} else if d >= t[k+1] {
			k++
		}
		if k == n {
			k = n - 1
		}
		cnt[4*k]++
	}
}

func (o *Histogram) QParams() ([]float32, []int32, error) {
	if math.IsInf(float64(o.min), 1) && math.IsInf(float64(o.max), -1) {
		return []float32{1}, []int32{0}, ErrEmpty
	}
	var lo, hi float32
	switch o.kind {
	case KindHistogram:
		lo, hi = o.nonLinearParamSearch()
	case KindPercentile:
		lo, hi = o.percentileRange()
	case KindEntropy:
		lo, hi = o.entropyRange()
	}
	s, z, err := tensor.ChooseQParams(lo, hi, o.cfg.opts())
	if err != nil {
		return nil, nil, err
	}
	return []float32{s}, []int32{z}, nil
}

// dstBins is torch's dst_nbins: 2^bits of the quantized dtype (ignoring
// reduce_range and quant_min/quant_max, as torch does). For the 16-bit
// types it is 65536: torch, which reaches 16 bits only through quint8 with
// a custom range, would search over 256 levels and clip as if for 8 bits.
// The search costs the same at any dst_nbins (one pass over the source
// bins per candidate range).
func (o *Histogram) dstBins() float64 {
	switch o.cfg.DType {
	case tensor.Int32:
		return 1 << 32
	case tensor.Uint16, tensor.Int16:
		return 1 << 16
	}
	return 256
}

// nonLinearParamSearch is torch's _non_linear_param_search.
func (o *Histogram) nonLinearParamSearch() (float32, float32) {
	n := o.nbins
	binWidth := float32(float32(o.max-o.min) / float32(n))
	total := float64(torchSum(o.hist))
	csum := make([]float32, n)
	var acc float64
	for i, v := range o.hist {
		acc += float64(v)
		csum[i] = float32(acc)
	}
	const stepsize = 1e-5
	alpha, beta := 0.0, 1.0
	startBin, endBin := 0, n-1
	normMin := math.Inf(1)
	qe := newQuantErr(o)
	// torch rescans from start_bin/end_bin every step; the thresholds only
	// grow (shrink) and the bounds only move inwards, so each scan can resume
	// where the last one stopped with the same result.
	lPrev, rPrev := 0, n-1
	for alpha < beta {
		nextAlpha := alpha + stepsize
		nextBeta := beta - stepsize
		l, r := max(startBin, min(lPrev, endBin)), min(endBin, max(rPrev, startBin))
		la := float32(nextAlpha * total)
		for l < endBin && csum[l] < la {
			l++
		}
		rb := float32(nextBeta * total)
		for r > startBin && csum[r] > rb {
			r--
		}
		lPrev, rPrev = l, r
		nextStart, nextEnd := startBin, endBin
		if l-startBin > endBin-r {
			nextStart = l
			alpha = nextAlpha
		} else {
			nextEnd = r
			beta = nextBeta
		}
		if nextStart == startBin && nextEnd == endBin {
			continue
		}
		norm := qe.compute(nextStart, nextEnd)
		if norm > normMin {
			break
		}
		normMin = norm
		startBin, endBin = nextStart, nextEnd
	}
	newMin := float32(o.min + float32(binWidth*float32(startBin)))
	newMax := float32(o.min + float32(binWidth*float32(endBin+1)))
	return newMin, newMax
}

type quantErr struct {
	binWidth float64 // Python double
	density  []float32
	norm     []float32
	dstBins  float64
}

func newQuantErr(o *Histogram) *quantErr {
	q := &quantErr{dstBins: o.dstBins()}
	q.binWidth = (float64(o.max) - float64(o.min)) / float64(o.nbins)
	bw := float32(q.binWidth)
	q.density = make([]float32, o.nbins)
	for i, h := range o.hist {
		q.density[i] = h / bw
	}
	q.norm = make([]float32, o.nbins)
	return q
}

// getNorm is torch's _get_norm on float32 tensors.
func getNorm(db, de, density float32) float32 {
	n := float32(float32(float32(de*de)*de) - float32(float32(db*db)*db))
	n = float32(n / 3)
	return float32(density * n)
}

// compute is torch's _compute_quantization_error.
func (q *quantErr) compute(ns, ne int) float64 {
	dstBW := q.binWidth * float64(ne-ns+1) / q.dstBins
	if dstBW == 0 {
		return 0
	}
	bw := float32(q.binWidth)
	dbw := float32(dstBW)
	half := float32(dstBW / 2)
	negHalf := float32(-dstBW / 2)
	clampMax := float32(q.dstBins - 1)
	// the middle term's constant: _get_norm(tensor(-dbw/2), tensor(dbw/2), .)
	mid := float32(float32(float32(float32(half*half)*half)-float32(float32(negHalf*negHalf)*negHalf)) / 3)
	for i := range q.norm {
		begin := float32(float32(i-ns) * bw)
		end := float32(begin + bw)
		dBegin := clampF(divFloor(begin, dbw), 0, clampMax)
		dBeginCenter := float32(float32(dBegin+0.5) * dbw)
		dEnd := clampF(divFloor(end, dbw), 0, clampMax)
		dens := q.density[i]
		t1 := getNorm(float32(begin-dBeginCenter), half, dens)
		t2 := float32(float32(float32(dEnd-dBegin)-1) * float32(dens*mid))
		dEndCenter := float32(float32(dEnd*dbw) + half)
		t3 := getNorm(negHalf, float32(end-dEndCenter), dens)
		q.norm[i] = float32(float32(t1+t2) + t3)
	}
	return float64(torchSum(q.norm))
}

func clampF(v, lo, hi float32) float32 {
	// torch.clamp: min then max, NaN propagates
	if v < lo {
		v = lo
	}
	if v > hi {
		v = hi
	}
	return v
}

// divFloor is torch's div(a, b, rounding_mode='floor') for float32.
func divFloor(a, b float32) float32 {
	if b == 0 {
		return a / b
	}
	mod := fmod32(a, b)
	div := float32(float32(a-mod) / b)
	if mod != 0 && (b < 0) != (mod < 0) {
		div -= 1
	}
	if div != 0 {
		fl := float32(math.Floor(float64(div)))
		if float32(div-fl) > 0.5 {
			fl += 1
		}
		return fl
	}
	return float32(math.Copysign(0, float64(a/b)))
}

// fmod32 is C's fmodf (exact). For quotients below 2^28 every step is
// exact in float64, which is much faster than math.Mod's bit loop.
func fmod32(a, b float32) float32 {
	x, y := math.Abs(float64(a)), math.Abs(float64(b))
	if !(y > 0) || math.IsInf(x, 0) || x != x {
		return float32(math.Mod(float64(a), float64(b)))
	}
	q := math.Trunc(x / y)
	if q >= 1<<28 {
		return float32(math.Mod(float64(a), float64(b)))
	}
	r := x - float64(y*q)
	if r < 0 {
		r += y
	} else if r >= y {
		r -= y
	}
	return float32(math.Copysign(r, float64(a)))
}

// torchSum is torch.sum of a contiguous float32 vector on the AVX2 build of
// torch 1.13 (SumKernel.cpp's cascade_sum: 8-lane vectors, 4 rows of ILP,
// a 4-level cascade), reproduced operation for operation.
func torchSum(x []float32) float32 {
	const W = 8
	n := len(x)
	vecSize := n / W
	var vacc [W]float32
	{
		// row_sum over vecSize vectors with ilp factor 4
		sizeILP := vecSize / 4
		partial := multiRowSum(x, sizeILP)
		for i := sizeILP * 4; i < vecSize; i++ {
			for l := 0; l < W; l++ {
				partial[0][l] += x[i*W+l]
			}
		}
		for k := 1; k < 4; k++ {
			for l := 0; l < W; l++ {
				partial[0][l] += partial[k][l]
			}
		}
		vacc = partial[0]
	}
	var final float32
	for k := vecSize * W; k < n; k++ {
		final += x[k]
	}
	for l := 0; l < W; l++ {
		final += vacc[l]
	}
	return 0 + final
}

func ceilLog2(x int) int {
	if x <= 2 {
		return 1
	}
	return bits.Len64(uint64(x - 1)) // findLastSet(x-1) + 1 with 1-based bit index
}

// multiRowSum is multi_row_sum<Vectorized<float>, 4>: rows of 4 vectors.
func multiRowSum(x []float32, size int) [4][8]float32 {
	const numLevels = 4
	levelPower := max(4, ceilLog2(size)/numLevels)
	levelStep := 1 << levelPower
	levelMask := levelStep - 1
	var acc [numLevels][4][8]float32
	load := func(row, k int) []float32 { off := (row*4 + k) * 8; return x[off : off+8] }
	i := 0
	for i+levelStep <= size {
		for j := 0; j < levelStep; j, i = j+1, i+1 {
			for k := 0; k < 4; k++ {
				v := load(i, k)
				for l := 0; l < 8; l++ {
					acc[0][k][l] += v[l]
				}
			}
		}
		for j := 1; j < numLevels; j++ {
			for k := 0; k < 4; k++ {
				for l := 0; l < 8; l++ {
					acc[j][k][l] += acc[j-1][k][l]
					acc[j-1][k][l] = 0
				}
			}
			mask := levelMask << (j * levelPower)
			if i&mask != 0 {
				break
			}
		}
	}
	for ; i < size; i++ {
		for k := 0; k < 4; k++ {
			v := load(i, k)
			for l := 0; l < 8; l++ {
				acc[0][k][l] += v[l]
			}
		}
	}
	for j := 1; j < numLevels; j++ {
		for k := 0; k < 4; k++ {
			for l := 0; l < 8; l++ {
				acc[0][k][l] += acc[j][k][l]
			}
		}
	}
	return acc[0]
}

// Merge re-bins both histograms onto the union of their ranges, keeping this
// observer's bin count. See the type's comment for what is preserved.
func (o *Histogram) Merge(other Observer) error {
	if err := sameConfig(o, other); err != nil {
		return err
	}
	b := other.(*Histogram)
	if b.batches == 0 {
		return nil
	}
	if o.batches == 0 {
		o.hist = append([]float32(nil), b.hist...)
		o.min, o.max, o.batches = b.min, b.max, b.batches
		return nil
	}
	lo, hi := min(o.min, b.min), max(o.max, b.max)
	if lo == o.min && hi == o.max && b.min == o.min && b.max == o.max {
		for i := range o.hist {
			o.hist[i] += b.hist[i]
		}
		o.batches += b.batches
		return nil
	}
	out := make([]float64, o.nbins)
	rebin(out, o.hist, o.min, o.max, lo, hi)
	rebin(out, b.hist, b.min, b.max, lo, hi)
	for i := range out {
		o.hist[i] = float32(out[i])
	}
	o.min, o.max = lo, hi
	o.batches += b.batches
	return nil
}

// rebin adds src (over [smin, smax]) into dst (over [lo, hi]), spreading
// each source bin's mass uniformly over its width. A single-valued source
// (smin == smax) puts all its mass in the bin holding that value.
func rebin(dst []float64, src []float32, smin, smax, lo, hi float32) {
	n := len(dst)
	L, H := float64(lo), float64(hi)
	dw := (H - L) / float64(n)
	binOf := func(v float64) int {
		if dw == 0 {
			return 0
		}
		k := int((v - L) / dw)
		return max(0, min(n-1, k))
	}
	if smin == smax || dw == 0 {
		var tot float64
		for _, v := range src {
			tot += float64(v)
		}
		dst[binOf(float64(smin))] += tot
		return
	}
	sw := (float64(smax) - float64(smin)) / float64(len(src))
	for i, m := range src {
		if m == 0 {
			continue
		}
		a := float64(smin) + float64(i)*sw
		b := a + sw
		ka, kb := binOf(a), binOf(b)
		if ka == kb {
			dst[ka] += float64(m)
			continue
		}
		for k := ka; k <= kb; k++ {
			e0 := max(a, L+float64(k)*dw)
			e1 := min(b, L+float64(k+1)*dw)
			if k == kb {
				e1 = b
			}
			if k == ka {
				e0 = a
			}
			if e1 > e0 {
				dst[k] += float64(m) * (e1 - e0) / sw
			}
		}
	}
}

func (o *Histogram) State() State {
	return State{Kind: o.kind, Config: o.cfg, Batches: o.batches, Min: []F32{F32(o.min)}, Max: []F32{F32(o.max)},
		Histogram: toF32(o.hist)}
}

func (o *Histogram) setState(s State) error {
	o.Reset()
	if s.Batches < 0 {
		return errors.New("negative batch count")
	}
	if s.Batches == 0 {
		return nil
	}
	if len(s.Min) != 1 || len(s.Max) != 1 {
		return fmt.Errorf("want one min and max, got %d and %d", len(s.Min), len(s.Max))
	}
	if len(s.Histogram) != o.nbins {
		return fmt.Errorf("histogram has %d bins, config says %d", len(s.Histogram), o.nbins)
	}
	mn, mx := float32(s.Min[0]), float32(s.Max[0])
	if !finite(mn) || !finite(mx) || mn > mx {
		return fmt.Errorf("bad range [%v, %v]", mn, mx)
	}
	h := fromF32(s.Histogram)
	for i, v := range h {
		// Counts may be slightly negative: torch's _combine_histograms (and
		// combineHistograms) subtract float32-rounded integrals, so an
		// observer's own state can hold them.
		if !finite(v) {
			return fmt.Errorf("bin %d: bad count %v", i, v)
		}
	}
	o.hist, o.min, o.max, o.batches = h, mn, mx, s.Batches
	return nil
}

func (o *Histogram) MarshalJSON() ([]byte, error)    { return marshalState(o) }
func (o *Histogram) UnmarshalJSON(data []byte) error { return unmarshalInto(o, data) }
