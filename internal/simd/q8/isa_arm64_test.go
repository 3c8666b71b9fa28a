package q8

import (
	"math/rand"
	"testing"

	"github.com/qtool/qtool/internal/simd/cpu"
)

// TestARM64Detect checks that the arm64 paths follow the CPU features (run
// under qemu with -cpu max, neoverse-n1 and cortex-a53 it sees all three
// combinations).
func TestARM64Detect(t *testing.T) {
	a := cpu.ARM64
	t.Logf("ASIMD %v DotProd %v I8MM %v: paths %v, best %v, active %v", a.ASIMD, a.DotProd, a.I8MM, ISAs(), best, active)
	if detected[isaNEON] != a.ASIMD || detected[isaSDOT] != (a.ASIMD && a.DotProd) {
		t.Errorf("detected neon %v sdot %v for ASIMD %v DotProd %v", detected[isaNEON], detected[isaSDOT], a.ASIMD, a.DotProd)
	}
	want := isaGeneric
	switch {
	case a.ASIMD && a.DotProd:
		want = isaSDOT
	case a.ASIMD:
		want = isaNEON
	}
	if best != want {
		t.Errorf("best path %v, want %v", best, want)
	}
	for p := isaAVX2; p <= isaAVX512VNNI; p++ {
		if kernels[p].ok {
			t.Errorf("x86 path %v enabled on arm64", p)
		}
	}
}

// TestARM64Forced checks the path chosen at start-up for the QTOOL_ISA value
// this process runs with (the Makefile's arm64-test runs it under several):
// the requested arm64 path or the best one below it, generic for x86 names,
// the best path for names nobody knows.
func TestARM64Forced(t *testing.T) {
	f := cpu.Forced()
	neon, sdot := isaGeneric, isaGeneric
	if detected[isaNEON] {
		neon, sdot = isaNEON, isaNEON
	}
	if detected[isaSDOT] {
		sdot = isaSDOT
	}
	want := map[string]isa{
		"": best, "generic": isaGeneric, "neon": neon, "asimd": neon, "sdot": sdot, "dotprod": sdot, "i8mm": sdot,
		"avx2": isaGeneric, "avxvnni": isaGeneric, "avx512": isaGeneric, "avx512vnni": isaGeneric,
	}
	w, ok := want[f]
	if !ok {
		w = best
	}
	t.Logf("QTOOL_ISA=%q: active %v", f, active)
	if active != w {
		t.Errorf("QTOOL_ISA=%q: active path %v, want %v", f, active, w)
	}
	// lowerTo stays within the arm64 family and never goes above its argument.
	if got := lowerTo(isaSDOT); got != sdot {
		t.Errorf("lowerTo(sdot) = %v, want %v", got, sdot)
	}
	if got := lowerTo(isaAVX512VNNI); got != isaGeneric {
		t.Errorf("lowerTo(avx512vnni) = %v on arm64", got)
	}
}

// TestARM64Wrap runs a K long enough for the int32 accumulators to wrap
// (|Σ| up to 90001·255·128 > 2³¹, checked below): the SDOT path's 128·colsum start and flipped A,
// and the NEON path's SMLAL chains, must wrap exactly as the definition's
// int32 sums do. Odd K and N exercise the k-group and strip tails.
func TestARM64Wrap(t *testing.T) {
	const m, k, n = 3, 90001, 19
	a := make([]uint8, m*k)
	b := make([]int8, k*n)
	for i := range a {
		a[i] = 255
		if i%7 == 3 {
			a[i] = uint8(i)
		}
	}
	for i := range b {
		b[i] = -128
		if i%101 == 1 {
			b[i] = 127
		}
	}
	var s64 int64
	for l := 0; l < k; l++ {
		s64 += int64(a[l]) * int64(b[l*n])
	}
	if s64 >= -1<<31 {
		t.Fatalf("C[0][0] = %d does not overflow int32: the test lost its point", s64)
	}
	for _, a0 := range []int32{0, 255} {
		want := refGemm(m, k, n, a, k, a0, b, n, false, []int32{0})
		for _, p := range paths(t) {
			withISA(t, p, func() {
				pb := PackB(k, n, b, n, false)
				got := make([]int32, m*n)
				Gemm(m, a, k, a0, pb, []int32{0}, 0, n, Int32(got, n))
				for i := range got {
					if got[i] != want[i] {
						t.Fatalf("%v a0=%d: C[%d] = %d, want %d", p, a0, i, got[i], want[i])
					}
				}
			})
		}
	}
}

// TestARM64DWAcc checks DWConv's NEON accumulations against dwAccGo:
// dwAccNEON with int32 weights over their whole range (weight zero points
// far outside int8, as PackDW accepts), dwAccNEON16 with int16 weights over
// theirs and up to 300 taps. Products and sums wrap, and the kernels must
// wrap exactly as the Go loop. Channel counts cover whole 16-lane blocks,
// the Go tail after them, and a count with no block at all.
func TestARM64DWAcc(t *testing.T) {
	if dwAccN == nil || dwAccN16 == nil {
		t.Skip("no ASIMD")
	}
	rnd := rand.New(rand.NewSource(3))
	// PackDW keeps int16 weights exactly where every W − W0 fits.
	w8 := []int8{-128, 127, 0, 5}
	if d := PackDW(4, 1, w8, []int32{127}); d.w16 == nil || d.w16[0] != -255 {
		t.Errorf("PackDW: int16 weights %v for W − W0 down to -255", d.w16)
	}
	if d := PackDW(4, 1, w8, []int32{-32641}); d.w16 != nil {
		t.Errorf("PackDW: int16 weights %v for W − W0 = 32768", d.w16)
	}
	for _, w16 := range []bool{false, true} {
		wrapped := false
		for _, c := range []int{1, 15, 16, 17, 40, 64, 144, 301} {
			for _, taps := range []int{1, 9, 25, 300} {
				pixels := 7
				img := make([]uint8, pixels*c)
				rnd.Read(img)
				for i := range img[:c] {
					img[i] = 255 // an all-255 pixel: the largest products
				}
				d := &DWWeights{C: c, Taps: taps, w: make([]int32, taps*c+16)}
				for i := range d.w {
					d.w[i] = int32(rnd.Uint32())
				}
				if w16 {
					d.w16 = make([]int16, len(d.w))
					for i, v := range d.w {
						d.w16[i] = int16(v)
						d.w[i] = int32(int16(v))
						if i%3 == 0 {
							d.w16[i], d.w[i] = -32768, -32768
						}
					}
				}
				offs := make([]int, taps)
				for i := range offs {
					offs[i] = rnd.Intn(pixels) * c
					if i%2 == 0 {
						offs[i] = 0
					}
				}
				want := make([]int32, c)
				dwAccGo(want, img, offs, d.w, c)
				got := make([]int32, c)
				for i := range got {
					got[i] = -1 // the kernel must overwrite, not add to, acc
				}
				dwAccNEONGo(got, img, offs, d, c)
				for ch := range want {
					if got[ch] != want[ch] {
						t.Fatalf("w16=%v c=%d taps=%d: acc[%d] = %d, want %d", w16, c, taps, ch, got[ch], want[ch])
					}
				}
				for ch := 0; ch < c; ch++ {
					var s int64
					for tt, o := range offs {
						s += int64(img[o+ch]) * int64(d.w[tt*c+ch])
					}
					wrapped = wrapped || s != int64(int32(s))
				}
			}
		}
		if !wrapped {
			t.Fatalf("w16=%v: no sum wrapped int32: the test lost its point", w16)
		}
	}
}
