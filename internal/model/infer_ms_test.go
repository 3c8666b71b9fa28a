package model

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/qtool/qtool/internal/graph"
	"github.com/qtool/qtool/internal/npy"
	"github.com/qtool/qtool/internal/ortpeer"
	"github.com/qtool/qtool/internal/tensor"
)

// TestInferMicrosoftOpsAgainstORT builds a model of the com.microsoft ops
// that ONNX Runtime's quantizer and optimizer emit, runs it in ONNX Runtime
// and checks that InferShapes derives the dtypes and shapes ORT produced.
func TestInferMicrosoftOpsAgainstORT(t *testing.T) {
	node, script := ortpeer.Need(t)
	g := &graph.Graph{Name: "ms", Opsets: map[string]int64{"": 13, "com.microsoft": 1}}
	nm := func(name string, dt tensor.DType, dims ...int) *graph.Value {
		return &graph.Value{Name: name, DType: dt, Shape: graph.KnownShape(dims...)}
	}
	X := nm("X", tensor.Uint8, 1, 4, 8, 8)
	A := nm("A", tensor.Uint8, 3, 5)
	F := nm("F", tensor.Float32, 1, 2, 5, 5)
	g.Inputs = []*graph.Value{X, A, F}
	init := func(name string, t *tensor.Tensor) *graph.Value {
		v := &graph.Value{Name: name, DType: t.DType, Shape: graph.KnownShape(t.Shape...), Const: t}
		g.Initializers = append(g.Initializers, v)
		return v
	}
	sc := init("s", tensor.Scalar(0.05))
	zp := init("zp", &tensor.Tensor{DType: tensor.Uint8, Shape: []int{}, Data: []uint8{128}})
	bzp := init("bzp", &tensor.Tensor{DType: tensor.Int8, Shape: []int{}, Data: []int8{0}})
	B := init("B", tensor.MustNew(tensor.Int8, []int{5, 6}))
	W := init("W", tensor.MustNew(tensor.Float32, []int{3, 2, 3, 3}))
	var outs []*graph.Value
	add := func(op string, ins []*graph.Value, attrs ...*graph.Attribute) {
		o := &graph.Value{Name: op + "_out"}
		g.Nodes = append(g.Nodes, &graph.Node{Name: op, OpType: op, Domain: "com.microsoft", Inputs: ins, Outputs: []*graph.Value{o}, Attrs: attrs})
		outs = append(outs, o)
	}
	add("QLinearGlobalAveragePool", []*graph.Value{X, sc, zp, sc, zp}, graph.IntAttr("channels_last", 0))
	add("QLinearAveragePool", []*graph.Value{X, sc, zp, sc, zp}, graph.IntsAttr("kernel_shape", []int64{3, 3}),
		graph.IntsAttr("strides", []int64{2, 2}), graph.IntsAttr("pads", []int64{1, 1, 1, 1}))
	add("QLinearConcat", []*graph.Value{sc, zp, X, sc, zp, X, sc, zp}, graph.IntAttr("axis", 1))
	add("QGemm", []*graph.Value{A, sc, zp, B, sc, bzp, nil, sc, zp})
	add("FusedConv", []*graph.Value{F, W}, graph.StringAttr("activation", "Relu"))
	add("QLinearAdd", []*graph.Value{X, sc, zp, X, sc, zp, sc, zp})
	add("MatMulIntegerToFloat", []*graph.Value{A, B, sc, sc})
	add("QLinearSigmoid", []*graph.Value{X, sc, zp, sc, zp})
	g.Outputs = outs
	m := &Model{IRVersion: 8, Graph: g, FileOpsets: []OpsetID{{"", 13}, {"com.microsoft", 1}}}

	tmp := t.TempDir()
	path := filepath.Join(tmp, "ms.onnx")
	if err := Save(m, path); err != nil {
		t.Fatal(err)
	}
	outDir := filepath.Join(tmp, "out")
	cmd := exec.Command(node, script, "run", path, outDir)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("onnx runtime: %v\n%s", err, b)
	}
	if err := graph.InferShapes(g); err != nil {
		t.Fatal(err)
	}
	for _, o := range outs {
		want, err := npy.ReadFile(filepath.Join(outDir, o.Name+".npy"))
		if err != nil {
			t.Fatal(err)
		}
		wantShape := graph.KnownShape(want.Shape...).String()
		if o.DType != want.DType || o.Shape.String() != wantShape {
			t.Errorf("%s: inferred %v%v, ONNX Runtime gave %v%s", strings.TrimSuffix(o.Name, "_out"), o.DType, o.Shape, want.DType, wantShape)
		}
	}
}
