package nn

import (
	"fmt"

	"github.com/qtool/qtool/internal/graph"
	"github.com/qtool/qtool/internal/runtime"
	"github.com/qtool/qtool/internal/tensor"
)

func init() {
	register("", "MaxUnpool", newMaxUnpool)
}

type maxUnpool struct {
	n     *graph.Node
	attrs windowAttrs
}

func newMaxUnpool(n *graph.Node, opset int64) (runtime.Kernel, error) {
	a, err := readWindowAttrs(n)
	if err != nil {
		return nil, err
	}
	if a.kernel == nil {
		return nil, fmt.Errorf("%v: kernel_shape is required", n)
	}
	return &maxUnpool{n: n, attrs: a}, nil
}

// Run scatters X into a zero tensor at MaxPool's flat Indices (which index
// the whole output tensor, batch and channel included).
func (k *maxUnpool) Run(ctx *runtime.Context, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	n := k.n
	x, err := f32In(n, in, 0)
	if err != nil {
		return nil, err
	}
	ind, err := intsIn(n, in, 1)
	if err != nil {
		return nil, err
	}
	if ind == nil || len(ind) != x.Len() {
		return nil, fmt.Errorf("%v: indices must match X %v", n, x.Shape)
	}
	if x.Rank() < 3 {
		return nil, fmt.Errorf("%v: X %v must have rank >= 3", n, x.Shape)
	}
	nd := x.Rank() - 2
	// Indices address the natural unpooled shape; an explicit output_shape
	// only pads (or crops) that at the end of each spatial dim, as the ONNX
	// reference does.
	if len(k.attrs.kernel) != nd {
		return nil, fmt.Errorf("%v: kernel_shape %v for %d spatial dims", n, k.attrs.kernel, nd)
	}
	strides, err := filled(n, "strides", k.attrs.strides, nd, 1)
	if err != nil {
		return nil, err
	}
	pads := k.attrs.pads
	if pads == nil {
		pads = make([]int, 2*nd)
	}
	if len(pads) != 2*nd {
		return nil, fmt.Errorf("%v: pads %v for %d spatial dims", n, pads, nd)
	}
	natural := []int{x.Shape[0], x.Shape[1]}
	for i := 0; i < nd; i++ {
		natural = append(natural, (x.Shape[2+i]-1)*strides[i]+k.attrs.kernel[i]-pads[i]-pads[nd+i])
	}
	outShape := natural
	if os, err := intsIn(n, in, 2); err != nil {
		return nil, err
	} else if os != nil {
		if outShape, err = toInts(n, "output_shape", os); err != nil {
			return nil, err
		}
		if len(outShape) != x.Rank() || outShape[0] != x.Shape[0] || outShape[1] != x.Shape[1] {
			return nil, fmt.Errorf("%v: output_shape %v does not fit X %v", n, outShape, x.Shape)
		}
	}
	nat, err := newF32(ctx, n, natural)
	if err != nil {
		return nil, err
	}
	nd0 := nat.F32()
	for i, v := range x.F32() {
		j := ind[i]
		if j < 0 || j >= int64(len(nd0)) {
			return nil, fmt.Errorf("%v: index %d outside output %v", n, j, natural)
		}
		nd0[j] = v
	}
	if tensor.SameShape(outShape, natural) {
		return []*tensor.Tensor{nat}, nil
	}
	y, err := newF32(ctx, n, outShape)
	if err != nil {
		return nil, err
	}
	maps := make([][]int, len(outShape))
	for d := range outShape {
		maps[d] = padMap("constant", natural[d], outShape[d], 0)
	}
	padCopy(nd0, y.F32(), natural, outShape, maps, 0)
	return []*tensor.Tensor{y}, nil
}
