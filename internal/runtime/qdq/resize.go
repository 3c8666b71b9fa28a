package qdq

import (
	"github.com/qtool/qtool/internal/graph"
)

// resize handles DQ → Resize → Q with equal per-tensor qparams, the
// condition under which ONNX Runtime drops the pair: nearest mode only
// moves elements and runs as ONNX Resize on the 8-bit tensor; linear and
// cubic become com.qtool Resize8, which interpolates the codes and rounds
// to nearest (the unfused path's result up to float rounding; ONNX Runtime
// truncates, so it is at most 1 LSB lower). tf_crop_and_resize stays float:
// its extrapolation value is a real number, not a code.
func (r *rewriter) resize(op *graph.Node, y *qparams) *graph.Node {
	if len(op.Inputs) < 1 || len(op.Outputs) != 1 {
		return nil
	}
	x, ok := r.act(op.Inputs[0])
	if !ok || !x.sameAs(y) {
		return nil
	}
	if ctm, _ := op.AttrString("coordinate_transformation_mode", ""); ctm == "tf_crop_and_resize" {
		return nil
	}
	mode, err := op.AttrString("mode", "nearest")
	if err != nil {
		return nil
	}
	opset := r.g.Opset("")
	switch mode {
	case "nearest":
		return r.passthrough(op, y)
	case "linear", "cubic":
		if opset < 11 {
			return nil
		}
	default:
		return nil
	}
	in := append([]*graph.Value{x.x}, op.Inputs[1:]...)
	attrs := append(copyAttrs(op, attrNames(op)...), graph.IntAttr("onnx_opset", opset))
	return r.newNode(op, "Resize8", qtoolDomain, in, attrs...)
}
