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
