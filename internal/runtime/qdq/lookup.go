package qdq

import (
	"github.com/qtool/qtool/internal/graph"
	"github.com/qtool/qtool/internal/tensor"
)

// tableOps are the elementwise float activations a DQ → op → Q group may
// run as a 256-entry table (com.qtool LookupTable). Sigmoid and LeakyRelu
// are not here: they become com.microsoft QLinearSigmoid/QLinearLeakyRelu,
// whose tables reproduce ONNX Runtime's bit for bit.
var tableOps = map[string]bool{
	"HardSwish": true, "HardSigmoid": true, "Elu": true, "Selu": true, "Celu": true,
	"ThresholdedRelu": true, "Tanh": true, "Softplus": true, "Softsign": true,
	"Mish": true, "Gelu": true, "Clip": true, "Abs": true, "Neg": true,
}

// lookup turns DQ → op → Q (per-tensor qparams of one 8-bit type on both
// sides, every other input of op a constant) into com.qtool LookupTable.
// The table is not computed here: it is the output of constant nodes
// DQ(all 256 codes) → op → Q that the session folds at plan time with the
// same float kernels and the same QuantizeLinear the unfused group runs, so
// the lookup is bit-identical to it by construction, whatever the op's
// float kernel does (and for any opset's attribute or input form).
func (r *rewriter) lookup(op *graph.Node, y *qparams) *graph.Node {
	if len(op.Inputs) < 1 || len(op.Outputs) != 1 {
		return nil
	}
	x, ok := r.act(op.Inputs[0])
	if !ok || x.dt != y.dt {
		return nil
	}
	for _, v := range op.Inputs[1:] {
		if v != nil && v.Const == nil {
			return nil // e.g. a Clip bound computed at run time
		}
	}
	// The codes in byte order: entry i is the output for the byte pattern
	// i, which for int8 is int8(i).
	codes := tensor.MustNew(x.dt, []int{256})
	switch x.dt {
	case tensor.Uint8:
		for i := range codes.U8() {
			codes.U8()[i] = uint8(i)
		}
	case tensor.Int8:
		for i := range codes.I8() {
			codes.I8()[i] = int8(uint8(i))
		}
	}
	cv := r.g.AddInitializer(r.nm, op.Name+"_codes", codes)
	dq := r.nm.NewNode("DequantizeLinear", op.Name+"_table_dq", []*graph.Value{cv, x.scale, x.zp}, 1)
	dq.Outputs[0].DType, dq.Outputs[0].Shape = tensor.Float32, graph.KnownShape(256)
	fin := append([]*graph.Value{dq.Outputs[0]}, op.Inputs[1:]...)
	fn := r.nm.NewNode(op.OpType, op.Name+"_table_f", fin, 1)
	fn.Attrs = copyAttrs(op, attrNames(op)...)
	fn.Outputs[0].DType, fn.Outputs[0].Shape = tensor.Float32, graph.KnownShape(256)
	qn := r.nm.NewNode("QuantizeLinear", op.Name+"_table", []*graph.Value{fn.Outputs[0], y.scale, y.zp}, 1)
	qn.Outputs[0].DType, qn.Outputs[0].Shape = y.dt, graph.KnownShape(256)
	for _, n := range []*graph.Node{dq, fn, qn} {
		r.g.InsertNodeBefore(op, n)
		r.tableNodes[n] = true
	}
	r.rep.Tables[op.OpType]++
	return r.newNode(op, "LookupTable", qtoolDomain, []*graph.Value{x.x, qn.Outputs[0]})
}

func attrNames(n *graph.Node) []string {
	out := make([]string, len(n.Attrs))
	for i, a := range n.Attrs {
		out[i] = a.Name
	}
	return out
}
