package qlinear

import "encoding/binary"

// transposeU8 writes dst[j*ldd+i] = src[i*lds+j] ^ flip for i < rows, j <
// cols: the NCHW↔NHWC moves around the GEMM. Full 8×8 blocks are transposed
// inside eight 64-bit words (three rounds of masked swaps at 8, 16 and 32
// bits), which is several times faster than byte loads and stores.
func transposeU8(dst []uint8, ldd int, src []uint8, lds int, rows, cols int, flip uint8) {
	f := uint64(flip) * 0x0101010101010101
	i := 0
	for ; i+8 <= rows; i += 8 {
		j := 0
		for ; j+8 <= cols; j += 8 {
			var r [8]uint64
			for k := range r {
				r[k] = binary.LittleEndian.Uint64(src[(i+k)*lds+j:]) ^ f
			}
			for k := 0; k < 8; k += 2 {
				t := (r[k]>>8 ^ r[k+1]) & 0x00ff00ff00ff00ff
				r[k+1] ^= t
				r[k] ^= t << 8
			}
			for _, k := range [4]int{0, 1, 4, 5} {
				t := (r[k]>>16 ^ r[k+2]) & 0x0000ffff0000ffff
				r[k+2] ^= t
				r[k] ^= t << 16
			}
			for k := 0; k < 4; k++ {
				t := (r[k]>>32 ^ r[k+4]) & 0x00000000ffffffff
				r[k+4] ^= t
				r[k] ^= t << 32
			}
			for k := range r {
				binary.LittleEndian.PutUint64(dst[(j+k)*ldd+i:], r[k])
			}
		}
		for ; j < cols; j++ {
			for k := 0; k < 8; k++ {
				dst[j*ldd+i+k] = src[(i+k)*lds+j] ^ flip
			}
		}
	}
	for ; i < rows; i++ {
		for j := 0; j < cols; j++ {
			dst[j*ldd+i] = src[i*lds+j] ^ flip
		}
	}
}
