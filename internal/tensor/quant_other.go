//go:build !amd64 || noasm

package tensor

var useAVX2 = false

func quant8Fast(dst []byte, src []float32, scale float32, zp, qmin, qmax int32, rule RoundingRule, signed bool) int {
	return 0
}

func quant8LastAxisFast(dst []byte, src []float32, scales []float32, zps []int32, qmin, qmax int32, rule RoundingRule, signed bool) int {
	return 0
}

func dequant8Fast(dst []float32, src []byte, scale float32, zp int32, signed bool) int { return 0 }

func dequant8LastAxisFast(dst []float32, src []byte, scales []float32, zps []int32, signed bool) int {
	return 0
}
