package observe

import (
	"math"
	"math/rand/v2"
	"testing"
)

// The vector kernels must agree with the scalar definitions bit for bit.

func TestBinIndexKernelMatchesScalar(t *testing.T) {
	if !useAVX2 {
		t.Skip("no AVX2 kernel on this machine/build")
	}
	rng := rand.New(rand.NewPCG(1, 2))
	ranges := [][2]float32{{-6, 6}, {0, 1}, {-3.2939605, 2.8816266}, {1e-8, 3e-8}, {-1e4, 1e4}, {0.5, 0.50001}, {-1, 0}}
	for _, r := range ranges {
		L, H := r[0], r[1]
		w := H - L
		const n = 2048
		x := make([]float32, 4096)
		for i := range x {
			switch i % 5 {
			case 0: // anywhere, including outside
				x[i] = L - w/4 + float32(rng.Float64())*w*1.5
			case 1: // on a bin edge, and its float32 neighbours
				e := L + w*float32(rng.IntN(n+1))/n
				x[i] = []float32{e, math.Nextafter32(e, -1e30), math.Nextafter32(e, 1e30)}[rng.IntN(3)]
			case 2:
				x[i] = []float32{L, H, math.Nextafter32(L, -1e30), math.Nextafter32(H, 1e30)}[rng.IntN(4)]
			default:
				x[i] = L + float32(rng.Float64())*w
			}
		}
		cnt := make([]uint32, 4*(n+1))
		idx := make([]int32, len(x))
		mn, mx, unord := binIndexAVX2(x, idx, L, H, w, n, n-1, n)
		countLanesAsm(idx, cnt)
		want := make([]uint32, 4*(n+1))
		for i, v := range x {
			want[4*binOf(v, L, H, w, n)+i%4]++
		}
		for k := range want {
			if cnt[k] != want[k] {
				t.Fatalf("range [%v,%v]: lane count %d = %d, scalar %d", L, H, k, cnt[k], want[k])
			}
		}
		gmn, gmx, _ := minMaxGo(x)
		if mn != gmn || mx != gmx || unord {
			t.Fatalf("range [%v,%v]: kernel min/max %v %v %v, scalar %v %v", L, H, mn, mx, unord, gmn, gmx)
		}
		x[17] = float32(math.NaN())
		if _, _, unord := binIndexAVX2(x, idx, L, H, w, n, n-1, n); !unord {
			t.Fatal("NaN not reported")
		}
	}
}

func TestThresholdBinningMatchesScalar(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, r := range [][2]float32{{-6, 6}, {-3.2939605, 2.8816266}, {1e-8, 3e-8}, {0, 7.462324}} {
		L, H := r[0], r[1]
		w := H - L
		const n = 2048
		var th thresholds
		th.build(L, H, n)
		if !th.ok {
			t.Fatalf("range %v: threshold table refused", r)
		}
		x := make([]float32, 20000)
		for i := range x {
			e := L + w*float32(rng.IntN(n+1))/n
			x[i] = []float32{e, math.Nextafter32(e, -1e30), math.Nextafter32(e, 1e30), L + float32(rng.Float64())*w*1.1}[i%4]
		}
		cnt := make([]uint32, 4*(n+1))
		binFast(x, L, H, &th, cnt)
		want := make([]uint32, 4*(n+1))
		for i, v := range x {
			if b := binOf(v, L, H, w, n); b < n {
				want[4*b+i%4]++
			}
		}
		for k := 0; k < 4*n; k++ {
			if cnt[k] != want[k] {
				t.Fatalf("range %v: lane count %d = %d, scalar %d", r, k, cnt[k], want[k])
			}
		}
	}
}

func TestMinMaxKernel(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for _, n := range []int{1, 7, 8, 9, 16, 17, 31, 100, 1027} {
		x := make([]float32, n)
		for i := range x {
			x[i] = float32(rng.NormFloat64())
		}
		mn, mx, ok := minMax(x)
		gmn, gmx, gok := minMaxGo(x)
		if mn != gmn || mx != gmx || ok != gok || !ok {
			t.Fatalf("n=%d: %v %v %v vs Go %v %v %v", n, mn, mx, ok, gmn, gmx, gok)
		}
		for _, bad := range []float32{float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1))} {
			for _, pos := range []int{0, n / 2, n - 1} {
				y := append([]float32(nil), x...)
				y[pos] = bad
				if _, _, ok := minMax(y); ok {
					t.Fatalf("n=%d: %v at %d not reported", n, bad, pos)
				}
				if _, _, ok := minMaxGo(y); ok {
					t.Fatalf("n=%d: Go path: %v at %d not reported", n, bad, pos)
				}
			}
		}
	}
}

func TestFmod32(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	for i := 0; i < 200000; i++ {
		a := float32(rng.NormFloat64() * math.Pow(10, float64(rng.IntN(12)-4)))
		b := float32(rng.NormFloat64() * math.Pow(10, float64(rng.IntN(8)-4)))
		if i%7 == 0 {
			a = b * float32(rng.IntN(1000)-500) // exact multiples and neighbours
			a = []float32{a, math.Nextafter32(a, 0), math.Nextafter32(a, 1e30)}[i%3]
		}
		got, want := fmod32(a, b), float32(math.Mod(float64(a), float64(b)))
		if math.Float32bits(got) != math.Float32bits(want) && !(got != got && want != want) {
			t.Fatalf("fmod32(%v, %v) = %v, math.Mod %v", a, b, got, want)
		}
	}
}
