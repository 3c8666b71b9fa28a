package f32

import (
	"fmt"
	"math"
)

// Act selects the activation applied in the GEMM epilogue.
type Act uint8

const (
	ActNone      Act = iota
	ActRelu          // max(x, 0); NaN stays NaN
	ActClip          // min(max(x, Min), Max)
	ActLeakyRelu     // x if x >= 0 else Alpha*x
)

// Epilogue is applied to every output element once its dot product is
// complete, while the tile is still in cache:
//
//	c = act(dot + (c if Accumulate) + RowBias[i] + ColBias[j])
//
// i and j are absolute row and column indices of C. A nil bias is skipped.
// Accumulate reads the C element before the dot product is added, which is
// how a caller fuses a residual Add (put the residual in C first) or sums
// several GEMMs into one output.
type Epilogue struct {
	RowBias, ColBias []float32
	Act              Act
	Alpha, Min, Max  float32
	Accumulate       bool
}

func (ep *Epilogue) check(m0, m1, n0, n1 int) {
	if ep.RowBias != nil && len(ep.RowBias) < m1 {
		panic(fmt.Sprintf("f32: RowBias has %d elements, need %d", len(ep.RowBias), m1))
	}
	if ep.ColBias != nil && len(ep.ColBias) < n1 {
		panic(fmt.Sprintf("f32: ColBias has %d elements, need %d", len(ep.ColBias), n1))
	}
	if ep.Act > ActLeakyRelu {
		panic(fmt.Sprintf("f32: unknown activation %d", ep.Act))
	}
}

// trivial reports whether the epilogue does nothing beyond storing the sum.
func (ep *Epilogue) trivial() bool {
	return ep.RowBias == nil && ep.ColBias == nil && ep.Act == ActNone
}

// Sgemm computes C = alpha·op(A)·op(B) + beta·C for row-major matrices, where
// op(A) is m×k and op(B) is k×n (BLAS sgemm semantics). With beta == 0, C is
// only written, never read (so it may hold NaNs).
func Sgemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	if m < 0 || n < 0 || k < 0 {
		panic(fmt.Sprintf("f32: Sgemm negative size m=%d n=%d k=%d", m, n, k))
	}
	if m == 0 || n == 0 {
		return
	}
	checkMat("C", false, m, n, c, ldc)
	if alpha == 0 || k == 0 {
		scaleC(m, n, beta, c, ldc)
		return
	}
	checkMat("A", transA, m, k, a, lda)
	checkMat("B", transB, k, n, b, ldb)
	ep := Epilogue{}
	switch beta {
	case 0:
	case 1:
		ep.Accumulate = true
	default:
		scaleC(m, n, beta, c, ldc)
		ep.Accumulate = true
	}
	kern := active()
	g := gemm{
		kern: kern, m0: 0, m1: m, n0: 0, n1: n, k: k,
		a: a, lda: lda, transA: transA, alpha: alpha,
		b: b, ldb: ldb, transB: transB,
		c: c, ldc: ldc, ep: ep,
	}
	g.run()
}

// scaleC sets C = beta·C; beta == 0 writes zeros without reading (BLAS rule).
func scaleC(m, n int, beta float32, c []float32, ldc int) {
	if beta == 1 {
		return
	}
	for i := 0; i < m; i++ {
		row := c[i*ldc : i*ldc+n]
		if beta == 0 {
			clear(row)
			continue
		}
		for j := range row {
			row[j] *= beta
		}
	}
}

// checkMat panics unless buf holds a rows×cols row-major matrix (or its
// transpose when trans) with leading dimension ld. The assembly kernels do no
// bounds checks, so this is what keeps a bad call from corrupting memory.
func checkMat(name string, trans bool, rows, cols int, buf []float32, ld int) {
	if trans {
		rows, cols = cols, rows
	}
	if rows == 0 || cols == 0 {
		return
	}
	if ld < cols {
		panic(fmt.Sprintf("f32: %s leading dimension %d < %d", name, ld, cols))
	}
	need := (rows-1)*ld + cols
	if len(buf) < need {
		panic(fmt.Sprintf("f32: %s has %d elements, need %d", name, len(buf), need))
	}
}

// PackedA is a constant left operand (m×k) stored as the micro-kernel reads
// it: row panels of the kernel's MR rows, each k-major. Pack once, then share
// it freely between goroutines (it is read-only).
type PackedA struct {
	m, k int
	kern *kernel
	data []float32 // panel p at p*k*mr: [k][mr]
}

// M returns the number of rows of the packed matrix.
func (p *PackedA) M() int { return p.m }

// K returns the number of columns of the packed matrix.
func (p *PackedA) K() int { return p.k }

// RowAlign is the row granularity at which SgemmPackedA callers should split
// rows between goroutines: any split is correct and bit-identical, but a
// split inside a group of RowAlign rows makes both sides compute the group.
func (p *PackedA) RowAlign() int { return p.kern.mr }

// PackA packs op(A) (m×k; A is k×m when transA) for SgemmPackedA.
func PackA(transA bool, m, k int, a []float32, lda int) *PackedA {
	if m < 0 || k < 0 {
		panic(fmt.Sprintf("f32: PackA negative size m=%d k=%d", m, k))
	}
	checkMat("A", transA, m, k, a, lda)
	kern := active()
	mr := kern.mr
	panels := (m + mr - 1) / mr
	p := &PackedA{m: m, k: k, kern: kern, data: make([]float32, panels*k*mr)}
	for pi := 0; pi < panels; pi++ {
		packA(p.data[pi*k*mr:(pi+1)*k*mr], mr, a, lda, transA, 1, pi*mr, min(m, pi*mr+mr), 0, k)
	}
	return p
}

// SgemmPackedA computes rows m0..m1 of C (m×n) = P·B, B being k×n row-major,
// then applies ep. C is indexed by absolute row; rows outside m0..m1 are
// neither read nor written, so goroutines may own disjoint row ranges of the
// same C.
func SgemmPackedA(p *PackedA, m0, m1, n int, b []float32, ldb int, c []float32, ldc int, ep Epilogue) {
	if m0 < 0 || m1 > p.m || m0 > m1 || n < 0 {
		panic(fmt.Sprintf("f32: SgemmPackedA rows %d..%d of %d, n=%d", m0, m1, p.m, n))
	}
	if m0 == m1 || n == 0 {
		return
	}
	checkMat("B", false, p.k, n, b, ldb)
	checkMat("C", false, m1, n, c, ldc)
	ep.check(m0, m1, 0, n)
	g := gemm{
		kern: p.kern, m0: m0, m1: m1, n0: 0, n1: n, k: p.k,
		packedA: p,
		b:       b, ldb: ldb,
		c: c, ldc: ldc, ep: ep,
	}
	g.run()
}

// PackedB is a constant right operand (k×n) stored as column panels of the
// kernel's NR columns, each k-major. Read-only once packed.
type PackedB struct {
	k, n int
	kern *kernel
	data []float32 // panel q at q*k*nr: [k][nr]
}

// K returns the number of rows of the packed matrix.
func (p *PackedB) K() int { return p.k }

// N returns the number of columns of the packed matrix.
func (p *PackedB) N() int { return p.n }

// ColAlign is the column granularity at which SgemmPackedB callers should
// split columns between goroutines (see PackedA.RowAlign).
func (p *PackedB) ColAlign() int { return p.kern.nr }

// PackB packs op(B) (k×n; B is n×k when transB) for SgemmPackedB.
func PackB(transB bool, k, n int, b []float32, ldb int) *PackedB {
	if k < 0 || n < 0 {
		panic(fmt.Sprintf("f32: PackB negative size k=%d n=%d", k, n))
	}
	checkMat("B", transB, k, n, b, ldb)
	kern := active()
	nr := kern.nr
	panels := (n + nr - 1) / nr
	p := &PackedB{k: k, n: n, kern: kern, data: make([]float32, panels*k*nr)}
	for q := 0; q < panels; q++ {
		packB(p.data[q*k*nr:(q+1)*k*nr], nr, b, ldb, transB, 0, k, q*nr, min(n, q*nr+nr))
	}
	return p
}

// SgemmPackedB computes columns n0..n1 of C (m×n) = A·P, A being m×k
// row-major, then applies ep. Columns outside n0..n1 are neither read nor
// written.
func SgemmPackedB(m int, a []float32, lda int, p *PackedB, n0, n1 int, c []float32, ldc int, ep Epilogue) {
	if n0 < 0 || n1 > p.n || n0 > n1 || m < 0 {
		panic(fmt.Sprintf("f32: SgemmPackedB columns %d..%d of %d, m=%d", n0, n1, p.n, m))
	}
	if n0 == n1 || m == 0 {
		return
	}
	checkMat("A", false, m, p.k, a, lda)
	checkMat("C", false, m, n1, c, ldc)
	ep.check(0, m, n0, n1)
	g := gemm{
		kern: p.kern, m0: 0, m1: m, n0: n0, n1: n1, k: p.k,
		a: a, lda: lda, alpha: 1,
		packedB: p,
		c:       c, ldc: ldc, ep: ep,
	}
	g.run()
}

// SgemmTransAPackedB computes columns n0..n1 of C (m×n) = Aᵀ·P, A being
// k×m row-major (lda >= m), then applies ep. It is SgemmPackedB with a
// transposed left operand: a convolution's column matrix (k×pixels) times
// its packed transposed weights gives the output pixel-major, which wastes
// less of the micro-tile than the channel-major SgemmPackedA when the pixel
// count is small and not a multiple of the kernel's column width (a 7×7
// map: 49 = 6·8+1 rows of 8 instead of 32+16+8 columns, the last 8 wide for
// one column). Each element is the same left-to-right sum as in
// SgemmPackedA, so both orientations agree bit for bit (with RowBias there
// becoming ColBias here). Columns outside n0..n1 are neither read nor
// written.
func SgemmTransAPackedB(m int, a []float32, lda int, p *PackedB, n0, n1 int, c []float32, ldc int, ep Epilogue) {
	if n0 < 0 || n1 > p.n || n0 > n1 || m < 0 {
		panic(fmt.Sprintf("f32: SgemmTransAPackedB columns %d..%d of %d, m=%d", n0, n1, p.n, m))
	}
	if n0 == n1 || m == 0 {
		return
	}
	checkMat("A", true, m, p.k, a, lda)
	checkMat("C", false, m, n1, c, ldc)
	ep.check(0, m, n0, n1)
	g := gemm{
		kern: p.kern, m0: 0, m1: m, n0: n0, n1: n1, k: p.k,
		a: a, lda: lda, transA: true, alpha: 1,
		packedB: p,
		c:       c, ldc: ldc, ep: ep,
	}
	g.run()
}

// applyEpilogue finishes rows r0..r1, columns c0..c1 of C, whose elements
// already hold dot (+ old C when accumulating).
func applyEpilogue(ep *Epilogue, c []float32, ldc, r0, r1, c0, c1 int) {
	if ep.trivial() {
		return
	}
	var cb []float32
	if ep.ColBias != nil {
		cb = ep.ColBias[c0:c1]
	}
	lo, hi := float32(math.Inf(-1)), float32(math.Inf(1))
	switch ep.Act {
	case ActRelu:
		lo = 0
	case ActClip:
		lo, hi = ep.Min, ep.Max
	}
	for i := r0; i < r1; i++ {
		row := c[i*ldc+c0 : i*ldc+c1]
		if ep.RowBias != nil {
			rb := ep.RowBias[i]
			for j := range row {
				row[j] += rb
			}
		}
		if cb != nil {
			cb := cb[:len(row)]
			for j := range row {
				row[j] += cb[j]
			}
		}
		switch ep.Act {
		case ActRelu, ActClip:
			for j, v := range row {
				// Comparisons, not min/max builtins: NaN must pass through
				// unchanged as it does in the assembly (VMAXPS/VMINPS return
				// the second operand, x, when either is NaN).
				if v < lo {
					v = lo
				}
				if v > hi {
					v = hi
				}
				row[j] = v
			}
		case ActLeakyRelu:
			al := ep.Alpha
			for j, v := range row {
				if v < 0 {
					row[j] = v * al
				}
			}
		}
	}
}
