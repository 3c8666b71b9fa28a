package f32

import (
	"fmt"
	"math"
	"math/rand"
	"testing"
)

// SgemmTransAPackedB is SgemmPackedA in the other orientation: Cᵀ = Aᵀ·Wᵀ
// with W's row bias as a column bias must equal SgemmPackedA's C = W·A
// transposed, bit for bit (SgemmPackedA is checked against float64 in
// TestSgemmPacked), for every column split, never touching columns outside
// the call's range.
func TestSgemmTransAPackedB(t *testing.T) {
	forEachKernel(t, func(t *testing.T) {
		r := rand.New(rand.NewSource(5))
		// m = output channels, n = pixels, k = depth: 7×7 and 14×14 maps,
		// a depth past one cache block, and ragged everything.
		for _, sz := range [][3]int{{64, 49, 576}, {40, 196, 33}, {96, 49, 1100}, {13, 9, 7}, {33, 1, 20}} {
			m, n, k := sz[0], sz[1], sz[2]
			w, col := randMat(r, m*k), randMat(r, k*n)
			pa, pb := PackA(false, m, k, w, k), PackB(true, k, m, w, k)
			for _, base := range epilogues {
				ep := base
				if r.Intn(2) == 0 {
					ep.RowBias = randMat(r, m)
				}
				c0 := randMat(r, m*n)
				want := append([]float32(nil), c0...)
				SgemmPackedA(pa, 0, m, n, col, n, want, n, ep)
				epT := ep
				epT.RowBias, epT.ColBias = nil, ep.RowBias
				for _, sp := range splits(r, m) {
					cT := make([]float32, n*m)
					for i := 0; i < m; i++ {
						for j := 0; j < n; j++ {
							cT[j*m+i] = c0[i*n+j]
						}
					}
					for x := 0; x+1 < len(sp); x++ {
						before := append([]float32(nil), cT...)
						SgemmTransAPackedB(n, col, n, pb, sp[x], sp[x+1], cT, m, epT)
						for i := range cT {
							if (i%m < sp[x] || i%m >= sp[x+1]) && math.Float32bits(cT[i]) != math.Float32bits(before[i]) {
								t.Fatalf("%v cols %d..%d wrote C[%d]", sz, sp[x], sp[x+1], i)
							}
						}
					}
					got := make([]float32, m*n)
					for i := 0; i < m; i++ {
						for j := 0; j < n; j++ {
							got[i*n+j] = cT[j*m+i]
						}
					}
					assertBits(t, fmt.Sprintf("%v %+v split %v", sz, base, sp), want, got)
				}
			}
		}
	})
}
