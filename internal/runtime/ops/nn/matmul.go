package nn

import (
	"fmt"

	"github.com/qtool/qtool/internal/graph"
	"github.com/qtool/qtool/internal/runtime"
	"github.com/qtool/qtool/internal/tensor"
)

func init() {
	register("", "Gemm", newGemm)
	register("", "MatMul", newMatMul)
}

type gemmOp struct {
	n              *graph.Node
	alpha, beta    float32
	transA, transB bool
	packs          packCache[*packedB] // alpha·op(B)
}

func newGemm(n *graph.Node, opset int64) (runtime.Kernel, error) {
	g := &gemmOp{n: n}
	var err error
	if g.alpha, err = n.AttrFloat("alpha", 1); err != nil {
		return nil, err
	}
	if g.beta, err = n.AttrFloat("beta", 1); err != nil {
		return nil, err
	}
	ta, err := n.AttrInt("transA", 0)
	if err != nil {
		return nil, err
	}
	tb, err := n.AttrInt("transB", 0)
	if err != nil {
		return nil, err
	}
	g.transA, g.transB = ta != 0, tb != 0
	if b := n.Input(1); b != nil && b.Const != nil && b.Const.DType == tensor.Float32 && len(b.Const.Shape) == 2 {
		if err := b.Const.Validate(); err != nil {
			return nil, fmt.Errorf("%v: B: %v", n, err)
		}
		g.packs.setConst(b.Const, g.pack(b.Const))
	}
	return g, nil
}

// pack packs alpha·op(B): folding alpha into the constant saves a pass.
func (g *gemmOp) pack(b *tensor.Tensor) *packedB {
	k, nn := b.Shape[0], b.Shape[1]
	if g.transB {
		k, nn = nn, k
	}
	data := b.F32()
	if g.alpha != 1 {
		s := make([]float32, len(data))
		for i, v := range data {
			s[i] = g.alpha * v
		}
		data = s
	}
	return packB(g.transB, k, nn, data, b.Shape[1])
}

func (g *gemmOp) Run(ctx *runtime.Context, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	n := g.n
	a, err := f32In(n, in, 0)
	if err != nil {
		return nil, err
	}
	b, err := f32In(n, in, 1)
	if err != nil {
		return nil, err
	}
	c, err := optF32In(n, in, 2)
	if err != nil {
		return nil, err
	}
	if a.Rank() != 2 || b.Rank() != 2 {
		return nil, fmt.Errorf("%v: A %v and B %v must be matrices", n, a.Shape, b.Shape)
	}
	M, K := a.Shape[0], a.Shape[1]
	if g.transA {
		M, K = K, M
	}
	Kb, N := b.Shape[0], b.Shape[1]
	if g.transB {
		Kb, N = N, Kb
	}
	if K != Kb {
		return nil, fmt.Errorf("%v: A %v and B %v do not multiply (transA=%v, transB=%v)", n, a.Shape, b.Shape, g.transA, g.transB)
	}
	y, err := newF32(ctx, n, []int{M, N})
	if err != nil {
		return nil, err
	}
	if M == 0 || N == 0 {
		return []*tensor.Tensor{y}, nil
	}
	yd := y.F32()
	ad := a.F32()
	if g.transA {
		t := make([]float32, M*K)
		for i := 0; i < K; i++ {
			for j := 0; j < M; j++ {
				t[j*K+i] = ad[i*M+j]
			}
		}
		ad = t
	}
	var ep epilogue
	if c != nil && g.beta != 0 {
		if ep, err = gemmBias(n, c, M, N, g.beta, yd); err != nil {
			return nil, err
		}
	}
	p := g.packs.get(b, func() *packedB { return g.pack(b) })
	colsParallel(ctx, p, M, K, func(n0, n1 int) {
		gemmPackedB(M, ad, K, p, n0, n1, yd, N, ep)
	})
	return []*tensor.Tensor{y}, nil
}

// gemmBias turns Gemm's C (unidirectionally broadcastable to [M, N]) into an
// epilogue: a row or column bias when it is a vector, else beta·C copied
// into y and accumulated.
func gemmBias(n *graph.Node, c *tensor.Tensor, M, N int, beta float32, y []float32) (epilogue, error) {
	var ep epilogue
	cd := c.F32()
	shape := c.Shape
	for len(shape) > 0 && len(shape) < 2 {
		shape = append([]int{1}, shape...)
	}
	if len(shape) > 2 {
		return ep, fmt.Errorf("%v: C %v does not broadcast to [%d %d]", n, c.Shape, M, N)
	}
	rows, cols := 1, 1
	if len(shape) == 2 {
		rows, cols = shape[0], shape[1]
	}
	if (rows != 1 && rows != M) || (cols != 1 && cols != N) {
		return ep, fmt.Errorf("%v: C %v does not broadcast to [%d %d]", n, c.Shape, M, N)
	}
	scaled := func(k int) []float32 {
		out := make([]float32, k)
		for i := range out {
			out[i] = beta * cd[min(i, len(cd)-1)]
		}
		return out
	}
	switch {
	case rows == 1 && cols == 1:
		v := beta * cd[0]
		ep.ColBias = make([]float32, N)
		for i := range ep.ColBias {
			ep.ColBias[i] = v
		}
	case rows == 1:
		ep.ColBias = scaled(N)
	case cols == 1:
		ep.RowBias = scaled(M)
	default:
		for i, v := range cd[:M*N] {
			y[i] = beta * v
		}
		ep.Accumulate = true
	}
	return ep, nil
}

// colsParallel splits the n columns of a packed-B GEMM over threads in
// chunks aligned to the kernel's column panels.
func colsParallel(ctx *runtime.Context, p *packedB, m, k int, fn func(n0, n1 int)) {
	N := p.N()
	align := p.ColAlign()
	panels := (N + align - 1) / align
	work := m * k * align
	grain := max(1, (1<<16)/max(1, work))
	ctx.Parallel(panels, grain, func(q0, q1 int) {
		fn(q0*align, min(N, q1*align))
	})
}

type matMul struct {
	n     *graph.Node
	packs packCache[*packedB] // 2-D B
}

func newMatMul(n *graph.Node, opset int64) (runtime.Kernel, error) {
	m := &matMul{n: n}
	if b := n.Input(1); b != nil && b.Const != nil && b.Const.DType == tensor.Float32 && len(b.Const.Shape) == 2 {
		if err := b.Const.Validate(); err != nil {
			return nil, fmt.Errorf("%v: B: %v", n, err)
		}
		m.packs.setConst(b.Const, packB(false, b.Const.Shape[0], b.Const.Shape[1], b.Const.F32(), b.Const.Shape[1]))
	}
	return m, nil
}

func (k *matMul) Run(ctx *runtime.Context, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	n := k.n
	a, err := f32In(n, in, 0)
	if err != nil {
		return nil, err
	}
	b, err := f32In(n, in, 1)
	if err != nil {
		return nil, err
	}
	if a.Rank() == 0 || b.Rank() == 0 {
		return nil, fmt.Errorf("%v: MatMul needs operands of rank >= 1, got %v and %v", n, a.Shape, b.Shape)
	}
	as, bs := a.Shape, b.Shape
	if len(as) == 1 {
		as = []int{1, as[0]}
	}
	if len(bs) == 1 {
		bs = []int{bs[0], 1}
	}
	M, K := as[len(as)-2], as[len(as)-1]
	K2, N := bs[len(bs)-2], bs[len(bs)-1]
	if K != K2 {
		return nil, fmt.Errorf("%v: %v and %v do not multiply", n, a.Shape, b.Shape)
	}
	batch, err := broadcastShapes(as[:len(as)-2], bs[:len(bs)-2])
	if err != nil {
		return nil, fmt.Errorf("%v: %v", n, err)
	}
	outShape := append(append([]int(nil), batch...), M, N)
	finalShape := append([]int(nil), batch...)
	if a.Rank() > 1 {
		finalShape = append(finalShape, M)
	}
	if b.Rank() > 1 {
		finalShape = append(finalShape, N)
	}
	alloc := newF32
	if K > 0 {
		// The GEMMs below write every element; K == 0 returns zeros.
		alloc = newF32Uninit
	}
	y, err := alloc(ctx, n, outShape)
	if err != nil {
		return nil, err
	}
	y.Shape = finalShape
	if y.Len() == 0 {
		return []*tensor.Tensor{y}, nil
	}
	ad, bd, yd := a.F32(), b.F32(), y.F32()
	if K == 0 {
		return []*tensor.Tensor{y}, nil
	}
	// B shared by every batch: A is one tall [batch·M × K] matrix when its
	// batch dims are not broadcast.
	if len(bs) == 2 {
		rows := prod(batch) * M
		p := k.packs.get(b, func() *packedB { return packB(false, K, N, bd, N) })
		if prod(as[:len(as)-2]) == prod(batch) {
			colsParallel(ctx, p, rows, K, func(n0, n1 int) {
				gemmPackedB(rows, ad, K, p, n0, n1, yd, N, epilogue{})
			})
			return []*tensor.Tensor{y}, nil
		}
	}
	nb := prod(batch)
	aIdx := batchIndex(batch, as[:len(as)-2])
	bIdx := batchIndex(batch, bs[:len(bs)-2])
	ctx.Parallel(nb, 1, func(b0, b1 int) {
		for i := b0; i < b1; i++ {
			sgemm(false, false, M, N, K, 1, ad[aIdx[i]*M*K:], K, bd[bIdx[i]*K*N:], N, 0, yd[i*M*N:], N)
		}
	})
	return []*tensor.Tensor{y}, nil
}

// broadcastShapes is numpy's broadcasting rule.
func broadcastShapes(a, b []int) ([]int, error) {
	r := max(len(a), len(b))
	out := make([]int, r)
	for i := 0; i < r; i++ {
		da, db := 1, 1
		if j := i - (r - len(a)); j >= 0 {
			da = a[j]
		}
		if j := i - (r - len(b)); j >= 0 {
			db = b[j]
		}
		switch {
		case da == db || db == 1:
			out[i] = da
		case da == 1:
			out[i] = db
		default:
			return nil, fmt.Errorf("shapes %v and %v do not broadcast", a, b)
		}
	}
	return out, nil
}

// batchIndex maps every index of the broadcast batch shape to the flat batch
// index of an operand whose batch shape is src.
func batchIndex(batch, src []int) []int {
	nb := prod(batch)
	out := make([]int, nb)
	off := len(batch) - len(src)
	str := tensor.Strides(src)
	idx := make([]int, len(batch))
	for i := 0; i < nb; i++ {
		s := 0
		for d := range src {
			if src[d] != 1 {
				s += idx[off+d] * str[d]
			}
		}
		out[i] = s
		for d := len(batch) - 1; d >= 0; d-- {
			idx[d]++
			if idx[d] < batch[d] {
				break
			}
			idx[d] = 0
		}
	}
	return out
}
