package q8

import (
	"math/rand"
	"testing"
)

// TestMulScalarU8 compares MulScalarU8 (the SIMD kernel where the active
// path has one, else its Go twin) with MulU8 on a one-element operand bit
// for bit: every code as the data and as the scalar, zero points at both
// ends and the middle, ratios that saturate the output, the int16 and the
// int32 conversion, and every length 0..100 around the 16-element blocks.
func TestMulScalarU8(t *testing.T) {
	rnd := rand.New(rand.NewSource(7))
	var all [256]uint8
	for i := range all {
		all[i] = uint8(i)
	}
	scales := [][3]float32{
		{0.02, 0.01, 0.05},    // mild
		{0.1, 0.2, 1e-3},      // saturates 8 bits, not int16
		{1, 1, 1e-3},          // saturates int16 (ratio 1000)
		{1, 1, 1e-12},         // beyond int32: INT32_MIN, then the low bound
		{1e-3, 1e-3, 1},       // everything rounds to zc
		{0.0123, 0.0371, 0.0}, // +Inf ratio
	}
	zps := []int32{0, 128, 255}
	checked := 0
	for _, signed := range []bool{false, true} {
		for _, sc := range scales {
			for _, za := range zps {
				for _, zb := range zps {
					for _, zc := range zps {
						p := binaryParams(sc, [3]int32{za, zb, zc}, signed)
						for _, s := range []uint8{0, 1, 127, 128, 129, 255, uint8(rnd.Intn(256))} {
							checked += checkMulScalar(t, all[:], s, p)
						}
					}
				}
			}
		}
	}
	for n := 0; n <= 100; n++ {
		src := make([]uint8, n)
		for i := range src {
			src[i] = uint8(rnd.Intn(256))
		}
		p := randParams(rnd, 0.01, 1e-4, n%2 == 1)
		checked += checkMulScalar(t, src, uint8(rnd.Intn(256)), p)
	}
	t.Logf("active %v, kernel %v: %d elements", active, mulScalarKern[0] != nil && active != isaGeneric, checked)
}

// checkMulScalar runs src times the scalar s both ways round against
// MulU8 and, where there is a kernel, the kernel itself against the Go
// twin (so a path that fell back to Go cannot pass for the kernel).
func checkMulScalar(t *testing.T, src []uint8, s uint8, p *AddParams) int {
	t.Helper()
	n := len(src)
	val := func(v uint8) int32 {
		if p.Signed {
			return int32(int8(v))
		}
		return int32(v)
	}
	want := make([]uint8, n)
	got := make([]uint8, n)
	MulU8(want, src, []uint8{s}, p)
	MulScalarU8(got, src, val(s)-p.ZeroB, p.ZeroA, p)
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("%+v: %d · scalar %d (n %d): got %d, MulU8 %d", *p, src[i], s, n, got[i], want[i])
		}
	}
	// In place: the ragged end must not reread what it wrote.
	copy(got, src)
	MulScalarU8(got, got, val(s)-p.ZeroB, p.ZeroA, p)
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("%+v: in place %d · scalar %d (n %d): got %d, MulU8 %d", *p, src[i], s, n, got[i], want[i])
		}
	}
	// The scalar as operand A: the same product with the roles swapped.
	q := *p
	q.ZeroA, q.ZeroB = p.ZeroB, p.ZeroA
	MulU8(want, []uint8{s}, src, &q)
	MulScalarU8(got, src, val(s)-q.ZeroA, q.ZeroB, &q)
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("%+v: scalar %d · %d (n %d): got %d, MulU8 %d", q, s, src[i], n, got[i], want[i])
		}
	}
	if m := n &^ 15; mulScalarKern[0] != nil && m > 0 {
		c := mulConsts{za: p.ZeroA, k: val(s) - p.ZeroB, ratio: p.ScaleA * p.ScaleB / p.ScaleC, zc: float32(p.ZeroC)}
		kern := mulScalarKern[0]
		if p.Signed {
			kern = mulScalarKern[1]
		}
		kern(&got[0], &src[0], m, c.za, c.k, c.ratio, c.zc)
		mulScalarGo(want[:m], src[:m], c, p.Signed)
		for i := range m {
			if got[i] != want[i] {
				t.Fatalf("%+v: kernel %d · scalar %d: got %d, Go %d", *p, src[i], s, got[i], want[i])
			}
		}
	}
	return 2 * n
}
