package convert

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sort"
	"sync"

	"github.com/qtool/qtool/internal/graph"
	"github.com/qtool/qtool/internal/runtime"
	"github.com/qtool/qtool/internal/simd/f32"
	"github.com/qtool/qtool/internal/tensor"
)

// Weight rounding with second-order error feedback (GPTQ: Frantar et al.,
// "GPTQ: Accurate Post-Training Quantization for Generative Pre-trained
// Transformers", 2022, itself Optimal Brain Quantization applied column by
// column). Rounding every weight to the nearest level (what quantizeWeight
// does) minimises each weight's own error, not the layer's output error:
// on squeezenet-cifar10, rounding the weights alone (float activations)
// already flips 1.2% of the top-1 answers. GPTQ quantizes the weights of a
// row one input column at a time and spreads each rounding error over the
// columns not yet quantized, weighted by the inverse of H = Σ x·xᵀ of the
// layer's inputs on calibration data, so that W·x is preserved for the
// inputs the layer actually sees. The scales and zero points stay those
// of round-to-nearest (the same config, the same file format); only which
// integer each weight becomes changes.

// RoundingOptions tunes OptimizeWeights.
type RoundingOptions struct {
	// Damp is the ridge added to H's diagonal, as a fraction of its mean
	// diagonal; 0 means the GPTQ paper's 0.01.
	Damp float64
	// MaxK bounds a layer's input size (channels × kernel); bigger
	// layers keep round-to-nearest (H is MaxK² float64s and its inverse
	// costs ~MaxK³ operations). 0 means 2304 (256 channels × 3×3).
	MaxK int
	// Threads for the float runs that collect the layer inputs.
	Threads int
	// StorageOrder quantizes each layer's inputs in storage order, as the
	// GPTQ paper does. By default they go in decreasing order of their
	// energy (H's diagonal), the GPTQ authors' later "act-order" option:
	// on squeezenet-cifar10 (x86 preset) it keeps 98.78% of float's top-1
	// answers against 98.59% in storage order.
	StorageOrder bool
	// Progress, if set, is called after each calibration batch.
	Progress func(done, total int)
}

// WeightRounding holds integer weights chosen by OptimizeWeights, for
// Static (StaticOptions.Rounding) to write instead of rounding to nearest.
type WeightRounding struct {
	w map[string]*qweight // by weight initializer name
	// Layers lists the rounded layers (node names) and Skipped the
	// layers left to round-to-nearest, with the reason.
	Layers  []string
	Skipped []FloatNode
}

// layerH is one layer's input statistics: H per group.
type layerH struct {
	n      *graph.Node
	geo    *convGeo // nil for Gemm/MatMul
	groups int
	k      int         // inputs per group (H is k×k)
	h      [][]float64 // per group, row-major k×k
}

// convGeo is a 1-D, 2-D or 3-D convolution's geometry, in NC(D)(H)W, with
// the spatial dims right-aligned in three (a 1-D conv is 1×1×W).
type convGeo struct {
	cin, nsp    int    // input channels per group, spatial dims
	k, s, d     [3]int // kernel, stride, dilation per spatial dim
	pb, pe      [3]int // pads at the beginning and end
	same, lower bool   // auto_pad SAME_UPPER / SAME_LOWER
}

// samePads is ONNX's auto_pad SAME_* split of the padding of one axis.
func samePads(in, k, s, d int, lower bool) (begin, end int) {
	out := (in + s - 1) / s
	total := max(0, (out-1)*s+(k-1)*d+1-in)
	begin = total / 2
	if lower {
		begin = total - total/2
	}
	return begin, total - begin
}

// OptimizeWeights runs the float graph f over batches, collects H for
// every Conv (1-D, 2-D or 3-D, any group), Gemm and MatMul with constant weights
// that cfg quantizes with weight.rounding gptq, and rounds their weights with GPTQ under cfg's
// weight spec. f must be the graph that Static is then given (same node
// and weight names), before Static changes it.
func OptimizeWeights(ctx context.Context, f *graph.Graph, batches []map[string]*tensor.Tensor, cfg Config, o RoundingOptions) (*WeightRounding, error) {
	if len(batches) == 0 {
		return nil, errors.New("weight rounding needs calibration samples")
	}
	if o.Damp == 0 {
		o.Damp = 0.01
	}
	if o.MaxK == 0 {
		o.MaxK = 2304
	}
	wr := &WeightRounding{w: map[string]*qweight{}}
	ix := f.Index()
	var layers []*layerH
	for _, n := range f.Nodes {
		s := cfg.Resolve(n)
		if s.Excluded || s.Weight.Rounding != "gptq" || !graph.IsDefaultDomain(n.Domain) {
			continue
		}
		l, reason := newLayerH(ix, n, o.MaxK)
		if reason != "" {
			if l == nil && (n.OpType == "Conv" || n.OpType == "Gemm" || n.OpType == "MatMul") {
				wr.Skipped = append(wr.Skipped, FloatNode{Node: n.Name, OpType: n.OpType, Reason: reason})
			}
			continue
		}
		layers = append(layers, l)
	}
	if len(layers) == 0 {
		return wr, nil
	}
	// One run per batch with every layer input as an extra output.
	g := *f
	g.Outputs = append([]*graph.Value(nil), f.Outputs...)
	seen := map[*graph.Value]bool{}
	for _, v := range f.Outputs {
		seen[v] = true
	}
	for _, l := range layers {
		if v := l.n.Inputs[0]; !seen[v] {
			seen[v] = true
			g.Outputs = append(g.Outputs, v)
		}
	}
	s, err := runtime.NewSession(&g, runtime.Options{Threads: o.Threads})
	if err != nil {
		return nil, err
	}
	for bi, b := range batches {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		res, err := s.Run(b)
		if err != nil {
			return nil, fmt.Errorf("weight rounding, batch %d: %v", bi, err)
		}
		for _, l := range layers {
			x := res[l.n.Inputs[0].Name]
			if x == nil || x.DType != tensor.Float32 {
				return nil, fmt.Errorf("weight rounding: %s: input is not float32", l.n.Name)
			}
			if err := l.accumulate(x); err != nil {
				return nil, fmt.Errorf("weight rounding: %s: %v", l.n.Name, err)
			}
		}
		if o.Progress != nil {
			o.Progress(bi+1, len(batches))
		}
	}
	// Layers round independently: Threads workers take them in turn,
	// each result in its own slot, so the outcome does not depend on the
	// thread count.
	res := make([]*qweight, len(layers))
	errs := make([]error, len(layers))
	next := make(chan int)
	var wg sync.WaitGroup
	for range max(1, min(o.Threads, len(layers))) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				l := layers[i]
				spec := cfg.Resolve(l.n).Weight
				if cfg.Format == FormatQOperator && l.n.OpType == "MatMul" {
					spec.Granularity = "per_tensor" // as the QOperator writer does
				}
				if ctx.Err() == nil {
					res[i], errs[i] = l.round(l.n.Input(1).Const, spec, o.Damp, !o.StorageOrder)
				}
			}
		}()
	}
	// Largest first, so that the last to finish is a small one.
	order := make([]int, len(layers))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return layers[order[a]].k > layers[order[b]].k })
	for _, i := range order {
		next <- i
	}
	close(next)
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	for i, l := range layers {
		if errs[i] != nil {
			// A layer whose statistics cannot be factored (e.g. NaN
			// inputs) keeps round-to-nearest; the others still benefit.
			wr.Skipped = append(wr.Skipped, FloatNode{Node: l.n.Name, OpType: l.n.OpType, Reason: errs[i].Error()})
			continue
		}
		wr.w[l.n.Input(1).Name] = res[i]
		wr.Layers = append(wr.Layers, l.n.Name)
	}
	return wr, nil
}

// newLayerH sets up a layer's statistics, or says why it is not rounded
// (reason "" with a nil layer: not an op with weights).
func newLayerH(ix *graph.Index, n *graph.Node, maxK int) (*layerH, string) {
	switch n.OpType {
	case "Conv", "Gemm", "MatMul":
	default:
		return nil, "-"
	}
	w := n.Input(1)
	if w == nil || w.Const == nil || w.Const.DType != tensor.Float32 || len(n.Inputs) == 0 || n.Inputs[0] == nil {
		return nil, "weight is not a float32 constant"
	}
	if ix.Uses(w) != 1 {
		return nil, "weight shared by several nodes"
	}
	ws := w.Const.Shape
	l := &layerH{n: n, groups: 1}
	switch n.OpType {
	case "Conv":
		if len(ws) < 3 || len(ws) > 5 {
			return nil, "only 1-D, 2-D and 3-D convolutions"
		}
		g, _ := n.AttrInt("group", 1)
		if g < 1 || ws[0]%int(g) != 0 {
			return nil, "bad group"
		}
		ap, _ := n.AttrString("auto_pad", "NOTSET")
		if ap != "NOTSET" && ap != "VALID" && ap != "SAME_UPPER" && ap != "SAME_LOWER" {
			return nil, "auto_pad " + ap
		}
		nsp := len(ws) - 2
		ints := func(name string, def int64, n0 int) ([]int64, bool) {
			v, err := n.AttrInts(name, nil)
			if err != nil {
				return nil, false
			}
			if v == nil {
				v = make([]int64, n0)
				for i := range v {
					v[i] = def
				}
			}
			return v, len(v) == n0
		}
		st, ok1 := ints("strides", 1, nsp)
		dl, ok2 := ints("dilations", 1, nsp)
		pd, ok3 := ints("pads", 0, 2*nsp)
		if ap != "NOTSET" {
			pd, ok3 = make([]int64, 2*nsp), true // VALID; SAME_* at run time
		}
		if !ok1 || !ok2 || !ok3 {
			return nil, "bad conv attributes"
		}
		geo := &convGeo{cin: ws[1], nsp: nsp, k: [3]int{1, 1, 1}, s: [3]int{1, 1, 1}, d: [3]int{1, 1, 1}}
		k := 1
		for i := 0; i < nsp; i++ {
			j := 3 - nsp + i
			geo.k[j], geo.s[j], geo.d[j] = ws[2+i], int(st[i]), int(dl[i])
			geo.pb[j], geo.pe[j] = int(pd[i]), int(pd[nsp+i])
			if geo.s[j] < 1 || geo.d[j] < 1 || geo.pb[j] < 0 || geo.pe[j] < 0 {
				return nil, "bad conv attributes"
			}
			k *= ws[2+i]
		}
		if ap == "SAME_UPPER" || ap == "SAME_LOWER" {
			geo.same, geo.lower = true, ap == "SAME_LOWER"
		}
		l.geo, l.groups, l.k = geo, int(g), geo.cin*k
	case "Gemm":
		if ta, _ := n.AttrInt("transA", 0); ta != 0 {
			return nil, "Gemm with transA"
		}
		if len(ws) != 2 {
			return nil, "weight is not 2-D"
		}
		l.k = ws[1]
		if tb, _ := n.AttrInt("transB", 0); tb == 0 {
			l.k = ws[0]
		}
	case "MatMul":
		if len(ws) != 2 {
			return nil, "weight is not 2-D"
		}
		l.k = ws[0]
	}
	if l.k > maxK {
		return nil, fmt.Sprintf("input size %d above %d", l.k, maxK)
	}
	l.h = make([][]float64, l.groups)
	for i := range l.h {
		l.h[i] = make([]float64, l.k*l.k)
	}
	return l, ""
}

// accumulate adds one batch of layer inputs to H.
func (l *layerH) accumulate(x *tensor.Tensor) error {
	if l.geo == nil {
		if len(x.Shape) == 0 || x.Shape[len(x.Shape)-1] != l.k {
			return fmt.Errorf("input shape %v, want last dim %d", x.Shape, l.k)
		}
		addGram(l.h[0], x.F32(), x.Len()/l.k, l.k)
		return nil
	}
	g := *l.geo
	if len(x.Shape) != g.nsp+2 {
		return fmt.Errorf("input rank %d for a %d-D convolution", len(x.Shape), g.nsp)
	}
	n, c := x.Shape[0], x.Shape[1]
	in := [3]int{1, 1, 1}
	copy(in[5-len(x.Shape):], x.Shape[2:])
	if c != g.cin*l.groups {
		return fmt.Errorf("input has %d channels, want %d", c, g.cin*l.groups)
	}
	var out [3]int
	for j := range 3 {
		if g.same {
			g.pb[j], g.pe[j] = samePads(in[j], g.k[j], g.s[j], g.d[j], g.lower)
		}
		out[j] = (in[j]+g.pb[j]+g.pe[j]-g.d[j]*(g.k[j]-1)-1)/g.s[j] + 1
		if out[j] <= 0 {
			return fmt.Errorf("empty output")
		}
	}
	plane := in[0] * in[1] * in[2]
	// Patches go into buf as the columns of a k × stride matrix, added
	// to H a block at a time.
	const maxCols = 4096
	stride := min(out[0]*out[1]*out[2]*n, maxCols)
	buf := make([]float32, l.k*stride)
	fill := func(xs, buf []float32, b, gi, oz, oy, ox, col int) {
		r := 0
		for ci := 0; ci < g.cin; ci++ {
			xp := xs[(b*c+gi*g.cin+ci)*plane : (b*c+gi*g.cin+ci+1)*plane]
			for kz := 0; kz < g.k[0]; kz++ {
				z := oz*g.s[0] - g.pb[0] + kz*g.d[0]
				for ky := 0; ky < g.k[1]; ky++ {
					y := oy*g.s[1] - g.pb[1] + ky*g.d[1]
					for kx := 0; kx < g.k[2]; kx++ {
						xx := ox*g.s[2] - g.pb[2] + kx*g.d[2]
						v := float32(0)
						if z >= 0 && z < in[0] && y >= 0 && y < in[1] && xx >= 0 && xx < in[2] {
							v = xp[(z*in[1]+y)*in[2]+xx]
						}
						buf[r*stride+col] = v
						r++
					}
				}
			}
		}
	}
	for gi := 0; gi < l.groups; gi++ {
		cols := 0
		add := func() {
			addGramT(l.h[gi], buf, cols, stride, l.k)
			cols = 0
		}
		for b := 0; b < n; b++ {
			for oz := 0; oz < out[0]; oz++ {
				for oy := 0; oy < out[1]; oy++ {
					for ox := 0; ox < out[2]; ox++ {
						fill(x.F32(), buf, b, gi, oz, oy, ox, cols)
						if cols++; cols == stride {
							add()
						}
					}
				}
			}
		}
		if cols > 0 {
			add()
		}
	}
	return nil
}

// addGram adds XᵀX of row-major x (m × k) to h (k × k, float64).
func addGram(h []float64, x []float32, m, k int) {
	c := make([]float32, k*k)
	f32.Sgemm(true, false, k, k, m, 1, x, k, x, k, 0, c, k)
	for i, v := range c {
		h[i] += float64(v)
	}
}

// addGramT adds A·Aᵀ of the first m columns of row-major a (k rows of
// lda) to h.
func addGramT(h []float64, a []float32, m, lda, k int) {
	c := make([]float32, k*k)
	f32.Sgemm(false, true, k, k, m, 1, a, lda, a, lda, 0, c, k)
	for i, v := range c {
		h[i] += float64(v)
	}
}

// round quantizes w row by row (output channel) with GPTQ, keeping the
// round-to-nearest scales and zero points of spec.
func (l *layerH) round(w *tensor.Tensor, spec WeightSpec, damp float64, actOrder bool) (*qweight, error) {
	axis := weightAxis(l.n)
	rtn, err := quantizeWeight(w, axis, spec)
	if err != nil {
		return nil, err
	}
	rows := w.Shape[axis]
	k := l.k // a conv's row holds its own group's inputs only
	if rows*k != w.Len() {
		return nil, fmt.Errorf("weight shape %v does not match %d inputs", w.Shape, k)
	}
	// W as rows × k in float64, in the input order of H.
	wf := make([]float64, rows*k)
	src := w.F32()
	for r := 0; r < rows; r++ {
		for j := 0; j < k; j++ {
			var v float32
			if axis == 0 {
				v = src[r*k+j]
			} else {
				v = src[j*rows+r]
			}
			wf[r*k+j] = float64(v)
		}
	}
	qmin, qmax := int32(-128), int32(127)
	if rtn.data.DType == tensor.Uint8 {
		qmin, qmax = 0, 255
	}
	if spec.NarrowRange != nil && *spec.NarrowRange && rtn.data.DType == tensor.Int8 {
		qmin = -127
	}
	if spec.ReduceRange != nil && *spec.ReduceRange {
		// quantizeWeight's scales already use the halved range; the
		// clamp must too.
		qmin, qmax = qmin/2, qmax/2
		if rtn.data.DType == tensor.Uint8 {
			qmin, qmax = 0, 127
		}
	}
	out := make([]int32, rows*k)
	perGroup := rows / l.groups
	for gi := 0; gi < l.groups; gi++ {
		perm := make([]int, l.k)
		for i := range perm {
			perm[i] = i
		}
		h := l.h[gi]
		if actOrder {
			// Largest input energy first: those columns' errors have the
			// most columns left to absorb them.
			sort.SliceStable(perm, func(a, b int) bool { return h[perm[a]*l.k+perm[a]] > h[perm[b]*l.k+perm[b]] })
			hp := make([]float64, l.k*l.k)
			for i, pi := range perm {
				for j, pj := range perm {
					hp[i*l.k+j] = h[pi*l.k+pj]
				}
			}
			h = hp
		}
		u, dead, err := gptqFactor(h, l.k, damp)
		if err != nil {
			return nil, err
		}
		for r := gi * perGroup; r < (gi+1)*perGroup; r++ {
			s, z := rtn.scales[0], rtn.zps[0]
			if len(rtn.scales) > 1 {
				s, z = rtn.scales[r], rtn.zps[r]
			}
			orig := wf[r*k : (r+1)*k]
			row := make([]float64, l.k) // in H's (possibly permuted) order
			for j, pj := range perm {
				if !dead[j] {
					row[j] = orig[pj]
				}
			}
			q := out[r*k : (r+1)*k]
			for j := 0; j < l.k; j++ {
				v := math.RoundToEven(row[j]/float64(s)) + float64(z)
				v = math.Max(float64(qmin), math.Min(float64(qmax), v))
				q[perm[j]] = int32(v)
				e := (row[j] - (v-float64(z))*float64(s)) / u[j*l.k+j]
				for t := j + 1; t < l.k; t++ {
					row[t] -= float64(e * u[j*l.k+t])
				}
			}
		}
	}
	// Back to w's layout and dtype.
	data, err := tensor.New(rtn.data.DType, w.Shape)
	if err != nil {
		return nil, err
	}
	for r := 0; r < rows; r++ {
		for j := 0; j < k; j++ {
			i := r*k + j
			if axis != 0 {
				i = j*rows + r
			}
			switch d := data.Data.(type) {
			case []int8:
				d[i] = int8(out[r*k+j])
			case []uint8:
				d[i] = uint8(out[r*k+j])
			}
		}
	}
	return &qweight{data: data, scales: rtn.scales, zps: rtn.zps, axis: rtn.axis}, nil
}

// The float64(x·y) conversions in these loops keep Go from fusing a
// multiply and an add into one FMA (it may on arm64): the rounding, and so
// the integers written, are the same on every platform.

// gptqFactor returns the upper Cholesky factor U of (H + λI)⁻¹ (k × k,
// row-major; U[j][j..] is GPTQ's error-feedback row for column j) and the
// inputs that were always zero (their weights do not matter).
func gptqFactor(h []float64, k int, damp float64) (u []float64, dead []bool, err error) {
	a := append([]float64(nil), h...)
	dead = make([]bool, k)
	var mean float64
	for i := 0; i < k; i++ {
		if a[i*k+i] == 0 {
			dead[i] = true
			a[i*k+i] = 1
		}
		mean += a[i*k+i]
	}
	mean /= float64(k)
	for i := 0; i < k; i++ {
		a[i*k+i] += float64(damp * mean)
	}
	// U is the upper Cholesky factor of (H+λI)⁻¹. With J the reversal
	// permutation and J·A·J = M·Mᵀ (M lower), A = (JMJ)(JMJ)ᵀ with JMJ
	// upper, so A⁻¹ = VᵀV with V = (JMJ)⁻¹ = J·M⁻¹·J upper: one Cholesky
	// and one triangular inverse (~k³/3 operations) instead of inverting
	// A and factoring the inverse (~5k³/6).
	r := make([]float64, k*k)
	for attempt := 0; ; attempt++ {
		for i := 0; i < k; i++ {
			for j := 0; j < k; j++ {
				r[i*k+j] = a[(k-1-i)*k+(k-1-j)]
			}
		}
		var m []float64
		if m, err = cholesky(r, k); err == nil {
			mi := lowerInverse(m, k)
			u = make([]float64, k*k)
			for i := 0; i < k; i++ {
				for j := i; j < k; j++ {
					u[i*k+j] = mi[(k-1-i)*k+(k-1-j)]
				}
			}
			return u, dead, nil
		}
		if attempt == 5 {
			return nil, nil, errors.New("input statistics are not positive definite")
		}
		// Numerically singular: more damping, as GPTQ implementations do.
		for i := 0; i < k; i++ {
			a[i*k+i] += float64(damp * mean * math.Pow(10, float64(attempt+1)))
		}
	}
}

// cholesky returns lower L with L·Lᵀ = a (k × k, symmetric).
func cholesky(a []float64, k int) ([]float64, error) {
	l := make([]float64, k*k)
	for i := 0; i < k; i++ {
		for j := 0; j <= i; j++ {
			s := a[i*k+j]
			li, lj := l[i*k:i*k+j], l[j*k:j*k+j]
			for t := range li {
				s -= float64(li[t] * lj[t])
			}
			if i == j {
				if !(s > 0) || math.IsInf(s, 0) {
					return nil, errors.New("not positive definite")
				}
				l[i*k+i] = math.Sqrt(s)
			} else {
				l[i*k+j] = s / l[j*k+j]
			}
		}
	}
	return l, nil
}

// lowerInverse returns L⁻¹ of a lower triangular l (k × k), row by row:
// every inner loop runs along a row.
func lowerInverse(l []float64, k int) []float64 {
	m := make([]float64, k*k)
	for i := 0; i < k; i++ {
		row := m[i*k : i*k+i+1]
		row[i] = 1
		for t, lv := range l[i*k : i*k+i] {
			if lv == 0 {
				continue
			}
			for j, mv := range m[t*k : t*k+t+1] {
				row[j] -= float64(lv * mv)
			}
		}
		d := l[i*k+i]
		for j := range row {
			row[j] /= d
		}
	}
	return m
}
