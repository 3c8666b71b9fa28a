package nn

import "github.com/qtool/qtool/internal/simd/f32"

// Every float GEMM of this package goes through the names in this file, so
// that the backend is chosen in one place: internal/simd/f32's packed,
// cache-blocked SGEMM.

const (
	actNone      = f32.ActNone
	actRelu      = f32.ActRelu
	actClip      = f32.ActClip
	actLeakyRelu = f32.ActLeakyRelu
)

// epilogue is applied to each output element after the dot product:
// v = act(dot (+ C when Accumulate) + RowBias[row] + ColBias[col]).
type epilogue = f32.Epilogue

type packedA = f32.PackedA
type packedB = f32.PackedB

func packA(transA bool, m, k int, a []float32, lda int) *packedA {
	return f32.PackA(transA, m, k, a, lda)
}

func gemmPackedA(p *packedA, m0, m1, n int, b []float32, ldb int, c []float32, ldc int, ep epilogue) {
	f32.SgemmPackedA(p, m0, m1, n, b, ldb, c, ldc, ep)
}

func packB(transB bool, k, n int, b []float32, ldb int) *packedB {
	return f32.PackB(transB, k, n, b, ldb)
}

func gemmPackedB(m int, a []float32, lda int, p *packedB, n0, n1 int, c []float32, ldc int, ep epilogue) {
	f32.SgemmPackedB(m, a, lda, p, n0, n1, c, ldc, ep)
}

// sgemm is BLAS sgemm on row-major data: C = alpha·op(A)·op(B) + beta·C;
// beta == 0 means C is not read.
func sgemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	f32.Sgemm(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

// depthwiseConv runs f32's depthwise kernel over channels c0..c1 of one
// image.
func depthwiseConv(s *f32.DWShape, x, w []float32, c0, c1 int, y []float32, ep epilogue) {
	f32.DepthwiseConv2D(s, x, w, c0, c1, y, ep)
}

type dwShape = f32.DWShape

// copyRows and gatherRows2 copy rows×n blocks between strided rows (the
// second reading every other source element) with f32's vector kernels.
func copyRows(dst []float32, dstStride int, src []float32, srcStride int, rows, n int) {
	f32.CopyRows(dst, dstStride, src, srcStride, rows, n)
}

func gatherRows2(dst []float32, dstStride int, src []float32, srcStride int, rows, n int) {
	f32.GatherRows2(dst, dstStride, src, srcStride, rows, n)
}

func maxPool2D(s *f32.DWShape, x []float32, c0, c1 int, y []float32) {
	f32.MaxPool2D(s, x, c0, c1, y)
}
