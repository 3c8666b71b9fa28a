package graph

import (
	"errors"
	"fmt"

	"github.com/qtool/qtool/internal/tensor"
)

// InferShapes fills Value.DType and Value.Shape of node outputs where they
// can be derived from the inputs, attributes and constant inputs, walking
// g.Nodes in order (sort first) and recursing into subgraphs. Declared
// information is never thrown away: an inferred shape only fills unknown
// dims. Ops it does not know leave their outputs as they are; that is not
// an error. It returns the first contradiction it met (for example a MatMul
// whose inner dims differ), after inferring everything else it could.
//
// Small integer tensors that shape arithmetic produces (Shape, Constant,
// Gather, Concat, Unsqueeze, Cast, Slice of them) are evaluated on the side
// so that PyTorch-style Reshape(x, Concat(Shape(x)[0], -1)) gets a shape.
func InferShapes(g *Graph) error {
	in := &inferrer{consts: map[*Value]*tensor.Tensor{}}
	in.graph(g)
	return in.err
}

type inferrer struct {
	consts map[*Value]*tensor.Tensor
	err    error
}

func (in *inferrer) graph(g *Graph) {
	for _, v := range g.Initializers {
		if v.Const != nil {
			in.consts[v] = v.Const
		}
	}
	for _, n := range g.Nodes {
		// Bodies first: If and Loop outputs are typed by their bodies'.
		for _, sg := range n.Subgraphs() {
			in.graph(sg)
		}
		if err := in.node(n, g.Opset(n.Domain)); err != nil && in.err == nil {
			in.err = fmt.Errorf("shape inference: %v: %v", n, err)
		}
	}
}

// setOut records an inferred type for v, merging with what is known.
func setOut(v *Value, dt tensor.DType, s Shape) error {
	if v == nil {
		return nil
	}
	if v.DType == tensor.Undefined {
		v.DType = dt
	} else if dt != tensor.Undefined && dt != v.DType {
		return fmt.Errorf("output %q: inferred dtype %v, declared %v", v.Name, dt, v.DType)
	}
	if s == nil {
		return nil
	}
	if v.Shape == nil {
		v.Shape = append(Shape{}, s...)
		return nil
	}
	if len(v.Shape) != len(s) {
		return fmt.Errorf("output %q: inferred shape %v, declared %v", v.Name, s, v.Shape)
	}
	for i, d := range s {
		cur := v.Shape[i]
		switch {
		case cur.Known() && d.Known() && cur.Value != d.Value:
			return fmt.Errorf("output %q: inferred shape %v, declared %v", v.Name, s, v.Shape)
		case !cur.Known() && d.Known():
			v.Shape[i] = d
		case cur.Param == "" && cur.Value < 0 && d.Param != "":
			v.Shape[i] = d
		}
	}
	return nil
}

func unknownDim() Dim { return Dim{Value: -1} }

func dimOf(v int64) Dim { return Dim{Value: v} }

func inDType(n *Node, i int) tensor.DType {
	if v := n.Input(i); v != nil {
		return v.DType
	}
	return tensor.Undefined
}

func inShape(n *Node, i int) Shape {
	if v := n.Input(i); v != nil {
		return v.Shape
	}
	return nil
}

// constInts returns a constant integer input as int64s.
func (in *inferrer) constInts(n *Node, i int) ([]int64, bool) {
	v := n.Input(i)
	if v == nil {
		return nil, false
	}
	t := in.consts[v]
	if t == nil {
		return nil, false
	}
	return tensorInts(t)
}

func tensorInts(t *tensor.Tensor) ([]int64, bool) {
	// Graphs built in code may hold inconsistent tensors: fold only
	// well-formed ones.
	// Large integer tensors are data, not shape arithmetic: skip them.
	if n, err := tensor.NumElements(t.Shape); err != nil || n != t.Len() || n > 1<<14 {
		return nil, false
	}
	switch d := t.Data.(type) {
	case []int64:
		return d, true
	case []int32:
		out := make([]int64, len(d))
		for i, x := range d {
			out[i] = int64(x)
		}
		return out, true
	}
	return nil, false
}

func (in *inferrer) constFloats(n *Node, i int) ([]float32, bool) {
	v := n.Input(i)
	if v == nil || in.consts[v] == nil {
		return nil, false
	}
	if d, ok := in.consts[v].Data.([]float32); ok {
		return d, true
	}
	return nil, false
}

// setConst records a small int64 result of shape arithmetic.
func (in *inferrer) setConst(v *Value, shape []int, data []int64) {
	if v == nil || len(data) > 1024 {
		return
	}
	// A file's declared shapes may lie; a constant whose shape does not
	// match its data would mislead the folding of later nodes.
	if n, err := tensor.NumElements(shape); err != nil || n != len(data) {
		return
	}
	in.consts[v] = tensor.FromInt64(shape, data)
}

// BroadcastShapes applies numpy broadcasting to shapes with possibly
// symbolic dims. An unknown rank gives an unknown result.
func BroadcastShapes(shapes ...Shape) (Shape, error) {
	rank := 0
	for _, s := range shapes {
		if s == nil {
			return nil, nil
		}
		if len(s) > rank {
			rank = len(s)
		}
	}
	out := make(Shape, rank)
	for i := range out {
		out[i] = dimOf(1)
	}
	for _, s := range shapes {
		off := rank - len(s)
		for i, d := range s {
			o := &out[off+i]
			switch {
			case d.Known() && d.Value == 1:
			case o.Known() && o.Value == 1:
				*o = d
			case d.Known() && o.Known():
				if d.Value != o.Value {
					return nil, fmt.Errorf("shapes %v cannot broadcast", shapes)
				}
			case d.Known():
				*o = d // the unknown dim must be d or 1
			case o.Known():
			case d.Param != "" && d.Param == o.Param:
			default:
				*o = unknownDim()
			}
		}
	}
	return out, nil
}

func normAxis(axis int64, rank int) (int, error) {
	if axis < -int64(rank) || axis >= int64(rank) {
		return 0, fmt.Errorf("axis %d out of range for rank %d", axis, rank)
	}
	if axis < 0 {
		axis += int64(rank)
	}
	return int(axis), nil
}

// prodDims multiplies dims. A product of known 1s and a single symbolic
// dim is that dim (so Flatten keeps a batch dim "N").
func prodDims(s Shape) Dim {
	p := int64(1)
	var sym *Dim
	for i, d := range s {
		switch {
		case d.Known():
			p *= d.Value
		case d.Param != "" && sym == nil:
			sym = &s[i]
		default:
			return unknownDim()
		}
	}
	if sym != nil {
		if p == 1 {
			return *sym
		}
		return unknownDim()
	}
	return dimOf(p)
}

var sameShapeOps = map[string]bool{
	"Identity": true, "Relu": true, "LeakyRelu": true, "Sigmoid": true, "Tanh": true, "Elu": true,
	"Selu": true, "HardSigmoid": true, "HardSwish": true, "Softplus": true, "Softsign": true,
	"Gelu": true, "Mish": true, "Exp": true, "Log": true, "Abs": true, "Neg": true, "Sqrt": true,
	"Reciprocal": true, "Floor": true, "Ceil": true, "Round": true, "Erf": true, "Sin": true,
	"Cos": true, "Tan": true, "Clip": true, "Softmax": true, "LogSoftmax": true, "Hardmax": true,
	"PRelu": true, "Sign": true, "Not": true, "LRN": true, "InstanceNormalization": true,
	"LayerNormalization": true, "GroupNormalization": true, "BatchNormalization": true,
	"Celu": true, "ThresholdedRelu": true, "Shrink": true, "Dropout": true, "CumSum": true,
	"MeanVarianceNormalization": true, "Asin": true, "Acos": true, "Atan": true, "Sinh": true,
	"Cosh": true, "Asinh": true, "Acosh": true, "Atanh": true, "ReverseSequence": true,
	"BitwiseNot": true,
}

var broadcastOps = map[string]bool{
	"Add": true, "Sub": true, "Mul": true, "Div": true, "Pow": true, "Max": true, "Min": true,
	"Sum": true, "Mean": true, "Mod": true, "BitShift": true, "BitwiseAnd": true,
	"BitwiseOr": true, "BitwiseXor": true,
}

var compareOps = map[string]bool{
	"Equal": true, "Less": true, "Greater": true, "LessOrEqual": true, "GreaterOrEqual": true,
	"And": true, "Or": true, "Xor": true,
}

var reduceOps = map[string]bool{
	"ReduceMean": true, "ReduceSum": true, "ReduceMax": true, "ReduceMin": true, "ReduceProd": true,
	"ReduceL1": true, "ReduceL2": true, "ReduceLogSum": true, "ReduceLogSumExp": true,
	"ReduceSumSquare": true, "ArgMax": true, "ArgMin": true,
}

func (in *inferrer) node(n *Node, opset int64) error {
	if !IsDefaultDomain(n.Domain) {
		if n.Domain == "com.microsoft" {
			return in.msNode(n)
		}
		return nil
	}
	x := n.Input(0)
	switch {
	case sameShapeOps[n.OpType]:
		if x == nil {
			return nil
		}
		if n.OpType == "PRelu" {
			s, err := BroadcastShapes(inShape(n, 0), inShape(n, 1))
			if err != nil || s == nil {
				s = x.Shape
			}
			return setOut(n.Output(0), x.DType, s)
		}
		if err := setOut(n.Output(0), x.DType, x.Shape); err != nil {
			return err
		}
		if n.OpType == "Dropout" {
			return setOut(n.Output(1), tensor.Bool, x.Shape)
		}
		if n.OpType == "BatchNormalization" {
			c := inShape(n, 1)
			for i := 1; i < len(n.Outputs); i++ {
				if err := setOut(n.Output(i), inDType(n, 1), c); err != nil {
					return err
				}
			}
		}
		if n.OpType == "LayerNormalization" && x.Shape != nil {
			axis, err := n.AttrInt("axis", -1)
			if err != nil {
				return err
			}
			a, err := normAxis(axis, len(x.Shape))
			if err != nil {
				return err
			}
			s := append(Shape{}, x.Shape...)
			for i := a; i < len(s); i++ {
				s[i] = dimOf(1)
			}
			for i := 1; i < len(n.Outputs); i++ {
				if err := setOut(n.Output(i), tensor.Float32, s); err != nil {
					return err
				}
			}
		}
		return nil
	case broadcastOps[n.OpType] || compareOps[n.OpType]:
		dt := inDType(n, 0)
		if compareOps[n.OpType] {
			dt = tensor.Bool
		}
		if a := n.Attr("broadcast"); a != nil && opset < 7 {
			// Legacy broadcasting: B is broadcast to A's shape.
			return setOut(n.Output(0), dt, inShape(n, 0))
		}
		shapes := make([]Shape, 0, len(n.Inputs))
		for i := range n.Inputs {
			shapes = append(shapes, inShape(n, i))
		}
		s, err := BroadcastShapes(shapes...)
		if err != nil {
			return err
		}
		return setOut(n.Output(0), dt, s)
	case reduceOps[n.OpType]:
		return in.reduce(n, opset)
	}
	switch n.OpType {
	case "Where":
		s, err := BroadcastShapes(inShape(n, 0), inShape(n, 1), inShape(n, 2))
		if err != nil {
			return err
		}
		return setOut(n.Output(0), inDType(n, 1), s)
	case "IsNaN", "IsInf":
		return setOut(n.Output(0), tensor.Bool, inShape(n, 0))
	case "Cast":
		to, err := n.AttrInt("to", 0)
		if err != nil {
			return err
		}
		if err := setOut(n.Output(0), tensor.DType(to), inShape(n, 0)); err != nil {
			return err
		}
		if ints, ok := in.constInts(n, 0); ok && x != nil && (to == int64(tensor.Int64) || to == int64(tensor.Int32)) {
			in.setConst(n.Output(0), in.consts[x].Shape, ints)
		}
		return nil
	case "CastLike":
		return setOut(n.Output(0), inDType(n, 1), inShape(n, 0))
	case "Constant":
		return in.constant(n)
	case "Shape":
		if x == nil || x.Shape == nil {
			return setOut(n.Output(0), tensor.Int64, nil)
		}
		r := len(x.Shape)
		start, _ := n.AttrInt("start", 0)
		end, _ := n.AttrInt("end", int64(r))
		s, e := clampRange(start, r), clampRange(end, r)
		if e < s {
			e = s
		}
		if err := setOut(n.Output(0), tensor.Int64, KnownShape(e-s)); err != nil {
			return err
		}
		if dims, ok := x.Shape[s:e].Ints(); ok {
			data := make([]int64, len(dims))
			for i, d := range dims {
				data[i] = int64(d)
			}
			in.setConst(n.Output(0), []int{len(data)}, data)
		}
		return nil
	case "Size":
		if x != nil && x.Shape != nil {
			if p := prodDims(x.Shape); p.Known() {
				in.setConst(n.Output(0), []int{}, []int64{p.Value})
			}
		}
		return setOut(n.Output(0), tensor.Int64, Shape{})
	case "Conv", "ConvInteger", "QLinearConv":
		return in.conv(n)
	case "ConvTranspose":
		return in.convTranspose(n)
	case "MaxPool", "AveragePool", "LpPool":
		return in.pool(n)
	case "GlobalAveragePool", "GlobalMaxPool", "GlobalLpPool":
		if x == nil || x.Shape == nil {
			return setOut(n.Output(0), inDType(n, 0), nil)
		}
		if len(x.Shape) < 2 {
			return fmt.Errorf("input rank %d < 2", len(x.Shape))
		}
		s := append(Shape{}, x.Shape[:2]...)
		for range x.Shape[2:] {
			s = append(s, dimOf(1))
		}
		return setOut(n.Output(0), x.DType, s)
	case "Gemm":
		return in.gemm(n)
	case "MatMul", "MatMulInteger", "QLinearMatMul":
		return in.matmul(n)
	case "Concat":
		return in.concat(n)
	case "Flatten":
		if x == nil || x.Shape == nil {
			return setOut(n.Output(0), inDType(n, 0), nil)
		}
		axis, err := n.AttrInt("axis", 1)
		if err != nil {
			return err
		}
		r := len(x.Shape)
		if axis < -int64(r) || axis > int64(r) {
			return fmt.Errorf("axis %d out of range for rank %d", axis, r)
		}
		if axis < 0 {
			axis += int64(r)
		}
		return setOut(n.Output(0), x.DType, Shape{prodDims(x.Shape[:axis]), prodDims(x.Shape[axis:])})
	case "Reshape":
		return in.reshape(n, opset)
	case "Transpose":
		if x == nil || x.Shape == nil {
			return setOut(n.Output(0), inDType(n, 0), nil)
		}
		r := len(x.Shape)
		perm, err := n.AttrInts("perm", nil)
		if err != nil {
			return err
		}
		if perm == nil {
			for i := r - 1; i >= 0; i-- {
				perm = append(perm, int64(i))
			}
		}
		if len(perm) != r {
			return fmt.Errorf("perm %v for rank %d", perm, r)
		}
		s := make(Shape, r)
		seen := make([]bool, r)
		for i, p := range perm {
			a, err := normAxis(p, r)
			if err != nil || seen[a] {
				return fmt.Errorf("invalid perm %v", perm)
			}
			seen[a] = true
			s[i] = x.Shape[a]
		}
		if t := in.consts[x]; t != nil {
			if ints, ok := tensorInts(t); ok && len(t.Shape) == r {
				in.setConst(n.Output(0), permuteDims(t.Shape, perm), transposeInts(ints, t.Shape, perm))
			}
		}
		return setOut(n.Output(0), x.DType, s)
	case "Squeeze", "Unsqueeze":
		return in.squeeze(n, opset)
	case "Slice":
		return in.slice(n, opset)
	case "Gather":
		return in.gather(n)
	case "Pad":
		return in.pad(n, opset)
	case "Resize", "Upsample":
		return in.resize(n, opset)
	case "QuantizeLinear":
		dt := tensor.Uint8
		if zp := n.Input(2); zp != nil && zp.DType != tensor.Undefined {
			dt = zp.DType
		} else if od, _ := n.AttrInt("output_dtype", 0); od != 0 {
			dt = tensor.DType(od)
		}
		return setOut(n.Output(0), dt, inShape(n, 0))
	case "DequantizeLinear":
		dt := inDType(n, 1)
		if dt == tensor.Undefined {
			dt = tensor.Float32
		}
		return setOut(n.Output(0), dt, inShape(n, 0))
	case "DynamicQuantizeLinear":
		if err := setOut(n.Output(0), tensor.Uint8, inShape(n, 0)); err != nil {
			return err
		}
		if err := setOut(n.Output(1), tensor.Float32, Shape{}); err != nil {
			return err
		}
		return setOut(n.Output(2), tensor.Uint8, Shape{})
	case "Split":
		return in.split(n, opset)
	case "Expand":
		shape, ok := in.constInts(n, 1)
		if !ok {
			return setOut(n.Output(0), inDType(n, 0), nil)
		}
		s := make(Shape, len(shape))
		for i, d := range shape {
			s[i] = dimOf(d)
		}
		b, err := BroadcastShapes(inShape(n, 0), s)
		if err != nil {
			return err
		}
		return setOut(n.Output(0), inDType(n, 0), b)
	case "ConstantOfShape":
		dt := tensor.Float32
		if t, _ := n.AttrTensor("value"); t != nil {
			dt = t.DType
		}
		shape, ok := in.constInts(n, 0)
		if !ok {
			// The shape input's length is the output's rank.
			if ss := inShape(n, 0); len(ss) == 1 && ss[0].Known() && ss[0].Value <= maxRank {
				return setOut(n.Output(0), dt, unknownDims(make(Shape, ss[0].Value)))
			}
			return setOut(n.Output(0), dt, nil)
		}
		s := make(Shape, len(shape))
		for i, d := range shape {
			s[i] = dimOf(d)
		}
		if dims, ok := s.Ints(); ok && (dt == tensor.Int64 || dt == tensor.Int32) {
			if cnt, err := tensor.NumElements(dims); err == nil && cnt <= 1024 {
				fill := int64(0)
				if t, _ := n.AttrTensor("value"); t != nil {
					if v, ok := tensorInts(t); ok && len(v) == 1 {
						fill = v[0]
					}
				}
				data := make([]int64, cnt)
				for i := range data {
					data[i] = fill
				}
				in.setConst(n.Output(0), dims, data)
			}
		}
		return setOut(n.Output(0), dt, s)
	case "Tile":
		reps, ok := in.constInts(n, 1)
		if !ok || x == nil || x.Shape == nil || len(reps) != len(x.Shape) {
			return setOut(n.Output(0), inDType(n, 0), nil)
		}
		s := make(Shape, len(reps))
		for i, d := range x.Shape {
			if d.Known() {
				s[i] = dimOf(d.Value * reps[i])
			} else {
				s[i] = unknownDim()
			}
		}
		return setOut(n.Output(0), x.DType, s)
	case "LSTM", "GRU", "RNN":
		return in.rnn(n)
	case "TopK":
		k, ok := in.constInts(n, 1)
		if x == nil || x.Shape == nil || !ok || len(k) != 1 {
			if err := setOut(n.Output(0), inDType(n, 0), nil); err != nil {
				return err
			}
			return setOut(n.Output(1), tensor.Int64, nil)
		}
		axis, _ := n.AttrInt("axis", -1)
		a, err := normAxis(axis, len(x.Shape))
		if err != nil {
			return err
		}
		s := append(Shape{}, x.Shape...)
		s[a] = dimOf(k[0])
		if err := setOut(n.Output(0), x.DType, s); err != nil {
			return err
		}
		return setOut(n.Output(1), tensor.Int64, s)
	case "Range":
		return setOut(n.Output(0), inDType(n, 0), Shape{unknownDim()})
	case "If":
		th, _ := n.AttrGraph("then_branch")
		el, _ := n.AttrGraph("else_branch")
		if th == nil || el == nil || len(th.Outputs) != len(n.Outputs) || len(el.Outputs) != len(n.Outputs) {
			return nil
		}
		for i, o := range n.Outputs {
			a, b := th.Outputs[i], el.Outputs[i]
			if a.Type != nil || b.Type != nil {
				continue
			}
			dt := a.DType
			if dt != b.DType {
				dt = tensor.Undefined
			}
			if err := setOut(o, dt, mergeShapes(a.Shape, b.Shape)); err != nil {
				return err
			}
		}
		return nil
	case "Loop":
		body, _ := n.AttrGraph("body")
		if body == nil {
			return nil
		}
		// Body outputs: cond, N carried values, then K scan outputs that
		// gain a leading iteration dim.
		carried := len(n.Inputs) - 2
		for i, o := range n.Outputs {
			if i+1 >= len(body.Outputs) {
				break
			}
			b := body.Outputs[i+1]
			if b.Type != nil {
				continue
			}
			s := b.Shape
			if i >= carried && s != nil {
				s = append(Shape{unknownDim()}, s...)
			}
			if err := setOut(o, b.DType, s); err != nil {
				return err
			}
		}
		return nil
	case "NonZero":
		r := unknownDim()
		if x != nil && x.Shape != nil {
			r = dimOf(int64(len(x.Shape)))
		}
		return setOut(n.Output(0), tensor.Int64, Shape{r, unknownDim()})
	case "DepthToSpace", "SpaceToDepth":
		if x == nil || len(x.Shape) != 4 {
			return setOut(n.Output(0), inDType(n, 0), nil)
		}
		b, err := n.AttrInt("blocksize", 0)
		if err != nil || b <= 0 {
			return fmt.Errorf("invalid blocksize")
		}
		s := append(Shape{}, x.Shape...)
		mul := func(d Dim, f int64, div bool) Dim {
			if !d.Known() {
				return unknownDim()
			}
			if div {
				return dimOf(d.Value / f)
			}
			return dimOf(d.Value * f)
		}
		up := n.OpType == "DepthToSpace"
		s[1] = mul(s[1], b*b, up)
		s[2] = mul(s[2], b, !up)
		s[3] = mul(s[3], b, !up)
		return setOut(n.Output(0), x.DType, s)
	}
	return nil
}

func clampRange(v int64, r int) int {
	if v < 0 {
		v += int64(r)
	}
	if v < 0 {
		return 0
	}
	if v > int64(r) {
		return r
	}
	return int(v)
}

func (in *inferrer) constant(n *Node) error {
	out := n.Output(0)
	for _, a := range n.Attrs {
		switch a.Name {
		case "value":
			if a.T == nil {
				return errors.New("value attribute is not a tensor")
			}
			in.consts[out] = a.T
			return setOut(out, a.T.DType, KnownShape(a.T.Shape...))
		case "value_float":
			return setOut(out, tensor.Float32, Shape{})
		case "value_floats":
			return setOut(out, tensor.Float32, KnownShape(len(a.Floats)))
		case "value_int":
			in.setConst(out, []int{}, []int64{a.I})
			return setOut(out, tensor.Int64, Shape{})
		case "value_ints":
			in.setConst(out, []int{len(a.Ints)}, append([]int64(nil), a.Ints...))
			return setOut(out, tensor.Int64, KnownShape(len(a.Ints)))
		case "value_string":
			return setOut(out, tensor.String, Shape{})
		case "value_strings":
			return setOut(out, tensor.String, KnownShape(len(a.Strings)))
		}
	}
	return nil
}

// spatial computes one output dim of a convolution or pooling window. In
// ceil mode the last window must start inside the input or the left
// padding (ONNX and PyTorch agree on that rule).
func spatial(in Dim, k, s, d, padBegin, padEnd int64, ceil bool) Dim {
	if !in.Known() || s <= 0 {
		return unknownDim()
	}
	ek := (k-1)*d + 1
	num := in.Value + padBegin + padEnd - ek
	if num < 0 {
		return unknownDim()
	}
	o := num / s
	if ceil && num%s != 0 {
		o++
		if o*s >= in.Value+padBegin {
			o--
		}
	}
	return dimOf(o + 1)
}

type windowAttrs struct {
	kernel, strides, dilations, pads []int64
	autoPad                          string
}

func readWindow(n *Node, nsp int, kernel []int64) (*windowAttrs, error) {
	w := &windowAttrs{kernel: kernel}
	var err error
	if w.strides, err = n.AttrInts("strides", nil); err != nil {
		return nil, err
	}
	if w.dilations, err = n.AttrInts("dilations", nil); err != nil {
		return nil, err
	}
	if w.pads, err = n.AttrInts("pads", nil); err != nil {
		return nil, err
	}
	if w.autoPad, err = n.AttrString("auto_pad", "NOTSET"); err != nil {
		return nil, err
	}
	ones := func(v []int64) []int64 {
		if v != nil {
			return v
		}
		out := make([]int64, nsp)
		for i := range out {
			out[i] = 1
		}
		return out
	}
	w.strides, w.dilations = ones(w.strides), ones(w.dilations)
	if w.pads == nil {
		w.pads = make([]int64, 2*nsp)
	}
	if len(w.kernel) != nsp || len(w.strides) != nsp || len(w.dilations) != nsp || len(w.pads) != 2*nsp {
		return nil, fmt.Errorf("kernel/strides/dilations/pads do not match %d spatial dims", nsp)
	}
	return w, nil
}

func (w *windowAttrs) outDims(x Shape, ceil bool) Shape {
	nsp := len(w.kernel)
	out := make(Shape, nsp)
	for i := 0; i < nsp; i++ {
		d := x[2+i]
		switch w.autoPad {
		case "SAME_UPPER", "SAME_LOWER":
			if d.Known() && w.strides[i] > 0 {
				out[i] = dimOf((d.Value + w.strides[i] - 1) / w.strides[i])
			} else {
				out[i] = unknownDim()
			}
		case "VALID":
			out[i] = spatial(d, w.kernel[i], w.strides[i], w.dilations[i], 0, 0, ceil)
		default:
			out[i] = spatial(d, w.kernel[i], w.strides[i], w.dilations[i], w.pads[i], w.pads[i+nsp], ceil)
		}
	}
	return out
}

func (in *inferrer) conv(n *Node) error {
	var dt tensor.DType
	wIdx := 1
	switch n.OpType {
	case "Conv":
		dt = inDType(n, 0)
	case "ConvInteger":
		dt = tensor.Int32
	case "QLinearConv":
		wIdx = 3
		dt = inDType(n, 7)
		if dt == tensor.Undefined {
			dt = inDType(n, 0)
		}
	}
	x, w := inShape(n, 0), inShape(n, wIdx)
	if x == nil || w == nil {
		return setOut(n.Output(0), dt, nil)
	}
	if len(x) < 3 || len(w) != len(x) {
		return fmt.Errorf("input rank %d and weight rank %d", len(x), len(w))
	}
	nsp := len(x) - 2
	kernel, err := n.AttrInts("kernel_shape", nil)
	if err != nil {
		return err
	}
	if kernel == nil {
		for _, d := range w[2:] {
			if !d.Known() {
				return setOut(n.Output(0), dt, nil)
			}
			kernel = append(kernel, d.Value)
		}
	}
	wa, err := readWindow(n, nsp, kernel)
	if err != nil {
		return err
	}
	s := Shape{x[0], w[0]}
	s = append(s, wa.outDims(x, false)...)
	return setOut(n.Output(0), dt, s)
}

func (in *inferrer) convTranspose(n *Node) error {
	dt := inDType(n, 0)
	x, w := inShape(n, 0), inShape(n, 1)
	if x == nil || w == nil || len(x) < 3 || len(w) != len(x) {
		return setOut(n.Output(0), dt, nil)
	}
	nsp := len(x) - 2
	group, err := n.AttrInt("group", 1)
	if err != nil {
		return err
	}
	kernel, err := n.AttrInts("kernel_shape", nil)
	if err != nil {
		return err
	}
	if kernel == nil {
		for _, d := range w[2:] {
			if !d.Known() {
				return setOut(n.Output(0), dt, nil)
			}
			kernel = append(kernel, d.Value)
		}
	}
	wa, err := readWindow(n, nsp, kernel)
	if err != nil {
		return err
	}
	outPad, err := n.AttrInts("output_padding", make([]int64, nsp))
	if err != nil {
		return err
	}
	outShape, err := n.AttrInts("output_shape", nil)
	if err != nil {
		return err
	}
	c := unknownDim()
	if w[1].Known() {
		c = dimOf(w[1].Value * group)
	}
	s := Shape{x[0], c}
	for i := 0; i < nsp; i++ {
		d := x[2+i]
		switch {
		case len(outShape) == nsp:
			s = append(s, dimOf(outShape[i]))
		case len(outShape) == nsp+2:
			s = append(s, dimOf(outShape[i+2]))
		case !d.Known() || len(outPad) != nsp:
			s = append(s, unknownDim())
		case wa.autoPad == "SAME_UPPER" || wa.autoPad == "SAME_LOWER":
			s = append(s, dimOf(d.Value*wa.strides[i]))
		default:
			p := wa.pads[i] + wa.pads[i+nsp]
			if wa.autoPad == "VALID" {
				p = 0
			}
			s = append(s, dimOf(wa.strides[i]*(d.Value-1)+outPad[i]+(kernel[i]-1)*wa.dilations[i]+1-p))
		}
	}
	return setOut(n.Output(0), dt, s)
}

func (in *inferrer) pool(n *Node) error {
	x := inShape(n, 0)
	dt := inDType(n, 0)
	if x == nil {
		return setOut(n.Output(0), dt, nil)
	}
	if len(x) < 3 {
		return fmt.Errorf("input rank %d < 3", len(x))
	}
	kernel, err := n.AttrInts("kernel_shape", nil)
	if err != nil {
		return err
	}
	wa, err := readWindow(n, len(x)-2, kernel)
	if err != nil {
		return err
	}
	ceil, err := n.AttrInt("ceil_mode", 0)
	if err != nil {
		return err
	}
	s := append(Shape{x[0], x[1]}, wa.outDims(x, ceil != 0)...)
	if err := setOut(n.Output(0), dt, s); err != nil {
		return err
	}
	return setOut(n.Output(1), tensor.Int64, s)
}

func (in *inferrer) gemm(n *Node) error {
	a, b := inShape(n, 0), inShape(n, 1)
	dt := inDType(n, 0)
	if a == nil || b == nil {
		return setOut(n.Output(0), dt, nil)
	}
	if len(a) != 2 || len(b) != 2 {
		return fmt.Errorf("Gemm inputs of rank %d and %d", len(a), len(b))
	}
	ta, err := n.AttrInt("transA", 0)
	if err != nil {
		return err
	}
	tb, err := n.AttrInt("transB", 0)
	if err != nil {
		return err
	}
	m, ka := a[0], a[1]
	if ta != 0 {
		m, ka = a[1], a[0]
	}
	kb, nn := b[0], b[1]
	if tb != 0 {
		kb, nn = b[1], b[0]
	}
	if ka.Known() && kb.Known() && ka.Value != kb.Value {
		return fmt.Errorf("inner dims %v and %v differ", ka, kb)
	}
	return setOut(n.Output(0), dt, Shape{m, nn})
}

func (in *inferrer) matmul(n *Node) error {
	var dt tensor.DType
	ai, bi := 0, 1
	switch n.OpType {
	case "MatMul":
		dt = inDType(n, 0)
	case "MatMulInteger":
		dt = tensor.Int32
	case "QLinearMatMul":
		ai, bi = 0, 3
		dt = inDType(n, 7)
		if dt == tensor.Undefined {
			dt = inDType(n, 0)
		}
	}
	s, err := MatMulShape(inShape(n, ai), inShape(n, bi))
	if err != nil {
		return err
	}
	return setOut(n.Output(0), dt, s)
}

// MatMulShape is numpy matmul's output shape (rank-1 operands promoted and
// the added dim removed again).
func MatMulShape(a, b Shape) (Shape, error) {
	if a == nil || b == nil {
		return nil, nil
	}
	if len(a) == 0 || len(b) == 0 {
		return nil, errors.New("MatMul of a scalar")
	}
	a1, b1 := len(a) == 1, len(b) == 1
	if a1 {
		a = Shape{dimOf(1), a[0]}
	}
	if b1 {
		b = Shape{b[0], dimOf(1)}
	}
	ka, kb := a[len(a)-1], b[len(b)-2]
	if ka.Known() && kb.Known() && ka.Value != kb.Value {
		return nil, fmt.Errorf("inner dims %v and %v differ", ka, kb)
	}
	batch, err := BroadcastShapes(a[:len(a)-2], b[:len(b)-2])
	if err != nil {
		return nil, err
	}
	out := append(Shape{}, batch...)
	if !a1 {
		out = append(out, a[len(a)-2])
	}
	if !b1 {
		out = append(out, b[len(b)-1])
	}
	return out, nil
}

func (in *inferrer) concat(n *Node) error {
	dt := inDType(n, 0)
	axis, err := n.AttrInt("axis", 1)
	if err != nil {
		return err
	}
	var out Shape
	allConst := true
	var data []int64
	for i := range n.Inputs {
		s := inShape(n, i)
		if ints, ok := in.constInts(n, i); ok && len(s) == 1 {
			data = append(data, ints...)
		} else {
			allConst = false
		}
		if s == nil {
			return setOut(n.Output(0), dt, nil)
		}
		if out == nil {
			out = append(Shape{}, s...)
			if _, err := normAxis(axis, len(s)); err != nil {
				return err
			}
			continue
		}
		if len(s) != len(out) {
			return fmt.Errorf("inputs of rank %d and %d", len(out), len(s))
		}
		a, _ := normAxis(axis, len(s))
		for j := range s {
			if j == a {
				if out[j].Known() && s[j].Known() {
					out[j] = dimOf(out[j].Value + s[j].Value)
				} else {
					out[j] = unknownDim()
				}
				continue
			}
			if out[j].Known() && s[j].Known() && out[j].Value != s[j].Value {
				return fmt.Errorf("input dims %v and %v differ off the concat axis", out, s)
			}
			if !out[j].Known() && s[j].Known() {
				out[j] = s[j]
			}
		}
	}
	if allConst && len(n.Inputs) > 0 {
		in.setConst(n.Output(0), []int{len(data)}, data)
	}
	return setOut(n.Output(0), dt, out)
}

func (in *inferrer) reshape(n *Node, opset int64) error {
	dt := inDType(n, 0)
	x := inShape(n, 0)
	var shape []int64
	var ok bool
	if opset < 5 {
		var err error
		shape, err = n.AttrInts("shape", nil)
		if err != nil {
			return err
		}
		ok = shape != nil
	} else {
		shape, ok = in.constInts(n, 1)
	}
	if !ok {
		return setOut(n.Output(0), dt, nil)
	}
	allowZero, _ := n.AttrInt("allowzero", 0)
	s, err := ReshapeShape(x, shape, allowZero != 0)
	if err != nil {
		return err
	}
	if t := in.consts[n.Input(0)]; t != nil {
		if ints, ok := tensorInts(t); ok {
			if dims, ok := s.Ints(); ok {
				in.setConst(n.Output(0), dims, ints)
			}
		}
	}
	return setOut(n.Output(0), dt, s)
}

// ReshapeShape applies ONNX Reshape's rules (0 copies a dim unless
// allowZero, one -1 is inferred) to an input shape that may be partly known.
func ReshapeShape(x Shape, shape []int64, allowZero bool) (Shape, error) {
	out := make(Shape, len(shape))
	neg := -1
	for i, d := range shape {
		switch {
		case d == -1:
			if neg >= 0 {
				return nil, fmt.Errorf("shape %v has two -1", shape)
			}
			neg = i
			out[i] = unknownDim()
		case d == 0 && !allowZero:
			if x == nil || i >= len(x) {
				if x == nil {
					out[i] = unknownDim()
					continue
				}
				return nil, fmt.Errorf("shape %v copies dim %d of a rank-%d input", shape, i, len(x))
			}
			out[i] = x[i]
		case d < 0:
			return nil, fmt.Errorf("invalid dim %d in shape %v", d, shape)
		default:
			out[i] = dimOf(d)
		}
	}
	if neg >= 0 && x != nil {
		total := prodDims(x)
		rest := int64(1)
		known := total.Known()
		for i, d := range out {
			if i == neg {
				continue
			}
			if !d.Known() {
				known = false
				break
			}
			rest *= d.Value
		}
		if known {
			if rest == 0 || total.Value%rest != 0 {
				return nil, fmt.Errorf("cannot reshape %v to %v", x, shape)
			}
			out[neg] = dimOf(total.Value / rest)
		}
	}
	if neg < 0 && x != nil {
		a, b := prodDims(x), prodDims(out)
		if a.Known() && b.Known() && a.Value != b.Value {
			return nil, fmt.Errorf("cannot reshape %v to %v", x, shape)
		}
	}
	return out, nil
}

func (in *inferrer) squeeze(n *Node, opset int64) error {
	dt := inDType(n, 0)
	x := inShape(n, 0)
	var axes []int64
	haveAxes := false
	if opset < 13 {
		a, err := n.AttrInts("axes", nil)
		if err != nil {
			return err
		}
		axes, haveAxes = a, a != nil
	} else if n.Input(1) != nil {
		a, ok := in.constInts(n, 1)
		if !ok {
			return setOut(n.Output(0), dt, nil)
		}
		axes, haveAxes = a, true
	}
	if x == nil {
		return setOut(n.Output(0), dt, nil)
	}
	var out Shape
	if n.OpType == "Squeeze" {
		drop := map[int]bool{}
		if !haveAxes {
			for i, d := range x {
				if !d.Known() {
					return setOut(n.Output(0), dt, nil)
				}
				if d.Value == 1 {
					drop[i] = true
				}
			}
		}
		for _, a := range axes {
			i, err := normAxis(a, len(x))
			if err != nil {
				return err
			}
			if x[i].Known() && x[i].Value != 1 {
				return fmt.Errorf("squeezing axis %d of size %d", i, x[i].Value)
			}
			drop[i] = true
		}
		out = Shape{}
		for i, d := range x {
			if !drop[i] {
				out = append(out, d)
			}
		}
	} else {
		if !haveAxes {
			return errors.New("Unsqueeze without axes")
		}
		r := len(x) + len(axes)
		ins := map[int]bool{}
		for _, a := range axes {
			i, err := normAxis(a, r)
			if err != nil {
				return err
			}
			if ins[i] {
				return fmt.Errorf("repeated axis %d", a)
			}
			ins[i] = true
		}
		out = Shape{}
		j := 0
		for i := 0; i < r; i++ {
			if ins[i] {
				out = append(out, dimOf(1))
			} else {
				out = append(out, x[j])
				j++
			}
		}
	}
	if t := in.consts[n.Input(0)]; t != nil {
		if ints, ok := tensorInts(t); ok {
			if dims, ok := out.Ints(); ok {
				in.setConst(n.Output(0), dims, ints)
			}
		}
	}
	return setOut(n.Output(0), dt, out)
}

func (in *inferrer) slice(n *Node, opset int64) error {
	dt := inDType(n, 0)
	x := inShape(n, 0)
	var starts, ends, axes, steps []int64
	if opset < 10 {
		var err error
		if starts, err = n.AttrInts("starts", nil); err != nil {
			return err
		}
		if ends, err = n.AttrInts("ends", nil); err != nil {
			return err
		}
		if axes, err = n.AttrInts("axes", nil); err != nil {
			return err
		}
	} else {
		var ok1, ok2 bool
		starts, ok1 = in.constInts(n, 1)
		ends, ok2 = in.constInts(n, 2)
		if !ok1 || !ok2 {
			if x != nil {
				s := make(Shape, len(x))
				for i := range s {
					s[i] = unknownDim()
				}
				return setOut(n.Output(0), dt, s)
			}
			return setOut(n.Output(0), dt, nil)
		}
		if n.Input(3) != nil {
			a, ok := in.constInts(n, 3)
			if !ok {
				return setOut(n.Output(0), dt, nil)
			}
			axes = a
		}
		if n.Input(4) != nil {
			s, ok := in.constInts(n, 4)
			if !ok {
				return setOut(n.Output(0), dt, nil)
			}
			steps = s
		}
	}
	if x == nil {
		return setOut(n.Output(0), dt, nil)
	}
	if len(starts) != len(ends) || (axes != nil && len(axes) != len(starts)) || (steps != nil && len(steps) != len(starts)) {
		return errors.New("starts, ends, axes and steps differ in length")
	}
	out := append(Shape{}, x...)
	for i := range starts {
		ax := int64(i)
		if axes != nil {
			ax = axes[i]
		}
		a, err := normAxis(ax, len(x))
		if err != nil {
			return err
		}
		step := int64(1)
		if steps != nil {
			step = steps[i]
		}
		if step == 0 {
			return errors.New("slice step 0")
		}
		d := x[a]
		if !d.Known() {
			out[a] = unknownDim()
			continue
		}
		out[a] = dimOf(sliceLen(d.Value, starts[i], ends[i], step))
	}
	if t := in.consts[n.Input(0)]; t != nil && len(t.Shape) == len(x) {
		if ints, ok := tensorInts(t); ok {
			shp, data := sliceInts(ints, t.Shape, starts, ends, axes, steps)
			in.setConst(n.Output(0), shp, data)
		}
	}
	return setOut(n.Output(0), dt, out)
}

func sliceBounds(dim, start, end, step int64) (int64, int64) {
	clamp := func(v, lo, hi int64) int64 {
		if v < lo {
			return lo
		}
		if v > hi {
			return hi
		}
		return v
	}
	if start < 0 {
		start += dim
	}
	if end < 0 {
		end += dim
	}
	if step > 0 {
		return clamp(start, 0, dim), clamp(end, 0, dim)
	}
	return clamp(start, -1, dim-1), clamp(end, -1, dim-1)
}

func sliceLen(dim, start, end, step int64) int64 {
	s, e := sliceBounds(dim, start, end, step)
	if step > 0 {
		if e <= s {
			return 0
		}
		return (e - s + step - 1) / step
	}
	if s <= e {
		return 0
	}
	return (s - e + (-step) - 1) / (-step)
}

func (in *inferrer) gather(n *Node) error {
	dt := inDType(n, 0)
	x, idx := inShape(n, 0), inShape(n, 1)
	if x == nil || idx == nil {
		return setOut(n.Output(0), dt, nil)
	}
	axis, err := n.AttrInt("axis", 0)
	if err != nil {
		return err
	}
	a, err := normAxis(axis, len(x))
	if err != nil {
		return err
	}
	out := append(append(append(Shape{}, x[:a]...), idx...), x[a+1:]...)
	if data, ok := in.constInts(n, 0); ok && len(x) == 1 {
		if ids, ok := in.constInts(n, 1); ok {
			var vals []int64
			good := true
			for _, id := range ids {
				if id < 0 {
					id += int64(len(data))
				}
				if id < 0 || id >= int64(len(data)) {
					good = false
					break
				}
				vals = append(vals, data[id])
			}
			if dims, ok := out.Ints(); ok && good {
				in.setConst(n.Output(0), dims, vals)
			}
		}
	}
	return setOut(n.Output(0), dt, out)
}

func (in *inferrer) pad(n *Node, opset int64) error {
	dt := inDType(n, 0)
	x := inShape(n, 0)
	var pads []int64
	if opset < 11 {
		var err error
		name := "pads"
		if opset < 2 {
			name = "paddings"
		}
		if pads, err = n.AttrInts(name, nil); err != nil {
			return err
		}
	} else {
		p, ok := in.constInts(n, 1)
		if !ok {
			return setOut(n.Output(0), dt, unknownDims(x))
		}
		pads = p
	}
	if x == nil {
		return setOut(n.Output(0), dt, nil)
	}
	r := len(x)
	axes := make([]int, r)
	for i := range axes {
		axes[i] = i
	}
	if n.Input(3) != nil {
		ax, ok := in.constInts(n, 3)
		if !ok {
			return setOut(n.Output(0), dt, nil)
		}
		axes = axes[:0]
		for _, a := range ax {
			i, err := normAxis(a, r)
			if err != nil {
				return err
			}
			axes = append(axes, i)
		}
	}
	if len(pads) != 2*len(axes) {
		return fmt.Errorf("%d pads for %d axes", len(pads), len(axes))
	}
	out := append(Shape{}, x...)
	for i, a := range axes {
		if out[a].Known() {
			out[a] = dimOf(out[a].Value + pads[i] + pads[i+len(axes)])
		}
	}
	return setOut(n.Output(0), dt, out)
}

func (in *inferrer) resize(n *Node, opset int64) error {
	dt := inDType(n, 0)
	x := inShape(n, 0)
	if x == nil {
		return setOut(n.Output(0), dt, nil)
	}
	var scales []float32
	var sizes []int64
	switch {
	case n.OpType == "Upsample" && opset < 9:
		s, err := n.AttrFloats("scales", nil)
		if err != nil {
			return err
		}
		scales = s
	case n.OpType == "Upsample" || opset < 11:
		s, ok := in.constFloats(n, 1)
		if !ok {
			return setOut(n.Output(0), dt, nil)
		}
		scales = s
	default:
		if n.Input(3) != nil {
			s, ok := in.constInts(n, 3)
			if !ok {
				return setOut(n.Output(0), dt, nil)
			}
			sizes = s
		} else {
			s, ok := in.constFloats(n, 2)
			if !ok {
				return setOut(n.Output(0), dt, nil)
			}
			scales = s
		}
		if ax, _ := n.AttrInts("axes", nil); ax != nil {
			// Axes-restricted Resize (opset 18): leave it to the runtime.
			return setOut(n.Output(0), dt, nil)
		}
	}
	out := append(Shape{}, x...)
	switch {
	case len(sizes) > 0:
		if len(sizes) != len(x) {
			return fmt.Errorf("%d sizes for rank %d", len(sizes), len(x))
		}
		for i, s := range sizes {
			out[i] = dimOf(s)
		}
	case len(scales) > 0:
		if len(scales) != len(x) {
			return fmt.Errorf("%d scales for rank %d", len(scales), len(x))
		}
		for i, s := range scales {
			if x[i].Known() {
				out[i] = dimOf(int64(float64(x[i].Value) * float64(s)))
			}
		}
	default:
		return setOut(n.Output(0), dt, nil)
	}
	return setOut(n.Output(0), dt, out)
}

func (in *inferrer) reduce(n *Node, opset int64) error {
	dt := inDType(n, 0)
	if n.OpType == "ArgMax" || n.OpType == "ArgMin" {
		dt = tensor.Int64
	}
	x := inShape(n, 0)
	keep, err := n.AttrInt("keepdims", 1)
	if err != nil {
		return err
	}
	var axes []int64
	switch {
	case n.OpType == "ArgMax" || n.OpType == "ArgMin":
		a, err := n.AttrInt("axis", 0)
		if err != nil {
			return err
		}
		axes = []int64{a}
	case n.Attr("axes") != nil:
		if axes, err = n.AttrInts("axes", nil); err != nil {
			return err
		}
	case n.Input(1) != nil:
		a, ok := in.constInts(n, 1)
		if !ok {
			return setOut(n.Output(0), dt, nil)
		}
		axes = a
	}
	if x == nil {
		return setOut(n.Output(0), dt, nil)
	}
	if len(axes) == 0 {
		if noop, _ := n.AttrInt("noop_with_empty_axes", 0); noop != 0 {
			return setOut(n.Output(0), dt, x)
		}
		for i := range x {
			axes = append(axes, int64(i))
		}
	}
	red := map[int]bool{}
	for _, a := range axes {
		i, err := normAxis(a, len(x))
		if err != nil {
			return err
		}
		red[i] = true
	}
	out := Shape{}
	for i, d := range x {
		switch {
		case !red[i]:
			out = append(out, d)
		case keep != 0:
			out = append(out, dimOf(1))
		}
	}
	return setOut(n.Output(0), dt, out)
}

func (in *inferrer) split(n *Node, opset int64) error {
	dt := inDType(n, 0)
	x := inShape(n, 0)
	axis, err := n.AttrInt("axis", 0)
	if err != nil {
		return err
	}
	var parts []int64
	if opset < 13 {
		if parts, err = n.AttrInts("split", nil); err != nil {
			return err
		}
	} else if n.Input(1) != nil {
		p, ok := in.constInts(n, 1)
		if !ok {
			x = nil
		}
		parts = p
	}
	for i := range n.Outputs {
		if x == nil {
			if err := setOut(n.Output(i), dt, nil); err != nil {
				return err
			}
			continue
		}
		a, err := normAxis(axis, len(x))
		if err != nil {
			return err
		}
		s := append(Shape{}, x...)
		switch {
		case parts != nil:
			if len(parts) != len(n.Outputs) {
				return fmt.Errorf("%d split sizes for %d outputs", len(parts), len(n.Outputs))
			}
			s[a] = dimOf(parts[i])
		case x[a].Known():
			k := int64(len(n.Outputs))
			chunk := (x[a].Value + k - 1) / k
			size := chunk
			if int64(i) == k-1 {
				size = x[a].Value - chunk*(k-1)
			}
			if x[a].Value%k == 0 {
				size = x[a].Value / k
			}
			s[a] = dimOf(size)
		default:
			s[a] = unknownDim()
		}
		if err := setOut(n.Output(i), dt, s); err != nil {
			return err
		}
	}
	return nil
}

func (in *inferrer) rnn(n *Node) error {
	x := inShape(n, 0)
	dt := inDType(n, 0)
	hidden, err := n.AttrInt("hidden_size", 0)
	if err != nil {
		return err
	}
	dir, err := n.AttrString("direction", "forward")
	if err != nil {
		return err
	}
	layout, err := n.AttrInt("layout", 0)
	if err != nil {
		return err
	}
	if x == nil || len(x) != 3 || hidden <= 0 {
		for i := range n.Outputs {
			if err := setOut(n.Output(i), dt, nil); err != nil {
				return err
			}
		}
		return nil
	}
	nd := dimOf(1)
	if dir == "bidirectional" {
		nd = dimOf(2)
	}
	h := dimOf(hidden)
	seq, batch := x[0], x[1]
	y, yh := Shape{seq, nd, batch, h}, Shape{nd, batch, h}
	if layout != 0 {
		batch, seq = x[0], x[1]
		y, yh = Shape{batch, seq, nd, h}, Shape{batch, nd, h}
	}
	if err := setOut(n.Output(0), dt, y); err != nil {
		return err
	}
	for i := 1; i < len(n.Outputs); i++ {
		if err := setOut(n.Output(i), dt, yh); err != nil {
			return err
		}
	}
	return nil
}

// msNode covers the com.microsoft ops that ONNX Runtime's quantizer and
// graph optimizer emit (QOperator format and fused float ops).
func (in *inferrer) msNode(n *Node) error {
	switch n.OpType {
	case "QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear":
		return in.node(&Node{Name: n.Name, OpType: n.OpType, Inputs: n.Inputs, Outputs: n.Outputs, Attrs: n.Attrs}, 21)
	case "FusedConv":
		return in.conv(&Node{Name: n.Name, OpType: "Conv", Inputs: n.Inputs, Outputs: n.Outputs, Attrs: n.Attrs})
	case "FusedGemm":
		return in.gemm(n)
	case "QLinearAdd", "QLinearMul":
		s, err := BroadcastShapes(inShape(n, 0), inShape(n, 3))
		if err != nil {
			return err
		}
		return setOut(n.Output(0), inDType(n, 0), s)
	case "QLinearSigmoid", "QLinearLeakyRelu", "QLinearSoftmax":
		return setOut(n.Output(0), inDType(n, 0), inShape(n, 0))
	case "QLinearGlobalAveragePool":
		x := inShape(n, 0)
		if len(x) < 3 {
			return setOut(n.Output(0), inDType(n, 0), nil)
		}
		last, _ := n.AttrInt("channels_last", 0)
		s := append(Shape{}, x...)
		lo, hi := 2, len(x)
		if last != 0 {
			lo, hi = 1, len(x)-1
		}
		for i := lo; i < hi; i++ {
			s[i] = dimOf(1)
		}
		return setOut(n.Output(0), inDType(n, 0), s)
	case "QLinearAveragePool":
		if last, _ := n.AttrInt("channels_last", 0); last != 0 {
			return setOut(n.Output(0), inDType(n, 0), nil)
		}
		// Inputs: X, x_scale, x_zp, y_scale, y_zp; the window is AveragePool's.
		return in.pool(&Node{Name: n.Name, OpType: "AveragePool", Inputs: n.Inputs[:1], Outputs: n.Outputs[:1], Attrs: n.Attrs})
	case "QLinearConcat":
		// Inputs: Y_scale, Y_zp, then (X, X_scale, X_zp) triples.
		var xs []*Value
		for i := 2; i < len(n.Inputs); i += 3 {
			xs = append(xs, n.Inputs[i])
		}
		if len(xs) == 0 {
			return nil
		}
		return in.concat(&Node{Name: n.Name, OpType: "Concat", Inputs: xs, Outputs: n.Outputs, Attrs: n.Attrs})
	case "QGemm":
		// A, a_scale, a_zp, B, b_scale, b_zp, C, y_scale, y_zp: float
		// output without y_scale.
		dt := tensor.Float32
		if n.Input(7) != nil {
			dt = inDType(n, 8)
			if dt == tensor.Undefined {
				dt = inDType(n, 0)
			}
		}
		tmp := &Value{}
		g := &Node{Name: n.Name, OpType: "Gemm", Inputs: []*Value{n.Input(0), n.Input(3)}, Outputs: []*Value{tmp}, Attrs: n.Attrs}
		if err := in.gemm(g); err != nil {
			return err
		}
		return setOut(n.Output(0), dt, tmp.Shape)
	case "FusedMatMul":
		ta, _ := n.AttrInt("transA", 0)
		tb, _ := n.AttrInt("transB", 0)
		bt, _ := n.AttrInt("transBatchA", 0)
		bb, _ := n.AttrInt("transBatchB", 0)
		if ta != 0 || tb != 0 || bt != 0 || bb != 0 {
			return setOut(n.Output(0), inDType(n, 0), nil)
		}
		s, err := MatMulShape(inShape(n, 0), inShape(n, 1))
		if err != nil {
			return err
		}
		return setOut(n.Output(0), inDType(n, 0), s)
	case "MatMulIntegerToFloat", "DynamicQuantizeMatMul":
		s, err := MatMulShape(inShape(n, 0), inShape(n, 1))
		if err != nil {
			return err
		}
		return setOut(n.Output(0), tensor.Float32, s)
	}
	return nil
}

func permuteDims(shape []int, perm []int64) []int {
	out := make([]int, len(perm))
	for i, p := range perm {
		if p < 0 {
			p += int64(len(shape))
		}
		out[i] = shape[p]
	}
	return out
}

// transposeInts permutes a small constant integer tensor (shape arithmetic
// in exported models, e.g. PyTorch's F.pad idiom).
func transposeInts(data []int64, shape []int, perm []int64) []int64 {
	r := len(shape)
	outShape := permuteDims(shape, perm)
	inStr := tensor.Strides(shape)
	out := make([]int64, len(data))
	idx := make([]int, r)
	for o := range out {
		off := 0
		for i := 0; i < r; i++ {
			p := int(perm[i])
			if p < 0 {
				p += r
			}
			off += idx[i] * inStr[p]
		}
		out[o] = data[off]
		for i := r - 1; i >= 0; i-- {
			idx[i]++
			if idx[i] < outShape[i] {
				break
			}
			idx[i] = 0
		}
	}
	return out
}

// sliceInts applies Slice to a small constant integer tensor. Inputs have
// been validated by the caller's shape computation.
func sliceInts(data []int64, shape []int, starts, ends, axes, steps []int64) ([]int, []int64) {
	r := len(shape)
	lo := make([]int64, r)
	step := make([]int64, r)
	cnt := make([]int, r)
	for i := range shape {
		lo[i], step[i], cnt[i] = 0, 1, shape[i]
	}
	for i := range starts {
		a := int64(i)
		if axes != nil {
			a = axes[i]
		}
		if a < 0 {
			a += int64(r)
		}
		st := int64(1)
		if steps != nil {
			st = steps[i]
		}
		b, _ := sliceBounds(int64(shape[a]), starts[i], ends[i], st)
		lo[a], step[a], cnt[a] = b, st, int(sliceLen(int64(shape[a]), starts[i], ends[i], st))
	}
	total := 1
	for _, c := range cnt {
		total *= c
	}
	out := make([]int64, 0, total)
	if total == 0 {
		return cnt, out
	}
	str := tensor.Strides(shape)
	idx := make([]int, r)
	for {
		off := int64(0)
		for i := 0; i < r; i++ {
			off += (lo[i] + int64(idx[i])*step[i]) * int64(str[i])
		}
		out = append(out, data[off])
		i := r - 1
		for ; i >= 0; i-- {
			idx[i]++
			if idx[i] < cnt[i] {
				break
			}
			idx[i] = 0
		}
		if i < 0 {
			return cnt, out
		}
	}
}

// mergeShapes is what two shapes have in common: same rank, dims kept where
// they agree.
func mergeShapes(a, b Shape) Shape {
	if a == nil || b == nil || len(a) != len(b) {
		return nil
	}
	out := make(Shape, len(a))
	for i := range a {
		if a[i] == b[i] {
			out[i] = a[i]
		} else {
			out[i] = unknownDim()
		}
	}
	return out
}

// maxRank bounds ranks that inference derives from declared sizes, so a
// hostile declaration cannot make it allocate a huge shape.
const maxRank = 64

// unknownDims is a shape of the same rank with every dim unknown (nil for
// an unknown rank).
func unknownDims(s Shape) Shape {
	if s == nil {
		return nil
	}
	out := make(Shape, len(s))
	for i := range out {
		out[i] = unknownDim()
	}
	return out
}
