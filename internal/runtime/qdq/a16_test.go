package qdq

import (
	"math"
	"math/rand"
	"strings"
	"testing"

	"github.com/qtool/qtool/internal/graph"
	"github.com/qtool/qtool/internal/tensor"
)

// a16Graph is what convert writes for 16-bit activations with int8
// weights: x → Q16 → DQ → Conv(DQ int8 w, DQ int32 b) → Relu → Q16 → DQ →
// MaxPool → Q16 (same qparams) → DQ → Sigmoid → Q16 → DQ → y, with the
// activation pairs in domain (com.microsoft below opset 21, ai.onnx from
// it).
func a16Graph(dt tensor.DType, domain string, opset int64) *graph.Graph {
	rng := rand.New(rand.NewSource(3))
	g := &graph.Graph{Opsets: map[string]int64{"": opset}}
	if domain != "" {
		g.Opsets[domain] = 1
	}
	nm := g.NewNamer()
	c := func(name string, t *tensor.Tensor) *graph.Value { return g.AddInitializer(nm, name, t) }
	zp := func(z int32) *tensor.Tensor {
		t := tensor.MustNew(dt, []int{})
		if dt == tensor.Uint16 {
			t.Data.([]uint16)[0] = uint16(z)
		} else {
			t.Data.([]int16)[0] = int16(z)
		}
		return t
	}
	base := int32(0)
	if dt == tensor.Int16 {
		base = -32768
	}
	x := &graph.Value{Name: "x", DType: tensor.Float32, Shape: graph.KnownShape(1, 3, 8, 8)}
	g.Inputs = []*graph.Value{x}
	node := func(op, dom string, in []*graph.Value, attrs ...*graph.Attribute) *graph.Value {
		n := nm.NewNode(op, op, in, 1, attrs...)
		n.Domain = dom
		g.Nodes = append(g.Nodes, n)
		return n.Outputs[0]
	}
	qdq := func(v *graph.Value, s float32, z int32) *graph.Value {
		sv, zv := c("s", tensor.Scalar(s)), c("z", zp(z))
		return node("DequantizeLinear", domain, []*graph.Value{node("QuantizeLinear", domain, []*graph.Value{v, sv, zv}), sv, zv})
	}
	xd := qdq(x, 1.0/8192, base+30000)
	const cout = 4
	w := tensor.MustNew(tensor.Int8, []int{cout, 3, 3, 3})
	for i := range w.I8() {
		w.I8()[i] = int8(rng.Intn(255) - 127)
	}
	ws := []float32{0.002, 0.003, 0.001, 0.004}
	wd := node("DequantizeLinear", "", []*graph.Value{c("w", w), c("ws", tensor.FromFloat32([]int{cout}, ws)),
		c("wz", &tensor.Tensor{DType: tensor.Int8, Shape: []int{cout}, Data: make([]int8, cout)})}, graph.IntAttr("axis", 0))
	bs := make([]float32, cout)
	for i := range bs {
		bs[i] = ws[i] / 8192
	}
	bd := node("DequantizeLinear", "", []*graph.Value{c("b", &tensor.Tensor{DType: tensor.Int32, Shape: []int{cout}, Data: []int32{3000, -2000, 50000, -7}}),
		c("bs", tensor.FromFloat32([]int{cout}, bs)), c("bz", &tensor.Tensor{DType: tensor.Int32, Shape: []int{cout}, Data: make([]int32, cout)})}, graph.IntAttr("axis", 0))
	y := node("Conv", "", []*graph.Value{xd, wd, bd}, graph.IntsAttr("pads", []int64{1, 1, 1, 1}))
	y = qdq(node("Relu", "", []*graph.Value{y}), 1.0/4096, base)
	y = qdq(node("MaxPool", "", []*graph.Value{y}, graph.IntsAttr("kernel_shape", []int64{2, 2}), graph.IntsAttr("strides", []int64{2, 2})), 1.0/4096, base)
	y = qdq(node("Sigmoid", "", []*graph.Value{y}), 1.0/65536, base)
	y.DType = tensor.Float32
	g.Outputs = []*graph.Value{y}
	return g
}

// TestRewriteLeaves16BitFloat: 16-bit groups, in either domain, stay on
// the float path (DQ → op → Q): no integer op, no integer MaxPool, no
// lookup table, no folded Relu, and the rewritten graph computes exactly
// what the original does.
func TestRewriteLeaves16BitFloat(t *testing.T) {
	rng := rand.New(rand.NewSource(9))
	x := make([]float32, 3*8*8)
	for i := range x {
		x[i] = float32(rng.NormFloat64())
	}
	in := tensor.FromFloat32([]int{1, 3, 8, 8}, x)
	for _, c := range []struct {
		dt     tensor.DType
		domain string
		opset  int64
	}{{tensor.Uint16, "com.microsoft", 13}, {tensor.Int16, "com.microsoft", 13}, {tensor.Uint16, "", 21}, {tensor.Int16, "", 21}} {
		ref := runOurs(t, a16Graph(c.dt, c.domain, c.opset), in)
		g := a16Graph(c.dt, c.domain, c.opset)
		rep, err := Rewrite(g)
		if err != nil {
			t.Fatal(err)
		}
		if rep.Total() != 0 || len(rep.Passthrough) != 0 || rep.FoldedActivations != 0 || len(rep.Tables) != 0 {
			t.Errorf("%v in %q: rewrote a 16-bit group: %+v", c.dt, c.domain, rep)
		}
		if ops, want := opList(g), opList(a16Graph(c.dt, c.domain, c.opset)); ops != want {
			t.Errorf("%v in %q: nodes %s after Rewrite, %s before", c.dt, c.domain, ops, want)
		}
		got := runOurs(t, g, in)
		for name, a := range ref {
			for i, v := range a.F32() {
				if math.Float32bits(v) != math.Float32bits(got[name].F32()[i]) {
					t.Fatalf("%v in %q: output %d differs after Rewrite: %v vs %v", c.dt, c.domain, i, got[name].F32()[i], v)
				}
			}
		}
	}
}

func opList(g *graph.Graph) string {
	var b strings.Builder
	for _, n := range g.Nodes {
		b.WriteString(n.Domain + ":" + n.OpType + " ")
	}
	return b.String()
}
