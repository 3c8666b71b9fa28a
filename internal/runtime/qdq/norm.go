package qdq

import (
	"github.com/qtool/qtool/internal/graph"
	"github.com/qtool/qtool/internal/tensor"
)

var normOps = map[string]bool{
	"BatchNormalization": true, "InstanceNormalization": true,
	"LayerNormalization": true, "GroupNormalization": true,
}

// norm turns DQ → {Batch,Instance,Layer,Group}Normalization → Q
// (per-tensor qparams of one 8-bit type) into com.qtool QLinear<op>, which
// reads the codes, takes the statistics from their histogram and writes
// codes (ops/qlinear/norm.go). The op's parameters stay float inputs.
func (r *rewriter) norm(op *graph.Node, y *qparams) *graph.Node {
	if len(op.Inputs) < 2 || len(op.Outputs) < 1 {
		return nil
	}
	for _, v := range op.Outputs[1:] {
		// Mean/variance or running-stat outputs someone reads.
		if v != nil && (len(r.ix.Consumers[v]) > 0 || r.ix.Outputs[v]) {
			return nil
		}
	}
	x, ok := r.act(op.Inputs[0])
	if !ok || x.dt != y.dt {
		return nil
	}
	for _, v := range op.Inputs[1:] {
		if v == nil {
			continue
		}
		if dt := v.DType; v.Const != nil && v.Const.DType != tensor.Float32 || dt != tensor.Undefined && dt != tensor.Float32 {
			return nil
		}
	}
	if isOp(op, "BatchNormalization") {
		if tm, err := op.AttrInt("training_mode", 0); err != nil || tm != 0 {
			return nil
		}
		if sp, err := op.AttrInt("spatial", 1); err != nil || sp != 1 {
			return nil
		}
		if len(op.Inputs) != 5 || r.g.Opset("") < 14 && len(op.Outputs) > 1 {
			return nil // the older opsets' training signal
		}
	}
	if isOp(op, "LayerNormalization") {
		if st, err := op.AttrInt("stash_type", 1); err != nil || st != 1 {
			return nil
		}
	}
	in := append([]*graph.Value{x.x, x.scale, x.zp, y.scale, y.zp}, op.Inputs[1:]...)
	var attrs []*graph.Attribute
	for _, a := range copyAttrs(op, attrNames(op)...) {
		if a.Name != "momentum" && a.Name != "stash_type" && a.Name != "training_mode" && a.Name != "spatial" {
			attrs = append(attrs, a)
		}
	}
	attrs = append(attrs, graph.IntAttr("onnx_opset", r.g.Opset("")))
	n := r.newNode(op, "QLinear"+op.OpType, qtoolDomain, in, attrs...)
	return n
}
