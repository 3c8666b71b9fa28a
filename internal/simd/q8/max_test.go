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

// TestSumPixels checks every path against the definition: channel counts
// around the eight-channel step, odd and even pixel counts, all-255 bytes
// (the largest sums), both signednesses, sums added to what acc held.
func TestSumPixels(t *testing.T) {
	rnd := rand.New(rand.NewSource(13))
	for _, s := range [][2]int{{1, 1}, {2, 8}, {3, 9}, {49, 1280}, {7, 17}, {4096, 24}} {
		n, c := s[0], s[1]
		for _, signed := range []bool{false, true} {
			img := make([]uint8, n*c)
			rnd.Read(img)
			if n > 100 {
				for i := range img {
					img[i] = 0xff
				}
			}
			init := make([]int32, c)
			want := make([]int32, c)
			for ch := range init {
				init[ch] = int32(rnd.Intn(1000) - 500)
				want[ch] = init[ch]
				for p := 0; p < n; p++ {
					if signed {
						want[ch] += int32(int8(img[p*c+ch]))
					} else {
						want[ch] += int32(img[p*c+ch])
					}
				}
			}
			for _, v := range paths(t) {
				withISA(t, v, func() {
					acc := append([]int32(nil), init...)
					SumPixels(acc, img, n, c, signed)
					for ch := range acc {
						if acc[ch] != want[ch] {
							t.Fatalf("%dx%d signed=%v %v: acc[%d] = %d, want %d", n, c, signed, v, ch, acc[ch], want[ch])
						}
					}
				})
			}
		}
	}
}
