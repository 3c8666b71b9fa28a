package nn

import (
	"fmt"

	"github.com/qtool/qtool/internal/graph"
	"github.com/qtool/qtool/internal/tensor"
)

// Test-only stand-ins for the few basic ops (owned by ops/basic) that the
// torchvision models need around our kernels, so that this package can
// check whole models before the executor and basic ops exist. They handle
// exactly the shapes those models use and fail loudly otherwise.
func isShim(op string) bool {
	switch op {
	case "Relu", "Clip", "Add", "Flatten":
		return true
	}
	return false
}

func shimOp(n *graph.Node, in []*tensor.Tensor) ([]*tensor.Tensor, bool, error) {
	switch n.OpType {
	case "Relu":
		x := in[0].F32()
		y := make([]float32, len(x))
		for i, v := range x {
			y[i] = max(v, 0)
		}
		return []*tensor.Tensor{tensor.FromFloat32(in[0].Shape, y)}, true, nil
	case "Clip":
		lo, hi := float32(-3.4e38), float32(3.4e38)
		if len(in) > 1 && in[1] != nil {
			lo = in[1].F32()[0]
		}
		if len(in) > 2 && in[2] != nil {
			hi = in[2].F32()[0]
		}
		x := in[0].F32()
		y := make([]float32, len(x))
		for i, v := range x {
			y[i] = min(max(v, lo), hi)
		}
		return []*tensor.Tensor{tensor.FromFloat32(in[0].Shape, y)}, true, nil
	case "Add":
		if !tensor.SameShape(in[0].Shape, in[1].Shape) {
			return nil, true, fmt.Errorf("shim Add: shapes %v %v", in[0].Shape, in[1].Shape)
		}
		a, b := in[0].F32(), in[1].F32()
		y := make([]float32, len(a))
		for i := range a {
			y[i] = a[i] + b[i]
		}
		return []*tensor.Tensor{tensor.FromFloat32(in[0].Shape, y)}, true, nil
	case "Flatten":
		axis, _ := n.AttrInt("axis", 1)
		s := in[0].Shape
		return []*tensor.Tensor{tensor.FromFloat32([]int{prod(s[:axis]), prod(s[axis:])}, in[0].F32())}, true, nil
	}
	return nil, false, nil
}
