package observe

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/qtool/qtool/internal/tensor"
)

// torchTimes runs tools/golden/bench_torch_observers.py once per test
// binary, so that PyTorch's figures come from the same run as ours. Without
// /usr/bin/python3 and torch the benchmarks report only their own times.
var torchTimes = sync.OnceValue(func() map[string]float64 {
	script := filepath.Join("..", "..", "tools", "golden", "bench_torch_observers.py")
	if _, err := os.Stat("/usr/bin/python3"); err != nil {
		return nil
	}
	out, err := exec.Command("/usr/bin/python3", script, "50").Output()
	if err != nil {
		return nil
	}
	var r map[string]any
	if json.Unmarshal(out, &r) != nil {
		return nil
	}
	m := map[string]float64{}
	for k, v := range r {
		if f, ok := v.(float64); ok {
			m[k] = f
		}
	}
	return m
})

// reportTorch adds PyTorch's ns/batch and the speedup over it.
func reportTorch(b *testing.B, key string) {
	tt := torchTimes()
	if tt == nil || tt[key] == 0 || b.N == 0 {
		return
	}
	ours := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
	b.ReportMetric(tt[key], "torch-ns/op")
	b.ReportMetric(tt[key]/ours, "x-torch")
}

// benchBatches returns n synthetic 1x64x56x56 activation batches (the same
// generator as the goldens and tools/golden/bench_torch_observers.py).
func benchBatches(n int) []batch {
	out := make([]batch, n)
	for i := range out {
		out[i] = synthSpec{Seed: uint64(1 + i), Shape: []int{1, 64, 56, 56}, Scale: 1 + 0.1*float64(i%3), Kind: "normal"}.batch()
	}
	return out
}

func BenchmarkHistogramObserve(b *testing.B) {
	bs := benchBatches(4)
	obs, _ := New(KindHistogram, Config{DType: tensor.Uint8})
	for _, x := range bs {
		_ = obs.Observe(x.Data, x.Shape)
	}
	torchTimes()
	b.SetBytes(int64(4 * len(bs[0].Data)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		x := bs[i%len(bs)]
		if err := obs.Observe(x.Data, x.Shape); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	reportTorch(b, "histogram_observe_ns")
}

func BenchmarkHistogramQParams(b *testing.B) {
	bs := benchBatches(4)
	obs, _ := New(KindHistogram, Config{DType: tensor.Uint8})
	for _, x := range bs {
		_ = obs.Observe(x.Data, x.Shape)
	}
	torchTimes()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, _, err := obs.QParams(); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	reportTorch(b, "histogram_qparams_ns")
}

func BenchmarkMinMaxObserve(b *testing.B) {
	bs := benchBatches(1)
	obs, _ := New(KindMinMax, Config{DType: tensor.Uint8})
	torchTimes()
	b.SetBytes(int64(4 * len(bs[0].Data)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := obs.Observe(bs[0].Data, bs[0].Shape); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	reportTorch(b, "minmax_observe_ns")
}

// BenchmarkMinMaxObserveDRAM streams 64 MiB of batches, more than the
// caches hold, so the figure is memory bandwidth rather than L2's.
func BenchmarkMinMaxObserveDRAM(b *testing.B) {
	const per = 64 * 56 * 56
	const nb = 16 << 20 / per
	data := make([]float32, nb*per)
	for i := range data {
		data[i] = float32(i%1999) - 999.5
	}
	obs, _ := New(KindMinMax, Config{DType: tensor.Uint8})
	shape := []int{1, 64, 56, 56}
	b.SetBytes(4 * per)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		k := i % nb
		if err := obs.Observe(data[k*per:(k+1)*per], shape); err != nil {
			b.Fatal(err)
		}
	}
}
