package basic

import (
	"fmt"

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
