package qlinear

import (
	"fmt"

	"github.com/qtool/qtool/internal/graph"
	"github.com/qtool/qtool/internal/runtime"
	"github.com/qtool/qtool/internal/simd/q8"
	"github.com/qtool/qtool/internal/tensor"
)

func init() {
	for _, dt := range []tensor.DType{tensor.Uint8, tensor.Int8} {
		runtime.Register(MicrosoftDomain, "QLinearLeakyRelu", dt, newQLinearLeakyRelu)
		runtime.Register(MicrosoftDomain, "QLinearSigmoid", dt, newQLinearSigmoid)
	}
}

// lookupKernel is an elementwise 8-bit activation as a 256-entry table
// (ONNX Runtime's QLinearLookupBase): inputs X, X_scale, X_zero_point,
// Y_scale, Y_zero_point; the table is built from f on every run (it is 256
// evaluations) and applied with q8.LookupU8.
type lookupKernel struct {
	node *graph.Node
	f    func(float32) float32
	plan *planTable // the table when the qparams are constants
}

// lookupQParams are X_scale, X_zero_point, Y_scale and Y_zero_point.
var lookupQParams = []int{1, 2, 3, 4}

func newLookupKernel(n *graph.Node, f func(float32) float32) *lookupKernel {
	k := &lookupKernel{node: n, f: f}
	k.plan = newPlanTable(n, lookupQParams, k.build)
	return k
}

func newQLinearLeakyRelu(n *graph.Node, opset int64) (runtime.Kernel, error) {
	if len(n.Inputs) < 4 || len(n.Inputs) > 5 {
		return nil, fmt.Errorf("%v: QLinearLeakyRelu takes 4 or 5 inputs, got %d", n, len(n.Inputs))
	}
	alpha, err := n.AttrFloat("alpha", 0.01)
	if err != nil {
		return nil, err
	}
	return newLookupKernel(n, func(v float32) float32 {
		if v >= 0 {
			return v
		}
		return alpha * v
	}), nil
}

func (k *lookupKernel) Run(ctx *runtime.Context, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	n := k.node
	x, err := int8In(n, in, 0, "X")
	if err != nil {
		return nil, err
	}
	table := k.plan.get(in, x.DType)
	if table == nil {
		table = tablePool.Get().(*[256]uint8)
		defer tablePool.Put(table)
		if err := k.build(in, x.DType, table); err != nil {
			return nil, err
		}
	}
	return lookupTensor(ctx, n, x, table)
}

// build makes the table of data type dt from the qparam inputs.
func (k *lookupKernel) build(in []*tensor.Tensor, dt tensor.DType, table *[256]uint8) error {
	n := k.node
	xs, _, err := scalesIn(n, in, 1, "X_scale", 1)
	if err != nil {
		return err
	}
	xz, err := zeroPointsIn(n, in, 2, "X_zero_point", dt, 1)
	if err != nil {
		return err
	}
	ys, _, err := scalesIn(n, in, 3, "Y_scale", 1)
	if err != nil {
		return err
	}
	yz, err := zeroPointsIn(n, in, 4, "Y_zero_point", dt, 1)
	if err != nil {
		return err
	}
	if len(xz) != 1 || len(yz) != 1 {
		return fmt.Errorf("%v: zero points must be scalars", n)
	}
	q8.BuildTable(table, dt == tensor.Int8, xs[0], xz[0], ys[0], yz[0], k.f)
	return nil
}

func newQLinearSigmoid(n *graph.Node, opset int64) (runtime.Kernel, error) {
	if len(n.Inputs) < 4 || len(n.Inputs) > 5 {
		return nil, fmt.Errorf("%v: QLinearSigmoid takes 4 or 5 inputs, got %d", n, len(n.Inputs))
	}
	return newLookupKernel(n, q8.LogisticMLAS), nil
}
