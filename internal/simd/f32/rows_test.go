package f32

import (
	"math"
	"math/rand"
	"testing"
)

// CopyRows and GatherRows2 against the definition for every kernel, on
// widths around the vector lengths, never writing outside the block.
func TestCopyRowsGatherRows2(t *testing.T) {
	forEachKernel(t, func(t *testing.T) {
		r := rand.New(rand.NewSource(9))
		for _, n := range []int{1, 7, 8, 14, 16, 17, 31, 33} {
			for _, step := range []int{1, 2} {
				rows, ss, ds := 5, step*n+3, n+2
				src := randMat(r, (rows-1)*ss+step*(n-1)+1)
				dst := randMat(r, (rows-1)*ds+n)
				before := append([]float32(nil), dst...)
				if step == 1 {
					CopyRows(dst, ds, src, ss, rows, n)
				} else {
					GatherRows2(dst, ds, src, ss, rows, n)
				}
				for i := range dst {
					want := before[i]
					if row, col := i/ds, i%ds; col < n {
						want = src[row*ss+step*col]
					}
					if math.Float32bits(dst[i]) != math.Float32bits(want) {
						t.Fatalf("n=%d step %d: dst[%d] = %v, want %v", n, step, i, dst[i], want)
					}
				}
			}
		}
		for name, f := range map[string]func(){
			"short src":  func() { CopyRows(make([]float32, 20), 5, make([]float32, 19), 5, 4, 5) },
			"short dst":  func() { CopyRows(make([]float32, 19), 5, make([]float32, 20), 5, 4, 5) },
			"gather src": func() { GatherRows2(make([]float32, 8), 4, make([]float32, 10), 4, 2, 4) },
		} {
			func() {
				defer func() {
					if recover() == nil {
						t.Errorf("%s: no panic", name)
					}
				}()
				f()
			}()
		}
	})
}
