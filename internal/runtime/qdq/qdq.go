// Package qdq turns QDQ-form models (DequantizeLinear → float op →
// QuantizeLinear, as PyTorch, ONNX Runtime's quantization tool and our own
// convert write them) into QOperator nodes that run on the integer kernels
// of internal/runtime/ops/qlinear, the way ONNX Runtime's QDQ transformer
// (qdq_selectors / qdq_actions) does before it executes such a model.
//
// It is a pure graph rewrite: commands call Rewrite before
// runtime.NewSession. Patterns it does not recognise stay as
// DQ → float op → Q, which is correct, only slower. The integer ops
// requantize once (round half to even) where the float path rounds the
// float result, so a fused node may differ from the float path by 1 LSB,
// as ONNX Runtime's fused nodes do.
//
// The rewritten graph is for our runtime: besides ONNX and com.microsoft
// ops it may hold com.qtool ops (MaxPool2d, LookupTable, Resize8,
// QLinear{Batch,Instance,Layer,Group}Normalization), which other runtimes
// do not know, so it is not meant to be saved for them.
package qdq

import (
	"fmt"
	"math"
	"sort"
	"strings"

	"github.com/qtool/qtool/internal/graph"
	"github.com/qtool/qtool/internal/tensor"
)

const msDomain = "com.microsoft"

// Report counts what Rewrite did.
type Report struct {
	// Fused maps the op type of each new integer node to how many were made.
	Fused map[string]int
	// Passthrough counts data-movement ops (MaxPool, Reshape, …) whose
	// DQ/Q pair with equal qparams was dropped so they run on the integer
	// tensor.
	Passthrough map[string]int
	// FoldedActivations counts Relu/Clip nodes absorbed into the output
	// quantization range.
	FoldedActivations int
	// Constants counts Constant/ConstantOfShape/Cast nodes evaluated into
	// initializers (the PyTorch exporter writes qparams that way).
	Constants int
	// Casts counts no-op Casts (to the type the value already has) removed.
	Casts int
	// Float maps op types still fed by DequantizeLinear (left in float).
	Float map[string]int
	// ChannelsLast counts integer nodes moved to NHWC.
	ChannelsLast int
	// Tables maps the op type of each float activation turned into a
	// com.qtool LookupTable to how many were.
	Tables map[string]int
}

func (r *Report) String() string {
	f := func(m map[string]int) string {
		var ks []string
		for k := range m {
			ks = append(ks, k)
		}
		sort.Strings(ks)
		var b strings.Builder
		for i, k := range ks {
			if i > 0 {
				b.WriteString(" ")
			}
			fmt.Fprintf(&b, "%s=%d", k, m[k])
		}
		return b.String()
	}
	return fmt.Sprintf("fused[%s] passthrough[%s] folded-activations=%d constants=%d casts=%d float[%s]",
		f(r.Fused), f(r.Passthrough), r.FoldedActivations, r.Constants, r.Casts, f(r.Float))
}

// Total returns the number of integer nodes made.
func (r *Report) Total() int {
	t := 0
	for _, c := range r.Fused {
		t += c
	}
	return t
}

type rewriter struct {
	g   *graph.Graph
	ix  *graph.Index
	nm  *graph.Namer
	rep *Report
	// dead holds nodes replaced in this pass, removed at its end.
	dead map[*graph.Node]bool
	// tableNodes are the constant nodes that compute lookup tables (folded
	// by the session); they are not float work left behind.
	tableNodes map[*graph.Node]bool
}

// Rewrite fuses the QDQ patterns of g (the main graph; subgraphs are left
// alone) into integer ops and reports what it did. On error the graph may be
// partly rewritten but is still a valid graph with the original semantics
// for every node not yet touched.
func Rewrite(g *graph.Graph) (*Report, error) {
	if g == nil {
		return nil, fmt.Errorf("qdq: nil graph")
	}
	r := &rewriter{g: g, nm: g.NewNamer(), rep: &Report{Fused: map[string]int{}, Passthrough: map[string]int{}, Float: map[string]int{}, Tables: map[string]int{}},
		tableNodes: map[*graph.Node]bool{}}
	if err := r.foldConstants(); err != nil {
		return nil, err
	}
	r.dropNoOpCasts()
	r.ix = g.Index()
	r.dead = map[*graph.Node]bool{}
	for _, q := range append([]*graph.Node(nil), g.Nodes...) {
		if !isOp(q, "QuantizeLinear") || r.dead[q] {
			continue
		}
		if err := r.fuseAt(q); err != nil {
			return nil, err
		}
	}
	var keep []*graph.Node
	for _, n := range g.Nodes {
		if !r.dead[n] {
			keep = append(keep, n)
		}
	}
	g.Nodes = keep
	g.RemoveUnused()
	r.integerMaxPools()
	r.rep.ChannelsLast = r.channelsLast()
	r.tableBinaries()
	g.RemoveUnused()
	if r.rep.Total() > 0 || len(r.rep.Passthrough) > 0 {
		if g.Opsets == nil {
			g.Opsets = map[string]int64{}
		}
		for _, d := range []string{msDomain, qtoolDomain} {
			if _, ok := g.Opsets[d]; !ok {
				g.Opsets[d] = 1
			}
		}
	}
	ix := g.Index()
	for _, n := range g.Nodes {
		if r.tableNodes[n] {
			continue
		}
		for _, v := range n.Inputs {
			if p := ix.Producer[v]; p != nil && isOp(p, "DequantizeLinear") && !isOp(n, "QuantizeLinear") {
				r.rep.Float[n.OpType]++
				break
			}
		}
	}
	return r.rep, nil
}

func isOp(n *graph.Node, op string) bool {
	return n != nil && n.OpType == op && graph.IsDefaultDomain(n.Domain)
}

// foldConstants turns Constant nodes, and ConstantOfShape/Cast nodes fed
// only by constants, into initializers, so qparams and weights are plain
// Value.Const data (the kernels pack constant weights at load time).
func (r *rewriter) foldConstants() error {
	var keep []*graph.Node
	for _, n := range r.g.Nodes {
		t, ok, err := evalConst(n)
		if err != nil {
			return err
		}
		if !ok || len(n.Outputs) != 1 || n.Outputs[0] == nil {
			keep = append(keep, n)
			continue
		}
		v := n.Outputs[0]
		v.Const = t
		v.DType = t.DType
		v.Shape = graph.KnownShape(t.Shape...)
		r.g.Initializers = append(r.g.Initializers, v)
		r.rep.Constants++
	}
	r.g.Nodes = keep
	return nil
}

func evalConst(n *graph.Node) (*tensor.Tensor, bool, error) {
	if !graph.IsDefaultDomain(n.Domain) || len(n.Subgraphs()) > 0 {
		return nil, false, nil
	}
	switch n.OpType {
	case "Constant":
		if n.Attr("value") == nil || len(n.Attrs) != 1 {
			return nil, false, nil
		}
		t, err := n.AttrTensor("value")
		if err != nil || t == nil || t.Validate() != nil {
			return nil, false, nil
		}
		return t, true, nil
	case "ConstantOfShape":
		sv := n.Input(0)
		if sv == nil || sv.Const == nil || sv.Const.DType != tensor.Int64 {
			return nil, false, nil
		}
		shape := make([]int, 0, sv.Const.Len())
		for _, d := range sv.Const.I64() {
			if d < 0 || d > 1<<20 {
				return nil, false, nil
			}
			shape = append(shape, int(d))
		}
		// Only small tensors: this exists for zero points and biases.
		if num, err := tensor.NumElements(shape); err != nil || num > 1<<16 {
			return nil, false, nil
		}
		val := tensor.FromFloat32([]int{1}, []float32{0})
		if n.Attr("value") != nil {
			t, err := n.AttrTensor("value")
			if err != nil || t == nil || t.Validate() != nil || t.Len() != 1 {
				return nil, false, nil
			}
			val = t
		}
		out, err := tensor.New(val.DType, shape)
		if err != nil {
			return nil, false, nil
		}
		f, err := val.AsFloat64()
		if err != nil {
			return nil, false, nil
		}
		if !fill(out, f[0]) {
			return nil, false, nil
		}
		return out, true, nil
	case "Cast":
		iv := n.Input(0)
		if iv == nil || iv.Const == nil || iv.Const.Len() > 1<<16 {
			return nil, false, nil
		}
		to, err := n.AttrInt("to", 0)
		if err != nil {
			return nil, false, nil
		}
		f, err := iv.Const.AsFloat64()
		if err != nil {
			return nil, false, nil
		}
		out, err := tensor.New(tensor.DType(to), iv.Const.Shape)
		if err != nil {
			return nil, false, nil
		}
		if !castInto(out, f) {
			return nil, false, nil
		}
		return out, true, nil
	}
	return nil, false, nil
}

// fill sets every element of t to v; only integer-valued fills of the
// integer types and float32 are handled (what exporters write).
func fill(t *tensor.Tensor, v float64) bool {
	f := make([]float64, t.Len())
	for i := range f {
		f[i] = v
	}
	return castInto(t, f)
}

// castInto stores f in t, refusing values the integer type cannot hold
// exactly (Cast's wrap-around behaviour is not worth reproducing here).
func castInto(t *tensor.Tensor, f []float64) bool {
	ok := func(v, lo, hi float64) bool { return v == math.Trunc(v) && v >= lo && v <= hi }
	switch t.DType {
	case tensor.Float32:
		d := t.F32()
		for i, v := range f {
			// Beyond 2^53 the int64 → float64 step already rounded, and a
			// second rounding could differ from Cast's single one.
			if math.Abs(v) > 1<<53 && !math.IsInf(v, 0) {
				return false
			}
			d[i] = float32(v)
		}
	case tensor.Int32:
		d := t.I32()
		for i, v := range f {
			if !ok(v, math.MinInt32, math.MaxInt32) {
				return false
			}
			d[i] = int32(v)
		}
	case tensor.Int64:
		d := t.I64()
		for i, v := range f {
			if !ok(v, -(1 << 53), 1<<53) {
				return false
			}
			d[i] = int64(v)
		}
	case tensor.Uint8:
		d := t.U8()
		for i, v := range f {
			if !ok(v, 0, 255) {
				return false
			}
			d[i] = uint8(v)
		}
	case tensor.Int8:
		d := t.I8()
		for i, v := range f {
			if !ok(v, -128, 127) {
				return false
			}
			d[i] = int8(v)
		}
	default:
		return false
	}
	return true
}

// dropNoOpCasts removes Casts to the element type their input already has:
// PyTorch 1.13 writes Cast(to=uint8) between every QuantizeLinear(uint8)
// and the DequantizeLinear reading it, which would hide the QDQ pattern.
func (r *rewriter) dropNoOpCasts() {
	ix := r.g.Index()
	for _, n := range append([]*graph.Node(nil), r.g.Nodes...) {
		if !isOp(n, "Cast") || len(n.Inputs) != 1 || len(n.Outputs) != 1 || n.Inputs[0] == nil || n.Outputs[0] == nil {
			continue
		}
		out := n.Outputs[0]
		if ix.Outputs[out] {
			continue
		}
		to, err := n.AttrInt("to", 0)
		if err != nil {
			continue
		}
		if dt := quantizedType(ix, n.Inputs[0]); dt == tensor.Undefined || int64(dt) != to {
			continue
		}
		r.g.ReplaceAllUses(out, n.Inputs[0])
		r.g.RemoveNode(n)
		r.rep.Casts++
	}
}

// quantizedType is the element type of v when it is known for sure: a
// declared type, a constant, or a QuantizeLinear output (its zero point's
// type, uint8 without one).
func quantizedType(ix *graph.Index, v *graph.Value) tensor.DType {
	if v.Const != nil {
		return v.Const.DType
	}
	if p := ix.Producer[v]; isOp(p, "QuantizeLinear") {
		if z := p.Input(2); z != nil {
			if z.Const != nil {
				return z.Const.DType
			}
			return tensor.Undefined
		}
		return tensor.Uint8
	}
	return v.DType
}
