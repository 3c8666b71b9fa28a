//go:build !amd64 || noasm

package observe

const useAVX2 = false

func minMaxAVX2(x []float32) (mn, mx float32, unordered bool) { panic("unreachable") }

func binIndexAVX2(x []float32, idx []int32, lo, hi, w, n float32, last, dump int32) (mn, mx float32, unordered bool) {
	panic("unreachable")
}

func countLanesAsm(idx []int32, cnt []uint32) { panic("unreachable") }
