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
func dwAVX512r1v4(rows, n int, out []float32, outStride int, in []float32, inStride int, offs []int, w []float32, ep *tileEp)

//go:noescape
func dwAVX512r2v2(rows, n int, out []float32, outStride int, in []float32, inStride int, offs []int, w []float32, ep *tileEp)

//go:noescape
func dwAVX512r4v1(rows, n int, out []float32, outStride int, in []float32, inStride int, offs []int, w []float32, ep *tileEp)

//go:noescape
func dwAVX2r1v4(rows, n int, out []float32, outStride int, in []float32, inStride int, offs []int, w []float32, ep *tileEp)

//go:noescape
func dwAVX2r2v2(rows, n int, out []float32, outStride int, in []float32, inStride int, offs []int, w []float32, ep *tileEp)

//go:noescape
func dwAVX2r4v1(rows, n int, out []float32, outStride int, in []float32, inStride int, offs []int, w []float32, ep *tileEp)

// dwRowsAsm runs rows through the variant that keeps four accumulators
// busy: four rows of one vector for narrow outputs, two of two, or one row
// of four vectors; leftover rows go through the one-row variant.
func dwRowsAsm(r1v4, r2v2, r4v1 func(int, int, []float32, int, []float32, int, []int, []float32, *tileEp), lanes int) func(rows, n int, out []float32, outStride int, in []float32, inStride int, offs []int, w []float32, ep *tileEp) {
	return func(rows, n int, out []float32, outStride int, in []float32, inStride int, offs []int, w []float32, ep *tileEp) {
		r := 0
		switch {
		case n <= lanes:
			r4v1(rows, n, out, outStride, in, inStride, offs, w, ep)
			r = rows &^ 3
			if rows-r >= 2 {
				// Two of the leftover rows as two chains, not one.
				r2v2(2, n, out[r*outStride:], outStride, in[r*inStride:], inStride, offs, w, ep)
				r += 2
			}
		case n <= 2*lanes:
			r2v2(rows, n, out, outStride, in, inStride, offs, w, ep)
			r = rows &^ 1
		}
		if r < rows {
			r1v4(rows-r, n, out[r*outStride:], outStride, in[r*inStride:], inStride, offs, w, ep)
		}
	}
}

// gather2AVX512 and gather2AVX2 are gather2 (see gemm.go) in assembly.
//
//go:noescape
func gather2AVX512(dst []float32, dstStride int, src []float32, srcStride int, rows, n int)

//go:noescape
func copyRowsAVX512(dst []float32, dstStride int, src []float32, srcStride int, rows, n int)

//go:noescape
func copyRowsAVX2(dst []float32, dstStride int, src []float32, srcStride int, rows, n int)

//go:noescape
func gather2AVX2(dst []float32, dstStride int, src []float32, srcStride int, rows, n int)

// fmaPeakAVX512 and fmaPeakAVX2 run n iterations of 12 independent
// register-only FMAs (zmm / ymm): the benchmarks' peak reference.
//
//go:noescape
func fmaPeakAVX512(n int)

//go:noescape
func fmaPeakAVX2(n int)

var (
	dwAVX512 = dwRowsAsm(dwAVX512r1v4, dwAVX512r2v2, dwAVX512r4v1, 16)
	dwAVX2   = dwRowsAsm(dwAVX2r1v4, dwAVX2r2v2, dwAVX2r4v1, 8)

	avx512Kernel = &kernel{name: "avx512", mr: 8, nr: 32, mc: 128, kc: 512, nc: 1024, micro: sgemmAVX512x8x32, edge: true,
		narrow: []narrowKernel{{8, sgemmAVX512x8x8}, {16, sgemmAVX512x8x16}}, dwRows: dwAVX512, gather2: gather2AVX512, copyRows: copyRowsAVX512}
	avx2Kernel = &kernel{name: "avx2", mr: 6, nr: 16, mc: 120, kc: 512, nc: 1024, micro: sgemmAVX2x6x16, edge: true, dwRows: dwAVX2, gather2: gather2AVX2, copyRows: copyRowsAVX2}
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
