// Package qlinear holds the integer-arithmetic kernels of the runtime, on
// internal/simd/q8:
//
//   - ONNX: QLinearMatMul, MatMulInteger, QLinearConv and ConvInteger (1-d to
//     3-d, groups, depthwise, per-channel weights); exact against the ONNX
//     node tests.
//   - com.microsoft (ONNX Runtime's contrib ops, in its order of operations so
//     that results match it bit for bit): QGemm, QLinearAdd, QLinearMul,
//     QLinearConcat, QLinearGlobalAveragePool, QLinearLeakyRelu and
//     QLinearSigmoid, QLinearAveragePool (no dilations).
//
// Everything is mapped onto q8's one form, uint8 activations times int8
// weights: int8 activations are shifted by XOR 0x80 (value and zero point
// +128), uint8 weights by −128 (value and zero point), which leaves every
// (a−a0)(b−b0) product unchanged. Constant weights are packed once when the
// kernel is built. Convolutions work on an NHWC copy of the image with the
// weights reordered to (kernel offset, input channel): symmetric weights go
// through q8.GemmIndirect (the GEMM reads input pixels through offsets, no
// patch matrix), asymmetric ones through an im2col matrix and q8.Gemm,
// depthwise layers through q8.DWConv; results move back to NCHW with
// q8.TransposeU8.
package qlinear

import (
	"fmt"
	"math"
	"unsafe"

	"github.com/x448/float16"

	"github.com/qtool/qtool/internal/graph"
	"github.com/qtool/qtool/internal/runtime"
	"github.com/qtool/qtool/internal/simd/q8"
	"github.com/qtool/qtool/internal/tensor"
)

func init() {
	for _, dt := range []tensor.DType{tensor.Uint8, tensor.Int8} {
		runtime.Register("", "QLinearMatMul", dt, newQLinearMatMul)
		runtime.Register("", "MatMulInteger", dt, newMatMulInteger)
		runtime.Register("", "QLinearConv", dt, newQLinearConv)
		runtime.Register("", "ConvInteger", dt, newConvInteger)
		runtime.Register(MicrosoftDomain, "QLinearConv", dt, newMSQLinearConv)
	}
}

func input(in []*tensor.Tensor, i int) *tensor.Tensor {
	if i < len(in) {
		return in[i]
	}
	return nil
}

// validate is t.Validate with the common dtypes checked by a type switch:
// Validate formats both types with %T to compare them, which at a dozen
// calls per node was several percent of MobileNetV2's run time.
func validate(t *tensor.Tensor) error {
	ok := false
	switch t.DType {
	case tensor.Uint8:
		_, ok = t.Data.([]uint8)
	case tensor.Int8:
		_, ok = t.Data.([]int8)
	case tensor.Float32:
		_, ok = t.Data.([]float32)
	case tensor.Int32:
		_, ok = t.Data.([]int32)
	}
	if ok {
		if n, err := tensor.NumElements(t.Shape); err == nil && t.Len() == n {
			return nil
		}
	}
	return t.Validate()
}

// int8In checks that input i is present and uint8 or int8.
func int8In(n *graph.Node, in []*tensor.Tensor, i int, what string) (*tensor.Tensor, error) {
	t := input(in, i)
	if t == nil {
		return nil, fmt.Errorf("%v: input %s is missing", n, what)
	}
	if t.DType != tensor.Uint8 && t.DType != tensor.Int8 {
		return nil, fmt.Errorf("%v: input %s is %v, want uint8 or int8", n, what, t.DType)
	}
	if err := validate(t); err != nil {
		return nil, fmt.Errorf("%v: input %s: %v", n, what, err)
	}
	return t, nil
}

// scalesIn reads a scale input (float32 or float16) with 1 or want
// elements; every scale must be finite.
func scalesIn(n *graph.Node, in []*tensor.Tensor, i int, what string, want int) ([]float32, tensor.DType, error) {
	t := input(in, i)
	if t == nil {
		return nil, 0, fmt.Errorf("%v: input %s is missing", n, what)
	}
	if err := validate(t); err != nil {
		return nil, 0, fmt.Errorf("%v: input %s: %v", n, what, err)
	}
	var s []float32
	switch t.DType {
	case tensor.Float32:
		s = t.F32()
	case tensor.Float16:
		for _, v := range t.F16() {
			s = append(s, v.Float32())
		}
	default:
		return nil, 0, fmt.Errorf("%v: input %s is %v, want float32 or float16", n, what, t.DType)
	}
	if len(s) != 1 && len(s) != want {
		return nil, 0, fmt.Errorf("%v: input %s has %d elements, want 1 or %d", n, what, len(s), want)
	}
	for _, v := range s {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return nil, 0, fmt.Errorf("%v: input %s holds %v", n, what, v)
		}
	}
	return s, t.DType, nil
}

// zeroPointsIn reads an optional zero-point input of the given dtype with 1
// or want elements; absent means a single zero.
func zeroPointsIn(n *graph.Node, in []*tensor.Tensor, i int, what string, dt tensor.DType, want int) ([]int32, error) {
	t := input(in, i)
	if t == nil {
		return []int32{0}, nil
	}
	if err := validate(t); err != nil {
		return nil, fmt.Errorf("%v: input %s: %v", n, what, err)
	}
	if t.DType != dt {
		return nil, fmt.Errorf("%v: input %s is %v, want %v", n, what, t.DType, dt)
	}
	if t.Len() != 1 && t.Len() != want {
		return nil, fmt.Errorf("%v: input %s has %d elements, want 1 or %d", n, what, t.Len(), want)
	}
	out := make([]int32, t.Len())
	switch dt {
	case tensor.Uint8:
		for j, v := range t.U8() {
			out[j] = int32(v)
		}
	case tensor.Int8:
		for j, v := range t.I8() {
			out[j] = int32(v)
		}
	}
	return out, nil
}

// multipliers returns sa·sb[j]/sy per column, in the arithmetic of the scale
// dtype: the ONNX reference multiplies the scale tensors as stored, so
// float16 scales round to float16 after each operation.
func multipliers(sa float32, sb []float32, sy float32, dt tensor.DType) []float32 {
	out := make([]float32, len(sb))
	for j, b := range sb {
		if dt == tensor.Float16 {
			p := float16.Fromfloat32(sa * b).Float32()
			out[j] = float16.Fromfloat32(p / sy).Float32()
		} else {
			out[j] = sa * b / sy
		}
	}
	return out
}

// u8Activations returns the activations as uint8 with the zero point to use:
// int8 data is shifted by XOR 0x80 (+128).
func u8Activations(t *tensor.Tensor, zp []int32) ([]uint8, []int32) {
	if t.DType == tensor.Uint8 {
		return t.U8(), zp
	}
	src := t.I8()
	dst := make([]uint8, len(src))
	for i, v := range src {
		dst[i] = uint8(v) ^ 0x80
	}
	z := make([]int32, len(zp))
	for i, v := range zp {
		z[i] = v + 128
	}
	return dst, z
}

// s8Weights returns the weights as int8 with the zero points to use: uint8
// data is shifted by −128 (XOR 0x80 reinterpreted as int8).
func s8Weights(t *tensor.Tensor, zp []int32) ([]int8, []int32) {
	if t.DType == tensor.Int8 {
		return t.I8(), zp
	}
	src := t.U8()
	dst := make([]int8, len(src))
	for i, v := range src {
		dst[i] = int8(v ^ 0x80)
	}
	z := make([]int32, len(zp))
	for i, v := range zp {
		z[i] = v - 128
	}
	return dst, z
}

// gemm runs q8.Gemm over all m rows and n columns, split over the context's
// threads in whole tiles: by columns when there are enough column tiles to
// go round (each thread then streams only its share of the weights), else
// by rows in multiples of the 6-row micro-tile. Results do not depend on
// the split (q8's guarantee).
func gemm(ctx *runtime.Context, m, n int, a []uint8, lda int, a0 int32, pb *q8.PackedB, bz []int32, out q8.Output) {
	threads := 1
	if ctx != nil && ctx.Threads > 1 {
		threads = ctx.Threads
	}
	tiles := (n + q8.ColumnAlign - 1) / q8.ColumnAlign
	if threads == 1 || tiles >= 2*threads || m < 12 {
		ctx.Parallel(tiles, 1, func(lo, hi int) {
			q8.Gemm(m, a, lda, a0, pb, bz, lo*q8.ColumnAlign, min(hi*q8.ColumnAlign, n), out)
		})
		return
	}
	rowGrain := max(6, (m/threads+5)/6*6)
	ctx.Parallel((m+rowGrain-1)/rowGrain, 1, func(lo, hi int) {
		r0, r1 := lo*rowGrain, min(hi*rowGrain, m)
		q8.Gemm(r1-r0, a[r0*lda:], lda, a0, pb, bz, 0, n, rowsFrom(out, r0))
	})
}

// rowsFrom returns the output starting at row r.
func rowsFrom(o q8.Output, r int) q8.Output {
	if o.Q == nil {
		return q8.Output{C32: o.C32[r*o.Ldc:], Ldc: o.Ldc}
	}
	q := *o.Q
	if q.OutU8 != nil {
		q.OutU8 = q.OutU8[r*q.Ldc:]
	} else {
		q.OutS8 = q.OutS8[r*q.Ldc:]
	}
	return q8.Output{Q: &q}
}

// maxElements bounds every buffer a kernel allocates from input shapes, so
// that a hostile shape gives an error instead of an enormous allocation.
const maxElements = 1 << 31

func checkedProduct(dims ...int) (int, error) {
	p := 1
	for _, d := range dims {
		if d < 0 {
			return 0, fmt.Errorf("negative dimension %d", d)
		}
		if d != 0 && p > maxElements/d {
			return 0, fmt.Errorf("size %v too large", dims)
		}
		p *= d
	}
	return p, nil
}

func u8View(s []int8) []uint8 {
	if len(s) == 0 {
		return nil
	}
	return unsafe.Slice((*uint8)(unsafe.Pointer(&s[0])), len(s))
}

func s8View(s []uint8) []int8 {
	if len(s) == 0 {
		return nil
	}
	return unsafe.Slice((*int8)(unsafe.Pointer(&s[0])), len(s))
}
