package qlinear

import (
	"fmt"

	"github.com/qtool/qtool/internal/graph"
	"github.com/qtool/qtool/internal/runtime"
	"github.com/qtool/qtool/internal/simd/q8"
	"github.com/qtool/qtool/internal/tensor"
)

// com.qtool Transpose is ONNX Transpose restricted to the two layout
// changes qdq.Rewrite puts at the edges of a channels-last region
// (perm [0, 2…r-1, 1] to channels-last, [0, r-1, 1…r-2] back) on 8-bit
// tensors; it runs them as one SIMD [C][S] ↔ [S][C] transpose per image,
// which the generic strided Transpose is far slower at.
func init() {
	for _, dt := range []tensor.DType{tensor.Uint8, tensor.Int8} {
		runtime.Register(QtoolDomain, "Transpose", dt, newLayoutTranspose)
	}
}

type layoutTranspose struct {
	node *graph.Node
	last bool // to channels-last
	rank int
}

func newLayoutTranspose(n *graph.Node, opset int64) (runtime.Kernel, error) {
	perm, err := n.AttrInts("perm", nil)
	if err != nil {
		return nil, err
	}
	r := len(perm)
	if r < 3 {
		return nil, fmt.Errorf("%v: perm %v is not a layout change", n, perm)
	}
	toLast, toFirst := perm[0] == 0 && perm[r-1] == 1, perm[0] == 0 && perm[1] == int64(r-1)
	for i := 1; i < r-1; i++ {
		toLast = toLast && perm[i] == int64(i+1)
		toFirst = toFirst && perm[i+1] == int64(i)
	}
	if !toLast && !toFirst {
		return nil, fmt.Errorf("%v: perm %v is not a layout change", n, perm)
	}
	return &layoutTranspose{node: n, last: toLast, rank: r}, nil
}

func (k *layoutTranspose) Run(ctx *runtime.Context, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	if len(in) != 1 || in[0] == nil {
		return nil, fmt.Errorf("%v: want one input", k.node)
	}
	x := in[0]
	if x.Rank() != k.rank || validate(x) != nil {
		return nil, fmt.Errorf("%v: input %v for a rank-%d perm", k.node, x.Shape, k.rank)
	}
	r := k.rank
	shape := make([]int, r)
	shape[0] = x.Shape[0]
	var c, s int
	if k.last {
		c = x.Shape[1]
		copy(shape[1:], x.Shape[2:])
		shape[r-1] = c
	} else {
		c = x.Shape[r-1]
		shape[1] = c
		copy(shape[2:], x.Shape[1:r-1])
	}
	s = 1
	for _, d := range shape[1:] {
		s *= d
	}
	if c > 0 {
		s /= c
	}
	out, err := ctx.NewUninit(x.DType, shape)
	if err != nil {
		return nil, fmt.Errorf("%v: %v", k.node, err)
	}
	var src, dst []uint8
	if x.DType == tensor.Int8 {
		src, dst = u8View(x.I8()), u8View(out.I8())
	} else {
		src, dst = x.U8(), out.U8()
	}
	n := c * s
	for b := 0; b < shape[0] && n > 0; b++ {
		if k.last {
			q8.TransposeU8(dst[b*n:], c, src[b*n:(b+1)*n], s, c, s, 0)
		} else {
			q8.TransposeU8(dst[b*n:], s, src[b*n:(b+1)*n], c, s, c, 0)
		}
	}
	return []*tensor.Tensor{out}, nil
}
