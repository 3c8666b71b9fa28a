// Package q8 is the integer GEMM of qtool: uint8 activations times int8
// weights with int32 accumulation, over weights packed once.
//
// The maths (gemmlowp's low-precision.md) is
//
//	sum_k (A[i,k]-a0)(B[k,j]-b0[j]) = sum_k A·B − a0·colsum(B)[j] − b0[j]·rowsum(A)[i] + a0·b0[j]·K
//
// so the micro-kernels only ever compute the raw u8×s8 dot products, the
// column sums of the weights are computed at pack time, the row sums of A
// once per call (and only when some b0 is non-zero), and everything else is
// folded into one per-column int32 term that the output stage adds.
//
// API
//
//	pb := q8.PackB(k, n, b, ldb, transB)   // weights [K×N] int8, packed for the active ISA
//	q8.Gemm(m, a, lda, aZero, pb, bZero, n0, n1, out)
//	q8.GemmIndirect(m, nk, kc, base, offs, aZero, pb, n0, n1, out)  // convolution without im2col
//	q8.Requantize(rows, cols, src, lds, r)  // the output stage alone, int32 → uint8/int8
//	q8.LookupU8(dst, src, table)            // 256-entry table activations
//	q8.TransposeU8(dst, ldd, src, lds, rows, cols, flip)  // NCHW ↔ NHWC
//	q8.PackDW / q8.DWConv                   // depthwise convolution over NHWC pixels
//	q8.AddU8, q8.MulU8, q8.BuildTable, q8.LogisticMLAS  // ONNX Runtime's QLinearAdd/Mul and table ops, bit for bit
//	q8.ISA(), q8.ISAs(), q8.SetISA(name)    // the path in use, the runnable ones, switching (tests)
//
// Gemm computes columns n0..n1 of the m×N product; the caller splits columns
// across goroutines (preferably at multiples of ColumnAlign, which avoids
// recomputing a shared tile) and the result of every element is
// bit-identical however the columns are split and whichever ISA path runs.
// out is either Int32(c, ldc), the raw (A−a0)(B−b0) accumulators that
// MatMulInteger and ConvInteger return, or a *Requant output stage:
//
//	y = clamp(round_half_even(float32(acc + Bias[j]) · Scale[j]) + OutZero, Min, Max)
//
// which is ONNX QLinearMatMul/QLinearConv with Scale = sa·sb/sy computed by
// the caller in float32, and fused Relu/Clip expressed as the Min/Max clamp.
// The float32 product is the order of operations of ONNX Runtime's MLAS; the
// ONNX reference (float64 multiply) agrees with it except on products within
// a float32 ulp of a rounding tie.
//
// Signed activations are handled by callers with the usual shift: a⊕0x80 is
// a+128 as uint8, with zero point a0+128; unsigned weights by subtracting 128
// (zero point b0−128). Both keep the dot product exact.
//
// Paths (chosen once at start-up from internal/simd/cpu; QTOOL_ISA lowers it):
//
//	avx512vnni  zmm VPDPBUSD, R×64 tiles (R = 1..6) with the output stage in
//	            the kernel: masked int32 stores or requantized byte stores
//	            straight from the accumulators
//	avxvnni     ymm VPDPBUSD (VEX, written as bytes), 6×16 strips of the same layout
//	avx2        VPMOVZXBW-widened A and int16 weights with VPMADDWD: exact for
//	            all uint8/int8 data (VPMADDUBSW would saturate its int16 pair
//	            sums for values beyond 7 bits, so it is not used; every exact
//	            split of it costs as many multiplies per product); 6×16
//	            strips, or one row × 64, with the output stage in the kernel,
//	            and conv rows gathered and widened in one pass. VPMADDWD plus
//	            VPADDD run at ~1.6 pairs per cycle on Zen 4 (measured
//	            register-only), which bounds this path near 190 GOPS
//	sdot        arm64 SDOT (by element) on the same int8 layout, R×16 strips;
//	            A is flipped to int8 (a⊕0x80) and the accumulators start at
//	            128·colsum(B)
//	neon        arm64 without dotprod: SXTL/UXTL-widened operands and
//	            SMLAL/SMLAL2 into int32, R×8 strips, exact for all data
//	generic     pure Go, the reference every other path is tested against
//
// Packed weights remember the path they were packed for, so changing the path
// with SetISA (tests only) never mixes layouts.
//
// The avxvnni path cannot run on the development machines (their hypervisor
// hides AVX-VNNI; the instruction faults), so its tests run the same strip
// code with the EVEX encoding of VPDPBUSD; the VEX bytes are produced by
// gen_asm.py from the register numbers and TestAVXVNNIEncoding compares them
// with what GNU as assembles for the same instructions. The arm64 kernels'
// WORD-encoded SDOT/SXTL/SMLAL (gen_asm_arm64.py) are checked the same way
// against llvm-mc on any host (neon_encoding_test.go), and `make arm64-test`
// runs the package under qemu for each CPU family.
package q8

import (
	"fmt"
	"math"
	"sync"
)

// ColumnAlign is the column tile of every path: splitting [0,N) at its
// multiples gives each goroutine whole tiles.
const ColumnAlign = nr

const (
	nr = 64 // columns per packed panel
	mr = 6  // rows per micro-kernel call
)

type layout uint8

const (
	layoutVNNI   layout = iota // int8, groups of 4 k per column: [panel][k/4][64][4]
	layoutWide16               // int16, pairs of k per column:  [panel][k/2][64][2]
)

// PackedB is a constant right-hand operand [K×N] packed for one ISA path.
type PackedB struct {
	K, N int
	// ColSum[j] is the sum over k of B[k][j].
	ColSum []int32

	kp   int // K rounded up to the k-group of the layout
	path isa
	lay  layout
	b8   []int8
	b16  []int16
}

// PackB packs the weights B [K×N] (or B^T [N×K] when transB), element (k,j)
// at b[k*ldb+j] (b[j*ldb+k] when transB), for the active path.
func PackB(k, n int, b []int8, ldb int, transB bool) *PackedB {
	return packB(active, k, n, b, ldb, transB)
}

func packB(p isa, k, n int, b []int8, ldb int, transB bool) *PackedB {
	if k < 0 || n < 0 {
		panic(fmt.Sprintf("q8.PackB: negative size %d×%d", k, n))
	}
	if k > 0 && n > 0 {
		rows, cols := k, n
		if transB {
			rows, cols = n, k
		}
		if ldb < cols || len(b) < (rows-1)*ldb+cols {
			panic(fmt.Sprintf("q8.PackB: %d×%d operand with ldb %d in %d elements", rows, cols, ldb, len(b)))
		}
	}
	at := func(kk, j int) int8 {
		if transB {
			return b[j*ldb+kk]
		}
		return b[kk*ldb+j]
	}
	pb := &PackedB{K: k, N: n, path: p, ColSum: make([]int32, n)}
	for j := 0; j < n; j++ {
		var s int32
		for kk := 0; kk < k; kk++ {
			s += int32(at(kk, j))
		}
		pb.ColSum[j] = s
	}
	panels := (n + nr - 1) / nr
	if p == isaAVX2 {
		pb.lay = layoutWide16
		pb.kp = (k + 1) &^ 1
		pb.b16 = make([]int16, panels*pb.kp*nr)
		for pn := 0; pn < panels; pn++ {
			base := pn * pb.kp * nr
			for kk := 0; kk < k; kk++ {
				row := base + (kk>>1)*2*nr + kk&1
				for c := 0; c < nr && pn*nr+c < n; c++ {
					pb.b16[row+2*c] = int16(at(kk, pn*nr+c))
				}
			}
		}
		return pb
	}
	pb.lay = layoutVNNI
	pb.kp = (k + 3) &^ 3
	pb.b8 = make([]int8, panels*pb.kp*nr)
	for pn := 0; pn < panels; pn++ {
		base := pn * pb.kp * nr
		for kk := 0; kk < k; kk++ {
			row := base + (kk>>2)*4*nr + kk&3
			for c := 0; c < nr && pn*nr+c < n; c++ {
				pb.b8[row+4*c] = at(kk, pn*nr+c)
			}
		}
	}
	return pb
}

// Output selects what Gemm writes: int32 accumulators (C32 with row stride
// Ldc) or, when Q is set, the requantized 8-bit values.
type Output struct {
	C32 []int32
	Ldc int
	Q   *Requant
}

// Int32 is the raw-accumulator output: c[i*ldc+j] = sum_k (A−a0)(B−b0).
func Int32(c []int32, ldc int) Output { return Output{C32: c, Ldc: ldc} }

// Requant is the output stage of QLinearMatMul/QLinearConv (see the package
// documentation for the formula). Exactly one of OutU8/OutS8 is set; element
// (i,j) goes to Out[i*Ldc+j]. Bias (nil or len N) is in accumulator units
// (scale sa·sb). Scale has length 1 (per tensor) or N (per column) and must be
// finite. Min/Max clamp the output (fused Relu/Clip); they are intersected
// with the output type's range, and Min == Max == 0 means the full range.
type Requant struct {
	Bias     []int32
	Scale    []float32
	OutZero  int32
	Min, Max int32
	OutU8    []uint8
	OutS8    []int8
	Ldc      int
}

// bounds returns the effective clamp, in the output type.
func (r *Requant) bounds() (lo, hi int32) {
	lo, hi = 0, 255
	if r.OutU8 == nil {
		lo, hi = -128, 127
	}
	if r.Min == 0 && r.Max == 0 {
		return lo, hi
	}
	if r.Min > lo {
		lo = r.Min
	}
	if r.Max < hi {
		hi = r.Max
	}
	return lo, hi
}

// stage is a requantization prepared for a run of columns: what the output
// kernels read.
type stage struct {
	zp         int32
	fmin, fmax float32 // clamp bounds minus zp, in the float domain
	signed     bool
}

func (r *Requant) stage() stage {
	lo, hi := r.bounds()
	return stage{zp: r.OutZero, fmin: float32(lo - r.OutZero), fmax: float32(hi - r.OutZero), signed: r.OutU8 == nil}
}

// quantize1 is the scalar output stage every path must reproduce bit for
// bit. Clamping before rounding equals clamping after because the bounds are
// integers and rounding is monotonic; doing it first keeps the float to int
// conversion in range whatever the scale.
func quantize1(v int32, scale float32, s *stage) int32 {
	f := float32(v) * scale
	if f < s.fmin {
		f = s.fmin
	}
	if f > s.fmax {
		f = s.fmax
	}
	return int32(math.RoundToEven(float64(f))) + s.zp
}

// scratch holds the per-call column terms.
type scratch struct {
	colTerm []int32   // −a0·colsum + a0·b0·K (+ bias)
	negBZ   []int32   // −b0 per column
	scale   []float32 // per column
	rowSum  []int32
	tile    [mr * nr]int32
	a       []uint8 // A padded to kp columns when K is not a multiple of the k group
	a16     []int16 // A widened for the avx2 path
	//lint:ignore U1000 only amd64's VNNI indirect kernels use it
	offs    []int     // GemmIndirect's offset table of one row block
	dwAcc   []int32   // DWConv's accumulators of one pixel
	dwCT    []int32   // DWConv's column terms in dw8Row's channel order
	dwSc    []float32 // and its scales
	dw3Col  []uint8   // DWConv3x3's column image of one output row
	dw3Zero []uint8   // and its row of zero points
	gather  []uint8   // gemmIndirectGather's im2col block
}

// noFused forces the tile-then-output-stage loop on paths that have a fused
// kernel (tests compare both).
var noFused bool

var scratchPool = sync.Pool{New: func() any { return new(scratch) }}

func grow32p(s *[]int32, n int) []int32 {
	*s = grow32(*s, n)
	return *s
}

func grow32(s []int32, n int) []int32 {
	if cap(s) < n {
		return make([]int32, n)
	}
	return s[:n]
}

// checkCall validates the arguments shared by Gemm and GemmIndirect
// (panicking on programming errors) and reports whether there is work.
func checkCall(fn string, m int, pb *PackedB, bZero []int32, n0, n1 int, out Output) (st stage, ok bool) {
	n := pb.N
	if n0 < 0 || n1 > n || n0 > n1 || m < 0 {
		panic(fmt.Sprintf("q8.%s: columns %d..%d of %d, m=%d", fn, n0, n1, n, m))
	}
	if len(bZero) != 1 && len(bZero) != n {
		panic(fmt.Sprintf("q8.%s: %d zero points for %d columns", fn, len(bZero), n))
	}
	if m == 0 || n0 == n1 {
		return st, false
	}
	if q := out.Q; q != nil {
		if (q.OutU8 == nil) == (q.OutS8 == nil) {
			panic("q8: Requant needs exactly one of OutU8, OutS8")
		}
		if len(q.Scale) != 1 && len(q.Scale) != n {
			panic(fmt.Sprintf("q8.%s: %d scales for %d columns", fn, len(q.Scale), n))
		}
		if q.Bias != nil && len(q.Bias) != n {
			panic(fmt.Sprintf("q8.%s: %d biases for %d columns", fn, len(q.Bias), n))
		}
		ol := len(q.OutU8) + len(q.OutS8)
		if q.Ldc < n1 || ol < (m-1)*q.Ldc+n1 {
			panic(fmt.Sprintf("q8.%s: output of %d elements with ldc %d for %d×%d", fn, ol, q.Ldc, m, n1))
		}
		st = q.stage()
	} else if out.Ldc < n1 || len(out.C32) < (m-1)*out.Ldc+n1 {
		panic(fmt.Sprintf("q8.%s: int32 output of %d elements with ldc %d for %d×%d", fn, len(out.C32), out.Ldc, m, n1))
	}
	return st, true
}

// columns fills the per-column terms of the output stage for n0..n1. They
// are indexed from the first panel's start and padded to whole panels
// (zeros outside n0..n1), so a fused kernel can read a full panel of them.
func (sc *scratch) columns(aZero int32, pb *PackedB, bZero []int32, n0, n1 int, out Output) (pStart int, anyBZ bool) {
	k := pb.K
	pStart = n0 / nr * nr
	w := (n1 - pStart + nr - 1) / nr * nr
	sc.colTerm = grow32(sc.colTerm, w)
	sc.negBZ = grow32(sc.negBZ, w)
	clear(sc.colTerm)
	clear(sc.negBZ)
	for j := n0; j < n1; j++ {
		bz := bZero[0]
		if len(bZero) > 1 {
			bz = bZero[j]
		}
		anyBZ = anyBZ || bz != 0
		t := -aZero*pb.ColSum[j] + aZero*bz*int32(k)
		if out.Q != nil && out.Q.Bias != nil {
			t += out.Q.Bias[j]
		}
		sc.colTerm[j-pStart] = t
		sc.negBZ[j-pStart] = -bz
	}
	if out.Q != nil {
		if cap(sc.scale) < w {
			sc.scale = make([]float32, w)
		}
		sc.scale = sc.scale[:w]
		clear(sc.scale)
		for j := n0; j < n1; j++ {
			if len(out.Q.Scale) == 1 {
				sc.scale[j-pStart] = out.Q.Scale[0]
			} else {
				sc.scale[j-pStart] = out.Q.Scale[j]
			}
		}
	}
	return pStart, anyBZ
}

// Gemm computes columns n0..n1 of (A−aZero)·(B−bZero) for the m×K matrix A
// (row i at a[i*lda:]) and writes them through out. bZero has length 1 or
// pb.N. Programming errors (short slices, bad ranges) panic.
func Gemm(m int, a []uint8, lda int, aZero int32, pb *PackedB, bZero []int32, n0, n1 int, out Output) {
	k := pb.K
	if m > 0 && k > 0 && (lda < k || len(a) < (m-1)*lda+k) {
		panic(fmt.Sprintf("q8.Gemm: A %d×%d with lda %d in %d elements", m, k, lda, len(a)))
	}
	st, ok := checkCall("Gemm", m, pb, bZero, n0, n1, out)
	if !ok {
		return
	}
	sc := scratchPool.Get().(*scratch)
	defer scratchPool.Put(sc)
	pStart, anyBZ := sc.columns(aZero, pb, bZero, n0, n1, out)
	sc.rowSum = grow32(sc.rowSum, m)
	for i := 0; i < m; i++ {
		if anyBZ && k > 0 {
			sc.rowSum[i] = rowSum(a[i*lda : i*lda+k])
		} else {
			sc.rowSum[i] = 0
		}
	}

	// The left operand as the kernels read it: rows of kp elements whose
	// padding is zero (times zero weights, so it adds nothing).
	aOp, ldaOp := a, lda
	switch {
	case pb.lay == layoutWide16:
		if cap(sc.a16) < m*pb.kp {
			sc.a16 = make([]int16, m*pb.kp)
		}
		sc.a16 = sc.a16[:m*pb.kp]
		for i := 0; i < m; i++ {
			widenRow(sc.a16[i*pb.kp:(i+1)*pb.kp], a[i*lda:i*lda+k])
		}
	case pb.kp != k:
		if cap(sc.a) < m*pb.kp {
			sc.a = make([]uint8, m*pb.kp)
		}
		sc.a = sc.a[:m*pb.kp]
		for i := 0; i < m; i++ {
			row := sc.a[i*pb.kp : (i+1)*pb.kp]
			copy(row, a[i*lda:i*lda+k])
			clear(row[k:])
		}
		aOp, ldaOp = sc.a, pb.kp
	}

	ker := kernels[pb.path]
	if ker.fused != nil && pb.kp > 0 && !noFused {
		ker.fused(sc, m, aOp, ldaOp, pb, n0, n1, pStart, out, &st)
		return
	}
	for p0 := pStart; p0 < n1; p0 += nr {
		c0, c1 := max(p0, n0), min(p0+nr, n1)
		panel := (p0 / nr) * pb.kp * nr
		for i0 := 0; i0 < m; i0 += mr {
			rows := min(mr, m-i0)
			if pb.kp > 0 {
				if pb.lay == layoutWide16 {
					ker.tile16(sc, pb, panel, i0, rows, c0-p0, c1-p0)
				} else {
					ker.tile8(sc, aOp, ldaOp, pb, panel, i0, rows, c0-p0, c1-p0)
				}
			} else {
				clear(sc.tile[:])
			}
			for r := 0; r < rows; r++ {
				i := i0 + r
				acc := sc.tile[r*nr+c0-p0 : r*nr+c1-p0]
				ct := sc.colTerm[c0-pStart : c1-pStart]
				nb := sc.negBZ[c0-pStart : c1-pStart]
				if out.Q == nil {
					ker.outI32(out.C32[i*out.Ldc+c0:i*out.Ldc+c1], acc, ct, nb, sc.rowSum[i])
					continue
				}
				q := out.Q
				scl := sc.scale[c0-pStart : c1-pStart]
				if q.OutU8 != nil {
					ker.outQ(q.OutU8[i*q.Ldc+c0:i*q.Ldc+c1], acc, ct, nb, sc.rowSum[i], scl, &st)
				} else {
					ker.outQ(s8AsU8(q.OutS8[i*q.Ldc+c0:i*q.Ldc+c1]), acc, ct, nb, sc.rowSum[i], scl, &st)
				}
			}
		}
	}
}

// Requantize applies the output stage to an int32 matrix src [rows×cols]
// (row stride lds): Out[i*Ldc+j] from src[i*lds+j] + Bias[j], with Scale
// per column or per tensor. It is the stage Gemm fuses, for accumulators
// produced elsewhere.
func Requantize(rows, cols int, src []int32, lds int, r *Requant) {
	if rows == 0 || cols == 0 {
		return
	}
	if (r.OutU8 == nil) == (r.OutS8 == nil) || (len(r.Scale) != 1 && len(r.Scale) != cols) ||
		(r.Bias != nil && len(r.Bias) != cols) || lds < cols || len(src) < (rows-1)*lds+cols ||
		r.Ldc < cols || len(r.OutU8)+len(r.OutS8) < (rows-1)*r.Ldc+cols {
		panic("q8.Requantize: inconsistent sizes")
	}
	st := r.stage()
	ct := make([]int32, cols)
	copy(ct, r.Bias)
	nb := make([]int32, cols)
	scl := make([]float32, cols)
	for j := range scl {
		scl[j] = r.Scale[0]
		if len(r.Scale) > 1 {
			scl[j] = r.Scale[j]
		}
	}
	ker := kernels[active]
	for i := 0; i < rows; i++ {
		acc := src[i*lds : i*lds+cols]
		if r.OutU8 != nil {
			ker.outQ(r.OutU8[i*r.Ldc:i*r.Ldc+cols], acc, ct, nb, 0, scl, &st)
		} else {
			ker.outQ(s8AsU8(r.OutS8[i*r.Ldc:i*r.Ldc+cols]), acc, ct, nb, 0, scl, &st)
		}
	}
}

// rowSum adds bytes eight at a time in SWAR form: each 64-bit word is split
// into its even and odd bytes as 16-bit lanes, which cannot overflow (510 per word) for 128
// words, so lanes are flushed to the int32 total every 128 words.
func rowSum(a []uint8) int32 {
	var total int32
	i := 0
	const m = 0x00ff00ff00ff00ff
	for i+8 <= len(a) {
		var lanes uint64
		for w := 0; w < 128 && i+8 <= len(a); w++ {
			x := uint64(a[i]) | uint64(a[i+1])<<8 | uint64(a[i+2])<<16 | uint64(a[i+3])<<24 |
				uint64(a[i+4])<<32 | uint64(a[i+5])<<40 | uint64(a[i+6])<<48 | uint64(a[i+7])<<56
			lanes += x&m + (x>>8)&m
			i += 8
		}
		lanes = lanes&0x0000ffff0000ffff + (lanes>>16)&0x0000ffff0000ffff
		total += int32(lanes&0xffffffff) + int32(lanes>>32)
	}
	for ; i < len(a); i++ {
		total += int32(a[i])
	}
	return total
}

func widenRow(dst []int16, src []uint8) {
	j := 0
	if widenKern != nil && len(src) >= 4 {
		j = len(src) &^ 3
		widenKern(&dst[0], &src[0], j)
	}
	for ; j < len(src); j++ {
		dst[j] = int16(src[j])
	}
	clear(dst[len(src):])
}
