// Package nn holds the float32 neural-network kernels of the runtime: Conv
// (and com.qtool / com.microsoft FusedConv), ConvTranspose, the pools
// (Max, Average, Lp, their Global forms, MaxUnpool), the normalizations
// (Batch, Instance, Layer, Group), Gemm and MatMul, Pad, Resize/Upsample,
// GridSample and the recurrent ops (LSTM, GRU, RNN). Every kernel registers
// itself in init() through runtime.Register.
//
// The heavy lifting goes through internal/simd/f32 (see gemm.go):
//   - convolutions become GEMMs with the weights packed once at plan time:
//     1×1 stride-1 ones read the input as the B matrix directly; 2-D ones
//     with wide rows run on the zero-padded input dealt into stride phases,
//     where every im2col row is one contiguous copy (convGroupPadded); the
//     rest use im2col in L2-sized column tiles; depthwise ones use f32's
//     direct kernel;
//   - bias, activation and FusedConv's residual are applied in the GEMM
//     epilogue;
//   - weights that are not initializers are packed on first use and reused
//     while their data is unchanged (packCache);
//   - threads split work in pieces whose size depends only on the shapes
//     (or in GEMM row/column ranges, which f32 computes bit-identically
//     however they are split), so results never depend on the thread count.
package nn

import (
	"bytes"
	"fmt"
	"sync"
	"unsafe"

	"github.com/qtool/qtool/internal/graph"
	"github.com/qtool/qtool/internal/runtime"
	"github.com/qtool/qtool/internal/tensor"
)

// QtoolDomain is the operator domain of qtool's own fused ops.
const QtoolDomain = "com.qtool"

// MSDomain is ONNX Runtime's contrib-op domain (FusedConv).
const MSDomain = "com.microsoft"

func register(domain, op string, f runtime.Factory) {
	runtime.Register(domain, op, tensor.Float32, f)
}

// input returns in[i] or nil when the node has fewer inputs.
func input(in []*tensor.Tensor, i int) *tensor.Tensor {
	if i < len(in) {
		return in[i]
	}
	return nil
}

// f32In checks that input i is present and float32.
func f32In(n *graph.Node, in []*tensor.Tensor, i int) (*tensor.Tensor, error) {
	t := input(in, i)
	if t == nil {
		return nil, fmt.Errorf("%v: input %d is missing", n, i)
	}
	if t.DType != tensor.Float32 {
		return nil, fmt.Errorf("%v: input %d is %v, want float32", n, i, t.DType)
	}
	if err := t.Validate(); err != nil {
		return nil, fmt.Errorf("%v: input %d: %v", n, i, err)
	}
	return t, nil
}

// optF32In is f32In for an optional input: nil when absent.
func optF32In(n *graph.Node, in []*tensor.Tensor, i int) (*tensor.Tensor, error) {
	if input(in, i) == nil {
		return nil, nil
	}
	return f32In(n, in, i)
}

// intsIn reads an integer tensor input (int64 or int32) as ints; nil when
// absent.
func intsIn(n *graph.Node, in []*tensor.Tensor, i int) ([]int64, error) {
	t := input(in, i)
	if t == nil {
		return nil, nil
	}
	switch d := t.Data.(type) {
	case []int64:
		return d, nil
	case []int32:
		out := make([]int64, len(d))
		for i, v := range d {
			out[i] = int64(v)
		}
		return out, nil
	}
	return nil, fmt.Errorf("%v: input %d is %v, want int64", n, i, t.DType)
}

// newF32 allocates a float32 output, turning a bad shape into an error.
// Inside a session the buffer may be a recycled one (zeroed all the same).
func newF32(ctx *runtime.Context, n *graph.Node, shape []int) (*tensor.Tensor, error) {
	t, err := ctx.New(tensor.Float32, shape)
	if err != nil {
		return nil, fmt.Errorf("%v: output %v: %v", n, shape, err)
	}
	return t, nil
}

// newF32Uninit is newF32 for outputs the kernel overwrites in full: a
// recycled buffer is handed out without being zeroed first.
func newF32Uninit(ctx *runtime.Context, n *graph.Node, shape []int) (*tensor.Tensor, error) {
	t, err := ctx.NewUninit(tensor.Float32, shape)
	if err != nil {
		return nil, fmt.Errorf("%v: output %v: %v", n, shape, err)
	}
	return t, nil
}

func prod(s []int) int {
	p := 1
	for _, v := range s {
		p *= v
	}
	return p
}

// toInts converts attribute values to ints, rejecting values that would
// make no sense as sizes (beyond ±2^31).
func toInts(n *graph.Node, name string, v []int64) ([]int, error) {
	out := make([]int, len(v))
	for i, x := range v {
		if x > 1<<31 || x < -(1<<31) {
			return nil, fmt.Errorf("%v: attribute %s value %d out of range", n, name, x)
		}
		out[i] = int(x)
	}
	return out, nil
}

// attrInts reads an ints attribute as []int (nil when absent).
func attrInts(n *graph.Node, name string) ([]int, error) {
	v, err := n.AttrInts(name, nil)
	if err != nil || v == nil {
		return nil, err
	}
	return toInts(n, name, v)
}

// nodeOutputs reports how many outputs the node asks for (trailing absent
// outputs do not count) and whether output i is wanted.
func wantOutput(n *graph.Node, i int) bool {
	return n.Output(i) != nil
}

// normAxis maps a possibly negative axis into [0, rank).
func normAxis(n *graph.Node, axis, rank int) (int, error) {
	if axis < -rank || axis >= rank {
		return 0, fmt.Errorf("%v: axis %d out of range for rank %d", n, axis, rank)
	}
	if axis < 0 {
		axis += rank
	}
	return axis, nil
}

// parallelFixed splits n items into fixed chunks of size chunk (independent
// of the thread count, so that the work each call does is the same however
// many threads run) and hands the chunks to ctx.Parallel.
func parallelFixed(ctx *runtime.Context, n, chunk int, fn func(lo, hi int)) {
	if chunk < 1 {
		chunk = 1
	}
	tiles := (n + chunk - 1) / chunk
	ctx.Parallel(tiles, 1, func(t0, t1 int) {
		for t := t0; t < t1; t++ {
			lo := t * chunk
			hi := min(lo+chunk, n)
			fn(lo, hi)
		}
	})
}

// packCache keeps a kernel's packed form of a weight input. An initializer
// is packed at plan time (setConst) and recognised by identity: the
// Session passes the graph's constant tensor itself, and constants are never
// modified. Anything else (a Constant node's output, a graph input, an
// initializer the caller overrides) is packed on first use and reused while
// the shape and data are identical to the last ones packed: comparing is a fast
// sequential read, packing a strided rewrite, and a value test stays right
// even when the caller refills the same tensor.
type packCache[T any] struct {
	constT   *tensor.Tensor
	constVal T

	mu    sync.Mutex
	data  []byte
	shape []int
	val   T
	ok    bool
}

// setConst records the pack of the plan-time constant t.
func (c *packCache[T]) setConst(t *tensor.Tensor, v T) { c.constT, c.constVal = t, v }

func (c *packCache[T]) get(t *tensor.Tensor, build func() T) T {
	if c.constT != nil && t == c.constT {
		return c.constVal
	}
	d := t.F32()
	b := unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(d))), 4*len(d))
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ok && tensor.SameShape(c.shape, t.Shape) && bytes.Equal(c.data, b) {
		return c.val
	}
	c.val = build()
	c.data = append(c.data[:0], b...)
	c.shape = append(c.shape[:0], t.Shape...)
	c.ok = true
	return c.val
}
