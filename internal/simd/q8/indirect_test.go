package q8

import (
	"fmt"
	"math/rand"
	"testing"
)

// TestGemmIndirect checks the indirect GEMM on every path against the
// definition over the gathered rows: pixels of an NHWC image (channel runs
// that start mid-pixel, as a group's slice does), and a zero-point buffer
// for padding.
func TestGemmIndirect(t *testing.T) {
	rnd := rand.New(rand.NewSource(5))
	for _, s := range []struct{ m, nk, kc, c, n int }{
		{1, 1, 1, 1, 1}, {7, 9, 3, 6, 5}, {13, 9, 64, 64, 64}, {6, 1, 8, 8, 70}, {20, 25, 5, 10, 17}, {50, 4, 33, 40, 129}, {3, 27, 2, 2, 8},
		// Over 512 KB of rows widened to int16: the avx2 path gathers them
		// in more than one block.
		{100, 9, 300, 320, 20},
	} {
		for _, a0 := range []int32{0, 128, 255} {
			name := fmt.Sprintf("m%d_nk%d_kc%d_n%d_a0=%d", s.m, s.nk, s.kc, s.n, a0)
			// The image, then a run of zero points, as the conv kernel lays
			// them out; runs read up to KcPad(kc) bytes.
			pixels := 11
			zoff := pixels * s.c
			img := make([]uint8, zoff+KcPad(s.kc))
			rnd.Read(img[:zoff])
			for i := zoff; i < len(img); i++ {
				img[i] = uint8(a0)
			}
			c0 := s.c - s.kc // channel offset of the run
			ind := make([]int, s.m*s.nk)
			kcp := KcPad(s.kc)
			k := s.nk * kcp
			a := make([]uint8, s.m*k)
			for i := 0; i < s.m; i++ {
				for tt := 0; tt < s.nk; tt++ {
					if rnd.Intn(5) == 0 {
						ind[i*s.nk+tt] = zoff
						copy(a[i*k+tt*kcp:], img[zoff:zoff+s.kc])
						continue
					}
					p := rnd.Intn(pixels)
					if p == pixels-1 && s.kc != KcPad(s.kc) {
						p-- // the run must have KcPad bytes inside the buffer
					}
					ind[i*s.nk+tt] = p*s.c + c0
					copy(a[i*k+tt*kcp:], img[p*s.c+c0:p*s.c+c0+s.kc])
				}
			}
			b := make([]int8, k*s.n)
			for r := 0; r < k; r++ {
				if r%kcp >= s.kc {
					continue // zero weights on the padded rows
				}
				for j := 0; j < s.n; j++ {
					b[r*s.n+j] = int8(rnd.Intn(256) - 128)
				}
			}
			want := refGemm(s.m, k, s.n, a, k, a0, b, s.n, false, []int32{0})
			scale := []float32{1.0 / 2048}
			for _, p := range paths(t) {
				withISA(t, p, func() {
					pb := PackB(k, s.n, b, s.n, false)
					got := make([]int32, s.m*s.n)
					cut := rnd.Intn(s.n + 1)
					GemmIndirect(s.m, s.nk, s.kc, img, ind, a0, pb, 0, cut, Int32(got, s.n))
					GemmIndirect(s.m, s.nk, s.kc, img, ind, a0, pb, cut, s.n, Int32(got, s.n))
					for i := range want {
						if got[i] != want[i] {
							t.Fatalf("%s %v: C[%d] = %d, want %d", name, p, i, got[i], want[i])
						}
					}
					y := make([]uint8, s.m*s.n)
					GemmIndirect(s.m, s.nk, s.kc, img, ind, a0, pb, 0, s.n, Output{Q: &Requant{Scale: scale, OutZero: 100, OutU8: y, Ldc: s.n}})
					for i := range want {
						if w := refQuant(want[i], 0, scale[0], 100, 0, 255); int32(y[i]) != w {
							t.Fatalf("%s %v: y[%d] = %d, want %d", name, p, i, y[i], w)
						}
					}
					// The same through a prepared table, in two bands
					// split at a tile boundary.
					tbl := NewIndirectTable(s.m, s.nk, ind)
					split := min(s.m, 6*rnd.Intn(s.m/6+1))
					got = make([]int32, s.m*s.n)
					GemmIndirectTable(tbl, 0, split, s.kc, img, a0, pb, 0, s.n, Int32(got, s.n))
					GemmIndirectTable(tbl, split, s.m, s.kc, img, a0, pb, 0, s.n, Int32(got[split*s.n:], s.n))
					for i := range want {
						if got[i] != want[i] {
							t.Fatalf("%s %v table split %d: C[%d] = %d, want %d", name, p, split, i, got[i], want[i])
						}
					}
					y = make([]uint8, s.m*s.n)
					GemmIndirectTable(tbl, 0, s.m, s.kc, img, a0, pb, 0, s.n, Output{Q: &Requant{Scale: scale, OutZero: 100, OutU8: y, Ldc: s.n}})
					for i := range want {
						if w := refQuant(want[i], 0, scale[0], 100, 0, 255); int32(y[i]) != w {
							t.Fatalf("%s %v table: y[%d] = %d, want %d", name, p, i, y[i], w)
						}
					}
				})
			}
		}
	}
}
