package tensor

import (
	"fmt"
)

// The view operations below follow PyTorch 1.13's results for quantized
// tensors (shape, values, qparams), returning dense copies. Which of them
// refuse per-channel tensors was determined by running torch:
//   - as_strided, expand, transpose, permute: refused ("Setting strides is
//     possible only on uniformly quantized tensor").
//   - view/reshape, flatten: torch accepts them but keeps the channel axis
//     index unchanged, so when the channel dimension is merged or moved the
//     result is inconsistent and its dequantize() fails ("length of scales
//     must equal to channel"). We refuse those cases up front and accept the
//     ones where the channel dimension survives.
//   - select: selecting on the channel axis gives a per-tensor tensor with
//     that channel's qparams, on an earlier dim the axis moves down by one;
//     on a later dim PyTorch also decrements the axis and cannot use the
//     result, so we refuse.
//   - slicing: accepted; slicing the channel axis slices the scales, and a
//     single remaining channel makes the result per-tensor (as in PyTorch);
//     an empty channel slice is refused (PyTorch fails on it).

// stridedCopy fills dst (row-major, the given shape) from src read with
// strides and offset (in elements), walking the view like an odometer so
// that no index table is allocated.
func stridedCopy[T any](dst, src []T, shape, strides []int, offset int) {
	if len(dst) == 0 {
		return
	}
	pos := make([]int, len(shape))
	cur := offset
	for i := range dst {
		dst[i] = src[cur]
		for d := len(shape) - 1; d >= 0; d-- {
			pos[d]++
			cur += strides[d]
			if pos[d] < shape[d] {
				break
			}
			cur -= strides[d] * shape[d]
			pos[d] = 0
		}
	}
}

func (q *QTensor) viewOf(shape, strides []int, offset int) (*QTensor, error) {
	out, err := New(q.Data.DType, shape)
	if err != nil {
		return nil, err
	}
	switch d := out.Data.(type) {
	case []uint8:
		stridedCopy(d, q.Data.U8(), shape, strides, offset)
	case []int8:
		stridedCopy(d, q.Data.I8(), shape, strides, offset)
	case []uint16:
		stridedCopy(d, q.Data.U16(), shape, strides, offset)
	case []int16:
		stridedCopy(d, q.Data.I16(), shape, strides, offset)
	case []int32:
		stridedCopy(d, q.Data.I32(), shape, strides, offset)
	}
	return q.withData(out), nil
}

func (q *QTensor) refusePerChannel(op string) error {
	if q.PerChannel() {
		return fmt.Errorf("%s: %w (PyTorch: setting strides is possible only on uniformly quantized tensors)", op, ErrPerChannel)
	}
	return nil
}

// inferShape resolves one -1 in shape for n elements.
func inferShape(shape []int, n int) ([]int, error) {
	out := append([]int(nil), shape...)
	neg := -1
	p := 1
	for i, d := range out {
		switch {
		case d == -1 && neg < 0:
			neg = i
		case d < 0:
			return nil, fmt.Errorf("invalid shape %v", shape)
		default:
			p *= d
		}
	}
	if neg >= 0 {
		if p == 0 || n%p != 0 {
			return nil, fmt.Errorf("shape %v is invalid for %d elements", shape, n)
		}
		out[neg] = n / p
		p *= out[neg]
	}
	if p != n {
		return nil, fmt.Errorf("shape %v is invalid for %d elements", shape, n)
	}
	return out, nil
}

// Reshape is view()/reshape(): same elements in row-major order, one -1
// allowed. A per-channel tensor may be reshaped only where the dimensions up
// to and including the channel axis are unchanged.
func (q *QTensor) Reshape(shape ...int) (*QTensor, error) {
	ns, err := inferShape(shape, q.Data.Len())
	if err != nil {
		return nil, fmt.Errorf("reshape: %w", err)
	}
	if q.PerChannel() {
		a := q.Axis
		if len(ns) <= a || !SameShape(ns[:a+1], q.Data.Shape[:a+1]) {
			return nil, fmt.Errorf("reshape %v to %v: per-channel axis %d would not survive: %w", q.Data.Shape, ns, a, ErrPerChannel)
		}
	}
	out := q.Clone()
	out.Data.Shape = ns
	return out, nil
}

// View is Reshape.
func (q *QTensor) View(shape ...int) (*QTensor, error) { return q.Reshape(shape...) }

// Flatten merges dims start..end (negative counts from the end), as
// torch.flatten. For per-channel tensors only a merge after the channel
// axis is allowed (PyTorch accepts the others but produces a tensor whose
// axis no longer matches its scales).
func (q *QTensor) Flatten(start, end int) (*QTensor, error) {
	r := q.Data.Rank()
	if r == 0 {
		return q.Reshape(1)
	}
	s, err := normAxis(start, r)
	if err != nil {
		return nil, fmt.Errorf("flatten: %w", err)
	}
	e, err := normAxis(end, r)
	if err != nil {
		return nil, fmt.Errorf("flatten: %w", err)
	}
	if s > e {
		return nil, fmt.Errorf("flatten: start dim %d after end dim %d", start, end)
	}
	var ns []int
	ns = append(ns, q.Data.Shape[:s]...)
	m := 1
	for _, d := range q.Data.Shape[s : e+1] {
		m *= d
	}
	ns = append(ns, m)
	ns = append(ns, q.Data.Shape[e+1:]...)
	out := q.Clone()
	// PyTorch keeps the axis index, so only an axis before the merged range
	// stays meaningful.
	if q.PerChannel() && s < e && q.Axis >= s {
		return nil, fmt.Errorf("flatten: dims %d..%d at or before per-channel axis %d: %w", s, e, q.Axis, ErrPerChannel)
	}
	out.Data.Shape = ns
	return out, nil
}

// AsStrided is as_strided(size, stride, storage_offset) over the dense data.
func (q *QTensor) AsStrided(size, stride []int, offset int) (*QTensor, error) {
	if err := q.refusePerChannel("as_strided"); err != nil {
		return nil, err
	}
	if len(size) != len(stride) {
		return nil, fmt.Errorf("as_strided: %d sizes but %d strides", len(size), len(stride))
	}
	if offset < 0 {
		return nil, fmt.Errorf("as_strided: negative offset %d", offset)
	}
	n, err := NumElements(size)
	if err != nil {
		return nil, fmt.Errorf("as_strided: %w", err)
	}
	if n > 0 {
		last := offset
		for i, d := range size {
			if stride[i] < 0 {
				return nil, fmt.Errorf("as_strided: negative stride %d", stride[i])
			}
			last += (d - 1) * stride[i]
		}
		if last >= q.Data.Len() {
			return nil, fmt.Errorf("as_strided: size %v stride %v offset %d reaches element %d of %d", size, stride, offset, last, q.Data.Len())
		}
	}
	return q.viewOf(size, stride, offset)
}

// Expand broadcasts size-1 dims to the given shape (-1 keeps a dim), as
// torch expand.
func (q *QTensor) Expand(shape ...int) (*QTensor, error) {
	if err := q.refusePerChannel("expand"); err != nil {
		return nil, err
	}
	r := q.Data.Rank()
	if len(shape) < r {
		return nil, fmt.Errorf("expand: shape %v has fewer dims than %v", shape, q.Data.Shape)
	}
	src := Strides(q.Data.Shape)
	ns := make([]int, len(shape))
	st := make([]int, len(shape))
	lead := len(shape) - r
	for i, d := range shape {
		if i < lead {
			if d < 0 {
				return nil, fmt.Errorf("expand: -1 not allowed for new leading dim %d", i)
			}
			ns[i], st[i] = d, 0
			continue
		}
		od := q.Data.Shape[i-lead]
		switch {
		case d == -1 || d == od:
			ns[i], st[i] = od, src[i-lead]
		case od == 1 && d >= 0:
			ns[i], st[i] = d, 0
		default:
			return nil, fmt.Errorf("expand: cannot expand %v to %v", q.Data.Shape, shape)
		}
	}
	return q.viewOf(ns, st, 0)
}

// Select is select(dim, index) (index may be negative).
func (q *QTensor) Select(dim, index int) (*QTensor, error) {
	r := q.Data.Rank()
	d, err := normAxis(dim, r)
	if err != nil {
		return nil, fmt.Errorf("select: %w", err)
	}
	size := q.Data.Shape[d]
	if index < -size || index >= size {
		return nil, fmt.Errorf("select: index %d out of range for dim %d of size %d", index, dim, size)
	}
	if index < 0 {
		index += size
	}
	st := Strides(q.Data.Shape)
	ns := append(append([]int(nil), q.Data.Shape[:d]...), q.Data.Shape[d+1:]...)
	nst := append(append([]int(nil), st[:d]...), st[d+1:]...)
	out, err := q.viewOf(ns, nst, index*st[d])
	if err != nil {
		return nil, err
	}
	if q.PerChannel() && d > q.Axis {
		// PyTorch decrements the axis for every other dim, which leaves a
		// tensor it cannot dequantize when dim > axis.
		return nil, fmt.Errorf("select: dim %d after per-channel axis %d: %w", d, q.Axis, ErrPerChannel)
	}
	if q.PerChannel() {
		switch {
		case d == q.Axis:
			out.Scales = []float32{q.Scales[index]}
			out.ZeroPoints = []int32{q.ZeroPoints[index]}
			out.Axis = 0
			out.Scheme = PerTensorAffine
			if q.Scheme == PerChannelSymmetric {
				out.Scheme = PerTensorSymmetric
			}
		case d < q.Axis:
			out.Axis--
		}
	}
	return out, nil
}

// Slice is Python's x[..., start:stop:step, ...] on dim: negative indices
// count from the end, out-of-range bounds are clamped, step must be > 0 (as
// in PyTorch).
func (q *QTensor) Slice(dim, start, stop, step int) (*QTensor, error) {
	r := q.Data.Rank()
	d, err := normAxis(dim, r)
	if err != nil {
		return nil, fmt.Errorf("slice: %w", err)
	}
	if step <= 0 {
		return nil, fmt.Errorf("slice: step must be positive, got %d", step)
	}
	size := q.Data.Shape[d]
	clampIdx := func(i int) int {
		if i < 0 {
			i += size
		}
		return min(max(i, 0), size)
	}
	s, e := clampIdx(start), clampIdx(stop)
	n := 0
	if e > s {
		n = (e - s + step - 1) / step
	}
	st := Strides(q.Data.Shape)
	ns := append([]int(nil), q.Data.Shape...)
	ns[d] = n
	nst := append([]int(nil), st...)
	nst[d] = st[d] * step
	out, err := q.viewOf(ns, nst, s*st[d])
	if err != nil {
		return nil, err
	}
	if q.PerChannel() && d == q.Axis {
		if n == 0 {
			return nil, fmt.Errorf("slice: no channel left on per-channel axis %d: %w", d, ErrPerChannel)
		}
		if n == 1 {
			// PyTorch turns a one-channel slice into a per-tensor tensor.
			out.Scales = []float32{q.Scales[s]}
			out.ZeroPoints = []int32{q.ZeroPoints[s]}
			out.Axis = 0
			out.Scheme = PerTensorAffine
			if q.Scheme == PerChannelSymmetric {
				out.Scheme = PerTensorSymmetric
			}
			return out, nil
		}
		out.Scales = out.Scales[:0]
		out.ZeroPoints = out.ZeroPoints[:0]
		for i := 0; i < n; i++ {
			out.Scales = append(out.Scales, q.Scales[s+i*step])
			out.ZeroPoints = append(out.ZeroPoints, q.ZeroPoints[s+i*step])
		}
	}
	return out, nil
}

// Transpose swaps two dims.
func (q *QTensor) Transpose(d0, d1 int) (*QTensor, error) {
	r := q.Data.Rank()
	a, err := normAxis(d0, r)
	if err != nil {
		return nil, fmt.Errorf("transpose: %w", err)
	}
	b, err := normAxis(d1, r)
	if err != nil {
		return nil, fmt.Errorf("transpose: %w", err)
	}
	perm := make([]int, r)
	for i := range perm {
		perm[i] = i
	}
	perm[a], perm[b] = perm[b], perm[a]
	return q.permute("transpose", perm)
}

// Permute reorders dims.
func (q *QTensor) Permute(dims ...int) (*QTensor, error) {
	r := q.Data.Rank()
	if len(dims) != r {
		return nil, fmt.Errorf("permute: %d dims for rank %d", len(dims), r)
	}
	perm := make([]int, r)
	seen := make([]bool, r)
	for i, d := range dims {
		a, err := normAxis(d, r)
		if err != nil {
			return nil, fmt.Errorf("permute: %w", err)
		}
		if seen[a] {
			return nil, fmt.Errorf("permute: dim %d repeated", d)
		}
		seen[a] = true
		perm[i] = a
	}
	return q.permute("permute", perm)
}

func (q *QTensor) permute(op string, perm []int) (*QTensor, error) {
	if err := q.refusePerChannel(op); err != nil {
		return nil, err
	}
	st := Strides(q.Data.Shape)
	ns := make([]int, len(perm))
	nst := make([]int, len(perm))
	for i, p := range perm {
		ns[i], nst[i] = q.Data.Shape[p], st[p]
	}
	return q.viewOf(ns, nst, 0)
}

// Resize is resize_: per-tensor only; the first min(old, new) elements keep
// their integers, new elements are 0 (PyTorch leaves them uninitialized).
func (q *QTensor) Resize(shape ...int) error {
	if q.PerChannel() {
		return fmt.Errorf("resize_: %w (PyTorch: can only resize quantized tensors with per-tensor schemes)", ErrPerChannel)
	}
	out, err := New(q.Data.DType, shape)
	if err != nil {
		return fmt.Errorf("resize_: %w", err)
	}
	n := min(out.Len(), q.Data.Len())
	head := []int{n}
	switch d := out.Data.(type) {
	case []uint8:
		stridedCopy(d[:n], q.Data.U8(), head, []int{1}, 0)
	case []int8:
		stridedCopy(d[:n], q.Data.I8(), head, []int{1}, 0)
	case []uint16:
		stridedCopy(d[:n], q.Data.U16(), head, []int{1}, 0)
	case []int16:
		stridedCopy(d[:n], q.Data.I16(), head, []int{1}, 0)
	case []int32:
		stridedCopy(d[:n], q.Data.I32(), head, []int{1}, 0)
	}
	q.Data = out
	return nil
}
