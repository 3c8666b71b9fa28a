package convert

import (
	"fmt"
	"math"

	"github.com/qtool/qtool/internal/graph"
	"github.com/qtool/qtool/internal/tensor"
)

// 16-bit activations with 8-bit weights (A16W8), the mixed-precision form
// of TFLite's "16x8", ONNX Runtime's QUInt16/QInt16 activation types and
// Qualcomm's tools: activation dtype quint16 or qint16, globally, per op
// type or per node. Weights stay int8 and biases int32 (scale sa·sw).
//
// Which tensors are 16-bit: a tensor is 16-bit when any node that reads or
// writes it resolves to a 16-bit activation dtype (the first such node in
// graph order chooses quint16 or qint16 and the observer), and the
// data-movement ops whose output reuses their input's qparams (MaxPool,
// Reshape, Transpose, Flatten, Squeeze, Unsqueeze) and Relu/Clip (usually
// absorbed into their producer, whose output they then are) make their
// input and output share that choice. So a 16-bit stem Conv gives 16-bit input, Conv/Relu output and
// MaxPool output, and the next Conv reads 16-bit data whatever its own
// dtype. Calibration (CalibrationConfig) and conversion (Static) apply the
// same rule, so the table holds uint16/int16 entries exactly where convert
// looks for them.
//
// QOperator form: no QLinear operator takes 16-bit tensors, so a node that
// reads or writes one is written as in QDQ form (DQ → float op → Q, its
// int8 weights and int32 bias behind DequantizeLinear) and the 8-bit nodes
// around it become QLinear operators (qoperator.go, qdq16).
//
// Writing: ai.onnx QuantizeLinear/DequantizeLinear take 16-bit types only
// from opset 21, so for models below it the 16-bit pairs are written as
// com.microsoft QuantizeLinear/DequantizeLinear (same inputs and axis
// attribute), as ONNX Runtime's quantizer does; from opset 21 the ai.onnx
// ops are used. A runtime's integer kernels never see these groups: ONNX
// Runtime and qtool's runtime run DQ -> float op -> Q for them.
//
// Refused: reduce_range with a 16-bit dtype, 16-bit dtypes outside static
// mode, and a table calibrated at another bit width (an error, where other
// table mismatches leave the node float).

// Is16 reports a 16-bit activation dtype.
func (a ActivationSpec) Is16() bool {
	switch a.DType {
	case "quint16", "uint16", "qint16", "int16":
		return true
	}
	return false
}

func is16(dt tensor.DType) bool { return dt == tensor.Uint16 || dt == tensor.Int16 }

// qrange is the integer range of an activation dtype.
func qrange(dt tensor.DType) (int32, int32) {
	switch dt {
	case tensor.Int8:
		return -128, 127
	case tensor.Uint16:
		return 0, 65535
	case tensor.Int16:
		return -32768, 32767
	}
	return 0, 255
}

// fixedQParam is the output quantization of Sigmoid/Softmax: [0, 1) over
// the whole integer range.
func fixedQParam(dt tensor.DType) qparam {
	switch dt {
	case tensor.Int8:
		return qparam{scale: 1.0 / 256, zp: -128, dt: dt}
	case tensor.Uint16:
		return qparam{scale: 1.0 / 65536, dt: dt}
	case tensor.Int16:
		return qparam{scale: 1.0 / 65536, zp: -32768, dt: dt}
	}
	return qparam{scale: 1.0 / 256, dt: dt}
}

// followOps share one dtype between input and output (see above).
var followOps = map[string]bool{
	"MaxPool": true, "Reshape": true, "Transpose": true, "Flatten": true, "Squeeze": true, "Unsqueeze": true,
	"Relu": true, "Clip": true,
}

// wideActivations is the 16-bit tensor rule: the tensors that are 16-bit
// and the activation spec (dtype, scheme, observer) each gets.
func wideActivations(cfg Config, g *graph.Graph) map[*graph.Value]ActivationSpec {
	out := map[*graph.Value]ActivationSpec{}
	mark := func(v *graph.Value, a ActivationSpec) bool {
		if !isFloatAct(v) {
			return false
		}
		if _, ok := out[v]; ok {
			return false
		}
		out[v] = a
		return true
	}
	for _, n := range g.Nodes {
		if !graph.IsDefaultDomain(n.Domain) {
			continue
		}
		s := cfg.Resolve(n)
		if s.Excluded || !s.Activation.Is16() {
			continue
		}
		for _, v := range n.Inputs {
			mark(v, s.Activation)
		}
		for _, v := range n.Outputs {
			mark(v, s.Activation)
		}
	}
	for changed := len(out) > 0; changed; {
		changed = false
		for _, n := range g.Nodes {
			if !followOps[n.OpType] || !graph.IsDefaultDomain(n.Domain) || len(n.Outputs) != 1 {
				continue
			}
			in, o := n.Input(0), n.Outputs[0]
			if a, ok := out[in]; ok && mark(o, a) {
				changed = true
			}
			if a, ok := out[o]; ok && mark(in, a) {
				changed = true
			}
		}
	}
	return out
}

// validate16 refuses what 16-bit activations cannot be combined with.
func (c Config) validate16() error {
	specs := []struct {
		where string
		a     ActivationSpec
	}{{"", c.Activation}}
	for i, o := range c.OpTypes {
		specs = append(specs, struct {
			where string
			a     ActivationSpec
		}{fmt.Sprintf("op_types[%d] ", i), c.Activation.merge(o.Activation)})
	}
	for i, o := range c.Nodes {
		specs = append(specs, struct {
			where string
			a     ActivationSpec
		}{fmt.Sprintf("nodes[%d] ", i), c.Activation.merge(o.Activation)})
	}
	for _, s := range specs {
		if err := s.a.check16(s.where); err != nil {
			return err
		}
		if !s.a.Is16() {
			continue
		}
		if c.Mode != "" && c.Mode != ModeStatic {
			return fmt.Errorf("%sactivation.dtype %s applies to static quantization (mode is %s)", s.where, s.a.DType, c.Mode)
		}
	}
	return nil
}

// check16 refuses reduce_range with a 16-bit dtype: it halves the range of
// 8-bit activations so that x86's u8·s8 pairs cannot overflow int16, which
// has no meaning for 16-bit activations (they never reach those kernels).
func (a ActivationSpec) check16(where string) error {
	if a.Is16() && a.ReduceRange != nil && *a.ReduceRange {
		return fmt.Errorf("%sactivation: reduce_range applies to 8-bit activations, not %s (set reduce_range: false)", where, a.DType)
	}
	return nil
}

// qdqDomain is the domain of the Q/DQ pair of a dtype: com.microsoft for
// 16-bit types below ai.onnx opset 21.
func qdqDomain(g *graph.Graph, dt tensor.DType) string {
	v, ok := g.Opsets[""]
	if !ok {
		v = g.Opsets["ai.onnx"]
	}
	if is16(dt) && v < 21 {
		return MSDomain
	}
	return ""
}

// perChannel16 reports a weighted node written in QDQ form inside a
// QOperator model with per-channel weights.
func (p *plan) perChannel16() bool {
	for n, k := range p.kind {
		if k == kWeighted && p.spec[n].Weight.PerChannel() && p.touches16(n) {
			return true
		}
	}
	return false
}

// biasFits reports whether b quantizes to int32 with scale sa·sw without
// clamping. A 16-bit activation scale is ~256 times finer than an 8-bit
// one, so a bias of a few tens can already exceed 2^31 steps; the QDQ
// writers then keep that bias float (a float bias is valid QDQ: the op
// runs in float as any 16-bit group does) rather than write a clamped,
// wrong one.
func biasFits(b *tensor.Tensor, sa float32, sw []float32) bool {
	if b == nil {
		return true
	}
	for i, f := range b.F32() {
		s := sa * sw[0]
		if len(sw) > 1 && i < len(sw) {
			s = sa * sw[i]
		}
		if math.Abs(math.RoundToEven(float64(f/s))) > math.MaxInt32 {
			return false
		}
	}
	return true
}
