package qlinear

import (
	"fmt"

	"github.com/qtool/qtool/internal/graph"
	"github.com/qtool/qtool/internal/runtime"
	"github.com/qtool/qtool/internal/simd/q8"
	"github.com/qtool/qtool/internal/tensor"
)

// matmulShape is the numpy matmul geometry of A [..., M, K] × B [..., K, N].
type matmulShape struct {
	m, k, n   int
	batch     []int // broadcast batch dims of the output
	aBatch    []int // batch index strides into A and B (0 where broadcast)
	bBatch    []int
	outShape  []int
	aVec      bool // A was 1-D (prepended 1 removed from the output)
	bVec      bool // B was 1-D (appended 1 removed)
	nBatch    int
	bIs2D     bool // every batch uses the same B
	aElements int
}

func matmulGeometry(as, bs []int) (*matmulShape, error) {
	g := &matmulShape{}
	if len(as) == 0 || len(bs) == 0 {
		return nil, fmt.Errorf("matmul of a scalar")
	}
	a, b := append([]int(nil), as...), append([]int(nil), bs...)
	if len(a) == 1 {
		a = []int{1, a[0]}
		g.aVec = true
	}
	if len(b) == 1 {
		b = []int{b[0], 1}
		g.bVec = true
	}
	g.m, g.k = a[len(a)-2], a[len(a)-1]
	if b[len(b)-2] != g.k {
		return nil, fmt.Errorf("inner dimensions differ: %v × %v", as, bs)
	}
	g.n = b[len(b)-1]
	ab, bb := a[:len(a)-2], b[:len(b)-2]
	nb := max(len(ab), len(bb))
	g.batch = make([]int, nb)
	g.aBatch = make([]int, nb)
	g.bBatch = make([]int, nb)
	sa, sb := 1, 1
	for i := nb - 1; i >= 0; i-- {
		da, db := 1, 1
		if j := i - (nb - len(ab)); j >= 0 {
			da = ab[j]
		}
		if j := i - (nb - len(bb)); j >= 0 {
			db = bb[j]
		}
		switch {
		case da == db:
			g.batch[i] = da
		case da == 1:
			g.batch[i] = db
		case db == 1:
			g.batch[i] = da
		default:
			return nil, fmt.Errorf("batch dimensions do not broadcast: %v × %v", as, bs)
		}
		if da != 1 {
			g.aBatch[i] = sa
		}
		if db != 1 {
			g.bBatch[i] = sb
		}
		sa *= da
		sb *= db
	}
	g.bIs2D = sb == 1
	var err error
	if g.nBatch, err = checkedProduct(g.batch...); err != nil {
		return nil, err
	}
	if _, err := checkedProduct(g.nBatch, g.m, g.n); err != nil {
		return nil, err
	}
	g.aElements = g.m * g.k
	g.outShape = append(append([]int(nil), g.batch...), g.m, g.n)
	if g.aVec {
		g.outShape = append(g.outShape[:len(g.outShape)-2], g.n)
	}
	if g.bVec {
		g.outShape = g.outShape[:len(g.outShape)-1]
	}
	return g, nil
}

// batchOffsets returns, for output batch index bi, the batch indices of A
// and B.
func (g *matmulShape) batchOffsets(bi int) (ai, bj int) {
	for d := len(g.batch) - 1; d >= 0; d-- {
		x := bi % g.batch[d]
		bi /= g.batch[d]
		ai += x * g.aBatch[d]
		bj += x * g.bBatch[d]
	}
	return
}

// packAll packs every batch matrix of B (k×n each) with zero points bz.
func packAll(b *tensor.Tensor, bz []int32, k, n int) ([]*q8.PackedB, []int32) {
	w, z := s8Weights(b, bz)
	nb := 1
	if k*n > 0 {
		nb = len(w) / (k * n)
	}
	pbs := make([]*q8.PackedB, nb)
	for i := range pbs {
		pbs[i] = q8.PackB(k, n, w[i*k*n:], n, false)
	}
	return pbs, z
}

type matmulKernel struct {
	node               *graph.Node
	qlin               bool // QLinearMatMul (else MatMulInteger)
	bIdx, azIdx, bzIdx int
	// Weights packed at build time when B and its zero point are constants.
	constB *tensor.Tensor
	pbs    []*q8.PackedB
	pbz    []int32
}

func newQLinearMatMul(n *graph.Node, opset int64) (runtime.Kernel, error) {
	if len(n.Inputs) != 8 {
		return nil, fmt.Errorf("%v: QLinearMatMul takes 8 inputs, got %d", n, len(n.Inputs))
	}
	return newMatmul(n, &matmulKernel{node: n, qlin: true, bIdx: 3, azIdx: 2, bzIdx: 5})
}

func newMatMulInteger(n *graph.Node, opset int64) (runtime.Kernel, error) {
	if len(n.Inputs) < 2 || len(n.Inputs) > 4 {
		return nil, fmt.Errorf("%v: MatMulInteger takes 2 to 4 inputs, got %d", n, len(n.Inputs))
	}
	return newMatmul(n, &matmulKernel{node: n, bIdx: 1, azIdx: 2, bzIdx: 3})
}

// newMatmul prepacks constant weights: B and its zero point (or its absence)
// known at build time.
func newMatmul(n *graph.Node, k *matmulKernel) (runtime.Kernel, error) {
	bv := n.Input(k.bIdx)
	if bv == nil || bv.Const == nil {
		return k, nil
	}
	var zt *tensor.Tensor
	if zv := n.Input(k.bzIdx); zv != nil {
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
	bz, err := zeroPointsIn(n, []*tensor.Tensor{zt}, 0, "B zero point", b.DType, nn)
	if err != nil {
		return nil, err
	}
	k.constB = b
	k.pbs, k.pbz = packAll(b, bz, kk, nn)
	return k, nil
}

func (k *matmulKernel) Run(ctx *runtime.Context, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	n := k.node
	bIdx, azIdx, bzIdx := k.bIdx, k.azIdx, k.bzIdx
	a, err := int8In(n, in, 0, "A")
	if err != nil {
		return nil, err
	}
	b, err := int8In(n, in, bIdx, "B")
	if err != nil {
		return nil, err
	}
	g, err := matmulGeometry(a.Shape, b.Shape)
	if err != nil {
		return nil, fmt.Errorf("%v: %v", n, err)
	}
	az, err := zeroPointsIn(n, in, azIdx, "A zero point", a.DType, g.m)
	if err != nil {
		return nil, err
	}
	bz, err := zeroPointsIn(n, in, bzIdx, "B zero point", b.DType, g.n)
	if err != nil {
		return nil, err
	}
	if k.qlin && len(az) != 1 {
		return nil, fmt.Errorf("%v: per-row A quantization is not supported", n)
	}

	var scale []float32
	var yz []int32
	outDT := tensor.Int32
	if k.qlin {
		sa, sdt, err := scalesIn(n, in, 1, "a_scale", 1)
		if err != nil {
			return nil, err
		}
		sb, _, err := scalesIn(n, in, 4, "b_scale", g.n)
		if err != nil {
			return nil, err
		}
		sy, _, err := scalesIn(n, in, 6, "y_scale", 1)
		if err != nil {
			return nil, err
		}
		yzt := input(in, 7)
		if yzt == nil {
			return nil, fmt.Errorf("%v: y_zero_point is missing", n)
		}
		outDT = yzt.DType
		if outDT != tensor.Uint8 && outDT != tensor.Int8 {
			return nil, fmt.Errorf("%v: y_zero_point is %v, want uint8 or int8", n, outDT)
		}
		if yz, err = zeroPointsIn(n, in, 7, "y_zero_point", outDT, 1); err != nil {
			return nil, err
		}
		scale = multipliers(sa[0], sb, sy[0], sdt)
	}

	au, az := u8Activations(a, az)
	var pbs []*q8.PackedB
	var bzs []int32
	if k.constB == b && b.Rank() >= 2 {
		pbs, bzs = k.pbs, k.pbz
	} else {
		pbs, bzs = packAll(b, bz, g.k, g.n)
	}

	out, err := tensor.New(outDT, g.outShape)
	if err != nil {
		return nil, fmt.Errorf("%v: %v", n, err)
	}
	mn := g.m * g.n
	run := func(rows int, aOff int, a0 int32, pb *q8.PackedB, oOff int) {
		switch outDT {
		case tensor.Int32:
			gemm(ctx, rows, g.n, au[aOff:], g.k, a0, pb, bzs, q8.Int32(out.I32()[oOff:], g.n))
		case tensor.Uint8:
			gemm(ctx, rows, g.n, au[aOff:], g.k, a0, pb, bzs, q8.Output{Q: &q8.Requant{Scale: scale, OutZero: yz[0], OutU8: out.U8()[oOff:], Ldc: g.n}})
		case tensor.Int8:
			gemm(ctx, rows, g.n, au[aOff:], g.k, a0, pb, bzs, q8.Output{Q: &q8.Requant{Scale: scale, OutZero: yz[0], OutS8: out.I8()[oOff:], Ldc: g.n}})
		}
	}
	if mn == 0 {
		return []*tensor.Tensor{out}, nil
	}
	if g.k == 0 {
		// Empty sums: MatMulInteger gives zeros, QLinearMatMul requantizes 0.
		if outDT != tensor.Int32 {
			pb := q8.PackB(0, g.n, nil, g.n, false)
			for bi := 0; bi < g.nBatch; bi++ {
				run(g.m, 0, az[0], pb, bi*mn)
			}
		}
		return []*tensor.Tensor{out}, nil
	}
	if g.bIs2D && len(az) == 1 {
		// One GEMM over every row of every batch.
		aRows := len(au) / g.k
		if aRows == g.nBatch*g.m {
			run(aRows, 0, az[0], pbs[0], 0)
			return []*tensor.Tensor{out}, nil
		}
	}
	for bi := 0; bi < g.nBatch; bi++ {
		ai, bj := g.batchOffsets(bi)
		pb := pbs[bj]
		if len(az) == 1 {
			run(g.m, ai*g.aElements, az[0], pb, bi*mn)
			continue
		}
		for r := 0; r < g.m; r++ {
			run(1, ai*g.aElements+r*g.k, az[r], pb, bi*mn+r*g.n)
		}
	}
	return []*tensor.Tensor{out}, nil
}
