package tensor

import (
	"errors"
	"fmt"
	"math"
	"sort"
)

// ints returns the integer data widened to int64 (reductions and sorting
// work on the integers: the affine map is monotone, so order and extremes
// of the integers are those of the real values).
func ints(t *Tensor) []int64 {
	out := make([]int64, t.Len())
	switch d := t.Data.(type) {
	case []uint8:
		for i, v := range d {
			out[i] = int64(v)
		}
	case []int8:
		for i, v := range d {
			out[i] = int64(v)
		}
	case []uint16:
		for i, v := range d {
			out[i] = int64(v)
		}
	case []int16:
		for i, v := range d {
			out[i] = int64(v)
		}
	case []int32:
		for i, v := range d {
			out[i] = int64(v)
		}
	}
	return out
}

func fromInts(dt DType, shape []int, v []int64) *Tensor {
	t := MustNew(dt, shape)
	switch d := t.Data.(type) {
	case []uint8:
		for i, x := range v {
			d[i] = uint8(x)
		}
	case []int8:
		for i, x := range v {
			d[i] = int8(x)
		}
	case []uint16:
		for i, x := range v {
			d[i] = uint16(x)
		}
	case []int16:
		for i, x := range v {
			d[i] = int16(x)
		}
	case []int32:
		for i, x := range v {
			d[i] = int32(x)
		}
	}
	return t
}

var errEmpty = errors.New("reduction over an empty tensor")

// Max is max() (full reduction): a 0-d quantized tensor with the same
// qparams. Per-channel tensors are refused, as in PyTorch.
func (q *QTensor) Max() (*QTensor, error) { return q.extreme("max", true) }

// Min is min() (full reduction).
func (q *QTensor) Min() (*QTensor, error) { return q.extreme("min", false) }

func (q *QTensor) extreme(op string, isMax bool) (*QTensor, error) {
	if q.PerChannel() {
		return nil, fmt.Errorf("%s: %w", op, ErrPerChannel)
	}
	v := ints(q.Data)
	if len(v) == 0 {
		return nil, fmt.Errorf("%s: %w", op, errEmpty)
	}
	m := v[0]
	for _, x := range v[1:] {
		if (isMax && x > m) || (!isMax && x < m) {
			m = x
		}
	}
	return q.withData(fromInts(q.Data.DType, []int{}, []int64{m})), nil
}

// normDims sorts and de-duplicates reduction dims; nil or empty means all.
func normDims(dims []int, rank int) ([]bool, error) {
	red := make([]bool, rank)
	if len(dims) == 0 {
		for i := range red {
			red[i] = true
		}
		return red, nil
	}
	for _, d := range dims {
		a, err := normAxis(d, rank)
		if err != nil {
			return nil, err
		}
		if red[a] {
			return nil, fmt.Errorf("dim %d repeated", d)
		}
		red[a] = true
	}
	return red, nil
}

// Mean is mean(dims, keepdim) with PyTorch 1.13's two paths, both keeping
// the input's scale and zero point:
//   - the reduced dims are the innermost ones (or all dims): the integers
//     of each group are summed exactly, and the result is
//     nearbyint(float32(sum) / float32(N)) (qmean_inner_dim_kernel);
//   - otherwise: dequantize, sum in float32 in torch's order (torchSum),
//     divide by N in float32 and quantize with RuleTorch (the reference
//     path).
//
// Per-channel tensors are refused, as in PyTorch.
func (q *QTensor) Mean(dims []int, keepdim bool) (*QTensor, error) {
	if q.PerChannel() {
		return nil, fmt.Errorf("mean: %w", ErrPerChannel)
	}
	shape := q.Data.Shape
	red, err := normDims(dims, len(shape))
	if err != nil {
		return nil, fmt.Errorf("mean: %w", err)
	}
	var outShape []int
	inner := true // reduced dims form a suffix
	seen := false
	for i, r := range red {
		if r {
			seen = true
			if keepdim {
				outShape = append(outShape, 1)
			}
		} else {
			if seen {
				inner = false
			}
			outShape = append(outShape, shape[i])
		}
	}
	if outShape == nil {
		outShape = []int{}
	}
	if inner {
		return q.meanInner(red, outShape)
	}
	return q.meanFloat(red, outShape)
}

func (q *QTensor) meanInner(red []bool, outShape []int) (*QTensor, error) {
	n := 1
	for i, r := range red {
		if r {
			n *= q.Data.Shape[i]
		}
	}
	v := ints(q.Data)
	groups := 1
	if n > 0 {
		groups = len(v) / n
	}
	out := make([]int64, groups)
	for g := range out {
		var s int64
		for _, x := range v[g*n : g*n+n] {
			s += x
		}
		// float(x_sum) / N: both operands become float32; the quotient is
		// NaN for N = 0, stored as the integer type's conversion of NaN.
		y := float32(s) / float32(n)
		out[g] = int64(math.RoundToEven(float64(y)))
	}
	if n == 0 {
		return nil, fmt.Errorf("mean: %w", errEmpty)
	}
	return q.withData(fromInts(q.Data.DType, outShape, out)), nil
}

func (q *QTensor) meanFloat(red []bool, outShape []int) (*QTensor, error) {
	shape := q.Data.Shape
	n := 1
	for i, r := range red {
		if r {
			n *= shape[i]
		}
	}
	if n == 0 {
		return nil, fmt.Errorf("mean: %w", errEmpty)
	}
	sums := torchSum(q.Dequantize().F32(), shape, red)
	for i := range sums {
		sums[i] /= float32(n)
	}
	out := MustNew(q.Data.DType, outShape)
	quantizeRun(q.Data.DType, out.Data, 0, sums, q.Scales[0], q.ZeroPoints[0], RuleTorch)
	return q.withData(out), nil
}

// Sort is sort(dim, descending): values (same qparams) and int64 indices.
// The sort is stable, as PyTorch's CPU sort.
func (q *QTensor) Sort(dim int, descending bool) (*QTensor, []int64, error) {
	if q.PerChannel() {
		return nil, nil, fmt.Errorf("sort: %w", ErrPerChannel)
	}
	return q.sortK(dim, -1, descending, "sort")
}

// TopK is topk(k, dim, largest, sorted=True): the k largest (or smallest)
// values along dim in order, with their indices. Among equal values the
// lower index comes first.
func (q *QTensor) TopK(k, dim int, largest bool) (*QTensor, []int64, error) {
	if q.PerChannel() {
		return nil, nil, fmt.Errorf("topk: %w", ErrPerChannel)
	}
	if k < 0 {
		return nil, nil, fmt.Errorf("topk: k %d is negative", k)
	}
	return q.sortK(dim, k, largest, "topk")
}

func (q *QTensor) sortK(dim, k int, desc bool, op string) (*QTensor, []int64, error) {
	shape := q.Data.Shape
	r := len(shape)
	if r == 0 {
		if k > 1 {
			return nil, nil, fmt.Errorf("%s: k %d out of range for a scalar", op, k)
		}
		c := q.Clone()
		if k == 0 {
			return q.withData(MustNew(q.Data.DType, []int{})), nil, nil
		}
		return c, []int64{0}, nil
	}
	d, err := normAxis(dim, r)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", op, err)
	}
	size := shape[d]
	if k < 0 {
		k = size
	}
	if k > size {
		return nil, nil, fmt.Errorf("%s: k %d out of range for dim of size %d", op, k, size)
	}
	outer, inner := outerInner(shape, d)
	v := ints(q.Data)
	outShape := append([]int(nil), shape...)
	outShape[d] = k
	vals := make([]int64, outer*k*inner)
	idx := make([]int64, outer*k*inner)
	perm := make([]int, size)
	for o := 0; o < outer; o++ {
		for in := 0; in < inner; in++ {
			base := o*size*inner + in
			for i := range perm {
				perm[i] = i
			}
			sort.SliceStable(perm, func(a, b int) bool {
				x, y := v[base+perm[a]*inner], v[base+perm[b]*inner]
				if desc {
					return x > y
				}
				return x < y
			})
			for j := 0; j < k; j++ {
				p := o*k*inner + j*inner + in
				vals[p] = v[base+perm[j]*inner]
				idx[p] = int64(perm[j])
			}
		}
	}
	return q.withData(fromInts(q.Data.DType, outShape, vals)), idx, nil
}
