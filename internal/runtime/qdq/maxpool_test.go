package qdq

import (
	"math/rand"
	"testing"

	"github.com/qtool/qtool/internal/graph"
	"github.com/qtool/qtool/internal/tensor"
)

// A MaxPool over an 8-bit tensor (as QOperator models have) moves to
// com.qtool MaxPool2d, with the same result as ONNX MaxPool; a float one, or
// one whose Indices output is used, stays.
func TestIntegerMaxPools(t *testing.T) {
	for _, dt := range []tensor.DType{tensor.Uint8, tensor.Int8, tensor.Float32} {
		for _, ceil := range []int64{0, 1} {
			x := &graph.Value{Name: "x", DType: dt, Shape: graph.KnownShape(2, 3, 9, 10)}
			y := &graph.Value{Name: "y", DType: dt}
			mp := &graph.Node{Name: "pool", OpType: "MaxPool", Inputs: []*graph.Value{x}, Outputs: []*graph.Value{y},
				Attrs: []*graph.Attribute{graph.IntsAttr("kernel_shape", []int64{3, 3}), graph.IntsAttr("strides", []int64{2, 2}),
					graph.IntsAttr("pads", []int64{1, 0, 1, 1}), graph.IntAttr("ceil_mode", ceil)}}
			g := &graph.Graph{Opsets: map[string]int64{"": 13}, Inputs: []*graph.Value{x}, Outputs: []*graph.Value{y}, Nodes: []*graph.Node{mp}}
			in := tensor.MustNew(dt, []int{2, 3, 9, 10})
			rng := rand.New(rand.NewSource(int64(ceil)))
			switch d := in.Data.(type) {
			case []uint8:
				for i := range d {
					d[i] = uint8(rng.Intn(256))
				}
			case []int8:
				for i := range d {
					d[i] = int8(rng.Intn(256) - 128)
				}
			case []float32:
				for i := range d {
					d[i] = rng.Float32()
				}
			}
			want := runOurs(t, g, in)["y"]
			rep, err := Rewrite(g)
			if err != nil {
				t.Fatal(err)
			}
			moved := g.Nodes[0].OpType == "MaxPool2d"
			if moved != (dt != tensor.Float32) || rep.Fused["MaxPool2d"] != map[bool]int{true: 1}[moved] {
				t.Fatalf("%v ceil %d: node %s, report %v", dt, ceil, g.Nodes[0].OpType, rep.Fused)
			}
			got := runOurs(t, g, in)["y"]
			a, _ := got.AsFloat64()
			b, _ := want.AsFloat64()
			if !tensor.SameShape(got.Shape, want.Shape) {
				t.Fatalf("%v ceil %d: shape %v, want %v", dt, ceil, got.Shape, want.Shape)
			}
			for i := range a {
				if a[i] != b[i] {
					t.Fatalf("%v ceil %d: element %d = %v, want %v", dt, ceil, i, a[i], b[i])
				}
			}
		}
	}
	// The Indices output keeps ONNX MaxPool.
	x := &graph.Value{Name: "x", DType: tensor.Uint8, Shape: graph.KnownShape(1, 1, 4, 4)}
	y, idx := &graph.Value{Name: "y"}, &graph.Value{Name: "i"}
	g := &graph.Graph{Opsets: map[string]int64{"": 13}, Inputs: []*graph.Value{x}, Outputs: []*graph.Value{y, idx},
		Nodes: []*graph.Node{{OpType: "MaxPool", Inputs: []*graph.Value{x}, Outputs: []*graph.Value{y, idx},
			Attrs: []*graph.Attribute{graph.IntsAttr("kernel_shape", []int64{2, 2})}}}}
	if _, err := Rewrite(g); err != nil {
		t.Fatal(err)
	}
	if g.Nodes[0].OpType != "MaxPool" {
		t.Fatalf("MaxPool with Indices rewritten to %s", g.Nodes[0].OpType)
	}
}
