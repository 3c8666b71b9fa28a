package q8

import (
	"fmt"
	"math/rand"
	"testing"
)

// TestDWConv checks the depthwise kernel on every path against the
// definition: random NHWC images, padding taps, channel counts around the
// 16-lane vector, int32 and requantized outputs. Symmetric weights (zero
// points 0, every W − W0 an int8) take the avx512vnni byte-weight kernel,
// whose four-pixel steps and 64-channel chunks the row and channel counts
// straddle.
func TestDWConv(t *testing.T) {
	rnd := rand.New(rand.NewSource(8))
	for _, s := range []struct{ rows, taps, c int }{{1, 1, 1}, {5, 9, 8}, {7, 9, 16}, {3, 25, 17}, {20, 9, 144}, {4, 3, 33}, {3, 9, 300}, {2, 4, 128}, {13, 9, 64}, {9, 9, 96}, {11, 25, 200}} {
		for ci, xz := range []int32{0, 128, 255} {
			sym := ci != 1
			name := fmt.Sprintf("rows%d_taps%d_c%d_xz%d_sym%v", s.rows, s.taps, s.c, xz, sym)
			// 13 pixels and then one of zero points for the padding taps.
			pixels := 13
			img := make([]uint8, (pixels+1)*s.c)
			rnd.Read(img[:pixels*s.c])
			for i := pixels * s.c; i < len(img); i++ {
				img[i] = uint8(xz)
			}
			w := make([]int8, s.c*s.taps)
			for i := range w {
				w[i] = int8(rnd.Intn(256) - 128)
			}
			wz := make([]int32, s.c)
			for i := range wz {
				if !sym {
					wz[i] = int32(rnd.Intn(256) - 128)
				}
			}
			offs := make([]int, s.rows*s.taps)
			want := make([]int32, s.rows*s.c)
			for i := 0; i < s.rows; i++ {
				for tt := 0; tt < s.taps; tt++ {
					o := pixels * s.c
					if rnd.Intn(4) != 0 {
						o = rnd.Intn(pixels) * s.c
					}
					offs[i*s.taps+tt] = o
					for ch := 0; ch < s.c; ch++ {
						x := int32(img[o+ch])
						want[i*s.c+ch] += (x - xz) * (int32(w[ch*s.taps+tt]) - wz[ch])
					}
				}
			}
			scale := make([]float32, s.c)
			bias := make([]int32, s.c)
			for ch := range scale {
				scale[ch] = float32(rnd.Float64()*0.01 + 0.001)
				bias[ch] = int32(rnd.Intn(4000) - 2000)
			}
			d := PackDW(s.c, s.taps, w, wz)
			if sym != (d.w8 != nil) {
				t.Fatalf("%s: byte weights %v", name, d.w8 != nil)
			}
			// The arm64 paths' kernel counts its calls, so a dispatch that
			// stopped reaching it fails here rather than passing on Go.
			ranN, realN, realN16 := false, dwAccN, dwAccN16
			if realN != nil {
				dwAccN = func(acc *int32, base *uint8, offs *int, taps int, w *int32, wstride int, nb int) {
					ranN = true
					realN(acc, base, offs, taps, w, wstride, nb)
				}
				dwAccN16 = func(acc *int32, base *uint8, offs *int, taps int, w *int16, wstride int, nb int) {
					ranN = true
					realN16(acc, base, offs, taps, w, wstride, nb)
				}
			}
			for _, p := range paths(t) {
				withISA(t, p, func() {
					got := make([]int32, s.rows*s.c)
					DWConv(s.rows, img, offs, xz, d, Int32(got, s.c))
					for i := range want {
						if got[i] != want[i] {
							t.Fatalf("%s %v: acc[%d] = %d, want %d", name, p, i, got[i], want[i])
						}
					}
					y := make([]int8, s.rows*s.c)
					DWConv(s.rows, img, offs, xz, d, Output{Q: &Requant{Bias: bias, Scale: scale, OutZero: 5, OutS8: y, Ldc: s.c}})
					for i := range want {
						ch := i % s.c
						if w := refQuant(want[i], bias[ch], scale[ch], 5, -128, 127); int32(y[i]) != w {
							t.Fatalf("%s %v: y[%d] = %d, want %d", name, p, i, y[i], w)
						}
					}
					u := make([]uint8, s.rows*s.c)
					DWConv(s.rows, img, offs, xz, d, Output{Q: &Requant{Bias: bias, Scale: scale, OutZero: 131, Min: 20, Max: 240, OutU8: u, Ldc: s.c}})
					for i := range want {
						ch := i % s.c
						if w := refQuant(want[i], bias[ch], scale[ch], 131, 20, 240); int32(u[i]) != w {
							t.Fatalf("%s %v: u8 y[%d] = %d, want %d", name, p, i, u[i], w)
						}
					}
				})
			}
			dwAccN, dwAccN16 = realN, realN16
			if realN != nil && s.c >= 16 && kernels[isaNEON].ok && !ranN {
				t.Fatalf("%s: dwAccNEON did not run on the neon path", name)
			}
		}
	}
}
