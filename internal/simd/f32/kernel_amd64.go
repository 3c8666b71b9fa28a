//go:build amd64 && !noasm

package f32

import "github.com/qtool/qtool/internal/simd/cpu"

//go:generate go run gen_amd64.go

//go:noescape
func sgemmAVX512x8x32(kc int, a, b []float32, ldb int, c []float32, ldc int, ep *tileEp)

//go:noescape
func sgemmAVX512x8x16(kc int, a, b []float32, ldb int, c []float32, ldc int, ep *tileEp)

//go:noescape
func sgemmAVX512x8x8(kc int, a, b []float32, ldb int, c []float32, ldc int, ep *tileEp)

//go:noescape
func sgemmAVX2x6x16(kc int, a, b []float32, ldb int, c []float32, ldc int, ep *tileEp)

//go:noescape
func dwAVX512r1v4(groups, n int, out []float32, outStride, outGroup int, in []float32, inStride, inGroup int, offs []int, w []float32, ep *tileEp)

//go:noescape
func dwAVX512r2v2(groups, n int, out []float32, outStride, outGroup int, in []float32, inStride, inGroup int, offs []int, w []float32, ep *tileEp)

//go:noescape
func dwAVX512r4v1(groups, n int, out []float32, outStride, outGroup int, in []float32, inStride, inGroup int, offs []int, w []float32, ep *tileEp)

//go:noescape
func dwAVX2r1v4(groups, n int, out []float32, outStride, outGroup int, in []float32, inStride, inGroup int, offs []int, w []float32, ep *tileEp)

//go:noescape
func dwAVX2r2v2(groups, n int, out []float32, outStride, outGroup int, in []float32, inStride, inGroup int, offs []int, w []float32, ep *tileEp)

//go:noescape
func dwAVX2r4v1(groups, n int, out []float32, outStride, outGroup int, in []float32, inStride, inGroup int, offs []int, w []float32, ep *tileEp)

// The plane fills of the depthwise conv (kernel.gather2, kernel.copyRows).
//
//go:noescape
func gather2AVX512(dst []float32, dstStride int, src []float32, srcStride int, rows, n int)

//go:noescape
func copyRowsAVX512(dst []float32, dstStride int, src []float32, srcStride int, rows, n int)

//go:noescape
func dw3x3s1AVX512(rows, n int, out []float32, outStride int, in []float32, inStride int, w []float32, ep *tileEp)

//go:noescape
func dw3x3s2AVX512(rows, n int, out []float32, outStride int, in []float32, inStride, phaseStride int, w []float32, ep *tileEp)

//go:noescape
func gemvAVX512(kc int, a, b []float32, out []float32)

// maxRowsAVX2 is maxRowsGeneric (MaxPool2D's rows), for both kernels: it
// is bound by memory, not by the vector width.
//
//go:noescape
func maxRowsAVX2(dst []float32, dstStride int, a []float32, aStride int, b []float32, bStride int, rows, n int)

//go:noescape
func copyRowsAVX2(dst []float32, dstStride int, src []float32, srcStride int, rows, n int)

//go:noescape
func gather2AVX2(dst []float32, dstStride int, src []float32, srcStride int, rows, n int)

// fmaPeakAVX512 and fmaPeakAVX2 run n iterations of 24 (zmm) or 12 (ymm)
// independent register-only FMAs: the benchmarks' peak reference.
//
//go:noescape
func fmaPeakAVX512(n int)

//go:noescape
func fmaPeakAVX2(n int)

var (
	avx512Kernel = &kernel{
		name: "avx512", mr: 8, nr: 32, mc: 128, kc: 512, nc: 1024,
		micro: sgemmAVX512x8x32, edge: true,
		narrow:  []narrowKernel{{8, sgemmAVX512x8x8}, {16, sgemmAVX512x8x16}},
		dw:      [3]dwFunc{dwAVX512r1v4, dwAVX512r2v2, dwAVX512r4v1},
		dwLanes: 16, gather2: gather2AVX512, copyRows: copyRowsAVX512, maxRows: maxRowsAVX2,
		dw3: dw3x3s1AVX512, dw3s2: dw3x3s2AVX512, gemv: gemvAVX512,
	}
	avx2Kernel = &kernel{
		name: "avx2", mr: 6, nr: 16, mc: 120, kc: 512, nc: 1024,
		micro: sgemmAVX2x6x16, edge: true,
		dw:      [3]dwFunc{dwAVX2r1v4, dwAVX2r2v2, dwAVX2r4v1},
		dwLanes: 8, gather2: gather2AVX2, copyRows: copyRowsAVX2, maxRows: maxRowsAVX2,
	}
)

func archKernels() []*kernel {
	var ks []*kernel
	if cpu.X86.AVX512F && cpu.X86.AVX512VL {
		ks = append(ks, avx512Kernel)
	}
	if cpu.X86.AVX2 && cpu.X86.FMA {
		ks = append(ks, avx2Kernel)
	}
	return ks
}
