package qlinear

import (
	"fmt"

	"github.com/qtool/qtool/internal/graph"
	"github.com/qtool/qtool/internal/runtime"
	"github.com/qtool/qtool/internal/simd/q8"
	"github.com/qtool/qtool/internal/tensor"
)

func init() {
	for _, dt := range []tensor.DType{tensor.Uint8, tensor.Int8} {
		runtime.Register(MicrosoftDomain, "QGemm", dt, newQGemm)
	}
}

// qgemmKernel is com.microsoft QGemm as ONNX Runtime computes it: the int32
// bias C is added to the accumulators, then either the requantization with
// alpha·sa·sb[j]/sy (uint8/int8 output, when y_zero_point is given) or the
// float output float32(acc + C)·(alpha·sa·sb[j]).
type qgemmKernel struct {
	node           *graph.Node
	transA, transB bool
	alpha          float32
	constB         *tensor.Tensor
	pb             *q8.PackedB
	pbz            []int32
}

func newQGemm(n *graph.Node, opset int64) (runtime.Kernel, error) {
	if len(n.Inputs) < 6 || len(n.Inputs) > 9 {
		return nil, fmt.Errorf("%v: QGemm takes 6 to 9 inputs, got %d", n, len(n.Inputs))
	}
	k := &qgemmKernel{node: n}
	ta, err := n.AttrInt("transA", 0)
	if err != nil {
		return nil, err
	}
	tb, err := n.AttrInt("transB", 0)
	if err != nil {
		return nil, err
	}
	if k.alpha, err = n.AttrFloat("alpha", 1); err != nil {
		return nil, err
	}
	k.transA, k.transB = ta != 0, tb != 0
	if bv := n.Input(3); bv != nil && bv.Const != nil && bv.Const.Rank() == 2 && bv.Const.Validate() == nil &&
		(bv.Const.DType == tensor.Uint8 || bv.Const.DType == tensor.Int8) {
		zv := n.Input(5)
		if zv != nil && zv.Const != nil {
			b := bv.Const
			kk, nn := b.Shape[0], b.Shape[1]
			if k.transB {
				kk, nn = nn, kk
			}
			bz, err := zeroPointsIn(n, []*tensor.Tensor{zv.Const}, 0, "b_zero_point", b.DType, nn)
			if err != nil {
				return nil, err
			}
			k.constB = b
			k.pb, k.pbz = packGemmB(b, bz, kk, nn, k.transB)
		}
	}
	return k, nil
}

func packGemmB(b *tensor.Tensor, bz []int32, kk, nn int, transB bool) (*q8.PackedB, []int32) {
	w, z := s8Weights(b, bz)
	ldb := nn
	if transB {
		ldb = kk
	}
	return q8.PackB(kk, nn, w, ldb, transB), z
}

func (k *qgemmKernel) Run(ctx *runtime.Context, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	n := k.node
	a, err := int8In(n, in, 0, "A")
	if err != nil {
		return nil, err
	}
	b, err := int8In(n, in, 3, "B")
	if err != nil {
		return nil, err
	}
	if a.Rank() != 2 || b.Rank() != 2 {
		return nil, fmt.Errorf("%v: A %v and B %v must be matrices", n, a.Shape, b.Shape)
	}
	m, kk := a.Shape[0], a.Shape[1]
	if k.transA {
		m, kk = kk, m
	}
	kb, nn := b.Shape[0], b.Shape[1]
	if k.transB {
		kb, nn = nn, kb
	}
	if kb != kk {
		return nil, fmt.Errorf("%v: inner dimensions %d and %d differ", n, kk, kb)
	}
	sa, _, err := scalesIn(n, in, 1, "a_scale", 1)
	if err != nil {
		return nil, err
	}
	sb, _, err := scalesIn(n, in, 4, "b_scale", nn)
	if err != nil {
		return nil, err
	}
	az, err := zeroPointsIn(n, in, 2, "a_zero_point", a.DType, 1)
	if err != nil {
		return nil, err
	}
	bz, err := zeroPointsIn(n, in, 5, "b_zero_point", b.DType, nn)
	if err != nil {
		return nil, err
	}
	if len(az) != 1 {
		return nil, fmt.Errorf("%v: a_zero_point must be a scalar", n)
	}
	var bias []int32
	biasRows, biasCols := 0, 0
	if c := input(in, 6); c != nil {
		if c.DType != tensor.Int32 || c.Validate() != nil || c.Rank() > 2 {
			return nil, fmt.Errorf("%v: C must be an int32 scalar, vector or matrix, got %v %v", n, c.DType, c.Shape)
		}
		bias = c.I32()
		switch {
		case c.Len() == 1:
			biasRows, biasCols = 1, 1
		case c.Rank() == 1 && c.Shape[0] == nn, c.Rank() == 2 && c.Shape[0] == 1 && c.Shape[1] == nn:
			biasRows, biasCols = 1, nn
		case c.Rank() == 2 && c.Shape[0] == m && c.Shape[1] == 1:
			biasRows, biasCols = m, 1
		case c.Rank() == 2 && c.Shape[0] == m && c.Shape[1] == nn:
			biasRows, biasCols = m, nn
		default:
			return nil, fmt.Errorf("%v: C %v does not broadcast to [%d %d]", n, c.Shape, m, nn)
		}
	}
	ysT, yzT := input(in, 7), input(in, 8)
	if (ysT == nil) != (yzT == nil) {
		return nil, fmt.Errorf("%v: y_scale and y_zero_point must be given together", n)
	}
	// Output scale per column, in ONNX Runtime's order: alpha·sa·sb[j], then
	// divided by sy when requantizing.
	scale := make([]float32, len(sb))
	for j := range sb {
		scale[j] = k.alpha * sa[0] * sb[j]
	}
	outDT := tensor.Float32
	var yz int32
	if ysT != nil {
		sy, _, err := scalesIn(n, in, 7, "y_scale", 1)
		if err != nil {
			return nil, err
		}
		outDT = yzT.DType
		if outDT != tensor.Uint8 && outDT != tensor.Int8 {
			return nil, fmt.Errorf("%v: y_zero_point is %v, want uint8 or int8", n, outDT)
		}
		z, err := zeroPointsIn(n, in, 8, "y_zero_point", outDT, 1)
		if err != nil {
			return nil, err
		}
		if len(z) != 1 {
			return nil, fmt.Errorf("%v: y_zero_point must be a scalar", n)
		}
		yz = z[0]
		for j := range scale {
			scale[j] /= sy[0]
		}
	}
	if _, err := checkedProduct(m, nn); err != nil {
		return nil, fmt.Errorf("%v: %v", n, err)
	}
	out, err := tensor.New(outDT, []int{m, nn})
	if err != nil {
		return nil, fmt.Errorf("%v: %v", n, err)
	}
	if m == 0 || nn == 0 {
		return []*tensor.Tensor{out}, nil
	}

	au, a0 := u8Activations(a, az)
	if k.transA {
		t := make([]uint8, m*kk)
		for i := 0; i < kk; i++ {
			for j := 0; j < m; j++ {
				t[j*kk+i] = au[i*m+j]
			}
		}
		au = t
	}
	pb, bzs := k.pb, k.pbz
	if k.constB != b || pb == nil {
		pb, bzs = packGemmB(b, bz, kk, nn, k.transB)
	}

	// A scalar or per-column bias goes into the fused output stage; a bias
	// with rows is added to int32 accumulators before requantizing (the
	// same int32 sums either way).
	colBias := biasRows <= 1
	if colBias && outDT != tensor.Float32 {
		rq := &q8.Requant{Scale: scale, OutZero: yz, Ldc: nn}
		if bias != nil {
			rq.Bias = expandBias(bias, biasCols, nn)
		}
		if outDT == tensor.Uint8 {
			rq.OutU8 = out.U8()
		} else {
			rq.OutS8 = out.I8()
		}
		gemm(ctx, m, nn, au, kk, a0[0], pb, bzs, q8.Output{Q: rq})
		return []*tensor.Tensor{out}, nil
	}
	acc := make([]int32, m*nn)
	gemm(ctx, m, nn, au, kk, a0[0], pb, bzs, q8.Int32(acc, nn))
	if bias != nil {
		for i := 0; i < m; i++ {
			for j := 0; j < nn; j++ {
				bi := 0
				switch {
				case biasRows == 1 && biasCols == nn:
					bi = j
				case biasRows == m && biasCols == 1:
					bi = i
				case biasRows == m:
					bi = i*nn + j
				}
				acc[i*nn+j] += bias[bi]
			}
		}
	}
	if outDT == tensor.Float32 {
		f := out.F32()
		for i := range acc {
			f[i] = float32(acc[i]) * scale[min(i%nn, len(scale)-1)]
		}
		return []*tensor.Tensor{out}, nil
	}
	rq := &q8.Requant{Scale: scale, OutZero: yz, Ldc: nn}
	if outDT == tensor.Uint8 {
		rq.OutU8 = out.U8()
	} else {
		rq.OutS8 = out.I8()
	}
	q8.Requantize(m, nn, acc, nn, rq)
	return []*tensor.Tensor{out}, nil
}

func expandBias(bias []int32, cols, n int) []int32 {
	if cols == n {
		return bias
	}
	e := make([]int32, n)
	for j := range e {
		e[j] = bias[0]
	}
	return e
}
