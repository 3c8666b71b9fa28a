package qdq

import (
	"math"

	"github.com/qtool/qtool/internal/graph"
	"github.com/qtool/qtool/internal/tensor"
)

// qtoolDomain holds qtool's own ops (ops/qlinear's MaxPool2d).
const qtoolDomain = "com.qtool"

// qparams are the constant scale and zero point of one DQ or Q node.
type qparams struct {
	node  *graph.Node
	x     *graph.Value // the quantized tensor (DQ input) or float input (Q)
	scale *graph.Value
	zp    *graph.Value // never nil: a zero of the right type is made when absent
	dt    tensor.DType // Uint8 or Int8
	n     int          // number of scales (1 = per tensor)
	axis  int64
}

func (p *qparams) perTensor() bool { return p.n == 1 }

// zpAt returns zero point i (or the only one).
func (p *qparams) zpAt(i int) int32 {
	t := p.zp.Const
	if t.Len() == 1 {
		i = 0
	}
	if t.DType == tensor.Uint8 {
		return int32(t.U8()[i])
	}
	return int32(t.I8()[i])
}

func (p *qparams) scaleAt(i int) float32 {
	if p.scale.Const.Len() == 1 {
		i = 0
	}
	return p.scale.Const.F32()[i]
}

func (p *qparams) qrange() (int32, int32) {
	if p.dt == tensor.Uint8 {
		return 0, 255
	}
	return -128, 127
}

// sameAs reports whether two per-tensor qparams are bit-identical, the
// condition for a DQ/Q pair around a data-movement op to cancel exactly.
func (p *qparams) sameAs(o *qparams) bool {
	return p.perTensor() && o.perTensor() && p.dt == o.dt &&
		math.Float32bits(p.scaleAt(0)) == math.Float32bits(o.scaleAt(0)) && p.zpAt(0) == o.zpAt(0)
}

// params reads the qparams of a DQ or Q node when they are constants of a
// form the integer kernels take (uint8/int8, float32 scales).
func (r *rewriter) params(n *graph.Node) (*qparams, bool) {
	if !isOp(n, "DequantizeLinear") && !isOp(n, "QuantizeLinear") {
		return nil, false
	}
	if len(n.Inputs) < 2 || n.Inputs[0] == nil || n.Inputs[1] == nil || len(n.Outputs) != 1 {
		return nil, false
	}
	s := n.Inputs[1].Const
	if s == nil || s.DType != tensor.Float32 || s.Rank() > 1 || s.Len() < 1 || s.Validate() != nil {
		return nil, false
	}
	for _, f := range s.F32() {
		if !(f > 0) || math.IsInf(float64(f), 0) {
			return nil, false
		}
	}
	p := &qparams{node: n, x: n.Inputs[0], scale: n.Inputs[1], n: s.Len()}
	axis, err := n.AttrInt("axis", 1)
	if err != nil {
		return nil, false
	}
	p.axis = axis
	if z := n.Input(2); z != nil {
		if z.Const == nil || z.Const.Validate() != nil || (z.Const.Len() != 1 && z.Const.Len() != s.Len()) {
			return nil, false
		}
		p.zp, p.dt = z, z.Const.DType
	} else {
		p.dt = tensor.Uint8
		if isOp(n, "DequantizeLinear") && n.Inputs[0].Const != nil {
			p.dt = n.Inputs[0].Const.DType
		}
		zt := tensor.MustNew(p.dt, []int{})
		p.zp = r.g.AddInitializer(r.nm, n.Name+"_zero_point", zt)
	}
	// 16-bit activations (convert's A16W8) have no integer kernels: their
	// groups stay DQ → float op → Q (TestRewriteLeaves16BitFloat).
	if p.dt != tensor.Uint8 && p.dt != tensor.Int8 {
		return nil, false
	}
	if isOp(n, "DequantizeLinear") && n.Inputs[0].Const != nil && n.Inputs[0].Const.DType != p.dt {
		return nil, false
	}
	return p, true
}

// dqInput returns the qparams of the DQ node producing v, requiring them to
// be per tensor (activations).
func (r *rewriter) dqInput(v *graph.Value) (*qparams, bool) {
	if v == nil {
		return nil, false
	}
	p, ok := r.params(r.ix.Producer[v])
	if !ok || !isOp(p.node, "DequantizeLinear") {
		return nil, false
	}
	return p, true
}

func (r *rewriter) act(v *graph.Value) (*qparams, bool) {
	p, ok := r.dqInput(v)
	if !ok || !p.perTensor() {
		return nil, false
	}
	return p, true
}

// weight returns the qparams of a DQ of a constant int8/uint8 tensor whose
// per-channel axis (when per channel) is axis.
func (r *rewriter) weight(v *graph.Value, axis int) (*qparams, bool) {
	p, ok := r.dqInput(v)
	if !ok || p.x.Const == nil {
		return nil, false
	}
	if !p.perTensor() {
		rank := int64(p.x.Const.Rank())
		a := p.axis
		if a < 0 {
			a += rank
		}
		if a != int64(axis) || axis >= p.x.Const.Rank() || p.x.Const.Shape[axis] != p.n {
			return nil, false
		}
	}
	return p, true
}

// bias returns the int32 constant of a DQ(int32 bias) with zero zero point.
func (r *rewriter) bias(v *graph.Value) (*graph.Value, bool) {
	dq := r.ix.Producer[v]
	if !isOp(dq, "DequantizeLinear") || dq.Input(0) == nil {
		return nil, false
	}
	b := dq.Inputs[0].Const
	if b == nil || b.DType != tensor.Int32 || b.Rank() != 1 || b.Validate() != nil {
		return nil, false
	}
	if s := dq.Input(1); s == nil || s.Const == nil || s.Const.DType != tensor.Float32 {
		return nil, false
	}
	if z := dq.Input(2); z != nil {
		if z.Const == nil || z.Const.DType != tensor.Int32 {
			return nil, false
		}
		for _, x := range z.Const.I32() {
			if x != 0 {
				return nil, false
			}
		}
	}
	return dq.Inputs[0], true
}

// activationFolds reports whether act (Relu or Clip) before Q is exactly
// Q's own clamp: ONNX Runtime's ReluQuantFusion / ClipQuantFusion
// conditions. Relu folds when Q's zero point is the type's minimum; Clip
// when its range covers everything Q can represent.
func (r *rewriter) activationFolds(act *graph.Node, q *qparams) bool {
	if !q.perTensor() {
		return false
	}
	qmin, qmax := q.qrange()
	zp, s := q.zpAt(0), q.scaleAt(0)
	if isOp(act, "Relu") {
		return zp == qmin
	}
	lo, hi := float32(math.Inf(-1)), float32(math.Inf(1))
	if a := act.Attr("min"); a != nil {
		lo = a.F
	}
	if a := act.Attr("max"); a != nil {
		hi = a.F
	}
	for i, dst := range []*float32{&lo, &hi} {
		v := act.Input(i + 1)
		if v == nil {
			continue
		}
		if v.Const == nil || v.Const.DType != tensor.Float32 || v.Const.Len() != 1 {
			return false
		}
		*dst = v.Const.F32()[0]
	}
	return lo <= float32(qmin-zp)*s && hi >= float32(qmax-zp)*s
}

// fuseAt tries every pattern ending at QuantizeLinear q.
func (r *rewriter) fuseAt(q *graph.Node) error {
	qp, ok := r.params(q)
	if !ok || !qp.perTensor() {
		return nil
	}
	p := r.ix.Producer[qp.x]
	if p == nil || !r.ix.SingleUse(qp.x) || r.dead[p] || !graph.IsDefaultDomain(p.Domain) || len(p.Outputs) < 1 {
		return nil
	}
	// Relu/Clip before Q that is exactly Q's clamp is looked through
	// whatever produces it (ONNX Runtime's ReluQuantFusion and
	// ClipQuantFusion run before its QDQ selectors); when the op before it
	// does not fuse, the activation itself is tried as the op.
	var n, op, act *graph.Node
	var err error
	if (isOp(p, "Relu") || isOp(p, "Clip")) && len(p.Inputs) > 0 && r.activationFolds(p, qp) {
		if pp := r.ix.Producer[p.Inputs[0]]; pp != nil && r.ix.SingleUse(p.Inputs[0]) && !r.dead[pp] &&
			graph.IsDefaultDomain(pp.Domain) && len(pp.Outputs) == 1 {
			if n, err = r.fuseOp(pp, qp); err != nil {
				return err
			}
			if n != nil {
				op, act = pp, p
			}
		}
	}
	if n == nil {
		if n, err = r.fuseOp(p, qp); err != nil || n == nil {
			return err
		}
		op = p
	}
	// The new node takes over Q's output value, so graph output names and
	// every reader stay as they were.
	n.Outputs = q.Outputs
	r.g.InsertNodeBefore(q, n)
	r.dead[q], r.dead[op] = true, true
	if act != nil {
		r.dead[act] = true
		r.rep.FoldedActivations++
	}
	return nil
}

func (r *rewriter) fuseOp(op *graph.Node, qp *qparams) (*graph.Node, error) {
	switch op.OpType {
	case "Conv":
		return r.conv(op, qp)
	case "Gemm":
		return r.gemm(op, qp), nil
	case "MatMul":
		return r.matmul(op, qp), nil
	case "Add", "Mul":
		return r.binary(op, qp), nil
	case "GlobalAveragePool", "AveragePool", "LeakyRelu", "Sigmoid":
		return r.unary(op, qp), nil
	case "Relu":
		return r.relu(op, qp), nil
	case "Concat":
		return r.concat(op, qp), nil
	case "MaxPool", "Reshape", "Transpose", "Flatten", "Squeeze", "Unsqueeze", "Identity":
		return r.passthrough(op, qp), nil
	}
	return r.fuseMore(op, qp), nil
}

func (r *rewriter) newNode(op *graph.Node, opType, domain string, inputs []*graph.Value, attrs ...*graph.Attribute) *graph.Node {
	r.rep.Fused[opType]++
	return &graph.Node{Name: r.nm.Name(op.Name + "_" + opType), OpType: opType, Domain: domain, Inputs: inputs, Attrs: attrs}
}

func copyAttrs(op *graph.Node, names ...string) []*graph.Attribute {
	var out []*graph.Attribute
	for _, a := range op.Attrs {
		for _, nm := range names {
			if a.Name == nm {
				c := *a
				out = append(out, &c)
			}
		}
	}
	return out
}

func (r *rewriter) conv(op *graph.Node, y *qparams) (*graph.Node, error) {
	if len(op.Inputs) < 2 || len(op.Outputs) != 1 {
		return nil, nil
	}
	x, ok := r.act(op.Inputs[0])
	if !ok {
		return nil, nil
	}
	w, ok := r.weight(op.Inputs[1], 0)
	if !ok || w.x.Const.Rank() < 3 {
		return nil, nil
	}
	in := []*graph.Value{x.x, x.scale, x.zp, w.x, w.scale, w.zp, y.scale, y.zp}
	if bv := op.Input(2); bv != nil {
		b, ok := r.bias(bv)
		if !ok {
			return nil, nil
		}
		in = append(in, b)
	}
	return r.newNode(op, "QLinearConv", "", in,
		copyAttrs(op, "auto_pad", "dilations", "group", "kernel_shape", "pads", "strides")...), nil
}

// gemm maps Gemm to com.microsoft QGemm (ONNX Runtime's QDQ Gemm action):
// A activation, B constant weight, C an int32 bias with beta 1.
func (r *rewriter) gemm(op *graph.Node, y *qparams) *graph.Node {
	if len(op.Inputs) < 2 || len(op.Outputs) != 1 {
		return nil
	}
	if ta, _ := op.AttrInt("transA", 0); ta != 0 {
		return nil
	}
	a, ok := r.act(op.Inputs[0])
	if !ok {
		return nil
	}
	tb, _ := op.AttrInt("transB", 0)
	axis := 1
	if tb != 0 {
		axis = 0
	}
	b, ok := r.weight(op.Inputs[1], axis)
	if !ok || b.x.Const.Rank() != 2 {
		return nil
	}
	in := []*graph.Value{a.x, a.scale, a.zp, b.x, b.scale, b.zp}
	if cv := op.Input(2); cv != nil {
		if beta, _ := op.AttrFloat("beta", 1); beta != 1 {
			return nil
		}
		c, ok := r.bias(cv)
		if !ok {
			return nil
		}
		in = append(in, c)
	} else {
		in = append(in, nil)
	}
	in = append(in, y.scale, y.zp)
	return r.newNode(op, "QGemm", msDomain, in, copyAttrs(op, "alpha", "transB")...)
}

func (r *rewriter) matmul(op *graph.Node, y *qparams) *graph.Node {
	if len(op.Inputs) != 2 || len(op.Outputs) != 1 {
		return nil
	}
	a, ok := r.act(op.Inputs[0])
	if !ok {
		return nil
	}
	b, ok := r.dqInput(op.Inputs[1])
	if !ok || !b.perTensor() {
		return nil
	}
	return r.newNode(op, "QLinearMatMul", "", []*graph.Value{a.x, a.scale, a.zp, b.x, b.scale, b.zp, y.scale, y.zp})
}

func (r *rewriter) binary(op *graph.Node, y *qparams) *graph.Node {
	if len(op.Inputs) != 2 || len(op.Outputs) != 1 {
		return nil
	}
	a, ok1 := r.act(op.Inputs[0])
	b, ok2 := r.act(op.Inputs[1])
	if !ok1 || !ok2 || a.dt != y.dt || b.dt != y.dt {
		return nil
	}
	return r.newNode(op, "QLinear"+op.OpType, msDomain, []*graph.Value{a.x, a.scale, a.zp, b.x, b.scale, b.zp, y.scale, y.zp})
}

func (r *rewriter) unary(op *graph.Node, y *qparams) *graph.Node {
	if len(op.Inputs) != 1 || len(op.Outputs) != 1 {
		return nil
	}
	x, ok := r.act(op.Inputs[0])
	if !ok || x.dt != y.dt {
		return nil
	}
	in := []*graph.Value{x.x, x.scale, x.zp, y.scale, y.zp}
	switch op.OpType {
	case "GlobalAveragePool":
		return r.newNode(op, "QLinearGlobalAveragePool", msDomain, in, graph.IntAttr("channels_last", 0))
	case "AveragePool":
		attrs := copyAttrs(op, "auto_pad", "ceil_mode", "count_include_pad", "kernel_shape", "pads", "strides")
		if op.Attr("dilations") != nil {
			return nil
		}
		return r.newNode(op, "QLinearAveragePool", msDomain, in, append(attrs, graph.IntAttr("channels_last", 0))...)
	case "LeakyRelu":
		return r.newNode(op, "QLinearLeakyRelu", msDomain, in, copyAttrs(op, "alpha")...)
	case "Sigmoid":
		return r.newNode(op, "QLinearSigmoid", msDomain, in)
	}
	return nil
}

// relu handles DQ → Relu → Q. With equal qparams and Q's zero point at the
// type minimum the Relu is Q's own clamp and the pair cancels; otherwise it
// is a LeakyRelu with alpha 0, whose table is exact.
func (r *rewriter) relu(op *graph.Node, y *qparams) *graph.Node {
	if len(op.Inputs) != 1 {
		return nil
	}
	x, ok := r.act(op.Inputs[0])
	if !ok || x.dt != y.dt {
		return nil
	}
	if qmin, _ := y.qrange(); x.sameAs(y) && y.zpAt(0) == qmin {
		r.rep.Passthrough["Relu"]++
		return &graph.Node{Name: r.nm.Name(op.Name + "_Identity"), OpType: "Identity", Inputs: []*graph.Value{x.x}}
	}
	return r.newNode(op, "QLinearLeakyRelu", msDomain, []*graph.Value{x.x, x.scale, x.zp, y.scale, y.zp}, graph.FloatAttr("alpha", 0))
}

func (r *rewriter) concat(op *graph.Node, y *qparams) *graph.Node {
	if len(op.Inputs) < 1 || len(op.Outputs) != 1 {
		return nil
	}
	in := []*graph.Value{y.scale, y.zp}
	for _, v := range op.Inputs {
		x, ok := r.act(v)
		if !ok || x.dt != y.dt {
			return nil
		}
		in = append(in, x.x, x.scale, x.zp)
	}
	return r.newNode(op, "QLinearConcat", msDomain, in, copyAttrs(op, "axis")...)
}

// passthrough runs a data-movement op on the integer tensor when its DQ and
// Q carry the same qparams: it only moves or selects elements (MaxPool
// selects the maximum, which dequantization preserves), so the integer
// result is exactly Q(op(DQ(x))).
func (r *rewriter) passthrough(op *graph.Node, y *qparams) *graph.Node {
	if len(op.Inputs) < 1 || len(op.Outputs) != 1 {
		return nil
	}
	x, ok := r.act(op.Inputs[0])
	if !ok || !x.sameAs(y) {
		return nil
	}
	r.rep.Passthrough[op.OpType]++
	if isOp(op, "MaxPool") {
		if attrs, ok := maxPool2dAttrs(op); ok {
			return &graph.Node{Name: r.nm.Name(op.Name + "_int"), OpType: "MaxPool2d", Domain: qtoolDomain, Inputs: []*graph.Value{x.x}, Attrs: attrs}
		}
	}
	in := append([]*graph.Value{x.x}, op.Inputs[1:]...)
	attrs := make([]*graph.Attribute, len(op.Attrs))
	for i, a := range op.Attrs {
		c := *a
		attrs[i] = &c
	}
	return &graph.Node{Name: r.nm.Name(op.Name + "_int"), OpType: op.OpType, Inputs: in, Attrs: attrs}
}

// maxPool2dAttrs returns the attributes of com.qtool MaxPool2d (the fast
// integer 2-D max pool in ops/qlinear) when op is a 2-D MaxPool it covers:
// explicit or no padding, no dilation. Other MaxPools run as ONNX MaxPool on
// the integer tensor.
func maxPool2dAttrs(op *graph.Node) ([]*graph.Attribute, bool) {
	ks, err := op.AttrInts("kernel_shape", nil)
	if err != nil || len(ks) != 2 {
		return nil, false
	}
	if ap, _ := op.AttrString("auto_pad", "NOTSET"); ap != "NOTSET" && ap != "VALID" && ap != "" {
		return nil, false
	}
	if d, err := op.AttrInts("dilations", []int64{1, 1}); err != nil || len(d) != 2 || d[0] != 1 || d[1] != 1 {
		return nil, false
	}
	st, err := op.AttrInts("strides", []int64{1, 1})
	if err != nil || len(st) != 2 {
		return nil, false
	}
	pads := []int64{0, 0, 0, 0}
	if ap, _ := op.AttrString("auto_pad", "NOTSET"); ap != "VALID" {
		if pads, err = op.AttrInts("pads", pads); err != nil || len(pads) != 4 {
			return nil, false
		}
	}
	for i, p := range pads {
		if p < 0 || p >= ks[i%2] {
			return nil, false
		}
	}
	ceil, err := op.AttrInt("ceil_mode", 0)
	if err != nil {
		return nil, false
	}
	return []*graph.Attribute{graph.IntsAttr("kernel_shape", ks), graph.IntsAttr("strides", st),
		graph.IntsAttr("pads", pads), graph.IntAttr("ceil_mode", ceil)}, true
}

// integerMaxPools runs the 2-D MaxPools that already read an 8-bit tensor
// (QOperator models put them between QLinearConvs) on com.qtool MaxPool2d,
// as the QDQ path does: ONNX MaxPool on uint8 is the generic kernel, which
// made a QOperator ResNet-18 twice as slow as the same model in QDQ form.
func (r *rewriter) integerMaxPools() {
	for _, op := range r.g.Nodes {
		if !isOp(op, "MaxPool") || len(op.Outputs) < 1 || op.Output(1) != nil {
			continue // the Indices output needs ONNX MaxPool
		}
		x := op.Input(0)
		if x == nil || (x.DType != tensor.Uint8 && x.DType != tensor.Int8) || len(x.Shape) != 4 {
			continue
		}
		attrs, ok := maxPool2dAttrs(op)
		if !ok {
			continue
		}
		op.OpType, op.Domain, op.Attrs = "MaxPool2d", qtoolDomain, attrs
		op.Outputs = op.Outputs[:1]
		r.rep.Fused["MaxPool2d"]++
	}
}
