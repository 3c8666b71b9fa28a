package qdq

import (
	"math/rand"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/qtool/qtool/internal/graph"
	"github.com/qtool/qtool/internal/runtime"
	"github.com/qtool/qtool/internal/tensor"
)

// unaryQDQ builds x → Q → DQ → op → Q → DQ → y over [1, 4, 5, 6] with the
// given input/output zero-point types; perChannel makes the input's DQ
// per channel (axis 1).
func unaryQDQ(op string, inT, outT tensor.DType, perChannel bool, extra func(g *graph.Graph, nm *graph.Namer) []*graph.Value, attrs ...*graph.Attribute) *graph.Graph {
	g := &graph.Graph{Opsets: map[string]int64{"": 18}}
	nm := g.NewNamer()
	c := func(name string, t *tensor.Tensor) *graph.Value { return g.AddInitializer(nm, name, t) }
	zp := func(dt tensor.DType, n int) *tensor.Tensor {
		shape := []int{}
		if n > 1 {
			shape = []int{n}
		}
		t := tensor.MustNew(dt, shape)
		if dt == tensor.Uint8 {
			for i := range t.U8() {
				t.U8()[i] = 128
			}
		}
		return t
	}
	x := &graph.Value{Name: "x", DType: tensor.Float32, Shape: graph.KnownShape(1, 4, 5, 6)}
	g.Inputs = []*graph.Value{x}
	node := func(op string, in []*graph.Value, attrs ...*graph.Attribute) *graph.Value {
		n := nm.NewNode(op, op, in, 1, attrs...)
		g.Nodes = append(g.Nodes, n)
		return n.Outputs[0]
	}
	xs, xz := c("xs", tensor.Scalar(0.03)), c("xz", zp(inT, 1))
	var axis []*graph.Attribute
	if perChannel {
		xs = c("xs", tensor.FromFloat32([]int{4}, []float32{0.03, 0.02, 0.04, 0.03}))
		xz = c("xz", zp(inT, 4))
		axis = append(axis, graph.IntAttr("axis", 1))
	}
	xq := node("QuantizeLinear", []*graph.Value{x, xs, xz}, axis...)
	xd := node("DequantizeLinear", []*graph.Value{xq, xs, xz}, axis...)
	in := []*graph.Value{xd}
	if extra != nil {
		in = append(in, extra(g, nm)...)
	}
	y := node(op, in, attrs...)
	ys, yz := c("ys", tensor.Scalar(0.025)), c("yz", zp(outT, 1))
	yq := node("QuantizeLinear", []*graph.Value{y, ys, yz})
	out := node("DequantizeLinear", []*graph.Value{yq, ys, yz})
	out.DType = tensor.Float32
	g.Outputs = []*graph.Value{out}
	return g
}

func randInput(seed int64) *tensor.Tensor {
	rng := rand.New(rand.NewSource(seed))
	d := make([]float32, 4*5*6)
	for i := range d {
		d[i] = float32(rng.NormFloat64() * 2)
	}
	return tensor.FromFloat32([]int{1, 4, 5, 6}, d)
}

// TestOpsLeftFloat covers groups the new rewrites must leave alone:
// per-channel activation qparams, input and output of different 8-bit
// types, a Clip bound computed at run time, a LayerNormalization whose
// mean output is read. The rewritten graph must still run and give the
// unfused result.
func TestOpsLeftFloat(t *testing.T) {
	norm := func(g *graph.Graph, nm *graph.Namer) []*graph.Value {
		return []*graph.Value{g.AddInitializer(nm, "s", tensor.FromFloat32([]int{4}, []float32{1, 2, 0.5, 1})),
			g.AddInitializer(nm, "b", tensor.FromFloat32([]int{4}, []float32{0, 0.1, -0.1, 0.2}))}
	}
	cases := []struct {
		name string
		g    *graph.Graph
		op   string
	}{
		{"per-channel HardSwish", unaryQDQ("HardSwish", tensor.Uint8, tensor.Uint8, true, nil), "HardSwish"},
		{"u8 to s8 Tanh", unaryQDQ("Tanh", tensor.Uint8, tensor.Int8, false, nil), "Tanh"},
		{"per-channel InstanceNormalization", unaryQDQ("InstanceNormalization", tensor.Int8, tensor.Int8, true, norm), "InstanceNormalization"},
		{"s8 to u8 InstanceNormalization", unaryQDQ("InstanceNormalization", tensor.Int8, tensor.Uint8, false, norm), "InstanceNormalization"},
		{"per-channel Resize", unaryQDQ("Resize", tensor.Uint8, tensor.Uint8, true, func(g *graph.Graph, nm *graph.Namer) []*graph.Value {
			return []*graph.Value{nil, g.AddInitializer(nm, "sc", tensor.FromFloat32([]int{4}, []float32{1, 1, 2, 2}))}
		}, graph.StringAttr("mode", "linear")), "Resize"},
	}
	g := unaryQDQ("Clip", tensor.Uint8, tensor.Uint8, false, func(g *graph.Graph, nm *graph.Namer) []*graph.Value {
		lo := &graph.Value{Name: "lo", DType: tensor.Float32, Shape: graph.KnownShape()}
		g.Inputs = append(g.Inputs, lo)
		return []*graph.Value{lo}
	})
	cases = append(cases, struct {
		name string
		g    *graph.Graph
		op   string
	}{"Clip with a run-time bound", g, "Clip"})
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rep, err := Rewrite(c.g)
			if err != nil {
				t.Fatal(err)
			}
			if rep.Total() != 0 || rep.Float[c.op] != 1 {
				t.Errorf("rewrote it: %v", rep)
			}
		})
	}
	// A read Mean output keeps LayerNormalization float.
	ln := unaryQDQ("LayerNormalization", tensor.Uint8, tensor.Uint8, false, func(g *graph.Graph, nm *graph.Namer) []*graph.Value {
		return []*graph.Value{g.AddInitializer(nm, "s", tensor.FromFloat32([]int{6}, []float32{1, 2, 0.5, 1, 1, 1}))}
	})
	for _, n := range ln.Nodes {
		if n.OpType == "LayerNormalization" {
			m := &graph.Value{Name: "mean", DType: tensor.Float32}
			n.Outputs = append(n.Outputs, m)
			ln.Outputs = append(ln.Outputs, m)
		}
	}
	rep, err := Rewrite(ln)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Total() != 0 {
		t.Errorf("LayerNormalization with a read Mean output rewritten: %v", rep)
	}
}

// TestLookupTableFolded checks that the table's DQ → op → Q nodes are
// evaluated once when the session is planned, not on every run, and that
// the table op is exact for a Clip given as relu6 with both int8 sides.
func TestLookupTableFolded(t *testing.T) {
	bounds := func(g *graph.Graph, nm *graph.Namer) []*graph.Value {
		return []*graph.Value{g.AddInitializer(nm, "lo", tensor.Scalar(0)), g.AddInitializer(nm, "hi", tensor.Scalar(6))}
	}
	in := randInput(3)
	ref := runOurs(t, unaryQDQ("Clip", tensor.Int8, tensor.Int8, false, bounds), in)
	g := unaryQDQ("Clip", tensor.Int8, tensor.Int8, false, bounds)
	rep, err := Rewrite(g)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Fused["LookupTable"] != 1 || rep.Tables["Clip"] != 1 || len(rep.Float) != 0 {
		t.Fatalf("report %v, tables %v", rep, rep.Tables)
	}
	var mu sync.Mutex
	ran := map[string]int{}
	s, err := runtime.NewSession(g, runtime.Options{NodeTime: func(n *graph.Node, _ time.Duration) {
		mu.Lock()
		ran[n.OpType]++
		mu.Unlock()
	}})
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.Run(map[string]*tensor.Tensor{"x": in})
	if err != nil {
		t.Fatal(err)
	}
	if ran["Clip"] != 0 || ran["LookupTable"] != 1 {
		t.Errorf("nodes run: %v (the table should be folded at plan time)", ran)
	}
	for k, v := range ref {
		if !reflect.DeepEqual(v.Data, got[k].Data) {
			t.Errorf("output %s differs from the unfused run", k)
		}
	}
}

// TestLookupTableStaysNHWC checks that a table activation between two
// convolutions stays inside the NHWC region (no layout transposes around
// it) and that the result still equals the unfused path within 1 LSB.
func TestLookupTableStaysNHWC(t *testing.T) {
	build := func() *graph.Graph {
		g := &graph.Graph{Opsets: map[string]int64{"": 18}}
		nm := g.NewNamer()
		c := func(name string, t *tensor.Tensor) *graph.Value { return g.AddInitializer(nm, name, t) }
		node := func(op string, in []*graph.Value, attrs ...*graph.Attribute) *graph.Value {
			n := nm.NewNode(op, op, in, 1, attrs...)
			g.Nodes = append(g.Nodes, n)
			return n.Outputs[0]
		}
		rng := rand.New(rand.NewSource(4))
		qdqV := func(v *graph.Value, s float32, z uint8) *graph.Value {
			sv, zv := c("s", tensor.Scalar(s)), c("z", &tensor.Tensor{DType: tensor.Uint8, Shape: []int{}, Data: []uint8{z}})
			return node("DequantizeLinear", []*graph.Value{node("QuantizeLinear", []*graph.Value{v, sv, zv}), sv, zv})
		}
		conv := func(v *graph.Value) *graph.Value {
			w := tensor.MustNew(tensor.Int8, []int{4, 4, 3, 3})
			for i := range w.I8() {
				w.I8()[i] = int8(rng.Intn(200) - 100)
			}
			wd := node("DequantizeLinear", []*graph.Value{c("w", w), c("ws", tensor.Scalar(0.002)), c("wz", tensor.MustNew(tensor.Int8, []int{}))})
			return node("Conv", []*graph.Value{v, wd}, graph.IntsAttr("pads", []int64{1, 1, 1, 1}))
		}
		x := &graph.Value{Name: "x", DType: tensor.Float32, Shape: graph.KnownShape(1, 4, 5, 6)}
		g.Inputs = []*graph.Value{x}
		h := qdqV(node("HardSwish", []*graph.Value{qdqV(conv(qdqV(x, 0.03, 128)), 0.02, 40)}), 0.02, 20)
		y := qdqV(conv(h), 0.02, 128)
		y.DType = tensor.Float32
		g.Outputs = []*graph.Value{y}
		return g
	}
	in := randInput(8)
	ref := runOurs(t, build(), in)
	g := build()
	rep, err := Rewrite(g)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Fused["QLinearConv"] != 2 || rep.Fused["LookupTable"] != 1 || rep.ChannelsLast != 3 {
		t.Errorf("report %v, channels-last %d", rep, rep.ChannelsLast)
	}
	transposes := 0
	for _, n := range g.Nodes {
		if n.OpType == "Transpose" {
			transposes++
		}
	}
	if transposes != 2 {
		t.Errorf("%d layout transposes, want 2 (into and out of the region)", transposes)
	}
	got := runOurs(t, g, in)
	w, n, md := agreement(t, g, got, ref)
	if w != n {
		t.Errorf("rewritten vs unfused: %d of %d within 1 LSB, max %d", w, n, md)
	}
}
