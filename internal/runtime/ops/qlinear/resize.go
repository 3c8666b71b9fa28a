package qlinear

import (
	"fmt"
	"math"

	"github.com/qtool/qtool/internal/graph"
	"github.com/qtool/qtool/internal/runtime"
	"github.com/qtool/qtool/internal/tensor"
)

func init() {
	for _, dt := range []tensor.DType{tensor.Uint8, tensor.Int8} {
		runtime.Register(QtoolDomain, "Resize8", dt, newResize8)
	}
}

// resize8Kernel is com.qtool Resize8: ONNX Resize (same inputs and
// attributes; attribute onnx_opset gives the ai.onnx opset whose Resize it
// is) on a uint8/int8 tensor in any mode, interpolating the codes and
// rounding half to even. The QDQ rewrite emits it for DQ → Resize → Q with
// equal qparams in linear and cubic mode: the interpolation weights sum to
// 1, so interpolating (q - zp)·s and requantizing is interpolating q and
// rounding, which this does. (ONNX Runtime drops the same DQ/Q pair and
// truncates the interpolated codes toward zero instead, measured on its
// uint8 and int8 Resize: it is within 1 LSB of this, always below.)
//
// The coordinate arithmetic is the float Resize kernel's, run on the codes
// as float32 (exact), so every coordinate mode, antialias and axes behave
// as in the float path.
type resize8Kernel struct {
	node *graph.Node
	f    runtime.Kernel
}

func newResize8(n *graph.Node, opset int64) (runtime.Kernel, error) {
	if len(n.Inputs) < 1 || len(n.Outputs) != 1 {
		return nil, fmt.Errorf("%v: Resize8 takes X and Resize's inputs, and 1 output", n)
	}
	onnxOpset, err := n.AttrInt("onnx_opset", 13)
	if err != nil {
		return nil, err
	}
	if onnxOpset < 11 || onnxOpset > 1000 {
		return nil, fmt.Errorf("%v: onnx_opset %d is not a Resize opset (11 or later)", n, onnxOpset)
	}
	if ctm, _ := n.AttrString("coordinate_transformation_mode", ""); ctm == "tf_crop_and_resize" {
		// extrapolation_value is a real value, not a code.
		return nil, fmt.Errorf("%v: tf_crop_and_resize is not supported on codes", n)
	}
	fac, ok := runtime.Lookup("", "Resize", tensor.Float32)
	if !ok {
		return nil, fmt.Errorf("%v: no float Resize kernel registered", n)
	}
	fn := &graph.Node{Name: n.Name, OpType: "Resize", Inputs: n.Inputs, Outputs: n.Outputs}
	for _, a := range n.Attrs {
		if a.Name != "onnx_opset" {
			fn.Attrs = append(fn.Attrs, a)
		}
	}
	f, err := fac(fn, onnxOpset)
	if err != nil {
		return nil, err
	}
	return &resize8Kernel{node: n, f: f}, nil
}

func (k *resize8Kernel) Run(ctx *runtime.Context, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	n := k.node
	x, err := int8In(n, in, 0, "X")
	if err != nil {
		return nil, err
	}
	f, err := ctx.NewUninit(tensor.Float32, x.Shape)
	if err != nil {
		return nil, fmt.Errorf("%v: %v", n, err)
	}
	fd := f.F32()
	switch d := x.Data.(type) {
	case []uint8:
		for i, v := range d {
			fd[i] = float32(v)
		}
	case []int8:
		for i, v := range d {
			fd[i] = float32(v)
		}
	}
	fin := append([]*tensor.Tensor{f}, in[1:]...)
	outs, err := k.f.Run(ctx, fin)
	if err != nil {
		return nil, err
	}
	yf := outs[0]
	y, err := ctx.NewUninit(x.DType, yf.Shape)
	if err != nil {
		return nil, fmt.Errorf("%v: %v", n, err)
	}
	lo, hi := float64(0), float64(255)
	if x.DType == tensor.Int8 {
		lo, hi = -128, 127
	}
	src := yf.F32()
	// Cubic interpolation overshoots the input range, hence the clamp.
	conv := func(v float32) float64 {
		r := math.RoundToEven(float64(v))
		if !(r >= lo) {
			return lo
		}
		return min(r, hi)
	}
	switch d := y.Data.(type) {
	case []uint8:
		for i, v := range src {
			d[i] = uint8(conv(v))
		}
	case []int8:
		for i, v := range src {
			d[i] = int8(conv(v))
		}
	}
	return []*tensor.Tensor{y}, nil
}
