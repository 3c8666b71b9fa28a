//go:build !noasm

package observe

import "github.com/qtool/qtool/internal/simd/cpu"

//go:noescape
func minMaxAVX2(x []float32) (mn, mx float32, unordered bool)

//go:noescape
func binIndexAVX2(x []float32, idx []int32, lo, hi, w, n float32, last, dump int32) (mn, mx float32, unordered bool)

//go:noescape
func countLanesAsm(idx []int32, cnt []uint32)

var useAVX2 = cpu.X86.AVX2 && cpu.Forced() != "generic"
