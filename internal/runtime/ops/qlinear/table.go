package qlinear

import (
	"fmt"
	"sync"

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
	// The table's own bytes, viewed as an array: a copy in a local would
	// be moved to the heap on every run (q8.LookupU8 calls its kernels
	// through a func value, so the pointer escapes).
	return lookupTensor(ctx, n, x, (*[256]uint8)(bytesOf(tb)))
}

// lookupTensor maps every byte of x through table into a new tensor.
func lookupTensor(ctx *runtime.Context, n *graph.Node, x *tensor.Tensor, table *[256]uint8) ([]*tensor.Tensor, error) {
	out, err := ctx.NewUninit(x.DType, x.Shape)
	if err != nil {
		return nil, fmt.Errorf("%v: %v", n, err)
	}
	src, dst := bytesOf(x), bytesOf(out)
	ctx.Parallel(len(src), 1<<16, func(lo, hi int) {
		q8.LookupU8(dst[lo:hi], src[lo:hi], table)
	})
	return []*tensor.Tensor{out}, nil
}

// tablePool lends 256-entry tables to runs whose table depends on run-time
// data. q8.LookupU8 calls its kernels through a func value, so a table in a
// local variable escapes and would be a heap allocation on every run; a
// kernel's own field would not do either, as one session may run
// concurrently.
var tablePool = sync.Pool{New: func() any { return new([256]uint8) }}

// planTable is a 256-entry table that depends only on some of a node's
// inputs (its quantization parameters), built at plan time when those are
// constants, once for uint8 and once for int8 data. A run whose inputs are
// those very tensors (not an initializer the caller overrode, not a value
// computed at run time) uses it as is.
type planTable struct {
	idx    []int            // the inputs the table depends on
	consts []*tensor.Tensor // their plan-time tensors (nil: absent)
	tab    [2][256]uint8    // for uint8 and int8 data
	ok     [2]bool          // build succeeded for the data type
}

// newPlanTable builds the table with build, the kernel's run-time builder
// (so both are one computation), from n's inputs idx; nil when one of them
// is not a constant or build fails for both data types (Run then builds
// the table, or reports the error).
func newPlanTable(n *graph.Node, idx []int, build func(in []*tensor.Tensor, dt tensor.DType, tab *[256]uint8) error) *planTable {
	in := make([]*tensor.Tensor, len(n.Inputs))
	p := &planTable{idx: idx, consts: make([]*tensor.Tensor, len(idx))}
	for j, i := range idx {
		v := n.Input(i)
		if v == nil {
			continue
		}
		if v.Const == nil {
			return nil
		}
		in[i], p.consts[j] = v.Const, v.Const
	}
	for j, dt := range []tensor.DType{tensor.Uint8, tensor.Int8} {
		p.ok[j] = build(in, dt, &p.tab[j]) == nil
	}
	if !p.ok[0] && !p.ok[1] {
		return nil
	}
	return p
}

// get returns the plan-time table for a run on data of type dt with inputs
// in, or nil when it does not apply.
func (p *planTable) get(in []*tensor.Tensor, dt tensor.DType) *[256]uint8 {
	if p == nil {
		return nil
	}
	j := 0
	if dt == tensor.Int8 {
		j = 1
	}
	if !p.ok[j] {
		return nil
	}
	for k, i := range p.idx {
		if input(in, i) != p.consts[k] {
			return nil
		}
	}
	return &p.tab[j]
}
