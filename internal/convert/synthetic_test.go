package convert

import (
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/qtool/qtool/internal/graph"
	"github.com/qtool/qtool/internal/model"
	"github.com/qtool/qtool/internal/tensor"
)

// opsModel builds a small graph that reaches the quantized ops the shared
// models do not have: LeakyRelu, Sigmoid, AveragePool, Mul of two
// activations, MatMul of two activations, Gemm with transB, Flatten.
//
//	x[2,3,8,8] -> Conv -> LeakyRelu -> AveragePool -> a
//	a -> Conv -> Sigmoid -> s;  m = a * s
//	m -> Flatten -> Gemm(transB) -> Reshape [2,4,4] -> r;  y = r · Transpose(r)
func opsModel(t *testing.T) *model.Model {
	r := rand.New(rand.NewPCG(3, 4))
	randT := func(shape ...int) *tensor.Tensor {
		n := 1
		for _, d := range shape {
			n *= d
		}
		x := make([]float32, n)
		for i := range x {
			x[i] = float32(r.NormFloat64()) * 0.3
		}
		return tensor.FromFloat32(shape, x)
	}
	g := &graph.Graph{Name: "ops", Opsets: map[string]int64{"": 13}}
	nm := g.NewNamer()
	x := &graph.Value{Name: "x", DType: tensor.Float32, Shape: graph.KnownShape(2, 3, 8, 8)}
	g.Inputs = []*graph.Value{x}
	add := func(op string, in []*graph.Value, attrs ...*graph.Attribute) *graph.Value {
		n := nm.NewNode(op, op, in, 1, attrs...)
		g.Nodes = append(g.Nodes, n)
		return n.Outputs[0]
	}
	w1 := g.AddInitializer(nm, "w1", randT(4, 3, 3, 3))
	b1 := g.AddInitializer(nm, "b1", randT(4))
	c1 := add("Conv", []*graph.Value{x, w1, b1}, graph.IntsAttr("pads", []int64{1, 1, 1, 1}))
	l := add("LeakyRelu", []*graph.Value{c1}, graph.FloatAttr("alpha", 0.1))
	a := add("AveragePool", []*graph.Value{l}, graph.IntsAttr("kernel_shape", []int64{2, 2}), graph.IntsAttr("strides", []int64{2, 2}))
	w2 := g.AddInitializer(nm, "w2", randT(4, 4, 1, 1))
	c2 := add("Conv", []*graph.Value{a, w2})
	s := add("Sigmoid", []*graph.Value{c2})
	m := add("Mul", []*graph.Value{a, s})
	f := add("Flatten", []*graph.Value{m})
	wg := g.AddInitializer(nm, "wg", randT(16, 64))
	bg := g.AddInitializer(nm, "bg", randT(16))
	gm := add("Gemm", []*graph.Value{f, wg, bg}, graph.IntAttr("transB", 1))
	shape := g.AddInitializer(nm, "shape", tensor.FromInt64([]int{3}, []int64{2, 4, 4}))
	rs := add("Reshape", []*graph.Value{gm, shape})
	tr := add("Transpose", []*graph.Value{rs}, graph.IntsAttr("perm", []int64{0, 2, 1}))
	y := add("MatMul", []*graph.Value{rs, tr})
	g.Outputs = []*graph.Value{y}
	return &model.Model{IRVersion: 8, Graph: g}
}

func TestSyntheticOpsPeers(t *testing.T) {
	needORT(t)
	dir := t.TempDir()
	r := rand.New(rand.NewPCG(5, 6))
	data := make([]float32, 64*2*3*8*8)
	for i := range data {
		data[i] = float32(r.NormFloat64())
	}
	calib := filepath.Join(dir, "calib.npy")
	writeNpy(t, calib, tensor.FromFloat32([]int{128, 3, 8, 8}, data))
	eval := tensor.FromFloat32([]int{2, 3, 8, 8}, data[:2*3*8*8])
	cfg := loadPreset(t, "ort-default")
	for _, format := range []string{FormatQDQ, FormatQOperator} {
		t.Run(format, func(t *testing.T) {
			m := opsModel(t)
			tab := calibrateGraph(t, m.Graph, calib, cfg, nil, 0, 0)
			rep, err := Static(m.Graph, tab, cfg, StaticOptions{Format: format})
			if err != nil {
				t.Fatal(err)
			}
			for _, op := range []string{"Conv", "LeakyRelu", "AveragePool", "Sigmoid", "Mul", "Flatten", "Gemm", "Reshape", "Transpose", "MatMul"} {
				if rep.Quantized[op] == 0 {
					t.Errorf("%s not quantized (report %v, float %v)", op, rep.Quantized, rep.Float)
				}
			}
			out := filepath.Join(dir, format+".onnx")
			if err := model.Save(m, out); err != nil {
				t.Fatal(err)
			}
			in := map[string]*tensor.Tensor{"x": eval}
			agreeWithORT(t, out, in, []string{"MatMul_out0"}, qdqLevel(format), rep.OutputScales)
		})
	}
}
