//go:build !noasm

package tensor

import "github.com/qtool/qtool/internal/simd/cpu"

type avx2Params struct {
	scale, lo, hi float32
	zp            int32
	flags         int32
}

//go:noescape
func quant8AVX2(dst *byte, src *float32, n int, p *avx2Params)

// useAVX2 selects the assembly quantize loop; QTOOL_ISA=generic forces the
// pure-Go loop (quantTorch/quantONNX, its twin: TestQuantAVX2Twin checks
// they agree on every adversarial value).
var useAVX2 = cpu.X86.AVX2 && cpu.Forced() != "generic"

// quant8Fast quantizes the largest multiple of 32 elements of src with
// AVX2 and returns how many it did. dst must be a []uint8 or []int8 with at
// least len(src) elements.
func quant8Fast(dst []byte, src []float32, scale float32, zp, qmin, qmax int32, rule RoundingRule, signed bool) int {
	n := len(src) &^ 31
	if !useAVX2 || n == 0 {
		return 0
	}
	p := avx2Params{scale: scale, lo: float32(qmin - zp), hi: float32(qmax - zp), zp: zp}
	if rule == RuleONNX {
		p.flags |= 1
	} else {
		p.scale = 1 / scale
		p.flags |= 2
	}
	if signed {
		p.flags |= 4
	}
	quant8AVX2(&dst[0], &src[0], n, &p)
	return n
}

type avx2Lanes struct {
	scale, lo, hi *float32
	zp            *int32
	period        int
	flags         int32
}

//go:noescape
func quant8LanesAVX2(dst *byte, src *float32, n int, p *avx2Lanes)

// maxLanePeriod bounds the per-element qparams tables (16 bytes per entry).
const maxLanePeriod = 1 << 14

// quant8LastAxisFast quantizes rows of c channels (channels on the last
// axis) with AVX2, using qparams tables that repeat every lcm(c, 32)
// elements. It returns how many elements it did (a multiple of the period;
// the caller finishes the rest).
func quant8LastAxisFast(dst []byte, src []float32, scales []float32, zps []int32, qmin, qmax int32, rule RoundingRule, signed bool) int {
	c := len(scales)
	if !useAVX2 || c == 0 {
		return 0
	}
	period := c
	for period%32 != 0 {
		period += c
	}
	if period > maxLanePeriod {
		return 0
	}
	n := len(src) / period * period
	if n == 0 {
		return 0
	}
	sc := make([]float32, period)
	lo := make([]float32, period)
	hi := make([]float32, period)
	zp := make([]int32, period)
	for i := range sc {
		ch := i % c
		sc[i] = scales[ch]
		if rule == RuleTorch {
			sc[i] = 1 / scales[ch]
		}
		lo[i] = float32(qmin - zps[ch])
		hi[i] = float32(qmax - zps[ch])
		zp[i] = zps[ch]
	}
	p := avx2Lanes{scale: &sc[0], lo: &lo[0], hi: &hi[0], zp: &zp[0], period: period}
	if rule == RuleONNX {
		p.flags |= 1
	} else {
		p.flags |= 2
	}
	if signed {
		p.flags |= 4
	}
	quant8LanesAVX2(&dst[0], &src[0], n, &p)
	return n
}

//go:noescape
func dequant8AVX2(dst *float32, src *byte, n int, scale float32, zp int32, signed bool)

// dequant8Fast dequantizes the largest multiple of 32 elements with AVX2
// and returns how many it did.
func dequant8Fast(dst []float32, src []byte, scale float32, zp int32, signed bool) int {
	n := len(dst) &^ 31
	if !useAVX2 || n == 0 {
		return 0
	}
	dequant8AVX2(&dst[0], &src[0], n, scale, zp, signed)
	return n
}

//go:noescape
func dequant8LanesAVX2(dst *float32, src *byte, n int, p *avx2Lanes)

// dequant8LastAxisFast dequantizes rows of c channels (last axis) with
// AVX2 and returns how many elements it did (a multiple of lcm(c, 32)).
func dequant8LastAxisFast(dst []float32, src []byte, scales []float32, zps []int32, signed bool) int {
	c := len(scales)
	if !useAVX2 || c == 0 {
		return 0
	}
	period := c
	for period%32 != 0 {
		period += c
	}
	if period > maxLanePeriod {
		return 0
	}
	n := len(dst) / period * period
	if n == 0 {
		return 0
	}
	sc := make([]float32, period)
	zp := make([]int32, period)
	for i := range sc {
		sc[i] = scales[i%c]
		zp[i] = zps[i%c]
	}
	p := avx2Lanes{scale: &sc[0], zp: &zp[0], period: period}
	if signed {
		p.flags = 4
	}
	dequant8LanesAVX2(&dst[0], &src[0], n, &p)
	return n
}
