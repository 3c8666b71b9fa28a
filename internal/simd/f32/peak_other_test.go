//go:build !amd64 || noasm

package f32

import "testing"

// Without assembly there is no register-only FMA loop: no peak is reported.
func fmaPeakRun(isa string, iters int) float64 { return 0 }

func fmaPeak(isa string, b *testing.B) { b.ReportMetric(0, "GFLOPS") }
