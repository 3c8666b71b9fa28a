package convert

import (
	"fmt"

	"github.com/qtool/qtool/internal/graph"
	"github.com/qtool/qtool/internal/tensor"
)

// consts hands out scale and zero-point initializers, one per distinct
// value, so that a model with many Q/DQ pairs does not repeat them.
type consts struct {
	g  *graph.Graph
	nm *graph.Namer
	m  map[string]*graph.Value
}

func newConsts(g *graph.Graph, nm *graph.Namer) *consts {
	return &consts{g: g, nm: nm, m: map[string]*graph.Value{}}
}

func (c *consts) scalar(base string, t *tensor.Tensor) *graph.Value {
	key := fmt.Sprintf("%v|%v|%v", t.DType, t.Shape, t.Data)
	if v, ok := c.m[key]; ok {
		return v
	}
	v := c.g.AddInitializer(c.nm, base, t)
	c.m[key] = v
	return v
}

func (c *consts) scale(s float32) *graph.Value {
	return c.scalar("scale", &tensor.Tensor{DType: tensor.Float32, Shape: []int{}, Data: []float32{s}})
}

func zpTensor(dt tensor.DType, shape []int, zps []int32) *tensor.Tensor {
	t := tensor.MustNew(dt, shape)
	for i, z := range zps {
		switch dt {
		case tensor.Uint8:
			t.U8()[i] = uint8(z)
		case tensor.Int8:
			t.I8()[i] = int8(z)
		case tensor.Int32:
			t.I32()[i] = z
		case tensor.Uint16:
			t.Data.([]uint16)[i] = uint16(z)
		case tensor.Int16:
			t.Data.([]int16)[i] = int16(z)
		}
	}
	return t
}

func (c *consts) zp(dt tensor.DType, z int32) *graph.Value {
	return c.scalar("zero_point", zpTensor(dt, []int{}, []int32{z}))
}

// qpValues returns the scale and zero-point initializers of q.
func (c *consts) qpValues(q qparam) (*graph.Value, *graph.Value) {
	return c.scale(q.scale), c.zp(q.dt, q.zp)
}

// weightValues adds a quantized weight's data, scales and zero points.
func (c *consts) weightValues(base string, w *qweight) (data, scale, zp *graph.Value) {
	data = c.g.AddInitializer(c.nm, base+"_quantized", w.data)
	if w.axis < 0 {
		return data, c.scale(w.scales[0]), c.zp(w.data.DType, w.zps[0])
	}
	n := len(w.scales)
	scale = c.g.AddInitializer(c.nm, base+"_scale", tensor.FromFloat32([]int{n}, append([]float32(nil), w.scales...)))
	zp = c.g.AddInitializer(c.nm, base+"_zero_point", zpTensor(w.data.DType, []int{n}, w.zps))
	return data, scale, zp
}

// biasValues adds an int32 bias and its per-channel (or per-tensor) scale.
func (c *consts) biasValues(base string, b *tensor.Tensor, sa float32, w *qweight) (data, scale, zp *graph.Value, perAxis bool) {
	q, scales := quantizeBias(b, sa, w.scales)
	data = c.g.AddInitializer(c.nm, base+"_quantized", q)
	if w.axis < 0 {
		return data, c.scale(scales[0]), c.zp(tensor.Int32, 0), false
	}
	scale = c.g.AddInitializer(c.nm, base+"_scale", tensor.FromFloat32([]int{len(scales)}, scales))
	zp = c.g.AddInitializer(c.nm, base+"_zero_point", zpTensor(tensor.Int32, []int{len(scales)}, make([]int32, len(scales))))
	return data, scale, zp, true
}

func valueLike(nm *graph.Namer, base string, like *graph.Value, dt tensor.DType) *graph.Value {
	return &graph.Value{Name: nm.Name(base), DType: dt, Shape: like.Shape}
}

// emitQDQ writes the plan as QuantizeLinear/DequantizeLinear pairs around
// the quantized nodes' activations and DequantizeLinear on their int8
// weights and int32 biases, as ONNX Runtime's quantize_static does with
// QuantFormat.QDQ. The float ops stay; a runtime that recognizes the
// pattern (ONNX Runtime, qtool) fuses them into integer kernels.
func (p *plan) emitQDQ() error {
	g := p.g
	nm := g.NewNamer()
	cs := newConsts(g, nm)
	ix := g.Index()
	isInput := map[*graph.Value]bool{}
	for _, v := range g.Inputs {
		isInput[v] = true
	}
	// Activations in a stable order: node order, then graph inputs.
	var order []*graph.Value
	seen := map[*graph.Value]bool{}
	addV := func(v *graph.Value) {
		if _, ok := p.qp[v]; ok && !seen[v] {
			seen[v] = true
			order = append(order, v)
		}
	}
	for _, v := range g.Inputs {
		addV(v)
	}
	for _, n := range g.Nodes {
		for _, v := range n.Inputs {
			addV(v)
		}
		for _, v := range n.Outputs {
			addV(v)
		}
	}
	for _, v := range order {
		q := p.qp[v]
		s, z := cs.qpValues(q)
		vq := valueLike(nm, v.Name+"_quantized", v, q.dt)
		if prod := ix.Producer[v]; prod != nil {
			// The producer writes a new value; the DequantizeLinear output
			// takes v's place (and name), so readers and graph outputs need
			// no rewiring.
			pre := valueLike(nm, v.Name+"_float", v, tensor.Float32)
			for i, o := range prod.Outputs {
				if o == v {
					prod.Outputs[i] = pre
				}
			}
			qn := &graph.Node{Name: nm.Name(v.Name + "_QuantizeLinear"), OpType: "QuantizeLinear", Inputs: []*graph.Value{pre, s, z}, Outputs: []*graph.Value{vq}}
			dn := &graph.Node{Name: nm.Name(v.Name + "_DequantizeLinear"), OpType: "DequantizeLinear", Inputs: []*graph.Value{vq, s, z}, Outputs: []*graph.Value{v}}
			p.setQDQDomain(q.dt, qn, dn)
			g.InsertNodeAfter(prod, qn)
			g.InsertNodeAfter(qn, dn)
			continue
		}
		if !isInput[v] {
			return fmt.Errorf("activation %q has no producer", v.Name)
		}
		dq := valueLike(nm, v.Name+"_dequantized", v, tensor.Float32)
		g.ReplaceAllUses(v, dq)
		for i, o := range g.Outputs {
			if o == dq {
				g.Outputs[i] = v // a graph input that is also an output stays itself
			}
		}
		qn := &graph.Node{Name: nm.Name(v.Name + "_QuantizeLinear"), OpType: "QuantizeLinear", Inputs: []*graph.Value{v, s, z}, Outputs: []*graph.Value{vq}}
		dn := &graph.Node{Name: nm.Name(v.Name + "_DequantizeLinear"), OpType: "DequantizeLinear", Inputs: []*graph.Value{vq, s, z}, Outputs: []*graph.Value{dq}}
		p.setQDQDomain(q.dt, qn, dn)
		g.Nodes = append([]*graph.Node{qn, dn}, g.Nodes...)
	}
	// Weights and biases.
	for _, n := range append([]*graph.Node(nil), g.Nodes...) {
		if p.kind[n] != kWeighted {
			continue
		}
		w := n.Input(1)
		if w.Const == nil {
			continue // MatMul of two activations
		}
		qw, err := p.weightFor(n, w.Const, w.Name, p.spec[n].Weight)
		if err != nil {
			return fmt.Errorf("%v: %v", n, err)
		}
		data, s, z := cs.weightValues(w.Name, qw)
		wdq := valueLike(nm, w.Name+"_dequantized", w, tensor.Float32)
		dn := &graph.Node{Name: nm.Name(w.Name + "_DequantizeLinear"), OpType: "DequantizeLinear", Inputs: []*graph.Value{data, s, z}, Outputs: []*graph.Value{wdq}}
		if qw.axis >= 0 {
			dn.Attrs = []*graph.Attribute{graph.IntAttr("axis", int64(qw.axis))}
		}
		g.InsertNodeBefore(n, dn)
		n.Inputs[1] = wdq
		if b := n.Input(2); b != nil && biasFits(b.Const, p.qp[origInput(p, n)].scale, qw.scales) {
			sa := p.qp[origInput(p, n)].scale
			bt := b.Const
			if bt.Rank() == 2 {
				bt = &tensor.Tensor{DType: tensor.Float32, Shape: []int{bt.Len()}, Data: bt.F32()}
			}
			bdata, bs, bz, perAxis := cs.biasValues(b.Name, bt, sa, qw)
			bdq := &graph.Value{Name: nm.Name(b.Name + "_dequantized"), DType: tensor.Float32, Shape: graph.KnownShape(bt.Len())}
			bn := &graph.Node{Name: nm.Name(b.Name + "_DequantizeLinear"), OpType: "DequantizeLinear", Inputs: []*graph.Value{bdata, bs, bz}, Outputs: []*graph.Value{bdq}}
			if perAxis {
				bn.Attrs = []*graph.Attribute{graph.IntAttr("axis", 0)}
			}
			g.InsertNodeBefore(n, bn)
			n.Inputs[2] = bdq
		}
	}
	return nil
}

// setQDQDomain moves a 16-bit Q/DQ pair to com.microsoft below opset 21.
func (p *plan) setQDQDomain(dt tensor.DType, nodes ...*graph.Node) {
	if d := qdqDomain(p.g, dt); d != "" {
		for _, n := range nodes {
			n.Domain = d
		}
		p.usedMS = true
	}
}

// origInput is the activation input of a weighted node before QDQ rewired
// it to a DequantizeLinear output: the qparams are keyed by the original.
func origInput(p *plan, n *graph.Node) *graph.Value {
	v := n.Inputs[0]
	if _, ok := p.qp[v]; ok {
		return v
	}
	// A graph input was replaced by its DequantizeLinear output.
	for _, m := range p.g.Nodes {
		if m.OpType == "DequantizeLinear" && len(m.Outputs) == 1 && m.Outputs[0] == v {
			for _, q := range p.g.Nodes {
				if q.OpType == "QuantizeLinear" && q.Outputs[0] == m.Inputs[0] {
					return q.Inputs[0]
				}
			}
		}
	}
	return v
}
