package fuse

import (
	"fmt"

	"github.com/qtool/qtool/internal/graph"
	"github.com/qtool/qtool/internal/runtime"
	"github.com/qtool/qtool/internal/tensor"
)

// noFold lists ops never evaluated at fuse time: quantization boundaries
// (QDQ models keep DequantizeLinear on their weights, which is how the
// quantizer finds them), random ops, and ops that make large tensors out of
// small inputs (folding them would bloat the model).
var noFold = map[string]bool{
	"QuantizeLinear": true, "DequantizeLinear": true, "DynamicQuantizeLinear": true,
	"RandomNormal": true, "RandomUniform": true, "RandomNormalLike": true,
	"RandomUniformLike": true, "Multinomial": true, "Bernoulli": true,
	"ConstantOfShape": true, "Expand": true, "Tile": true, "Range": true,
	"Resize": true, "Upsample": true, "Pad": true, "If": true, "Loop": true, "Scan": true,
}

// maxFoldElements bounds a folded tensor: folding is for shape arithmetic
// and small parameter transforms, not for materialising activations.
const maxFoldElements = 1 << 22

// foldConstants evaluates nodes whose inputs are all constant, and Shape/Size
// of values whose shape is fully known, replacing them with initializers.
func (f *fuser) foldConstants() error {
	ctx := &runtime.Context{Threads: 1}
	for changed := true; changed; {
		changed = false
		ix := f.g.Index()
		for _, n := range f.g.Nodes {
			if !graph.IsDefaultDomain(n.Domain) || noFold[n.OpType] || len(n.Subgraphs()) > 0 {
				continue
			}
			outs, ok, err := f.evalConst(ctx, ix, n)
			if err != nil {
				return err
			}
			if !ok {
				continue
			}
			for i, v := range n.Outputs {
				if v == nil || outs[i] == nil {
					continue
				}
				c := &graph.Value{Name: f.nm.Name(v.Name + "_folded"), DType: outs[i].DType,
					Shape: graph.KnownShape(outs[i].Shape...), Const: outs[i]}
				if ix.Outputs[v] {
					// Keep a graph output's name: the value itself becomes
					// the initializer.
					v.Const, v.DType, v.Shape = outs[i], outs[i].DType, c.Shape
					f.g.Initializers = append(f.g.Initializers, v)
					continue
				}
				f.g.Initializers = append(f.g.Initializers, c)
				f.g.ReplaceAllUses(v, c)
			}
			f.g.RemoveNode(n)
			f.count("constant folded")
			changed = true
		}
	}
	return nil
}

// evalConst runs n if its inputs are constants (or, for Shape and Size, if
// its input's shape is known) and the result is small.
func (f *fuser) evalConst(ctx *runtime.Context, ix *graph.Index, n *graph.Node) ([]*tensor.Tensor, bool, error) {
	if n.OpType == "Shape" || n.OpType == "Size" {
		return shapeOf(n)
	}
	if n.OpType == "Constant" {
		return nil, false, nil // already a constant; the runtime reads it directly
	}
	if len(n.Inputs) == 0 {
		return nil, false, nil
	}
	in := make([]*tensor.Tensor, len(n.Inputs))
	for i, v := range n.Inputs {
		if v == nil {
			continue
		}
		c := graph.ConstValue(ix, v)
		if c == nil {
			return nil, false, nil
		}
		in[i] = c
	}
	dt := tensor.Undefined
	if in[0] != nil {
		dt = in[0].DType
	}
	fac, ok := runtime.Lookup(n.Domain, n.OpType, dt)
	if !ok {
		return nil, false, nil
	}
	k, err := fac(n, f.g.Opset(n.Domain))
	if err != nil {
		return nil, false, nil // the runtime will report it when run
	}
	outs, err := k.Run(ctx, in)
	if err != nil {
		return nil, false, nil
	}
	for _, o := range outs {
		if o != nil && o.Len() > maxFoldElements {
			return nil, false, nil
		}
	}
	if len(outs) != len(n.Outputs) {
		return nil, false, fmt.Errorf("fuse: %v: kernel returned %d outputs for %d", n, len(outs), len(n.Outputs))
	}
	return outs, true, nil
}

// shapeOf folds Shape (with opset-15 start/end) and Size of a value whose
// dims are all known.
func shapeOf(n *graph.Node) ([]*tensor.Tensor, bool, error) {
	x := n.Input(0)
	if x == nil {
		return nil, false, nil
	}
	dims, ok := x.Shape.Ints()
	if !ok {
		return nil, false, nil
	}
	if n.OpType == "Size" {
		total := int64(1)
		for _, d := range dims {
			total *= int64(d)
		}
		return []*tensor.Tensor{{DType: tensor.Int64, Shape: []int{}, Data: []int64{total}}}, true, nil
	}
	r := int64(len(dims))
	start, err := n.AttrInt("start", 0)
	if err != nil {
		return nil, false, nil
	}
	end, err := n.AttrInt("end", r)
	if err != nil {
		return nil, false, nil
	}
	clampAxis := func(a int64) int64 {
		if a < 0 {
			a += r
		}
		if a < 0 {
			a = 0
		}
		if a > r {
			a = r
		}
		return a
	}
	start, end = clampAxis(start), clampAxis(end)
	var out []int64
	for i := start; i < end; i++ {
		out = append(out, int64(dims[i]))
	}
	if out == nil {
		out = []int64{}
	}
	return []*tensor.Tensor{tensor.FromInt64([]int{len(out)}, out)}, true, nil
}
