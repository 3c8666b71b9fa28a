package basic

import "github.com/qtool/qtool/internal/simd/cpu"

// useAVX2 selects the assembly loops in vec_amd64.s; QTOOL_ISA=generic
// pins the pure-Go twins.
var useAVX2 = cpu.X86.AVX2 && cpu.Forced() != "generic"

//go:noescape
func clampAVX2(dst, src []float32, lo, hi float32)

//go:noescape
func addVVAVX2(dst, a, b []float32)

//go:noescape
func subVVAVX2(dst, a, b []float32)

//go:noescape
func mulVVAVX2(dst, a, b []float32)

//go:noescape
func divVVAVX2(dst, a, b []float32)

//go:noescape
func addVSAVX2(dst, a []float32, s float32)

//go:noescape
func subVSAVX2(dst, a []float32, s float32)

//go:noescape
func mulVSAVX2(dst, a []float32, s float32)

//go:noescape
func divVSAVX2(dst, a []float32, s float32)

//go:noescape
func subSVAVX2(dst, a []float32, s float32)

//go:noescape
func divSVAVX2(dst, a []float32, s float32)

//go:noescape
func hardSigmoidAVX2(dst, src []float32, alpha, beta float32, swish bool)

//go:noescape
func leakyAVX2(dst, src []float32, alpha float32)
