package q8

import (
	"fmt"
	"math"
	"math/rand"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
)

// variant is a path, and for paths with a fused kernel whether it is used.
type variant struct {
	p       isa
	noFused bool
}

func (v variant) String() string {
	if v.noFused {
		return v.p.String() + "-unfused"
	}
	return v.p.String()
}

// withISA runs f with the active path set to v, restoring it afterwards.
func withISA(t testing.TB, v variant, f func()) {
	t.Helper()
	old, oldNF := active, noFused
	active, noFused = v.p, v.noFused
	defer func() { active, noFused = old, oldNF }()
	f()
}

// paths lists every path runnable here, with the avxvnni strips emulated by
// their EVEX twin when the machine hides AVX-VNNI.
func paths(t testing.TB) []variant {
	emulateAVXVNNI()
	var ps []variant
	for p := isaGeneric; p < numISA; p++ {
		if kernels[p].ok {
			ps = append(ps, variant{p: p})
			if kernels[p].fused != nil {
				ps = append(ps, variant{p: p, noFused: true})
			}
		}
	}
	logPaths.Do(func() { t.Logf("paths: %v (detected best %v, active %v)", ps, best, active) })
	return ps
}

var logPaths sync.Once

// refGemm is the definition, straight from the formula: int32 sums of
// (A−a0)(B−b0) with two's complement wrap, as every path must give.
func refGemm(m, k, n int, a []uint8, lda int, a0 int32, b []int8, ldb int, transB bool, bz []int32) []int32 {
	c := make([]int32, m*n)
	for i := 0; i < m; i++ {
		for j := 0; j < n; j++ {
			z := bz[0]
			if len(bz) > 1 {
				z = bz[j]
			}
			var s int32
			for l := 0; l < k; l++ {
				var bv int8
				if transB {
					bv = b[j*ldb+l]
				} else {
					bv = b[l*ldb+j]
				}
				s += (int32(a[i*lda+l]) - a0) * (int32(bv) - z)
			}
			c[i*n+j] = s
		}
	}
	return c
}

// refQuant is the ONNX output stage: clamp(rint(float32(acc+bias)·scale)+zp).
func refQuant(acc, bias int32, scale float32, zp, lo, hi int32) int32 {
	v := int64(math.RoundToEven(float64(float32(acc+bias)*scale))) + int64(zp)
	if v < int64(lo) {
		v = int64(lo)
	}
	if v > int64(hi) {
		v = int64(hi)
	}
	return int32(v)
}

type gemmCase struct {
	name    string
	m, k, n int
	fillA   func(i int) uint8
	fillB   func(i int) int8
	a0      int32
	bz      []int32 // nil: random per column
	transB  bool
}

func gemmCases() []gemmCase {
	rnd := rand.New(rand.NewSource(1))
	ra := func(int) uint8 { return uint8(rnd.Intn(256)) }
	rb := func(int) int8 { return int8(rnd.Intn(256) - 128) }
	cA := func(v uint8) func(int) uint8 { return func(int) uint8 { return v } }
	cB := func(v int8) func(int) int8 { return func(int) int8 { return v } }
	var cs []gemmCase
	for _, s := range [][3]int{{1, 1, 1}, {1, 3, 5}, {2, 4, 64}, {7, 13, 65}, {6, 64, 64}, {13, 100, 130},
		{1, 1024, 17}, {64, 256, 200}, {5, 7, 129}, {12, 2, 16}, {3, 9, 63}, {1, 300, 1}, {8, 1000, 40}} {
		for _, a0 := range []int32{0, 128, 255} {
			cs = append(cs, gemmCase{fmt.Sprintf("rand_%dx%dx%d_a0=%d", s[0], s[1], s[2], a0), s[0], s[1], s[2], ra, rb, a0, []int32{0}, false})
		}
		cs = append(cs, gemmCase{fmt.Sprintf("rand_%dx%dx%d_bzcol_T", s[0], s[1], s[2]), s[0], s[1], s[2], ra, rb, 37, nil, true})
		cs = append(cs, gemmCase{fmt.Sprintf("rand_%dx%dx%d_bz=-128", s[0], s[1], s[2]), s[0], s[1], s[2], ra, rb, 3, []int32{-128}, false})
	}
	// Extremes: the largest products and pair sums either sign, which
	// would saturate an int16 VPMADDUBSW pair.
	for _, s := range [][3]int{{6, 4, 64}, {7, 1027, 70}, {64, 512, 64}} {
		for _, e := range []struct {
			a uint8
			b int8
		}{{255, -128}, {255, 127}, {0, -128}, {255, 0}} {
			for _, a0 := range []int32{0, 128, 255} {
				for _, bz := range []int32{0, 127, -128} {
					cs = append(cs, gemmCase{fmt.Sprintf("const_%d_%d_%dx%dx%d_a0=%d_bz=%d", e.a, e.b, s[0], s[1], s[2], a0, bz),
						s[0], s[1], s[2], cA(e.a), cB(e.b), a0, []int32{bz}, false})
				}
			}
		}
	}
	return cs
}

func (c gemmCase) data(rnd *rand.Rand) (a []uint8, lda int, b []int8, ldb int, bz []int32) {
	lda = c.k + 3 // a row stride larger than K catches stride bugs
	a = make([]uint8, c.m*lda)
	for i := range a {
		a[i] = c.fillA(i)
	}
	rows, cols := c.k, c.n
	if c.transB {
		rows, cols = c.n, c.k
	}
	ldb = cols + 1
	b = make([]int8, rows*ldb)
	for i := range b {
		b[i] = c.fillB(i)
	}
	bz = c.bz
	if bz == nil {
		bz = make([]int32, c.n)
		for j := range bz {
			bz[j] = int32(rnd.Intn(256) - 128)
		}
	}
	return
}

// TestGemmInt32 checks every path against the definition, bit for bit, and
// against itself under column splits.
func TestGemmInt32(t *testing.T) {
	rnd := rand.New(rand.NewSource(2))
	for _, c := range gemmCases() {
		a, lda, b, ldb, bz := c.data(rnd)
		want := refGemm(c.m, c.k, c.n, a, lda, c.a0, b, ldb, c.transB, bz)
		for _, p := range paths(t) {
			withISA(t, p, func() {
				pb := PackB(c.k, c.n, b, ldb, c.transB)
				ldc := c.n + 2
				got := make([]int32, c.m*ldc)
				// Two uneven splits plus the whole range.
				cut := rnd.Intn(c.n + 1)
				Gemm(c.m, a, lda, c.a0, pb, bz, 0, cut, Int32(got, ldc))
				Gemm(c.m, a, lda, c.a0, pb, bz, cut, c.n, Int32(got, ldc))
				for i := 0; i < c.m; i++ {
					for j := 0; j < c.n; j++ {
						if got[i*ldc+j] != want[i*c.n+j] {
							t.Fatalf("%s %v cut %d: C[%d][%d] = %d, want %d", c.name, p, cut, i, j, got[i*ldc+j], want[i*c.n+j])
						}
					}
				}
			})
		}
	}
}

func TestGemmRequant(t *testing.T) {
	rnd := rand.New(rand.NewSource(3))
	for ci, c := range gemmCases() {
		a, lda, b, ldb, bz := c.data(rnd)
		acc := refGemm(c.m, c.k, c.n, a, lda, c.a0, b, ldb, c.transB, bz)
		// Scales around the typical sa·sb/sy, per tensor or per column;
		// some configurations clamp hard (fused Relu, Clip).
		var scale []float32
		if ci%2 == 0 {
			scale = []float32{float32(math.Ldexp(rnd.Float64()+0.5, -8-rnd.Intn(8)))}
		} else {
			scale = make([]float32, c.n)
			for j := range scale {
				scale[j] = float32(math.Ldexp(rnd.Float64()+0.5, -8-rnd.Intn(8)))
			}
		}
		var bias []int32
		if ci%3 != 0 {
			bias = make([]int32, c.n)
			for j := range bias {
				bias[j] = int32(rnd.Intn(1<<16) - 1<<15)
			}
		}
		for _, signed := range []bool{false, true} {
			zp := int32(rnd.Intn(256))
			lo, hi := int32(0), int32(255)
			if signed {
				zp -= 128
				lo, hi = -128, 127
			}
			var mn, mx int32
			switch ci % 4 {
			case 1: // Relu
				mn, mx = zp, hi
			case 2: // Clip
				mn, mx = max(lo, zp-20), min(hi, zp+30)
			}
			elo, ehi := lo, hi
			if mn != 0 || mx != 0 {
				elo, ehi = mn, mx
			}
			for _, p := range paths(t) {
				withISA(t, p, func() {
					pb := PackB(c.k, c.n, b, ldb, c.transB)
					ldc := c.n + 1
					r := &Requant{Bias: bias, Scale: scale, OutZero: zp, Min: mn, Max: mx, Ldc: ldc}
					u8 := make([]uint8, c.m*ldc)
					s8 := make([]int8, c.m*ldc)
					if signed {
						r.OutS8 = s8
					} else {
						r.OutU8 = u8
					}
					cut := rnd.Intn(c.n + 1)
					Gemm(c.m, a, lda, c.a0, pb, bz, 0, cut, Output{Q: r})
					Gemm(c.m, a, lda, c.a0, pb, bz, cut, c.n, Output{Q: r})
					for i := 0; i < c.m; i++ {
						for j := 0; j < c.n; j++ {
							var bj int32
							if bias != nil {
								bj = bias[j]
							}
							s := scale[0]
							if len(scale) > 1 {
								s = scale[j]
							}
							w := refQuant(acc[i*c.n+j], bj, s, zp, elo, ehi)
							g := int32(u8[i*ldc+j])
							if signed {
								g = int32(s8[i*ldc+j])
							}
							if g != w {
								t.Fatalf("%s %v signed=%v: y[%d][%d] = %d, want %d (acc %d)", c.name, p, signed, i, j, g, w, acc[i*c.n+j])
							}
						}
					}
				})
			}
		}
	}
}

// TestQuantizeEdges pins the output stage on ties and out-of-range values.
func TestQuantizeEdges(t *testing.T) {
	cases := []struct {
		acc   int32
		scale float32
		zp    int32
		want  int32
	}{
		{5, 0.5, 0, 2},   // 2.5 → 2 (half to even)
		{7, 0.5, 0, 4},   // 3.5 → 4
		{-5, 0.5, 10, 8}, // −2.5 → −2
		{1 << 30, 1e30, 0, 255},
		{-1 << 30, 1e30, 0, 0},
		{math.MaxInt32, 1, 3, 255},
	}
	for _, c := range cases {
		for _, p := range paths(t) {
			withISA(t, p, func() {
				// Eight copies plus one, so the vector and the scalar tail
				// both see the value.
				src := make([]int32, 9)
				for i := range src {
					src[i] = c.acc
				}
				dst := make([]uint8, 9)
				Requantize(1, 9, src, 9, &Requant{Scale: []float32{c.scale}, OutZero: c.zp, OutU8: dst, Ldc: 9})
				for i, v := range dst {
					if int32(v) != c.want {
						t.Errorf("%v: requant(%d·%g+%d)[%d] = %d, want %d", p, c.acc, c.scale, c.zp, i, v, c.want)
					}
				}
			})
		}
	}
}

func TestRowSum(t *testing.T) {
	rnd := rand.New(rand.NewSource(4))
	for _, n := range []int{0, 1, 7, 8, 9, 1023, 1024, 1025, 5000} {
		for _, fill := range []int{-1, 0, 255} {
			a := make([]uint8, n)
			var want int32
			for i := range a {
				if fill < 0 {
					a[i] = uint8(rnd.Intn(256))
				} else {
					a[i] = uint8(fill)
				}
				want += int32(a[i])
			}
			if got := rowSum(a); got != want {
				t.Errorf("rowSum(n=%d fill=%d) = %d, want %d", n, fill, got, want)
			}
		}
	}
}

func TestLookupU8(t *testing.T) {
	var tab [256]uint8
	for i := range tab {
		tab[i] = uint8(255 - i*3)
	}
	src := make([]uint8, 1000)
	for i := range src {
		src[i] = uint8(i * 7)
	}
	dst := make([]uint8, len(src))
	LookupU8(dst, src, &tab)
	for i := range src {
		if dst[i] != tab[src[i]] {
			t.Fatalf("dst[%d] = %d, want %d", i, dst[i], tab[src[i]])
		}
	}
}

func TestSetISA(t *testing.T) {
	old := active
	defer func() { active = old }()
	if err := SetISA("generic"); err != nil || ISA() != "generic" {
		t.Fatalf("SetISA(generic): %v, ISA %s", err, ISA())
	}
	if err := SetISA("nonsense"); err == nil {
		t.Fatal("SetISA accepted an unknown path")
	}
}

// TestRequantizePerChannel checks the standalone output stage with
// per-column scales and biases, int8 output and a Clip range.
func TestRequantizePerChannel(t *testing.T) {
	rnd := rand.New(rand.NewSource(6))
	const rows, cols = 5, 37
	src := make([]int32, rows*cols)
	for i := range src {
		src[i] = int32(rnd.Intn(1<<20) - 1<<19)
	}
	scale := make([]float32, cols)
	bias := make([]int32, cols)
	for j := range scale {
		scale[j] = float32(math.Ldexp(rnd.Float64()+0.5, -12))
		bias[j] = int32(rnd.Intn(2000) - 1000)
	}
	for _, p := range paths(t) {
		withISA(t, p, func() {
			dst := make([]int8, rows*cols)
			Requantize(rows, cols, src, cols, &Requant{Bias: bias, Scale: scale, OutZero: -3, Min: -100, Max: 90, OutS8: dst, Ldc: cols})
			for i := 0; i < rows; i++ {
				for j := 0; j < cols; j++ {
					w := refQuant(src[i*cols+j], bias[j], scale[j], -3, -100, 90)
					if int32(dst[i*cols+j]) != w {
						t.Fatalf("%v: y[%d][%d] = %d, want %d", p, i, j, dst[i*cols+j], w)
					}
				}
			}
		})
	}
}

// TestQTOOLISA runs this test binary again under each QTOOL_ISA value and
// checks the path it starts on: the requested one when the machine has it,
// else the best one below it.
func TestQTOOLISA(t *testing.T) {
	if os.Getenv("Q8_PRINT_ISA") == "1" {
		fmt.Printf("ISA=%s\n", ISA())
		return
	}
	for _, want := range []string{"generic", "avx2", "avxvnni", "avx512vnni"} {
		cmd := exec.Command(os.Args[0], "-test.run", "^TestQTOOLISA$")
		cmd.Env = append(os.Environ(), "QTOOL_ISA="+want, "Q8_PRINT_ISA=1")
		out, err := cmd.Output()
		if err != nil && strings.Contains(err.Error(), "exec format error") {
			// A cross-compiled binary under qemu-user without binfmt
			// cannot re-execute itself (the arm64 Makefile target runs
			// TestARM64Forced under each QTOOL_ISA instead).
			t.Skipf("cannot re-execute the test binary here: %v", err)
		}
		if err != nil {
			t.Fatalf("QTOOL_ISA=%s: %v", want, err)
		}
		var p isa
		for p = isaGeneric; p < numISA; p++ {
			if p.String() == want {
				break
			}
		}
		exp := p
		for exp > isaGeneric && !detected[exp] {
			exp--
		}
		if !strings.Contains(string(out), "ISA="+exp.String()+"\n") {
			t.Errorf("QTOOL_ISA=%s: got %q, want ISA=%s", want, out, exp)
		}
	}
}
