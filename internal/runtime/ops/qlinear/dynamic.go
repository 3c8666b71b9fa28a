package qlinear

import (
	"fmt"
	"math"

	"github.com/qtool/qtool/internal/graph"
	"github.com/qtool/qtool/internal/runtime"
	"github.com/qtool/qtool/internal/simd/q8"
	"github.com/qtool/qtool/internal/tensor"
)

// Dynamic quantization, as ONNX Runtime's com.microsoft contrib ops define
// it: float activations are quantized to uint8 on every call with the
// DynamicQuantizeLinear parameters of the whole tensor, multiplied by int8
// (or uint8) weights on q8, and the int32 sums turned back to float with
// y = float32(acc)·(a_scale·b_scale[j]) + bias[j], the order of MLAS's
// scale-bias output processor (a multiply then an add, never fused).
// b_scale is per tensor, per column ([N] with a 2-D B, or B's shape with K
// replaced by 1); any other shape that broadcasts to the output is applied
// afterwards as ONNX Runtime does: y = (float32(acc)·a_scale + bias)·b_scale.

func init() {
	runtime.Register("com.microsoft", "DynamicQuantizeMatMul", tensor.Float32, newDynamicQuantizeMatMul)
	runtime.Register("com.microsoft", "DynamicQuantizeLSTM", tensor.Float32, newDynamicQuantizeLSTM)
}

// dynQParams is ONNX Runtime's GetQuantizationParameter for uint8: the range
// of the data widened to include 0, scale (max−min)/255 (1 for an all-zero
// range), zero point round_half_even(clamp(0 − min/scale, 0, 255)). NaN or
// infinite data is an error (MLAS would give garbage).
func dynQParams(x []float32) (float32, int32, error) {
	mn, mx := float32(0), float32(0)
	for _, v := range x {
		if v-v != 0 {
			return 0, 0, fmt.Errorf("input holds NaN or infinity")
		}
		mn = min(mn, v)
		mx = max(mx, v)
	}
	if mn == mx {
		return 1, 0, nil
	}
	scale := (mx - mn) / 255
	z := 0 - mn/scale
	z = min(max(z, 0), 255)
	return scale, int32(math.RoundToEven(float64(z))), nil
}

// quantizeU8 is MLAS's QuantizeLinear to uint8: x/scale clamped to
// [−zp, 255−zp], rounded half to even, plus zp.
func quantizeU8(dst []uint8, src []float32, scale float32, zp int32) {
	lo, hi := float32(-zp), float32(255-zp)
	for i, v := range src {
		q := v / scale
		if !(q >= lo) {
			q = lo
		}
		if !(q <= hi) {
			q = hi
		}
		dst[i] = uint8(int32(math.RoundToEven(float64(q))) + zp)
	}
}

// scaleBias is the float output stage: y[j] = float32(acc[j])·mult[j] + bias[j]
// (mult of length 1 or n, bias nil or length n). accumulate adds to y
// instead (MLAS AccumulateMode: y + acc·mult).
func scaleBias(y []float32, acc []int32, mult, bias []float32, accumulate bool) {
	n := len(y)
	for j := 0; j < n; j++ {
		s := mult[0]
		if len(mult) > 1 {
			s = mult[j]
		}
		v := float32(float32(acc[j]) * s)
		if bias != nil {
			v = float32(v + bias[j])
		}
		if accumulate {
			v = float32(y[j] + v)
		}
		y[j] = v
	}
}

type dynMatMul struct {
	node   *graph.Node
	constB *tensor.Tensor
	pbs    []*q8.PackedB
	pbz    [][]int32
}

// bParamKind classifies the shape of a B scale or zero point as ONNX
// Runtime's IsBQuantParamSupported does: per tensor (scalar or one
// element), per column ([N] with a 2-D B, or B's shape with the K dimension
// 1: per column of every batch matrix), or unsupported (ok false).
func bParamKind(p, b []int) (perColumn, ok bool) {
	if len(p) == 0 || (len(p) == 1 && p[0] == 1) {
		return false, true
	}
	if len(p) == 1 && len(b) == 2 && p[0] == b[1] {
		return true, true
	}
	if len(p) != len(b) || len(p) < 2 || p[len(p)-2] != 1 {
		return false, false
	}
	for i := range p {
		if i != len(p)-2 && p[i] != b[i] {
			return false, false
		}
	}
	return true, true
}

// packDyn packs every batch matrix of B [..., K, N] with its zero points
// (one for all, or N per matrix).
func packDyn(n *graph.Node, b, zt *tensor.Tensor) ([]*q8.PackedB, [][]int32, error) {
	kk, nn := b.Shape[b.Rank()-2], b.Shape[b.Rank()-1]
	per := false
	var z []int32
	if zt == nil {
		z = []int32{0}
	} else {
		if err := zt.Validate(); err != nil {
			return nil, nil, fmt.Errorf("%v: b_zero_point: %v", n, err)
		}
		if zt.DType != b.DType {
			return nil, nil, fmt.Errorf("%v: b_zero_point is %v, want %v", n, zt.DType, b.DType)
		}
		var ok bool
		if per, ok = bParamKind(zt.Shape, b.Shape); !ok {
			return nil, nil, fmt.Errorf("%v: b_zero_point shape %v does not fit B %v", n, zt.Shape, b.Shape)
		}
		z = make([]int32, zt.Len())
		if zt.DType == tensor.Int8 {
			for i, v := range zt.I8() {
				z[i] = int32(v)
			}
		} else {
			for i, v := range zt.U8() {
				z[i] = int32(v)
			}
		}
	}
	w, z := s8Weights(b, z)
	nb := 1
	if kk*nn > 0 {
		nb = len(w) / (kk * nn)
	}
	pbs := make([]*q8.PackedB, nb)
	zs := make([][]int32, nb)
	for i := range pbs {
		zs[i] = z
		if per {
			zs[i] = z[i*nn : (i+1)*nn]
		}
		pbs[i] = q8.PackB(kk, nn, w[i*kk*nn:], nn, false)
	}
	return pbs, zs, nil
}

func newDynamicQuantizeMatMul(n *graph.Node, opset int64) (runtime.Kernel, error) {
	if len(n.Inputs) < 3 || len(n.Inputs) > 5 {
		return nil, fmt.Errorf("%v: DynamicQuantizeMatMul takes 3 to 5 inputs, got %d", n, len(n.Inputs))
	}
	k := &dynMatMul{node: n}
	bv := n.Input(1)
	if bv == nil || bv.Const == nil {
		return k, nil
	}
	var zt *tensor.Tensor
	if zv := n.Input(3); zv != nil {
		if zv.Const == nil {
			return k, nil
		}
		zt = zv.Const
	}
	b := bv.Const
	if b.Rank() < 2 || (b.DType != tensor.Uint8 && b.DType != tensor.Int8) || b.Validate() != nil {
		return k, nil // Run reports the problem
	}
	pbs, pbz, err := packDyn(n, b, zt)
	if err != nil {
		return nil, err
	}
	k.constB, k.pbs, k.pbz = b, pbs, pbz
	return k, nil
}

func (k *dynMatMul) Run(ctx *runtime.Context, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	n := k.node
	a := input(in, 0)
	if a == nil || a.DType != tensor.Float32 {
		return nil, fmt.Errorf("%v: input A must be float32", n)
	}
	if err := a.Validate(); err != nil {
		return nil, fmt.Errorf("%v: input A: %v", n, err)
	}
	b, err := int8In(n, in, 1, "B")
	if err != nil {
		return nil, err
	}
	g, err := matmulGeometry(a.Shape, b.Shape)
	if err != nil {
		return nil, fmt.Errorf("%v: %v", n, err)
	}
	st := input(in, 2)
	if st == nil {
		return nil, fmt.Errorf("%v: input b_scale is missing", n)
	}
	if err := st.Validate(); err != nil {
		return nil, fmt.Errorf("%v: b_scale: %v", n, err)
	}
	if st.DType != tensor.Float32 {
		return nil, fmt.Errorf("%v: b_scale is %v, want float32", n, st.DType)
	}
	bs := st.F32()
	for _, v := range bs {
		if v-v != 0 {
			return nil, fmt.Errorf("%v: b_scale holds %v", n, v)
		}
	}
	perCol, inGemm := bParamKind(st.Shape, b.Shape)
	var after []int // output index → scale index, when b_scale is applied afterwards
	if !inGemm {
		// ONNX Runtime then runs the GEMM with a_scale alone (bias
		// included) and multiplies the output by b_scale, broadcast.
		if after, err = broadcastIndex(st.Shape, g.outShape); err != nil {
			return nil, fmt.Errorf("%v: b_scale: %v", n, err)
		}
	}
	var bias []float32
	if bt := input(in, 4); bt != nil {
		if bt.DType != tensor.Float32 || bt.Validate() != nil || bt.Len() != g.n || bt.Rank() != 1 {
			return nil, fmt.Errorf("%v: bias must be float32 of shape [%d], got %v %v", n, g.n, bt.DType, bt.Shape)
		}
		bias = bt.F32()
	}
	af := a.F32()
	ascale, az, err := dynQParams(af)
	if err != nil {
		return nil, fmt.Errorf("%v: A: %v", n, err)
	}
	aq := make([]uint8, len(af))
	quantizeU8(aq, af, ascale, az)
	mult := []float32{ascale}
	if inGemm {
		mult = make([]float32, len(bs))
		for j, s := range bs {
			mult[j] = ascale * s
		}
	}

	pbs, bzs := k.pbs, k.pbz
	if k.constB != b {
		if pbs, bzs, err = packDyn(n, b, input(in, 3)); err != nil {
			return nil, err
		}
	}
	out, err := tensor.New(tensor.Float32, g.outShape)
	if err != nil {
		return nil, fmt.Errorf("%v: %v", n, err)
	}
	y := out.F32()
	mn := g.m * g.n
	if mn == 0 {
		return []*tensor.Tensor{out}, nil
	}
	acc := make([]int32, len(y))
	batches, m := g.nBatch, g.m
	if g.bIs2D && len(aq) == g.nBatch*g.aElements {
		// One GEMM over the rows of every batch.
		batches, m = 1, g.nBatch*g.m
	}
	for bi := 0; bi < batches; bi++ {
		ai, bj := g.batchOffsets(bi)
		if batches == 1 {
			ai, bj = 0, 0
		}
		if g.k > 0 {
			gemm(ctx, m, g.n, aq[ai*g.aElements:], g.k, az, pbs[bj], bzs[bj], q8.Int32(acc[bi*mn:], g.n))
		}
		ms := mult
		if perCol {
			ms = mult[bj*g.n : (bj+1)*g.n]
		}
		ctx.Parallel(m, max(1, 4096/g.n), func(lo, hi int) {
			for r := lo; r < hi; r++ {
				o := bi*mn + r*g.n
				scaleBias(y[o:o+g.n], acc[o:], ms, bias, false)
			}
		})
	}
	for i, si := range after {
		y[i] = float32(y[i] * bs[si])
	}
	return []*tensor.Tensor{out}, nil
}

// broadcastIndex maps every element of a tensor of shape out to the element
// of a tensor of shape p that numpy broadcasting pairs with it; p must
// broadcast to out without enlarging it.
func broadcastIndex(p, out []int) ([]int, error) {
	if len(p) > len(out) {
		return nil, fmt.Errorf("shape %v does not broadcast to %v", p, out)
	}
	strides := make([]int, len(out))
	s := 1
	for i := len(out) - 1; i >= 0; i-- {
		j := i - (len(out) - len(p))
		if j < 0 {
			continue
		}
		switch p[j] {
		case out[i]:
			strides[i] = s
		case 1:
		default:
			return nil, fmt.Errorf("shape %v does not broadcast to %v", p, out)
		}
		s *= p[j]
	}
	total := 1
	for _, d := range out {
		total *= d
	}
	idx := make([]int, total)
	for e := range idx {
		r, off := e, 0
		for i := len(out) - 1; i >= 0; i-- {
			off += (r % out[i]) * strides[i]
			r /= out[i]
		}
		idx[e] = off
	}
	return idx, nil
}
