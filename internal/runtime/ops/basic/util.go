// Package basic holds the runtime's general-purpose kernels: elementwise
// arithmetic and activations with numpy broadcasting, comparisons and
// logic, shape and data-movement ops, reductions, Softmax, TopK, Cast,
// Constant and the If control-flow op. Every kernel registers itself in
// init() through runtime.Register.
//
// Float32 is the main type; the ops that shape subgraphs use (arithmetic,
// comparisons, Gather, Concat, Slice, Cast, ...) also run on the integer
// types, and data-movement ops run on every fixed-size type because they
// only move bytes.
package basic

import (
	"fmt"
	"unsafe"

	"github.com/qtool/qtool/internal/graph"
	"github.com/qtool/qtool/internal/runtime"
	"github.com/qtool/qtool/internal/tensor"
)

// grain is the number of elements below which splitting an elementwise
// loop over threads costs more than it saves.
const grain = 1 << 14

// number is every numeric element type qtool holds except float16.
type number interface {
	~int8 | ~uint8 | ~int16 | ~uint16 | ~int32 | ~uint32 | ~int64 | ~uint64 | ~float32 | ~float64
}

type integer interface {
	~int8 | ~uint8 | ~int16 | ~uint16 | ~int32 | ~uint32 | ~int64 | ~uint64
}

type float interface{ ~float32 | ~float64 }

var numericTypes = []tensor.DType{
	tensor.Float32, tensor.Float64, tensor.Int8, tensor.Uint8, tensor.Int16, tensor.Uint16,
	tensor.Int32, tensor.Uint32, tensor.Int64, tensor.Uint64,
}

var intTypes = []tensor.DType{
	tensor.Int8, tensor.Uint8, tensor.Int16, tensor.Uint16, tensor.Int32, tensor.Uint32, tensor.Int64, tensor.Uint64,
}

func reg(op string, dts []tensor.DType, f runtime.Factory) {
	for _, dt := range dts {
		runtime.Register("", op, dt, f)
	}
}

func regAny(op string, f runtime.Factory) { runtime.Register("", op, runtime.AnyDType, f) }

// kf adapts a plain kernel function that needs no preparation.
func kf(f func(ctx *runtime.Context, in []*tensor.Tensor) ([]*tensor.Tensor, error)) runtime.Factory {
	return func(*graph.Node, int64) (runtime.Kernel, error) { return runtime.KernelFunc(f), nil }
}

func input(in []*tensor.Tensor, i int) *tensor.Tensor {
	if i < len(in) {
		return in[i]
	}
	return nil
}

// need checks that inputs 0..k-1 are present and well formed.
func need(in []*tensor.Tensor, k int) error {
	if len(in) < k {
		return fmt.Errorf("needs %d inputs, got %d", k, len(in))
	}
	for i := 0; i < k; i++ {
		if in[i] == nil {
			return fmt.Errorf("input %d is missing", i)
		}
		if err := in[i].Validate(); err != nil {
			return fmt.Errorf("input %d: %v", i, err)
		}
	}
	return nil
}

// optional validates input i if present.
func optional(in []*tensor.Tensor, i int) (*tensor.Tensor, error) {
	t := input(in, i)
	if t == nil {
		return nil, nil
	}
	if err := t.Validate(); err != nil {
		return nil, fmt.Errorf("input %d: %v", i, err)
	}
	return t, nil
}

// ints reads an integer tensor (any integer type) as int64s.
func ints(t *tensor.Tensor) ([]int64, error) {
	switch d := t.Data.(type) {
	case []int64:
		return d, nil
	case []int32:
		return widen(d), nil
	case []int16:
		return widen(d), nil
	case []int8:
		return widen(d), nil
	case []uint8:
		return widen(d), nil
	case []uint16:
		return widen(d), nil
	case []uint32:
		return widen(d), nil
	}
	return nil, fmt.Errorf("%v tensor where integers are expected", t.DType)
}

func widen[T integer](d []T) []int64 {
	out := make([]int64, len(d))
	for i, v := range d {
		out[i] = int64(v)
	}
	return out
}

// scalarFloat reads a one-element numeric tensor as float64.
func scalarFloat(t *tensor.Tensor) (float64, error) {
	if t.Len() != 1 {
		return 0, fmt.Errorf("expected one element, got shape %v", t.Shape)
	}
	v, err := t.AsFloat64()
	if err != nil {
		return 0, err
	}
	return v[0], nil
}

// normAxis maps a possibly negative axis into [0, rank).
func normAxis(axis int64, rank int) (int, error) {
	if axis < -int64(rank) || axis >= int64(rank) {
		return 0, fmt.Errorf("axis %d out of range for rank %d", axis, rank)
	}
	if axis < 0 {
		axis += int64(rank)
	}
	return int(axis), nil
}

func prod(s []int) int {
	p := 1
	for _, d := range s {
		p *= d
	}
	return p
}

// raw returns the bytes of a tensor's data and its element size; strings
// and empty tensors give a nil slice.
func raw(t *tensor.Tensor) ([]byte, int, error) {
	es := t.DType.Size()
	if es == 0 {
		return nil, 0, fmt.Errorf("%v tensors are not supported here", t.DType)
	}
	n := t.Len()
	if n == 0 {
		return nil, es, nil
	}
	var p unsafe.Pointer
	switch d := t.Data.(type) {
	case []float32:
		p = unsafe.Pointer(&d[0])
	case []float64:
		p = unsafe.Pointer(&d[0])
	case []int8:
		p = unsafe.Pointer(&d[0])
	case []uint8:
		p = unsafe.Pointer(&d[0])
	case []int16:
		p = unsafe.Pointer(&d[0])
	case []uint16:
		p = unsafe.Pointer(&d[0])
	case []int32:
		p = unsafe.Pointer(&d[0])
	case []uint32:
		p = unsafe.Pointer(&d[0])
	case []int64:
		p = unsafe.Pointer(&d[0])
	case []uint64:
		p = unsafe.Pointer(&d[0])
	case []bool:
		p = unsafe.Pointer(&d[0])
	default:
		f16 := t.F16()
		p = unsafe.Pointer(&f16[0])
	}
	return unsafe.Slice((*byte)(p), n*es), es, nil
}

// as reinterprets raw bytes as elements of the same size.
func as[T any](b []byte) []T {
	var z T
	sz := int(unsafe.Sizeof(z))
	if len(b) == 0 {
		return nil
	}
	return unsafe.Slice((*T)(unsafe.Pointer(&b[0])), len(b)/sz)
}

// newRaw allocates a zeroed tensor (through ctx, so possibly a recycled
// buffer) and returns it with its bytes.
func newRaw(ctx *runtime.Context, dt tensor.DType, shape []int) (*tensor.Tensor, []byte, error) {
	if dt == tensor.String {
		return nil, nil, fmt.Errorf("string tensors are not supported here")
	}
	t, err := ctx.New(dt, shape)
	if err != nil {
		return nil, nil, err
	}
	b, _, err := raw(t)
	return t, b, err
}

// view returns a tensor sharing t's data with another shape (the caller has
// checked the element count).
func view(t *tensor.Tensor, shape []int) *tensor.Tensor {
	return &tensor.Tensor{DType: t.DType, Shape: shape, Data: t.Data}
}

// axesArg reads axes from input i (opset forms that moved axes to an input)
// or, when that input is absent, from attribute "axes".
func axesArg(n *graph.Node, in []*tensor.Tensor, i int, fromInput bool) ([]int64, bool, error) {
	if fromInput {
		t, err := optional(in, i)
		if err != nil || t == nil {
			return nil, false, err
		}
		a, err := ints(t)
		return a, true, err
	}
	a := n.Attr("axes")
	if a == nil {
		return nil, false, nil
	}
	v, err := n.AttrInts("axes", nil)
	return v, true, err
}

// output returns in[i] for the first candidate i that the kernel may
// overwrite (see runtime.Context.Reusable) and that has the wanted dtype
// and shape, else a new zeroed tensor.
func output(ctx *runtime.Context, in []*tensor.Tensor, dt tensor.DType, shape []int, candidates ...int) (*tensor.Tensor, error) {
	for _, i := range candidates {
		if i < len(in) && in[i] != nil && in[i].DType == dt && tensor.SameShape(in[i].Shape, shape) && ctx.Reusable(i) {
			return in[i], nil
		}
	}
	return ctx.New(dt, shape)
}

// one returns a single output.
func one(t *tensor.Tensor) ([]*tensor.Tensor, error) { return []*tensor.Tensor{t}, nil }
