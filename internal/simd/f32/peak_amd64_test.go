//go:build amd64 && !noasm

package f32

import "testing"

// fmaPeakRun runs iters iterations of the register-only FMA loop of isa and
// returns the flops done. The generic kernel is measured against the best
// vector unit of the machine, which is the ceiling it is judged by.
func fmaPeakRun(isa string, iters int) float64 {
	if isa == "avx2" || !avx512Supported() {
		fmaPeakAVX2(iters)
		return float64(iters) * 12 * 8 * 2
	}
	fmaPeakAVX512(iters)
	return float64(iters) * 24 * 16 * 2
}

func avx512Supported() bool {
	for _, k := range archKernels() {
		if k == avx512Kernel {
			return true
		}
	}
	return false
}

func fmaPeak(isa string, b *testing.B) {
	flops := 0.0
	cpu0 := cpuTime()
	for i := 0; i < b.N; i++ {
		flops += fmaPeakRun(isa, 1<<16)
	}
	b.ReportMetric(flops/b.Elapsed().Seconds()/1e9, "GFLOPS")
	if d := (cpuTime() - cpu0).Seconds(); d > 0 {
		b.ReportMetric(flops/d/1e9, "cpuGFLOPS")
	}
}
