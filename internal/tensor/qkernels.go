package tensor

import (
	"math"
	"unsafe"
)

// RoundingRule selects how a float is mapped to an integer step.
type RoundingRule int

const (
	// RuleTorch is PyTorch 1.13's CPU quantize_val (non-FBGEMM build):
	//   inv = 1.0f / float(scale); v = float(zp) + nearbyint(x * inv)
	//   q = clamp((int64)v, qmin, qmax)
	// all in float32. The (int64) conversion of NaN or of |v| >= 2^63 gives
	// INT64_MIN on x86, so NaN and values at or above 2^63·scale become qmin
	// (not qmax): the goldens confirm it.
	RuleTorch RoundingRule = iota
	// RuleONNX is ONNX QuantizeLinear: q = clamp(rne(x / scale) + zp) with a
	// float32 division. NaN becomes qmin, as in ONNX Runtime (its max_ps
	// clamp returns the bound for a NaN operand).
	RuleONNX
)

func (r RoundingRule) String() string {
	if r == RuleONNX {
		return "onnx"
	}
	return "torch"
}

// magic is 1.5·2^23. For |t| <= 2^22, t + magic lies in [2^23, 2^24), where
// float32's spacing is exactly 1, so the addition itself rounds t to an
// integer with the current rounding mode (round-half-even, Go's only mode);
// subtracting magic again is exact (both operands are in [2^23, 2^24) and
// their difference is an integer below 2^23). So (t+magic)-magic ==
// RoundToEven(t) for |t| <= 2^22. Callers clamp t into the quantized range
// first (at most 2·65535 < 2^22 away from 0), which commutes with rounding
// because the bounds are integers and rounding is monotone.
// TestMagicRound checks it against math.RoundToEven exhaustively over every
// float32 in [-2^22, 2^22].
const magic = float32(12582912)

func roundMagic(t float32) float32 { return (t + magic) - magic }

// two63 is 2^63 as a float32 (exact).
const two63 = float32(9223372036854775808)

type small interface {
	~uint8 | ~int8 | ~int16 | ~uint16
}

// quantTorch quantizes with RuleTorch for 8- and 16-bit types.
//
// Speed: the clamp is done on the rounded int64 with min/max, which compile
// to conditional moves; float clamps with branches mispredict on real data
// (about half the values of a ReLU-less activation fall below zp) and
// run 4x slower. Correctness of rounding before clamping:
//   - |t| <= 2^22: (t+magic)-magic is RoundToEven(t) (see magic).
//   - 2^22 < |t| < 2^63: float addition is monotone, so (t+magic)-magic is
//     beyond ±2^22 on t's side, which is outside every 8/16-bit range, so
//     the clamp gives the same bound as clamping RoundToEven(t) would.
//   - NaN or t >= 2^63: PyTorch's (int64) conversion gives INT64_MIN, so
//     qmin. Go's conversion of such values is implementation-defined (amd64
//     gives INT64_MIN, arm64 saturates), hence the explicit select.
//   - t <= -2^63: any conversion result is <= lo after the clamp's max.
//
// PyTorch adds zp in float32 before converting; for 8/16-bit that float
// addition is exact wherever the result is not clamped anyway.
func quantTorch[T small](dst []T, src []float32, inv float32, zp, qmin, qmax int32) {
	lo, hi := int64(qmin-zp), int64(qmax-zp)
	_ = dst[len(src)-1:]
	for i, x := range src {
		// The explicit conversion rounds the product, so that no compiler
		// may fuse it with the magic addition into an FMA (Go allows that
		// on arm64).
		t := float32(x * inv)
		r := int64((t + magic) - magic)
		if !(t < two63) {
			r = lo
		}
		r = min(max(r, lo), hi)
		dst[i] = T(int32(r) + zp)
	}
}

// quantONNX quantizes with RuleONNX for 8- and 16-bit types; the same
// argument as quantTorch, except that +huge saturates to qmax and NaN to
// qmin.
func quantONNX[T small](dst []T, src []float32, scale float32, zp, qmin, qmax int32) {
	lo, hi := int64(qmin-zp), int64(qmax-zp)
	_ = dst[len(src)-1:]
	for i, x := range src {
		t := x / scale
		r := int64((t + magic) - magic)
		if t >= two63 {
			r = hi
		}
		if t != t {
			r = lo
		}
		r = min(max(r, lo), hi)
		dst[i] = T(int32(r) + zp)
	}
}

// quantTorchValue is RuleTorch for one value into [qmin, qmax] with the
// float32 addition of the zero point that matters for qint32.
func quantTorchValue(x, inv float32, zp int32, qmin, qmax int64) int64 {
	t := float32(x * inv)
	r := float32(math.RoundToEven(float64(t)))
	v := float32(zp) + r
	var q int64
	if v != v || v >= two63 || v < -two63 {
		q = math.MinInt64
	} else {
		q = int64(v)
	}
	if q < qmin {
		q = qmin
	}
	if q > qmax {
		q = qmax
	}
	return q
}

// quantONNXValue is RuleONNX for one value, in exact integer arithmetic
// after the rounding.
func quantONNXValue(x, scale float32, zp int32, qmin, qmax int64) int64 {
	t := x / scale
	if t != t {
		return qmin
	}
	r := math.RoundToEven(float64(t)) + float64(zp)
	if r < float64(qmin) {
		return qmin
	}
	if r > float64(qmax) {
		return qmax
	}
	return int64(r)
}

func quantInt32(dst []int32, src []float32, scale float32, zp int32, rule RoundingRule) {
	if rule == RuleONNX {
		for i, x := range src {
			dst[i] = int32(quantONNXValue(x, scale, zp, math.MinInt32, math.MaxInt32))
		}
		return
	}
	inv := 1 / scale
	for i, x := range src {
		dst[i] = int32(quantTorchValue(x, inv, zp, math.MinInt32, math.MaxInt32))
	}
}

// quantizeRun quantizes src into dst (a slice of dt's Go type) starting at
// element off, with one scale and zero point.
func quantizeRun(dt DType, dst any, off int, src []float32, scale float32, zp int32, rule RoundingRule) {
	if len(src) == 0 {
		return
	}
	qmin, qmax := storageRange(dt)
	n := len(src)
	inv := 1 / scale
	switch d := dst.(type) {
	case []uint8:
		k := quant8Fast(d[off:off+n], src, scale, zp, int32(qmin), int32(qmax), rule, false)
		off, src, n = off+k, src[k:], n-k
		if n == 0 {
			return
		}
		if rule == RuleONNX {
			quantONNX(d[off:off+n], src, scale, zp, int32(qmin), int32(qmax))
		} else {
			quantTorch(d[off:off+n], src, inv, zp, int32(qmin), int32(qmax))
		}
	case []int8:
		k := quant8Fast(unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(d))), len(d))[off:off+n], src, scale, zp, int32(qmin), int32(qmax), rule, true)
		off, src, n = off+k, src[k:], n-k
		if n == 0 {
			return
		}
		if rule == RuleONNX {
			quantONNX(d[off:off+n], src, scale, zp, int32(qmin), int32(qmax))
		} else {
			quantTorch(d[off:off+n], src, inv, zp, int32(qmin), int32(qmax))
		}
	case []uint16:
		if rule == RuleONNX {
			quantONNX(d[off:off+n], src, scale, zp, int32(qmin), int32(qmax))
		} else {
			quantTorch(d[off:off+n], src, inv, zp, int32(qmin), int32(qmax))
		}
	case []int16:
		if rule == RuleONNX {
			quantONNX(d[off:off+n], src, scale, zp, int32(qmin), int32(qmax))
		} else {
			quantTorch(d[off:off+n], src, inv, zp, int32(qmin), int32(qmax))
		}
	case []int32:
		quantInt32(d[off:off+n], src, scale, zp, rule)
	}
}

// dequantTable fills tab[i] with the real value of integer i+base for
// 8-bit types: float32(q - zp) * scale. For 8-bit q and an in-range zero
// point the product of |q-zp| <= 2^9 and a 24-bit mantissa is exact in
// float64, so this single float32 rounding also equals PyTorch's per-channel
// float64 product rounded to float32.
func dequantTable(tab *[256]float32, base int32, scale float32, zp int32) {
	for i := range tab {
		tab[i] = float32(int32(i)+base-zp) * scale
	}
}

func dequantU8(dst []float32, src []uint8, tab *[256]float32) {
	_ = dst[len(src)-1:]
	for i, q := range src {
		dst[i] = tab[q]
	}
}

func dequantI8(dst []float32, src []int8, tab *[256]float32) {
	_ = dst[len(src)-1:]
	for i, q := range src {
		dst[i] = tab[uint8(q)^0x80]
	}
}

// dequantizeRun writes the real values of src[off:off+len(dst)].
// perChannel selects PyTorch's per-channel arithmetic for int32: the
// difference q - zp (int64) is converted to float32 and multiplied by the
// scale in float64 (torch keeps per-channel scales as doubles), then rounded
// to float32; per-tensor int32 subtracts in wrapping int32 and multiplies in
// float32, as PyTorch's per-tensor path does. The goldens pin both down.
func dequantizeRun(dst []float32, src any, off int, scale float32, zp int32, perChannel bool) {
	n := len(dst)
	if n == 0 {
		return
	}
	switch s := src.(type) {
	case []uint8:
		k := dequant8Fast(dst, s[off:off+n], scale, zp, false)
		if k == n {
			return
		}
		var tab [256]float32
		dequantTable(&tab, 0, scale, zp)
		dequantU8(dst[k:], s[off+k:off+n], &tab)
	case []int8:
		b := unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(s))), len(s))
		k := dequant8Fast(dst, b[off:off+n], scale, zp, true)
		if k == n {
			return
		}
		var tab [256]float32
		dequantTable(&tab, -128, scale, zp)
		dequantI8(dst[k:], s[off+k:off+n], &tab)
	case []uint16:
		for i, q := range s[off : off+n] {
			dst[i] = float32(int32(q)-zp) * scale
		}
	case []int16:
		for i, q := range s[off : off+n] {
			dst[i] = float32(int32(q)-zp) * scale
		}
	case []int32:
		if perChannel {
			for i, q := range s[off : off+n] {
				dst[i] = float32(float64(float32(int64(q)-int64(zp))) * float64(scale))
			}
		} else {
			for i, q := range s[off : off+n] {
				dst[i] = float32(q-zp) * scale
			}
		}
	}
}
