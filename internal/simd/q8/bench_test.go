package q8

import (
	"fmt"
	"math/rand"
	"slices"
	"testing"
	"time"
)

// measurePeak times the register-only VPDPBUSD zmm loop (24 instructions of
// 64 multiply-adds, 128 ops, per iteration) and returns the best of 20
// short runs: on a shared machine the best run is the one least disturbed.
func measurePeak() float64 {
	if !hasPeak() {
		return 0
	}
	const iters = 200_000
	best := time.Duration(1 << 62)
	for r := 0; r < 20; r++ {
		t0 := time.Now()
		peakVNNI512(iters)
		if d := time.Since(t0); d < best {
			best = d
		}
	}
	return float64(iters) * 24 * 128 / best.Seconds() / 1e9
}

// BenchmarkPeakVNNI reports the one-core VPDPBUSD zmm peak in GOPS: the
// mean over the run (GOPS) and the best of 20 short runs (best_GOPS, the
// figure the GEMM benchmarks divide by; on a shared machine the mean is
// dragged down by other processes).
func BenchmarkPeakVNNI(b *testing.B) {
	if !hasPeak() {
		b.Skip("no AVX-512 VNNI")
	}
	const iters = 100_000
	for i := 0; i < b.N; i++ {
		peakVNNI512(iters)
	}
	b.ReportMetric(float64(b.N)*iters*24*128/b.Elapsed().Seconds()/1e9, "GOPS")
	b.StopTimer()
	b.ReportMetric(measurePeak(), "best_GOPS")
}

// BenchmarkGemmU8S8 is the 64×1024×1024 (M×N×K) product on one core, per
// path, with int32 output and with the requantizing output stage; it reports
// GOPS (2·M·N·K per run) and the fraction of the peak measured in the same
// process.
func BenchmarkGemmU8S8(b *testing.B) {
	const m, n, k = 64, 1024, 1024
	rnd := rand.New(rand.NewSource(1))
	a := make([]uint8, m*k)
	for i := range a {
		a[i] = uint8(rnd.Intn(256))
	}
	w := make([]int8, k*n)
	for i := range w {
		w[i] = int8(rnd.Intn(256) - 128)
	}
	for _, p := range paths(b) {
		if p.p == isaGeneric {
			continue
		}
		var pb *PackedB
		withISA(b, p, func() { pb = PackB(k, n, w, n, false) })
		c32 := make([]int32, m*n)
		u8 := make([]uint8, m*n)
		outs := []struct {
			name string
			out  Output
		}{
			{"int32", Int32(c32, n)},
			{"u8", Output{Q: &Requant{Scale: []float32{1.0 / 4096}, OutZero: 128, OutU8: u8, Ldc: n}}},
		}
		for _, o := range outs {
			b.Run(p.String()+"/"+o.name, func(b *testing.B) {
				// Besides the mean (ns/op) and the median, the best single run: the
				// machine is shared, and the fastest run is the one
				// least disturbed by other processes; the peak is
				// measured the same way right after, so the ratio
				// compares like with like.
				times := make([]time.Duration, 0, b.N)
				withISA(b, p, func() {
					for i := 0; i < b.N; i++ {
						t0 := time.Now()
						Gemm(m, a, k, 128, pb, []int32{0}, 0, n, o.out)
						times = append(times, time.Since(t0))
					}
				})
				slices.Sort(times)
				b.ReportMetric(2*m*n*k/times[len(times)/2].Seconds()/1e9, "median_GOPS")
				best := 2 * m * n * k / times[0].Seconds() / 1e9
				b.ReportMetric(best, "best_GOPS")
				b.StopTimer()
				if peak := measurePeak(); peak > 0 {
					b.ReportMetric(peak, "peak_GOPS")
					b.ReportMetric(best/peak, "best_of_peak")
				}
			})
		}
	}
}

// BenchmarkDWConv3x3 is the column-image depthwise kernel on MobileNetV2's
// layer shapes (image side, channels, stride), one core, requantized to
// uint8: GMAC/s of the best of b.N runs (the least disturbed on a shared
// machine).
func BenchmarkDWConv3x3(b *testing.B) {
	for _, s := range []struct{ h, c, stride int }{{112, 32, 1}, {112, 96, 2}, {56, 144, 1}, {14, 384, 1}, {7, 960, 1}} {
		b.Run(fmt.Sprintf("%dx%dx%d_s%d", s.h, s.h, s.c, s.stride), func(b *testing.B) {
			rnd := rand.New(rand.NewSource(1))
			x := make([]uint8, s.h*s.h*s.c)
			rnd.Read(x)
			w := make([]int8, s.c*9)
			for i := range w {
				w[i] = int8(rnd.Intn(256) - 128)
			}
			d := PackDW(s.c, 9, w, []int32{0})
			oh := (s.h-1)/s.stride + 1
			out := make([]uint8, oh*oh*s.c)
			scale := make([]float32, s.c)
			for i := range scale {
				scale[i] = 0.001
			}
			o := Output{Q: &Requant{Scale: scale, OutZero: 128, OutU8: out, Ldc: s.c}}
			if !DWConv3x3(x, s.h, s.h, s.c, s.stride, 128, d, 0, oh, o) {
				b.Skip("no AVX-512 VNNI")
			}
			best := time.Duration(1 << 62)
			for i := 0; i < b.N; i++ {
				t0 := time.Now()
				DWConv3x3(x, s.h, s.h, s.c, s.stride, 128, d, 0, oh, o)
				best = min(best, time.Since(t0))
			}
			b.ReportMetric(float64(oh*oh*s.c*9)/best.Seconds()/1e9, "best_GMAC/s")
		})
	}
}

// BenchmarkLookupU8 applies a random table per path to runs the size of a
// 7×7×1 plane, a 28×28 one and MobileNetV3-small's first activation
// (112×112×16), in bytes per second; the paths of one size run side by side.
func BenchmarkLookupU8(b *testing.B) {
	rnd := rand.New(rand.NewSource(3))
	var tab [256]uint8
	for i := range tab {
		tab[i] = uint8(rnd.Intn(256))
	}
	for _, n := range []int{49, 784, 112 * 112 * 16} {
		src := make([]uint8, n)
		for i := range src {
			src[i] = uint8(rnd.Intn(256))
		}
		dst := make([]uint8, n)
		for _, p := range lookupPaths(b) {
			b.Run(fmt.Sprintf("%d/%v", n, p), func(b *testing.B) {
				withISA(b, variant{p: p}, func() {
					b.SetBytes(int64(n))
					for i := 0; i < b.N; i++ {
						LookupU8(dst, src, &tab)
					}
				})
			})
		}
	}
}

// BenchmarkMulU8 is MulU8 on two whole operands, the Go loop ("go", the
// hook cleared) against the kernel the hook holds ("kernel", skipped where
// there is none), interleaved per size; 12544 and 200704 are a 112×112×1
// and a 56×56×64 map.
func BenchmarkMulU8(b *testing.B) {
	rnd := rand.New(rand.NewSource(4))
	p := &AddParams{ScaleA: 0.02, ScaleB: 0.03, ScaleC: 0.05, ZeroA: 120, ZeroB: 131, ZeroC: 125}
	for _, n := range []int{12544, 200704} {
		x, y, dst := make([]uint8, n), make([]uint8, n), make([]uint8, n)
		for i := range x {
			x[i], y[i] = uint8(rnd.Intn(256)), uint8(rnd.Intn(256))
		}
		for _, impl := range []string{"go", "kernel"} {
			b.Run(fmt.Sprintf("%d/%s", n, impl), func(b *testing.B) {
				if mulKern[0] == nil && impl == "kernel" {
					b.Skip("no MulU8 kernel on this machine")
				}
				old := mulKern
				if impl == "go" {
					mulKern = [2]func(dst, a, b *uint8, n int, za, zb int32, ratio, zc float32){}
				}
				defer func() { mulKern = old }()
				b.SetBytes(int64(n))
				for i := 0; i < b.N; i++ {
					MulU8(dst, x, y, p)
				}
			})
		}
	}
}
