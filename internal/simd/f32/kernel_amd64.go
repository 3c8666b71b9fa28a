//go:build amd64 && !noasm

package f32

import "github.com/qtool/qtool/internal/simd/cpu"

//go:generate go run gen_amd64.go

//go:noescape
func sgemmAVX512x8x32(kc int, a, b []float32, ldb int, c []float32, ldc int, ep *tileEp)

//go:noescape
func sgemmAVX2x6x16(kc int, a, b []float32, ldb int, c []float32, ldc int, ep *tileEp)

// fmaPeakAVX512 and fmaPeakAVX2 run n iterations of 12 independent
// register-only FMAs (zmm / ymm): the benchmarks' peak reference.
//
//go:noescape
func fmaPeakAVX512(n int)

//go:noescape
func fmaPeakAVX2(n int)

var (
	avx512Kernel = &kernel{name: "avx512", mr: 8, nr: 32, mc: 128, kc: 512, nc: 1024, micro: sgemmAVX512x8x32, edge: true, dwRow: dwRowGeneric}
	avx2Kernel   = &kernel{name: "avx2", mr: 6, nr: 16, mc: 120, kc: 512, nc: 1024, micro: sgemmAVX2x6x16, edge: true, dwRow: dwRowGeneric}
)

func archKernels() []*kernel {
	var ks []*kernel
	if cpu.X86.AVX512F {
		ks = append(ks, avx512Kernel)
	}
	if cpu.X86.AVX2 && cpu.X86.FMA {
		ks = append(ks, avx2Kernel)
	}
	return ks
}
