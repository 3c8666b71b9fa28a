package q8

import "fmt"

// mulConsts is the operation MulScalarU8 applies.
type mulConsts struct {
	za, k     int32
	ratio, zc float32
}

// mulScalarKern is the SIMD MulScalarU8 for uint8 and int8 data (nil where
// there is none); it takes a multiple of 16 elements.
var mulScalarKern [2]func(dst, src *uint8, n int, za, k int32, ratio, zc float32)

// MulScalarSIMD reports whether MulScalarU8 runs a SIMD kernel on the
// active path (then it beats a 256-entry table at any run length).
func MulScalarSIMD() bool {
	return mulScalarKern[0] != nil && active != isaGeneric
}

// MulScalarU8 is MulU8 with one operand a single element: dst[i] is
// QLinearMul of src[i] (zero point za) and a scalar whose code minus its
// zero point is k; p supplies the scales, the output zero point and
// Signed (p.ZeroA and p.ZeroB are not read, so the caller may pass the
// scalar as either operand: the product is commutative). Bit for bit
// MulU8, operation for operation: the exact int32 product, times the
// float32 ratio sa·sb/sc, plus float32(zc) as a separate add, rounded half
// to even (VCVTPS2DQ: a value at or beyond ±2^31 gives INT32_MIN),
// saturated through int16 and then to 8 bits.
func MulScalarU8(dst, src []uint8, k, za int32, p *AddParams) {
	if len(dst) != len(src) {
		panic(fmt.Sprintf("q8.MulScalarU8: %d elements into %d", len(src), len(dst)))
	}
	c := mulConsts{za: za, k: k, ratio: p.ScaleA * p.ScaleB / p.ScaleC, zc: float32(p.ZeroC)}
	i := 0
	if MulScalarSIMD() {
		if m := len(src) &^ 15; m > 0 {
			kern := mulScalarKern[0]
			if p.Signed {
				kern = mulScalarKern[1]
			}
			kern(&dst[0], &src[0], m, c.za, c.k, c.ratio, c.zc)
			i = m
		}
	}
	mulScalarGo(dst[i:], src[i:], c, p.Signed)
}

// mulScalarGo is the kernels' Go twin. Clamping before rounding is the
// same as after (the bounds are integers and rounding is monotone), and
// within the 8-bit range adding and subtracting 1.5·2^23 rounds half to
// even, so no float64 conversion is needed per element.
func mulScalarGo(dst, src []uint8, c mulConsts, signed bool) {
	if len(src) == 0 {
		return
	}
	lo, hi := float32(0), float32(255)
	if signed {
		lo, hi = -128, 127
	}
	const magic = float32(12582912)
	ratio, zc, za, k := c.ratio, c.zc, c.za, c.k
	_ = dst[len(src)-1]
	for i, x := range src {
		v32 := int32(x)
		if signed {
			v32 = int32(int8(x))
		}
		// The explicit conversions keep a compiler from fusing the
		// multiply and the add (Go may on arm64): MulU8's x86 order has
		// two roundings.
		v := float32(float32((v32-za)*k) * ratio)
		v = float32(v + zc)
		if !(v < 2147483648) || v <= -2147483648 {
			v = lo // INT32_MIN, saturated
		}
		v = min(max(v, lo), hi)
		r := float32((v + magic) - magic)
		if signed {
			dst[i] = uint8(int8(r))
		} else {
			dst[i] = uint8(r)
		}
	}
}
