package f32

import "unsafe"

// microGeneric4x4 is the portable micro-kernel, the reference twin of the
// assembly kernels and the path for other architectures. A 4×4 tile: 16
// accumulators plus 8 operands fit arm64's 32 FP registers, and amd64's 16
// with little spilling (a 4×8 tile measured 20% slower).
func microGeneric4x4(kc int, a, b []float32, ldb int, c []float32, ldc int, ep *tileEp) {
	var c00, c01, c02, c03, c10, c11, c12, c13 float32
	var c20, c21, c22, c23, c30, c31, c32, c33 float32
	a = a[:kc*4]
	for p := 0; p < kc; p++ {
		ap := a[p*4 : p*4+4 : p*4+4]
		bp := b[p*ldb : p*ldb+4 : p*ldb+4]
		b0, b1, b2, b3 := bp[0], bp[1], bp[2], bp[3]
		a0, a1, a2, a3 := ap[0], ap[1], ap[2], ap[3]
		c00 += a0 * b0
		c01 += a0 * b1
		c02 += a0 * b2
		c03 += a0 * b3
		c10 += a1 * b0
		c11 += a1 * b1
		c12 += a1 * b2
		c13 += a1 * b3
		c20 += a2 * b0
		c21 += a2 * b1
		c22 += a2 * b2
		c23 += a2 * b3
		c30 += a3 * b0
		c31 += a3 * b1
		c32 += a3 * b2
		c33 += a3 * b3
	}
	load := ep.flags&epLoad != 0
	store4(c[0*ldc:0*ldc+4], load, c00, c01, c02, c03)
	store4(c[1*ldc:1*ldc+4], load, c10, c11, c12, c13)
	store4(c[2*ldc:2*ldc+4], load, c20, c21, c22, c23)
	store4(c[3*ldc:3*ldc+4], load, c30, c31, c32, c33)
	if ep.flags&^epLoad != 0 {
		tileStages(ep, c, ldc, 4, 4)
	}
}

func store4(c []float32, load bool, v0, v1, v2, v3 float32) {
	c = c[:4]
	if load {
		c[0] += v0
		c[1] += v1
		c[2] += v2
		c[3] += v3
		return
	}
	c[0], c[1], c[2], c[3] = v0, v1, v2, v3
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
