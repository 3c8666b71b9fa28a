package quant

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/qtool/qtool/internal/graph"
	"github.com/qtool/qtool/internal/model"
	"github.com/qtool/qtool/internal/runtime"
	"github.com/qtool/qtool/internal/tensor"
)

// nodeDirs lists the ONNX backend node tests for our three ops, from
// ../shared/onnx-node (found by walking up) and Debian's libonnx-testdata.
func nodeDirs(t *testing.T) []string {
	var roots []string
	wd, _ := os.Getwd()
	for d := wd; d != filepath.Dir(d); d = filepath.Dir(d) {
		if fi, err := os.Stat(filepath.Join(d, "shared", "onnx-node")); err == nil && fi.IsDir() {
			roots = append(roots, filepath.Join(d, "shared", "onnx-node"))
			break
		}
	}
	roots = append(roots, "/usr/share/libonnx-testdata/data/node")
	var dirs []string
	for _, r := range roots {
		for _, p := range []string{"test_quantizelinear*", "test_dequantizelinear*", "test_dynamicquantizelinear*"} {
			m, _ := filepath.Glob(filepath.Join(r, p))
			for _, d := range m {
				// _expanded variants are graphs of other ops (ReduceMin,
				// Div...): the all-ops test runs them.
				if !strings.HasSuffix(d, "_expanded") {
					dirs = append(dirs, d)
				}
			}
		}
	}
	if len(dirs) == 0 {
		t.Skip("no ONNX node tests found")
	}
	return dirs
}

// unsupported are the variants whose element types qtool has no tensor
// type for (int4, int2, float8, float4); they are listed in
// internal/runtime/ops/all/unsupported.txt.
var unsupported = []string{"int4", "uint4", "int2", "uint2", "e4m3fn", "e5m2", "float4e2m1"}

func isUnsupported(name string) bool {
	for _, u := range unsupported {
		if strings.Contains(name, u) {
			return true
		}
	}
	return false
}

func runOne(dir string, threads int) error {
	m, err := model.Load(filepath.Join(dir, "model.onnx"))
	if err != nil {
		return err
	}
	g := m.Graph
	if len(g.Nodes) != 1 {
		return fmt.Errorf("%d nodes", len(g.Nodes))
	}
	n := g.Nodes[0]
	sets, _ := filepath.Glob(filepath.Join(dir, "test_data_set_*"))
	if len(sets) == 0 {
		return fmt.Errorf("no data sets")
	}
	for _, set := range sets {
		env := map[string]*tensor.Tensor{}
		for _, v := range g.Initializers {
			env[v.Name] = v.Const
		}
		i := 0
		for _, v := range g.Inputs {
			if _, ok := env[v.Name]; ok {
				continue
			}
			x, err := model.ReadTensorFile(filepath.Join(set, fmt.Sprintf("input_%d.pb", i)))
			if err != nil {
				return err
			}
			env[v.Name] = x
			i++
		}
		in := make([]*tensor.Tensor, len(n.Inputs))
		for i, v := range n.Inputs {
			if v != nil {
				in[i] = env[v.Name]
			}
		}
		f, ok := runtime.Lookup(n.Domain, n.OpType, in[0].DType)
		if !ok {
			return fmt.Errorf("no kernel for %s %v", n.OpType, in[0].DType)
		}
		k, err := f(n, g.Opsets[""])
		if err != nil {
			return err
		}
		out, err := k.Run(&runtime.Context{Threads: threads}, in)
		if err != nil {
			return err
		}
		for i, v := range g.Outputs {
			want, err := model.ReadTensorFile(filepath.Join(set, fmt.Sprintf("output_%d.pb", i)))
			if err != nil {
				return err
			}
			var got *tensor.Tensor
			for j, o := range n.Outputs {
				if o != nil && o.Name == v.Name {
					got = out[j]
				}
			}
			if err := same(got, want); err != nil {
				return fmt.Errorf("%s output %s: %v", filepath.Base(set), v.Name, err)
			}
		}
	}
	return nil
}

// same compares exactly: integer outputs and also float outputs (the
// dequantized values are a single rounding of an exact product).
func same(got, want *tensor.Tensor) error {
	if got == nil {
		return fmt.Errorf("not produced")
	}
	if got.DType != want.DType || !tensor.SameShape(got.Shape, want.Shape) {
		return fmt.Errorf("got %v, want %v", got, want)
	}
	g, _ := got.AsFloat64()
	w, _ := want.AsFloat64()
	for i := range w {
		if g[i] != w[i] && !(math.IsNaN(g[i]) && math.IsNaN(w[i])) {
			return fmt.Errorf("element %d: %v, want %v", i, g[i], w[i])
		}
	}
	return nil
}

func TestNodeTests(t *testing.T) {
	passed := 0
	for _, d := range nodeDirs(t) {
		name := filepath.Base(d)
		t.Run(name, func(t *testing.T) {
			err := runOne(d, 2)
			if isUnsupported(name) {
				if err == nil {
					t.Logf("listed as unsupported but passes")
				}
				t.Skipf("unsupported: %v", err)
			}
			if err != nil {
				t.Fatal(err)
			}
			passed++
		})
	}
	if passed < 10 {
		t.Errorf("only %d node tests passed", passed)
	}
}

func node(op string, attrs ...*graph.Attribute) *graph.Node {
	return &graph.Node{OpType: op, Inputs: []*graph.Value{{Name: "x"}, {Name: "s"}, {Name: "z"}}, Outputs: []*graph.Value{{Name: "y"}}, Attrs: attrs}
}

func TestQuantizeLinearErrors(t *testing.T) {
	x := tensor.FromFloat32([]int{2, 3}, []float32{1, 2, 3, 4, 5, 6})
	u8 := func(shape []int, v ...uint8) *tensor.Tensor {
		return &tensor.Tensor{DType: tensor.Uint8, Shape: shape, Data: v}
	}
	cases := []struct {
		name string
		in   []*tensor.Tensor
	}{
		{"zero scale", []*tensor.Tensor{x, tensor.Scalar(0), u8(nil, 0)}},
		{"negative scale", []*tensor.Tensor{x, tensor.Scalar(-1), u8(nil, 0)}},
		{"NaN scale", []*tensor.Tensor{x, tensor.Scalar(float32(math.NaN())), u8(nil, 0)}},
		{"wrong channel count", []*tensor.Tensor{x, tensor.FromFloat32([]int{2}, []float32{1, 1}), u8([]int{2}, 0, 0)}},
		{"zp shape", []*tensor.Tensor{x, tensor.FromFloat32([]int{3}, []float32{1, 1, 1}), u8([]int{2}, 0, 0)}},
		{"blocked scale", []*tensor.Tensor{x, tensor.FromFloat32([]int{2, 3}, make([]float32, 6)), u8([]int{2, 3}, 0, 0, 0, 0, 0, 0)}},
		{"bad x", []*tensor.Tensor{{DType: tensor.Float32, Shape: []int{5}, Data: []float32{1}}, tensor.Scalar(1), u8(nil, 0)}},
		{"missing scale", []*tensor.Tensor{x, nil, nil}},
	}
	k, err := newQuantize(node("QuantizeLinear"), 21)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cases {
		if _, err := k.Run(&runtime.Context{}, c.in); err == nil {
			t.Errorf("%s: no error", c.name)
		}
	}
	bk, err := newQuantize(node("QuantizeLinear", &graph.Attribute{Name: "block_size", Type: graph.AttrInt, I: 2}), 21)
	if err != nil {
		t.Fatal(err)
	}
	for name, sc := range map[string]*tensor.Tensor{
		"blocked scale rank": tensor.FromFloat32([]int{2}, []float32{1, 1}),
		"blocked scale dims": tensor.FromFloat32([]int{2, 3}, []float32{1, 1, 1, 1, 1, 1}),
		"blocked zero scale": tensor.FromFloat32([]int{2, 2}, []float32{1, 0, 1, 1}),
	} {
		if _, err := bk.Run(&runtime.Context{}, []*tensor.Tensor{x, sc}); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	if _, err := newQuantize(node("QuantizeLinear", &graph.Attribute{Name: "block_size", Type: graph.AttrInt, I: -1}), 21); err == nil {
		t.Error("negative block_size accepted")
	}
	dk, _ := newDequantize(node("DequantizeLinear"), 21)
	i32 := &tensor.Tensor{DType: tensor.Int32, Shape: []int{2}, Data: []int32{1, 2}}
	if _, err := dk.Run(&runtime.Context{}, []*tensor.Tensor{i32, tensor.Scalar(1), {DType: tensor.Int32, Shape: []int{}, Data: []int32{3}}}); err == nil {
		t.Error("int32 with non-zero zero point accepted")
	}
}

// Per-axis along the last axis and axis -1, and int32 dequantization,
// against the formula evaluated independently in float64.
func TestPerAxisAndInt32(t *testing.T) {
	x := make([]float32, 2*3*4)
	for i := range x {
		x[i] = float32(i)*0.37 - 4
	}
	xt := tensor.FromFloat32([]int{2, 3, 4}, x)
	scales := []float32{0.1, 0.25, 0.5, 1}
	sc := tensor.FromFloat32([]int{4}, scales)
	zp := &tensor.Tensor{DType: tensor.Int8, Shape: []int{4}, Data: []int8{0, -3, 5, 127}}
	for _, axis := range []int64{2, -1} {
		k, _ := newQuantize(node("QuantizeLinear", &graph.Attribute{Name: "axis", Type: graph.AttrInt, I: axis}), 13)
		out, err := k.Run(&runtime.Context{Threads: 2}, []*tensor.Tensor{xt, sc, zp})
		if err != nil {
			t.Fatal(err)
		}
		for i, v := range out[0].I8() {
			c := i % 4
			want := math.RoundToEven(float64(x[i]/scales[c])) + float64(zp.I8()[c])
			want = math.Max(-128, math.Min(127, want))
			if float64(v) != want {
				t.Fatalf("axis %d: y[%d] = %d, want %v", axis, i, v, want)
			}
		}
	}
	q := &tensor.Tensor{DType: tensor.Int32, Shape: []int{3}, Data: []int32{math.MaxInt32, math.MinInt32, 7}}
	k, _ := newDequantize(node("DequantizeLinear"), 10)
	out, err := k.Run(&runtime.Context{}, []*tensor.Tensor{q, tensor.Scalar(0.5)})
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range out[0].F32() {
		if v != float32(float64(q.I32()[i])*0.5) {
			t.Errorf("int32 dequantize %d: %v", q.I32()[i], v)
		}
	}
}

// A float16 scale (or output_dtype float16) gives a float16 output: the
// float32 result rounded once.
func TestDequantizeFloat16(t *testing.T) {
	q := &tensor.Tensor{DType: tensor.Int8, Shape: []int{4}, Data: []int8{-128, -1, 0, 127}}
	h, _ := tensor.ToFloat16(tensor.FromFloat32([]int{}, []float32{0.1}))
	for _, c := range []struct {
		scale *tensor.Tensor
		attrs []*graph.Attribute
	}{
		{h, nil},
		{tensor.Scalar(h.F16()[0].Float32()), []*graph.Attribute{{Name: "output_dtype", Type: graph.AttrInt, I: int64(tensor.Float16)}}},
	} {
		k, err := newDequantize(node("DequantizeLinear", c.attrs...), 23)
		if err != nil {
			t.Fatal(err)
		}
		out, err := k.Run(&runtime.Context{}, []*tensor.Tensor{q, c.scale})
		if err != nil {
			t.Fatal(err)
		}
		if out[0].DType != tensor.Float16 {
			t.Fatalf("output %v, want float16", out[0].DType)
		}
		s := h.F16()[0].Float32()
		for i, v := range out[0].F16() {
			want := float32(q.I8()[i]) * s
			if w, _ := tensor.ToFloat16(tensor.FromFloat32([]int{}, []float32{want})); v != w.F16()[0] {
				t.Errorf("%d: %v, want %v", q.I8()[i], v.Float32(), want)
			}
		}
	}
}
