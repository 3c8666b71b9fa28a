package q8

import (
	"fmt"

	"github.com/qtool/qtool/internal/simd/cpu"
)

type isa uint8

const (
	isaGeneric isa = iota
	isaAVX2
	isaAVXVNNI
	isaAVX512VNNI
	isaNEON // the arm64 paths from here on (see lowerTo)
	isaSDOT
	numISA
)

var isaNames = [numISA]string{"generic", "avx2", "avxvnni", "avx512vnni", "neon", "sdot"}

func (p isa) String() string { return isaNames[p] }

// kernelSet is one path's kernels. tile8/tile16 fill sc.tile rows 0..rows-1
// for at least the panel columns c0..c1 (relative to the panel); outI32/outQ
// are the output stages over one row run.
type kernelSet struct {
	ok     bool
	tile8  func(sc *scratch, a []uint8, lda int, pb *PackedB, panel, i0, rows, c0, c1 int)
	tile16 func(sc *scratch, pb *PackedB, panel, i0, rows, c0, c1 int)
	// fused, when set, runs Gemm's whole tile loop with the output stage in
	// the micro-kernel (K > 0 only).
	fused func(sc *scratch, m int, a []uint8, lda int, pb *PackedB, n0, n1, pStart int, out Output, st *stage)
	// indirect, when set, runs GemmIndirect's loop (K > 0, b0 = 0).
	indirect func(sc *scratch, m, nk, kcp int, base []uint8, offs []int, pb *PackedB, n0, n1, pStart int, out Output, st *stage)
	// tiled, when set, is indirect over a table laid out by tileOffsets.
	tiled  func(sc *scratch, m, nk, kcp int, base []uint8, tiled []int, pb *PackedB, n0, n1, pStart int, out Output, st *stage)
	outI32 func(dst, acc, ct, nb []int32, rs int32)
	outQ   func(dst []uint8, acc, ct, nb []int32, rs int32, scale []float32, st *stage)
}

var (
	// transpose16, when set, transposes a 16-row band of nb 16×16 blocks.
	// It and dwAcc use AVX-512 BW/VL, so only the avx512vnni path calls
	// them: a forced lower path runs no AVX-512 instruction at all.
	transpose16 func(dst *uint8, ldd int, src *uint8, lds int, nb int, flip uint64)
	// dwAcc[nb−1], when set, is DWConv's per-pixel accumulation over nb
	// blocks of 16 channels.
	dwAcc [8]func(acc *int32, base *uint8, offs *int, taps int, w *int32, wstride int, mask uint16)
	// dwRowQ/dwRowI[nb−1], when set, run DWConv over many pixels with the
	// requantizing or the int32 output stage fused.
	dwRowQ, dwRowI [8]func(rows int, base *uint8, offs *int, taps int, w *int32, wstride int, mask uint16, e *dwEpi)
	// dwRow6Q/dwRow6I[nb−1], when set, are the same over six pixels at a
	// time (rows a multiple of six) and at most 64 channels.
	dwRow6Q, dwRow6I [4]func(rows int, base *uint8, offs *int, taps int, w *int32, wstride int, mask uint16, e *dwEpi)
	// dw8Row, when set, runs the requantizing DWConv over byte weights
	// (DWWeights.w8): [0] four pixels at a time (rows a multiple of four),
	// [1] one at a time.
	dw8Row [2]func(rows int, base *uint8, offs *int, taps int, w *int8, wstride int, e *dw8Epi)
	// dw3RowK, when set, holds DWConv3x3's row kernels for uint8 and int8
	// output (dw3Build comes with them).
	dw3RowK   [2]func(n int, col *uint8, step, cstride int, w *int8, wstride int, e *dw8Epi)
	dw3BuildK func(dst, r0, r1, r2 *uint8, n, c, nch int, mask uint64)
	// dw3RowKY and dw3BuildKY are the same over 32-channel chunks.
	dw3RowKY   [2]func(n int, col *uint8, step, cstride int, w *int8, wstride int, e *dw8Epi)
	dw3BuildKY func(dst, r0, r1, r2 *uint8, n, c, nch int, mask uint64)
	// dw3RowKN and dw3RowKYN skip the float clamp (see DWConv3x3).
	dw3RowKN, dw3RowKYN [2]func(n int, col *uint8, step, cstride int, w *int8, wstride int, e *dw8Epi)
	// dw3RowA, when set, holds the avx2 path's DWConv3x3 row kernels over
	// a word column image (dw3BuildA), for uint8 and int8 output; dw3RowAN
	// skip the float clamp.
	dw3RowA, dw3RowAN [2]func(n, nch int, col *uint8, step, cstride int, w *int16, e *dw8Epi)
	dw3BuildAK        func(dst, r0, r1, r2 *uint8, g int)
	// dwAccA[nb−1], when set, is the avx2 path's DWConv accumulation of one
	// pixel over nb blocks of 8 channels.
	dwAccA [8]func(acc *int32, base *uint8, offs *int, taps int, w *int32, wstride int)
	// dwAccN, when set, is the arm64 paths' DWConv accumulation of one
	// pixel over nb blocks of 16 channels (dwAccNEON: ASIMD only, so both
	// the neon and the sdot path take it).
	dwAccN func(acc *int32, base *uint8, offs *int, taps int, w *int32, wstride int, nb int)
	// dwAccN16, when set, is the same over int16 weights (DWWeights.w16).
	dwAccN16 func(acc *int32, base *uint8, offs *int, taps int, w *int16, wstride int, nb int)
	// widenKern, when set, widens n bytes (a multiple of 4) to int16: the
	// avx2 path's A operand.
	widenKern func(dst *int16, src *uint8, n int)

	// addKern holds the uint8 and int8 QLinearAdd kernels (AVX2+FMA).
	addKern [2]func(dst, a, b *uint8, n int, sa, sb int, p *addConsts)
	// maxKern holds MaxBytes' unsigned and signed kernels (AVX2).
	maxKern [2]func(dst, src *uint8, n int)
	// interleave3, when set, is TransposeU8's three-plane case (AVX2).
	interleave3 func(dst, p0, p1, p2 *uint8, n int, flip uint64)
	// colSumKern holds SumPixels' unsigned and signed eight-channel kernels
	// (AVX2).
	colSumKern [2]func(acc *int32, src *uint8, n, stride int)

	kernels [numISA]kernelSet
	best    isa // the best path this machine supports
	// detected records which paths the machine itself runs (tests may
	// add emulated ones to kernels afterwards).
	detected [numISA]bool
	active   isa
)

func init() {
	kernels[isaGeneric] = kernelSet{ok: true, tile8: tile8Go, outI32: outI32Go, outQ: outQGo}
	initArch()
	for p := numISA - 1; p > isaGeneric; p-- {
		if kernels[p].ok {
			best = p
			break
		}
	}
	active = best
	for p := range detected {
		detected[p] = kernels[p].ok
	}
	if f := cpu.Forced(); f != "" {
		for p := isaGeneric; p < numISA; p++ {
			if isaNames[p] == f {
				active = lowerTo(p)
			}
		}
		// Names of other kernel families (avx512, asimd, …) map to what
		// they imply for this package.
		switch f {
		case "avx512":
			active = lowerTo(isaAVXVNNI)
		case "asimd":
			active = lowerTo(isaNEON)
		case "dotprod", "i8mm":
			active = lowerTo(isaSDOT)
		}
	}
}

// lowerTo returns the best supported path not above p of p's family (x86
// or arm64): a name of the other architecture's family lowers to generic.
func lowerTo(p isa) isa {
	arm := p >= isaNEON
	for ; p > isaGeneric; p-- {
		if kernels[p].ok && (p >= isaNEON) == arm {
			return p
		}
	}
	return isaGeneric
}

// ISA names the path PackB packs for and Gemm runs on newly packed weights.
func ISA() string { return active.String() }

// ISAs lists the paths this machine can run, generic first.
func ISAs() []string {
	var out []string
	for p := isaGeneric; p < numISA; p++ {
		if kernels[p].ok {
			out = append(out, p.String())
		}
	}
	return out
}

// SetISA switches the path for weights packed from now on (tests and
// benchmarks run every path in one process this way). It is not safe to
// call while other goroutines pack weights. It returns an error for a path
// the machine cannot run.
func SetISA(name string) error {
	for p := isaGeneric; p < numISA; p++ {
		if isaNames[p] == name {
			if !kernels[p].ok {
				return fmt.Errorf("q8: path %s not supported on this machine", name)
			}
			active = p
			return nil
		}
	}
	return fmt.Errorf("q8: unknown path %q", name)
}
