package convert

import (
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/qtool/qtool/internal/fuse"
	"github.com/qtool/qtool/internal/graph"
	"github.com/qtool/qtool/internal/model"
	"github.com/qtool/qtool/internal/tensor"
)

// conv3dModel is a small video-style network: every 3-D op PyTorch's
// quantization lists (Conv3d, ConvBnReLU3d, MaxPool3d, AvgPool3d) between a
// 5-D input and a classifier.
//
//	x[2,3,4,8,8] -> Conv3d 3x3x3 pad 1 -> BatchNorm -> Relu -> MaxPool 1x2x2
//	-> Conv3d 1x3x3 stride 1x2x2, 2 groups -> Relu -> AveragePool 2x2x2
//	-> Conv3d 1x1x1 (an output) -> GlobalAveragePool -> Flatten -> Gemm
func conv3dModel(t *testing.T) *model.Model {
	r := rand.New(rand.NewPCG(7, 8))
	randT := func(scale float64, shape ...int) *tensor.Tensor {
		n := 1
		for _, d := range shape {
			n *= d
		}
		x := make([]float32, n)
		for i := range x {
			x[i] = float32(r.NormFloat64() * scale)
		}
		return tensor.FromFloat32(shape, x)
	}
	g := &graph.Graph{Name: "conv3d", Opsets: map[string]int64{"": 13}}
	nm := g.NewNamer()
	x := &graph.Value{Name: "x", DType: tensor.Float32, Shape: graph.KnownShape(2, 3, 4, 8, 8)}
	g.Inputs = []*graph.Value{x}
	add := func(op string, in []*graph.Value, attrs ...*graph.Attribute) *graph.Value {
		n := nm.NewNode(op, op, in, 1, attrs...)
		g.Nodes = append(g.Nodes, n)
		return n.Outputs[0]
	}
	w1 := g.AddInitializer(nm, "w1", randT(0.3, 8, 3, 3, 3, 3))
	b1 := g.AddInitializer(nm, "b1", randT(0.1, 8))
	c1 := add("Conv", []*graph.Value{x, w1, b1}, graph.IntsAttr("pads", []int64{1, 1, 1, 1, 1, 1}))
	bnScale := g.AddInitializer(nm, "bn_scale", randT(0.2, 8))
	bnBias := g.AddInitializer(nm, "bn_bias", randT(0.2, 8))
	bnMean := g.AddInitializer(nm, "bn_mean", randT(0.2, 8))
	v := randT(0.2, 8)
	for i, f := range v.F32() {
		v.F32()[i] = 1 + f*f
	}
	bnVar := g.AddInitializer(nm, "bn_var", v)
	bn := add("BatchNormalization", []*graph.Value{c1, bnScale, bnBias, bnMean, bnVar})
	r1 := add("Relu", []*graph.Value{bn})
	p1 := add("MaxPool", []*graph.Value{r1}, graph.IntsAttr("kernel_shape", []int64{1, 2, 2}), graph.IntsAttr("strides", []int64{1, 2, 2}))
	w2 := g.AddInitializer(nm, "w2", randT(0.3, 12, 4, 1, 3, 3))
	b2 := g.AddInitializer(nm, "b2", randT(0.1, 12))
	c2 := add("Conv", []*graph.Value{p1, w2, b2}, graph.IntAttr("group", 2),
		graph.IntsAttr("strides", []int64{1, 2, 2}), graph.IntsAttr("pads", []int64{0, 1, 1, 0, 1, 1}))
	r2 := add("Relu", []*graph.Value{c2})
	a2 := add("AveragePool", []*graph.Value{r2}, graph.IntsAttr("kernel_shape", []int64{2, 2, 2}), graph.IntsAttr("strides", []int64{2, 2, 2}))
	w3 := g.AddInitializer(nm, "w3", randT(0.3, 16, 12, 1, 1, 1))
	c3 := add("Conv", []*graph.Value{a2, w3})
	gp := add("GlobalAveragePool", []*graph.Value{c3})
	f := add("Flatten", []*graph.Value{gp})
	wg := g.AddInitializer(nm, "wg", randT(0.3, 10, 16))
	bg := g.AddInitializer(nm, "bg", randT(0.1, 10))
	y := add("Gemm", []*graph.Value{f, wg, bg}, graph.IntAttr("transB", 1))
	// The last conv's output is an output too: 256 values to compare, not
	// only the 20 logits.
	g.Outputs = []*graph.Value{y, c3}
	return &model.Model{IRVersion: 8, Graph: g}
}

// TestConv3dPeers fuses and quantizes conv3dModel with the x86 preset (per-channel
// weights, GPTQ rounding) and ort-default (per-tensor, MinMax), in QDQ and
// QOperator form, and checks that ONNX Runtime runs each file and agrees
// with our runtime within 1 LSB.
func TestConv3dPeers(t *testing.T) {
	needORT(t)
	dir := t.TempDir()
	r := rand.New(rand.NewPCG(9, 10))
	const sample = 3 * 4 * 8 * 8
	data := make([]float32, 64*sample)
	for i := range data {
		data[i] = float32(r.NormFloat64())
	}
	calib := filepath.Join(dir, "calib.npy")
	writeNpy(t, calib, tensor.FromFloat32([]int{64, 3, 4, 8, 8}, data))
	var calBatches []map[string]*tensor.Tensor
	for lo := 0; lo < 64; lo += 2 {
		calBatches = append(calBatches, map[string]*tensor.Tensor{"x": tensor.FromFloat32([]int{2, 3, 4, 8, 8}, data[lo*sample:(lo+2)*sample])})
	}
	eval := tensor.FromFloat32([]int{2, 3, 4, 8, 8}, data[:2*sample])
	for _, preset := range []string{"x86", "ort-default"} {
		for _, format := range []string{FormatQDQ, FormatQOperator} {
			t.Run(preset+"/"+format, func(t *testing.T) {
				cfg := loadPreset(t, preset)
				m := conv3dModel(t)
				if _, err := fuse.Fuse(m.Graph, fuse.Options{Portable: true}); err != nil {
					t.Fatal(err)
				}
				if n := len(m.Graph.Nodes); n != 10 {
					t.Fatalf("fused graph has %d nodes, want 10 (BatchNormalization folded into the Conv3d)", n)
				}
				tab := calibrateGraph(t, m.Graph, calib, cfg, nil, 0, 0)
				so := StaticOptions{Format: format}
				if cfg.GPTQ() {
					var err error
					if so.Rounding, err = OptimizeWeights(t.Context(), m.Graph, calBatches, cfg, RoundingOptions{Threads: 2}); err != nil {
						t.Fatal(err)
					}
					if len(so.Rounding.Skipped) > 0 || len(so.Rounding.Layers) != 4 {
						t.Errorf("GPTQ rounded %v and skipped %v, want the 3 convs and the Gemm rounded", so.Rounding.Layers, so.Rounding.Skipped)
					}
				}
				rep, err := Static(m.Graph, tab, cfg, so)
				if err != nil {
					t.Fatal(err)
				}
				if rep.Quantized["Conv"] != 3 {
					t.Errorf("%d of 3 Conv3d quantized (report %v, float %v)", rep.Quantized["Conv"], rep.Quantized, rep.Float)
				}
				out := filepath.Join(dir, preset+format+".onnx")
				if err := model.Save(m, out); err != nil {
					t.Fatal(err)
				}
				in := map[string]*tensor.Tensor{"x": eval}
				agreeWithORT(t, out, in, []string{m.Graph.Outputs[0].Name, m.Graph.Outputs[1].Name}, "all", rep.OutputScales)
			})
		}
	}
}
