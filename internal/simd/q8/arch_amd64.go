package q8

import (
	"unsafe"

	"github.com/klauspost/cpuid/v2"

	"github.com/qtool/qtool/internal/simd/cpu"
)

//go:generate python3 gen_asm.py

//go:noescape
func kernVNNI512R1(k4 int, rows *[mr]*uint8, b *int8, c *int32)

//go:noescape
func kernVNNI512R2(k4 int, rows *[mr]*uint8, b *int8, c *int32)

//go:noescape
func kernVNNI512R3(k4 int, rows *[mr]*uint8, b *int8, c *int32)

//go:noescape
func kernVNNI512R4(k4 int, rows *[mr]*uint8, b *int8, c *int32)

//go:noescape
func kernVNNI512R5(k4 int, rows *[mr]*uint8, b *int8, c *int32)

//go:noescape
func kernVNNI512R6(k4 int, rows *[mr]*uint8, b *int8, c *int32)

//go:noescape
func kernVNNI512F1V1(k4 int, rows *[mr]*uint8, b *int8, e *epi512)

//go:noescape
func kernVNNI512I1V1(kc4 int, nk int, base *uint8, offs *int, b *int8, e *epi512)

//go:noescape
func kernVNNI512F1V2(k4 int, rows *[mr]*uint8, b *int8, e *epi512)

//go:noescape
func kernVNNI512I1V2(kc4 int, nk int, base *uint8, offs *int, b *int8, e *epi512)

//go:noescape
func kernVNNI512F1V3(k4 int, rows *[mr]*uint8, b *int8, e *epi512)

//go:noescape
func kernVNNI512I1V3(kc4 int, nk int, base *uint8, offs *int, b *int8, e *epi512)

//go:noescape
func kernVNNI512F1V4(k4 int, rows *[mr]*uint8, b *int8, e *epi512)

//go:noescape
func kernVNNI512I1V4(kc4 int, nk int, base *uint8, offs *int, b *int8, e *epi512)

//go:noescape
func kernVNNI512F2V1(k4 int, rows *[mr]*uint8, b *int8, e *epi512)

//go:noescape
func kernVNNI512I2V1(kc4 int, nk int, base *uint8, offs *int, b *int8, e *epi512)

//go:noescape
func kernVNNI512F2V2(k4 int, rows *[mr]*uint8, b *int8, e *epi512)

//go:noescape
func kernVNNI512I2V2(kc4 int, nk int, base *uint8, offs *int, b *int8, e *epi512)

//go:noescape
func kernVNNI512F2V3(k4 int, rows *[mr]*uint8, b *int8, e *epi512)

//go:noescape
func kernVNNI512I2V3(kc4 int, nk int, base *uint8, offs *int, b *int8, e *epi512)

//go:noescape
func kernVNNI512F2V4(k4 int, rows *[mr]*uint8, b *int8, e *epi512)

//go:noescape
func kernVNNI512I2V4(kc4 int, nk int, base *uint8, offs *int, b *int8, e *epi512)

//go:noescape
func kernVNNI512F3V1(k4 int, rows *[mr]*uint8, b *int8, e *epi512)

//go:noescape
func kernVNNI512I3V1(kc4 int, nk int, base *uint8, offs *int, b *int8, e *epi512)

//go:noescape
func kernVNNI512F3V2(k4 int, rows *[mr]*uint8, b *int8, e *epi512)

//go:noescape
func kernVNNI512I3V2(kc4 int, nk int, base *uint8, offs *int, b *int8, e *epi512)

//go:noescape
func kernVNNI512F3V3(k4 int, rows *[mr]*uint8, b *int8, e *epi512)

//go:noescape
func kernVNNI512I3V3(kc4 int, nk int, base *uint8, offs *int, b *int8, e *epi512)

//go:noescape
func kernVNNI512F3V4(k4 int, rows *[mr]*uint8, b *int8, e *epi512)

//go:noescape
func kernVNNI512I3V4(kc4 int, nk int, base *uint8, offs *int, b *int8, e *epi512)

//go:noescape
func kernVNNI512F4V1(k4 int, rows *[mr]*uint8, b *int8, e *epi512)

//go:noescape
func kernVNNI512I4V1(kc4 int, nk int, base *uint8, offs *int, b *int8, e *epi512)

//go:noescape
func kernVNNI512F4V2(k4 int, rows *[mr]*uint8, b *int8, e *epi512)

//go:noescape
func kernVNNI512I4V2(kc4 int, nk int, base *uint8, offs *int, b *int8, e *epi512)

//go:noescape
func kernVNNI512F4V3(k4 int, rows *[mr]*uint8, b *int8, e *epi512)

//go:noescape
func kernVNNI512I4V3(kc4 int, nk int, base *uint8, offs *int, b *int8, e *epi512)

//go:noescape
func kernVNNI512F4V4(k4 int, rows *[mr]*uint8, b *int8, e *epi512)

//go:noescape
func kernVNNI512I4V4(kc4 int, nk int, base *uint8, offs *int, b *int8, e *epi512)

//go:noescape
func kernVNNI512F5V1(k4 int, rows *[mr]*uint8, b *int8, e *epi512)

//go:noescape
func kernVNNI512I5V1(kc4 int, nk int, base *uint8, offs *int, b *int8, e *epi512)

//go:noescape
func kernVNNI512F5V2(k4 int, rows *[mr]*uint8, b *int8, e *epi512)

//go:noescape
func kernVNNI512I5V2(kc4 int, nk int, base *uint8, offs *int, b *int8, e *epi512)

//go:noescape
func kernVNNI512F5V3(k4 int, rows *[mr]*uint8, b *int8, e *epi512)

//go:noescape
func kernVNNI512I5V3(kc4 int, nk int, base *uint8, offs *int, b *int8, e *epi512)

//go:noescape
func kernVNNI512F5V4(k4 int, rows *[mr]*uint8, b *int8, e *epi512)

//go:noescape
func kernVNNI512I5V4(kc4 int, nk int, base *uint8, offs *int, b *int8, e *epi512)

//go:noescape
func kernVNNI512F6V1(k4 int, rows *[mr]*uint8, b *int8, e *epi512)

//go:noescape
func kernVNNI512I6V1(kc4 int, nk int, base *uint8, offs *int, b *int8, e *epi512)

//go:noescape
func kernVNNI512F6V2(k4 int, rows *[mr]*uint8, b *int8, e *epi512)

//go:noescape
func kernVNNI512I6V2(kc4 int, nk int, base *uint8, offs *int, b *int8, e *epi512)

//go:noescape
func kernVNNI512F6V3(k4 int, rows *[mr]*uint8, b *int8, e *epi512)

//go:noescape
func kernVNNI512I6V3(kc4 int, nk int, base *uint8, offs *int, b *int8, e *epi512)

//go:noescape
func kernVNNI512F6V4(k4 int, rows *[mr]*uint8, b *int8, e *epi512)

//go:noescape
func kernVNNI512I6V4(kc4 int, nk int, base *uint8, offs *int, b *int8, e *epi512)

// kernVNNI512F[R−1][V−1] is the fused R-row kernel over the first V
// 16-column vectors of a panel.
var kernVNNI512F = [mr][4]func(k4 int, rows *[mr]*uint8, b *int8, e *epi512){
	{kernVNNI512F1V1, kernVNNI512F1V2, kernVNNI512F1V3, kernVNNI512F1V4},
	{kernVNNI512F2V1, kernVNNI512F2V2, kernVNNI512F2V3, kernVNNI512F2V4},
	{kernVNNI512F3V1, kernVNNI512F3V2, kernVNNI512F3V3, kernVNNI512F3V4},
	{kernVNNI512F4V1, kernVNNI512F4V2, kernVNNI512F4V3, kernVNNI512F4V4},
	{kernVNNI512F5V1, kernVNNI512F5V2, kernVNNI512F5V3, kernVNNI512F5V4},
	{kernVNNI512F6V1, kernVNNI512F6V2, kernVNNI512F6V3, kernVNNI512F6V4},
}

// kernVNNI512I[R−1][V−1] is the indirect counterpart.
var kernVNNI512I = [mr][4]func(kc4 int, nk int, base *uint8, offs *int, b *int8, e *epi512){
	{kernVNNI512I1V1, kernVNNI512I1V2, kernVNNI512I1V3, kernVNNI512I1V4},
	{kernVNNI512I2V1, kernVNNI512I2V2, kernVNNI512I2V3, kernVNNI512I2V4},
	{kernVNNI512I3V1, kernVNNI512I3V2, kernVNNI512I3V3, kernVNNI512I3V4},
	{kernVNNI512I4V1, kernVNNI512I4V2, kernVNNI512I4V3, kernVNNI512I4V4},
	{kernVNNI512I5V1, kernVNNI512I5V2, kernVNNI512I5V3, kernVNNI512I5V4},
	{kernVNNI512I6V1, kernVNNI512I6V2, kernVNNI512I6V3, kernVNNI512I6V4},
}

// epi512 is the output stage as the fused kernels read it (offsets fixed in
// gen_asm.py).
type epi512 struct {
	colTerm *int32   // 0: at the panel's first column
	negBZ   *int32   // 8
	scale   *float32 // 16
	rowSum  *int32   // 24: at the tile's first row
	// 32: output element (i0, c0). An address, not a Go pointer: the
	// indirect kernels advance it in place (the caller's Output keeps
	// the buffer alive).
	dst    uintptr
	ldc    int       // 40: output row stride in bytes
	colOff int       // 48: (c0 − panel start) in bytes
	mask   [4]uint16 // 56: columns c0..c1 of the panel
	mode   int32     // 64: 0 int32, 1 bytes, 2 bytes with every b0 zero, 3/4 that for uint8/int8 without a clamp of its own (noClamp)
	zp     int32     // 68
	fmin   float32   // 72
	fmax   float32   // 76
	_      uintptr   // 80: the indirect kernels keep their next table here
	tiles  int       // 88: tiles per indirect kernel call
}

// epiSetup fills the parts of e that hold for a whole call; noBZ says every
// b0 is zero; scale is the call's scales (for noClamp).
func epiSetup(e *epi512, out Output, st *stage, noBZ bool, scale []float32) (esize int) {
	if out.Q != nil {
		e.mode = 1
		if noBZ {
			e.mode = 2
			if noClamp(out.Q, scale) {
				e.mode = 3
				if out.Q.OutU8 == nil {
					e.mode = 4
				}
			}
		}
		e.zp, e.fmin, e.fmax = st.zp, st.fmin, st.fmax
		e.ldc = out.Q.Ldc
		return 1
	}
	e.ldc = out.Ldc * 4
	return 4
}

// epiPanel fills the parts of e for the panel starting at column p0, of
// which columns c0..c1 are written.
func epiPanel(e *epi512, sc *scratch, out Output, p0, c0, c1, pStart, esize int) {
	var mask uint64
	if c1-c0 == 64 {
		mask = ^uint64(0)
	} else {
		mask = (uint64(1)<<(c1-c0) - 1) << (c0 - p0)
	}
	for v := range e.mask {
		e.mask[v] = uint16(mask >> (16 * v))
	}
	e.colTerm = &sc.colTerm[p0-pStart]
	e.negBZ = &sc.negBZ[p0-pStart]
	if out.Q != nil {
		e.scale = &sc.scale[p0-pStart]
	}
	e.colOff = (c0 - p0) * esize
}

// epiDst points e at output element (i0, c0).
func epiDst(e *epi512, out Output, i0, c0 int) {
	switch {
	case out.Q == nil:
		e.dst = uintptr(unsafe.Pointer(&out.C32[i0*out.Ldc+c0]))
	case out.Q.OutU8 != nil:
		e.dst = uintptr(unsafe.Pointer(&out.Q.OutU8[i0*out.Q.Ldc+c0]))
	default:
		e.dst = uintptr(unsafe.Pointer(&out.Q.OutS8[i0*out.Q.Ldc+c0]))
	}
}

// gemmVNNI512Fused is the whole column loop of Gemm for the fused kernels.
func gemmVNNI512Fused(sc *scratch, m int, a []uint8, lda int, pb *PackedB, n0, n1, pStart int, out Output, st *stage) {
	var e epi512
	var p [mr]*uint8
	noBZ := true
	for _, v := range sc.negBZ {
		noBZ = noBZ && v == 0
	}
	esize := epiSetup(&e, out, st, noBZ, sc.scale)
	for p0 := pStart; p0 < n1; p0 += nr {
		c0, c1 := max(p0, n0), min(p0+nr, n1)
		epiPanel(&e, sc, out, p0, c0, c1, pStart, esize)
		panel := &pb.b8[(p0/nr)*pb.kp*nr]
		for i0 := 0; i0 < m; i0 += mr {
			rows := min(mr, m-i0)
			rowPtrs8(&p, a, lda, i0, rows)
			e.rowSum = &sc.rowSum[i0]
			epiDst(&e, out, i0, c0)
			kernVNNI512F[rows-1][(c1-p0+15)/16-1](pb.kp/4, &p, panel, &e)
		}
	}
}

// gemmVNNI512Indirect is GemmIndirect's loop: the offsets are laid out per
// tile (tileOffsets), except that with one kernel offset (1x1 layers) the
// full tiles' tables are offs itself and only the last, partial tile needs
// its own.
func gemmVNNI512Indirect(sc *scratch, m, nk, kcp int, base []uint8, offs []int, pb *PackedB, n0, n1, pStart int, out Output, st *stage) {
	full := m / mr
	if nk == 1 {
		tail := offs[full*mr : m]
		sc.offs = tileOffsets(sc.offs, m-full*mr, 1, tail)
		var ft *int
		if full > 0 {
			ft = &offs[0]
		}
		var tt *int
		if len(sc.offs) > 0 {
			tt = &sc.offs[0]
		}
		runVNNI512Indirect(sc, m, nk, kcp, base, ft, tt, pb, n0, n1, pStart, out, st)
		return
	}
	sc.offs = tileOffsets(sc.offs, m, nk, offs)
	gemmVNNI512Tiled(sc, m, nk, kcp, base, sc.offs, pb, n0, n1, pStart, out, st)
}

// gemmVNNI512Tiled is gemmVNNI512Indirect over a table already laid out by
// tileOffsets (an IndirectTable's).
func gemmVNNI512Tiled(sc *scratch, m, nk, kcp int, base []uint8, tiled []int, pb *PackedB, n0, n1, pStart int, out Output, st *stage) {
	full := m / mr
	var ft, tt *int
	if full > 0 {
		ft = &tiled[0]
	}
	if m > full*mr {
		tt = &tiled[full*nk*mr]
	}
	runVNNI512Indirect(sc, m, nk, kcp, base, ft, tt, pb, n0, n1, pStart, out, st)
}

// runVNNI512Indirect runs the kernels over the full tiles (their tables
// consecutive from ft) and the partial last one (its table at tt), panel by
// panel. sc.rowSum holds zeros (b0 = 0).
func runVNNI512Indirect(sc *scratch, m, nk, kcp int, base []uint8, ft, tt *int, pb *PackedB, n0, n1, pStart int, out Output, st *stage) {
	var e epi512
	esize := epiSetup(&e, out, st, true, sc.scale)
	e.rowSum = &sc.rowSum[0]
	full := m / mr
	for p0 := pStart; p0 < n1; p0 += nr {
		c0, c1 := max(p0, n0), min(p0+nr, n1)
		epiPanel(&e, sc, out, p0, c0, c1, pStart, esize)
		v := (c1-p0+15)/16 - 1
		b := &pb.b8[(p0/nr)*pb.kp*nr]
		if full > 0 {
			epiDst(&e, out, 0, c0)
			e.tiles = full
			kernVNNI512I[mr-1][v](kcp/4, nk, &base[0], ft, b, &e)
		}
		if rows := m - full*mr; rows > 0 {
			epiDst(&e, out, full*mr, c0)
			e.tiles = 1
			kernVNNI512I[rows-1][v](kcp/4, nk, &base[0], tt, b, &e)
		}
	}
}

// kernVNNI512 holds the R×64 tile kernels by R−1.
var kernVNNI512 = [mr]func(k4 int, rows *[mr]*uint8, b *int8, c *int32){
	kernVNNI512R1, kernVNNI512R2, kernVNNI512R3, kernVNNI512R4, kernVNNI512R5, kernVNNI512R6}

//go:noescape
func kernAVXVNNI(k4 int, rows *[mr]*uint8, b *int8, c *int32)

// kernAVXVNNIEVEX is kernAVXVNNI with the EVEX encoding, for testing the
// strip logic on machines that have AVX-512 VNNI but hide AVX-VNNI.
//
//go:noescape
func kernAVXVNNIEVEX(k4 int, rows *[mr]*uint8, b *int8, c *int32)

//go:noescape
func kernAVX2(k2 int, rows *[mr]*int16, b *int16, c *int32)

//go:noescape
func kernAVX2F(k2 int, rows *[mr]*int16, b *int16, e *epiA)

//go:noescape
func kernAVX2F1(k2 int, a *int16, b *int16, e *epiA)

//go:noescape
func widenU8(dst *int16, src *uint8, n int)

//go:noescape
func gatherW16(dst *int16, base *uint8, offs *int, n, kcp int)

// epiA is kernAVX2F's output stage (offsets fixed in gen_asm.py).
type epiA struct {
	colTerm *int32         // 0: the strip's first column
	negBZ   *int32         // 8
	scale   *float32       // 16
	rowSum  *int32         // 24: the tile's first row
	dst     unsafe.Pointer // 32: output (i0, strip's first column)
	ldc     int            // 40: bytes
	rows    int            // 48: rows stored, 1..6
	mode    int            // 56: bit 0 some b0 ≠ 0, bit 1 int8 output, bit 2 noClamp (kernAVX2F)
	zp      [8]int32       // 64
	fmin    [8]float32     // 96
	fmax    [8]float32     // 128
}

//go:noescape
func outI32AVX2(dst, acc, ct, nb *int32, rs int32, n int)

// outParams is the output stage as outQAVX2 reads it (field offsets fixed).
type outParams struct {
	rs, zp     int32
	fmin, fmax float32
	signed     uint32
}

//go:noescape
func outQAVX2(dst *uint8, acc, ct, nb *int32, scale *float32, n int, p *outParams)

//go:noescape
func outQAVX512(dst *uint8, acc, ct, nb *int32, scale *float32, n int, p *outParams)

//go:noescape
func peakVNNI512(iters int)

// hasPeak reports whether peakVNNI512 can run here.
func hasPeak() bool { return kernels[isaAVX512VNNI].ok }

//go:noescape
func dwAccAVX512B1(acc *int32, base *uint8, offs *int, taps int, w *int32, wstride int, mask uint16)

//go:noescape
func dwAccAVX512B2(acc *int32, base *uint8, offs *int, taps int, w *int32, wstride int, mask uint16)

//go:noescape
func dwAccAVX512B3(acc *int32, base *uint8, offs *int, taps int, w *int32, wstride int, mask uint16)

//go:noescape
func dwAccAVX512B4(acc *int32, base *uint8, offs *int, taps int, w *int32, wstride int, mask uint16)

//go:noescape
func dwAccAVX512B5(acc *int32, base *uint8, offs *int, taps int, w *int32, wstride int, mask uint16)

//go:noescape
func dwAccAVX512B6(acc *int32, base *uint8, offs *int, taps int, w *int32, wstride int, mask uint16)

//go:noescape
func dwAccAVX512B7(acc *int32, base *uint8, offs *int, taps int, w *int32, wstride int, mask uint16)

//go:noescape
func dwAccAVX512B8(acc *int32, base *uint8, offs *int, taps int, w *int32, wstride int, mask uint16)

//go:noescape
func dwRowQAVX512B1(rows int, base *uint8, offs *int, taps int, w *int32, wstride int, mask uint16, e *dwEpi)

//go:noescape
func dwRowQAVX512B2(rows int, base *uint8, offs *int, taps int, w *int32, wstride int, mask uint16, e *dwEpi)

//go:noescape
func dwRowQAVX512B3(rows int, base *uint8, offs *int, taps int, w *int32, wstride int, mask uint16, e *dwEpi)

//go:noescape
func dwRowQAVX512B4(rows int, base *uint8, offs *int, taps int, w *int32, wstride int, mask uint16, e *dwEpi)

//go:noescape
func dwRowQAVX512B5(rows int, base *uint8, offs *int, taps int, w *int32, wstride int, mask uint16, e *dwEpi)

//go:noescape
func dwRowQAVX512B6(rows int, base *uint8, offs *int, taps int, w *int32, wstride int, mask uint16, e *dwEpi)

//go:noescape
func dwRowQAVX512B7(rows int, base *uint8, offs *int, taps int, w *int32, wstride int, mask uint16, e *dwEpi)

//go:noescape
func dwRowQAVX512B8(rows int, base *uint8, offs *int, taps int, w *int32, wstride int, mask uint16, e *dwEpi)

//go:noescape
func dwRowIAVX512B1(rows int, base *uint8, offs *int, taps int, w *int32, wstride int, mask uint16, e *dwEpi)

//go:noescape
func dwRowIAVX512B2(rows int, base *uint8, offs *int, taps int, w *int32, wstride int, mask uint16, e *dwEpi)

//go:noescape
func dwRowIAVX512B3(rows int, base *uint8, offs *int, taps int, w *int32, wstride int, mask uint16, e *dwEpi)

//go:noescape
func dwRowIAVX512B4(rows int, base *uint8, offs *int, taps int, w *int32, wstride int, mask uint16, e *dwEpi)

//go:noescape
func dwRowIAVX512B5(rows int, base *uint8, offs *int, taps int, w *int32, wstride int, mask uint16, e *dwEpi)

//go:noescape
func dwRowIAVX512B6(rows int, base *uint8, offs *int, taps int, w *int32, wstride int, mask uint16, e *dwEpi)

//go:noescape
func dwRowIAVX512B7(rows int, base *uint8, offs *int, taps int, w *int32, wstride int, mask uint16, e *dwEpi)

//go:noescape
func dwRowIAVX512B8(rows int, base *uint8, offs *int, taps int, w *int32, wstride int, mask uint16, e *dwEpi)

//go:noescape
func dwRow6QAVX512B1(rows int, base *uint8, offs *int, taps int, w *int32, wstride int, mask uint16, e *dwEpi)

//go:noescape
func dwRow6QAVX512B2(rows int, base *uint8, offs *int, taps int, w *int32, wstride int, mask uint16, e *dwEpi)

//go:noescape
func dwRow6QAVX512B3(rows int, base *uint8, offs *int, taps int, w *int32, wstride int, mask uint16, e *dwEpi)

//go:noescape
func dwRow6QAVX512B4(rows int, base *uint8, offs *int, taps int, w *int32, wstride int, mask uint16, e *dwEpi)

//go:noescape
func dwRow6IAVX512B1(rows int, base *uint8, offs *int, taps int, w *int32, wstride int, mask uint16, e *dwEpi)

//go:noescape
func dwRow6IAVX512B2(rows int, base *uint8, offs *int, taps int, w *int32, wstride int, mask uint16, e *dwEpi)

//go:noescape
func dwRow6IAVX512B3(rows int, base *uint8, offs *int, taps int, w *int32, wstride int, mask uint16, e *dwEpi)

//go:noescape
func dwRow6IAVX512B4(rows int, base *uint8, offs *int, taps int, w *int32, wstride int, mask uint16, e *dwEpi)

//go:noescape
func dw8Row4AVX512(rows int, base *uint8, offs *int, taps int, w *int8, wstride int, e *dw8Epi)

//go:noescape
func dw8Row1AVX512(rows int, base *uint8, offs *int, taps int, w *int8, wstride int, e *dw8Epi)

//go:noescape
func maxU8AVX2(dst, src *uint8, n int)

//go:noescape
func maxS8AVX2(dst, src *uint8, n int)

//go:noescape
func interleave3AVX(dst, p0, p1, p2 *uint8, n int, flip uint64)

//go:noescape
func dw3Build(dst, r0, r1, r2 *uint8, n, c, nch int, mask uint64)

//go:noescape
func dw3RowU(n int, col *uint8, step, cstride int, w *int8, wstride int, e *dw8Epi)

//go:noescape
func dw3RowS(n int, col *uint8, step, cstride int, w *int8, wstride int, e *dw8Epi)

//go:noescape
func colSumU8AVX2(acc *int32, src *uint8, n, stride int)

//go:noescape
func colSumS8AVX2(acc *int32, src *uint8, n, stride int)

//go:noescape
func dw3BuildY(dst, r0, r1, r2 *uint8, n, c, nch int, mask uint64)

//go:noescape
func dw3RowUY(n int, col *uint8, step, cstride int, w *int8, wstride int, e *dw8Epi)

//go:noescape
func dw3RowSY(n int, col *uint8, step, cstride int, w *int8, wstride int, e *dw8Epi)

//go:noescape
func dw3RowUN(n int, col *uint8, step, cstride int, w *int8, wstride int, e *dw8Epi)

//go:noescape
func dw3RowSN(n int, col *uint8, step, cstride int, w *int8, wstride int, e *dw8Epi)

//go:noescape
func dw3RowUYN(n int, col *uint8, step, cstride int, w *int8, wstride int, e *dw8Epi)

//go:noescape
func dw3RowSYN(n int, col *uint8, step, cstride int, w *int8, wstride int, e *dw8Epi)

//go:noescape
func dwAccA1(acc *int32, base *uint8, offs *int, taps int, w *int32, wstride int)

//go:noescape
func dwAccA2(acc *int32, base *uint8, offs *int, taps int, w *int32, wstride int)

//go:noescape
func dwAccA3(acc *int32, base *uint8, offs *int, taps int, w *int32, wstride int)

//go:noescape
func dwAccA4(acc *int32, base *uint8, offs *int, taps int, w *int32, wstride int)

//go:noescape
func dwAccA5(acc *int32, base *uint8, offs *int, taps int, w *int32, wstride int)

//go:noescape
func dwAccA6(acc *int32, base *uint8, offs *int, taps int, w *int32, wstride int)

//go:noescape
func dwAccA7(acc *int32, base *uint8, offs *int, taps int, w *int32, wstride int)

//go:noescape
func dwAccA8(acc *int32, base *uint8, offs *int, taps int, w *int32, wstride int)

//go:noescape
func dw3BuildA(dst, r0, r1, r2 *uint8, ng int)

//go:noescape
func dw3RowAU(n, nch int, col *uint8, step, cstride int, w *int16, e *dw8Epi)

//go:noescape
func dw3RowAS(n, nch int, col *uint8, step, cstride int, w *int16, e *dw8Epi)

//go:noescape
func dw3RowAUN(n, nch int, col *uint8, step, cstride int, w *int16, e *dw8Epi)

//go:noescape
func dw3RowASN(n, nch int, col *uint8, step, cstride int, w *int16, e *dw8Epi)

//go:noescape
func transpose16AVX512(dst *uint8, ldd int, src *uint8, lds int, nb int, flip uint64)

//go:noescape
func addU8AVX2(dst, a, b *uint8, n int, sa, sb int, p *addConsts)

//go:noescape
func addS8AVX2(dst, a, b *uint8, n int, sa, sb int, p *addConsts)

//go:noescape
func mulScalarU8AVX2(dst, src *uint8, n int, za, k int32, ratio, zc float32)

//go:noescape
func mulScalarS8AVX2(dst, src *uint8, n int, za, k int32, ratio, zc float32)

//go:noescape
func mulU8AVX2(dst, a, b *uint8, n int, za, zb int32, ratio, zc float32)

//go:noescape
func mulS8AVX2(dst, a, b *uint8, n int, za, zb int32, ratio, zc float32)

//go:noescape
func lookupVBMI(dst, src *uint8, n int, table *[256]uint8)

//go:noescape
func lookupAVX2(dst, src *uint8, n int, table *[256]uint8)

// lookupX86 is the AVX2 LookupU8 kernel with the runs it cannot take (under
// one 32-byte vector) done by the Go twin.
func lookupX86(dst, src *uint8, n int, table *[256]uint8) {
	if n < 32 {
		lookupGo(unsafe.Slice(dst, n), unsafe.Slice(src, n), table)
		return
	}
	lookupAVX2(dst, src, n, table)
}

func initArch() {
	x := cpu.X86
	if x.AVX2 && x.FMA {
		addKern = [2]func(dst, a, b *uint8, n int, sa, sb int, p *addConsts){addU8AVX2, addS8AVX2}
		maxKern = [2]func(dst, src *uint8, n int){maxU8AVX2, maxS8AVX2}
		interleave3 = interleave3AVX
		colSumKern = [2]func(acc *int32, src *uint8, n, stride int){colSumU8AVX2, colSumS8AVX2}
	}
	if x.AVX2 {
		lookupKern[isaAVX2], lookupKern[isaAVXVNNI], lookupKern[isaAVX512VNNI] = lookupX86, lookupX86, lookupX86
		// VPERMI2B is AVX512VBMI, which cpu.X86 does not carry (no other
		// kernel needs it); cpuid's flag includes the same OS check.
		if x.AVX512F && x.AVX512BW && cpuid.CPU.Supports(cpuid.AVX512VBMI) {
			lookupKern[isaAVX512VNNI] = lookupVBMI
		}
		mulScalarKern = [2]func(dst, src *uint8, n int, za, k int32, ratio, zc float32){mulScalarU8AVX2, mulScalarS8AVX2}
		mulKern = [2]func(dst, a, b *uint8, n int, za, zb int32, ratio, zc float32){mulU8AVX2, mulS8AVX2}
		dw3RowA = [2]func(n, nch int, col *uint8, step, cstride int, w *int16, e *dw8Epi){dw3RowAU, dw3RowAS}
		dw3RowAN = [2]func(n, nch int, col *uint8, step, cstride int, w *int16, e *dw8Epi){dw3RowAUN, dw3RowASN}
		dw3BuildAK = dw3BuildA
		dwAccA = [8]func(acc *int32, base *uint8, offs *int, taps int, w *int32, wstride int){
			dwAccA1, dwAccA2, dwAccA3, dwAccA4, dwAccA5, dwAccA6, dwAccA7, dwAccA8}
	}
	if x.AVX512F && x.AVX512BW && x.AVX512VL {
		transpose16 = transpose16AVX512
		dwAcc = [8]func(acc *int32, base *uint8, offs *int, taps int, w *int32, wstride int, mask uint16){
			dwAccAVX512B1, dwAccAVX512B2, dwAccAVX512B3, dwAccAVX512B4,
			dwAccAVX512B5, dwAccAVX512B6, dwAccAVX512B7, dwAccAVX512B8}
		dwRowQ = [8]func(rows int, base *uint8, offs *int, taps int, w *int32, wstride int, mask uint16, e *dwEpi){
			dwRowQAVX512B1, dwRowQAVX512B2, dwRowQAVX512B3, dwRowQAVX512B4,
			dwRowQAVX512B5, dwRowQAVX512B6, dwRowQAVX512B7, dwRowQAVX512B8}
		dwRowI = [8]func(rows int, base *uint8, offs *int, taps int, w *int32, wstride int, mask uint16, e *dwEpi){
			dwRowIAVX512B1, dwRowIAVX512B2, dwRowIAVX512B3, dwRowIAVX512B4,
			dwRowIAVX512B5, dwRowIAVX512B6, dwRowIAVX512B7, dwRowIAVX512B8}
		if x.AVX512VNNI {
			dw8Row = [2]func(rows int, base *uint8, offs *int, taps int, w *int8, wstride int, e *dw8Epi){dw8Row4AVX512, dw8Row1AVX512}
			dw3RowK = [2]func(n int, col *uint8, step, cstride int, w *int8, wstride int, e *dw8Epi){dw3RowU, dw3RowS}
			dw3BuildK = dw3Build
			dw3RowKY = [2]func(n int, col *uint8, step, cstride int, w *int8, wstride int, e *dw8Epi){dw3RowUY, dw3RowSY}
			dw3BuildKY = dw3BuildY
			dw3RowKN = [2]func(n int, col *uint8, step, cstride int, w *int8, wstride int, e *dw8Epi){dw3RowUN, dw3RowSN}
			dw3RowKYN = [2]func(n int, col *uint8, step, cstride int, w *int8, wstride int, e *dw8Epi){dw3RowUYN, dw3RowSYN}
		}
		dwRow6Q = [4]func(rows int, base *uint8, offs *int, taps int, w *int32, wstride int, mask uint16, e *dwEpi){
			dwRow6QAVX512B1, dwRow6QAVX512B2, dwRow6QAVX512B3, dwRow6QAVX512B4}
		dwRow6I = [4]func(rows int, base *uint8, offs *int, taps int, w *int32, wstride int, mask uint16, e *dwEpi){
			dwRow6IAVX512B1, dwRow6IAVX512B2, dwRow6IAVX512B3, dwRow6IAVX512B4}
	}
	if !x.AVX2 {
		return
	}
	kernels[isaAVX2] = kernelSet{ok: true, tile16: tile16AVX2, fused: gemmAVX2Fused, indirect: gemmAVX2Indirect, outI32: outI32x86, outQ: outQx86}
	widenKern = widenU8
	if x.AVXVNNI {
		kernels[isaAVXVNNI] = kernelSet{ok: true, tile8: tile8AVXVNNI, outI32: outI32x86, outQ: outQx86}
	}
	if x.AVX512F && x.AVX512BW && x.AVX512VNNI {
		kernels[isaAVX512VNNI] = kernelSet{ok: true, tile8: tile8VNNI512, fused: gemmVNNI512Fused, indirect: gemmVNNI512Indirect, tiled: gemmVNNI512Tiled, outI32: outI32x86, outQ: outQx512}
	}
}

// rowPtrs8 points the six kernel rows at A rows i0.., repeating row i0 past
// the last real row so the kernel never reads outside A.
func rowPtrs8(p *[mr]*uint8, a []uint8, lda, i0, rows int) {
	for r := 0; r < mr; r++ {
		if r < rows {
			p[r] = &a[(i0+r)*lda]
		} else {
			p[r] = &a[i0*lda]
		}
	}
}

func tile8VNNI512(sc *scratch, a []uint8, lda int, pb *PackedB, panel, i0, rows, c0, c1 int) {
	var p [mr]*uint8
	rowPtrs8(&p, a, lda, i0, rows)
	kernVNNI512[rows-1](pb.kp/4, &p, &pb.b8[panel], &sc.tile[0])
}

func tile8AVXVNNI(sc *scratch, a []uint8, lda int, pb *PackedB, panel, i0, rows, c0, c1 int) {
	var p [mr]*uint8
	rowPtrs8(&p, a, lda, i0, rows)
	for s := c0 / 16 * 16; s < c1; s += 16 {
		kernAVXVNNI(pb.kp/4, &p, &pb.b8[panel+4*s], &sc.tile[s])
	}
}

// emulateAVXVNNI runs the avxvnni path through the EVEX twin of its strip
// kernel when the machine cannot run the VEX form itself. Tests only.
func emulateAVXVNNI() bool {
	if kernels[isaAVXVNNI].ok {
		return true
	}
	x := cpu.X86
	if !(x.AVX512F && x.AVX512VL && x.AVX512VNNI) {
		return false
	}
	kernels[isaAVXVNNI] = kernelSet{ok: true, tile8: func(sc *scratch, a []uint8, lda int, pb *PackedB, panel, i0, rows, c0, c1 int) {
		var p [mr]*uint8
		rowPtrs8(&p, a, lda, i0, rows)
		for s := c0 / 16 * 16; s < c1; s += 16 {
			kernAVXVNNIEVEX(pb.kp/4, &p, &pb.b8[panel+4*s], &sc.tile[s])
		}
	}, outI32: outI32x86, outQ: outQx86}
	return true
}

func tile16AVX2(sc *scratch, pb *PackedB, panel, i0, rows, c0, c1 int) {
	var p [mr]*int16
	for r := 0; r < mr; r++ {
		i := i0 + r
		if r >= rows {
			i = i0
		}
		p[r] = &sc.a16[i*pb.kp]
	}
	for s := c0 / 16 * 16; s < c1; s += 16 {
		kernAVX2(pb.kp/2, &p, &pb.b16[panel+2*s], &sc.tile[s])
	}
}

func outI32x86(dst, acc, ct, nb []int32, rs int32) {
	n := len(dst) &^ 7
	if n > 0 {
		outI32AVX2(&dst[0], &acc[0], &ct[0], &nb[0], rs, n)
	}
	outI32Go(dst[n:], acc[n:], ct[n:], nb[n:], rs)
}

func outQx512(dst []uint8, acc, ct, nb []int32, rs int32, scale []float32, st *stage) {
	if len(dst) == 0 {
		return
	}
	_ = acc[len(dst)-1]
	_ = ct[len(dst)-1]
	_ = nb[len(dst)-1]
	_ = scale[len(dst)-1]
	p := outParams{rs: rs, zp: st.zp, fmin: st.fmin, fmax: st.fmax}
	outQAVX512(&dst[0], &acc[0], &ct[0], &nb[0], &scale[0], len(dst), &p)
}

func outQx86(dst []uint8, acc, ct, nb []int32, rs int32, scale []float32, st *stage) {
	n := len(dst) &^ 7
	if n > 0 {
		p := outParams{rs: rs, zp: st.zp, fmin: st.fmin, fmax: st.fmax}
		if st.signed {
			p.signed = 1
		}
		outQAVX2(&dst[0], &acc[0], &ct[0], &nb[0], &scale[0], n, &p)
	}
	outQGo(dst[n:], acc[n:], ct[n:], nb[n:], rs, scale[n:], st)
}

// gemmAVX2Fused is Gemm's column loop on the avx2 path over sc.a16 (A
// widened): whole 16-column strips of a requantizing call go through
// kernAVX2F (a lone row over a whole panel through kernAVX2F1), the rest
// (int32 output, strips cut by n0 or n1) through kernAVX2 and the separate
// output stage.
func gemmAVX2Fused(sc *scratch, m int, a []uint8, lda int, pb *PackedB, n0, n1, pStart int, out Output, st *stage) {
	anyBZ := false
	for _, v := range sc.negBZ {
		anyBZ = anyBZ || v != 0
	}
	var rs []int32
	if anyBZ {
		rs = sc.rowSum
	}
	avx2Rows(sc, sc.a16, m, pb, n0, n1, pStart, out, st, rs, 0)
}

// gemmAVX2Indirect is GemmIndirect on the avx2 path: blocks of rows
// gathered and widened in one pass (gatherW16), then avx2Rows.
func gemmAVX2Indirect(sc *scratch, m, nk, kcp int, base []uint8, offs []int, pb *PackedB, n0, n1, pStart int, out Output, st *stage) {
	k := nk * kcp // pb.kp: kcp is a multiple of 4
	// Blocks of up to 512 KB of widened rows, as few as possible and
	// even: every block streams all of B once, from L3 for a large layer
	// (ResNet-18's last convs: 4.7 MB, 2.2 -> 1.85 ms with one block of 49
	// rows instead of three of at most 24).
	nb := (2*m*k + 512<<10 - 1) / (512 << 10)
	block := ((m+nb-1)/nb + mr - 1) / mr * mr
	if cap(sc.a16) < block*k {
		sc.a16 = make([]int16, block*k)
	}
	a16 := sc.a16[:block*k]
	for i0 := 0; i0 < m; i0 += block {
		rows := min(block, m-i0)
		gatherW16(&a16[0], &base[0], &offs[i0*nk], rows*nk, kcp)
		avx2Rows(sc, a16, rows, pb, n0, n1, pStart, out, st, nil, i0)
	}
}

// avx2Rows computes columns n0..n1 of m rows of widened A (row i at
// a16[i*pb.kp:]) into output rows r0..r0+m. rowSum is nil when every b0 is
// zero.
func avx2Rows(sc *scratch, a16 []int16, m int, pb *PackedB, n0, n1, pStart int, out Output, st *stage, rowSum []int32, r0 int) {
	var p [mr]*int16
	var e epiA
	var rs [mr]int32
	q := out.Q
	if q != nil {
		e.ldc = q.Ldc
		if rowSum != nil {
			e.mode |= 1
		}
		if q.OutU8 == nil {
			e.mode |= 2
		}
		if noClamp(q, sc.scale) {
			e.mode |= 4
		}
		for i := range e.zp {
			e.zp[i], e.fmin[i], e.fmax[i] = st.zp, st.fmin, st.fmax
		}
	}
	e.rowSum = &rs[0]
	k2 := pb.kp / 2
	// Panels outside, so that a panel of B stays in cache over the row
	// tiles (the whole of B may not).
	for p0 := pStart; p0 < n1; p0 += nr {
		c0, c1 := max(p0, n0), min(p0+nr, n1)
		panel := (p0 / nr) * pb.kp * nr
		for i0 := 0; i0 < m; i0 += mr {
			rows := min(mr, m-i0)
			for r := 0; r < mr; r++ {
				i := i0 + r
				if r >= rows {
					i = i0
				}
				p[r] = &a16[i*pb.kp]
				if rowSum != nil {
					rs[r] = rowSum[i]
				}
			}
			e.rows = rows
			if q == nil {
				// int32 output: the tile's strips, then one output
				// stage call per row over the panel's columns.
				for s := (c0 - p0) / 16 * 16; p0+s < c1; s += 16 {
					kernAVX2(k2, &p, &pb.b16[panel+2*s], &sc.tile[s])
				}
				for r := 0; r < rows; r++ {
					i := r0 + i0 + r
					outI32x86(out.C32[i*out.Ldc+c0:i*out.Ldc+c1], sc.tile[r*nr+c0-p0:r*nr+c1-p0],
						sc.colTerm[c0-pStart:c1-pStart], sc.negBZ[c0-pStart:c1-pStart], rs[r])
				}
				continue
			}
			if rows == 1 && c0 == p0 && c1 == p0+nr {
				e.colTerm = &sc.colTerm[p0-pStart]
				e.negBZ = &sc.negBZ[p0-pStart]
				e.scale = &sc.scale[p0-pStart]
				at := (r0+i0)*q.Ldc + p0
				if q.OutU8 != nil {
					e.dst = unsafe.Pointer(&q.OutU8[at])
				} else {
					e.dst = unsafe.Pointer(&q.OutS8[at])
				}
				kernAVX2F1(k2, p[0], &pb.b16[panel], &e)
				continue
			}
			for s := (c0 - p0) / 16 * 16; p0+s < c1; s += 16 {
				j0, j1 := p0+s, p0+s+16
				b := &pb.b16[panel+2*s]
				if j0 >= c0 && j1 <= c1 {
					e.colTerm = &sc.colTerm[j0-pStart]
					e.negBZ = &sc.negBZ[j0-pStart]
					e.scale = &sc.scale[j0-pStart]
					at := (r0+i0)*q.Ldc + j0
					if q.OutU8 != nil {
						e.dst = unsafe.Pointer(&q.OutU8[at])
					} else {
						e.dst = unsafe.Pointer(&q.OutS8[at])
					}
					kernAVX2F(k2, &p, b, &e)
					continue
				}
				kernAVX2(k2, &p, b, &sc.tile[s])
				j0, j1 = max(j0, c0), min(j1, c1)
				for r := 0; r < rows; r++ {
					i := r0 + i0 + r
					acc := sc.tile[r*nr+j0-p0 : r*nr+j1-p0]
					ct := sc.colTerm[j0-pStart : j1-pStart]
					nb := sc.negBZ[j0-pStart : j1-pStart]
					scl := sc.scale[j0-pStart : j1-pStart]
					if q.OutU8 != nil {
						outQx86(q.OutU8[i*q.Ldc+j0:i*q.Ldc+j1], acc, ct, nb, rs[r], scl, st)
					} else {
						outQx86(s8AsU8(q.OutS8[i*q.Ldc+j0:i*q.Ldc+j1]), acc, ct, nb, rs[r], scl, st)
					}
				}
			}
		}
	}
}
