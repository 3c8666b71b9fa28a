package q8

import (
	"math/rand"
	"testing"
)

// Helpers of the elementwise tests (AddU8, MulU8, MulScalarU8), shared by
// the all-arch tests and the arm64 kernel tests.

const guardByte = 0xa5

// guarded returns n bytes at offset off (misaligning them) inside a buffer
// whose other bytes hold guardByte, and a check that those are untouched.
func guarded(t *testing.T, n, off int) ([]uint8, func(what string)) {
	buf := make([]uint8, off+n+48)
	for i := range buf {
		buf[i] = guardByte
	}
	return buf[off : off+n], func(what string) {
		t.Helper()
		for i, v := range buf {
			if (i < off || i >= off+n) && v != guardByte {
				t.Fatalf("%s: byte %d outside the %d bytes at offset %d written (%#x)", what, i-off, n, off, v)
			}
		}
	}
}

// codePairs returns every pair of byte codes as two operands: a = i, b = j
// at element 256·i + j.
func codePairs() (a, b []uint8) {
	a, b = make([]uint8, 65536), make([]uint8, 65536)
	for i := range a {
		a[i], b[i] = uint8(i>>8), uint8(i)
	}
	return a, b
}

// binaryParams is AddParams with the zero points z given as uint8 codes:
// on signed data they move down by 128, so one table serves both.
func binaryParams(sc [3]float32, z [3]int32, signed bool) *AddParams {
	p := &AddParams{ScaleA: sc[0], ScaleB: sc[1], ScaleC: sc[2], ZeroA: z[0], ZeroB: z[1], ZeroC: z[2], Signed: signed}
	if signed {
		p.ZeroA -= 128
		p.ZeroB -= 128
		p.ZeroC -= 128
	}
	return p
}

// randParams draws scales A and B in [1e-3, 0.101), C in [cMin, cMin+cSpan)
// and zero points anywhere in the range.
func randParams(rnd *rand.Rand, cSpan, cMin float32, signed bool) *AddParams {
	sa := rnd.Float32()*0.1 + 1e-3
	sb := rnd.Float32()*0.1 + 1e-3
	sc := rnd.Float32()*cSpan + cMin
	z := [3]int32{int32(rnd.Intn(256)), int32(rnd.Intn(256)), int32(rnd.Intn(256))}
	return binaryParams([3]float32{sa, sb, sc}, z, signed)
}
