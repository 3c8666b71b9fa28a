package q8

import (
	"fmt"
	"math"
)

// AddParams is ONNX Runtime's QLinearAdd (com.microsoft) on 8-bit data:
// C = saturate(round_half_even((A−za)·sa/sc + (B−zb)·sb/sc) + zc).
type AddParams struct {
	ScaleA, ScaleB, ScaleC float32
	ZeroA, ZeroB, ZeroC    int32
	Signed                 bool // int8 data passed as bytes (else uint8)
}

// addConsts is what the kernels read (offsets fixed in gen_asm.py).
type addConsts struct {
	ra, rb, fixed float32
}

// AddU8 computes len(dst) elements of QLinearAdd. a and b have len(dst)
// elements, or one (broadcast).
//
// The arithmetic is MLAS's x86 kernel (ONNX Runtime) operation for
// operation, so results match it bit for bit (checked against ONNX Runtime
// by the qlinear goldens): ratios ra = sa/sc and rb = sb/sc in float32, a
// constant fixed = zc − fma(ra, za, rb·zb) into which a broadcast operand is
// folded (fma(a, ra, fixed)), then per element the fused multiply-adds
// fma(a, ra, fma(b, rb, fixed)), conversion with round half to even and
// saturating narrowing (an out-of-range conversion gives INT32_MIN, as
// VCVTPS2DQ does).
func AddU8(dst, a, b []uint8, p *AddParams) {
	n := len(dst)
	if (len(a) != n && len(a) != 1) || (len(b) != n && len(b) != 1) {
		panic(fmt.Sprintf("q8.AddU8: operands of %d and %d elements for %d", len(a), len(b), n))
	}
	if n == 0 {
		return
	}
	val := func(v uint8) float32 {
		if p.Signed {
			return float32(int8(v))
		}
		return float32(v)
	}
	c := addConsts{ra: p.ScaleA / p.ScaleC, rb: p.ScaleB / p.ScaleC}
	// ONNX Runtime's x86 build contracts zc − (ra·za + rb·zb) to
	// zc − fma(ra, za, rb·zb), with the operands swapped when A is the
	// single element (its kernel takes the scalar as B), and folds the scalar
	// in with one more fma: checked against it on every code pair for
	// parameters where the orders differ (addort_test.go). Spelled out so
	// that no compiler fuses anything else (Go does on arm64).
	za, zb := float32(p.ZeroA), float32(p.ZeroB)
	if len(a) == 1 && len(b) != 1 {
		c.fixed = float32(p.ZeroC) - fma32(c.rb, zb, float32(c.ra*za))
	} else {
		c.fixed = float32(p.ZeroC) - fma32(c.ra, za, float32(c.rb*zb))
	}
	sa, sb := 1, 1
	if len(a) == 1 {
		c.fixed = fma32(val(a[0]), c.ra, c.fixed)
		c.ra, sa = 0, 0
	}
	if len(b) == 1 {
		c.fixed = fma32(val(b[0]), c.rb, c.fixed)
		c.rb, sb = 0, 0
	}
	i := 0
	if addKern[0] != nil && active != isaGeneric {
		m := n &^ 7
		if m > 0 {
			k := addKern[0]
			if p.Signed {
				k = addKern[1]
			}
			k(&dst[0], &a[0], &b[0], m, sa, sb, &c)
			i = m
		}
	}
	for ; i < n; i++ {
		v := fma32(val(b[i*sb]), c.rb, c.fixed)
		v = fma32(val(a[i*sa]), c.ra, v)
		dst[i] = saturate8(cvtps2dq(v), p.Signed)
	}
}

// cvtps2dq is VCVTPS2DQ under the default rounding mode: round half to
// even, INT32_MIN for NaN and out-of-range values.
func cvtps2dq(v float32) int32 {
	r := math.RoundToEven(float64(v))
	if !(r >= math.MinInt32 && r <= math.MaxInt32) {
		return math.MinInt32
	}
	return int32(r)
}

func saturate8(v int32, signed bool) uint8 {
	lo, hi := int32(0), int32(255)
	if signed {
		lo, hi = -128, 127
	}
	v = min(max(v, lo), hi)
	return uint8(v)
}

// fma32 is a float32 fused multiply-add. x·y is exact in float64; the
// operands here (8-bit integers times scale ratios, plus a constant of
// similar magnitude) keep x·y+z exact in float64 too, so the one rounding to
// float32 is the fused operation's.
func fma32(x, y, z float32) float32 {
	return float32(math.FMA(float64(x), float64(y), float64(z)))
}

// BuildTable fills the 256-entry table of an elementwise 8-bit activation
// the way ONNX Runtime's QLinearLookupBase does: entry b (the raw byte, int8
// when signed) dequantizes as xs·float32(x − xz), goes through f, and is
// quantized by MLAS's QuantizeLinear: v/ys clamped to the output range minus
// yz, rounded half to even, plus yz.
func BuildTable(table *[256]uint8, signed bool, xs float32, xz int32, ys float32, yz int32, f func(float32) float32) {
	lo, hi := float32(0), float32(255)
	if signed {
		lo, hi = -128, 127
	}
	for i := range table {
		x := int32(i)
		if signed {
			x = int32(int8(uint8(i)))
		}
		v := f(xs * float32(x-xz))
		q := v / ys
		// MAXPS/MINPS order: a NaN quotient takes the bound.
		if !(q >= lo-float32(yz)) {
			q = lo - float32(yz)
		}
		if !(q <= hi-float32(yz)) {
			q = hi - float32(yz)
		}
		table[i] = uint8(int32(math.RoundToEven(float64(q))) + yz)
	}
}

// LogisticMLAS is the logistic function exactly as ONNX Runtime's MLAS
// computes it on x86 (Eigen's rational approximation, evaluated with fused
// multiply-adds): the table ONNX Runtime builds for QLinearSigmoid comes out
// of it, so a table built with it matches bit for bit.
func LogisticMLAS(x float32) float32 {
	const (
		a9, a7, a5, a3, a1      = 4.37031012579801e-11, 1.15627324459942e-07, 6.08574864600143e-05, 8.51377133304701e-03, 2.48287947061529e-01
		b10, b8, b6, b4, b2, b0 = 6.10247389755681e-13, 5.76102136993427e-09, 6.29106785017040e-06, 1.70198817374094e-03, 1.16817656904453e-01, 9.93151921023180e-01
	)
	v := x
	if !(v >= -18) { // MAXPS(lower, v): NaN gives the bound
		v = -18
	}
	if !(v <= 18) {
		v = 18
	}
	v2 := v * v
	p := fma32(v2, a9, a7)
	p = fma32(p, v2, a5)
	p = fma32(p, v2, a3)
	p = fma32(p, v2, a1)
	p *= v
	q := fma32(v2, b10, b8)
	q = fma32(q, v2, b6)
	q = fma32(q, v2, b4)
	q = fma32(q, v2, b2)
	q = fma32(q, v2, b0)
	r := p/q + 0.5
	return min(max(r, 0), 1)
}

// mulKern holds the uint8 and int8 MulU8 kernels for two whole operands
// (nil where there is none); they take a multiple of 16 elements.
var mulKern [2]func(dst, a, b *uint8, n int, za, zb int32, ratio, zc float32)

// MulU8 computes len(dst) elements of QLinearMul (com.microsoft) in MLAS's
// x86 order: the exact int32 product (a−za)(b−zb), times the float32 ratio
// (sa·sb)/sc, plus float32(zc) (separate multiply and add), converted with
// round half to even and narrowed with saturation. a and b have len(dst)
// elements or one (broadcast); p.Signed marks int8 data.
func MulU8(dst, a, b []uint8, p *AddParams) {
	n := len(dst)
	if (len(a) != n && len(a) != 1) || (len(b) != n && len(b) != 1) {
		panic(fmt.Sprintf("q8.MulU8: operands of %d and %d elements for %d", len(a), len(b), n))
	}
	val := func(v uint8) int32 {
		if p.Signed {
			return int32(int8(v))
		}
		return int32(v)
	}
	ratio := p.ScaleA * p.ScaleB / p.ScaleC
	zc := float32(p.ZeroC)
	i := 0
	if k := mulKern[b2i(p.Signed)]; k != nil && active != isaGeneric && len(a) == n && len(b) == n {
		if m := n &^ 15; m > 0 {
			k(&dst[0], &a[0], &b[0], m, p.ZeroA, p.ZeroB, ratio, zc)
			i = m
		}
	}
	for ; i < n; i++ {
		ia, ib := i, i
		if len(a) == 1 {
			ia = 0
		}
		if len(b) == 1 {
			ib = 0
		}
		prod := (val(a[ia]) - p.ZeroA) * (val(b[ib]) - p.ZeroB)
		// The conversion rounds the product before the add: Go may fuse
		// x·y+z into one FMADD on arm64, which MLAS's x86 order does not.
		v := float32(float32(prod) * ratio)
		v += zc
		// PACKSSDW then PACKUSWB/PACKSSWB: saturate through int16.
		r := min(max(cvtps2dq(v), -32768), 32767)
		dst[i] = saturate8(r, p.Signed)
	}
}
