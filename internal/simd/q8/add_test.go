package q8

import (
	"math/rand"
	"testing"
)

// TestAddU8Paths compares every path with the Go twin bit for bit on random
// data, broadcast operands, lengths around the vector width and scales
// whose ratios overflow the int32 conversion.
func TestAddU8Paths(t *testing.T) {
	rnd := rand.New(rand.NewSource(9))
	for ci := 0; ci < 60; ci++ {
		n := []int{1, 7, 8, 9, 33, 1000}[ci%6]
		signed := ci%2 == 1
		p := randParams(rnd, 0.1, 1e-3, signed)
		if ci%10 == 0 {
			p.ScaleC = 1e-12 // ratios far beyond int32: the saturating path
		}
		la, lb := n, n
		switch ci % 3 {
		case 1:
			la = 1
		case 2:
			lb = 1
		}
		a, b := make([]uint8, la), make([]uint8, lb)
		rnd.Read(a)
		rnd.Read(b)
		var want []uint8
		for _, v := range paths(t) {
			withISA(t, v, func() {
				got := make([]uint8, n)
				AddU8(got, a, b, p)
				if want == nil {
					want = got
					return
				}
				for i := range got {
					if got[i] != want[i] {
						t.Fatalf("case %d %v: y[%d] = %d, generic %d", ci, v, i, got[i], want[i])
					}
				}
			})
		}
	}
}
