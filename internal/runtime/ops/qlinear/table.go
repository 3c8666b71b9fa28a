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
		runtime.Register(QtoolDomain, "LookupTable", dt, newLookupTable)
	}
}

// lookupTableKernel is com.qtool LookupTable(X, Table): Y[i] = Table[byte of
// X[i]], X and Table uint8 or int8 of the same type, Table 256 elements
// indexed by X's bit pattern (for int8, element i is the output for
// int8(i), so -1 is at 255). The QDQ rewrite (internal/runtime/qdq) builds
// the table as constant nodes DQ'd index values → the float op → Q, which
// the session folds at plan time with the float kernels themselves, so the
// lookup is bit-identical to the unfused DQ → op → Q path for any
// elementwise activation the runtime has a float kernel for.
type lookupTableKernel struct {
	node *graph.Node
}

func newLookupTable(n *graph.Node, opset int64) (runtime.Kernel, error) {
	if len(n.Inputs) != 2 || len(n.Outputs) != 1 {
		return nil, fmt.Errorf("%v: LookupTable takes 2 inputs (X, Table) and 1 output", n)
	}
	return &lookupTableKernel{node: n}, nil
}

func (k *lookupTableKernel) Run(ctx *runtime.Context, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	n := k.node
	x, err := int8In(n, in, 0, "X")
	if err != nil {
		return nil, err
	}
	tb, err := int8In(n, in, 1, "Table")
	if err != nil {
		return nil, err
	}
	if tb.DType != x.DType {
		return nil, fmt.Errorf("%v: Table is %v, X is %v", n, tb.DType, x.DType)
	}
	if tb.Len() != 256 {
		return nil, fmt.Errorf("%v: Table has %d elements, want 256", n, tb.Len())
	}
	var table [256]uint8
	copy(table[:], bytesOf(tb))
	out, err := ctx.NewUninit(x.DType, x.Shape)
	if err != nil {
		return nil, fmt.Errorf("%v: %v", n, err)
	}
	src, dst := bytesOf(x), bytesOf(out)
	ctx.Parallel(len(src), 1<<16, func(lo, hi int) {
		q8.LookupU8(dst[lo:hi], src[lo:hi], &table)
	})
	return []*tensor.Tensor{out}, nil
}
