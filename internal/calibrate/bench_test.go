package calibrate

import (
	"context"
	"testing"
	"time"

	"github.com/qtool/qtool/internal/model"
	"github.com/qtool/qtool/internal/npy"
	"github.com/qtool/qtool/internal/runtime"
)

// BenchmarkResNet18CalibrateVsInference times calibration (default
// histogram observers on every activation) of ResNet-18 on n inputs against
// n plain float inferences of the same batches, in one run, and reports the
// ratio (goal: under 3).
//
//	go test ./internal/calibrate -run XXX -bench ResNet18 -benchtime 1x
func BenchmarkResNet18CalibrateVsInference(b *testing.B) {
	const n, batch = 16, 4
	mp := shared(b, "models/torchvision-random/resnet18_fp32_opset13.onnx")
	m, err := model.Load(mp)
	if err != nil {
		b.Fatal(err)
	}
	one, err := npy.ReadFile(shared(b, "models/torchvision-random/input_1x3x224x224.npy"))
	if err != nil {
		b.Fatal(err)
	}
	// n inputs: the reference image with a different brightness each.
	x := make([]float32, 0, n*one.Len())
	for i := 0; i < n; i++ {
		for _, v := range one.F32() {
			x = append(x, v*(0.5+float32(i)/float32(n)))
		}
	}
	data := writeNPY(b, tensorOf([]int{n, 3, 224, 224}, x))
	threads := 1
	// Best of three alternating rounds of each, so that load from other
	// processes on a shared machine does not decide the ratio.
	var tCal, tInf time.Duration
	for it := 0; it < b.N; it++ {
		ds, err := Open([]DataSpec{{Path: data}}, InputSpecs(m.Graph), Options{Batch: batch})
		if err != nil {
			b.Fatal(err)
		}
		sess, err := runtime.NewSession(m.Graph, runtime.Options{Threads: threads})
		if err != nil {
			b.Fatal(err)
		}
		bestInf, bestCal := time.Duration(1<<62), time.Duration(1<<62)
		for round := 0; round < 3; round++ {
			start := time.Now()
			iter := ds.Iter()
			for {
				bt, err := iter.Next(context.Background())
				if err != nil {
					break
				}
				if _, err := sess.Run(bt.Inputs); err != nil {
					b.Fatal(err)
				}
			}
			bestInf = min(bestInf, time.Since(start))

			start = time.Now()
			p, err := NewPlan(m.Graph, Config{}, "")
			if err != nil {
				b.Fatal(err)
			}
			if _, err := p.Run(context.Background(), ds, RunOptions{Threads: threads}); err != nil {
				b.Fatal(err)
			}
			bestCal = min(bestCal, time.Since(start))
		}
		tInf += bestInf
		tCal += bestCal
		ds.Close()
	}
	b.ReportMetric(tInf.Seconds()/float64(b.N*n)*1e3, "ms/inference")
	b.ReportMetric(tCal.Seconds()/float64(b.N*n)*1e3, "ms/calibrated-sample")
	b.ReportMetric(float64(tCal)/float64(tInf), "calib/inference")
}
