package nn

import (
	"fmt"
	"math"
	"path/filepath"
	"testing"

	"github.com/qtool/qtool/internal/model"
	"github.com/qtool/qtool/internal/npy"
	"github.com/qtool/qtool/internal/tensor"
)

const tvDir = "../../../../../shared/models/torchvision-random"

// TestTorchvisionModels checks ResNet-18 and MobileNetV2 against PyTorch's
// outputs (committed .npy next to the models) at 1e-4 relative to the
// largest output magnitude.
func TestTorchvisionModels(t *testing.T) {
	for _, c := range []struct{ model, out string }{
		{"resnet18_fp32_opset13.onnx", "resnet18_fp32_output.npy"},
		{"mobilenet_v2_fp32_bnrecal_opset13.onnx", "mobilenet_v2_fp32_bnrecal_output.npy"},
	} {
		t.Run(c.model, func(t *testing.T) {
			m, err := model.Load(filepath.Join(tvDir, c.model))
			if err != nil {
				t.Skip(err)
			}
			x, err := npy.ReadFile(filepath.Join(tvDir, "input_1x3x224x224.npy"))
			if err != nil {
				t.Fatal(err)
			}
			want, err := npy.ReadFile(filepath.Join(tvDir, c.out))
			if err != nil {
				t.Fatal(err)
			}
			got, err := runGraph(m.Graph, map[string]*tensor.Tensor{m.Graph.Inputs[0].Name: x}, 2)
			if err != nil {
				t.Fatal(err)
			}
			y := got[m.Graph.Outputs[0].Name]
			if !tensor.SameShape(y.Shape, want.Shape) {
				t.Fatalf("shape %v, want %v", y.Shape, want.Shape)
			}
			g, w := y.F32(), want.F32()
			var maxAbs, maxDiff float64
			for i := range w {
				maxAbs = math.Max(maxAbs, math.Abs(float64(w[i])))
				maxDiff = math.Max(maxDiff, math.Abs(float64(g[i]-w[i])))
			}
			t.Logf("max |diff| %.3g, max |want| %.3g, relative %.3g", maxDiff, maxAbs, maxDiff/maxAbs)
			if maxDiff > 1e-4*maxAbs {
				t.Errorf("relative error %.3g > 1e-4", maxDiff/maxAbs)
			}
		})
	}
}

func benchModel(b *testing.B, file string) {
	m, err := model.Load(filepath.Join(tvDir, file))
	if err != nil {
		b.Skip(err)
	}
	x, err := npy.ReadFile(filepath.Join(tvDir, "input_1x3x224x224.npy"))
	if err != nil {
		b.Fatal(err)
	}
	p, err := newPlan(m.Graph)
	if err != nil {
		b.Fatal(err)
	}
	in := map[string]*tensor.Tensor{m.Graph.Inputs[0].Name: x}
	if _, err := p.run(in, 1, false); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	cpu0 := cpuTime()
	for i := 0; i < b.N; i++ {
		if _, err := p.run(in, 1, true); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	reportCPU(b, cpu0)
	if testing.Verbose() {
		byOp := map[string]float64{}
		for i, n := range m.Graph.Nodes {
			key := n.OpType
			if n.OpType == "Conv" {
				if w := n.Input(1); w != nil && w.Const != nil {
					key = fmt.Sprintf("Conv%v", w.Const.Shape)
					if g, _ := n.AttrInt("group", 1); g > 1 {
						key = "ConvDW"
					}
				}
			}
			byOp[key] += p.times[i] / float64(b.N)
		}
		for k, v := range byOp {
			b.Logf("%-28s %7.3f ms", k, v*1e3)
		}
	}
}

// Test mini-executor benchmarks (the real ones, through the Session, live in
// internal/runtime/modeltest).
func BenchmarkNNResNet18(b *testing.B) { benchModel(b, "resnet18_fp32_opset13.onnx") }
func BenchmarkNNMobileNetV2(b *testing.B) {
	benchModel(b, "mobilenet_v2_fp32_bnrecal_opset13.onnx")
}
