package convert

import (
	"fmt"
	"math"
	"slices"
	"sort"

	"github.com/qtool/qtool/internal/calibrate"
	"github.com/qtool/qtool/internal/graph"
	"github.com/qtool/qtool/internal/tensor"
)

// MSDomain is ONNX Runtime's contrib-op domain.
const MSDomain = "com.microsoft"

// qparam is a per-tensor activation quantization.
type qparam struct {
	scale float32
	zp    int32
	dt    tensor.DType
}

// Report says what a conversion did.
type Report struct {
	// Quantized counts quantized nodes by op type (absorbed activations
	// count under their own op type with an "(absorbed)" suffix).
	Quantized map[string]int
	// Float lists the nodes left in float and why.
	Float []FloatNode
	// OutputScales holds the scale of each graph output that is the
	// dequantized form of a quantized tensor: the step two runtimes'
	// results are compared in.
	OutputScales map[string]float32
	// GPTQ counts the weights written as OptimizeWeights rounded them.
	GPTQ int
	// Activations16 counts the activations stored in 16 bits (a16.go).
	Activations16 int
}

// FloatNode is a node left in float.
type FloatNode struct {
	Node, OpType, Reason string
}

func newReport() *Report {
	return &Report{Quantized: map[string]int{}, OutputScales: map[string]float32{}}
}

// QuantizedTotal is the number of quantized nodes.
func (r *Report) QuantizedTotal() int {
	n := 0
	for _, c := range r.Quantized {
		n += c
	}
	return n
}

// OpTypes lists the quantized op types, sorted.
func (r *Report) OpTypes() []string {
	var out []string
	for k := range r.Quantized {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

type nodeKind int

const (
	kFloat    nodeKind = iota
	kWeighted          // Conv, Gemm, MatMul
	kBinary            // Add, Mul of two activations
	kConcat
	kPool  // AveragePool, GlobalAveragePool: own output range
	kPass  // MaxPool, Reshape, ...: output keeps the input's qparams
	kFixed // Sigmoid, Softmax: fixed output range
	kUnary // LeakyRelu: own output range
)

var passOps = map[string]bool{
	"MaxPool": true, "Reshape": true, "Transpose": true, "Flatten": true, "Squeeze": true, "Unsqueeze": true,
}

// plan is the static quantization decision for every node and value.
type plan struct {
	g      *graph.Graph
	cfg    Config
	table  *calibrate.Table
	format string
	ix     *graph.Index
	qp     map[*graph.Value]qparam
	kind   map[*graph.Node]nodeKind
	spec   map[*graph.Node]NodeSpec
	rep    *Report
	usedMS bool
	// fixedW holds the integer weights of a folded QDQ model, used as they
	// are instead of being quantized again.
	fixedW map[*graph.Value]*qweight
	// rounded holds weights rounded by OptimizeWeights, by name.
	rounded *WeightRounding
	// wide holds the 16-bit activations (a16.go) and their spec.
	wide map[*graph.Value]ActivationSpec
	// err is a fatal inconsistency found while deciding (a table
	// calibrated at another bit width than the config asks for).
	err error
}

// StaticOptions selects the output form.
type StaticOptions struct {
	Format string // qdq (default) or qoperator
	// Rounding, from OptimizeWeights on the same graph, replaces
	// round-to-nearest for the weights it holds.
	Rounding *WeightRounding
}

// Static quantizes g in place with the activation ranges of table.
func Static(g *graph.Graph, table *calibrate.Table, cfg Config, o StaticOptions) (*Report, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := cfg.CheckGraph(g); err != nil {
		return nil, err
	}
	format := o.Format
	if format == "" {
		format = cfg.Format
	}
	if format == "" {
		format = FormatQDQ
	}
	if format != FormatQDQ && format != FormatQOperator {
		return nil, fmt.Errorf("unknown format %q (want qdq or qoperator)", format)
	}
	if withFormat := cfg; format != cfg.Format {
		withFormat.Format = format
		if err := withFormat.validate16(); err != nil {
			return nil, err
		}
	}
	constantsToInitializers(g)
	p := &plan{g: g, cfg: cfg, table: table, format: format, qp: map[*graph.Value]qparam{},
		kind: map[*graph.Node]nodeKind{}, spec: map[*graph.Node]NodeSpec{}, rep: newReport(), rounded: o.Rounding}
	return p.run()
}

// run decides and emits the plan.
func (p *plan) run() (*Report, error) {
	g := p.g
	_ = graph.InferShapes(g)
	for _, n := range g.Nodes {
		p.spec[n] = p.cfg.Resolve(n)
		if err := p.spec[n].Activation.check16(fmt.Sprintf("node %q: ", n.Name)); err != nil {
			return nil, err
		}
	}
	p.wide = wideActivations(p.cfg, g)
	p.absorbActivations()
	p.ix = g.Index()
	for _, n := range g.Nodes {
		k, reason := p.decide(n)
		p.kind[n] = k
		if k == kFloat {
			if reason != "" {
				p.rep.Float = append(p.rep.Float, FloatNode{Node: n.Name, OpType: n.OpType, Reason: reason})
			}
			continue
		}
		p.rep.Quantized[n.OpType]++
	}
	if p.err != nil {
		return nil, p.err
	}
	if p.fixedW == nil {
		// A folded QDQ model keeps the qparams it was given.
		p.shareConcatQParams()
	}
	for _, v := range g.Outputs {
		if q, ok := p.qp[v]; ok {
			p.rep.OutputScales[v.Name] = q.scale
		}
	}
	for _, q := range p.qp {
		if is16(q.dt) {
			p.rep.Activations16++
		}
	}
	// Opsets: QuantizeLinear/QLinearConv need 10; a per-axis
	// DequantizeLinear (QDQ per-channel weights) needs 13.
	target := int64(10)
	if p.format == FormatQDQ && p.usesPerChannel() {
		target = 13
	}
	if p.format == FormatQOperator && p.perChannel16() {
		target = 13 // per-axis DequantizeLinear of their int8 weights
	}
	if p.format == FormatQOperator && p.passesMaxPool() {
		target = max(target, 12) // uint8/int8 MaxPool
	}
	if err := raiseOpset(g, target); err != nil {
		return nil, err
	}
	var err error
	if p.format == FormatQDQ {
		err = p.emitQDQ()
	} else {
		err = p.emitQOperator()
	}
	if err != nil {
		return nil, err
	}
	if p.usedMS {
		if _, ok := g.Opsets[MSDomain]; !ok {
			g.Opsets[MSDomain] = 1
		}
	}
	pruneUnused(g)
	if err := g.Sort(); err != nil {
		return nil, err
	}
	return p.rep, nil
}

func (p *plan) passesMaxPool() bool {
	for n, k := range p.kind {
		if k == kPass && n.OpType == "MaxPool" {
			return true
		}
	}
	return false
}

func (p *plan) usesPerChannel() bool {
	for n, k := range p.kind {
		if k == kWeighted && p.spec[n].Weight.PerChannel() {
			return true
		}
	}
	return false
}

// absorbActivations removes a Relu (or Clip to a range that the quantized
// output already clamps to) after a Conv/Gemm/MatMul whose output nothing
// else reads: the quantized output's range [0, max] does the clamping, as
// PyTorch's ConvReLU2d and ONNX Runtime's QDQ Relu removal do.
func (p *plan) absorbActivations() {
	ix := p.g.Index()
	for _, r := range append([]*graph.Node(nil), p.g.Nodes...) {
		if (r.OpType != "Relu" && r.OpType != "Clip") || !graph.IsDefaultDomain(r.Domain) || len(r.Outputs) != 1 {
			continue
		}
		c := r.Input(0)
		prod := ix.Producer[c]
		if prod == nil || !graph.IsDefaultDomain(prod.Domain) || !ix.SingleUse(c) || p.spec[r].Excluded || p.spec[prod].Excluded {
			continue
		}
		if prod.OpType != "Conv" && prod.OpType != "Gemm" && prod.OpType != "MatMul" {
			continue
		}
		if p.checkWeighted(prod) != nil {
			continue
		}
		out := r.Outputs[0]
		q, err := p.tableQP(out, p.spec[prod])
		if err != nil {
			continue
		}
		lo, hi := float32(0), float32(math.Inf(1))
		if r.OpType == "Clip" {
			var ok bool
			if lo, hi, ok = clipBounds(ix, r); !ok {
				continue
			}
		}
		qmin, qmax := qrange(q.dt)
		low := float32(qmin-q.zp) * q.scale
		high := float32(qmax-q.zp) * q.scale
		if low < lo || float64(high) > float64(hi)*(1+1e-5) {
			continue
		}
		for i, v := range prod.Outputs {
			if v == c {
				prod.Outputs[i] = out
			}
		}
		p.g.RemoveNode(r)
		p.rep.Quantized[r.OpType+" (absorbed)"]++
		ix = p.g.Index()
	}
}

func clipBounds(ix *graph.Index, n *graph.Node) (lo, hi float32, ok bool) {
	lo, hi = float32(math.Inf(-1)), float32(math.Inf(1))
	if a := n.Attr("min"); a != nil {
		lo = a.F
	}
	if a := n.Attr("max"); a != nil {
		hi = a.F
	}
	for i, dst := range []*float32{&lo, &hi} {
		v := n.Input(i + 1)
		if v == nil {
			continue
		}
		t := graph.ConstValue(ix, v)
		if t == nil || t.DType != tensor.Float32 || t.Len() != 1 {
			return 0, 0, false
		}
		*dst = t.F32()[0]
	}
	return lo, hi, true
}

// tableQP reads a per-tensor activation entry.
func (p *plan) tableQP(v *graph.Value, s NodeSpec) (qparam, error) {
	if v == nil {
		return qparam{}, fmt.Errorf("missing input")
	}
	if q, ok := p.qp[v]; ok {
		return q, nil
	}
	if p.table == nil {
		return qparam{}, fmt.Errorf("no calibration table")
	}
	e := p.table.Lookup(v.Name)
	if e == nil || len(e.Scales) == 0 {
		return qparam{}, fmt.Errorf("no calibration entry for %q", v.Name)
	}
	if e.PerChannel() || len(e.Scales) != 1 {
		return qparam{}, fmt.Errorf("calibration entry for %q is per-channel", v.Name)
	}
	dt, err := e.DTypeOf()
	if err != nil {
		return qparam{}, err
	}
	if want := p.actDType(v, s); dt != want {
		err := fmt.Errorf("calibration entry for %q is %v but the config asks for %v activations (recalibrate with the same config)", v.Name, dt, want)
		if (is16(dt) || is16(want)) && p.err == nil {
			// A bit-width mismatch is a table from another config, not a
			// node to leave float quietly.
			p.err = err
		}
		return qparam{}, err
	}
	return qparam{scale: float32(e.Scales[0]), zp: e.ZeroPoints[0], dt: dt}, nil
}

// actDType is the storage type of activation v read or written by a node
// with spec s: 16-bit when the A16W8 rule says so (a16.go), else s's.
func (p *plan) actDType(v *graph.Value, s NodeSpec) tensor.DType {
	if a, ok := p.wide[v]; ok {
		return a.ActDType()
	}
	if dt := s.Activation.ActDType(); !is16(dt) {
		return dt
	}
	// The node asks for 16 bits but v is not marked: only a constant or
	// non-float value, which has no table entry anyway.
	return tensor.Uint8
}

func isFloatAct(v *graph.Value) bool {
	return v != nil && v.Const == nil && (v.DType == tensor.Float32 || v.DType == tensor.Undefined) && v.Type == nil
}

func isFloatConst(ix *graph.Index, v *graph.Value) *tensor.Tensor {
	if v == nil || v.Const == nil || v.Const.DType != tensor.Float32 {
		return nil
	}
	return v.Const
}

// decide chooses how n is converted and records the qparams of the
// activations it reads and writes. It returns kFloat with a reason when n
// stays float ("" when n is not an op that could be quantized at all).
func (p *plan) decide(n *graph.Node) (nodeKind, string) {
	if !graph.IsDefaultDomain(n.Domain) {
		return kFloat, ""
	}
	s := p.spec[n]
	var kind nodeKind
	switch {
	case n.OpType == "Conv" || n.OpType == "Gemm" || n.OpType == "MatMul":
		kind = kWeighted
	case n.OpType == "Add" || n.OpType == "Mul":
		kind = kBinary
	case n.OpType == "Concat":
		kind = kConcat
	case n.OpType == "AveragePool" || n.OpType == "GlobalAveragePool":
		kind = kPool
	case passOps[n.OpType]:
		kind = kPass
	case n.OpType == "Sigmoid" || (n.OpType == "Softmax" && p.format == FormatQDQ):
		kind = kFixed
	case n.OpType == "LeakyRelu":
		kind = kUnary
	case p.moreKind(n) != kFloat: // moreops.go
		kind = p.moreKind(n)
	default:
		return kFloat, ""
	}
	if s.Excluded {
		return kFloat, "excluded by the config"
	}
	if len(n.Outputs) != 1 || !isFloatAct(n.Outputs[0]) {
		return kFloat, "output is not a single float tensor"
	}
	// acts are the activation inputs that must be quantized.
	var acts []*graph.Value
	switch kind {
	case kWeighted:
		if err := p.checkWeighted(n); err != nil {
			return kFloat, err.Error()
		}
		acts = []*graph.Value{n.Inputs[0]}
		if n.OpType == "MatMul" && n.Inputs[1].Const == nil {
			acts = append(acts, n.Inputs[1])
		}
	case kBinary:
		if len(n.Inputs) != 2 || !isFloatAct(n.Inputs[0]) || !isFloatAct(n.Inputs[1]) {
			return kFloat, "an input is a constant or not float"
		}
		acts = n.Inputs
	case kConcat:
		for _, v := range n.Inputs {
			if !isFloatAct(v) {
				return kFloat, "an input is a constant or not float"
			}
		}
		acts = n.Inputs
	case kPass:
		in := n.Input(0)
		if !isFloatAct(in) {
			return kFloat, "input is not a float activation"
		}
		if _, ok := p.qp[in]; !ok {
			// Quantizing a shape op whose input is float would only add
			// error; it stays float.
			return kFloat, ""
		}
		p.qp[n.Outputs[0]] = p.qp[in]
		return kPass, ""
	default:
		if !isFloatAct(n.Input(0)) {
			return kFloat, "input is not a float activation"
		}
		acts = []*graph.Value{n.Inputs[0]}
	}
	if kind != kWeighted {
		// An op without weights joins an integer chain; it does not start
		// one: quantizing a Concat of float LSTM states (a recurrent model's
		// state output) only adds error.
		chained := false
		for _, v := range acts {
			if _, ok := p.qp[v]; ok {
				chained = true
			}
		}
		if !chained {
			return kFloat, ""
		}
	}
	got := map[*graph.Value]qparam{}
	for _, v := range acts {
		q, err := p.tableQP(v, s)
		if err != nil {
			return kFloat, err.Error()
		}
		got[v] = q
	}
	var out qparam
	if kind == kFixed {
		out = fixedQParam(p.actDType(n.Outputs[0], s))
	} else {
		q, err := p.tableQP(n.Outputs[0], s)
		if err != nil {
			return kFloat, err.Error()
		}
		out = q
	}
	for v, q := range got {
		p.qp[v] = q
	}
	p.qp[n.Outputs[0]] = out
	return kind, ""
}

func (p *plan) checkWeighted(n *graph.Node) error {
	if !isFloatAct(n.Input(0)) {
		return fmt.Errorf("input is not a float activation")
	}
	switch n.OpType {
	case "Conv":
		w := isFloatConst(nil, n.Input(1))
		if w == nil {
			return fmt.Errorf("weight is not a float constant")
		}
		if b := n.Input(2); b != nil {
			if bt := isFloatConst(nil, b); bt == nil || bt.Rank() != 1 {
				return fmt.Errorf("bias is not a 1-D float constant")
			}
		}
		if w.Rank() < 3 || w.Rank() > 5 {
			return fmt.Errorf("only 1-D, 2-D and 3-D convolutions are quantized")
		}
	case "Gemm":
		w := isFloatConst(nil, n.Input(1))
		if w == nil || w.Rank() != 2 {
			return fmt.Errorf("B is not a 2-D float constant")
		}
		if ta, _ := n.AttrInt("transA", 0); ta != 0 {
			return fmt.Errorf("transA=1 is not quantized")
		}
		if a, _ := n.AttrFloat("alpha", 1); a != 1 {
			return fmt.Errorf("alpha != 1 is not quantized")
		}
		if b, _ := n.AttrFloat("beta", 1); b != 1 && n.Input(2) != nil {
			return fmt.Errorf("beta != 1 is not quantized")
		}
		if c := n.Input(2); c != nil {
			ct := isFloatConst(nil, c)
			nOut := w.Shape[1]
			if tb, _ := n.AttrInt("transB", 0); tb != 0 {
				nOut = w.Shape[0]
			}
			if ct == nil || ct.Len() != nOut || (ct.Rank() == 2 && ct.Shape[0] != 1) || ct.Rank() > 2 {
				return fmt.Errorf("C is not a constant bias of length N")
			}
		}
	case "MatMul":
		b := n.Input(1)
		if b.Const != nil {
			if b.Const.DType != tensor.Float32 || b.Const.Rank() != 2 {
				return fmt.Errorf("B is not a 2-D float constant")
			}
		} else if !isFloatAct(b) {
			return fmt.Errorf("B is not float")
		}
	}
	return nil
}

// shareConcatQParams gives a Concat's inputs the output's qparams when their
// producer is a quantized op whose output only the Concat reads: the
// producer then writes the concatenated scale directly and the Concat
// moves bytes without requantizing.
func (p *plan) shareConcatQParams() {
	for _, n := range p.g.Nodes {
		if p.kind[n] != kConcat {
			continue
		}
		out := p.qp[n.Outputs[0]]
		for _, v := range n.Inputs {
			prod := p.ix.Producer[v]
			if prod == nil || !p.ix.SingleUse(v) {
				continue
			}
			switch p.kind[prod] {
			case kWeighted, kPool, kBinary, kUnary:
				if p.qp[v].dt == out.dt {
					p.qp[v] = out
				}
			}
		}
	}
}

// weightAxis is the output-channel axis of a weight.
func weightAxis(n *graph.Node) int {
	switch n.OpType {
	case "Gemm":
		if tb, _ := n.AttrInt("transB", 0); tb != 0 {
			return 0
		}
		return 1
	case "MatMul":
		return 1
	}
	return 0
}

// qweight is a quantized constant.
type qweight struct {
	data   *tensor.Tensor
	scales []float32
	zps    []int32
	axis   int // -1 per tensor
}

// quantizeWeight quantizes w with min/max ranges (per channel along axis,
// or per tensor), choosing qparams with PyTorch's rule and rounding with
// ONNX's.
func quantizeWeight(w *tensor.Tensor, axis int, ws WeightSpec) (*qweight, error) {
	o := ws.opts()
	x := w.F32()
	for _, f := range x {
		if math.IsNaN(float64(f)) || math.IsInf(float64(f), 0) {
			return nil, fmt.Errorf("weight has a non-finite value")
		}
	}
	if !ws.PerChannel() {
		mn, mx := float32(0), float32(0)
		for _, f := range x {
			mn, mx = min(mn, f), max(mx, f)
		}
		s, z, err := tensor.ChooseQParams(mn, mx, o)
		if err != nil {
			return nil, err
		}
		q, err := tensor.QuantizePerTensor(w, s, z, o.DType, tensor.RuleONNX)
		if err != nil {
			return nil, err
		}
		return &qweight{data: q.Data, scales: []float32{s}, zps: []int32{z}, axis: -1}, nil
	}
	c := w.Shape[axis]
	inner := 1
	for _, d := range w.Shape[axis+1:] {
		inner *= d
	}
	mins, maxs := make([]float32, c), make([]float32, c)
	for i, f := range x {
		ch := (i / inner) % c
		mins[ch], maxs[ch] = min(mins[ch], f), max(maxs[ch], f)
	}
	if o.Scheme == tensor.PerTensorSymmetric {
		o.Scheme = tensor.PerChannelSymmetric
	} else {
		o.Scheme = tensor.PerChannelAffine
	}
	ss, zz, err := tensor.ChooseQParamsPerChannel(mins, maxs, o)
	if err != nil {
		return nil, err
	}
	q, err := tensor.QuantizePerChannel(w, ss, zz, axis, o.DType, tensor.RuleONNX)
	if err != nil {
		return nil, err
	}
	return &qweight{data: q.Data, scales: ss, zps: zz, axis: axis}, nil
}

// weightFor quantizes n's constant weight w: the OptimizeWeights choice
// when there is one for this very tensor (same shape and layout as
// round-to-nearest would give), else round-to-nearest.
func (p *plan) weightFor(n *graph.Node, w *tensor.Tensor, name string, spec WeightSpec) (*qweight, error) {
	rtn, err := quantizeWeight(w, weightAxis(n), spec)
	if err != nil || p.rounded == nil {
		return rtn, err
	}
	if r := p.rounded.w[name]; r != nil && r.axis == rtn.axis && r.data.DType == rtn.data.DType &&
		slices.Equal(r.data.Shape, rtn.data.Shape) && slices.Equal(r.scales, rtn.scales) {
		p.rep.GPTQ++
		return r, nil
	}
	return rtn, nil
}

// quantizeBias makes the int32 bias with scale sa·sw[c] (zero point 0), as
// ONNX Runtime's quantizer computes it: float32 product, division rounded
// half to even.
func quantizeBias(b *tensor.Tensor, sa float32, sw []float32) (*tensor.Tensor, []float32) {
	x := b.F32()
	out := make([]int32, len(x))
	scales := make([]float32, len(x))
	for i, f := range x {
		s := sa * sw[0]
		if len(sw) > 1 {
			s = sa * sw[i]
		}
		scales[i] = s
		r := math.RoundToEven(float64(f / s))
		r = math.Max(math.MinInt32, math.Min(math.MaxInt32, r))
		out[i] = int32(r)
	}
	return &tensor.Tensor{DType: tensor.Int32, Shape: []int{len(x)}, Data: out}, scales
}

// constantsToInitializers turns Constant nodes that feed a weight or bias
// input of Conv/Gemm/MatMul into initializers, so that old exports (which
// write weights as Constant nodes) quantize like any other model.
func constantsToInitializers(g *graph.Graph) {
	ix := g.Index()
	for _, n := range append([]*graph.Node(nil), g.Nodes...) {
		if n.OpType != "Constant" || !graph.IsDefaultDomain(n.Domain) || len(n.Outputs) != 1 || n.Outputs[0] == nil {
			continue
		}
		v := n.Outputs[0]
		t, err := n.AttrTensor("value")
		if err != nil || t == nil || t.DType != tensor.Float32 || ix.Outputs[v] {
			continue
		}
		weightOnly := len(ix.Consumers[v]) > 0
		for _, c := range ix.Consumers[v] {
			isW := false
			switch c.OpType {
			case "Conv", "Gemm", "MatMul", "LSTM", "GRU", "RNN":
				for i, in := range c.Inputs {
					if in == v && i > 0 {
						isW = true
					}
				}
			}
			if !isW || !graph.IsDefaultDomain(c.Domain) {
				weightOnly = false
			}
		}
		if !weightOnly {
			continue
		}
		v.Const, v.DType, v.Shape = t, t.DType, graph.KnownShape(t.Shape...)
		g.Initializers = append(g.Initializers, v)
		g.RemoveNode(n)
	}
}
