package q8

import "unsafe"

// tile8Go is the reference micro-kernel over the int8 k-group layout: only
// the requested columns are computed.
func tile8Go(sc *scratch, a []uint8, lda int, pb *PackedB, panel, i0, rows, c0, c1 int) {
	k4 := pb.kp / 4
	for r := 0; r < rows; r++ {
		row := a[(i0+r)*lda:]
		acc := sc.tile[r*nr : r*nr+nr]
		clear(acc[c0:c1])
		for g := 0; g < k4; g++ {
			a0, a1, a2, a3 := int32(row[4*g]), int32(row[4*g+1]), int32(row[4*g+2]), int32(row[4*g+3])
			bp := pb.b8[panel+g*4*nr : panel+(g+1)*4*nr]
			for c := c0; c < c1; c++ {
				b := bp[4*c : 4*c+4 : 4*c+4]
				acc[c] += a0*int32(b[0]) + a1*int32(b[1]) + a2*int32(b[2]) + a3*int32(b[3])
			}
		}
	}
}

func outI32Go(dst, acc, ct, nb []int32, rs int32) {
	for j := range dst {
		dst[j] = acc[j] + ct[j] + nb[j]*rs
	}
}

func outQGo(dst []uint8, acc, ct, nb []int32, rs int32, scale []float32, st *stage) {
	for j := range dst {
		dst[j] = uint8(quantize1(acc[j]+ct[j]+nb[j]*rs, scale[j], st))
	}
}

// s8AsU8 reinterprets int8 output memory for the shared byte stores (the
// value written is the two's complement byte either way).
func s8AsU8(s []int8) []uint8 {
	if len(s) == 0 {
		return nil
	}
	return unsafe.Slice((*uint8)(unsafe.Pointer(&s[0])), len(s))
}
