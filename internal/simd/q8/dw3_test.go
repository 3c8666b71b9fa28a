package q8

import (
	"fmt"
	"math/rand"
	"testing"
)

// TestDWConv3x3 checks the column-image kernel against the definition of a
// padded 3×3 depthwise convolution: odd and tiny images, both strides,
// channel counts around the 64- and 32-channel chunks, uint8 and int8
// output over the full range (saturating narrowing) and with a clamp, scales
// small and past 0.5, and a band of output rows.
func TestDWConv3x3(t *testing.T) {
	rnd := rand.New(rand.NewSource(12))
	for _, s := range []struct{ h, w, c, stride int }{{1, 1, 1, 1}, {2, 3, 16, 1}, {5, 7, 32, 1}, {6, 6, 64, 2}, {7, 9, 96, 2}, {4, 5, 144, 1}, {9, 4, 200, 2}, {3, 3, 65, 1}} {
		for _, xz := range []int32{0, 131, 255} {
			name := fmt.Sprintf("%dx%dx%d_s%d_xz%d", s.h, s.w, s.c, s.stride, xz)
			h, w, c, st := s.h, s.w, s.c, s.stride
			x := make([]uint8, h*w*c)
			rnd.Read(x)
			wt := make([]int8, c*9)
			for i := range wt {
				wt[i] = int8(rnd.Intn(256) - 128)
			}
			// With xz = 131 the weights have zero points too, so W − W0
			// spans −255..255: only the avx2 kernel (words) takes those.
			wz := make([]int32, c)
			if xz == 131 {
				for ch := range wz {
					wz[ch] = int32(rnd.Intn(256) - 128)
				}
			}
			oh, ow := (h-1)/st+1, (w-1)/st+1
			want := make([]int32, oh*ow*c)
			for y := 0; y < oh; y++ {
				for i := 0; i < ow; i++ {
					for ch := 0; ch < c; ch++ {
						var acc int32
						for t := 0; t < 9; t++ {
							r, q := y*st-1+t/3, i*st-1+t%3
							v := xz
							if r >= 0 && r < h && q >= 0 && q < w {
								v = int32(x[(r*w+q)*c+ch])
							}
							acc += (v - xz) * (int32(wt[ch*9+t]) - wz[ch])
						}
						want[(y*ow+i)*c+ch] = acc
					}
				}
			}
			scale := make([]float32, c)
			bias := make([]int32, c)
			for ch := range scale {
				scale[ch] = float32(rnd.Float64()*0.01 + 0.001)
				if xz == 255 {
					// Scales past 0.5: the clamping kernels even for
					// the full output range.
					scale[ch] = float32(rnd.Float64()*0.6 + 0.3)
				}
				bias[ch] = int32(rnd.Intn(4000) - 2000)
			}
			d := PackDW(c, 9, wt, wz)
			// The twin: DWConv's generic path over a bordered copy with
			// an offset table, which DWConv3x3 must match byte for byte.
			img, offs := dw3Twin(x, h, w, c, st, 0, oh, uint8(xz))
			twin := make([]uint8, oh*ow*c)
			withISA(t, variant{p: isaGeneric}, func() {
				DWConv(oh*ow, img, offs, xz, d, Output{Q: &Requant{Bias: bias, Scale: scale, OutZero: 200, OutU8: twin, Ldc: c}})
			})
			y0, y1 := 0, oh
			if oh > 2 {
				y0, y1 = 1, oh-1
			}
			ran, ranAVX2, ranARM := false, false, 0
			for _, p := range paths(t) {
				withISA(t, p, func() {
					ldc := c + 3
					u := make([]uint8, (y1-y0)*ow*ldc)
					if !DWConv3x3(x, h, w, c, st, xz, d, y0, y1, Output{Q: &Requant{Bias: bias, Scale: scale, OutZero: 7, Min: 3, Max: 250, OutU8: u, Ldc: ldc}}) {
						return
					}
					ran = true
					ranAVX2 = ranAVX2 || p.p == isaAVX2 || p.p == isaAVXVNNI
					if p.p == isaNEON || p.p == isaSDOT {
						ranARM++
					}
					uf := make([]uint8, (y1-y0)*ow*c)
					DWConv3x3(x, h, w, c, st, xz, d, y0, y1, Output{Q: &Requant{Bias: bias, Scale: scale, OutZero: 200, OutU8: uf, Ldc: c}})
					for r := 0; r < (y1-y0)*ow; r++ {
						for ch := 0; ch < c; ch++ {
							if g, w := int32(uf[r*c+ch]), refQuant(want[(y0*ow+r)*c+ch], bias[ch], scale[ch], 200, 0, 255); g != w {
								t.Fatalf("%s %v: full-range u8 out[%d][%d] = %d, want %d", name, p, r, ch, g, w)
							}
							if uf[r*c+ch] != twin[(y0*ow+r)*c+ch] {
								t.Fatalf("%s %v: out[%d][%d] = %d, Go twin %d", name, p, r, ch, uf[r*c+ch], twin[(y0*ow+r)*c+ch])
							}
						}
					}
					sy := make([]int8, (y1-y0)*ow*c)
					DWConv3x3(x, h, w, c, st, xz, d, y0, y1, Output{Q: &Requant{Bias: bias, Scale: scale, OutZero: -5, OutS8: sy, Ldc: c}})
					for r := 0; r < (y1-y0)*ow; r++ {
						for ch := 0; ch < c; ch++ {
							a := want[(y0*ow+r)*c+ch]
							if g, w := int32(u[r*ldc+ch]), refQuant(a, bias[ch], scale[ch], 7, 3, 250); g != w {
								t.Fatalf("%s %v: u8 out[%d][%d] = %d, want %d", name, p, r, ch, g, w)
							}
							if g, w := int32(sy[r*c+ch]), refQuant(a, bias[ch], scale[ch], -5, -128, 127); g != w {
								t.Fatalf("%s %v: s8 out[%d][%d] = %d, want %d", name, p, r, ch, g, w)
							}
						}
						for ch := c; ch < ldc && r < (y1-y0)*ow-1; ch++ {
							if u[r*ldc+ch] != 0 {
								t.Fatalf("%s %v: wrote past channel %d of row %d", name, p, c, r)
							}
						}
					}
				})
			}
			if kernels[isaAVX512VNNI].ok && dw3RowK[0] != nil && d.w3 != nil && !ran {
				t.Fatalf("%s: DWConv3x3 did not run on avx512vnni", name)
			}
			if kernels[isaAVX2].ok && dw3RowA[0] != nil && c%8 == 0 && !ranAVX2 {
				t.Fatalf("%s: DWConv3x3 did not run on avx2 or avxvnni", name)
			}
			// On arm64 every neon and sdot path takes dw3Arm64 (these
			// weights fit int16).
			if armPaths := b2i(kernels[isaNEON].ok) + b2i(kernels[isaSDOT].ok); dw3Arm64 != nil && ranARM != armPaths {
				t.Fatalf("%s: DWConv3x3 ran on %d of %d arm64 paths", name, ranARM, armPaths)
			}
		}
	}
}

// dw3Twin returns DWConv's inputs for DWConv3x3's convolution of the
// h×w×c image x (3×3, padding 1, stride st) over output rows y0..y1: the
// image with one pixel of xz appended, where the padding taps point, and
// the offset table.
func dw3Twin(x []uint8, h, w, c, st, y0, y1 int, xz uint8) (img []uint8, offs []int) {
	ow := (w-1)/st + 1
	img = append(append([]uint8(nil), x...), make([]uint8, c)...)
	fillU8(img[h*w*c:], xz)
	offs = make([]int, (y1-y0)*ow*9)
	for y := y0; y < y1; y++ {
		for i := 0; i < ow; i++ {
			for tp := 0; tp < 9; tp++ {
				r, q := y*st-1+tp/3, i*st-1+tp%3
				o := h * w * c
				if r >= 0 && r < h && q >= 0 && q < w {
					o = (r*w + q) * c
				}
				offs[((y-y0)*ow+i)*9+tp] = o
			}
		}
	}
	return img, offs
}
