package q8

import (
	"math/rand"
	"testing"
)

// TestMaxBytes checks every path against the definition on random bytes,
// both orders, lengths around the 32-byte vector, with the bytes past len(dst)
// left alone.
func TestMaxBytes(t *testing.T) {
	rnd := rand.New(rand.NewSource(11))
	for _, n := range []int{0, 1, 31, 32, 33, 64, 100, 4099} {
		for _, signed := range []bool{false, true} {
			src := make([]uint8, n)
			orig := make([]uint8, n+8)
			rnd.Read(src)
			rnd.Read(orig)
			if n > 2 {
				// The extremes of both orders.
				orig[0], src[0], orig[1], src[1] = 0x7f, 0x80, 0xff, 0x00
			}
			for _, v := range paths(t) {
				withISA(t, v, func() {
					dst := append([]uint8(nil), orig...)
					MaxBytes(dst[:n], src, signed)
					for i := range dst {
						want := orig[i]
						if i < n {
							if signed {
								want = uint8(max(int8(orig[i]), int8(src[i])))
							} else {
								want = max(orig[i], src[i])
							}
						}
						if dst[i] != want {
							t.Fatalf("n=%d signed=%v %v: dst[%d] = %d, want %d", n, signed, v, i, dst[i], want)
						}
					}
				})
			}
		}
	}
}
