package q8

import (
	"math/rand"
	"testing"
)

func TestTransposeU8(t *testing.T) {
	rnd := rand.New(rand.NewSource(1))
	for _, s := range [][2]int{{1, 1}, {8, 8}, {16, 16}, {9, 17}, {16, 64}, {3, 100}, {64, 3}, {57, 71}, {33, 48}, {64, 3136}, {11, 40}, {19, 33}, {3, 5000}} {
		rows, cols := s[0], s[1]
		lds, ldd := cols+3, rows+5
		src := make([]uint8, rows*lds)
		rnd.Read(src)
		for _, flip := range []uint8{0, 0x80} {
			for _, p := range paths(t) {
				withISA(t, p, func() {
					dst := make([]uint8, cols*ldd)
					TransposeU8(dst, ldd, src, lds, rows, cols, flip)
					for i := 0; i < rows; i++ {
						for j := 0; j < cols; j++ {
							if dst[j*ldd+i] != src[i*lds+j]^flip {
								t.Fatalf("%v %dx%d flip %#x: dst[%d][%d] = %d, want %d", p, rows, cols, flip, j, i, dst[j*ldd+i], src[i*lds+j]^flip)
							}
						}
					}
				})
			}
		}
	}
}

func BenchmarkTransposeU8(b *testing.B) {
	src := make([]uint8, 64*3136)
	dst := make([]uint8, len(src))
	b.SetBytes(int64(len(src)))
	for i := 0; i < b.N; i++ {
		TransposeU8(dst, 64, src, 3136, 64, 3136, 0)
	}
}
