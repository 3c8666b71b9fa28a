package convert

import (
	"fmt"

	"github.com/qtool/qtool/internal/graph"
	"github.com/qtool/qtool/internal/tensor"
)

// qopWriter rebuilds the node list with integer operators. Every original
// value keeps its *graph.Value (and name) as its float form; its quantized
// form is a new value made when first needed (by the quantized producer or
// by a QuantizeLinear), and its float form is remade by a DequantizeLinear
// when a float node or a graph output needs it.
type qopWriter struct {
	p    *plan
	nm   *graph.Namer
	cs   *consts
	out  []*graph.Node
	qv   map[*graph.Value]*graph.Value
	hasF map[*graph.Value]bool
	// isDQ marks float forms that are the dequantized quantized form (not
	// the float value before quantization).
	isDQ map[*graph.Value]bool
}

func (w *qopWriter) add(n *graph.Node) { w.out = append(w.out, n) }

// getQ returns v's quantized form, quantizing its float form if needed.
func (w *qopWriter) getQ(v *graph.Value) (*graph.Value, error) {
	if q, ok := w.qv[v]; ok {
		return q, nil
	}
	q, ok := w.p.qp[v]
	if !ok {
		return nil, fmt.Errorf("activation %q has no qparams", v.Name)
	}
	s, z := w.cs.qpValues(q)
	vq := valueLike(w.nm, v.Name+"_quantized", v, q.dt)
	qn := &graph.Node{Name: w.nm.Name(v.Name + "_QuantizeLinear"), OpType: "QuantizeLinear", Inputs: []*graph.Value{v, s, z}, Outputs: []*graph.Value{vq}}
	w.p.setQDQDomain(q.dt, qn)
	w.add(qn)
	w.qv[v] = vq
	return vq, nil
}

// needF makes sure v's float form is computed.
func (w *qopWriter) needF(v *graph.Value) {
	if v == nil || w.hasF[v] {
		return
	}
	vq, ok := w.qv[v]
	if !ok {
		return
	}
	q := w.p.qp[v]
	s, z := w.cs.qpValues(q)
	dn := &graph.Node{Name: w.nm.Name(v.Name + "_DequantizeLinear"), OpType: "DequantizeLinear", Inputs: []*graph.Value{vq, s, z}, Outputs: []*graph.Value{v}}
	w.p.setQDQDomain(q.dt, dn)
	w.add(dn)
	w.hasF[v] = true
	w.isDQ[v] = true
}

// newQOut makes the quantized output value of a converted node.
func (w *qopWriter) newQOut(v *graph.Value) *graph.Value {
	vq := valueLike(w.nm, v.Name+"_quantized", v, w.p.qp[v].dt)
	w.qv[v] = vq
	return vq
}

func (p *plan) emitQOperator() error {
	g := p.g
	nm := g.NewNamer()
	w := &qopWriter{p: p, nm: nm, cs: newConsts(g, nm), qv: map[*graph.Value]*graph.Value{}, hasF: map[*graph.Value]bool{}, isDQ: map[*graph.Value]bool{}}
	for _, v := range g.Inputs {
		w.hasF[v] = true
	}
	for _, v := range g.Initializers {
		w.hasF[v] = true
	}
	for _, n := range g.Nodes {
		if err := w.node(n); err != nil {
			return fmt.Errorf("%v: %v", n, err)
		}
	}
	for _, v := range g.Outputs {
		w.needF(v)
	}
	g.Nodes = w.out
	return nil
}

func (w *qopWriter) float(n *graph.Node) {
	for _, v := range append(append([]*graph.Value(nil), n.Inputs...), n.SubgraphInputs()...) {
		w.needF(v)
	}
	for _, v := range n.Outputs {
		if v != nil {
			w.hasF[v] = true
		}
	}
	w.add(n)
}

func (w *qopWriter) node(n *graph.Node) error {
	p := w.p
	k := p.kind[n]
	if p.touches16(n) {
		return w.qdq16(n)
	}
	if k == kFloat || k == kFixed && n.OpType == "Softmax" || p.qdqInQOperator(n) {
		w.float(n)
		return nil
	}
	out := n.Outputs[0]
	qins := make([]*graph.Value, 0, len(n.Inputs))
	if k != kWeighted {
		for _, v := range n.Inputs {
			if v == nil || (k == kPass && len(qins) > 0) {
				break
			}
			q, err := w.getQ(v)
			if err != nil {
				return err
			}
			qins = append(qins, q)
		}
	}
	qpv := func(v *graph.Value) []*graph.Value {
		s, z := w.cs.qpValues(p.qp[v])
		return []*graph.Value{s, z}
	}
	ms := func(op string, inputs []*graph.Value, attrs ...*graph.Attribute) {
		p.usedMS = true
		w.add(&graph.Node{Name: w.nm.Name(n.Name + "_quant"), OpType: op, Domain: MSDomain, Inputs: inputs, Outputs: []*graph.Value{w.newQOut(out)}, Attrs: attrs})
	}
	switch k {
	case kPass:
		m := &graph.Node{Name: n.Name, OpType: n.OpType, Domain: n.Domain, Attrs: n.Attrs, DocString: n.DocString}
		m.Inputs = append([]*graph.Value{qins[0]}, n.Inputs[1:]...)
		for _, v := range n.Inputs[1:] {
			w.needF(v)
		}
		m.Outputs = []*graph.Value{w.newQOut(out)}
		w.add(m)
	case kBinary:
		in := append(append([]*graph.Value{qins[0]}, qpv(n.Inputs[0])...), qins[1])
		in = append(append(in, qpv(n.Inputs[1])...), qpv(out)...)
		ms("QLinear"+n.OpType, in)
	case kConcat:
		axis, err := n.AttrInt("axis", 0)
		if err != nil {
			return err
		}
		in := qpv(out)
		for i, v := range n.Inputs {
			in = append(append(in, qins[i]), qpv(v)...)
		}
		ms("QLinearConcat", in, graph.IntAttr("axis", axis))
	case kPool:
		in := append(append([]*graph.Value{qins[0]}, qpv(n.Inputs[0])...), qpv(out)...)
		attrs := append([]*graph.Attribute{}, n.Attrs...)
		ms("QLinear"+n.OpType, in, attrs...)
	case kUnary:
		in := append(append([]*graph.Value{qins[0]}, qpv(n.Inputs[0])...), qpv(out)...)
		ms("QLinearLeakyRelu", in, n.Attrs...)
	case kFixed: // Sigmoid
		in := append(append([]*graph.Value{qins[0]}, qpv(n.Inputs[0])...), qpv(out)...)
		ms("QLinearSigmoid", in)
	case kWeighted:
		return w.weighted(n)
	default:
		return fmt.Errorf("unexpected node kind %d", k)
	}
	return nil
}

func (w *qopWriter) weighted(n *graph.Node) error {
	p := w.p
	out := n.Outputs[0]
	x := n.Inputs[0]
	xq, err := w.getQ(x)
	if err != nil {
		return err
	}
	xs, xz := w.cs.qpValues(p.qp[x])
	ys, yz := w.cs.qpValues(p.qp[out])
	b := n.Input(1)
	if b.Const == nil { // MatMul of two activations
		bq, err := w.getQ(b)
		if err != nil {
			return err
		}
		bs, bz := w.cs.qpValues(p.qp[b])
		w.add(&graph.Node{Name: w.nm.Name(n.Name + "_quant"), OpType: "QLinearMatMul", Inputs: []*graph.Value{xq, xs, xz, bq, bs, bz, ys, yz}, Outputs: []*graph.Value{w.newQOut(out)}})
		return nil
	}
	spec := p.spec[n].Weight
	if n.OpType == "MatMul" {
		// QLinearMatMul takes per-column B scales in the ONNX spec, but
		// ONNX Runtime's kernel takes only a per-tensor B; stay portable.
		spec.Granularity = "per_tensor"
	}
	qw := p.fixedW[b]
	if qw == nil || (qw.axis >= 0 && (qw.axis != weightAxis(n) || n.OpType == "MatMul")) || qw.data.DType != tensor.Int8 {
		// Not folded, or in a form the integer op cannot take: quantize
		// the (dequantized) float weight again.
		var err error
		if qw, err = p.weightFor(n, b.Const, b.Name, spec); err != nil {
			return err
		}
	}
	wd, ws, wz := w.cs.weightValues(b.Name, qw)
	var bias *graph.Value
	if c := n.Input(2); c != nil {
		bt := c.Const
		if bt.Rank() == 2 {
			bt = &tensor.Tensor{DType: tensor.Float32, Shape: []int{bt.Len()}, Data: bt.F32()}
		}
		bias, _, _, _ = w.cs.biasValues(c.Name, bt, p.qp[x].scale, qw)
	}
	switch n.OpType {
	case "Conv":
		in := []*graph.Value{xq, xs, xz, wd, ws, wz, ys, yz}
		if bias != nil {
			in = append(in, bias)
		}
		w.add(&graph.Node{Name: w.nm.Name(n.Name + "_quant"), OpType: "QLinearConv", Inputs: in, Outputs: []*graph.Value{w.newQOut(out)}, Attrs: n.Attrs})
	case "MatMul":
		w.add(&graph.Node{Name: w.nm.Name(n.Name + "_quant"), OpType: "QLinearMatMul", Inputs: []*graph.Value{xq, xs, xz, wd, ws, wz, ys, yz}, Outputs: []*graph.Value{w.newQOut(out)}})
	case "Gemm":
		p.usedMS = true
		var attrs []*graph.Attribute
		if tb, _ := n.AttrInt("transB", 0); tb != 0 {
			attrs = append(attrs, graph.IntAttr("transB", 1))
		}
		in := []*graph.Value{xq, xs, xz, wd, ws, wz, bias, ys, yz}
		w.add(&graph.Node{Name: w.nm.Name(n.Name + "_quant"), OpType: "QGemm", Domain: MSDomain, Inputs: in, Outputs: []*graph.Value{w.newQOut(out)}, Attrs: attrs})
	}
	return nil
}

// touches16 reports a quantized node that reads or writes a 16-bit
// activation: no QLinear operator takes 16-bit tensors, so in QOperator
// form it is written as in QDQ form (DQ → float op → Q, int8 weights and
// int32 bias behind DequantizeLinear) while the 8-bit nodes around it
// become QLinear operators.
func (p *plan) touches16(n *graph.Node) bool {
	if p.kind[n] == kFloat {
		return false
	}
	for _, vs := range [][]*graph.Value{n.Inputs, n.Outputs} {
		for _, v := range vs {
			if q, ok := p.qp[v]; ok && v != nil && is16(q.dt) {
				return true
			}
		}
	}
	return false
}

// qdq16 writes a node of touches16 with the QDQ form's semantics: every
// quantized input is the dequantized quantized value, every quantized
// output is quantized and dequantized after the float op.
func (w *qopWriter) qdq16(n *graph.Node) error {
	p := w.p
	m := &graph.Node{Name: n.Name, OpType: n.OpType, Domain: n.Domain, Attrs: n.Attrs, DocString: n.DocString,
		Inputs: append([]*graph.Value(nil), n.Inputs...)}
	for i, v := range m.Inputs {
		if v == nil {
			continue
		}
		if _, ok := p.qp[v]; !ok || (p.kind[n] == kWeighted && i > 0 && v.Const != nil) {
			w.needF(v)
			continue
		}
		switch {
		case w.isDQ[v]:
		case !w.hasF[v]:
			w.needF(v) // v := DQ(quantized v)
		default:
			// v is a float value (a graph input, a float node's output):
			// quantize it and read the dequantized copy.
			vq, err := w.getQ(v)
			if err != nil {
				return err
			}
			q := p.qp[v]
			s, z := w.cs.qpValues(q)
			vd := valueLike(w.nm, v.Name+"_dequantized", v, tensor.Float32)
			dn := &graph.Node{Name: w.nm.Name(v.Name + "_DequantizeLinear"), OpType: "DequantizeLinear", Inputs: []*graph.Value{vq, s, z}, Outputs: []*graph.Value{vd}}
			p.setQDQDomain(q.dt, dn)
			w.add(dn)
			m.Inputs[i] = vd
		}
	}
	if p.kind[n] == kWeighted && m.Inputs[1].Const != nil {
		if err := w.weightDQ(n, m); err != nil {
			return err
		}
	}
	out := n.Outputs[0]
	q, ok := p.qp[out]
	if !ok {
		return fmt.Errorf("output %q has no qparams", out.Name)
	}
	pre := valueLike(w.nm, out.Name+"_float", out, tensor.Float32)
	m.Outputs = []*graph.Value{pre}
	w.add(m)
	s, z := w.cs.qpValues(q)
	vq := valueLike(w.nm, out.Name+"_quantized", out, q.dt)
	qn := &graph.Node{Name: w.nm.Name(out.Name + "_QuantizeLinear"), OpType: "QuantizeLinear", Inputs: []*graph.Value{pre, s, z}, Outputs: []*graph.Value{vq}}
	dn := &graph.Node{Name: w.nm.Name(out.Name + "_DequantizeLinear"), OpType: "DequantizeLinear", Inputs: []*graph.Value{vq, s, z}, Outputs: []*graph.Value{out}}
	p.setQDQDomain(q.dt, qn, dn)
	w.add(qn)
	w.add(dn)
	w.qv[out] = vq
	w.hasF[out], w.isDQ[out] = true, true
	return nil
}

// weightDQ gives m (the copy of weighted node n) its int8 weight and int32
// bias behind DequantizeLinear, as emitQDQ does.
func (w *qopWriter) weightDQ(n, m *graph.Node) error {
	p := w.p
	wv := n.Inputs[1]
	qw, err := p.weightFor(n, wv.Const, wv.Name, p.spec[n].Weight)
	if err != nil {
		return err
	}
	data, s, z := w.cs.weightValues(wv.Name, qw)
	wdq := valueLike(w.nm, wv.Name+"_dequantized", wv, tensor.Float32)
	dn := &graph.Node{Name: w.nm.Name(wv.Name + "_DequantizeLinear"), OpType: "DequantizeLinear", Inputs: []*graph.Value{data, s, z}, Outputs: []*graph.Value{wdq}}
	if qw.axis >= 0 {
		dn.Attrs = []*graph.Attribute{graph.IntAttr("axis", int64(qw.axis))}
	}
	w.add(dn)
	m.Inputs[1] = wdq
	if b := n.Input(2); b != nil && biasFits(b.Const, p.qp[n.Inputs[0]].scale, qw.scales) {
		bt := b.Const
		if bt.Rank() == 2 {
			bt = &tensor.Tensor{DType: tensor.Float32, Shape: []int{bt.Len()}, Data: bt.F32()}
		}
		bdata, bs, bz, perAxis := w.cs.biasValues(b.Name, bt, p.qp[n.Inputs[0]].scale, qw)
		bdq := &graph.Value{Name: w.nm.Name(b.Name + "_dequantized"), DType: tensor.Float32, Shape: graph.KnownShape(bt.Len())}
		bn := &graph.Node{Name: w.nm.Name(b.Name + "_DequantizeLinear"), OpType: "DequantizeLinear", Inputs: []*graph.Value{bdata, bs, bz}, Outputs: []*graph.Value{bdq}}
		if perAxis {
			bn.Attrs = []*graph.Attribute{graph.IntAttr("axis", 0)}
		}
		w.add(bn)
		m.Inputs[2] = bdq
	}
	return nil
}
