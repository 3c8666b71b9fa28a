package convert

import (
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/x448/float16"

	"github.com/qtool/qtool/internal/graph"
	"github.com/qtool/qtool/internal/model"
	"github.com/qtool/qtool/internal/tensor"
)

// fp16RulesModel exercises the conversion's special cases in one graph:
//   - a Constant with value_float and one with value_floats;
//   - an additive mask of -1e9 before a Softmax (clamped to -65504);
//   - PyTorch-style size arithmetic: Resize(sizes = Cast(Floor(
//     Cast(Shape(x)[2:4], float) * 1.5), int64)), which must stay float32;
//   - Resize with constant scales (float32 by spec);
//   - TopK and Max from the block list, Max's output a graph output;
//   - ConstantOfShape, Cast to float, LayerNormalization (Mean output
//     float32 by spec) and an initializer read by a blocked and a
//     converted node.
func fp16RulesModel() *model.Model {
	g := &graph.Graph{Name: "rules", Opsets: map[string]int64{"": 17}}
	nm := g.NewNamer()
	x := &graph.Value{Name: "x", DType: tensor.Float32, Shape: graph.KnownShape(1, 2, 4, 6)}
	g.Inputs = []*graph.Value{x}
	add := func(op string, in []*graph.Value, nout int, attrs ...*graph.Attribute) []*graph.Value {
		n := nm.NewNode(op, op, in, nout, attrs...)
		g.Nodes = append(g.Nodes, n)
		return n.Outputs
	}
	one := func(op string, in []*graph.Value, attrs ...*graph.Attribute) *graph.Value {
		return add(op, in, 1, attrs...)[0]
	}
	ints := func(v ...int64) *graph.Value {
		return g.AddInitializer(nm, "i", tensor.FromInt64([]int{len(v)}, v))
	}
	k := one("Constant", nil, graph.FloatAttr("value_float", 2.5))
	ks := one("Constant", nil, graph.FloatsAttr("value_floats", []float32{0.5, -1, 2, 0.25, 1, -0.5}))
	m := one("Mul", []*graph.Value{x, k})
	m = one("Add", []*graph.Value{m, ks})
	mask := g.AddInitializer(nm, "mask", tensor.FromFloat32([]int{6}, []float32{0, -1e9, 0, 0, -1e9, 0}))
	sm := one("Softmax", []*graph.Value{one("Add", []*graph.Value{m, mask})}, graph.IntAttr("axis", -1))
	// Size arithmetic.
	hw := one("Gather", []*graph.Value{one("Shape", []*graph.Value{x}), ints(2, 3)})
	f := one("Cast", []*graph.Value{hw}, graph.IntAttr("to", int64(tensor.Float32)))
	scale := g.AddInitializer(nm, "size_scale", tensor.FromFloat32(nil, []float32{1.5}))
	sz := one("Cast", []*graph.Value{one("Floor", []*graph.Value{one("Mul", []*graph.Value{f, scale})})}, graph.IntAttr("to", int64(tensor.Int64)))
	sizes := one("Concat", []*graph.Value{ints(1, 2), sz}, graph.IntAttr("axis", 0))
	r1 := one("Resize", []*graph.Value{sm, nil, nil, sizes}, graph.StringAttr("mode", "linear"))
	scales := g.AddInitializer(nm, "scales", tensor.FromFloat32([]int{4}, []float32{1, 1, 0.5, 0.5}))
	r2 := one("Resize", []*graph.Value{r1, nil, scales}, graph.StringAttr("mode", "linear"))
	// Blocked ops.
	flat := one("Flatten", []*graph.Value{r2}, graph.IntAttr("axis", 1))
	tk := add("TopK", []*graph.Value{flat, ints(5)}, 2)
	shared := g.AddInitializer(nm, "shared", tensor.FromFloat32([]int{1}, []float32{0.125}))
	mx := one("Max", []*graph.Value{tk[0], shared})
	cs := one("ConstantOfShape", []*graph.Value{ints(1, 5)}, graph.TensorAttr("value", tensor.FromFloat32([]int{1}, []float32{0.75})))
	sum := one("Add", []*graph.Value{one("Mul", []*graph.Value{mx, shared}), cs})
	c32 := one("Cast", []*graph.Value{sum}, graph.IntAttr("to", int64(tensor.Float32)))
	ln := add("LayerNormalization", []*graph.Value{c32, g.AddInitializer(nm, "gamma", tensor.FromFloat32([]int{5}, []float32{1, 2, 1, 0.5, 1})),
		g.AddInitializer(nm, "beta", tensor.FromFloat32([]int{5}, []float32{0, 0.1, 0, 0, -0.1}))}, 3, graph.IntAttr("axis", -1))
	g.Outputs = []*graph.Value{ln[0], mx, ln[1]}
	return &model.Model{IRVersion: 8, Graph: g}
}

func TestFloat16FullRules(t *testing.T) {
	in := map[string]*tensor.Tensor{}
	xs := make([]float32, 48)
	for i := range xs {
		xs[i] = float32(math.Sin(float64(i)*0.7)) * 3
	}
	in["x"] = tensor.FromFloat32([]int{1, 2, 4, 6}, xs)
	ref := runGraph(t, fp16RulesModel().Graph, in)
	for _, io16 := range []bool{false, true} {
		m := fp16RulesModel()
		rep, err := Float16Full(m.Graph, Float16Options{IO16: io16})
		if err != nil {
			t.Fatal(err)
		}
		b, err := model.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		m16, err := model.LoadBytes(b, "")
		if err != nil {
			t.Fatal(err)
		}
		checkFP16Structure(t, m16.Graph, rep, !io16)
		kept := map[string]string{}
		for _, f := range rep.Float {
			kept[f.OpType] += f.Node + " "
		}
		for _, op := range []string{"TopK", "Max", "Mul", "Floor"} {
			if kept[op] == "" {
				t.Errorf("io16 %v: no %s kept float32 (kept: %v)", io16, op, kept)
			}
		}
		if len(rep.Clamped) != 1 || rep.Clamped[0].Name != "mask" || rep.Clamped[0].Over != 2 {
			t.Errorf("clamped %+v, want the mask's two -1e9", rep.Clamped)
		}
		byName := map[string]*graph.Value{}
		for _, v := range m16.Graph.Initializers {
			byName[v.Name] = v
		}
		for name, dt := range map[string]tensor.DType{"scales": tensor.Float32, "size_scale": tensor.Float32, "mask": tensor.Float16, "shared": tensor.Float16, "gamma": tensor.Float16} {
			if v := byName[name]; v == nil || v.Const.DType != dt {
				t.Errorf("io16 %v: initializer %s: %v, want %v", io16, name, v, dt)
			}
		}
		if h := byName["mask"].Const.F16(); h[1].Float32() != -65504 {
			t.Errorf("mask clamped to %v, want -65504", h[1].Float32())
		}
		x := in["x"]
		if io16 {
			h := make([]float16.Float16, len(xs))
			for i, v := range xs {
				h[i] = float16.Fromfloat32(v)
			}
			x = &tensor.Tensor{DType: tensor.Float16, Shape: x.Shape, Data: h}
		}
		got := runGraph(t, m16.Graph, map[string]*tensor.Tensor{"x": x})
		for _, v := range m16.Graph.Outputs {
			want := tensor.Float32
			if io16 {
				want = tensor.Float16
			}
			if v.DType != want || got[v.Name].DType != want {
				t.Errorf("io16 %v: output %q declared %v, ran %v; want %v", io16, v.Name, v.DType, got[v.Name].DType, want)
			}
			g := got[v.Name]
			if g.DType == tensor.Float16 {
				g, _ = tensor.FromFloat16(g)
			}
			if d := relDiff(ref[v.Name], g); d > 1e-2 || !tensor.SameShape(g.Shape, ref[v.Name].Shape) {
				t.Errorf("io16 %v: output %q %v differs from float32 %v by %.2e of its range", io16, v.Name, g.Shape, ref[v.Name].Shape, d)
			}
		}
		if io16 {
			continue
		}
		p := filepath.Join(t.TempDir(), "rules.onnx")
		if err := model.Save(m16, p); err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, v := range m16.Graph.Outputs {
			names = append(names, v.Name)
		}
		ort, err := runORT(t, p, in, names)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range names {
			if d := relDiff(got[n], ort[n]); d > 1e-2 {
				t.Errorf("output %q: ONNX Runtime differs by %.2e of the range", n, d)
			}
		}
	}
}

// TestFloat16FullBadInput: graphs the conversion cannot handle give an
// error, not a panic or a half-typed model.
func TestFloat16FullBadInput(t *testing.T) {
	mk := func(w *tensor.Tensor, yType *graph.Type) *graph.Graph {
		x := &graph.Value{Name: "x", DType: tensor.Float32, Shape: graph.KnownShape(2)}
		wv := &graph.Value{Name: "w", DType: tensor.Float32, Shape: graph.KnownShape(2), Const: w}
		y := &graph.Value{Name: "y", DType: tensor.Float32, Type: yType}
		return &graph.Graph{Inputs: []*graph.Value{x}, Outputs: []*graph.Value{y}, Initializers: []*graph.Value{wv},
			Nodes: []*graph.Node{{Name: "add", OpType: "Add", Inputs: []*graph.Value{x, wv}, Outputs: []*graph.Value{y}}}, Opsets: map[string]int64{"": 13}}
	}
	good := tensor.FromFloat32([]int{2}, []float32{1, 2})
	if _, err := Float16Full(mk(good, nil), Float16Options{}); err != nil {
		t.Fatalf("good graph: %v", err)
	}
	for name, c := range map[string]struct {
		g    *graph.Graph
		opts Float16Options
		msg  string
	}{
		"inconsistent initializer": {mk(&tensor.Tensor{DType: tensor.Float32, Shape: []int{2}, Data: []int8{1, 2}}, nil), Float16Options{}, "initializer \"w\""},
		"float sequence":           {mk(good, &graph.Type{Kind: graph.KindSequence, Elem: &graph.Type{Kind: graph.KindTensor, DType: tensor.Float32}}), Float16Options{}, "tensors only"},
	} {
		_, err := Float16Full(c.g, c.opts)
		if err == nil || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%s: %v, want an error with %q", name, err, c.msg)
		}
	}
	// An op shape inference does not know leaves its output untyped.
	g := mk(good, nil)
	u := &graph.Value{Name: "u"}
	g.Nodes = append(g.Nodes, &graph.Node{Name: "custom", OpType: "NoSuchOp", Inputs: []*graph.Value{g.Outputs[0]}, Outputs: []*graph.Value{u}})
	g.Outputs = []*graph.Value{u}
	if _, err := Float16Full(g, Float16Options{}); err == nil || !strings.Contains(err.Error(), "unknown") {
		t.Errorf("untyped value: %v", err)
	}
}
