//go:build !amd64

package basic

const useAVX2 = false

func clampAVX2(dst, src []float32, lo, hi float32) { clampGo(dst, src, lo, hi) }
func addVVAVX2(dst, a, b []float32)                { vvGo(opAdd, dst, a, b) }
func subVVAVX2(dst, a, b []float32)                { vvGo(opSub, dst, a, b) }
func mulVVAVX2(dst, a, b []float32)                { vvGo(opMul, dst, a, b) }
func divVVAVX2(dst, a, b []float32)                { vvGo(opDiv, dst, a, b) }
func addVSAVX2(dst, a []float32, s float32)        { vsGo(opAdd, dst, a, s) }
func subVSAVX2(dst, a []float32, s float32)        { vsGo(opSub, dst, a, s) }
func mulVSAVX2(dst, a []float32, s float32)        { vsGo(opMul, dst, a, s) }
func divVSAVX2(dst, a []float32, s float32)        { vsGo(opDiv, dst, a, s) }
func subSVAVX2(dst, a []float32, s float32)        { svGo(opSub, dst, a, s) }
func divSVAVX2(dst, a []float32, s float32)        { svGo(opDiv, dst, a, s) }

func hardSigmoidAVX2(dst, src []float32, alpha, beta float32, swish bool) {
	hardSigmoidGo(dst, src, alpha, beta, swish)
}

func leakyAVX2(dst, src []float32, alpha float32) { leakyGo(dst, src, alpha) }
