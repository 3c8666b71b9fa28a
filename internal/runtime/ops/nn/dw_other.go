//go:build !amd64 || noasm

package nn

// Without the amd64 assembly the depthwise kernel uses its Go loops only;
// these are never called.

func dw3x3s1AVX2(dst, r0, r1, r2, w *float32, bias float32, n int) { panic("unreachable") }
func dw3x3s2AVX2(dst, r0, r1, r2, w *float32, bias float32, n int) { panic("unreachable") }
func axpyAVX2(dst, src *float32, a float32, n int)                 { panic("unreachable") }

var useDWAsm = false
