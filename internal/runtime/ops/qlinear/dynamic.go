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
	pbz    []int32
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
	kk, nn := b.Shape[b.Rank()-2], b.Shape[b.Rank()-1]
	bz, err := zeroPointsIn(n, []*tensor.Tensor{zt}, 0, "b_zero_point", b.DType, nn)
	if err != nil {
		return nil, err
	}
	k.constB = b
	k.pbs, k.pbz = packAll(b, bz, kk, nn)
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
	// Per-column scales only for a 2-D B with a 1-D scale of N elements
	// (ONNX Runtime's IsBQuantParamSupported); other shapes it applies
	// after the bias, in an order we do not reproduce.
	if st.Len() != 1 && (b.Rank() != 2 || st.Rank() != 1) {
		return nil, fmt.Errorf("%v: b_scale of shape %v is not supported (want 1 element or [N] with a 2-D B)", n, st.Shape)
	}
	bs, _, err := scalesIn(n, in, 2, "b_scale", g.n)
	if err != nil {
		return nil, err
	}
	bz, err := zeroPointsIn(n, in, 3, "b_zero_point", b.DType, g.n)
	if err != nil {
		return nil, err
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
	mult := make([]float32, len(bs))
	for j, s := range bs {
		mult[j] = ascale * s
	}

	var pbs []*q8.PackedB
	var bzs []int32
	if k.constB == b {
		pbs, bzs = k.pbs, k.pbz
	} else {
		pbs, bzs = packAll(b, bz, g.k, g.n)
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
	if g.k > 0 {
		if g.bIs2D && len(aq)/g.k == g.nBatch*g.m {
			gemm(ctx, g.nBatch*g.m, g.n, aq, g.k, az, pbs[0], bzs, q8.Int32(acc, g.n))
		} else {
			for bi := 0; bi < g.nBatch; bi++ {
				ai, bj := g.batchOffsets(bi)
				gemm(ctx, g.m, g.n, aq[ai*g.aElements:], g.k, az, pbs[bj], bzs, q8.Int32(acc[bi*mn:], g.n))
			}
		}
	}
	rows := len(y) / g.n
	ctx.Parallel(rows, max(1, 4096/g.n), func(lo, hi int) {
		for r := lo; r < hi; r++ {
			scaleBias(y[r*g.n:(r+1)*g.n], acc[r*g.n:], mult, bias, false)
		}
	})
	return []*tensor.Tensor{out}, nil
}
