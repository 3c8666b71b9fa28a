package f32

import (
	"fmt"
	"math"
	"math/rand"
	"sync"
	"testing"
	"unsafe"
)

// forEachKernel runs f once per kernel this machine can execute, with that
// kernel selected, so every assembly path and the pure-Go twin share the tests.
func forEachKernel(t *testing.T, f func(t *testing.T)) {
	prev := active()
	defer current.Store(prev)
	for _, k := range kernels() {
		current.Store(k)
		t.Run(k.name, f)
	}
}

func randMat(r *rand.Rand, n int) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = float32(r.NormFloat64())
	}
	return s
}

// refGemm is the naive triple loop in float64, plus the sum of absolute terms
// per element from which the test derives its rounding tolerance.
func refGemm(transA, transB bool, m, n, k int, a []float32, lda int, b []float32, ldb int) (dot, mag []float64) {
	dot = make([]float64, m*n)
	mag = make([]float64, m*n)
	for i := 0; i < m; i++ {
		for j := 0; j < n; j++ {
			var s, sa float64
			for p := 0; p < k; p++ {
				var av, bv float32
				if transA {
					av = a[p*lda+i]
				} else {
					av = a[i*lda+p]
				}
				if transB {
					bv = b[j*ldb+p]
				} else {
					bv = b[p*ldb+j]
				}
				s += float64(av) * float64(bv)
				sa += math.Abs(float64(av) * float64(bv))
			}
			dot[i*n+j], mag[i*n+j] = s, sa
		}
	}
	return
}

// closeTo reports whether got matches want, given mag, the sum of magnitudes
// that were rounded on the way (a float32 k-term sum errs by at most about
// k·eps·Σ|terms|; the factor 2 covers the epilogue's additions).
func closeTo(got float32, want, mag float64, k int) bool {
	if math.IsNaN(want) {
		return math.IsNaN(float64(got))
	}
	tol := 2*float64(k+3)*0x1p-24*mag + 1e-30
	return math.Abs(float64(got)-want) <= tol
}

func act(ep *Epilogue, v float64) float64 {
	switch ep.Act {
	case ActRelu:
		return math.Max(v, 0)
	case ActClip:
		return math.Min(math.Max(v, float64(ep.Min)), float64(ep.Max))
	case ActLeakyRelu:
		if v < 0 {
			return v * float64(ep.Alpha)
		}
	}
	return v
}

var sizes = []int{1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 32, 33, 47, 67, 129}

func TestSgemm(t *testing.T) {
	forEachKernel(t, func(t *testing.T) {
		r := rand.New(rand.NewSource(1))
		for it := 0; it < 60; it++ {
			m, n, k := sizes[r.Intn(len(sizes))], sizes[r.Intn(len(sizes))], sizes[r.Intn(len(sizes))]
			if it == 0 {
				m, n, k = 67, 129, 300 // several k blocks
			}
			transA, transB := r.Intn(2) == 1, r.Intn(2) == 1
			alpha := []float32{1, 0.5, -2}[r.Intn(3)]
			beta := []float32{0, 1, 0.25}[r.Intn(3)]
			lda, ldb, ldc := k+r.Intn(3), n+r.Intn(3), n+r.Intn(3)
			if transA {
				lda = m + r.Intn(3)
			}
			if transB {
				ldb = k + r.Intn(3)
			}
			a := randMat(r, lda*max(m, k))
			b := randMat(r, ldb*max(k, n))
			c := randMat(r, ldc*m)
			c0 := append([]float32(nil), c...)
			if beta == 0 {
				for i := range c {
					c[i] = float32(math.NaN()) // must not be read
				}
			}
			Sgemm(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
			dot, mag := refGemm(transA, transB, m, n, k, a, lda, b, ldb)
			for i := 0; i < m; i++ {
				for j := 0; j < n; j++ {
					old := float64(c0[i*ldc+j])
					want := float64(alpha)*dot[i*n+j] + float64(beta)*old
					mg := math.Abs(float64(alpha))*mag[i*n+j] + math.Abs(float64(beta)*old)
					if got := c[i*ldc+j]; !closeTo(got, want, mg, k) {
						t.Fatalf("m=%d n=%d k=%d tA=%v tB=%v alpha=%v beta=%v: C[%d,%d]=%v want %v", m, n, k, transA, transB, alpha, beta, i, j, got, want)
					}
				}
				for j := n; j < ldc; j++ {
					if beta != 0 && c[i*ldc+j] != c0[i*ldc+j] {
						t.Fatalf("padding C[%d,%d] changed", i, j)
					}
				}
			}
		}
	})
}

func TestSgemmDegenerate(t *testing.T) {
	c := []float32{1, 2, 3, 4}
	Sgemm(false, false, 2, 2, 0, 1, nil, 0, nil, 2, 3, c, 2)
	if fmt.Sprint(c) != "[3 6 9 12]" {
		t.Errorf("k=0 beta=3: %v", c)
	}
	Sgemm(false, false, 2, 2, 5, 0, nil, 5, nil, 2, 0, c, 2)
	if fmt.Sprint(c) != "[0 0 0 0]" {
		t.Errorf("alpha=0 beta=0: %v", c)
	}
	Sgemm(false, false, 0, 0, 0, 1, nil, 0, nil, 0, 0, nil, 0)
}

func TestBadArgsPanic(t *testing.T) {
	for name, f := range map[string]func(){
		"short A": func() {
			Sgemm(false, false, 4, 4, 4, 1, make([]float32, 15), 4, make([]float32, 16), 4, 0, make([]float32, 16), 4)
		},
		"short C": func() {
			Sgemm(false, false, 4, 4, 4, 1, make([]float32, 16), 4, make([]float32, 16), 4, 0, make([]float32, 15), 4)
		},
		"small ldb": func() {
			Sgemm(false, true, 4, 4, 4, 1, make([]float32, 16), 4, make([]float32, 16), 3, 0, make([]float32, 16), 4)
		},
		"rows": func() {
			SgemmPackedA(PackA(false, 4, 4, make([]float32, 16), 4), 0, 5, 4, make([]float32, 16), 4, make([]float32, 20), 4, Epilogue{})
		},
		"transA short A": func() {
			SgemmTransAPackedB(5, make([]float32, 19), 5, PackB(false, 4, 4, make([]float32, 16), 4), 0, 4, make([]float32, 20), 4, Epilogue{})
		},
		"transA small lda": func() {
			SgemmTransAPackedB(5, make([]float32, 40), 4, PackB(false, 4, 4, make([]float32, 16), 4), 0, 4, make([]float32, 20), 4, Epilogue{})
		},
		"transA cols": func() {
			SgemmTransAPackedB(5, make([]float32, 20), 5, PackB(false, 4, 4, make([]float32, 16), 4), 0, 5, make([]float32, 25), 5, Epilogue{})
		},
		"bias": func() {
			SgemmPackedA(PackA(false, 4, 4, make([]float32, 16), 4), 0, 4, 4, make([]float32, 16), 4, make([]float32, 16), 4, Epilogue{RowBias: make([]float32, 3)})
		},
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: no panic", name)
				}
			}()
			f()
		}()
	}
}

var epilogues = []Epilogue{
	{},
	{Act: ActRelu},
	{Act: ActClip, Min: -0.5, Max: 1.5},
	{Act: ActLeakyRelu, Alpha: 0.1},
	{Accumulate: true, Act: ActRelu},
	{Accumulate: true},
}

// wantEp is the float64 reference of an epilogue applied to dot.
func wantEp(ep *Epilogue, dot, mag, old float64, i, j int) (float64, float64) {
	v := dot
	if ep.Accumulate {
		v += old
		mag += math.Abs(old)
	}
	if ep.RowBias != nil {
		v += float64(ep.RowBias[i])
		mag += math.Abs(float64(ep.RowBias[i]))
	}
	if ep.ColBias != nil {
		v += float64(ep.ColBias[j])
		mag += math.Abs(float64(ep.ColBias[j]))
	}
	return act(ep, v), mag
}

func withBias(r *rand.Rand, ep Epilogue, m, n int) Epilogue {
	if r.Intn(2) == 0 {
		ep.RowBias = randMat(r, m)
	}
	if r.Intn(2) == 0 {
		ep.ColBias = randMat(r, n)
	}
	return ep
}

func TestSgemmPacked(t *testing.T) {
	forEachKernel(t, func(t *testing.T) {
		r := rand.New(rand.NewSource(2))
		for it := 0; it < 60; it++ {
			m, n, k := sizes[r.Intn(len(sizes))], sizes[r.Intn(len(sizes))], sizes[r.Intn(len(sizes))]
			if it == 0 {
				m, n, k = 33, 67, 520
			}
			ep := withBias(r, epilogues[r.Intn(len(epilogues))], m, n)
			trans := r.Intn(2) == 1
			a, b := randMat(r, m*k), randMat(r, k*n)
			c0 := randMat(r, m*n)
			var dot, mag []float64
			c := append([]float32(nil), c0...)
			if r.Intn(2) == 0 {
				lda := k
				if trans {
					lda = m
				}
				SgemmPackedA(PackA(trans, m, k, a, lda), 0, m, n, b, n, c, n, ep)
				dot, mag = refGemm(trans, false, m, n, k, a, lda, b, n)
			} else {
				ldb := n
				if trans {
					ldb = k
				}
				SgemmPackedB(m, a, k, PackB(trans, k, n, b, ldb), 0, n, c, n, ep)
				dot, mag = refGemm(false, trans, m, n, k, a, k, b, ldb)
			}
			for i := 0; i < m; i++ {
				for j := 0; j < n; j++ {
					want, mg := wantEp(&ep, dot[i*n+j], mag[i*n+j], float64(c0[i*n+j]), i, j)
					if got := c[i*n+j]; !closeTo(got, want, mg, k) {
						t.Fatalf("it %d m=%d n=%d k=%d ep=%+v: C[%d,%d]=%v want %v", it, m, n, k, ep, i, j, got, want)
					}
				}
			}
		}
	})
}

// splits returns a few ways of cutting [0,n) into consecutive chunks,
// including cuts that fall inside a register tile.
func splits(r *rand.Rand, n int) [][]int {
	out := [][]int{{0, n}}
	for _, step := range []int{1, 3, 5, 8, 13} {
		if step < n {
			var s []int
			for x := 0; x < n; x += step {
				s = append(s, x)
			}
			out = append(out, append(s, n))
		}
	}
	s := []int{0}
	for x := 0; x < n; {
		x = min(n, x+1+r.Intn(40))
		s = append(s, x)
	}
	return append(out, s)
}

// Splitting rows (PackedA) or columns (PackedB) between callers must give
// bit-identical results and never touch elements outside the range.
func TestSplitBitIdentical(t *testing.T) {
	forEachKernel(t, func(t *testing.T) {
		r := rand.New(rand.NewSource(3))
		for _, sz := range [][3]int{{67, 45, 300}, {29, 131, 17}, {8, 32, 600}, {1, 70, 5}, {9, 49, 40}, {5, 57, 9}} {
			m, n, k := sz[0], sz[1], sz[2]
			a, b, c0 := randMat(r, m*k), randMat(r, k*n), randMat(r, m*n)
			for _, base := range epilogues {
				ep := withBias(r, base, m, n)
				pa, pb := PackA(false, m, k, a, k), PackB(false, k, n, b, n)
				whole := append([]float32(nil), c0...)
				SgemmPackedA(pa, 0, m, n, b, n, whole, n, ep)
				wholeB := append([]float32(nil), c0...)
				SgemmPackedB(m, a, k, pb, 0, n, wholeB, n, ep)
				for _, sp := range splits(r, m) {
					c := append([]float32(nil), c0...)
					for x := 0; x+1 < len(sp); x++ {
						before := append([]float32(nil), c...)
						SgemmPackedA(pa, sp[x], sp[x+1], n, b, n, c, n, ep)
						for i := 0; i < m*n; i++ {
							if (i/n < sp[x] || i/n >= sp[x+1]) && math.Float32bits(c[i]) != math.Float32bits(before[i]) {
								t.Fatalf("rows %d..%d wrote C[%d]", sp[x], sp[x+1], i)
							}
						}
					}
					assertBits(t, fmt.Sprintf("PackedA %v rows %v", sz, sp), whole, c)
				}
				for _, sp := range splits(r, n) {
					c := append([]float32(nil), c0...)
					for x := 0; x+1 < len(sp); x++ {
						before := append([]float32(nil), c...)
						SgemmPackedB(m, a, k, pb, sp[x], sp[x+1], c, n, ep)
						for i := 0; i < m*n; i++ {
							if (i%n < sp[x] || i%n >= sp[x+1]) && math.Float32bits(c[i]) != math.Float32bits(before[i]) {
								t.Fatalf("cols %d..%d wrote C[%d]", sp[x], sp[x+1], i)
							}
						}
					}
					assertBits(t, fmt.Sprintf("PackedB %v cols %v", sz, sp), wholeB, c)
				}
			}
		}
	})
}

func assertBits(t *testing.T, what string, want, got []float32) {
	t.Helper()
	for i := range want {
		if math.Float32bits(want[i]) != math.Float32bits(got[i]) {
			t.Fatalf("%s: element %d = %v, unsplit %v", what, i, got[i], want[i])
		}
	}
}

func TestEpilogueNaNAndK0(t *testing.T) {
	forEachKernel(t, func(t *testing.T) {
		nan := float32(math.NaN())
		// k = 0: only bias, accumulate and activation remain.
		c := []float32{-1, 2, -3, 4}
		SgemmPackedA(PackA(false, 2, 0, nil, 0), 0, 2, 2, nil, 2, c, 2, Epilogue{Accumulate: true, RowBias: []float32{1, -10}, Act: ActRelu})
		if fmt.Sprint(c) != "[0 3 0 0]" {
			t.Errorf("k=0: %v", c)
		}
		// NaN inputs propagate through every activation.
		for _, ep := range epilogues[:4] {
			a := []float32{nan, 1}
			c := make([]float32, 2)
			SgemmPackedA(PackA(false, 2, 1, a, 1), 0, 2, 1, []float32{1}, 1, c, 1, ep)
			if !math.IsNaN(float64(c[0])) || c[1] != float32(act(&ep, 1)) {
				t.Errorf("%+v: %v", ep, c)
			}
		}
	})
}

// Every assembly kernel against the pure-Go twin on edge-tile sizes: the
// two differ only by FMA rounding, so they must agree to within the rounding
// bound, which is far tighter than any indexing or epilogue mistake.
func TestAssemblyMatchesGeneric(t *testing.T) {
	prev := active()
	defer current.Store(prev)
	r := rand.New(rand.NewSource(4))
	for _, kern := range kernels() {
		if kern == genericKernel {
			continue
		}
		t.Run(kern.name, func(t *testing.T) {
			mr, nr := kern.mr, kern.nr
			ms := []int{1, mr - 1, mr, mr + 1, 2*mr + 3, 67, 129}
			ns := []int{1, nr - 1, nr, nr + 1, 2*nr + 5, 67, 129}
			ks := []int{1, 3, 4, 5, 17, kern.kc - 1, kern.kc + 1, 300}
			for it := 0; it < 40; it++ {
				m, n, k := ms[r.Intn(len(ms))], ns[r.Intn(len(ns))], ks[r.Intn(len(ks))]
				ep := withBias(r, epilogues[r.Intn(len(epilogues))], m, n)
				a, b, c0 := randMat(r, m*k), randMat(r, k*n), randMat(r, m*n)
				got := append([]float32(nil), c0...)
				want := append([]float32(nil), c0...)
				current.Store(kern)
				SgemmPackedA(PackA(false, m, k, a, k), 0, m, n, b, n, got, n, ep)
				current.Store(genericKernel)
				SgemmPackedA(PackA(false, m, k, a, k), 0, m, n, b, n, want, n, ep)
				_, mag := refGemm(false, false, m, n, k, a, k, b, n)
				for i := range got {
					extra := math.Abs(float64(c0[i])) + 10 // biases are N(0,1)
					if !closeTo(got[i], float64(want[i]), 2*mag[i]+extra, k) {
						t.Fatalf("m=%d n=%d k=%d ep=%+v: element %d: %s %v, generic %v", m, n, k, ep, i, kern.name, got[i], want[i])
					}
				}
			}
		})
	}
}

func TestTileEpLayout(t *testing.T) {
	var e tileEp
	got := []uintptr{unsafe.Offsetof(e.flags), unsafe.Offsetof(e.rowBias), unsafe.Offsetof(e.colBias),
		unsafe.Offsetof(e.lo), unsafe.Offsetof(e.hi), unsafe.Offsetof(e.alpha), unsafe.Offsetof(e.rowLo),
		unsafe.Offsetof(e.rowHi), unsafe.Offsetof(e.kmask), unsafe.Offsetof(e.ymask), unsafe.Offsetof(e.memberBias)}
	want := []uintptr{0, 8, 16, 24, 28, 32, 40, 48, 56, 64, 128}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("tileEp offsets %v, the assembly expects %v", got, want)
	}
}

// The hot path must not allocate: pack buffers come from the pool.
func TestNoAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("sync.Pool drops items under -race; allocation counts are meaningless")
	}
	forEachKernel(t, func(t *testing.T) {
		r := rand.New(rand.NewSource(5))
		m, n, k := 37, 53, 70
		a, b, c := randMat(r, m*k), randMat(r, k*n), make([]float32, m*n)
		pa, pb := PackA(false, m, k, a, k), PackB(true, k, n, randMat(r, n*k), k)
		ep := Epilogue{RowBias: randMat(r, m), ColBias: randMat(r, n), Act: ActRelu}
		for name, f := range map[string]func(){
			"Sgemm":        func() { Sgemm(true, true, m, n, k, 1, a, m, b, k, 0, c, n) },
			"SgemmPackedA": func() { SgemmPackedA(pa, 3, 30, n, b, n, c, n, ep) },
			"SgemmPackedB": func() { SgemmPackedB(m, a, k, pb, 5, 50, c, n, ep) },
		} {
			f()
			if allocs := testing.AllocsPerRun(20, f); allocs != 0 {
				t.Errorf("%s: %v allocations per call", name, allocs)
			}
		}
	})
}

// Goroutines sharing one packed operand and one C, each owning a row (or
// column) range, as the runtime calls it.
func TestConcurrentSplits(t *testing.T) {
	forEachKernel(t, func(t *testing.T) {
		r := rand.New(rand.NewSource(10))
		m, n, k := 61, 75, 530
		a, b := randMat(r, m*k), randMat(r, k*n)
		ep := Epilogue{RowBias: randMat(r, m), ColBias: randMat(r, n), Act: ActLeakyRelu, Alpha: 0.2}
		pa, pb := PackA(false, m, k, a, k), PackB(false, k, n, b, n)
		wantA, wantB := make([]float32, m*n), make([]float32, m*n)
		SgemmPackedA(pa, 0, m, n, b, n, wantA, n, ep)
		SgemmPackedB(m, a, k, pb, 0, n, wantB, n, ep)
		gotA, gotB := make([]float32, m*n), make([]float32, m*n)
		var wg sync.WaitGroup
		for i := 0; i < 5; i++ {
			wg.Add(2)
			go func(i int) {
				defer wg.Done()
				SgemmPackedA(pa, i*m/5, (i+1)*m/5, n, b, n, gotA, n, ep)
			}(i)
			go func(i int) {
				defer wg.Done()
				SgemmPackedB(m, a, k, pb, i*n/5, (i+1)*n/5, gotB, n, ep)
			}(i)
		}
		wg.Wait()
		assertBits(t, "concurrent rows", wantA, gotA)
		assertBits(t, "concurrent columns", wantB, gotB)
	})
}

// A B whose row stride is a multiple of 1 KiB is copied into panels instead
// of read in place; the two routes must give the same bits.
func TestAliasedStrideB(t *testing.T) {
	forEachKernel(t, func(t *testing.T) {
		r := rand.New(rand.NewSource(12))
		m, n, k := 37, 70, 300
		a, b := randMat(r, m*k), randMat(r, k*n)
		wide := make([]float32, k*512)
		for p := 0; p < k; p++ {
			copy(wide[p*512:], b[p*n:(p+1)*n])
		}
		ep := Epilogue{RowBias: randMat(r, m), Act: ActRelu}
		pa := PackA(false, m, k, a, k)
		want, got := make([]float32, m*n), make([]float32, m*n)
		SgemmPackedA(pa, 0, m, n, b, n, want, n, ep)
		SgemmPackedA(pa, 0, m, n, wide, 512, got, n, ep)
		assertBits(t, "PackedA ldb=512", want, got)
		Sgemm(false, false, m, n, k, 1, a, k, b, n, 0, want, n)
		Sgemm(false, false, m, n, k, 1, a, k, wide, 512, 0, got, n)
		assertBits(t, "Sgemm ldb=512", want, got)
	})
}

// gemm.run's two tile orders (rowsOuterMaxK) give the same bits: each tile
// is computed alone either way.
func TestTileOrderBitIdentical(t *testing.T) {
	forEachKernel(t, func(t *testing.T) {
		r := rand.New(rand.NewSource(11))
		saved := rowsOuterMaxK
		defer func() { rowsOuterMaxK = saved }()
		for _, sz := range [][3]int{{20, 1100, 16}, {37, 70, 96}, {130, 45, 600}} {
			m, n, k := sz[0], sz[1], sz[2]
			pa, b := PackA(false, m, k, randMat(r, m*k), k), randMat(r, k*n)
			c0 := randMat(r, m*n)
			ep := withBias(r, Epilogue{Accumulate: true, Act: ActRelu}, m, n)
			var got [2][]float32
			for i, lim := range []int{0, 1 << 30} {
				rowsOuterMaxK = lim
				got[i] = append([]float32(nil), c0...)
				SgemmPackedA(pa, 0, m, n, b, n, got[i], n, ep)
			}
			assertBits(t, fmt.Sprint(sz), got[0], got[1])
		}
	})
}

// A single row against a PackedB (gemvRow where the ISA has a gemv) gives
// the bits the micro-kernel gives that row inside a taller A, for every
// epilogue, depths past one block, and column ranges cutting panels.
func TestGemvRowBits(t *testing.T) {
	forEachKernel(t, func(t *testing.T) {
		r := rand.New(rand.NewSource(13))
		for _, sz := range [][2]int{{70, 5}, {1000, 1280}, {33, 600}, {64, 1}} {
			n, k := sz[0], sz[1]
			pb := PackB(false, k, n, randMat(r, k*n), n)
			a := randMat(r, 9*k) // row 0 alone, then inside 9 rows
			for _, base := range epilogues {
				ep := withBias(r, base, 9, n)
				c0 := randMat(r, 9*n)
				tall := append([]float32(nil), c0...)
				SgemmPackedB(9, a, k, pb, 0, n, tall, n, ep)
				for _, cut := range [][2]int{{0, n}, {n / 3, n - n/4}} {
					one := append([]float32(nil), c0[:n]...)
					SgemmPackedB(1, a, k, pb, cut[0], cut[1], one, n, ep)
					for j := 0; j < n; j++ {
						want := c0[j]
						if j >= cut[0] && j < cut[1] {
							want = tall[j]
						}
						if math.Float32bits(one[j]) != math.Float32bits(want) {
							t.Fatalf("%v %+v cols %v: [%d] = %v, want %v", sz, base, cut, j, one[j], want)
						}
					}
				}
			}
		}
	})
}
