package f32

import "unsafe"

// microGeneric4x8 is the portable micro-kernel: a 4×8 tile kept in 32 scalar
// accumulators. It is the reference twin of the assembly kernels and the path
// for other architectures.
func microGeneric4x8(kc int, a, b []float32, ldb int, c []float32, ldc int, ep *tileEp) {
	var c00, c01, c02, c03, c04, c05, c06, c07 float32
	var c10, c11, c12, c13, c14, c15, c16, c17 float32
	var c20, c21, c22, c23, c24, c25, c26, c27 float32
	var c30, c31, c32, c33, c34, c35, c36, c37 float32
	a = a[:kc*4]
	for p := 0; p < kc; p++ {
		ap := a[p*4 : p*4+4 : p*4+4]
		bp := b[p*ldb : p*ldb+8 : p*ldb+8]
		b0, b1, b2, b3, b4, b5, b6, b7 := bp[0], bp[1], bp[2], bp[3], bp[4], bp[5], bp[6], bp[7]
		a0 := ap[0]
		c00 += a0 * b0
		c01 += a0 * b1
		c02 += a0 * b2
		c03 += a0 * b3
		c04 += a0 * b4
		c05 += a0 * b5
		c06 += a0 * b6
		c07 += a0 * b7
		a1 := ap[1]
		c10 += a1 * b0
		c11 += a1 * b1
		c12 += a1 * b2
		c13 += a1 * b3
		c14 += a1 * b4
		c15 += a1 * b5
		c16 += a1 * b6
		c17 += a1 * b7
		a2 := ap[2]
		c20 += a2 * b0
		c21 += a2 * b1
		c22 += a2 * b2
		c23 += a2 * b3
		c24 += a2 * b4
		c25 += a2 * b5
		c26 += a2 * b6
		c27 += a2 * b7
		a3 := ap[3]
		c30 += a3 * b0
		c31 += a3 * b1
		c32 += a3 * b2
		c33 += a3 * b3
		c34 += a3 * b4
		c35 += a3 * b5
		c36 += a3 * b6
		c37 += a3 * b7
	}
	load := ep.flags&epLoad != 0
	store8(c[0*ldc:0*ldc+8], load, c00, c01, c02, c03, c04, c05, c06, c07)
	store8(c[1*ldc:1*ldc+8], load, c10, c11, c12, c13, c14, c15, c16, c17)
	store8(c[2*ldc:2*ldc+8], load, c20, c21, c22, c23, c24, c25, c26, c27)
	store8(c[3*ldc:3*ldc+8], load, c30, c31, c32, c33, c34, c35, c36, c37)
	if ep.flags&^epLoad != 0 {
		tileStages(ep, c, ldc, 4, 8)
	}
}

func store8(c []float32, load bool, v0, v1, v2, v3, v4, v5, v6, v7 float32) {
	c = c[:8]
	if load {
		c[0] += v0
		c[1] += v1
		c[2] += v2
		c[3] += v3
		c[4] += v4
		c[5] += v5
		c[6] += v6
		c[7] += v7
		return
	}
	c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7] = v0, v1, v2, v3, v4, v5, v6, v7
}

// tileStages applies the stages after epLoad to a stored mr×nr tile, in the
// same order and float32 operations as the assembly.
func tileStages(ep *tileEp, c []float32, ldc, mr, nr int) {
	var rb, cb []float32
	if ep.flags&epRowBias != 0 {
		rb = unsafe.Slice((*float32)(ep.rowBias), mr)
	}
	if ep.flags&epColBias != 0 {
		cb = unsafe.Slice((*float32)(ep.colBias), nr)
	}
	for i := 0; i < mr; i++ {
		row := c[i*ldc : i*ldc+nr]
		for j, v := range row {
			if rb != nil {
				v += rb[i]
			}
			if cb != nil {
				v += cb[j]
			}
			if ep.flags&epClamp != 0 {
				if v < ep.lo {
					v = ep.lo
				}
				if v > ep.hi {
					v = ep.hi
				}
			}
			if ep.flags&epLeaky != 0 && v < 0 {
				v *= ep.alpha
			}
			row[j] = v
		}
	}
}
