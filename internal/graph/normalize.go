package graph

import (
	"fmt"
	"strings"

	"github.com/qtool/qtool/internal/tensor"
)

// NormalizedOpset is the lowest ai.onnx opset a graph has after Normalize.
//
// Why: ONNX changed several operators' form between opsets 1 and 9 (legacy
// broadcast/axis attributes on arithmetic ops, Reshape's shape attribute,
// consumed_inputs, is_test/spatial on BatchNormalization, Upsample's scales
// attribute, ...). Rather than teach every kernel, fuse and convert pass
// those old forms, the loader rewrites them once into the opset-9 forms with
// the same results and records 9 as the graph's ai.onnx opset. Ops whose
// form did not change are left alone, so for them the opset-9 semantics are
// the old semantics. Graphs at opset 9 or above are not touched.
//
// The file's original opset stays in the model (model.Model.FileOpsets) for
// inspection; saving writes Graph.Opsets, because the rewritten nodes are
// only valid at the raised opset.
const NormalizedOpset = 9

// Normalize rewrites old-opset operator forms of g (and its subgraphs) into
// their opset-9 equivalents and raises g.Opsets[""] to NormalizedOpset. It
// reports old forms that have no equivalent rewrite as errors.
func Normalize(g *Graph) error {
	v, ok := g.Opsets[""]
	if !ok || v >= NormalizedOpset {
		return nil
	}
	if v == 8 && hasOp(g, "Scan") {
		// Opset-8 Scan (batch axis, sequence_lens) has no opset-9 rewrite
		// short of a Loop; the graph keeps opset 8 as a whole, which is
		// still correct, and the runtime decides whether it supports it.
		return nil
	}
	// Ranks are needed for legacy broadcasting; inference is best effort.
	_ = InferShapes(g)
	nz := &normalizer{opset: v, nm: g.NewNamer()}
	if err := nz.graph(g); err != nil {
		return err
	}
	g.Opsets[""] = NormalizedOpset
	return nil
}

type normalizer struct {
	opset int64
	nm    *Namer
}

var legacyBroadcastOps = map[string]bool{
	"Add": true, "Sub": true, "Mul": true, "Div": true, "Pow": true, "And": true, "Or": true,
	"Xor": true, "Equal": true, "Greater": true, "Less": true,
}

var castNames = map[string]tensor.DType{
	"FLOAT": tensor.Float32, "UINT8": tensor.Uint8, "INT8": tensor.Int8, "UINT16": tensor.Uint16,
	"INT16": tensor.Int16, "INT32": tensor.Int32, "INT64": tensor.Int64, "STRING": tensor.String,
	"BOOL": tensor.Bool, "FLOAT16": tensor.Float16, "DOUBLE": tensor.Float64,
	"UINT32": tensor.Uint32, "UINT64": tensor.Uint64,
}

func (nz *normalizer) graph(g *Graph) error {
	// Iterate over a copy: rewrites insert nodes.
	nodes := append([]*Node(nil), g.Nodes...)
	for _, n := range nodes {
		for _, sg := range n.Subgraphs() {
			if err := nz.graph(sg); err != nil {
				return err
			}
		}
		if !IsDefaultDomain(n.Domain) {
			continue
		}
		if err := nz.node(g, n); err != nil {
			return fmt.Errorf("normalizing opset %d: %v: %v", nz.opset, n, err)
		}
	}
	return nil
}

func (nz *normalizer) node(g *Graph, n *Node) error {
	n.RemoveAttr("consumed_inputs")
	op := n.OpType
	switch {
	case legacyBroadcastOps[op]:
		return nz.legacyBroadcast(g, n)
	case op == "Gemm":
		n.RemoveAttr("broadcast")
	case op == "Reshape":
		if a := n.Attr("shape"); a != nil {
			shape, err := n.AttrInts("shape", nil)
			if err != nil {
				return err
			}
			if len(n.Inputs) < 1 || n.Inputs[0] == nil {
				return fmt.Errorf("Reshape without a data input")
			}
			t := tensor.FromInt64([]int{len(shape)}, append([]int64(nil), shape...))
			c := g.AddInitializer(nz.nm, nameOf(n)+"_shape", t)
			n.Inputs = append(n.Inputs[:1:1], c)
			n.RemoveAttr("shape")
		}
	case op == "BatchNormalization":
		n.RemoveAttr("is_test")
		spatial, err := n.AttrInt("spatial", 1)
		if err != nil {
			return err
		}
		if spatial == 0 {
			x := n.Input(0)
			if x == nil || x.Shape == nil || len(x.Shape) > 2 {
				return fmt.Errorf("spatial=0 (per-activation statistics) is not supported")
			}
		}
		n.RemoveAttr("spatial")
	case op == "Dropout":
		n.RemoveAttr("is_test")
	case op == "Concat":
		if n.Attr("axis") == nil {
			n.SetAttr(IntAttr("axis", 1)) // opset 1-3 default
		}
	case op == "Pad":
		if a := n.Attr("paddings"); a != nil {
			a.Name = "pads"
		}
	case op == "Cast":
		if a := n.Attr("to"); a != nil && a.Type == AttrString {
			dt, ok := castNames[strings.ToUpper(a.S)]
			if !ok {
				return fmt.Errorf("unknown Cast target %q", a.S)
			}
			n.SetAttr(IntAttr("to", int64(dt)))
		}
	case op == "Upsample":
		return nz.upsample(g, n)
	case op == "Tile" && len(n.Inputs) == 3:
		return fmt.Errorf("opset-1 Tile (tiles, axis inputs) is not supported")
	case op == "Split" && len(n.Inputs) == 2:
		return fmt.Errorf("opset-1 Split with a split input is not supported")
	}
	return nil
}

func hasOp(g *Graph, op string) bool {
	for _, n := range g.Nodes {
		if n.OpType == op && IsDefaultDomain(n.Domain) {
			return true
		}
		for _, sg := range n.Subgraphs() {
			if hasOp(sg, op) {
				return true
			}
		}
	}
	return false
}

func nameOf(n *Node) string {
	if n.Name != "" {
		return n.Name
	}
	if o := n.Output(0); o != nil {
		return o.Name
	}
	return n.OpType
}

// legacyBroadcast rewrites opset < 7 broadcasting. broadcast=1 with axis=k
// aligned B's dims with A's starting at dim k; numpy aligns trailing dims, so
// B gains trailing 1-dims: B[C] on A[N,C,H,W] with axis 1 becomes B[C,1,1].
// Without axis the legacy rule was suffix matching, which numpy already is.
func (nz *normalizer) legacyBroadcast(g *Graph, n *Node) error {
	bc, err := n.AttrInt("broadcast", 0)
	if err != nil {
		return err
	}
	axisAttr := n.Attr("axis")
	n.RemoveAttr("broadcast")
	n.RemoveAttr("axis")
	if bc == 0 || axisAttr == nil {
		return nil
	}
	if axisAttr.Type != AttrInt {
		return fmt.Errorf("axis attribute is %v, want int", axisAttr.Type)
	}
	a, b := n.Input(0), n.Input(1)
	if a == nil || b == nil {
		return fmt.Errorf("needs two inputs")
	}
	ix := g.Index()
	bt := ConstValue(ix, b)
	var rb int
	switch {
	case bt != nil:
		rb = len(bt.Shape)
	case b.Shape != nil:
		rb = len(b.Shape)
	default:
		return fmt.Errorf("legacy broadcast with axis on input %q of unknown rank", b.Name)
	}
	if a.Shape == nil {
		return fmt.Errorf("legacy broadcast with axis on input %q of unknown rank", a.Name)
	}
	ra := len(a.Shape)
	axis := axisAttr.I
	if axis < 0 {
		axis += int64(ra)
	}
	trailing := int64(ra) - axis - int64(rb)
	if axis < 0 || trailing < 0 {
		return fmt.Errorf("broadcast axis %d does not fit ranks %d and %d", axisAttr.I, ra, rb)
	}
	if trailing == 0 {
		return nil
	}
	if bt != nil {
		// Reshape the constant itself so that later passes still see a
		// constant operand (Conv + Add bias folding relies on it).
		t := bt.Clone()
		for i := int64(0); i < trailing; i++ {
			t.Shape = append(t.Shape, 1)
		}
		nb := g.AddInitializer(nz.nm, b.Name+"_bcast", t)
		n.Inputs[1] = nb
		if p := ix.Producer[b]; p != nil && ix.Uses(b) == 1 {
			g.RemoveNode(p)
		}
		return nil
	}
	shape := make([]int64, rb+int(trailing))
	for i := rb; i < len(shape); i++ {
		shape[i] = 1
	}
	c := g.AddInitializer(nz.nm, b.Name+"_bcast_shape", tensor.FromInt64([]int{len(shape)}, shape))
	r := nz.nm.NewNode("Reshape", b.Name+"_bcast", []*Value{b, c}, 1)
	out := r.Output(0)
	out.DType = b.DType
	if b.Shape != nil {
		out.Shape = append(append(Shape{}, b.Shape...), make(Shape, trailing)...)
		for i := rb; i < len(out.Shape); i++ {
			out.Shape[i] = Dim{Value: 1}
		}
	}
	g.InsertNodeBefore(n, r)
	n.Inputs[1] = out
	return nil
}

// upsample turns the opset-7 scales attribute (and opset-1 height_scale /
// width_scale) into the opset-9 constant scales input.
func (nz *normalizer) upsample(g *Graph, n *Node) error {
	if len(n.Inputs) >= 2 {
		return nil
	}
	var scales []float32
	if a := n.Attr("scales"); a != nil {
		s, err := n.AttrFloats("scales", nil)
		if err != nil {
			return err
		}
		scales = s
		n.RemoveAttr("scales")
	} else {
		h, err := n.AttrFloat("height_scale", 0)
		if err != nil {
			return err
		}
		w, err := n.AttrFloat("width_scale", 0)
		if err != nil {
			return err
		}
		if h == 0 || w == 0 {
			return fmt.Errorf("Upsample without scales")
		}
		scales = []float32{1, 1, h, w}
		n.RemoveAttr("height_scale")
		n.RemoveAttr("width_scale")
		if m, _ := n.AttrString("mode", "nearest"); strings.EqualFold(m, "bilinear") {
			n.SetAttr(StringAttr("mode", "linear"))
		}
	}
	c := g.AddInitializer(nz.nm, nameOf(n)+"_scales", tensor.FromFloat32([]int{len(scales)}, append([]float32(nil), scales...)))
	n.Inputs = append(n.Inputs, c)
	return nil
}
