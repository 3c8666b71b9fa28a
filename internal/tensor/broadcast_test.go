package tensor

import (
	"slices"
	"testing"
)

func TestBroadcastF32(t *testing.T) {
	for _, c := range []struct {
		in    *Tensor
		shape []int
		want  []float32
	}{
		{FromFloat32([]int{3}, []float32{1, 2, 3}), []int{2, 3}, []float32{1, 2, 3, 1, 2, 3}},
		{FromFloat32([]int{2, 1}, []float32{1, 2}), []int{2, 3}, []float32{1, 1, 1, 2, 2, 2}},
		{FromFloat32([]int{1}, []float32{7}), []int{4}, []float32{7, 7, 7, 7}},
		{FromFloat32([]int{2, 2}, []float32{1, 2, 3, 4}), []int{2, 2}, []float32{1, 2, 3, 4}},
	} {
		got, err := BroadcastF32(c.in, c.shape)
		if err != nil || !slices.Equal(got, c.want) {
			t.Errorf("BroadcastF32(%v to %v) = %v, %v; want %v", c.in.Shape, c.shape, got, err, c.want)
		}
	}
	for _, c := range []struct{ in, shape []int }{{[]int{4}, []int{2, 3}}, {[]int{2, 3}, []int{3}}, {[]int{1}, []int{-1}}} {
		n, _ := NumElements(c.in)
		if _, err := BroadcastF32(FromFloat32(c.in, make([]float32, n)), c.shape); err == nil {
			t.Errorf("BroadcastF32(%v to %v): want an error", c.in, c.shape)
		}
	}
}
