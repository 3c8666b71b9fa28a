package convert

import (
	"fmt"

	"github.com/qtool/qtool/internal/graph"
	"github.com/qtool/qtool/internal/tensor"
)

// IsQDQ reports whether g already holds QuantizeLinear/DequantizeLinear
// pairs (a model quantized by PyTorch QAT, ONNX Runtime or qtool).
func IsQDQ(g *graph.Graph) bool {
	for _, n := range g.Nodes {
		if n.OpType == "DequantizeLinear" && graph.IsDefaultDomain(n.Domain) {
			return true
		}
	}
	return false
}

// FoldQDQ rewrites a QDQ model into QOperator form without recalibrating:
// the activation qparams are those of its QuantizeLinear nodes, and the
// weights keep their int8 values, scales and zero points. Biases are
// requantized with scale sa·sw, which reproduces an int32 bias written with
// that scale.
func FoldQDQ(g *graph.Graph, cfg Config) (*Report, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	ix := g.Index()
	qp := map[*graph.Value]qparam{}
	fixed := map[*graph.Value]*qweight{}
	scalarQP := func(n *graph.Node) (qparam, bool) {
		s := graph.ConstValue(ix, n.Input(1))
		z := graph.ConstValue(ix, n.Input(2))
		if s == nil || s.DType != tensor.Float32 || s.Len() != 1 {
			return qparam{}, false
		}
		q := qparam{scale: s.F32()[0], dt: tensor.Uint8}
		if z != nil {
			if z.Len() != 1 {
				return qparam{}, false
			}
			q.dt = z.DType
			switch z.DType {
			case tensor.Uint8:
				q.zp = int32(z.U8()[0])
			case tensor.Int8:
				q.zp = int32(z.I8()[0])
			default:
				return qparam{}, false
			}
		}
		return q, true
	}
	removed := map[*graph.Node]bool{}
	for _, dq := range g.Nodes {
		if dq.OpType != "DequantizeLinear" || !graph.IsDefaultDomain(dq.Domain) {
			continue
		}
		in, out := dq.Input(0), dq.Outputs[0]
		if c := graph.ConstValue(ix, in); c != nil {
			// A constant (weight or bias): put the float values back, and
			// remember the integer form of 8-bit weights.
			s := graph.ConstValue(ix, dq.Input(1))
			if s == nil || s.DType != tensor.Float32 {
				return nil, fmt.Errorf("%v: scale is not a float constant", dq)
			}
			var zps []int32
			if z := graph.ConstValue(ix, dq.Input(2)); z != nil {
				zps = intsOf(z)
			} else {
				zps = make([]int32, s.Len())
			}
			axis := -1
			if s.Len() > 1 {
				a, _ := dq.AttrInt("axis", 1)
				if a < 0 {
					a += int64(c.Rank())
				}
				axis = int(a)
			}
			qt := &tensor.QTensor{Data: c, Scheme: tensor.PerTensorAffine, Scales: s.F32(), ZeroPoints: zps, Axis: max(axis, 0)}
			if axis >= 0 {
				qt.Scheme = tensor.PerChannelAffine
			}
			f := qt.Dequantize()
			out.Const, out.DType, out.Shape = f, tensor.Float32, graph.KnownShape(f.Shape...)
			g.Initializers = append(g.Initializers, out)
			if c.DType == tensor.Int8 || c.DType == tensor.Uint8 {
				fixed[out] = &qweight{data: c, scales: s.F32(), zps: zps, axis: axis}
			}
			removed[dq] = true
			continue
		}
		qn := ix.Producer[in]
		if qn == nil || qn.OpType != "QuantizeLinear" {
			continue
		}
		q, ok := scalarQP(qn)
		if !ok {
			continue // per-axis activations: left as they are
		}
		x := qn.Input(0)
		qp[x] = q
		g.ReplaceAllUses(out, x)
		if ix.Outputs[out] && ix.Producer[x] != nil {
			x.Name = out.Name // a graph output keeps its name
		}
		removed[dq] = true
		if len(ix.Consumers[qn.Outputs[0]]) == 1 {
			removed[qn] = true
		}
	}
	var keep []*graph.Node
	for _, n := range g.Nodes {
		if !removed[n] {
			keep = append(keep, n)
		}
	}
	g.Nodes = keep
	pruneUnused(g)
	p := &plan{g: g, cfg: cfg, format: FormatQOperator, qp: qp, fixedW: fixed,
		kind: map[*graph.Node]nodeKind{}, spec: map[*graph.Node]NodeSpec{}, rep: newReport()}
	return p.run()
}

func intsOf(t *tensor.Tensor) []int32 {
	out := make([]int32, t.Len())
	for i := range out {
		switch t.DType {
		case tensor.Uint8:
			out[i] = int32(t.U8()[i])
		case tensor.Int8:
			out[i] = int32(t.I8()[i])
		case tensor.Int32:
			out[i] = t.I32()[i]
		}
	}
	return out
}
