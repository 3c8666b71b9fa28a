//go:build amd64 && !noasm

package nn

import "github.com/qtool/qtool/internal/simd/cpu"

// AVX2+FMA row kernels of the depthwise convolution (dw_amd64.s). Each
// writes dst[0:n] (n a positive multiple of 8) with the bias plus the 3×3
// window sums over the input rows r0, r1, r2 with weights w[0:9]:
//
//	dst[j] = bias + Σ_{k,t} w[3k+t] · r_k[s·j + t]   (s = 1 or 2)
//
// The stride-2 kernel reads r_k[0 : 2n+2] (one element past the last tap),
// the stride-1 kernel r_k[0 : n+2]; callers guarantee those are in bounds.
//
//go:noescape
func dw3x3s1AVX2(dst, r0, r1, r2, w *float32, bias float32, n int)

//go:noescape
func dw3x3s2AVX2(dst, r0, r1, r2, w *float32, bias float32, n int)

// axpyAVX2 computes dst[j] += a·src[j] for j < n (n a positive multiple of 8).
//
//go:noescape
func axpyAVX2(dst, src *float32, a float32, n int)

var useDWAsm = cpu.X86.AVX2 && cpu.X86.FMA && cpu.Forced() != "generic"
