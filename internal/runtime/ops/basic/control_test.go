package basic

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/qtool/qtool/internal/graph"
	"github.com/qtool/qtool/internal/runtime"
	"github.com/qtool/qtool/internal/tensor"
)

// scanGraph: state s and input x (scanned along axis 0, reversed when
// inRev), body s' = s + x_t, y_t = s'; y stacked along outAxis.
func scanGraph(inRev, outRev, outAxis int64) *graph.Graph {
	f := func(name string, dims ...int) *graph.Value {
		return &graph.Value{Name: name, DType: tensor.Float32, Shape: graph.KnownShape(dims...)}
	}
	s, xt, s2, y := f("s", 2), f("xt", 2), &graph.Value{Name: "s2"}, &graph.Value{Name: "y"}
	body := &graph.Graph{
		Name:   "body",
		Inputs: []*graph.Value{s, xt},
		Nodes: []*graph.Node{
			{OpType: "Add", Inputs: []*graph.Value{s, xt}, Outputs: []*graph.Value{s2}},
			{OpType: "Identity", Inputs: []*graph.Value{s2}, Outputs: []*graph.Value{y}},
		},
		Outputs: []*graph.Value{s2, y},
	}
	s0, x, sN, ys := f("s0", 2), f("x", 3, 2), &graph.Value{Name: "sN"}, &graph.Value{Name: "ys"}
	opsets := map[string]int64{"": 17}
	body.Opsets = opsets
	return &graph.Graph{
		Inputs: []*graph.Value{s0, x},
		Nodes: []*graph.Node{{OpType: "Scan", Inputs: []*graph.Value{s0, x}, Outputs: []*graph.Value{sN, ys}, Attrs: []*graph.Attribute{
			{Name: "body", Type: graph.AttrGraph, G: body},
			graph.IntAttr("num_scan_inputs", 1),
			graph.IntsAttr("scan_input_directions", []int64{inRev}),
			graph.IntsAttr("scan_output_directions", []int64{outRev}),
			graph.IntsAttr("scan_output_axes", []int64{outAxis}),
		}}},
		Outputs: []*graph.Value{sN, ys},
		Opsets:  opsets,
	}
}

func TestScanDirectionsAndAxes(t *testing.T) {
	cases := []struct {
		inRev, outRev, outAxis int64
		shape                  []int
		want                   []float32
	}{
		{0, 0, 0, []int{3, 2}, []float32{1, 2, 4, 6, 9, 12}},
		{1, 0, 0, []int{3, 2}, []float32{5, 6, 8, 10, 9, 12}},
		{1, 0, 1, []int{2, 3}, []float32{5, 8, 9, 6, 10, 12}},
		{1, 1, -1, []int{2, 3}, []float32{9, 8, 5, 12, 10, 6}},
	}
	for _, c := range cases {
		s, err := runtime.NewSession(scanGraph(c.inRev, c.outRev, c.outAxis), runtime.Options{Threads: 2})
		if err != nil {
			t.Fatal(err)
		}
		out, err := s.Run(map[string]*tensor.Tensor{"s0": f32(sh(2), 0, 0), "x": f32(sh(3, 2), 1, 2, 3, 4, 5, 6)})
		if err != nil {
			t.Fatal(err)
		}
		if got := out["ys"]; !tensor.SameShape(got.Shape, c.shape) || !reflect.DeepEqual(got.F32(), c.want) {
			t.Errorf("in rev %d out rev %d axis %d: ys %v %v, want %v %v", c.inRev, c.outRev, c.outAxis, got.Shape, got.F32(), c.shape, c.want)
		}
		if got := out["sN"].F32(); got[0] != 9 || got[1] != 12 {
			t.Errorf("final state %v", got)
		}
	}
}

// Nodes fed only by constants run once at plan time, unless an Observe
// hook wants to see every value.
func TestConstantFolding(t *testing.T) {
	c, d, y := &graph.Value{Name: "c"}, &graph.Value{Name: "d"}, &graph.Value{Name: "y"}
	x := &graph.Value{Name: "x", DType: tensor.Float32, Shape: graph.KnownShape(2)}
	g := &graph.Graph{
		Inputs: []*graph.Value{x},
		Nodes: []*graph.Node{
			{OpType: "Constant", Outputs: []*graph.Value{c}, Attrs: []*graph.Attribute{graph.TensorAttr("value", f32(sh(2), 1, 2))}},
			{OpType: "Add", Inputs: []*graph.Value{c, c}, Outputs: []*graph.Value{d}},
			{OpType: "Mul", Inputs: []*graph.Value{d, x}, Outputs: []*graph.Value{y}},
		},
		Outputs: []*graph.Value{y, d},
		Opsets:  map[string]int64{"": 17},
	}
	for _, observe := range []bool{false, true} {
		var ran, seen []string
		opts := runtime.Options{NodeTime: func(n *graph.Node, _ time.Duration) { ran = append(ran, n.OpType) }}
		if observe {
			opts.Observe = func(v *graph.Value, _ *tensor.Tensor) { seen = append(seen, v.Name) }
		}
		s, err := runtime.NewSession(g, opts)
		if err != nil {
			t.Fatal(err)
		}
		for run := 0; run < 2; run++ {
			ran, seen = nil, nil
			out, err := s.Run(map[string]*tensor.Tensor{"x": f32(sh(2), 3, 4)})
			if err != nil {
				t.Fatal(err)
			}
			if got := out["y"].F32(); got[0] != 6 || got[1] != 16 {
				t.Fatalf("y = %v", got)
			}
			// The folded d is an output: the caller gets its own copy.
			out["d"].F32()[0] = 100
		}
		want := []string{"Mul"}
		if observe {
			want = []string{"Constant", "Add", "Mul"}
			if len(seen) != 4 {
				t.Errorf("observed %v", seen)
			}
		}
		if !reflect.DeepEqual(ran, want) {
			t.Errorf("observe=%v: nodes run %v, want %v", observe, ran, want)
		}
	}
}

// A Loop whose condition never turns false stops with an error.
func TestLoopRunaway(t *testing.T) {
	defer func(v int64) { maxLoopIterations = v }(maxLoopIterations)
	maxLoopIterations = 1000
	it := &graph.Value{Name: "it", DType: tensor.Int64, Shape: graph.Shape{}}
	cin := &graph.Value{Name: "cin", DType: tensor.Bool, Shape: graph.Shape{}}
	cout := &graph.Value{Name: "cout"}
	body := &graph.Graph{
		Name: "body", Inputs: []*graph.Value{it, cin},
		Nodes:   []*graph.Node{{OpType: "Identity", Inputs: []*graph.Value{cin}, Outputs: []*graph.Value{cout}}},
		Outputs: []*graph.Value{cout},
	}
	cond := &graph.Value{Name: "cond", DType: tensor.Bool, Shape: graph.Shape{}}
	y := &graph.Value{Name: "y"}
	// No loop-carried values, one scan output: the iteration count.
	body.Nodes = append(body.Nodes, &graph.Node{OpType: "Identity", Inputs: []*graph.Value{it}, Outputs: []*graph.Value{y}})
	body.Outputs = append(body.Outputs, y)
	ys := &graph.Value{Name: "ys"}
	g := &graph.Graph{
		Inputs:  []*graph.Value{cond},
		Nodes:   []*graph.Node{{OpType: "Loop", Inputs: []*graph.Value{nil, cond}, Outputs: []*graph.Value{ys}, Attrs: []*graph.Attribute{{Name: "body", Type: graph.AttrGraph, G: body}}}},
		Outputs: []*graph.Value{ys},
		Opsets:  map[string]int64{"": 17},
	}
	s, err := runtime.NewSession(g, runtime.Options{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.Run(map[string]*tensor.Tensor{"cond": bools(sh(), true)})
	if err == nil || !strings.Contains(err.Error(), "runaway") {
		t.Fatalf("error %v, want a runaway-loop error", err)
	}
	// A false condition runs no iteration.
	out, err := s.Run(map[string]*tensor.Tensor{"cond": bools(sh(), false)})
	if err != nil || out["ys"].Len() != 0 {
		t.Fatalf("out %v err %v", out, err)
	}
}
