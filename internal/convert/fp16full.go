package convert

import (
	"fmt"
	"math"
	"sort"

	"github.com/x448/float16"

	"github.com/qtool/qtool/internal/graph"
	"github.com/qtool/qtool/internal/tensor"
)

// The whole-model float16 conversion (qtool convert --fp16-full) follows
// onnxconverter-common's convert_float_to_float16 as ONNX Runtime ships it
// (onnxruntime/transformers/float16.py):
//   - every float32 tensor becomes float16: initializers, Constant values,
//     value types, Cast/RandomXxx/EyeLike "to"/"dtype" attributes,
//     ConstantOfShape's value, and the bodies of If/Loop/Scan;
//   - the ops of its DEFAULT_OP_BLOCK_LIST (ai.onnx.ml ops, TopK, Range,
//     CumSum, Min, Max, Upsample, RoiAlign, NonMaxSuppression,
//     RandomUniformLike) stay float32 with Casts around them, and Resize's
//     scales (ALWAYS_FLOAT_INPUTS) stay float32;
//   - an initializer only float32 nodes read stays float32;
//   - graph inputs and outputs stay float32 behind a Cast unless float16
//     I/O is asked for (keep_io_types=True is what it calls the default
//     here);
//   - values beyond float16's range are clamped to ±65504 and nonzero
//     values below its smallest subnormal to ±2^-24, keeping sign and
//     finiteness (its min_positive_val/max_finite_val). Such constants are
//     almost always masks (-1e9 before a Softmax) or guards against a
//     division by zero, where the clamped value has the same effect and Inf
//     or 0 would not; Float16Report.Clamped lists them.
//
// Where qtool differs: QuantizeLinear/DequantizeLinear/DynamicQuantizeLinear,
// QLinearConv/QLinearMatMul and ops outside the ai.onnx domain also stay float32 (scales are float32
// before opset 19; contrib ops are usually float32-only), and nodes that
// compute shapes in float (PyTorch's Resize/Upsample size arithmetic:
// Cast(Shape) * scale, Floor, Cast to int64) stay float32, because float16
// holds integers exactly only up to 2048.

// DefaultFP16BlockList is onnxconverter-common's DEFAULT_OP_BLOCK_LIST plus
// the quantization ops.
var DefaultFP16BlockList = []string{
	"ArrayFeatureExtractor", "Binarizer", "CastMap", "CategoryMapper", "DictVectorizer",
	"FeatureVectorizer", "Imputer", "LabelEncoder", "LinearClassifier", "LinearRegressor",
	"Normalizer", "OneHotEncoder", "RandomUniformLike", "SVMClassifier", "SVMRegressor", "Scaler",
	"TreeEnsembleClassifier", "TreeEnsembleRegressor", "TreeEnsemble", "ZipMap",
	"NonMaxSuppression", "TopK", "RoiAlign", "Range", "CumSum", "Min", "Max", "Upsample",
	"QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear", "QLinearConv", "QLinearMatMul",
}

// Float16Options configures Float16Full.
type Float16Options struct {
	// IO16 makes float32 graph inputs and outputs float16 too. By default
	// they stay float32, with a Cast after each input and before each
	// output.
	IO16 bool
	// OpBlockList lists op types kept float32; nil means
	// DefaultFP16BlockList (give an empty, non-nil list to block nothing).
	OpBlockList []string
	// NodeBlockList lists node names (globs, as in the quantization
	// config) kept float32.
	NodeBlockList []string
}

// Clamp is a constant whose values float16 cannot hold.
type Clamp struct {
	Name   string
	Over   int     // finite values beyond ±65504, clamped to ±65504
	Under  int     // nonzero values below 2^-24 in magnitude, set to ±2^-24
	MaxAbs float32 // largest finite magnitude before clamping
}

// Float16Report is what Float16Full did: Quantized counts the nodes
// converted (by op type), Float the nodes kept float32 and why.
type Float16Report struct {
	*Report
	Clamped []Clamp
	Casts   int // Cast nodes inserted
}

const (
	f16MaxFinite = 65504
	f16MinPos    = 5.9604645e-08 // 2^-24
)

// opsetResizeScales is the position of Resize's float32-only scales input.
func resizeScalesInput(opset int64) int {
	if opset < 11 {
		return 1
	}
	return 2
}

// shapeOps propagate shape arithmetic: a float value computed only from
// Shape/Size outputs and constants through these ops is a size, not data.
var shapeOps = map[string]bool{
	"Gather": true, "Slice": true, "Concat": true, "Unsqueeze": true, "Squeeze": true, "Reshape": true,
	"Cast": true, "Add": true, "Sub": true, "Mul": true, "Div": true, "Floor": true, "Ceil": true,
	"Round": true, "Max": true, "Min": true, "Neg": true, "Abs": true, "Sqrt": true, "Identity": true,
	"Equal": true, "Less": true, "Greater": true, "Where": true, "Not": true, "ReduceProd": true,
	"ReduceSum": true, "ReduceMax": true, "ReduceMin": true, "Mod": true, "Pow": true, "Clip": true,
	"Sign": true, "Expand": true, "Flatten": true, "Transpose": true,
}

// agnostic reports whether input i of n may have any type, so a float16
// value is read as it is (Cast's input, Shape, Size).
func agnostic(n *graph.Node, i int) bool {
	if !graph.IsDefaultDomain(n.Domain) {
		return false
	}
	switch n.OpType {
	case "Cast", "Shape", "Size", "CastLike":
		return i == 0
	}
	return false
}

// float32Output reports outputs that are float32 by the spec whatever the
// input type: LayerNormalization's Mean and InvStdDev (type U, float32 or
// bfloat16 by stash_type).
func float32Output(n *graph.Node, j int) bool {
	return graph.IsDefaultDomain(n.Domain) && n.OpType == "LayerNormalization" && j > 0
}

// dataTyped ops give output 0 the type of input 0 (their data input).
var dataTyped = map[string]bool{
	"GatherElements": true, "GatherND": true, "ScatterElements": true, "ScatterND": true, "Scatter": true,
	"Trilu": true, "DepthToSpace": true, "SpaceToDepth": true, "Compress": true, "ReverseSequence": true,
	"Tile": true, "Expand": true, "CumSum": true, "Gather": true, "Identity": true,
}

// fillTypes types the outputs shape inference left open where the spec
// fixes them; it reports whether it typed any.
func fillTypes(g *graph.Graph) bool {
	changed := false
	for _, n := range g.Nodes {
		for _, sg := range n.Subgraphs() {
			changed = fillTypes(sg) || changed
		}
		for j, v := range n.Outputs {
			if v == nil || v.Type != nil || v.DType != tensor.Undefined || !graph.IsDefaultDomain(n.Domain) {
				continue
			}
			switch {
			case float32Output(n, j):
				if st, _ := n.AttrInt("stash_type", 1); st == int64(tensor.Float32) {
					v.DType = tensor.Float32
				}
			case j == 0 && dataTyped[n.OpType] && n.Input(0) != nil:
				v.DType = n.Input(0).DType
			}
			changed = changed || v.DType != tensor.Undefined
		}
	}
	return changed
}

type f16Node struct {
	n      *graph.Node
	g      *graph.Graph // the graph holding n
	keep32 bool
	reason string
}

type f16Conv struct {
	opts    Float16Options
	block   map[string]bool
	nodes   []*f16Node
	byNode  map[*graph.Node]*f16Node
	owner   map[*graph.Graph]*f16Node // subgraph -> node holding it (nil: main)
	graphs  []*graph.Graph
	was32   map[*graph.Value]bool // tensor values that were float32
	consts  map[*graph.Value]bool // initializers and Constant outputs
	cnode   map[*graph.Value]*graph.Node
	home    map[*graph.Value]tensor.DType
	nm      *graph.Namer
	opset   int64 // the model's ai.onnx opset (graphs built in code may not give subgraphs one)
	rep     *Float16Report
	castOf  map[castKey]*graph.Value
	inserts map[*graph.Graph][]castIns
}

type castKey struct {
	g  *graph.Graph
	v  *graph.Value
	dt tensor.DType
}

type castIns struct {
	before *graph.Node // nil: at the end
	n      *graph.Node
}

// Float16Full converts the whole graph to float16 (see the comment above
// DefaultFP16BlockList for the rules). The graph is changed in place.
func Float16Full(g *graph.Graph, opts Float16Options) (*Float16Report, error) {
	c := &f16Conv{
		opts: opts, byNode: map[*graph.Node]*f16Node{}, owner: map[*graph.Graph]*f16Node{},
		was32: map[*graph.Value]bool{}, consts: map[*graph.Value]bool{}, cnode: map[*graph.Value]*graph.Node{},
		home: map[*graph.Value]tensor.DType{}, castOf: map[castKey]*graph.Value{}, inserts: map[*graph.Graph][]castIns{},
		rep: &Float16Report{Report: newReport()},
	}
	list := opts.OpBlockList
	if list == nil {
		list = DefaultFP16BlockList
	}
	c.block = map[string]bool{}
	for _, op := range list {
		c.block[op] = true
	}
	for _, p := range opts.NodeBlockList {
		if _, err := globMatch(p, ""); err != nil {
			return nil, fmt.Errorf("float16: node block list %q: %v", p, err)
		}
	}
	// Shape inference and the types it leaves open but the spec fixes,
	// until nothing changes (each can unblock the other downstream).
	for i := 0; ; i++ {
		if err := graph.InferShapes(g); err != nil {
			return nil, fmt.Errorf("float16 needs every value's type: %v", err)
		}
		if i == 8 || !fillTypes(g) {
			break
		}
	}
	if err := c.collect(g, nil); err != nil {
		return nil, err
	}
	c.nm = g.NewNamer()
	c.opset = g.Opset("")
	c.markShapeArithmetic()
	c.decideHomes()
	if err := c.apply(g); err != nil {
		return nil, err
	}
	// The result must type-check: every inferred dtype agrees with the one
	// declared.
	if err := graph.InferShapes(g); err != nil {
		return nil, fmt.Errorf("float16: converted graph is inconsistent: %v", err)
	}
	return c.rep, nil
}

// collect lists the nodes of g and its subgraphs with their float32 values
// and decides which nodes stay float32 for their op or name.
func (c *f16Conv) collect(g *graph.Graph, owner *f16Node) error {
	c.graphs = append(c.graphs, g)
	c.owner[g] = owner
	mark := func(v *graph.Value) error {
		if v == nil {
			return nil
		}
		if v.Type != nil && hasFloat32(v.Type) {
			return fmt.Errorf("float16: %q is a %v: float16 conversion handles tensors only", v.Name, v.Type)
		}
		if v.DType == tensor.Float32 || (v.Const != nil && v.Const.DType == tensor.Float32) {
			c.was32[v] = true
		}
		return nil
	}
	for _, v := range g.Inputs {
		if err := mark(v); err != nil {
			return err
		}
	}
	for _, v := range g.Initializers {
		if err := mark(v); err != nil {
			return err
		}
		c.consts[v] = true
	}
	for _, n := range g.Nodes {
		fn := &f16Node{n: n, g: g}
		switch {
		case owner != nil && owner.keep32:
			fn.keep32, fn.reason = true, "inside a float32 "+owner.n.OpType
		case !graph.IsDefaultDomain(n.Domain):
			fn.keep32, fn.reason = true, "op outside ai.onnx ("+n.Domain+")"
		case c.block[n.OpType]:
			fn.keep32, fn.reason = true, "op type in the float16 block list"
		default:
			for _, p := range c.opts.NodeBlockList {
				if ok, _ := globMatch(p, n.Name); ok {
					fn.keep32, fn.reason = true, "node name in the float16 block list"
				}
			}
		}
		c.nodes = append(c.nodes, fn)
		c.byNode[n] = fn
		for _, v := range n.Inputs {
			if err := mark(v); err != nil {
				return err
			}
		}
		for _, v := range n.Outputs {
			if err := mark(v); err != nil {
				return err
			}
			if v != nil && v.Type == nil && v.DType == tensor.Undefined {
				return fmt.Errorf("float16: the type of %q (output of %v) is unknown: shape inference does not cover it", v.Name, n)
			}
		}
		if n.OpType == "Constant" && graph.IsDefaultDomain(n.Domain) && len(n.Outputs) == 1 && n.Outputs[0] != nil {
			c.consts[n.Outputs[0]] = true
			c.cnode[n.Outputs[0]] = n
		}
		for _, sg := range n.Subgraphs() {
			if err := c.collect(sg, fn); err != nil {
				return err
			}
		}
	}
	for _, v := range g.Outputs {
		if err := mark(v); err != nil {
			return err
		}
	}
	return nil
}

func hasFloat32(t *graph.Type) bool {
	for ; t != nil; t = t.Elem {
		if t.DType == tensor.Float32 {
			return true
		}
	}
	return false
}

// markShapeArithmetic keeps float32 the nodes whose float outputs are sizes
// computed from Shape/Size (see shapeOps).
func (c *f16Conv) markShapeArithmetic() {
	shapeLike := map[*graph.Value]bool{}
	for changed := true; changed; {
		changed = false
		for _, fn := range c.nodes {
			n := fn.n
			if !graph.IsDefaultDomain(n.Domain) || len(n.Outputs) == 0 || shapeLike[n.Outputs[0]] {
				continue
			}
			ok := n.OpType == "Shape" || n.OpType == "Size"
			if !ok && shapeOps[n.OpType] {
				some := false
				ok = true
				for _, v := range n.Inputs {
					switch {
					case v == nil || c.consts[v]:
					case shapeLike[v]:
						some = true
					default:
						ok = false
					}
				}
				ok = ok && some
			}
			if !ok {
				continue
			}
			for _, v := range n.Outputs {
				if v != nil {
					shapeLike[v] = true
				}
			}
			changed = true
			if !fn.keep32 && n.OpType != "Shape" && n.OpType != "Size" {
				for _, v := range n.Outputs {
					if c.was32[v] {
						fn.keep32, fn.reason = true, "float shape arithmetic (float16 holds integers exactly only to 2048)"
					}
				}
			}
		}
	}
}

// want is the dtype node fn needs at input i for a value that was float32:
// Undefined when any will do.
func (c *f16Conv) want(fn *f16Node, i int) tensor.DType {
	n := fn.n
	switch {
	case agnostic(n, i):
		return tensor.Undefined
	case fn.keep32:
		return tensor.Float32
	case n.OpType == "Resize" && i == resizeScalesInput(c.opset):
		return tensor.Float32
	}
	return tensor.Float16
}

// ioType is the dtype graph g's float inputs and outputs must have.
func (c *f16Conv) ioType(g *graph.Graph) tensor.DType {
	o := c.owner[g]
	switch {
	case o == nil && !c.opts.IO16:
		return tensor.Float32
	case o != nil && o.keep32:
		return tensor.Float32
	}
	return tensor.Float16
}

// decideHomes picks the dtype each float32 value is produced in.
func (c *f16Conv) decideHomes() {
	votes := map[*graph.Value]bool{}
	for _, fn := range c.nodes {
		for i, v := range fn.n.Inputs {
			if v != nil && c.consts[v] && c.was32[v] && c.want(fn, i) == tensor.Float16 {
				votes[v] = true
			}
		}
	}
	for _, g := range c.graphs {
		for _, v := range g.Inputs {
			if c.was32[v] {
				c.home[v] = c.ioType(g)
			}
		}
		for _, v := range g.Initializers {
			if c.was32[v] {
				c.home[v] = tensor.Float32
				if votes[v] {
					c.home[v] = tensor.Float16
				}
			}
		}
	}
	for _, fn := range c.nodes {
		for j, v := range fn.n.Outputs {
			if v == nil || !c.was32[v] {
				continue
			}
			switch {
			case float32Output(fn.n, j):
				c.home[v] = tensor.Float32
			case c.cnode[v] != nil:
				c.home[v] = tensor.Float32
				if votes[v] && !fn.keep32 {
					c.home[v] = tensor.Float16
				}
			case fn.keep32:
				c.home[v] = tensor.Float32
			default:
				c.home[v] = tensor.Float16
			}
		}
	}
	// A constant that is also a graph output is produced in the output's
	// type rather than cast.
	for _, g := range c.graphs {
		for _, v := range g.Outputs {
			if c.consts[v] && c.was32[v] && !votes[v] {
				c.home[v] = c.ioType(g)
			}
		}
	}
}

// apply rewrites the graph: types, constants, attributes, Casts.
func (c *f16Conv) apply(main *graph.Graph) error {
	// Main graph outputs keep their names: where the producer's type is
	// not the output's, the producer writes a renamed value and a Cast
	// writes the output.
	io := c.ioType(main)
	prod := map[*graph.Value]*graph.Node{}
	for _, n := range main.Nodes {
		for _, v := range n.Outputs {
			if v != nil {
				prod[v] = n
			}
		}
	}
	for _, v := range append([]*graph.Value(nil), main.Outputs...) {
		p := prod[v]
		if p == nil || !c.was32[v] || c.home[v] == io {
			continue
		}
		nv := &graph.Value{Name: c.nm.Name(v.Name + suffix(c.home[v])), DType: c.home[v], Shape: v.Shape}
		main.ReplaceAllUses(v, nv)
		for j, o := range main.Outputs {
			if o == nv {
				main.Outputs[j] = v
			}
		}
		for j, o := range p.Outputs {
			if o == v {
				p.Outputs[j] = nv
			}
		}
		c.was32[nv], c.home[nv] = true, c.home[v]
		if c.cnode[v] != nil {
			c.cnode[nv], c.consts[nv] = c.cnode[v], true
			delete(c.cnode, v)
			delete(c.consts, v)
		}
		c.home[v] = io
		c.inserts[main] = append(c.inserts[main], castIns{before: nil, n: c.castNode(nv, v, io)})
	}
	// Types and data.
	for v := range c.was32 {
		if c.home[v] == tensor.Float16 {
			v.DType = tensor.Float16
		}
	}
	for _, g := range c.graphs {
		for _, v := range g.Initializers {
			if c.was32[v] && c.home[v] == tensor.Float16 {
				h, cl, err := toFP16(v.Const)
				if err != nil {
					return fmt.Errorf("float16: initializer %q: %v", v.Name, err)
				}
				v.Const = h
				c.clamped(v.Name, cl)
			}
		}
	}
	for _, fn := range c.nodes {
		if v := fn.n.Output(0); v != nil && c.cnode[v] == fn.n && c.home[v] == tensor.Float16 {
			if err := c.constantNode(fn.n); err != nil {
				return err
			}
		}
	}
	for _, fn := range c.nodes {
		n := fn.n
		if fn.keep32 {
			c.rep.Float = append(c.rep.Float, FloatNode{Node: n.Name, OpType: n.OpType, Reason: fn.reason})
			continue
		}
		if c.cnode[n.Output(0)] == n {
			if c.home[n.Output(0)] == tensor.Float16 {
				c.rep.Quantized["Constant (float16)"]++
			}
			continue
		}
		if c.touches32(n) {
			c.rep.Quantized[n.OpType+" (float16)"]++
		}
		if err := c.attrs(n); err != nil {
			return err
		}
	}
	// Casts where a reader needs the other type.
	for _, fn := range c.nodes {
		for i, v := range fn.n.Inputs {
			if v == nil || !c.was32[v] {
				continue
			}
			w := c.want(fn, i)
			if w == tensor.Undefined || w == v.DType {
				continue
			}
			fn.n.Inputs[i] = c.castFor(fn.g, fn.n, v, w)
		}
	}
	// Subgraph outputs (and main outputs that no main node produces) in
	// the graph's I/O type, by position.
	for _, g := range c.graphs {
		want := c.ioType(g)
		for k, v := range g.Outputs {
			if v != nil && c.was32[v] && v.DType != want {
				g.Outputs[k] = c.castFor(g, nil, v, want)
			}
		}
	}
	for _, g := range c.graphs {
		for _, ins := range c.inserts[g] {
			g.InsertNodeBefore(ins.before, ins.n)
		}
	}
	sort.Slice(c.rep.Clamped, func(i, j int) bool { return c.rep.Clamped[i].Name < c.rep.Clamped[j].Name })
	return nil
}

// touches32 reports whether a node reads or writes a converted value.
func (c *f16Conv) touches32(n *graph.Node) bool {
	for _, v := range n.Inputs {
		if v != nil && c.was32[v] {
			return true
		}
	}
	for _, v := range n.Outputs {
		if v != nil && c.was32[v] {
			return true
		}
	}
	return len(n.Subgraphs()) > 0
}

func suffix(dt tensor.DType) string {
	if dt == tensor.Float16 {
		return "_fp16"
	}
	return "_fp32"
}

func (c *f16Conv) castNode(in, out *graph.Value, to tensor.DType) *graph.Node {
	c.rep.Casts++
	return &graph.Node{Name: c.nm.Name(out.Name + "_Cast"), OpType: "Cast", Inputs: []*graph.Value{in}, Outputs: []*graph.Value{out},
		Attrs: []*graph.Attribute{graph.IntAttr("to", int64(to))}}
}

// castFor returns v cast to dt for a reader in g (before node before, or
// at the end for g's outputs), one Cast per value, type and graph.
func (c *f16Conv) castFor(g *graph.Graph, before *graph.Node, v *graph.Value, dt tensor.DType) *graph.Value {
	k := castKey{g, v, dt}
	if cv := c.castOf[k]; cv != nil {
		return cv
	}
	cv := &graph.Value{Name: c.nm.Name(v.Name + suffix(dt)), DType: dt, Shape: v.Shape}
	c.castOf[k] = cv
	// The first reader in node order comes first: the Cast goes before it.
	c.inserts[g] = append(c.inserts[g], castIns{before: before, n: c.castNode(v, cv, dt)})
	return cv
}

// attrs converts the float32 type attributes of a converted node.
func (c *f16Conv) attrs(n *graph.Node) error {
	setDType := func(name string, addIfMissing bool) {
		if a := n.Attr(name); a != nil {
			if a.Type == graph.AttrInt && a.I == int64(tensor.Float32) {
				a.I = int64(tensor.Float16)
			}
		} else if addIfMissing {
			n.Attrs = append(n.Attrs, graph.IntAttr(name, int64(tensor.Float16)))
		}
	}
	out32 := false
	for _, v := range n.Outputs {
		if v != nil && c.was32[v] {
			out32 = true
		}
	}
	switch n.OpType {
	case "Cast":
		if out32 {
			setDType("to", false)
		}
	case "RandomNormal", "RandomUniform":
		setDType("dtype", true)
	case "RandomNormalLike", "RandomUniformLike", "EyeLike", "Bernoulli":
		if out32 {
			setDType("dtype", false)
		}
	case "HannWindow", "HammingWindow", "BlackmanWindow", "MelWeightMatrix":
		if out32 {
			setDType("output_datatype", true)
		}
	case "ConstantOfShape":
		if !out32 {
			return nil
		}
		a := n.Attr("value")
		if a == nil {
			n.Attrs = append(n.Attrs, graph.TensorAttr("value", tensor.MustNew(tensor.Float16, []int{1})))
		} else if a.T != nil && a.T.DType == tensor.Float32 {
			h, cl, err := toFP16(a.T)
			if err != nil {
				return fmt.Errorf("float16: %v: value: %v", n, err)
			}
			a.T = h
			c.clamped(n.Name+".value", cl)
		}
	}
	return nil
}

// constantNode rewrites a Constant's float32 value as float16.
func (c *f16Conv) constantNode(n *graph.Node) error {
	for _, a := range n.Attrs {
		var t *tensor.Tensor
		switch {
		case a.Name == "value" && a.Type == graph.AttrTensor && a.T != nil && a.T.DType == tensor.Float32:
			t = a.T
		case a.Name == "value_float" && a.Type == graph.AttrFloat:
			t = tensor.FromFloat32(nil, []float32{a.F})
		case a.Name == "value_floats" && a.Type == graph.AttrFloats:
			t = tensor.FromFloat32([]int{len(a.Floats)}, append([]float32(nil), a.Floats...))
		default:
			continue
		}
		h, cl, err := toFP16(t)
		if err != nil {
			return fmt.Errorf("float16: %v: %v", n, err)
		}
		c.clamped(n.Output(0).Name, cl)
		*a = graph.Attribute{Name: "value", Type: graph.AttrTensor, T: h, DocString: a.DocString}
		return nil
	}
	return fmt.Errorf("float16: %v: no float32 value attribute", n)
}

func (c *f16Conv) clamped(name string, cl Clamp) {
	if cl.Over > 0 || cl.Under > 0 {
		cl.Name = name
		c.rep.Clamped = append(c.rep.Clamped, cl)
	}
}

// toFP16 rounds a float32 tensor to float16 half to even after clamping
// into float16's range (sign and finiteness kept).
func toFP16(t *tensor.Tensor) (*tensor.Tensor, Clamp, error) {
	var cl Clamp
	if err := t.Validate(); err != nil {
		return nil, cl, err
	}
	src := t.F32()
	h := make([]float16.Float16, len(src))
	for i, v := range src {
		a := float32(math.Abs(float64(v)))
		switch {
		case math.IsNaN(float64(v)) || math.IsInf(float64(v), 0):
		case a > f16MaxFinite:
			cl.Over++
			v = float32(math.Copysign(f16MaxFinite, float64(v)))
		case a != 0 && a < f16MinPos:
			cl.Under++
			v = float32(math.Copysign(f16MinPos, float64(v)))
		}
		if !math.IsInf(float64(a), 0) && a > cl.MaxAbs {
			cl.MaxAbs = a
		}
		h[i] = float16.Fromfloat32(v)
	}
	return &tensor.Tensor{DType: tensor.Float16, Shape: append([]int(nil), t.Shape...), Data: h}, cl, nil
}
