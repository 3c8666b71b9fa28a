package qlinear

import (
	"fmt"
	"math"
	"sync"

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
// as in the float path. In nearest mode every output is a copy of one
// input: the float kernel is run once on the element indices (exact in
// float32 below 2^24 elements) and later runs with the same shape and
// scales/sizes are a gather through them.
type resize8Kernel struct {
	node    *graph.Node
	f       runtime.Kernel
	nearest bool

	mu      sync.Mutex
	gathers map[string]*gatherMap // by input shape and Resize inputs
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
	mode, err := n.AttrString("mode", "nearest")
	if err != nil {
		return nil, err
	}
	return &resize8Kernel{node: n, f: f, nearest: mode == "nearest", gathers: map[string]*gatherMap{}}, nil
}

// maxGathers bounds the cached index maps (one per distinct input shape
// and scales/sizes).
const maxGathers = 8

// gatherMap is the source index of every output element of one nearest
// Resize, and the output shape.
type gatherMap struct {
	idx   []int32
	shape []int
}

// gather returns the index map for this input shape and these Resize
// inputs, nil when the indices would not be exact in float32.
func (k *resize8Kernel) gather(ctx *runtime.Context, x *tensor.Tensor, in []*tensor.Tensor) (*gatherMap, error) {
	if x.Len() >= 1<<24 {
		return nil, nil
	}
	key := fmt.Sprint(x.Shape)
	for _, t := range in[1:] {
		if t != nil {
			key += fmt.Sprintf("|%v%v%v", t.DType, t.Shape, t.Data)
		}
	}
	k.mu.Lock()
	g, ok := k.gathers[key]
	k.mu.Unlock()
	if ok {
		return g, nil
	}
	iota := make([]float32, x.Len())
	for i := range iota {
		iota[i] = float32(i)
	}
	outs, err := k.f.Run(ctx, append([]*tensor.Tensor{tensor.FromFloat32(x.Shape, iota)}, in[1:]...))
	if err != nil {
		return nil, err
	}
	src := outs[0].F32()
	g = &gatherMap{idx: make([]int32, len(src)), shape: append([]int(nil), outs[0].Shape...)}
	for i, v := range src {
		g.idx[i] = int32(v)
	}
	k.mu.Lock()
	if len(k.gathers) >= maxGathers {
		clear(k.gathers)
	}
	k.gathers[key] = g
	k.mu.Unlock()
	return g, nil
}

func (k *resize8Kernel) Run(ctx *runtime.Context, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	n := k.node
	x, err := int8In(n, in, 0, "X")
	if err != nil {
		return nil, err
	}
	if k.nearest {
		if y, ok, err := k.runGather(ctx, x, in); ok || err != nil {
			return y, err
		}
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

// runGather is nearest mode through the index map; ok is false when there
// is none.
func (k *resize8Kernel) runGather(ctx *runtime.Context, x *tensor.Tensor, in []*tensor.Tensor) ([]*tensor.Tensor, bool, error) {
	g, err := k.gather(ctx, x, in)
	if err != nil || g == nil {
		return nil, false, err
	}
	y, err := ctx.NewUninit(x.DType, g.shape)
	if err != nil {
		return nil, false, fmt.Errorf("%v: %v", k.node, err)
	}
	src, dst := bytesOf(x), bytesOf(y)
	ctx.Parallel(len(dst), 1<<14, func(lo, hi int) {
		for i, j := range g.idx[lo:hi] {
			dst[lo+i] = src[j]
		}
	})
	return []*tensor.Tensor{y}, true, nil
}
