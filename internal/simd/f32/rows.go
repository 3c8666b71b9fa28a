package f32

import "fmt"

// CopyRows copies a rows×n block: dst[r*dstStride+i] = src[r*srcStride+i]
// for r < rows, i < n, with the vector kernel's masked tails, so that a
// block of short rows (an im2col of a 7×7 map: rows of 7) costs a few
// cycles a row rather than a loop each. Out-of-range blocks panic.
func CopyRows(dst []float32, dstStride int, src []float32, srcStride int, rows, n int) {
	if rows <= 0 || n <= 0 {
		return
	}
	checkRows(len(dst), dstStride, len(src), srcStride, rows, n, n)
	active().copyRows(dst, dstStride, src, srcStride, rows, n)
}

// GatherRows2 is CopyRows reading every second source element:
// dst[r*dstStride+i] = src[r*srcStride+2i] (stride-2 im2col rows).
func GatherRows2(dst []float32, dstStride int, src []float32, srcStride int, rows, n int) {
	if rows <= 0 || n <= 0 {
		return
	}
	checkRows(len(dst), dstStride, len(src), srcStride, rows, n, 2*n-1)
	active().gather2(dst, dstStride, src, srcStride, rows, n)
}

func checkRows(dstLen, dstStride, srcLen, srcStride, rows, n, srcN int) {
	if dstStride < 0 || srcStride < 0 || (rows-1)*dstStride+n > dstLen || (rows-1)*srcStride+srcN > srcLen {
		panic(fmt.Sprintf("f32: %d rows of %d: dst %d (stride %d) or src %d (stride %d) too short", rows, n, dstLen, dstStride, srcLen, srcStride))
	}
}
