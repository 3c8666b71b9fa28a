package basic

import (
	"math"
	"math/rand"
	"testing"
)

// TestVecTwins checks each assembly loop against its Go twin bit for bit,
// on lengths around the 8/16/32-element blocks and on values with NaN,
// ±Inf, ±0 and subnormals mixed in.
func TestVecTwins(t *testing.T) {
	if !useAVX2 {
		t.Skip("no AVX2 on this machine (or QTOOL_ISA=generic): the Go loops are in use")
	}
	r := rand.New(rand.NewSource(9))
	special := []float32{float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1)), 0, float32(math.Copysign(0, -1)), 1e-40, -1e-40, 6, -6}
	gen := func(n int) []float32 {
		x := make([]float32, n)
		for i := range x {
			if r.Intn(5) == 0 {
				x[i] = special[r.Intn(len(special))]
			} else {
				x[i] = float32(r.NormFloat64() * 4)
			}
		}
		return x
	}
	same := func(what string, n int, got, want []float32) {
		t.Helper()
		for i := range want {
			if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
				t.Fatalf("%s n=%d: [%d] = %v (%#x), Go twin %v (%#x)", what, n, i, got[i], math.Float32bits(got[i]), want[i], math.Float32bits(want[i]))
			}
		}
	}
	for _, n := range []int{1, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 100, 1000} {
		a, b := gen(n), gen(n)
		s := gen(1)[0]
		got, want := make([]float32, n), make([]float32, n)
		for _, lh := range [][2]float32{{0, float32(math.Inf(1))}, {0, 6}, {-1, 1}, {2, 1}} {
			clampAVX2(got, a, lh[0], lh[1])
			clampGo(want, a, lh[0], lh[1])
			same("clamp", n, got, want)
		}
		for code, f := range map[int]func(d, a, b []float32){opAdd: addVVAVX2, opSub: subVVAVX2, opMul: mulVVAVX2, opDiv: divVVAVX2} {
			f(got, a, b)
			vvGo(code, want, a, b)
			same("vv", n, got, want)
		}
		for code, f := range map[int]func(d, a []float32, s float32){opAdd: addVSAVX2, opSub: subVSAVX2, opMul: mulVSAVX2, opDiv: divVSAVX2} {
			f(got, a, s)
			vsGo(code, want, a, s)
			same("vs", n, got, want)
		}
		for code, f := range map[int]func(d, a []float32, s float32){opSub: subSVAVX2, opDiv: divSVAVX2} {
			f(got, a, s)
			svGo(code, want, a, s)
			same("sv", n, got, want)
		}
		for _, swish := range []bool{false, true} {
			hardSigmoidAVX2(got, a, 0.2, 0.5, swish)
			hardSigmoidGo(want, a, 0.2, 0.5, swish)
			same("hardsigmoid", n, got, want)
		}
		for _, alpha := range []float32{0.01, -0.5, 2} {
			leakyAVX2(got, a, alpha)
			leakyGo(want, a, alpha)
			same("leakyrelu", n, got, want)
		}
		// In place, as the executor's buffer reuse does it.
		c := append([]float32(nil), a...)
		addVVAVX2(c, c, b)
		vvGo(opAdd, want, a, b)
		same("vv in place", n, c, want)
	}
}

func BenchmarkClampTwins(b *testing.B) {
	x := make([]float32, 1<<16)
	for i := range x {
		x[i] = float32(i%13) - 6
	}
	y := make([]float32, len(x))
	b.Run("go", func(b *testing.B) {
		b.SetBytes(4 << 16)
		for i := 0; i < b.N; i++ {
			clampGo(y, x, 0, 6)
		}
	})
	if useAVX2 {
		b.Run("avx2", func(b *testing.B) {
			b.SetBytes(4 << 16)
			for i := 0; i < b.N; i++ {
				clampAVX2(y, x, 0, 6)
			}
		})
	}
}
