package q8

import "fmt"

// GemmIndirect is Gemm for convolutions without an im2col matrix (the
// indirect GEMM of XNNPACK's igemm kernels). Row i of A is the
// concatenation of nk runs of kc bytes; run t is base[offs[i*nk+t]:] (an
// input pixel's channels in an NHWC image, or a run of zero points where the
// window hangs over the padding). Every run must have KcPad(kc) bytes inside
// base; the bytes past kc are never used (they meet zero weights). pb must
// hold nk·KcPad(kc) rows of weights, run by run, with zeros in the padded
// rows. The weights' zero points are all zero (symmetric weights): with a
// non-zero b0 the row sums of A would be needed, which the gathered rows do
// not provide; use Gemm over an im2col matrix then.
func GemmIndirect(m, nk, kc int, base []uint8, offs []int, aZero int32, pb *PackedB, n0, n1 int, out Output) {
	kcp := KcPad(kc)
	if nk < 0 || kc < 0 || pb.K != nk*kcp || len(offs) < m*nk {
		panic(fmt.Sprintf("q8.GemmIndirect: %d runs of %d for K=%d, %d offsets for %d rows", nk, kc, pb.K, len(offs), m))
	}
	// One sign test after the loop keeps the per-offset check branch-free.
	lim, bad := len(base)-kcp, 0
	for _, o := range offs[:m*nk] {
		bad |= o | (lim - o)
	}
	if bad < 0 {
		for _, o := range offs[:m*nk] {
			if o < 0 || o > lim {
				panic(fmt.Sprintf("q8.GemmIndirect: run at %d of %d bytes outside %d", o, kcp, len(base)))
			}
		}
	}
	zero := []int32{0}
	st, ok := checkCall("GemmIndirect", m, pb, zero, n0, n1, out)
	if !ok {
		return
	}
	ker := kernels[pb.path]
	if ker.indirect == nil || noFused || pb.K == 0 {
		gemmIndirectGather(m, nk, kc, base, offs, aZero, pb, n0, n1, out)
		return
	}
	sc := scratchPool.Get().(*scratch)
	defer scratchPool.Put(sc)
	pStart, _ := sc.columns(aZero, pb, zero, n0, n1, out)
	sc.rowSum = grow32(sc.rowSum, mr)
	clear(sc.rowSum)
	ker.indirect(sc, m, nk, kcp, base, offs, pb, n0, n1, pStart, out, &st)
}

// tileOffsets lays the offsets of m rows (row i, kernel offset t at
// offs[i*nk+t]) out as the indirect kernels read them: per tile of six rows,
// per kernel offset, the six rows' offsets, rows past m repeating the tile's
// first. dst is reused when large enough.
func tileOffsets(dst []int, m, nk int, offs []int) []int {
	tiles := (m + mr - 1) / mr
	if cap(dst) < tiles*nk*mr {
		dst = make([]int, tiles*nk*mr)
	}
	dst = dst[:tiles*nk*mr]
	for i0 := 0; i0 < m; i0 += mr {
		rows := min(mr, m-i0)
		tt := dst[(i0/mr)*nk*mr:]
		for t := 0; t < nk; t++ {
			for r := 0; r < mr; r++ {
				if r < rows {
					tt[t*mr+r] = offs[(i0+r)*nk+t]
				} else {
					tt[t*mr+r] = offs[i0*nk+t]
				}
			}
		}
	}
	return dst
}

// IndirectTable is a GemmIndirect offset list prepared for many calls (a
// convolution's windows are the same every run): checked once, and laid out
// once the way the kernels read it, which per call was a third of a
// few-channel stem's time.
type IndirectTable struct {
	m, nk int
	offs  []int // as given, row-major
	tiled []int // tileOffsets
	max   int   // the largest offset
}

// NewIndirectTable prepares m rows of nk offsets (row i, kernel offset t at
// offs[i*nk+t], each ≥ 0). It keeps offs, which must not change afterwards.
func NewIndirectTable(m, nk int, offs []int) *IndirectTable {
	if m < 0 || nk <= 0 || len(offs) < m*nk {
		panic(fmt.Sprintf("q8.NewIndirectTable: %d offsets for %d rows of %d", len(offs), m, nk))
	}
	t := &IndirectTable{m: m, nk: nk, offs: offs[: m*nk : m*nk]}
	for _, o := range t.offs {
		if o < 0 {
			panic(fmt.Sprintf("q8.NewIndirectTable: offset %d", o))
		}
		t.max = max(t.max, o)
	}
	t.tiled = tileOffsets(nil, m, nk, t.offs)
	return t
}

// GemmIndirectTable is GemmIndirect over rows r0..r1 of t (r0 a multiple
// of six): output row i is table row r0+i. The offsets were checked when t
// was made; here only that the largest leaves a run inside base.
func GemmIndirectTable(t *IndirectTable, r0, r1, kc int, base []uint8, aZero int32, pb *PackedB, n0, n1 int, out Output) {
	kcp := KcPad(kc)
	nk := t.nk
	if r0 < 0 || r0%mr != 0 || r1 < r0 || r1 > t.m || kc < 0 || pb.K != nk*kcp {
		panic(fmt.Sprintf("q8.GemmIndirectTable: rows %d..%d of %d, %d runs of %d for K=%d", r0, r1, t.m, nk, kc, pb.K))
	}
	m := r1 - r0
	if m > 0 && t.max > len(base)-kcp {
		panic(fmt.Sprintf("q8.GemmIndirectTable: run at %d of %d bytes outside %d", t.max, kcp, len(base)))
	}
	zero := []int32{0}
	st, ok := checkCall("GemmIndirectTable", m, pb, zero, n0, n1, out)
	if !ok {
		return
	}
	ker := kernels[pb.path]
	if ker.tiled == nil && ker.indirect == nil || noFused || pb.K == 0 {
		gemmIndirectGather(m, nk, kc, base, t.offs[r0*nk:r1*nk], aZero, pb, n0, n1, out)
		return
	}
	sc := scratchPool.Get().(*scratch)
	defer scratchPool.Put(sc)
	pStart, _ := sc.columns(aZero, pb, zero, n0, n1, out)
	sc.rowSum = grow32(sc.rowSum, mr)
	clear(sc.rowSum)
	if ker.tiled == nil {
		// A path that reads the rows' offsets in their own order.
		ker.indirect(sc, m, nk, kcp, base, t.offs[r0*nk:r1*nk], pb, n0, n1, pStart, out, &st)
		return
	}
	ker.tiled(sc, m, nk, kcp, base, t.tiled[(r0/mr)*nk*mr:], pb, n0, n1, pStart, out, &st)
}

// KcPad is the run length GemmIndirect reads for kc channels: kc rounded up
// to the 4-byte k group.
func KcPad(kc int) int { return (kc + 3) &^ 3 }

// gemmIndirectGather is the portable GemmIndirect: it gathers blocks of rows
// into an im2col matrix (padding bytes set to the zero point, so they add
// nothing either way) and runs Gemm on them.
func gemmIndirectGather(m, nk, kc int, base []uint8, offs []int, aZero int32, pb *PackedB, n0, n1 int, out Output) {
	const block = 4 * mr
	kcp := KcPad(kc)
	k := nk * kcp
	// From the pool, not made per call: on the paths without an indirect
	// kernel of their own (avxvnni, arm64) this block was most of a conv
	// layer's garbage.
	gs := scratchPool.Get().(*scratch)
	defer scratchPool.Put(gs)
	a := growU8(&gs.gather, block*k)
	for i0 := 0; i0 < m; i0 += block {
		rows := min(block, m-i0)
		for r := 0; r < rows; r++ {
			for t := 0; t < nk; t++ {
				dst := a[r*k+t*kcp : r*k+(t+1)*kcp]
				o := offs[(i0+r)*nk+t]
				copy(dst, base[o:o+kc])
				for c := kc; c < kcp; c++ {
					dst[c] = uint8(aZero)
				}
			}
		}
		Gemm(rows, a, k, aZero, pb, []int32{0}, n0, n1, rowOffset(out, i0))
	}
}

// rowOffset returns the output starting at row r.
func rowOffset(o Output, r int) Output {
	if o.Q == nil {
		return Output{C32: o.C32[r*o.Ldc:], Ldc: o.Ldc}
	}
	q := *o.Q
	if q.OutU8 != nil {
		q.OutU8 = q.OutU8[r*q.Ldc:]
	} else {
		q.OutS8 = q.OutS8[r*q.Ldc:]
	}
	return Output{Q: &q}
}
