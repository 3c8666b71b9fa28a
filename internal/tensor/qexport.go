package tensor

// QuantizeInto quantizes src into dst's elements [off, off+len(src)) with
// one scale and zero point. It is the building block for kernels that split
// work over threads or channels; the caller has validated dst's dtype
// (Uint8, Int8, Uint16, Int16 or Int32), bounds, scale > 0 and the zero
// point's range.
func QuantizeInto(dst *Tensor, off int, src []float32, scale float32, zeroPoint int32, rule RoundingRule) {
	quantizeRun(dst.DType, dst.Data, off, src, scale, zeroPoint, rule)
}

// DequantizeLinearInto writes ONNX DequantizeLinear's (x - zp) * scale for
// src's elements [off, off+len(dst)): the difference is exact (int64) and
// the product is one float32 multiplication. For 8- and 16-bit types this is
// also PyTorch's per-tensor and per-channel result.
func DequantizeLinearInto(dst []float32, src *Tensor, off int, scale float32, zeroPoint int32) {
	if v, ok := src.Data.([]int32); ok {
		for i, q := range v[off : off+len(dst)] {
			dst[i] = float32(int64(q)-int64(zeroPoint)) * scale
		}
		return
	}
	dequantizeRun(dst, src.Data, off, scale, zeroPoint, false)
}
