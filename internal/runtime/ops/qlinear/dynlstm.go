package qlinear

import (
	"fmt"
	"math"
	"strings"

	"github.com/qtool/qtool/internal/graph"
	"github.com/qtool/qtool/internal/runtime"
	"github.com/qtool/qtool/internal/simd/q8"
	"github.com/qtool/qtool/internal/tensor"
)

// com.microsoft DynamicQuantizeLSTM: an ONNX LSTM whose W and R are int8 (or
// uint8) and stored transposed, W [D, input, 4H] and R [D, H, 4H] (columns
// in ONNX's gate order i, o, f, c), with W_scale/R_scale and zero points of
// shape [D] (per tensor) or [D, 4H] (per column). It follows ONNX Runtime's
// deep-CPU LSTM step for step, because the dynamic quantization makes the
// results depend on how the work is grouped:
//
//   - X·W is one GEMM over the first max(sequence_lens)·batch rows of the
//     (for the reverse direction, per-sequence reversed) input, quantized
//     with the range of all those rows at once;
//   - at every step H_{t-1}·R is quantized with the range of the whole
//     batch of previous hidden states and added to the X·W row block
//     (y + float32(acc)·scale). The previous hidden state of a sequence that
//     has ended is the zero row Y holds for it when Y is an output, else its
//     last hidden state; ONNX Runtime with several threads splits the batch
//     and quantizes each part separately, we always do what it does with
//     one thread;
//   - gates in ONNX Runtime's order and float32 arithmetic, with MLAS's
//     logistic and tanh (Eigen's rational approximations with FMA).
//
// Only the default activations (Sigmoid, Tanh, Tanh) are supported.
type dynLSTM struct {
	node        *graph.Node
	hidden      int
	dirs        int
	reverse     bool // single direction, reverse
	clip        float32
	inputForget bool
	// W and R packed at build time when they and their quantization
	// parameters are constants (keyed by the tensors, as Run sees them).
	packed [2]*packedLSTM
}

type packedLSTM struct {
	key [3]*tensor.Tensor // weights, scale, zero point
	w   []lstmWeights
}

func newDynamicQuantizeLSTM(n *graph.Node, opset int64) (runtime.Kernel, error) {
	if len(n.Inputs) != 12 {
		return nil, fmt.Errorf("%v: DynamicQuantizeLSTM takes 12 inputs, got %d", n, len(n.Inputs))
	}
	k := &dynLSTM{node: n, clip: math.MaxFloat32}
	h, err := n.AttrInt("hidden_size", 0)
	if err != nil {
		return nil, err
	}
	if h <= 0 || h > 1<<20 {
		return nil, fmt.Errorf("%v: hidden_size %d", n, h)
	}
	k.hidden = int(h)
	d, err := n.AttrString("direction", "forward")
	if err != nil {
		return nil, err
	}
	switch d {
	case "forward":
		k.dirs = 1
	case "reverse":
		k.dirs, k.reverse = 1, true
	case "bidirectional":
		k.dirs = 2
	default:
		return nil, fmt.Errorf("%v: direction %q", n, d)
	}
	c, err := n.AttrFloat("clip", 0)
	if err != nil {
		return nil, err
	}
	if c != 0 {
		if !(c > 0) {
			return nil, fmt.Errorf("%v: clip %v must be positive", n, c)
		}
		k.clip = c
	}
	inf, err := n.AttrInt("input_forget", 0)
	if err != nil {
		return nil, err
	}
	k.inputForget = inf != 0
	if l, err := n.AttrInt("layout", 0); err != nil || l != 0 {
		return nil, fmt.Errorf("%v: layout must be 0 (as ONNX Runtime requires)", n)
	}
	k.prepack()
	acts, err := n.AttrStrings("activations", nil)
	if err != nil {
		return nil, err
	}
	if acts != nil {
		if len(acts) != 3*k.dirs {
			return nil, fmt.Errorf("%v: %d activations, want %d", n, len(acts), 3*k.dirs)
		}
		for i, a := range acts {
			want := []string{"sigmoid", "tanh", "tanh"}[i%3]
			if strings.ToLower(a) != want {
				return nil, fmt.Errorf("%v: activation %s is not supported (only Sigmoid, Tanh, Tanh)", n, a)
			}
		}
	}
	return k, nil
}

// prepack packs constant W and R; shapes it cannot check yet (the input
// size comes with X) are taken from W itself and checked again by Run.
func (k *dynLSTM) prepack() {
	n := k.node
	for i, idx := range [2][3]int{{1, 8, 9}, {2, 10, 11}} {
		var key [3]*tensor.Tensor
		for j, x := range idx {
			v := n.Input(x)
			if v == nil || v.Const == nil {
				return
			}
			key[j] = v.Const
		}
		if key[0].Rank() != 3 {
			return
		}
		in := make([]*tensor.Tensor, 12)
		for j, x := range idx {
			in[x] = key[j]
		}
		w, err := k.weightsIn(in, idx[0], idx[1], idx[2], key[0].Shape[1], "W")
		if err != nil {
			return // Run reports it
		}
		k.packed[i] = &packedLSTM{key: key, w: w}
	}
}

// weights returns W (i = 0) or R (i = 1) packed, from the build-time cache
// when Run sees the same constant tensors.
func (k *dynLSTM) weights(in []*tensor.Tensor, i, kdim int) ([]lstmWeights, error) {
	idx := [2][3]int{{1, 8, 9}, {2, 10, 11}}[i]
	what := [2]string{"W", "R"}[i]
	if p := k.packed[i]; p != nil && input(in, idx[0]) == p.key[0] && input(in, idx[1]) == p.key[1] &&
		input(in, idx[2]) == p.key[2] && p.key[0].Shape[1] == kdim {
		return p.w, nil
	}
	return k.weightsIn(in, idx[0], idx[1], idx[2], kdim, what)
}

// tanhMLAS is MLAS's tanh on x86 (the FMA3 kernel): Eigen's rational
// approximation on x clamped to [−9, 9].
func tanhMLAS(x float32) float32 {
	const (
		a13, a11, a9, a7 = -2.76076847742355e-16, 2.00018790482477e-13, -8.60467152213735e-11, 5.12229709037114e-08
		a5, a3, a1       = 1.48572235717979e-05, 6.37261928875436e-04, 4.89352455891786e-03
		b6, b4, b2, b0   = 1.19825839466702e-06, 1.18534705686654e-04, 2.26843463243900e-03, 4.89352518554385e-03
	)
	v := x
	if !(v >= -9) {
		v = -9
	}
	if !(v <= 9) {
		v = 9
	}
	v2 := v * v
	p := fma32(v2, a13, a11)
	p = fma32(p, v2, a9)
	p = fma32(p, v2, a7)
	p = fma32(p, v2, a5)
	p = fma32(p, v2, a3)
	p = fma32(p, v2, a1)
	p *= v
	q := fma32(v2, b6, b4)
	q = fma32(q, v2, b2)
	q = fma32(q, v2, b0)
	return p / q
}

func fma32(x, y, z float32) float32 {
	return float32(math.FMA(float64(x), float64(y), float64(z)))
}

// lstmWeights is one direction's quantized weight matrix [K×4H], packed.
type lstmWeights struct {
	pb    *q8.PackedB
	zero  []int32 // the single zero point ONNX Runtime uses (the first)
	scale []float32
}

// weightsIn checks and packs W or R (input wi, scale si, zero point zi).
func (k *dynLSTM) weightsIn(in []*tensor.Tensor, wi, si, zi int, kdim int, what string) ([]lstmWeights, error) {
	n := k.node
	h4 := 4 * k.hidden
	w, err := int8In(n, in, wi, what)
	if err != nil {
		return nil, err
	}
	if w.Rank() != 3 || w.Shape[0] != k.dirs || w.Shape[1] != kdim || w.Shape[2] != h4 {
		return nil, fmt.Errorf("%v: %s has shape %v, want [%d %d %d]", n, what, w.Shape, k.dirs, kdim, h4)
	}
	st, zt := input(in, si), input(in, zi)
	if st == nil || zt == nil {
		return nil, fmt.Errorf("%v: %s scale and zero point are required", n, what)
	}
	for _, t := range []*tensor.Tensor{st, zt} {
		if err := t.Validate(); err != nil {
			return nil, fmt.Errorf("%v: %s quantization parameter: %v", n, what, err)
		}
		if !(t.Rank() == 1 && t.Shape[0] == k.dirs) && !(t.Rank() == 2 && t.Shape[0] == k.dirs && t.Shape[1] == h4) {
			return nil, fmt.Errorf("%v: %s scale/zero point shape %v, want [%d] or [%d %d]", n, what, t.Shape, k.dirs, k.dirs, h4)
		}
	}
	if st.DType != tensor.Float32 {
		return nil, fmt.Errorf("%v: %s scale must be float32", n, what)
	}
	if zt.DType != w.DType {
		return nil, fmt.Errorf("%v: %s zero point is %v, want %v", n, what, zt.DType, w.DType)
	}
	per := 1
	if st.Rank() == 2 {
		per = h4
	}
	zper := 1
	if zt.Rank() == 2 {
		zper = h4
	}
	var zs []int32
	switch w.DType {
	case tensor.Int8:
		for _, v := range zt.I8() {
			zs = append(zs, int32(v))
		}
	default:
		for _, v := range zt.U8() {
			zs = append(zs, int32(v))
		}
	}
	// ONNX Runtime requires per-column zero points to be all zero (int8) or
	// all equal (uint8), and uses the first one.
	for d := 0; d < k.dirs; d++ {
		for j := 1; j < zper; j++ {
			if zs[d*zper+j] != zs[d*zper] {
				return nil, fmt.Errorf("%v: %s zero points must be equal within a direction", n, what)
			}
		}
	}
	if w.DType == tensor.Int8 && zper > 1 {
		for _, z := range zs {
			if z != 0 {
				return nil, fmt.Errorf("%v: %s int8 per-column zero points must be 0", n, what)
			}
		}
	}
	sf := st.F32()
	for _, s := range sf {
		if s-s != 0 {
			return nil, fmt.Errorf("%v: %s scale holds %v", n, what, s)
		}
	}
	out := make([]lstmWeights, k.dirs)
	size := kdim * h4
	for d := range out {
		one := &tensor.Tensor{DType: w.DType, Shape: []int{kdim, h4}}
		if w.DType == tensor.Int8 {
			one.Data = w.I8()[d*size : (d+1)*size]
		} else {
			one.Data = w.U8()[d*size : (d+1)*size]
		}
		pbs, z := packAll(one, []int32{zs[d*zper]}, kdim, h4)
		out[d] = lstmWeights{pb: pbs[0], zero: z, scale: sf[d*per : (d+1)*per]}
	}
	return out, nil
}

func floatIn(n *graph.Node, in []*tensor.Tensor, i int, what string, shape ...int) ([]float32, error) {
	t := input(in, i)
	if t == nil {
		return nil, nil
	}
	if err := t.Validate(); err != nil {
		return nil, fmt.Errorf("%v: %s: %v", n, what, err)
	}
	if t.DType != tensor.Float32 || !tensor.SameShape(t.Shape, shape) {
		return nil, fmt.Errorf("%v: %s is %v %v, want float32 %v", n, what, t.DType, t.Shape, shape)
	}
	return t.F32(), nil
}

func (k *dynLSTM) Run(ctx *runtime.Context, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	n := k.node
	H, D := k.hidden, k.dirs
	x := input(in, 0)
	if x == nil || x.DType != tensor.Float32 || x.Rank() != 3 {
		return nil, fmt.Errorf("%v: X must be float32 [seq, batch, input]", n)
	}
	if err := x.Validate(); err != nil {
		return nil, fmt.Errorf("%v: X: %v", n, err)
	}
	seq, batch, isz := x.Shape[0], x.Shape[1], x.Shape[2]
	if _, err := checkedProduct(seq, D, batch, 4*H); err != nil {
		return nil, fmt.Errorf("%v: %v", n, err)
	}
	W, err := k.weights(in, 0, isz)
	if err != nil {
		return nil, err
	}
	R, err := k.weights(in, 1, H)
	if err != nil {
		return nil, err
	}
	B, err := floatIn(n, in, 3, "B", D, 8*H)
	if err != nil {
		return nil, err
	}
	h0, err := floatIn(n, in, 5, "initial_h", D, batch, H)
	if err != nil {
		return nil, err
	}
	c0, err := floatIn(n, in, 6, "initial_c", D, batch, H)
	if err != nil {
		return nil, err
	}
	P, err := floatIn(n, in, 7, "P", D, 3*H)
	if err != nil {
		return nil, err
	}
	lens := make([]int, batch)
	for i := range lens {
		lens[i] = seq
	}
	if st := input(in, 4); st != nil {
		if st.DType != tensor.Int32 || st.Validate() != nil || st.Rank() != 1 || st.Len() != batch {
			return nil, fmt.Errorf("%v: sequence_lens must be int32 [%d]", n, batch)
		}
		for i, v := range st.I32() {
			if v < 0 || int(v) > seq {
				return nil, fmt.Errorf("%v: sequence_lens[%d] = %d outside [0, %d]", n, i, v, seq)
			}
			lens[i] = int(v)
		}
	}
	xf := x.F32()
	for _, v := range xf {
		if v-v != 0 {
			return nil, fmt.Errorf("%v: X holds NaN or infinity", n)
		}
	}
	wantY := len(n.Outputs) > 0 && n.Outputs[0] != nil
	yt, _ := tensor.New(tensor.Float32, []int{seq, D, batch, H})
	yh, _ := tensor.New(tensor.Float32, []int{D, batch, H})
	yc, _ := tensor.New(tensor.Float32, []int{D, batch, H})
	for d := 0; d < D; d++ {
		rev := k.reverse || d == 1
		var bias, peep, ih, ic []float32
		if B != nil {
			bias = B[d*8*H : (d+1)*8*H]
		}
		if P != nil {
			peep = P[d*3*H : (d+1)*3*H]
		}
		if h0 != nil {
			ih = h0[d*batch*H : (d+1)*batch*H]
		}
		if c0 != nil {
			ic = c0[d*batch*H : (d+1)*batch*H]
		}
		out := make([]float32, seq*batch*H)
		hT := yh.F32()[d*batch*H : (d+1)*batch*H]
		cT := yc.F32()[d*batch*H : (d+1)*batch*H]
		if err := k.direction(ctx, xf, seq, batch, isz, lens, rev, W[d], R[d], bias, peep, ih, ic, wantY, out, hT, cT); err != nil {
			return nil, err
		}
		// Scatter the direction's [seq, batch, H] into Y [seq, D, batch, H],
		// undoing the reversal per sequence.
		y := yt.F32()
		for b := 0; b < batch; b++ {
			for t := 0; t < seq; t++ {
				src := t
				if rev && t < lens[b] {
					src = lens[b] - 1 - t
				}
				copy(y[((t*D+d)*batch+b)*H:][:H], out[(src*batch+b)*H:][:H])
			}
		}
	}
	return []*tensor.Tensor{yt, yh, yc}, nil
}

// direction runs one direction; out is [seq, batch, H] in processing order
// (reversed sequences for the reverse direction).
func (k *dynLSTM) direction(ctx *runtime.Context, xf []float32, seq, batch, isz int, lens []int, rev bool,
	W, R lstmWeights, bias, peep, ih, ic []float32, wantY bool, out, hT, cT []float32) error {
	H := k.hidden
	H4 := 4 * H
	maxLen, minLen := 0, seq
	for _, l := range lens {
		maxLen = max(maxLen, l)
		minLen = min(minLen, l)
	}
	inputs := xf
	if rev {
		inputs = make([]float32, len(xf))
		for b := 0; b < batch; b++ {
			for t := 0; t < seq; t++ {
				dst := t
				if t < lens[b] {
					dst = lens[b] - 1 - t
				}
				copy(inputs[(dst*batch+b)*isz:][:isz], xf[(t*batch+b)*isz:][:isz])
			}
		}
	}
	rows := maxLen * batch
	iofc := make([]float32, rows*H4)
	acc := make([]int32, max(rows, batch)*H4)
	if rows > 0 && isz > 0 {
		a := inputs[:rows*isz]
		s, z, err := dynQParams(a)
		if err != nil {
			return fmt.Errorf("%v: X: %v", k.node, err)
		}
		aq := make([]uint8, len(a))
		quantizeU8(aq, a, s, z)
		gemm(ctx, rows, H4, aq, isz, z, W.pb, W.zero, q8.Int32(acc, H4))
		mult := multOf(s, W.scale)
		for r := 0; r < rows; r++ {
			scaleBias(iofc[r*H4:(r+1)*H4], acc[r*H4:], mult, nil, false)
		}
	}
	// Fused biases Wb+Rb per gate (i, o, f, c).
	var bsum []float32
	if bias != nil {
		bsum = make([]float32, H4)
		for j := range bsum {
			bsum[j] = bias[j] + bias[H4+j]
		}
	}
	prev := make([]float32, batch*H) // H_{t-1}
	if ih != nil {
		copy(prev, ih)
	}
	cell := make([]float32, batch*H)
	if ic != nil {
		copy(cell, ic)
	}
	hq := make([]uint8, batch*H)
	for step := 0; step < maxLen; step++ {
		blk := iofc[step*batch*H4 : (step+1)*batch*H4]
		s, z, err := dynQParams(prev)
		if err != nil {
			return fmt.Errorf("%v: hidden state: %v", k.node, err)
		}
		quantizeU8(hq, prev, s, z)
		if H > 0 {
			gemm(ctx, batch, H4, hq, H, z, R.pb, R.zero, q8.Int32(acc, H4))
		}
		mult := multOf(s, R.scale)
		for b := 0; b < batch; b++ {
			scaleBias(blk[b*H4:(b+1)*H4], acc[b*H4:], mult, nil, true)
		}
		var hout []float32 // where this step's hidden rows go
		if wantY {
			hout = out[step*batch*H : (step+1)*batch*H]
		} else {
			hout = hT
		}
		for b := 0; b < batch; b++ {
			if step >= minLen && step >= lens[b] {
				if wantY {
					clear(hout[b*H : (b+1)*H])
				}
				continue
			}
			k.gates(blk[b*H4:(b+1)*H4], cell[b*H:(b+1)*H], hout[b*H:(b+1)*H], bsum, peep)
		}
		for b := 0; b < batch; b++ {
			if step+1 == lens[b] {
				copy(cT[b*H:(b+1)*H], cell[b*H:(b+1)*H])
			}
		}
		copy(prev, hout)
	}
	for b := 0; b < batch; b++ {
		if lens[b] == 0 {
			clear(hT[b*H : (b+1)*H])
			clear(cT[b*H : (b+1)*H])
			continue
		}
		if wantY {
			copy(hT[b*H:(b+1)*H], out[((lens[b]-1)*batch+b)*H:][:H])
		}
	}
	return nil
}

func multOf(a float32, s []float32) []float32 {
	m := make([]float32, len(s))
	for j, v := range s {
		m[j] = a * v
	}
	return m
}

// gates is ONNX Runtime's GateComputations for one batch row: g holds the
// i, o, f, c pre-activations (updated in place), c is C_{t-1} on entry and
// C_t on exit, h receives H_t.
func (k *dynLSTM) gates(g, c, h, bsum, peep []float32) {
	H := k.hidden
	pi, po, pf, pc := g[:H], g[H:2*H], g[2*H:3*H], g[3*H:4*H]
	clipBias := func(p []float32, off int) {
		b := k.clip
		for j := range p {
			v := p[j]
			if bsum != nil {
				v = float32(v + bsum[off+j])
				v = min(b, v)
				v = max(-b, v)
			} else if v > b {
				v = b
			} else if v < -b {
				v = -b
			}
			p[j] = v
		}
	}
	peephole := func(p []float32, off int) {
		if peep != nil {
			for j := range p {
				p[j] = float32(p[j] + float32(c[j]*peep[off+j]))
			}
		}
	}
	sigm := func(p []float32) {
		for j := range p {
			p[j] = q8.LogisticMLAS(p[j])
		}
	}
	// P holds i, o, f.
	peephole(pi, 0)
	clipBias(pi, 0)
	sigm(pi)
	if k.inputForget {
		for j := range pf {
			pf[j] = 1 - pi[j]
		}
	} else {
		peephole(pf, 2*H)
		clipBias(pf, 2*H)
		sigm(pf)
	}
	clipBias(pc, 3*H)
	for j := range pc {
		pc[j] = tanhMLAS(pc[j])
	}
	for j := range c {
		c[j] = float32(float32(c[j]*pf[j]) + float32(pi[j]*pc[j]))
	}
	peephole(po, H)
	clipBias(po, H)
	sigm(po)
	for j := range h {
		h[j] = float32(tanhMLAS(c[j]) * po[j])
	}
}
