package f32

import (
	"fmt"
	"math/rand"
	"testing"
	"time"
)

// gemmSizes are the im2col GEMMs of ResNet-18's 3×3 convs at batch 1
// (M = Cout, N = output pixels, K = Cin·9), plus a square one.
var gemmSizes = [][3]int{
	{64, 3136, 576},
	{128, 784, 1152},
	{256, 196, 2304},
	{512, 49, 4608},
	{1024, 1024, 1024},
	// MobileNetV2's shallow pointwise convs (expand 16->96 at 112x112,
	// 24->144 at 56x56) and its last 1x1 (320->1280 at 7x7).
	{96, 12544, 16},
	{144, 3136, 24},
	{1280, 49, 320},
}

// peakGFLOPS caches the measured register-only FMA throughput per ISA.
var peakGFLOPS = map[string]float64{}

func measuredPeak(isa string) float64 {
	if p, ok := peakGFLOPS[isa]; ok {
		return p
	}
	p := peakOnce(isa)
	peakGFLOPS[isa] = p
	return p
}

// BenchmarkFMAPeak measures the FMA throughput ceiling of one core: 12
// independent register-only FMA chains, no memory traffic.
func BenchmarkFMAPeak(b *testing.B) {
	for _, k := range kernels() {
		b.Run(k.name, func(b *testing.B) { fmaPeak(k.name, b) })
	}
}

func BenchmarkSgemm(b *testing.B) {
	prev := active()
	defer current.Store(prev)
	for _, kern := range kernels() {
		for _, sz := range gemmSizes {
			m, n, k := sz[0], sz[1], sz[2]
			b.Run(fmt.Sprintf("%s/PackedA/M%dN%dK%d", kern.name, m, n, k), func(b *testing.B) {
				current.Store(kern)
				peak := measuredPeak(kern.name)
				r := rand.New(rand.NewSource(1))
				pa := PackA(false, m, k, randMat(r, m*k), k)
				bm, c := randMat(r, k*n), make([]float32, m*n)
				ep := Epilogue{RowBias: randMat(r, m), Act: ActRelu}
				b.ResetTimer()
				cpu0 := cpuTime()
				for i := 0; i < b.N; i++ {
					SgemmPackedA(pa, 0, m, n, bm, n, c, n, ep)
				}
				reportGFLOPS(b, m, n, k, peak, cpu0)
			})
		}
		// The other entry points on the square size: both operands packed
		// per call (MatMul of two activations), and a prepacked right
		// operand (Gemm/MatMul with constant weights).
		const sq = 1024
		b.Run(fmt.Sprintf("%s/Sgemm/M%dN%dK%d", kern.name, sq, sq, sq), func(b *testing.B) {
			current.Store(kern)
			r := rand.New(rand.NewSource(1))
			a, bm, c := randMat(r, sq*sq), randMat(r, sq*sq), make([]float32, sq*sq)
			peak := measuredPeak(kern.name)
			b.ResetTimer()
			cpu0 := cpuTime()
			for i := 0; i < b.N; i++ {
				Sgemm(false, false, sq, sq, sq, 1, a, sq, bm, sq, 0, c, sq)
			}
			reportGFLOPS(b, sq, sq, sq, peak, cpu0)
		})
		b.Run(fmt.Sprintf("%s/PackedB/M%dN%dK%d", kern.name, sq, sq, sq), func(b *testing.B) {
			current.Store(kern)
			r := rand.New(rand.NewSource(1))
			a, c := randMat(r, sq*sq), make([]float32, sq*sq)
			pb := PackB(false, sq, sq, randMat(r, sq*sq), sq)
			peak := measuredPeak(kern.name)
			b.ResetTimer()
			cpu0 := cpuTime()
			for i := 0; i < b.N; i++ {
				SgemmPackedB(sq, a, sq, pb, 0, sq, c, sq, Epilogue{})
			}
			reportGFLOPS(b, sq, sq, sq, peak, cpu0)
		})
	}
}

// reportGFLOPS reports wall-clock GFLOPS, and GFLOPS per CPU-second with the
// fraction of the CPU-time peak: the ratio that stays meaningful when other
// jobs share the cores. cpu0 is cpuTime() at the timer start.
func reportGFLOPS(b *testing.B, m, n, k int, peak float64, cpu0 time.Duration) {
	flops := 2 * float64(m) * float64(n) * float64(k) * float64(b.N)
	b.ReportMetric(flops/b.Elapsed().Seconds()/1e9, "GFLOPS")
	if d := (cpuTime() - cpu0).Seconds(); d > 0 {
		gf := flops / d / 1e9
		b.ReportMetric(gf, "cpuGFLOPS")
		if peak > 0 {
			b.ReportMetric(100*gf/peak, "%peak")
		}
	}
}

// peakOnce times the FMA loop directly (testing.Benchmark cannot nest inside
// a benchmark) in CPU time, best of several runs: on a shared machine the
// best run is the least disturbed one. It returns 0 where CPU time is not
// available.
func peakOnce(isa string) float64 {
	best := 0.0
	for r := 0; r < 7; r++ {
		c := cpuTime()
		flops := fmaPeakRun(isa, 1<<18)
		if d := (cpuTime() - c).Seconds(); d > 0 {
			if g := flops / d / 1e9; g > best {
				best = g
			}
		}
	}
	return best
}

// dwLayers are MobileNetV2's depthwise 3×3 convs at 224×224, batch 1.
var dwLayers = []struct {
	c, hw, stride int
}{
	{32, 112, 1}, {96, 112, 2}, {144, 56, 1}, {144, 56, 2}, {192, 28, 1}, {384, 14, 1}, {960, 7, 1},
}

func BenchmarkDepthwise(b *testing.B) {
	prev := active()
	defer current.Store(prev)
	for _, kern := range kernels() {
		for _, l := range dwLayers {
			b.Run(fmt.Sprintf("%s/C%dHW%dS%d", kern.name, l.c, l.hw, l.stride), func(b *testing.B) {
				current.Store(kern)
				s := DWShape{C: l.c, InH: l.hw, InW: l.hw, KH: 3, KW: 3, StrideH: l.stride, StrideW: l.stride,
					PadT: 1, PadL: 1, OutH: (l.hw-1)/l.stride + 1, OutW: (l.hw-1)/l.stride + 1}
				r := rand.New(rand.NewSource(1))
				x, w := randMat(r, s.C*s.InH*s.InW), randMat(r, s.C*9)
				y := make([]float32, s.C*s.OutH*s.OutW)
				ep := Epilogue{RowBias: randMat(r, s.C), Act: ActClip, Min: 0, Max: 6}
				b.ResetTimer()
				cpu0 := cpuTime()
				for i := 0; i < b.N; i++ {
					DepthwiseConv2D(&s, x, w, 0, s.C, y, ep)
				}
				flops := 2 * 9 * float64(len(y)) * float64(b.N)
				b.ReportMetric(flops/b.Elapsed().Seconds()/1e9, "GFLOPS")
				if d := (cpuTime() - cpu0).Seconds(); d > 0 {
					b.ReportMetric(flops/d/1e9, "cpuGFLOPS")
				}
			})
		}
	}
}
