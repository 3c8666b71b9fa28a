package qdq

import (
	"github.com/qtool/qtool/internal/graph"
)

// resize handles DQ → Resize → Q with equal per-tensor qparams, the
// condition under which ONNX Runtime drops the pair. It becomes com.qtool
// Resize8: nearest mode only moves elements (a gather through an index map
// made once), linear and cubic interpolate the codes and round to nearest
// (the unfused path's result up to float rounding; ONNX Runtime truncates,
// so it is at most 1 LSB lower). tf_crop_and_resize stays float: its
// extrapolation value is a real number, not a code.
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
	case "nearest", "linear", "cubic":
		if opset < 11 {
			if mode == "nearest" {
				return r.passthrough(op, y) // Resize-10: ONNX Resize on the codes
			}
			return nil
		}
	default:
		return nil
	}
	in := append([]*graph.Value{x.x}, op.Inputs[1:]...)
	attrs := append(copyAttrs(op, attrNames(op)...), graph.IntAttr("onnx_opset", opset))
	return r.newNode(op, "Resize8", qtoolDomain, in, attrs...)
}
