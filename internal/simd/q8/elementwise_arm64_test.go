package q8

import (
	"math"
	"math/rand"
	"testing"

	"github.com/qtool/qtool/internal/simd/cpu"
)

// The NEON elementwise kernels against their Go twins, bit for bit. The
// kernels are called directly where their twin is a function of its own
// (lookupGo, maxBytesGo, mulScalarGo, SumPixels' loop), so a path that fell
// back to Go cannot pass for the kernel; AddU8, whose twin is its own loop,
// is compared across paths with the kernel asserted to be wired.

// TestARM64ElementwiseWired checks that every arm64 path with ASIMD runs
// the NEON kernels (the other tests here call them directly, which is only
// worth something if the public functions take them too).
func TestARM64ElementwiseWired(t *testing.T) {
	if !cpu.ARM64.ASIMD {
		if lookupKern[isaNEON] != nil || maxKern[0] != nil || addKern[0] != nil {
			t.Fatal("NEON kernels wired without ASIMD")
		}
		t.Skip("no ASIMD")
	}
	for _, p := range []isa{isaNEON, isaSDOT} {
		if detected[p] && lookupKern[p] == nil {
			t.Errorf("path %v has no lookup kernel", p)
		}
	}
	for s := range 2 {
		if maxKern[s] == nil || colSumKern[s] == nil || addKern[s] == nil || mulKern[s] == nil || mulScalarKern[s] == nil {
			t.Errorf("signed=%d: max %v colSum %v add %v mul %v mulScalar %v", s, maxKern[s] != nil, colSumKern[s] != nil,
				addKern[s] != nil, mulKern[s] != nil, mulScalarKern[s] != nil)
		}
	}
	if active != isaGeneric && !MulScalarSIMD() {
		t.Errorf("active path %v: MulScalarSIMD false", active)
	}
}

// TestARM64Lookup: lookupNEON against lookupGo on every length 1..100 and
// longer runs (the 16-byte blocks, the odd block before the pairs, the
// overlapping last block and the byte loop below 16), misaligned source
// and destination, in place, tables that are random, the identity, one
// value per 64-entry group, and all codes as indices.
func TestARM64Lookup(t *testing.T) {
	if !cpu.ARM64.ASIMD {
		t.Skip("no ASIMD")
	}
	rnd := rand.New(rand.NewSource(21))
	var tables [3][256]uint8
	for i := range 256 {
		tables[0][i] = uint8(rnd.Intn(256))
		tables[1][i] = uint8(i)
		tables[2][i] = uint8(i/64*85 + 1) // which group answered
	}
	lens := []int{255, 256, 257, 1000, 4099}
	for n := 1; n <= 100; n++ {
		lens = append(lens, n)
	}
	for ti := range tables {
		tab := &tables[ti]
		for li, n := range lens {
			src := make([]uint8, n+3)[li%4:][:n]
			for i := range src {
				src[i] = uint8(rnd.Intn(256))
				if n >= 256 {
					src[i] = uint8(i*167 + 5) // every code
				}
			}
			want := make([]uint8, n)
			lookupGo(want, src, tab)
			dst, check := guarded(t, n, (li+1)%16)
			lookupNEON(&dst[0], &src[0], n, tab)
			check("lookupNEON")
			for i := range want {
				if dst[i] != want[i] {
					t.Fatalf("table %d n=%d: dst[%d] = %d, want %d (src %d)", ti, n, i, dst[i], want[i], src[i])
				}
			}
			copy(dst, src)
			lookupNEON(&dst[0], &dst[0], n, tab)
			check("lookupNEON in place")
			for i := range want {
				if dst[i] != want[i] {
					t.Fatalf("table %d n=%d in place: dst[%d] = %d, want %d", ti, n, i, dst[i], want[i])
				}
			}
			for _, v := range paths(t) {
				withISA(t, v, func() {
					got := make([]uint8, n)
					LookupU8(got, src, tab)
					for i := range want {
						if got[i] != want[i] {
							t.Fatalf("%v table %d n=%d: LookupU8 dst[%d] = %d, want %d", v, ti, n, i, got[i], want[i])
						}
					}
				})
			}
		}
	}
}

// TestARM64Max: maxU8NEON/maxS8NEON against maxBytesGo on all 65536 byte
// pairs and on random runs of 32..4096 bytes, misaligned.
func TestARM64Max(t *testing.T) {
	if !cpu.ARM64.ASIMD {
		t.Skip("no ASIMD")
	}
	rnd := rand.New(rand.NewSource(22))
	for _, n := range []int{32, 64, 96, 4096, 65536} {
		for s, k := range []func(dst, src *uint8, n int){maxU8NEON, maxS8NEON} {
			src := make([]uint8, n+1)[n%2:][:n]
			orig := make([]uint8, n)
			for i := range src {
				src[i], orig[i] = uint8(rnd.Intn(256)), uint8(rnd.Intn(256))
				if n == 65536 {
					src[i], orig[i] = uint8(i), uint8(i>>8)
				}
			}
			want := append([]uint8(nil), orig...)
			maxBytesGo(want, src, s == 1)
			dst, check := guarded(t, n, 3)
			copy(dst, orig)
			k(&dst[0], &src[0], n)
			check("max")
			for i := range want {
				if dst[i] != want[i] {
					t.Fatalf("signed=%d n=%d: max(%d, %d) = %d, want %d", s, n, orig[i], src[i], dst[i], want[i])
				}
			}
		}
	}
}

// TestARM64ColSum: colSumU8NEON/colSumS8NEON against the Go loop over
// strides from 8 to 1280 bytes, pixel counts around 256 (where 16-bit sums
// would overflow) and beyond, sums that wrap int32 from a start near its
// top and bottom, and the acc entries past the eight left alone.
func TestARM64ColSum(t *testing.T) {
	if !cpu.ARM64.ASIMD {
		t.Skip("no ASIMD")
	}
	rnd := rand.New(rand.NewSource(23))
	for _, c := range [][2]int{{1, 8}, {3, 9}, {255, 24}, {256, 8}, {257, 1280}, {20000, 16}} {
		n, stride := c[0], c[1]
		for s, k := range []func(acc *int32, src *uint8, n, stride int){colSumU8NEON, colSumS8NEON} {
			img := make([]uint8, n*stride+1)[1:]
			for i := range img {
				img[i] = uint8(rnd.Intn(256))
				if n >= 256 && i%stride < 4 {
					img[i] = 0xff // uint8 255 or int8 -1
				}
				if n >= 256 && i%stride == 4 {
					img[i] = 0x80 // int8 -128
				}
			}
			for _, start := range []int32{0, -12345, math.MaxInt32 - 1000, math.MinInt32 + 1000} {
				acc := make([]int32, 10)
				want := make([]int32, 10)
				for i := range acc {
					acc[i] = start + int32(i)
					want[i] = acc[i]
				}
				for p := range n {
					for ch := range 8 {
						v := img[p*stride+ch]
						if s == 1 {
							want[ch] += int32(int8(v))
						} else {
							want[ch] += int32(v)
						}
					}
				}
				k(&acc[0], &img[0], n, stride)
				for i := range acc {
					if acc[i] != want[i] {
						t.Fatalf("signed=%d %d pixels stride %d start %d: acc[%d] = %d, want %d", s, n, stride, start, i, acc[i], want[i])
					}
				}
			}
		}
	}
}

// addCases are AddU8 parameters at the edges: mild scales, outputs that
// saturate 8 bits, ratios beyond int32 (INT32_MIN, as VCVTPS2DQ gives,
// then the low bound where FCVTNS would give INT32_MAX and the high one),
// ratios of 2^23 whose sums land exactly on ±2^31 for some code pairs,
// infinite ratios (C scale 0) and NaN ones (all scales 0), with zero
// points at both ends and the middle.
func addCases(signed bool) []*AddParams {
	scales := [][3]float32{
		{0.02, 0.01, 0.05},
		{0.1, 0.2, 1e-3},
		{1, 1, 1e-12},
		{1, 1, 0x1p-23},
		{0.0123, 0.0371, 0},
		{0, 0, 0},
	}
	var ps []*AddParams
	for _, sc := range scales {
		for _, z := range [][3]int32{{0, 0, 0}, {128, 128, 128}, {255, 255, 255}, {0, 255, 128}, {255, 0, 17}} {
			ps = append(ps, binaryParams(sc, z, signed))
		}
	}
	return ps
}

// TestARM64Add compares AddU8 on the NEON paths with its Go loop (the
// generic path) bit for bit: every code pair under every addCases
// parameter set, both broadcasts, every length 0..100 (the 16-element
// steps, the last 8, the Go tail), misaligned operands, in place on either
// operand, and the bytes after dst untouched.
func TestARM64Add(t *testing.T) {
	if !cpu.ARM64.ASIMD {
		t.Skip("no ASIMD")
	}
	var arm []variant
	for _, v := range paths(t) {
		if v.p >= isaNEON {
			arm = append(arm, v)
		}
	}
	if addKern[0] == nil || len(arm) == 0 {
		t.Fatal("no NEON add kernel or path")
	}
	// The twin's result, then each arm path's, with the kernel in use.
	run := func(v variant, dst, a, b []uint8, p *AddParams) {
		withISA(t, v, func() {
			if v.p != isaGeneric && (addKern[0] == nil || active == isaGeneric) {
				t.Fatalf("%v: AddU8 would not run the kernel", v)
			}
			AddU8(dst, a, b, p)
		})
	}
	generic := variant{p: isaGeneric}
	rnd := rand.New(rand.NewSource(24))
	checked := 0
	for _, signed := range []bool{false, true} {
		for pi, p := range addCases(signed) {
			// Every code pair; the grid's rows as broadcasts of each code.
			a, b := codePairs()
			want := make([]uint8, 65536)
			run(generic, want, a, b, p)
			for _, v := range arm {
				dst, check := guarded(t, len(a), 1)
				run(v, dst, a, b, p)
				check("AddU8")
				for i := range want {
					if dst[i] != want[i] {
						t.Fatalf("%v signed=%v case %d %+v: AddU8(%d, %d) = %d, Go %d", v, signed, pi, *p, a[i], b[i], dst[i], want[i])
					}
				}
				checked += len(a)
			}
			for bc := range 2 {
				one := []uint8{uint8(rnd.Intn(256))}
				x, y := b[:256], one
				if bc == 1 {
					x, y = one, b[:256]
				}
				want := make([]uint8, 256)
				run(generic, want, x, y, p)
				for _, v := range arm {
					dst, check := guarded(t, 256, 5)
					run(v, dst, x, y, p)
					check("AddU8 broadcast")
					for i := range want {
						if dst[i] != want[i] {
							t.Fatalf("%v case %d broadcast %d: y[%d] = %d, Go %d", v, pi, bc, i, dst[i], want[i])
						}
					}
				}
			}
		}
	}
	for n := 0; n <= 100; n++ {
		signed := n%2 == 1
		ps := addCases(signed)
		p := ps[n%len(ps)]
		if n%3 == 0 {
			p = randParams(rnd, 0.05, 1e-3, signed)
		}
		a := make([]uint8, n+7)[n%8:][:n]
		b := make([]uint8, n+5)[n%6:][:n]
		for i := range a {
			a[i], b[i] = uint8(rnd.Intn(256)), uint8(rnd.Intn(256))
		}
		want := make([]uint8, n)
		run(generic, want, a, b, p)
		for _, v := range arm {
			dst, check := guarded(t, n, n%16)
			run(v, dst, a, b, p)
			check("AddU8")
			for op := range 2 {
				// In place on a, then on b.
				in := append([]uint8(nil), a...)
				if op == 0 {
					run(v, in, in, b, p)
				} else {
					copy(in, b)
					run(v, in, a, in, p)
				}
				for i := range want {
					if dst[i] != want[i] || in[i] != want[i] {
						t.Fatalf("%v n=%d %+v: y[%d] = %d (in place on operand %d: %d), Go %d", v, n, *p, i, dst[i], op, in[i], want[i])
					}
				}
			}
			checked += n
		}
	}
	t.Logf("%d elements through the kernel paths", checked)
}

// TestARM64MulScalar calls mulScalarU8NEON/mulScalarS8NEON directly against
// mulScalarGo: every code, zero points at the ends and the middle, scalars
// whose int32 product wraps, ratios that saturate, reach ±2^31 exactly
// (INT32_MIN for +2^31, as VCVTPS2DQ), overflow, are infinite or NaN,
// misaligned and in place, the bytes after dst untouched.
func TestARM64MulScalar(t *testing.T) {
	if !cpu.ARM64.ASIMD {
		t.Skip("no ASIMD")
	}
	rnd := rand.New(rand.NewSource(25))
	nan := float32(math.NaN())
	inf := float32(math.Inf(1))
	ratios := []float32{0.013, 1, 1000, 0x1p23, 0x1p24, 1e30, inf, -inf, nan, -0.5, 0}
	ks := []int32{0, 1, -1, 127, -128, 255, -255, 1 << 16, -(1 << 24), math.MaxInt32, math.MinInt32}
	const n = 512
	for s, kern := range []func(dst, src *uint8, n int, za, k int32, ratio, zc float32){mulScalarU8NEON, mulScalarS8NEON} {
		signed := s == 1
		src := make([]uint8, n+1)[1:]
		for i := range src {
			src[i] = uint8(i) // every code, twice
		}
		checked := 0
		for _, ratio := range ratios {
			for _, k := range ks {
				for _, za := range []int32{0, 128, 255, -128, 1 << 20} {
					for _, zc := range []float32{0, 128, 255, -128, 127, 0.5} {
						c := mulConsts{za: za, k: k, ratio: ratio, zc: zc}
						want := make([]uint8, n)
						mulScalarGo(want, src, c, signed)
						dst, check := guarded(t, n, rnd.Intn(16))
						kern(&dst[0], &src[0], n, c.za, c.k, c.ratio, c.zc)
						check("mulScalar")
						for i := range want {
							if dst[i] != want[i] {
								t.Fatalf("signed=%v %+v: x=%d: %d, Go %d", signed, c, src[i], dst[i], want[i])
							}
						}
						checked += n
					}
				}
			}
		}
		// 2^31 exactly: (x−za)·k·ratio + zc = 2^31 for x = za + 1.
		c := mulConsts{za: 0, k: 1 << 16, ratio: 0x1p15, zc: 0}
		if signed {
			c.k = -(1 << 16) // x = −1: +2^31; x = 1: −2^31
		}
		want := make([]uint8, n)
		mulScalarGo(want, src, c, signed)
		got := append([]uint8(nil), src...)
		kern(&got[0], &got[0], n, c.za, c.k, c.ratio, c.zc) // in place
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("signed=%v %+v in place: x=%d: %d, Go %d", signed, c, src[i], got[i], want[i])
			}
		}
		t.Logf("signed=%v: %d elements", signed, checked)
	}
}
