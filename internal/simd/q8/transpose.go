package q8

import "encoding/binary"

// transposeU8Go writes dst[j*ldd+i] = src[i*lds+j] ^ flip for i < rows, j <
// cols: the NCHW↔NHWC moves around the GEMM. Full 8×8 blocks are transposed
// inside eight 64-bit words (three rounds of masked swaps at 8, 16 and 32
// bits), which is several times faster than byte loads and stores.
func transposeU8Go(dst []uint8, ldd int, src []uint8, lds int, rows, cols int, flip uint8) {
	f := uint64(flip) * 0x0101010101010101
	le := binary.LittleEndian
	i := 0
	for ; i+8 <= rows; i += 8 {
		s := src[i*lds:]
		j := 0
		for ; j+8 <= cols; j += 8 {
			r0 := le.Uint64(s[j:]) ^ f
			r1 := le.Uint64(s[lds+j:]) ^ f
			r2 := le.Uint64(s[2*lds+j:]) ^ f
			r3 := le.Uint64(s[3*lds+j:]) ^ f
			r4 := le.Uint64(s[4*lds+j:]) ^ f
			r5 := le.Uint64(s[5*lds+j:]) ^ f
			r6 := le.Uint64(s[6*lds+j:]) ^ f
			r7 := le.Uint64(s[7*lds+j:]) ^ f
			const m8, m16, m32 = 0x00ff00ff00ff00ff, 0x0000ffff0000ffff, 0x00000000ffffffff
			t := (r0>>8 ^ r1) & m8
			r1 ^= t
			r0 ^= t << 8
			t = (r2>>8 ^ r3) & m8
			r3 ^= t
			r2 ^= t << 8
			t = (r4>>8 ^ r5) & m8
			r5 ^= t
			r4 ^= t << 8
			t = (r6>>8 ^ r7) & m8
			r7 ^= t
			r6 ^= t << 8
			t = (r0>>16 ^ r2) & m16
			r2 ^= t
			r0 ^= t << 16
			t = (r1>>16 ^ r3) & m16
			r3 ^= t
			r1 ^= t << 16
			t = (r4>>16 ^ r6) & m16
			r6 ^= t
			r4 ^= t << 16
			t = (r5>>16 ^ r7) & m16
			r7 ^= t
			r5 ^= t << 16
			t = (r0>>32 ^ r4) & m32
			r4 ^= t
			r0 ^= t << 32
			t = (r1>>32 ^ r5) & m32
			r5 ^= t
			r1 ^= t << 32
			t = (r2>>32 ^ r6) & m32
			r6 ^= t
			r2 ^= t << 32
			t = (r3>>32 ^ r7) & m32
			r7 ^= t
			r3 ^= t << 32
			d := dst[j*ldd+i:]
			le.PutUint64(d, r0)
			le.PutUint64(d[ldd:], r1)
			le.PutUint64(d[2*ldd:], r2)
			le.PutUint64(d[3*ldd:], r3)
			le.PutUint64(d[4*ldd:], r4)
			le.PutUint64(d[5*ldd:], r5)
			le.PutUint64(d[6*ldd:], r6)
			le.PutUint64(d[7*ldd:], r7)
		}
		for ; j < cols; j++ {
			for k := 0; k < 8; k++ {
				dst[j*ldd+i+k] = src[(i+k)*lds+j] ^ flip
			}
		}
	}
	if rows-i == 3 {
		// Three planes (an RGB image to NHWC): one pass writing whole
		// pixels instead of three strided passes.
		s0 := src[i*lds : i*lds+cols]
		s1 := src[(i+1)*lds:][:len(s0)]
		s2 := src[(i+2)*lds:][:len(s0)]
		j0 := 0
		if interleave3 != nil && active != isaGeneric && ldd == 3 && i == 0 {
			if j0 = cols &^ 15; j0 > 0 {
				interleave3(&dst[0], &s0[0], &s1[0], &s2[0], j0, uint64(flip))
			}
		}
		for j := j0; j < len(s0); j++ {
			d := dst[j*ldd+i:][:3]
			d[0], d[1], d[2] = s0[j]^flip, s1[j]^flip, s2[j]^flip
		}
		return
	}
	for ; i < rows; i++ {
		for j := 0; j < cols; j++ {
			dst[j*ldd+i] = src[i*lds+j] ^ flip
		}
	}
}

// TransposeU8 writes dst[j*ldd+i] = src[i*lds+j] ^ flip for i < rows and
// j < cols: the NCHW↔NHWC moves around the convolution GEMM (flip 0x80
// shifts int8 data to uint8 on the way).
func TransposeU8(dst []uint8, ldd int, src []uint8, lds int, rows, cols int, flip uint8) {
	if rows <= 0 || cols <= 0 {
		return
	}
	if ldd < rows || lds < cols || len(src) < (rows-1)*lds+cols || len(dst) < (cols-1)*ldd+rows {
		panic("q8.TransposeU8: operands too short")
	}
	i := 0
	if transpose16 != nil && active == isaAVX512VNNI && cols >= 16 {
		nb := cols / 16
		for ; i+16 <= rows; i += 16 {
			transpose16(&dst[i], ldd, &src[i*lds], lds, nb, uint64(flip)*0x0101010101010101)
		}
		if nb*16 < cols {
			transposeU8Go(dst[nb*16*ldd:], ldd, src[nb*16:], lds, i, cols-nb*16, flip)
		}
	}
	if i < rows {
		transposeU8Go(dst[i:], ldd, src[i*lds:], lds, rows-i, cols, flip)
	}
}
