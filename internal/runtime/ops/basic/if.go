package basic

import (
	"fmt"
	"math"

	"github.com/qtool/qtool/internal/graph"
	"github.com/qtool/qtool/internal/runtime"
	"github.com/qtool/qtool/internal/tensor"
)

func init() {
	regAny("If", newIf)
}

type ifKernel struct {
	then, els *runtime.Subgraph
	nout      int
}

func newIf(n *graph.Node, opset int64) (runtime.Kernel, error) {
	k := &ifKernel{nout: len(n.Outputs)}
	for _, b := range []struct {
		name string
		dst  **runtime.Subgraph
	}{{"then_branch", &k.then}, {"else_branch", &k.els}} {
		g, err := n.AttrGraph(b.name)
		if err != nil {
			return nil, err
		}
		if g == nil {
			return nil, fmt.Errorf("attribute %s is missing", b.name)
		}
		sg, err := runtime.CompileSubgraph(g)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", b.name, err)
		}
		if sg.NumInputs() != 0 {
			return nil, fmt.Errorf("%s takes %d inputs, want none", b.name, sg.NumInputs())
		}
		if sg.NumOutputs() != k.nout {
			return nil, fmt.Errorf("%s has %d outputs, the node %d", b.name, sg.NumOutputs(), k.nout)
		}
		*b.dst = sg
	}
	return k, nil
}

func (k *ifKernel) Run(ctx *runtime.Context, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	if err := need(in, 1); err != nil {
		return nil, err
	}
	c := in[0]
	if c.Len() != 1 {
		return nil, fmt.Errorf("condition must have one element, has shape %v", c.Shape)
	}
	v, err := c.AsFloat64()
	if err != nil {
		return nil, fmt.Errorf("condition: %v", err)
	}
	b := k.els
	if v[0] != 0 {
		b = k.then
	}
	return b.Run(ctx, nil)
}

func init() {
	regAny("Loop", newLoop)
}

// maxLoopIterations bounds a Loop whose trip count and condition come from
// the model or its data, so that a malformed model fails instead of
// hanging (real models loop over sequence steps or detections: far fewer).
var maxLoopIterations int64 = 1 << 24

// loopKernel is ONNX Loop on tensors: the body runs with (iteration
// number, condition, loop-carried values...) and returns (condition,
// loop-carried values..., scan outputs...); scan outputs of every
// iteration are stacked along a new first axis.
type loopKernel struct {
	body    *runtime.Subgraph
	carried int
	scans   int
}

func newLoop(n *graph.Node, opset int64) (runtime.Kernel, error) {
	g, err := n.AttrGraph("body")
	if err != nil {
		return nil, err
	}
	if g == nil {
		return nil, fmt.Errorf("attribute body is missing")
	}
	body, err := runtime.CompileSubgraph(g)
	if err != nil {
		return nil, fmt.Errorf("body: %w", err)
	}
	carried := len(n.Inputs) - 2
	if carried < 0 || body.NumInputs() != carried+2 {
		return nil, fmt.Errorf("body takes %d inputs, the node gives %d loop-carried values", body.NumInputs(), carried)
	}
	scans := body.NumOutputs() - 1 - carried
	if scans < 0 || len(n.Outputs) != carried+scans {
		return nil, fmt.Errorf("body has %d outputs for %d loop-carried values and %d node outputs", body.NumOutputs(), carried, len(n.Outputs))
	}
	return &loopKernel{body: body, carried: carried, scans: scans}, nil
}

func (k *loopKernel) Run(ctx *runtime.Context, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	maxIter := int64(math.MaxInt64)
	if t, err := optional(in, 0); err != nil {
		return nil, err
	} else if t != nil {
		v, err := ints(t)
		if err != nil || len(v) != 1 {
			return nil, fmt.Errorf("M must be one integer")
		}
		maxIter = v[0]
	}
	cond := true
	if t, err := optional(in, 1); err != nil {
		return nil, err
	} else if t != nil {
		if t.DType != tensor.Bool || t.Len() != 1 {
			return nil, fmt.Errorf("cond must be one bool")
		}
		cond = t.Bools()[0]
	}
	state := make([]*tensor.Tensor, k.carried)
	for i := range state {
		if state[i] = input(in, 2+i); state[i] == nil {
			return nil, fmt.Errorf("loop-carried value %d is missing", i)
		}
	}
	scans := make([][]*tensor.Tensor, k.scans)
	args := make([]*tensor.Tensor, 2+k.carried)
	for it := int64(0); it < maxIter && cond; it++ {
		if it >= maxLoopIterations {
			return nil, fmt.Errorf("more than %d iterations: refusing what is most likely a runaway loop", maxLoopIterations)
		}
		args[0] = tensor.FromInt64([]int{}, []int64{it})
		args[1] = &tensor.Tensor{DType: tensor.Bool, Shape: []int{}, Data: []bool{cond}}
		copy(args[2:], state)
		outs, err := k.body.Run(ctx, args)
		if err != nil {
			return nil, fmt.Errorf("iteration %d: %w", it, err)
		}
		c := outs[0]
		if c.DType != tensor.Bool || c.Len() != 1 {
			return nil, fmt.Errorf("iteration %d: body condition is %v, want one bool", it, c)
		}
		cond = c.Bools()[0]
		copy(state, outs[1:1+k.carried])
		for j := range scans {
			scans[j] = append(scans[j], outs[1+k.carried+j])
		}
	}
	res := make([]*tensor.Tensor, 0, k.carried+k.scans)
	for _, t := range state {
		// The body may hand back its input or an outer value unchanged:
		// the node's output must be a tensor of its own.
		res = append(res, t.Clone())
	}
	for j, parts := range scans {
		st, err := stack(parts)
		if err != nil {
			return nil, fmt.Errorf("scan output %d: %w", j, err)
		}
		res = append(res, st)
	}
	return res, nil
}

// stack joins same-shaped tensors along a new first axis.
func stack(parts []*tensor.Tensor) (*tensor.Tensor, error) {
	if len(parts) == 0 {
		// No iteration ran: the element shape is unknown; an empty 1-D
		// float tensor is what ONNX Runtime returns too.
		return tensor.MustNew(tensor.Float32, []int{0}), nil
	}
	p0 := parts[0]
	shape := append([]int{len(parts)}, p0.Shape...)
	out, dst, err := newRaw(nil, p0.DType, shape)
	if err != nil {
		return nil, err
	}
	pos := 0
	for i, p := range parts {
		if p.DType != p0.DType || !tensor.SameShape(p.Shape, p0.Shape) {
			return nil, fmt.Errorf("iteration %d gives %v, iteration 0 %v", i, p, p0)
		}
		src, _, err := raw(p)
		if err != nil {
			return nil, err
		}
		pos += copy(dst[pos:], src)
	}
	return out, nil
}

func init() {
	regAny("Scan", newScan)
}

// scanKernel is ONNX Scan from opset 9: N state values threaded through
// the body, M inputs cut into slices along their scan axes (forward or
// reverse), K outputs stacked along their scan axes.
type scanKernel struct {
	body              *runtime.Subgraph
	nState, nIn, nOut int
	inAxes, inDirs    []int64
	outAxes, outDirs  []int64
}

func newScan(n *graph.Node, opset int64) (runtime.Kernel, error) {
	if opset < 9 {
		return nil, fmt.Errorf("opset-%d Scan (batch axis and sequence_lens) is not supported", opset)
	}
	g, err := n.AttrGraph("body")
	if err != nil {
		return nil, err
	}
	if g == nil {
		return nil, fmt.Errorf("attribute body is missing")
	}
	m, err := n.AttrInt("num_scan_inputs", -1)
	if err != nil {
		return nil, err
	}
	k := &scanKernel{nIn: int(m), nState: len(n.Inputs) - int(m)}
	if m < 1 || k.nState < 0 {
		return nil, fmt.Errorf("num_scan_inputs %d for %d inputs", m, len(n.Inputs))
	}
	k.nOut = len(n.Outputs) - k.nState
	if k.nOut < 0 {
		return nil, fmt.Errorf("%d outputs for %d state values", len(n.Outputs), k.nState)
	}
	if k.body, err = runtime.CompileSubgraph(g); err != nil {
		return nil, fmt.Errorf("body: %w", err)
	}
	if k.body.NumInputs() != k.nState+k.nIn || k.body.NumOutputs() != k.nState+k.nOut {
		return nil, fmt.Errorf("body has %d inputs and %d outputs, the node needs %d and %d",
			k.body.NumInputs(), k.body.NumOutputs(), k.nState+k.nIn, k.nState+k.nOut)
	}
	ints := func(name string, count int) ([]int64, error) {
		v, err := n.AttrInts(name, nil)
		if err != nil {
			return nil, err
		}
		if v == nil {
			return make([]int64, count), nil
		}
		if len(v) != count {
			return nil, fmt.Errorf("%s has %d entries, want %d", name, len(v), count)
		}
		return v, nil
	}
	if k.inAxes, err = ints("scan_input_axes", k.nIn); err != nil {
		return nil, err
	}
	if k.inDirs, err = ints("scan_input_directions", k.nIn); err != nil {
		return nil, err
	}
	if k.outAxes, err = ints("scan_output_axes", k.nOut); err != nil {
		return nil, err
	}
	if k.outDirs, err = ints("scan_output_directions", k.nOut); err != nil {
		return nil, err
	}
	return k, nil
}

func (k *scanKernel) Run(ctx *runtime.Context, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	if err := need(in, k.nState+k.nIn); err != nil {
		return nil, err
	}
	state := append([]*tensor.Tensor(nil), in[:k.nState]...)
	scanIn := in[k.nState:]
	steps := -1
	axes := make([]int, k.nIn)
	for i, x := range scanIn {
		ax, err := normAxis(k.inAxes[i], len(x.Shape))
		if err != nil {
			return nil, fmt.Errorf("scan input %d: %v", i, err)
		}
		axes[i] = ax
		if steps >= 0 && x.Shape[ax] != steps {
			return nil, fmt.Errorf("scan inputs have %d and %d steps", steps, x.Shape[ax])
		}
		steps = x.Shape[ax]
	}
	outs := make([][]*tensor.Tensor, k.nOut)
	args := make([]*tensor.Tensor, k.nState+k.nIn)
	for s := 0; s < steps; s++ {
		copy(args, state)
		for i, x := range scanIn {
			j := s
			if k.inDirs[i] != 0 {
				j = steps - 1 - s
			}
			sl, err := slice(ctx, x, []int64{int64(j)}, []int64{int64(j + 1)}, []int64{int64(axes[i])}, nil)
			if err != nil {
				return nil, err
			}
			shape := append(append([]int{}, sl.Shape[:axes[i]]...), sl.Shape[axes[i]+1:]...)
			args[k.nState+i] = view(sl, shape)
		}
		res, err := k.body.Run(ctx, args)
		if err != nil {
			return nil, fmt.Errorf("step %d: %w", s, err)
		}
		copy(state, res[:k.nState])
		for j := range outs {
			outs[j] = append(outs[j], res[k.nState+j])
		}
	}
	result := make([]*tensor.Tensor, 0, k.nState+k.nOut)
	for _, t := range state {
		result = append(result, t.Clone())
	}
	for j, parts := range outs {
		if k.outDirs[j] != 0 {
			for a, b := 0, len(parts)-1; a < b; a, b = a+1, b-1 {
				parts[a], parts[b] = parts[b], parts[a]
			}
		}
		st, err := stack(parts)
		if err != nil {
			return nil, fmt.Errorf("scan output %d: %w", j, err)
		}
		ax, err := normAxis(k.outAxes[j], len(st.Shape))
		if err != nil {
			return nil, fmt.Errorf("scan output %d: %v", j, err)
		}
		if ax != 0 {
			// Move the stacked axis from the front to ax.
			perm := make([]int, 0, len(st.Shape))
			for d := 1; d <= ax; d++ {
				perm = append(perm, d)
			}
			perm = append(perm, 0)
			for d := ax + 1; d < len(st.Shape); d++ {
				perm = append(perm, d)
			}
			if st, err = transpose(nil, st, perm); err != nil {
				return nil, err
			}
		}
		result = append(result, st)
	}
	return result, nil
}
