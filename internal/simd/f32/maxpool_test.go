package f32

import (
	"fmt"
	"math"
	"math/rand"
	"testing"
)

// naiveMaxPool is the window-by-window definition, compared against
// MaxPool2D for every kernel (the assembly's rows and the Go twin's).
func naiveMaxPool(s DWShape, x []float32) []float32 {
	s = s.norm()
	y := make([]float32, s.C*s.OutH*s.OutW)
	for c := 0; c < s.C; c++ {
		for oh := 0; oh < s.OutH; oh++ {
			for ow := 0; ow < s.OutW; ow++ {
				best := float32(math.Inf(-1))
				for kh := 0; kh < s.KH; kh++ {
					for kw := 0; kw < s.KW; kw++ {
						ih, iw := oh*s.StrideH-s.PadT+kh*s.DilH, ow*s.StrideW-s.PadL+kw*s.DilW
						if ih >= 0 && ih < s.InH && iw >= 0 && iw < s.InW {
							v := x[(c*s.InH+ih)*s.InW+iw]
							if v != v || best != best {
								best = float32(math.NaN())
							} else if v > best || (v == 0 && best == 0 && !math.Signbit(float64(v))) {
								best = v
							}
						}
					}
				}
				y[(c*s.OutH+oh)*s.OutW+ow] = best
			}
		}
	}
	return y
}

func sameFloat(a, b float32) bool {
	return math.Float32bits(a) == math.Float32bits(b) || (a != a && b != b)
}

func TestMaxPool2D(t *testing.T) {
	forEachKernel(t, func(t *testing.T) {
		r := rand.New(rand.NewSource(7))
		shapes := []DWShape{
			// ResNet's stem pool, smaller.
			{C: 3, InH: 20, InW: 37, KH: 3, KW: 3, StrideH: 2, StrideW: 2, PadT: 1, PadL: 1, OutH: 10, OutW: 19},
			{C: 2, InH: 9, InW: 9, KH: 2, KW: 2, StrideH: 2, StrideW: 2, OutH: 4, OutW: 4},
			{C: 2, InH: 11, InW: 13, KH: 3, KW: 2, StrideH: 1, StrideW: 1, PadT: 1, OutH: 11, OutW: 12},
			{C: 1, InH: 12, InW: 30, KH: 3, KW: 3, StrideH: 3, StrideW: 3, DilH: 2, DilW: 2, PadT: 2, PadL: 1, OutH: 4, OutW: 10},
			{C: 2, InH: 5, InW: 40, KH: 1, KW: 5, StrideH: 1, StrideW: 4, PadL: 2, OutH: 5, OutW: 10},
			{C: 2, InH: 8, InW: 8, KH: 4, KW: 1, StrideH: 2, StrideW: 1, PadT: 3, OutH: 5, OutW: 8},
		}
		for _, s := range shapes {
			x := randMat(r, s.C*s.InH*s.InW)
			// NaNs and zeros of both signs, which a plain VMAXPS gets wrong.
			for i := range x {
				switch r.Intn(12) {
				case 0:
					x[i] = float32(math.NaN())
				case 1:
					x[i] = float32(math.Copysign(0, -1))
				case 2:
					x[i] = 0
				case 3:
					x[i] = -1 - x[i]*x[i]
				}
			}
			want := naiveMaxPool(s, x)
			for _, split := range []int{s.C, 1} {
				y := randMat(r, len(want))
				for c := 0; c < s.C; c += split {
					MaxPool2D(&s, x, c, min(s.C, c+split), y)
				}
				for i := range want {
					if !sameFloat(y[i], want[i]) {
						t.Fatalf("%+v: [%d] = %v, want %v", s, i, y[i], want[i])
					}
				}
			}
		}
	})
}

// The assembly's max on every pair of special values, and its tail.
func TestMaxRowsSpecials(t *testing.T) {
	vals := []float32{0, float32(math.Copysign(0, -1)), 1, -1, float32(math.Inf(1)), float32(math.Inf(-1)), float32(math.NaN()), 3.5e-45}
	var a, b []float32
	for _, u := range vals {
		for _, v := range vals {
			a, b = append(a, u), append(b, v)
		}
	}
	for _, k := range kernels() {
		if k.maxRows == nil {
			continue
		}
		for _, n := range []int{len(a), 7, 13} {
			got := make([]float32, n)
			k.maxRows(got, 0, a, 0, b, 0, 1, n)
			for i := range got {
				if want := max(a[i], b[i]); !sameFloat(got[i], want) {
					t.Errorf("%s: max(%v, %v) = %v, want %v", k.name, a[i], b[i], got[i], want)
				}
			}
		}
	}
}

func BenchmarkMaxPool2D(b *testing.B) {
	s := DWShape{C: 64, InH: 112, InW: 112, KH: 3, KW: 3, StrideH: 2, StrideW: 2, PadT: 1, PadL: 1, OutH: 56, OutW: 56}
	r := rand.New(rand.NewSource(1))
	x, y := randMat(r, s.C*s.InH*s.InW), make([]float32, s.C*s.OutH*s.OutW)
	prev := active()
	defer current.Store(prev)
	for _, k := range kernels() {
		b.Run(fmt.Sprint(k.name), func(b *testing.B) {
			current.Store(k)
			for i := 0; i < b.N; i++ {
				MaxPool2D(&s, x, 0, s.C, y)
			}
		})
	}
}
