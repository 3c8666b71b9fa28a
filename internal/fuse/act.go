package fuse

import (
	"math"

	"github.com/qtool/qtool/internal/graph"
	"github.com/qtool/qtool/internal/tensor"
)

// activation reads an activation node as FusedConv's (name, params), or ok
// false if it is not one FusedConv can take.
func activation(ix *graph.Index, n *graph.Node, opset int64) (string, []float32, bool) {
	if !graph.IsDefaultDomain(n.Domain) {
		return "", nil, false
	}
	switch n.OpType {
	case "Relu":
		return "Relu", nil, true
	case "LeakyRelu":
		alpha, err := n.AttrFloat("alpha", 0.01)
		if err != nil {
			return "", nil, false
		}
		return "LeakyRelu", []float32{alpha}, true
	case "Clip":
		lo, hi := float32(-math.MaxFloat32), float32(math.MaxFloat32)
		if opset < 11 {
			var err error
			if lo, err = n.AttrFloat("min", lo); err != nil {
				return "", nil, false
			}
			if hi, err = n.AttrFloat("max", hi); err != nil {
				return "", nil, false
			}
			return "Clip", []float32{lo, hi}, true
		}
		for i, dst := range []*float32{&lo, &hi} {
			v := n.Input(i + 1)
			if v == nil {
				continue
			}
			c := graph.ConstValue(ix, v)
			if c == nil || c.DType != tensor.Float32 || c.Len() != 1 {
				return "", nil, false
			}
			*dst = c.F32()[0]
		}
		return "Clip", []float32{lo, hi}, true
	}
	return "", nil, false
}

// fuseActivations turns Conv -> activation (optionally Conv -> Add(residual)
// -> activation) into com.microsoft FusedConv, whose epilogue computes
// activation(Conv(X, W, B) + Z) in both ONNX Runtime and qtool.
func (f *fuser) fuseActivations() {
	ix := f.g.Index()
	opset := f.g.Opset("")
	for _, act := range f.g.Nodes {
		name, params, ok := activation(ix, act, opset)
		if !ok {
			continue
		}
		src := act.Input(0)
		prod := ix.Producer[src]
		if prod == nil || prod.Output(0) != src {
			continue
		}
		var conv, add *graph.Node
		var z *graph.Value
		switch {
		case prod.OpType == "Conv" && graph.IsDefaultDomain(prod.Domain):
			conv = prod
		case prod.OpType == "Add" && graph.IsDefaultDomain(prod.Domain) && len(prod.Inputs) == 2 && name == "Relu":
			// Residual: the Add's other operand must have exactly the
			// Conv's output shape (FusedConv's Z does not broadcast).
			for i := 0; i < 2; i++ {
				p := ix.Producer[prod.Input(i)]
				if p == nil || p.OpType != "Conv" || !graph.IsDefaultDomain(p.Domain) || p.Output(0) != prod.Input(i) || !ix.SingleUse(p.Output(0)) {
					continue
				}
				other := prod.Input(1 - i)
				if sameStaticShape(p.Output(0).Shape, other.Shape) && other != p.Output(0) {
					conv, add, z = p, prod, other
					break
				}
			}
			if conv == nil {
				continue
			}
			if !ix.SingleUse(add.Output(0)) {
				f.skip(act, "the residual Add's output has another consumer")
				continue
			}
		default:
			continue
		}
		if !ix.SingleUse(conv.Output(0)) {
			f.skip(act, "%v's output has another consumer", conv)
			continue
		}
		if x := conv.Input(0); x == nil || (x.DType != tensor.Float32 && x.DType != tensor.Undefined) {
			f.skip(act, "%v is not a float32 convolution", conv)
			continue
		}
		conv.Domain = MSDomain
		conv.OpType = "FusedConv"
		conv.SetAttr(graph.StringAttr("activation", name))
		if params != nil {
			conv.SetAttr(graph.FloatsAttr("activation_params", params))
		}
		if z != nil {
			for len(conv.Inputs) < 3 {
				conv.Inputs = append(conv.Inputs, nil)
			}
			conv.Inputs = append(conv.Inputs[:3], z)
			f.g.RemoveNode(add)
		}
		conv.Outputs[0] = act.Output(0)
		f.g.RemoveNode(act)
		if z != nil {
			f.count("Conv+Add+" + name)
		} else {
			f.count("Conv+" + name)
		}
		if f.g.Opsets[MSDomain] == 0 {
			f.g.Opsets[MSDomain] = 1
		}
		ix = f.g.Index()
	}
}

// sameStaticShape reports whether two inferred shapes are provably equal:
// same rank, and each dim the same known size or the same symbolic name.
func sameStaticShape(a, b graph.Shape) bool {
	if a == nil || b == nil || len(a) != len(b) {
		return false
	}
	for i := range a {
		switch {
		case a[i].Known() && b[i].Known():
			if a[i].Value != b[i].Value {
				return false
			}
		case a[i].Param != "" && a[i].Param == b[i].Param:
		default:
			return false
		}
	}
	return true
}
