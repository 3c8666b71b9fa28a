package tensor

import "fmt"

// BroadcastF32 returns the float32 values of t broadcast (numpy-style,
// trailing dims aligned) to shape, prod(shape) of them in row-major
// order: t's own data when it already has that shape, a new slice
// otherwise.
func BroadcastF32(t *Tensor, shape []int) ([]float32, error) {
	size, err := NumElements(shape)
	if err != nil {
		return nil, err
	}
	if t.Len() == size && (t.Rank() == len(shape) || t.Rank() == 1 && len(shape) == 1) {
		return t.F32(), nil
	}
	if t.Rank() > len(shape) {
		return nil, fmt.Errorf("%v does not broadcast to %v", t.Shape, shape)
	}
	off := len(shape) - t.Rank()
	for i, d := range t.Shape {
		if d != 1 && d != shape[off+i] {
			return nil, fmt.Errorf("%v does not broadcast to %v", t.Shape, shape)
		}
	}
	strides := Strides(t.Shape)
	src := t.F32()
	out := make([]float32, size)
	idx := make([]int, len(shape))
	for o := range out {
		si := 0
		for i, d := range t.Shape {
			if d != 1 {
				si += idx[off+i] * strides[i]
			}
		}
		out[o] = src[si]
		for d := len(shape) - 1; d >= 0; d-- {
			idx[d]++
			if idx[d] < shape[d] {
				break
			}
			idx[d] = 0
		}
	}
	return out, nil
}
