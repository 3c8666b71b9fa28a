package qlinear

import (
	"math/rand"
	"testing"
)

func TestTransposeU8(t *testing.T) {
	rnd := rand.New(rand.NewSource(1))
	for _, s := range [][2]int{{1, 1}, {8, 8}, {9, 17}, {16, 64}, {3, 100}, {64, 3}, {57, 71}} {
		rows, cols := s[0], s[1]
		lds, ldd := cols+3, rows+5
		src := make([]uint8, rows*lds)
		rnd.Read(src)
		for _, flip := range []uint8{0, 0x80} {
			dst := make([]uint8, cols*ldd)
			transposeU8(dst, ldd, src, lds, rows, cols, flip)
			for i := 0; i < rows; i++ {
				for j := 0; j < cols; j++ {
					if dst[j*ldd+i] != src[i*lds+j]^flip {
						t.Fatalf("%dx%d flip %#x: dst[%d][%d] = %d, want %d", rows, cols, flip, j, i, dst[j*ldd+i], src[i*lds+j]^flip)
					}
				}
			}
		}
	}
}
