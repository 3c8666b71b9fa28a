package convert

import (
	"github.com/qtool/qtool/internal/graph"
)

// Kinds of the ops quantized beyond the core set: in QDQ form their input
// and output get Q/DQ pairs like any quantized op (qtool's runtime and
// ONNX Runtime run them on integers); ONNX and com.microsoft have no
// QOperator op for them, so the QOperator form keeps DequantizeLinear →
// float op → QuantizeLinear around them.
const (
	// kTable: an elementwise activation (a 256-entry table in the integer
	// runtime) with its calibrated output range.
	kTable nodeKind = iota + 100
	// kNorm: a normalization with float constant parameters and its
	// calibrated output range.
	kNorm
)

var tableKindOps = map[string]bool{
	"HardSwish": true, "HardSigmoid": true, "Elu": true, "Tanh": true, "Clip": true,
	"Selu": true, "Celu": true, "Softplus": true, "Softsign": true,
}

var normKindOps = map[string]bool{
	"BatchNormalization": true, "InstanceNormalization": true,
	"LayerNormalization": true, "GroupNormalization": true,
}

// moreKind classifies the ops of this file, kFloat when n is not one of
// them or is not in a form the integer runtimes take (the reason then is
// that of an op that could not be quantized at all: it stays float
// silently, as an unsupported op does).
func (p *plan) moreKind(n *graph.Node) nodeKind {
	if len(n.Inputs) < 1 {
		return kFloat
	}
	switch {
	case tableKindOps[n.OpType]:
		// Further inputs (Clip's bounds) must be constants for the table.
		for _, v := range n.Inputs[1:] {
			if v != nil && graph.ConstValue(p.ix, v) == nil {
				return kFloat
			}
		}
		if n.OpType == "Clip" {
			if _, _, ok := clipBounds(p.ix, n); !ok {
				return kFloat
			}
		}
		return kTable
	case normKindOps[n.OpType]:
		if len(n.Inputs) < 2 {
			return kFloat
		}
		for _, v := range n.Inputs[1:] {
			if v != nil && isFloatConst(p.ix, v) == nil {
				return kFloat
			}
		}
		if n.OpType == "BatchNormalization" {
			if tm, err := n.AttrInt("training_mode", 0); err != nil || tm != 0 {
				return kFloat
			}
		}
		if n.OpType == "LayerNormalization" {
			if st, err := n.AttrInt("stash_type", 1); err != nil || st != 1 {
				return kFloat
			}
		}
		return kNorm
	case n.OpType == "Resize":
		// Resize moves or interpolates values: its output keeps the
		// input's qparams (ONNX Runtime's quantizer does the same, and its
		// QDQ transformer then drops the pair). A crop's extrapolation
		// value is a real number, not a code: float.
		if ctm, _ := n.AttrString("coordinate_transformation_mode", ""); ctm == "tf_crop_and_resize" {
			return kFloat
		}
		return kPass
	}
	return kFloat
}

// qdqInQOperator reports whether the QOperator form keeps n as
// DequantizeLinear → float op → QuantizeLinear: the table activations and
// norms, and a Resize that is not nearest (ONNX Resize on uint8/int8 only
// moves codes exactly in nearest mode; ONNX Runtime truncates interpolated
// codes).
func (p *plan) qdqInQOperator(n *graph.Node) bool {
	switch p.kind[n] {
	case kTable, kNorm:
		return true
	case kPass:
		if n.OpType == "Resize" {
			mode, _ := n.AttrString("mode", "nearest")
			return mode != "nearest"
		}
	}
	return false
}
