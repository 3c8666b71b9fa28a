package fuse

import (
	"github.com/qtool/qtool/internal/graph"
	"github.com/qtool/qtool/internal/tensor"
)

// perChannel returns the values of a constant that, broadcast against a
// Conv output of rank r with c channels, varies only along the channel axis
// (shapes [], [1], [c,1,..], [1,c,1,..]); ok is false otherwise.
func perChannel(t *tensor.Tensor, r, c int) ([]float64, bool) {
	if t == nil || t.DType != tensor.Float32 || t.Rank() > r {
		return nil, false
	}
	if t.Len() == 1 {
		out := make([]float64, c)
		for i := range out {
			out[i] = float64(t.F32()[0])
		}
		return out, true
	}
	// Right-align t's shape against [N, C, spatial...].
	off := r - t.Rank()
	for i, d := range t.Shape {
		axis := off + i
		if axis == 1 {
			if d != c {
				return nil, false
			}
		} else if d != 1 {
			return nil, false
		}
	}
	if off > 1 { // t does not reach the channel axis
		return nil, false
	}
	out := make([]float64, c)
	for i, v := range t.F32() {
		out[i] = float64(v)
	}
	return out, true
}

// foldConvAffine folds Mul and Add by per-channel constants that follow a
// Conv into its weight and bias.
func (f *fuser) foldConvAffine() {
	ix := f.g.Index()
	for _, n := range f.g.Nodes {
		if (n.OpType != "Mul" && n.OpType != "Add") || !graph.IsDefaultDomain(n.Domain) || len(n.Inputs) != 2 {
			continue
		}
		var conv *graph.Node
		var cst *tensor.Tensor
		for i := 0; i < 2; i++ {
			p := ix.Producer[n.Input(i)]
			if p != nil && p.OpType == "Conv" && graph.IsDefaultDomain(p.Domain) && p.Output(0) == n.Input(i) {
				if c := graph.ConstValue(ix, n.Input(1-i)); c != nil {
					conv, cst = p, c
					break
				}
			}
		}
		if conv == nil {
			continue
		}
		if !ix.SingleUse(conv.Output(0)) {
			f.skip(n, "%v's output has another consumer", conv)
			continue
		}
		w := graph.ConstValue(ix, conv.Input(1))
		if w == nil || w.Rank() < 3 {
			f.skip(n, "%v's weight is not constant", conv)
			continue
		}
		cout := w.Shape[0]
		vals, ok := perChannel(cst, w.Rank(), cout)
		if !ok {
			f.skip(n, "the constant of shape %v is not per output channel", cst.Shape)
			continue
		}
		var scale, shift []float64
		if n.OpType == "Mul" {
			scale, shift = vals, make([]float64, cout)
		} else {
			scale, shift = make([]float64, cout), vals
			for i := range scale {
				scale[i] = 1
			}
		}
		if !f.foldIntoConv(ix, conv, scale, shift, n) {
			continue
		}
		conv.Outputs[0] = n.Output(0)
		f.g.RemoveNode(n)
		f.count("Conv+" + n.OpType)
		ix = f.g.Index()
	}
}

// matMulAddToGemm rewrites MatMul(A 2-D, B constant 2-D) followed by Add of
// a constant [N] or [1,N] bias into one Gemm.
func (f *fuser) matMulAddToGemm() {
	ix := f.g.Index()
	for _, add := range f.g.Nodes {
		if add.OpType != "Add" || !graph.IsDefaultDomain(add.Domain) || len(add.Inputs) != 2 {
			continue
		}
		var mm *graph.Node
		var bias *graph.Value
		for i := 0; i < 2; i++ {
			p := ix.Producer[add.Input(i)]
			if p != nil && p.OpType == "MatMul" && graph.IsDefaultDomain(p.Domain) && p.Output(0) == add.Input(i) {
				mm, bias = p, add.Input(1-i)
				break
			}
		}
		if mm == nil {
			continue
		}
		a := mm.Input(0)
		b := graph.ConstValue(ix, mm.Input(1))
		c := graph.ConstValue(ix, bias)
		if a == nil || len(a.Shape) != 2 || b == nil || b.Rank() != 2 || c == nil || c.DType != tensor.Float32 {
			f.skip(add, "MatMul+Add needs a 2-D input, a constant 2-D weight and a constant bias")
			continue
		}
		n := b.Shape[1]
		if !(c.Rank() == 1 && c.Shape[0] == n) && !(c.Rank() == 2 && c.Shape[0] == 1 && c.Shape[1] == n) {
			f.skip(add, "bias shape %v is not [%d]", c.Shape, n)
			continue
		}
		if !ix.SingleUse(mm.Output(0)) {
			f.skip(add, "%v's output has another consumer", mm)
			continue
		}
		mm.OpType = "Gemm"
		if len(mm.Inputs) < 3 {
			mm.Inputs = append(mm.Inputs, nil)
		}
		mm.Inputs[2] = bias
		mm.Outputs[0] = add.Output(0)
		f.g.RemoveNode(add)
		f.count("MatMul+Add")
		ix = f.g.Index()
	}
}
