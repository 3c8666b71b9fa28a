package qdq

import (
	"fmt"
	"math"
	"math/rand"
	"testing"

	"github.com/qtool/qtool/internal/graph"
	"github.com/qtool/qtool/internal/tensor"
)

// qdqConvGraph builds x → Q(u8) → DQ → Conv(DQ(int8 weights, per channel),
// DQ(int32 bias)) → act → Q(yzp) → DQ → y, the shape our convert and
// ONNX Runtime's quantizer write.
func qdqConvGraph(act string, yzp uint8, clipMin, clipMax float32) *graph.Graph {
	return qdqConvGraphT(act, yzp, clipMin, clipMax, false)
}

// qdqConvGraphT is qdqConvGraph with int8 activations when signed (zero
// points shifted by -128, so the same real ranges).
func qdqConvGraphT(act string, yzp uint8, clipMin, clipMax float32, signed bool) *graph.Graph {
	rng := rand.New(rand.NewSource(11))
	g := &graph.Graph{Opsets: map[string]int64{"": 13}}
	nm := g.NewNamer()
	c := func(name string, t *tensor.Tensor) *graph.Value { return g.AddInitializer(nm, name, t) }
	u8 := func(v uint8) *tensor.Tensor {
		return &tensor.Tensor{DType: tensor.Uint8, Shape: []int{}, Data: []uint8{v}}
	}
	x := &graph.Value{Name: "x", DType: tensor.Float32, Shape: graph.KnownShape(1, 3, 7, 6)}
	g.Inputs = []*graph.Value{x}
	node := func(op string, in []*graph.Value, attrs ...*graph.Attribute) *graph.Value {
		n := nm.NewNode(op, op, in, 1, attrs...)
		g.Nodes = append(g.Nodes, n)
		return n.Outputs[0]
	}
	xs := c("xs", tensor.Scalar(0.02))
	xz := c("xz", u8(120))
	xq := node("QuantizeLinear", []*graph.Value{x, xs, xz})
	xd := node("DequantizeLinear", []*graph.Value{xq, xs, xz})
	const cout = 4
	w := tensor.MustNew(tensor.Int8, []int{cout, 3, 3, 3})
	for i := range w.I8() {
		w.I8()[i] = int8(rng.Intn(255) - 127)
	}
	ws := make([]float32, cout)
	for i := range ws {
		ws[i] = 0.001 * float32(i+1)
	}
	wd := node("DequantizeLinear", []*graph.Value{c("w", w), c("ws", tensor.FromFloat32([]int{cout}, ws)),
		c("wz", &tensor.Tensor{DType: tensor.Int8, Shape: []int{cout}, Data: make([]int8, cout)})}, graph.IntAttr("axis", 0))
	b := &tensor.Tensor{DType: tensor.Int32, Shape: []int{cout}, Data: []int32{300, -200, 5000, -7}}
	bs := make([]float32, cout)
	for i := range bs {
		bs[i] = 0.02 * ws[i]
	}
	bd := node("DequantizeLinear", []*graph.Value{c("b", b), c("bs", tensor.FromFloat32([]int{cout}, bs)),
		c("bz", &tensor.Tensor{DType: tensor.Int32, Shape: []int{cout}, Data: make([]int32, cout)})}, graph.IntAttr("axis", 0))
	y := node("Conv", []*graph.Value{xd, wd, bd}, graph.IntsAttr("pads", []int64{1, 1, 1, 1}), graph.IntsAttr("strides", []int64{2, 1}))
	switch act {
	case "Relu":
		y = node("Relu", []*graph.Value{y})
	case "Clip":
		y = node("Clip", []*graph.Value{y, c("lo", tensor.Scalar(clipMin)), c("hi", tensor.Scalar(clipMax))})
	}
	ys := c("ys", tensor.Scalar(0.03))
	yz := c("yz", u8(yzp))
	yq := node("QuantizeLinear", []*graph.Value{y, ys, yz})
	out := node("DequantizeLinear", []*graph.Value{yq, ys, yz})
	out.DType = tensor.Float32
	g.Outputs = []*graph.Value{out}
	return g
}

// TestActivationFolding checks the Relu/Clip rules against the un-rewritten
// graph: folded only when Q's clamp is the activation (then the output must
// agree within 1 LSB), kept in float otherwise (then it must agree exactly,
// nothing changed).
func TestActivationFolding(t *testing.T) {
	rng := rand.New(rand.NewSource(5))
	in := tensor.MustNew(tensor.Float32, []int{1, 3, 7, 6})
	for i := range in.F32() {
		in.F32()[i] = float32(rng.NormFloat64()) * 2
	}
	cases := []struct {
		name      string
		act       string
		yzp       uint8
		lo, hi    float32
		wantFused bool
	}{
		{"none", "", 128, 0, 0, true},
		{"relu zp0", "Relu", 0, 0, 0, true},
		{"relu zp128", "Relu", 128, 0, 0, false},
		{"clip covers range", "Clip", 0, 0, 255 * 0.03 * 1.01, true},
		{"clip inside range", "Clip", 0, 0, 6, false},
		{"clip low bound above qmin", "Clip", 10, 0, 1000, false},
	}
	for _, signed := range []bool{false, true} {
		for _, tc := range cases {
			t.Run(fmt.Sprintf("%s signed=%v", tc.name, signed), func(t *testing.T) {
				ref := runOurs(t, qdqConvGraphT(tc.act, tc.yzp, tc.lo, tc.hi, signed), in)
				g := qdqConvGraphT(tc.act, tc.yzp, tc.lo, tc.hi, signed)
				rep, err := Rewrite(g)
				if err != nil {
					t.Fatal(err)
				}
				if got := rep.Fused["QLinearConv"] == 1; got != tc.wantFused {
					t.Fatalf("fused = %v, want %v (%v)", got, tc.wantFused, rep)
				}
				got := runOurs(t, g, in)
				name := g.Outputs[0].Name
				a, b := got[name].F32(), ref[name].F32()
				for i := range a {
					d := math.Abs(float64(a[i]-b[i])) / 0.03
					if (tc.wantFused && d > 1.001) || (!tc.wantFused && a[i] != b[i]) {
						t.Fatalf("element %d: %v vs %v", i, a[i], b[i])
					}
				}
			})
		}
	}
}

// TestRewriteLeavesUnfusable covers patterns that must stay in float: a
// non-constant scale, a float bias, a weight that is not a constant.
func TestRewriteLeavesUnfusable(t *testing.T) {
	for _, edit := range []func(g *graph.Graph){
		func(g *graph.Graph) { // activation scale fed by a graph input
			s := &graph.Value{Name: "s_in", DType: tensor.Float32, Shape: graph.KnownShape()}
			g.Inputs = append(g.Inputs, s)
			g.Nodes[1].Inputs[1] = s
		},
		func(g *graph.Graph) { // bias as a float constant
			for _, n := range g.Nodes {
				if n.OpType == "Conv" {
					n.Inputs[2] = g.AddInitializer(g.NewNamer(), "fb", tensor.FromFloat32([]int{4}, make([]float32, 4)))
				}
			}
		},
		func(g *graph.Graph) { // weights from a graph input
			w := &graph.Value{Name: "w_in", DType: tensor.Int8, Shape: graph.KnownShape(4, 3, 3, 3)}
			g.Inputs = append(g.Inputs, w)
			g.Nodes[2].Inputs[0] = w
		},
	} {
		g := qdqConvGraph("", 128, 0, 0)
		edit(g)
		rep, err := Rewrite(g)
		if err != nil {
			t.Fatal(err)
		}
		if rep.Total() != 0 || rep.Float["Conv"] != 1 {
			t.Errorf("rewrote an unfusable conv: %v", rep)
		}
	}
	if _, err := Rewrite(nil); err == nil {
		t.Error("nil graph: no error")
	}
}
