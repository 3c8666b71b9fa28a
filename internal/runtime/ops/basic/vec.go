package basic

import "math"

// The float32 loops behind Relu, Clip and the four arithmetic ops, with the
// assembly versions chosen at run time. The Go versions are the reference
// twins: same results bit for bit.

// clampGo is max(lo, x) then min(hi, ·) with the x86 MAXPS/MINPS rule: the
// data element wins unless the bound is strictly beyond it, so NaN passes
// through and -0 stays -0.
func clampGo(dst, src []float32, lo, hi float32) {
	src = src[:len(dst)]
	for i, v := range src {
		if lo > v {
			v = lo
		}
		if hi < v {
			v = hi
		}
		dst[i] = v
	}
}

func clampF32(dst, src []float32, lo, hi float32) {
	if useAVX2 {
		clampAVX2(dst, src[:len(dst)], lo, hi)
		return
	}
	clampGo(dst, src, lo, hi)
}

func vvGo(code int, dst, a, b []float32) { arithRow(code, dst, a, 1, b, 1) }
func vsGo(code int, dst, a []float32, s float32) {
	arithRow(code, dst, a, 1, []float32{s}, 0)
}
func svGo(code int, dst, a []float32, s float32) {
	arithRow(code, dst, []float32{s}, 0, a, 1)
}

// arithRowF32 is arithRow for float32 through the assembly loops where it
// has them (Max and Min stay in Go).
func arithRowF32(code int, dst, a []float32, sa int, b []float32, sb int) {
	if !useAVX2 || code > opDiv || len(dst) < 8 {
		arithRow(code, dst, a, sa, b, sb)
		return
	}
	n := len(dst)
	switch {
	case sa == 1 && sb == 1:
		a, b = a[:n], b[:n]
		switch code {
		case opAdd:
			addVVAVX2(dst, a, b)
		case opSub:
			subVVAVX2(dst, a, b)
		case opMul:
			mulVVAVX2(dst, a, b)
		default:
			divVVAVX2(dst, a, b)
		}
	case sa == 1:
		a = a[:n]
		switch code {
		case opAdd:
			addVSAVX2(dst, a, b[0])
		case opSub:
			subVSAVX2(dst, a, b[0])
		case opMul:
			mulVSAVX2(dst, a, b[0])
		default:
			divVSAVX2(dst, a, b[0])
		}
	case sb == 1:
		b = b[:n]
		switch code {
		case opAdd:
			addVSAVX2(dst, b, a[0])
		case opSub:
			subSVAVX2(dst, b, a[0])
		case opMul:
			mulVSAVX2(dst, b, a[0])
		default:
			divSVAVX2(dst, b, a[0])
		}
	default:
		arithRow(code, dst, a, sa, b, sb)
	}
}

// hardSigmoidGo is clamp(alpha·x + beta, 0, 1), times x for HardSwish, with
// the product and the sum rounded separately (the conversions stop the
// compiler from fusing them) and the clamp of clampGo.
func hardSigmoidGo(dst, src []float32, alpha, beta float32, swish bool) {
	src = src[:len(dst)]
	for i, x := range src {
		t := float32(float32(alpha*x) + beta)
		if 0 > t {
			t = 0
		}
		if 1 < t {
			t = 1
		}
		if swish {
			t = float32(t * x)
		}
		dst[i] = t
	}
}

func hardSigmoidF32(dst, src []float32, alpha, beta float32, swish bool) {
	if useAVX2 {
		hardSigmoidAVX2(dst, src[:len(dst)], alpha, beta, swish)
		return
	}
	hardSigmoidGo(dst, src, alpha, beta, swish)
}

// leakyGo scales the elements whose sign bit is set (so -0 and negative
// NaNs too, as the blend in leakyAVX2 does).
func leakyGo(dst, src []float32, alpha float32) {
	src = src[:len(dst)]
	for i, x := range src {
		if math.Float32bits(x)>>31 != 0 {
			x *= alpha
		}
		dst[i] = x
	}
}

func leakyF32(dst, src []float32, alpha float32) {
	if useAVX2 {
		leakyAVX2(dst, src[:len(dst)], alpha)
		return
	}
	leakyGo(dst, src, alpha)
}
