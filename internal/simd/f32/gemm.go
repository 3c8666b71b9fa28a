package f32

import (
	"math"
	"sync"
	"unsafe"
)

// kernel is one micro-kernel with its register tile and cache blocking.
//
// micro computes the mr×nr tile  t[i][j] = Σ_p a[p*mr+i]·b[p*ldb+j]  over
// p < kc, runs the tileEp stages on it and stores it to c (row stride ldc).
// Every element is an independent left-to-right sum over p, so its value
// does not depend on where in the tile it sits: this is what makes results
// bit-identical however callers split rows or columns.
type kernel struct {
	name       string
	mr, nr     int
	mc, kc, nc int // cache blocks: mc multiple of mr, nc multiple of nr
	micro      microFunc
	edge       bool // micro handles epEdge tiles in place
	// narrow are kernels for a ragged last column panel, narrowest first
	// (same mr and arithmetic as micro, fewer columns).
	narrow []narrowKernel
	// dw are the depthwise kernels of the same ISA for 1, 2 and 4 members
	// per group (see dwFunc); dwLanes is their vector width.
	dw      [3]dwFunc
	dwLanes int
	// gather2 fills stride-2 depthwise planes: dst[r*dstStride+i] =
	// src[r*srcStride+2i] for r < rows, i < n.
	gather2 func(dst []float32, dstStride int, src []float32, srcStride int, rows, n int)
	// copyRows is gather2 with stride 1 (stride-1 planes).
	copyRows func(dst []float32, dstStride int, src []float32, srcStride int, rows, n int)
	// dw3 computes 3x3 stride-1 depthwise rows four at a time, each input
	// row vector feeding every output row that reads it (nil: dw only).
	// Same sums in the same order as dw, so the same bits.
	dw3 func(rows, n int, out []float32, outStride int, in []float32, inStride int, w []float32, ep *tileEp)
	// dw3s2 is dw3 for stride 2, reading the two column phases
	// phaseStride floats apart.
	dw3s2 func(rows, n int, out []float32, outStride int, in []float32, inStride, phaseStride int, w []float32, ep *tileEp)
	// gemv computes one row of A times one nr-wide panel of a PackedB
	// over kc depth steps, the micro-kernel's sums for that row (nil: the
	// micro-kernel runs single rows padded to mr).
	gemv func(kc int, a, b []float32, out []float32)
	// maxRows is maxRowsGeneric's vector twin (nil: use that).
	maxRows func(dst []float32, dstStride int, a []float32, aStride int, b []float32, bStride int, rows, n int)
	pool    sync.Pool
}

type microFunc func(kc int, a, b []float32, ldb int, c []float32, ldc int, ep *tileEp)

type narrowKernel struct {
	nr    int
	micro microFunc
}

// narrowFor picks the narrowest kernel covering rem columns, or the widest
// narrow one when none does.
func (k *kernel) narrowFor(rem int) narrowKernel {
	for _, nk := range k.narrow {
		if nk.nr >= rem {
			return nk
		}
	}
	return k.narrow[len(k.narrow)-1]
}

// tileEp is the epilogue as the micro-kernels see it. The assembly reads it
// by offset (flags 0, rowBias 8, colBias 16, lo 24, hi 28, alpha 32, rowLo
// 40, rowHi 48, kmask 56, ymask 64, memberBias 128); TestTileEpLayout pins
// that.
type tileEp struct {
	flags            uint64
	rowBias, colBias unsafe.Pointer // first row / column of the tile
	lo, hi, alpha    float32
	_                float32
	// For epEdge tiles: the rows rowLo..rowHi of the tile and the columns
	// set in kmask (bit j; zmm kernels) or ymask (lane j all ones; ymm
	// kernels) are ours; nothing else of C is read or written.
	rowLo, rowHi int
	kmask        uint64
	ymask        [16]int32
	// memberBias is the byte step of rowBias between the members of a
	// depthwise group (0: one bias for all).
	memberBias int
}

// tileEp flag bits, applied in this order.
const (
	epLoad    = 1 << iota // add the old C
	epRowBias             // add rowBias[i]
	epColBias             // add colBias[j]
	epClamp               // x = min(max(x, lo), hi), NaN kept
	epLeaky               // x = x < 0 ? x*alpha : x
	epEdge                // partial tile: honour rowLo/rowHi and the masks
)

// finalEp builds the stages of the last depth block of a full tile at C[ti][tj].
func (g *gemm) finalEp(ti, tj int, load bool) tileEp {
	t := g.epStages()
	if load {
		t.flags |= epLoad
	}
	if g.ep.RowBias != nil {
		t.rowBias = unsafe.Pointer(&g.ep.RowBias[ti])
	}
	if g.ep.ColBias != nil {
		t.colBias = unsafe.Pointer(&g.ep.ColBias[tj])
	}
	return t
}

// setFullEp is finalEp for a full (non-edge) tile, written in place from the
// call's precomputed stages (g.stages): only the fields a full tile's
// micro-kernel reads, so that small-depth GEMMs (MobileNetV2's pointwise
// convs, k = 16..96) do not spend a sizeable share of each tile building
// and copying the whole struct.
func (g *gemm) setFullEp(t *tileEp, ti, tj int, load bool) {
	t.flags = g.stages.flags
	if load {
		t.flags |= epLoad
	}
	t.lo, t.hi, t.alpha = g.stages.lo, g.stages.hi, g.stages.alpha
	if g.ep.RowBias != nil {
		t.rowBias = unsafe.Pointer(&g.ep.RowBias[ti])
	}
	if g.ep.ColBias != nil {
		t.colBias = unsafe.Pointer(&g.ep.ColBias[tj])
	}
}

// epStages is the epilogue's flags and constants, without bias pointers.
func (g *gemm) epStages() tileEp {
	t := tileEp{}
	ep := &g.ep
	if ep.RowBias != nil {
		t.flags |= epRowBias
	}
	if ep.ColBias != nil {
		t.flags |= epColBias
	}
	switch ep.Act {
	case ActRelu:
		t.flags |= epClamp
		t.lo, t.hi = 0, float32(math.Inf(1))
	case ActClip:
		t.flags |= epClamp
		t.lo, t.hi = ep.Min, ep.Max
	case ActLeakyRelu:
		t.flags |= epLeaky
		t.alpha = ep.Alpha
	}
	return t
}

// depthBlock splits k into equal blocks of at most kc (a multiple of 8 where
// possible), so no block is a short tail that pays a full pass over C for
// little work. It depends on k alone: every element sees the same blocks
// however callers split rows or columns.
func (kern *kernel) depthBlock(k int) int {
	n := (k + kern.kc - 1) / kern.kc
	b := (k + n - 1) / n
	return min(kern.kc, (b+7)&^7)
}

// workspace holds one call's packing buffers, 64-byte aligned so the vector
// loads of a panel never straddle cache lines.
type workspace struct {
	a, b, tile []float32
	ep         tileEp
}

func (k *kernel) getWS() *workspace {
	if w, ok := k.pool.Get().(*workspace); ok {
		return w
	}
	na, nb, nt := k.mc*k.kc, k.kc*k.nc, k.mr*k.nr
	raw := make([]float32, na+nb+nt+16)
	off := 0
	if r := uintptr(unsafe.Pointer(&raw[0])) & 63; r != 0 {
		off = int(64-r) / 4
	}
	buf := raw[off:]
	return &workspace{a: buf[:na], b: buf[na : na+nb], tile: buf[na+nb : na+nb+nt]}
}

func (k *kernel) putWS(w *workspace) { k.pool.Put(w) }

// gemm is one call: C[m0:m1, n0:n1] = op(A)·op(B) with the epilogue. A comes
// either prepacked (packedA) or as a matrix packed here block by block (scaled
// by alpha while packing); likewise B.
type gemm struct {
	kern           *kernel
	m0, m1, n0, n1 int
	k              int

	packedA *PackedA
	a       []float32
	lda     int
	transA  bool
	alpha   float32

	packedB *PackedB
	b       []float32
	ldb     int
	transB  bool

	c   []float32
	ldc int
	ep  Epilogue

	stages tileEp // epStages(), set by run
}

func (g *gemm) run() {
	kern := g.kern
	mr, nr := kern.mr, kern.nr
	if g.k == 0 {
		g.noDot()
		return
	}
	if g.m1-g.m0 == 1 && g.packedB != nil && kern.gemv != nil && !g.transA && g.alpha == 1 {
		g.gemvRow()
		return
	}
	// Prepacked operands have panels aligned to absolute row/column 0, so the
	// first panel may start before m0/n0; its extra rows/columns go through
	// the tile buffer and are never stored.
	rowBase, colBase := g.m0, g.n0
	if g.packedA != nil {
		rowBase = g.m0 / mr * mr
	}
	if g.packedB != nil {
		colBase = g.n0 / nr * nr
	}
	// A row-major B is read in place: a micro-panel is kc rows of nr
	// contiguous floats, which the kernel walks with stride ldb. Only the
	// ragged last panel, and a transposed B, are packed.
	//
	// Except when the row stride is a multiple of 1 KiB: then a panel's kc
	// rows fall into at most four L1 sets (and few L2 sets) and evict each
	// other, so the panels are copied out first (AVX2 at n=1024: 63% -> 88%
	// of peak).
	directB := g.packedB == nil && !g.transB && g.ldb%256 != 0
	// Panel widths are measured to the matrix's last column (not the call's)
	// so every split picks the same kernels for the same columns.
	nEnd := g.n1
	if g.packedB != nil {
		nEnd = g.packedB.n
	}
	g.stages = g.epStages()
	kcBlk := kern.depthBlock(g.k)
	// A shallow product (MobileNetV2's 1x1 convs: k = 16..96) stores a C
	// tile every few dozen FMAs. Sweeping the tiles column panel by column
	// panel writes mc/mr row panels at once, too many streams for the
	// prefetchers when C is not in cache (C[96x12544], k = 16: 0.54 ms
	// warm, 2.1 cold); row panel by row panel writes mr rows front to back
	// (cold: 0.52 ms). B (kc·nc, in L2) is what gets re-read instead, which
	// costs deep products more than it saves (k = 576: 3.6 -> 5.0 ms).
	rowsOuter := g.k <= rowsOuterMaxK
	ws := kern.getWS()
	defer kern.putWS(ws)
	for jc := colBase; jc < g.n1; jc += kern.nc {
		nc := min(kern.nc, g.n1-jc)
		for pc := 0; pc < g.k; pc += kcBlk {
			kc := min(kcBlk, g.k-pc)
			last := pc+kc == g.k
			load := g.ep.Accumulate || pc > 0
			bStride := kc * nr
			switch {
			case g.packedB != nil:
			case directB:
				if rag := nc % nr; rag != 0 {
					j := jc + nc - rag
					packB(ws.b[:bStride], nr, g.b, g.ldb, false, pc, pc+kc, j, j+rag)
				}
			default:
				for jr := 0; jr < nc; jr += nr {
					dst := ws.b[jr/nr*bStride : jr/nr*bStride+bStride]
					if !g.transB && jr+nr <= nc {
						kern.copyRows(dst, nr, g.b[pc*g.ldb+jc+jr:], g.ldb, kc, nr)
						continue
					}
					packB(dst, nr, g.b, g.ldb, g.transB, pc, pc+kc, jc+jr, min(g.n1, jc+jr+nr))
				}
			}
			for ic := rowBase; ic < g.m1; ic += kern.mc {
				mc := min(kern.mc, g.m1-ic)
				var aBlk []float32
				var aStride int
				if g.packedA != nil {
					aBlk = g.packedA.data[ic/mr*g.k*mr+pc*mr:]
					aStride = g.k * mr
				} else {
					aBlk = ws.a
					aStride = kc * mr
					for ir := 0; ir < mc; ir += mr {
						packA(ws.a[ir/mr*aStride:ir/mr*aStride+aStride], mr, g.a, g.lda, g.transA, g.alpha, ic+ir, min(g.m1, ic+ir+mr), pc, pc+kc)
					}
				}
				// panel runs the column panel at jr over row panels
				// ir0..ir1 of the block.
				panel := func(jr, ir0, ir1 int) {
					var bp []float32
					ldb := nr
					switch {
					case g.packedB != nil:
						bp = g.packedB.data[(jc+jr)/nr*g.k*nr+pc*nr:]
					case directB && jr+nr <= nc:
						bp, ldb = g.b[pc*g.ldb+jc+jr:], g.ldb
					case directB:
						bp = ws.b
					default:
						bp = ws.b[jr/nr*bStride:]
					}
					tj := jc + jr
					a := aBlk[ir0/mr*aStride:]
					if pw := min(nr, nEnd-tj); pw == nr || len(kern.narrow) == 0 {
						g.tiles(ws, kern.micro, nr, kc, a, aStride, ic+ir0, ir1-ir0, bp, ldb, tj, load, last)
					} else {
						// The ragged last panel goes through narrower kernels
						// so fewer lanes compute padding.
						for off := 0; off < pw; {
							nk := kern.narrowFor(pw - off)
							g.tiles(ws, nk.micro, nk.nr, kc, a, aStride, ic+ir0, ir1-ir0, bp[off:], ldb, tj+off, load, last)
							off += nk.nr
						}
					}
				}
				if rowsOuter {
					for ir := 0; ir < mc; ir += mr {
						for jr := 0; jr < nc; jr += nr {
							panel(jr, ir, min(mc, ir+mr))
						}
					}
					continue
				}
				for jr := 0; jr < nc; jr += nr {
					panel(jr, 0, mc)
				}
			}
		}
	}
}

// rowsOuterMaxK is the deepest product gemm.run sweeps row panel first.
var rowsOuterMaxK = 96

// gemvRow is run for a single row of A against a PackedB (a batch-1
// classifier: 1280x1000 in MobileNetV2), where the micro-kernel would
// compute mr rows to keep one. Same depth blocks, same FMA chains from
// zero per block, the old C added after each block and the epilogue after
// the last, in the micro-kernel's order: the same bits as run's tiles.
func (g *gemm) gemvRow() {
	kern := g.kern
	nr := kern.nr
	kcBlk := kern.depthBlock(g.k)
	a := g.a[g.m0*g.lda : g.m0*g.lda+g.k]
	row := g.c[g.m0*g.ldc:]
	var acc [64]float32
	out := acc[:nr]
	for tj := g.n0 / nr * nr; tj < g.n1; tj += nr {
		panel := g.packedB.data[tj/nr*g.k*nr : (tj/nr+1)*g.k*nr]
		c0, c1 := max(tj, g.n0), min(tj+nr, g.n1)
		for pc := 0; pc < g.k; pc += kcBlk {
			kc := min(kcBlk, g.k-pc)
			kern.gemv(kc, a[pc:pc+kc], panel[pc*nr:(pc+kc)*nr], out)
			if g.ep.Accumulate || pc > 0 {
				for j := c0; j < c1; j++ {
					row[j] = out[j-tj] + row[j]
				}
			} else {
				copy(row[c0:c1], out[c0-tj:c1-tj])
			}
		}
		applyEpilogue(&g.ep, g.c, g.ldc, g.m0, g.m0+1, c0, c1)
	}
}

// tiles runs micro (nr columns wide) down the row panels of an A block for
// the column panel starting at C column tj.
func (g *gemm) tiles(ws *workspace, micro microFunc, nr, kc int, aBlk []float32, aStride, ic, mc int, bp []float32, ldb, tj int, load, last bool) {
	mr := g.kern.mr
	c0, c1 := max(tj, g.n0), min(tj+nr, g.n1)
	if c0 >= c1 {
		return
	}
	for ir := 0; ir < mc; ir += mr {
		r0, r1 := max(ic+ir, g.m0), min(ic+ir+mr, g.m1)
		g.tile(ws, micro, nr, kc, aBlk[ir/mr*aStride:], bp, ldb, ic+ir, tj, r0, r1, c0, c1, load, last)
	}
}

// tile runs micro for the tile whose top-left element is C[ti][tj], of which
// only rows r0..r1 and columns c0..c1 belong to this call.
func (g *gemm) tile(ws *workspace, micro microFunc, nr, kc int, ap, bp []float32, ldb, ti, tj, r0, r1, c0, c1 int, load, last bool) {
	kern := g.kern
	mr := kern.mr
	// The stages live in the pooled workspace: a pointer to a local would
	// escape through the indirect call and allocate per tile.
	ep := &ws.ep
	if r0 == ti && r1 == ti+mr && c0 == tj && c1 == tj+nr {
		switch {
		case last:
			g.setFullEp(ep, ti, tj, load)
		case load:
			ep.flags = epLoad
		default:
			ep.flags = 0
		}
		micro(kc, ap, bp, ldb, g.c[ti*g.ldc+tj:], g.ldc, ep)
		return
	}
	if kern.edge {
		if last {
			*ep = g.finalEp(ti, tj, load)
		} else if load {
			*ep = tileEp{flags: epLoad}
		} else {
			*ep = tileEp{}
		}
		ep.flags |= epEdge
		ep.rowLo, ep.rowHi = r0-ti, r1-ti
		ep.kmask = 0
		for j := range ep.ymask {
			ep.ymask[j] = 0
			if j >= c0-tj && j < c1-tj {
				ep.ymask[j] = -1
				ep.kmask |= 1 << j
			}
		}
		for j := 16; j < 32; j++ {
			if j >= c0-tj && j < c1-tj {
				ep.kmask |= 1 << j
			}
		}
		micro(kc, ap, bp, ldb, g.c[ti*g.ldc+tj:], g.ldc, ep)
		return
	}
	// Partial tile: compute the whole tile into the scratch buffer and copy
	// out only our part, so neighbouring elements (possibly owned by another
	// goroutine) are never touched. The epilogue then runs in Go on our part;
	// it performs the same float32 operations in the same order as the
	// kernels' stages, so the split cannot change a result.
	t := ws.tile
	*ep = tileEp{}
	if load {
		ep.flags = epLoad
		clear(t)
		for i := r0; i < r1; i++ {
			copy(t[(i-ti)*nr+c0-tj:(i-ti)*nr+c1-tj], g.c[i*g.ldc+c0:i*g.ldc+c1])
		}
	}
	micro(kc, ap, bp, ldb, t, nr, ep)
	for i := r0; i < r1; i++ {
		copy(g.c[i*g.ldc+c0:i*g.ldc+c1], t[(i-ti)*nr+c0-tj:(i-ti)*nr+c1-tj])
	}
	if last {
		applyEpilogue(&g.ep, g.c, g.ldc, r0, r1, c0, c1)
	}
}

// noDot handles k == 0: the product is all zeros, only the epilogue remains.
func (g *gemm) noDot() {
	for i := g.m0; i < g.m1; i++ {
		if !g.ep.Accumulate {
			clear(g.c[i*g.ldc+g.n0 : i*g.ldc+g.n1])
		}
	}
	applyEpilogue(&g.ep, g.c, g.ldc, g.m0, g.m1, g.n0, g.n1)
}

// packA writes rows i0..i1 (i1-i0 <= mr), depth p0..p1 of alpha·op(A) into
// dst as [p][mr], zero-filling the rows past i1.
func packA(dst []float32, mr int, a []float32, lda int, trans bool, alpha float32, i0, i1, p0, p1 int) {
	rows := i1 - i0
	kc := p1 - p0
	dst = dst[:kc*mr]
	if rows < mr {
		clear(dst)
	}
	if trans {
		// op(A)[i][p] = a[p*lda+i]: each depth step is a contiguous run.
		for p := 0; p < kc; p++ {
			src := a[(p0+p)*lda+i0 : (p0+p)*lda+i1]
			d := dst[p*mr : p*mr+rows]
			if alpha == 1 {
				copy(d, src)
			} else {
				for i, v := range src {
					d[i] = alpha * v
				}
			}
		}
		return
	}
	for i := 0; i < rows; i++ {
		src := a[(i0+i)*lda+p0 : (i0+i)*lda+p1]
		if alpha == 1 {
			for p, v := range src {
				dst[p*mr+i] = v
			}
		} else {
			for p, v := range src {
				dst[p*mr+i] = alpha * v
			}
		}
	}
}

// packB writes depth p0..p1, columns j0..j1 (j1-j0 <= nr) of op(B) into dst
// as [p][nr], zero-filling the columns past j1.
func packB(dst []float32, nr int, b []float32, ldb int, trans bool, p0, p1, j0, j1 int) {
	cols := j1 - j0
	kc := p1 - p0
	dst = dst[:kc*nr]
	if cols < nr {
		clear(dst)
	}
	if trans {
		// op(B)[p][j] = b[j*ldb+p]
		for j := 0; j < cols; j++ {
			src := b[(j0+j)*ldb+p0 : (j0+j)*ldb+p1]
			for p, v := range src {
				dst[p*nr+j] = v
			}
		}
		return
	}
	for p := 0; p < kc; p++ {
		copy(dst[p*nr:p*nr+cols], b[(p0+p)*ldb+j0:(p0+p)*ldb+j1])
	}
}
